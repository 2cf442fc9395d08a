//! The evaluator and content tags do not touch the heap on any path that
//! does not build a response (issue: "No heap allocation on any path that
//! does not build a response").
//!
//! `allocation_counter` replaces the global allocator of this test binary
//! only, and counts per thread.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{
    HeaderName, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, RANGE,
};
use http::{HeaderMap, HeaderValue, Method};
use ifmatch::{ETag, Policy, RawHeaders, Validators};

fn header_map(pairs: &[(HeaderName, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn many_tags(n: usize, last: &ETag) -> String {
    let mut s: Vec<String> = (0..n)
        .map(|i| ETag::from_content(i.to_string()).to_string())
        .collect();
    s.push(last.to_string());
    s.join(", ")
}

#[test]
fn the_counter_sees_allocations() {
    // Without this, the tests below could pass with a counter that counts
    // nothing.
    let long = "x".repeat(100);
    let info = allocation_counter::measure(|| {
        std::hint::black_box(ETag::strong(&long).ok());
    });
    assert!(info.count_total > 0, "a 102-byte tag is stored on the heap");
}

#[test]
fn evaluating_preconditions_never_allocates() {
    let current_tag = ETag::from_content(b"the current representation");
    let modified = UNIX_EPOCH + Duration::from_secs(784_111_777);
    let current = Validators::new(current_tag.clone()).with_last_modified(modified);
    let now = modified + Duration::from_secs(3600);
    let date = "Sun, 06 Nov 1994 08:49:37 GMT".to_owned();
    let tag = current_tag.to_string();
    let cases: Vec<(&str, Vec<(HeaderName, String)>)> = vec![
        ("no conditions", vec![]),
        ("If-Match matching", vec![(IF_MATCH, tag.clone())]),
        ("If-Match stale", vec![(IF_MATCH, "\"old\"".to_owned())]),
        ("If-Match star", vec![(IF_MATCH, "*".to_owned())]),
        (
            "If-Match 10,000 tags",
            vec![(IF_MATCH, many_tags(10_000, &current_tag))],
        ),
        (
            "If-Match malformed",
            vec![(IF_MATCH, "\"a\" \"b\"".to_owned())],
        ),
        ("If-None-Match matching", vec![(IF_NONE_MATCH, tag.clone())]),
        ("If-None-Match star", vec![(IF_NONE_MATCH, "*".to_owned())]),
        (
            "If-None-Match malformed",
            vec![(IF_NONE_MATCH, "*,".to_owned())],
        ),
        ("If-Modified-Since", vec![(IF_MODIFIED_SINCE, date.clone())]),
        (
            "If-Unmodified-Since",
            vec![(IF_UNMODIFIED_SINCE, date.clone())],
        ),
        (
            "invalid date",
            vec![(IF_MODIFIED_SINCE, "yesterday".to_owned())],
        ),
        (
            "If-Range with a tag",
            vec![(RANGE, "bytes=0-9".to_owned()), (IF_RANGE, tag.clone())],
        ),
        (
            "If-Range with a date",
            vec![(RANGE, "bytes=0-9".to_owned()), (IF_RANGE, date.clone())],
        ),
        (
            "everything at once",
            vec![
                (IF_MATCH, tag.clone()),
                (IF_NONE_MATCH, "\"x\", W/\"y\"".to_owned()),
                (IF_UNMODIFIED_SINCE, date.clone()),
                (IF_MODIFIED_SINCE, date.clone()),
                (RANGE, "bytes=0-9".to_owned()),
                (IF_RANGE, tag.clone()),
            ],
        ),
    ];
    let policies = [
        Policy::strict(),
        Policy::opt_in(),
        Policy::strict().accept_if_unmodified_since(true),
    ];
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::POST,
    ];
    for (name, pairs) in &cases {
        let map = header_map(pairs);
        let raw: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
            .collect();
        let raw = RawHeaders::new(raw.iter().copied());
        for policy in &policies {
            for method in &methods {
                for target in [Some(&current), None] {
                    let info = allocation_counter::measure(|| {
                        let _ = std::hint::black_box(policy.evaluate(method, &map, target, now));
                        let _ = std::hint::black_box(policy.evaluate(method, &raw, target, now));
                    });
                    assert_eq!(
                        info.count_total,
                        0,
                        "{name}, {method}, target present: {}",
                        target.is_some()
                    );
                }
            }
        }
    }
}

#[test]
fn a_gate_confirming_retried_puts_copies_no_list_a_client_sends() {
    // With `confirm_retried_puts`, a stale `If-Match` is checked for being
    // one strong tag (a retry). The client chooses the field's length: the
    // check must not copy the list, which for tags of two quotes held 32
    // times the field's size (9 MiB for a 300 kB field, 13 MiB within
    // hyper's default header limit), on every such request.
    let current = ETag::from_version(2);
    let gate = ifmatch::Gate::new().confirm_retried_puts(true);
    let peak = |value: String| {
        let headers = header_map(&[(IF_MATCH, value)]);
        let info = allocation_counter::measure(|| {
            let decision = gate.check(&Method::PUT, &headers, Some(&current), SystemTime::now());
            assert!(matches!(decision, ifmatch::Decision::Respond(ref res) if res.status() == 412));
        });
        info.bytes_max
    };
    // Two tags and 100,000: neither is a retry, both get the same 412.
    let two = peak("\"v1\", \"v0\"".to_owned());
    let many = peak(vec!["\"\""; 100_000].join(","));
    assert!(
        many <= two,
        "peak heap {many} B for 100,000 tags, {two} B for two"
    );
}

#[test]
fn building_content_and_version_tags_never_allocates() {
    let data = vec![7u8; 64 * 1024];
    for len in [0, 64, 1024, 64 * 1024] {
        let info = allocation_counter::measure(|| {
            std::hint::black_box(ETag::from_content(&data[..len]));
        });
        assert_eq!(info.count_total, 0, "from_content of {len} bytes");
    }
    let info = allocation_counter::measure(|| {
        std::hint::black_box(ETag::from_version(u64::MAX));
        std::hint::black_box(ETag::from_timestamp(SystemTime::UNIX_EPOCH));
        std::hint::black_box(ETag::parse(b"W/\"a short tag\"").ok());
    });
    assert_eq!(info.count_total, 0);
}

#[test]
fn hashing_up_to_two_kib_or_in_whole_windows_never_allocates() {
    // `from_serialize` documents "a 64 KiB buffer once the encoding passes
    // 2 KiB", and `ETagHasher` coalesces only small pieces: content that
    // small, or fed in pieces of a whole window, is hashed without one.
    let numbers: Vec<u32> = (0..600).collect(); // about 1.2 KiB encoded
    let info = allocation_counter::measure(|| {
        std::hint::black_box(ETag::from_serialize(&numbers).unwrap());
    });
    assert_eq!(info.count_total, 0, "from_serialize of 600 numbers");
    let data = vec![7u8; 256 * 1024];
    for (total, piece) in [
        (2048, 10),
        (2048, 100),
        (2048, 1000),
        (256 * 1024, 64 * 1024),
    ] {
        let info = allocation_counter::measure(|| {
            let mut hasher = ifmatch::ETagHasher::new();
            for chunk in data[..total].chunks(piece) {
                hasher.update(chunk);
            }
            std::hint::black_box(hasher.finish());
        });
        assert_eq!(info.count_total, 0, "{total} bytes in pieces of {piece}");
    }
}

/// `frames` data frames of the `sizes` in turn, produced one at a time, each
/// in its own allocation (a streaming serializer, a row-per-frame export),
/// with no size hint.
#[cfg(feature = "middleware")]
struct Drip {
    frames: usize,
    // Frame sizes, taken in turn from the last.
    sizes: Vec<usize>,
}

#[cfg(feature = "middleware")]
impl http_body::Body for Drip {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.frames == 0 {
            return std::task::Poll::Ready(None);
        }
        self.frames -= 1;
        let size = self.sizes[self.frames % self.sizes.len()];
        let data = bytes::Bytes::from(vec![b'x'; size]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data))))
    }
}

