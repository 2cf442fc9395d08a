//! The tower middleware in process, no sockets: an axum router with a
//! trivial JSON handler, with and without each layer, and the auto-ETag
//! layer's hashing of a 1 MiB body arriving in frames.
//!
//! Performance bars (issue 3): `PreconditionLayer` with an in-memory
//! resolver adds at most 5 % per request; `ETagLayer` on a 1 KiB JSON body
//! adds at most 10 %; a 1 MiB body arriving in 8 KiB frames is hashed by
//! `ETagLayer` at at least 0.95× the one-shot blake3 throughput.
//!
//! Run with
//! `cargo bench --bench middleware -- --warm-up-time 1 --measurement-time 3`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::ready;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use axum::body::Body as AxumBody;
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::request::Parts;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use ifmatch::middleware::{ETagLayer, PreconditionLayer};
use ifmatch::{ETagHasher, Expected, MemoryStore};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt, service_fn};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A JSON document of about 1 KiB.
static DOC: LazyLock<Value> = LazyLock::new(|| {
    let doc = json!({
        "id": 1,
        "title": "Quarterly report",
        "owner": {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com"},
        "tags": ["finance", "q3", "draft", "internal", "reviewed"],
        "sections": (0..8).map(|i| json!({
            "n": i,
            "heading": format!("Section {i}"),
            "text": "Revenue grew while costs held steady over the quarter.",
        })).collect::<Vec<_>>(),
        "version": 7,
    });
    let len = serde_json::to_vec(&doc).map_or(0, |v| v.len());
    assert!((900..=1200).contains(&len), "document is {len} bytes");
    doc
});

async fn handler() -> Json<&'static Value> {
    Json(&DOC)
}

fn plain() -> Router {
    Router::new().route("/items/{id}", get(handler))
}

fn with_precondition() -> Router {
    let store: Arc<MemoryStore<String, u64>> = Arc::new(MemoryStore::new());
    store.put("1".to_owned(), &Expected::Absent, 7).unwrap();
    let resolve = move |parts: &Parts| {
        let id = parts.uri.path().rsplit('/').next().unwrap_or_default();
        ready(Ok::<_, Infallible>(store.get(id)))
    };
    plain().route_layer(PreconditionLayer::new(resolve))
}

/// The same router with a layer that does nothing: what axum's wrapping of
/// a layered route (a boxed service, a boxed future) costs by itself.
fn with_noop_layer() -> Router {
    plain().route_layer(tower::layer::layer_fn(|inner| inner))
}

fn with_etag() -> Router {
    plain().layer(ETagLayer::new())
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// One GET through `app`, body read to the end.
async fn get_item(app: Router) -> Bytes {
    let req = Request::get("/items/1").body(AxumBody::empty()).unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert!(res.status().is_success());
    res.into_body().collect().await.unwrap().to_bytes()
}

fn router(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("router");
    for (name, app) in [
        ("plain", plain()),
        ("noop_route_layer", with_noop_layer()),
        ("precondition_layer", with_precondition()),
        ("etag_layer", with_etag()),
    ] {
        // Build the routes once, as `axum::serve` does (through
        // `into_make_service`); an unfinished router rebuilds the matched
        // route, layers included, on every request.
        let app: Router = app.with_state(());
        // Sanity: every variant answers the same document.
        let body = rt.block_on(get_item(app.clone()));
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), *DOC);
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(get_item(black_box(app.clone()))));
        });
    }
    group.finish();
}

/// A body yielding the given frames, each ready at once.
struct Frames(VecDeque<Bytes>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    /// Unknown, as for a streamed body: the layer cannot size its buffer
    /// up front.
    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Deterministic, incompressible-looking bytes.
fn content(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An `ETagLayer` over a service answering `frames`.
fn etag_service(
    frames: Vec<Bytes>,
) -> impl Service<
    Request<()>,
    Response = Response<ifmatch::middleware::ResponseBody<Frames>>,
    Error = Infallible,
> + Clone {
    let inner = service_fn(move |_req: Request<()>| {
        ready(Ok::<_, Infallible>(Response::new(Frames(
            frames.iter().cloned().collect(),
        ))))
    });
    ETagLayer::new().layer(inner)
}

/// One GET through an `ETagLayer` service: whether the response was
/// tagged, and the length of the body passed on.
async fn tag_body<S>(svc: S) -> (bool, usize)
where
    S: Service<
            Request<()>,
            Response = Response<ifmatch::middleware::ResponseBody<Frames>>,
            Error = Infallible,
        >,
{
    let res = svc.oneshot(Request::new(())).await.unwrap();
    let tagged = res.headers().contains_key(http::header::ETAG);
    // Drain the frames as a server would write them, without
    // concatenating them (which would add a 1 MiB copy that is not the
    // layer's).
    let mut body = res.into_body();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            len += black_box(data).len();
        }
    }
    (tagged, len)
}

fn etag_body_frames(c: &mut Criterion) {
    let rt = runtime();
    let data = Bytes::from(content(MIB));
    let framed = |size: usize| -> Vec<Bytes> {
        (0..data.len())
            .step_by(size)
            .map(|i| data.slice(i..(i + size).min(data.len())))
            .collect()
    };
    let mut group = c.benchmark_group("etag_body_frames");
    group.throughput(Throughput::Bytes(MIB as u64));
    for (name, frames) in [
        ("ETagLayer 1 MiB in 8 KiB frames", framed(8 * KIB)),
        ("ETagLayer 1 MiB in one frame", framed(MIB)),
    ] {
        let svc = etag_service(frames);
        // Sanity: the whole body is tagged and passed on.
        assert_eq!(rt.block_on(tag_body(svc.clone())), (true, MIB));
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(tag_body(black_box(svc.clone()))));
        });
    }
    // Reference: the streaming hasher alone, fed the same 8 KiB pieces
    // (no buffering of the body), to tell hashing from buffering costs.
    group.bench_function("ETagHasher 1 MiB in 8 KiB pieces", |b| {
        b.iter(|| {
            let mut hasher = ETagHasher::new();
            for piece in black_box(&data[..]).chunks(8 * KIB) {
                hasher.update(piece);
            }
            hasher.finish()
        });
    });
    group.bench_function("blake3::hash 1 MiB one-shot", |b| {
        b.iter(|| blake3::hash(black_box(&data[..])));
    });
    group.finish();
}

criterion_group!(benches, router, etag_body_frames);
criterion_main!(benches);
