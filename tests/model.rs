#![cfg(feature = "middleware")]
//! A stateful, model-based test of the whole write path: no lost update,
//! ever.
//!
//! Two systems under test, driven in process with the same requests:
//! - the README's axum service ("tower middleware"): `PreconditionLayer` on
//!   the method router with the README's resolver, `ETagLayer` outside,
//!   the README's GET, PUT and PATCH (`ConditionalStore::modify`)
//!   handlers and a DELETE in the same style, called with
//!   `tower::ServiceExt::oneshot`;
//! - the framework-free path of the README's quick example: `Gate::check`
//!   and the store, no tower at all.
//!
//! The store is a `MemoryStore<String, String>` that yields to the
//! scheduler before each load and write (and the resolver and the gate path
//! yield between the check and the write), so that concurrent requests
//! interleave at every point where a real store would wait.
//!
//! [`sequential_requests_agree_with_the_model`]: simulated clients, each
//! remembering the last tag it saw per key (or sending a current, stale,
//! forged, weak, `*`, empty, malformed or missing one), send random GET,
//! HEAD, PUT, PATCH and DELETE requests over three keys. A model (a plain
//! map of key to value and version, and RFC 9110 §13.2.2 with the crate's
//! documented policy: strict mode's 428, 404 for a PATCH or DELETE of a
//! missing target, 412 problem bodies naming the current tag, 304 for a
//! GET whose `If-None-Match` matches) predicts every response's status,
//! `ETag`, body or problem type. A disagreement is minimized by replaying
//! smaller sequences, and reported with the requests that remain. The same
//! runs in opt-in mode, and with content tags (bodies that come back bring
//! their tags back).
//!
//! [`concurrent_read_modify_writes_lose_no_update`]: clients as tokio tasks
//! on a multi-thread runtime append unique tokens to values (GET, then PUT
//! under `If-Match` retried on 412 with `ifmatch::Retry`; PATCH under
//! `If-Match: *` or a tag; DELETE and re-create with `If-None-Match: *`;
//! stale and unconditional writes; GETs under the tag last seen), in strict
//! and in opt-in mode. Afterwards the acknowledged writes,
//! ordered by their versions (the store's linearization points), must form
//! one chain per key: each append is its predecessor plus its own token,
//! each create follows an acknowledged DELETE of the previous state, the
//! final value is the last one in the chain. So every acknowledged token is
//! there exactly once in the state it was written to, and no refused one
//! anywhere.

#[path = "support/xorshift.rs"]
mod xorshift;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::header::{
    ETAG, HeaderName, HeaderValue, IF_MATCH, IF_NONE_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
};
use http::{HeaderMap, Method, Request};
use http_body_util::BodyExt;
use ifmatch::middleware::{ETagLayer, Precondition, PreconditionLayer};
use ifmatch::{
    ConditionalStore, Decision, ETag, Expected, Gate, MemoryStore, ModifyError, Policy,
    ProblemKind, ProblemTexts, Retry, Stored, WriteError, Written, insert_validators,
};
use tower::ServiceExt;

// ---------------------------------------------------------------------------
// The systems under test
// ---------------------------------------------------------------------------

/// The README's `MemoryStore`, yielding to the scheduler before every load
/// and write, so that concurrent requests interleave between a handler's
/// (or `modify`'s) read and its write.
struct Yielding(MemoryStore<String, String>);

impl ConditionalStore<str> for Yielding {
    type Value = String;
    type Error = Infallible;

    async fn load(&self, key: &str) -> Result<Option<Stored<String>>, Infallible> {
        tokio::task::yield_now().await;
        ConditionalStore::<str>::load(&self.0, key).await
    }

    async fn store(
        &self,
        key: &str,
        expected: &Expected,
        value: String,
    ) -> Result<Written<String>, WriteError<Infallible>> {
        tokio::task::yield_now().await;
        ConditionalStore::<str>::store(&self.0, key, expected, value).await
    }

    async fn remove(
        &self,
        key: &str,
        expected: &Expected,
    ) -> Result<Stored<String>, WriteError<Infallible>> {
        tokio::task::yield_now().await;
        ConditionalStore::<str>::remove(&self.0, key, expected).await
    }
}

type Store = Arc<Yielding>;

/// How a system under test is set up.
#[derive(Clone, Copy, Debug, Default)]
struct Config {
    /// `Policy::opt_in()`: writes without a precondition go ahead.
    opt_in: bool,
    /// Content tags (`ETag::from_content`) instead of version tags: one
    /// value has one tag, so a value that comes back brings its tag back.
    content_tags: bool,
    /// `Gate::reject_malformed`: 400 for a malformed `If-Match` or
    /// `If-None-Match`.
    reject_malformed: bool,
}

const STRICT: Config = Config {
    opt_in: false,
    content_tags: false,
    reject_malformed: false,
};

fn content_tag(value: &String, _version: u64) -> ETag {
    ETag::from_content(value)
}

impl Config {
    fn store(self) -> Yielding {
        Yielding(if self.content_tags {
            MemoryStore::with_etags(content_tag)
        } else {
            MemoryStore::new()
        })
    }

    fn gate(self) -> Gate {
        let policy = if self.opt_in {
            Policy::opt_in()
        } else {
            Policy::strict()
        };
        Gate::new()
            .policy(policy)
            .reject_malformed(self.reject_malformed)
    }
}

/// The README's key: the raw path after `/docs/`.
fn id(uri: &Uri) -> String {
    uri.path().trim_start_matches("/docs/").to_owned()
}

