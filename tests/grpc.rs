#![cfg(feature = "middleware")]
//! The layers in a tonic server, over a real HTTP/2 connection: what the
//! README's "gRPC and tonic" section says, run. tonic-health ships its
//! generated code, so no protoc is needed.
//!
//! - gRPC calls pass through both layers untouched: unary calls, a server
//!   stream whose messages arrive while it is still open (not buffered),
//!   and the `grpc-status` of its trailers;
//! - the layers also fit per service (`named_layer`) and on the REST
//!   routes of a server that serves gRPC on the same port;
//! - `PreconditionLayer` sees only `POST /package.Service/Method`, and a
//!   412 or 428 it answers reaches a gRPC client as a protocol error.

use std::convert::Infallible;
use std::future::Future;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::Method;
use http::request::Parts;
use http_body_util::BodyExt;
use ifmatch::middleware::{ETagLayer, PreconditionLayer};
use ifmatch::{ETag, Policy};
use tonic::Code;
use tonic::service::{LayerExt, Routes};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Reported;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::{HealthReporter, health_reporter};
use tower::ServiceBuilder;

/// The service name tonic-health registers for itself.
const HEALTH: &str = "grpc.health.v1.Health";

type Seen = Arc<Mutex<Vec<String>>>;

/// A resolver that records what it was asked about and reports `current`.
fn resolver(
    seen: &Seen,
    current: Option<ETag>,
) -> impl Fn(&Parts) -> Ready<Result<Option<ETag>, Infallible>> + Clone + Send + Sync + 'static {
    let seen = Arc::clone(seen);
    move |parts: &Parts| {
        let asked = format!("{} {}", parts.method, parts.uri.path());
        seen.lock().unwrap().push(asked);
        ready(Ok(current.clone()))
    }
}

/// A listener on a free port, for `serve_with_incoming`.
fn incoming() -> (TcpIncoming, SocketAddr) {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    (incoming, addr)
}

async fn health_client(addr: SocketAddr) -> HealthClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap();
    HealthClient::new(channel.connect().await.unwrap())
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

/// Not a timing assertion: a guard so that a stream the layers held back
/// fails the test instead of hanging it.
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("no answer: the response was held back")
}

/// A `Watch` of the health service over plain HTTP/2, to see its frames.
async fn raw_watch(addr: SocketAddr) -> http::Response<hyper::body::Incoming> {
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    // One uncompressed gRPC message: `HealthCheckRequest { service }`,
    // field 1 (length-delimited), encoded by hand.
    let mut message = vec![0x0a, HEALTH.len() as u8];
    message.extend_from_slice(HEALTH.as_bytes());
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let req = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Watch"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::from(frame)))
        .unwrap();
    client.send_request(req).await.unwrap()
}

/// Unary calls, a status sent in the headers (trailers-only), and a server
/// stream: its first messages arrive while it is still open, and its end
/// carries `grpc-status: 0` in the trailers (tonic reports a stream that
/// ends without one as an error).
async fn health_round_trip(addr: SocketAddr, reporter: &mut HealthReporter) {
    let mut client = health_client(addr).await;
    let res = client.check(check("")).await.unwrap().into_inner();
    assert_eq!(res.status(), Reported::Serving);
    let unknown = client.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    reporter
        .set_service_status(HEALTH, ServingStatus::Serving)
        .await;
    // The stream stays open until the status is cleared below, so a layer
    // that buffered the body would never let its head or messages through.
    let mut stream = within(client.watch(check(HEALTH)))
        .await
        .unwrap()
        .into_inner();
    let raw = within(raw_watch(addr)).await;
    assert_eq!(raw.status(), 200);
    let mut raw = raw.into_body();
    let frame = within(raw.frame()).await.unwrap().unwrap();
    assert!(frame.is_data(), "{frame:?}");
    let first = within(stream.message()).await.unwrap().unwrap();
    assert_eq!(first.status(), Reported::Serving);
    reporter
        .set_service_status(HEALTH, ServingStatus::NotServing)
        .await;
    let second = within(stream.message()).await.unwrap().unwrap();
    assert_eq!(second.status(), Reported::NotServing);
    // Clearing the status ends the stream: OK, from the trailers.
    reporter.clear_service_status(HEALTH).await;
    assert!(within(stream.message()).await.unwrap().is_none());
    let mut trailers = None;
    while let Some(frame) = within(raw.frame()).await {
        if let Ok(t) = frame.unwrap().into_trailers() {
            trailers = Some(t);
        }
    }
    let trailers = trailers.expect("the stream's trailers");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test]
