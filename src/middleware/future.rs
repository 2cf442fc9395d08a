//! The response futures of the services.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use http::header::{
    CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, TRANSFER_ENCODING,
};
use http::{
    Extensions, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, request, response,
};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::ResponseBody;
use super::layer::ETagConfig;
use super::{Busy, Resolve, ResolveError, StoreUnavailable};
use crate::date;
use crate::etag::ETag;
use crate::gate::{Decision, Gate};
use crate::hash::ETagHasher;
use crate::precondition::{self, Outcome};
use crate::response::into_not_modified_headers;
use crate::versioned::Validators;
use crate::write::Conflict;

/// A response the layer made itself. To a HEAD it has no content ([RFC 9110
/// §9.3.2](https://www.rfc-editor.org/rfc/rfc9110#section-9.3.2) "The server MUST NOT send content in the response"), but the
/// Content-Length a GET would have had, except on a 304, which has no
/// content of its own to measure (§8.6).
fn full<B: Body>(res: Response<String>, head: bool) -> Response<ResponseBody<B>> {
    if head {
        let len = res.body().len() as u64;
        return without_content(res.into_parts().0, len);
    }
    res.map(|s| ResponseBody::full(Bytes::from(s)))
}

/// The layer's own answer in place of the handler's response.
fn instead_of<B: Body, H>(
    handler: Response<H>,
    answer: Response<String>,
    head: bool,
) -> Response<ResponseBody<B>> {
    let mut answer = full(answer, head);
    keep_extensions(handler.into_parts().0.extensions, answer.extensions_mut());
    answer
}

/// A response the layer answers in place of the service's keeps that
/// response's extensions (a request id, a marker for a logging layer
/// further out), under the answer's own (its `ProblemKind`).
fn keep_extensions(mut replaced: Extensions, answer: &mut Extensions) {
    replaced.extend(std::mem::take(answer));
    *answer = replaced;
}

/// The answer to a HEAD whose GET content is `len` bytes: no content, and
/// that length in Content-Length unless the response already states one or
/// its status has no content (§8.6).
///
/// The empty body states its size, 0, also on a 304, although axum turns
/// that into `Content-Length: 0` there, which §8.6 does not allow (the
/// layer's 304 states the 200's length itself when it knows it, which
/// axum keeps). A body
/// of unknown size would be worse: tower-http's `CompressionLayer` outside
/// the layer compresses such a body, and a 304 would then carry
/// `Content-Encoding: gzip`, which a cache copies onto the response it
/// stored ([RFC 9111 §4.3.4](https://www.rfc-editor.org/rfc/rfc9111#section-4.3.4)), and over HTTP/2 an empty gzip stream as
/// content (§15.4.5).
///
/// Nor beside a `Transfer-Encoding` the service below set (a proxy copying
/// an upstream's head): [RFC 9112 §6.2](https://www.rfc-editor.org/rfc/rfc9112#section-6.2) "A sender MUST NOT send a
/// Content-Length header field in any message that contains a
/// Transfer-Encoding header field".
fn without_content<B: Body>(mut parts: response::Parts, len: u64) -> Response<ResponseBody<B>> {
    if has_content(parts.status) && !parts.headers.contains_key(TRANSFER_ENCODING) {
        parts
            .headers
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(len));
    }
    Response::from_parts(parts, ResponseBody::empty())
}

/// The time to evaluate `headers` at: the clock is read only when the
/// evaluator uses the time (the date conditions): most requests have none,
/// and a clock read costs about as much as the rest of an evaluation.
fn evaluation_time(headers: &HeaderMap) -> SystemTime {
    if precondition::uses_time(headers) {
        SystemTime::now()
    } else {
        SystemTime::UNIX_EPOCH
    }
}

struct Pending<S, B> {
    parts: request::Parts,
    body: B,
    inner: S,
}