async fn read(State(store): State<Store>, uri: Uri) -> Response {
    match store.0.get(&id(&uri)) {
        Some(doc) => {
            let mut res = doc.value().clone().into_response();
            insert_validators(res.headers_mut(), &doc);
            res
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn write(
    State(store): State<Store>,
    Extension(pre): Extension<Precondition>,
    uri: Uri,
    body: String,
) -> Result<Response, Response> {
    let written = store.store(&id(&uri), pre.expected(), body).await?;
    let status = if written.created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let doc = written.into_stored();
    Ok((
        status,
        [(header::ETAG, doc.etag().to_header_value())],
        doc.into_value(),
    )
        .into_response())
}

async fn append(
    State(store): State<Store>,
    Extension(pre): Extension<Precondition>,
    uri: Uri,
    body: String,
) -> Result<Response, Response> {
    let append = |doc: String| Ok::<_, Infallible>(doc + &body);
    let doc = store
        .modify(&id(&uri), pre.expected(), 3, append)
        .await?
        .into_stored();
    Ok((
        [(header::ETAG, doc.etag().to_header_value())],
        doc.into_value(),
    )
        .into_response())
}

/// DELETE in the README's style: removes only the state the preconditions
/// were checked against, and answers 200 with what it removed.
async fn remove(
    State(store): State<Store>,
    Extension(pre): Extension<Precondition>,
    uri: Uri,
) -> Result<Response, Response> {
    let doc = store.remove(&id(&uri), pre.expected()).await?;
    Ok(doc.into_value().into_response())
}

fn axum_app(store: Store, gate: Gate) -> Router {
    let resolver = {
        let store = store.clone();
        move |parts: &Parts| {
            let current = store.0.validators(&id(&parts.uri));
            async move {
                // Another request may write between this check and the
                // handler's write.
                tokio::task::yield_now().await;
                Ok::<_, Infallible>(current)
            }
        }
    };
    Router::new()
        .route(
            "/docs/{id}",
            get(read)
                .put(write)
                .patch(append)
                .delete(remove)
                .route_layer(PreconditionLayer::with_gate(resolver, gate)),
        )
        .layer(ETagLayer::new())
        .with_state(store)
}

/// The framework-free path: the README's quick example (`Gate::check`
/// against the stored state, then a compare-and-swap under
/// `pre.expected()`), for every method.
struct GateApp {
    store: Yielding,
    gate: Gate,
}

impl GateApp {
    async fn handle(
        &self,
        method: &Method,
        key: &str,
        headers: &HeaderMap,
        body: String,
    ) -> http::Response<String> {
        let mut res = self.respond(method, key, headers, body).await;
        if *method == Method::HEAD {
            res.body_mut().clear();
        }
        res
    }

    async fn respond(
        &self,
        method: &Method,
        key: &str,
        headers: &HeaderMap,
        body: String,
    ) -> http::Response<String> {
        let current = self.store.0.get(key);
        let pre = match self
            .gate
            .check(method, headers, current.as_ref(), SystemTime::now())
        {
            Decision::Proceed(pre) => pre,
            Decision::Respond(res) => return res,
        };
        tokio::task::yield_now().await;
        let with_tag = |status: StatusCode, doc: &Stored<String>| {
            let mut res = http::Response::new(doc.value().clone());
            *res.status_mut() = status;
            insert_validators(res.headers_mut(), doc);
            res
        };
        match *method {
            Method::GET | Method::HEAD => match current {
                Some(doc) => with_tag(StatusCode::OK, &doc),
                None => ProblemTexts::default().problem(
                    ProblemKind::NotFound,
                    StatusCode::NOT_FOUND,
                    None,
                ),
            },
            Method::PUT => match self.store.store(key, pre.expected(), body).await {
                Ok(written) => {
                    let status = if written.created() {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    };
                    with_tag(status, written.stored())
                }
                Err(WriteError::Conflict(conflict)) => self.gate.conflict(&conflict),
                Err(_) => self.gate.unconfirmed(),
            },
            Method::PATCH => {
                let append = |doc: String| Ok::<_, Infallible>(doc + &body);
                match self.store.modify(key, pre.expected(), 3, append).await {
                    Ok(written) => with_tag(StatusCode::OK, written.stored()),
                    Err(ModifyError::Write(WriteError::Conflict(conflict))) => {
                        self.gate.conflict(&conflict)
                    }
                    Err(ModifyError::Busy(_)) => self.gate.busy(),
                    Err(_) => self.gate.unconfirmed(),
                }
            }
            Method::DELETE => match self.store.remove(key, pre.expected()).await {
                Ok(doc) => http::Response::new(doc.into_value()),
                Err(WriteError::Conflict(conflict)) => self.gate.conflict(&conflict),
                Err(_) => self.gate.unconfirmed(),
            },
            _ => {
                let mut res = http::Response::new(String::new());
                *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                res
            }
        }
    }
}

#[derive(Clone)]
enum Sut {
    Axum(Router),
    Gate(Arc<GateApp>),
}

impl fmt::Display for Sut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sut::Axum(_) => "axum + PreconditionLayer + ETagLayer",
            Sut::Gate(_) => "Gate::check + MemoryStore",
        })
    }
}

impl Sut {
    fn axum(config: Config) -> Self {
        Sut::Axum(axum_app(Arc::new(config.store()), config.gate()))
    }

    fn gate(config: Config) -> Self {
        Sut::Gate(Arc::new(GateApp {
            store: config.store(),
            gate: config.gate(),
        }))
    }

    async fn send(&self, req: &Req) -> Obs {
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            headers.append(name.clone(), HeaderValue::from_bytes(value).unwrap());
        }
        let (status, headers, body) = match self {
            Sut::Axum(router) => {
                let mut request = Request::new(axum::body::Body::from(req.body.clone()));
                *request.method_mut() = req.method.clone();
                *request.uri_mut() = format!("/docs/{}", req.key).parse().unwrap();
                *request.headers_mut() = headers;
                let res = router.clone().oneshot(request).await.unwrap();
                let (parts, body) = res.into_parts();
                let body = body.collect().await.unwrap().to_bytes().to_vec();
                (parts.status, parts.headers, body)
            }
            Sut::Gate(app) => {
                let res = app
                    .handle(&req.method, req.key, &headers, req.body.clone())
                    .await;
                let (parts, body) = res.into_parts();
                (parts.status, parts.headers, body.into_bytes())
            }
        };
        Obs {
            status,
            etag: headers.get(ETAG).map(|v| v.as_bytes().to_vec()),
            last_modified: headers.contains_key(LAST_MODIFIED),
            body,
        }
    }
}

/// A request as both systems get it.
#[derive(Clone)]
struct Req {
    method: Method,
    key: &'static str,
    headers: Vec<(HeaderName, Vec<u8>)>,
    body: String,
}

impl fmt::Display for Req {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} /docs/{}", self.method, self.key)?;
        for (name, value) in &self.headers {
            write!(f, " [{name}: {}]", String::from_utf8_lossy(value))?;
        }
        if !self.body.is_empty() {
            write!(f, " body {:?}", self.body)?;
        }
        Ok(())
    }
}

/// What came back.
#[derive(Debug)]
struct Obs {
    status: StatusCode,
    etag: Option<Vec<u8>>,
    last_modified: bool,
    body: Vec<u8>,
}

impl Obs {
    fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The version of the `ETag` (`"v7"`), if there is one.
    fn version(&self) -> Option<u64> {
        let tag = ETag::try_from(&HeaderValue::from_bytes(self.etag.as_ref()?).ok()?).ok()?;
        Some(tag.version().expect("the store's tags are versions"))
    }

    fn problem(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} with a body that is not JSON ({e}): {:?}",
                self.status,
                self.body_str()
            )
        })
    }
}

/// A version tag as the store writes it, without quotes.
fn v(version: u64) -> String {
    format!("v{version}")
}

