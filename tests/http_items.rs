#![cfg(feature = "middleware")]
//! The contract of the example "items" service (issue 4), over real TCP,
//! against both example services: `axum_items` (tower `PreconditionLayer`)
//! and `actix_items` (`Gate` in an actix-web middleware).
//!
//! Each contract test is written once, as an async function taking the
//! running service, and [`both_servers!`] runs it against each framework
//! (`on_axum::NAME` and `on_actix::NAME`), so the two implementations are
//! shown to behave identically. Every test starts its own services on
//! `127.0.0.1:0`: axum on the test's tokio runtime, actix-web on a thread of
//! its own running an actix `System` (left running; the test process ends
//! it).

#[path = "../examples/shared/actix_app.rs"]
mod actix_app;
#[path = "../examples/shared/axum_app.rs"]
mod axum_app;
#[path = "../examples/shared/items.rs"]
mod items;
// items.rs names the PostgreSQL store; these tests use the memory store.
#[path = "support/patch_star.rs"]
mod patch_star;
#[path = "../examples/shared/postgres.rs"]
mod postgres;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ifmatch::{PROBLEM_JSON, Retry};
use reqwest::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderName,
    HeaderValue, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE,
    LAST_MODIFIED, LOCATION, RANGE,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::items::{Items, Store};
use crate::patch_star::patch_star;

// ---------------------------------------------------------------------------
// Running the services
// ---------------------------------------------------------------------------

/// Which example service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Axum,
    Actix,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Axum => "axum_items",
            Server::Actix => "actix_items",
        })
    }
}

/// The precondition policy the service runs with (`items::gate(opt_in)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The default: writes without `If-Match` get 428.
    Strict,
    /// "Last write wins" for writes that carry no precondition.
    OptIn,
}

/// A running service and a client for it.
struct Api {
    server: Server,
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn start(server: Server, mode: Mode) -> Self {
        let opt_in = mode == Mode::OptIn;
        let base = match server {
            Server::Axum => start_axum(opt_in).await,
            Server::Actix => start_actix(opt_in),
        };
        let http = reqwest::Client::builder()
            // A proxy from the environment must not stand between the test
            // and 127.0.0.1.
            .no_proxy()
            // Only so that a hung server fails the test instead of CI.
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client");
        Self { server, base, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    fn head(&self, path: &str) -> RequestBuilder {
        self.request(Method::HEAD, path)
    }

    fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// Sends the request and reads the whole response.
    async fn send(&self, request: RequestBuilder) -> Reply {
        self.try_send(request)
            .await
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Sends a request whose body the server refuses without reading it
    /// all, as often as it takes to get the answer (at most 10 times).
    /// actix-web answers a body over its limit from `Content-Length` and
    /// then closes the connection with the body unread, and the kernel
    /// resets a connection closed with data unread: the answer may be lost
    /// on its way, which is TCP's doing, not the service's.
    async fn send_refused_unread(&self, request: RequestBuilder) -> Reply {
        let mut failures = Vec::new();
        for _ in 0..10 {
            let attempt = request.try_clone().expect("a body that can be sent again");
            match self.try_send(attempt).await {
                Ok(reply) => return reply,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("no answer in 10 attempts: {failures:#?}")
    }

    /// Sends the request and reads the whole response, or says why no
    /// response came.
    async fn try_send(&self, request: RequestBuilder) -> Result<Reply, String> {
        let request = request.build().expect("a valid request");
        let mut what = format!(
            "{}: {} {}",
            self.server,
            request.method(),
            request.url().path()
        );
        for name in [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
            IF_RANGE,
        ] {
            for value in request.headers().get_all(&name) {
                let shown = String::from_utf8_lossy(value.as_bytes());
                let shown: String = shown.chars().take(60).collect();
                what.push_str(&format!(" [{name}: {shown}]"));
            }
        }
        let res = match self.http.execute(request).await {
            Ok(res) => res,
            Err(e) => return Err(format!("{what}: no response: {e}")),
        };
        let status = res.status();
        let headers = res.headers().clone();
        let body = match res.bytes().await {
            Ok(body) => body.to_vec(),
            Err(e) => return Err(format!("{what}: unreadable body: {e}")),
        };
        Ok(Reply {
            what,
            status,
            headers,
            body,
        })
    }

    /// `POST /items`, which must succeed.
    async fn create(&self, item: Value) -> Created {
        let r = self
            .send(self.request(Method::POST, "/items").json(&item))
            .await;
        r.expect(StatusCode::CREATED);
        let path = r.header(LOCATION).expect("Location").to_owned();
        Created {
            etag: r.etag(),
            item: r.json(),
            path,
        }
    }

    /// The item's current `(ETag, body)`, by a GET that must succeed.
    async fn snapshot(&self, path: &str) -> (String, Value) {
        let r = self.send(self.get(path)).await;
        r.expect(StatusCode::OK);
        (r.etag(), r.json())
    }

    /// The item's tag after a successful PUT of a body that the service
    /// stored with changes (it adds the id): RFC 9110 §9.3.4 keeps the
    /// validators out of the PUT's answer then, so it must carry none, and
    /// the tag comes from a GET.
    async fn etag_after_put(&self, put: &Reply, path: &str) -> String {
        assert!(put.status.is_success(), "{}: {}", put.what, put.status);
        for name in [ETAG, LAST_MODIFIED] {
            assert_eq!(
                put.header(name.clone()),
                None,
                "{}: {name} on the answer to a PUT not stored as sent",
                put.what
            );
        }
        self.snapshot(path).await.0
    }

    /// Asserts that the item is exactly as `before`, after a request that
    /// was refused.
    async fn assert_unchanged(&self, path: &str, before: &(String, Value), after: &str) {
        let now = self.snapshot(path).await;
        assert_eq!(
            &now, before,
            "{}: {path} changed after {after}",
            self.server
        );
    }

    /// Asserts that there is no item at `path`.
    async fn assert_absent(&self, path: &str) {
        self.send(self.get(path))
            .await
            .problem(StatusCode::NOT_FOUND);
    }
}

async fn start_axum(opt_in: bool) -> String {
    let app = axum_app::served(axum_app::router(
        Items::new(Store::memory()),
        items::gate(opt_in),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
        )
        .await;
    });
    format!("http://{addr}")
}

fn start_actix(opt_in: bool) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let configure = actix_app::configure(Items::new(Store::memory()), items::gate(opt_in));
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new().configure(configure.clone())
            })
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run();
            let _ = tx.send(addr);
            server.await
        })
    });
    let addr = rx.recv().expect("the actix-web server did not start");
    format!("http://{addr}")
}

/// What `POST /items` answered.
struct Created {
    path: String,
    etag: String,
    item: Value,
}

/// A whole response, and the request it answers (for messages).
struct Reply {
    what: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(
            self.status,
            status,
            "{}: expected {status}, got {}: {}",
            self.what,
            self.status,
            self.text()
        );
        self
    }

    fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers.get(&name).map(|v| {
            v.to_str()
                .unwrap_or_else(|_| panic!("{}: {name} is not visible ASCII", self.what))
        })
    }

    /// The 415 of a PATCH names the patch formats the service accepts
    /// (RFC 5789 §2.2).
    fn names_patch_formats(&self) {
        assert_eq!(
            self.header(HeaderName::from_static("accept-patch")),
            Some("application/merge-patch+json, application/json"),
            "{}",
            self.what
        );
    }

    /// The `ETag` header, which must be a strong entity-tag.
    fn etag(&self) -> String {
        let value = self
            .header(ETAG)
            .unwrap_or_else(|| panic!("{}: no ETag ({})", self.what, self.status));
        let tag: ifmatch::ETag = value
            .parse()
            .unwrap_or_else(|e| panic!("{}: ETag {value:?}: {e}", self.what));
        assert!(tag.is_strong(), "{}: weak ETag {value}", self.what);
        value.to_owned()
    }

    /// The `Last-Modified` header, which must be an IMF-fixdate.
    fn last_modified(&self) -> SystemTime {
        let value = self
            .header(LAST_MODIFIED)
            .unwrap_or_else(|| panic!("{}: no Last-Modified", self.what));
        let time = httpdate::parse_http_date(value)
            .unwrap_or_else(|e| panic!("{}: Last-Modified {value:?}: {e}", self.what));
        assert_eq!(
            httpdate::fmt_http_date(time),
            value,
            "{}: Last-Modified is not an IMF-fixdate",
            self.what
        );
        time
    }

    fn content_type(&self) -> &str {
        self.header(CONTENT_TYPE).unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text()))
    }

    /// An `application/json` 200/201 body.
    fn item(&self) -> Value {
        assert!(
            self.content_type().starts_with("application/json"),
            "{}: Content-Type {:?}",
            self.what,
            self.content_type()
        );
        self.json()
    }

    fn assert_no_body(&self) {
        assert!(
            self.body.is_empty(),
            "{}: a {} must have no body, got {:?}",
            self.what,
            self.status,
            self.text()
        );
    }

    /// An RFC 9457 problem response with `status`: `application/problem+json`
    /// with a matching `status` member, a `title` and a `detail`.
    fn problem(&self, status: StatusCode) -> Value {
        self.expect(status);
        assert!(
            self.content_type().starts_with(PROBLEM_JSON),
            "{}: {status} with Content-Type {:?}, not {PROBLEM_JSON}",
            self.what,
            self.content_type()
        );
        let body = self.json();
        assert_eq!(
            body["status"],
            status.as_u16(),
            "{}: status member",
            self.what
        );
        for member in ["title", "detail"] {
            assert!(
                body[member].as_str().is_some_and(|s| !s.is_empty()),
                "{}: no {member} in {body}",
                self.what
            );
        }
        body
    }

    /// A problem with `status` whose `detail` says `text`.
    fn problem_saying(&self, status: StatusCode, text: &str) -> Value {
        let body = self.problem(status);
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(text)),
            "{}: the {status} should say {text:?}: {body}",
            self.what
        );
        body
    }

    /// A 412 problem for an item that exists: the current tag in the `ETag`
    /// header and in the `etag` member.
    fn precondition_failed(&self, current: &str) -> Value {
        let body = self.problem(StatusCode::PRECONDITION_FAILED);
        assert_eq!(self.etag(), current, "{}: ETag of the 412", self.what);
        assert_eq!(
            body["etag"], current,
            "{}: etag member of the 412",
            self.what
        );
        body
    }

    /// `Cache-Control: no-cache`: without it a browser reuses an item with
    /// `Last-Modified` unasked for a tenth of its age (RFC 9111 §4.2.2),
    /// and a person reloading after a 412 gets the stale copy again.
    fn asks_caches_to_revalidate(&self) {
        assert_eq!(
            self.header(CACHE_CONTROL),
            Some("no-cache"),
            "{}: Cache-Control",
            self.what
        );
    }

    /// A 304: the validators of the item and no body.
    fn not_modified(&self, etag: &str, last_modified: SystemTime) {
        self.expect(StatusCode::NOT_MODIFIED);
        assert_eq!(self.etag(), etag, "{}: ETag of the 304", self.what);
        // RFC 9110 §15.4.5: the 304 repeats the 200's Cache-Control.
        self.asks_caches_to_revalidate();
        assert_eq!(
            self.last_modified(),
            last_modified,
            "{}: Last-Modified of the 304",
            self.what
        );
        // RFC 9110 §8.6: no length, or the 200's, which for an item is
        // never 0 (axum sets 0 from the empty body, and hyper sends it on
        // a 304 to a HEAD, unless the service drops it).
        assert_ne!(
            self.header(CONTENT_LENGTH),
            Some("0"),
            "{}: Content-Length of the 304",
            self.what
        );
        self.assert_no_body();
    }
}

