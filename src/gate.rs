//! One call that decides a request's preconditions and builds the response
//! for those that stop it: the glue every framework integration shares.

use std::time::SystemTime;

use http::{HeaderMap, Method, Response, StatusCode};

use crate::etag::ETag;
use crate::headers::{Field, RequestHeaders};
use crate::list;
use crate::precondition::{Failed, Outcome, Policy};
use crate::response::{ProblemKind, ProblemTexts, not_modified_for};
use crate::versioned::Versioned;
use crate::write::{Conflict, Expected};

/// What a request that passed its preconditions carries to the handler.
///
/// The tower `PreconditionLayer` (feature `middleware`)
/// puts it in the request extensions (in axum: `Extension<Precondition>`);
/// other integrations get it from [`Gate::check`].
///
/// Besides the [`expected`](Self::expected) state of a write, it says
/// whether a GET must ignore `Range`: here the client asks for the rest of
/// a copy of `"v1"`, which is no longer current, so it gets the whole
/// representation. ([`failed`](Self::failed) is shown with
/// [`Gate::confirm_retried_puts`].)
///
/// ```
/// use std::time::SystemTime;
/// use http::{header, HeaderMap, Method};
/// use ifmatch::{Decision, ETag, Expected, Gate};
///
/// let current = ETag::from_version(2);
/// let mut headers = HeaderMap::new();
/// headers.insert(header::RANGE, "bytes=1000-".parse()?);
/// headers.insert(header::IF_RANGE, "\"v1\"".parse()?);
/// let decision = Gate::new().check(&Method::GET, &headers, Some(&current), SystemTime::now());
/// let Decision::Proceed(pre) = decision else {
///     panic!("a failed If-Range does not stop a GET");
/// };
/// assert!(pre.ignore_range()); // answer 200 with everything, not 206
/// assert_eq!(pre.expected(), &Expected::Any); // a GET writes nothing
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    expected: Expected,
    ignore_range: bool,
    // Set when `If-Match` failed and the request was let through only for
    // the handler to confirm a retried PUT.
    failed: Option<Conflict>,
}

impl Precondition {
    /// The state the handler's write must still find: pass it to the
    /// store's compare-and-swap.
    ///
    /// [`Expected::Absent`] on any method but PUT (a GET, HEAD or POST)
    /// means the target did not exist and preconditions were not
    /// evaluated: answer 404 ([RFC 9110
    /// §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1)). (A PATCH or DELETE of a missing target gets its 404 from
    /// [`Gate::check`] and never gets here.) A handler that changes the
    /// current value (a PATCH) passes this to
    /// [`ConditionalStore::modify`](crate::ConditionalStore::modify), which
    /// writes under [`pinned_to`](Expected::pinned_to) the value it read.
    #[must_use]
    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// The expected state, by value.
    #[must_use]
    pub fn into_expected(self) -> Expected {
        self.expected
    }

    /// Whether `If-Range` failed: ignore `Range` and send the whole
    /// representation with 200.
    #[must_use]
    pub fn ignore_range(&self) -> bool {
        self.ignore_range
    }

    /// The conflict the precondition already found, when `If-Match` failed
    /// and the request was let through only so that the handler can
    /// confirm a retried PUT ([`Gate::confirm_retried_puts`]). The handler
    /// must not write then, only compare: unless it finds the stored state
    /// already equal to the request, its answer is this conflict's 412, and
    /// before looking at the body: preconditions come before the content
    /// ([RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1)).
    #[must_use]
    pub fn failed(&self) -> Option<&Conflict> {
        self.failed.as_ref()
    }
}

/// A request with no `If-Range` to honour, written under `expected`: for
/// testing a handler without running a [`Gate`].
///
/// ```
/// use ifmatch::{ETag, Expected, Precondition};
///
/// let pre = Precondition::from(Expected::ETag(ETag::from_version(3)));
/// assert_eq!(pre.expected(), &Expected::ETag(ETag::from_version(3)));
/// assert!(!pre.ignore_range());
/// ```
impl From<Expected> for Precondition {
    fn from(expected: Expected) -> Self {
        Self {
            expected,
            ignore_range: false,
            failed: None,
        }
    }
}