pin_project! {
    /// Response future of [`PreconditionService`](super::PreconditionService),
    /// awaited in the [`PreconditionLayer::new`](super::PreconditionLayer::new)
    /// example.
    ///
    /// # Panics
    ///
    /// When polled again after it returned `Ready`, as the `Future`
    /// contract allows (tower-http's futures do the same).
    pub struct PreconditionFuture<S, R, ReqBody>
    where
        S: Service<Request<ReqBody>>,
        R: Resolve,
    {
        #[pin]
        state: PreconditionState<R::Future, S::Future, Pending<S, ReqBody>>,
        gate: Arc<Gate>,
        head: bool,
    }
}

pin_project! {
    #[project = PreconditionProj]
    enum PreconditionState<RF, SF, P> {
        Resolving {
            #[pin]
            resolve: RF,
            pending: Option<P>,
        },
        Calling {
            #[pin]
            call: SF,
        },
        Done,
    }
}

impl<S, R, ReqBody> PreconditionFuture<S, R, ReqBody>
where
    S: Service<Request<ReqBody>>,
    R: Resolve,
{
    pub(crate) fn new(
        resolve: R::Future,
        parts: request::Parts,
        body: ReqBody,
        inner: S,
        gate: Arc<Gate>,
    ) -> Self {
        Self {
            head: parts.method == Method::HEAD,
            state: PreconditionState::Resolving {
                resolve,
                pending: Some(Pending { parts, body, inner }),
            },
            gate,
        }
    }
}

impl<S, R, ReqBody> std::fmt::Debug for PreconditionFuture<S, R, ReqBody>
where
    S: Service<Request<ReqBody>>,
    R: Resolve,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreconditionFuture").finish_non_exhaustive()
    }
}

impl<S, R, ReqBody, ResBody> Future for PreconditionFuture<S, R, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: Resolve,
    ResBody: Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                PreconditionProj::Resolving { resolve, pending } => {
                    let resolved = ready!(resolve.poll(cx));
                    let Some(Pending {
                        mut parts,
                        body,
                        mut inner,
                    }) = pending.take()
                    else {
                        panic!("PreconditionFuture polled after completion");
                    };
                    let gate = &**this.gate;
                    let current = match resolved {
                        Ok(current) => current,
                        Err(err) => {
                            this.state.set(PreconditionState::Done);
                            let mut res = gate.unavailable();
                            res.extensions_mut().insert(ResolveError::new(err.into()));
                            return Poll::Ready(Ok(full(res, *this.head)));
                        }
                    };
                    let checked = gate.check(
                        &parts.method,
                        &parts.headers,
                        current.as_ref(),
                        evaluation_time(&parts.headers),
                    );
                    match checked {
                        Decision::Proceed(precondition) => {
                            parts.extensions.insert(precondition);
                            R::forward(current, &mut parts.extensions);
                            let call = inner.call(Request::from_parts(parts, body));
                            this.state.set(PreconditionState::Calling { call });
                        }
                        Decision::Respond(res) => {
                            this.state.set(PreconditionState::Done);
                            return Poll::Ready(Ok(full(res, *this.head)));
                        }
                    }
                }
                PreconditionProj::Calling { call } => {
                    let result = ready!(call.poll(cx));
                    this.state.set(PreconditionState::Done);
                    let mut res = result?;
                    // The handler's conditional write found the target moved
                    // on: answer the same 412 a failed precondition gets.
                    // (`conflict_response` and `unavailable_response` set
                    // their status: a 2xx is not searched for markers.)
                    if res.status() == StatusCode::PRECONDITION_FAILED {
                        if let Some(conflict) = res.extensions_mut().remove::<Conflict>() {
                            let answer = this.gate.conflict(&conflict);
                            return Poll::Ready(Ok(instead_of(res, answer, *this.head)));
                        }
                    }
                    // Its store failed: the layer's own 503 (nothing was
                    // changed, or the outcome is unknown), the error kept
                    // for logging.
                    if res.status() == StatusCode::SERVICE_UNAVAILABLE {
                        if let Some(failure) = res.extensions_mut().remove::<StoreUnavailable>() {
                            let mut answer = if failure.unconfirmed() {
                                this.gate.unconfirmed()
                            } else {
                                this.gate.unavailable()
                            };
                            answer.extensions_mut().insert(failure);
                            return Poll::Ready(Ok(instead_of(res, answer, *this.head)));
                        }
                    }
                    // Its change lost the race every time: the layer's 409.
                    if res.status() == StatusCode::CONFLICT
                        && res.extensions_mut().remove::<Busy>().is_some()
                    {
                        let answer = this.gate.busy();
                        return Poll::Ready(Ok(instead_of(res, answer, *this.head)));
                    }
                    return Poll::Ready(Ok(res.map(ResponseBody::inner)));
                }
                PreconditionProj::Done => panic!("PreconditionFuture polled after completion"),
            }
        }
    }
}