/// An opaque tag in quotes.
fn wire(opaque: &str) -> String {
    format!("\"{opaque}\"")
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

const KEYS: [&str; 3] = ["a", "b", "c"];
const CLIENTS: usize = 3;

#[derive(Clone, Debug)]
struct Doc {
    value: String,
    /// The opaque tag, without quotes.
    tag: String,
}

/// What the server state is, by the model.
#[derive(Default)]
struct Model {
    config: Config,
    docs: HashMap<&'static str, Doc>,
    /// The store's version counter: one for all keys, one step per write.
    last_version: u64,
    /// Every tag each key has had, deleted ones too.
    history: HashMap<&'static str, Vec<String>>,
}

/// What an `If-Match` or `If-None-Match` field says, as the generator
/// built it (the model never parses the wire form).
#[derive(Clone, Debug)]
enum Meaning {
    Star,
    /// A well-formed list of (weak, opaque-tag) members, maybe empty.
    Tags(Vec<(bool, String)>),
    Malformed,
}

impl Meaning {
    /// RFC 9110 §13.1.1, strong comparison.
    fn if_match_holds(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (_, None) => false,
            (Meaning::Star, Some(_)) => true,
            (Meaning::Tags(tags), Some(cur)) => {
                tags.iter().any(|(weak, opaque)| !weak && opaque == cur)
            }
            (Meaning::Malformed, _) => false,
        }
    }

    /// RFC 9110 §13.1.2, weak comparison; a malformed field is ignored
    /// (the README's table), so it never fails.
    fn if_none_match_fails(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (_, None) => false,
            (Meaning::Star, Some(_)) => true,
            (Meaning::Tags(tags), Some(cur)) => tags.iter().any(|(_, opaque)| opaque == cur),
            (Meaning::Malformed, _) => false,
        }
    }

    /// The README's "could never match": malformed, or weak tags only
    /// (an empty list included).
    fn unmatchable(&self) -> bool {
        match self {
            Meaning::Star => false,
            Meaning::Tags(tags) => tags.iter().all(|(weak, _)| *weak),
            Meaning::Malformed => true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Date {
    /// 1994: before every write.
    Past,
    /// 2100: after every write.
    Future,
    /// Not a date: ignored.
    Invalid,
}

/// What the answer must be.
#[derive(Debug)]
struct Expect {
    status: StatusCode,
    /// The opaque tag in the `ETag` field, or no field.
    etag: Option<String>,
    body: Body,
    /// A 200 to a GET or HEAD: `Last-Modified` too.
    read_validators: bool,
}

#[derive(Debug)]
enum Body {
    Empty,
    Text(String),
    /// An RFC 9457 body of this kind, whose `etag` member is `Expect::etag`.
    Problem(ProblemKind),
    /// Either systems' own (the README's handler: a bare 404).
    Any,
}

/// How the model changes.
enum Effect {
    None,
    Write(String),
    Delete,
}

impl Model {
    fn current(&self, key: &str) -> Option<&Doc> {
        self.docs.get(key)
    }

    fn predict(
        &self,
        req: &Req,
        if_match: Option<&Meaning>,
        if_none_match: Option<&Meaning>,
        if_unmodified_since: Option<Date>,
    ) -> (Expect, Effect) {
        let method = &req.method;
        let cur = self.current(req.key);
        let cur_v = cur.map(|d| d.tag.clone());
        let cur_tag = cur.map(|d| d.tag.as_str());
        let opt_in = self.config.opt_in;
        let read = *method == Method::GET || *method == Method::HEAD;
        let head = *method == Method::HEAD;
        let problem = |status, etag, kind| {
            let body = if head {
                Body::Empty
            } else {
                Body::Problem(kind)
            };
            (
                Expect {
                    status,
                    etag,
                    body,
                    read_validators: false,
                },
                Effect::None,
            )
        };
        // RFC 9110 §13.2.1: the 404 comes before the preconditions.
        if cur.is_none() && (*method == Method::PATCH || *method == Method::DELETE) {
            return problem(StatusCode::NOT_FOUND, None, ProblemKind::NotFound);
        }
        if cur.is_none() && read {
            let body = if head { Body::Empty } else { Body::Any };
            let expect = Expect {
                status: StatusCode::NOT_FOUND,
                etag: None,
                body,
                read_validators: false,
            };
            return (expect, Effect::None);
        }
        // `reject_malformed`: a request whose conditions are evaluated and
        // either list field is malformed gets 400 instead of the RFC's
        // safe outcome (If-Match never matches, If-None-Match is ignored).
        let malformed = |m: Option<&Meaning>| matches!(m, Some(Meaning::Malformed));
        if self.config.reject_malformed && (malformed(if_match) || malformed(if_none_match)) {
            return problem(StatusCode::BAD_REQUEST, None, ProblemKind::Malformed);
        }
        // Strict mode: a write names the version it replaces (or, a PUT,
        // `If-None-Match: *`); `If-Unmodified-Since` alone is not enough.
        let creates = *method == Method::PUT && matches!(if_none_match, Some(Meaning::Star));
        if !read && if_match.is_none() && !creates && !opt_in {
            return problem(
                StatusCode::PRECONDITION_REQUIRED,
                None,
                ProblemKind::Required,
            );
        }
        // §13.2.2 step 1: If-Match.
        if let Some(im) = if_match {
            if !im.if_match_holds(cur_tag) {
                let kind = if cur.is_none() {
                    ProblemKind::Gone
                } else if im.unmatchable() {
                    ProblemKind::Unmatchable
                } else {
                    ProblemKind::Changed
                };
                return problem(StatusCode::PRECONDITION_FAILED, cur_v, kind);
            }
        } else if cur.is_some() && if_unmodified_since == Some(Date::Past) {
            // Step 2: If-Unmodified-Since, without If-Match, against the
            // Last-Modified every stored state has.
            return problem(StatusCode::PRECONDITION_FAILED, cur_v, ProblemKind::Changed);
        }
        // Step 3: If-None-Match.
        if if_none_match.is_some_and(|inm| inm.if_none_match_fails(cur_tag)) {
            if read {
                let expect = Expect {
                    status: StatusCode::NOT_MODIFIED,
                    etag: cur_v,
                    body: Body::Empty,
                    read_validators: false,
                };
                return (expect, Effect::None);
            }
            return problem(StatusCode::PRECONDITION_FAILED, cur_v, ProblemKind::Exists);
        }
        let next = |value: &str| self.tag_for(value, self.last_version + 1);
        match (method, cur) {
            (&Method::GET, Some(doc)) => (
                Expect {
                    status: StatusCode::OK,
                    etag: Some(doc.tag.clone()),
                    body: Body::Text(doc.value.clone()),
                    read_validators: true,
                },
                Effect::None,
            ),
            (&Method::HEAD, Some(doc)) => (
                Expect {
                    status: StatusCode::OK,
                    etag: Some(doc.tag.clone()),
                    body: Body::Empty,
                    read_validators: true,
                },
                Effect::None,
            ),
            (&Method::PUT, _) => (
                Expect {
                    status: if cur.is_some() {
                        StatusCode::OK
                    } else {
                        StatusCode::CREATED
                    },
                    etag: Some(next(&req.body)),
                    body: Body::Text(req.body.clone()),
                    read_validators: false,
                },
                Effect::Write(req.body.clone()),
            ),
            (&Method::PATCH, Some(doc)) => {
                let value = doc.value.clone() + &req.body;
                (
                    Expect {
                        status: StatusCode::OK,
                        etag: Some(next(&value)),
                        body: Body::Text(value.clone()),
                        read_validators: false,
                    },
                    Effect::Write(value),
                )
            }
            (&Method::DELETE, Some(doc)) => (
                Expect {
                    status: StatusCode::OK,
                    etag: None,
                    body: Body::Text(doc.value.clone()),
                    read_validators: false,
                },
                Effect::Delete,
            ),
            _ => unreachable!("{method} on {cur:?}"),
        }
    }

    /// The tag the store gives `value` written as `version`.
    fn tag_for(&self, value: &str, version: u64) -> String {
        if self.config.content_tags {
            let tag = ETag::from_content(value);
            String::from_utf8(tag.tag().to_vec()).unwrap()
        } else {
            v(version)
        }
    }

    fn apply(&mut self, key: &'static str, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::Write(value) => {
                self.last_version += 1;
                let tag = self.tag_for(&value, self.last_version);
                self.history.entry(key).or_default().push(tag.clone());
                self.docs.insert(key, Doc { value, tag });
            }
            Effect::Delete => {
                self.docs.remove(key);
            }
        }
    }
}