/// Sends a GET through `layer` to a service that answers with `drip`:
/// the response's `ETag`, and what the exchange took from the heap.
#[cfg(feature = "middleware")]
fn through_etag_layer(
    rt: &tokio::runtime::Runtime,
    layer: ifmatch::middleware::ETagLayer,
    drip: Drip,
) -> (
    Option<http::HeaderValue>,
    allocation_counter::AllocationInfo,
) {
    use tower::{Layer as _, ServiceExt as _};

    let mut drip = Some(drip);
    let inner = tower::service_fn(move |_req: http::Request<()>| {
        let body = drip.take().expect("one request");
        std::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(body)))
    });
    let svc = layer.layer(inner);
    let mut etag = None;
    let info = allocation_counter::measure(|| {
        rt.block_on(async {
            let res = svc.oneshot(http::Request::new(())).await.unwrap();
            etag = res.headers().get(http::header::ETAG).cloned();
        });
    });
    (etag, info)
}

#[cfg(feature = "middleware")]
#[test]
fn the_etag_layer_holds_a_body_of_small_frames_in_about_its_size() {
    const LIMIT: usize = ifmatch::middleware::DEFAULT_ETAG_LIMIT;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Frame sizes that fill the gathering pieces exactly, ones that
    // straddle them, and small frames cut short by large ones.
    for sizes in [
        vec![1],
        vec![100],
        vec![4097],
        vec![40_000],
        vec![1, 4096],
        vec![3, 5000, 1, 1],
    ] {
        let frames = LIMIT / sizes.iter().sum::<usize>() * sizes.len();
        let len: usize = (0..frames).map(|i| sizes[i % sizes.len()]).sum();
        let drip = Drip {
            frames,
            sizes: sizes.clone(),
        };
        let (etag, info) = through_etag_layer(&rt, ifmatch::middleware::ETagLayer::new(), drip);
        let want = ETag::from_content(vec![b'x'; len]);
        assert_eq!(
            etag,
            Some(want.to_header_value()),
            "frames of {sizes:?} bytes"
        );
        // The body itself, one gathering piece not yet full, the frame
        // being copied, and bookkeeping: a quarter of the limit is ample.
        // One allocation per frame held would be 30-50 times the limit.
        assert!(
            info.bytes_max <= (LIMIT + LIMIT / 4) as u64,
            "frames of {sizes:?} bytes: peak heap {} B for a {len} B body",
            info.bytes_max
        );
    }
}

