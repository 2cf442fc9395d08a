//! tower middleware: preconditions enforced before the handler runs, and
//! automatic content ETags. Needs the `middleware` feature.
//!
//! Two layers, usable apart or together, with any `http` 1.x stack built on
//! `tower` (axum, hyper, tonic): one that hands them an
//! `http::Request<B>`. A framework with a request type of its own whose
//! tower adapter passes that type on (Poem's `tower-compat`) cannot host
//! them; call [`Gate`](crate::Gate) there, as for actix-web (README).
//!
//! - [`PreconditionLayer`], for reads and writes of a resource whose
//!   current version the service can look up: before calling the handler it
//!   asks a [`Resolve`]r for the target's current state, evaluates the
//!   request's preconditions with [`Policy::evaluate`](crate::Policy::evaluate)
//!   and answers 304, 412 or 428 (404 for a PATCH or DELETE of a missing
//!   target) itself — the handler is **not called**, so
//!   nothing is written. When the request may proceed, the handler finds a
//!   [`Precondition`] in the request extensions: the [`Expected`] state its
//!   write must be conditioned on (a compare-and-swap, see
//!   [`ConditionalStore`](crate::ConditionalStore)). If that write reports a
//!   [`Conflict`], return [`conflict_response`] and the layer answers the
//!   same 412 a failed precondition gets, with the now-current ETag (404
//!   for a write without a precondition that found the target gone, 409
//!   for a write under no precondition or `If-Match: *` that lost a race
//!   while the target exists); if
//!   the store itself failed, return [`unconfirmed_response`] for the
//!   layer's 503 that tells the client the change may or may not have
//!   been applied ([`unavailable_response`] where nothing can have been
//!   written). `Response::from` a [`WriteError`] picks between a conflict
//!   and an unconfirmed write, so a handler that returns
//!   `Result<Response, Response>` can write with `?` (and modify:
//!   `Response::from` a [`ModifyError`]).
//!   A target the resolver reports absent is evaluated only for PUT, the
//!   one method that can create it ([RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1): the 404 comes before
//!   preconditions): a PATCH or DELETE of it gets 404 from the layer, and a
//!   GET or HEAD proceeds with [`Expected::Absent`] for the handler's own
//!   404.
//! - [`ETagLayer`], the "shallow ETag" pattern for GET and HEAD: it hashes a
//!   200 response's body (or a 206's whose range is all of it) with blake3
//!   while buffering it (up to a limit, 1 MiB by default), sets a strong
//!   `ETag`, and turns the response into a
//!   304 when the request's `If-None-Match` matches. It also answers
//!   `If-Modified-Since` (from the response's `Last-Modified`) and
//!   `If-Match` (412) itself, and holds `If-Modified-Since` back from the
//!   service below. Nothing is saved on the server (the handler still
//!   runs), but the body is not sent again.
//!   A HEAD request is passed on as a GET, without `Range` and `If-Range`
//!   (range requests are defined for GET only, [RFC 9110 §14.2](https://www.rfc-editor.org/rfc/rfc9110#section-14.2)), so that its
//!   tag is computed from the same, whole representation (stacks often drop
//!   HEAD bodies before a layer could hash them); the body is then dropped,
//!   and `Content-Length` states what the GET's would (§8.6): a field the
//!   service below set stays, restated to the length read when the layer
//!   read the whole body, as for the GET; without one, the length is
//!   stated when it is known exactly, from a body buffered to its end
//!   without trailers or from the exact `size_hint` of a body the layer
//!   does not read (over the limit, an event stream, skipped, with a tag
//!   of its own, or a status it does not tag). Never on a 1xx, 204 or 304
//!   from the service below, which have no content to measure, nor beside
//!   a `Transfer-Encoding`. Otherwise (a stream of unknown length,
//!   trailers, an error) no length is stated. (A 304 the layer answers
//!   itself states the 200's length when it knows it, trailers or not:
//!   README, "`Content-Length` on a 304".) What the layer does not need of the body is dropped
//!   unread: not every server drops a HEAD response's body (hyper's HTTP/2
//!   server sends it). An error the layer met reading it is still passed
//!   on. A GET whose `If-Range` is not one valid date (an entity tag,
//!   which the service below cannot check against the tags this layer
//!   computes, or a value that is no condition at all) is passed on
//!   without `Range` and `If-Range`, so that it gets the whole representation rather than a part of one that
//!   may have changed (§13.1.5). So is a GET with `If-Match`,
//!   `If-None-Match` or a valid `If-Modified-Since`: the layer compares
//!   tags with its tag of the whole representation, and a 304 must carry
//!   that tag (§15.4.5), which a `206` of a part would not give it.
//!   Because a HEAD reaches the service below as a GET, that service must
//!   answer GET wherever it answers HEAD: wrap routes (axum's
//!   `Router::layer` and `route_layer` wrap each route's handlers after
//!   routing by method) rather than a whole router with a HEAD-only route,
//!   which would answer that route's HEAD with 405.
//!
//! Neither layer has precondition logic of its own: both call the core
//! evaluator and the core response builders.
//!
//! In a tonic server the layers are for REST routes (on the same port or
//! not). A gRPC call is a `POST /package.Service/Method`: [`ETagLayer`]
//! passes it through untouched (streamed, trailers included), and
//! [`PreconditionLayer`]'s resolver sees no more than that path, as the
//! resource is named inside the message. The layer lets the call through
//! unevaluated when the resolver finds nothing; when it refuses one (a
//! call without a precondition, POST made to require one, or `if-match`
//! metadata, in either case against a target the resolver reports), its
//! 412 or 428 is no gRPC answer, and tonic's
//! client reports `Code::Internal` without the problem body. Check a gRPC
//! method's preconditions inside it with [`Gate`](crate::Gate): tonic's
//! `MetadataMap` is `AsRef<http::HeaderMap>`, so `if-match` metadata is
//! read as the header is. The README's "gRPC and tonic" section has the
//! example.
//!
//! # Example (axum)
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use axum::extract::State;
//! use axum::http::{request::Parts, header, StatusCode, Uri};
//! use axum::response::{IntoResponse, Response};
//! use axum::routing::get;
//! use axum::{Extension, Router};
//! use ifmatch::middleware::{ETagLayer, Precondition, PreconditionLayer};
//! use ifmatch::{insert_validators, ConditionalStore, MemoryStore};
//!
//! type Store = Arc<MemoryStore<String, String>>;
//!
//! /// The target's key, read the same way by the resolver and the handlers,
//! /// so that the precondition and the write name the same item.
//! fn id(uri: &Uri) -> String {
//!     uri.path().trim_start_matches("/docs/").to_owned()
//! }
//!
//! async fn read(State(store): State<Store>, uri: Uri) -> Response {
//!     match store.get(&id(&uri)) {
//!         Some(doc) => {
//!             // The validators the resolver reports: ETag and Last-Modified.
//!             let mut res = doc.value().clone().into_response();
//!             insert_validators(res.headers_mut(), &doc);
//!             res
//!         }
//!         None => StatusCode::NOT_FOUND.into_response(),
//!     }
//! }
//!
//! async fn write(
//!     State(store): State<Store>,
//!     Extension(pre): Extension<Precondition>,
//!     uri: Uri,
//!     body: String,
//! ) -> Result<Response, Response> {
//!     // The write is conditioned on what the layer checked; `?` turns a
//!     // conflict into the layer's 412 (a failed store, never MemoryStore,
//!     // into its 503). Whether it created the document is told by the
//!     // write itself (in opt-in mode a PUT without a precondition may
//!     // create too).
//!     let written = store.store(&id(&uri), pre.expected(), body).await?;
//!     let status = if written.created() { StatusCode::CREATED } else { StatusCode::OK };
//!     let doc = written.into_stored();
//!     Ok((status, [(header::ETAG, doc.etag().to_header_value())], doc.into_value()).into_response())
//! }
//!
//! let store: Store = Arc::new(MemoryStore::new());
//! let resolver = {
//!     let store = store.clone();
//!     move |parts: &Parts| {
//!         let current = store.validators(&id(&parts.uri));
//!         async move { Ok::<_, Infallible>(current) }
//!     }
//! };
//! let app: Router = Router::new()
//!     .route(
//!         "/docs/{id}",
//!         get(read).put(write).route_layer(PreconditionLayer::new(resolver)),
//!     )
//!     .layer(ETagLayer::new())
//!     .with_state(store);
//! ```
//!
//! Put [`PreconditionLayer`] on the method router, as above:
//! `Router::route_layer` also wraps axum's fallback for methods the route
//! lacks, which would then answer 428 (after a needless lookup) instead of
//! 405, and `Router::layer` wraps the router's fallback as well: a path no
//! route matches would get 428, 412, or for a GET even a 304 (when the
//! resolver finds something under that path), instead of 404, after a
//! lookup for every such path. Under `Router::nest`, add the layer to the
//! nested router, not the outer one: the outer one's layers see the whole
//! path (`/api/docs/a`), while the nested router's handlers see it without
//! the prefix (`/docs/a` in their `Uri`), and the resolver and the write
//! would name different targets (every write a 412). Handlers behind it send the tag the resolver reports (here the
//! store's), so that clients echo a tag the layer knows: [`ETagLayer`] only
//! hashes responses that carry no `ETag`, and a content hash in place of
//! the resolver's version tag would fail every later `If-Match`. Add every
//! method before `route_layer`: one added after it is not behind the layer.
//!
//! A PATCH that loads the current value and stores the patched one goes
//! through [`ConditionalStore::modify`](crate::ConditionalStore::modify):
//! it writes under the version it read, reapplies the change after a race
//! the client did not lose (a request that named no version), and its
//! [`ModifyError`] converts with `?` too, a lost race
//! every time into the layer's 409 ([`busy_response`]).
//!
//! # Example (hyper 1, no framework)
//!
//! Without a router, stack the layers with `tower::ServiceBuilder` and
//! serve the result with hyper-util's `TowerToHyperService`. In a
//! `ServiceBuilder` the first layer is the outermost: [`ETagLayer`] first,
//! then [`PreconditionLayer`], as axum's `.layer(ETagLayer)` after
//! `.route_layer(PreconditionLayer)` above.
//!
//! **Route before the layers.** [`PreconditionLayer`] treats every request
//! that reaches it as one for a resource: wrapped around a whole service,
//! it answers a PUT to a path that names no resource (`/other`, `/docs`)
//! 428 instead of the 404 or 405 your router would give, and lets a POST
//! to a collection through unevaluated, as its resolver finds no target
//! there. So match the resource's paths first and send only those through
//! the layers. The layered service's responses have a [`ResponseBody`],
//! the other routes' their own body type: `http_body_util::Either` joins
//! them.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use http::{header, request::Parts, Method, Request, Response, StatusCode, Uri};
//! use http_body::Body;
//! use http_body_util::{BodyExt, Either, Full};
//! use ifmatch::middleware::{ETagLayer, Precondition, PreconditionLayer};
//! use ifmatch::{insert_validators, ConditionalStore, MemoryStore};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! type Store = Arc<MemoryStore<String, String>>;
//! type Res = Response<Full<Bytes>>;
//! type BoxError = Box<dyn std::error::Error + Send + Sync>;
//!
//! /// `/docs/{id}`: the one key the resolver and the handler use.
//! fn doc_id(uri: &Uri) -> Option<String> {
//!     let id = uri.path().strip_prefix("/docs/")?;
//!     (!id.is_empty() && !id.contains('/')).then(|| id.to_owned())
//! }
//!
//! fn status(status: StatusCode) -> Res {
//!     Response::builder().status(status).body(Full::default()).unwrap_or_default()
//! }
//!
//! /// GET, HEAD and PUT of one document, behind both layers.
//! async fn doc<B: Body>(store: Store, id: String, req: Request<B>) -> Result<Res, Res> {
//!     // Put there by PreconditionLayer: without it, fail instead of
//!     // writing unconditionally.
//!     let pre = req.extensions().get::<Precondition>().cloned();
//!     let pre = pre.ok_or_else(|| status(StatusCode::INTERNAL_SERVER_ERROR))?;
//!     match *req.method() {
//!         Method::GET | Method::HEAD => {
//!             let doc = store.get(&id).ok_or_else(|| status(StatusCode::NOT_FOUND))?;
//!             let mut res = Response::new(Full::from(doc.value().clone()));
//!             insert_validators(res.headers_mut(), &doc);
//!             Ok(res)
//!         }
//!         Method::PUT => {
//!             let body = req.into_body().collect().await;
//!             let body = body.map_err(|_| status(StatusCode::BAD_REQUEST))?.to_bytes();
//!             let body = String::from_utf8(body.into()).map_err(|_| status(StatusCode::BAD_REQUEST))?;
//!             // A conflict becomes the layer's 412 with `?`.
//!             let written = store.store(&id, pre.expected(), body).await?;
//!             let created = written.created();
//!             let mut res = status(if created { StatusCode::CREATED } else { StatusCode::OK });
//!             insert_validators(res.headers_mut(), &written); // stored as sent
//!             Ok(res)
//!         }
//!         _ => Err(status(StatusCode::METHOD_NOT_ALLOWED)),
//!     }
//! }
//!
//! /// The whole service, for any request body (hyper's is `Incoming`).
//! fn app<B>(store: Store) -> impl Service<
//!     Request<B>,
//!     Response = Response<impl Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static>,
//!     Error = Infallible,
//!     Future: Send + 'static,
//! > + Clone + Send + 'static
//! where
//!     B: Body + Send + 'static,
//!     B::Data: Send,
//! {
//!     let resolver = {
//!         let store = store.clone();
//!         move |parts: &Parts| {
//!             let current = doc_id(&parts.uri).and_then(|id| store.validators(&id));
//!             async move { Ok::<_, Infallible>(current) }
//!         }
//!     };
//!     let docs = ServiceBuilder::new()
//!         .layer(ETagLayer::new()) // outermost
//!         .layer(PreconditionLayer::new(resolver))
//!         .service_fn({
//!             let store = store.clone();
//!             move |req: Request<B>| {
//!                 let (store, id) = (store.clone(), doc_id(req.uri()).unwrap_or_default());
//!                 async move { Ok::<_, Infallible>(doc(store, id, req).await.unwrap_or_else(|res| res)) }
//!             }
//!         });
//!     // The router, outside the layers.
//!     tower::service_fn(move |req: Request<B>| {
//!         let docs = docs.clone();
//!         async move {
//!             if doc_id(req.uri()).is_some() {
//!                 let res = docs.oneshot(req).await?;
//!                 return Ok(res.map(Either::Left));
//!             }
//!             Ok(status(StatusCode::NOT_FOUND).map(Either::Right))
//!         }
//!     })
//! }
//!
//! /// Serving it with hyper 1.
//! async fn serve(listener: tokio::net::TcpListener, store: Store) -> std::io::Result<()> {
//!     let svc = app::<hyper::body::Incoming>(store);
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         let svc = hyper_util::service::TowerToHyperService::new(svc.clone());
//!         tokio::spawn(async move {
//!             let io = hyper_util::rt::TokioIo::new(stream);
//!             let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, svc);
//!             if let Err(err) = conn.await {
//!                 eprintln!("connection: {err}");
//!             }
//!         });
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let _ = serve;
//! // Here called in process, with `Full` request bodies.
//! let svc = app::<Full<Bytes>>(Arc::new(MemoryStore::new()));
//! let put = |path: &str, condition: Option<(&str, &str)>| {
//!     let mut req = Request::put(path);
//!     if let Some((name, value)) = condition {
//!         req = req.header(name, value);
//!     }
//!     req.body(Full::from("hello"))
//! };
//! let create = put("/docs/a", Some(("if-none-match", "*")))?;
//! let res = svc.clone().oneshot(create).await?;
//! assert_eq!(res.status(), StatusCode::CREATED);
//! let tag = res.headers()[header::ETAG].to_str()?.to_owned();
//! // No precondition: the layer's 428.
//! let blind = svc.clone().oneshot(put("/docs/a", None)?).await?;
//! assert_eq!(blind.status(), StatusCode::PRECONDITION_REQUIRED);
//! // Not a document: the router's 404, not the layer's 428.
//! let elsewhere = svc.clone().oneshot(put("/other", None)?).await?;
//! assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
//! let update = svc.clone().oneshot(put("/docs/a", Some(("if-match", &tag)))?).await?;
//! assert_eq!(update.status(), StatusCode::OK);
//! // The same tag again is stale: 412, nothing written.
//! let stale = svc.oneshot(put("/docs/a", Some(("if-match", &tag)))?).await?;
//! assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
//! # Ok(())
//! # }
//! ```
//!
//! # Deployment caveat: compression
//!
//! A strong ETag promises byte-for-byte identical content, so it must
//! describe the bytes actually sent. Put [`ETagLayer`] **outside** (added
//! after, i.e. wrapping) tower-http's `CompressionLayer`: it then hashes
//! the compressed bytes, and a gzip response and an identity response get
//! different strong tags, as [RFC 9110 §8.8.3](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3) requires for different
//! content codings. (Weakening the tag instead would let `If-None-Match`
//! match across codings, but would make the tag useless for `If-Match` and
//! `If-Range`, which compare strongly.) If `ETagLayer` sat *inside*
//! compression, the compression layer would change the bytes under a
//! strong tag that no longer describes them, and the layer's 304 to a
//! client that accepts gzip would lack the 200's `Vary: accept-encoding`
//! (`CompressionLayer` leaves an empty 304 alone), which a 304 must carry
//! ([RFC 9110 §15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5)),
//! and state the uncompressed length as the 200's.
//!
//! ```
//! use axum::{routing::get, Router};
//! use ifmatch::middleware::ETagLayer;
//! use tower_http::compression::CompressionLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(CompressionLayer::new()) // inner: compresses
//!     .layer(ETagLayer::new()); // outer: hashes what is sent
//! ```
//!
//! Two limits of this arrangement:
//!
//! - **The compressed bytes, and so the tag, must be the same every
//!   time.** tower-http's `CompressionLayer` flushes its encoder whenever
//!   the body below it has no frame ready, so its output depends on how
//!   the body arrives, not only on what it holds. A body whose frames are
//!   all there when read (a `String`, `Json` or `Bytes` body, one frame)
//!   always compresses the same. A body streamed as it is read (a file
//!   from `ServeDir` or `ServeFile`, rows from a database cursor, an
//!   upstream's answer) need not: the same content can get another tag from
//!   one request to the next, and `If-None-Match` with the tag the client
//!   holds seldom matches (no 304, the whole body again). Serve such files
//!   precompressed (`ServeDir::precompressed_gzip`: `CompressionLayer`
//!   leaves a response with a `Content-Encoding` alone, and the layer
//!   hashes the stored `.gz`; tower-http 0.6's `ServeDir` sends no
//!   `Vary: accept-encoding` with them, 0.7's does, so with 0.6 add it
//!   with `SetResponseHeaderLayer::appending` inside `ETagLayer`, where
//!   the layer's 304 keeps it), collect such bodies into one frame below
//!   `CompressionLayer`, or keep them out of compression or out of this
//!   layer ([`ETagLayer::skip_when`]).
//! - **A tag the handler sets is not rehashed.** Under
//!   [`PreconditionLayer`], handlers send the resolver's tag (`"v7"`), and
//!   `CompressionLayer` compresses the response under it: the gzip and the
//!   identity response carry the same strong tag, which
//!   [RFC 9110 §8.8.3.3](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3.3)
//!   does not allow ("a strong entity tag for a content-encoded
//!   representation has to be distinct from the entity tag of an
//!   unencoded representation to prevent potential conflicts during cache
//!   updates and range requests"). It does break ranges: tower-http
//!   leaves a `206` uncompressed, so a gzip download resumed with `Range`
//!   and `If-Range: "v7"` would get identity bytes to splice onto gzip
//!   ones (`If-Match` and `If-None-Match` are not affected). A route whose
//!   handler serves ranges
//!   (honouring [`Precondition::ignore_range`](crate::Precondition::ignore_range))
//!   must not be behind compression. Weakening the tag is no way out: browsers
//!   always accept gzip, and every `If-Match` they send would then fail.
//!   Leave the responses that carry their own tag uncompressed, as below.
//!   If you compress them anyway, add `Vary: accept-encoding` to
//!   [`PreconditionLayer::not_modified_headers`]: `CompressionLayer` adds
//!   it only to the responses its predicate accepts, never to the layer's
//!   empty 304, which must carry the `Vary` of the 200
//!   ([RFC 9110 §15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5)).
//!
//! ```
//! use std::convert::Infallible;
//! use axum::body::Body;
//! use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, ETAG};
//! use axum::http::{request::Parts, Extensions, HeaderMap, Request, StatusCode, Version};
//! use axum::{routing::get, Router};
//! use ifmatch::middleware::{ETagLayer, PreconditionLayer};
//! use ifmatch::ETag;
//! use tower::ServiceExt;
//! use tower_http::compression::predicate::{DefaultPredicate, Predicate};
//! use tower_http::compression::CompressionLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let page = "All work and no play makes Jack a dull boy. ".repeat(40);
//! let resolver = |_: &Parts| async { Ok::<_, Infallible>(Some(ETag::from_version(7))) };
//! // Compress what `ETagLayer` tags from the bytes sent, not the responses
//! // that come with a tag of their own.
//! let untagged = |_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions| {
//!     !headers.contains_key(ETAG)
//! };
//! let app: Router = Router::new()
//!     .route("/page", get({
//!         let page = page.clone();
//!         move || async move { page }
//!     }))
//!     .route(
//!         "/doc",
//!         get({
//!             let page = page.clone();
//!             move || async move { ([(ETAG, ETag::from_version(7).to_header_value())], page) }
//!         })
//!         .route_layer(PreconditionLayer::new(resolver)),
//!     )
//!     .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(untagged)))
//!     .layer(ETagLayer::new());
//!
//! let gzip = |path| Request::get(path).header(ACCEPT_ENCODING, "gzip").body(Body::empty());
//! let res = app.clone().oneshot(gzip("/page")?).await?;
//! assert_eq!(res.headers()[CONTENT_ENCODING], "gzip");
//! let res = app.oneshot(gzip("/doc")?).await?;
//! assert!(!res.headers().contains_key(CONTENT_ENCODING));
//! assert_eq!(res.headers()[ETAG], "\"v7\"");
//! # Ok(())
//! # }
//! ```
//!
//! The same holds for any layer that rewrites bodies, and for a proxy that
//! compresses them: nginx's `gzip` (for the types `gzip_types` lists)
//! turns `"v7"` into `W/"v7"`, which no `If-Match` can match (README,
//! "Behind a reverse proxy").
//!
//! [`Expected`]: crate::Expected
//! [`Expected::Absent`]: crate::Expected::Absent
//! [`Precondition`]: crate::Precondition
//! [`Conflict`]: crate::Conflict

