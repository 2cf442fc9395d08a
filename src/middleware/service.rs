//! The services the layers produce.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, RANGE,
};
use http::{HeaderMap, Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::Resolve;
use super::body::ResponseBody;
use super::future::{ETagFuture, PreconditionFuture};
use super::layer::ETagConfig;
use crate::date;
use crate::gate::Gate;

/// Evaluates preconditions before calling the inner service; made by
/// [`PreconditionLayer`](super::PreconditionLayer), whose
/// [`new`](super::PreconditionLayer::new) example calls one.
/// [`get_ref`](Self::get_ref), [`get_mut`](Self::get_mut) and
/// [`into_inner`](Self::into_inner) reach the service it wraps.
#[derive(Clone)]
pub struct PreconditionService<S, R> {
    inner: S,
    resolver: R,
    gate: Arc<Gate>,
}

/// Leaves the resolver out: it is usually a closure, which has no `Debug`.
impl<S: std::fmt::Debug, R> std::fmt::Debug for PreconditionService<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreconditionService")
            .field("inner", &self.inner)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<S, R> PreconditionService<S, R> {
    pub(crate) fn new(inner: S, resolver: R, gate: Arc<Gate>) -> Self {
        Self {
            inner,
            resolver,
            gate,
        }
    }

    /// The inner service.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    #[must_use]
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for PreconditionService<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    R: Resolve,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = PreconditionFuture<S, R, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let resolve = self.resolver.resolve(&parts);
        // Take the service that was driven to readiness, leave a clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        PreconditionFuture::new(resolve, parts, body, inner, Arc::clone(&self.gate))
    }
}

/// Adds content ETags and answers conditional GETs; made by
/// [`ETagLayer`](super::ETagLayer). Its responses have a
/// [`ResponseBody`], which streams the inner body on (here collected);
/// [`get_ref`](Self::get_ref), [`get_mut`](Self::get_mut) and
/// [`into_inner`](Self::into_inner) reach the service it wraps.
///
/// ```
/// use std::convert::Infallible;
/// use http::{header, Request, Response, StatusCode};
/// use http_body_util::BodyExt;
/// use ifmatch::ETag;
/// use ifmatch::middleware::ETagLayer;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let page = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new("hello".to_owned())) });
/// let svc = ETagLayer::new().layer(page);
/// // The 200 is tagged with the hash of its body, and the body passed on.
/// let res = svc.clone().oneshot(Request::get("/").body(String::new())?).await?;
/// let tag = res.headers()[header::ETAG].clone();
/// assert_eq!(tag, ETag::from_content("hello").to_header_value());
/// assert_eq!(res.into_body().collect().await?.to_bytes(), "hello");
/// // A client that has this version gets a 304 without the body.
/// let again = Request::get("/").header(header::IF_NONE_MATCH, tag).body(String::new())?;
/// assert_eq!(svc.oneshot(again).await?.status(), StatusCode::NOT_MODIFIED);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ETagService<S> {
    inner: S,
    config: Arc<ETagConfig>,
}

impl<S> ETagService<S> {
    pub(crate) fn new(inner: S, config: Arc<ETagConfig>) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    #[must_use]
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Whether a GET's `Range` must not reach the service below `ETagLayer`
/// (see [`ETagService::call`]): the request names a tag of the whole
/// representation (`If-Match`, `If-None-Match`, an `If-Range` that is not
/// one date) or has a valid `If-Modified-Since`, whose 304 must carry that
/// tag.
fn range_needs_the_whole(headers: &HeaderMap, conditions: &HeaderMap) -> bool {
    let date = |map: &HeaderMap, name| date::single(map.get_all(name).iter().map(|v| v.as_bytes()));
    conditions.contains_key(IF_MATCH)
        || conditions.contains_key(IF_NONE_MATCH)
        || date(conditions, IF_MODIFIED_SINCE).is_some()
        || (headers.contains_key(IF_RANGE) && date(headers, IF_RANGE).is_none())
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ETagService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ETagFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let method = req.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return ETagFuture::passthrough(self.inner.call(req));
        }
        // Keep the conditions to evaluate once the tag is known. A map
        // without entries does not allocate.
        let mut conditions = HeaderMap::new();
        for name in [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
        ] {
            for value in req.headers().get_all(&name) {
                conditions.append(name.clone(), value.clone());
            }
        }
        // The server here is this layer and the service below together,
        // and the layer answers If-Modified-Since itself, against the
        // Last-Modified of the response it tags: a 304 the service below
        // made from the date would lack the tag the 200 carries, which
        // RFC 9110 §15.4.5 requires ("MUST generate any of the following
        // header fields that would have been sent in a 200 (OK) response
        // to the same request: ... ETag"). With If-None-Match the date
        // must be ignored anyway (§13.1.3), and a service that knows only
        // dates (tower-http's ServeDir) would answer 304 for content whose
        // tag no longer matches. Likewise If-Unmodified-Since with
        // If-Match (§13.1.4): the layer evaluates the tags itself, against
        // the content.
        let headers = req.headers_mut();
        headers.remove(IF_MODIFIED_SINCE);
        if headers.contains_key(IF_MATCH) {
            headers.remove(IF_UNMODIFIED_SINCE);
        }
        // A HEAD is answered from the GET representation, so that both get
        // the same tag even when the stack below strips HEAD bodies. Range
        // is defined for GET only: RFC 9110 §14.2 "A server MUST ignore a
        // Range header field received with a request method that is
        // unrecognized or for which range handling is not defined", and
        // If-Range goes with it (§13.1.5), so the GET made of a HEAD asks
        // for the whole representation.
        //
        // A GET whose If-Range is not a date names an entity tag, most
        // likely one this layer computed: the service below never sees
        // those tags, so it cannot evaluate the condition, and a file
        // server that ignores If-Range (tower-http's ServeDir) would send
        // a part of a representation that has changed since, for the
        // client to splice into its copy of the old one. §13.1.5: "If the
        // validator does not match, then the server MUST ignore the Range
        // header field", and a server may always ignore it (§14.2), so the
        // range is dropped and the whole representation is sent, tagged.
        // A date is the service's own Last-Modified and is left to it.
        //
        // So is the range of a GET with If-Match, If-None-Match or a valid
        // If-Modified-Since (an invalid one is ignored, §13.1.3): the layer
        // compares tags with its tag of the whole representation, and a
        // 304 carries that tag, which a part does not give it. Left
        // to the service below, the range would come back as a 206 without
        // that tag, and the conditions would be evaluated as if the
        // representation had none: a 206 instead of the 304 that
        // If-None-Match with the current tag asks for (§13.1.2), a 412 for
        // an If-Match with the tag this layer sent, a 304 without the ETag
        // a 200 carries (§15.4.5). The layer answers them as it answers a
        // request without Range: with the whole representation (§14.2), or
        // a 304 or 412. If-Unmodified-Since alone compares dates only,
        // which a part carries as the whole does, and keeps its range.
        // Only a request with a range has one to keep from the service, so
        // a plain conditional GET parses no date here (the evaluator reads
        // If-Modified-Since once the response is in).
        let headers = req.headers();
        let drop_range = method == Method::HEAD
            || ((headers.contains_key(RANGE) || headers.contains_key(IF_RANGE))
                && range_needs_the_whole(headers, &conditions));
        if method == Method::HEAD {
            *req.method_mut() = Method::GET;
        }
        if drop_range {
            let headers = req.headers_mut();
            headers.remove(RANGE);
            headers.remove(IF_RANGE);
        }
        ETagFuture::new(
            self.inner.call(req),
            method,
            conditions,
            Arc::clone(&self.config),
        )
    }
}
