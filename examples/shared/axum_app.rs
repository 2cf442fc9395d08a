//! The items service on axum: routes and `ifmatch`'s tower layer. No
//! precondition logic here: the layer checks, the handlers write under the
//! `Expected` state it hands over (see `items.rs`).
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::ready;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use ifmatch::middleware::{ForwardResolved, PreconditionLayer, Resolved, conflict_response};
use ifmatch::{Gate, Precondition, Stored};
use tower::util::MapResponse;

use crate::items::{
    BODY_LIMIT, ContentHead, Item, ItemId, Items, Reply, Unread, refuse_id, refuse_unread,
};

/// Derives the item id from the path once, before the precondition layer,
/// and hands it on in the request's extensions: the layer's resolver and
/// the handler then read the same id, decoded the same way as on actix-web
/// (`ItemId::from_path`). An invalid id is answered here (404 for a read,
/// 400 for a write), without asking the store.
async fn item_id(mut req: Request, next: Next) -> Response {
    match ItemId::from_path(req.uri().path()) {
        Ok(id) => {
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        Err(e) => respond(refuse_id(req.method().as_str(), &e)),
    }
}

/// What the request's header section says about its content.
fn head(headers: &HeaderMap) -> ContentHead<'_> {
    ContentHead::from_pairs(
        headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())),
    )
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

/// Why axum could not hand a write its body.
fn unread(rejection: &BytesRejection) -> Unread {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Unread::TooLarge
    } else {
        Unread::Broken
    }
}

async fn create(
    State(items): State<Items>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let head = head(&headers);
    match body {
        Ok(body) => respond(items.create(&head, &body).await),
        Err(e) => reply(refuse_unread(&head, unread(&e), false)),
    }
}

async fn read(
    State(items): State<Items>,
    Extension(id): Extension<ItemId>,
    Extension(Resolved(current)): Extension<Resolved<Stored<Item>>>,
) -> Response {
    respond(items.read(&id, current.as_ref()))
}

async fn replace(
    State(items): State<Items>,
    Extension(pre): Extension<Precondition>,
    Extension(id): Extension<ItemId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let head = head(&headers);
    reply(match body {
        Ok(body) => items.replace(&id, &pre, &head, &body).await,
        Err(e) => refuse_unread(&head, unread(&e), true),
    })
}

async fn patch(
    State(items): State<Items>,
    Extension(pre): Extension<Precondition>,
    Extension(id): Extension<ItemId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let head = head(&headers);
    reply(match body {
        Ok(body) => items.patch(&id, &pre, &head, &body).await,
        Err(e) => refuse_unread(&head, unread(&e), false),
    })
}

async fn delete(
    State(items): State<Items>,
    Extension(pre): Extension<Precondition>,
    Extension(id): Extension<ItemId>,
) -> Response {
    reply(items.delete(&id, &pre).await)
}

/// The router. `gate` decides the precondition policy (strict by default;
/// the lost-update demo also runs it opt-in).
pub fn router(items: Items, gate: Gate) -> Router {
    let resolver = {
        let items = items.clone();
        move |parts: &Parts| {
            let items = items.clone();
            // Set by `item_id`, which runs first; without it, no item.
            let id = parts.extensions.get::<ItemId>().cloned();
            async move {
                match id {
                    Some(id) => items.current(&id).await,
                    None => Ok(None),
                }
            }
        }
    };
    // POST's preconditions are on the collection, which always exists.
    let collection = |_: &Parts| ready(Ok::<_, Infallible>(Some(Items::collection())));
    Router::new()
        .route(
            "/items",
            post(create).route_layer(PreconditionLayer::with_gate(collection, gate.clone())),
        )
        .route(
            "/items/{id}",
            get(read)
                .put(replace)
                .patch(patch)
                .delete(delete)
                // The handlers get the state the layer evaluated (a read
                // then loads the item once).
                .route_layer(PreconditionLayer::with_gate(
                    ForwardResolved(resolver),
                    gate,
                ))
                // Added last, so it runs first.
                .route_layer(from_fn(item_id)),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(items)
}

/// The router as it is served. axum gives a response whose body is empty
/// `Content-Length: 0` unless it states a length, also a 304, and hyper
/// sends that on a 304 to a HEAD; RFC 9110 §8.6 allows a 304 only the
/// length its 200 would have had, and an item's 200 is never empty.
/// `PreconditionLayer` answers its 304 without seeing the 200, so the
/// field is dropped here, outside the router, after axum set it.
pub fn served(router: Router) -> MapResponse<Router, fn(Response) -> Response> {
    fn no_empty_length_on_304(mut res: Response) -> Response {
        if res.status() == StatusCode::NOT_MODIFIED
            && res.headers().get(CONTENT_LENGTH).is_some_and(|v| v == "0")
        {
            res.headers_mut().remove(CONTENT_LENGTH);
        }
        res
    }
    MapResponse::new(router, no_empty_length_on_304)
}