use std::future::Future;
use std::sync::Arc;

use http::{Response, StatusCode, request::Parts};

use crate::store::{ModifyError, WriteError};
use crate::versioned::Versioned;
use crate::write::Conflict;

mod body;
mod future;
mod layer;
mod service;

pub use self::body::ResponseBody;
pub use self::future::{ETagFuture, PreconditionFuture};
pub use self::layer::{DEFAULT_ETAG_LIMIT, ETagLayer, PreconditionLayer};
pub use self::service::{ETagService, PreconditionService};
/// The same type as [`ifmatch::Precondition`](crate::Precondition), here too
/// because the layer's handlers read it.
#[doc(no_inline)]
pub use crate::gate::Precondition;

/// Looks up the current state of a request's target, for
/// [`PreconditionLayer`].
///
/// Implemented for every `FnMut(&Parts) -> impl Future<Output =
/// Result<Option<V>, E>>` with `V:` [`Versioned`]: return `Ok(None)` when the
/// target does not exist, and an error when the store cannot be reached
/// (the layer answers 503 Service Unavailable, never 412). The future must
/// not borrow the request: copy what it needs (the id from the path) first.
///
/// Routing stays the framework's job: the resolver reads the id from
/// `parts.uri`. axum 0.8 keeps its route parameters in a private
/// extension, and `Path` needs the whole request, so read the path
/// yourself, with **the same function the handler uses** (as the example
/// in the [module docs](self) does). Otherwise the precondition and the
/// write can name different targets: `Path<String>` percent-decodes
/// (`caf%C3%A9` becomes `café`), `uri.path()` does not. A middleware
/// that parses the id once and puts it in the request extensions, added
/// after this layer so that it runs first, serves both (the examples'
/// `axum_app.rs` does this). The resolver sees the URI where the layer
/// is: under axum's `Router::nest("/api", docs)`, a layer added to the
/// outer router sees `/api/docs/a`, while the handlers of `docs` see
/// `/docs/a` in their `Uri`; add the layer to `docs`.
///
/// The resolver needs only the validators, so against a database it can
/// read the version column alone (or [`Validators`](crate::Validators)):
/// the handler loads the value itself, and its write is conditional on
/// [`Precondition::expected`] whatever happened in between. A resolver
/// that loads the whole value anyway can hand it on instead, so that the
/// handler does not load it again: wrap it in [`ForwardResolved`].
///
/// The resolver runs once for every request that reaches the layer,
/// whatever its method: also for an `OPTIONS`, `CONNECT` or `TRACE`,
/// whose preconditions are never evaluated
/// ([RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1)),
/// so that a handler behind [`ForwardResolved`] finds the state for any
/// method; a failing resolver answers those 503 too. Keep CORS preflights
/// out of the layer (`CorsLayer` outside it).
///
/// The future must own what it uses, so an `async fn lookup(parts: &Parts)`
/// does not fit (its future borrows `parts`). Copy the id, then return an
/// `async move` block; a named function does it like this:
///
/// ```
/// use std::convert::Infallible;
/// use std::future::Future;
/// use http::request::Parts;
/// use ifmatch::ETag;
/// use ifmatch::middleware::{PreconditionLayer, Resolve};
///
/// fn lookup(parts: &Parts) -> impl Future<Output = Result<Option<ETag>, Infallible>> + use<> {
///     let id = parts.uri.path().to_owned();
///     async move { Ok(Some(ETag::from_content(id))) }
/// }
///
/// fn is_resolver(_: &impl Resolve) {}
/// is_resolver(&lookup);
/// let layer = PreconditionLayer::new(lookup);
/// ```
///
/// The `async fn` is refused where it is passed to the layer:
///
/// ```compile_fail
/// use std::convert::Infallible;
/// use http::request::Parts;
/// use ifmatch::ETag;
/// use ifmatch::middleware::PreconditionLayer;
///
/// async fn lookup(parts: &Parts) -> Result<Option<ETag>, Infallible> {
///     Ok(Some(ETag::from_content(parts.uri.path())))
/// }
///
/// let layer = PreconditionLayer::new(lookup); // error: not general enough
/// ```
pub trait Resolve {
    /// The current state of a target.
    type Current: Versioned;
    /// Why the state could not be read.
    type Error: Into<Box<dyn std::error::Error + Send + Sync>>;
    /// The lookup.
    type Future: Future<Output = Result<Option<Self::Current>, Self::Error>>;