/// What [`Gate::check`] decided.
///
/// Exhaustive on purpose: a request either goes ahead or is answered, and a
/// `match` without a catch-all arm is what keeps a handler from writing
/// without looking.
///
/// A GET handler: its own 200 when the preconditions hold, the gate's 304
/// (or 412) otherwise. (A missing target is its own 404, before any
/// precondition, [RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1).)
///
/// ```
/// use std::time::SystemTime;
/// use http::{header, HeaderMap, Method, Response, StatusCode};
/// use ifmatch::{insert_validators, problem_response, Decision, Expected, Gate, MemoryStore};
///
/// fn get(gate: &Gate, store: &MemoryStore<&'static str, String>, headers: &HeaderMap) -> Response<String> {
///     let Some(doc) = store.get("doc") else {
///         return problem_response(StatusCode::NOT_FOUND, "about:blank", "Not Found", "No such document.");
///     };
///     match gate.check(&Method::GET, headers, Some(&doc), SystemTime::now()) {
///         Decision::Proceed(_) => {
///             let mut res = Response::new(doc.value().clone());
///             insert_validators(res.headers_mut(), &doc);
///             res
///         }
///         Decision::Respond(res) => res,
///     }
/// }
///
/// let (gate, store) = (Gate::new(), MemoryStore::new());
/// let v1 = store.put("doc", &Expected::Absent, "hello".to_owned())?;
/// let res = get(&gate, &store, &HeaderMap::new());
/// assert_eq!(res.status(), StatusCode::OK);
/// assert_eq!(res.headers()[header::ETAG], v1.etag().to_header_value());
/// // The client revalidates the copy it has: 304, without the body.
/// let mut revalidate = HeaderMap::new();
/// revalidate.insert(header::IF_NONE_MATCH, v1.etag().to_header_value());
/// let res = get(&gate, &store, &revalidate);
/// assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
/// assert!(res.body().is_empty());
/// # Ok::<(), ifmatch::Conflict>(())
/// ```
#[derive(Debug)]
#[must_use = "ignoring a Decision performs the write unchecked"]
pub enum Decision {
    /// Run the handler, conditioning its write on
    /// [`Precondition::expected`].
    Proceed(Precondition),
    /// Send this response instead (304, 400, 404, 412 or 428); nothing may
    /// be changed.
    Respond(Response<String>),
}

/// Everything a service needs to enforce preconditions, in one value: the
/// [`Policy`], the [`ProblemTexts`], and what to do with malformed fields and
/// retried PUTs. [`check`](Self::check) evaluates a request and either lets
/// it through with a [`Precondition`] or returns the response to send.
///
/// The tower `PreconditionLayer` (feature `middleware`)
/// is this gate in front of a service; call it directly from any other
/// framework (e.g. an actix-web middleware, through [`RawHeaders`](crate::RawHeaders)).
///
/// ```
/// use std::time::SystemTime;
/// use http::{header, HeaderMap, Method};
/// use ifmatch::{Decision, ETag, Gate};
///
/// let gate = Gate::default();
/// let current = ETag::from_version(2);
/// let mut headers = HeaderMap::new();
/// headers.insert(header::IF_MATCH, "\"v1\"".parse()?);
/// match gate.check(&Method::PUT, &headers, Some(&current), SystemTime::now()) {
///     Decision::Proceed(pre) => { /* write under pre.expected() */ }
///     Decision::Respond(response) => assert_eq!(response.status(), 412),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Gate {
    policy: Policy,
    texts: ProblemTexts,
    reject_malformed: bool,
    not_modified_headers: HeaderMap,
    confirm_retried_puts: bool,
}

impl Gate {
    /// The default gate: strict policy, default texts. The same as
    /// `Gate::default()`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the policy: strict or opt-in, which methods need a precondition.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{HeaderMap, Method, StatusCode};
    /// use ifmatch::{Decision, ETag, Gate, Policy};
    ///
    /// // POST changes this resource too, so it must say which version it saw.
    /// let policy = Policy::strict()
    ///     .require_precondition_for([Method::PUT, Method::PATCH, Method::DELETE, Method::POST]);
    /// let gate = Gate::new().policy(policy);
    /// let current = ETag::from_version(1);
    /// let decision = gate.check(&Method::POST, &HeaderMap::new(), Some(&current), SystemTime::now());
    /// assert!(matches!(decision, Decision::Respond(res) if res.status() == StatusCode::PRECONDITION_REQUIRED));
    /// ```
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the texts of the problem responses.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{HeaderMap, Method};
    /// use ifmatch::{Decision, ETag, Gate, ProblemKind, ProblemText, ProblemTexts};
    ///
    /// let texts = ProblemTexts::default().set(ProblemKind::Required, ProblemText::new(
    ///     "https://example.com/problems/reload-first",
    ///     "Reload before you save",
    ///     "Someone else may have changed this note since you opened it.",
    /// ));
    /// let gate = Gate::new().texts(texts);
    /// let current = ETag::from_version(1);
    /// let decision = gate.check(&Method::PUT, &HeaderMap::new(), Some(&current), SystemTime::now());
    /// let Decision::Respond(res) = decision else { panic!("a PUT without If-Match") };
    /// assert_eq!(res.status(), 428);
    /// assert!(res.body().contains("Reload before you save"));
    /// ```
    #[must_use]
    pub fn texts(mut self, texts: ProblemTexts) -> Self {
        self.texts = texts;
        self
    }