/// `W/"…"`: the weak form of a strong tag.
fn weak(etag: &str) -> String {
    format!("W/{etag}")
}

/// An entity-tag that no item of a fresh service has.
const UNKNOWN_TAG: &str = "\"no-such-version\"";

/// The three forms of an HTTP-date ([RFC 9110 §5.6.7](https://www.rfc-editor.org/rfc/rfc9110#section-5.6.7)).
fn date_forms(time: SystemTime) -> [(&'static str, String); 3] {
    let imf = httpdate::fmt_http_date(time);
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let parts: Vec<&str> = imf.split(' ').collect();
    let [wkday, day, month, year, clock, _gmt] = parts[..] else {
        panic!("unexpected IMF-fixdate {imf:?}");
    };
    let wkday = wkday.trim_end_matches(',');
    let weekday = match wkday {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        "Sun" => "Sunday",
        other => panic!("unexpected day {other:?}"),
    };
    let rfc850 = format!("{weekday}, {day}-{month}-{} {clock} GMT", &year[2..]);
    let day: u32 = day.parse().expect("day of month");
    let asctime = format!("{wkday} {month} {day:>2} {clock} {year}");
    [
        ("IMF-fixdate", imf),
        ("RFC 850", rfc850),
        ("asctime", asctime),
    ]
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Two creates with `If-None-Match: *` that both passed the gate while the
/// item was absent: the store lets one write; the other gets the 412
/// (RFC 9110 §13.1.2), even with the same body, because it wrote nothing.
/// (Not reachable deterministically over HTTP: the race is between the
/// gate and the write.)
#[tokio::test]
async fn a_create_that_loses_the_race_to_an_identical_one_gets_412() {
    use ifmatch::{Decision, ETag};

    let items = Items::new(Store::memory());
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::IF_NONE_MATCH,
        http::HeaderValue::from_static("*"),
    );
    let checked = items::gate(false).check(
        &http::Method::PUT,
        &headers,
        None::<&ETag>,
        SystemTime::now(),
    );
    let Decision::Proceed(pre) = checked else {
        panic!("a create of an absent item must proceed");
    };
    let body = br#"{"name": "same"}"#;
    let json = &items::ContentHead::of_type(Some(b"application/json"));
    let id = items::ItemId::from_path("/items/x").expect("a valid id");
    let first = items.replace(&id, &pre, json, body).await;
    assert!(
        matches!(&first, items::Reply::Done(res) if res.status() == http::StatusCode::CREATED),
        "the first create writes"
    );
    let second = items.replace(&id, &pre, json, body).await;
    assert!(
        matches!(second, items::Reply::Conflict(_)),
        "the second create must be a conflict (412), not a success"
    );
}

/// The precondition the example gate hands a `method` request that carries
/// `headers`, against the item's state `current`; it must let it through.
fn let_through(
    opt_in: bool,
    method: http::Method,
    headers: &[(http::HeaderName, http::HeaderValue)],
    current: &ifmatch::Stored<items::Item>,
) -> ifmatch::Precondition {
    let headers: http::HeaderMap = headers.iter().cloned().collect();
    match items::gate(opt_in).check(&method, &headers, Some(current), SystemTime::now()) {
        ifmatch::Decision::Proceed(pre) => pre,
        ifmatch::Decision::Respond(res) => {
            panic!("{method} {headers:?}: the gate answered {}", res.status())
        }
    }
}

/// An items service on the memory store, created holding item `x`
/// (`{"n": 0}`): the service, the id, and the item as stored.
async fn items_holding_x() -> (Items, items::ItemId, ifmatch::Stored<items::Item>) {
    use ifmatch::{ConditionalStore, Expected, Precondition};

    let items = Items::new(Store::memory());
    let json = &items::ContentHead::of_type(Some(b"application/json"));
    let id = items::ItemId::from_path("/items/x").expect("a valid id");
    let created = Precondition::from(Expected::Absent);
    let first = items.replace(&id, &created, json, br#"{"n": 0}"#).await;
    assert_eq!(first.status(), http::StatusCode::CREATED);
    let stored = items.store.load("x").await.unwrap().expect("created");
    (items, id, stored)
}

/// A PUT whose `If-Match` held at the gate, but another write landed before
/// its own: 412 naming the current tag, whatever its body, even the body
/// the other write put in place (that write may be another client's equal
/// change, see `items::gate`). Nothing is written. (Not reachable
/// deterministically over HTTP: the race is between the gate and the
/// write.)
#[tokio::test]
async fn a_put_that_loses_the_race_after_the_check_gets_412_whatever_its_body() {
    use ifmatch::ConditionalStore;

    let (items, id, v1) = items_holding_x().await;
    let json = &items::ContentHead::of_type(Some(b"application/json"));
    let if_match = [(http::header::IF_MATCH, v1.etag().to_header_value())];
    let pre = let_through(false, http::Method::PUT, &if_match, &v1);
    let body = br#"{"n": 1}"#;
    let landed = items.replace(&id, &pre, json, body).await;
    assert_eq!(landed.status(), http::StatusCode::OK);
    let v2 = items.store.load("x").await.unwrap().expect("replaced");
    assert_ne!(v2.etag(), v1.etag());

    for body in [&body[..], br#"{"n": 2}"#] {
        match items.replace(&id, &pre, json, body).await {
            items::Reply::Conflict(c) => assert_eq!(c.current_etag(), Some(v2.etag())),
            items::Reply::Done(res) => panic!("a lost race got {}: {}", res.status(), res.body()),
        }
        assert_eq!(items.store.load("x").await.unwrap().as_ref(), Some(&v2));
    }
}

/// A DELETE let through while the item existed, whose item another request
/// deleted first: without a precondition (opt-in mode) there is nothing to
/// delete, 404; with `If-Match: *` or the tag it had, the condition no
/// longer holds, 412 (RFC 9110 §13.1.1). (Not reachable deterministically
/// over HTTP.)
#[tokio::test]
async fn a_delete_whose_item_was_deleted_after_the_check_gets_404_or_412() {
    use ifmatch::{ConditionalStore, Expected};

    for (label, opt_in, if_match, expected) in [
        ("no precondition", true, None, http::StatusCode::NOT_FOUND),
        (
            "If-Match: *",
            false,
            Some("*"),
            http::StatusCode::PRECONDITION_FAILED,
        ),
        (
            "If-Match: its tag",
            false,
            Some("TAG"),
            http::StatusCode::PRECONDITION_FAILED,
        ),
    ] {
        let (items, id, current) = items_holding_x().await;
        let headers: Vec<_> = if_match
            .map(|value| {
                let value = match value {
                    "TAG" => current.etag().to_header_value(),
                    other => http::HeaderValue::from_static(other),
                };
                (http::header::IF_MATCH, value)
            })
            .into_iter()
            .collect();
        let pre = let_through(opt_in, http::Method::DELETE, &headers, &current);
        // Another client deletes it first.
        items.store.remove("x", &Expected::Any).await.unwrap();
        let reply = items.delete(&id, &pre).await;
        assert_eq!(reply.status(), expected, "{label}");
        assert_eq!(items.store.load("x").await.unwrap(), None, "{label}");
    }
}

/// A PATCH without a precondition (opt-in mode) let through while the item
/// existed, whose item another request deleted before the handler read
/// it: 404, as the gate now answers, and the patch creates nothing. (Not
/// reachable deterministically over HTTP.)
#[tokio::test]
async fn a_patch_whose_item_was_deleted_before_its_read_gets_404() {
    use ifmatch::{ConditionalStore, Expected};

    let (items, id, current) = items_holding_x().await;
    let pre = let_through(true, http::Method::PATCH, &[], &current);
    items.store.remove("x", &Expected::Any).await.unwrap();
    let merge = &items::ContentHead::of_type(Some(b"application/merge-patch+json"));
    let reply = items.patch(&id, &pre, merge, br#"{"n": 1}"#).await;
    assert_eq!(reply.status(), http::StatusCode::NOT_FOUND);
    assert_eq!(items.store.load("x").await.unwrap(), None);
}

#[test]
fn date_forms_writes_the_rfc_9110_examples() {
    let forms = date_forms(UNIX_EPOCH + Duration::from_secs(784_111_777));
    assert_eq!(
        forms.map(|(_, s)| s),
        [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ]
    );
}

/// Runs each contract test against both services: `on_axum::NAME` and
/// `on_actix::NAME`, each on a fresh service in the given mode.
macro_rules! both_servers {
    ($($mode:ident $name:ident,)*) => {
        mod on_axum {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let api = super::Api::start(super::Server::Axum, super::Mode::$mode).await;
                    super::$name(&api).await;
                }
            )*
        }
        mod on_actix {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let api = super::Api::start(super::Server::Actix, super::Mode::$mode).await;
                    super::$name(&api).await;
                }
            )*
        }
    };
}

