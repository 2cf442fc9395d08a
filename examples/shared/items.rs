//! The "items" service of the examples, without a web framework: what each
//! route does once the preconditions have been checked.
//!
//! Both `axum_items` and `actix_items` call these functions; neither holds
//! precondition logic. Preconditions are checked before these run, by
//! `ifmatch`'s tower `PreconditionLayer` (axum) or its `Gate` (actix-web),
//! and each write here is a compare-and-swap on the `Expected` state they
//! hand over.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode};
use ifmatch::{
    ConditionalStore, Conflict, Expected, Gate, MemoryStore, Policy, Precondition, ProblemTexts,
    Stored, WriteError, insert_validators, problem_response,
};
use serde_json::{Map, Value};

use crate::postgres::PgStore;

/// An item: any JSON object; the server owns its `"id"`.
pub type Item = Map<String, Value>;

/// Where items live.
#[derive(Clone)]
pub enum Store {
    /// One process: a map behind a mutex.
    Memory(Arc<MemoryStore<String, Item>>),
    /// Any number of processes: one PostgreSQL table.
    Postgres(PgStore),
}

impl Store {
    pub fn memory() -> Self {
        Self::Memory(Arc::new(MemoryStore::new()))
    }

    /// PostgreSQL when a database URL is given, memory otherwise.
    pub async fn open(database_url: Option<&str>) -> Result<Self, StoreError> {
        match database_url {
            Some(url) => Ok(Self::Postgres(PgStore::connect(url).await?)),
            None => Ok(Self::memory()),
        }
    }
}

/// The store failed (not a conflict): answered with 503.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// The store keeps the core's conditional-write contract, so the handlers
/// below do not change with the backend.
impl ConditionalStore<str> for Store {
    type Value = Item;
    type Error = StoreError;

    async fn load(&self, id: &str) -> Result<Option<Stored<Item>>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.get(id)),
            Self::Postgres(pg) => pg.load(id).await,
        }
    }

    async fn store(
        &self,
        id: &str,
        expected: &Expected,
        item: Item,
    ) -> Result<Stored<Item>, WriteError<StoreError>> {
        match self {
            Self::Memory(m) => m
                .put(id.to_owned(), expected, item)
                .map_err(WriteError::Conflict),
            Self::Postgres(pg) => pg.store(id, expected, item).await,
        }
    }

    async fn remove(
        &self,
        id: &str,
        expected: &Expected,
    ) -> Result<Stored<Item>, WriteError<StoreError>> {
        match self {
            Self::Memory(m) => m.delete(id, expected).map_err(WriteError::Conflict),
            Self::Postgres(pg) => pg.remove(id, expected).await,
        }
    }
}

/// What a write route ends with: a response, or a conflict that the
/// framework glue turns into the same 412 a failed precondition gets.
pub enum Reply {
    Done(Response<String>),
    Conflict(Conflict),
}

impl From<Response<String>> for Reply {
    fn from(res: Response<String>) -> Self {
        Self::Done(res)
    }
}

/// The service: a store and the texts of its problem responses.
#[derive(Clone)]
pub struct Items {
    pub store: Store,
    pub texts: ProblemTexts,
}

/// The precondition gate both examples use: strict (428 without
/// `If-Match`) unless `opt_in`, 400 for malformed `If-Match` /
/// `If-None-Match`, and retried PUTs confirmed by the handler (RFC 9110
/// §13.1.1).
pub fn gate(opt_in: bool) -> Gate {
    let policy = if opt_in {
        Policy::opt_in()
    } else {
        Policy::strict()
    };
    Gate::new()
        .policy(policy)
        .reject_malformed(true)
        .confirm_retried_puts(true)
}

/// The path of an item.
pub fn location(id: &str) -> String {
    format!("/items/{id}")
}

/// A new, unguessable id (128 random bits, hex).
fn new_id() -> String {
    let mut a = RandomState::new().build_hasher();
    a.write_u8(1);
    let mut b = RandomState::new().build_hasher();
    b.write_u8(2);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

fn json_response(status: StatusCode, stored: &Stored<Item>) -> Response<String> {
    // Serializing a JSON map cannot fail.
    let body = serde_json::to_string(stored.value()).unwrap_or_default();
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    insert_validators(res.headers_mut(), stored);
    res
}

fn created(stored: &Stored<Item>, id: &str) -> Response<String> {
    let mut res = json_response(StatusCode::CREATED, stored);
    if let Ok(value) = HeaderValue::from_str(&location(id)) {
        res.headers_mut().insert(LOCATION, value);
    }
    res
}

pub fn not_found(id: &str) -> Response<String> {
    problem_response(
        StatusCode::NOT_FOUND,
        "https://www.rfc-editor.org/rfc/rfc9110#status.404",
        "No such item",
        &format!("There is no item with id {id:?}. It may have been deleted."),
    )
}

fn bad_request(detail: &str) -> Response<String> {
    problem_response(
        StatusCode::BAD_REQUEST,
        "https://www.rfc-editor.org/rfc/rfc9110#status.400",
        "Malformed JSON",
        detail,
    )
}

fn unprocessable(detail: &str) -> Response<String> {
    problem_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        "https://www.rfc-editor.org/rfc/rfc9110#status.422",
        "Not a valid item",
        detail,
    )
}

