//! The precondition evaluator of [RFC 9110 §13.2](https://www.rfc-editor.org/rfc/rfc9110#section-13.2).

use std::time::SystemTime;

use http::{HeaderName, Method, StatusCode};

use crate::date;
use crate::etag::{self, ETag};
use crate::headers::{Field, RequestHeaders, trim_ows};
use crate::list::{Scan, scan};
use crate::versioned::Versioned;
use crate::write::Expected;

/// Whether writes must carry a precondition.
///
/// ```
/// use std::time::SystemTime;
/// use http::{HeaderMap, Method};
/// use ifmatch::{ETag, Expected, Mode, Outcome, Policy};
///
/// let current = ETag::from_version(1);
/// let blind_put = |mode| {
///     let policy = Policy::default().with_mode(mode);
///     policy.evaluate(&Method::PUT, &HeaderMap::new(), Some(&current), SystemTime::now())
/// };
/// // Strict, the default: a PUT without `If-Match` is refused with 428.
/// assert_eq!(Policy::default().mode(), Mode::Strict);
/// assert_eq!(blind_put(Mode::Strict).outcome(), &Outcome::PreconditionRequired);
/// // Opt-in: it goes ahead, and its write is unconditional.
/// assert_eq!(
///     blind_put(Mode::OptIn).outcome(),
///     &Outcome::Proceed { expected: Expected::Any, ignore_range: false }
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// A write (by default PUT, PATCH, DELETE) without `If-Match` — or, for
    /// a PUT that creates, `If-None-Match: *` — is refused with
    /// 428 Precondition Required ([RFC 6585 §3](https://www.rfc-editor.org/rfc/rfc6585#section-3)).
    ///
    /// The default: when several parties edit the same data, a client that
    /// forgets the header silently erases other people's changes, so
    /// locking cannot be left to each client's goodwill.
    #[default]
    Strict,
    /// Only the preconditions a request carries are checked; a write
    /// without one goes ahead unconditionally ("last write wins").
    OptIn,
}

/// How preconditions are enforced: the configuration of the evaluator.
///
/// ```
/// use http::Method;
/// use ifmatch::{Mode, Policy};
///
/// // The default: strict, PUT/PATCH/DELETE need If-Match.
/// let strict = Policy::default();
/// assert!(strict.requires_precondition(&Method::DELETE));
/// assert!(!strict.requires_precondition(&Method::POST));
///
/// // POST too, and accept If-Unmodified-Since in place of If-Match.
/// let custom = Policy::strict()
///     .require_precondition_for([Method::PUT, Method::PATCH, Method::DELETE, Method::POST])
///     .accept_if_unmodified_since(true);
/// assert!(custom.requires_precondition(&Method::POST));
///
/// let opt_in = Policy::opt_in();
/// assert_eq!(opt_in.mode(), Mode::OptIn);
/// assert!(!opt_in.requires_precondition(&Method::PUT));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    mode: Mode,
    required: Vec<Method>,
    accept_if_unmodified_since: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self::strict()
    }
}

/// Which precondition evaluated to false.
///
/// The three are different stories for the client: for a target that
/// exists,
/// [`ProblemTexts::precondition_failed`](crate::ProblemTexts::precondition_failed)
/// answers `IfNoneMatch` as "already exists" ([`ProblemKind::Exists`](crate::ProblemKind::Exists)),
/// the other two as "changed since you read it" ([`ProblemKind::Changed`](crate::ProblemKind::Changed)).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use http::{header, HeaderMap, HeaderName, HeaderValue, Method};
/// use ifmatch::{ETag, Failed, Outcome, Policy, Validators};
///
/// // Version 2, last modified on 9 September 2001.
/// let current = Validators::new(ETag::from_version(2))
///     .with_last_modified(UNIX_EPOCH + Duration::from_secs(1_000_000_000));
/// let failed = |name: HeaderName, value: &'static str| {
///     let mut headers = HeaderMap::new();
///     headers.insert(name, HeaderValue::from_static(value));
///     let eval = Policy::opt_in().evaluate(&Method::PUT, &headers, Some(&current), SystemTime::now());
///     match eval.into_outcome() {
///         Outcome::PreconditionFailed(failed) => Some(failed),
///         _ => None,
///     }
/// };
/// assert_eq!(failed(header::IF_MATCH, "\"v1\""), Some(Failed::IfMatch));
/// let before = "Sat, 01 Jan 2000 00:00:00 GMT";
/// assert_eq!(failed(header::IF_UNMODIFIED_SINCE, before), Some(Failed::IfUnmodifiedSince));
/// // A create (`If-None-Match: *`) of a target that exists.
/// assert_eq!(failed(header::IF_NONE_MATCH, "*"), Some(Failed::IfNoneMatch));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failed {
    /// `If-Match` did not match (or was malformed, or the target is absent).
    IfMatch,
    /// The target was modified after the `If-Unmodified-Since` date.
    IfUnmodifiedSince,
    /// `If-None-Match` matched on a method other than GET or HEAD.
    IfNoneMatch,
}

