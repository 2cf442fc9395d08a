//! A scripted response body and the inner service's reply, for the tests
//! of `ETagLayer` (tests/middleware.rs, tests/middleware_adversarial.rs).
#![allow(dead_code)] // not every test file that includes this uses all of it

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub &'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyError {}

/// One step of a [`TestBody`]'s script.
#[derive(Debug, Clone)]
pub enum Piece {
    Data(Bytes),
    Trailers(HeaderMap),
    Error(&'static str),
}

impl Piece {
    /// The frame (or the error) a body yields for this piece.
    pub fn into_frame(self) -> Result<Frame<Bytes>, BodyError> {
        match self {
            Piece::Data(bytes) => Ok(Frame::data(bytes)),
            Piece::Trailers(map) => Ok(Frame::trailers(map)),
            Piece::Error(why) => Err(BodyError(why)),
        }
    }
}

pub fn data(bytes: &'static [u8]) -> Piece {
    Piece::Data(Bytes::from_static(bytes))
}

pub fn trailers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    map
}

/// How a [`TestBody`] describes its size.
#[derive(Debug, Clone, Copy, Default)]
pub enum Hint {
    /// `SizeHint::default()`.
    #[default]
    Unknown,
    /// Always this exact size, however much is left (a liar).
    FixedExact(u64),
    /// Always this lower bound, no upper one.
    FixedLower(u64),
    /// The exact number of data bytes left (honest).
    Honest,
}

/// A body that yields a script of pieces, optionally `Pending` (waking at
/// once) a number of times before each, with a chosen size hint, an
/// optional `is_end_stream` override, and records of being polled at all
/// and polled after its end.
#[derive(Debug, Clone, Default)]
pub struct TestBody {
    pieces: VecDeque<Piece>,
    hint: Hint,
    pendings_per_piece: usize,
    pending_left: usize,
    end_stream_says: Option<bool>,
    pub polled: Option<Arc<AtomicBool>>,
    pub polls_after_end: Arc<AtomicUsize>,
    ended: bool,
}

impl TestBody {
    pub fn new(pieces: impl IntoIterator<Item = Piece>) -> Self {
        Self {
            pieces: pieces.into_iter().collect(),
            ..Self::default()
        }
    }

    /// `content` split into frames of `frame` bytes.
    pub fn chunked(content: &[u8], frame: usize) -> Self {
        let content = Bytes::copy_from_slice(content);
        let pieces = (0..content.len())
            .step_by(frame.max(1))
            .map(|start| Piece::Data(content.slice(start..(start + frame).min(content.len()))));
        Self::new(pieces)
    }

    pub fn hint(mut self, hint: Hint) -> Self {
        self.hint = hint;
        self
    }

    pub fn with_exact_hint(self) -> Self {
        self.hint(Hint::Honest)
    }

    /// `Pending` `times` times before each piece (and the end).
    pub fn pending(mut self, times: usize) -> Self {
        self.pendings_per_piece = times;
        self.pending_left = times;
        self
    }

    pub fn with_pending(self) -> Self {
        self.pending(1)
    }

    pub fn end_stream_says(mut self, says: bool) -> Self {
        self.end_stream_says = Some(says);
        self
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(polled) = &this.polled {
            polled.store(true, Ordering::SeqCst);
        }
        if this.ended {
            this.polls_after_end.fetch_add(1, Ordering::SeqCst);
            return Poll::Ready(None);
        }
        if this.pending_left > 0 {
            this.pending_left -= 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.pending_left = this.pendings_per_piece;
        match this.pieces.pop_front() {
            Some(piece) => Poll::Ready(Some(piece.into_frame())),
            None => {
                this.ended = true;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.end_stream_says.unwrap_or(false)
    }

    fn size_hint(&self) -> SizeHint {
        match self.hint {
            Hint::Unknown => SizeHint::default(),
            Hint::FixedExact(n) => SizeHint::with_exact(n),
            Hint::FixedLower(n) => {
                let mut hint = SizeHint::new();
                hint.set_lower(n);
                hint
            }
            Hint::Honest => SizeHint::with_exact(
                self.pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Data(b) => b.len() as u64,
                        _ => 0,
                    })
                    .sum(),
            ),
        }
    }
}

/// What an inner service answers: status, headers, body.
#[derive(Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: TestBody,
}

impl Reply {
    pub fn ok(body: TestBody) -> Self {
        Self {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body,
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        self.headers
            .append(name, HeaderValue::from_str(value).unwrap());
        self
    }

    /// The response, as the inner service sends it (again and again).
    pub fn response(&self) -> Response<TestBody> {
        let mut res = Response::new(self.body.clone());
        *res.status_mut() = self.status;
        *res.headers_mut() = self.headers.clone();
        res
    }
}