    /// Starts looking up the target of `request`.
    fn resolve(&mut self, request: &Parts) -> Self::Future;

    /// Hands the state the request was evaluated against on to the handler,
    /// in the request's extensions, when the request proceeds. By default
    /// it is dropped; [`ForwardResolved`] inserts it as a [`Resolved`].
    fn forward(current: Option<Self::Current>, extensions: &mut http::Extensions) {
        let _ = (current, extensions);
    }
}

impl<F, Fut, V, E> Resolve for F
where
    F: FnMut(&Parts) -> Fut,
    Fut: Future<Output = Result<Option<V>, E>>,
    V: Versioned,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Current = V;
    type Error = E;
    type Future = Fut;

    fn resolve(&mut self, request: &Parts) -> Fut {
        self(request)
    }
}

/// A [`Resolve`]r whose result also reaches the handler: when the request
/// proceeds, [`PreconditionLayer`] puts the state it evaluated in the
/// request's extensions as a [`Resolved`], so a handler that needs the
/// value (a GET's body, a PATCH's starting point) does not load it a second
/// time.
///
/// It is the state the preconditions were checked against, read before
/// the handler runs: a write still goes through the store's
/// compare-and-swap under [`Precondition::expected`], which refuses it if
/// the target moved on since. A read-modify-write (a PATCH) goes through
/// [`ConditionalStore::modify`](crate::ConditionalStore::modify) instead,
/// which reads again: writing a change of the resolved state
/// [`pinned_to`](crate::Expected::pinned_to) it would answer 412 to an
/// `If-Match: *` that lost a race the server should have absorbed.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::Arc;
///
/// use axum::http::{header, request::Parts, StatusCode};
/// use axum::response::{IntoResponse, Response};
/// use axum::routing::get;
/// use axum::{Extension, Router};
/// use ifmatch::middleware::{ForwardResolved, PreconditionLayer, Resolved};
/// use ifmatch::{insert_validators, MemoryStore, Stored};
///
/// let store: Arc<MemoryStore<String, String>> = Arc::new(MemoryStore::new());
/// let resolver = ForwardResolved(move |parts: &Parts| {
///     let current = store.get(parts.uri.path());
///     async move { Ok::<_, Infallible>(current) }
/// });
///
/// // No second lookup: the layer hands over what it resolved.
/// async fn read(Extension(Resolved(doc)): Extension<Resolved<Stored<String>>>) -> Response {
///     match doc {
///         Some(doc) => {
///             let mut res = doc.value().clone().into_response();
///             insert_validators(res.headers_mut(), &doc);
///             res
///         }
///         None => StatusCode::NOT_FOUND.into_response(),
///     }
/// }
///
/// let app: Router = Router::new().route(
///     "/docs/{id}",
///     get(read).route_layer(PreconditionLayer::new(resolver)),
/// );
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardResolved<R>(pub R);

