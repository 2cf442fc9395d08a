//! The items service on actix-web 4: routes and a middleware that calls
//! `ifmatch`'s `Gate`. actix-web 4 uses `http` 0.2, so the gate reads the
//! request through `RawHeaders` (name/value bytes) and its responses are
//! copied over. No precondition logic here: the gate checks, the handlers
//! write under the `Expected` state it hands over (see `items.rs`).
#![allow(dead_code)]

use std::time::SystemTime;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::middleware::{Next, from_fn};
use actix_web::web::{self, Bytes, Data, ReqData};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use ifmatch::middleware::Resolved;
use ifmatch::{Decision, Gate, Precondition, RawHeaders, Stored, Versioned};

use crate::items::{
    BODY_LIMIT, ContentHead, Item, ItemId, Items, Reply, Unread, refuse_id, refuse_unread,
};

/// Copies an `http` 1.x response into an actix-web one.
pub fn to_actix(res: http::Response<String>) -> HttpResponse {
    let status =
        StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    for (name, value) in res.headers() {
        builder.append_header((name.as_str(), value.as_bytes()));
    }
    builder.body(res.into_body())
}

/// The request's header lines as `(name, value)` bytes.
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
}

/// What the request's header section says about its content.
fn head(req: &HttpRequest) -> ContentHead<'_> {
    ContentHead::from_pairs(pairs(req.headers()))
}

fn reply(gate: &Gate, reply: Reply) -> HttpResponse {
    match reply {
        Reply::Done(res) => to_actix(res),
        Reply::Conflict(conflict) => to_actix(gate.conflict(&conflict)),
    }
}