/// A body being read and hashed.
struct Buffering<B> {
    body: Option<Pin<Box<B>>>,
    parts: Option<response::Parts>,
    // What was read, in order, sent on afterwards: the first frame and
    // frames of at least `SMALL_FRAME` bytes as they came (no copy), the
    // others gathered into pieces (`tail`), so that a body of many small
    // frames is held in about its own size, not in one allocation and one
    // slot per frame.
    frames: VecDeque<Bytes>,
    // Small frames being gathered, after everything in `frames`. Filled to
    // its capacity, then moved to `frames`.
    tail: BytesMut,
    len: usize,
    // Small frames are coalesced in the hasher's window; large ones go to
    // blake3 directly. Created at the second frame: a hasher is a few KiB
    // that a body of one frame (most JSON responses) never needs, and the
    // future carrying it inline would be moved and boxed with every request.
    hasher: Option<Box<ETagHasher>>,
    // How many of `frames` the hasher has seen. A body of one frame is
    // hashed in one go at the end instead, without any copy.
    hashed: usize,
    trailers: Option<HeaderMap>,
    // For a 206 of the whole, the length its `Content-Range` names, which
    // the body must have to be tagged.
    ranged: Option<u64>,
}

/// Frames under this size (after the first) are copied into pieces: held
/// one by one, each would cost a slot and an allocation of its own, many
/// times its size for a frame of a few bytes. Larger frames are kept as
/// they came, which costs under 2 % of their size.
const SMALL_FRAME: usize = 4 * 1024;
/// Pieces grow with the body, from [`SMALL_FRAME`] to this size, so that a
/// small body is not given a large buffer.
const LARGEST_PIECE: usize = 64 * 1024;

/// How many frames one poll of an [`ETagFuture`] reads before it yields. A
/// body whose frames are always ready (an in-memory stream, which no
/// runtime budget reaches) would otherwise hold the thread for the whole
/// body, and one that sends empty frames without end would hold it for
/// ever. hyper's HTTP/1.1 dispatcher yields after 16 reads; a 1 MiB body in
/// 8 KiB frames yields twice.
const FRAMES_PER_POLL: u32 = 64;

pin_project! {
    /// Response future of [`ETagService`](super::ETagService), awaited in
    /// its example.
    ///
    /// # Panics
    ///
    /// When polled again after it returned `Ready`, as the `Future`
    /// contract allows (tower-http's futures do the same).
    pub struct ETagFuture<F, B> {
        #[pin]
        state: ETagState<F, B>,
        // `None` for requests the layer leaves alone (not GET or HEAD).
        request: Option<ETagRequest>,
    }
}

struct ETagRequest {
    method: Method,
    conditions: HeaderMap,
    config: Arc<ETagConfig>,
}

pin_project! {
    #[project = ETagProj]
    enum ETagState<F, B> {
        Calling {
            #[pin]
            call: F,
        },
        Buffering {
            buffering: Buffering<B>,
        },
        Done,
    }
}

impl<F, B> ETagFuture<F, B> {
    pub(crate) fn passthrough(call: F) -> Self {
        Self {
            state: ETagState::Calling { call },
            request: None,
        }
    }

    pub(crate) fn new(
        call: F,
        method: Method,
        conditions: HeaderMap,
        config: Arc<ETagConfig>,
    ) -> Self {
        Self {
            state: ETagState::Calling { call },
            request: Some(ETagRequest {
                method,
                conditions,
                config,
            }),
        }
    }
}

impl<F, B> std::fmt::Debug for ETagFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ETagFuture").finish_non_exhaustive()
    }
}