impl<R> Resolve for ForwardResolved<R>
where
    R: Resolve,
    R::Current: Clone + Send + Sync + 'static,
{
    type Current = R::Current;
    type Error = R::Error;
    type Future = R::Future;

    fn resolve(&mut self, request: &Parts) -> Self::Future {
        self.0.resolve(request)
    }

    fn forward(current: Option<Self::Current>, extensions: &mut http::Extensions) {
        extensions.insert(Resolved(current));
    }
}

/// The state a request's target was evaluated against (`None`: it did not
/// exist), in the extensions of a request that [`PreconditionLayer`] let
/// through with a [`ForwardResolved`] resolver. (In axum:
/// `Extension<Resolved<V>>`, as in the [`ForwardResolved`] example.)
///
/// ```
/// use std::convert::Infallible;
/// use http::{request::Parts, Request, Response};
/// use ifmatch::middleware::{ForwardResolved, PreconditionLayer, Resolved};
/// use ifmatch::ETag;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let resolver = ForwardResolved(|_: &Parts| async { Ok::<_, Infallible>(Some(ETag::from_version(3))) });
/// let svc = PreconditionLayer::new(resolver).layer(service_fn(|req: Request<String>| async move {
///     // What the request was evaluated against, without a second lookup.
///     let resolved = req.extensions().get::<Resolved<ETag>>();
///     assert_eq!(resolved, Some(&Resolved(Some(ETag::from_version(3)))));
///     Ok::<_, Infallible>(Response::new(String::new()))
/// }));
/// let res = svc.oneshot(Request::get("/doc").body(String::new())?).await?;
/// assert_eq!(res.status(), 200);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<V>(pub Option<V>);