    /// Answer 400 Bad Request when `If-Match` or `If-None-Match` is
    /// malformed, instead of RFC 9110's safe outcome (a malformed `If-Match`
    /// never matches: 412; a malformed `If-None-Match` is ignored). Off by
    /// default.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{header, HeaderMap, Method, StatusCode};
    /// use ifmatch::{Decision, ETag, Gate};
    ///
    /// let current = ETag::from_version(1);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::IF_MATCH, "v1".parse()?); // the quotes lost
    /// let status = |gate: Gate| match gate.check(&Method::PUT, &headers, Some(&current), SystemTime::now()) {
    ///     Decision::Respond(res) => res.status(),
    ///     Decision::Proceed(_) => StatusCode::OK,
    /// };
    /// assert_eq!(status(Gate::new()), StatusCode::PRECONDITION_FAILED);
    /// assert_eq!(status(Gate::new().reject_malformed(true)), StatusCode::BAD_REQUEST);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn reject_malformed(mut self, reject: bool) -> Self {
        self.reject_malformed = reject;
        self
    }

    /// Header fields the 200 would carry, for the 304s the gate answers
    /// before any handler runs (it cannot take them from the handler's
    /// response). RFC 9110
    /// [§15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5)
    /// requires a 304 to repeat Cache-Control, Content-Location, Expires
    /// and Vary; other fields are repeated too, except those describing the
    /// content (see [`not_modified`](crate::not_modified)).
    ///
    /// These headers are set once and repeated in every 304, so they must
    /// hold nothing that belongs to one response or one target: `Date`
    /// (which §15.4.5 lists too; the server adds the time of each
    /// response, as hyper and actix-web do), `Age` (a cache's, for one
    /// response), `ETag` and `Last-Modified` (each 304 carries the current
    /// target's) are dropped, and a per-response field such as `Set-Cookie`
    /// does not belong here. An `Expires` here is repeated as it is: give a
    /// fixed date, or rather `Cache-Control: max-age`, which is relative.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{header, HeaderMap, Method, StatusCode};
    /// use ifmatch::{Decision, ETag, Gate};
    ///
    /// let mut ok = HeaderMap::new();
    /// ok.insert(header::CACHE_CONTROL, "no-cache".parse()?);
    /// ok.insert(header::DATE, "Sun, 06 Nov 1994 08:49:37 GMT".parse()?);
    /// let gate = Gate::new().not_modified_headers(ok);
    ///
    /// let current = ETag::from_version(3);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::IF_NONE_MATCH, current.to_header_value());
    /// let decision = gate.check(&Method::GET, &headers, Some(&current), SystemTime::now());
    /// let Decision::Respond(res) = decision else { panic!("the client's copy is current") };
    /// assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    /// assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
    /// assert_eq!(res.headers()[header::ETAG], "\"v3\"");
    /// // A fixed `Date` would be wrong in every later 304: the server adds its own.
    /// assert!(!res.headers().contains_key(header::DATE));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn not_modified_headers(mut self, mut headers: HeaderMap) -> Self {
        for name in [
            http::header::AGE,
            http::header::DATE,
            http::header::ETAG,
            http::header::LAST_MODIFIED,
        ] {
            headers.remove(name);
        }
        self.not_modified_headers = headers;
        self
    }

    /// Let the handler confirm a PUT that may be a retry of a request that
    /// already succeeded (its response was lost, so the client resends it
    /// with the old tag). [RFC 9110 §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1) lets the server answer 2xx
    /// instead of 412 "if it can determine that the state change has
    /// already succeeded", which only the handler, holding the body, can.
    ///
    /// With this on, a PUT whose `If-Match` names exactly one strong tag
    /// that is not current is let through with
    /// [`Expected::ETag`]`(that stale tag)` and
    /// [`Precondition::failed`] set. The handler then must **not write**:
    /// the condition was false, and §13.1.1 says the server "MUST NOT
    /// perform the requested method" then. (A compare-and-swap under the
    /// stale tag would usually fail, but not with content-derived tags if
    /// the content went back to what the client had.) It loads the current
    /// state and answers 200 if that already equals the request, and the
    /// conflict's 412 otherwise. Off by default.
    ///
    /// **This gives up part of the lost-update protection.** The server
    /// cannot tell a retry from the same change made by another client
    /// from the same stale read, and §13.1.1 allows the 200 for that too
    /// ("an equivalent change was made by some other user agent"). But two
    /// clients that each read a counter at 3 and send 4 meant to add one
    /// each: confirming the second tells it its increment succeeded, and
    /// [`Retry`](crate::Retry) never runs. Turn this on only where a new
    /// state never depends on the state read (a person re-sending the
    /// form they filled in), not for clients that read, modify and write.
    /// With it off, a client whose response was lost gets the 412 and
    /// reads again; to tell whether its change is already there it needs a
    /// change it can recognise (a count of its own, a change id), which a
    /// read-modify-write client needs anyway: a plain counter client would
    /// add its one again.
    ///
    /// The handler's side, for a PUT of `body` to `key`:
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{header, HeaderMap, Method, StatusCode};
    /// use ifmatch::{Decision, Expected, Gate, MemoryStore, Stored};
    ///
    /// let gate = Gate::new().confirm_retried_puts(true);
    /// let store: MemoryStore<&str, String> = MemoryStore::new();
    /// let v1 = store.put("doc", &Expected::Absent, "draft".to_owned())?;
    /// // The client's PUT under "v1" was written, but its answer was lost.
    /// store.put("doc", &Expected::ETag(v1.etag().clone()), "final".to_owned())?;
    ///
    /// let put = |body: &str| -> StatusCode {
    ///     let mut headers = HeaderMap::new();
    ///     headers.insert(header::IF_MATCH, v1.etag().to_header_value());
    ///     let current = store.validators("doc");
    ///     let pre = match gate.check(&Method::PUT, &headers, current.as_ref(), SystemTime::now()) {
    ///         Decision::Proceed(pre) => pre,
    ///         Decision::Respond(res) => return res.status(),
    ///     };
    ///     if let Some(conflict) = pre.failed() {
    ///         // Compare, never write: 200 only if the change is in place.
    ///         return match store.get("doc") {
    ///             Some(doc) if doc.value() == body => StatusCode::OK,
    ///             _ => gate.conflict(conflict).status(),
    ///         };
    ///     }
    ///     match store.put("doc", pre.expected(), body.to_owned()) {
    ///         Ok(_) => StatusCode::OK,
    ///         Err(conflict) => gate.conflict(&conflict).status(),
    ///     }
    /// };
    /// // The retry finds its change in place; another body under the
    /// // stale tag is a lost update.
    /// assert_eq!(put("final"), StatusCode::OK);
    /// assert_eq!(put("something else"), StatusCode::PRECONDITION_FAILED);
    /// assert_eq!(store.get("doc").map(Stored::into_value).as_deref(), Some("final"));
    /// # Ok::<(), ifmatch::Conflict>(())
    /// ```
    #[must_use]
    pub fn confirm_retried_puts(mut self, confirm: bool) -> Self {
        self.confirm_retried_puts = confirm;
        self
    }

    /// Evaluates the request's preconditions against `current` (`None`,
    /// typed as e.g. `None::<&ETag>`: the target does not exist) with
    /// [`Policy::evaluate`], and returns
    /// either the [`Precondition`] to proceed with, or the response to send
    /// instead: 304, 404, 412 or 428 (and 400 for malformed fields if
    /// [`reject_malformed`](Self::reject_malformed)).
    ///
    /// A PATCH or DELETE of a target that does not exist gets 404
    /// ([`ProblemKind::NotFound`]) before anything is evaluated ([RFC 9110
    /// §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1)), so its handler never runs: a write under the
    /// [`Expected::Absent`] it would get could only create the target.
    /// A PUT is evaluated against the absent target, as it may create it.
    /// Any other method proceeds with `Expected::Absent`, unevaluated: a
    /// GET or HEAD for the handler's own 404, and a POST for its handler to
    /// decide, since what a POST does is the resource's own (§9.3.3): a
    /// POST handler that must not create answers 404 rather than writing
    /// under `Absent`.
    ///
    /// A POST to a collection that always exists (`POST /docs` creating
    /// `/docs/{id}`) is not such a request: its target is the collection,
    /// and an `If-Match` on it "MUST" be evaluated ([RFC 9110
    /// §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1)).
    /// Pass `Some(&Validators::default())` (present, with no validators):
    /// `If-Match: *` holds, a tag or `If-None-Match: *` gets 412. `None`
    /// would let `If-Match: "x"` through unevaluated.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
    /// use ifmatch::{Decision, Gate, Validators};
    ///
    /// let gate = Gate::new();
    /// let status = |if_match: &'static str, collection: Option<&Validators>| {
    ///     let headers = HeaderMap::from_iter([(header::IF_MATCH, HeaderValue::from_static(if_match))]);
    ///     match gate.check(&Method::POST, &headers, collection, SystemTime::now()) {
    ///         Decision::Proceed(_) => StatusCode::CREATED,
    ///         Decision::Respond(res) => res.status(),
    ///     }
    /// };
    /// let collection = Validators::default();
    /// assert_eq!(status("*", Some(&collection)), StatusCode::CREATED);
    /// assert_eq!(status("\"x\"", Some(&collection)), StatusCode::PRECONDITION_FAILED);
    /// // Reported absent, the collection's conditions are not evaluated.
    /// assert_eq!(status("\"x\"", None), StatusCode::CREATED);
    /// ```
    ///
    /// The responses have a body even for a HEAD; servers drop it, but a
    /// glue that can should send none ([RFC 9110 §9.3.2](https://www.rfc-editor.org/rfc/rfc9110#section-9.3.2)), as
    /// `PreconditionLayer` does.
    ///
    /// A DELETE handler: it deletes only under the state the gate checked,
    /// and otherwise sends the gate's answer. (The [crate-level
    /// example](crate#example) does the same for a PUT, and
    /// [`ConditionalStore`](crate::ConditionalStore) for an asynchronous
    /// store.)
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{header, HeaderMap, Method, Response, StatusCode};
    /// use ifmatch::{Decision, ETag, Expected, Gate, MemoryStore};
    ///
    /// fn delete(gate: &Gate, store: &MemoryStore<&'static str, String>, headers: &HeaderMap) -> Response<String> {
    ///     let current = store.validators("doc");
    ///     match gate.check(&Method::DELETE, headers, current.as_ref(), SystemTime::now()) {
    ///         Decision::Proceed(pre) => match store.delete("doc", pre.expected()) {
    ///             Ok(_) => Response::new("deleted".to_owned()),
    ///             // Another write landed after the check: the same 412.
    ///             Err(conflict) => gate.conflict(&conflict),
    ///         },
    ///         // 404, 412 or 428: nothing may be deleted.
    ///         Decision::Respond(res) => res,
    ///     }
    /// }
    ///
    /// let (gate, store) = (Gate::new(), MemoryStore::new());
    /// let v1 = store.put("doc", &Expected::Absent, "draft".to_owned())?;
    /// let if_match = |tag: &ETag| HeaderMap::from_iter([(header::IF_MATCH, tag.to_header_value())]);
    /// let status = |headers: &HeaderMap| delete(&gate, &store, headers).status();
    /// assert_eq!(status(&HeaderMap::new()), StatusCode::PRECONDITION_REQUIRED);
    /// assert_eq!(status(&if_match(&ETag::from_version(0))), StatusCode::PRECONDITION_FAILED);
    /// assert_eq!(status(&if_match(v1.etag())), StatusCode::OK);
    /// // Gone now: 404 before any precondition, and the handler never runs.
    /// assert_eq!(status(&if_match(v1.etag())), StatusCode::NOT_FOUND);
    /// # Ok::<(), ifmatch::Conflict>(())
    /// ```
    pub fn check<H, V>(
        &self,
        method: &Method,
        headers: &H,
        current: Option<&V>,
        now: SystemTime,
    ) -> Decision
    where
        H: RequestHeaders + ?Sized,
        V: Versioned + ?Sized,
    {
        // RFC 9110 §13.2.1: the 404 comes before preconditions. Answered
        // here for the methods that act on an existing target, so that no
        // handler can turn `Expected::Absent` into a create by writing.
        if current.is_none() && (*method == Method::PATCH || *method == Method::DELETE) {
            return Decision::Respond(self.texts.problem(
                ProblemKind::NotFound,
                StatusCode::NOT_FOUND,
                None,
            ));
        }
        let eval = self.policy.evaluate(method, headers, current, now);
        if let (true, Some(field)) = (self.reject_malformed, eval.malformed()) {
            return Decision::Respond(self.texts.malformed(&field));
        }
        match eval.into_outcome() {
            Outcome::Proceed {
                expected,
                ignore_range,
            } => Decision::Proceed(Precondition {
                expected,
                ignore_range,
                failed: None,
            }),
            Outcome::PreconditionFailed(failed) => {
                match self.retried_put(method, headers, current, failed) {
                    Some(retried) => Decision::Proceed(retried),
                    None => Decision::Respond(
                        self.texts
                            .precondition_failed_for(method, headers, current, failed),
                    ),
                }
            }
            Outcome::NotModified => {
                Decision::Respond(not_modified_for(current, &self.not_modified_headers))
            }
            Outcome::PreconditionRequired => Decision::Respond(self.texts.precondition_required()),
        }
    }

    /// With [`confirm_retried_puts`](Self::confirm_retried_puts), what a PUT
    /// of an existing target whose `If-Match` of exactly one strong tag
    /// failed is let through with: that stale tag, and the conflict it
    /// found, for the handler to compare against (never to write under).
    /// Reads `If-Match` again, in place, on the failure path only.
    fn retried_put<H, V>(
        &self,
        method: &Method,
        headers: &H,
        current: Option<&V>,
        failed: Failed,
    ) -> Option<Precondition>
    where
        H: RequestHeaders + ?Sized,
        V: Versioned + ?Sized,
    {
        // A client can only hold a strong tag of a target that has one:
        // against a target without, no tag is a retry, and the 412 says
        // that no tag can match (`precondition_failed_for`).
        let applies = self.confirm_retried_puts
            && failed == Failed::IfMatch
            && *method == Method::PUT
            && current
                .and_then(Versioned::etag)
                .is_some_and(|tag| tag.is_strong());
        if !applies {
            return None;
        }
        // Read in place, not parsed into an `ETagList`: the client chooses
        // how long the field is, and a list of short tags would be copied
        // into a `Vec` many times the field's size.
        let tag = ETag::from_valid_wire(list::only_tag(headers.field_lines(Field::IfMatch))?);
        if !tag.is_strong() {
            return None;
        }
        let expected = Expected::ETag(tag);
        Some(Precondition {
            failed: Some(Conflict::refused(&expected, current)),
            expected,
            ignore_range: false,
        })
    }

    /// The 412 for a conditional write that found the target moved on or
    /// gone: the same response a failed precondition gets (404 for a write
    /// without a precondition that found the target gone, and 409 for one
    /// that lost a race no condition decided, see
    /// [`ProblemTexts::conflict`]). Used in the [`check`](Self::check)
    /// example.
    #[must_use]
    pub fn conflict(&self, conflict: &Conflict) -> Response<String> {
        self.texts.conflict(conflict)
    }

    /// The 503 for a store that failed before anything was written (the
    /// state could not be read, or the write is
    /// [`WriteError::NotWritten`](crate::WriteError::NotWritten)). The
    /// [`ModifyError`](crate::ModifyError) example answers it, with
    /// [`unconfirmed`](Self::unconfirmed) and [`busy`](Self::busy).
    #[must_use]
    pub fn unavailable(&self) -> Response<String> {
        self.texts.unavailable()
    }

    /// The 503 for a write whose outcome is unknown
    /// ([`WriteError::Store`](crate::WriteError::Store) of a write that may
    /// have reached the store): it tells the client to look before it sends
    /// the change again.
    #[must_use]
    pub fn unconfirmed(&self) -> Response<String> {
        self.texts.unconfirmed()
    }

    /// The 409 for a change that named no version and lost the race to
    /// other writes every time
    /// ([`ModifyError::Busy`](crate::ModifyError::Busy)).
    #[must_use]
    pub fn busy(&self) -> Response<String> {
        self.texts.busy()
    }
}