/// What to do with a request, decided by [`Policy::evaluate`].
///
/// A service that builds its own responses answers
/// [`status`](Self::status) when there is one, and otherwise performs the
/// method, a write under the `expected` state of `Proceed`
/// ([`ProblemTexts::respond`](crate::ProblemTexts::respond) builds the
/// responses with problem bodies; [`Gate::check`](crate::Gate::check) does
/// both steps).
///
/// ```
/// use std::time::SystemTime;
/// use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
/// use ifmatch::{ETag, Policy};
///
/// let current = ETag::from_version(5);
/// let status = |method: Method, name: HeaderName, value: &'static str| {
///     let mut headers = HeaderMap::new();
///     headers.insert(name, HeaderValue::from_static(value));
///     let eval = Policy::default().evaluate(&method, &headers, Some(&current), SystemTime::now());
///     eval.outcome().status()
/// };
/// // The client's copy is current: 304 for a GET; a PUT proceeds (`None`).
/// assert_eq!(status(Method::GET, header::IF_NONE_MATCH, "\"v5\""), Some(StatusCode::NOT_MODIFIED));
/// assert_eq!(status(Method::PUT, header::IF_MATCH, "\"v5\""), None);
/// // A create of a target that exists: 412, nothing is overwritten.
/// assert_eq!(status(Method::PUT, header::IF_NONE_MATCH, "*"), Some(StatusCode::PRECONDITION_FAILED));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "ignoring an Outcome performs the method unchecked"]
pub enum Outcome {
    /// Perform the method.
    Proceed {
        /// The state a write must still find: pass it to the store's
        /// compare-and-swap so the check and the write are one atomic step.
        expected: Expected,
        /// `If-Range` evaluated to false: ignore the `Range` header and send
        /// the whole representation with 200 ([RFC 9110 §13.1.5](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.5)).
        ignore_range: bool,
    },
    /// Answer 304 Not Modified (GET and HEAD only).
    NotModified,
    /// Answer 412 Precondition Failed.
    PreconditionFailed(Failed),
    /// Answer 428 Precondition Required.
    PreconditionRequired,
}

impl Outcome {
    /// The status to answer with instead of performing the method, or `None`
    /// to proceed.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Proceed { .. } => None,
            Self::NotModified => Some(StatusCode::NOT_MODIFIED),
            Self::PreconditionFailed(_) => Some(StatusCode::PRECONDITION_FAILED),
            Self::PreconditionRequired => Some(StatusCode::PRECONDITION_REQUIRED),
        }
    }
}

/// CONNECT, OPTIONS and TRACE: methods whose preconditions are never
/// evaluated (§13.2.1).
fn not_evaluated(method: &Method) -> bool {
    matches!(*method, Method::CONNECT | Method::OPTIONS | Method::TRACE)
}