/// The error of a [`Resolve`]r, in the extensions of the 503 response the
/// layer answered with, for logging.
///
/// ```
/// use std::convert::Infallible;
/// use http::{request::Parts, Request, Response, StatusCode};
/// use ifmatch::middleware::{PreconditionLayer, ResolveError};
/// use ifmatch::ETag;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let down = |_: &Parts| async { Err::<Option<ETag>, _>(std::io::Error::other("connection refused")) };
/// let handler = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
/// let svc = PreconditionLayer::new(down).layer(handler);
/// let res = svc.oneshot(Request::put("/doc").body(String::new())?).await?;
/// // 503, never 412: nothing is known about the version.
/// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
/// // The cause stays on the server, for a logging layer outside this one.
/// let logged = res.extensions().get::<ResolveError>().ok_or("kept for logging")?;
/// assert_eq!(logged.error().to_string(), "connection refused");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("the target's current state could not be resolved")]
pub struct ResolveError(#[source] Arc<dyn std::error::Error + Send + Sync>);

impl ResolveError {
    fn new(err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self(Arc::from(err))
    }

    /// The resolver's error.
    #[must_use]
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// A response for a handler whose conditional write reported a
/// [`Conflict`]: [`PreconditionLayer`] replaces it with the same 412
/// problem response a failed precondition gets, using its configured texts,
/// with the now-current ETag ([`Gate::conflict`](crate::Gate::conflict):
/// 404 for a write without a precondition that found the target gone, 409
/// for one under no precondition or `If-Match: *` that lost a race while
/// the target exists).
///
/// The layer recognizes it by its status, 412, and the conflict in its
/// extensions: a layer in between must keep both, and so must a
/// framework's error type if the handler returns it through one (Poem's
/// `poem::Error::from_response` drops the extensions). Without the layer,
/// or where the extensions were lost, it is a bare 412 with no body and no
/// `ETag`; use [`ProblemTexts::conflict`](crate::ProblemTexts::conflict)
/// directly in that case.
///
/// ```
/// use std::convert::Infallible;
/// use http::{header, request::Parts, Request, Response, StatusCode};
/// use ifmatch::middleware::{conflict_response, PreconditionLayer};
/// use ifmatch::{Conflict, ETag};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The layer finds "v1" current, but another write lands before the handler's.
/// let resolver = |_: &Parts| async { Ok::<_, Infallible>(Some(ETag::from_version(1))) };
/// let handler = service_fn(|_: Request<String>| async {
///     let refused = Conflict::moved(&ETag::from_version(2)); // what the store reports
///     Ok::<_, Infallible>(conflict_response::<String>(refused))
/// });
/// let svc = PreconditionLayer::new(resolver).layer(handler);
/// let req = Request::put("/doc").header(header::IF_MATCH, "\"v1\"").body(String::new())?;
/// let res = svc.oneshot(req).await?;
/// // The layer's 412, as for a failed precondition, with the tag that won.
/// assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
/// assert_eq!(res.headers()[header::ETAG], "\"v2\"");
/// assert_eq!(res.headers()[header::CONTENT_TYPE], "application/problem+json");
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn conflict_response<B: Default>(conflict: Conflict) -> Response<B> {
    marker(StatusCode::PRECONDITION_FAILED, conflict)
}

/// An empty response with `status` and `mark` in its extensions: the
/// handler's report that [`PreconditionLayer`] replaces with its own
/// answer.
fn marker<B: Default, T: Clone + Send + Sync + 'static>(
    status: StatusCode,
    mark: T,
) -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = status;
    res.extensions_mut().insert(mark);
    res
}

