//! Several instances, one database: the example services as separate
//! processes on one PostgreSQL database, driven over HTTP.
//!
//! The tests that need a database run only when `DATABASE_URL` is set (CI
//! sets it); without it they print that they were skipped and pass. When
//! `IFMATCH_PG_MARKER` names a file, each test that really used the
//! database appends its name to it, so CI can fail if none ran.
//!
//! The example binaries are the ones `cargo test --all-features` builds
//! next to this test (target/<profile>/examples/).
#![cfg(feature = "middleware")]

#[path = "support/examples.rs"]
mod examples;
// The store itself, for what no request can reach any more (see
// `the_store_reports_data_the_database_refuses_as_refused_not_unavailable`).
#[path = "../examples/shared/items.rs"]
mod items;
#[path = "support/patch_star.rs"]
mod patch_star;
#[path = "../examples/shared/postgres.rs"]
mod postgres;
#[path = "support/xorshift.rs"]
mod xorshift;

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH, LAST_MODIFIED, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::examples::example;
use crate::patch_star::patch_star;

fn database_url(test: &str) -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    match &url {
        Some(_) => {
            if let Ok(marker) = std::env::var("IFMATCH_PG_MARKER") {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(marker);
                if let Ok(mut file) = file {
                    let _ = writeln!(file, "{test}");
                }
            }
        }
        None => eprintln!("{test}: skipped, DATABASE_URL is not set"),
    }
    url
}

/// A running example service, killed when dropped.
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    fn start(name: &str, database_url: &str) -> Self {
        Self::start_with(name, database_url, &[])
    }

    /// One instance of each example service, on one database.
    fn both(database_url: &str) -> [Self; 2] {
        [
            Self::start("axum_items", database_url),
            Self::start("actix_items", database_url),
        ]
    }

    /// Started with more options, e.g. `--opt-in`.
    fn start_with(name: &str, database_url: &str, options: &[&str]) -> Self {
        let mut child = Command::new(example(name))
            .args(["--listen", "127.0.0.1:0", "--database-url", database_url])
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start example");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{name} did not start listening"));
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

async fn create(http: &reqwest::Client, base: &str, body: &Value) -> String {
    let res = http
        .post(format!("{base}/items"))
        .json(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::CREATED);
    res.headers()[LOCATION]
        .to_str()
        .expect("Location")
        .to_owned()
}

/// GET: status, ETag, Last-Modified, body.
async fn get(
    http: &reqwest::Client,
    url: &str,
) -> Result<(StatusCode, String, String, Value), reqwest::Error> {
    let res = http.get(url).send().await?;
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, etag, modified) = (res.status(), header(ETAG), header(LAST_MODIFIED));
    let body = res.json().await.unwrap_or(Value::Null);
    Ok((status, etag, modified, body))
}

struct Tally {
    acknowledged: AtomicU64,
    conflicts: AtomicU64,
    errors: AtomicU64,
    after_kill: AtomicU64,
}

