//! Lost updates, shown and cured.
//!
//! Starts the items service (axum) in-process on a free port and runs
//! concurrent clients that each increment a shared counter by reading the
//! item, adding one, and writing it back — twice:
//!
//! 1. "last write wins": the service in opt-in mode, clients send no
//!    `If-Match`. Two clients that read the same value both write value+1,
//!    and one increment silently disappears.
//! 2. optimistic locking: the service in strict mode, clients send
//!    `If-Match` with the ETag they read and, on 412, re-read and retry with
//!    `ifmatch::Retry`. No increment is lost.
//!
//! The clients send the counter and a fixed name, nothing that tells them
//! apart: two clients that read the same value send byte-identical
//! bodies, and the second still gets its 412. The service never answers a
//! stale `If-Match` with 200 because the item already holds the body (RFC
//! 9110 §13.1.1 would allow it, for a PUT retried after a lost response),
//! as that would tell the second client its increment succeeded when it
//! was only equal to the first.
//!
//! ```text
//! cargo run --release --example lost_update_demo
//! ```

#[path = "shared/axum_app.rs"]
mod axum_app;
#[path = "shared/items.rs"]
mod items;
#[path = "shared/postgres.rs"]
mod postgres;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ifmatch::Retry;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MATCH, LOCATION};
use serde_json::{Value, json};

use crate::items::{Items, Store};

const CLIENTS: u64 = 8;
const INCREMENTS: u64 = 50;

/// What one run measured.
struct Report {
    attempted: u64,
    acknowledged: u64,
    final_value: u64,
    conflicts: u64,
    gave_up: u64,
    elapsed: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Starts the service in-process, on a free port.
async fn start(opt_in: bool) -> Result<String, BoxError> {
    let app = axum_app::router(Items::new(Store::memory()), items::gate(opt_in));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

fn counter_of(item: &Value) -> u64 {
    item["counter"].as_u64().unwrap_or(0)
}

/// A read: the counter and the ETag it came with.
async fn read(http: &reqwest::Client, url: &str) -> Result<(u64, String), BoxError> {
    let res = http.get(url).send().await?.error_for_status()?;
    let etag = res
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let item: Value = res.json().await?;
    Ok((counter_of(&item), etag))
}

/// Why a conditional increment did not go through.
#[derive(Debug)]
enum Failure {
    Conflict,
    Other(String),
}

impl ifmatch::IsConflict for Failure {
    fn is_conflict(&self) -> bool {
        matches!(self, Failure::Conflict)
    }
}

async fn run(locking: bool) -> Result<Report, BoxError> {
    let base = start(!locking).await?;
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/items"))
        .json(&json!({ "name": "shared counter", "counter": 0 }))
        .send()
        .await?
        .error_for_status()?;
    let path = created
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("no Location")?
        .to_owned();
    let url = format!("{base}{path}");

    let acknowledged = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let gave_up = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, url) = (http.clone(), url.clone());
        let (acknowledged, conflicts, gave_up) =
            (acknowledged.clone(), conflicts.clone(), gave_up.clone());
        clients.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                let body = |n: u64| json!({ "name": "shared counter", "counter": n + 1 });
                if !locking {
                    // Read, add one, write back: no precondition.
                    let Ok((n, _)) = read(&http, &url).await else {
                        continue;
                    };
                    let body = body(n);
                    if let Ok(res) = http.put(&url).json(&body).send().await {
                        if res.status().is_success() {
                            acknowledged.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    continue;
                }
                // Read, add one, write back under If-Match; on 412 re-read
                // and reapply.
                let retry = Retry::new()
                    .attempts(100)
                    .backoff(Duration::from_millis(1), Duration::from_millis(20));
                let result = retry
                    .run(
                        |_attempt| {
                            let (http, url, conflicts, body) = (&http, &url, &conflicts, &body);
                            async move {
                                let (n, etag) = read(http, url)
                                    .await
                                    .map_err(|e| Failure::Other(e.to_string()))?;
                                let body = body(n);
                                let res = http
                                    .put(url)
                                    .header(IF_MATCH, etag)
                                    .json(&body)
                                    .send()
                                    .await
                                    .map_err(|e| Failure::Other(e.to_string()))?;
                                match res.status() {
                                    s if s.is_success() => Ok(()),
                                    StatusCode::PRECONDITION_FAILED => {
                                        conflicts.fetch_add(1, Ordering::Relaxed);
                                        Err(Failure::Conflict)
                                    }
                                    s => Err(Failure::Other(s.to_string())),
                                }
                            }
                        },
                        tokio::time::sleep,
                    )
                    .await;
                match result {
                    Ok(()) => {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => {
                        if let Failure::Other(why) = failure {
                            eprintln!("client {client}: {why}");
                        }
                        gave_up.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for client in clients {
        client.await?;
    }
    let elapsed = started.elapsed();
    let (final_value, _) = read(&http, &url).await?;
    Ok(Report {
        attempted: CLIENTS * INCREMENTS,
        acknowledged: acknowledged.load(Ordering::Relaxed),
        final_value,
        conflicts: conflicts.load(Ordering::Relaxed),
        gave_up: gave_up.load(Ordering::Relaxed),
        elapsed,
    })
}

fn print_row(name: &str, r: &Report) {
    // An update is lost when the server acknowledged it (2xx) but the
    // counter does not show it.
    let lost = r.acknowledged.saturating_sub(r.final_value);
    println!(
        "{name:<34} {:>9} {:>12} {:>11} {:>6} {:>12} {:>8} {:>9.2?}",
        r.attempted, r.acknowledged, r.final_value, lost, r.conflicts, r.gave_up, r.elapsed
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    println!(
        "{CLIENTS} clients x {INCREMENTS} read-modify-write increments of one counter, over HTTP\n"
    );
    println!(
        "{:<34} {:>9} {:>12} {:>11} {:>6} {:>12} {:>8} {:>9}",
        "mode",
        "attempted",
        "acknowledged",
        "final value",
        "lost",
        "412 retries",
        "gave up",
        "elapsed"
    );
    let without = match run(false).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("lost_update_demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_row("last write wins (no If-Match)", &without);
    let with = match run(true).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("lost_update_demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_row("If-Match + ifmatch::Retry", &with);
    println!();
    let lost_without = without.acknowledged.saturating_sub(without.final_value);
    let lost_with = with.acknowledged.saturating_sub(with.final_value);
    println!(
        "Without preconditions {lost_without} acknowledged updates vanished: two clients read the \
         same value and the later write erased the earlier one."
    );
    println!(
        "With If-Match every stale write got 412 and was reapplied to fresh data: {lost_with} lost."
    );
    if lost_with != 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