fn check(expect: &Expect, obs: &Obs) -> Result<(), String> {
    let mut wrong = Vec::new();
    if obs.status != expect.status {
        wrong.push(format!("status {} (model: {})", obs.status, expect.status));
    }
    let want_etag = expect.etag.as_deref().map(wire);
    let got_etag = obs
        .etag
        .as_ref()
        .map(|e| String::from_utf8_lossy(e).into_owned());
    if got_etag != want_etag {
        wrong.push(format!("ETag {got_etag:?} (model: {want_etag:?})"));
    }
    match &expect.body {
        Body::Empty if !obs.body.is_empty() => {
            wrong.push(format!("body {:?} (model: empty)", obs.body_str()));
        }
        Body::Text(text) if obs.body != text.as_bytes() => {
            wrong.push(format!("body {:?} (model: {text:?})", obs.body_str()));
        }
        Body::Problem(kind) if obs.status == expect.status => {
            let body = obs.problem();
            let want_type = ProblemTexts::default().get(*kind).type_uri.to_string();
            if body["type"] != want_type.as_str() {
                wrong.push(format!(
                    "problem type {} (model: {kind:?}, {want_type})",
                    body["type"]
                ));
            }
            if body["status"] != expect.status.as_u16() {
                wrong.push(format!("problem status {}", body["status"]));
            }
            let member = body.get("etag").and_then(|e| e.as_str()).map(str::to_owned);
            if member != want_etag {
                wrong.push(format!("problem etag {member:?} (model: {want_etag:?})"));
            }
        }
        _ => {}
    }
    // A 200 to a read carries the resolver's validators: the tag and the
    // date of the change (the README's `insert_validators`).
    if expect.read_validators && !obs.last_modified {
        wrong.push("no Last-Modified".to_owned());
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

// ---------------------------------------------------------------------------
// The sequential run
// ---------------------------------------------------------------------------

/// Which tag a field names, resolved against the model and the client when
/// the request is sent, so that a minimized sequence still makes sense.
#[derive(Clone, Copy, Debug)]
enum Cond {
    Star,
    /// The last tag this client saw for the key.
    Seen,
    Current,
    /// Any tag the key ever had (maybe the current one).
    Stale,
    /// A tag another key has had: never this key's.
    OtherKey,
    /// A tag the store never made.
    Forged,
    /// `W/` and the current tag.
    Weak,
    /// An empty field value: an empty list.
    Empty,
    /// A list with the current tag, its weak form, OWS and empty elements.
    List,
    /// Two field lines, the current tag on the second.
    TwoLines,
    Malformed,
    /// `*` with something else: malformed.
    StarAndMore,
}

#[derive(Clone, Debug)]
struct Op {
    client: usize,
    key: &'static str,
    method: Method,
    if_match: Option<Cond>,
    if_none_match: Option<Cond>,
    if_unmodified_since: Option<Date>,
    /// Decides the choices left within a `Cond`.
    pick: u64,
    /// A unique body.
    token: String,
}

struct Rng(Box<dyn Iterator<Item = u64> + Send>);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(Box::new(xorshift::xorshift(seed)))
    }

    fn next(&mut self) -> u64 {
        self.0.next().unwrap()
    }

    fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 11) % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn cond(rng: &mut Rng) -> Cond {
    const CONDS: [(Cond, u64); 12] = [
        (Cond::Seen, 30),
        (Cond::Current, 22),
        (Cond::Star, 10),
        (Cond::Stale, 8),
        (Cond::OtherKey, 3),
        (Cond::Forged, 4),
        (Cond::Weak, 5),
        (Cond::Empty, 2),
        (Cond::List, 6),
        (Cond::TwoLines, 4),
        (Cond::Malformed, 4),
        (Cond::StarAndMore, 2),
    ];
    let mut n = rng.below(CONDS.iter().map(|(_, w)| w).sum());
    for (cond, weight) in CONDS {
        if n < weight {
            return cond;
        }
        n -= weight;
    }
    unreachable!()
}

fn gen_op(rng: &mut Rng, model: &Model, step: usize) -> Op {
    let key = KEYS[rng.below(KEYS.len() as u64) as usize];
    let exists = model.current(key).is_some();
    let method = match rng.below(100) {
        0..=17 => Method::GET,
        18..=22 => Method::HEAD,
        23..=57 => Method::PUT,
        58..=79 => Method::PATCH,
        _ => Method::DELETE,
    };
    let read = method == Method::GET || method == Method::HEAD;
    let if_match = rng.chance(if read { 15 } else { 72 }).then(|| cond(rng));
    let if_none_match = if method == Method::PUT && !exists && rng.chance(60) {
        Some(Cond::Star)
    } else {
        rng.chance(if read { 30 } else { 12 }).then(|| cond(rng))
    };
    let if_unmodified_since = rng.chance(6).then(|| match rng.below(3) {
        0 => Date::Past,
        1 => Date::Future,
        _ => Date::Invalid,
    });
    Op {
        client: rng.below(CLIENTS as u64) as usize,
        key,
        method,
        if_match,
        if_none_match,
        if_unmodified_since,
        pick: rng.next(),
        // Now and then a body that was sent before (or none): a value
        // that comes back, with its content tag.
        token: match rng.below(20) {
            0 => "[same]".to_owned(),
            1 => String::new(),
            _ => format!("[{step}]"),
        },
    }
}

/// The wire lines and the meaning of `cond` for `key`.
fn resolve(
    cond: Cond,
    model: &Model,
    key: &str,
    seen: Option<&str>,
    pick: u64,
) -> (Vec<Vec<u8>>, Meaning) {
    let cur = model
        .current(key)
        .map(|d| d.tag.clone())
        .or_else(|| model.history.get(key).and_then(|h| h.last().cloned()))
        .unwrap_or_else(|| v(0));
    let strong = |opaque: &str| (false, opaque.to_owned());
    let one = |opaque: &str| {
        (
            vec![wire(opaque).into_bytes()],
            Meaning::Tags(vec![strong(opaque)]),
        )
    };
    let pick_from = |tags: &[String]| {
        if tags.is_empty() {
            v(0)
        } else {
            tags[(pick % tags.len() as u64) as usize].clone()
        }
    };
    match cond {
        Cond::Star => (vec![b"*".to_vec()], Meaning::Star),
        Cond::Seen => one(&seen.map_or_else(|| v(0), str::to_owned)),
        Cond::Current => one(&cur),
        Cond::Stale => one(&pick_from(
            model.history.get(key).map(Vec::as_slice).unwrap_or(&[]),
        )),
        Cond::OtherKey => {
            let mut others: Vec<String> = model
                .history
                .iter()
                .filter(|(k, _)| **k != key)
                .flat_map(|(_, h)| h.iter().cloned())
                .collect();
            others.sort_unstable();
            one(&pick_from(&others))
        }
        Cond::Forged => {
            let forged: [(&[u8], &str); 5] = [
                (b"\"zzz\"", "zzz"),
                (b"\"v999999\"", "v999999"),
                (b"\"v01\"", "v01"),
                (b"\"\"", ""),
                (b"\"caf\xe9\"", "caf\u{e9}"),
            ];
            let (wire, opaque) = forged[(pick % 5) as usize];
            // The model compares opaque tags as text: obs-text never equals
            // a tag the store makes, whichever way it is decoded.
            (
                vec![wire.to_vec()],
                Meaning::Tags(vec![(false, opaque.to_owned())]),
            )
        }
        Cond::Weak => (
            vec![format!("W/{}", wire(&cur)).into_bytes()],
            Meaning::Tags(vec![(true, cur.clone())]),
        ),
        Cond::Empty => (vec![Vec::new()], Meaning::Tags(Vec::new())),
        Cond::List => (
            vec![format!(" \"x\" ,, W/{} ,\t{} ,", wire(&cur), wire(&cur)).into_bytes()],
            Meaning::Tags(vec![
                (false, "x".to_owned()),
                (true, cur.clone()),
                strong(&cur),
            ]),
        ),
        Cond::TwoLines => (
            vec![b"\"x\"".to_vec(), wire(&cur).into_bytes()],
            Meaning::Tags(vec![(false, "x".to_owned()), strong(&cur)]),
        ),
        Cond::Malformed => {
            let bad = [
                cur.clone(),
                format!("{} \"x\"", wire(&cur)),
                format!("W/ {}", wire(&cur)),
                format!("w/{}", wire(&cur)),
                format!("\"{cur}"),
            ];
            (
                vec![bad[(pick % 5) as usize].clone().into_bytes()],
                Meaning::Malformed,
            )
        }
        Cond::StarAndMore => {
            let lines = match pick % 3 {
                0 => vec![format!("{}, *", wire(&cur)).into_bytes()],
                1 => vec![b"*".to_vec(), b"*".to_vec()],
                _ => vec![b"*".to_vec(), wire(&cur).into_bytes()],
            };
            (lines, Meaning::Malformed)
        }
    }
}