#[cfg(feature = "middleware")]
#[test]
fn the_etag_layer_never_reserves_room_past_a_small_limit() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Small frames are gathered in pieces of 4 KiB and more; under a small
    // limit a piece must not be larger than what the limit still allows,
    // also when a large first frame (kept as it came) used most of it.
    // (`Drip` takes the sizes from the last.)
    let large_then_small = [&[10; 1000][..], &[30_000]].concat();
    for (limit, sizes) in [
        (100, vec![1]),
        (1000, vec![10]),
        (3000, vec![7]),
        (40_000, large_then_small),
    ] {
        let frames = limit / sizes.iter().sum::<usize>() * sizes.len();
        let last = sizes[sizes.len() - 1];
        let drip = Drip { frames, sizes };
        let layer = ifmatch::middleware::ETagLayer::new().limit(limit);
        let (etag, info) = through_etag_layer(&rt, layer, drip);
        assert!(etag.is_some());
        // The body, the hasher's staging window (no larger than the limit,
        // and only once 2 KiB were hashed), the hasher itself (about 2.5
        // KiB, boxed) and bookkeeping. A gathering piece of 4 KiB, a 64 KiB
        // window, or a 32 KiB piece after the 30,000-byte frame (the next
        // power of two of what was kept, not the 10,000 bytes the limit
        // still allows) would exceed this.
        assert!(
            info.bytes_max <= (2 * limit + 4096) as u64,
            "limit {limit}, {frames} frames, the first of {} B: peak heap {} B",
            last,
            info.bytes_max
        );
    }
}

#[cfg(feature = "middleware")]
#[test]
fn the_etag_layer_tags_a_body_of_one_frame_without_a_hasher_or_a_copy() {
    // Most JSON responses are one frame: the layer hashes it in place, in
    // one go. A hasher (about 2.5 KiB, boxed) or a gathering piece (4 KiB
    // and up) would show here; the rest of the exchange takes under 1 KiB.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for len in [0, 100, 3000, 10_000] {
        let drip = Drip {
            frames: 1,
            sizes: vec![len],
        };
        let (etag, info) = through_etag_layer(&rt, ifmatch::middleware::ETagLayer::new(), drip);
        let want = ETag::from_content(vec![b'x'; len]);
        assert_eq!(etag, Some(want.to_header_value()), "one frame of {len} B");
        assert!(
            info.bytes_max <= (len + 2048) as u64,
            "one frame of {len} B: peak heap {} B",
            info.bytes_max
        );
    }
}

#[test]
fn a_memory_store_keyed_by_string_copies_a_str_key_only_to_create() {
    // `MemoryStore<String, V>` is a `ConditionalStore<str>`, documented to
    // copy the key "only by a write that goes ahead": a refused write, or
    // one that replaces what is stored under the key, needs no `String`.
    use ifmatch::{ConditionalStore, Expected, MemoryStore};

    fn now<F: std::future::Future>(future: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(future).poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => unreachable!("MemoryStore never waits"),
        }
    }
    let store: MemoryStore<String, u32> = MemoryStore::new();
    let key = "a key longer than any inline buffer".to_owned();
    let v1 = now(store.store(key.as_str(), &Expected::Absent, 1)).unwrap();
    let stale = Expected::ETag(ETag::from_version(9));
    let info = allocation_counter::measure(|| {
        let refused = now(store.store(key.as_str(), &stale, 2));
        assert!(refused.is_err());
    });
    assert_eq!(info.count_total, 0, "a refused write copied the key");
    let info = allocation_counter::measure(|| {
        let under_v1 = Expected::ETag(v1.etag().clone());
        let written = now(store.store(key.as_str(), &under_v1, 3)).unwrap();
        assert!(!written.created());
    });
    assert_eq!(info.count_total, 0, "a replacing write copied the key");
    assert_eq!(
        now(store.load(key.as_str())).unwrap().map(|d| *d.value()),
        Some(3)
    );
}
