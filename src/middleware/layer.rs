//! The layers and their configuration.

use std::fmt;
use std::panic::RefUnwindSafe;
use std::sync::Arc;

use http::{HeaderMap, response};
use tower_layer::Layer;

use super::Resolve;
use super::service::{ETagService, PreconditionService};
use crate::gate::Gate;
use crate::precondition::Policy;
use crate::response::ProblemTexts;

/// Evaluates preconditions before the inner service runs; see
/// [the module docs](crate::middleware).
///
/// Put authentication and authorization **outside** this layer, wrapping
/// it so that they run first (with axum's `layer`/`route_layer`: added
/// after it; in a `ServiceBuilder`: before it). Its 304 and 412 come
/// before the handler runs, and they carry the target's current `ETag`: a
/// client that may not see the target would get them instead of the 401
/// or 403 a check inside the handler gives, and learn whether the target
/// exists and when it changes. [RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1): a server "MUST ignore all received
/// preconditions if its response to the same request without those
/// conditions, prior to processing the request content, would have been a
/// status code other than a 2xx (Successful) or 412 (Precondition
/// Failed)".
///
/// The inner service must be `Clone`: it is called only after the
/// resolver's lookup, so the layer keeps the service that was driven ready
/// for that call and leaves a clone behind, as tower-http's asynchronous
/// layers do. Services that are not `Clone` (`tower`'s `RateLimit`,
/// `BoxService`) go behind a `tower::buffer::BufferLayer`.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::Arc;
/// use http::request::Parts;
/// use ifmatch::middleware::PreconditionLayer;
/// use ifmatch::{MemoryStore, Policy};
///
/// let store: Arc<MemoryStore<String, String>> = Arc::new(MemoryStore::new());
/// let layer = PreconditionLayer::new(move |parts: &Parts| {
///     let current = store.validators(parts.uri.path());
///     async move { Ok::<_, Infallible>(current) }
/// })
/// .policy(Policy::strict())
/// .reject_malformed(true);
/// ```
#[derive(Clone)]
pub struct PreconditionLayer<R> {
    resolver: R,
    gate: Arc<Gate>,
}