async fn grpc_calls_pass_through_both_layers_around_a_tonic_server() {
    let seen = Seen::default();
    let (mut reporter, health) = health_reporter();
    let (incoming, addr) = incoming();
    let server = Server::builder()
        .layer(ETagLayer::new())
        .layer(PreconditionLayer::new(resolver(&seen, None)))
        .add_service(health)
        .serve_with_incoming(incoming);
    tokio::spawn(server);

    health_round_trip(addr, &mut reporter).await;

    // All the resolver learns of a call is its method's path: the
    // resource a gRPC call acts on is named inside the message.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter()
            .all(|s| s.starts_with("POST /grpc.health.v1.Health/")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn the_layers_fit_one_grpc_service_with_named_layer() {
    let seen = Seen::default();
    let (mut reporter, health) = health_reporter();
    // `named_layer` keeps the service's `NamedService`, which tonic routes by.
    let layered = ServiceBuilder::new()
        .layer(ETagLayer::new())
        .layer(PreconditionLayer::new(resolver(&seen, None)))
        .named_layer(health);
    let (incoming, addr) = incoming();
    let server = Server::builder()
        .add_service(layered)
        .serve_with_incoming(incoming);
    tokio::spawn(server);

    health_round_trip(addr, &mut reporter).await;
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn rest_routes_with_the_layers_share_a_port_with_grpc() {
    let (mut reporter, health) = health_reporter();
    let rest: Router = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .layer(ETagLayer::new());
    let routes = Routes::from(rest).add_service(health);
    let (incoming, addr) = incoming();
    let server = Server::builder()
        .accept_http1(true)
        .add_routes(routes)
        .serve_with_incoming(incoming);
    tokio::spawn(server);

    let http = reqwest::Client::new();
    let url = format!("http://{addr}/hello");
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let tag = res.headers()["etag"].clone();
    assert_eq!(tag, ETag::from_content("hello").to_header_value());
    let again = http
        .get(&url)
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    health_round_trip(addr, &mut reporter).await;
}

#[tokio::test]
async fn a_precondition_refusal_reaches_a_grpc_client_as_a_protocol_error() {
    let seen = Seen::default();
    let (_reporter, health) = health_reporter();
    // POST added to the required methods, and a resolver that reports a
    // target: every gRPC call is now a conditional request.
    let policy = Policy::strict().require_precondition_for([Method::POST]);
    let layer = PreconditionLayer::new(resolver(&seen, Some(ETag::from_version(9)))).policy(policy);
    let (incoming, addr) = incoming();
    let server = Server::builder()
        .layer(layer)
        .add_service(health)
        .serve_with_incoming(incoming);
    tokio::spawn(server);
    let mut client = health_client(addr).await;

    // No `if-match` metadata: the layer's 428, not a gRPC status.
    let required = client.check(check("")).await.unwrap_err();
    // A stale `if-match`: the layer's 412.
    let mut stale = tonic::Request::new(check(""));
    stale
        .metadata_mut()
        .insert("if-match", "\"v8\"".parse().unwrap());
    let failed = client.check(stale).await.unwrap_err();

    for (status, http) in [(&required, "428"), (&failed, "412")] {
        // tonic reads the problem body as a gRPC frame and gives up: the
        // code says nothing about preconditions, the detail is lost, and
        // only the response's headers reach the client, as metadata.
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert!(status.message().contains(http), "{status:?}");
        assert_eq!(
            status.metadata().get("content-type").unwrap(),
            "application/problem+json"
        );
    }
    assert_eq!(failed.metadata().get("etag").unwrap(), "\"v9\"");
}