impl ETagRequest {
    /// The response to send. A HEAD was answered from the GET
    /// representation: its body is dropped here, and its length stated in
    /// Content-Length as the GET's would be when it is known ([RFC 9110
    /// §9.3.2](https://www.rfc-editor.org/rfc/rfc9110#section-9.3.2), §8.6). A body of unknown length is dropped too (the server
    /// must not send it, and hyper's HTTP/2 server would), but its error,
    /// if the layer met one, is passed on; the body left states no length,
    /// so that no framework sets Content-Length to 0 from it.
    ///
    /// No length is stated for a status that has no content: §8.6 "A
    /// server MUST NOT send a Content-Length header field in any response
    /// with a status code of 1xx (Informational) or 204 (No Content)", and
    /// a 304 may carry only the length a 200 would have had, which the
    /// empty body of the inner service's 304 does not tell.
    fn respond<B: Body<Data = Bytes>>(
        &self,
        parts: response::Parts,
        body: ResponseBody<B>,
    ) -> Response<ResponseBody<B>> {
        if self.method == Method::HEAD {
            return match body.size_hint().exact() {
                Some(len) => without_content(parts, len),
                None => Response::from_parts(parts, body.without_content()),
            };
        }
        Response::from_parts(parts, body)
    }

    /// A response passed on without a content tag: another status than
    /// 200, a handler's tag that does not parse, an event stream or a
    /// skipped response, a body over the limit. The service below did not
    /// see the date conditions that `If-Match` and `If-None-Match`
    /// override, so the layer still evaluates the conditions (without
    /// reading the body) against the validators the response carries: RFC
    /// 9110 §13.1.1 "An origin server that receives an If-Match header
    /// field MUST evaluate the condition". Without a tag, none in
    /// `If-Match` can match and only `*` holds: a response the layer cannot
    /// tag gets 412 for a tag it cannot be checked against. (A ranged GET
    /// with `If-Match` reaches the service below without its range, so a
    /// 206 arrives here only under `If-Unmodified-Since`, or from a
    /// service that sends one unasked.) Only a 2xx is evaluated
    /// (§13.2.1).
    fn pass_untagged<B: Body<Data = Bytes>>(
        &self,
        parts: response::Parts,
        body: ResponseBody<B>,
        length: Length,
    ) -> Response<ResponseBody<B>> {
        if self.conditions.is_empty() || !parts.status.is_success() {
            return self.respond(parts, body);
        }
        let etag = parts.headers.get(ETAG).and_then(|v| ETag::try_from(v).ok());
        self.conclude(parts, etag, body, length)
    }

    /// Evaluates the request's conditions against the response's validators
    /// (`etag`, and its Last-Modified) and turns the response into a 304 or
    /// 412 when they say so. `length` says what a 304 may state as the
    /// length of the content.
    fn conclude<B: Body<Data = Bytes>>(
        &self,
        mut parts: response::Parts,
        etag: Option<ETag>,
        body: ResponseBody<B>,
        length: Length,
    ) -> Response<ResponseBody<B>> {
        if self.conditions.is_empty() {
            return self.respond(parts, body);
        }
        let mut current = etag.map_or_else(Validators::default, Validators::new);
        let mut now = evaluation_time(&self.conditions);
        if let Some(time) = parts
            .headers
            .get(LAST_MODIFIED)
            .and_then(|v| date::parse_time(v.as_bytes()))
        {
            current = current.with_last_modified(time);
            // The evaluator compares a Last-Modified later than `now` as
            // `now`, because `insert_validators` sends that in its place
            // (RFC 9110 §8.8.2.1). This date goes out as the service below
            // wrote it, so it is compared as written: a client echoes it,
            // and a later change with a later date, both ahead of this
            // server's clock, is then still newer (§13.1.3, §13.1.4).
            now = now.max(time);
        }
        let eval = self
            .config
            .policy
            .evaluate(&self.method, &self.conditions, Some(&current), now);
        match eval.outcome() {
            Outcome::NotModified => {
                let length = match length {
                    Length::Read(len) => Some(len),
                    Length::FoundShort => None,
                    Length::Unread => content_length(&parts, &body),
                };
                parts.status = StatusCode::NOT_MODIFIED;
                // The response's own Last-Modified stays as written, as
                // it was compared: only the tag is set from `current`.
                let tag = current.etag_ref().cloned();
                let tag = tag.map_or_else(Validators::default, Validators::new);
                into_not_modified_headers(&mut parts.headers, &tag);
                // §8.6: a 304 may state the length the 200 would have had,
                // and only that (and a HEAD's the GET's, §9.3.2). Known, it
                // is stated: axum otherwise sets `Content-Length: 0` from
                // the empty body, which hyper sends on a 304 to a HEAD, and
                // HTTP/2 on any 304.
                if let Some(len) = length {
                    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
                }
                Response::from_parts(parts, ResponseBody::empty())
            }
            Outcome::PreconditionFailed(failed) => {
                let (mut answer, problem) = self
                    .config
                    .texts
                    .precondition_failed_for(
                        &self.method,
                        &self.conditions,
                        Some(&current),
                        *failed,
                    )
                    .into_parts();
                keep_extensions(parts.extensions, &mut answer.extensions);
                self.respond(answer, ResponseBody::full(Bytes::from(problem)))
            }
            _ => self.respond(parts, body),
        }
    }
}