fn unsupported(expected: &str) -> Response<String> {
    problem_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "https://www.rfc-editor.org/rfc/rfc9110#status.415",
        "Unsupported media type",
        &format!("Send the body as {expected}."),
    )
}

/// The media type without parameters, lowercased.
fn essence(content_type: Option<&[u8]>) -> Option<String> {
    let raw = std::str::from_utf8(content_type?).ok()?;
    Some(raw.split(';').next()?.trim().to_ascii_lowercase())
}

/// A JSON body: `application/json` or any `+json` type; a missing
/// Content-Type is read as JSON.
fn is_json(content_type: Option<&[u8]>) -> bool {
    match content_type {
        None => true,
        Some(_) => {
            essence(content_type).is_some_and(|e| e == "application/json" || e.ends_with("+json"))
        }
    }
}

/// A request refused before anything was written (boxed: a response is
/// large next to an `Item`).
type Rejection = Box<Response<String>>;

/// Parses a JSON object, or explains what is wrong with it.
fn parse_object(body: &[u8]) -> Result<Item, Rejection> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(bad_request(&format!(
            "The body is not valid JSON ({e}). Send a JSON object such as {{\"name\": \"x\"}}."
        )))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Box::new(unprocessable(&format!(
            "An item must be a JSON object, not {}.",
            kind(&other)
        )))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Sets the server-owned id, refusing a body that names another one.
fn own_id(mut item: Item, id: &str) -> Result<Item, Rejection> {
    match item.get("id") {
        None => {}
        Some(Value::String(s)) if s == id => {}
        Some(other) => {
            return Err(Box::new(unprocessable(&format!(
                "The id is set by the server and is {id:?} for this item; the body says {other}. \
                 Remove \"id\" from the body or send the right one."
            ))));
        }
    }
    item.insert("id".to_owned(), Value::String(id.to_owned()));
    Ok(item)
}

/// RFC 7396 JSON Merge Patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