both_servers! {
    Strict post_creates_an_item_with_location_a_strong_etag_and_its_id,
    Strict post_refuses_non_objects_malformed_json_and_other_media_types,
    Strict get_and_head_send_json_a_strong_etag_and_an_imf_fixdate,
    Strict if_none_match_on_get_and_head_answers_304_with_validators_and_no_body,
    Strict if_modified_since_in_all_three_date_forms_answers_304_unless_modified_after,
    Strict if_match_and_if_unmodified_since_on_get_fail_with_412,
    Strict if_range_with_range_still_sends_the_whole_item,
    Strict put_without_if_match_gets_428_explaining_how_to_get_and_send_the_etag,
    Strict put_with_the_current_etag_replaces_the_item_under_a_new_etag,
    Strict put_with_a_stale_etag_gets_412_with_the_current_etag_and_changes_nothing,
    Strict put_with_if_none_match_star_creates_only_an_absent_item,
    Strict if_match_on_put_compares_strongly_reads_lists_and_star,
    Strict malformed_if_match_on_put_gets_400_or_412_and_changes_nothing,
    Strict a_stale_put_gets_412_even_when_the_item_already_equals_its_body,
    Strict a_put_answers_with_validators_only_for_an_item_stored_as_sent,
    Strict patch_merges_under_if_match,
    Strict put_and_patch_refuse_bodies_that_are_not_items,
    Strict delete_requires_the_current_etag_and_then_the_item_is_gone,
    Strict unknown_ids_get_404_problem_json,
    Strict malformed_conditional_headers_never_cause_a_5xx_nor_a_change,
    Strict concurrent_increments_with_if_match_and_retry_lose_no_update,
    OptIn concurrent_increments_without_if_match_complete_in_opt_in_mode,
    Strict concurrent_patches_under_if_match_star_lose_no_field,
    Strict invalid_ids_are_found_by_no_read_and_refused_to_every_write,
    OptIn invalid_ids_are_refused_to_writes_without_a_precondition_too,
    Strict json_with_u0000_in_a_string_or_key_gets_422_and_changes_nothing,
    Strict a_percent_encoded_id_names_the_decoded_item_for_the_check_and_the_write,
    OptIn a_put_without_a_precondition_answers_201_when_it_creates_and_200_when_it_replaces,
    Strict other_methods_on_the_collection_and_post_on_an_item_get_405,
    Strict a_content_coding_or_a_content_range_gets_refused_and_changes_nothing,
    Strict a_body_cut_short_by_a_client_that_went_away_is_never_written,
    Strict post_evaluates_its_preconditions_against_the_collection,
    Strict json_is_recognised_by_its_media_type_with_parameters_any_case_or_none,
    Strict an_item_of_one_and_a_half_mebibytes_is_accepted,
    Strict a_body_over_the_limit_gets_413_problem_json_and_a_stale_put_its_412,
    Strict a_patch_sent_with_post_or_put_gets_415_and_changes_nothing,
    Strict patches_cannot_grow_an_item_past_the_body_limit,
}

// ---------------------------------------------------------------------------
// POST, GET, HEAD
// ---------------------------------------------------------------------------

async fn post_creates_an_item_with_location_a_strong_etag_and_its_id(s: &Api) {
    let r = s
        .send(
            s.request(Method::POST, "/items")
                .json(&json!({ "name": "lamp", "tags": ["a", "b"] })),
        )
        .await;
    r.expect(StatusCode::CREATED);
    let etag = r.etag();
    let item = r.item();
    let id = item["id"]
        .as_str()
        .expect("a string id in the body")
        .to_owned();
    assert!(!id.is_empty(), "{}: empty id", r.what);
    assert_eq!(
        r.header(LOCATION),
        Some(format!("/items/{id}").as_str()),
        "{}: Location",
        r.what
    );
    assert_eq!(
        item,
        json!({ "id": id, "name": "lamp", "tags": ["a", "b"] }),
        "{}: body",
        r.what
    );
    // The Location serves the stored object under the same tag.
    let (tag, stored) = s.snapshot(&format!("/items/{id}")).await;
    assert_eq!((tag, stored), (etag, item));
    // A second item gets another id.
    let other = s.create(json!({ "name": "lamp" })).await;
    assert_ne!(other.item["id"], id, "{}: ids must differ", s.server);
}

async fn post_evaluates_its_preconditions_against_the_collection(s: &Api) {
    // RFC 9110 §13.1.1: If-Match is evaluated before the method is
    // performed, against the target: for a POST, the collection, which
    // exists and has no entity-tag.
    let post = |name: HeaderName, value: &str| {
        s.request(Method::POST, "/items")
            .header(CONTENT_TYPE, "application/json")
            .header(name, value)
            .body(r#"{"name": "lamp"}"#)
    };
    s.send(post(IF_MATCH, "*"))
        .await
        .expect(StatusCode::CREATED);
    for (name, value) in [
        (IF_MATCH, "\"v1\""),
        (IF_MATCH, "W/\"v1\""),
        (IF_NONE_MATCH, "*"),
    ] {
        let r = s.send(post(name, value)).await;
        r.problem(StatusCode::PRECONDITION_FAILED);
        assert!(r.header(LOCATION).is_none(), "{}: created anyway", r.what);
    }
    // Malformed: 400 here, as on items.
    s.send(post(IF_MATCH, "v1"))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

async fn post_refuses_non_objects_malformed_json_and_other_media_types(s: &Api) {
    // The 422 says what the body is instead.
    for (body, kind) in [
        ("[1, 2]", "an array"),
        ("42", "a number"),
        ("\"text\"", "a string"),
        ("null", "null"),
        ("true", "a boolean"),
    ] {
        let r = s
            .send(
                s.request(Method::POST, "/items")
                    .header(CONTENT_TYPE, "application/json")
                    .body(body),
            )
            .await;
        r.problem_saying(StatusCode::UNPROCESSABLE_ENTITY, &format!("not {kind}."));
    }
    for body in ["{", "{\"name\": }", "", "not json", "{\"a\": 1} trailing"] {
        s.send(
            s.request(Method::POST, "/items")
                .header(CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    }
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        s.send(
            s.request(Method::POST, "/items")
                .header(CONTENT_TYPE, content_type)
                .body("{\"name\": \"lamp\"}"),
        )
        .await
        .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}

async fn json_is_recognised_by_its_media_type_with_parameters_any_case_or_none(s: &Api) {
    // POST and PUT take `application/json` or any `+json` type, whatever
    // the case and parameters; a body without Content-Type is read as JSON.
    let json_types = [
        Some("application/json; charset=utf-8"),
        Some("Application/JSON"),
        Some(" application/json ;charset=UTF-8"),
        Some("application/vnd.example+json"),
        None,
    ];
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.as_str();
    let mut etag = created.etag.clone();
    for content_type in json_types {
        let name = format!("sent as {content_type:?}");
        let body = json!({ "name": name }).to_string();
        let mut post = s.request(Method::POST, "/items").body(body.clone());
        let mut put = s.put(path).header(IF_MATCH, &etag).body(body);
        if let Some(value) = content_type {
            post = post.header(CONTENT_TYPE, value);
            put = put.header(CONTENT_TYPE, value);
        }
        let r = s.send(post).await;
        r.expect(StatusCode::CREATED);
        assert_eq!(r.item()["name"], name.as_str(), "{}", r.what);
        let r = s.send(put).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.item()["name"], name.as_str(), "{}", r.what);
        etag = s.etag_after_put(&r, path).await;
    }
    // PATCH takes a merge patch (or plain JSON), with parameters and in any
    // case, and no other format: not a JSON Patch (RFC 6902), nor a body
    // without Content-Type.
    for content_type in [
        "application/merge-patch+json; charset=utf-8",
        "Application/Merge-Patch+JSON",
        "application/json;charset=utf-8",
    ] {
        let r = s
            .send(
                s.patch(path)
                    .header(IF_MATCH, &etag)
                    .header(CONTENT_TYPE, content_type)
                    .body(json!({ "patched": content_type }).to_string()),
            )
            .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.item()["patched"], content_type, "{}", r.what);
        etag = r.etag();
    }
    let before = s.snapshot(path).await;
    for content_type in [Some("application/json-patch+json"), None] {
        let mut patch = s
            .patch(path)
            .header(IF_MATCH, &etag)
            .body(json!({ "patched": "no" }).to_string());
        if let Some(value) = content_type {
            patch = patch.header(CONTENT_TYPE, value);
        }
        let r = s.send(patch).await;
        r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        r.names_patch_formats();
        s.assert_unchanged(path, &before, &r.what).await;
    }
}

async fn a_patch_sent_with_post_or_put_gets_415_and_changes_nothing(s: &Api) {
    // A merge patch is an object like an item; taken as the item, it would
    // replace every field it does not name and store its nulls. POST and PUT
    // take items, so both patch formats get 415, with a detail that says
    // to use PATCH (for a JSON Patch, which PATCH refuses too, with a merge
    // patch).
    let created = s.create(json!({ "name": "lamp", "price": 12 })).await;
    let path = created.path.as_str();
    let before = s.snapshot(path).await;
    for content_type in [
        "application/merge-patch+json",
        "Application/Merge-Patch+JSON; charset=utf-8",
        "application/json-patch+json",
    ] {
        let patch = json!({ "price": 13, "name": null }).to_string();
        let put = s.send(
            s.put(path)
                .header(IF_MATCH, &created.etag)
                .header(CONTENT_TYPE, content_type)
                .body(patch.clone()),
        );
        let r = put.await;
        let problem = r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("PATCH"), "{}: {detail}", r.what);
        if content_type.contains("json-patch") {
            // Following the advice must not meet another 415.
            assert!(
                detail.contains("application/merge-patch+json"),
                "{}: {detail}",
                r.what
            );
        }
        s.assert_unchanged(path, &before, &r.what).await;

        let post = s.request(Method::POST, "/items");
        let r = s
            .send(post.header(CONTENT_TYPE, content_type).body(patch))
            .await;
        let problem = r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("PATCH"), "{}: {detail}", r.what);
        assert!(r.header(LOCATION).is_none(), "{}: created", r.what);
    }
}

async fn an_item_of_one_and_a_half_mebibytes_is_accepted(s: &Api) {
    // Both services take bodies up to 2 MiB (axum's default limit, and the
    // one actix-web is configured with).
    let note = "n".repeat(3 << 19);
    let created = s.create(json!({ "name": "big", "note": note })).await;
    assert_eq!(created.item["note"].as_str().map(str::len), Some(3 << 19));
    let r = s
        .send(
            s.put(&created.path)
                .header(IF_MATCH, &created.etag)
                .json(&json!({ "name": "bigger", "note": format!("{note}!") })),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.item()["name"], "bigger", "{}", r.what);
}

async fn a_body_over_the_limit_gets_413_problem_json_and_a_stale_put_its_412(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let before = s.snapshot(&created.path).await;
    // One byte over the 2 MiB both services accept.
    let limit = 2 * 1024 * 1024;
    let note = "n".repeat(limit - r#"{"name":"big","note":""}"#.len() + 1);
    let big = serde_json::to_string(&json!({ "name": "big", "note": note })).unwrap();
    assert_eq!(big.len(), limit + 1);
    // A server may close the connection rather than read the rest of a
    // body it refused (actix-web does): not one for the client to reuse
    // (see `send_refused_unread`).
    let put = |tag: &str| {
        s.put(&created.path)
            .header(IF_MATCH, tag)
            .header(CONTENT_TYPE, "application/json")
            .header(CONNECTION, "close")
            .body(big.clone())
    };

    // In the service's problem format, like every other refusal.
    let r = s.send_refused_unread(put(&created.etag)).await;
    r.problem_saying(StatusCode::PAYLOAD_TOO_LARGE, "2 MiB");
    let r = s
        .send_refused_unread(
            s.request(Method::POST, "/items")
                .header(CONTENT_TYPE, "application/json")
                .header(CONNECTION, "close")
                .body(big.clone()),
        )
        .await;
    r.problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.header(LOCATION).is_none(), "{}: created", r.what);

    // A stale PUT: its condition is evaluated before its body is looked at,
    // so its 412, with the current tag, whatever the body (RFC 9110
    // §13.2.1).
    let r = s.send_refused_unread(put("\"stale\"")).await;
    r.problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.etag(), created.etag, "{}: the current tag", r.what);
    s.assert_unchanged(&created.path, &before, "a body over the limit")
        .await;
}

