#![cfg(feature = "middleware")]
//! Black-box tests of the tower middleware: `PreconditionLayer` and
//! `ETagLayer` through `tower::ServiceExt::oneshot`, over hand-written inner
//! services and over a real axum `Router`, alone and with tower-http's
//! `CompressionLayer`.

#[path = "support/xorshift.rs"]
mod xorshift;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH,
    CONTENT_LOCATION, CONTENT_RANGE, CONTENT_TYPE, DATE, ETAG, EXPIRES, HeaderName, HeaderValue,
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
    RANGE, SET_COOKIE, VARY,
};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use ifmatch::middleware::{
    DEFAULT_ETAG_LIMIT, ETagLayer, ForwardResolved, IntoRefusal, Precondition, PreconditionLayer,
    ResolveError, Resolved, StoreUnavailable, busy_response, conflict_response,
    unavailable_response,
};
use ifmatch::{
    Conflict, ETag, Expected, Failed, MemoryStore, PROBLEM_JSON, Policy, ProblemKind, ProblemText,
    ProblemTexts, Stored, Validators,
};
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_http::compression::CompressionLayer;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date.
const MODIFIED_SECS: u64 = 784_111_777;
const MODIFIED_HTTP: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

fn request<B>(method: Method, uri: &str, headers: &[(HeaderName, &str)], body: B) -> Request<B> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri.parse().unwrap();
    for (name, value) in headers {
        req.headers_mut()
            .append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    req
}