/// Leaves the resolver out: it is usually a closure, which has no `Debug`.
impl<R> std::fmt::Debug for PreconditionLayer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreconditionLayer")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<R> PreconditionLayer<R> {
    /// A layer that asks `resolver` for the target's current state (see
    /// [`Resolve`](super::Resolve)), with the default [`Policy`] (strict)
    /// and [`ProblemTexts`].
    ///
    /// Around any tower service (here a `service_fn`; in axum, a route):
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::Arc;
    /// use http::{header, request::Parts, Request, Response, StatusCode};
    /// use ifmatch::middleware::{Precondition, PreconditionLayer};
    /// use ifmatch::{ETag, Expected, MemoryStore};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(MemoryStore::new());
    /// store.put("/doc".to_owned(), &Expected::Absent, "draft".to_owned())?;
    /// let layer = PreconditionLayer::new(move |parts: &Parts| {
    ///     let current = store.validators(parts.uri.path());
    ///     async move { Ok::<_, Infallible>(current) }
    /// });
    /// let svc = layer.layer(service_fn(|req: Request<String>| async move {
    ///     // Put there by the layer: the state the handler's write must still find.
    ///     let pre = req.extensions().get::<Precondition>();
    ///     assert_eq!(pre.map(Precondition::expected), Some(&Expected::ETag(ETag::from_version(1))));
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    ///
    /// // Without `If-Match` the layer answers 428, and the handler does not run.
    /// let blind = Request::put("/doc").body("final".to_owned())?;
    /// assert_eq!(svc.clone().oneshot(blind).await?.status(), StatusCode::PRECONDITION_REQUIRED);
    /// let checked = Request::put("/doc").header(header::IF_MATCH, "\"v1\"").body("final".to_owned())?;
    /// assert_eq!(svc.oneshot(checked).await?.status(), StatusCode::OK);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn new(resolver: R) -> Self
    where
        R: Resolve,
    {
        Self::with_gate(resolver, Gate::default())
    }

    /// A layer that enforces `gate` (policy, texts, and the handling of
    /// malformed fields and retried PUTs): one configuration for the layer
    /// and for handlers elsewhere that call [`Gate::check`] themselves.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{request::Parts, Request, Response, StatusCode};
    /// use ifmatch::middleware::PreconditionLayer;
    /// use ifmatch::{ETag, Gate, Policy};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let gate = Gate::new().policy(Policy::opt_in());
    /// let resolver = |_: &Parts| async { Ok::<_, Infallible>(Some(ETag::from_version(1))) };
    /// let handler = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    /// let svc = PreconditionLayer::with_gate(resolver, gate).layer(handler);
    /// // Opt-in: a PUT without a precondition reaches the handler.
    /// let blind = Request::put("/doc").body(String::new())?;
    /// assert_eq!(svc.oneshot(blind).await?.status(), StatusCode::OK);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_gate(resolver: R, gate: Gate) -> Self
    where
        R: Resolve,
    {
        Self {
            resolver,
            gate: Arc::new(gate),
        }
    }

    fn map_gate(mut self, f: impl FnOnce(Gate) -> Gate) -> Self {
        let gate = Arc::unwrap_or_clone(self.gate);
        self.gate = Arc::new(f(gate));
        self
    }

    /// Sets the policy: strict or opt-in, which methods need a precondition
    /// (as [`Gate::policy`], whose example shows the effect).
    #[must_use]
    pub fn policy(self, policy: Policy) -> Self {
        self.map_gate(|g| g.policy(policy))
    }

    /// Sets the texts of the 412, 428, 404, 400, 409 and 503 problem
    /// responses (as [`Gate::texts`], whose example shows the effect).
    #[must_use]
    pub fn texts(self, texts: ProblemTexts) -> Self {
        self.map_gate(|g| g.texts(texts))
    }

    /// Answer 400 Bad Request when `If-Match` or `If-None-Match` is
    /// malformed, instead of RFC 9110's safe outcome (a malformed `If-Match`
    /// never matches: 412; a malformed `If-None-Match` is ignored). Off by
    /// default. As [`Gate::reject_malformed`], whose example shows the
    /// effect.
    #[must_use]
    pub fn reject_malformed(self, reject: bool) -> Self {
        self.map_gate(|g| g.reject_malformed(reject))
    }

    /// Header fields the 200 would carry, for the 304s the layer answers
    /// without calling the handler (it cannot take them from the handler's
    /// response): [RFC 9110 §15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5) requires Cache-Control,
    /// Content-Location, Expires and Vary; other fields are repeated too,
    /// except those describing the content. `Date`, which §15.4.5 lists
    /// too, is dropped: set once, it would be wrong in every later
    /// response, and the server adds the time of each response itself (see
    /// [`Gate::not_modified_headers`], whose example shows the effect).
    #[must_use]
    pub fn not_modified_headers(self, headers: HeaderMap) -> Self {
        self.map_gate(|g| g.not_modified_headers(headers))
    }

    /// Let handlers confirm PUTs that may be retries of a request that
    /// already succeeded; see [`Gate::confirm_retried_puts`], which also
    /// says why this is off by default (it confirms an equal change that
    /// another client made from the same stale read).
    #[must_use]
    pub fn confirm_retried_puts(self, confirm: bool) -> Self {
        self.map_gate(|g| g.confirm_retried_puts(confirm))
    }
}

impl<S, R: Clone> Layer<S> for PreconditionLayer<R> {
    type Service = PreconditionService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        PreconditionService::new(inner, self.resolver.clone(), Arc::clone(&self.gate))
    }
}