/// One client: `increments` times, set `counts[me]` to one more, under
/// If-Match, spreading its requests over `bases`. An attempt whose fate is
/// unknown (connection lost) is resolved by re-reading: the client's own
/// counter shows whether it was applied.
async fn run_client(
    me: String,
    increments: u64,
    bases: Arc<Vec<String>>,
    path: String,
    tally: Arc<Tally>,
    killed: Arc<AtomicBool>,
) {
    let http = client();
    let mut turn = me.len();
    for k in 1..=increments {
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts < 2_000, "{me}: increment {k} never went through");
            turn += 1;
            let base = &bases[turn % bases.len()];
            let url = format!("{base}{path}");
            let Ok((status, etag, _, mut item)) = get(&http, &url).await else {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if status != StatusCode::OK {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            let mine = item["counts"][&me].as_u64().unwrap_or(0);
            if mine >= k {
                // An earlier attempt whose response was lost did apply.
                break;
            }
            item["counts"][&me] = json!(k);
            item["last_change"] = json!(format!("{me} -> {k}"));
            let url = format!("{}{path}", bases[(turn + 1) % bases.len()]);
            let sent = http
                .put(&url)
                .header(IF_MATCH, &etag)
                .header(CONTENT_TYPE, "application/json")
                .body(item.to_string())
                .send()
                .await;
            match sent.map(|r| r.status()) {
                Ok(s) if s.is_success() => {
                    tally.acknowledged.fetch_add(1, Ordering::Relaxed);
                    if killed.load(Ordering::Relaxed) {
                        tally.after_kill.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                Ok(StatusCode::PRECONDITION_FAILED) => {
                    tally.conflicts.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(u64::from(turn as u8 % 8))).await;
                }
                _ => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

async fn counts_of(http: &reqwest::Client, url: &str) -> (Value, String, String) {
    let (status, etag, modified, item) = get(http, url).await.expect("GET");
    assert_eq!(status, StatusCode::OK);
    (item["counts"].clone(), etag, modified)
}

const CLIENTS: u64 = 6;
const INCREMENTS: u64 = 25;

/// Starts the `CLIENTS` concurrent clients.
fn spawn_clients(
    bases: &Arc<Vec<String>>,
    path: &str,
    tally: &Arc<Tally>,
    killed: &Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    (0..CLIENTS)
        .map(|c| {
            tokio::spawn(run_client(
                format!("client{c}"),
                INCREMENTS,
                bases.clone(),
                path.to_owned(),
                tally.clone(),
                killed.clone(),
            ))
        })
        .collect()
}

fn new_tally() -> Arc<Tally> {
    Arc::new(Tally {
        acknowledged: AtomicU64::new(0),
        conflicts: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        after_kill: AtomicU64::new(0),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_axum_and_one_actix_instance_on_one_database_lose_no_update() {
    let Some(db) = database_url("two_axum_and_one_actix_instance_on_one_database_lose_no_update")
    else {
        return;
    };
    let instances = [
        Instance::start("axum_items", &db),
        Instance::start("axum_items", &db),
        Instance::start("actix_items", &db),
    ];
    let bases: Arc<Vec<String>> = Arc::new(instances.iter().map(|i| i.base.clone()).collect());
    let http = client();
    let path = create(&http, &bases[0], &json!({ "name": "shared", "counts": {} })).await;

    let tally = new_tally();
    let killed = Arc::new(AtomicBool::new(false));
    let clients = spawn_clients(&bases, &path, &tally, &killed);
    for c in clients {
        c.await.expect("client");
    }

    let (counts, etag, modified) = counts_of(&http, &format!("{}{path}", bases[0])).await;
    for c in 0..CLIENTS {
        assert_eq!(counts[format!("client{c}")], json!(INCREMENTS), "{counts}");
    }
    assert_eq!(
        tally.acknowledged.load(Ordering::Relaxed),
        CLIENTS * INCREMENTS,
        "every increment was acknowledged exactly once"
    );
    assert!(
        tally.conflicts.load(Ordering::Relaxed) > 0,
        "the instances never raced: the test proves nothing"
    );

    // Every instance, and a restarted one, gives the same validators for
    // the same row: they are a function of what is stored.
    for base in bases.iter() {
        let (_, e, m) = counts_of(&http, &format!("{base}{path}")).await;
        assert_eq!((&e, &m), (&etag, &modified), "{base}");
    }
    drop(instances);
    let restarted = Instance::start("axum_items", &db);
    let (_, e, m) = counts_of(&http, &format!("{}{path}", restarted.base)).await;
    assert_eq!((e, m), (etag, modified), "after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_mid_run_keeps_the_others_serving_and_applies_every_write_once() {
    let Some(db) = database_url(
        "killing_an_instance_mid_run_keeps_the_others_serving_and_applies_every_write_once",
    ) else {
        return;
    };
    let mut victim = Instance::start("axum_items", &db);
    let survivors = [
        Instance::start("axum_items", &db),
        Instance::start("actix_items", &db),
    ];
    let bases: Arc<Vec<String>> = Arc::new(vec![
        victim.base.clone(),
        survivors[0].base.clone(),
        survivors[1].base.clone(),
    ]);
    let http = client();
    let path = create(&http, &bases[1], &json!({ "name": "shared", "counts": {} })).await;

    let tally = new_tally();
    let killed = Arc::new(AtomicBool::new(false));
    let clients = spawn_clients(&bases, &path, &tally, &killed);
    // Kill one instance once the run is well under way.
    let mut waited = 0;
    while tally.acknowledged.load(Ordering::Relaxed) < CLIENTS * INCREMENTS / 3 && waited < 6_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += 1;
    }
    victim.kill();
    killed.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }

    let (counts, _, _) = counts_of(&http, &format!("{}{path}", bases[2])).await;
    let total: u64 = counts
        .as_object()
        .expect("counts")
        .values()
        .map(|v| v.as_u64().expect("a count"))
        .sum();
    // Each client confirmed every one of its increments (acknowledged, or
    // found applied after a lost response), and nothing was applied twice
    // or half: the stored counters add up to exactly the writes made.
    assert_eq!(total, CLIENTS * INCREMENTS, "{counts}");
    for c in 0..CLIENTS {
        assert_eq!(counts[format!("client{c}")], json!(INCREMENTS), "{counts}");
    }
    let acknowledged = tally.acknowledged.load(Ordering::Relaxed);
    assert!(acknowledged <= total);
    assert!(
        tally.after_kill.load(Ordering::Relaxed) > 0,
        "the surviving instances served no write after the kill"
    );
}

/// A TCP proxy in front of the database, that can be switched off to make
/// the database "go away" for the instances behind it, or paused to make it
/// stop answering while every connection stays open (a network stall).
struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Connections numbered below this hold back what they are sent:
    /// `u64::MAX` for all, 0 for none.
    paused: tokio::sync::watch::Sender<u64>,
    /// How many connections have been accepted.
    accepted: Arc<AtomicU64>,
    /// How many connections have sent something that the pause holds back.
    held: Arc<AtomicUsize>,
}

/// Copies `from` to `to` for the proxy's connection number `index`; while
/// `paused` is above `index`, what arrives is held back.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    (mut paused, index): (tokio::sync::watch::Receiver<u64>, u64),
    held: Option<Arc<AtomicUsize>>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if *paused.borrow() > index {
            if let Some(held) = &held {
                held.fetch_add(1, Ordering::SeqCst);
            }
            let _ = paused.wait_for(|p| *p <= index).await;
            if let Some(held) = &held {
                held.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Proxy {
    /// A proxy in front of the database that `db` names, and a connection
    /// string for the same database that goes through the proxy.
    async fn in_front_of(db: &str) -> (Self, String) {
        let config = tokio_postgres::Config::from_str(db).expect("DATABASE_URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let upstream = format!("{host}:{port}")
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port)));
        let proxy = Self::start(upstream).await;
        let mut url = format!("host={} port={}", proxy.addr.ip(), proxy.addr.port());
        if let Some(user) = config.get_user() {
            url.push_str(&format!(" user={user}"));
        }
        if let Some(password) = config.get_password() {
            url.push_str(&format!(" password={}", String::from_utf8_lossy(password)));
        }
        if let Some(dbname) = config.get_dbname() {
            url.push_str(&format!(" dbname={dbname}"));
        }
        (proxy, url)
    }

    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (paused, pause) = tokio::sync::watch::channel(0);
        let held = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let conns = connections.clone();
        let holding = held.clone();
        let counting = accepted.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let index = counting.fetch_add(1, Ordering::SeqCst);
                let (pause, holding) = (pause.clone(), holding.clone());
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(upstream).await {
                        let (client_read, client_write) = inbound.into_split();
                        let (server_read, server_write) = outbound.into_split();
                        tokio::join!(
                            relay(
                                client_read,
                                server_write,
                                (pause.clone(), index),
                                Some(holding)
                            ),
                            relay(server_read, client_write, (pause, index), None),
                        );
                    }
                });
                conns.lock().await.push(task);
            }
        });
        Self {
            addr,
            accept,
            connections,
            paused,
            accepted,
            held,
        }
    }

    /// Closes the listener and every open connection.
    async fn stop(&self) {
        self.accept.abort();
        for task in self.connections.lock().await.drain(..) {
            task.abort();
        }
    }

    /// Holds back whatever is sent from now on, both ways, on every
    /// connection, new ones too: the database stops answering.
    fn pause(&self) {
        self.paused.send_replace(u64::MAX);
    }

    /// Holds back whatever is sent from now on over the connections open
    /// now, but not over new ones: the idle connections in a pool went dead
    /// without a word (a failover, a firewall that forgot them), while the
    /// database itself answers.
    fn stall_open_connections(&self) {
        self.paused
            .send_replace(self.accepted.load(Ordering::SeqCst));
    }

    /// Lets everything held back through, and what follows.
    fn resume(&self) {
        self.paused.send_replace(0);
    }

    /// How many connections have sent the database something the pause
    /// holds back: each is a connection some request is waiting on.
    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_mid_run_gives_503_problems_not_a_hang() {
    let Some(db) = database_url("a_database_that_goes_away_mid_run_gives_503_problems_not_a_hang")
    else {
        return;
    };
    let (proxy, url) = Proxy::in_front_of(&db).await;
    let instances = [
        Instance::start("axum_items", &url),
        Instance::start("actix_items", &url),
    ];
    let http = client();
    let mut items = Vec::new();
    for instance in &instances {
        let path = create(&http, &instance.base, &json!({ "name": "x" })).await;
        let (status, etag, _, _) = get(&http, &format!("{}{path}", instance.base))
            .await
            .expect("GET");
        assert_eq!(status, StatusCode::OK);
        items.push((instance.base.clone(), path, etag));
    }

    proxy.stop().await;

    for (base, path, etag) in &items {
        let url = format!("{base}{path}");
        let read = http.get(&url).send().await.expect("an answer, not a hang");
        assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE, "GET {url}");
        assert_eq!(read.headers()[CONTENT_TYPE], "application/problem+json");
        let problem: Value = read.json().await.expect("problem body");
        assert_eq!(problem["status"], 503);
        let write = http
            .put(&url)
            .header(IF_MATCH, etag)
            .json(&json!({ "name": "y" }))
            .send()
            .await
            .expect("an answer, not a hang");
        assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE, "PUT {url}");
        let created = http
            .post(format!("{base}/items"))
            .json(&json!({ "name": "z" }))
            .send()
            .await
            .expect("an answer, not a hang");
        assert_eq!(
            created.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "POST {base}"
        );
    }
}