/// One sequential run: both systems, one model, the clients' memories.
struct Run {
    suts: [Sut; 2],
    model: Model,
    seen: Vec<HashMap<&'static str, String>>,
    /// The requests sent, with the model's status.
    trace: Vec<String>,
    /// The outcomes met: method, status and problem kind.
    outcomes: HashSet<String>,
}

impl Run {
    fn new(config: Config) -> Self {
        Run {
            suts: [Sut::axum(config), Sut::gate(config)],
            model: Model {
                config,
                ..Model::default()
            },
            seen: vec![HashMap::new(); CLIENTS],
            trace: Vec::new(),
            outcomes: HashSet::new(),
        }
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let seen = self.seen[op.client].get(op.key).cloned();
        let mut headers = Vec::new();
        let mut field = |name: &HeaderName, cond: Option<Cond>, pick| {
            cond.map(|cond| {
                let (lines, meaning) = resolve(cond, &self.model, op.key, seen.as_deref(), pick);
                for line in lines {
                    headers.push((name.clone(), line));
                }
                meaning
            })
        };
        let if_match = field(&IF_MATCH, op.if_match, op.pick);
        let if_none_match = field(&IF_NONE_MATCH, op.if_none_match, op.pick >> 8);
        if let Some(date) = op.if_unmodified_since {
            let value: &[u8] = match date {
                Date::Past => b"Sun, 06 Nov 1994 08:49:37 GMT",
                Date::Future => b"Fri, 01 Jan 2100 00:00:00 GMT",
                Date::Invalid => b"yesterday",
            };
            headers.push((IF_UNMODIFIED_SINCE, value.to_vec()));
        }
        let body = match op.method {
            Method::PUT | Method::PATCH => op.token.clone(),
            _ => String::new(),
        };
        let req = Req {
            method: op.method.clone(),
            key: op.key,
            headers,
            body,
        };
        let (expect, effect) = self.model.predict(
            &req,
            if_match.as_ref(),
            if_none_match.as_ref(),
            op.if_unmodified_since,
        );
        self.trace.push(format!("{req} -> {}", expect.status));
        let kind = match expect.body {
            Body::Problem(kind) => format!(" {kind:?}"),
            _ => String::new(),
        };
        self.outcomes
            .insert(format!("{} {}{kind}", req.method, expect.status.as_u16()));
        for sut in &self.suts {
            let obs = sut.send(&req).await;
            check(&expect, &obs).map_err(|wrong| {
                format!(
                    "{sut}: {req}\n  state: {:?}\n  answer: {} ETag {:?} {:?}\n  wrong: {wrong}",
                    self.model.current(op.key),
                    obs.status,
                    obs.etag
                        .as_ref()
                        .map(|e| String::from_utf8_lossy(e).into_owned()),
                    obs.body_str(),
                )
            })?;
        }
        // What a client learns: the tag of any answer that carries one;
        // a 404 or a DELETE that went through makes it forget.
        let seen = &mut self.seen[op.client];
        if let Some(tag) = &expect.etag {
            seen.insert(op.key, tag.clone());
        } else if expect.status == StatusCode::NOT_FOUND || matches!(effect, Effect::Delete) {
            seen.remove(op.key);
        }
        self.model.apply(op.key, effect);
        Ok(())
    }
}

async fn replay(config: Config, ops: &[Op]) -> Result<(), (usize, String)> {
    let mut run = Run::new(config);
    for (i, op) in ops.iter().enumerate() {
        run.step(op).await.map_err(|e| (i, e))?;
    }
    Ok(())
}

/// Fewer requests (removing chunks, then single requests) that still
/// disagree with the model.
async fn minimize(config: Config, mut ops: Vec<Op>) -> Vec<Op> {
    let (at, _) = replay(config, &ops).await.expect_err("the sequence failed");
    ops.truncate(at + 1);
    let mut chunk = ops.len().div_ceil(2);
    while chunk >= 1 {
        let mut i = 0;
        let mut removed = false;
        while i < ops.len() {
            let mut candidate = ops.clone();
            candidate.drain(i..(i + chunk).min(ops.len()));
            match replay(config, &candidate).await {
                Err((at, _)) => {
                    candidate.truncate(at + 1);
                    ops = candidate;
                    removed = true;
                }
                Ok(()) => i += chunk,
            }
        }
        if !removed {
            chunk /= 2;
        }
    }
    ops
}

/// Runs `steps` random requests from each seed against both systems set up
/// as `config`, and returns the outcomes met. A disagreement with the model
/// panics with the fewest requests found that still show it.
async fn sequential(config: Config, seeds: &[u64], steps: usize) -> HashSet<String> {
    let mut outcomes = HashSet::new();
    for &seed in seeds {
        let mut rng = Rng::new(seed);
        let mut run = Run::new(config);
        let mut ops = Vec::new();
        for step in 0..steps {
            let op = gen_op(&mut rng, &run.model, step);
            ops.push(op.clone());
            if run.step(&op).await.is_err() {
                let ops = minimize(config, ops).await;
                let mut replay = Run::new(config);
                let mut why = String::new();
                for op in &ops {
                    if let Err(e) = replay.step(op).await {
                        why = e;
                    }
                }
                let trace: String = replay.trace.iter().map(|r| format!("\n  {r}")).collect();
                panic!(
                    "{config:?}, seed {seed:#x}: {} request(s) disagree with the model \
                     (its status after ->):{trace}\n{why}",
                    ops.len()
                );
            }
        }
        outcomes.extend(run.outcomes.drain());
        // Each key ends as the model has it, in both systems.
        for key in KEYS {
            for sut in &run.suts {
                let doc = sut.send(&get_req(key)).await;
                match run.model.current(key) {
                    Some(d) => {
                        assert_eq!(doc.status, StatusCode::OK, "{sut}");
                        assert_eq!(doc.body_str(), d.value, "{sut}");
                    }
                    None => assert_eq!(doc.status, StatusCode::NOT_FOUND, "{sut}"),
                }
            }
        }
    }
    outcomes
}