impl<F, B, E> Future for ETagFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                ETagProj::Calling { call } => {
                    let result = ready!(call.poll(cx));
                    let res = match result {
                        Ok(res) => res,
                        Err(err) => {
                            this.state.set(ETagState::Done);
                            return Poll::Ready(Err(err));
                        }
                    };
                    let Some(request) = this.request.as_ref() else {
                        this.state.set(ETagState::Done);
                        return Poll::Ready(Ok(res.map(ResponseBody::inner)));
                    };
                    let (parts, body) = res.into_parts();
                    // Only a complete representation gets a content tag: a
                    // 200, or a 206 whose one range is all of it. A part
                    // of one cannot be hashed for the whole, and other
                    // statuses describe no representation of the target.
                    let ranged = if parts.status == StatusCode::PARTIAL_CONTENT {
                        whole_range_length(&parts.headers)
                    } else {
                        None
                    };
                    let whole = parts.status == StatusCode::OK || ranged.is_some();
                    if !whole {
                        this.state.set(ETagState::Done);
                        let res =
                            request.pass_untagged(parts, ResponseBody::inner(body), Length::Unread);
                        return Poll::Ready(Ok(res));
                    }
                    // A tag set by the handler is kept, not re-hashed; the
                    // conditions are still evaluated against it.
                    if let Some(value) = parts.headers.get(ETAG) {
                        this.state.set(ETagState::Done);
                        let tag = ETag::try_from(value).ok();
                        // Not a tag: evaluated as a 200 without one.
                        let body = ResponseBody::inner(body);
                        let res = request.conclude(parts, tag, body, Length::Unread);
                        return Poll::Ready(Ok(res));
                    }
                    // An event stream does not end: buffering it would
                    // withhold the response for good (tower-http's
                    // compression skips it for the same reason). The
                    // service names any other such streams.
                    let skip = request.config.skip_when.as_ref();
                    if is_event_stream(&parts.headers) || skip.is_some_and(|skip| skip(&parts)) {
                        this.state.set(ETagState::Done);
                        let res =
                            request.pass_untagged(parts, ResponseBody::inner(body), Length::Unread);
                        return Poll::Ready(Ok(res));
                    }
                    let limit = request.config.limit;
                    let hint = body.size_hint();
                    if hint.lower() > limit as u64 {
                        // Known to be too large: stream it untouched.
                        this.state.set(ETagState::Done);
                        let res =
                            request.pass_untagged(parts, ResponseBody::inner(body), Length::Unread);
                        return Poll::Ready(Ok(res));
                    }
                    this.state.set(ETagState::Buffering {
                        buffering: Buffering {
                            body: Some(Box::pin(body)),
                            parts: Some(parts),
                            frames: VecDeque::new(),
                            tail: BytesMut::new(),
                            len: 0,
                            hasher: None,
                            hashed: 0,
                            trailers: None,
                            ranged,
                        },
                    });
                }
                ETagProj::Buffering { buffering } => {
                    let Some(request) = this.request.as_ref() else {
                        panic!("ETagFuture buffering without a request");
                    };
                    let res = ready!(buffering.poll_buffer(cx, request));
                    this.state.set(ETagState::Done);
                    return Poll::Ready(Ok(res));
                }
                ETagProj::Done => panic!("ETagFuture polled after completion"),
            }
        }
    }
}