/// RFC 9110 §9.3.4: a PUT's answer carries validators only if the item was
/// stored exactly as sent. jsonb keeps `1` as sent but gives `1e16` back as
/// `10000000000000000`, so the same PUT in the stored form gets the new tag
/// with one number and none with the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_answer_carries_validators_only_for_a_body_the_database_kept_as_sent() {
    let Some(db) =
        database_url("a_put_answer_carries_validators_only_for_a_body_the_database_kept_as_sent")
    else {
        return;
    };
    let instances = Instance::both(&db);
    let http = client();
    for instance in &instances {
        let base = &instance.base;
        let id = fresh_id("as-sent");
        let url = format!("{base}/items/{id}");
        // Created under If-None-Match: *, then replaced under If-Match: *.
        let rounds = [
            (IF_NONE_MATCH, json!(1), true),
            (IF_MATCH, json!(1e16), false),
            (IF_MATCH, json!(2), true),
        ];
        for (condition, n, kept) in rounds {
            let body = json!({ "id": id, "n": n }).to_string();
            let res = http
                .put(&url)
                .header(condition, "*")
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("PUT");
            assert!(
                res.status().is_success(),
                "{base} PUT {body}: {}",
                res.status()
            );
            let etag = res.headers().get(ETAG).cloned();
            let modified = res.headers().get(LAST_MODIFIED).cloned();
            let answered = res.text().await.expect("a body");
            assert_eq!(
                answered == body,
                kept,
                "{base} PUT {body}: answered {answered}"
            );
            let (_, current, _, _) = get(&http, &url).await.expect("GET");
            if kept {
                let etag = etag.unwrap_or_else(|| panic!("{base} PUT {body}: no ETag"));
                assert_eq!(
                    etag.to_str().ok(),
                    Some(current.as_str()),
                    "{base} PUT {body}"
                );
                assert!(modified.is_some(), "{base} PUT {body}: no Last-Modified");
            } else {
                assert_eq!((etag, modified), (None, None), "{base} PUT {body}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_spelled_differently_from_the_current_one_never_writes() {
    let Some(db) = database_url("a_tag_spelled_differently_from_the_current_one_never_writes")
    else {
        return;
    };
    let instances = Instance::both(&db);
    let http = client();
    for instance in &instances {
        let base = &instance.base;
        let path = create(&http, base, &json!({ "name": "original" })).await;
        let url = format!("{base}{path}");
        let (_, etag, _, body) = get(&http, &url).await.expect("GET");
        let digits = etag
            .strip_prefix("\"v")
            .and_then(|t| t.strip_suffix('"'))
            .expect("a version tag");
        // The same number, spelled otherwise: a different entity-tag
        // (RFC 9110 §8.8.3.2), so If-Match fails, even though the store
        // would read the same version out of it.
        for stale in [format!("\"v0{digits}\""), format!("\"v+{digits}\"")] {
            let res = http
                .put(&url)
                .header(IF_MATCH, &stale)
                .json(&json!({ "name": "overwritten" }))
                .send()
                .await
                .expect("PUT");
            assert_eq!(
                res.status(),
                StatusCode::PRECONDITION_FAILED,
                "{base} {stale}"
            );
            assert_eq!(res.headers()[ETAG], etag.as_str(), "{base} {stale}");
        }
        let (_, after, _, body_after) = get(&http, &url).await.expect("GET");
        assert_eq!(
            (after, body_after),
            (etag, body),
            "{base}: nothing was written"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_stuck_behind_a_lock_is_aborted_not_applied_later() {
    let Some(db) = database_url("a_write_stuck_behind_a_lock_is_aborted_not_applied_later") else {
        return;
    };
    let instance = Instance::start("axum_items", &db);
    let http = client();
    let base = &instance.base;
    let path = create(&http, base, &json!({ "name": "original" })).await;
    let other = create(&http, base, &json!({ "name": "other" })).await;
    let url = format!("{base}{path}");
    let (_, etag, _, body) = get(&http, &url).await.expect("GET");
    // Another session holds the row.
    let (locker, connection) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let id = path.trim_start_matches("/items/");
    lock_row(&locker, id).await;
    let res = http
        .put(&url)
        .header(IF_MATCH, &etag)
        .json(&json!({ "name": "written while locked" }))
        .send()
        .await
        .expect("PUT");
    // PostgreSQL ends the statement before the service's deadline: nothing
    // was written, and the service can say so.
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: Value = res.json().await.expect("problem");
    let detail = problem["detail"].as_str().unwrap_or_default().to_owned();
    assert!(!detail.contains("may or may not"), "{detail}");
    // The service still answers other requests: the aborted statement's
    // connection is free (a connection still busy with it would make this
    // GET wait out the deadline and get 503).
    let (status, ..) = get(&http, &format!("{base}{other}"))
        .await
        .expect("GET other");
    assert_eq!(status, StatusCode::OK);
    // As many writes waiting on the lock as the pool has connections: each
    // holds one while it waits, but not for as long as a request waits for
    // a free one, so a read of another item is still served (it used to
    // wait out the pool and get 503).
    let crowd: Vec<_> = (0..postgres::POOL_SIZE)
        .map(|n| {
            let (http, url, etag) = (http.clone(), url.clone(), etag.clone());
            tokio::spawn(async move {
                let put = http
                    .put(&url)
                    .header(IF_MATCH, &etag)
                    .json(&json!({ "name": format!("crowd {n}") }));
                put.send().await.map(|res| res.status())
            })
        })
        .collect();
    // Every connection is taken once the pool's worth of them wait on the
    // lock (other tests' writes in this database only make it sooner).
    let watcher = admin(&db).await;
    let mut queued = 0;
    for _ in 0..500 {
        queued = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE 'UPDATE ifmatch_items %'",
                &[],
            )
            .await
            .expect("sessions waiting on a lock")
            .get::<_, i64>(0);
        if queued >= postgres::POOL_SIZE as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        queued >= postgres::POOL_SIZE as i64,
        "only {queued} writes queued on the lock"
    );
    let (status, ..) = get(&http, &format!("{base}{other}"))
        .await
        .expect("GET other");
    assert_eq!(
        status,
        StatusCode::OK,
        "a read of another item, with the pool's worth of writes waiting on a lock"
    );
    for put in crowd {
        let status = put.await.expect("the PUT's task").expect("PUT");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    // Released, the row is as it was: the PUTs did not land later.
    locker.batch_execute("ROLLBACK").await.expect("ROLLBACK");
    let (_, after, _, body_after) = get(&http, &url).await.expect("GET");
    assert_eq!((after, body_after), (etag, body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_only_read_and_write_the_items_can_run_the_service() {
    let Some(db) =
        database_url("a_role_that_may_only_read_and_write_the_items_can_run_the_service")
    else {
        return;
    };
    // The schema exists (created by a role that may), as a deployment's
    // migration would leave it.
    drop(Instance::start("axum_items", &db));
    let (admin, connection) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let role = format!("ifmatch_app_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'ifmatch'; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ifmatch_items TO {role}; \
             GRANT USAGE ON SEQUENCE ifmatch_items_version TO {role};"
        ))
        .await
        .expect("create the role");
    // Same server and database, another user.
    let server = db.split_once('@').map_or(db.as_str(), |(_, rest)| rest);
    let url = format!("postgres://{role}:ifmatch@{server}");
    let instance = Instance::start("axum_items", &url);
    let http = client();
    let path = create(&http, &instance.base, &json!({ "name": "least privilege" })).await;
    let (status, ..) = get(&http, &format!("{}{path}", instance.base))
        .await
        .expect("GET");
    assert_eq!(status, StatusCode::OK);
    drop(instance);
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await
        .expect("drop the role");
}

#[test]
fn an_unreachable_database_at_start_is_a_clear_error_and_a_failure_exit() {
    for name in ["axum_items", "actix_items"] {
        let out = Command::new(example(name))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                "postgres://postgres@127.0.0.1:1/nowhere",
            ])
            .output()
            .expect("run example");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} exited with success");
        assert!(
            stderr.contains("cannot use the database at postgres://postgres@127.0.0.1:1/nowhere"),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("Connection refused"), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening on"),
            "{name} started serving without its database"
        );
    }
}

/// `len` letters and digits PostgreSQL cannot compress (a repeated letter
/// would fit in an index row once compressed), different on every call.
fn incompressible(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let seed = fresh_id("seed")
        .bytes()
        .fold(0x9e37_79b9_7f4a_7c15_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    xorshift::xorshift(seed)
        .take(len)
        .map(|x| char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize]))
        .collect()
}

/// An id no earlier run on the same database has used.
fn fresh_id(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{label}-{}-{nanos}", std::process::id())
}

async fn status_of(request: reqwest::RequestBuilder) -> (StatusCode, String) {
    let res = request.send().await.expect("an answer");
    let status = res.status();
    (status, res.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_get_4xx_from_the_database_store_never_503() {
    let Some(db) = database_url("client_mistakes_get_4xx_from_the_database_store_never_503") else {
        return;
    };
    let instances = Instance::both(&db);
    let http = client();
    let nul_bodies = [
        r#"{"name": "a\u0000b"}"#,
        r#"{"a\u0000b": 1}"#,
        r#"{"deep": [{"x": "\u0000"}]}"#,
    ];
    for instance in &instances {
        let base = &instance.base;
        for body in nul_bodies {
            let (status, text) = status_of(
                http.post(format!("{base}/items"))
                    .header(CONTENT_TYPE, "application/json")
                    .body(body),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{base} POST {body}: {text}"
            );
        }
        let path = create(&http, base, &json!({ "name": "original" })).await;
        let url = format!("{base}{path}");
        let (_, etag, _, before) = get(&http, &url).await.expect("GET");
        for body in nul_bodies {
            let (status, text) = status_of(
                http.put(&url)
                    .header(IF_MATCH, &etag)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "PUT {url} {body}: {text}"
            );
            let (status, text) = status_of(
                http.patch(&url)
                    .header(IF_MATCH, &etag)
                    .header(CONTENT_TYPE, "application/merge-patch+json")
                    .body(body),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "PATCH {url} {body}: {text}"
            );
        }
        let (_, after_etag, _, after) = get(&http, &url).await.expect("GET");
        assert_eq!(
            (after_etag, after),
            (etag, before),
            "{url}: nothing was written"
        );

        let long = format!("{base}/items/{}", incompressible(8000));
        let (status, text) = status_of(
            http.put(&long)
                .header(IF_NONE_MATCH, "*")
                .json(&json!({ "name": "long" })),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{base} PUT long id: {text}"
        );
        let (status, _) = status_of(http.get(&long)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{base} GET long id");
        let nul = format!("{base}/items/a%00b");
        let (status, _) = status_of(http.get(&nul)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{nul}");
        let (status, text) = status_of(
            http.put(&nul)
                .header(IF_NONE_MATCH, "*")
                .json(&json!({ "name": "nul" })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PUT {nul}: {text}");

        // The longest id allowed is stored like any other.
        let mut id = fresh_id("longest");
        id.push_str(&"z".repeat(256 - id.len()));
        let url = format!("{base}/items/{id}");
        let (status, text) = status_of(
            http.put(&url)
                .header(IF_NONE_MATCH, "*")
                .json(&json!({ "name": "longest" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "PUT a 256-byte id: {text}");
        let (status, _, _, item) = get(&http, &url).await.expect("GET");
        assert_eq!((status, &item["id"]), (StatusCode::OK, &json!(id)));

        // jsonb gives the largest f64 back as a 309-digit integer, which
        // a parser without exact float conversion refuses: the item would
        // be written and then unreadable, not even deletable.
        let url = format!("{base}/items/{}", fresh_id("largest-float"));
        let value = json!({ "x": f64::MAX, "y": f64::MIN_POSITIVE, "z": 0.1 });
        let (status, text) =
            status_of(http.put(&url).header(IF_NONE_MATCH, "*").json(&value)).await;
        assert_eq!(status, StatusCode::CREATED, "PUT f64::MAX: {text}");
        let (status, etag, _, item) = get(&http, &url).await.expect("GET");
        assert_eq!(status, StatusCode::OK, "GET f64::MAX");
        assert_eq!(
            (&item["x"], &item["y"], &item["z"]),
            (&value["x"], &value["y"], &value["z"])
        );
        let (status, text) = status_of(http.delete(&url).header(IF_MATCH, &etag)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "DELETE f64::MAX: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_opt_in_mode_a_put_that_creates_answers_201_and_exactly_one_of_racing_ones_does() {
    let Some(db) = database_url(
        "in_opt_in_mode_a_put_that_creates_answers_201_and_exactly_one_of_racing_ones_does",
    ) else {
        return;
    };
    let instances = [
        Instance::start_with("axum_items", &db, &["--opt-in"]),
        Instance::start_with("actix_items", &db, &["--opt-in"]),
    ];
    let http = client();
    for instance in &instances {
        let url = format!("{}/items/{}", instance.base, fresh_id("put"));
        let put = |name: &str| http.put(&url).json(&json!({ "name": name }));
        assert_eq!(status_of(put("new")).await.0, StatusCode::CREATED, "{url}");
        assert_eq!(status_of(put("replaced")).await.0, StatusCode::OK, "{url}");
        let (status, _) = status_of(http.delete(&url)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{url}");
        assert_eq!(
            status_of(put("again")).await.0,
            StatusCode::CREATED,
            "{url}"
        );
    }
    // Racing PUTs to one new item, spread over both instances: the
    // database says which one created it.
    let id = fresh_id("race");
    let racers: Vec<_> = (0..16)
        .map(|n| {
            let url = format!("{}/items/{id}", instances[n % 2].base);
            let request = http.put(url).json(&json!({ "name": format!("racer {n}") }));
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.expect("racer").expect("an answer"));
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let replaced = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((created, replaced), (1, 15), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_patches_under_if_match_star_from_two_instances_lose_no_field() {
    // `If-Match: *` names no version, so an instance applies a patch to
    // whatever it reads and writes only over that version; a patch that
    // lost the race between its read and its write is read and applied
    // again. Every client sets fields of its own: none may be missing. A
    // 409 (every attempt lost) is the client's to send again.
    let Some(db) =
        database_url("merge_patches_under_if_match_star_from_two_instances_lose_no_field")
    else {
        return;
    };
    let instances = Instance::both(&db);
    let http = client();
    let path = create(&http, &instances[0].base, &json!({ "name": "shared" })).await;
    const PATCHERS: usize = 6;
    const PATCHES: usize = 20;
    let patchers: Vec<_> = (0..PATCHERS)
        .map(|c| {
            let url = format!("{}{path}", instances[c % 2].base);
            let http = http.clone();
            tokio::spawn(async move {
                for n in 0..PATCHES {
                    patch_star(&http, &url, &json!({ format!("c{c}n{n}"): true })).await;
                }
            })
        })
        .collect();
    for patcher in patchers {
        patcher.await.expect("patcher");
    }
    let (status, text) = status_of(http.get(format!("{}{path}", instances[1].base))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let item: Value = serde_json::from_str(&text).expect("JSON");
    for c in 0..PATCHERS {
        for n in 0..PATCHES {
            assert_eq!(
                item.get(format!("c{c}n{n}")),
                Some(&Value::Bool(true)),
                "client {c}, patch {n} was lost: {item}"
            );
        }
    }
}

/// Data the database refuses is the request's fault: if some ever slipped
/// past the service's checks, the store reports it as refused (a 4xx),
/// never as "storage unavailable" (503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_reports_data_the_database_refuses_as_refused_not_unavailable() {
    use ifmatch::{ConditionalStore, Expected, WriteError};
    use items::{Failure, Store};

    let Some(db) =
        database_url("the_store_reports_data_the_database_refuses_as_refused_not_unavailable")
    else {
        return;
    };
    let store = Store::open(Some(&db)).await.expect("open the store");
    let item = |value: Value| match value {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    };
    let refused = |result: Result<_, WriteError<items::StoreError>>, what: &str| match result {
        // Refused data was never written, and the store says so.
        Err(WriteError::NotWritten(e)) => assert_eq!(e.failure(), Failure::Refused, "{what}: {e}"),
        Err(e) => panic!("{what}: {e}"),
        Ok(_) => panic!("{what}: written"),
    };
    let nul = item(json!({ "name": "a\u{0}b" }));
    refused(
        store
            .store(&fresh_id("nul"), &Expected::Absent, nul.clone())
            .await,
        "U+0000 in jsonb",
    );
    refused(
        store.store(&fresh_id("nul"), &Expected::Any, nul).await,
        "U+0000 in jsonb, upsert",
    );
    refused(
        store
            .store(&incompressible(8000), &Expected::Absent, item(json!({})))
            .await,
        "an index row too large",
    );
    refused(
        store.store("a\0b", &Expected::Any, item(json!({}))).await,
        "U+0000 in text",
    );
    // An id the database cannot hold names no row.
    assert!(matches!(store.load("a\0b").await, Ok(None)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_refused_writes_at_once_than_pool_connections_all_get_their_conflict() {
    use ifmatch::{ConditionalStore, ETag, Expected, WriteError};

    let Some(db) =
        database_url("more_refused_writes_at_once_than_pool_connections_all_get_their_conflict")
    else {
        return;
    };
    let store = Arc::new(items::Store::open(Some(&db)).await.expect("open the store"));
    let id = fresh_id("crowd");
    let item = |value: Value| match value {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    };
    let current = store
        .store(&id, &Expected::Absent, item(json!({ "n": 0 })))
        .await
        .expect("create")
        .into_stored();
    // A refused write reads the row again, to name the current tag in its
    // 412. When that read took a second connection from the pool, 16
    // refused writes at once held all 16 connections, each waiting for
    // another, and every one answered 503 when the pool's wait ran out.
    // Three times the pool's size are sent here.
    // A version this store never issued for the row: every write under it
    // runs its statement, which matches nothing.
    let version = current.etag().version().expect("a version tag");
    let stale = Expected::ETag(ETag::from_version(version + 1_000_000));
    let writes: Vec<_> = (0..3 * postgres::POOL_SIZE)
        .map(|n| {
            let (store, id, stale) = (Arc::clone(&store), id.clone(), stale.clone());
            let value = item(json!({ "n": n }));
            tokio::spawn(async move {
                if n % 2 == 0 {
                    store.store(&id, &stale, value).await.map(|_| ())
                } else {
                    store.remove(&id, &stale).await.map(|_| ())
                }
            })
        })
        .collect();
    for write in writes {
        match write.await.expect("the write's task") {
            Err(WriteError::Conflict(conflict)) => {
                assert_eq!(conflict.current_etag(), Some(current.etag()));
            }
            Err(other) => panic!("a refused write answered {other}, not its conflict"),
            Ok(()) => panic!("a write under a stale tag was applied"),
        }
    }
    let now = store.load(&id).await.expect("load").expect("still there");
    assert_eq!(now.etag(), current.etag());
}

/// How many items are named `name`: a write's marker, to tell whether it
/// reached the table.
async fn rows_named(admin: &tokio_postgres::Client, name: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM ifmatch_items WHERE body->>'name' = $1",
            &[&name],
        )
        .await
        .expect("count")
        .get(0)
}

/// A connection of the test's own, for what no request can do: hold a row,
/// change a sequence, count rows.
async fn admin(db: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(db, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// A new schema, and `db` with it as the search path, so that the instances
/// started on that URL create and use their table and sequence there: for
/// a test that breaks what every instance on `db` would otherwise share.
async fn own_schema(admin: &tokio_postgres::Client, db: &str, label: &str) -> (String, String) {
    let schema = fresh_id(label).replace('-', "_");
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create the schema");
    let url = if db.contains("://") {
        let separator = if db.contains('?') { '&' } else { '?' };
        format!("{db}{separator}options=-c%20search_path%3D{schema}")
    } else {
        format!("{db} options='-c search_path={schema}'")
    };
    (schema, url)
}

/// The problem detail of a 503 that says nothing was changed, so that the
/// client may simply send the request again; not the one for a write whose
/// outcome is unknown.
fn assert_nothing_changed(status: StatusCode, text: &str, what: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {text}");
    let problem: Value = serde_json::from_str(text).expect("a problem body");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("nothing was changed"), "{what}: {detail}");
    assert!(!detail.contains("may or may not"), "{what}: {detail}");
}

/// An upsert (opt-in mode: a PUT without a precondition) that waited for
/// the row while another writer held it lands after that writer, so its
/// `Last-Modified` must not be earlier than the one that writer's state
/// had: clients and caches comparing dates (If-Modified-Since,
/// If-Unmodified-Since) would take the newer state for the older. Nor may
/// its version be smaller, for anyone who orders states by version. The
/// other writer here is a session of the test that locks the row, lets the
/// upsert start waiting, and writes the row as the store does a second
/// later (another instance's slow write, as the database sees it). The
/// second is setup, not a measurement: it makes the two dates differ even
/// at Last-Modified's one-second resolution, had the upsert dated its state
/// from when it started rather than from when it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upsert_that_waited_for_another_writer_is_dated_and_versioned_after_it() {
    let Some(db) =
        database_url("an_upsert_that_waited_for_another_writer_is_dated_and_versioned_after_it")
    else {
        return;
    };
    let instance = Instance::start_with("axum_items", &db, &["--opt-in"]);
    let http = client();
    let base = &instance.base;
    let path = create(&http, base, &json!({ "name": "original" })).await;
    let url = format!("{base}{path}");
    let id = path.trim_start_matches("/items/").to_owned();

    let watcher = admin(&db).await;
    let writer = admin(&db).await;
    let writer_pid = backend_pid(&writer).await;
    lock_row(&writer, &id).await;
    let upsert = {
        // Sent as the service stores it (with the id), so that its answer
        // carries the validators (RFC 9110 §9.3.4).
        let request = http.put(&url).json(&json!({ "id": id, "name": "upsert" }));
        tokio::spawn(async move { request.send().await })
    };
    // The upsert has started, and waits for the row.
    assert!(
        blocked_by(&watcher, writer_pid).await,
        "the upsert never waited for the locked row"
    );
    writer
        .batch_execute("SELECT pg_sleep(1.1)")
        .await
        .expect("sleep");
    let other_row = writer
        .query_one(
            "UPDATE ifmatch_items SET body = $2, version = nextval('ifmatch_items_version'), \
             modified_at = clock_timestamp() WHERE id = $1 RETURNING modified_at, version",
            &[&id, &json!({ "id": id, "name": "other writer" })],
        )
        .await
        .expect("the other write");
    let other: std::time::SystemTime = other_row.get(0);
    let other_version: i64 = other_row.get(1);
    writer.batch_execute("COMMIT").await.expect("COMMIT");

    let res = upsert.await.expect("upsert").expect("PUT");
    assert_eq!(res.status(), StatusCode::OK, "the upsert replaced the item");
    // Its version is newer too: one drawn before the wait would be smaller
    // than the version of the state it replaced.
    let etag = res.headers()[ETAG].to_str().expect("ETag").to_owned();
    let version: i64 = etag
        .trim_matches('"')
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .expect("a version tag");
    assert!(
        version > other_version,
        "the upsert's version {version} is not after the state it replaced (v{other_version})"
    );
    let header = res.headers()[LAST_MODIFIED]
        .to_str()
        .expect("Last-Modified")
        .to_owned();
    let modified = httpdate::parse_http_date(&header).expect("an HTTP date");
    let other_header = httpdate::fmt_http_date(other);
    let other_modified = httpdate::parse_http_date(&other_header).expect("an HTTP date");
    assert!(
        modified >= other_modified,
        "the upsert's Last-Modified {header} is before the state it replaced ({other_header})"
    );
    // To the microsecond, in the database, too.
    let stored: std::time::SystemTime = watcher
        .query_one(
            "SELECT modified_at FROM ifmatch_items WHERE id = $1",
            &[&id],
        )
        .await
        .expect("modified_at")
        .get(0);
    assert!(stored >= other, "{stored:?} < {other:?}");
    // The upsert is the current state, with the date it was answered with.
    let (status, _, last_modified, item) = get(&http, &url).await.expect("GET");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (item["name"].as_str(), last_modified),
        (Some("upsert"), header)
    );
}

/// Begins a transaction on `session` that holds item `id`'s row locked, as
/// another instance's slow write would.
async fn lock_row(session: &tokio_postgres::Client, id: &str) {
    session.batch_execute("BEGIN").await.expect("BEGIN");
    session
        .query(
            "SELECT 1 FROM ifmatch_items WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .expect("lock the row");
}

/// Whether a session comes to wait for a lock that the session `pid`
/// holds, polled for up to ten seconds.
async fn blocked_by(watcher: &tokio_postgres::Client, pid: i32) -> bool {
    for _ in 0..1_000 {
        let blocked: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&pid],
            )
            .await
            .expect("blocked sessions")
            .get(0);
        if blocked > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A write that admits any state of an existing item (no precondition, in
/// opt-in mode, or `If-Match: *`) waits for the item's row, which another
/// transaction deletes and inserts again under the same id. The id was
/// never absent, but PostgreSQL's READ COMMITTED re-checks only the row
/// the statement waited for, so the statement matches nothing. The store
/// sends it again and it applies to the row that is there. It used to
/// answer 412 "changed since you loaded it" to requests that sent no
/// condition, or one that held (RFC 9110 §15.5.13: a 412 means a
/// condition "evaluated to false").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_waited_for_a_re_created_row_applies_to_it_not_412() {
    let Some(db) = database_url("a_write_that_waited_for_a_re_created_row_applies_to_it_not_412")
    else {
        return;
    };
    let instance = Instance::start_with("axum_items", &db, &["--opt-in"]);
    let http = client();
    let base = &instance.base;
    let watcher = admin(&db).await;
    let writer = admin(&db).await;
    let writer_pid = backend_pid(&writer).await;
    let cases = [
        ("DELETE, no precondition", Method::DELETE, None),
        ("DELETE, If-Match: *", Method::DELETE, Some("*")),
        ("PUT, If-Match: *", Method::PUT, Some("*")),
    ];
    for (what, method, if_match) in cases {
        let path = create(&http, base, &json!({ "name": "original" })).await;
        let url = format!("{base}{path}");
        let id = path.trim_start_matches("/items/").to_owned();
        lock_row(&writer, &id).await;
        let write = {
            let mut request = http.request(method.clone(), &url);
            if let Some(if_match) = if_match {
                request = request.header(IF_MATCH, if_match);
            }
            if method == Method::PUT {
                request = request.json(&json!({ "id": id, "name": "written" }));
            }
            tokio::spawn(async move { request.send().await })
        };
        assert!(
            blocked_by(&watcher, writer_pid).await,
            "{what}: the write never waited for the locked row"
        );
        writer
            .execute("DELETE FROM ifmatch_items WHERE id = $1", &[&id])
            .await
            .expect("delete");
        writer
            .execute(
                "INSERT INTO ifmatch_items (id, body, version, modified_at) \
                 VALUES ($1, $2, nextval('ifmatch_items_version'), clock_timestamp())",
                &[&id, &json!({ "id": id, "name": "re-created" })],
            )
            .await
            .expect("re-create");
        writer.batch_execute("COMMIT").await.expect("COMMIT");

        let res = write.await.expect("the write").expect(what);
        let (status, _, _, item) = get(&http, &url).await.expect("GET");
        if method == Method::DELETE {
            assert_eq!(res.status(), StatusCode::NO_CONTENT, "{what}");
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{what}: the re-created item stays"
            );
        } else {
            assert_eq!(res.status(), StatusCode::OK, "{what}");
            assert_eq!(item["name"], "written", "{what}");
        }
    }
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pg_backend_pid")
        .get(0)
}

/// An exhausted version sequence is the database's trouble, not the
/// request's: every write then gets the 503 that says nothing was changed
/// (the same request succeeds once an operator has fixed the sequence),
/// never a 422 that blames the item, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_version_sequence_is_a_503_that_changed_nothing_not_a_422() {
    let Some(db) =
        database_url("an_exhausted_version_sequence_is_a_503_that_changed_nothing_not_a_422")
    else {
        return;
    };
    let admin = admin(&db).await;
    // The sequence is shared by every instance on a schema: this test
    // exhausts one of its own.
    let (schema, url) = own_schema(&admin, &db, "exhausted").await;
    let instances = [
        Instance::start("axum_items", &url),
        Instance::start("actix_items", &url),
    ];
    let http = client();
    let mut items = Vec::new();
    for instance in &instances {
        let path = create(&http, &instance.base, &json!({ "name": "before" })).await;
        let url = format!("{}{path}", instance.base);
        let (_, etag, _, body) = get(&http, &url).await.expect("GET");
        items.push((url, etag, body));
    }
    admin
        .batch_execute(&format!(
            "SELECT setval('{schema}.ifmatch_items_version', {})",
            i64::MAX
        ))
        .await
        .expect("exhaust the sequence");

    for (instance, (url, etag, body)) in instances.iter().zip(&items) {
        let base = &instance.base;
        let (status, text) = status_of(
            http.post(format!("{base}/items"))
                .json(&json!({ "name": "after" })),
        )
        .await;
        assert_nothing_changed(status, &text, &format!("POST {base}/items"));
        let (status, text) = status_of(
            http.put(url)
                .header(IF_MATCH, etag)
                .json(&json!({ "name": "after" })),
        )
        .await;
        assert_nothing_changed(status, &text, &format!("PUT {url}"));
        let (_, etag_after, _, body_after) = get(&http, url).await.expect("GET");
        assert_eq!((&etag_after, &body_after), (etag, body), "{url}");
    }
    // No item was added either: the two made before are all there is.
    let rows: i64 = admin
        .query_one(&format!("SELECT count(*) FROM {schema}.ifmatch_items"), &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 2);

    drop(instances);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop the schema");
}

/// When every pooled connection is taken (here: the database stopped
/// answering, and the requests in flight hold them all), a write that gets
/// none was never sent to the database: it gets the 503 that says nothing
/// was changed, so its client may simply send it again. Not "may or may
/// not have been applied", which sends the client to look first, and which
/// a POST's client cannot even do: it has no id yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_gets_no_pooled_connection_is_told_nothing_was_changed() {
    let Some(db) =
        database_url("a_write_that_gets_no_pooled_connection_is_told_nothing_was_changed")
    else {
        return;
    };
    let admin = admin(&db).await;
    let http = client();
    for name in ["axum_items", "actix_items"] {
        let (proxy, url) = Proxy::in_front_of(&db).await;
        let instance = Instance::start(name, &url);
        let base = &instance.base;
        let path = create(&http, base, &json!({ "name": "read" })).await;

        proxy.pause();
        // As many reads as the pool has connections: each takes one and
        // waits on it.
        let readers: Vec<_> = (0..postgres::POOL_SIZE)
            .map(|_| {
                let request = http.get(format!("{base}{path}"));
                tokio::spawn(async move { request.send().await.map(|r| r.status()) })
            })
            .collect();
        let mut all_taken = false;
        for _ in 0..1_000 {
            if proxy.held() >= postgres::POOL_SIZE {
                all_taken = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            all_taken,
            "{name}: the reads took {} connections, not all",
            proxy.held()
        );

        let marker = fresh_id("no-connection");
        let (status, text) = status_of(
            http.post(format!("{base}/items"))
                .json(&json!({ "name": marker })),
        )
        .await;
        assert_nothing_changed(status, &text, &format!("{name}: POST"));

        proxy.resume();
        for reader in readers {
            // Answered, whatever the answer.
            let _ = reader.await.expect("reader");
        }
        // Nothing was written indeed.
        assert_eq!(rows_named(&admin, &marker).await, 0, "{name}");
        // Once the database answers again, so does the service.
        create(&http, base, &json!({ "name": "after" })).await;
        drop(instance);
        proxy.stop().await;
    }
}

/// When the network to the database stalls, getting a connection hangs
/// until the pool's own timeouts give up: checking an idle connection
/// before reuse, then opening a new one. Nothing has been sent by then, so
/// the write must be told nothing was changed however long that takes (the
/// operation's deadline used to include it, and a slow enough wait was
/// answered "may or may not have been applied").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_finds_every_connection_stalled_is_told_nothing_was_changed() {
    let Some(db) =
        database_url("a_write_that_finds_every_connection_stalled_is_told_nothing_was_changed")
    else {
        return;
    };
    let admin = admin(&db).await;
    let http = client();
    for name in ["axum_items", "actix_items"] {
        let (proxy, url) = Proxy::in_front_of(&db).await;
        let instance = Instance::start(name, &url);
        let base = &instance.base;
        // The pool now holds idle connections, which the stall reaches.
        create(&http, base, &json!({ "name": "before" })).await;

        proxy.pause();
        let marker = fresh_id("stalled");
        let (status, text) = status_of(
            http.post(format!("{base}/items"))
                .json(&json!({ "name": marker })),
        )
        .await;
        assert_nothing_changed(status, &text, &format!("{name}: POST"));
        proxy.resume();

        assert_eq!(rows_named(&admin, &marker).await, 0, "{name}");
        create(&http, base, &json!({ "name": "after" })).await;
        drop(instance);
        proxy.stop().await;
    }
}

/// A table that exists but is not the one the store's statements need (an
/// older or someone else's `ifmatch_items`) is refused at start, with what
/// is wrong with it, rather than kept to fail every request later with a
/// 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_table_of_another_shape_is_a_clear_error_at_start() {
    let Some(db) = database_url("an_existing_table_of_another_shape_is_a_clear_error_at_start")
    else {
        return;
    };
    let admin = admin(&db).await;
    let shapes = [
        (
            "id text PRIMARY KEY, body json NOT NULL, version integer NOT NULL, \
             owner text NOT NULL",
            &[
                "column body is json, not jsonb",
                "column version is integer, not bigint",
                "column modified_at (timestamp with time zone) is missing",
                "column owner is NOT NULL without a default",
            ][..],
        ),
        (
            "id text, body jsonb, version bigint, modified_at timestamptz",
            &["column id has no unique index"][..],
        ),
    ];
    for (columns, wrong) in shapes {
        let (schema, url) = own_schema(&admin, &db, "shape").await;
        admin
            .batch_execute(&format!("CREATE TABLE {schema}.ifmatch_items ({columns})"))
            .await
            .expect("create the table");
        for name in ["axum_items", "actix_items"] {
            let mut child = Command::new(example(name))
                .args(["--listen", "127.0.0.1:0", "--database-url", &url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run example");
            // Until it exits, or announces that it serves (then it is
            // stopped here, and the test fails, rather than waiting on it).
            let stdout = BufReader::new(child.stdout.take().expect("stdout"));
            let serving = stdout
                .lines()
                .map_while(Result::ok)
                .any(|line| line.contains("listening on"));
            if serving {
                let _ = child.kill();
            }
            let out = child.wait_with_output().expect("wait for the example");
            assert!(!serving, "{name} started serving on a table it cannot use");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{name} exited with success");
            assert!(
                stderr.contains("cannot use the database at")
                    && stderr.contains("is not what this service needs"),
                "{name}: {stderr}"
            );
            for what in wrong {
                assert!(stderr.contains(what), "{name}: {what:?} not in {stderr}");
            }
            assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        }
        admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .expect("drop the schema");
    }
}

/// When the pooled connections went dead without a word but the database
/// answers new ones (a failover, a firewall that dropped idle connections),
/// a request that meets one dead idle connection is served over a new one:
/// checking the idle one before reuse must give up in time to open another
/// within the deadline for getting a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_meets_a_dead_idle_connection_is_served_over_a_new_one() {
    let Some(db) =
        database_url("a_write_that_meets_a_dead_idle_connection_is_served_over_a_new_one")
    else {
        return;
    };
    let http = client();
    for name in ["axum_items", "actix_items"] {
        let (proxy, url) = Proxy::in_front_of(&db).await;
        let instance = Instance::start(name, &url);
        let base = &instance.base;
        // The pool now holds an idle connection.
        create(&http, base, &json!({ "name": "before" })).await;

        proxy.stall_open_connections();
        let (status, text) = status_of(
            http.post(format!("{base}/items"))
                .json(&json!({ "name": "after" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {text}");
        proxy.resume();
        drop(instance);
        proxy.stop().await;
    }
}