#[tokio::test]
async fn sequential_requests_agree_with_the_model() {
    let outcomes = sequential(STRICT, &[1, 0x9e37_79b9_7f4a_7c15, 42, 7_777_777], 2500).await;
    // The generator reaches every answer the model knows.
    let mut missing: Vec<&str> = [
        "GET 200",
        "HEAD 200",
        "GET 304",
        "HEAD 304",
        "GET 404",
        "GET 412 Changed",
        "GET 412 Unmatchable",
        "PUT 201",
        "PUT 200",
        "PUT 412 Changed",
        "PUT 412 Unmatchable",
        "PUT 412 Gone",
        "PUT 412 Exists",
        "PUT 428 Required",
        "PATCH 200",
        "PATCH 404 NotFound",
        "PATCH 412 Changed",
        "PATCH 412 Exists",
        "PATCH 428 Required",
        "DELETE 200",
        "DELETE 404 NotFound",
        "DELETE 412 Changed",
        "DELETE 412 Unmatchable",
        "DELETE 428 Required",
    ]
    .into_iter()
    .filter(|o| !outcomes.contains(*o))
    .collect();
    missing.sort_unstable();
    assert!(missing.is_empty(), "never met: {missing:?}");
}

#[tokio::test]
async fn sequential_requests_in_opt_in_mode_agree_with_the_model() {
    let config = Config {
        opt_in: true,
        ..STRICT
    };
    let outcomes = sequential(config, &[3, 0xdead_beef], 2000).await;
    // Writes without a precondition went ahead.
    assert!(!outcomes.iter().any(|o| o.contains("428")), "{outcomes:?}");
}

#[tokio::test]
async fn sequential_requests_rejecting_malformed_fields_agree_with_the_model() {
    let config = Config {
        reject_malformed: true,
        ..STRICT
    };
    let outcomes = sequential(config, &[11, 0xabad_cafe], 1500).await;
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        let bad = format!("{method} 400 Malformed");
        assert!(outcomes.contains(&bad), "never met: {bad}");
    }
}

#[tokio::test]
async fn sequential_requests_with_content_tags_agree_with_the_model() {
    let config = Config {
        content_tags: true,
        ..STRICT
    };
    sequential(config, &[5, 0xfeed_f00d], 2000).await;
}

fn get_req(key: &'static str) -> Req {
    Req {
        method: Method::GET,
        key,
        headers: Vec::new(),
        body: String::new(),
    }
}

// ---------------------------------------------------------------------------
// The concurrent run
// ---------------------------------------------------------------------------

/// How an acknowledged write made its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// 201: the token alone, where there was nothing.
    Create,
    /// The state before, and the token.
    Append,
    /// The token alone, over a state (opt-in mode's blind PUT: last write
    /// wins, by design).
    Replace,
}

/// An acknowledged (2xx) PUT or PATCH.
#[derive(Clone, Debug)]
struct Ack {
    key: &'static str,
    version: u64,
    value: String,
    token: String,
    kind: Kind,
}

