//! The items service on axum: routes and `ifmatch`'s tower layer. No
//! precondition logic here: the layer checks, the handlers write under the
//! `Expected` state it hands over (see `items.rs`).
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use ifmatch::middleware::{PreconditionLayer, conflict_response};
use ifmatch::{Gate, Precondition};

use crate::items::{Items, Reply};

/// The item id in `/items/{id}`, as written in the path (ids are
/// server-chosen hex, so there is nothing to decode).
pub fn item_id(path: &str) -> &str {
    path.strip_prefix("/items/").unwrap_or_default()
}

fn content_type(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(CONTENT_TYPE).map(|v| v.as_bytes())
}

fn respond(res: http::Response<String>) -> Response {
    res.map(Body::from).into_response()
}

fn reply(reply: Reply) -> Response {
    match reply {
        Reply::Done(res) => respond(res),
        // The layer turns this into the same 412 a failed precondition gets.
        Reply::Conflict(conflict) => conflict_response(conflict),
    }
}

async fn create(State(items): State<Items>, headers: HeaderMap, body: Bytes) -> Response {
    respond(items.create(content_type(&headers), &body).await)
}

async fn read(State(items): State<Items>, uri: Uri) -> Response {
    respond(items.read(item_id(uri.path())).await)
}

async fn replace(
    State(items): State<Items>,
    Extension(pre): Extension<Precondition>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    reply(
        items
            .replace(item_id(uri.path()), &pre, content_type(&headers), &body)
            .await,
    )
}

async fn patch(
    State(items): State<Items>,
    Extension(pre): Extension<Precondition>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    reply(
        items
            .patch(item_id(uri.path()), &pre, content_type(&headers), &body)
            .await,
    )
}

async fn delete(
    State(items): State<Items>,
    Extension(pre): Extension<Precondition>,
    uri: Uri,
) -> Response {
    reply(items.delete(item_id(uri.path()), &pre).await)
}

/// The router. `gate` decides the precondition policy (strict by default;
/// the lost-update demo also runs it opt-in).
pub fn router(items: Items, gate: Gate) -> Router {
    let resolver = {
        let items = items.clone();
        move |parts: &Parts| {
            let items = items.clone();
            let id = item_id(parts.uri.path()).to_owned();
            async move { items.current(&id).await }
        }
    };
    Router::new()
        .route("/items", post(create))
        .route(
            "/items/{id}",
            get(read)
                .put(replace)
                .patch(patch)
                .delete(delete)
                .route_layer(PreconditionLayer::with_gate(resolver, gate)),
        )
        .with_state(items)
}