/// A store failure a handler reports with [`unavailable_response`] or
/// [`unconfirmed_response`], in the extensions of the 503 response, for
/// logging. [`PreconditionLayer`] keeps it in the 503 it answers with in
/// place of the handler's.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the handler's store failed")]
pub struct StoreUnavailable {
    #[source]
    error: Arc<dyn std::error::Error + Send + Sync>,
    unconfirmed: bool,
}

impl StoreUnavailable {
    /// The store's error.
    #[must_use]
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }

    /// Whether a write may have happened ([`unconfirmed_response`]), not
    /// a failure that wrote nothing ([`unavailable_response`]: a read that
    /// failed, or [`WriteError::NotWritten`]).
    #[must_use]
    pub fn unconfirmed(&self) -> bool {
        self.unconfirmed
    }
}

/// A response for a handler whose store failed before anything was
/// written (it could not read the state, could not reach the store at all,
/// or the store rolled the write back: [`WriteError::NotWritten`], which
/// becomes this with `?`): [`PreconditionLayer`] replaces it with its configured 503 problem
/// response ([`ProblemKind::Unavailable`](crate::ProblemKind::Unavailable),
/// "nothing was changed"), as it answers when its resolver fails, and keeps
/// `err` in the response's extensions as a [`StoreUnavailable`] for
/// logging. The error is never shown to the client. A write that failed
/// after it may have reached the store is [`unconfirmed_response`]; a
/// conflict is not a store failure: report it with [`conflict_response`].
///
/// The layer recognizes it by its status, 503, and the error in its
/// extensions: a layer in between must keep both. Without the layer, it is
/// a bare 503; use
/// [`ProblemTexts::unavailable`](crate::ProblemTexts::unavailable) directly
/// in that case.
///
/// ```
/// use http::{Response, StatusCode};
/// use ifmatch::middleware::{StoreUnavailable, unavailable_response};
///
/// fn answer(read: Result<String, std::io::Error>) -> Response<String> {
///     match read {
///         Ok(body) => Response::new(body),
///         Err(err) => unavailable_response(err),
///     }
/// }
///
/// let down = std::io::Error::other("connection refused");
/// let res = answer(Err(down));
/// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
/// let logged = res.extensions().get::<StoreUnavailable>().ok_or("kept for logging")?;
/// assert_eq!(logged.error().to_string(), "connection refused");
/// assert!(!logged.unconfirmed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn unavailable_response<B: Default>(
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Response<B> {
    store_failed(err.into(), false)
}

