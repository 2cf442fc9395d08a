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

// The store itself, for what no request can reach any more (see
// `the_store_reports_data_the_database_refuses_as_refused_not_unavailable`).
#[path = "../examples/shared/items.rs"]
mod items;
#[path = "../examples/shared/postgres.rs"]
mod postgres;
#[path = "support/xorshift.rs"]
mod xorshift;

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH, LAST_MODIFIED, LOCATION};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

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

/// The path of an example binary built by `cargo test --all-features`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo test --all-features builds them)",
        path.display()
    );
    path
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
/// the database "go away" for the instances behind it.
struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().await.push(task);
            }
        });
        Self {
            addr,
            accept,
            connections,
        }
    }

    /// Closes the listener and every open connection.
    async fn stop(&self) {
        self.accept.abort();
        for task in self.connections.lock().await.drain(..) {
            task.abort();
        }
    }
}

/// The database's address and a connection string that goes through
/// `proxy` instead.
fn through_proxy(db: &str, proxy: SocketAddr) -> (SocketAddr, String) {
    let config = tokio_postgres::Config::from_str(db).expect("DATABASE_URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = format!("{host}:{port}")
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port)));
    let mut url = format!("host={} port={}", proxy.ip(), proxy.port());
    if let Some(user) = config.get_user() {
        url.push_str(&format!(" user={user}"));
    }
    if let Some(password) = config.get_password() {
        url.push_str(&format!(" password={}", String::from_utf8_lossy(password)));
    }
    if let Some(dbname) = config.get_dbname() {
        url.push_str(&format!(" dbname={dbname}"));
    }
    (upstream, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_mid_run_gives_503_problems_not_a_hang() {
    let Some(db) = database_url("a_database_that_goes_away_mid_run_gives_503_problems_not_a_hang")
    else {
        return;
    };
    let (upstream, _) = through_proxy(&db, SocketAddr::from(([127, 0, 0, 1], 0)));
    let proxy = Proxy::start(upstream).await;
    let (_, url) = through_proxy(&db, proxy.addr);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_spelled_differently_from_the_current_one_never_writes() {
    let Some(db) = database_url("a_tag_spelled_differently_from_the_current_one_never_writes")
    else {
        return;
    };
    let instances = [
        Instance::start("axum_items", &db),
        Instance::start("actix_items", &db),
    ];
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
    locker.batch_execute("BEGIN").await.expect("BEGIN");
    let id = path.trim_start_matches("/items/");
    locker
        .query(
            "SELECT 1 FROM ifmatch_items WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .expect("lock the row");
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
    // Released, the row is as it was: the PUT did not land later.
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
    let instances = [
        Instance::start("axum_items", &db),
        Instance::start("actix_items", &db),
    ];
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
        Err(WriteError::Store(e)) => assert_eq!(e.failure(), Failure::Refused, "{what}: {e}"),
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