fn header_map(headers: &[(HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    map
}

/// Reads a whole body that is known not to fail.
async fn body_bytes<B>(body: B) -> Bytes
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    body.collect().await.unwrap().to_bytes()
}

fn problem(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

fn etag_header<B>(res: &Response<B>) -> Option<ETag> {
    res.headers().get(ETAG).map(|v| ETag::try_from(v).unwrap())
}

// ---------------------------------------------------------------------------
// PreconditionLayer over a counting `service_fn`
// ---------------------------------------------------------------------------

/// What the resolver answers.
#[derive(Clone)]
enum Target {
    Present(Validators),
    Absent,
    Unreachable(&'static str),
}

fn v7() -> ETag {
    ETag::from_version(7)
}

fn present() -> Target {
    Target::Present(
        Validators::new(v7()).with_last_modified(UNIX_EPOCH + Duration::from_secs(MODIFIED_SECS)),
    )
}

/// Last modified on 1 January 2100, by a clock that runs far ahead.
fn modified_in_the_future() -> Target {
    Target::Present(
        Validators::new(v7()).with_last_modified(UNIX_EPOCH + Duration::from_secs(4_102_444_800)),
    )
}

fn resolver(
    target: Target,
) -> impl FnMut(&Parts) -> Ready<Result<Option<Validators>, std::io::Error>> + Clone {
    move |_: &Parts| {
        ready(match &target {
            Target::Present(v) => Ok(Some(v.clone())),
            Target::Absent => Ok(None),
            Target::Unreachable(why) => Err(std::io::Error::other(*why)),
        })
    }
}

/// A handler that counts how often it is called and records the
/// `Precondition` it finds. It answers 404 itself when the layer says the
/// target is absent (and the method cannot create it), 200 otherwise.
#[derive(Clone, Default)]
struct Handler {
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Option<Precondition>>>,
}

impl Handler {
    fn service(
        &self,
    ) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone
    {
        let calls = Arc::clone(&self.calls);
        let seen = Arc::clone(&self.seen);
        service_fn(move |req: Request<String>| {
            // Counted when the service is called, not when its future runs:
            // "not called" means not even `call`.
            calls.fetch_add(1, Ordering::SeqCst);
            let pre = req.extensions().get::<Precondition>().cloned();
            let absent = pre
                .as_ref()
                .is_some_and(|p| *p.expected() == Expected::Absent)
                && req.method() != Method::PUT;
            *seen.lock().unwrap() = pre;
            let mut res = Response::new("from the handler".to_owned());
            res.headers_mut()
                .insert("x-handler", HeaderValue::from_static("yes"));
            if absent {
                *res.status_mut() = StatusCode::NOT_FOUND;
            }
            ready(Ok::<_, Infallible>(res))
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Option<(Expected, bool)> {
        self.seen
            .lock()
            .unwrap()
            .as_ref()
            .map(|p| (p.expected().clone(), p.ignore_range()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Config {
    Default,
    OptIn,
    RejectMalformed,
}

fn precondition_layer(
    target: Target,
    config: Config,
) -> PreconditionLayer<
    impl FnMut(&Parts) -> Ready<Result<Option<Validators>, std::io::Error>> + Clone,
> {
    let layer = PreconditionLayer::new(resolver(target));
    match config {
        Config::Default => layer,
        Config::OptIn => layer.policy(Policy::opt_in()),
        Config::RejectMalformed => layer.reject_malformed(true),
    }
}

struct OutcomeCase {
    name: &'static str,
    method: Method,
    headers: &'static [(HeaderName, &'static str)],
    target: Target,
    config: Config,
    status: StatusCode,
    /// `Some`: the handler must be called once and see this expected state
    /// and `ignore_range`; `None`: the handler must not be called.
    handler_sees: Option<(Expected, bool)>,
}

#[tokio::test]
async fn every_evaluator_outcome_goes_through_the_precondition_layer() {
    let current = || Expected::ETag(v7());
    let cases = vec![
        OutcomeCase {
            name: "get with a matching If-None-Match is answered 304 by the layer",
            method: Method::GET,
            headers: &[(IF_NONE_MATCH, "\"v7\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::NOT_MODIFIED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "get with If-None-Match star on a present target is 304",
            method: Method::GET,
            headers: &[(IF_NONE_MATCH, "*")],
            target: present(),
            config: Config::Default,
            status: StatusCode::NOT_MODIFIED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "head with a weak If-None-Match of the current tag is 304",
            method: Method::HEAD,
            headers: &[(IF_NONE_MATCH, "W/\"v7\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::NOT_MODIFIED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "get with If-Modified-Since at the last modification is 304",
            method: Method::GET,
            headers: &[(IF_MODIFIED_SINCE, MODIFIED_HTTP)],
            target: present(),
            config: Config::Default,
            status: StatusCode::NOT_MODIFIED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "get with a stale If-None-Match reaches the handler",
            method: Method::GET,
            headers: &[(IF_NONE_MATCH, "\"v6\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((current(), false)),
        },
        OutcomeCase {
            name: "get without conditions reaches the handler unconditionally",
            method: Method::GET,
            headers: &[],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, false)),
        },
        OutcomeCase {
            name: "get with a stale If-Match is 412",
            method: Method::GET,
            headers: &[(IF_MATCH, "\"v6\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_FAILED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "put with a stale If-Match is 412",
            method: Method::PUT,
            headers: &[(IF_MATCH, "\"v6\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_FAILED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "put with a weak If-Match of the current tag is 412",
            method: Method::PUT,
            headers: &[(IF_MATCH, "W/\"v7\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_FAILED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "put with If-Match on an absent target is 412",
            method: Method::PUT,
            headers: &[(IF_MATCH, "\"v7\"")],
            target: Target::Absent,
            config: Config::Default,
            status: StatusCode::PRECONDITION_FAILED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "put with If-None-Match star on a present target is 412",
            method: Method::PUT,
            headers: &[(IF_NONE_MATCH, "*")],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_FAILED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "put without a precondition is 428",
            method: Method::PUT,
            headers: &[],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_REQUIRED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "patch without a precondition is 428",
            method: Method::PATCH,
            headers: &[],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_REQUIRED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "delete without a precondition is 428",
            method: Method::DELETE,
            headers: &[],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_REQUIRED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "put with only If-Unmodified-Since is 428 by default",
            method: Method::PUT,
            headers: &[(http::header::IF_UNMODIFIED_SINCE, MODIFIED_HTTP)],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_REQUIRED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "put with the current If-Match reaches the handler with that tag",
            method: Method::PUT,
            headers: &[(IF_MATCH, "\"v7\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((current(), false)),
        },
        OutcomeCase {
            name: "put with the current tag inside a list reaches the handler",
            method: Method::PUT,
            headers: &[(IF_MATCH, "\"v1\", \"v7\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((current(), false)),
        },
        OutcomeCase {
            name: "put with If-Match star reaches the handler expecting existence",
            method: Method::PUT,
            headers: &[(IF_MATCH, "*")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Exists, false)),
        },
        OutcomeCase {
            name: "put with If-None-Match star on an absent target expects it absent",
            method: Method::PUT,
            headers: &[(IF_NONE_MATCH, "*")],
            target: Target::Absent,
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Absent, false)),
        },
        OutcomeCase {
            name: "get on an absent target reaches the handler which answers 404",
            method: Method::GET,
            headers: &[(IF_MATCH, "\"v7\"")],
            target: Target::Absent,
            config: Config::Default,
            status: StatusCode::NOT_FOUND,
            handler_sees: Some((Expected::Absent, false)),
        },
        OutcomeCase {
            name: "delete on an absent target is 404 without reaching the handler",
            method: Method::DELETE,
            headers: &[],
            target: Target::Absent,
            config: Config::Default,
            status: StatusCode::NOT_FOUND,
            handler_sees: None,
        },
        OutcomeCase {
            name: "patch with If-Match on an absent target is 404 without reaching the handler",
            method: Method::PATCH,
            headers: &[(IF_MATCH, "\"v7\"")],
            target: Target::Absent,
            config: Config::Default,
            status: StatusCode::NOT_FOUND,
            handler_sees: None,
        },
        OutcomeCase {
            name: "get with range and a failing If-Range tells the handler to ignore range",
            method: Method::GET,
            headers: &[(RANGE, "bytes=0-9"), (IF_RANGE, "\"v6\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, true)),
        },
        OutcomeCase {
            name: "get with range and a weak If-Range tells the handler to ignore range",
            method: Method::GET,
            headers: &[(RANGE, "bytes=0-9"), (IF_RANGE, "W/\"v7\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, true)),
        },
        OutcomeCase {
            name: "get with range and a matching If-Range keeps the range",
            method: Method::GET,
            headers: &[(RANGE, "bytes=0-9"), (IF_RANGE, "\"v7\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, false)),
        },
        OutcomeCase {
            // Only true if the layer evaluates at the time of the request:
            // the date is a strong validator because it lies well before
            // now (RFC 9110 §8.8.2.2), not before an unset clock.
            name: "get with range and If-Range equal to an old Last-Modified keeps the range",
            method: Method::GET,
            headers: &[(RANGE, "bytes=0-9"), (IF_RANGE, MODIFIED_HTTP)],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, false)),
        },
        OutcomeCase {
            name: "get with range and If-Range with another date tells the handler to ignore range",
            method: Method::GET,
            headers: &[
                (RANGE, "bytes=0-9"),
                (IF_RANGE, "Sat, 05 Nov 1994 08:49:37 GMT"),
            ],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, true)),
        },
        // A Last-Modified in the future is compared as the time of the
        // request (RFC 9110 §8.8.2.1): only true if the layer reads the
        // clock for If-Modified-Since and If-Unmodified-Since.
        OutcomeCase {
            name: "a future Last-Modified counts as now: modified since 2001",
            method: Method::GET,
            headers: &[(IF_MODIFIED_SINCE, "Mon, 01 Jan 2001 00:00:00 GMT")],
            target: modified_in_the_future(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, false)),
        },
        OutcomeCase {
            name: "a future Last-Modified counts as now: not modified since 2099",
            method: Method::GET,
            headers: &[(IF_MODIFIED_SINCE, "Thu, 01 Jan 2099 00:00:00 GMT")],
            target: modified_in_the_future(),
            config: Config::Default,
            status: StatusCode::NOT_MODIFIED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "a future Last-Modified counts as now: a put unmodified since 2001 is 412",
            method: Method::PUT,
            headers: &[(IF_UNMODIFIED_SINCE, "Mon, 01 Jan 2001 00:00:00 GMT")],
            target: modified_in_the_future(),
            config: Config::OptIn,
            status: StatusCode::PRECONDITION_FAILED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "a future Last-Modified counts as now: a put unmodified since 2099 proceeds",
            method: Method::PUT,
            headers: &[(IF_UNMODIFIED_SINCE, "Thu, 01 Jan 2099 00:00:00 GMT")],
            target: modified_in_the_future(),
            config: Config::OptIn,
            status: StatusCode::OK,
            handler_sees: Some((current(), false)),
        },
        OutcomeCase {
            name: "opt in policy lets a put without If-Match reach the handler unconditionally",
            method: Method::PUT,
            headers: &[],
            target: present(),
            config: Config::OptIn,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, false)),
        },
        OutcomeCase {
            name: "opt in policy still refuses a stale If-Match",
            method: Method::PUT,
            headers: &[(IF_MATCH, "\"v6\"")],
            target: present(),
            config: Config::OptIn,
            status: StatusCode::PRECONDITION_FAILED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "post needs no precondition by default",
            method: Method::POST,
            headers: &[],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, false)),
        },
        OutcomeCase {
            name: "options ignores a stale If-Match",
            method: Method::OPTIONS,
            headers: &[(IF_MATCH, "\"v6\"")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, false)),
        },
        OutcomeCase {
            name: "a malformed If-Match is 412 by default",
            method: Method::PUT,
            headers: &[(IF_MATCH, "v7")],
            target: present(),
            config: Config::Default,
            status: StatusCode::PRECONDITION_FAILED,
            handler_sees: None,
        },
        OutcomeCase {
            name: "a malformed If-Match is 400 when the layer rejects malformed fields",
            method: Method::PUT,
            headers: &[(IF_MATCH, "v7")],
            target: present(),
            config: Config::RejectMalformed,
            status: StatusCode::BAD_REQUEST,
            handler_sees: None,
        },
        OutcomeCase {
            name: "a star inside an If-Match list is malformed and 400 when rejected",
            method: Method::PUT,
            headers: &[(IF_MATCH, "\"v7\", *")],
            target: present(),
            config: Config::RejectMalformed,
            status: StatusCode::BAD_REQUEST,
            handler_sees: None,
        },
        OutcomeCase {
            name: "a malformed If-None-Match on get is ignored by default",
            method: Method::GET,
            headers: &[(IF_NONE_MATCH, "v7")],
            target: present(),
            config: Config::Default,
            status: StatusCode::OK,
            handler_sees: Some((Expected::Any, false)),
        },
        OutcomeCase {
            name: "a malformed If-None-Match on get is 400 when the layer rejects malformed fields",
            method: Method::GET,
            headers: &[(IF_NONE_MATCH, "v7")],
            target: present(),
            config: Config::RejectMalformed,
            status: StatusCode::BAD_REQUEST,
            handler_sees: None,
        },
        OutcomeCase {
            name: "a resolver error is 503 for a read",
            method: Method::GET,
            headers: &[(IF_NONE_MATCH, "\"v7\"")],
            target: Target::Unreachable("database down"),
            config: Config::Default,
            status: StatusCode::SERVICE_UNAVAILABLE,
            handler_sees: None,
        },
        OutcomeCase {
            name: "a resolver error is 503 for a write",
            method: Method::PUT,
            headers: &[(IF_MATCH, "\"v7\"")],
            target: Target::Unreachable("database down"),
            config: Config::Default,
            status: StatusCode::SERVICE_UNAVAILABLE,
            handler_sees: None,
        },
    ];

    let mut failures = Vec::new();
    for case in cases {
        let handler = Handler::default();
        let svc = precondition_layer(case.target.clone(), case.config).layer(handler.service());
        let req = request(case.method.clone(), "/doc", case.headers, String::new());
        let res = svc.oneshot(req).await.unwrap();
        let status = res.status();
        let calls = handler.calls();
        let body = body_bytes(res.into_body()).await;
        let expected_calls = usize::from(case.handler_sees.is_some());
        if status != case.status
            || calls != expected_calls
            || (expected_calls == 1 && handler.seen() != case.handler_sees)
        {
            failures.push(format!(
                "{}: got {status} with {calls} handler call(s) seeing {:?} (body {:?}); \
                 want {} with {expected_calls} call(s) seeing {:?}",
                case.name,
                handler.seen(),
                String::from_utf8_lossy(&body),
                case.status,
                case.handler_sees,
            ));
        }
        if expected_calls == 1 {
            assert_eq!(body, "from the handler", "{}", case.name);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_layer_304_carries_the_validators_and_the_configured_headers_but_no_content_metadata() {
    let handler = Handler::default();
    let configured = header_map(&[
        (CACHE_CONTROL, "max-age=60"),
        (CONTENT_LOCATION, "/doc"),
        (EXPIRES, "Sun, 06 Nov 1994 08:50:37 GMT"),
        (VARY, "accept"),
        (VARY, "accept-encoding"),
        (HeaderName::from_static("x-custom"), "1"),
        // Content metadata, which RFC 9110 §15.4.5 says a 304 should not
        // carry, and a date that would be frozen into every 304.
        (CONTENT_TYPE, "application/json"),
        (CONTENT_LENGTH, "12"),
        (DATE, "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]);
    let svc = PreconditionLayer::new(resolver(present()))
        .not_modified_headers(configured)
        .layer(handler.service());
    let req = request(
        Method::GET,
        "/doc",
        &[(IF_NONE_MATCH, "\"v7\"")],
        String::new(),
    );
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(handler.calls(), 0);
    let expected = header_map(&[
        (CACHE_CONTROL, "max-age=60"),
        (CONTENT_LOCATION, "/doc"),
        (EXPIRES, "Sun, 06 Nov 1994 08:50:37 GMT"),
        (VARY, "accept"),
        (VARY, "accept-encoding"),
        (HeaderName::from_static("x-custom"), "1"),
        (ETAG, "\"v7\""),
        (LAST_MODIFIED, MODIFIED_HTTP),
    ]);
    assert_eq!(res.headers(), &expected);
    assert!(body_bytes(res.into_body()).await.is_empty());
}

#[tokio::test]
async fn the_layer_304_has_no_last_modified_when_the_resolver_gives_none() {
    let handler = Handler::default();
    let target = Target::Present(Validators::new(v7()));
    let svc = PreconditionLayer::new(resolver(target)).layer(handler.service());
    let req = request(Method::GET, "/doc", &[(IF_NONE_MATCH, "*")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(handler.calls(), 0);
    assert_eq!(res.headers(), &header_map(&[(ETAG, "\"v7\"")]));
}

#[tokio::test]
async fn a_stale_if_match_gets_a_412_problem_with_the_current_etag() {
    let handler = Handler::default();
    let svc = PreconditionLayer::new(resolver(present())).layer(handler.service());
    let req = request(Method::PUT, "/doc", &[(IF_MATCH, "\"v6\"")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(handler.calls(), 0);
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    assert_eq!(res.headers()[ETAG], "\"v7\"");
    let body = body_bytes(res.into_body()).await;
    let json = problem(&body);
    assert_eq!(json["status"], 412);
    assert_eq!(json["etag"], "\"v7\"");
    // Exactly the core builder's response, not a re-implementation.
    let Target::Present(current) = present() else {
        unreachable!()
    };
    let core = ProblemTexts::default().precondition_failed(Some(&current), Failed::IfMatch);
    assert_eq!(body, core.body().as_bytes());
}

#[tokio::test]
async fn a_write_without_precondition_gets_a_428_problem() {
    let handler = Handler::default();
    let svc = PreconditionLayer::new(resolver(present())).layer(handler.service());
    let req = request(Method::PUT, "/doc", &[], "new".to_owned());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(handler.calls(), 0);
    assert_eq!(res.status(), StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let body = body_bytes(res.into_body()).await;
    assert_eq!(problem(&body)["status"], 428);
    assert_eq!(
        body,
        ProblemTexts::default()
            .precondition_required()
            .body()
            .as_bytes()
    );
}

#[tokio::test]
async fn a_rejected_malformed_if_match_gets_a_400_problem_naming_the_field() {
    let handler = Handler::default();
    let svc = PreconditionLayer::new(resolver(present()))
        .reject_malformed(true)
        .layer(handler.service());
    let req = request(Method::PUT, "/doc", &[(IF_MATCH, "v7")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(handler.calls(), 0);
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let json = problem(&body_bytes(res.into_body()).await);
    assert_eq!(json["status"], 400);
    assert!(
        json["detail"].as_str().unwrap().contains("If-Match"),
        "{json}"
    );
}

#[tokio::test]
async fn the_precondition_layer_answers_head_without_content_but_with_the_get_length() {
    let cases = [
        (
            "a stale If-Match",
            present(),
            Config::Default,
            (IF_MATCH, "\"v6\""),
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            "an unreachable store",
            Target::Unreachable("database down"),
            Config::Default,
            (IF_MATCH, "\"v6\""),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            "a rejected malformed If-Match",
            present(),
            Config::RejectMalformed,
            (IF_MATCH, "v7"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a matching If-None-Match",
            present(),
            Config::Default,
            (IF_NONE_MATCH, "\"v7\""),
            StatusCode::NOT_MODIFIED,
        ),
    ];
    for (name, target, config, condition, status) in cases {
        let handler = Handler::default();
        let svc = precondition_layer(target, config).layer(handler.service());
        let req = |method| {
            request(
                method,
                "/doc",
                std::slice::from_ref(&condition),
                String::new(),
            )
        };
        let get = svc.clone().oneshot(req(Method::GET)).await.unwrap();
        let head = svc.oneshot(req(Method::HEAD)).await.unwrap();
        assert_eq!(handler.calls(), 0, "{name}");
        assert_eq!(get.status(), status, "{name}");
        assert_eq!(head.status(), status, "{name}");
        let get_body = body_bytes(get.into_body()).await;
        let length = head.headers().get(CONTENT_LENGTH).cloned();
        assert!(body_bytes(head.into_body()).await.is_empty(), "{name}");
        if status == StatusCode::NOT_MODIFIED {
            // §8.6: a 304's length could only be the 200's, which the
            // layer does not know.
            assert_eq!(length, None, "{name}");
        } else {
            // §9.3.2: no content, the length a GET would have had.
            assert!(!get_body.is_empty(), "{name}");
            assert_eq!(length.unwrap(), get_body.len().to_string(), "{name}");
        }
    }
    // A conflict the handler reports becomes the layer's 412, for HEAD too.
    let svc =
        PreconditionLayer::new(resolver(present())).layer(service_fn(|_: Request<String>| {
            ready(Ok::<_, Infallible>(conflict_response::<String>(
                Conflict::moved(&ETag::from_version(8)),
            )))
        }));
    let req = |method| request(method, "/doc", &[(IF_MATCH, "\"v7\"")], String::new());
    let get = svc.clone().oneshot(req(Method::GET)).await.unwrap();
    let head = svc.oneshot(req(Method::HEAD)).await.unwrap();
    assert_eq!(head.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(head.headers()[ETAG], "\"v8\"");
    let get_body = body_bytes(get.into_body()).await;
    assert_eq!(head.headers()[CONTENT_LENGTH], get_body.len().to_string());
    assert!(body_bytes(head.into_body()).await.is_empty());
}

#[tokio::test]
async fn a_resolver_error_gets_a_503_problem_with_the_error_in_the_extensions() {
    let handler = Handler::default();
    let svc = PreconditionLayer::new(resolver(Target::Unreachable("database down")))
        .layer(handler.service());
    let req = request(Method::PUT, "/doc", &[(IF_MATCH, "\"v7\"")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(handler.calls(), 0);
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    assert!(!res.headers().contains_key(ETAG));
    let err = res
        .extensions()
        .get::<ResolveError>()
        .expect("ResolveError in the extensions");
    assert_eq!(err.error().to_string(), "database down");
    // A logger gets the layer's words and the resolver's error as the cause.
    let cause = std::error::Error::source(err).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("database down"));
    assert!(!err.to_string().is_empty());
    let json = problem(&body_bytes(res.into_body()).await);
    assert_eq!(json["status"], 503);
}

#[tokio::test]
async fn a_store_failure_the_handler_reports_gets_the_layers_503() {
    let texts = ProblemTexts::default().set(
        ProblemKind::Unavailable,
        ProblemText::new(
            "urn:example:down",
            "Try again shortly",
            "The item store is down.",
        ),
    );
    let svc = PreconditionLayer::new(resolver(present()))
        .texts(texts)
        .layer(service_fn(|_: Request<String>| {
            ready(Ok::<_, Infallible>(unavailable_response::<String>(
                std::io::Error::other("connection refused"),
            )))
        }));
    let req = |method| request(method, "/doc", &[(IF_MATCH, "\"v7\"")], String::new());
    let res = svc.clone().oneshot(req(Method::PUT)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let logged = res
        .extensions()
        .get::<StoreUnavailable>()
        .expect("the store's error in the extensions");
    assert_eq!(logged.error().to_string(), "connection refused");
    let cause = std::error::Error::source(logged).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("connection refused"));
    let body = body_bytes(res.into_body()).await;
    let json = problem(&body);
    assert_eq!(json["status"], 503);
    assert_eq!(json["type"], "urn:example:down");
    assert_eq!(json["title"], "Try again shortly");
    assert!(!String::from_utf8_lossy(&body).contains("connection refused"));
    // HEAD: the same answer without content (RFC 9110 §9.3.2).
    let head = svc.oneshot(req(Method::HEAD)).await.unwrap();
    assert_eq!(head.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(head.headers()[CONTENT_LENGTH], body.len().to_string());
    assert!(body_bytes(head.into_body()).await.is_empty());
}

/// A write whose store failed may have landed (a timeout, a lost answer):
/// through `?` it becomes the layer's 503 that says so and tells the client
/// to look before sending the change again, not the "nothing was changed"
/// of a failed read.
#[tokio::test]
async fn a_write_that_failed_with_its_outcome_unknown_gets_the_unconfirmed_503() {
    /// A handler that writes with `?`.
    fn put(
        written: Result<(), ifmatch::WriteError<std::io::Error>>,
    ) -> Result<Response<String>, Box<Response<String>>> {
        written.map_err(|e| Box::new(Response::from(e)))?;
        Ok(Response::new(String::new()))
    }
    let svc =
        PreconditionLayer::new(resolver(present())).layer(service_fn(|_: Request<String>| async {
            let timed_out = ifmatch::WriteError::Store(std::io::Error::other("timed out"));
            Ok::<_, Infallible>(put(Err(timed_out)).unwrap_or_else(|refusal| *refusal))
        }));
    let req = request(Method::PUT, "/doc", &[(IF_MATCH, "\"v7\"")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let logged = res.extensions().get::<StoreUnavailable>().unwrap();
    assert!(logged.unconfirmed());
    assert_eq!(logged.error().to_string(), "timed out");
    let json = problem(&body_bytes(res.into_body()).await);
    let texts = ProblemTexts::default();
    assert_eq!(json["type"], *texts.get(ProblemKind::Unconfirmed).type_uri);
    assert_ne!(
        json["type"],
        *texts.get(ProblemKind::Unavailable).type_uri,
        "a client must tell an unknown outcome from nothing changed"
    );
    let detail = json["detail"].as_str().unwrap();
    assert!(detail.contains("may or may not"), "{detail}");
    assert!(!detail.contains("nothing was changed"), "{detail}");

    // The service's own text for it, as for every other kind.
    let texts = ProblemTexts::default().set(
        ProblemKind::Unconfirmed,
        ProblemText::new(
            "urn:example:unconfirmed",
            "Not confirmed",
            "Check the item before saving again.",
        ),
    );
    let svc = PreconditionLayer::new(resolver(present()))
        .texts(texts)
        .layer(service_fn(|_: Request<String>| async {
            let timed_out = ifmatch::WriteError::Store(std::io::Error::other("timed out"));
            Ok::<_, Infallible>(put(Err(timed_out)).unwrap_or_else(|refusal| *refusal))
        }));
    let req = request(Method::PUT, "/doc", &[(IF_MATCH, "\"v7\"")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let json = problem(&body_bytes(res.into_body()).await);
    assert_eq!(json["type"], "urn:example:unconfirmed");
    assert_eq!(json["detail"], "Check the item before saving again.");
}

/// Only the `busy_response` marker becomes the layer's 409: a 409 the
/// handler answers itself (a duplicate name, say) reaches the client as the
/// handler wrote it.
#[tokio::test]
async fn a_handlers_own_409_passes_and_only_the_busy_marker_becomes_the_layers_409() {
    let own = service_fn(|_: Request<String>| {
        ready(Ok::<_, Infallible>(
            Response::builder()
                .status(StatusCode::CONFLICT)
                .header(CONTENT_TYPE, "application/json")
                .body(r#"{"error":"name taken"}"#.to_owned())
                .unwrap(),
        ))
    });
    let svc = PreconditionLayer::new(resolver(present())).layer(own);
    let req = request(Method::PUT, "/doc", &[(IF_MATCH, "\"v7\"")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(
        body_bytes(res.into_body()).await,
        &br#"{"error":"name taken"}"#[..]
    );

    let busy =
        service_fn(|_: Request<String>| ready(Ok::<_, Infallible>(busy_response::<String>())));
    let svc = PreconditionLayer::new(resolver(present())).layer(busy);
    let req = request(Method::PATCH, "/doc", &[(IF_MATCH, "*")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let json = problem(&body_bytes(res.into_body()).await);
    assert_eq!(
        json["type"],
        *ProblemTexts::default().get(ProblemKind::Busy).type_uri
    );
}

#[tokio::test]
async fn the_layer_uses_its_configured_problem_texts() {
    let handler = Handler::default();
    let texts = ProblemTexts::default().set(
        ProblemKind::Required,
        ProblemText::new(
            "urn:example:unconditional",
            "Send If-Match",
            "Reload and retry.",
        ),
    );
    let svc = PreconditionLayer::new(resolver(present()))
        .texts(texts)
        .layer(handler.service());
    let req = request(Method::DELETE, "/doc", &[], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_REQUIRED);
    let json = problem(&body_bytes(res.into_body()).await);
    assert_eq!(json["type"], "urn:example:unconditional");
    assert_eq!(json["title"], "Send If-Match");
    assert_eq!(json["detail"], "Reload and retry.");
}

#[tokio::test]
async fn a_proceeding_request_gets_the_handler_response_untouched() {
    let handler = Handler::default();
    let svc = PreconditionLayer::new(resolver(present())).layer(handler.service());
    let req = request(Method::PUT, "/doc", &[(IF_MATCH, "\"v7\"")], String::new());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(handler.calls(), 1);
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-handler"], "yes");
    assert_eq!(body_bytes(res.into_body()).await, "from the handler");
}

/// What another writer does between the layer's resolve and the handler's
/// write.
#[derive(Clone, Copy, Debug)]
enum Interference {
    Overwrite,
    Delete,
}

struct ConflictCase {
    name: &'static str,
    interference: Interference,
    texts: ProblemTexts,
}

#[tokio::test]
async fn a_forwarding_resolver_hands_the_evaluated_state_to_the_handler() {
    let store: Arc<MemoryStore<String, String>> = Arc::new(MemoryStore::new());
    let v1 = store
        .put("/doc".to_owned(), &Expected::Absent, "first".to_owned())
        .unwrap();
    let lookups = Arc::new(AtomicUsize::new(0));
    let resolver = {
        let store = Arc::clone(&store);
        let lookups = Arc::clone(&lookups);
        move |parts: &Parts| {
            lookups.fetch_add(1, Ordering::SeqCst);
            ready(Ok::<_, Infallible>(store.get(parts.uri.path())))
        }
    };
    type Seen = Arc<Mutex<Vec<Option<Resolved<Stored<String>>>>>>;
    let seen: Seen = Arc::default();
    let inner = {
        let seen = Arc::clone(&seen);
        service_fn(move |req: Request<String>| {
            let resolved = req.extensions().get::<Resolved<Stored<String>>>().cloned();
            seen.lock().unwrap().push(resolved);
            ready(Ok::<_, Infallible>(Response::new(String::new())))
        })
    };
    let forwarding = PreconditionLayer::new(ForwardResolved(resolver.clone())).layer(inner.clone());
    let if_match = v1.etag().to_string();
    let put = request(
        Method::PUT,
        "/doc",
        &[(IF_MATCH, if_match.as_str())],
        String::new(),
    );
    forwarding.clone().oneshot(put).await.unwrap();
    let get = request(Method::GET, "/missing", &[], String::new());
    forwarding.oneshot(get).await.unwrap();
    // A request the layer answers itself reaches no handler.
    let stale = request(Method::PUT, "/doc", &[(IF_MATCH, "\"v0\"")], String::new());
    let res = PreconditionLayer::new(ForwardResolved(resolver.clone()))
        .layer(inner.clone())
        .oneshot(stale)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    // Without the wrapper, nothing is handed on.
    let plain = request(Method::GET, "/doc", &[], String::new());
    PreconditionLayer::new(resolver)
        .layer(inner)
        .oneshot(plain)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [Some(Resolved(Some(v1))), Some(Resolved(None)), None],
        "what each handler call found"
    );
    // One lookup per request: the handler loaded nothing itself.
    assert_eq!(lookups.load(Ordering::SeqCst), 4);
}

/// A handler in the style `Response::from(WriteError)` allows: its writes
/// end in `?`. Before writing, it lets another writer land whatever
/// `interleaved` says (`Some(value)`: a write, `None`: a delete).
async fn write_with_question_mark(
    store: &MemoryStore<String, String>,
    req: Request<String>,
    interleaved: Option<&str>,
) -> Result<Response<String>, Response<String>> {
    use ifmatch::{ConditionalStore, WriteError};
    let pre = req.extensions().get::<Precondition>().unwrap().clone();
    let key = "doc".to_owned();
    match interleaved {
        Some(value) => drop(store.put(key.clone(), &Expected::Any, value.to_owned())),
        None => drop(store.delete(&key, &Expected::Any)),
    }
    if req.method() == Method::DELETE {
        store.remove(&key, pre.expected()).await?;
        return Ok(Response::new(String::new()));
    }
    if req.body() == "fail" {
        Err(WriteError::Store(std::io::Error::other("disk full")))?;
    }
    if req.body() == "rolled back" {
        Err(WriteError::NotWritten(std::io::Error::other(
            "deadlock victim",
        )))?;
    }
    let written = store.store(&key, pre.expected(), req.into_body()).await?;
    Ok(Response::new(written.into_stored().into_value()))
}

#[tokio::test]
async fn a_write_error_converted_with_question_mark_gets_the_layers_answer() {
    let store: Arc<MemoryStore<String, String>> = Arc::new(MemoryStore::new());
    let v1 = store
        .put("doc".to_owned(), &Expected::Absent, "first".to_owned())
        .unwrap();
    let svc = |policy: Policy, interleaved: Option<&'static str>| {
        let resolve = {
            let store = Arc::clone(&store);
            move |_: &Parts| ready(Ok::<_, Infallible>(store.get("doc")))
        };
        let store = Arc::clone(&store);
        PreconditionLayer::new(resolve)
            .policy(policy)
            .layer(service_fn(move |req: Request<String>| {
                let store = Arc::clone(&store);
                async move {
                    let res = write_with_question_mark(&store, req, interleaved).await;
                    Ok::<_, Infallible>(res.unwrap_or_else(|refused| refused))
                }
            }))
    };
    // A PUT under `condition`, with `interleaved` landing before its write.
    let put = |interleaved, condition: (HeaderName, &str), body: &str| {
        svc(Policy::strict(), interleaved).oneshot(request(
            Method::PUT,
            "/doc",
            &[condition],
            body.to_owned(),
        ))
    };

    // A write that lands between the check and the write: the 412 of a
    // failed precondition, with the tag the other writer left.
    let tag = v1.etag().to_string();
    let res = put(Some("second"), (IF_MATCH, &tag), "mine").await.unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let now = store.get("doc").unwrap();
    assert_eq!(now.value(), "second");
    assert_eq!(etag_header(&res).as_ref(), Some(now.etag()));
    let json = problem(&body_bytes(res.into_body()).await);
    assert_eq!(json["status"], 412);
    assert_eq!(json["etag"], now.etag().to_string());

    // A store failure: the layer's 503, with the error kept for logging.
    let tag = now.etag().to_string();
    let res = put(Some("second"), (IF_MATCH, &tag), "fail").await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let logged = res.extensions().get::<StoreUnavailable>().unwrap();
    assert_eq!(logged.error().to_string(), "disk full");
    assert!(logged.unconfirmed());
    let unknown = problem(&body_bytes(res.into_body()).await);
    assert!(
        unknown["detail"]
            .as_str()
            .unwrap()
            .contains("may or may not have been applied"),
        "{unknown}"
    );

    // A failure the store knows wrote nothing: the 503 that says so.
    let tag = store.get("doc").unwrap().etag().to_string();
    let res = put(Some("second"), (IF_MATCH, &tag), "rolled back")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let logged = res.extensions().get::<StoreUnavailable>().unwrap();
    assert_eq!(logged.error().to_string(), "deadlock victim");
    assert!(!logged.unconfirmed());
    let nothing = problem(&body_bytes(res.into_body()).await);
    assert!(
        nothing["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{nothing}"
    );
    assert_eq!(store.get("doc").unwrap().value(), "second");

    // A PUT under If-Match whose target another client deleted meanwhile:
    // the 412 for a target that is gone.
    let tag = store.get("doc").unwrap().etag().to_string();
    let res = put(None, (IF_MATCH, &tag), "mine").await.unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert!(etag_header(&res).is_none());
    let gone = problem(&body_bytes(res.into_body()).await);
    assert_eq!(gone["title"], "This item no longer exists");
    assert!(store.get("doc").is_none());

    // A create under If-None-Match: * that another create beat: the 412
    // for a target that already exists, with its tag.
    let res = put(Some("theirs"), (IF_NONE_MATCH, "*"), "mine")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let now = store.get("doc").unwrap();
    assert_eq!(now.value(), "theirs");
    assert_eq!(etag_header(&res).as_ref(), Some(now.etag()));
    let exists = problem(&body_bytes(res.into_body()).await);
    assert_eq!(exists["title"], "This item already exists");
    assert_ne!(exists["type"], gone["type"]);

    // An opt-in DELETE without a precondition whose target another DELETE
    // removed first: 404, as it had no condition to fail.
    let res = svc(Policy::opt_in(), None)
        .oneshot(request(Method::DELETE, "/doc", &[], String::new()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(store.get("doc").is_none());
}

/// A store in which another client's write lands right after each of the
/// first reads (`Some(value)`: a write, `None`: a delete), as it would
/// between a PATCH's read and its write.
struct Racing {
    inner: MemoryStore<String, String>,
    writes: Mutex<VecDeque<Option<&'static str>>>,
}

impl ifmatch::ConditionalStore<String> for Racing {
    type Value = String;
    type Error = Infallible;

    async fn load(&self, key: &String) -> Result<Option<ifmatch::Stored<String>>, Infallible> {
        let read = self.inner.get(key);
        match self.writes.lock().unwrap().pop_front() {
            Some(Some(value)) => drop(self.inner.put(
                key.clone(),
                &Expected::Any,
                value.to_owned(),
            )),
            Some(None) => drop(self.inner.delete(key, &Expected::Any)),
            None => {}
        }
        Ok(read)
    }

    async fn store(
        &self,
        key: &String,
        expected: &Expected,
        value: String,
    ) -> Result<ifmatch::Written<String>, ifmatch::WriteError<Infallible>> {
        self.inner.store(key, expected, value).await
    }

    async fn remove(
        &self,
        key: &String,
        expected: &Expected,
    ) -> Result<ifmatch::Stored<String>, ifmatch::WriteError<Infallible>> {
        self.inner.remove(key, expected).await
    }
}

#[tokio::test]
async fn a_modify_converted_with_question_mark_gets_the_layers_answer() {
    use ifmatch::ConditionalStore;
    // A PATCH that appends its body to the document, under `policy`, with
    // `writes` landing after its first reads. A body of "refuse" is a patch
    // that does not apply: its own 422.
    let patch = |policy: Policy,
                 writes: Vec<Option<&'static str>>,
                 condition: &[(HeaderName, &str)],
                 body: &str| {
        let store = Arc::new(Racing {
            inner: MemoryStore::new(),
            writes: Mutex::new(writes.into()),
        });
        store
            .inner
            .put("doc".to_owned(), &Expected::Absent, "first".to_owned())
            .unwrap();
        let resolve = {
            let store = Arc::clone(&store);
            move |_: &Parts| ready(Ok::<_, Infallible>(store.inner.get("doc")))
        };
        let handler = {
            let store = Arc::clone(&store);
            service_fn(move |req: Request<String>| {
                let store = Arc::clone(&store);
                async move {
                    let pre = req.extensions().get::<Precondition>().unwrap().clone();
                    let body = req.into_body();
                    let append = |doc: String| {
                        if body == "refuse" {
                            let mut res = Response::new("That patch does not apply.".to_owned());
                            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                            return Err(Box::new(res));
                        }
                        Ok(doc + &body)
                    };
                    let res: Result<Response<String>, Response<String>> = async {
                        let key = "doc".to_owned();
                        let written = store.modify(&key, pre.expected(), 3, append).await?;
                        Ok(Response::new(written.into_stored().into_value()))
                    }
                    .await;
                    Ok::<_, Infallible>(res.unwrap_or_else(|refused| refused))
                }
            })
        };
        let req = request(Method::PATCH, "/doc", condition, body.to_owned());
        let svc = PreconditionLayer::new(resolve)
            .policy(policy)
            .layer(handler);
        (store, svc.oneshot(req))
    };
    let star = [(IF_MATCH, "*")];

    // `If-Match: *` lost one race: applied again on top of the other write.
    let (store, res) = patch(Policy::strict(), vec![Some("theirs")], &star, "+mine");
    let res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(store.inner.get("doc").unwrap().value(), "theirs+mine");

    // Lost every race: the layer's 409, and the patch is not written.
    let writes = vec![Some("a"), Some("b"), Some("c")];
    let (store, res) = patch(Policy::strict(), writes, &star, "+mine");
    let res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    assert!(etag_header(&res).is_none());
    let busy = problem(&body_bytes(res.into_body()).await);
    assert_eq!(busy["status"], 409);
    assert_eq!(busy["title"], "This item kept changing");
    assert_eq!(store.inner.get("doc").unwrap().value(), "c");

    // A version named: the race is the client's own 412, with the tag the
    // other write left, and the patch is not applied to that version.
    let v1 = ETag::from_version(1).to_string();
    let (store, res) = patch(
        Policy::strict(),
        vec![Some("theirs")],
        &[(IF_MATCH, &v1)],
        "+mine",
    );
    let res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let now = store.inner.get("doc").unwrap();
    assert_eq!(now.value(), "theirs");
    assert_eq!(etag_header(&res).as_ref(), Some(now.etag()));

    // No precondition (opt-in mode), and the document deleted between the
    // read and the write: 404, and nothing is created.
    let (store, res) = patch(Policy::opt_in(), vec![None], &[], "+mine");
    let res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    assert!(store.inner.get("doc").is_none());

    // A patch that does not apply: the change's own answer passes the
    // layer untouched, and nothing is written.
    let (store, res) = patch(Policy::strict(), vec![], &star, "refuse");
    let res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body_bytes(res.into_body()).await,
        "That patch does not apply."
    );
    assert_eq!(
        store.inner.get("doc").unwrap().etag(),
        &ETag::from_version(1)
    );

    // A read that failed: the layer's 503 marker, its error kept for
    // logging; nothing was written, for certain.
    let down =
        ifmatch::ModifyError::<Box<Response<String>>, _>::Read(std::io::Error::other("down"));
    let res = Response::<String>::from(down);
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let logged = res.extensions().get::<StoreUnavailable>().unwrap();
    assert_eq!(logged.error().to_string(), "down");
    assert!(!logged.unconfirmed());
    // A write that failed may have landed: the unconfirmed marker.
    let lost = ifmatch::ModifyError::<Box<Response<String>>, _>::Write(ifmatch::WriteError::Store(
        std::io::Error::other("no answer"),
    ));
    let res = Response::<String>::from(lost);
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        res.extensions()
            .get::<StoreUnavailable>()
            .unwrap()
            .unconfirmed()
    );

    // The change's refusal is the response it names, unboxed or from a
    // type of the service's own.
    struct Unknown(&'static str);
    impl IntoRefusal<String> for Unknown {
        fn into_refusal(self) -> Response<String> {
            let mut res = Response::new(format!("No field `{}`.", self.0));
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            res
        }
    }
    let refused = ifmatch::ModifyError::<_, std::io::Error>::Change(Unknown("colour"));
    let res = Response::<String>::from(refused);
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.body(), "No field `colour`.");
    let gone = Response::builder()
        .status(StatusCode::GONE)
        .body("Gone.".to_owned());
    let refused = ifmatch::ModifyError::<_, std::io::Error>::Change(gone.unwrap());
    let res = Response::<String>::from(refused);
    assert_eq!(
        (res.status(), res.body().as_str()),
        (StatusCode::GONE, "Gone.")
    );
}

#[tokio::test]
async fn an_unconditional_delete_that_loses_a_race_gets_404_not_412() {
    // Opt-in mode: two DELETEs without a precondition both pass the layer;
    // the second finds nothing to delete. It had no condition to fail.
    let store: Arc<MemoryStore<String, String>> = Arc::new(MemoryStore::new());
    store
        .put("doc".to_owned(), &Expected::Absent, "first".to_owned())
        .unwrap();
    let resolve = {
        let store = Arc::clone(&store);
        move |_: &Parts| ready(Ok::<_, Infallible>(store.get("doc")))
    };
    let inner = {
        let store = Arc::clone(&store);
        service_fn(move |req: Request<String>| {
            let pre = req.extensions().get::<Precondition>().unwrap().clone();
            // The other DELETE lands after the layer's check.
            store.delete("doc", &Expected::Any).unwrap();
            let res = match store.delete("doc", pre.expected()) {
                Ok(_) => Response::new(String::new()),
                Err(conflict) => conflict_response(conflict),
            };
            ready(Ok::<_, Infallible>(res))
        })
    };
    let svc = PreconditionLayer::new(resolve)
        .policy(Policy::opt_in())
        .layer(inner);
    let res = svc
        .oneshot(request(Method::DELETE, "/doc", &[], String::new()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let json = problem(&body_bytes(res.into_body()).await);
    assert_eq!(json["status"], 404);
    assert!(
        !json["detail"].as_str().unwrap().contains("If-Match"),
        "{json}"
    );
}

/// What a layer further out (logging, metrics) finds on a response: the
/// kind of problem the layers answered, never a kind on the handler's own.
#[tokio::test]
async fn the_layers_problem_responses_carry_their_kind_for_outer_layers() {
    fn kind<B>(res: &Response<B>) -> Option<ProblemKind> {
        res.extensions().get::<ProblemKind>().copied()
    }
    let put = |headers| request(Method::PUT, "/", headers, String::new());

    let handler = Handler::default();
    let svc = precondition_layer(present(), Config::Default).layer(handler.service());
    let blind = svc.clone().oneshot(put(&[])).await.unwrap();
    assert_eq!(
        (blind.status(), kind(&blind)),
        (
            StatusCode::PRECONDITION_REQUIRED,
            Some(ProblemKind::Required)
        )
    );
    let stale = svc
        .clone()
        .oneshot(put(&[(IF_MATCH, "\"v6\"")]))
        .await
        .unwrap();
    assert_eq!(
        (stale.status(), kind(&stale)),
        (StatusCode::PRECONDITION_FAILED, Some(ProblemKind::Changed))
    );
    let weak = svc
        .clone()
        .oneshot(put(&[(IF_MATCH, "W/\"v7\"")]))
        .await
        .unwrap();
    assert_eq!(kind(&weak), Some(ProblemKind::Unmatchable));
    let passed = svc.oneshot(put(&[(IF_MATCH, "\"v7\"")])).await.unwrap();
    assert_eq!((passed.status(), kind(&passed)), (StatusCode::OK, None));
    assert_eq!(handler.calls(), 1);

    // A store's conflict, reported by the handler, becomes the layer's 412.
    let reporting = service_fn(|_: Request<String>| {
        ready(Ok::<_, Infallible>(conflict_response::<String>(
            Conflict::moved(&ETag::from_version(8)),
        )))
    });
    let svc = precondition_layer(present(), Config::Default).layer(reporting);
    let lost = svc.oneshot(put(&[(IF_MATCH, "\"v7\"")])).await.unwrap();
    assert_eq!(
        (lost.status(), kind(&lost)),
        (StatusCode::PRECONDITION_FAILED, Some(ProblemKind::Changed))
    );

    // `ETagLayer`'s own 412 for a GET under a stale `If-Match`, and for a
    // HEAD, whose content the layer drops.
    for method in [Method::GET, Method::HEAD] {
        let (res, _) = through_etag_layer(
            None,
            Reply::ok(TestBody::chunked(b"body", 4)),
            request(method.clone(), "/", &[(IF_MATCH, "\"other\"")], ()),
        )
        .await;
        assert_eq!(
            (res.status(), kind(&res)),
            (StatusCode::PRECONDITION_FAILED, Some(ProblemKind::Changed)),
            "{method}"
        );
    }

    // The layer's other answers; to a HEAD, each is rebuilt without
    // content and keeps its kind.
    let answered = |target, config, reply: fn() -> Response<String>| {
        precondition_layer(target, config).layer(service_fn(move |_: Request<String>| {
            ready(Ok::<_, Infallible>(reply()))
        }))
    };
    fn ok() -> Response<String> {
        Response::new(String::new())
    }
    struct Case {
        target: Target,
        config: Config,
        reply: fn() -> Response<String>,
        method: Method,
        condition: (HeaderName, &'static str),
        want: (StatusCode, Option<ProblemKind>),
    }
    let cases = [
        Case {
            target: present(),
            config: Config::Default,
            reply: ok,
            method: Method::HEAD,
            condition: (IF_MATCH, "\"v6\""),
            want: (StatusCode::PRECONDITION_FAILED, Some(ProblemKind::Changed)),
        },
        Case {
            target: Target::Unreachable("down"),
            config: Config::Default,
            reply: ok,
            method: Method::HEAD,
            condition: (IF_MATCH, "\"v7\""),
            want: (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(ProblemKind::Unavailable),
            ),
        },
        Case {
            target: Target::Absent,
            config: Config::Default,
            reply: ok,
            method: Method::DELETE,
            condition: (IF_MATCH, "\"v7\""),
            want: (StatusCode::NOT_FOUND, Some(ProblemKind::NotFound)),
        },
        Case {
            target: present(),
            config: Config::RejectMalformed,
            reply: ok,
            method: Method::PUT,
            condition: (IF_MATCH, "v7"),
            want: (StatusCode::BAD_REQUEST, Some(ProblemKind::Malformed)),
        },
        Case {
            target: present(),
            config: Config::Default,
            reply: || unavailable_response(std::io::Error::other("down")),
            method: Method::HEAD,
            condition: (IF_MATCH, "\"v7\""),
            want: (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(ProblemKind::Unavailable),
            ),
        },
        Case {
            target: present(),
            config: Config::Default,
            reply: busy_response,
            method: Method::PATCH,
            condition: (IF_MATCH, "*"),
            want: (StatusCode::CONFLICT, Some(ProblemKind::Busy)),
        },
        // The handler's own 409 (not the busy marker) is its own.
        Case {
            target: present(),
            config: Config::Default,
            reply: || {
                Response::builder()
                    .status(StatusCode::CONFLICT)
                    .body(String::new())
                    .unwrap()
            },
            method: Method::PATCH,
            condition: (IF_MATCH, "*"),
            want: (StatusCode::CONFLICT, None),
        },
    ];
    for case in cases {
        let Case {
            target,
            config,
            reply,
            method,
            condition,
            want,
        } = case;
        let req = request(
            method.clone(),
            "/",
            std::slice::from_ref(&condition),
            String::new(),
        );
        let res = answered(target, config, reply).oneshot(req).await.unwrap();
        assert_eq!((res.status(), kind(&res)), want, "{method} {condition:?}");
    }
}

/// A response the layers answer in place of the handler's keeps that
/// response's extensions (a request id for the log line a layer further out
/// writes), under the layer's own.
#[tokio::test]
async fn the_layers_answers_keep_the_extensions_of_the_response_they_replace() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct RequestId(u32);
    fn tagged<B>(mut res: Response<B>) -> Response<B> {
        res.extensions_mut().insert(RequestId(7));
        // Not the kind of the answer: the layer's own kind wins.
        res.extensions_mut().insert(ProblemKind::NotFound);
        res
    }
    fn seen<B>(res: &Response<B>) -> (StatusCode, Option<RequestId>, Option<ProblemKind>) {
        let ext = res.extensions();
        (
            res.status(),
            ext.get::<RequestId>().copied(),
            ext.get::<ProblemKind>().copied(),
        )
    }

    // `PreconditionLayer` replacing a handler's reported outcome.
    type Report = fn() -> Response<String>;
    let reports: [(Report, StatusCode, ProblemKind); 4] = [
        (
            || conflict_response(Conflict::moved(&ETag::from_version(8))),
            StatusCode::PRECONDITION_FAILED,
            ProblemKind::Changed,
        ),
        (
            || unavailable_response(std::io::Error::other("deadlock")),
            StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::Unavailable,
        ),
        (
            || ifmatch::middleware::unconfirmed_response(std::io::Error::other("lost")),
            StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::Unconfirmed,
        ),
        (busy_response, StatusCode::CONFLICT, ProblemKind::Busy),
    ];
    for (report, status, want) in reports {
        for method in [Method::PUT, Method::HEAD] {
            let handler =
                service_fn(move |_: Request<String>| ready(Ok::<_, Infallible>(tagged(report()))));
            let svc = precondition_layer(present(), Config::Default).layer(handler);
            let req = request(method.clone(), "/", &[(IF_MATCH, "\"v7\"")], String::new());
            let res = svc.oneshot(req).await.unwrap();
            assert_eq!(
                seen(&res),
                (status, Some(RequestId(7)), Some(want)),
                "{method} {status}"
            );
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert!(res.extensions().get::<StoreUnavailable>().is_some());
            }
        }
    }

    // `ETagLayer` answering a GET or HEAD under a stale `If-Match`.
    for method in [Method::GET, Method::HEAD] {
        let handler = service_fn(|_: Request<()>| {
            ready(Ok::<_, Infallible>(tagged(Response::new(
                TestBody::chunked(b"body", 4),
            ))))
        });
        let req = request(method.clone(), "/", &[(IF_MATCH, "\"other\"")], ());
        let res = ETagLayer::new().layer(handler).oneshot(req).await.unwrap();
        assert_eq!(
            seen(&res),
            (
                StatusCode::PRECONDITION_FAILED,
                Some(RequestId(7)),
                Some(ProblemKind::Changed)
            ),
            "{method}"
        );
    }
}

#[tokio::test]
async fn a_conflict_reported_by_the_handler_becomes_the_same_412_as_a_failed_precondition() {
    let custom = ProblemTexts::default().set(
        ProblemKind::Changed,
        ProblemText::new("urn:example:stale", "Stale", "Now at {etag}."),
    );
    let cases = [
        ConflictCase {
            name: "a write that finds a newer version gets 412 with the now current etag",
            interference: Interference::Overwrite,
            texts: ProblemTexts::default(),
        },
        ConflictCase {
            name: "a write that finds the target deleted gets the gone 412",
            interference: Interference::Delete,
            texts: ProblemTexts::default(),
        },
        ConflictCase {
            name: "a conflict uses the problem texts configured on the layer",
            interference: Interference::Overwrite,
            texts: custom,
        },
    ];
    for case in cases {
        let store: Arc<MemoryStore<String, String>> = Arc::new(MemoryStore::new());
        let v1 = store
            .put("doc".to_owned(), &Expected::Absent, "first".to_owned())
            .unwrap();
        let resolve = {
            let store = Arc::clone(&store);
            move |_: &Parts| ready(Ok::<_, Infallible>(store.get("doc")))
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let reported: Arc<Mutex<Option<Conflict>>> = Arc::default();
        let inner = {
            let store = Arc::clone(&store);
            let calls = Arc::clone(&calls);
            let reported = Arc::clone(&reported);
            let interference = case.interference;
            service_fn(move |req: Request<String>| {
                calls.fetch_add(1, Ordering::SeqCst);
                let pre = req.extensions().get::<Precondition>().unwrap().clone();
                // Another writer slips in after the layer's check.
                match interference {
                    Interference::Overwrite => {
                        store
                            .put("doc".to_owned(), &Expected::Any, "theirs".to_owned())
                            .unwrap();
                    }
                    Interference::Delete => {
                        store.delete("doc", &Expected::Any).unwrap();
                    }
                }
                let res = match store.put("doc".to_owned(), pre.expected(), req.into_body()) {
                    Ok(doc) => Response::new(doc.into_value()),
                    Err(conflict) => {
                        *reported.lock().unwrap() = Some(conflict.clone());
                        conflict_response(conflict)
                    }
                };
                ready(Ok::<_, Infallible>(res))
            })
        };
        let svc = PreconditionLayer::new(resolve)
            .texts(case.texts.clone())
            .layer(inner);
        let if_match = v1.etag().to_string();
        let req = request(
            Method::PUT,
            "/doc",
            &[(IF_MATCH, if_match.as_str())],
            "mine".to_owned(),
        );
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{}", case.name);
        let conflict = reported
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| panic!("{}: the store reported no conflict", case.name));
        let want = case.texts.conflict(&conflict);
        assert_eq!(
            res.status(),
            StatusCode::PRECONDITION_FAILED,
            "{}",
            case.name
        );
        assert_eq!(res.headers(), want.headers(), "{}", case.name);
        assert!(
            res.extensions().get::<Conflict>().is_none(),
            "{}: the conflict marker leaked",
            case.name
        );
        let body = body_bytes(res.into_body()).await;
        assert_eq!(body, want.body().as_bytes(), "{}", case.name);
        // The handler's write did not happen.
        match case.interference {
            Interference::Overwrite => {
                let now = store.get("doc").unwrap();
                assert_eq!(now.value(), "theirs", "{}", case.name);
                assert_eq!(conflict.current_etag(), Some(now.etag()), "{}", case.name);
                assert_eq!(problem(&body)["etag"], now.etag().to_string());
            }
            Interference::Delete => {
                assert!(store.get("doc").is_none(), "{}", case.name);
                assert!(conflict.is_gone(), "{}", case.name);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// ETagLayer over a hand-written body
// ---------------------------------------------------------------------------

#[path = "support/bodies.rs"]
mod bodies;
use bodies::{BodyError, Piece, Reply, TestBody};

/// Sends `req` through an `ETagLayer` (limit `limit`, or the default) over
/// an inner service that answers `reply`; returns the response and the
/// number of times the inner service was called.
async fn through_etag_layer(
    limit: Option<usize>,
    reply: Reply,
    req: Request<()>,
) -> (Response<ifmatch::middleware::ResponseBody<TestBody>>, usize) {
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let calls = Arc::clone(&calls);
        service_fn(move |_req: Request<()>| {
            calls.fetch_add(1, Ordering::SeqCst);
            ready(Ok::<_, Infallible>(reply.response()))
        })
    };
    let layer = match limit {
        Some(limit) => ETagLayer::new().limit(limit),
        None => ETagLayer::new(),
    };
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    (res, calls.load(Ordering::SeqCst))
}

fn get_request(headers: &[(HeaderName, &str)]) -> Request<()> {
    request(Method::GET, "/", headers, ())
}

/// Everything a body yields: its data, its trailers, and the error it ended
/// with, if any.
#[derive(Debug, Default)]
struct Read {
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
    error: Option<BodyError>,
    frames_after_error: usize,
}

async fn read_all<B>(mut body: B) -> Read
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let mut read = Read::default();
    while let Some(frame) = body.frame().await {
        if read.error.is_some() {
            read.frames_after_error += 1;
            continue;
        }
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => read.data.extend_from_slice(&data),
                Err(frame) => {
                    let trailers = frame.into_trailers().unwrap();
                    read.trailers
                        .get_or_insert_with(HeaderMap::new)
                        .extend(trailers);
                }
            },
            Err(err) => read.error = Some(err),
        }
    }
    read
}

/// Deterministic content of `len` bytes.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

struct LimitCase {
    name: &'static str,
    limit: Option<usize>,
    len: usize,
    body: fn(&[u8]) -> TestBody,
    tagged: bool,
}

#[tokio::test]
async fn bodies_up_to_the_limit_are_tagged_and_larger_ones_stream_untouched() {
    let cases = [
        LimitCase {
            name: "a body exactly at the limit in one frame is tagged",
            limit: Some(100),
            len: 100,
            body: |c| TestBody::chunked(c, c.len()),
            tagged: true,
        },
        LimitCase {
            name: "a body exactly at the limit in small frames is tagged",
            limit: Some(100),
            len: 100,
            body: |c| TestBody::chunked(c, 7),
            tagged: true,
        },
        LimitCase {
            name: "a body exactly at the limit with an exact size hint is tagged",
            limit: Some(100),
            len: 100,
            body: |c| TestBody::chunked(c, 30).with_exact_hint(),
            tagged: true,
        },
        LimitCase {
            name: "an empty body is tagged",
            limit: Some(100),
            len: 0,
            body: |c| TestBody::chunked(c, 1),
            tagged: true,
        },
        LimitCase {
            name: "one byte over the limit in one frame streams untagged",
            limit: Some(100),
            len: 101,
            body: |c| TestBody::chunked(c, c.len()),
            tagged: false,
        },
        LimitCase {
            name: "one byte over the limit arriving in the last frame streams untagged",
            limit: Some(100),
            len: 101,
            body: |c| TestBody::chunked(c, 100),
            tagged: false,
        },
        LimitCase {
            name: "one byte over the limit in small frames streams untagged",
            limit: Some(100),
            len: 101,
            body: |c| TestBody::chunked(c, 7).with_pending(),
            tagged: false,
        },
        LimitCase {
            name: "one byte over the limit known from the size hint streams untagged",
            limit: Some(100),
            len: 101,
            body: |c| TestBody::chunked(c, 30).with_exact_hint(),
            tagged: false,
        },
        LimitCase {
            name: "a body exactly at the default limit of 1 MiB is tagged",
            limit: None,
            len: DEFAULT_ETAG_LIMIT,
            body: |c| TestBody::chunked(c, 8 * 1024),
            tagged: true,
        },
        LimitCase {
            name: "one byte over the default limit streams untagged",
            limit: None,
            len: DEFAULT_ETAG_LIMIT + 1,
            body: |c| TestBody::chunked(c, 8 * 1024),
            tagged: false,
        },
    ];
    for case in cases {
        let bytes = content(case.len);
        let reply = Reply::ok((case.body)(&bytes));
        let (res, calls) = through_etag_layer(case.limit, reply, get_request(&[])).await;
        assert_eq!(calls, 1, "{}", case.name);
        assert_eq!(res.status(), StatusCode::OK, "{}", case.name);
        let tag = etag_header(&res);
        let want = case.tagged.then(|| ETag::from_content(&bytes));
        assert_eq!(tag, want, "{}", case.name);
        if let Some(tag) = &tag {
            assert!(tag.is_strong(), "{}", case.name);
        }
        let read = read_all(res.into_body()).await;
        assert_eq!(read.error, None, "{}", case.name);
        assert!(read.data == bytes, "{}: body not intact", case.name);
    }
}

#[tokio::test]
async fn an_untagged_over_limit_body_gets_the_conditions_that_need_no_tag() {
    let bytes = content(101);
    let reply = || Reply::ok(TestBody::chunked(&bytes, 10));
    // A tag cannot match a representation that has none: sent whole.
    let (res, _) =
        through_etag_layer(Some(100), reply(), get_request(&[(IF_NONE_MATCH, "\"x\"")])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key(ETAG));
    assert_eq!(read_all(res.into_body()).await.data, bytes);
    // `*` matches any current representation (RFC 9110 §13.1.2): 304.
    let (res, _) =
        through_etag_layer(Some(100), reply(), get_request(&[(IF_NONE_MATCH, "*")])).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert!(read_all(res.into_body()).await.data.is_empty());
}

/// A service that knows only dates (as tower-http's `ServeDir`): its
/// Last-Modified is after the request's `If-Unmodified-Since`, so it answers
/// 412 to any request that carries one.
fn date_only_reply(req_has_ius: bool, bytes: &[u8], content_type: &str) -> Reply {
    let reply = Reply::ok(TestBody::chunked(bytes, 10))
        .header(LAST_MODIFIED, MODIFIED_HTTP)
        .header(CONTENT_TYPE, content_type);
    if req_has_ius {
        reply.status(StatusCode::PRECONDITION_FAILED)
    } else {
        reply
    }
}

#[tokio::test]
async fn a_stale_if_match_is_412_even_when_the_layer_leaves_the_body_untagged() {
    // The layer takes If-Unmodified-Since away from the service below when
    // If-Match is present (§13.1.4), so it must evaluate If-Match itself
    // whether or not it tags the body.
    let stale = [
        (IF_MATCH, "\"stale\""),
        (IF_UNMODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT"),
    ];
    let bytes = content(200);
    let seen_ius = Arc::new(AtomicUsize::new(0));
    let layers = [
        ("over the limit", ETagLayer::new().limit(100), "text/plain"),
        ("an event stream", ETagLayer::new(), "text/event-stream"),
        ("skipped", skipping_layer(), "application/x-ndjson"),
    ];
    for (name, layer, content_type) in layers {
        let inner = {
            let (bytes, seen_ius) = (bytes.clone(), Arc::clone(&seen_ius));
            service_fn(move |req: Request<()>| {
                let has_ius = req.headers().contains_key(IF_UNMODIFIED_SINCE);
                seen_ius.fetch_add(usize::from(has_ius), Ordering::SeqCst);
                let reply = date_only_reply(has_ius, &bytes, content_type);
                let mut res = Response::new(reply.body.clone());
                *res.status_mut() = reply.status;
                *res.headers_mut() = reply.headers;
                ready(Ok::<_, Infallible>(res))
            })
        };
        let svc = layer.layer(inner);
        let res = svc.clone().oneshot(get_request(&stale)).await.unwrap();
        assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED, "{name}");
        assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON, "{name}");
        assert!(!res.headers().contains_key(ETAG), "{name}: no tag to name");
        // `*` holds for any current representation: the body streams on.
        let res = svc.oneshot(get_request(&[(IF_MATCH, "*")])).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        assert!(read_all(res.into_body()).await.data == bytes, "{name}");
    }
    assert_eq!(seen_ius.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn untagged_responses_other_than_200_are_evaluated_when_2xx() {
    let bytes = content(40);
    let stale = get_request(&[(IF_MATCH, "\"stale\"")]);
    // A 206 the handler did not tag cannot be checked against a tag: 412,
    // rather than a part of what may be another representation.
    let part = || {
        Reply::ok(TestBody::chunked(&bytes, 8))
            .status(StatusCode::PARTIAL_CONTENT)
            .header(CONTENT_RANGE, "bytes 0-39/100")
    };
    let (res, _) = through_etag_layer(None, part(), stale).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert!(!res.headers().contains_key(CONTENT_RANGE));
    let (res, _) = through_etag_layer(None, part(), get_request(&[(IF_MATCH, "*")])).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    // With the handler's tag, the conditions are evaluated against it.
    let tagged = Reply::ok(TestBody::chunked(&bytes, 8))
        .status(StatusCode::PARTIAL_CONTENT)
        .header(CONTENT_RANGE, "bytes 0-39/100")
        .header(ETAG, "\"full\"");
    let (res, _) = through_etag_layer(None, tagged, get_request(&[(IF_MATCH, "\"stale\"")])).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(res.headers()[ETAG], "\"full\"");
    // Not a 2xx: preconditions do not apply (RFC 9110 §13.2.1).
    let missing = Reply::ok(TestBody::chunked(&bytes, 8)).status(StatusCode::NOT_FOUND);
    let (res, _) = through_etag_layer(None, missing, get_request(&[(IF_MATCH, "\"stale\"")])).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_body_in_many_small_frames_gets_the_same_etag_as_in_one_frame() {
    // Spans several 64 KiB hashing pieces and ends off any boundary.
    let bytes = content(150 * 1024 + 17);
    let want = ETag::from_content(&bytes);
    let splits: [(&str, TestBody); 9] = [
        ("one frame", TestBody::chunked(&bytes, bytes.len())),
        ("1-byte frames", TestBody::chunked(&bytes, 1)),
        ("8 KiB frames", TestBody::chunked(&bytes, 8 * 1024)),
        ("1000-byte frames", TestBody::chunked(&bytes, 1000)),
        ("64 KiB frames", TestBody::chunked(&bytes, 64 * 1024)),
        (
            "64 KiB + 1 frames",
            TestBody::chunked(&bytes, 64 * 1024 + 1),
        ),
        (
            "8 KiB frames each after a pending poll",
            TestBody::chunked(&bytes, 8 * 1024).with_pending(),
        ),
        ("4097-byte frames", TestBody::chunked(&bytes, 4097)),
        (
            "small and large frames mixed",
            TestBody::new(
                // 1 byte, 100 KiB, 3 bytes, 40 KiB, then the rest.
                [
                    0,
                    1,
                    1 + 100 * 1024,
                    4 + 100 * 1024,
                    4 + 140 * 1024,
                    bytes.len(),
                ]
                .windows(2)
                .map(|w| Piece::Data(Bytes::copy_from_slice(&bytes[w[0]..w[1]]))),
            ),
        ),
    ];
    for (name, body) in splits {
        let (res, _) = through_etag_layer(None, Reply::ok(body), get_request(&[])).await;
        assert_eq!(etag_header(&res).as_ref(), Some(&want), "{name}");
        let read = read_all(res.into_body()).await;
        assert!(read.data == bytes, "{name}: body not intact");
    }
}

/// One frame, then nothing for as long as the test runs: a stream of
/// server-sent events between two events.
struct OpenEndedBody {
    sent: bool,
}

impl Body for OpenEndedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent {
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            b"data: hello\n\n",
        )))))
    }
}

#[tokio::test]
async fn an_event_stream_is_passed_on_at_once_and_untagged() {
    for content_type in ["text/event-stream", "Text/Event-Stream; charset=utf-8"] {
        for method in [Method::GET, Method::HEAD] {
            let inner = service_fn(move |_req: Request<()>| async move {
                let mut res = Response::new(OpenEndedBody { sent: false });
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                Ok::<_, Infallible>(res)
            });
            let req = request(method.clone(), "/events", &[], ());
            // The stream never ends: a layer that buffers it never answers.
            let res = tokio::time::timeout(
                Duration::from_secs(10),
                ETagLayer::new().layer(inner).oneshot(req),
            )
            .await
            .unwrap_or_else(|_| panic!("{content_type} {method}: response withheld"))
            .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert!(!res.headers().contains_key(ETAG), "{content_type} {method}");
            if method == Method::GET {
                let mut body = res.into_body();
                let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
                    .await
                    .expect("first event withheld");
                let data = first.unwrap().unwrap().into_data().unwrap();
                assert_eq!(&data[..], b"data: hello\n\n");
            }
        }
    }
}

/// Marks a streaming response, for `skip_when`.
#[derive(Clone)]
struct Streaming;

/// An `ETagLayer` that skips NDJSON responses and responses marked
/// [`Streaming`].
fn skipping_layer() -> ETagLayer {
    ETagLayer::new().skip_when(|res| {
        res.extensions.get::<Streaming>().is_some()
            || res
                .headers
                .get(CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"application/x-ndjson"))
    })
}

#[tokio::test]
async fn skip_when_passes_other_open_ended_streams_on_at_once_and_untagged() {
    for (content_type, marked) in [("application/x-ndjson", false), ("application/json", true)] {
        let inner = service_fn(move |_req: Request<()>| async move {
            let mut res = Response::new(OpenEndedBody { sent: false });
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            if marked {
                res.extensions_mut().insert(Streaming);
            }
            Ok::<_, Infallible>(res)
        });
        let req = get_request(&[]);
        // The stream never ends: without the predicate the layer would
        // hold it for good.
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            skipping_layer().layer(inner).oneshot(req),
        )
        .await
        .unwrap_or_else(|_| panic!("{content_type}: response withheld"))
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(!res.headers().contains_key(ETAG), "{content_type}");
        let mut body = res.into_body();
        let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("first frame withheld");
        assert_eq!(
            &first.unwrap().unwrap().into_data().unwrap()[..],
            b"data: hello\n\n"
        );
    }
}

#[tokio::test]
async fn skip_when_leaves_other_responses_and_handler_tags_alone() {
    let layer = skipping_layer();
    let serve = |content_type: &'static str, etag: Option<&'static str>| {
        service_fn(move |_req: Request<()>| async move {
            let mut res = Response::new(http_body_util::Full::new(Bytes::from_static(b"{}")));
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(tag) = etag {
                res.headers_mut()
                    .insert(ETAG, HeaderValue::from_static(tag));
            }
            Ok::<_, Infallible>(res)
        })
    };
    // Not skipped: tagged as usual.
    let res = layer
        .clone()
        .layer(serve("application/json", None))
        .oneshot(get_request(&[]))
        .await
        .unwrap();
    assert_eq!(etag_header(&res), Some(ETag::from_content("{}")));
    // Skipped, untagged, and no 304 for a tag that would have matched.
    let tag = ETag::from_content("{}").to_string();
    let res = layer
        .clone()
        .layer(serve("application/x-ndjson", None))
        .oneshot(get_request(&[(IF_NONE_MATCH, &tag)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key(ETAG));
    // A tag the handler set is never buffered, so the predicate is not
    // needed for it: its conditions are still answered.
    let res = layer
        .layer(serve("application/x-ndjson", Some("\"v7\"")))
        .oneshot(get_request(&[(IF_NONE_MATCH, "\"v7\"")]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn only_the_event_stream_media_type_itself_passes_untagged() {
    // Another media type that merely starts the same way is an ordinary,
    // finite body.
    let reply =
        Reply::ok(TestBody::chunked(b"hello", 2)).header(CONTENT_TYPE, "text/event-streamer");
    let (res, _) = through_etag_layer(None, reply, get_request(&[])).await;
    assert_eq!(etag_header(&res), Some(ETag::from_content("hello")));
}

#[tokio::test]
async fn a_date_condition_the_tags_overrule_does_not_reach_the_inner_service() {
    // An inner service that knows only dates, as tower-http's ServeDir: 304
    // for any If-Modified-Since (its file's time never moved), 412 for any
    // If-Unmodified-Since. Its content did change: the client's tag is
    // stale.
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let inner = {
        let seen = Arc::clone(&seen);
        service_fn(move |req: Request<()>| {
            seen.lock().unwrap().push(req.headers().clone());
            let status = if req.headers().contains_key(IF_MODIFIED_SINCE) {
                StatusCode::NOT_MODIFIED
            } else if req.headers().contains_key(IF_UNMODIFIED_SINCE) {
                StatusCode::PRECONDITION_FAILED
            } else {
                StatusCode::OK
            };
            let mut res = Response::new(http_body_util::Full::new(Bytes::from_static(b"new")));
            *res.status_mut() = status;
            res.headers_mut()
                .insert(LAST_MODIFIED, HeaderValue::from_static(MODIFIED_HTTP));
            ready(Ok::<_, Infallible>(res))
        })
    };
    let stale = ETag::from_content("old").to_string();
    let current = ETag::from_content("new").to_string();
    // RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is
    // present; §13.1.4: If-Unmodified-Since when If-Match is.
    type Case<'a> = (&'a str, Vec<(HeaderName, &'a str)>, StatusCode);
    let cases: [Case; 4] = [
        (
            "stale If-None-Match with an old-enough date",
            vec![(IF_NONE_MATCH, &stale), (IF_MODIFIED_SINCE, MODIFIED_HTTP)],
            StatusCode::OK,
        ),
        (
            "current If-None-Match with a date",
            vec![
                (IF_NONE_MATCH, &current),
                (IF_MODIFIED_SINCE, MODIFIED_HTTP),
            ],
            StatusCode::NOT_MODIFIED,
        ),
        (
            "current If-Match with a date",
            vec![(IF_MATCH, &current), (IF_UNMODIFIED_SINCE, MODIFIED_HTTP)],
            StatusCode::OK,
        ),
        (
            "a date alone is answered by the layer, with the tag",
            vec![(IF_MODIFIED_SINCE, MODIFIED_HTTP)],
            StatusCode::NOT_MODIFIED,
        ),
    ];
    for (name, headers, want) in cases {
        let res = ETagLayer::new()
            .layer(inner.clone())
            .oneshot(request(Method::GET, "/app.js", &headers, ()))
            .await
            .unwrap();
        assert_eq!(res.status(), want, "{name}");
        // A 304 carries the tag its 200 would have (RFC 9110 §15.4.5).
        assert_eq!(
            etag_header(&res).map(|t| t.to_string()),
            Some(current.clone()),
            "{name}"
        );
    }
    let seen = seen.lock().unwrap();
    assert!(!seen[0].contains_key(IF_MODIFIED_SINCE));
    assert!(!seen[1].contains_key(IF_MODIFIED_SINCE));
    assert!(!seen[2].contains_key(IF_UNMODIFIED_SINCE));
    assert!(!seen[3].contains_key(IF_MODIFIED_SINCE));
}

struct ErrorCase {
    name: &'static str,
    limit: usize,
    pieces: Vec<Piece>,
    data_before_error: &'static [u8],
}

#[tokio::test]
async fn a_body_error_is_passed_on_after_the_data_read_before_it() {
    let data = |s: &'static str| Piece::Data(Bytes::from_static(s.as_bytes()));
    let cases = [
        ErrorCase {
            name: "an error before any data is passed on first",
            limit: 100,
            pieces: vec![Piece::Error("boom"), data("never")],
            data_before_error: b"",
        },
        ErrorCase {
            name: "an error while buffering comes after the data read before it",
            limit: 100,
            pieces: vec![
                data("hello "),
                data("world"),
                Piece::Error("boom"),
                data("!"),
            ],
            data_before_error: b"hello world",
        },
        ErrorCase {
            name: "an error after the body outgrew the limit comes after all data",
            limit: 10,
            pieces: vec![
                data("01234567"),
                data("89abcdef"),
                data("ghij"),
                Piece::Error("boom"),
            ],
            data_before_error: b"0123456789abcdefghij",
        },
    ];
    for case in cases {
        let reply = Reply::ok(TestBody::new(case.pieces.clone()));
        let (res, _) = through_etag_layer(Some(case.limit), reply, get_request(&[])).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", case.name);
        assert!(!res.headers().contains_key(ETAG), "{}: tagged", case.name);
        // An exact size would let an HTTP/1.1 server send Content-Length
        // and stop reading before the error: a truncated body that looks
        // complete.
        assert_eq!(res.body().size_hint().exact(), None, "{}", case.name);
        assert!(!res.body().is_end_stream(), "{}", case.name);
        let read = read_all(res.into_body()).await;
        assert_eq!(read.data, case.data_before_error, "{}", case.name);
        assert_eq!(read.error, Some(BodyError("boom")), "{}", case.name);
        assert_eq!(read.frames_after_error, 0, "{}", case.name);
    }
}

#[tokio::test]
async fn collecting_a_failed_body_yields_the_error() {
    let reply = Reply::ok(TestBody::new([
        Piece::Data(Bytes::from_static(b"partial")),
        Piece::Error("boom"),
    ]));
    let (res, _) = through_etag_layer(None, reply, get_request(&[])).await;
    let err = res.into_body().collect().await.unwrap_err();
    assert_eq!(err, BodyError("boom"));
}

#[tokio::test]
async fn head_gets_the_same_etag_and_headers_as_get_and_an_empty_body() {
    let bytes = content(300);
    let reply = Reply::ok(TestBody::chunked(&bytes, 64))
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, "300");
    let (get_res, _) = through_etag_layer(None, reply.clone(), get_request(&[])).await;
    let (head_res, calls) =
        through_etag_layer(None, reply.clone(), request(Method::HEAD, "/", &[], ())).await;
    assert_eq!(calls, 1);
    assert_eq!(head_res.status(), StatusCode::OK);
    assert_eq!(
        etag_header(&head_res),
        Some(ETag::from_content(&bytes)),
        "HEAD tag"
    );
    assert_eq!(head_res.headers(), get_res.headers());
    let read = read_all(head_res.into_body()).await;
    assert!(read.data.is_empty());
    assert_eq!(read.trailers, None);

    // A conditional HEAD is answered like the GET.
    let tag = ETag::from_content(&bytes).to_string();
    let (res, _) = through_etag_layer(
        None,
        reply,
        request(Method::HEAD, "/", &[(IF_NONE_MATCH, tag.as_str())], ()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert!(read_all(res.into_body()).await.data.is_empty());
}

#[tokio::test]
async fn a_head_whose_if_match_fails_gets_a_412_without_content() {
    // RFC 9110 §9.3.2: "the server MUST NOT send content in the response"
    // to HEAD; the layer already strips HEAD bodies on the 200 path.
    let bytes = content(64);
    let reply = Reply::ok(TestBody::chunked(&bytes, 16));
    let req = request(Method::HEAD, "/", &[(IF_MATCH, "\"nope\"")], ());
    let (res, _) = through_etag_layer(None, reply, req).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        res.headers()[ETAG],
        ETag::from_content(&bytes).to_header_value()
    );
    let read = read_all(res.into_body()).await;
    assert!(
        read.data.is_empty(),
        "HEAD got content: {:?}",
        String::from_utf8_lossy(&read.data)
    );
}

#[tokio::test]
async fn head_of_an_over_limit_body_is_untagged_and_states_no_length() {
    // Its length is unknown, so the layer cannot state it in Content-Length;
    // the empty body left states no size either, or a framework would
    // announce a length of 0.
    let reply = Reply::ok(TestBody::chunked(&content(101), 10));
    let (res, _) = through_etag_layer(Some(100), reply, request(Method::HEAD, "/", &[], ())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key(ETAG));
    assert!(!res.headers().contains_key(CONTENT_LENGTH));
    assert_eq!(res.body().size_hint().exact(), None);
    assert!(read_all(res.into_body()).await.data.is_empty());
}

#[tokio::test]
async fn head_of_a_body_that_fails_is_untagged_and_keeps_the_error() {
    // The GET would fail after "abc": the length read so far is not the
    // representation's, so stating it (and dropping the error with the
    // body) would describe a response that does not exist.
    let reply = Reply::ok(TestBody::new([
        Piece::Data(Bytes::from_static(b"abc")),
        Piece::Error("boom"),
    ]));
    let (res, _) = through_etag_layer(None, reply, request(Method::HEAD, "/", &[], ())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key(ETAG));
    assert!(!res.headers().contains_key(CONTENT_LENGTH));
    let read = read_all(res.into_body()).await;
    assert!(read.data.is_empty());
    assert_eq!(read.error, Some(BodyError("boom")));
}

struct TaggedCase {
    name: &'static str,
    handler_tag: &'static str,
    headers: &'static [(HeaderName, &'static str)],
    status: StatusCode,
}

#[tokio::test]
async fn a_response_with_an_etag_is_not_rehashed_but_still_answers_if_none_match() {
    let cases = [
        TaggedCase {
            name: "the handler's tag is kept",
            handler_tag: "\"from-handler\"",
            headers: &[],
            status: StatusCode::OK,
        },
        TaggedCase {
            name: "If-None-Match with the handler's tag is 304",
            handler_tag: "\"from-handler\"",
            headers: &[(IF_NONE_MATCH, "\"from-handler\"")],
            status: StatusCode::NOT_MODIFIED,
        },
        TaggedCase {
            name: "If-None-Match with another tag is 200",
            handler_tag: "\"from-handler\"",
            headers: &[(IF_NONE_MATCH, "\"other\"")],
            status: StatusCode::OK,
        },
        TaggedCase {
            name: "a weak handler tag matches a strong If-None-Match weakly",
            handler_tag: "W/\"from-handler\"",
            headers: &[(IF_NONE_MATCH, "\"from-handler\"")],
            status: StatusCode::NOT_MODIFIED,
        },
        TaggedCase {
            name: "a failing If-Match against the handler's tag is 412",
            handler_tag: "\"from-handler\"",
            headers: &[(IF_MATCH, "\"other\"")],
            status: StatusCode::PRECONDITION_FAILED,
        },
    ];
    for TaggedCase {
        name,
        handler_tag,
        headers,
        status,
    } in cases
    {
        // Over the limit: had the layer tried to hash it, it would have
        // found it too large and dropped the condition.
        let bytes = content(500);
        let polled = Arc::new(AtomicBool::new(false));
        let mut body = TestBody::chunked(&bytes, 50);
        body.polled = Some(Arc::clone(&polled));
        let reply = Reply::ok(body).header(ETAG, handler_tag);
        let (res, _) = through_etag_layer(Some(100), reply, get_request(headers)).await;
        assert!(
            !polled.load(Ordering::SeqCst),
            "{name}: the layer read the body"
        );
        assert_eq!(res.status(), status, "{name}");
        assert_eq!(res.headers()[ETAG], handler_tag, "{name}");
        let read = read_all(res.into_body()).await;
        match status {
            StatusCode::OK => assert!(read.data == bytes, "{name}: body not intact"),
            StatusCode::NOT_MODIFIED => assert!(read.data.is_empty(), "{name}"),
            _ => assert_eq!(problem(&read.data)["status"], 412, "{name}"),
        }
    }
}

#[tokio::test]
async fn the_304_keeps_the_handlers_headers_except_content_metadata() {
    let bytes = content(200);
    let computed = ETag::from_content(&bytes).to_string();
    // The 304 states the 200's length (RFC 9110 §8.6 allows that, and only
    // that): the layer read the body it hashed, and the handler that set
    // its own tag declared it.
    let cases = [
        ("with a computed tag", None, computed.clone()),
        (
            "with the handler's tag",
            Some("\"v3\""),
            "\"v3\"".to_owned(),
        ),
    ];
    for (name, handler_tag, tag) in cases {
        let mut reply = Reply::ok(TestBody::chunked(&bytes, 64))
            .header(CACHE_CONTROL, "max-age=60")
            .header(CONTENT_LOCATION, "/things/1")
            .header(DATE, "Sun, 06 Nov 1994 08:49:37 GMT")
            .header(EXPIRES, "Sun, 06 Nov 1994 08:50:37 GMT")
            .header(VARY, "accept")
            .header(VARY, "accept-encoding")
            // Not representation metadata: kept (user agents process
            // Set-Cookie in every response, RFC 6265 §3).
            .header(SET_COOKIE, "session=rotated; HttpOnly")
            .header(HeaderName::from_static("x-request-id"), "42")
            // Content metadata and framing: a 304 has no content.
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, "200")
            .header(CONTENT_ENCODING, "identity")
            .header(CONTENT_LANGUAGE, "en")
            .header(HeaderName::from_static("content-digest"), "sha-256=:x:");
        if let Some(t) = handler_tag {
            reply = reply.header(ETAG, t);
        }
        let (res, _) =
            through_etag_layer(None, reply, get_request(&[(IF_NONE_MATCH, tag.as_str())])).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{name}");
        let want = header_map(&[
            (CACHE_CONTROL, "max-age=60"),
            (CONTENT_LOCATION, "/things/1"),
            (DATE, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (EXPIRES, "Sun, 06 Nov 1994 08:50:37 GMT"),
            (VARY, "accept"),
            (VARY, "accept-encoding"),
            (SET_COOKIE, "session=rotated; HttpOnly"),
            (HeaderName::from_static("x-request-id"), "42"),
            (ETAG, tag.as_str()),
            (CONTENT_LENGTH, "200"),
        ]);
        assert_eq!(res.headers(), &want, "{name}");
        let read = read_all(res.into_body()).await;
        assert!(read.data.is_empty(), "{name}");
        assert_eq!(read.trailers, None, "{name}");
    }
}

#[tokio::test]
async fn only_complete_200_responses_to_get_and_head_are_tagged() {
    let cases = [
        ("a 201 to GET", Method::GET, StatusCode::CREATED),
        (
            "a 203 to GET",
            Method::GET,
            StatusCode::NON_AUTHORITATIVE_INFORMATION,
        ),
        ("a 206 to GET", Method::GET, StatusCode::PARTIAL_CONTENT),
        ("a 404 to GET", Method::GET, StatusCode::NOT_FOUND),
        (
            "a 500 to GET",
            Method::GET,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        ("a 200 to POST", Method::POST, StatusCode::OK),
        ("a 200 to PUT", Method::PUT, StatusCode::OK),
        ("a 200 to DELETE", Method::DELETE, StatusCode::OK),
    ];
    let bytes = content(40);
    for (name, method, status) in cases {
        let mut reply = Reply::ok(TestBody::chunked(&bytes, 8)).status(status);
        if status == StatusCode::PARTIAL_CONTENT {
            reply = reply.header(CONTENT_RANGE, "bytes 0-39/100");
        }
        // Preconditions do not apply to other statuses than 2xx (RFC 9110
        // §13.2.1), even one that needs no tag; a 2xx without a tag cannot
        // match one.
        let condition = if status.is_success() { "\"x\"" } else { "*" };
        let req = request(method, "/", &[(IF_NONE_MATCH, condition)], ());
        let (res, calls) = through_etag_layer(None, reply, req).await;
        assert_eq!(calls, 1, "{name}");
        assert_eq!(res.status(), status, "{name}");
        assert!(!res.headers().contains_key(ETAG), "{name}: tagged");
        assert!(read_all(res.into_body()).await.data == bytes, "{name}");
    }
}

#[tokio::test]
async fn trailers_survive_buffering_and_streaming() {
    let trailers = header_map(&[(HeaderName::from_static("x-checksum"), "abc")]);
    let pieces = vec![
        Piece::Data(Bytes::from_static(b"hello ")),
        Piece::Data(Bytes::from_static(b"world")),
        Piece::Trailers(trailers.clone()),
    ];
    for (name, limit, tagged) in [
        ("a buffered body keeps its trailers", 100, true),
        ("an over-limit body keeps its trailers", 8, false),
    ] {
        let reply = Reply::ok(TestBody::new(pieces.clone()));
        let (res, _) = through_etag_layer(Some(limit), reply, get_request(&[])).await;
        assert_eq!(
            etag_header(&res),
            tagged.then(|| ETag::from_content("hello world")),
            "{name}"
        );
        // With an exact size an HTTP/1.1 server frames the body with
        // Content-Length, which cannot carry trailers.
        assert_eq!(res.body().size_hint().exact(), None, "{name}");
        let read = read_all(res.into_body()).await;
        assert_eq!(read.data, b"hello world", "{name}");
        assert_eq!(read.trailers.as_ref(), Some(&trailers), "{name}");
    }
    // Without trailers or an error, a buffered body states its size.
    let reply = Reply::ok(TestBody::new(pieces[..2].to_vec()));
    let (res, _) = through_etag_layer(Some(100), reply, get_request(&[])).await;
    assert_eq!(res.body().size_hint().exact(), Some(11));
}

#[tokio::test]
async fn layers_that_make_their_own_responses_fit_outside() {
    // tower-http's timeout, CORS and header-validation layers build
    // responses with `Default` bodies.
    use tower_http::timeout::TimeoutLayer;
    let inner = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(http_body_util::Full::new(
            Bytes::from_static(b"hello"),
        )))
    });
    let svc = tower::ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .layer(ETagLayer::new())
        .service(inner);
    let res = svc.oneshot(get_request(&[])).await.unwrap();
    assert_eq!(etag_header(&res), Some(ETag::from_content("hello")));
    let empty: ifmatch::middleware::ResponseBody<http_body_util::Full<Bytes>> = Default::default();
    assert!(empty.is_end_stream());
}

struct ConditionalCase<'a> {
    name: &'static str,
    headers: Vec<(HeaderName, &'a str)>,
    status: StatusCode,
}

#[tokio::test]
async fn conditional_gets_are_evaluated_against_the_computed_tag() {
    let bytes = content(64);
    let tag = ETag::from_content(&bytes);
    let strong = tag.to_string();
    let weak = format!("W/{tag}");
    let list = format!("\"nope\", W/{tag}");
    let cases = vec![
        ConditionalCase {
            name: "a strong If-None-Match of the tag is 304",
            headers: vec![(IF_NONE_MATCH, strong.as_str())],
            status: StatusCode::NOT_MODIFIED,
        },
        ConditionalCase {
            name: "a weak If-None-Match of the tag is 304 (weak comparison)",
            headers: vec![(IF_NONE_MATCH, weak.as_str())],
            status: StatusCode::NOT_MODIFIED,
        },
        ConditionalCase {
            name: "a list containing the weak tag is 304",
            headers: vec![(IF_NONE_MATCH, list.as_str())],
            status: StatusCode::NOT_MODIFIED,
        },
        ConditionalCase {
            name: "another tag in If-None-Match is 200",
            headers: vec![(IF_NONE_MATCH, "\"nope\"")],
            status: StatusCode::OK,
        },
        ConditionalCase {
            name: "a failing If-Match on GET is 412",
            headers: vec![(IF_MATCH, "\"nope\"")],
            status: StatusCode::PRECONDITION_FAILED,
        },
        ConditionalCase {
            name: "a weak If-Match of the tag on GET is 412 (strong comparison)",
            headers: vec![(IF_MATCH, weak.as_str())],
            status: StatusCode::PRECONDITION_FAILED,
        },
        ConditionalCase {
            name: "a matching If-Match on GET is 200",
            headers: vec![(IF_MATCH, strong.as_str())],
            status: StatusCode::OK,
        },
        ConditionalCase {
            name: "If-None-Match spread over several field lines is 304",
            headers: vec![
                (IF_NONE_MATCH, "\"nope\""),
                (IF_NONE_MATCH, strong.as_str()),
            ],
            status: StatusCode::NOT_MODIFIED,
        },
    ];
    for ConditionalCase {
        name,
        headers,
        status,
    } in cases
    {
        let reply = Reply::ok(TestBody::chunked(&bytes, 16));
        let (res, _) = through_etag_layer(None, reply, get_request(&headers)).await;
        assert_eq!(res.status(), status, "{name}");
        assert_eq!(etag_header(&res).as_ref(), Some(&tag), "{name}");
        let read = read_all(res.into_body()).await;
        match status {
            StatusCode::OK => assert!(read.data == bytes, "{name}"),
            StatusCode::NOT_MODIFIED => assert!(read.data.is_empty(), "{name}"),
            _ => {
                let json = problem(&read.data);
                assert_eq!(json["status"], 412, "{name}");
                assert_eq!(json["etag"], strong, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn a_failing_body_still_gets_its_conditions_answered_from_its_head() {
    // The layer took If-Modified-Since from the service below, so it must
    // answer it itself, for a body that fails as for one over the limit.
    const MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    let failing = || {
        Reply::ok(TestBody::new([
            Piece::Data(Bytes::from_static(b"0123456789")),
            Piece::Error("disk gone"),
        ]))
        .header(LAST_MODIFIED, MODIFIED)
    };
    let cases: [(&[(HeaderName, &str)], StatusCode); 4] = [
        (&[(IF_MODIFIED_SINCE, MODIFIED)], StatusCode::NOT_MODIFIED),
        (&[(IF_NONE_MATCH, "*")], StatusCode::NOT_MODIFIED),
        (&[(IF_MATCH, "\"x\"")], StatusCode::PRECONDITION_FAILED),
        (&[], StatusCode::OK),
    ];
    for (headers, want) in cases {
        let (res, calls) = through_etag_layer(Some(100), failing(), get_request(headers)).await;
        assert_eq!(calls, 1);
        assert_eq!(res.status(), want, "{headers:?}");
        assert!(
            etag_header(&res).is_none(),
            "{headers:?}: an incomplete body got a tag"
        );
        if want == StatusCode::OK {
            // Without conditions, the error still reaches the server,
            // after the bytes read before it.
            let read = read_all(res.into_body()).await;
            assert_eq!(read.data, b"0123456789");
            assert_eq!(read.error, Some(BodyError("disk gone")));
        }
    }
}

#[tokio::test]
async fn the_etag_layer_412_is_a_problem_response() {
    let bytes = content(64);
    let reply = Reply::ok(TestBody::chunked(&bytes, 16)).header(CONTENT_TYPE, "text/plain");
    let (res, _) = through_etag_layer(None, reply, get_request(&[(IF_MATCH, "\"nope\"")])).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let tag = ETag::from_content(&bytes);
    let mut sent = HeaderMap::new();
    sent.insert(IF_MATCH, HeaderValue::from_static("\"nope\""));
    let want = ProblemTexts::default().precondition_failed_for(
        &Method::GET,
        &sent,
        Some(&tag),
        Failed::IfMatch,
    );
    let body = read_all(res.into_body()).await.data;
    assert_eq!(body, want.body().as_bytes());
    // A GET changed nothing, and is not told otherwise.
    let detail = problem(&body)["detail"].as_str().unwrap().to_owned();
    assert!(!detail.contains("not applied"), "{detail}");
    assert!(detail.contains(&format!("If-Match: {tag}")), "{detail}");
}

/// `ETagLayer::texts` replaces the texts of the layer's own 412.
#[tokio::test]
async fn the_etag_layer_uses_its_configured_problem_texts() {
    let texts = ProblemTexts::default().set(
        ProblemKind::Changed,
        ProblemText::new(
            "urn:example:changed",
            "Reload first",
            "The document changed.",
        ),
    );
    let reply = Reply::ok(TestBody::chunked(&content(64), 16));
    let inner = service_fn(move |_req: Request<()>| {
        ready(Ok::<_, Infallible>(Response::new(reply.body.clone())))
    });
    let svc = ETagLayer::new().texts(texts).layer(inner);
    let stale = ETag::from_content("an older version").to_string();
    let res = svc
        .oneshot(get_request(&[(IF_MATCH, &stale)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let json = problem(&read_all(res.into_body()).await.data);
    assert_eq!(json["type"], "urn:example:changed");
    assert_eq!(json["title"], "Reload first");
    assert_eq!(json["detail"], "The document changed.");
}

#[tokio::test]
async fn a_weak_or_unquoted_if_match_of_the_current_tag_gets_the_unmatchable_412_from_both_layers()
{
    let unmatchable = ProblemTexts::default()
        .get(ProblemKind::Unmatchable)
        .title
        .clone();
    // ETagLayer: the tag it computed, sent back weak.
    let bytes = content(64);
    let tag = ETag::from_content(&bytes);
    let weak = tag.clone().into_weak().to_string();
    let reply = Reply::ok(TestBody::chunked(&bytes, 16));
    let (res, _) = through_etag_layer(None, reply, get_request(&[(IF_MATCH, weak.as_str())])).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let json = problem(&read_all(res.into_body()).await.data);
    assert_eq!(json["title"], unmatchable.as_ref());
    assert_eq!(json["etag"], tag.to_string());
    // PreconditionLayer: the resolver's "v7", weak and without quotes.
    for value in ["W/\"v7\"", "v7"] {
        let handler = Handler::default();
        let svc = PreconditionLayer::new(resolver(present())).layer(handler.service());
        let req = request(Method::PUT, "/doc", &[(IF_MATCH, value)], String::new());
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(handler.calls(), 0, "{value}");
        assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED, "{value}");
        assert_eq!(res.headers()[ETAG], "\"v7\"", "{value}");
        let json = problem(&body_bytes(res.into_body()).await);
        assert_eq!(json["title"], unmatchable.as_ref(), "{value}");
    }
}

#[tokio::test]
async fn if_modified_since_is_evaluated_against_the_handler_last_modified() {
    let bytes = content(64);
    let reply = || Reply::ok(TestBody::chunked(&bytes, 16)).header(LAST_MODIFIED, MODIFIED_HTTP);
    let (res, _) = through_etag_layer(
        None,
        reply(),
        get_request(&[(IF_MODIFIED_SINCE, MODIFIED_HTTP)]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()[LAST_MODIFIED], MODIFIED_HTTP);
    let (res, _) = through_etag_layer(
        None,
        reply(),
        get_request(&[(IF_MODIFIED_SINCE, "Sat, 05 Nov 1994 08:49:37 GMT")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------
// A real axum Router: JSON documents in a MemoryStore
// ---------------------------------------------------------------------------

type Docs = Arc<MemoryStore<String, Value>>;

fn with_etag(doc: &Stored<Value>, status: StatusCode) -> axum::response::Response {
    (
        status,
        [(ETAG, doc.etag().to_header_value())],
        axum::Json(doc.value().clone()),
    )
        .into_response()
}

async fn read_doc(State(store): State<Docs>, Path(id): Path<String>) -> axum::response::Response {
    match store.get(&id) {
        Some(doc) => with_etag(&doc, StatusCode::OK),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn write_doc(
    State(store): State<Docs>,
    Path(id): Path<String>,
    Extension(pre): Extension<Precondition>,
    axum::Json(value): axum::Json<Value>,
) -> axum::response::Response {
    let created = *pre.expected() == Expected::Absent;
    match store.put(id, pre.expected(), value) {
        Ok(doc) if created => with_etag(&doc, StatusCode::CREATED),
        Ok(doc) => with_etag(&doc, StatusCode::OK),
        Err(conflict) => conflict_response(conflict),
    }
}

async fn delete_doc(
    State(store): State<Docs>,
    Path(id): Path<String>,
    Extension(pre): Extension<Precondition>,
) -> axum::response::Response {
    match store.delete(&id, pre.expected()) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(conflict) => conflict_response(conflict),
    }
}

fn docs_app(store: Docs) -> Router {
    let resolve = {
        let store = Arc::clone(&store);
        move |parts: &Parts| {
            let id = parts.uri.path().trim_start_matches("/docs/").to_owned();
            ready(Ok::<_, Infallible>(store.get(&id)))
        }
    };
    Router::new()
        .route(
            "/docs/{id}",
            get(read_doc).put(write_doc).delete(delete_doc),
        )
        .route_layer(PreconditionLayer::new(resolve))
        .layer(ETagLayer::new())
        .with_state(store)
}

#[tokio::test]
async fn axum_a_method_the_route_lacks_is_405_not_a_precondition_answer() {
    // Layered on the method router, the layer wraps the route's methods
    // only; `Router::route_layer` would also wrap axum's 405 fallback and
    // answer 428 to a PATCH the route does not serve.
    let (store, _) = seeded();
    let lookups = Arc::new(AtomicUsize::new(0));
    let resolve = {
        let store = Arc::clone(&store);
        let lookups = Arc::clone(&lookups);
        move |parts: &Parts| {
            lookups.fetch_add(1, Ordering::SeqCst);
            let id = parts.uri.path().trim_start_matches("/docs/").to_owned();
            ready(Ok::<_, Infallible>(store.get(&id)))
        }
    };
    let app: Router = Router::new()
        .route(
            "/docs/{id}",
            get(read_doc)
                .put(write_doc)
                .route_layer(PreconditionLayer::new(resolve)),
        )
        .with_state(store);
    for method in [Method::PATCH, Method::DELETE, Method::POST] {
        let (status, _, _) = call(&app, method.clone(), "/docs/a", &[], None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 0);
    let (status, _, _) = call(&app, Method::PUT, "/docs/a", &[], Some(json!({}))).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
}

/// A store with `/docs/a` = `{"title": "first"}`, and its tag.
fn seeded() -> (Docs, ETag) {
    let store: Docs = Arc::new(MemoryStore::new());
    let doc = store
        .put("a".to_owned(), &Expected::Absent, json!({"title": "first"}))
        .unwrap();
    (store, doc.etag().clone())
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(HeaderName, &str)],
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut headers = headers.to_vec();
    let body = match body {
        Some(v) => {
            headers.push((CONTENT_TYPE, "application/json"));
            axum::body::Body::from(v.to_string())
        }
        None => axum::body::Body::empty(),
    };
    let req = request(method, uri, &headers, body);
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    (parts.status, parts.headers, body_bytes(body).await)
}

/// A page on another origin (a back-office web app) can use the layers
/// only through CORS: `If-Match` is not a safelisted request header, so the
/// browser sends a preflight first, and a script reads `ETag` only if the
/// response exposes it. With tower-http's `CorsLayer` outside the
/// precondition layer, CORS answers the preflight, and the layer's own
/// 412 and 428 carry the CORS headers, so the script can read the current
/// tag and the problem body (a response without them reaches it as a
/// network error).
#[tokio::test]
async fn axum_behind_cors_a_page_on_another_origin_reads_the_etag_and_the_412() {
    use tower_http::cors::{AllowOrigin, CorsLayer};

    let (store, v1) = seeded();
    let origin = "https://backoffice.example";
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::exact(http::HeaderValue::from_static(origin)))
        .allow_methods([Method::GET, Method::PUT, Method::DELETE])
        .allow_headers([IF_MATCH, IF_NONE_MATCH, CONTENT_TYPE])
        .expose_headers([ETAG]);
    let app = docs_app(store).layer(cors);
    let page = (http::header::ORIGIN, origin);
    let only_page = std::slice::from_ref(&page);

    // The preflight of a PUT with If-Match is answered by CORS alone.
    let (status, headers, _) = call(
        &app,
        Method::OPTIONS,
        "/docs/a",
        &[
            page.clone(),
            (http::header::ACCESS_CONTROL_REQUEST_METHOD, "PUT"),
            (
                http::header::ACCESS_CONTROL_REQUEST_HEADERS,
                "if-match, content-type",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let allowed = headers[http::header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("if-match"), "{allowed}");

    // A GET exposes the tag to the page's script.
    let (status, headers, _) = call(&app, Method::GET, "/docs/a", only_page, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[http::header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
    let exposed = headers[http::header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");

    // Someone else saves first; the page's stale save gets the layer's
    // 412, readable by the page: CORS headers, the current tag exposed.
    let v1 = v1.to_string();
    let stale = [page.clone(), (IF_MATCH, v1.as_str())];
    let (status, _, _) = call(
        &app,
        Method::PUT,
        "/docs/a",
        &stale,
        Some(json!({"title": "theirs"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = call(
        &app,
        Method::PUT,
        "/docs/a",
        &stale,
        Some(json!({"title": "mine"})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(headers[http::header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
    assert_eq!(headers[http::header::ACCESS_CONTROL_EXPOSE_HEADERS], "etag");
    assert!(headers.contains_key(ETAG));
    assert_eq!(problem(&body)["status"], 412);

    // So does the 428 of a save without If-Match.
    let (status, headers, _) = call(
        &app,
        Method::PUT,
        "/docs/a",
        only_page,
        Some(json!({"title": "mine"})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(headers[http::header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
}

#[tokio::test]
async fn axum_get_returns_the_document_with_its_store_etag() {
    let (store, v1) = seeded();
    let app = docs_app(store);
    let (status, headers, body) = call(&app, Method::GET, "/docs/a", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[ETAG], v1.to_header_value());
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"title": "first"})
    );
}

#[tokio::test]
async fn axum_head_gets_the_same_etag_and_length_as_get_without_content() {
    let app: Router = Router::new()
        .route(
            "/about",
            get(|| async { axum::Json(json!({"name": "ifmatch", "pad": "x".repeat(100)})) }),
        )
        .layer(ETagLayer::new());
    let (_, get_headers, get_body) = call(&app, Method::GET, "/about", &[], None).await;
    let (status, headers, body) = call(&app, Method::HEAD, "/about", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[ETAG],
        ETag::from_content(&get_body).to_header_value()
    );
    assert_eq!(headers[ETAG], get_headers[ETAG]);
    assert_eq!(headers.get(CONTENT_LENGTH), get_headers.get(CONTENT_LENGTH));
    assert!(body.is_empty());

    // A 304 states the 200's length too (RFC 9110 §8.6), not the
    // `Content-Length: 0` axum would set from its empty body, which hyper
    // sends on a 304 to a HEAD.
    let tag = get_headers[ETAG].to_str().unwrap().to_owned();
    for method in [Method::GET, Method::HEAD] {
        let (status, headers, body) = call(
            &app,
            method.clone(),
            "/about",
            &[(IF_NONE_MATCH, &tag)],
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{method}");
        assert_eq!(headers[ETAG], get_headers[ETAG], "{method}");
        let length = headers.get(CONTENT_LENGTH);
        assert_eq!(length, Some(&HeaderValue::from(get_body.len())), "{method}");
        assert!(body.is_empty(), "{method}");
    }
}

#[tokio::test]
async fn axum_get_of_a_missing_document_is_404() {
    let (store, _) = seeded();
    let app = docs_app(store);
    let (status, headers, _) = call(&app, Method::GET, "/docs/zzz", &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!headers.contains_key(ETAG));
}

#[tokio::test]
async fn axum_get_with_the_current_tag_in_if_none_match_is_304() {
    let (store, v1) = seeded();
    let app = docs_app(store);
    let tag = v1.to_string();
    let (status, headers, body) = call(
        &app,
        Method::GET,
        "/docs/a",
        &[(IF_NONE_MATCH, tag.as_str())],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers[ETAG], tag.as_str());
    assert!(body.is_empty());
}

#[tokio::test]
async fn axum_put_with_the_current_if_match_writes_and_returns_the_new_etag() {
    let (store, v1) = seeded();
    let app = docs_app(Arc::clone(&store));
    let tag = v1.to_string();
    let (status, headers, body) = call(
        &app,
        Method::PUT,
        "/docs/a",
        &[(IF_MATCH, tag.as_str())],
        Some(json!({"title": "second"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v2 = ETag::try_from(&headers[ETAG]).unwrap();
    assert_ne!(v2, v1);
    assert_eq!(store.get("a").unwrap().etag(), &v2);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"title": "second"})
    );
    // A GET now serves the new version under the new tag.
    let (status, headers, _) = call(&app, Method::GET, "/docs/a", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[ETAG], v2.to_header_value());
}

#[tokio::test]
async fn axum_put_with_a_stale_if_match_is_412_and_writes_nothing() {
    let (store, v1) = seeded();
    let app = docs_app(Arc::clone(&store));
    let tag = v1.to_string();
    let (status, _, _) = call(
        &app,
        Method::PUT,
        "/docs/a",
        &[(IF_MATCH, tag.as_str())],
        Some(json!({"title": "second"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v2 = store.get("a").unwrap().etag().clone();
    // A second writer still holding v1.
    let (status, headers, body) = call(
        &app,
        Method::PUT,
        "/docs/a",
        &[(IF_MATCH, tag.as_str())],
        Some(json!({"title": "lost update"})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(headers[CONTENT_TYPE], PROBLEM_JSON);
    assert_eq!(headers[ETAG], v2.to_header_value());
    assert_eq!(problem(&body)["etag"], v2.to_string());
    assert_eq!(*store.get("a").unwrap().value(), json!({"title": "second"}));
}

#[tokio::test]
async fn axum_put_without_a_precondition_is_428_and_writes_nothing() {
    let (store, v1) = seeded();
    let app = docs_app(Arc::clone(&store));
    let (status, headers, body) = call(
        &app,
        Method::PUT,
        "/docs/a",
        &[],
        Some(json!({"title": "blind"})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(headers[CONTENT_TYPE], PROBLEM_JSON);
    assert_eq!(problem(&body)["status"], 428);
    assert_eq!(store.get("a").unwrap().etag(), &v1);
}

#[tokio::test]
async fn axum_put_with_if_none_match_star_creates_a_document() {
    let (store, _) = seeded();
    let app = docs_app(Arc::clone(&store));
    let (status, headers, _) = call(
        &app,
        Method::PUT,
        "/docs/b",
        &[(IF_NONE_MATCH, "*")],
        Some(json!({"title": "new"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        headers[ETAG],
        store.get("b").unwrap().etag().to_header_value()
    );
    // Creating it again is refused: it exists now.
    let (status, _, _) = call(
        &app,
        Method::PUT,
        "/docs/b",
        &[(IF_NONE_MATCH, "*")],
        Some(json!({"title": "again"})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn axum_delete_with_the_current_if_match_is_204_and_removes_the_document() {
    let (store, v1) = seeded();
    let app = docs_app(Arc::clone(&store));
    let tag = v1.to_string();
    let (status, _, body) = call(
        &app,
        Method::DELETE,
        "/docs/a",
        &[(IF_MATCH, tag.as_str())],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    assert!(store.get("a").is_none());
    let (status, _, _) = call(&app, Method::GET, "/docs/a", &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn axum_delete_with_a_stale_if_match_is_412_and_keeps_the_document() {
    let (store, _) = seeded();
    let app = docs_app(Arc::clone(&store));
    let (status, _, _) = call(
        &app,
        Method::DELETE,
        "/docs/a",
        &[(IF_MATCH, "\"v999\"")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(store.get("a").is_some());
}

#[tokio::test]
async fn axum_routes_without_a_store_tag_get_a_content_etag() {
    let app: Router = Router::new()
        .route(
            "/about",
            get(|| async { axum::Json(json!({"name": "ifmatch"})) }),
        )
        .layer(ETagLayer::new());
    let (status, headers, body) = call(&app, Method::GET, "/about", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    let tag = ETag::from_content(&body);
    assert_eq!(headers[ETAG], tag.to_header_value());
    let tag = tag.to_string();
    let (status, _, body) = call(
        &app,
        Method::GET,
        "/about",
        &[(IF_NONE_MATCH, tag.as_str())],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
}

// ---------------------------------------------------------------------------
// ETagLayer outside tower-http's CompressionLayer
// ---------------------------------------------------------------------------

fn page() -> String {
    "All work and no play makes Jack a dull boy. ".repeat(40)
}

fn compressed_app() -> Router {
    Router::new()
        .route(
            "/page",
            get(|| async { ([(CONTENT_TYPE, "text/plain; charset=utf-8")], page()) }),
        )
        .layer(CompressionLayer::new())
        .layer(ETagLayer::new())
}

#[tokio::test]
async fn with_compression_inside_the_gzip_response_is_tagged_with_the_compressed_bytes() {
    let app = compressed_app();
    let (status, headers, body) = call(
        &app,
        Method::GET,
        "/page",
        &[(ACCEPT_ENCODING, "gzip")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_ENCODING], "gzip");
    assert_eq!(&body[..2], &[0x1f, 0x8b], "not a gzip stream");
    assert!(body.len() < page().len(), "not compressed");
    assert_eq!(headers[ETAG], ETag::from_content(&body).to_header_value());
}

#[tokio::test]
async fn with_compression_inside_the_identity_response_gets_its_own_tag() {
    let app = compressed_app();
    let (status, headers, body) = call(&app, Method::GET, "/page", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(CONTENT_ENCODING));
    assert_eq!(body, page().as_bytes());
    let identity = ETag::from_content(page());
    assert_eq!(headers[ETAG], identity.to_header_value());

    let (_, gzip_headers, _) = call(
        &app,
        Method::GET,
        "/page",
        &[(ACCEPT_ENCODING, "gzip")],
        None,
    )
    .await;
    assert_ne!(gzip_headers[ETAG], headers[ETAG]);
}

#[tokio::test]
async fn with_compression_inside_the_gzip_tag_is_stable_and_revalidates_with_304() {
    let app = compressed_app();
    let gzip = [(ACCEPT_ENCODING, "gzip")];
    let (_, first, _) = call(&app, Method::GET, "/page", &gzip, None).await;
    let (_, second, _) = call(&app, Method::GET, "/page", &gzip, None).await;
    assert_eq!(
        first[ETAG], second[ETAG],
        "gzip output is not deterministic"
    );
    let tag = first[ETAG].to_str().unwrap().to_owned();

    let (status, headers, body) = call(
        &app,
        Method::GET,
        "/page",
        &[(ACCEPT_ENCODING, "gzip"), (IF_NONE_MATCH, tag.as_str())],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers[ETAG], tag.as_str());
    assert!(
        headers
            .get_all(VARY)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"accept-encoding")),
        "the 304 lost Vary: {headers:?}"
    );
    assert!(!headers.contains_key(CONTENT_ENCODING));
    assert!(body.is_empty());

    // The gzip tag does not validate the identity representation.
    let (status, _, body) = call(
        &app,
        Method::GET,
        "/page",
        &[(IF_NONE_MATCH, tag.as_str())],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, page().as_bytes());
}

#[tokio::test]
async fn a_head_answered_without_content_states_no_length() {
    // RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field
    // in any response with a status code of 1xx (Informational) or 204 (No
    // Content)"; a 304 may state only the 200's length, which its empty
    // body does not tell.
    for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
        // An empty body that says so, as an axum `()` or `Body::empty()`.
        let mut reply = Reply::ok(TestBody::new([]).with_exact_hint());
        reply.status = status;
        let (res, _) = through_etag_layer(None, reply, request(Method::HEAD, "/", &[], ())).await;
        assert_eq!(res.status(), status);
        assert!(
            !res.headers().contains_key(CONTENT_LENGTH),
            "{status}: {:?}",
            res.headers().get(CONTENT_LENGTH)
        );
        assert!(read_all(res.into_body()).await.data.is_empty());
    }
}

#[tokio::test]
async fn a_head_with_range_is_answered_for_the_whole_representation() {
    // RFC 9110 §14.2: range handling is defined for GET only, and a server
    // "MUST ignore a Range header field received with a request method ...
    // for which range handling is not defined". The handler below serves
    // ranges (as a file server would) when it sees one.
    let bytes = Bytes::from(content(100));
    let inner = {
        let bytes = bytes.clone();
        service_fn(move |req: Request<()>| {
            let ranged = req.headers().contains_key(RANGE);
            let mut res = if ranged {
                let mut res = Response::new(TestBody::new([Piece::Data(bytes.slice(0..5))]));
                *res.status_mut() = StatusCode::PARTIAL_CONTENT;
                res
            } else {
                Response::new(TestBody::new([Piece::Data(bytes.clone())]))
            };
            res.headers_mut().insert(
                HeaderName::from_static("x-saw-if-range"),
                HeaderValue::from_static(if req.headers().contains_key(IF_RANGE) {
                    "yes"
                } else {
                    "no"
                }),
            );
            ready(Ok::<_, Infallible>(res))
        })
    };
    let svc = ETagLayer::new().layer(inner);
    let tag = ETag::from_content(&bytes).to_string();
    let req = request(
        Method::HEAD,
        "/",
        &[(RANGE, "bytes=0-4"), (IF_RANGE, tag.as_str())],
        (),
    );
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-saw-if-range"], "no");
    assert_eq!(etag_header(&res), Some(ETag::from_content(&bytes)));
    assert_eq!(res.headers()[CONTENT_LENGTH], "100");
    assert!(read_all(res.into_body()).await.data.is_empty());

    // A GET keeps its Range: the handler's 206 passes through, untagged.
    let res = svc
        .oneshot(request(Method::GET, "/", &[(RANGE, "bytes=0-4")], ()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert!(!res.headers().contains_key(ETAG));
    assert_eq!(read_all(res.into_body()).await.data, &bytes[..5]);
}

/// A file server's range handling without `If-Range` (tower-http's
/// `ServeDir` works this way): a request with `Range` gets a 206 of its
/// first five bytes, whatever `If-Range` says. The response says in
/// `x-saw` which of the two fields reached it.
fn ranges_ignoring_if_range(
    bytes: Bytes,
) -> impl Service<
    Request<()>,
    Response = Response<TestBody>,
    Error = Infallible,
    Future = Ready<Result<Response<TestBody>, Infallible>>,
> + Clone {
    service_fn(move |req: Request<()>| {
        let saw = match (
            req.headers().contains_key(RANGE),
            req.headers().contains_key(IF_RANGE),
        ) {
            (true, true) => "range, if-range",
            (true, false) => "range",
            (false, true) => "if-range",
            (false, false) => "neither",
        };
        let mut res = if req.headers().contains_key(RANGE) {
            let mut res = Response::new(TestBody::new([Piece::Data(bytes.slice(0..5))]));
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            res.headers_mut().insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes 0-4/{}", bytes.len())).unwrap(),
            );
            res
        } else {
            Response::new(TestBody::new([Piece::Data(bytes.clone())]))
        };
        res.headers_mut().insert(
            LAST_MODIFIED,
            HeaderValue::from_static("Sat, 05 Nov 1994 08:49:37 GMT"),
        );
        res.headers_mut().insert(
            HeaderName::from_static("x-saw"),
            HeaderValue::from_static(saw),
        );
        ready(Ok(res))
    })
}

#[tokio::test]
async fn a_range_under_an_if_range_tag_is_not_left_to_a_handler_that_cannot_check_it() {
    // The handler never sees the tags the layer computes, so it cannot
    // evaluate an If-Range that names one; a file server that ignores
    // If-Range would send a part of the changed file for the client to
    // splice into the old one. RFC 9110 §13.1.5: "If the validator does not
    // match, then the server MUST ignore the Range header field." The layer
    // drops the range, and the client gets the whole representation.
    let bytes = Bytes::from(content(100));
    let svc = ETagLayer::new().layer(ranges_ignoring_if_range(bytes.clone()));
    let current = ETag::from_content(&bytes).to_string();
    let stale = ETag::from_content(b"what the client has").to_string();
    let weak = format!("W/{current}");
    for if_range in [
        stale.as_str(),
        current.as_str(),
        weak.as_str(),
        "\"unterminated",
        "not a date",
    ] {
        let req = request(
            Method::GET,
            "/",
            &[(RANGE, "bytes=0-4"), (IF_RANGE, if_range)],
            (),
        );
        let res = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "If-Range: {if_range}");
        assert_eq!(res.headers()["x-saw"], "neither", "If-Range: {if_range}");
        assert!(!res.headers().contains_key(CONTENT_RANGE));
        assert_eq!(etag_header(&res), Some(ETag::from_content(&bytes)));
        assert_eq!(read_all(res.into_body()).await.data, bytes);
    }

    // A date is the handler's own validator: the range and the condition
    // reach it, and its 206 passes through.
    let date = "Sat, 05 Nov 1994 08:49:37 GMT";
    let req = request(
        Method::GET,
        "/",
        &[(RANGE, "bytes=0-4"), (IF_RANGE, date)],
        (),
    );
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["x-saw"], "range, if-range");
    assert_eq!(read_all(res.into_body()).await.data, &bytes[..5]);

    // Two If-Range lines are no valid condition, dates or not (§13.1.5
    // allows one validator): dropped with the range.
    let mut req = request(Method::GET, "/", &[(RANGE, "bytes=0-4")], ());
    for _ in 0..2 {
        req.headers_mut()
            .append(IF_RANGE, HeaderValue::from_static(date));
    }
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-saw"], "neither");

    // Without If-Range the range is the handler's, as before.
    let req = request(Method::GET, "/", &[(RANGE, "bytes=0-4")], ());
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["x-saw"], "range");
}

#[tokio::test]
async fn a_206_of_the_whole_representation_carries_the_tag_a_200_would() {
    // RFC 9110 §15.3.7: a 206 "MUST" carry the ETag a 200 would. A part
    // cannot be hashed for the whole, but a range that is all of it (a
    // file server's answer to `Range: bytes=0-`) can.
    let bytes = Bytes::from(content(100));
    let answer = |content_range: &'static str| {
        let bytes = bytes.clone();
        service_fn(move |_: Request<()>| {
            let mut res = Response::new(TestBody::new([Piece::Data(bytes.clone())]));
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            res.headers_mut()
                .insert(CONTENT_RANGE, HeaderValue::from_static(content_range));
            ready(Ok::<_, Infallible>(res))
        })
    };
    let ranged = || request(Method::GET, "/", &[(RANGE, "bytes=0-")], ());
    for whole in ["bytes 0-99/100", "BYTES 0-99/100"] {
        let res = ETagLayer::new()
            .layer(answer(whole))
            .oneshot(ranged())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            etag_header(&res),
            Some(ETag::from_content(&bytes)),
            "{whole}"
        );
        assert_eq!(read_all(res.into_body()).await.data, bytes);
    }
    // Anything else is, or may be, a part: passed on untagged.
    for part in [
        "bytes 0-98/100",
        "bytes 1-99/100",
        "bytes 0-99/*",
        "bytes 0-99/101",
        "bytes +0-99/100",
        "bytes 0-99/100 ",
        "items 0-99/100",
        "bytes */100",
        "bytes 0-18446744073709551615/0",
    ] {
        let res = ETagLayer::new()
            .layer(answer(part))
            .oneshot(ranged())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{part}");
        assert!(!res.headers().contains_key(ETAG), "{part}");
        assert_eq!(read_all(res.into_body()).await.data, bytes, "{part}");
    }
}

#[tokio::test]
async fn a_206_whose_body_is_not_the_whole_it_names_gets_no_tag() {
    // `Content-Range: bytes 0-99/100` declares 100 bytes of content, as a
    // `Content-Length: 100` would. A body that ends before them is
    // incomplete (RFC 9112 §6.3), one with more is not that representation
    // either: hashed, either would get a strong tag for content that is not
    // the whole, which a cache keeps as valid and revalidates with 304.
    let ranged = |condition: Option<&str>| {
        let mut headers = vec![(RANGE, "bytes=0-")];
        headers.extend(condition.map(|tag| (IF_NONE_MATCH, tag)));
        request(Method::GET, "/", &headers, ())
    };
    for len in [0, 60, 99, 101, 120] {
        let bytes = Bytes::from(content(len));
        let answer = {
            let bytes = bytes.clone();
            service_fn(move |_: Request<()>| {
                let mut res = Response::new(TestBody::new([Piece::Data(bytes.clone())]));
                *res.status_mut() = StatusCode::PARTIAL_CONTENT;
                res.headers_mut()
                    .insert(CONTENT_RANGE, HeaderValue::from_static("bytes 0-99/100"));
                ready(Ok::<_, Infallible>(res))
            })
        };
        let svc = ETagLayer::new().layer(answer);
        let res = svc.clone().oneshot(ranged(None)).await.unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{len} bytes");
        assert!(!res.headers().contains_key(ETAG), "{len} bytes");
        assert_eq!(read_all(res.into_body()).await.data, bytes, "{len} bytes");
        // Nor does the hash of what was sent revalidate it.
        let held = ETag::from_content(&bytes).to_string();
        let res = svc.oneshot(ranged(Some(&held))).await.unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{len} bytes");
    }
}

#[tokio::test]
async fn a_conditional_range_request_is_answered_from_the_whole_tagged_representation() {
    // RFC 9110 §13.2.2 evaluates If-Match, If-None-Match and
    // If-Modified-Since before Range, against the tag of the selected
    // representation. The layer knows that tag only from the whole
    // representation: a 206 of a part carries none.
    let bytes = Bytes::from(content(100));
    let svc = ETagLayer::new().layer(ranges_ignoring_if_range(bytes.clone()));
    let current = ETag::from_content(&bytes);
    let tag = current.to_string();
    let stale = ETag::from_content(b"what the client has").to_string();
    let last_modified = "Sat, 05 Nov 1994 08:49:37 GMT";
    let ranged = |condition: &(HeaderName, &str)| {
        request(
            Method::GET,
            "/",
            &[(RANGE, "bytes=0-4"), condition.clone()],
            (),
        )
    };

    // Not modified: a 304 with the tag a 200 carries (§13.1.2, §15.4.5),
    // not a 206 or a 304 without it.
    for condition in [
        (IF_NONE_MATCH, tag.as_str()),
        (IF_MODIFIED_SINCE, last_modified),
    ] {
        let res = svc.clone().oneshot(ranged(&condition)).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{condition:?}");
        assert_eq!(res.headers()["x-saw"], "neither", "{condition:?}");
        assert_eq!(etag_header(&res).as_ref(), Some(&current), "{condition:?}");
        assert!(read_all(res.into_body()).await.data.is_empty());
    }

    // Conditions that hold, If-Match with the tag the layer sent among
    // them: the whole representation, tagged (§14.2 lets a server ignore
    // Range), not a 412.
    for condition in [(IF_MATCH, tag.as_str()), (IF_NONE_MATCH, stale.as_str())] {
        let res = svc.clone().oneshot(ranged(&condition)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{condition:?}");
        assert_eq!(res.headers()["x-saw"], "neither", "{condition:?}");
        assert_eq!(etag_header(&res).as_ref(), Some(&current), "{condition:?}");
        assert_eq!(read_all(res.into_body()).await.data, bytes);
    }

    // If-Match with another tag: 412, with the current tag.
    let res = svc
        .clone()
        .oneshot(ranged(&(IF_MATCH, stale.as_str())))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(etag_header(&res).as_ref(), Some(&current));

    // If-Unmodified-Since compares dates, which the part carries as the
    // whole does, and an If-Modified-Since that is no valid date is
    // ignored (§13.1.3): the range stays the handler's.
    for condition in [
        (IF_UNMODIFIED_SINCE, last_modified),
        (IF_MODIFIED_SINCE, "yesterday"),
    ] {
        let res = svc.clone().oneshot(ranged(&condition)).await.unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{condition:?}");
        assert_eq!(res.headers()["x-saw"], "range", "{condition:?}");
    }

    // A representation over the limit gets no tag: the whole of it, as
    // without the range, and not a 206 evaluated as untagged.
    let small = ETagLayer::new()
        .limit(10)
        .layer(ranges_ignoring_if_range(bytes.clone()));
    let res = small
        .oneshot(ranged(&(IF_NONE_MATCH, stale.as_str())))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-saw"], "neither");
    assert!(!res.headers().contains_key(ETAG));
    assert_eq!(read_all(res.into_body()).await.data, bytes);
}

#[tokio::test]
async fn a_resumed_download_from_serve_file_is_never_spliced_from_a_changed_file() {
    // tower-http's ServeFile serves ranges but ignores If-Range. Under the
    // layer it gets a strong tag, which a client resuming a download echoes
    // in If-Range; after the file changed, the client must get the new
    // file whole, not its tail after the bytes it already has.
    let dir = std::env::temp_dir().join(format!("ifmatch-if-range-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("doc.txt");
    std::fs::write(&path, "the first version of the document").unwrap();
    let svc = ETagLayer::new().layer(tower_http::services::ServeFile::new(&path));

    let res = svc
        .clone()
        .oneshot(request(Method::GET, "/", &[], ()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let first = etag_header(&res).unwrap();
    assert_eq!(
        first,
        ETag::from_content(b"the first version of the document")
    );

    // A range from the first byte on is the whole file: tagged as the 200
    // is (RFC 9110 §15.3.7).
    let res = svc
        .clone()
        .oneshot(request(Method::GET, "/", &[(RANGE, "bytes=0-")], ()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(etag_header(&res).as_ref(), Some(&first));

    // A range under If-None-Match with the current tag: not modified, and
    // the 304 carries the tag (the file server alone would send a part).
    let res = svc
        .clone()
        .oneshot(request(
            Method::GET,
            "/",
            &[
                (RANGE, "bytes=0-4"),
                (IF_NONE_MATCH, first.to_string().as_str()),
            ],
            (),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(etag_header(&res).as_ref(), Some(&first));

    // The file server by itself resumes, whatever If-Range says.
    let resume = [(RANGE, "bytes=10-"), (IF_RANGE, "\"any tag\"")];
    let res = tower_http::services::ServeFile::new(&path)
        .oneshot(request(Method::GET, "/", &resume, ()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);

    std::fs::write(&path, "a second, longer version of the document").unwrap();
    let first = first.to_string();
    let res = svc
        .clone()
        .oneshot(request(
            Method::GET,
            "/",
            &[(RANGE, "bytes=10-"), (IF_RANGE, first.as_str())],
            (),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key(CONTENT_RANGE));
    assert_eq!(
        etag_header(&res),
        Some(ETag::from_content(
            b"a second, longer version of the document"
        ))
    );
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        &b"a second, longer version of the document"[..]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Any framing
// ---------------------------------------------------------------------------

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// However a body is split into frames (tiny, medium, large, mixed),
    /// the layer sends exactly its bytes, tagged with the tag of the whole
    /// content when it fits the limit and untagged when it does not.
    #[test]
    fn any_framing_gets_the_content_tag_within_the_limit_and_arrives_intact(
        seed in proptest::prelude::any::<u64>(),
        len in 0usize..200_000,
        sizes in proptest::collection::vec(
            proptest::prop_oneof![1usize..16, 16usize..5_000, 5_000usize..80_000],
            1..32,
        ),
        over in proptest::prelude::any::<bool>(),
    ) {
        let bytes = xorshift::bytes(seed, len);
        let mut pieces = Vec::new();
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= len {
                break;
            }
            let end = (at + size).min(len);
            pieces.push(Piece::Data(Bytes::copy_from_slice(&bytes[at..end])));
            at = end;
        }
        // Exactly at the limit, or one byte over it.
        let limit = if over && len > 0 { len - 1 } else { len };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (tag, read) = rt.block_on(async {
            let reply = Reply::ok(TestBody::new(pieces));
            let (res, _) = through_etag_layer(Some(limit), reply, get_request(&[])).await;
            (etag_header(&res), read_all(res.into_body()).await)
        });
        let want = (len <= limit).then(|| ETag::from_content(&bytes));
        proptest::prop_assert_eq!(tag, want);
        proptest::prop_assert!(read.data == bytes, "body not intact");
        proptest::prop_assert_eq!(read.error, None);
    }
}

/// A layer and its service built around a closure resolver can be printed
/// (the resolver is left out), and the service gives its inner one back.
#[test]
fn precondition_layers_with_closure_resolvers_have_debug_and_accessors() {
    let layer = PreconditionLayer::new(resolver(present()));
    assert!(format!("{layer:?}").starts_with("PreconditionLayer { gate: Gate {"));
    let inner = service_fn(|_req: Request<()>| ready(Ok::<_, Infallible>(Response::new(()))));
    let mut svc = layer.layer(inner);
    assert!(format!("{svc:?}").starts_with("PreconditionService { inner: ServiceFn"));
    let _: &mut _ = svc.get_mut();
    let _inner = svc.into_inner();
}

/// The ETag layer prints its configuration (a `skip_when` predicate as a
/// placeholder), and the futures and the response body print their type
/// name, so that a `{:?}` in a log or an assertion message shows what it
/// is.
#[tokio::test]
async fn the_etag_layer_futures_and_bodies_have_debug() {
    let layer = ETagLayer::new().limit(10);
    assert!(
        format!("{layer:?}").starts_with("ETagLayer { config: ETagConfig { limit: 10, policy: "),
        "{layer:?}"
    );
    assert!(
        format!("{:?}", skipping_layer()).contains("skip_when: Some(\"Fn\")"),
        "{:?}",
        skipping_layer()
    );
    let reply = Reply::ok(TestBody::new([Piece::Data(Bytes::from_static(b"hello"))]));
    let inner = service_fn(move |_req: Request<()>| {
        let mut res = Response::new(reply.body.clone());
        *res.status_mut() = reply.status;
        ready(Ok::<_, Infallible>(res))
    });
    let mut svc = layer.layer(inner);
    let fut = svc.ready().await.unwrap().call(get_request(&[]));
    assert_eq!(format!("{fut:?}"), "ETagFuture { .. }");
    let res = fut.await.unwrap();
    assert_eq!(format!("{:?}", res.body()), "ResponseBody { .. }");

    let handler = Handler::default();
    let mut svc = precondition_layer(present(), Config::Default).layer(handler.service());
    let req = request(Method::GET, "/doc", &[], String::new());
    let fut = svc.ready().await.unwrap().call(req);
    assert_eq!(format!("{fut:?}"), "PreconditionFuture { .. }");
}

/// The layers and services can be shared across threads and held across a
/// `catch_unwind`, with or without a `skip_when` predicate.
#[test]
fn layers_and_services_are_send_sync_and_unwind_safe() {
    fn check<T: Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>(_: &T) {}
    let inner = service_fn(|_req: Request<()>| ready(Ok::<_, Infallible>(Response::new(()))));
    check(&ETagLayer::new());
    let skipping = skipping_layer();
    check(&skipping);
    check(&skipping.layer(inner));
    check(&ETagLayer::new().layer(inner));
}

// ---------------------------------------------------------------------------
// The tower `Service` and `http_body::Body` contracts, and cancellation
// ---------------------------------------------------------------------------

/// What a body's `poll_frame` yields.
type FrameResult<B> = Result<Frame<<B as Body>::Data>, <B as Body>::Error>;

/// A waker that counts its wakes, for polling futures and bodies by hand.
#[derive(Default)]
struct WakeCount(AtomicUsize);

impl std::task::Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl WakeCount {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Polls `fut` once with this waker.
    fn poll<F: std::future::Future + Unpin>(self: &Arc<Self>, fut: &mut F) -> Poll<F::Output> {
        let waker = std::task::Waker::from(Arc::clone(self));
        Pin::new(fut).poll(&mut Context::from_waker(&waker))
    }

    /// Polls `fut` while it is pending and `waiting()` holds, a hundred
    /// times at most: a layer that never gets there fails the test instead
    /// of spinning it for ever.
    fn poll_while<F: std::future::Future + Unpin>(
        self: &Arc<Self>,
        fut: &mut F,
        mut waiting: impl FnMut() -> bool,
    ) {
        for _ in 0..100 {
            if self.poll(fut).is_ready() || !waiting() {
                return;
            }
        }
        panic!("still waiting after 100 polls");
    }

    /// Polls `service` for readiness once with this waker.
    fn poll_ready<S: Service<R>, R>(
        self: &Arc<Self>,
        service: &mut S,
    ) -> Poll<Result<(), S::Error>> {
        let waker = std::task::Waker::from(Arc::clone(self));
        service.poll_ready(&mut Context::from_waker(&waker))
    }

    /// Polls `body` for a frame once with this waker.
    fn poll_frame<B: Body + Unpin>(self: &Arc<Self>, body: &mut B) -> Poll<Option<FrameResult<B>>> {
        let waker = std::task::Waker::from(Arc::clone(self));
        Pin::new(body).poll_frame(&mut Context::from_waker(&waker))
    }
}

/// An inner service that, like tower's `ConcurrencyLimit` and `Buffer`,
/// may only be called after `poll_ready` returned `Ready` on that very
/// instance: a clone starts unready, the first `poll_ready` of each
/// readiness is `Pending` (waking at once), and `call` panics on an
/// instance that was not driven ready.
struct MustBeReady {
    ready: bool,
    asked: bool,
    calls: Arc<AtomicUsize>,
}

impl MustBeReady {
    fn new(calls: &Arc<AtomicUsize>) -> Self {
        Self {
            ready: false,
            asked: false,
            calls: Arc::clone(calls),
        }
    }
}

impl Clone for MustBeReady {
    fn clone(&self) -> Self {
        Self::new(&self.calls)
    }
}

impl<B> Service<Request<B>> for MustBeReady {
    type Response = Response<http_body_util::Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if !self.asked {
            self.asked = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        assert!(
            self.ready,
            "called without poll_ready returning Ready first"
        );
        self.ready = false;
        self.asked = false;
        self.calls.fetch_add(1, Ordering::SeqCst);
        ready(Ok(Response::new(http_body_util::Full::new(
            Bytes::from_static(b"hello"),
        ))))
    }
}

/// A boxed lookup of a test resolver.
type Lookup =
    Pin<Box<dyn std::future::Future<Output = Result<Option<Validators>, Infallible>> + Send>>;

/// A resolver whose lookup yields to the executor once before it answers,
/// so that the inner service is called from the response future, later.
fn yielding_resolver() -> impl FnMut(&Parts) -> Lookup + Clone + Send + Sync + 'static {
    |_: &Parts| {
        Box::pin(async {
            tokio::task::yield_now().await;
            Ok(Some(Validators::new(v7())))
        })
    }
}

#[tokio::test]
async fn the_precondition_layer_calls_the_inner_instance_that_was_driven_ready() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = PreconditionLayer::new(yielding_resolver()).layer(MustBeReady::new(&calls));
    // Several requests in flight at once, each started on a ready service,
    // their lookups finishing after the next request was started.
    let mut futures = Vec::new();
    for _ in 0..3 {
        ServiceExt::<Request<()>>::ready(&mut svc).await.unwrap();
        futures.push(svc.call(request(Method::GET, "/", &[], ())));
    }
    for fut in futures.into_iter().rev() {
        assert_eq!(fut.await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Stacked with ServiceBuilder under the ETag layer, for reads and writes.
    let mut svc = tower::ServiceBuilder::new()
        .layer(ETagLayer::new())
        .layer(PreconditionLayer::new(yielding_resolver()))
        .service(MustBeReady::new(&calls));
    let v7 = v7().to_string();
    let mut futures = Vec::new();
    for (method, headers) in [
        (Method::GET, vec![]),
        (Method::HEAD, vec![]),
        (Method::PUT, vec![(IF_MATCH, v7.as_str())]),
        (Method::DELETE, vec![(IF_MATCH, v7.as_str())]),
    ] {
        ServiceExt::<Request<()>>::ready(&mut svc).await.unwrap();
        futures.push(svc.call(request(method, "/", &headers, ())));
    }
    for fut in futures {
        assert_eq!(fut.await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 7);
}

/// What a lookup does, by path: `/stall` never answers, `/absent` finds
/// nothing, anything else finds version 7.
fn stalling_resolver() -> impl FnMut(&Parts) -> Lookup + Clone + Send + Sync + 'static {
    |parts: &Parts| match parts.uri.path() {
        "/stall" => Box::pin(std::future::pending()),
        "/absent" => Box::pin(ready(Ok(None))),
        _ => Box::pin(ready(Ok(Some(Validators::new(v7()))))),
    }
}

/// A handler that never answers on `/slow`, and records when that future
/// is dropped.
fn slow_handler(
    dropped: &Arc<AtomicBool>,
) -> impl Service<
    Request<()>,
    Response = Response<http_body_util::Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync {
    let dropped = Arc::clone(dropped);
    service_fn(move |req: Request<()>| {
        struct OnDrop(Arc<AtomicBool>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let guard = OnDrop(Arc::clone(&dropped));
        async move {
            if req.uri().path() == "/slow" {
                std::future::pending::<()>().await;
            }
            drop(guard);
            Ok::<_, Infallible>(Response::new(http_body_util::Full::new(
                Bytes::from_static(b"hello"),
            )))
        }
    })
}

#[tokio::test]
async fn a_concurrency_limit_below_the_layer_is_released_however_a_request_ends() {
    use tower::limit::ConcurrencyLimitLayer;
    let dropped = Arc::new(AtomicBool::new(false));
    let mut svc = tower::ServiceBuilder::new()
        .layer(PreconditionLayer::new(stalling_resolver()))
        .layer(ConcurrencyLimitLayer::new(1))
        .service(slow_handler(&dropped));
    let wakes = Arc::new(WakeCount::default());
    let v7 = v7().to_string();

    // Dropped during the lookup, and during the handler's call.
    for path in ["/stall", "/slow"] {
        svc.ready().await.unwrap();
        let mut fut = Box::pin(svc.call(request(Method::GET, path, &[], ())));
        assert!(wakes.poll(&mut fut).is_pending(), "{path}");
        // The one permit is the pending request's.
        assert!(wakes.poll_ready(&mut svc).is_pending(), "{path}");
        drop(fut);
        assert!(
            wakes.poll_ready(&mut svc).is_ready(),
            "{path}: permit not released"
        );
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the handler's future was not dropped"
    );

    // Answered by the layer (428, 404, 412, 304) and by the handler.
    let cases = [
        (Method::PUT, "/", vec![], StatusCode::PRECONDITION_REQUIRED),
        (
            Method::PATCH,
            "/absent",
            vec![(IF_MATCH, "\"x\"")],
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/",
            vec![(IF_MATCH, "\"x\"")],
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            Method::GET,
            "/",
            vec![(IF_NONE_MATCH, v7.as_str())],
            StatusCode::NOT_MODIFIED,
        ),
        (Method::GET, "/", vec![], StatusCode::OK),
    ];
    for (method, path, headers, status) in cases {
        svc.ready().await.unwrap();
        let res = svc.call(request(method, path, &headers, ())).await.unwrap();
        assert_eq!(res.status(), status);
        assert!(
            wakes.poll_ready(&mut svc).is_ready(),
            "{status}: permit not released"
        );
    }
}

#[tokio::test]
async fn a_buffer_below_the_layer_serves_concurrent_requests() {
    // tower's Buffer reserves a slot in poll_ready and panics in call
    // without one: the reserved instance must be the one called.
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = tower::ServiceBuilder::new()
        .layer(PreconditionLayer::new(yielding_resolver()))
        .buffer(1)
        .service(MustBeReady::new(&calls));
    let mut futures = Vec::new();
    for _ in 0..4 {
        svc.ready().await.unwrap();
        futures.push(tokio::spawn(svc.call(request(Method::GET, "/", &[], ()))));
    }
    for fut in futures {
        assert_eq!(fut.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

/// The far end of a [`ChannelBody`]: the test feeds it frames and sees how
/// it is polled and whether it was dropped.
#[derive(Default)]
struct Channel {
    queue: VecDeque<Piece>,
    ended: bool,
    waker: Option<std::task::Waker>,
    polls: usize,
    dropped: bool,
}

#[derive(Clone, Default)]
struct ChannelHandle(Arc<Mutex<Channel>>);

impl ChannelHandle {
    fn send(&self, piece: Piece) {
        let mut chan = self.0.lock().unwrap();
        chan.queue.push_back(piece);
        if let Some(waker) = chan.waker.take() {
            waker.wake();
        }
    }

    fn data(&self, bytes: &'static str) {
        self.send(Piece::Data(Bytes::from_static(bytes.as_bytes())));
    }

    fn end(&self) {
        let mut chan = self.0.lock().unwrap();
        chan.ended = true;
        if let Some(waker) = chan.waker.take() {
            waker.wake();
        }
    }

    fn polls(&self) -> usize {
        self.0.lock().unwrap().polls
    }

    fn dropped(&self) -> bool {
        self.0.lock().unwrap().dropped
    }

    fn body(&self) -> ChannelBody {
        ChannelBody(self.clone())
    }
}

/// A body that yields what the test sends, and is `Pending` (keeping the
/// waker, as a real body does) until then.
struct ChannelBody(ChannelHandle);

impl Drop for ChannelBody {
    fn drop(&mut self) {
        self.0.0.lock().unwrap().dropped = true;
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut chan = self.0.0.lock().unwrap();
        chan.polls += 1;
        match chan.queue.pop_front() {
            Some(piece) => Poll::Ready(Some(piece.into_frame())),
            None if chan.ended => Poll::Ready(None),
            None => {
                chan.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// An ETag layer (with `limit`) over a service answering 200 with `body`.
fn etag_service_over(
    limit: usize,
    body: ChannelHandle,
) -> impl Service<
    Request<()>,
    Response = Response<ifmatch::middleware::ResponseBody<ChannelBody>>,
    Error = Infallible,
> {
    ETagLayer::new()
        .limit(limit)
        .layer(service_fn(move |_req: Request<()>| {
            ready(Ok::<_, Infallible>(Response::new(body.body())))
        }))
}

#[tokio::test]
async fn the_etag_layer_waits_for_a_pending_body_on_the_tasks_waker() {
    let chan = ChannelHandle::default();
    let wakes = Arc::new(WakeCount::default());
    let mut fut = Box::pin(etag_service_over(100, chan.clone()).oneshot(get_request(&[])));
    chan.data("hello ");
    assert!(wakes.poll(&mut fut).is_pending());
    assert_eq!(chan.polls(), 2, "read the frame, then parked");
    chan.data("world");
    assert_eq!(wakes.count(), 1, "the body's wake did not reach the task");
    assert!(wakes.poll(&mut fut).is_pending());
    assert_eq!(chan.polls(), 4);
    chan.end();
    assert_eq!(wakes.count(), 2);
    let Poll::Ready(res) = wakes.poll(&mut fut) else {
        panic!("not done after the body ended");
    };
    let res = res.unwrap();
    assert_eq!(etag_header(&res), Some(ETag::from_content("hello world")));
    assert!(chan.dropped(), "the inner body is not dropped once read");
    let mut body = res.into_body();
    assert_eq!(body.size_hint().exact(), Some(11));
    assert!(!body.is_end_stream());
    let mut read = Vec::new();
    while let Poll::Ready(Some(frame)) = wakes.poll_frame(&mut body) {
        read.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert_eq!(read, b"hello world");
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
    // Polled again after its end, it stays ended.
    assert!(matches!(wakes.poll_frame(&mut body), Poll::Ready(None)));
}

#[tokio::test]
async fn dropping_the_etag_future_while_it_buffers_drops_the_body() {
    let chan = ChannelHandle::default();
    let wakes = Arc::new(WakeCount::default());
    let mut fut = Box::pin(etag_service_over(100, chan.clone()).oneshot(get_request(&[])));
    chan.data("hello ");
    assert!(wakes.poll(&mut fut).is_pending());
    assert!(!chan.dropped());
    drop(fut);
    assert!(
        chan.dropped(),
        "the body being buffered outlived its future"
    );
}

#[tokio::test]
async fn a_body_passed_on_over_the_limit_streams_the_rest_and_can_be_dropped_midway() {
    let chan = ChannelHandle::default();
    let wakes = Arc::new(WakeCount::default());
    let mut fut = Box::pin(etag_service_over(4, chan.clone()).oneshot(get_request(&[])));
    chan.data("hel");
    chan.data("lo ");
    let Poll::Ready(res) = wakes.poll(&mut fut) else {
        panic!("an over-limit body is passed on at once");
    };
    let res = res.unwrap();
    assert!(!res.headers().contains_key(ETAG));
    let mut body = res.into_body();
    assert_eq!(body.size_hint().lower(), 6);
    assert_eq!(body.size_hint().upper(), None);
    assert!(!body.is_end_stream());
    for want in ["hel", "lo "] {
        let Poll::Ready(Some(Ok(frame))) = wakes.poll_frame(&mut body) else {
            panic!("held frame");
        };
        assert_eq!(frame.into_data().unwrap(), want);
    }
    // The rest is the inner body's: pending until it sends, waking the
    // reader then.
    assert!(wakes.poll_frame(&mut body).is_pending());
    let before = wakes.count();
    chan.data("world");
    assert_eq!(wakes.count(), before + 1);
    let Poll::Ready(Some(Ok(frame))) = wakes.poll_frame(&mut body) else {
        panic!("streamed frame");
    };
    assert_eq!(frame.into_data().unwrap(), "world");
    assert!(wakes.poll_frame(&mut body).is_pending());
    assert!(!chan.dropped());
    drop(body);
    assert!(
        chan.dropped(),
        "dropping the response body midway kept the inner one"
    );
}

#[tokio::test]
async fn the_precondition_layer_waits_for_its_resolver_and_drops_it_when_cancelled() {
    type Receiver = tokio::sync::oneshot::Receiver<Option<Validators>>;
    let pending: Arc<Mutex<Option<Receiver>>> = Arc::default();
    let resolver = {
        let pending = Arc::clone(&pending);
        move |_: &Parts| pending.lock().unwrap().take().unwrap()
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = PreconditionLayer::new(resolver).layer(MustBeReady::new(&calls));
    let wakes = Arc::new(WakeCount::default());

    // Answered once the lookup is, woken by it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    *pending.lock().unwrap() = Some(rx);
    let mut fut = Box::pin(svc.clone().oneshot(request(Method::GET, "/", &[], ())));
    wakes.poll_while(&mut fut, || pending.lock().unwrap().is_some());
    let woken = wakes.count();
    assert!(wakes.poll(&mut fut).is_pending());
    tx.send(Some(Validators::new(v7()))).unwrap();
    assert!(
        wakes.count() > woken,
        "the lookup's wake did not reach the task"
    );
    let Poll::Ready(res) = wakes.poll(&mut fut) else {
        panic!("not done after the lookup answered");
    };
    assert_eq!(res.unwrap().status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Dropped during the lookup: the lookup is dropped, nothing is called.
    let (tx, rx) = tokio::sync::oneshot::channel::<Option<Validators>>();
    *pending.lock().unwrap() = Some(rx);
    let mut fut = Box::pin(svc.oneshot(request(Method::GET, "/", &[], ())));
    wakes.poll_while(&mut fut, || pending.lock().unwrap().is_some());
    assert!(!tx.is_closed());
    drop(fut);
    assert!(tx.is_closed(), "the lookup outlived the response future");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Reads a whole body by hand, checking `is_end_stream` and `size_hint`
/// against what it yields.
fn read_checking_hints<B>(mut body: B, name: &str) -> Vec<u8>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let wakes = Arc::new(WakeCount::default());
    let mut read = Vec::new();
    loop {
        let hint = body.size_hint();
        let ended = body.is_end_stream();
        match wakes.poll_frame(&mut body) {
            Poll::Ready(Some(frame)) => {
                assert!(!ended, "{name}: a frame after is_end_stream");
                let data = frame.unwrap().into_data().unwrap();
                assert!(
                    data.len() as u64 <= hint.upper().unwrap_or(u64::MAX),
                    "{name}"
                );
                read.extend_from_slice(&data);
            }
            Poll::Ready(None) => {
                assert!(ended, "{name}: ended without is_end_stream");
                assert_eq!(hint.exact(), Some(0), "{name}");
                break;
            }
            Poll::Pending => panic!("{name}: pending"),
        }
    }
    assert!(
        matches!(wakes.poll_frame(&mut body), Poll::Ready(None)),
        "{name}"
    );
    read
}

#[tokio::test]
async fn the_bodies_the_layers_make_state_their_size_and_end_exactly() {
    let v7 = v7().to_string();
    let hello = ETag::from_content("hello").to_string();
    let etag = |headers: &[(HeaderName, &str)], method: Method| {
        let reply = Reply::ok(TestBody::new([Piece::Data(Bytes::from_static(b"hello"))]));
        let req = request(method, "/", headers, ());
        async move { through_etag_layer(None, reply, req).await.0 }
    };
    let handler = Handler::default();
    let precondition = |method: Method, headers: &[(HeaderName, &str)]| {
        let svc = precondition_layer(present(), Config::Default).layer(handler.service());
        let req = request(method, "/", headers, String::new());
        async move { svc.oneshot(req).await.unwrap() }
    };
    let cases = vec![
        (
            "etag 200",
            etag(&[], Method::GET).await.map(BodyExt::boxed_unsync),
            5,
        ),
        (
            "etag 304",
            etag(&[(IF_NONE_MATCH, &hello)], Method::GET)
                .await
                .map(BodyExt::boxed_unsync),
            0,
        ),
        (
            "etag 412",
            etag(&[(IF_MATCH, "\"x\"")], Method::GET)
                .await
                .map(BodyExt::boxed_unsync),
            usize::MAX,
        ),
        (
            "etag HEAD 200",
            etag(&[], Method::HEAD).await.map(BodyExt::boxed_unsync),
            0,
        ),
        (
            "etag HEAD 412",
            etag(&[(IF_MATCH, "\"x\"")], Method::HEAD)
                .await
                .map(BodyExt::boxed_unsync),
            0,
        ),
        (
            "etag HEAD 304",
            etag(&[(IF_NONE_MATCH, &hello)], Method::HEAD)
                .await
                .map(BodyExt::boxed_unsync),
            0,
        ),
    ];
    let mut all = Vec::new();
    for (name, res, len) in cases {
        all.push((
            name,
            res.map(|b| b.map_err(|e| e.to_string()).boxed_unsync()),
            len,
        ));
    }
    for (name, res, len) in [
        (
            "precondition 304",
            precondition(Method::GET, &[(IF_NONE_MATCH, &v7)]).await,
            0,
        ),
        (
            "precondition 412",
            precondition(Method::PUT, &[(IF_MATCH, "\"x\"")]).await,
            usize::MAX,
        ),
        (
            "precondition 428",
            precondition(Method::PUT, &[]).await,
            usize::MAX,
        ),
        (
            "precondition HEAD 412",
            precondition(Method::HEAD, &[(IF_MATCH, "\"x\"")]).await,
            0,
        ),
        (
            "precondition HEAD 304",
            precondition(Method::HEAD, &[(IF_NONE_MATCH, &v7)]).await,
            0,
        ),
    ] {
        all.push((
            name,
            res.map(|b| b.map_err(|e: Infallible| match e {}).boxed_unsync()),
            len,
        ));
    }
    for (name, res, len) in all {
        let exact = res.body().size_hint().exact();
        let declared = res
            .headers()
            .get(CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        let head = name.contains("HEAD");
        let status = res.status();
        let read = read_checking_hints(res.into_body(), name);
        if len != usize::MAX {
            assert_eq!(read.len(), len, "{name}");
        }
        assert_eq!(
            exact,
            Some(read.len() as u64),
            "{name}: size_hint not exact"
        );
        if status == StatusCode::NOT_MODIFIED {
            // No content, and a length only if it is the 200's (RFC 9110
            // §8.6): `ETagLayer` read that body ("hello"), while
            // `PreconditionLayer` never saw one.
            assert!(read.is_empty(), "{name}");
            assert_eq!(declared, name.starts_with("etag").then_some(5), "{name}");
        } else if head {
            // No content, and the GET's length.
            assert!(read.is_empty(), "{name}");
            assert!(declared.is_some(), "{name}");
        } else {
            assert!(declared.is_none_or(|d| d == read.len() as u64), "{name}");
        }
    }
}

/// A body that is `Send` but not `Sync`, as a body holding a `Cell` or a
/// channel receiver is.
struct UnsyncBody(std::cell::Cell<Option<Bytes>>);

impl Body for UnsyncBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn the_futures_and_bodies_need_send_but_not_sync() {
    fn send<T: Send + 'static>(value: T) -> T {
        value
    }
    let inner = service_fn(|_req: Request<UnsyncBody>| {
        ready(Ok::<_, Infallible>(Response::new(UnsyncBody(
            std::cell::Cell::new(Some(Bytes::from_static(b"hello"))),
        ))))
    });
    let svc = tower::ServiceBuilder::new()
        .layer(ETagLayer::new())
        .layer(PreconditionLayer::new(yielding_resolver()))
        .service(inner);
    let req = || Request::new(UnsyncBody(std::cell::Cell::new(None)));
    // Spawned on the multi-threaded runtime: the futures must be Send.
    let res = tokio::spawn(send(svc.clone().oneshot(req())))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(etag_header(&res), Some(ETag::from_content("hello")));
    let body = send(res.into_body());
    assert_eq!(body_bytes(body).await, "hello");
}

#[tokio::test]
async fn both_layers_fit_axum_router_layer_route_layer_and_method_router_layer() {
    let resolver = yielding_resolver();
    let handler = || async { "hello" };
    let apps: [(&str, Router); 4] = [
        (
            "Router::layer",
            Router::new()
                .route("/", get(handler).put(handler))
                .layer(PreconditionLayer::new(resolver.clone()))
                .layer(ETagLayer::new()),
        ),
        (
            "Router::route_layer",
            Router::new()
                .route("/", get(handler).put(handler))
                .route_layer(PreconditionLayer::new(resolver.clone()))
                .route_layer(ETagLayer::new()),
        ),
        (
            "MethodRouter::layer",
            Router::new().route(
                "/",
                get(handler)
                    .put(handler)
                    .layer::<_, Infallible>(PreconditionLayer::new(resolver.clone()))
                    .layer::<_, Infallible>(ETagLayer::new()),
            ),
        ),
        (
            "MethodRouter::route_layer",
            Router::new().route(
                "/",
                get(handler)
                    .put(handler)
                    .route_layer(PreconditionLayer::new(resolver.clone()))
                    .route_layer(ETagLayer::new()),
            ),
        ),
    ];
    let v7 = v7().to_string();
    for (name, app) in apps {
        let res = app
            .clone()
            .oneshot(request(Method::GET, "/", &[], axum::body::Body::empty()))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        assert_eq!(
            etag_header(&res),
            Some(ETag::from_content("hello")),
            "{name}"
        );
        let res = app
            .clone()
            .oneshot(request(Method::PUT, "/", &[], axum::body::Body::empty()))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PRECONDITION_REQUIRED, "{name}");
        let res = app
            .oneshot(request(
                Method::PUT,
                "/",
                &[(IF_MATCH, &v7)],
                axum::body::Body::empty(),
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{name}");
    }
}

/// Sends `raw` to `addr` and reads the whole answer (the request asks
/// for the connection to be closed).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn exchange(addr: std::net::SocketAddr, raw: String) -> String {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        // A server that never ends its answer fails the test, not hangs it.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut answer = String::new();
        if let Err(e) = stream.read_to_string(&mut answer) {
            panic!("no complete answer ({e}); so far: {answer:?}");
        }
        answer
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn both_layers_serve_over_hyper_directly_with_the_right_framing() {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    let inner = service_fn(|req: Request<hyper::body::Incoming>| async move {
        let mut res = Response::new(http_body_util::Full::new(Bytes::from_static(
            b"hello world",
        )));
        if req.uri().path() == "/trailers" {
            // Two frames and trailers: buffered and tagged, sent chunked.
            let body = TestBody::new([
                Piece::Data(Bytes::from_static(b"hello ")),
                Piece::Data(Bytes::from_static(b"world")),
                Piece::Trailers(header_map(&[(HeaderName::from_static("x-sum"), "1")])),
            ]);
            let mut res = Response::new(body.map_err(BoxError::from).boxed_unsync());
            // hyper sends only the trailers the response announces.
            res.headers_mut()
                .insert(http::header::TRAILER, HeaderValue::from_static("x-sum"));
            return Ok::<_, Infallible>(res);
        }
        if req.uri().path() == "/events" {
            let mut res = Response::new(
                OpenEndedBody { sent: false }
                    .map_err(|e| -> BoxError { match e {} })
                    .boxed_unsync(),
            );
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            return Ok(res);
        }
        if req.uri().path() == "/length" {
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static("11"));
        }
        Ok(res.map(|b| b.map_err(|e| -> BoxError { match e {} }).boxed_unsync()))
    });
    let svc = tower::ServiceBuilder::new()
        .layer(ETagLayer::new())
        .layer(PreconditionLayer::new(yielding_resolver()))
        .service(inner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                // A panic here (hyper asserts in debug builds that a
                // Content-Length header matches an exact body size) ends
                // the connection without an answer.
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                    .unwrap();
            });
        }
    });
    let tag = ETag::from_content("hello world").to_string();
    let send = |method: &str, path: &str, extra: &str| {
        exchange(
            addr,
            format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\nte: trailers\r\n{extra}connection: close\r\n\r\n"
            ),
        )
    };
    for path in ["/", "/length"] {
        let get = send("GET", path, "").await;
        assert!(get.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {get}");
        assert!(get.contains("content-length: 11\r\n"), "{path}: {get}");
        assert!(get.contains(&format!("etag: {tag}\r\n")), "{path}: {get}");
        assert!(get.ends_with("\r\n\r\nhello world"), "{path}: {get}");

        let head = send("HEAD", path, "").await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {head}");
        assert!(head.contains("content-length: 11\r\n"), "{path}: {head}");
        assert!(head.contains(&format!("etag: {tag}\r\n")), "{path}: {head}");
        assert!(head.ends_with("\r\n\r\n"), "{path}: {head}");

        for method in ["GET", "HEAD"] {
            let not_modified = send(method, path, &format!("if-none-match: {tag}\r\n")).await;
            assert!(
                not_modified.starts_with("HTTP/1.1 304 Not Modified\r\n"),
                "{path}: {not_modified}"
            );
            // §8.6: the 200's length or none (hyper drops it from a 304 to
            // a GET); a HEAD states it, as its 200 does.
            let length = not_modified.contains("content-length: 11\r\n");
            assert_eq!(
                not_modified.contains("content-length"),
                length,
                "{path}: {not_modified}"
            );
            assert!(length || method == "GET", "{path}: {not_modified}");
            assert!(not_modified.ends_with("\r\n\r\n"), "{path}: {not_modified}");
        }
    }
    // The layer's own problem responses: the same length for GET and HEAD.
    let put = send("PUT", "/", "content-length: 0\r\n").await;
    assert!(
        put.starts_with("HTTP/1.1 428 Precondition Required\r\n"),
        "{put}"
    );
    let (head, body) = put.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("content-length: {}\r\n", body.len())),
        "{put}"
    );
    let failed = send("HEAD", "/", "if-match: \"x\"\r\n").await;
    assert!(
        failed.starts_with("HTTP/1.1 412 Precondition Failed\r\n"),
        "{failed}"
    );
    assert!(failed.contains("content-length: "), "{failed}");
    assert!(failed.ends_with("\r\n\r\n"), "{failed}");
    // A buffered body with trailers is sent chunked, trailers and all.
    let chunked = send("GET", "/trailers", "").await;
    assert!(chunked.starts_with("HTTP/1.1 200 OK\r\n"), "{chunked}");
    assert!(chunked.contains(&format!("etag: {tag}\r\n")), "{chunked}");
    assert!(
        chunked.contains("transfer-encoding: chunked\r\n"),
        "{chunked}"
    );
    assert!(chunked.ends_with("\r\n0\r\nx-sum: 1\r\n\r\n"), "{chunked}");
    // A HEAD of an open-ended stream: dropped by the layer, no length stated.
    let sse = send("HEAD", "/events", "").await;
    assert!(sse.starts_with("HTTP/1.1 200 OK\r\n"), "{sse}");
    assert!(sse.ends_with("\r\n\r\n"), "{sse}");
    server.abort();
}

#[tokio::test]
async fn a_head_made_into_a_get_is_answered_without_content_even_of_unknown_length() {
    // The layer asks the service below for a GET, so the content it gets
    // back is the layer's to withhold (RFC 9110 §9.3.2 "The server MUST
    // NOT send content in the response"), also when its length is unknown:
    // hyper drops a HEAD response's body over HTTP/1.1, but its HTTP/2
    // server sends whatever body is not at its end, an event stream for
    // ever. Without an exact size, so that no framework states a
    // Content-Length of 0 from it.
    let wakes = Arc::new(WakeCount::default());
    let trailers = header_map(&[(HeaderName::from_static("x-sum"), "1")]);
    let over_limit = Reply::ok(TestBody::chunked(&content(101), 10));
    let event_stream = {
        let chan = ChannelHandle::default();
        chan.data("data: hello\n\n");
        chan
    };
    let cases: Vec<(&str, ifmatch::middleware::ResponseBody<ChannelBody>)> = vec![(
        "an event stream",
        // The stream never ends: a layer that buffers it never answers.
        tokio::time::timeout(
            Duration::from_secs(10),
            ETagLayer::new()
                .layer(service_fn({
                    let chan = event_stream.clone();
                    move |_req: Request<()>| {
                        let mut res = Response::new(chan.body());
                        res.headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                        ready(Ok::<_, Infallible>(res))
                    }
                }))
                .oneshot(request(Method::HEAD, "/", &[], ())),
        )
        .await
        .expect("the event stream's HEAD withheld")
        .unwrap()
        .into_body(),
    )];
    for (name, mut body) in cases {
        assert_eq!(body.size_hint().exact(), None, "{name}");
        assert!(body.is_end_stream(), "{name}: content for a HEAD");
        assert!(
            matches!(wakes.poll_frame(&mut body), Poll::Ready(None)),
            "{name}"
        );
    }
    assert!(event_stream.dropped(), "the event stream was not dropped");

    for (name, reply) in [
        ("a body over the limit", over_limit.clone()),
        (
            "a body over the limit, skipped",
            over_limit.header(CONTENT_TYPE, "application/x-ndjson"),
        ),
        (
            "a buffered body with trailers",
            Reply::ok(TestBody::new([
                Piece::Data(Bytes::from_static(b"hello")),
                Piece::Trailers(trailers.clone()),
            ])),
        ),
        (
            "a 404 of unknown length",
            Reply::ok(TestBody::new([Piece::Data(Bytes::from_static(b"gone"))]))
                .status(StatusCode::NOT_FOUND),
        ),
    ] {
        let (res, _) =
            through_etag_layer(Some(100), reply, request(Method::HEAD, "/", &[], ())).await;
        assert!(!res.headers().contains_key(CONTENT_LENGTH), "{name}");
        let body = res.into_body();
        assert_eq!(body.size_hint().exact(), None, "{name}");
        assert!(body.is_end_stream(), "{name}: content for a HEAD");
        let read = read_all(body).await;
        assert!(read.data.is_empty(), "{name}: content for a HEAD");
        assert_eq!(read.trailers, None, "{name}");
    }

    // A GET that would fail: no content, but the error still.
    let reply = Reply::ok(TestBody::new([
        Piece::Data(Bytes::from_static(b"abc")),
        Piece::Error("boom"),
    ]));
    let (res, _) = through_etag_layer(None, reply, request(Method::HEAD, "/", &[], ())).await;
    assert!(!res.headers().contains_key(CONTENT_LENGTH));
    let read = read_all(res.into_body()).await;
    assert!(read.data.is_empty(), "content for a HEAD");
    assert_eq!(read.error, Some(BodyError("boom")));
}

#[tokio::test]
async fn over_http2_a_head_gets_no_content_from_the_etag_layer() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;

    let inner = service_fn(|req: Request<hyper::body::Incoming>| async move {
        // Longer than the limit, and of unknown length.
        let mut res = Response::new(TestBody::chunked(b"hello world", 3));
        if req.uri().path() == "/events" {
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        }
        Ok::<_, Infallible>(res)
    });
    let svc = ETagLayer::new().limit(4).layer(inner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
            .await
            .unwrap();
    });
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for path in ["/", "/events"] {
        let req = request(
            Method::HEAD,
            &format!("http://{addr}{path}"),
            &[],
            http_body_util::Empty::<Bytes>::new(),
        );
        let res = client.send_request(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let content = res.into_body().collect().await.map(|c| c.to_bytes());
        assert_eq!(
            content.ok(),
            Some(Bytes::new()),
            "{path}: content for a HEAD"
        );
    }
    server.abort();
}

#[tokio::test]
async fn a_304_of_either_layer_is_not_compressed_by_a_compression_layer_outside_it() {
    // An app-wide `.layer(CompressionLayer::new())` over a route's layers:
    // tower-http compresses any body whose size it cannot tell (its
    // `SizeAbove` predicate), and gzip of nothing is not nothing. A 304
    // must carry no content (RFC 9110 §15.4.5), and its Content-Encoding
    // would be metadata a cache copies onto the stored response (RFC 9111
    // §4.3.4). So the layers' 304s state their size, 0, even though axum
    // turns that into `Content-Length: 0` on a HEAD's 304.
    let v7 = v7().to_string();
    let hello = ETag::from_content("hello").to_string();
    let tagged = || async { ([(ETAG, ETag::from_version(7).to_string())], "hello") };
    let apps: [(&str, Router, &str); 2] = [
        (
            "PreconditionLayer",
            Router::new()
                .route("/", get(tagged))
                .route_layer(PreconditionLayer::new(yielding_resolver()))
                .layer(CompressionLayer::new()),
            &v7,
        ),
        (
            "ETagLayer",
            Router::new()
                .route("/", get(|| async { "hello" }))
                .route_layer(ETagLayer::new())
                .layer(CompressionLayer::new()),
            &hello,
        ),
    ];
    for (name, app, tag) in apps {
        for method in [Method::GET, Method::HEAD] {
            let res = app
                .clone()
                .oneshot(request(
                    method.clone(),
                    "/",
                    &[(IF_NONE_MATCH, tag), (ACCEPT_ENCODING, "gzip")],
                    axum::body::Body::empty(),
                ))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{name} {method}");
            let encoding = res.headers().get(CONTENT_ENCODING).cloned();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(encoding, None, "{name} {method}");
            assert!(body.is_empty(), "{name} {method}: {} bytes", body.len());
        }
    }
}

#[tokio::test]
async fn a_changed_representation_dated_in_the_future_is_not_answered_304() {
    // A service that knows only dates (tower-http's ServeDir sends a file's
    // mtime as it is) serves an over-limit file, so no tag: the client
    // revalidates with the Last-Modified it got through the layer. The
    // file then changes, its mtime still ahead of this server's clock.
    // RFC 9110 §13.1.3: "If the selected representation's last
    // modification date is earlier or equal to the date provided in the
    // field value, the condition is false." F2 is later than F1: 200.
    let f1 = std::time::SystemTime::now() + Duration::from_secs(3600);
    let f2 = f1 + Duration::from_secs(300);
    let inner = service_fn(move |_req: Request<()>| {
        let body = http_body_util::Full::new(Bytes::from(vec![b'x'; DEFAULT_ETAG_LIMIT + 1]));
        let mut res = Response::new(body);
        res.headers_mut().insert(
            LAST_MODIFIED,
            HeaderValue::from_str(&httpdate::fmt_http_date(f2)).unwrap(),
        );
        ready(Ok::<_, Infallible>(res))
    });
    let svc = ETagLayer::new().layer(inner);
    let (f1, f2) = (httpdate::fmt_http_date(f1), httpdate::fmt_http_date(f2));
    let req = get_request(&[(IF_MODIFIED_SINCE, &f1)]);
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[LAST_MODIFIED], f2.as_str());
    // §13.1.4: changed since F1, so If-Unmodified-Since: F1 is false.
    let req = get_request(&[(IF_UNMODIFIED_SINCE, &f1)]);
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    // The date the client was sent, echoed: not modified since.
    let req = get_request(&[(IF_MODIFIED_SINCE, &f2)]);
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()[LAST_MODIFIED], f2.as_str());
}

/// RFC 9110 §8.8.2.1: the 304 the layer sends for a target whose clock
/// runs ahead carries the time it is sent as Last-Modified, not 2100.
#[tokio::test]
async fn the_layer_304_of_a_target_dated_in_the_future_is_dated_when_it_is_sent() {
    let handler = Handler::default();
    let svc = PreconditionLayer::new(resolver(modified_in_the_future())).layer(handler.service());
    let req = request(
        Method::GET,
        "/doc",
        &[(IF_NONE_MATCH, "\"v7\"")],
        String::new(),
    );
    let before = SystemTime::now() - Duration::from_secs(1);
    let res = svc.oneshot(req).await.unwrap();
    let after = SystemTime::now();
    assert_eq!(handler.calls(), 0);
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()[ETAG], "\"v7\"");
    let sent = httpdate::parse_http_date(res.headers()[LAST_MODIFIED].to_str().unwrap()).unwrap();
    assert!(
        before <= sent && sent <= after,
        "Last-Modified {sent:?} is not the time of the response"
    );
}