/// The 503 marker of a failed store, for [`unavailable_response`] and
/// [`unconfirmed_response`].
fn store_failed<B: Default>(
    err: Box<dyn std::error::Error + Send + Sync>,
    unconfirmed: bool,
) -> Response<B> {
    let error = Arc::from(err);
    marker(
        StatusCode::SERVICE_UNAVAILABLE,
        StoreUnavailable { error, unconfirmed },
    )
}

/// A response for a handler whose write failed after it may have reached
/// the store (a timeout, a connection lost before the answer): the change
/// may or may not have been applied. [`PreconditionLayer`] replaces it with
/// its configured 503 problem response
/// ([`ProblemKind::Unconfirmed`](crate::ProblemKind::Unconfirmed)), which
/// tells the client to look before it sends the change again, instead of
/// the "nothing was changed" of [`unavailable_response`]. `err` is kept in
/// the response's extensions as a [`StoreUnavailable`] for logging. This is
/// what [`WriteError::Store`] becomes with `?`; a store that knows its
/// write never landed reports [`WriteError::NotWritten`], which becomes
/// [`unavailable_response`].
///
/// Like [`unavailable_response`], it is a bare 503 without the layer; use
/// [`ProblemTexts::unconfirmed`](crate::ProblemTexts::unconfirmed) directly
/// in that case.
///
/// ```
/// use http::{Response, StatusCode};
/// use ifmatch::WriteError;
/// use ifmatch::middleware::{
///     StoreUnavailable, conflict_response, unavailable_response, unconfirmed_response,
/// };
///
/// fn answer(write: Result<String, WriteError<std::io::Error>>) -> Response<String> {
///     match write {
///         Ok(body) => Response::new(body),
///         Err(WriteError::Conflict(conflict)) => conflict_response(conflict),
///         Err(WriteError::Store(err)) => unconfirmed_response(err),
///         Err(WriteError::NotWritten(err)) => unavailable_response(err),
///         Err(other) => unconfirmed_response(other),
///     }
/// }
///
/// let timed_out = std::io::Error::other("no answer within 5 s");
/// let res = answer(Err(WriteError::Store(timed_out)));
/// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
/// let logged = res.extensions().get::<StoreUnavailable>().ok_or("kept for logging")?;
/// assert!(logged.unconfirmed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn unconfirmed_response<B: Default>(
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Response<B> {
    store_failed(err.into(), true)
}

/// With the `middleware` feature: a handler's refused or failed
/// conditional write as the response that [`PreconditionLayer`] turns
/// into its problem response: a [conflict](WriteError::Conflict) as
/// [`conflict_response`] (the 412 with the current ETag, or 404 for a
/// write without a precondition that found the target gone), a [store failure](WriteError::Store) as
/// [`unconfirmed_response`] (the 503 of a write whose outcome is unknown:
/// the store cannot tell whether it failed before or after writing), and
/// a failure that [wrote nothing](WriteError::NotWritten) as
/// [`unavailable_response`] (the 503 that says nothing was changed).
///
/// So a handler that returns `Result<Response, Response>` can write with
/// `?`. What it converts to is a marker for the layer, not a finished
/// answer: like [`conflict_response`] and [`unconfirmed_response`], it is a
/// bare 412 or 503, with an empty body and no `ETag`, unless
/// [`PreconditionLayer`] is around the handler to replace it. A handler
/// that calls [`Gate`](crate::Gate) itself answers with
/// [`Gate::conflict`](crate::Gate::conflict) and
/// [`Gate::unconfirmed`](crate::Gate::unconfirmed) instead.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Response, StatusCode};
/// use ifmatch::middleware::Precondition;
/// use ifmatch::{ConditionalStore, Expected, MemoryStore, WriteError};
///
/// async fn put(
///     store: &MemoryStore<String, String>,
///     pre: &Precondition,
///     body: String,
/// ) -> Result<Response<String>, Response<String>> {
///     let written = store.store(&"doc".to_owned(), pre.expected(), body).await?;
///     Ok(Response::new(written.into_stored().into_value()))
/// }
///
/// // Outside the layer, a conflict is only the marker: a bare 412.
/// let store = MemoryStore::new();
/// store.put("doc".to_owned(), &Expected::Absent, "first".to_owned())?;
/// let Err(conflict) = store.put("doc".to_owned(), &Expected::Absent, "again".to_owned()) else {
///     unreachable!()
/// };
/// let res = Response::<String>::from(WriteError::<Infallible>::Conflict(conflict));
/// assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
/// assert!(res.body().is_empty());
/// # Ok::<(), ifmatch::Conflict>(())
/// ```
impl<E, B> From<WriteError<E>> for Response<B>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Default,
{
    fn from(err: WriteError<E>) -> Self {
        match err {
            WriteError::Conflict(conflict) => conflict_response(conflict),
            WriteError::Store(err) => unconfirmed_response(err),
            WriteError::NotWritten(err) => unavailable_response(err),
        }
    }
}

/// What [`busy_response`] puts in its response's extensions, for
/// [`PreconditionLayer`] to recognize.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Busy;

/// A response for a handler whose change named no version and lost the
/// race to other writes every time
/// ([`ModifyError::Busy`]): [`PreconditionLayer`] replaces it with its 409
/// problem response ([`ProblemKind::Busy`](crate::ProblemKind::Busy)),
/// which tells the client to send the request again. Like
/// [`conflict_response`], it is a bare marker (an empty 409) without the
/// layer; a handler that calls [`Gate`](crate::Gate) itself answers with
/// [`Gate::busy`](crate::Gate::busy).
///
/// ```
/// use std::convert::Infallible;
/// use http::{header, request::Parts, Request, Response, StatusCode};
/// use ifmatch::middleware::{busy_response, PreconditionLayer};
/// use ifmatch::ETag;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let resolver = |_: &Parts| async { Ok::<_, Infallible>(Some(ETag::from_version(1))) };
/// // Its change lost every race (`ModifyError::Busy`).
/// let handler = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(busy_response::<String>()) });
/// let svc = PreconditionLayer::new(resolver).layer(handler);
/// let req = Request::patch("/doc").header(header::IF_MATCH, "*").body(String::new())?;
/// let res = svc.oneshot(req).await?;
/// assert_eq!(res.status(), StatusCode::CONFLICT);
/// assert_eq!(res.headers()[header::CONTENT_TYPE], "application/problem+json");
/// // No `ETag`: the client sends the same request again, not one for a version.
/// assert!(!res.headers().contains_key(header::ETAG));
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn busy_response<B: Default>() -> Response<B> {
    marker(StatusCode::CONFLICT, Busy)
}

