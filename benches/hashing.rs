//! Content tags against raw blake3, so each ratio is read off one run.
//!
//! Performance bars (DESIGN.md): content tags within 5% of raw blake3
//! throughput from 16 KiB up and within 1.3× its time at 64 B; the streaming
//! hasher with 8 KiB pieces within 5% of the one-shot tag at 1 MiB; value
//! tags at least 1.5× faster than `serde_json::to_vec` followed by a hash.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ifmatch::{ETag, ETagHasher};
use serde::Serialize;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Deterministic, incompressible-looking bytes (blake3's speed does not
/// depend on the content, but zeros could flatter a copy).
fn body(len: usize) -> Vec<u8> {
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

fn size_label(len: usize) -> String {
    match len {
        n if n >= MIB => format!("{} MiB", n / MIB),
        n if n >= KIB => format!("{} KiB", n / KIB),
        n => format!("{n} B"),
    }
}

fn content_etag(c: &mut Criterion) {
    let mut group = c.benchmark_group("content_etag");
    for len in [64, KIB, 16 * KIB, 64 * KIB, MIB, 16 * MIB] {
        let data = body(len);
        group.throughput(Throughput::Bytes(len as u64));
        let label = size_label(len);
        group.bench_with_input(
            BenchmarkId::new("ETag::from_content", &label),
            &data,
            |b, d| {
                b.iter(|| ETag::from_content(black_box(d.as_slice())));
            },
        );
        group.bench_with_input(BenchmarkId::new("blake3::hash", &label), &data, |b, d| {
            b.iter(|| blake3::hash(black_box(d.as_slice())));
        });
    }
    group.finish();
}

/// The 64-byte case again, each hash depending on the one before (its
/// result is copied into the next input), so what is timed is the latency
/// of one tag, as a request that computes one tag sees it. The group above
/// times throughput: independent calls overlap in the CPU, and a raw hash,
/// whose result nothing reads, overlaps more than a hash followed by the
/// encoding that reads it.
fn content_etag_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("content_etag_latency");
    group.bench_function("ETag::from_content/64 B", |b| {
        let mut data = [7u8; 64];
        b.iter(|| {
            let tag = ETag::from_content(black_box(&data));
            data[..32].copy_from_slice(&tag.tag()[..32]);
        });
        black_box(data);
    });
    group.bench_function("blake3::hash/64 B", |b| {
        let mut data = [7u8; 64];
        b.iter(|| {
            let hash = blake3::hash(black_box(&data));
            data[..32].copy_from_slice(hash.as_bytes());
        });
        black_box(data);
    });
    group.finish();
}

fn streaming_etag(c: &mut Criterion) {
    const PIECE: usize = 8 * KIB;
    let data = body(MIB);
    let mut group = c.benchmark_group("streaming_etag");
    group.throughput(Throughput::Bytes(MIB as u64));
    group.bench_function("ETagHasher 8 KiB pieces", |b| {
        b.iter(|| {
            let mut hasher = ETagHasher::new();
            for piece in black_box(data.as_slice()).chunks(PIECE) {
                hasher.update(piece);
            }
            hasher.finish()
        });
    });
    // The same, from the source offset (modulo 4 KiB) at which the pieces
    // hash slowest in this process. Where the staging window lies relative
    // to the pieces is up to the allocator, and with an unfixed glibc on AMD
    // Zen 3/4 one offset in a hundred made every copy into the window about
    // 15 times slower (see `src/copy.rs`); this row shows that no offset
    // does any more.
    let spread = body(MIB + 4 * KIB);
    let hash_at = |offset: usize| {
        let mut hasher = ETagHasher::new();
        for piece in black_box(&spread[offset..offset + MIB]).chunks(PIECE) {
            hasher.update(piece);
        }
        hasher.finish()
    };
    let slowest = (0..4 * KIB)
        .step_by(8)
        .max_by_key(|&offset| {
            let start = std::time::Instant::now();
            black_box(hash_at(offset));
            start.elapsed()
        })
        .unwrap_or(0);
    group.bench_function("ETagHasher 8 KiB pieces, slowest source offset", |b| {
        b.iter(|| hash_at(slowest));
    });
    group.bench_function("ETag::from_content one-shot", |b| {
        b.iter(|| ETag::from_content(black_box(data.as_slice())));
    });
    group.bench_function("blake3::Hasher 8 KiB pieces", |b| {
        b.iter(|| {
            let mut hasher = blake3::Hasher::new();
            for piece in black_box(data.as_slice()).chunks(PIECE) {
                hasher.update(piece);
            }
            hasher.finalize()
        });
    });
    group.finish();
}

#[derive(Serialize)]
struct Address {
    street: String,
    city: String,
    postal_code: String,
    country: String,
}

#[derive(Serialize)]
struct LineItem {
    sku: String,
    description: String,
    quantity: u32,
    unit_price_cents: i64,
}

/// An order as a JSON API would return it: about 1 KiB as JSON.
#[derive(Serialize)]
struct Order {
    id: u64,
    customer: String,
    email: String,
    status: String,
    created_at: String,
    note: Option<String>,
    discount: Option<f64>,
    total_cents: i64,
    paid: bool,
    shipping: Address,
    items: Vec<LineItem>,
    tags: Vec<String>,
}

fn order() -> Order {
    Order {
        id: 48_151_623,
        customer: "Ada Lovelace".to_owned(),
        email: "ada.lovelace@example.com".to_owned(),
        status: "awaiting_shipment".to_owned(),
        created_at: "2025-03-14T15:09:26Z".to_owned(),
        note: Some("Please leave the parcel with the concierge if nobody answers.".to_owned()),
        discount: None,
        total_cents: 12_345,
        paid: true,
        shipping: Address {
            street: "12 Analytical Engine Lane".to_owned(),
            city: "London".to_owned(),
            postal_code: "NW1 6XE".to_owned(),
            country: "GB".to_owned(),
        },
        items: (0..5)
            .map(|i| LineItem {
                sku: format!("SKU-{:06}", 1000 + i * 37),
                description: format!("Punched card set, volume {i}, 80 columns"),
                quantity: 1 + i,
                unit_price_cents: 1999 + i64::from(i) * 250,
            })
            .collect(),
        tags: ["priority", "gift", "fragile", "eu-vat-exempt"]
            .map(str::to_owned)
            .to_vec(),
    }
}

fn serde_etag(c: &mut Criterion) {
    let value = order();
    let json_len = serde_json::to_vec(&value).unwrap().len();
    let mut group = c.benchmark_group("serde_etag");
    // Throughput in JSON bytes, the same for both, so the ratio is fair.
    group.throughput(Throughput::Bytes(json_len as u64));
    let label = format!("{json_len} B JSON");
    group.bench_with_input(
        BenchmarkId::new("ETag::from_serialize", &label),
        &value,
        |b, v| b.iter(|| ETag::from_serialize(black_box(v)).unwrap()),
    );
    group.bench_with_input(
        BenchmarkId::new("serde_json::to_vec + blake3::hash", &label),
        &value,
        |b, v| b.iter(|| blake3::hash(&serde_json::to_vec(black_box(v)).unwrap())),
    );
    // For context only: the serialization half of the line above.
    group.bench_with_input(
        BenchmarkId::new("serde_json::to_vec alone", &label),
        &value,
        |b, v| b.iter(|| serde_json::to_vec(black_box(v)).unwrap()),
    );
    group.finish();
}

criterion_group!(
    benches,
    content_etag,
    content_etag_latency,
    streaming_etag,
    serde_etag
);
criterion_main!(benches);