/// The result of [`Policy::evaluate`]: an [`Outcome`], plus which
/// conditional fields were malformed.
///
/// The outcome already treats a malformed field safely; a service that
/// answers 400 instead looks at [`malformed`](Self::malformed) first, as
/// [`Gate::reject_malformed`](crate::Gate::reject_malformed) does:
///
/// ```
/// use std::time::SystemTime;
/// use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
/// use ifmatch::{ETag, Evaluation, Policy};
///
/// fn status(eval: &Evaluation) -> Option<StatusCode> {
///     match eval.malformed() {
///         Some(_) => Some(StatusCode::BAD_REQUEST),
///         None => eval.outcome().status(),
///     }
/// }
///
/// let current = ETag::from_version(1);
/// let put = |if_match: &'static str| {
///     let mut headers = HeaderMap::new();
///     headers.insert(header::IF_MATCH, HeaderValue::from_static(if_match));
///     Policy::default().evaluate(&Method::PUT, &headers, Some(&current), SystemTime::now())
/// };
/// assert_eq!(status(&put("\"v1\"")), None);
/// assert_eq!(status(&put("\"v0\"")), Some(StatusCode::PRECONDITION_FAILED));
/// // The quotes lost: 412 by the outcome, 400 here.
/// assert_eq!(put("v1").outcome().status(), Some(StatusCode::PRECONDITION_FAILED));
/// assert_eq!(status(&put("v1")), Some(StatusCode::BAD_REQUEST));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "ignoring an Evaluation performs the method unchecked"]
pub struct Evaluation {
    outcome: Outcome,
    malformed_if_match: bool,
    malformed_if_none_match: bool,
}

impl Evaluation {
    fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            malformed_if_match: false,
            malformed_if_none_match: false,
        }
    }

    /// What to do.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// What to do, by value.
    pub fn into_outcome(self) -> Outcome {
        self.outcome
    }

    /// The first conditional field whose value does not follow its grammar
    /// (`If-Match`, then `If-None-Match`), so that a service may answer 400
    /// Bad Request instead of the outcome.
    ///
    /// The outcome already treats such a field safely: a malformed
    /// `If-Match` never matches (412), a malformed `If-None-Match` is
    /// ignored (and so, since the field is present, is `If-Modified-Since`).
    /// Invalid dates are not reported: RFC 9110 says to ignore them. Nor
    /// is anything reported where no condition is evaluated: for CONNECT,
    /// OPTIONS and TRACE, and for a method other than PUT on a target that
    /// does not exist (its 404 comes first, §13.2.1).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{header::IF_MATCH, HeaderMap, Method};
    /// use ifmatch::{ETag, Policy};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(IF_MATCH, "v1".parse()?); // quotes missing
    /// let eval = Policy::default().evaluate(
    ///     &Method::PUT, &headers, Some(&ETag::from_version(1)), SystemTime::now());
    /// assert_eq!(eval.malformed(), Some(IF_MATCH));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn malformed(&self) -> Option<HeaderName> {
        if self.malformed_if_match {
            Some(http::header::IF_MATCH)
        } else if self.malformed_if_none_match {
            Some(http::header::IF_NONE_MATCH)
        } else {
            None
        }
    }
}

impl Policy {
    /// Strict mode (the default): PUT, PATCH and DELETE need a precondition;
    /// `If-Unmodified-Since` does not count as one.
    #[must_use]
    pub fn strict() -> Self {
        Self {
            mode: Mode::Strict,
            required: vec![Method::PUT, Method::PATCH, Method::DELETE],
            accept_if_unmodified_since: false,
        }
    }

    /// Opt-in mode: check only the preconditions a request carries.
    #[must_use]
    pub fn opt_in() -> Self {
        Self {
            mode: Mode::OptIn,
            ..Self::strict()
        }
    }