impl Items {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            texts: ProblemTexts::default(),
        }
    }

    fn unavailable(&self) -> Response<String> {
        self.texts.unavailable()
    }

    fn write_failed(&self, err: WriteError<StoreError>) -> Reply {
        match err {
            WriteError::Conflict(conflict) => Reply::Conflict(conflict),
            _ => Reply::Done(self.unavailable()),
        }
    }

    /// The current state of an item, for the precondition check.
    pub async fn current(&self, id: &str) -> Result<Option<Stored<Item>>, StoreError> {
        self.store.load(id).await
    }

    /// `GET /items/{id}` (and HEAD, whose body the framework drops).
    pub async fn read(&self, id: &str) -> Response<String> {
        match self.store.load(id).await {
            Ok(Some(stored)) => json_response(StatusCode::OK, &stored),
            Ok(None) => not_found(id),
            Err(_) => self.unavailable(),
        }
    }

    /// `POST /items`: a new item with a server-chosen id.
    pub async fn create(&self, content_type: Option<&[u8]>, body: &[u8]) -> Response<String> {
        if !is_json(content_type) {
            return unsupported("application/json");
        }
        let id = new_id();
        let item = match parse_object(body).and_then(|item| own_id(item, &id)) {
            Ok(item) => item,
            Err(res) => return *res,
        };
        match self.store.store(&id, &Expected::Absent, item).await {
            Ok(stored) => created(&stored, &id),
            // A fresh 128-bit id cannot be taken; report it rather than
            // overwrite anything.
            Err(WriteError::Conflict(c)) => self.texts.conflict(&c),
            Err(_) => self.unavailable(),
        }
    }

    /// `PUT /items/{id}`: replace, or create under `If-None-Match: *`.
    pub async fn replace(
        &self,
        id: &str,
        pre: &Precondition,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Reply {
        if !is_json(content_type) {
            return unsupported("application/json").into();
        }
        let item = match parse_object(body).and_then(|item| own_id(item, id)) {
            Ok(item) => item,
            Err(res) => return (*res).into(),
        };
        match self.store.store(id, pre.expected(), item.clone()).await {
            Ok(stored) if *pre.expected() == Expected::Absent => created(&stored, id).into(),
            Ok(stored) => json_response(StatusCode::OK, &stored).into(),
            // RFC 9110 §13.1.1: a PUT retried after a lost response finds
            // its own change in place; the change already succeeded. Only
            // for If-Match: a failed If-None-Match (a create that lost a
            // race to an identical one) is a 412 (§13.1.2), and it wrote
            // nothing.
            Err(WriteError::Conflict(conflict)) if matches!(pre.expected(), Expected::ETag(_)) => {
                match self.store.load(id).await {
                    Ok(Some(current)) if *current.value() == item => {
                        json_response(StatusCode::OK, &current).into()
                    }
                    _ => Reply::Conflict(conflict),
                }
            }
            Err(WriteError::Conflict(conflict)) => Reply::Conflict(conflict),
            Err(err) => self.write_failed(err),
        }
    }

    /// `PATCH /items/{id}`: RFC 7396 merge patch of the version checked.
    pub async fn patch(
        &self,
        id: &str,
        pre: &Precondition,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Reply {
        let essence = essence(content_type);
        if !matches!(
            essence.as_deref(),
            Some("application/merge-patch+json" | "application/json")
        ) {
            return unsupported("application/merge-patch+json").into();
        }
        let patch: Value = match serde_json::from_slice(body) {
            Ok(patch) => patch,
            Err(e) => {
                return bad_request(&format!(
                    "The body is not valid JSON ({e}). Send a JSON merge patch such as \
                     {{\"name\": \"new name\"}}."
                ))
                .into();
            }
        };
        let current = match self.store.load(id).await {
            Ok(Some(current)) => current,
            Ok(None) => return not_found(id).into(),
            Err(_) => return self.unavailable().into(),
        };
        // The patch applies to the version just read; the write below only
        // succeeds if that is still the version the precondition checked.
        let mut value = Value::Object(current.value().clone());
        merge_patch(&mut value, &patch);
        let item = match value {
            Value::Object(map) => map,
            other => {
                return unprocessable(&format!(
                    "The patched item would be {}, not a JSON object.",
                    kind(&other)
                ))
                .into();
            }
        };
        let item = match own_id(item, id) {
            Ok(item) => item,
            Err(res) => return (*res).into(),
        };
        let expected = match pre.expected() {
            // Opt-in mode without a precondition: still never apply the
            // patch to a version other than the one it was computed from.
            Expected::Any | Expected::Exists => Expected::ETag(current.etag().clone()),
            other => other.clone(),
        };
        match self.store.store(id, &expected, item).await {
            Ok(stored) => json_response(StatusCode::OK, &stored).into(),
            Err(err) => self.write_failed(err),
        }
    }

    /// `DELETE /items/{id}`.
    pub async fn delete(&self, id: &str, pre: &Precondition) -> Reply {
        match self.store.remove(id, pre.expected()).await {
            Ok(_) => {
                let mut res = Response::new(String::new());
                *res.status_mut() = StatusCode::NO_CONTENT;
                res.into()
            }
            // Nothing to delete and no If-Match said it should exist: 404.
            Err(WriteError::Conflict(c))
                if c.is_gone() && matches!(pre.expected(), Expected::Absent | Expected::Any) =>
            {
                not_found(id).into()
            }
            Err(err) => self.write_failed(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396_appendix_a() {
        let cases = [
            (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
            (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
            (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
            (
                r#"{"a":{"b":"c"}}"#,
                r#"{"a":{"b":"d","c":null}}"#,
                r#"{"a":{"b":"d"}}"#,
            ),
            (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
            (r#"["a","b"]"#, r#"["c","d"]"#, r#"["c","d"]"#),
            (r#"{"a":"b"}"#, r#"["c"]"#, r#"["c"]"#),
            (r#"{"a":"foo"}"#, r#"null"#, r#"null"#),
            (r#"{"a":"foo"}"#, r#""bar""#, r#""bar""#),
            (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
            (r#"[1,2]"#, r#"{"a":"b","c":null}"#, r#"{"a":"b"}"#),
            (
                r#"{}"#,
                r#"{"a":{"bb":{"ccc":null}}}"#,
                r#"{"a":{"bb":{}}}"#,
            ),
        ];
        for (target, patch, expected) in cases {
            let mut t: Value = serde_json::from_str(target).unwrap();
            merge_patch(&mut t, &serde_json::from_str(patch).unwrap());
            assert_eq!(
                t,
                serde_json::from_str::<Value>(expected).unwrap(),
                "{target} + {patch}"
            );
        }
    }
}