async fn patches_cannot_grow_an_item_past_the_body_limit(s: &Api) {
    // Each PATCH is within the 2 MiB limit, but merges into the item: one
    // after another they grew it without bound (11 MB after six), which
    // a GET then sends whole and a PUT of what the GET returned got 413.
    let note = "n".repeat(3 << 19);
    let created = s.create(json!({ "name": "big", "note": note })).await;
    let before = s.snapshot(&created.path).await;
    let patch = |tag: &str, patch: Value| {
        s.patch(&created.path)
            .header(IF_MATCH, tag)
            .header(CONTENT_TYPE, "application/merge-patch+json")
            .json(&patch)
    };
    let r = s
        .send(patch(&created.etag, json!({ "more": note.clone() })))
        .await;
    r.problem_saying(StatusCode::UNPROCESSABLE_ENTITY, "2 MiB");
    s.assert_unchanged(&created.path, &before, "a patch past the limit")
        .await;
    // A patch that does not grow the item past the limit goes through.
    let r = s
        .send(patch(&created.etag, json!({ "name": "bigger" })))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.item()["name"], "bigger", "{}", r.what);
}

async fn get_and_head_send_json_a_strong_etag_and_an_imf_fixdate(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let get = s.send(s.get(&created.path)).await;
    get.expect(StatusCode::OK);
    assert_eq!(get.item(), created.item, "{}: GET body", get.what);
    assert_eq!(get.etag(), created.etag, "{}: GET ETag", get.what);
    get.asks_caches_to_revalidate();
    let modified = get.last_modified();

    let head = s.send(s.head(&created.path)).await;
    head.expect(StatusCode::OK);
    head.assert_no_body();
    assert!(
        head.content_type().starts_with("application/json"),
        "{}: Content-Type {:?}",
        head.what,
        head.content_type()
    );
    assert_eq!(head.etag(), created.etag, "{}: HEAD ETag", head.what);
    head.asks_caches_to_revalidate();
    assert_eq!(
        head.last_modified(),
        modified,
        "{}: HEAD Last-Modified",
        head.what
    );
    if let Some(length) = head.header(CONTENT_LENGTH) {
        assert_eq!(
            length,
            get.body.len().to_string(),
            "{}: HEAD Content-Length",
            head.what
        );
    }
}

// ---------------------------------------------------------------------------
// Conditional GET and HEAD
// ---------------------------------------------------------------------------

async fn if_none_match_on_get_and_head_answers_304_with_validators_and_no_body(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let modified = s.send(s.get(&created.path)).await.last_modified();
    let etag = created.etag.as_str();
    let matching = [
        ("exact", etag.to_owned()),
        ("a list", format!("{UNKNOWN_TAG}, {etag}")),
        ("a list without spaces", format!("{UNKNOWN_TAG},{etag}")),
        ("the weak form (weak comparison)", weak(etag)),
        ("*", "*".to_owned()),
    ];
    for (what, value) in &matching {
        for method in [Method::GET, Method::HEAD] {
            let r = s
                .send(
                    s.request(method.clone(), &created.path)
                        .header(IF_NONE_MATCH, value),
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}: {what}", r.what);
            r.not_modified(etag, modified);
        }
    }
    // Tags that do not match: the full representation.
    for value in [UNKNOWN_TAG.to_owned(), weak(UNKNOWN_TAG)] {
        let r = s
            .send(s.get(&created.path).header(IF_NONE_MATCH, value))
            .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.item(), created.item, "{}", r.what);
    }
}

async fn if_modified_since_in_all_three_date_forms_answers_304_unless_modified_after(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let modified = s.send(s.get(&created.path)).await.last_modified();
    let etag = created.etag.as_str();
    for ((form, same), (_, earlier)) in date_forms(modified)
        .into_iter()
        .zip(date_forms(modified - Duration::from_secs(1)))
    {
        for method in [Method::GET, Method::HEAD] {
            // Not modified since the date it was last modified.
            let r = s
                .send(
                    s.request(method.clone(), &created.path)
                        .header(IF_MODIFIED_SINCE, &same),
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}: {form}", r.what);
            r.not_modified(etag, modified);
            // Modified after a date one second earlier.
            let r = s
                .send(
                    s.request(method.clone(), &created.path)
                        .header(IF_MODIFIED_SINCE, &earlier),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}: {form}", r.what);
            if method == Method::GET {
                assert_eq!(r.item(), created.item, "{}", r.what);
            }
        }
    }
    // Modified after a date a day earlier, in every form.
    for (form, date) in date_forms(modified - DAY) {
        let r = s
            .send(s.get(&created.path).header(IF_MODIFIED_SINCE, &date))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {form}", r.what);
    }
    // RFC 9110 §13.1.3: ignored when If-None-Match is present...
    let r = s
        .send(
            s.get(&created.path)
                .header(IF_NONE_MATCH, UNKNOWN_TAG)
                .header(IF_MODIFIED_SINCE, httpdate::fmt_http_date(modified)),
        )
        .await;
    r.expect(StatusCode::OK);
    // ...and when it is not a valid HTTP-date.
    for invalid in ["yesterday", "Sun, 32 Nov 1994 08:49:37 GMT", ""] {
        let r = s
            .send(s.get(&created.path).header(IF_MODIFIED_SINCE, invalid))
            .await;
        r.expect(StatusCode::OK);
    }
    // A change makes the old date stale.
    let r = s
        .send(
            s.put(&created.path)
                .header(IF_MATCH, etag)
                .json(&json!({ "name": "desk" })),
        )
        .await;
    r.expect(StatusCode::OK);
    let new_etag = s.etag_after_put(&r, &created.path).await;
    let r = s
        .send(
            s.get(&created.path)
                .header(IF_MODIFIED_SINCE, httpdate::fmt_http_date(modified - DAY)),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.etag(), new_etag);
    assert_eq!(r.item()["name"], "desk", "{}", r.what);
}

async fn if_match_and_if_unmodified_since_on_get_fail_with_412(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let modified = s.send(s.get(&created.path)).await.last_modified();
    let etag = created.etag.as_str();
    for method in [Method::GET, Method::HEAD] {
        // If-Match that does not match.
        for value in [UNKNOWN_TAG.to_owned(), weak(etag)] {
            let r = s
                .send(
                    s.request(method.clone(), &created.path)
                        .header(IF_MATCH, value),
                )
                .await;
            if method == Method::GET {
                r.precondition_failed(etag);
            } else {
                r.expect(StatusCode::PRECONDITION_FAILED);
                r.assert_no_body();
            }
        }
        // If-Match that does.
        for value in [
            etag.to_owned(),
            format!("{UNKNOWN_TAG}, {etag}"),
            "*".into(),
        ] {
            s.send(
                s.request(method.clone(), &created.path)
                    .header(IF_MATCH, value),
            )
            .await
            .expect(StatusCode::OK);
        }
        // If-Unmodified-Since before the last change, in every form.
        for (form, date) in date_forms(modified - DAY) {
            let r = s
                .send(
                    s.request(method.clone(), &created.path)
                        .header(IF_UNMODIFIED_SINCE, &date),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::PRECONDITION_FAILED,
                "{}: {form}",
                r.what
            );
            if method == Method::GET {
                r.precondition_failed(etag);
            }
        }
        // If-Unmodified-Since at the last change holds.
        for (form, date) in date_forms(modified) {
            let r = s
                .send(
                    s.request(method.clone(), &created.path)
                        .header(IF_UNMODIFIED_SINCE, &date),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}: {form}", r.what);
        }
        // RFC 9110 §13.2.2: If-Unmodified-Since is ignored when If-Match is
        // present.
        let r = s
            .send(
                s.request(method.clone(), &created.path)
                    .header(IF_MATCH, etag)
                    .header(IF_UNMODIFIED_SINCE, httpdate::fmt_http_date(modified - DAY)),
            )
            .await;
        r.expect(StatusCode::OK);
    }
}

async fn if_range_with_range_still_sends_the_whole_item(s: &Api) {
    let created = s
        .create(json!({ "name": "lamp", "note": "long enough" }))
        .await;
    let modified = s.send(s.get(&created.path)).await.last_modified();
    let etag = created.etag.as_str();
    let values = [
        etag.to_owned(),
        UNKNOWN_TAG.to_owned(),
        weak(etag),
        httpdate::fmt_http_date(modified),
        httpdate::fmt_http_date(modified - DAY),
        "not a validator".to_owned(),
    ];
    for value in values {
        let r = s
            .send(
                s.get(&created.path)
                    .header(RANGE, "bytes=0-3")
                    .header(IF_RANGE, value),
            )
            .await;
        // The examples do not serve ranges: whatever If-Range says, the
        // whole representation.
        r.expect(StatusCode::OK);
        assert_eq!(r.item(), created.item, "{}", r.what);
        assert_eq!(r.etag(), etag, "{}", r.what);
    }
    // If-Range without Range is ignored.
    s.send(s.get(&created.path).header(IF_RANGE, UNKNOWN_TAG))
        .await
        .expect(StatusCode::OK);
}

// ---------------------------------------------------------------------------
// PUT
// ---------------------------------------------------------------------------

async fn put_without_if_match_gets_428_explaining_how_to_get_and_send_the_etag(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let before = s.snapshot(&created.path).await;
    let r = s
        .send(s.put(&created.path).json(&json!({ "name": "desk" })))
        .await;
    let body = r.problem(StatusCode::PRECONDITION_REQUIRED);
    let detail = body["detail"].as_str().unwrap_or_default();
    for hint in ["GET", "ETag", "If-Match"] {
        assert!(
            detail.contains(hint),
            "{}: the 428 detail should say how to get and send the ETag ({hint}): {detail}",
            r.what
        );
    }
    s.assert_unchanged(&created.path, &before, &r.what).await;
    // If-Unmodified-Since alone does not count as a precondition.
    let r = s
        .send(
            s.put(&created.path)
                .header(
                    IF_UNMODIFIED_SINCE,
                    httpdate::fmt_http_date(SystemTime::now()),
                )
                .json(&json!({ "name": "desk" })),
        )
        .await;
    r.problem(StatusCode::PRECONDITION_REQUIRED);
    s.assert_unchanged(&created.path, &before, &r.what).await;
    // Nor does If-None-Match with tags (only `*`, to create).
    let r = s
        .send(
            s.put(&created.path)
                .header(IF_NONE_MATCH, UNKNOWN_TAG)
                .json(&json!({ "name": "desk" })),
        )
        .await;
    r.problem(StatusCode::PRECONDITION_REQUIRED);
    s.assert_unchanged(&created.path, &before, &r.what).await;
}