/// A change's refusal ([`ModifyError::Change`]) as the response a handler
/// answers with, for `Response::from(ModifyError)` and so for `?` in a
/// PATCH handler.
///
/// Implemented for a [`Response`] and a boxed one (the change answers for
/// itself: a 422 for a patch that does not apply, say) and for
/// [`Infallible`](std::convert::Infallible), the error of a change that
/// cannot refuse. Implement it for your own error type to say which
/// response it becomes; `B` is the handler's body type (in axum,
/// `axum::body::Body`). A type of another crate (axum's `(StatusCode,
/// &str)`, say) cannot implement it there: make the response in the
/// change, `Err(Box::new(refusal.into_response()))` in axum.
///
/// An axum PATCH handler whose change refuses with its own type, answered
/// in the same problem format as the layer's 412 and 428
/// ([`problem_response`](crate::problem_response)):
///
/// ```
/// use std::sync::Arc;
///
/// use axum::body::Body;
/// use axum::extract::State;
/// use axum::http::StatusCode;
/// use axum::response::{IntoResponse, Response};
/// use axum::Extension;
/// use ifmatch::middleware::{IntoRefusal, Precondition};
/// use ifmatch::{problem_response, ConditionalStore, MemoryStore};
///
/// /// Why a rename does not apply.
/// struct EmptyTitle;
///
/// impl IntoRefusal<Body> for EmptyTitle {
///     fn into_refusal(self) -> Response {
///         problem_response(
///             StatusCode::UNPROCESSABLE_ENTITY,
///             "https://example.com/problems/empty-title",
///             "Empty title",
///             "A note needs a title. Nothing was changed.",
///         )
///         .map(Body::from)
///     }
/// }
///
/// async fn rename(
///     State(store): State<Arc<MemoryStore<String, String>>>,
///     Extension(pre): Extension<Precondition>,
///     title: String,
/// ) -> Result<Response, Response> {
///     let change = |_: String| if title.is_empty() { Err(EmptyTitle) } else { Ok(title.clone()) };
///     let note = store.modify(&"note".to_owned(), pre.expected(), 3, change).await?;
///     Ok(note.into_stored().into_value().into_response())
/// }
/// # let _ = rename;
/// ```
// `?` prints only the label of these (rustc puts its own message and
// drops the note), so the advice is in the label.
#[diagnostic::on_unimplemented(
    message = "a change refusing with `{Self}` has no response to answer with",
    label = "the change must refuse with `Response<{B}>`, `Box<Response<{B}>>` or `Infallible` (in axum: `Box::new(refusal.into_response())`), or with a type of yours that implements `IntoRefusal<{B}>`"
)]
pub trait IntoRefusal<B> {
    /// The response that answers the request whose change was refused.
    fn into_refusal(self) -> Response<B>;
}

impl<B> IntoRefusal<B> for Response<B> {
    fn into_refusal(self) -> Response<B> {
        self
    }
}

impl<B> IntoRefusal<B> for Box<Response<B>> {
    fn into_refusal(self) -> Response<B> {
        *self
    }
}

impl<B> IntoRefusal<B> for std::convert::Infallible {
    fn into_refusal(self) -> Response<B> {
        match self {}
    }
}

/// With the `middleware` feature: a
/// [`ConditionalStore::modify`](crate::ConditionalStore::modify) that
/// ended without a confirmed write, as the response [`PreconditionLayer`] answers with: a
/// [failed read](ModifyError::Read) as [`unavailable_response`] (503), a
/// [refused or failed write](ModifyError::Write) as
/// `Response::from(WriteError)` (412, 404 or 503), a
/// [refused change](ModifyError::Change) as the change's own error made a
/// response ([`IntoRefusal`]: a 422, say), and a
/// [lost race](ModifyError::Busy) as [`busy_response`] (409).
///
/// So a PATCH handler that returns `Result<Response, Response>` modifies
/// with `?`, its change returning `Err(response)` for a patch that does
/// not apply, boxed or not (a closure returning a whole `Response` as its
/// error trips clippy's `result_large_err`), or `Ok` only, with
/// [`Infallible`](std::convert::Infallible) as its error.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Response, StatusCode};
/// use ifmatch::middleware::Precondition;
/// use ifmatch::{ConditionalStore, Expected, MemoryStore};
///
/// async fn increment(
///     store: &MemoryStore<String, u32>,
///     pre: &Precondition,
/// ) -> Result<Response<String>, Response<String>> {
///     let written = store
///         .modify(&"counter".to_owned(), pre.expected(), 3, |n: u32| {
///             n.checked_add(1).ok_or_else(|| {
///                 let mut res = Response::new("The counter is at its maximum.".to_owned());
///                 *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
///                 Box::new(res)
///             })
///         })
///         .await?;
///     Ok(Response::new(written.value().to_string()))
/// }
///
/// // A change that cannot refuse.
/// async fn reset(
///     store: &MemoryStore<String, u32>,
///     pre: &Precondition,
/// ) -> Result<Response<String>, Response<String>> {
///     let zero = |_: u32| Ok::<_, Infallible>(0);
///     let written = store.modify(&"counter".to_owned(), pre.expected(), 3, zero).await?;
///     Ok(Response::new(written.value().to_string()))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ifmatch::Conflict> {
/// let store = MemoryStore::new();
/// store.put("counter".to_owned(), &Expected::Absent, u32::MAX - 1)?;
/// let pre = Precondition::from(Expected::Exists);
/// let res = increment(&store, &pre).await;
/// assert!(matches!(res, Ok(res) if res.body() == "4294967295"));
/// let refused = increment(&store, &pre).await;
/// assert!(matches!(refused, Err(res) if res.status() == StatusCode::UNPROCESSABLE_ENTITY));
/// assert!(matches!(reset(&store, &pre).await, Ok(res) if res.body() == "0"));
/// # Ok(())
/// # }
/// ```
impl<R, E, B> From<ModifyError<R, E>> for Response<B>
where
    R: IntoRefusal<B>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Default,
{
    fn from(err: ModifyError<R, E>) -> Self {
        match err {
            ModifyError::Read(err) => unavailable_response(err),
            ModifyError::Write(err) => err.into(),
            ModifyError::Change(refused) => refused.into_refusal(),
            ModifyError::Busy(_) => busy_response(),
        }
    }
}