/// What the layer knows of the length of a response's content, for the 304
/// it may answer in its place. Measured only when that 304 is answered.
#[derive(Clone, Copy)]
enum Length {
    /// Read to its end: this many bytes, trailers or not.
    Read(u64),
    /// Read to its end and shorter than its `Content-Length`: that field
    /// was found false, and a 304 states none.
    FoundShort,
    /// Not read to its end: as the response states it ([`content_length`]).
    Unread,
}

/// The length of the content of a response the layer did not read to its
/// end, for its 304: only for a 200 or a 206 of the whole (a part's length
/// is not the 200's), from its Content-Length and its body's exact size
/// (and a 206's complete length), and not when they disagree.
fn content_length<B: Body>(parts: &response::Parts, body: &B) -> Option<u64> {
    let complete = match parts.status {
        StatusCode::OK => None,
        StatusCode::PARTIAL_CONTENT => Some(whole_range_length(&parts.headers)?),
        _ => return None,
    };
    let measured = match (declared_length(&parts.headers), body.size_hint().exact()) {
        (Some(declared), Some(exact)) if declared != exact => return None,
        (declared, exact) => declared.or(exact),
    };
    match (measured, complete) {
        (Some(measured), Some(complete)) if measured != complete => None,
        (measured, complete) => measured.or(complete),
    }
}

/// Whether a response with `status` can have content, and so a
/// Content-Length describing it ([RFC 9110 §6.4.1](https://www.rfc-editor.org/rfc/rfc9110#section-6.4.1): 1xx, 204 and 304 have
/// none).
fn has_content(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// The number `digits` writes, if it is only decimal digits (no sign, no
/// space) and fits a `u64`.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The length `Content-Length` declares, if it is exactly one line of
/// digits.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut lines = headers.get_all(CONTENT_LENGTH).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return None;
    };
    decimal(line.as_bytes())
}

/// Feeds `hasher` the frames from index `hashed` on, and counts them.
fn hash_unseen(hasher: &mut ETagHasher, frames: &VecDeque<Bytes>, hashed: &mut usize) {
    for frame in frames.range(*hashed..) {
        hasher.update(frame);
    }
    *hashed = frames.len();
}

/// The length of the whole representation a 206 holds, if it holds the
/// whole: its one `Content-Range` is `bytes 0-{n - 1}/{n}` ([RFC 9110 §14.4](https://www.rfc-editor.org/rfc/rfc9110#section-14.4)),
/// as a file server answers `Range: bytes=0-`, the first request of many
/// media players and download managers. Its content is then the 200's, and
/// gets the 200's tag, which §15.3.7 asks a 206 to carry ("MUST generate
/// ... ETag ... if the field would have been sent in a 200 (OK) response to
/// the same request"), provided the body is those `n` bytes.
fn whole_range_length(headers: &HeaderMap) -> Option<u64> {
    let mut lines = headers.get_all(CONTENT_RANGE).iter();
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let value = value.as_bytes();
    // Range units compare case-insensitively (§14.1).
    let (unit, rest) = value.split_at_checked(6)?;
    if !unit.eq_ignore_ascii_case(b"bytes ") {
        return None;
    }
    let mut parts = rest.splitn(2, |&b| b == b'/');
    let (Some(range), Some(complete)) = (parts.next(), parts.next()) else {
        return None;
    };
    let mut ends = range.splitn(2, |&b| b == b'-');
    let (Some(first), Some(last)) = (ends.next(), ends.next()) else {
        return None;
    };
    match (decimal(first), decimal(last), decimal(complete)) {
        (Some(0), Some(last), Some(complete)) if last.checked_add(1) == Some(complete) => {
            Some(complete)
        }
        _ => None,
    }
}