async fn put_with_the_current_etag_replaces_the_item_under_a_new_etag(s: &Api) {
    let created = s.create(json!({ "name": "lamp", "color": "red" })).await;
    let id = created.item["id"].clone();
    let r = s
        .send(
            s.put(&created.path)
                .header(IF_MATCH, &created.etag)
                .json(&json!({ "name": "desk" })),
        )
        .await;
    r.expect(StatusCode::OK);
    let etag = s.etag_after_put(&r, &created.path).await;
    assert_ne!(etag, created.etag, "{}: the ETag must change", r.what);
    // A replacement, not a merge: "color" is gone; the id stays.
    let replaced = json!({ "id": id, "name": "desk" });
    assert_eq!(r.item(), replaced, "{}", r.what);
    assert_eq!(s.snapshot(&created.path).await, (etag.clone(), replaced));
    // The body may repeat the right id. Sent exactly as the service stores
    // it (members sorted, no white space), its answer carries the new
    // validators: the client's copy is the stored one (RFC 9110 §9.3.4).
    let chair = json!({ "id": id, "name": "chair" });
    let r = s
        .send(s.put(&created.path).header(IF_MATCH, &etag).json(&chair))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.item(), chair);
    assert_eq!(r.text(), chair.to_string(), "{}", r.what);
    r.last_modified();
    assert_eq!(s.snapshot(&created.path).await, (r.etag(), chair));
}

async fn put_with_a_stale_etag_gets_412_with_the_current_etag_and_changes_nothing(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let r = s
        .send(
            s.put(&created.path)
                .header(IF_MATCH, &created.etag)
                .json(&json!({ "name": "desk" })),
        )
        .await;
    r.expect(StatusCode::OK);
    let current = s.etag_after_put(&r, &created.path).await;
    let before = s.snapshot(&created.path).await;
    // Someone who still holds the first version.
    let r = s
        .send(
            s.put(&created.path)
                .header(IF_MATCH, &created.etag)
                .json(&json!({ "name": "chair" })),
        )
        .await;
    let body = r.precondition_failed(&current);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("If-Match")),
        "{}: the 412 detail should say how to recover: {body}",
        r.what
    );
    s.assert_unchanged(&created.path, &before, &r.what).await;
    // A tag the item never had.
    let r = s
        .send(
            s.put(&created.path)
                .header(IF_MATCH, UNKNOWN_TAG)
                .json(&json!({ "name": "chair" })),
        )
        .await;
    r.precondition_failed(&current);
    s.assert_unchanged(&created.path, &before, &r.what).await;
}

async fn put_with_if_none_match_star_creates_only_an_absent_item(s: &Api) {
    let path = "/items/made-with-put";
    let r = s
        .send(
            s.put(path)
                .header(IF_NONE_MATCH, "*")
                .json(&json!({ "name": "lamp" })),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header(LOCATION), Some(path), "{}: Location", r.what);
    let etag = s.etag_after_put(&r, path).await;
    let item = json!({ "id": "made-with-put", "name": "lamp" });
    assert_eq!(r.item(), item, "{}", r.what);
    let before = s.snapshot(path).await;
    assert_eq!(before, (etag.clone(), item));
    // Again: it exists now.
    let r = s
        .send(
            s.put(path)
                .header(IF_NONE_MATCH, "*")
                .json(&json!({ "name": "desk" })),
        )
        .await;
    r.precondition_failed(&etag);
    s.assert_unchanged(path, &before, &r.what).await;
    // On an item made by POST too.
    let created = s.create(json!({ "name": "chair" })).await;
    let before = s.snapshot(&created.path).await;
    let r = s
        .send(
            s.put(&created.path)
                .header(IF_NONE_MATCH, "*")
                .json(&json!({ "name": "desk" })),
        )
        .await;
    r.precondition_failed(&created.etag);
    s.assert_unchanged(&created.path, &before, &r.what).await;
}

async fn if_match_on_put_compares_strongly_reads_lists_and_star(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.as_str();
    let mut current = created.etag.clone();

    // A weak tag never matches (strong comparison), even the current one.
    let before = s.snapshot(path).await;
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, weak(&current))
                .json(&json!({ "name": "weak" })),
        )
        .await;
    r.precondition_failed(&current);
    s.assert_unchanged(path, &before, &r.what).await;

    // A list that contains the current tag.
    for (n, list) in [
        format!("{UNKNOWN_TAG}, CURRENT"),
        format!("CURRENT, {UNKNOWN_TAG}"),
        format!("{UNKNOWN_TAG},CURRENT,\"other\""),
    ]
    .into_iter()
    .enumerate()
    {
        let list = list.replace("CURRENT", &current);
        let r = s
            .send(
                s.put(path)
                    .header(IF_MATCH, &list)
                    .json(&json!({ "name": format!("list {n}") })),
            )
            .await;
        r.expect(StatusCode::OK);
        current = s.etag_after_put(&r, path).await;
        assert_eq!(r.item()["name"], format!("list {n}"));
    }
    // The same list split over two header lines.
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, UNKNOWN_TAG)
                .header(IF_MATCH, &current)
                .json(&json!({ "name": "two lines" })),
        )
        .await;
    r.expect(StatusCode::OK);
    current = s.etag_after_put(&r, path).await;

    // A list without it.
    let before = s.snapshot(path).await;
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, format!("{UNKNOWN_TAG}, {}", weak(&current)))
                .json(&json!({ "name": "no" })),
        )
        .await;
    r.precondition_failed(&current);
    s.assert_unchanged(path, &before, &r.what).await;

    // `*` on an existing item: any version.
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, "*")
                .json(&json!({ "name": "star" })),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_ne!(
        s.etag_after_put(&r, path).await,
        current,
        "{}: the ETag must change",
        r.what
    );
    assert_eq!(r.item()["name"], "star");

    // `*` on an absent item: 412, and it is not created.
    let absent = "/items/never-created";
    let r = s
        .send(
            s.put(absent)
                .header(IF_MATCH, "*")
                .json(&json!({ "name": "star" })),
        )
        .await;
    r.problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.header(ETAG), None, "{}: no current ETag", r.what);
    s.assert_absent(absent).await;
    // Likewise a tag.
    let r = s
        .send(
            s.put(absent)
                .header(IF_MATCH, &current)
                .json(&json!({ "name": "tag" })),
        )
        .await;
    r.problem(StatusCode::PRECONDITION_FAILED);
    s.assert_absent(absent).await;
}

async fn malformed_if_match_on_put_gets_400_or_412_and_changes_nothing(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.as_str();
    let etag = created.etag.as_str();
    let bare = etag.trim_matches('"');
    let before = s.snapshot(path).await;
    // Each holds the current tag somewhere, so a lenient parser would match.
    let values = [
        bare.to_owned(),
        format!("{etag} {etag}"),
        format!("{UNKNOWN_TAG} {etag}"),
        format!("{etag}, *"),
        format!("*, {etag}"),
        format!("{etag}\""),
        format!("\"{etag}"),
        format!("w/{etag}"),
        format!("{etag};q=1"),
        format!("[{etag}]"),
    ];
    for value in &values {
        let r = s
            .send(
                s.put(path)
                    .header(IF_MATCH, value)
                    .json(&json!({ "name": "malformed" })),
            )
            .await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::PRECONDITION_FAILED,
            "{}: expected 400 or 412, got {}: {}",
            r.what,
            r.status,
            r.text()
        );
        r.problem(r.status);
        s.assert_unchanged(path, &before, &r.what).await;
    }
}

/// RFC 9110 §9.3.4: validators on a PUT's answer only for a body stored
/// without any transformation, so that the client may pair the tag with
/// the copy it sent.
async fn a_put_answers_with_validators_only_for_an_item_stored_as_sent(s: &Api) {
    let path = "/items/as-sent";
    // Created under If-None-Match: *, in the form the service stores:
    // members sorted, no white space, the id included.
    let lamp = json!({ "id": "as-sent", "name": "lamp" });
    let r = s
        .send(s.put(path).header(IF_NONE_MATCH, "*").json(&lamp))
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.text(), lamp.to_string(), "{}", r.what);
    r.last_modified();
    let etag = r.etag();
    assert_eq!(s.snapshot(path).await, (etag.clone(), lamp));
    // The same form as another JSON media type, served back as
    // application/json: another representation (§8.8.1), no validators.
    let chair = json!({ "id": "as-sent", "name": "chair" });
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, &etag)
                .header(CONTENT_TYPE, "application/vnd.example+json")
                .body(chair.to_string()),
        )
        .await;
    r.expect(StatusCode::OK);
    let etag = s.etag_after_put(&r, path).await;
    // White space the service drops: none either, though the item is the
    // same.
    let pretty = serde_json::to_string_pretty(&chair).expect("JSON");
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, &etag)
                .header(CONTENT_TYPE, "application/json")
                .body(pretty),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.item(), chair, "{}", r.what);
    let etag = s.etag_after_put(&r, path).await;
    // Sent as stored, with a charset parameter: the new tag, the GET's.
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, &etag)
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(chair.to_string()),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(s.snapshot(path).await, (r.etag(), chair));
}

async fn a_stale_put_gets_412_even_when_the_item_already_equals_its_body(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.as_str();
    let body = json!({ "name": "desk", "legs": 4 });
    let first = s
        .send(s.put(path).header(IF_MATCH, &created.etag).json(&body))
        .await;
    first.expect(StatusCode::OK);
    let before = s.snapshot(path).await;
    // A second client that read the same version and made the same change
    // (two counters both going from 3 to 4 look like this), or the first
    // client again after losing the response: the server cannot tell them
    // apart, and the tag is stale either way. Confirming it would lose the
    // second client's change, so it is refused like any stale write.
    let again = s
        .send(s.put(path).header(IF_MATCH, &created.etag).json(&body))
        .await;
    again.precondition_failed(&before.0);
    s.assert_unchanged(path, &before, &again.what).await;
    // The same stale tag with another body: 412 too.
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, &created.etag)
                .json(&json!({ "name": "desk", "legs": 3 })),
        )
        .await;
    r.precondition_failed(&before.0);
    s.assert_unchanged(path, &before, &r.what).await;
}

// ---------------------------------------------------------------------------
// PATCH, DELETE, unknown ids
// ---------------------------------------------------------------------------