/// The middleware: derive the item id, resolve the item, let the gate
/// decide, and either answer (304/400/404/412/428/503) or hand the handler
/// its `ItemId` and `Precondition`.
///
/// The id comes from the path as received, decoded by `ItemId::from_path`
/// as on axum, not from actix-web's match info (which leaves `%25`, `%2F`
/// and `%2B` encoded and is lossy on non-UTF-8). An invalid id is answered
/// here (404 for a read, 400 for a write), without asking the store.
async fn preconditions(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // A method the resource does not serve gets the resource's 405 (RFC
    // 9110 §15.5.6), whatever the id, as on axum, where the method router
    // answers before the layer runs.
    if !SERVED.contains(req.method()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let (Some(items), Some(gate)) = (
        req.app_data::<Data<Items>>().cloned(),
        req.app_data::<Data<Gate>>().cloned(),
    ) else {
        let res = HttpResponse::InternalServerError().finish();
        return Ok(req.into_response(res));
    };
    let id = match ItemId::from_path(req.path()) {
        Ok(id) => id,
        Err(e) => {
            let res = to_actix(refuse_id(req.method().as_str(), &e));
            return Ok(req.into_response(res));
        }
    };
    let current = match items.current(&id).await {
        Ok(current) => current,
        Err(_) => return Ok(req.into_response(to_actix(gate.unavailable()))),
    };
    match check(&gate, &req, current.as_ref()) {
        Decision::Proceed(pre) => {
            req.extensions_mut().insert(pre);
            req.extensions_mut().insert(id);
            // The state the gate evaluated, as `ForwardResolved` hands it
            // over on axum: a read loads the item once.
            req.extensions_mut().insert(Resolved(current));
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Decision::Respond(res) => Ok(req.into_response(to_actix(res))),
    }
}

/// The gate's decision on `req`, whose target's state is `current`.
fn check<V: Versioned>(gate: &Gate, req: &ServiceRequest, current: Option<&V>) -> Decision {
    // actix-web's method type is `http` 0.2's: convert it. One that does not
    // convert is no method of `http` 1.x: a 400 rather than a guess.
    let Ok(method) = http::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return Decision::Respond(gate_bad_request());
    };
    // actix-web's header iterator cannot be cloned, so borrow the pairs
    // into a list the gate can walk once per field.
    let pairs: Vec<(&[u8], &[u8])> = pairs(req.headers()).collect();
    gate.check(
        &method,
        &RawHeaders::new(pairs.iter().copied()),
        current,
        SystemTime::now(),
    )
}

fn gate_bad_request() -> http::Response<String> {
    ifmatch::problem_response(
        http::StatusCode::BAD_REQUEST,
        "https://www.rfc-editor.org/rfc/rfc9110#section-9.1",
        "Unknown method",
        "The request method is not one this service can read. Nothing was changed.",
    )
}

/// The middleware of `/items`: a POST's preconditions are evaluated
/// against the collection, which always exists (`Items::collection`).
async fn collection_preconditions(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != actix_web::http::Method::POST {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(gate) = req.app_data::<Data<Gate>>().cloned() else {
        let res = HttpResponse::InternalServerError().finish();
        return Ok(req.into_response(res));
    };
    match check(&gate, &req, Some(&Items::collection())) {
        Decision::Proceed(_) => Ok(next.call(req).await?.map_into_boxed_body()),
        Decision::Respond(res) => Ok(req.into_response(to_actix(res))),
    }
}

/// Why actix-web could not hand a write its body.
fn unread(err: &actix_web::Error) -> Unread {
    if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        Unread::TooLarge
    } else {
        Unread::Broken
    }
}

async fn create(
    items: Data<Items>,
    gate: Data<Gate>,
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
) -> HttpResponse {
    match body {
        Ok(body) => to_actix(items.create(&head(&req), &body).await),
        Err(e) => reply(&gate, refuse_unread(&head(&req), unread(&e), false)),
    }
}

async fn read(
    items: Data<Items>,
    id: ReqData<ItemId>,
    current: ReqData<Resolved<Stored<Item>>>,
) -> HttpResponse {
    to_actix(items.read(&id, current.0.as_ref()))
}

async fn replace(
    items: Data<Items>,
    gate: Data<Gate>,
    pre: ReqData<Precondition>,
    id: ReqData<ItemId>,
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
) -> HttpResponse {
    let result = match body {
        Ok(body) => items.replace(&id, &pre, &head(&req), &body).await,
        Err(e) => refuse_unread(&head(&req), unread(&e), true),
    };
    reply(&gate, result)
}

async fn patch(
    items: Data<Items>,
    gate: Data<Gate>,
    pre: ReqData<Precondition>,
    id: ReqData<ItemId>,
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
) -> HttpResponse {
    let result = match body {
        Ok(body) => items.patch(&id, &pre, &head(&req), &body).await,
        Err(e) => refuse_unread(&head(&req), unread(&e), false),
    };
    reply(&gate, result)
}

async fn delete(
    items: Data<Items>,
    gate: Data<Gate>,
    pre: ReqData<Precondition>,
    id: ReqData<ItemId>,
) -> HttpResponse {
    let result = items.delete(&id, &pre).await;
    reply(&gate, result)
}

/// The methods `/items/{id}` serves, one route each in [`configure`]:
/// keep the two in step (a route missing here would skip the gate, and
/// its handler would then fail to find its `ItemId`).
const SERVED: [actix_web::http::Method; 5] = [
    actix_web::http::Method::GET,
    actix_web::http::Method::HEAD,
    actix_web::http::Method::PUT,
    actix_web::http::Method::PATCH,
    actix_web::http::Method::DELETE,
];

/// Registers the routes; `items` and `gate` become app data.
pub fn configure(items: Items, gate: Gate) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(Data::new(items))
            .app_data(Data::new(gate))
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            // A resource, not a bare route, so that another method on
            // `/items` gets 405 as on axum, not 404 (RFC 9110 §15.5.6).
            .service(
                web::resource("/items")
                    .wrap(from_fn(collection_preconditions))
                    .route(web::post().to(create)),
            )
            .service(
                web::resource("/items/{id}")
                    .wrap(from_fn(preconditions))
                    .route(web::get().to(read))
                    .route(web::head().to(read))
                    .route(web::put().to(replace))
                    .route(web::patch().to(patch))
                    .route(web::delete().to(delete)),
            );
    }
}