/// Whether a response is a stream of server-sent events
/// (`text/event-stream`), which is open-ended.
fn is_event_stream(headers: &HeaderMap) -> bool {
    const SSE: &[u8] = b"text/event-stream";
    headers.get(CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.get(..SSE.len())
            .is_some_and(|essence| essence.eq_ignore_ascii_case(SSE))
            // The media type ends there: parameters or nothing follow.
            && matches!(v.get(SSE.len()), None | Some(b';' | b' ' | b'\t'))
    })
}

impl<B: Body<Data = Bytes>> Buffering<B> {
    /// Reads the body, hashing it as it arrives, until it ends, fails, or
    /// outgrows the limit.
    fn poll_buffer(
        &mut self,
        cx: &mut Context<'_>,
        request: &ETagRequest,
    ) -> Poll<Response<ResponseBody<B>>> {
        let limit = request.config.limit;
        let mut budget = FRAMES_PER_POLL;
        loop {
            if budget == 0 {
                // Let the executor run other tasks, then go on.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            budget -= 1;
            let Some(body) = self.body.as_mut() else {
                panic!("ETagFuture polled after completion");
            };
            match ready!(body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        self.len += data.len();
                        if self.len > limit {
                            self.flush_tail();
                            self.frames.push_back(data);
                            // Too large to hash: send what was read, then
                            // the rest, untouched and without a tag.
                            let held = ResponseBody::held(
                                std::mem::take(&mut self.frames),
                                None,
                                self.trailers.take(),
                                self.body.take(),
                            );
                            return Poll::Ready(self.pass_untagged(request, held));
                        }
                        self.keep(data, limit);
                        if self.frames.len() > 1 {
                            self.feed(limit);
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            // Trailers end the body (http-body: the last
                            // frame), as hyper reads it without the layer:
                            // an error after them is not read, so it cannot
                            // be sent before them and cost the client both.
                            self.trailers = Some(trailers);
                            return Poll::Ready(self.tagged(request, limit));
                        }
                    }
                },
                Some(Err(err)) => {
                    self.flush_tail();
                    // Pass the error on where it happened: after the bytes
                    // read before it. No tag: the content is incomplete.
                    // Not even for HEAD is a length stated (a queued error
                    // makes its size inexact): the length read so far is
                    // not the GET's, and the error must reach the server
                    // (a HEAD gets it without the bytes before it). The
                    // request's conditions are still answered from the
                    // response's head, as for any untagged response: the
                    // layer took `If-Modified-Since` from the service below.
                    self.body = None;
                    let held = ResponseBody::held(
                        std::mem::take(&mut self.frames),
                        Some(err),
                        self.trailers.take(),
                        None,
                    );
                    return Poll::Ready(self.pass_untagged(request, held));
                }
                None => return Poll::Ready(self.tagged(request, limit)),
            }
        }
    }

    /// The response for a body read to its end within the limit: tagged,
    /// and its conditions concluded.
    ///
    /// A `Content-Length` from the service below is made to state the
    /// length read. Without the layer, a server frames the response by that
    /// field and stops at it; with a buffered body whose size is now exact,
    /// hyper would send all of it after a shorter field (the rest then reads
    /// as the start of the next response on the connection) or panic in a
    /// debug build. [RFC 9110 §8.6](https://www.rfc-editor.org/rfc/rfc9110#section-8.6): the field is "the number of octets
    /// in the content", which the layer now knows, and a HEAD carries
    /// this same length. A field that declares *more* than the body had
    /// marks it incomplete instead, and the response passes untagged. So
    /// does a 206 of the whole whose body is not the length its
    /// `Content-Range` names.
    fn tagged(&mut self, request: &ETagRequest, limit: usize) -> Response<ResponseBody<B>> {
        self.body = None;
        self.flush_tail();
        let Some(mut parts) = self.parts.take() else {
            panic!("ETagFuture polled after completion");
        };
        let len = self.len as u64;
        let declared = declared_length(&parts.headers);
        // A 206 of the whole declares the content's length as well: the
        // representation's (`bytes 0-99/100` is 100 bytes).
        let ranged = self.ranged;
        let short = declared.is_some_and(|declared| declared > len)
            || ranged.is_some_and(|complete| complete > len);
        // Hashed only if it is to be tagged: a body longer than the whole
        // its 206 names is not that representation either.
        let whole = !short && ranged.is_none_or(|complete| complete == len);
        let etag = whole.then(|| match (self.frames.len(), self.hashed) {
            (0, _) => ETag::from_content(b""),
            (1, 0) => ETag::from_content(&self.frames[0]),
            _ => self.fed_hasher(limit).finish(),
        });
        let body = ResponseBody::held(
            std::mem::take(&mut self.frames),
            None,
            self.trailers.take(),
            None,
        );
        if short {
            // The body ended before the length its head declares: the
            // response is incomplete ([RFC 9112 §6.3](https://www.rfc-editor.org/rfc/rfc9112#section-6.3)), so it gets no tag
            // (a cache would keep the truncated copy as valid), and its
            // length is not restated: the server frames it by the head and
            // finds it short, as it does without the layer.
            return request.pass_untagged(parts, body.short(), Length::FoundShort);
        }
        // Any other field (another number, several lines, no number at
        // all) is restated; an absent one stays absent: the body's exact
        // size tells the server.
        if declared != Some(len) && parts.headers.contains_key(CONTENT_LENGTH) {
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        let Some(etag) = etag else {
            // More than the whole its 206 names: not tagged.
            return request.pass_untagged(parts, body, Length::Unread);
        };
        parts.headers.insert(ETAG, etag.to_header_value());
        request.conclude(parts, Some(etag), body, Length::Read(len))
    }

    /// Keeps a data frame (within the limit): the first one, and any of
    /// at least [`SMALL_FRAME`] bytes, as it came; the others copied into
    /// pieces, none larger than what the limit still allows, so that the
    /// pieces' unused room never takes memory past the limit.
    fn keep(&mut self, data: Bytes, limit: usize) {
        if data.is_empty() {
            return;
        }
        if self.len == data.len() || data.len() >= SMALL_FRAME {
            self.flush_tail();
            self.frames.push_back(data);
            return;
        }
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            if self.tail.capacity() == 0 {
                let kept = self.len - rest.len();
                // `self.len <= limit`, so this leaves room for `rest`.
                let size = kept
                    .next_power_of_two()
                    .clamp(SMALL_FRAME, LARGEST_PIECE)
                    .min(limit - kept);
                self.tail = BytesMut::with_capacity(size);
            }
            let take = rest.len().min(self.tail.capacity() - self.tail.len());
            crate::copy::extend(&mut self.tail, &rest[..take]);
            rest = &rest[take..];
            if self.tail.len() == self.tail.capacity() {
                self.flush_tail();
            }
        }
    }

    /// Moves the piece being gathered, if any, to `frames`.
    fn flush_tail(&mut self) {
        if !self.tail.is_empty() {
            // `split` hands on the filled part and keeps the rest of the
            // piece for the next small frames: a piece cut short by a large
            // frame is not left holding its unused capacity.
            self.frames.push_back(self.tail.split().freeze());
        }
    }

    /// Hashes the frames the hasher has not seen yet.
    fn feed(&mut self, limit: usize) {
        let hasher = self.fed_hasher(limit);
        self.hasher = Some(hasher);
    }

    /// The hasher, taken out, once it has seen every frame; made on first
    /// use, with a window no larger than the limit, which bounds the body
    /// it will see.
    fn fed_hasher(&mut self, limit: usize) -> Box<ETagHasher> {
        let mut hasher = self
            .hasher
            .take()
            .unwrap_or_else(|| Box::new(ETagHasher::with_window(limit)));
        hash_unseen(&mut hasher, &self.frames, &mut self.hashed);
        hasher
    }

    fn pass_untagged(
        &mut self,
        request: &ETagRequest,
        body: ResponseBody<B>,
    ) -> Response<ResponseBody<B>> {
        match self.parts.take() {
            Some(parts) => request.pass_untagged(parts, body, Length::Unread),
            None => panic!("ETagFuture polled after completion"),
        }
    }
}