async fn patch_merges_under_if_match(s: &Api) {
    const MERGE_PATCH: &str = "application/merge-patch+json";
    let created = s
        .create(json!({ "name": "lamp", "color": "red", "size": { "w": 1, "h": 2 } }))
        .await;
    let path = created.path.as_str();
    let id = created.item["id"].clone();
    let patch = json!({ "color": null, "size": { "h": 3 }, "tags": ["new"] }).to_string();

    // Without If-Match: 428.
    let before = s.snapshot(path).await;
    let r = s
        .send(
            s.patch(path)
                .header(CONTENT_TYPE, MERGE_PATCH)
                .body(patch.clone()),
        )
        .await;
    r.problem(StatusCode::PRECONDITION_REQUIRED);
    s.assert_unchanged(path, &before, &r.what).await;

    // With the current tag: merged (null removes a member).
    let r = s
        .send(
            s.patch(path)
                .header(CONTENT_TYPE, MERGE_PATCH)
                .header(IF_MATCH, &created.etag)
                .body(patch.clone()),
        )
        .await;
    r.expect(StatusCode::OK);
    let merged = json!({ "id": id, "name": "lamp", "size": { "w": 1, "h": 3 }, "tags": ["new"] });
    assert_eq!(r.item(), merged, "{}", r.what);
    let etag = r.etag();
    assert_ne!(etag, created.etag, "{}: the ETag must change", r.what);
    assert_eq!(s.snapshot(path).await, (etag.clone(), merged));

    // application/json is accepted too.
    let r = s
        .send(
            s.patch(path)
                .header(CONTENT_TYPE, "application/json")
                .header(IF_MATCH, &etag)
                .body(json!({ "name": "desk" }).to_string()),
        )
        .await;
    r.expect(StatusCode::OK);
    let current = r.etag();
    assert_eq!(
        r.item(),
        json!({ "id": id, "name": "desk", "size": { "w": 1, "h": 3 }, "tags": ["new"] })
    );

    // A stale tag: 412 with the current one.
    let before = s.snapshot(path).await;
    let r = s
        .send(
            s.patch(path)
                .header(CONTENT_TYPE, MERGE_PATCH)
                .header(IF_MATCH, &etag)
                .body(json!({ "name": "chair" }).to_string()),
        )
        .await;
    r.precondition_failed(&current);
    s.assert_unchanged(path, &before, &r.what).await;

    // Not a JSON body: 415.
    let r = s
        .send(
            s.patch(path)
                .header(CONTENT_TYPE, "text/plain")
                .header(IF_MATCH, &current)
                .body(json!({ "name": "chair" }).to_string()),
        )
        .await;
    r.expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    r.names_patch_formats();
    s.assert_unchanged(path, &before, &r.what).await;

    // Unknown id: 404, with or without If-Match.
    for if_match in [Some(current.as_str()), Some("*"), None] {
        let mut request = s
            .patch("/items/no-such-item")
            .header(CONTENT_TYPE, MERGE_PATCH)
            .body(json!({ "name": "chair" }).to_string());
        if let Some(value) = if_match {
            request = request.header(IF_MATCH, value);
        }
        s.send(request).await.problem(StatusCode::NOT_FOUND);
    }
    s.assert_absent("/items/no-such-item").await;
}

async fn put_and_patch_refuse_bodies_that_are_not_items(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.as_str();
    let before = s.snapshot(path).await;
    let etag = created.etag.as_str();
    let cases = [
        // (method, content type, body, status)
        (
            Method::PUT,
            "application/json",
            "[1, 2]",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PUT,
            "application/json",
            "null",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PUT,
            "application/json",
            "{\"name\": ",
            StatusCode::BAD_REQUEST,
        ),
        (Method::PUT, "application/json", "", StatusCode::BAD_REQUEST),
        (
            Method::PUT,
            "application/json",
            "{\"id\": \"another\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PUT,
            "text/plain",
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::PATCH,
            "application/merge-patch+json",
            "[1]",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            "application/merge-patch+json",
            "{\"name\": ",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "application/merge-patch+json",
            "{\"id\": \"another\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (method, content_type, body, status) in cases {
        let r = s
            .send(
                s.request(method, path)
                    .header(IF_MATCH, etag)
                    .header(CONTENT_TYPE, content_type)
                    .body(body),
            )
            .await;
        r.problem(status);
        s.assert_unchanged(path, &before, &r.what).await;
    }
}

async fn delete_requires_the_current_etag_and_then_the_item_is_gone(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.as_str();
    let r = s
        .send(
            s.put(path)
                .header(IF_MATCH, &created.etag)
                .json(&json!({ "name": "desk" })),
        )
        .await;
    r.expect(StatusCode::OK);
    let current = s.etag_after_put(&r, path).await;
    let before = s.snapshot(path).await;

    let r = s.send(s.delete(path)).await;
    r.problem(StatusCode::PRECONDITION_REQUIRED);
    s.assert_unchanged(path, &before, &r.what).await;

    let r = s.send(s.delete(path).header(IF_MATCH, &created.etag)).await;
    r.precondition_failed(&current);
    s.assert_unchanged(path, &before, &r.what).await;

    let r = s
        .send(s.delete(path).header(IF_MATCH, weak(&current)))
        .await;
    r.precondition_failed(&current);
    s.assert_unchanged(path, &before, &r.what).await;

    let r = s.send(s.delete(path).header(IF_MATCH, &current)).await;
    r.expect(StatusCode::NO_CONTENT);
    r.assert_no_body();
    s.assert_absent(path).await;
    s.send(s.head(path))
        .await
        .expect(StatusCode::NOT_FOUND)
        .assert_no_body();

    // Deleting again, or an id that never existed: 404.
    for target in [path, "/items/no-such-item"] {
        for if_match in [Some(current.as_str()), Some("*"), None] {
            let mut request = s.delete(target);
            if let Some(value) = if_match {
                request = request.header(IF_MATCH, value);
            }
            s.send(request).await.problem(StatusCode::NOT_FOUND);
        }
    }
}

async fn other_methods_on_the_collection_and_post_on_an_item_get_405(s: &Api) {
    // RFC 9110 §15.5.6: the resource exists (POST creates in it); the
    // method is what it does not support.
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        s.send(s.request(method, "/items"))
            .await
            .expect(StatusCode::METHOD_NOT_ALLOWED);
    }
    // And on an item: no POST, whether or not the id is one the service
    // would accept (the method is checked before the id, on both).
    let created = s.create(json!({ "name": "lamp" })).await;
    let valid = [created.path, "/items/no-such-item".to_owned()];
    let invalid = invalid_id_paths().into_iter().map(|(_, path)| path);
    for path in valid.into_iter().chain(invalid) {
        s.send(s.request(Method::POST, &path))
            .await
            .expect(StatusCode::METHOD_NOT_ALLOWED);
    }
}

async fn a_content_coding_or_a_content_range_gets_refused_and_changes_nothing(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.as_str();
    let before = s.snapshot(path).await;
    let etag = created.etag.as_str();
    let body = r#"{"name": "desk"}"#;
    // RFC 9110 §8.4: a content coding the service does not accept gets
    // 415, naming what it accepts (§12.5.3). The body here is plain JSON
    // under a gzip label: read as JSON it would be stored.
    for (method, content_type) in [
        (Method::PUT, "application/json"),
        (Method::PATCH, "application/merge-patch+json"),
    ] {
        let r = s
            .send(
                s.request(method, path)
                    .header(IF_MATCH, etag)
                    .header(CONTENT_TYPE, content_type)
                    .header("content-encoding", "gzip")
                    .body(body),
            )
            .await;
        r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            r.header(HeaderName::from_static("accept-encoding")),
            Some("identity")
        );
        s.assert_unchanged(path, &before, &r.what).await;
    }
    let r = s
        .send(
            s.request(Method::POST, "/items")
                .header(CONTENT_TYPE, "application/json")
                .header("content-encoding", "br")
                .body(body),
        )
        .await;
    r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A coding after `identity`, or on a second line, is still a coding.
    for codings in [&["identity, gzip"][..], &["identity", "deflate"]] {
        let mut req = s
            .request(Method::PUT, path)
            .header(IF_MATCH, etag)
            .header(CONTENT_TYPE, "application/json");
        for coding in codings {
            req = req.header("content-encoding", *coding);
        }
        let r = s.send(req.body(body)).await;
        r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        s.assert_unchanged(path, &before, &r.what).await;
    }
    // §14.5: a PUT with Content-Range MUST get 400: the part would
    // otherwise replace the whole item.
    let r = s
        .send(
            s.request(Method::PUT, path)
                .header(IF_MATCH, etag)
                .header(CONTENT_TYPE, "application/json")
                .header("content-range", "bytes 0-15/40")
                .body(body),
        )
        .await;
    r.problem(StatusCode::BAD_REQUEST);
    s.assert_unchanged(path, &before, &r.what).await;
    // `identity` is no coding.
    s.send(
        s.request(Method::PUT, path)
            .header(IF_MATCH, etag)
            .header(CONTENT_TYPE, "application/json")
            .header("content-encoding", "identity")
            .body(body),
    )
    .await
    .expect(StatusCode::OK);
}

/// Sends `request` as raw bytes, closes the sending side if `half_close`
/// (a client going away), and returns what the server answered before
/// closing (possibly nothing: hyper drops a half-closed connection).
async fn raw_exchange(s: &Api, request: String, half_close: bool) -> String {
    use std::io::{Read, Write};

    let addr = s.base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        tcp.write_all(request.as_bytes()).expect("send");
        if half_close {
            tcp.shutdown(std::net::Shutdown::Write).expect("half-close");
        }
        let mut answer = Vec::new();
        // The server may answer, or only close: either is fine.
        let _ = tcp.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("the raw client")
}

async fn a_body_cut_short_by_a_client_that_went_away_is_never_written(s: &Api) {
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.clone();
    let before = s.snapshot(&path).await;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: test\r\nIf-Match: {}\r\n\
         Content-Type: application/json\r\n",
        created.etag
    );
    // Valid JSON that the client means as the start of a longer body, then
    // the client closes its side of the connection: 10 of 100 declared
    // bytes, or one chunk without the last one.
    let cases = [
        "Content-Length: 100\r\n\r\n{\"a\":1}   ",
        "Transfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n",
    ];
    for (rest, refused) in cases.into_iter().zip(["400", "411"]) {
        let answer = raw_exchange(s, format!("{head}{rest}"), true).await;
        let status = answer.split(' ').nth(1).unwrap_or("none");
        assert!(
            !status.starts_with('2'),
            "{}: a cut-off body ({rest:?}) was answered {answer:?}",
            s.server
        );
        // An answer, if the server sends one to a client that went away,
        // is the problem both services give a body whose end they cannot
        // check: 400 for a body short of its length, 411 for chunks.
        if !answer.is_empty() {
            assert_eq!(status, refused, "{}: {rest:?}: {answer:?}", s.server);
            assert!(
                answer
                    .to_ascii_lowercase()
                    .contains("content-type: application/problem+json"),
                "{}: {rest:?}: {answer:?}",
                s.server
            );
        }
        s.assert_unchanged(&path, &before, "a PUT whose body was cut short")
            .await;
    }
    // A whole chunked body is refused too: its end cannot be checked.
    let whole = "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                 7\r\n{\"a\":1}\r\n0\r\n\r\n";
    let answer = raw_exchange(s, format!("{head}{whole}"), false).await;
    assert!(
        answer.starts_with("HTTP/1.1 411"),
        "{}: a chunked PUT was answered {answer:?}",
        s.server
    );
    s.assert_unchanged(&path, &before, "a chunked PUT").await;
    // Chunks the framework cannot read (a size that is no number), the
    // connection still open: the framework reports the body as broken,
    // and the service answers in its problem format, as for a body it
    // read (here 411, as for every chunked body).
    let broken = "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                  zz\r\n{\"a\":1}\r\n0\r\n\r\n";
    let answer = raw_exchange(s, format!("{head}{broken}"), false).await;
    assert!(
        answer.starts_with("HTTP/1.1 411")
            && answer
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
        "{}: a PUT with broken chunks was answered {answer:?}",
        s.server
    );
    s.assert_unchanged(&path, &before, "a PUT with broken chunks")
        .await;
}