#[cfg(test)]
mod tests {
    use http::header::{IF_MATCH, IF_NONE_MATCH};

    use super::*;
    use crate::etag::ETag;
    use crate::response::ProblemText;

    impl Decision {
        fn unwrap(self) -> Precondition {
            match self {
                Decision::Proceed(p) => p,
                Decision::Respond(r) => panic!("expected to proceed, got {}", r.status()),
            }
        }

        fn unwrap_err(self) -> Response<String> {
            match self {
                Decision::Proceed(p) => panic!("expected a response, got {p:?}"),
                Decision::Respond(r) => r,
            }
        }
    }

    fn headers(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn proceeds_with_the_expected_state_or_answers() {
        let gate = Gate::new();
        let cur = ETag::from_version(2);
        let now = SystemTime::now();
        let ok = gate.check(
            &Method::PUT,
            &headers(&[(IF_MATCH, "\"v2\"")]),
            Some(&cur),
            now,
        );
        assert_eq!(ok.unwrap().expected(), &Expected::ETag(cur.clone()));
        let stale = gate.check(
            &Method::PUT,
            &headers(&[(IF_MATCH, "\"v1\"")]),
            Some(&cur),
            now,
        );
        assert_eq!(stale.unwrap_err().status(), 412);
        let none = gate.check(&Method::PUT, &HeaderMap::new(), Some(&cur), now);
        assert_eq!(none.unwrap_err().status(), 428);
        let nm = gate.check(
            &Method::GET,
            &headers(&[(IF_NONE_MATCH, "\"v2\"")]),
            Some(&cur),
            now,
        );
        assert_eq!(nm.unwrap_err().status(), 304);
    }

    /// The problem body's `title`, `detail` and `etag` member of a 412.
    fn problem_of(decision: Decision) -> (String, String, String) {
        let res = decision.unwrap_err();
        assert_eq!(res.status(), 412);
        assert_eq!(res.headers()[http::header::ETAG], "\"v2\"");
        let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        (text("title"), text("detail"), text("etag"))
    }

    #[test]
    fn an_if_match_that_could_never_match_is_not_called_a_change() {
        let cur = ETag::from_version(2);
        let now = SystemTime::now();
        let put = |gate: &Gate, value: &'static str| {
            gate.check(
                &Method::PUT,
                &headers(&[(IF_MATCH, value)]),
                Some(&cur),
                now,
            )
        };
        let gate = Gate::new();
        let changed = ProblemTexts::default()
            .get(ProblemKind::Changed)
            .title
            .clone();
        let unmatchable = ProblemTexts::default()
            .get(ProblemKind::Unmatchable)
            .title
            .clone();
        // The current version, but weak or without its quotes (a proxy that
        // weakens tags, a client that strips quotes): nothing changed.
        for value in ["W/\"v2\"", "v2", "W/\"v1\", W/\"v2\"", ",", "\"v2"] {
            let (title, detail, etag) = problem_of(put(&gate, value));
            assert_eq!(title, unmatchable, "{value}");
            assert!(
                detail.contains("send If-Match: \"v2\", with the double quotes and without W/"),
                "{detail}"
            );
            assert!(!detail.contains("changed after you loaded it"), "{detail}");
            assert_eq!(etag, "\"v2\"");
        }
        // A strong tag that is not current is a change, even beside a weak one.
        for value in ["\"v1\"", "W/\"v2\", \"v1\""] {
            let (title, _, _) = problem_of(put(&gate, value));
            assert_eq!(title, changed, "{value}");
        }
        // A stale tag on a GET is a change too, but the GET changed nothing
        // and is not told that its change was not applied.
        let get = |value| {
            gate.check(
                &Method::GET,
                &headers(&[(IF_MATCH, value)]),
                Some(&cur),
                now,
            )
        };
        let (title, detail, _) = problem_of(get("\"v1\""));
        assert_eq!(title, changed);
        assert!(!detail.contains("not applied"), "{detail}");
        assert!(detail.contains("If-Match: \"v2\""), "{detail}");
        let (_, detail, _) = problem_of(put(&gate, "\"v1\""));
        assert!(detail.contains("not applied"), "{detail}");
        // The same when confirming retried PUTs, and on a GET.
        let confirming = Gate::new().confirm_retried_puts(true);
        assert_eq!(problem_of(put(&confirming, "W/\"v2\"")).0, unmatchable);
        let get = gate.check(
            &Method::GET,
            &headers(&[(IF_MATCH, "W/\"v2\"")]),
            Some(&cur),
            now,
        );
        assert_eq!(problem_of(get).0, unmatchable);
        // A service's own text replaces it.
        let custom = Gate::new().texts(ProblemTexts::default().set(
            ProblemKind::Unmatchable,
            ProblemText::new("about:blank", "Send the ETag as given", "Use {etag}."),
        ));
        let (title, detail, _) = problem_of(put(&custom, "W/\"v2\""));
        assert_eq!(
            (title.as_str(), detail.as_str()),
            ("Send the ETag as given", "Use \"v2\".")
        );
        // A target without a strong tag (weak, or none at all) fails every
        // tagged If-Match, whatever the client sent: not a change, and no
        // advice to send a tag, which could never match either.
        let untagged = [
            crate::Validators::new(ETag::from_version(2).into_weak()),
            crate::Validators::modified_at(SystemTime::UNIX_EPOCH),
        ];
        let gates = [Gate::new(), Gate::new().confirm_retried_puts(true)];
        for (cur, gate) in untagged
            .iter()
            .flat_map(|c| gates.iter().map(move |g| (c, g)))
        {
            for value in ["W/\"v2\"", "\"v2\"", "\"v1\""] {
                // With `confirm_retried_puts` too: no tag of a target
                // without a strong one can be a retry.
                let res = gate
                    .check(&Method::PUT, &headers(&[(IF_MATCH, value)]), Some(cur), now)
                    .unwrap_err();
                let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
                assert_eq!(body["title"], unmatchable.as_ref(), "{cur:?} {value}");
                let detail = body["detail"].as_str().unwrap();
                assert!(
                    detail.contains("cannot be changed under If-Match"),
                    "{detail}"
                );
                // When: on what the client sees (this answer again), not on
                // who weakened the tag, which it cannot tell (the service,
                // or a compressing proxy).
                assert!(
                    detail.contains("without W/ gets this same answer"),
                    "{detail}"
                );
                assert!(!detail.contains("If-Match: W/"), "{detail}");
                assert!(!detail.contains("changed after you loaded it"), "{detail}");
                // The current tag is still reported, weak as it is.
                assert_eq!(
                    res.headers().get(http::header::ETAG).is_some(),
                    cur.etag_ref().is_some()
                );
            }
        }
        // A changed target whose tag is weak is a change, but the text does
        // not advise the weak tag either.
        let weak = crate::Validators::new(ETag::from_version(2).into_weak());
        let res = gate.conflict(&crate::Conflict::moved(&weak));
        let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
        assert_eq!(body["title"], changed.as_ref());
        assert_eq!(body["etag"], "W/\"v2\"");
        assert!(!body["detail"].as_str().unwrap().contains("W/"), "{body}");
        // A strong tag with bytes that are not UTF-8 cannot be shown in
        // JSON: the usual texts, without it.
        let unnamed = crate::Validators::new(ETag::parse(b"\"caf\xe9\"").unwrap());
        let res = gate
            .check(
                &Method::PUT,
                &headers(&[(IF_MATCH, "W/\"v2\"")]),
                Some(&unnamed),
                now,
            )
            .unwrap_err();
        let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
        assert_eq!(body["title"], changed.as_ref());
        let detail = body["detail"].as_str().unwrap();
        assert!(!detail.contains("the ETag you were given"), "{detail}");
        assert!(!detail.contains("caf"), "{detail}");
    }