    /// Sets the mode.
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the methods that need a precondition in strict mode (default:
    /// PUT, PATCH, DELETE). POST is not among them by default: a POST
    /// usually creates a new resource, so there is no version to check.
    /// Opt-in mode requires none, whatever this says.
    ///
    /// The requirement is for a target that exists (and for a PUT, which
    /// may create one): a required POST to a target reported absent
    /// proceeds unevaluated with [`Expected::Absent`], since only a 2xx or
    /// 412 answer leaves preconditions to evaluate ([RFC 9110
    /// §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1);
    /// [`Gate::check`](crate::Gate::check) says what the handler does
    /// then). A POST to a collection passes the collection as present.
    #[must_use]
    pub fn require_precondition_for(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.required = methods.into_iter().collect();
        self
    }

    /// Whether an `If-Unmodified-Since` that is actually evaluated (a valid
    /// date, and a target with a modification time) satisfies the strict
    /// requirement in place of `If-Match`. Off by default: HTTP dates have a
    /// resolution of one second, so two writes within the same second are
    /// not told apart, which makes them a weak lock.
    ///
    /// The write that proceeds is bound to the target's current strong
    /// `ETag` ([`Expected::ETag`]), so a change between the check and the
    /// write is still caught. A target with no strong `ETag` can only be
    /// bound to its existence ([`Expected::Exists`]): there, a change
    /// between the check and the write is not caught, so give such targets
    /// a strong tag before accepting dates.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// use http::{header, HeaderMap, Method};
    /// use ifmatch::{ETag, Expected, Outcome, Policy, Validators};
    ///
    /// let modified = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    /// let current = Validators::new(ETag::from_version(4)).with_last_modified(modified);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::IF_UNMODIFIED_SINCE, "Sun, 09 Sep 2001 01:46:40 GMT".parse()?);
    /// let put = |policy: Policy| {
    ///     policy.evaluate(&Method::PUT, &headers, Some(&current), SystemTime::now()).into_outcome()
    /// };
    /// // By default a date does not count: 428.
    /// assert_eq!(put(Policy::strict()), Outcome::PreconditionRequired);
    /// // Accepted, it lets the PUT through, bound to the current tag.
    /// assert_eq!(
    ///     put(Policy::strict().accept_if_unmodified_since(true)),
    ///     Outcome::Proceed { expected: Expected::ETag(ETag::from_version(4)), ignore_range: false }
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn accept_if_unmodified_since(mut self, accept: bool) -> Self {
        self.accept_if_unmodified_since = accept;
        self
    }

    /// The mode.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether, under this policy, a request with `method` and no
    /// precondition is refused with 428.
    ///
    /// Never for CONNECT, OPTIONS and TRACE, even when the policy lists
    /// them: preconditions are not evaluated for them ([RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1)),
    /// so [`evaluate`](Self::evaluate) never answers them 428.
    #[must_use]
    pub fn requires_precondition(&self, method: &Method) -> bool {
        self.mode == Mode::Strict && !not_evaluated(method) && self.required.contains(method)
    }

    /// Evaluates the request's preconditions against the current state of
    /// the target, exactly per [RFC 9110 §13.2.2](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.2):
    ///
    /// 1. `If-Match` (strong comparison; `*` is true iff the target exists);
    ///    false → 412.
    /// 2. Otherwise `If-Unmodified-Since` (if the target has a modification
    ///    time and the date is valid); false → 412.
    /// 3. `If-None-Match` (weak comparison; `*` is false iff the target
    ///    exists); false → 304 for GET and HEAD, 412 otherwise.
    /// 4. Otherwise, for GET and HEAD, `If-Modified-Since`; false → 304.
    /// 5. For a GET with `Range`, `If-Range`; false → proceed, ignoring
    ///    `Range`.
    ///
    /// `current` is the target's current state: `None` when it does not
    /// exist (a bare `None` needs its type named, e.g. `None::<&ETag>`).
    /// `now` is the time of the request (the `Date` the response will
    /// carry): a last-modified time after it is compared as `now`, the value
    /// a server sends in its place (§8.8.2.1), and it decides whether
    /// `Last-Modified` is a strong validator for `If-Range` (§8.8.2.2). Pass
    /// `SystemTime::now()`, or a fixed time in tests. It is read only when
    /// the request has `If-Unmodified-Since`, `If-Modified-Since` or
    /// `If-Range`.
    ///
    /// Preconditions are ignored, and the outcome is to proceed:
    /// - for CONNECT, OPTIONS and TRACE (§13.2.1);
    /// - when the target does not exist and the method is not PUT: the
    ///   response without preconditions would be a 404, which takes
    ///   precedence over them (§13.2.1). The handler gets
    ///   [`Expected::Absent`] and must answer that 404 itself, not write: a
    ///   store's write under `Absent` would create the target.
    ///   ([`Gate::check`](crate::Gate::check) answers the 404 of a PATCH
    ///   or DELETE itself.)
    ///
    /// In [strict mode](Mode::Strict), a method that requires a precondition
    /// and carries none gets 428 before anything is evaluated, unless one
    /// of the two rules above applies first (a DELETE of a target that does
    /// not exist proceeds with [`Expected::Absent`], for its 404).
    ///
    /// Nothing is allocated, whatever the headers hold; the cost is linear
    /// in their length. The current tag is read once
    /// ([`Versioned::etag`]).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{header, HeaderMap, Method};
    /// use ifmatch::{ETag, Expected, Failed, Outcome, Policy};
    ///
    /// let current = ETag::from_version(2);
    /// let policy = Policy::default();
    /// let now = SystemTime::now();
    ///
    /// let mut stale = HeaderMap::new();
    /// stale.insert(header::IF_MATCH, "\"v1\"".parse()?);
    /// let eval = policy.evaluate(&Method::PUT, &stale, Some(&current), now);
    /// assert_eq!(eval.outcome(), &Outcome::PreconditionFailed(Failed::IfMatch));
    ///
    /// let mut fresh = HeaderMap::new();
    /// fresh.insert(header::IF_MATCH, "\"v2\"".parse()?);
    /// let eval = policy.evaluate(&Method::PUT, &fresh, Some(&current), now);
    /// assert_eq!(
    ///     eval.outcome(),
    ///     &Outcome::Proceed { expected: Expected::ETag(current.clone()), ignore_range: false }
    /// );
    ///
    /// let eval = policy.evaluate(&Method::PUT, &HeaderMap::new(), Some(&current), now);
    /// assert_eq!(eval.outcome(), &Outcome::PreconditionRequired);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evaluate<H, V>(
        &self,
        method: &Method,
        headers: &H,
        current: Option<&V>,
        now: SystemTime,
    ) -> Evaluation
    where
        H: RequestHeaders + ?Sized,
        V: Versioned + ?Sized,
    {
        // RFC 9110 §13.2.1: "a server MUST ignore the conditional request
        // header fields defined by this specification when received with a
        // request method that does not involve the selection or
        // modification of a selected representation, such as CONNECT,
        // OPTIONS, or TRACE."
        if not_evaluated(method) {
            return Evaluation::new(proceed(Expected::Any, false));
        }
        // RFC 9110 §13.2.1: "A server MUST ignore all received preconditions
        // if its response to the same request without those conditions,
        // prior to processing the request content, would have been a status
        // code other than a 2xx (Successful) or 412 (Precondition Failed)."
        // Only PUT can create its target; anything else on an absent target
        // is a 404.
        let is_put = *method == Method::PUT;
        if current.is_none() && !is_put {
            return Evaluation::new(proceed(Expected::Absent, false));
        }
        let is_get_or_head = matches!(*method, Method::GET | Method::HEAD);
        let etag = current.and_then(|c| c.etag());
        // §8.8.2.1: a modification time in the future by this server's clock
        // is sent as the time of the response instead (`insert_validators`
        // does), so it is compared as that too: a client that echoes the
        // Last-Modified it was sent gets the answer that date deserves.
        let last_modified = current
            .and_then(|c| c.last_modified())
            .map(|t| date::unix_secs(t).min(date::unix_secs(now)));
        let mut eval = Evaluation::new(Outcome::NotModified);

        // RFC 9110 §13.1.1: "An origin server MUST use the strong
        // comparison function when comparing entity tags for If-Match."
        let strong_tag = etag.as_ref().filter(|e| e.is_strong()).map(ETag::tag);
        let if_match = scan(headers.field_lines(Field::IfMatch), |weak, opaque| {
            !weak && strong_tag.is_some_and(|t| same_opaque(t, opaque))
        });

        // Stops with `outcome` before If-None-Match was evaluated, still
        // reporting it if malformed (a service answering 400 wants to know).
        let stop = |mut eval: Evaluation, outcome: Outcome| {
            eval.outcome = outcome;
            eval.malformed_if_none_match |=
                scan(headers.field_lines(Field::IfNoneMatch), |_, _| false) == Scan::Malformed;
            eval
        };

        // In strict mode, refuse a write that carries no precondition.
        if if_match == Scan::Absent && self.requires_precondition(method) {
            let shape = scan(headers.field_lines(Field::IfNoneMatch), |_, _| false);
            let creates = is_put && shape == Scan::Any;
            let dated = self.accept_if_unmodified_since
                && last_modified.is_some()
                && date::single(headers.field_lines(Field::IfUnmodifiedSince)).is_some();
            if !creates && !dated {
                eval.outcome = Outcome::PreconditionRequired;
                eval.malformed_if_none_match = shape == Scan::Malformed;
                return eval;
            }
        }

        // Whether a condition guarded the request, and whether that was
        // `If-Match: *` alone (which asks only that the target exists).
        let mut guarded = false;
        let mut star_only = false;

        // Step 1: If-Match.
        match if_match {
            Scan::Absent => {
                // Step 2: If-Unmodified-Since, only without If-Match.
                // §13.1.4: ignored when the field is not a valid HTTP-date
                // or the resource has no modification date.
                // The field is read only where it can matter.
                let since = || date::single(headers.field_lines(Field::IfUnmodifiedSince));
                match last_modified {
                    Some(modified) => {
                        if let Some(since) = since() {
                            // "If the selected representation's last
                            // modification date is earlier than or equal to
                            // the date provided in the field value, the
                            // condition is true."
                            if modified > since {
                                return stop(
                                    eval,
                                    Outcome::PreconditionFailed(Failed::IfUnmodifiedSince),
                                );
                            }
                            guarded = true;
                        }
                    }
                    // Ignored because there is no target (a PUT that
                    // creates): that holds only while there is none. A
                    // target created in the meantime has a modification
                    // date the client's date was sent to check, so the
                    // write must still find the target absent.
                    None if current.is_none() => guarded = since().is_some(),
                    // A target without a modification date.
                    None => {}
                }
            }
            // §13.1.1: "If the field value is "*", the condition is true if
            // the origin server has a current representation for the target
            // resource."
            Scan::Any if current.is_some() => {
                guarded = true;
                star_only = true;
            }
            Scan::Tags { matched: true } => guarded = true,
            Scan::Malformed => {
                // Fail closed: a list we cannot read never matches.
                eval.malformed_if_match = true;
                return stop(eval, Outcome::PreconditionFailed(Failed::IfMatch));
            }
            Scan::Any | Scan::Tags { matched: false } => {
                return stop(eval, Outcome::PreconditionFailed(Failed::IfMatch));
            }
        }

        // Step 3: If-None-Match.
        // §13.1.2: "A recipient MUST use the weak comparison function
        // when comparing entity tags for If-None-Match."
        let any_tag = etag.as_ref().map(ETag::tag);
        let if_none_match = scan(headers.field_lines(Field::IfNoneMatch), |_, opaque| {
            any_tag.is_some_and(|t| same_opaque(t, opaque))
        });
        let none_matched = match if_none_match {
            Scan::Absent => {
                // Step 4: If-Modified-Since, GET and HEAD only, and only
                // without If-None-Match (§13.1.3).
                if let Some(modified) = last_modified.filter(|_| is_get_or_head) {
                    if let Some(since) = date::single(headers.field_lines(Field::IfModifiedSince)) {
                        // "If the selected representation's last
                        // modification date is earlier or equal to the date
                        // provided in the field value, the condition is
                        // false."
                        if modified <= since {
                            return eval; // NotModified
                        }
                    }
                }
                false
            }
            // §13.1.2: "If the field value is "*", the condition is false if
            // the origin server has a current representation for the target
            // resource."
            Scan::Any => {
                guarded = true;
                star_only = false;
                current.is_some()
            }
            Scan::Tags { matched } => {
                guarded = true;
                star_only = false;
                matched
            }
            Scan::Malformed => {
                // Reported, then ignored; If-Modified-Since stays ignored
                // because the field is present (§13.1.3).
                eval.malformed_if_none_match = true;
                false
            }
        };
        if none_matched {
            eval.outcome = if is_get_or_head {
                Outcome::NotModified
            } else {
                Outcome::PreconditionFailed(Failed::IfNoneMatch)
            };
            return eval;
        }

        // Step 5: If-Range, for a GET with Range only (§13.1.5, §14.2).
        let ignore_range = *method == Method::GET
            && headers.field_lines(Field::Range).next().is_some()
            && !if_range_holds(
                headers.field_lines(Field::IfRange),
                etag.as_ref(),
                last_modified,
                now,
            );

        let expected = match (guarded, star_only, current.is_some(), etag) {
            (false, _, _, _) => Expected::Any,
            (true, true, _, _) => Expected::Exists,
            (true, false, false, _) => Expected::Absent,
            // A weak current tag can never satisfy the strong comparison a
            // compare-and-swap makes; existence is all that can be held.
            (true, false, true, Some(tag)) if tag.is_strong() => Expected::ETag(tag),
            (true, false, true, _) => Expected::Exists,
        };
        eval.outcome = proceed(expected, ignore_range);
        eval
    }
}