async fn unknown_ids_get_404_problem_json(s: &Api) {
    for path in [
        "/items/no-such-item",
        "/items/0123456789abcdef0123456789abcdef",
    ] {
        let r = s.send(s.get(path)).await;
        let body = r.problem(StatusCode::NOT_FOUND);
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(path.trim_start_matches("/items/"))),
            "{}: the detail should name the id: {body}",
            r.what
        );
        // RFC 9110 §13.2.1: the 404 comes before any precondition.
        for (name, value) in [
            (IF_MATCH, "*"),
            (IF_MATCH, UNKNOWN_TAG),
            (IF_NONE_MATCH, "*"),
            (IF_NONE_MATCH, UNKNOWN_TAG),
            (IF_UNMODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT"),
        ] {
            s.send(s.get(path).header(name, value))
                .await
                .problem(StatusCode::NOT_FOUND);
        }
        s.send(s.head(path))
            .await
            .expect(StatusCode::NOT_FOUND)
            .assert_no_body();
        // A PATCH or DELETE gets its 404 from the gate, before any
        // precondition and without creating anything: the same title.
        for (label, request) in [
            ("DELETE", s.delete(path).header(IF_MATCH, "*")),
            ("DELETE without If-Match", s.delete(path)),
            (
                "PATCH",
                s.patch(path)
                    .header(IF_MATCH, "*")
                    .header(CONTENT_TYPE, "application/merge-patch+json")
                    .body("{\"name\":\"chair\"}"),
            ),
        ] {
            let other = s.send(request).await.problem(StatusCode::NOT_FOUND);
            assert_eq!(other["title"], body["title"], "{label}");
        }
        s.send(s.get(path)).await.problem(StatusCode::NOT_FOUND);
    }
}

// ---------------------------------------------------------------------------
// Malformed conditional headers
// ---------------------------------------------------------------------------

/// Values no conditional field should hold, each with a label.
fn weird_values() -> Vec<(&'static str, HeaderValue)> {
    let text = |s: &str| HeaderValue::from_str(s).expect("a valid header value");
    let many_tags: Vec<String> = (0..10_000).map(|i| format!("\"t{i}\"")).collect();
    vec![
        ("empty", text("")),
        ("a comma", text(",")),
        ("star and comma", text("*,")),
        ("comma and star", text(", *")),
        ("two stars", text("*, *")),
        ("double star", text("**")),
        ("W/ alone", text("W/")),
        ("W/ and a quote", text("W/\"")),
        ("lowercase w/", text("w/\"x\"")),
        ("unterminated", text("\"unterminated")),
        ("adjacent tags", text("\"a\"\"b\"")),
        ("tags without a comma", text("\"a\" \"b\"")),
        ("a tag and star", text("\"a\", *")),
        ("unquoted", text("v1")),
        ("a tab inside", text("\"a\tb\"")),
        ("2000 commas", text(&",".repeat(2000))),
        ("10,000 tags", text(&many_tags.join(", "))),
        (
            "a 20,000-byte tag",
            text(&format!("\"{}\"", "x".repeat(20_000))),
        ),
        (
            "non-UTF-8 in a tag",
            HeaderValue::from_bytes(b"\"\xff\xfe\"").expect("obs-text"),
        ),
        (
            "non-UTF-8 bytes",
            HeaderValue::from_bytes(b"\xc3\x28\xa0\xa1").expect("obs-text"),
        ),
        ("a date with day 32", text("Sun, 32 Nov 1994 08:49:37 GMT")),
        (
            "a date with 25:61:61",
            text("Sun, 06 Nov 1994 25:61:61 GMT"),
        ),
        (
            "a date with the wrong weekday",
            text("Mon, 06 Nov 1994 08:49:37 GMT"),
        ),
        ("a date without a zone", text("Sun, 06 Nov 1994 08:49:37")),
        ("a UTC date", text("Sunday, 06-Nov-94 08:49:37 UTC")),
        ("the epoch", text("Thu, 01 Jan 1970 00:00:00 GMT")),
        ("before the epoch", text("Wed, 31 Dec 1969 23:59:59 GMT")),
        ("the year 9999", text("Fri, 31 Dec 9999 23:59:59 GMT")),
        ("the year 10000", text("Sat, 01 Jan 10000 00:00:00 GMT")),
        ("a number", text("0")),
        ("a huge number", text("99999999999999999999999999")),
        (
            "two dates",
            text("Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"),
        ),
    ]
}

async fn malformed_conditional_headers_never_cause_a_5xx_nor_a_change(s: &Api) {
    let fields = [
        IF_MATCH,
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
    ];
    // HEAD is checked like GET by both services; leaving it out keeps the
    // test quick.
    let methods = [Method::GET, Method::PUT, Method::PATCH, Method::DELETE];
    let mut path = s.create(json!({ "name": "fuzz target" })).await.path;
    let mut before = s.snapshot(&path).await;
    let mut writes = 0u32;
    for (label, value) in weird_values() {
        for field in &fields {
            // Alone, and next to a valid If-Match (which lets writes through
            // unless the weird field stops them).
            for with_valid_if_match in [false, true] {
                if with_valid_if_match && *field == IF_MATCH {
                    continue;
                }
                for method in &methods {
                    let is_write = *method != Method::GET;
                    if with_valid_if_match && !is_write {
                        continue;
                    }
                    writes += 1;
                    let mut request = s
                        .request(method.clone(), &path)
                        .header(field.clone(), value.clone());
                    if with_valid_if_match {
                        request = request.header(IF_MATCH, &before.0);
                    }
                    let change =
                        json!({ "name": format!("write {writes}"), "field": field.as_str() });
                    request = match *method {
                        Method::GET => request.header(RANGE, "bytes=0-3"),
                        Method::PUT => request.json(&change),
                        Method::PATCH => request
                            .header(CONTENT_TYPE, "application/merge-patch+json")
                            .body(change.to_string()),
                        _ => request,
                    };
                    let r = s.send(request).await;
                    assert!(
                        r.status.as_u16() < 500,
                        "{}: {label} in {field}: {}: {}",
                        r.what,
                        r.status,
                        r.text()
                    );
                    if !is_write {
                        continue;
                    }
                    if !r.status.is_success() {
                        let after = format!("{} ({label} in {field})", r.what);
                        s.assert_unchanged(&path, &before, &after).await;
                        continue;
                    }
                    assert!(
                        with_valid_if_match,
                        "{}: a write went through without a valid If-Match ({label} in {field}): {}",
                        r.what, r.status
                    );
                    if *method == Method::DELETE {
                        s.assert_absent(&path).await;
                        path = s.create(json!({ "name": "fuzz target" })).await.path;
                    } else {
                        assert_eq!(r.item()["name"], change["name"], "{}", r.what);
                    }
                    before = s.snapshot(&path).await;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

const CLIENTS: u64 = 8;
const INCREMENTS: u64 = 50;

/// The counter and ETag of the item at `url`.
async fn read_counter(http: &reqwest::Client, url: &str, server: Server) -> (u64, String) {
    let res = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{server}: GET {url}: {e}"));
    assert_eq!(res.status(), StatusCode::OK, "{server}: GET {url}");
    let etag = res
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{server}: GET {url}: no ETag"))
        .to_owned();
    let item: Value = res
        .json()
        .await
        .unwrap_or_else(|e| panic!("{server}: GET {url}: {e}"));
    let counter = item["counter"]
        .as_u64()
        .unwrap_or_else(|| panic!("{server}: no counter in {item}"));
    (counter, etag)
}

/// One read-modify-write increment; `if_match` sends the ETag read. The
/// body is the counter only: two clients that read the same value send the
/// same bytes, and the second must still get its 412.
async fn increment(
    http: &reqwest::Client,
    url: &str,
    server: Server,
    if_match: bool,
) -> Result<(), StatusCode> {
    let (n, etag) = read_counter(http, url, server).await;
    let mut request = http
        .put(url)
        .json(&json!({ "name": "counter", "counter": n + 1 }));
    if if_match {
        request = request.header(IF_MATCH, etag);
    }
    let res = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{server}: PUT {url}: {e}"));
    match res.status() {
        s if s.is_success() => Ok(()),
        s => Err(s),
    }
}

async fn concurrent_increments_with_if_match_and_retry_lose_no_update(s: &Api) {
    let created = s.create(json!({ "name": "counter", "counter": 0 })).await;
    let url = s.url(&created.path);
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, url, server, conflicts) =
            (s.http.clone(), url.clone(), s.server, conflicts.clone());
        clients.push(tokio::spawn(async move {
            let retry = Retry::new()
                .attempts(200)
                .backoff(Duration::from_millis(1), Duration::from_millis(10));
            for n in 0..INCREMENTS {
                let change = format!("client {client}, increment {n}");
                let result = retry
                    .run(
                        |_attempt| {
                            let (http, url, conflicts) = (&http, &url, &conflicts);
                            async move {
                                let result = increment(http, url, server, true).await;
                                if result == Err(StatusCode::PRECONDITION_FAILED) {
                                    conflicts.fetch_add(1, Ordering::Relaxed);
                                }
                                result
                            }
                        },
                        tokio::time::sleep,
                    )
                    .await;
                assert_eq!(result, Ok(()), "{server}: {change}");
            }
        }));
    }
    for client in clients {
        client.await.expect("a client panicked");
    }
    let (counter, _) = read_counter(&s.http, &url, s.server).await;
    assert_eq!(
        counter,
        CLIENTS * INCREMENTS,
        "{}: lost updates with If-Match",
        s.server
    );
    assert!(
        conflicts.load(Ordering::Relaxed) > 0,
        "{}: {CLIENTS} concurrent clients never got a 412",
        s.server
    );
}

async fn concurrent_increments_without_if_match_complete_in_opt_in_mode(s: &Api) {
    let created = s.create(json!({ "name": "counter", "counter": 0 })).await;
    let url = s.url(&created.path);
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, url, server) = (s.http.clone(), url.clone(), s.server);
        clients.push(tokio::spawn(async move {
            for n in 0..INCREMENTS {
                let change = format!("client {client}, increment {n}");
                // Last write wins: every write is accepted, some erase
                // others (not counted: that is what this mode allows).
                let result = increment(&http, &url, server, false).await;
                assert_eq!(result, Ok(()), "{server}: {change}");
            }
        }));
    }
    for client in clients {
        client.await.expect("a client panicked");
    }
    let (counter, _) = read_counter(&s.http, &url, s.server).await;
    assert!(
        (1..=CLIENTS * INCREMENTS).contains(&counter),
        "{}: counter {counter}",
        s.server
    );
}

async fn concurrent_patches_under_if_match_star_lose_no_field(s: &Api) {
    // `If-Match: *` names no version: each merge patch applies to whatever
    // is current, so the server reapplies a patch that lost a race between
    // its own read and write instead of writing it over the winner. Every
    // client sets fields of its own; none may be missing at the end. A 409
    // (the server lost every attempt) is the client's to send again.
    let created = s.create(json!({ "name": "shared" })).await;
    let url = s.url(&created.path);
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, url) = (s.http.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            for n in 0..INCREMENTS {
                let patch = json!({ format!("c{client}n{n}"): true });
                patch_star(&http, &url, &patch).await;
            }
        }));
    }
    for client in clients {
        client.await.expect("a client panicked");
    }
    let r = s.send(s.get(&created.path)).await;
    r.expect(StatusCode::OK);
    let item = r.item();
    for client in 0..CLIENTS {
        for n in 0..INCREMENTS {
            assert_eq!(
                item.get(format!("c{client}n{n}")),
                Some(&Value::Bool(true)),
                "{}: the field of client {client}, patch {n} was lost",
                s.server
            );
        }
    }
    assert_eq!(item["name"], "shared");
}