/// The default largest body [`ETagLayer`] buffers to hash: 1 MiB.
///
/// ```
/// use ifmatch::middleware::{ETagLayer, DEFAULT_ETAG_LIMIT};
///
/// assert_eq!(DEFAULT_ETAG_LIMIT, 1024 * 1024);
/// // Room for larger reports on the routes that serve them.
/// let reports = ETagLayer::new().limit(8 * DEFAULT_ETAG_LIMIT);
/// ```
pub const DEFAULT_ETAG_LIMIT: usize = 1024 * 1024;

/// Decides which responses [`ETagLayer`] passes on unbuffered and untagged.
pub(crate) type SkipWhen = Arc<dyn Fn(&response::Parts) -> bool + Send + Sync + RefUnwindSafe>;

#[derive(Clone)]
pub(crate) struct ETagConfig {
    pub(crate) limit: usize,
    pub(crate) policy: Policy,
    pub(crate) texts: ProblemTexts,
    pub(crate) skip_when: Option<SkipWhen>,
}

impl fmt::Debug for ETagConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ETagConfig")
            .field("limit", &self.limit)
            .field("policy", &self.policy)
            .field("texts", &self.texts)
            .field("skip_when", &self.skip_when.as_ref().map(|_| "Fn"))
            .finish()
    }
}

/// Adds a strong content `ETag` to GET and HEAD responses and answers
/// conditional GETs with 304; see [the module docs](crate::middleware).
///
/// Only complete representations are tagged (a `200`, or a `206` whose
/// one range is all of it, see below), and not server-sent
/// events (`text/event-stream`): that body does not end, so buffering it
/// would withhold the response. Other slow or open-ended streams (an
/// NDJSON feed, long polling) would be held until they end or pass the
/// limit: put the layer on the routes that answer with finite documents
/// (axum's `route_layer`, or a nested router) rather than around them, or
/// name such responses with [`skip_when`](Self::skip_when).
///
/// The layer evaluates `If-None-Match` and `If-Match` against the tag it
/// computes, and `If-Modified-Since` against the response's
/// `Last-Modified`, so it does not pass on to the handler
/// `If-Modified-Since` (a 304 the handler made from the date would lack the
/// tag its 200 carries, which [RFC 9110 §15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5) requires; and with
/// `If-None-Match` the date must be ignored, §13.1.3), nor
/// `If-Unmodified-Since` when the request has `If-Match` (§13.1.4). A
/// handler that knows only dates (tower-http's `ServeDir`) would otherwise
/// answer 304 for content that changed within its timestamp's second, or
/// without the tag. The handler therefore builds the whole response for a
/// request with `If-Modified-Since` (also when a [`PreconditionLayer`]
/// below would have answered its 304 from the resolver: browsers send
/// `If-None-Match` as well once they have a tag, which that layer still
/// sees), and the layer drops its body for the 304. A response without
/// `Last-Modified` never gets a 304 from a date.
/// A `2xx` the layer leaves
/// untagged (over the limit, an event stream, a [skipped](Self::skip_when)
/// response, a `206` to a range under `If-Unmodified-Since`) is still evaluated, against the validators it
/// carries, without reading its body: with no tag, `If-Match` holds only
/// for `*` (412 otherwise), `If-None-Match: *` gives 304, and the dates
/// are compared with its `Last-Modified`.
///
/// `Range` is left to the handler, with two exceptions. A GET with
/// `If-Match`, `If-None-Match` or a valid `If-Modified-Since` reaches the
/// handler without `Range` and `If-Range`: the layer evaluates the tags
/// against its tag of the whole representation ([RFC 9110 §13.2.2](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.2) puts
/// them before `Range`), and a 304 must carry that tag (§15.4.5), which a
/// `206` of a part does not give it. It answers as for a request without a
/// range: 304 or 412 with the tag, or the whole representation (also when
/// that turns out not to be tagged, over the limit or skipped: a large
/// file that changed since the client cached a part of it is then sent
/// whole). `If-Unmodified-Since` alone compares dates, which a part
/// carries as well, and keeps the range.
/// And the tag is
/// computed after the handler has answered, so the handler cannot check an
/// `If-Range` that names it (§13.1.5), and a file server that
/// ignores `If-Range` (tower-http's `ServeDir` does) would send a part of
/// a file that changed since, for the client to splice into the old one.
/// A GET whose `If-Range` is not exactly one valid date (an entity tag,
/// several lines, or no valid value) therefore reaches the handler
/// without `Range` and `If-Range`, and gets the whole representation: the
/// condition's outcome when it fails, and always allowed, as a server may
/// ignore `Range` (§14.2). That holds for a handler that sets its own
/// `ETag` too: under this layer, its ranges are served only to requests
/// without those three conditions and without `If-Range` or with an
/// `If-Range` date. A `206` the handler makes for a part has no tag from
/// this layer, which sees only the part: [RFC 9110 §15.3.7](https://www.rfc-editor.org/rfc/rfc9110#section-15.3.7) asks a `206` for
/// the `ETag` a `200` would carry, and for a representation within the
/// limit that is this layer's tag. Clients get it from a `200` or `304`,
/// and a handler whose ranges must carry it sets its own. A `206` whose
/// one range is the whole representation (`Content-Range: bytes
/// 0-99/100`, a file server's answer to `Range: bytes=0-`) is hashed and
/// tagged as the `200` is, if its body is that long (100 bytes here): a
/// shorter one is incomplete, as one shorter than its `Content-Length`,
/// and passes untagged, as does a longer one. A date is the handler's
/// own `Last-Modified`, and is passed on with the range for the handler to
/// evaluate: a handler that ignores `If-Range` (`ServeDir` again) still
/// splices on a stale date, by itself or under this layer, which cannot
/// fix that without the whole representation (a body over the limit
/// passes through unread). Routes that serve ranges should expose their
/// validators to [`PreconditionLayer`] instead (without this layer), which
/// tells the handler whether to ignore `Range`.
///
/// ```
/// use ifmatch::middleware::ETagLayer;
///
/// let layer = ETagLayer::new().limit(256 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ETagLayer {
    config: Arc<ETagConfig>,
}

