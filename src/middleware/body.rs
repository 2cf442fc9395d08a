//! The response body of the middleware.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a response that passed through the middleware: the inner
    /// service's body, streamed as it comes, or bytes the middleware holds
    /// (a problem body it built, or a body it buffered to hash it), possibly
    /// followed by the rest of the inner body.
    ///
    /// An error of the inner body is passed on where it happened in the
    /// stream. The [`ETagService`](super::ETagService) example collects
    /// one. The only response that drops it is one the layer answers in
    /// place of the inner response from its head alone (a 304 for
    /// `If-None-Match: *` or `If-Modified-Since`, a 412 for an `If-Match`
    /// that no tag of a failed body can meet): as for a service that
    /// evaluates those conditions itself, the content is not sent, nor its
    /// error.
    pub struct ResponseBody<B>
    where
        B: Body,
    {
        #[pin]
        kind: Kind<B, B::Error>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B, E> {
        Inner {
            #[pin]
            body: B,
        },
        Held {
            // Frames already read, sent first, in order.
            frames: VecDeque<Bytes>,
            // An error met while reading them, sent after them.
            error: Option<E>,
            // Trailers met while reading them.
            trailers: Option<HeaderMap>,
            // What is left of the inner body, if anything (boxed: it was
            // being read before this body was made).
            rest: Option<Pin<Box<B>>>,
            // The response's head declares more content than the inner
            // body had: no exact size, so that the server frames it by the
            // head and finds it short, as it would without the layer.
            short: bool,
        },
        // The answer to a HEAD whose GET content has no known length: no
        // content (RFC 9110 §9.3.2), with an error met reading it passed
        // on, and a size hint without an upper bound, so that no framework
        // states a Content-Length of 0 from it.
        NoContent {
            error: Option<E>,
        },
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn full(bytes: Bytes) -> Self {
        Self::held(VecDeque::from([bytes]), None, None, None)
    }

    pub(crate) fn empty() -> Self {
        Self::held(VecDeque::new(), None, None, None)
    }

    /// This body's content withheld, for a HEAD: an exact length is for
    /// the caller to state, so only bodies without one come here. An error
    /// already met is kept; anything not read yet is dropped unread.
    pub(crate) fn without_content(self) -> Self {
        let error = match self.kind {
            Kind::Held { error, .. } | Kind::NoContent { error } => error,
            Kind::Inner { .. } => None,
        };
        Self {
            kind: Kind::NoContent { error },
        }
    }

    pub(crate) fn held(
        mut frames: VecDeque<Bytes>,
        error: Option<B::Error>,
        trailers: Option<HeaderMap>,
        rest: Option<Pin<Box<B>>>,
    ) -> Self {
        frames.retain(|b| !b.is_empty());
        Self {
            kind: Kind::Held {
                frames,
                error,
                trailers,
                rest,
                short: false,
            },
        }
    }

    /// The same held body, for a response whose head declares more content
    /// than it holds: its size is not stated as exact.
    pub(crate) fn short(mut self) -> Self {
        if let Kind::Held { short, .. } = &mut self.kind {
            *short = true;
        }
        self
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Held {
                frames,
                error,
                trailers,
                rest,
                ..
            } => {
                if let Some(bytes) = frames.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                if let Some(err) = error.take() {
                    *rest = None;
                    return Poll::Ready(Some(Err(err)));
                }
                if let Some(body) = rest {
                    match body.as_mut().poll_frame(cx) {
                        Poll::Ready(None) => *rest = None,
                        other => return other,
                    }
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            KindProj::NoContent { error } => Poll::Ready(error.take().map(Err)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Held {
                frames,
                error,
                trailers,
                rest,
                ..
            } => {
                frames.is_empty()
                    && error.is_none()
                    && trailers.is_none()
                    && rest.as_ref().is_none_or(|b| b.is_end_stream())
            }
            Kind::NoContent { error } => error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Held {
                frames,
                rest,
                error,
                trailers,
                short,
            } => {
                let held = frames.iter().map(|b| b.len() as u64).sum::<u64>();
                match rest {
                    // An exact size makes an HTTP/1.1 server frame the body
                    // with Content-Length and stop reading it after that
                    // many bytes: a queued error would never be seen (the
                    // client would get a complete-looking truncated body)
                    // and trailers could not be sent. Without an upper
                    // bound the server reads to the end and uses chunked
                    // framing, as it would for the inner body.
                    None if error.is_some() || trailers.is_some() || *short => {
                        let mut hint = SizeHint::new();
                        hint.set_lower(held);
                        hint
                    }
                    None => SizeHint::with_exact(held),
                    Some(rest) => {
                        let r = rest.size_hint();
                        let mut hint = SizeHint::new();
                        hint.set_lower(r.lower().saturating_add(held));
                        if let Some(upper) = r.upper() {
                            hint.set_upper(upper.saturating_add(held));
                        }
                        hint
                    }
                }
            }
            Kind::NoContent { .. } => SizeHint::new(),
        }
    }
}

/// An empty body, as tower-http's `CorsLayer`, `TimeoutLayer` and
/// `ValidateRequestHeaderLayer` need for the responses they make
/// themselves.
impl<B: Body> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<B: Body> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