#[derive(Default)]
struct Log {
    writes: Vec<Ack>,
    /// Acknowledged DELETEs: the key and the value removed.
    deletes: Vec<(&'static str, String)>,
    /// Every state a 200 GET showed: key, version, value.
    reads: Vec<(&'static str, u64, String)>,
    /// Versions named as current by a 412.
    named: Vec<(&'static str, u64)>,
    /// Tokens of writes that were not acknowledged.
    refused: Vec<String>,
    statuses: HashMap<(&'static str, u16), usize>,
}

const CONCURRENT_KEYS: [&str; 2] = ["a", "b"];

struct Client {
    sut: Sut,
    config: Config,
    id: usize,
    log: Arc<Mutex<Log>>,
    /// The last state this client read or wrote, per key.
    memory: Mutex<HashMap<&'static str, (u64, String)>>,
}

fn req(method: Method, key: &'static str, headers: &[(HeaderName, &str)], body: String) -> Req {
    Req {
        method,
        key,
        headers: headers
            .iter()
            .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
            .collect(),
        body,
    }
}

impl Client {
    async fn send(&self, what: &'static str, req: &Req) -> Obs {
        let obs = self.sut.send(req).await;
        let mut log = self.log.lock().unwrap();
        *log.statuses.entry((what, obs.status.as_u16())).or_default() += 1;
        if obs.status == StatusCode::PRECONDITION_FAILED {
            // A 412 names the current tag in its header and body alike.
            let member = obs.problem()["etag"].as_str().map(str::to_owned);
            let header = obs
                .etag
                .as_ref()
                .map(|e| String::from_utf8_lossy(e).into_owned());
            assert_eq!(member, header, "{what}: {req}");
            let kind = obs.problem()["type"].as_str().unwrap().to_owned();
            let texts = ProblemTexts::default();
            let is = |k| kind == texts.get(k).type_uri.as_ref();
            let sent = req
                .headers
                .iter()
                .find(|(name, _)| name == IF_MATCH)
                .map(|(_, value)| value.as_slice());
            match obs.version() {
                // A target that moved on, or a create that found one: the
                // 412 names a state other than the one the client named.
                Some(version) => {
                    assert!(
                        is(ProblemKind::Changed) || is(ProblemKind::Exists),
                        "{req}: {kind}"
                    );
                    assert_ne!(sent, Some(wire(&v(version)).as_bytes()), "{what}: {req}");
                    log.named.push((req.key, version));
                }
                None => assert!(is(ProblemKind::Gone), "{what}: {req}: {kind} without a tag"),
            }
        }
        obs
    }

    fn acked(&self, key: &'static str, obs: &Obs, token: &str, kind: Kind) {
        let version = obs.version().expect("a write's answer carries its tag");
        let value = obs.body_str();
        assert!(value.ends_with(token), "{value:?} lacks {token}");
        self.remember(key, Some((version, value.clone())));
        self.log.lock().unwrap().writes.push(Ack {
            key,
            version,
            value,
            token: token.to_owned(),
            kind,
        });
    }

    fn refused(&self, token: String) {
        self.log.lock().unwrap().refused.push(token);
    }

    fn remember(&self, key: &'static str, state: Option<(u64, String)>) {
        let mut memory = self.memory.lock().unwrap();
        match state {
            Some(state) => memory.insert(key, state),
            None => memory.remove(key),
        };
    }

    async fn read(&self, key: &'static str) -> Option<(u64, String)> {
        let obs = self.send("GET", &get_req(key)).await;
        match obs.status {
            StatusCode::OK => {
                let state = (
                    obs.version().expect("a 200 carries the tag"),
                    obs.body_str(),
                );
                self.log
                    .lock()
                    .unwrap()
                    .reads
                    .push((key, state.0, state.1.clone()));
                self.remember(key, Some(state.clone()));
                Some(state)
            }
            StatusCode::NOT_FOUND => {
                self.remember(key, None);
                None
            }
            status => panic!("GET {key}: {status}"),
        }
    }

    /// GET, append, PUT under `If-Match`, or create under
    /// `If-None-Match: *`; retried on 412 with `Retry`.
    async fn read_modify_write(&self, key: &'static str, token: String) {
        let retry = Retry::new()
            .attempts(40)
            .backoff(Duration::ZERO, Duration::ZERO);
        let result = retry
            .run(
                |_| async {
                    let client = self;
                    let (put, create) = match client.read(key).await {
                        Some((version, value)) => {
                            let tag = wire(&v(version));
                            let r = req(Method::PUT, key, &[(IF_MATCH, &tag)], value + &token);
                            (r, false)
                        }
                        None => {
                            let r = req(Method::PUT, key, &[(IF_NONE_MATCH, "*")], token.clone());
                            (r, true)
                        }
                    };
                    let obs = client.send("RMW PUT", &put).await;
                    match obs.status {
                        StatusCode::OK if !create => {
                            assert_eq!(obs.body_str(), put.body);
                            client.acked(key, &obs, &token, Kind::Append);
                            Ok(())
                        }
                        StatusCode::CREATED if create => {
                            client.acked(key, &obs, &token, Kind::Create);
                            Ok(())
                        }
                        StatusCode::PRECONDITION_FAILED => Err(StatusCode::PRECONDITION_FAILED),
                        status => panic!("{put}: {status} {:?}", obs.body_str()),
                    }
                },
                |_| tokio::task::yield_now(),
            )
            .await;
        if result.is_err() {
            self.refused(token);
        }
    }

    /// PATCH under `If-Match: *`: applied to whatever is current, or 409
    /// when `modify` lost every race, 404 or 412 (gone) when deleted.
    async fn patch_star(&self, key: &'static str, token: String) {
        let patch = req(Method::PATCH, key, &[(IF_MATCH, "*")], token.clone());
        let obs = self.send("PATCH *", &patch).await;
        match obs.status {
            StatusCode::OK => self.acked(key, &obs, &token, Kind::Append),
            StatusCode::CONFLICT | StatusCode::NOT_FOUND => self.refused(token),
            StatusCode::PRECONDITION_FAILED => {
                // Only a target deleted between modify's read and write.
                let gone = ProblemTexts::default()
                    .get(ProblemKind::Gone)
                    .type_uri
                    .to_string();
                assert_eq!(obs.problem()["type"], gone.as_str(), "{patch}");
                self.refused(token);
            }
            status => panic!("{patch}: {status} {:?}", obs.body_str()),
        }
    }

    /// GET, then PATCH under the tag read; retried on 412.
    async fn patch_tagged(&self, key: &'static str, token: String) {
        let retry = Retry::new()
            .attempts(40)
            .backoff(Duration::ZERO, Duration::ZERO);
        let result = retry
            .run(
                |_| async {
                    let client = self;
                    let Some((version, value)) = client.read(key).await else {
                        return Err(StatusCode::NOT_FOUND);
                    };
                    let tag = wire(&v(version));
                    let patch = req(Method::PATCH, key, &[(IF_MATCH, &tag)], token.clone());
                    let obs = client.send("PATCH tag", &patch).await;
                    match obs.status {
                        StatusCode::OK => {
                            // Applied to exactly the version named.
                            assert_eq!(obs.body_str(), value + &token, "{patch}");
                            client.acked(key, &obs, &token, Kind::Append);
                            Ok(())
                        }
                        s @ (StatusCode::PRECONDITION_FAILED | StatusCode::NOT_FOUND) => Err(s),
                        status => panic!("{patch}: {status} {:?}", obs.body_str()),
                    }
                },
                |_| tokio::task::yield_now(),
            )
            .await;
        if result.is_err() {
            self.refused(token);
        }
    }

    /// GET, then DELETE under the tag read (not retried).
    async fn delete(&self, key: &'static str) {
        let Some((version, value)) = self.read(key).await else {
            return;
        };
        let tag = wire(&v(version));
        let delete = req(Method::DELETE, key, &[(IF_MATCH, &tag)], String::new());
        let obs = self.send("DELETE tag", &delete).await;
        match obs.status {
            StatusCode::OK => {
                assert_eq!(obs.body_str(), value, "{delete} removed another state");
                self.remember(key, None);
                self.log.lock().unwrap().deletes.push((key, value));
            }
            StatusCode::PRECONDITION_FAILED | StatusCode::NOT_FOUND => {}
            status => panic!("{delete}: {status} {:?}", obs.body_str()),
        }
    }

    /// A PUT under the tag of the last state this client saw, however old.
    async fn stale_put(&self, key: &'static str, token: String) {
        let remembered = self.memory.lock().unwrap().get(key).cloned();
        let Some((version, value)) = remembered else {
            return self.refused(token);
        };
        let tag = wire(&v(version));
        let put = req(Method::PUT, key, &[(IF_MATCH, &tag)], value + &token);
        let obs = self.send("stale PUT", &put).await;
        match obs.status {
            StatusCode::OK => self.acked(key, &obs, &token, Kind::Append),
            StatusCode::PRECONDITION_FAILED => self.refused(token),
            status => panic!("{put}: {status} {:?}", obs.body_str()),
        }
    }

    /// A write without a precondition: 428 and nothing written in strict
    /// mode (404 first for a PATCH or DELETE of a missing target). In
    /// opt-in mode it goes ahead: a PUT replaces whatever is there (or
    /// creates), a PATCH is applied to the current state (`modify` re-reads
    /// after a lost race), a DELETE removes the current state; never a 412,
    /// as there was no condition to fail.
    async fn blind(&self, key: &'static str, token: String, pick: u64) {
        let method = [Method::PUT, Method::PATCH, Method::DELETE][(pick % 3) as usize].clone();
        let body = if method == Method::DELETE {
            String::new()
        } else {
            token.clone()
        };
        let blind = req(method.clone(), key, &[], body);
        let obs = self.send("blind", &blind).await;
        let missing = obs.status == StatusCode::NOT_FOUND && method != Method::PUT;
        if !self.config.opt_in {
            assert!(
                obs.status == StatusCode::PRECONDITION_REQUIRED || missing,
                "{blind}: {}",
                obs.status
            );
            return self.refused(token);
        }
        match (method, obs.status) {
            (Method::PUT, StatusCode::CREATED) => self.acked(key, &obs, &token, Kind::Create),
            (Method::PUT, StatusCode::OK) => self.acked(key, &obs, &token, Kind::Replace),
            (Method::PATCH, StatusCode::OK) => self.acked(key, &obs, &token, Kind::Append),
            (Method::PATCH, StatusCode::CONFLICT) => self.refused(token),
            (Method::DELETE, StatusCode::OK) => {
                self.remember(key, None);
                self.log.lock().unwrap().deletes.push((key, obs.body_str()));
                self.refused(token);
            }
            _ if missing => self.refused(token),
            (_, status) => panic!("{blind}: {status} {:?}", obs.body_str()),
        }
    }

    /// A GET under `If-Match` or `If-None-Match` with the tag this client
    /// last saw: a 304 or 412 is about that tag, even when a write lands
    /// between the check and the read, and a 200 is that state or a newer
    /// one somebody wrote.
    async fn conditional_read(&self, key: &'static str, pick: u64) {
        let remembered = self.memory.lock().unwrap().get(key).cloned();
        let Some((version, value)) = remembered else {
            return;
        };
        let tag = wire(&v(version));
        let field = if pick % 2 == 0 {
            IF_MATCH
        } else {
            IF_NONE_MATCH
        };
        let get = req(Method::GET, key, &[(field.clone(), &tag)], String::new());
        let obs = self.send("conditional GET", &get).await;
        let same = obs.version() == Some(version);
        match (field == IF_MATCH, obs.status) {
            // If-Match held: the state named; or, as the README's read
            // handler loads the item again after the layer's check, a
            // newer one written in between (never an older one).
            (true, StatusCode::OK) if same => assert_eq!(obs.body_str(), value, "{get}"),
            (true, StatusCode::OK) => {
                let newer = obs.version().unwrap();
                assert!(newer > version, "{get}: 200 with an older {newer}");
                let state = (key, newer, obs.body_str());
                self.log.lock().unwrap().reads.push(state);
            }
            (true, StatusCode::PRECONDITION_FAILED) => {}
            // If-None-Match held: another state; or the one named, unsent.
            (false, StatusCode::OK) => {
                assert!(!same, "{get}: 200 with the tag the client has");
                let state = (key, obs.version().unwrap(), obs.body_str());
                self.log.lock().unwrap().reads.push(state);
            }
            (false, StatusCode::NOT_MODIFIED) => {
                assert!(same, "{get}: 304 with {:?}", obs.version());
                assert!(obs.body.is_empty(), "{get}: a 304 with content");
            }
            (_, StatusCode::NOT_FOUND) => {}
            (_, status) => panic!("{get}: {status} {:?}", obs.body_str()),
        }
    }

    async fn run(self, mut rng: Rng, ops: usize) {
        for n in 0..ops {
            let key = CONCURRENT_KEYS[rng.below(CONCURRENT_KEYS.len() as u64) as usize];
            let token = format!("<c{}.{n}>", self.id);
            match rng.below(22) {
                0..=7 => self.read_modify_write(key, token).await,
                8..=10 => self.patch_star(key, token).await,
                11..=12 => self.patch_tagged(key, token).await,
                13..=15 => self.delete(key).await,
                16..=17 => self.stale_put(key, token).await,
                18..=19 => self.conditional_read(key, rng.next()).await,
                _ => self.blind(key, token, rng.next()).await,
            }
        }
    }
}

/// Checks that the acknowledged writes, in version order, make one chain
/// per key that ends in the final state.
fn verify(log: &Log, finals: &HashMap<&'static str, Option<(u64, String)>>) {
    let mut versions = HashSet::new();
    for w in &log.writes {
        assert!(
            versions.insert(w.version),
            "version {} acknowledged twice",
            w.version
        );
    }
    let by_version: HashMap<u64, &Ack> = log.writes.iter().map(|w| (w.version, w)).collect();
    for key in CONCURRENT_KEYS {
        let mut writes: Vec<&Ack> = log.writes.iter().filter(|w| w.key == key).collect();
        writes.sort_by_key(|w| w.version);
        let mut deletes: HashMap<&str, usize> = HashMap::new();
        for (_, value) in log.deletes.iter().filter(|(k, _)| *k == key) {
            *deletes.entry(value.as_str()).or_default() += 1;
        }
        let mut consume = |value: &str, why: &str| match deletes.get_mut(value) {
            Some(n) if *n > 0 => *n -= 1,
            _ => panic!("{key}: {why}, but no acknowledged DELETE removed {value:?}"),
        };
        let mut prev: Option<&str> = None;
        for w in &writes {
            match w.kind {
                Kind::Create => {
                    if let Some(p) = prev {
                        consume(p, &format!("v{} created {:?} over it", w.version, w.value));
                    }
                    assert_eq!(w.value, w.token, "{key}: create v{}", w.version);
                }
                Kind::Append => {
                    let p =
                        prev.unwrap_or_else(|| panic!("{key}: v{} appended to nothing", w.version));
                    assert_eq!(
                        w.value,
                        format!("{p}{}", w.token),
                        "{key}: v{} is not its predecessor plus its token (a lost update)",
                        w.version
                    );
                }
                Kind::Replace => {
                    assert!(prev.is_some(), "{key}: v{} replaced nothing", w.version);
                    assert_eq!(w.value, w.token, "{key}: replace v{}", w.version);
                }
            }
            prev = Some(&w.value);
        }
        match (&finals[key], prev) {
            (Some((version, value)), Some(p)) => {
                assert_eq!(
                    value, p,
                    "{key}: the final value is not the last acknowledged one"
                );
                assert_eq!(Some(*version), writes.last().map(|w| w.version));
            }
            (Some(state), None) => panic!("{key}: {state:?} stored, nothing acknowledged"),
            (None, Some(p)) => consume(p, "the key is gone at the end"),
            (None, None) => {}
        }
        let left: Vec<_> = deletes.iter().filter(|(_, n)| **n > 0).collect();
        assert!(
            left.is_empty(),
            "{key}: DELETEs of states not last in the chain: {left:?}"
        );
    }
    // Every state a GET showed, and every version a 412 named, was written
    // by an acknowledged write.
    for (key, version, value) in &log.reads {
        let w = by_version
            .get(version)
            .unwrap_or_else(|| panic!("{key}: read v{version}, which nobody was told they wrote"));
        assert_eq!((w.key, &w.value), (*key, value), "read v{version}");
    }
    for (key, version) in &log.named {
        let w = by_version
            .get(version)
            .unwrap_or_else(|| panic!("{key}: a 412 named v{version}, never acknowledged"));
        assert_eq!(w.key, *key);
    }
    // No refused token anywhere.
    let refused: HashSet<&str> = log.refused.iter().map(String::as_str).collect();
    let states = log
        .writes
        .iter()
        .map(|w| &w.value)
        .chain(finals.values().flatten().map(|(_, v)| v));
    for value in states {
        for token in value.split_inclusive('>') {
            assert!(!refused.contains(token), "refused {token} is in {value:?}");
        }
    }
}

/// Eight clients doing 200 operations each over two keys, concurrently,
/// against both systems set up as `config`; then the checks of [`verify`].
async fn concurrent(config: Config, seed: u64) {
    for sut in [Sut::axum(config), Sut::gate(config)] {
        let log = Arc::new(Mutex::new(Log::default()));
        let tasks: Vec<_> = (0..8)
            .map(|id| {
                let client = Client {
                    sut: sut.clone(),
                    config,
                    id,
                    log: log.clone(),
                    memory: Mutex::default(),
                };
                tokio::spawn(client.run(Rng::new(seed + id as u64), 200))
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let mut finals = HashMap::new();
        for key in CONCURRENT_KEYS {
            let obs = sut.send(&get_req(key)).await;
            let state = match obs.status {
                StatusCode::OK => Some((obs.version().unwrap(), obs.body_str())),
                StatusCode::NOT_FOUND => None,
                status => panic!("final GET {key}: {status}"),
            };
            finals.insert(key, state);
        }
        let log = log.lock().unwrap();
        verify(&log, &finals);
        assert!(!log.writes.is_empty(), "{sut}: nothing was written");
        let mut statuses: Vec<_> = log.statuses.iter().collect();
        statuses.sort();
        eprintln!(
            "{config:?} {sut}: {} writes and {} deletes acknowledged, {} refused; {statuses:?}",
            log.writes.len(),
            log.deletes.len(),
            log.refused.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_read_modify_writes_lose_no_update() {
    concurrent(STRICT, 0x5eed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_in_opt_in_mode_lose_no_update() {
    let config = Config {
        opt_in: true,
        ..STRICT
    };
    concurrent(config, 0xb71e).await;
}