impl Default for ETagLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ETagLayer {
    /// A layer that buffers at most [`DEFAULT_ETAG_LIMIT`] bytes per
    /// response.
    #[must_use]
    pub fn new() -> Self {
        Self {
            config: Arc::new(ETagConfig {
                limit: DEFAULT_ETAG_LIMIT,
                policy: Policy::default(),
                texts: ProblemTexts::default(),
                skip_when: None,
            }),
        }
    }

    /// The largest body to buffer and hash. Larger bodies stream through
    /// unbuffered, without an `ETag` (their conditions are still evaluated
    /// against the response head; see [`ETagLayer`]); one whose
    /// `size_hint` says it is larger is not read at all. A body of small frames is held in about
    /// its own size (frames under 4 KiB are copied together into pieces of
    /// up to 64 KiB, never more than the limit still allows), plus the
    /// hasher's window of 64 KiB or the limit, whichever is smaller. The
    /// first frame, and frames of 4 KiB or more, are held as they came, so
    /// a frame that is a slice of a larger allocation keeps all of it
    /// alive: the limit counts the bytes of the body, not the memory behind
    /// them. Responses of type
    /// `text/event-stream`, which do not end, are passed on at once.
    #[must_use]
    pub fn limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).limit = bytes;
        self
    }

    /// Passes on at once, untagged and unbuffered, the responses for which
    /// `skip` returns true, as it does for `text/event-stream`: open-ended
    /// or slow streams that buffering would hold back (an NDJSON feed, a
    /// long poll). `skip` sees the response head: status, headers and
    /// extensions, so a handler can also mark a response by putting a type
    /// of its own in the extensions. A later call replaces an earlier one.
    ///
    /// `skip` is asked only about responses the layer would tag, `200`s
    /// (and `206`s whose one range is all of the representation) without
    /// an `ETag`: other statuses are never tagged, and a response with an `ETag` of its own
    /// is never buffered (its conditions are still answered). A skipped
    /// response is not read, but the request's conditions are still
    /// evaluated against the validators its head carries, as for any
    /// untagged `200` (see [`ETagLayer`]): `If-Match` with tags gets 412,
    /// `If-None-Match: *` gets 304, and `If-Modified-Since` (when the
    /// request has no `If-None-Match`) is compared with its
    /// `Last-Modified`. Since the layer decides this only once the handler
    /// has answered, the handler still does not see `If-Modified-Since`,
    /// nor `If-Unmodified-Since` beside `If-Match`. A route whose handler
    /// answers conditional requests by date itself is better left outside
    /// the layer.
    ///
    /// `skip` must be [`RefUnwindSafe`], as the layer and its service are:
    /// closures that capture plain data, atomics or a `Mutex` are. One that
    /// captures something else (an `Arc<dyn Fn ...>`, a `RefCell`) can wrap
    /// it in [`AssertUnwindSafe`](std::panic::AssertUnwindSafe), as below.
    ///
    /// ```
    /// use std::panic::AssertUnwindSafe;
    /// use std::sync::Arc;
    /// use http::header::CONTENT_TYPE;
    /// use http::response::Parts;
    /// use ifmatch::middleware::ETagLayer;
    ///
    /// /// Set by handlers that stream.
    /// #[derive(Clone)]
    /// struct Streaming;
    ///
    /// let layer = ETagLayer::new().skip_when(|res| {
    ///     res.extensions.get::<Streaming>().is_some()
    ///         || res.headers.get(CONTENT_TYPE).is_some_and(|t| {
    ///             t.as_bytes().starts_with(b"application/x-ndjson")
    ///         })
    /// });
    ///
    /// // A predicate chosen at run time.
    /// let rule: Arc<dyn Fn(&Parts) -> bool + Send + Sync> = Arc::new(|res| res.status == 200);
    /// let rule = AssertUnwindSafe(rule);
    /// // Deref, so that the closure captures the wrapper, not the `Arc` in it.
    /// let layer = ETagLayer::new().skip_when(move |res| (*rule)(res));
    /// ```
    #[must_use]
    pub fn skip_when<F>(mut self, skip: F) -> Self
    where
        F: Fn(&response::Parts) -> bool + Send + Sync + RefUnwindSafe + 'static,
    {
        Arc::make_mut(&mut self.config).skip_when = Some(Arc::new(skip));
        self
    }

    /// Sets the texts of the 412 answered to a GET whose `If-Match` or
    /// `If-Unmodified-Since` fails.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{header, Request, Response, StatusCode};
    /// use http_body_util::BodyExt;
    /// use ifmatch::middleware::ETagLayer;
    /// use ifmatch::{ProblemKind, ProblemText, ProblemTexts};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let texts = ProblemTexts::default().set(ProblemKind::Changed, ProblemText::new(
    ///     "https://example.com/problems/edited-elsewhere",
    ///     "Edited elsewhere",
    ///     "This page is now at {etag}.",
    /// ));
    /// let page = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new("hello".to_owned())) });
    /// let svc = ETagLayer::new().texts(texts).layer(page);
    /// let stale = Request::get("/").header(header::IF_MATCH, "\"an-old-tag\"").body(String::new())?;
    /// let res = svc.oneshot(stale).await?;
    /// assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    /// let body = res.into_body().collect().await?.to_bytes();
    /// assert!(String::from_utf8(body.to_vec())?.contains("Edited elsewhere"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn texts(mut self, texts: ProblemTexts) -> Self {
        Arc::make_mut(&mut self.config).texts = texts;
        self
    }
}

impl<S> Layer<S> for ETagLayer {
    type Service = ETagService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ETagService::new(inner, Arc::clone(&self.config))
    }
}