// ---------------------------------------------------------------------------
// Item ids and what no store can hold
// ---------------------------------------------------------------------------

/// Paths whose id no store can hold, each with a label: a read finds
/// nothing there (404), a write is refused (400), before any precondition
/// and without asking the store.
fn invalid_id_paths() -> Vec<(&'static str, String)> {
    vec![
        ("U+0000", "/items/a%00b".to_owned()),
        ("U+0001", "/items/%01".to_owned()),
        ("DEL", "/items/x%7F".to_owned()),
        ("a C1 control", "/items/%C2%85".to_owned()),
        ("not UTF-8", "/items/%FF".to_owned()),
        ("257 bytes", format!("/items/{}", "x".repeat(257))),
        ("8000 bytes", format!("/items/{}", "y".repeat(8000))),
        // 129 two-byte characters: 258 bytes once decoded.
        (
            "258 bytes decoded",
            format!("/items/{}", "%C3%A9".repeat(129)),
        ),
    ]
}

async fn invalid_ids_are_found_by_no_read_and_refused_to_every_write(s: &Api) {
    let body = json!({ "name": "lamp" });
    for (label, path) in invalid_id_paths() {
        let r = s.send(s.get(&path)).await;
        r.problem(StatusCode::NOT_FOUND);
        assert!(
            r.text().contains("item id"),
            "{}: {label}: the 404 should say why: {}",
            r.what,
            r.text()
        );
        // RFC 9110 §13.2.1: a request that fails anyway ignores its
        // preconditions.
        s.send(s.get(&path).header(IF_MATCH, "*"))
            .await
            .problem(StatusCode::NOT_FOUND);
        s.send(s.get(&path).header(IF_NONE_MATCH, UNKNOWN_TAG))
            .await
            .problem(StatusCode::NOT_FOUND);
        s.send(s.head(&path))
            .await
            .expect(StatusCode::NOT_FOUND)
            .assert_no_body();
        let writes = [
            s.put(&path).header(IF_NONE_MATCH, "*").json(&body),
            s.put(&path).header(IF_MATCH, UNKNOWN_TAG).json(&body),
            // Strict mode, no precondition: still 400, not 428.
            s.put(&path).json(&body),
            s.patch(&path)
                .header(IF_MATCH, "*")
                .header(CONTENT_TYPE, "application/merge-patch+json")
                .body(body.to_string()),
            s.delete(&path).header(IF_MATCH, "*"),
        ];
        for write in writes {
            let r = s.send(write).await;
            r.problem_saying(StatusCode::BAD_REQUEST, "item id");
        }
        s.send(s.get(&path)).await.problem(StatusCode::NOT_FOUND);
    }
    // The longest id allowed works like any other.
    let longest = "z".repeat(256);
    let path = format!("/items/{longest}");
    let r = s
        .send(s.put(&path).header(IF_NONE_MATCH, "*").json(&body))
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.item()["id"], longest.as_str(), "{}", r.what);
    s.etag_after_put(&r, &path).await;
}

async fn invalid_ids_are_refused_to_writes_without_a_precondition_too(s: &Api) {
    for (label, path) in invalid_id_paths() {
        let r = s.send(s.put(&path).json(&json!({ "name": "x" }))).await;
        r.problem(StatusCode::BAD_REQUEST);
        let r = s.send(s.delete(&path)).await;
        r.problem(StatusCode::BAD_REQUEST);
        let r = s.send(s.get(&path)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: {label}", r.what);
    }
}

async fn json_with_u0000_in_a_string_or_key_gets_422_and_changes_nothing(s: &Api) {
    let bad = [
        json!({ "name": "a\u{0}b" }),
        json!({ "a\u{0}b": 1 }),
        json!({ "nested": { "list": [1, "\u{0}"] } }),
        json!({ "nested": [{ "k\u{0}": null }] }),
    ];
    for body in &bad {
        let r = s.send(s.request(Method::POST, "/items").json(body)).await;
        r.problem_saying(StatusCode::UNPROCESSABLE_ENTITY, "U+0000");
    }
    let created = s.create(json!({ "name": "lamp" })).await;
    let path = created.path.as_str();
    let before = s.snapshot(path).await;
    for body in &bad {
        let r = s
            .send(s.put(path).header(IF_MATCH, &created.etag).json(body))
            .await;
        r.problem(StatusCode::UNPROCESSABLE_ENTITY);
        s.assert_unchanged(path, &before, &r.what).await;
        let r = s
            .send(
                s.patch(path)
                    .header(IF_MATCH, &created.etag)
                    .header(CONTENT_TYPE, "application/merge-patch+json")
                    .body(body.to_string()),
            )
            .await;
        r.problem(StatusCode::UNPROCESSABLE_ENTITY);
        s.assert_unchanged(path, &before, &r.what).await;
        // Nor is an item created with it.
        let fresh = "/items/nul-create";
        let r = s
            .send(s.put(fresh).header(IF_NONE_MATCH, "*").json(body))
            .await;
        r.problem(StatusCode::UNPROCESSABLE_ENTITY);
        s.assert_absent(fresh).await;
    }
    // The escape written by hand, as a client may send it.
    let r = s
        .send(
            s.request(Method::POST, "/items")
                .header(CONTENT_TYPE, "application/json")
                .body(r#"{"name": "a\u0000b"}"#),
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_percent_encoded_id_names_the_decoded_item_for_the_check_and_the_write(s: &Api) {
    // Written under one spelling, the item is at the other: both are the
    // same resource.
    let r = s
        .send(
            s.put("/items/a%62")
                .header(IF_NONE_MATCH, "*")
                .json(&json!({ "name": "ab" })),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.item()["id"], "ab", "{}", r.what);
    assert_eq!(r.header(LOCATION), Some("/items/ab"), "{}", r.what);
    let first = s.etag_after_put(&r, "/items/ab").await;
    assert_eq!(s.snapshot("/items/ab").await.0, first);
    assert_eq!(s.snapshot("/items/%61b").await.0, first);
    // The precondition is checked against the item that is written: a
    // create under the other spelling finds it there.
    let r = s
        .send(
            s.put("/items/ab")
                .header(IF_NONE_MATCH, "*")
                .json(&json!({ "name": "again" })),
        )
        .await;
    r.precondition_failed(&first);
    let r = s
        .send(
            s.put("/items/%61%62")
                .header(IF_MATCH, &first)
                .json(&json!({ "name": "changed" })),
        )
        .await;
    r.expect(StatusCode::OK);
    let second = s.etag_after_put(&r, "/items/ab").await;
    let r = s
        .send(
            s.put("/items/ab")
                .header(IF_MATCH, &first)
                .json(&json!({ "name": "stale" })),
        )
        .await;
    r.precondition_failed(&second);
    let r = s
        .send(s.delete("/items/a%62").header(IF_MATCH, &second))
        .await;
    r.expect(StatusCode::NO_CONTENT);
    s.assert_absent("/items/ab").await;

    // Decoded once: `%2F`, `%25` and `%2B` too, and the Location spells
    // the id so that it decodes back to itself.
    for (path, id, location) in [
        ("/items/a%2Fb%20c", "a/b c", "/items/a%2Fb%20c"),
        ("/items/100%25", "100%", "/items/100%25"),
        ("/items/%2541", "%41", "/items/%2541"),
        ("/items/a%2Bb+c", "a+b+c", "/items/a+b+c"),
        ("/items/caf%C3%A9", "café", "/items/caf%C3%A9"),
    ] {
        let r = s
            .send(
                s.put(path)
                    .header(IF_NONE_MATCH, "*")
                    .json(&json!({ "name": id })),
            )
            .await;
        r.expect(StatusCode::CREATED);
        assert_eq!(r.item()["id"], id, "{}", r.what);
        assert_eq!(r.header(LOCATION), Some(location), "{}", r.what);
        let (_, item) = s.snapshot(location).await;
        assert_eq!(item["id"], id, "GET {location}");
    }
    // Not decoded twice: `%2541` is the item "%41", not "A".
    s.assert_absent("/items/A").await;
}

async fn a_put_without_a_precondition_answers_201_when_it_creates_and_200_when_it_replaces(
    s: &Api,
) {
    let path = "/items/made-by-put";
    let r = s.send(s.put(path).json(&json!({ "name": "new" }))).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header(LOCATION), Some(path), "{}", r.what);
    let created = s.etag_after_put(&r, path).await;
    let r = s
        .send(s.put(path).json(&json!({ "name": "replaced" })))
        .await;
    r.expect(StatusCode::OK);
    assert_ne!(s.etag_after_put(&r, path).await, created, "{}", r.what);
    let r = s.send(s.delete(path)).await;
    r.expect(StatusCode::NO_CONTENT);
    // Deleted, then written again: created again.
    let r = s.send(s.put(path).json(&json!({ "name": "again" }))).await;
    r.expect(StatusCode::CREATED);
}