    #[test]
    fn a_patch_or_delete_of_a_missing_target_is_404_and_never_a_write() {
        let now = SystemTime::now();
        let none: Option<&ETag> = None;
        let conditions: [&[(http::HeaderName, &'static str)]; 5] = [
            &[],
            &[(IF_MATCH, "\"v1\"")],
            &[(IF_MATCH, "*")],
            &[(IF_MATCH, "v1")],
            &[(IF_NONE_MATCH, "*")],
        ];
        let with_post = Policy::strict().require_precondition_for([
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::POST,
        ]);
        let gates = [
            Gate::new(),
            Gate::new().reject_malformed(true),
            Gate::new().policy(Policy::opt_in()),
            Gate::new().confirm_retried_puts(true),
            Gate::new().policy(with_post.clone()),
        ];
        for gate in &gates {
            for method in [Method::PATCH, Method::DELETE] {
                for condition in conditions {
                    let res = gate
                        .check(&method, &headers(condition), none, now)
                        .unwrap_err();
                    assert_eq!(res.status(), 404, "{method} {condition:?}");
                    let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
                    assert_eq!(body["status"], 404);
                    assert!(!res.headers().contains_key(http::header::ETAG));
                }
            }
        }
        // A POST is the resource's own (RFC 9110 §9.3.3): its handler
        // decides, even where POST requires a precondition.
        let post = Gate::new()
            .policy(with_post)
            .check(&Method::POST, &HeaderMap::new(), none, now);
        assert_eq!(post.unwrap().expected(), &Expected::Absent);
        // A GET is the handler's own 404; a PUT may create.
        let gate = Gate::new();
        let get = gate.check(&Method::GET, &HeaderMap::new(), none, now);
        assert_eq!(get.unwrap().expected(), &Expected::Absent);
        let create = gate.check(&Method::PUT, &headers(&[(IF_NONE_MATCH, "*")]), none, now);
        assert_eq!(create.unwrap().expected(), &Expected::Absent);
        // The text is the service's to replace.
        let texts = ProblemTexts::default().set(
            ProblemKind::NotFound,
            ProblemText::new("about:blank", "No such note", "Check the address."),
        );
        let res = Gate::new()
            .texts(texts)
            .check(&Method::DELETE, &HeaderMap::new(), none, now)
            .unwrap_err();
        assert!(res.body().contains("No such note"));
    }

    #[test]
    fn a_configured_304_repeats_the_cache_fields_but_not_a_frozen_date() {
        let cur = ETag::from_version(2);
        let mut ok = HeaderMap::new();
        ok.insert(http::header::CACHE_CONTROL, "max-age=60".parse().unwrap());
        ok.insert(http::header::VARY, "accept".parse().unwrap());
        ok.insert(
            http::header::DATE,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        ok.insert(http::header::AGE, "3600".parse().unwrap());
        let gate = Gate::new().not_modified_headers(ok);
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, cur.to_header_value());
        let res = gate
            .check(&Method::GET, &h, Some(&cur), SystemTime::now())
            .unwrap_err();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(res.headers()[http::header::CACHE_CONTROL], "max-age=60");
        assert_eq!(res.headers()[http::header::VARY], "accept");
        assert!(!res.headers().contains_key(http::header::DATE));
        assert!(!res.headers().contains_key(http::header::AGE));

        // Validators configured once would describe another target.
        let mut ok = HeaderMap::new();
        ok.insert(http::header::ETAG, "\"some-other-item\"".parse().unwrap());
        ok.insert(
            http::header::LAST_MODIFIED,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        let gate = Gate::new().not_modified_headers(ok);
        let dated = crate::Validators::modified_at(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000),
        );
        let mut h = HeaderMap::new();
        h.insert(
            http::header::IF_MODIFIED_SINCE,
            "Sun, 09 Sep 2001 01:46:40 GMT".parse().unwrap(),
        );
        let res = gate
            .check(&Method::GET, &h, Some(&dated), SystemTime::now())
            .unwrap_err();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert!(!res.headers().contains_key(http::header::ETAG));
        assert_eq!(
            res.headers()[http::header::LAST_MODIFIED],
            "Sun, 09 Sep 2001 01:46:40 GMT"
        );
    }

    #[test]
    fn malformed_fields_get_400_only_when_asked() {
        let cur = ETag::from_version(2);
        let now = SystemTime::now();
        let h = headers(&[(IF_MATCH, "v2")]);
        let default = Gate::new().check(&Method::PUT, &h, Some(&cur), now);
        assert_eq!(default.unwrap_err().status(), 412);
        let strict = Gate::new()
            .reject_malformed(true)
            .check(&Method::PUT, &h, Some(&cur), now);
        assert_eq!(strict.unwrap_err().status(), 400);
    }

    #[test]
    fn a_possibly_retried_put_is_let_through_bound_to_its_stale_tag() {
        let cur = ETag::from_version(2);
        let now = SystemTime::now();
        let gate = Gate::new().confirm_retried_puts(true);
        let pre = gate
            .check(
                &Method::PUT,
                &headers(&[(IF_MATCH, "\"v1\"")]),
                Some(&cur),
                now,
            )
            .unwrap();
        assert_eq!(pre.expected(), &Expected::ETag(ETag::from_version(1)));
        // The write it allows cannot succeed against the current state,
        // and the failure found is handed on with the current tag.
        assert!(!pre.expected().admits(Some(&cur)));
        assert_eq!(pre.failed().and_then(Conflict::current_etag), Some(&cur));
        // A request whose precondition held carries no failure.
        let held = gate
            .check(
                &Method::PUT,
                &headers(&[(IF_MATCH, "\"v2\"")]),
                Some(&cur),
                now,
            )
            .unwrap();
        assert_eq!(held.failed(), None);
        // Not for lists, weak tags, other methods or absent targets.
        for (method, value, current) in [
            (Method::PUT, "\"v1\", \"v0\"", Some(&cur)),
            (Method::PUT, "W/\"v1\"", Some(&cur)),
            (Method::PUT, "*", None),
            (Method::PUT, "\"v1\"", None),
            (Method::PATCH, "\"v1\"", Some(&cur)),
            (Method::DELETE, "\"v1\"", Some(&cur)),
        ] {
            let res = gate.check(&method, &headers(&[(IF_MATCH, value)]), current, now);
            assert_eq!(res.unwrap_err().status(), 412, "{method} {value}");
        }
        // Only a failed If-Match can be a retry. RFC 9110 §13.2.2: a
        // current If-Match passes step 1, so a matching If-None-Match
        // (weak comparison, or `*`) fails step 3. That 412 is "already
        // exists", even though If-Match holds the one strong tag a retry
        // would carry.
        let exists = ProblemTexts::default()
            .get(ProblemKind::Exists)
            .title
            .clone();
        for none_match in ["\"v2\"", "W/\"v2\"", "*", "\"v0\", \"v2\""] {
            let conditions = [(IF_MATCH, "\"v2\""), (IF_NONE_MATCH, none_match)];
            let decision = gate.check(&Method::PUT, &headers(&conditions), Some(&cur), now);
            let (title, _, _) = problem_of(decision);
            assert_eq!(title, exists, "{none_match}");
        }
        // A stale If-Match fails first (step 1), and If-None-Match is never
        // evaluated (§13.2.2): the 412 would be If-Match's, so the PUT is
        // let through like any possible retry, to compare and never write.
        for none_match in ["\"v2\"", "W/\"v2\"", "*"] {
            let conditions = [(IF_MATCH, "\"v1\""), (IF_NONE_MATCH, none_match)];
            let pre = gate
                .check(&Method::PUT, &headers(&conditions), Some(&cur), now)
                .unwrap();
            assert_eq!(pre.expected(), &Expected::ETag(ETag::from_version(1)));
            assert_eq!(pre.failed().and_then(Conflict::current_etag), Some(&cur));
        }
    }
}