/// Whether [`Policy::evaluate`] reads its `now` for these headers: only
/// for the date conditions (a future Last-Modified is compared as `now`,
/// §8.8.2.1; an `If-Range` date must be a strong validator, §8.8.2.2). A
/// caller may skip reading the clock when this is false.
#[cfg(feature = "middleware")]
pub(crate) fn uses_time<H: RequestHeaders + ?Sized>(headers: &H) -> bool {
    [
        Field::IfUnmodifiedSince,
        Field::IfModifiedSince,
        Field::IfRange,
    ]
    .into_iter()
    .any(|field| headers.field_lines(field).next().is_some())
}

/// `a == b`, rejecting on length and first byte before calling `memcmp`:
/// most members of a list differ from the current tag at once.
#[inline]
fn same_opaque(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.first() == b.first() && a == b
}

fn proceed(expected: Expected, ignore_range: bool) -> Outcome {
    Outcome::Proceed {
        expected,
        ignore_range,
    }
}

/// Evaluates `If-Range` ([RFC 9110 §13.1.5](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.5)). An absent field holds; an
/// invalid or repeated one does not.
fn if_range_holds<'a>(
    mut lines: impl Iterator<Item = &'a [u8]>,
    etag: Option<&ETag>,
    last_modified: Option<i64>,
    now: SystemTime,
) -> bool {
    let Some(value) = lines.next() else {
        return true;
    };
    if lines.next().is_some() {
        return false;
    }
    let value = trim_ows(value);
    // §13.1.5: "A valid entity-tag can be distinguished from a valid
    // HTTP-date by examining the first three characters for a DQUOTE."
    if value.iter().take(3).any(|&b| b == b'"') {
        // "If the entity-tag validator provided exactly matches the ETag
        // field value for the selected representation using the strong
        // comparison function, the condition is true." A weak or invalid
        // tag never matches.
        return matches!(etag::validate(value), Ok(false))
            && etag.is_some_and(|e| e.is_strong() && e.as_bytes() == value);
    }
    let (Some(date), Some(modified)) = (date::parse(value), last_modified) else {
        return false;
    };
    // "If the HTTP-date validator provided is not a strong validator in the
    // sense defined by Section 8.8.2.2, the condition is false." For an
    // origin server that section asks that it "reliably knows that the
    // associated representation did not change twice during the second
    // covered by the presented validator", which the evaluator cannot
    // know. It takes a Last-Modified at least one second before the Date
    // of the response as strong (the policy in README), and relies on the
    // client's side of §8.8.2.2: a client sends a date only from a response
    // whose Date is at least a second after its Last-Modified, and a
    // response made a second or more after a write is not of a state that
    // a later write in that same second replaced. A client that sends the
    // date of a response made in its Last-Modified second is not caught
    // when a second write landed in that second.
    let strong = modified < date::unix_secs(now);
    strong && date == modified
}
