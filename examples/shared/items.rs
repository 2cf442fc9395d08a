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

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use ifmatch::{
    ConditionalStore, Conflict, Expected, Gate, MemoryStore, ModifyError, Policy, Precondition,
    ProblemKind, ProblemText, ProblemTexts, Stored, Validators, WriteError, Written,
    insert_validators, problem_response,
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

/// What a store failure means for the request that met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The store could not be used and did nothing: 503, "nothing was
    /// changed".
    Unavailable,
    /// The store stopped answering (a timeout, a lost connection) after a
    /// write may have reached it: 503, but the write may have been applied,
    /// so the response must not say that nothing changed.
    OutcomeUnknown,
    /// The store refused the data (e.g. a value its column type cannot
    /// hold) and wrote nothing: the request's fault, so a 4xx, never a 503.
    Refused,
}

/// The store failed (not a conflict). Answered with 503, or 422 when the
/// store refused the data itself (see [`Failure`]).
#[derive(Debug)]
pub struct StoreError {
    message: String,
    failure: Failure,
}

impl StoreError {
    /// A failure that left the store unchanged.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            failure: Failure::Unavailable,
        }
    }

    /// The store refused the data; nothing was written.
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            failure: Failure::Refused,
        }
    }

    /// The same error, for a write that may have been applied anyway.
    pub fn outcome_unknown(self) -> Self {
        Self {
            failure: Failure::OutcomeUnknown,
            ..self
        }
    }

    /// The same error, for a write known not to have been applied (e.g. a
    /// read after the store refused the write).
    pub fn nothing_written(self) -> Self {
        match self.failure {
            Failure::OutcomeUnknown => Self {
                failure: Failure::Unavailable,
                ..self
            },
            _ => self,
        }
    }

    pub fn failure(&self) -> Failure {
        self.failure
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store error: {}", self.message)
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
    ) -> Result<Written<Item>, WriteError<StoreError>> {
        match self {
            Self::Memory(m) => m
                .store(id, expected, item)
                .await
                .map_err(|e| e.map_store(|never| match never {})),
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

impl Reply {
    /// The status the framework glue sends for this reply: a conflict's is
    /// that of [`Gate::conflict`] (412, or 404 for a write without a
    /// precondition that found the item gone).
    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Done(res) => res.status(),
            Reply::Conflict(conflict) => ProblemTexts::default().conflict(conflict).status(),
        }
    }
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
    /// In tests: writes (`None`: a delete) that land between a PATCH's
    /// read and its write, the last first.
    #[cfg(test)]
    pub interleaved: Arc<std::sync::Mutex<Vec<Option<Item>>>>,
}

/// How many times a PATCH that named no version is applied to a fresh read
/// when other writes keep landing between its read and its write.
const PATCH_ATTEMPTS: u32 = 3;

/// The precondition gate both examples use: strict (428 without
/// `If-Match`) unless `opt_in`, and 400 for malformed `If-Match` /
/// `If-None-Match`.
///
/// A stale `If-Match` is always a 412, even when the body is already what
/// is stored. RFC 9110 §13.1.1 would allow a 200 then, for a PUT retried
/// after its response was lost ([`Gate::confirm_retried_puts`]), but the
/// server cannot tell that retry from the same change made by another
/// client from the same stale read: two clients that both read a counter at
/// 0 both send 1, and confirming the second would lose its increment. A
/// client whose response was lost gets the 412 and reads again; to see
/// whether its change is already in place, its change must be one it can
/// recognise (the PostgreSQL tests' clients each keep a count of their
/// own).
pub fn gate(opt_in: bool) -> Gate {
    let policy = if opt_in {
        Policy::opt_in()
    } else {
        Policy::strict()
    };
    // The gate answers a PATCH or DELETE of a missing item itself; it
    // cannot name the id, but reads like the handlers' own 404.
    let texts = ProblemTexts::default().set(
        ProblemKind::NotFound,
        ProblemText::new(
            "https://www.rfc-editor.org/rfc/rfc9110#status.404",
            "No such item",
            "There is no item with the id in this address. It may have been deleted.",
        ),
    );
    // The 304s the gate answers carry what the 200 does (RFC 9110
    // §15.4.5).
    let mut ok_headers = HeaderMap::new();
    ok_headers.insert(CACHE_CONTROL, revalidate());
    Gate::new()
        .policy(policy)
        .texts(texts)
        .reject_malformed(true)
        .not_modified_headers(ok_headers)
}

/// The most bytes an item id may have (after percent-decoding). Ids are
/// keys a store indexes; PostgreSQL's btree refuses keys over about 2.7 kB,
/// with an error that is no fault of the storage. One limit for every store
/// keeps the contract the same everywhere.
pub const MAX_ID_BYTES: usize = 256;

/// Why the last path segment does not name an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidId {
    Empty,
    /// Its length in bytes.
    TooLong(usize),
    /// Percent-decoded, it is not UTF-8.
    NotUtf8,
    /// It holds this control character (U+0000 included, which PostgreSQL
    /// `text` cannot hold).
    Control(char),
    /// It is `.` or `..`, which a path cannot hold as a segment.
    DotSegment,
}

impl std::fmt::Display for InvalidId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("the item id is empty"),
            Self::TooLong(n) => write!(
                f,
                "the item id is {n} bytes long, more than the {MAX_ID_BYTES} allowed"
            ),
            Self::NotUtf8 => f.write_str("the item id is not UTF-8 once percent-decoded"),
            Self::Control(c) => write!(
                f,
                "the item id contains the control character U+{:04X}",
                u32::from(*c)
            ),
            Self::DotSegment => {
                f.write_str("the item id is `.` or `..`, which URLs resolve away (RFC 3986 §5.2.4)")
            }
        }
    }
}

/// What every item id is: 1 to [`MAX_ID_BYTES`] bytes of UTF-8 without
/// control characters, and not `.` or `..`.
const ID_RULE: &str = "Item ids are 1 to 256 bytes of UTF-8 (after percent-decoding) without \
                       control characters.";

/// Checks an (already decoded) id against the rule every store shares.
fn check_id(id: &str) -> Result<(), InvalidId> {
    if id.is_empty() {
        return Err(InvalidId::Empty);
    }
    // RFC 3986 §5.2.4 removes these segments from a path, so
    // `/items/..` is `/`: the item's URL (its Location) would name
    // another resource, one that clients normalising paths reach instead.
    if id == "." || id == ".." {
        return Err(InvalidId::DotSegment);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(InvalidId::TooLong(id.len()));
    }
    match id.chars().find(|c| c.is_control()) {
        Some(c) => Err(InvalidId::Control(c)),
        None => Ok(()),
    }
}

/// A checked item id, decoded from the request path once, by both
/// frameworks, so that the precondition check and the write always name
/// the same item. The `Items` methods take it, so they never see an
/// unchecked id and need not check again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemId(String);

impl ItemId {
    /// The id named by the last segment of a request path as received
    /// (`/items/a%62` names `ab`): percent-decoded once, like axum's `Path`
    /// extractor, and checked with [`check_id`]. Both frameworks call this
    /// on the raw path rather than each using its own decoding (actix-web's
    /// router leaves `%25`, `%2F` and `%2B` encoded and is lossy on
    /// non-UTF-8; axum's `Uri` is not decoded at all).
    pub fn from_path(path: &str) -> Result<Self, InvalidId> {
        let segment = path.rsplit('/').next().unwrap_or_default();
        // A `%` not followed by two hex digits is kept as it is, as axum's
        // `Path` extractor (which uses the same crate) does.
        let id = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| InvalidId::NotUtf8)?
            .into_owned();
        check_id(&id)?;
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bytes [`location`] leaves as they are: RFC 3986 `pchar` without
/// its percent-encoded form (unreserved, sub-delims, `:` and `@`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// The answer to a request whose path names no valid item, given before
/// the precondition check and without asking the store: a read finds
/// nothing (404), a write is a client error (400) that says why. RFC 9110
/// §13.2.1: preconditions do not apply to a request that would fail anyway.
pub fn refuse_id(method: &str, err: &InvalidId) -> Response<String> {
    match method {
        "GET" | "HEAD" => problem_response(
            StatusCode::NOT_FOUND,
            "https://www.rfc-editor.org/rfc/rfc9110#status.404",
            "No such item",
            &format!("There is no item at this path: {err}. {ID_RULE}"),
        ),
        _ => problem_response(
            StatusCode::BAD_REQUEST,
            "https://www.rfc-editor.org/rfc/rfc3986#section-3.3",
            "Invalid item id",
            &format!("Nothing was changed: {err}. {ID_RULE}"),
        ),
    }
}

/// The path of an item, percent-encoded so that [`ItemId::from_path`]
/// gives the id back (`a/b c` is at `/items/a%2Fb%20c`).
pub fn location(id: &str) -> String {
    format!("/items/{}", utf8_percent_encode(id, SEGMENT))
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
    res.headers_mut().insert(CACHE_CONTROL, revalidate());
    insert_validators(res.headers_mut(), stored);
    res
}

/// `Cache-Control: no-cache`: a cache may keep an item but must ask before
/// it reuses it. Without it, a 200 with `Last-Modified` is reused unasked
/// for a tenth of its age (heuristic freshness, RFC 9111 §4.2.2), and a
/// person reloading after a 412 gets the stale copy again.
fn revalidate() -> HeaderValue {
    HeaderValue::from_static("no-cache")
}

fn created(stored: &Stored<Item>, id: &str) -> Response<String> {
    let mut res = json_response(StatusCode::CREATED, stored);
    if let Ok(value) = HeaderValue::from_str(&location(id)) {
        res.headers_mut().insert(LOCATION, value);
    }
    res
}

/// The answer to a successful PUT keeps the validators only if the item
/// is stored exactly as sent. RFC 9110 §9.3.4: an origin server "MUST NOT
/// send a validator field … in a successful response to PUT unless the
/// request's representation data was saved without any transformation",
/// so that a client may pair the new tag with the copy it sent. This
/// service adds the id, sorts the members and drops white space (and
/// PostgreSQL's jsonb may rewrite numbers), so only a body sent in that
/// form (what a GET returns, edited) gets them; any other client reads
/// them with a GET. The media type is part of the representation too
/// (§8.8.1): a body sent as another `+json` type, or without a
/// Content-Type, is served back as `application/json`, so it gets none.
fn as_put_answer(
    mut res: Response<String>,
    head: &ContentHead<'_>,
    sent: &[u8],
) -> Response<String> {
    let same_type = essence(head.content_type).as_deref() == Some("application/json");
    if !same_type || res.body().as_bytes() != sent {
        res.headers_mut().remove(ETAG);
        res.headers_mut().remove(LAST_MODIFIED);
    }
    res
}

pub fn not_found(id: &str) -> Response<String> {
    problem_response(
        StatusCode::NOT_FOUND,
        "https://www.rfc-editor.org/rfc/rfc9110#status.404",
        "No such item",
        &format!(
            "There is no item with id {}. It may have been deleted.",
            Value::from(id)
        ),
    )
}

/// A 409 for a PATCH that named no version and kept losing the race to
/// other writes (RFC 5789 §2.2, concurrent modification; RFC 9110
/// §15.5.10: a conflict with the current state that the client may resolve
/// by sending the request again). The type is `ProblemKind::Busy`'s; the
/// text names the item.
fn busy(id: &str) -> Response<String> {
    problem_response(
        StatusCode::CONFLICT,
        &ProblemTexts::default().get(ProblemKind::Busy).type_uri,
        "Item busy",
        &format!(
            "Item {} kept changing while your patch was being applied, so it was not \
             applied. Send it again.",
            Value::from(id)
        ),
    )
}

fn bad_request(detail: &str) -> Response<String> {
    problem_response(
        StatusCode::BAD_REQUEST,
        "https://www.rfc-editor.org/rfc/rfc8259",
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

/// A 503 for a POST the store may have applied before it stopped
/// answering: the client has to look before it sends it again, and has no
/// id to look at. The type and title are `ProblemKind::Unconfirmed`'s (a
/// change's is the gate's own text); the text says how to create safely.
fn create_unconfirmed(texts: &ProblemTexts) -> Response<String> {
    let unconfirmed = texts.get(ProblemKind::Unconfirmed);
    problem_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &unconfirmed.type_uri,
        &unconfirmed.title,
        "The storage did not confirm the create, so the item may or may not exist now. \
         Sending the POST again may create a second item; create with PUT and \
         If-None-Match: * to make a retry safe.",
    )
}

fn unsupported(expected: &str) -> Response<String> {
    unsupported_because(&format!("Send the body as {expected}."))
}

/// A 415 with its own detail.
fn unsupported_because(detail: &str) -> Response<String> {
    problem_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "https://www.rfc-editor.org/rfc/rfc9110#status.415",
        "Unsupported media type",
        detail,
    )
}

/// The media type without parameters, lowercased.
fn essence(content_type: Option<&[u8]>) -> Option<String> {
    let raw = std::str::from_utf8(content_type?).ok()?;
    // OWS is space and tab only (RFC 9110 §5.6.3), not `str::trim`'s set.
    Some(
        raw.split(';')
            .next()?
            .trim_matches([' ', '\t'])
            .to_ascii_lowercase(),
    )
}

/// The patch format PATCH takes (RFC 7396), besides plain `application/json`.
const MERGE_PATCH: &str = "application/merge-patch+json";
/// JSON Patch (RFC 6902): a `+json` type, but no item, and not taken by
/// PATCH either.
const JSON_PATCH: &str = "application/json-patch+json";

/// POST and PUT take an item in JSON: `application/json` or any `+json`
/// type but the two patch formats; a missing Content-Type is read as JSON.
/// Anything else gets a 415.
///
/// A merge patch (RFC 7396) or a JSON Patch (RFC 6902) describes a change,
/// not an item: taken as the item by a POST or PUT, a merge patch would
/// replace every field it does not name and store its `null` members. The
/// 415 says where such a change goes; for a JSON Patch that is not PATCH
/// as it is (PATCH takes merge patches only, and would answer 415 again).
fn refuse_non_item(content_type: Option<&[u8]>) -> Result<(), Rejection> {
    if content_type.is_none() {
        return Ok(());
    }
    let detail = match essence(content_type).as_deref() {
        Some(MERGE_PATCH) => {
            "A merge patch describes a change, not an item, so nothing was changed. Send \
             it with PATCH, or send the whole item as application/json."
        }
        Some(JSON_PATCH) => {
            "A JSON Patch describes a change, not an item, so nothing was changed. This \
             service takes changes as merge patches: send one as \
             application/merge-patch+json with PATCH, or send the whole item as \
             application/json."
        }
        Some(e) if e == "application/json" || e.ends_with("+json") => return Ok(()),
        _ => return Err(Box::new(unsupported("application/json"))),
    };
    Err(Box::new(unsupported_because(detail)))
}

/// A request refused before anything was written (boxed: a response is
/// large next to an `Item`).
type Rejection = Box<Response<String>>;

/// The largest body a write may have, on both frameworks: a larger one
/// gets 413.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Why the framework could not hand a write its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// Larger than [`BODY_LIMIT`].
    TooLarge,
    /// Anything else: a body cut short, chunks without their end.
    Broken,
}

/// The answer to a write whose body the framework could not read, in the
/// service's problem format like every other refusal.
pub fn refuse_unread(head: &ContentHead<'_>, unread: Unread, put: bool) -> Reply {
    let refusal = match unread {
        Unread::TooLarge => problem_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "https://www.rfc-editor.org/rfc/rfc9110#status.413",
            "Content too large",
            &format!(
                "The body is larger than the {} MiB this service accepts. Nothing was changed.",
                BODY_LIMIT >> 20
            ),
        ),
        // What the head says about the body (a content coding: 415;
        // chunks: 411; a length: the body did not have it), otherwise the
        // body's own failure.
        Unread::Broken => match head.refuse(&[], put) {
            Err(refusal) => *refusal,
            Ok(()) => incomplete_body(),
        },
    };
    refusal.into()
}

/// The 400 for a body that did not arrive whole.
fn incomplete_body() -> Response<String> {
    problem_response(
        StatusCode::BAD_REQUEST,
        "https://www.rfc-editor.org/rfc/rfc9110#field.content-length",
        "Incomplete body",
        "The body did not have the length its Content-Length header declared, so \
         nothing was changed. Send the whole body again.",
    )
}

/// What a write's header section says about its content, read the same way
/// by both frameworks' glue from the request's `(name, value)` pairs.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContentHead<'a> {
    content_type: Option<&'a [u8]>,
    coded: bool,
    declared_length: Option<&'a [u8]>,
    chunked: bool,
    range: bool,
}

impl<'a> ContentHead<'a> {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut head = Self::default();
        for (name, value) in pairs {
            let is = |field: &str| name.eq_ignore_ascii_case(field.as_bytes());
            if is("content-type") {
                head.content_type = Some(value);
            } else if is("content-encoding") {
                // `identity` is no coding; anything else is one.
                head.coded |= value
                    .split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"identity"));
            } else if is("content-length") {
                head.declared_length = Some(value);
            } else if is("transfer-encoding") {
                head.chunked = true;
            } else if is("content-range") {
                head.range = true;
            }
        }
        head
    }

    /// A head for tests and callers that know only the media type.
    pub fn of_type(content_type: Option<&'a [u8]>) -> Self {
        Self {
            content_type,
            ..Self::default()
        }
    }

    /// The refusals every write shares, before its media type is looked at:
    /// - a content coding: none is accepted, and RFC 9110 §8.4 lets a server
    ///   answer 415, with `Accept-Encoding` naming what it does accept
    ///   (§12.5.3);
    /// - a body whose end cannot be checked, or that does not have its
    ///   declared length. A client that goes away mid-body leaves a body cut
    ///   short, and a server may hand on what arrived as if it were whole:
    ///   actix-web 4 does, when the connection is closed for writing, for a
    ///   `Content-Length` body and a chunked one alike. So a body must have
    ///   a `Content-Length` (411 Length Required otherwise, §15.5.12) and
    ///   exactly that many bytes (400), or nothing is written. (HTTP/2
    ///   carries no `Transfer-Encoding`: a stream cut short is reset there.)
    /// - for a PUT, `Content-Range`: §14.5 "An origin server that allows PUT
    ///   on a given target resource MUST send a 400 (Bad Request) response
    ///   to a PUT request that contains a Content-Range header field", as a
    ///   partial body would otherwise be stored as the whole item.
    fn refuse(&self, body: &[u8], put: bool) -> Result<(), Rejection> {
        if self.coded {
            let mut res = problem_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "https://www.rfc-editor.org/rfc/rfc9110#field.content-encoding",
                "Content coding not accepted",
                "This service accepts only bodies without a content coding: send the JSON \
                 itself, without Content-Encoding. Nothing was changed.",
            );
            res.headers_mut().insert(
                HeaderName::from_static("accept-encoding"),
                HeaderValue::from_static("identity"),
            );
            return Err(Box::new(res));
        }
        if self.chunked {
            return Err(Box::new(problem_response(
                StatusCode::LENGTH_REQUIRED,
                "https://www.rfc-editor.org/rfc/rfc9110#status.411",
                "Length required",
                "Send the body with a Content-Length header, not in chunks: a body whose \
                 length is known in advance can be checked to be whole before anything is \
                 written. Nothing was changed.",
            )));
        }
        let declared = self
            .declared_length
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim_matches([' ', '\t']).parse::<u64>().ok());
        if declared.is_some_and(|n| n != body.len() as u64) {
            return Err(Box::new(incomplete_body()));
        }
        if put && self.range {
            return Err(Box::new(problem_response(
                StatusCode::BAD_REQUEST,
                "https://www.rfc-editor.org/rfc/rfc9110#field.content-range",
                "Partial PUT not supported",
                "A PUT replaces the whole item, so it cannot carry Content-Range. Nothing was \
                 changed. Send the whole item without Content-Range, or change part of it with \
                 PATCH.",
            )));
        }
        Ok(())
    }
}

/// Where in `value` a string or key holds U+0000, as a JSON pointer.
fn nul_at(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_at(v).map(|at| format!("/{i}{at}"))),
        Value::Object(map) => map.iter().find_map(|(key, v)| {
            let member = || format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            if key.contains('\0') {
                Some(member())
            } else {
                nul_at(v).map(|at| format!("{}{at}", member()))
            }
        }),
        _ => None,
    }
}

/// Refuses JSON holding U+0000 in a string or key. It is valid JSON, but
/// PostgreSQL's `jsonb` cannot store it; refusing it for every store keeps
/// one contract (a 422 that says why, not a 503 from one store only).
/// serde_json limits nesting to 128 levels, which bounds the recursion.
fn refuse_nul(value: &Value) -> Result<(), Rejection> {
    match nul_at(value) {
        None => Ok(()),
        Some(at) => Err(Box::new(unprocessable(&format!(
            "Strings and keys cannot contain U+0000 (NUL); the one at JSON pointer {at:?} does. \
             Nothing was changed."
        )))),
    }
}

/// The length of `item` as a GET sends it (compact JSON), counted
/// without building the text.
fn json_len(item: &Item) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a JSON map to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, item);
    count.0
}

/// Refuses a patched item larger than [`BODY_LIMIT`] that is larger than
/// the item was (`before` bytes). Each PATCH is within the limit, but it
/// merges into the item: without this, patch after patch grows an item
/// without bound, held in memory (or in a row) and sent whole by every
/// GET, and one a client cannot PUT back, as that gets 413. A patch that
/// does not grow the item still applies to one already over the limit (a
/// PUT body whose numbers print longer, `1E5` as `100000.0`).
fn refuse_growth_past_the_limit(patched: &Item, before: usize) -> Result<(), Rejection> {
    let after = json_len(patched);
    if after <= BODY_LIMIT || after <= before {
        return Ok(());
    }
    Err(Box::new(unprocessable(&format!(
        "The patched item would be {after} bytes of JSON, more than the {} MiB an item may \
         have. Nothing was changed.",
        BODY_LIMIT >> 20
    ))))
}

/// Parses a JSON object, or explains what is wrong with it.
fn parse_object(body: &[u8]) -> Result<Item, Rejection> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(bad_request(&format!(
            "The body is not valid JSON ({e}). Send a JSON object such as {{\"name\": \"x\"}}."
        )))
    })?;
    refuse_nul(&value)?;
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
                "The id is set by the server and is {} for this item; the body says {other}. \
                 Remove \"id\" from the body or send the right one.",
                Value::from(id)
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
            #[cfg(test)]
            interleaved: Arc::default(),
        }
    }

    fn unavailable(&self) -> Response<String> {
        self.texts.unavailable()
    }

    /// The answer to a write the store failed. The default 503 text says
    /// nothing was changed, which is false when the store stopped answering
    /// after the write may have committed; that case gets its own text.
    fn store_failed(&self, err: &StoreError, creating: bool) -> Response<String> {
        match err.failure() {
            Failure::Unavailable => self.unavailable(),
            Failure::OutcomeUnknown if creating => create_unconfirmed(&self.texts),
            Failure::OutcomeUnknown => self.texts.unconfirmed(),
            Failure::Refused => unprocessable(&format!(
                "The storage cannot hold this item ({}). Nothing was changed.",
                err.message()
            )),
        }
    }

    fn write_failed(&self, err: WriteError<StoreError>) -> Reply {
        match err {
            WriteError::Conflict(conflict) => Reply::Conflict(conflict),
            WriteError::Store(e) | WriteError::NotWritten(e) => {
                Reply::Done(self.store_failed(&e, false))
            }
            _ => Reply::Done(self.texts.unconfirmed()),
        }
    }

    /// The current state of an item, for the precondition check.
    pub async fn current(&self, id: &ItemId) -> Result<Option<Stored<Item>>, StoreError> {
        self.store.load(id.as_str()).await
    }

    /// The collection `/items` as a target of preconditions: it always
    /// exists and has no validators of its own. A POST to it creates an
    /// item, and RFC 9110 §13.1.1 says an If-Match "MUST" be evaluated
    /// "prior to performing the method" against the target, which for a
    /// POST is the collection: `If-Match: *` holds, any tag fails (412), and
    /// `If-None-Match: *` fails (412).
    pub fn collection() -> Validators {
        Validators::default()
    }

    /// `GET /items/{id}` (and HEAD, whose body the framework drops), from
    /// `current`, the state the gate evaluated the request against: the
    /// glue hands it over (`ForwardResolved` on axum), so a read loads the
    /// item once.
    pub fn read(&self, id: &ItemId, current: Option<&Stored<Item>>) -> Response<String> {
        match current {
            Some(stored) => json_response(StatusCode::OK, stored),
            None => not_found(id.as_str()),
        }
    }

    /// `POST /items`: a new item with a server-chosen id.
    pub async fn create(&self, head: &ContentHead<'_>, body: &[u8]) -> Response<String> {
        if let Err(res) = head.refuse(body, false) {
            return *res;
        }
        if let Err(res) = refuse_non_item(head.content_type) {
            return *res;
        }
        let id = new_id();
        let item = match parse_object(body).and_then(|item| own_id(item, &id)) {
            Ok(item) => item,
            Err(res) => return *res,
        };
        match self.store.store(&id, &Expected::Absent, item).await {
            Ok(written) => created(written.stored(), &id),
            // A fresh 128-bit id cannot be taken; report it rather than
            // overwrite anything.
            Err(WriteError::Conflict(c)) => self.texts.conflict(&c),
            Err(WriteError::Store(e) | WriteError::NotWritten(e)) => self.store_failed(&e, true),
            Err(_) => create_unconfirmed(&self.texts),
        }
    }

    /// `PUT /items/{id}`: replace, or create under `If-None-Match: *`.
    pub async fn replace(
        &self,
        id: &ItemId,
        pre: &Precondition,
        head: &ContentHead<'_>,
        body: &[u8],
    ) -> Reply {
        let id = id.as_str();
        if let Err(res) = head.refuse(body, true) {
            return (*res).into();
        }
        if let Err(res) = refuse_non_item(head.content_type) {
            return (*res).into();
        }
        let item = match parse_object(body).and_then(|item| own_id(item, id)) {
            Ok(item) => item,
            Err(res) => return (*res).into(),
        };
        match self.store.store(id, pre.expected(), item).await {
            // RFC 9110 §9.3.4: 201 when the PUT created the item, whether
            // `If-None-Match: *` or no precondition at all let it through.
            Ok(written) if written.created() => {
                as_put_answer(created(written.stored(), id), head, body).into()
            }
            Ok(written) => {
                as_put_answer(json_response(StatusCode::OK, written.stored()), head, body).into()
            }
            // Another write landed between the check and this one: the 412
            // of a failed precondition, even if the item now equals this
            // body (see `gate`).
            Err(WriteError::Conflict(conflict)) => Reply::Conflict(conflict),
            Err(err) => self.write_failed(err),
        }
    }

    /// `PATCH /items/{id}`: RFC 7396 merge patch of the version checked.
    pub async fn patch(
        &self,
        id: &ItemId,
        pre: &Precondition,
        head: &ContentHead<'_>,
        body: &[u8],
    ) -> Reply {
        let id = id.as_str();
        // The item did not exist when the gate looked: the answer is 404
        // (RFC 9110 §13.2.1), whatever appeared since; a PATCH does not
        // create. The gate answers that itself; this guards a call made
        // without it.
        if *pre.expected() == Expected::Absent {
            return not_found(id).into();
        }
        if let Err(res) = head.refuse(body, false) {
            return (*res).into();
        }
        let essence = essence(head.content_type);
        if !matches!(essence.as_deref(), Some(MERGE_PATCH | "application/json")) {
            // RFC 5789 §2.2: a 415 to a PATCH names the patch formats the
            // resource accepts, in Accept-Patch (§3.1).
            let mut res = unsupported(MERGE_PATCH);
            res.headers_mut().insert(
                HeaderName::from_static("accept-patch"),
                HeaderValue::from_static("application/merge-patch+json, application/json"),
            );
            return res.into();
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
        if let Err(res) = refuse_nul(&patch) {
            return (*res).into();
        }
        // `modify` applies the patch to the version it reads and writes
        // only if that is still the current one. A request that named a
        // version (`If-Match: "v3"`) is answered 412 when another write
        // lands in between: its condition no longer holds. One that named
        // none (`If-Match: *`, or no precondition in opt-in mode) asked for
        // the patch to apply to whatever is current, so that race is not
        // its client's to resolve: the patch is applied again to a fresh
        // read, a few times, never to a version it was not computed from.
        let apply = |current: Item| {
            #[cfg(test)]
            self.land_interleaved_write(id);
            let before = json_len(&current);
            let mut value = Value::Object(current);
            merge_patch(&mut value, &patch);
            let patched = match value {
                Value::Object(map) => own_id(map, id)?,
                other => {
                    return Err(Box::new(unprocessable(&format!(
                        "The patched item would be {}, not a JSON object.",
                        kind(&other)
                    ))));
                }
            };
            refuse_growth_past_the_limit(&patched, before)?;
            Ok(patched)
        };
        match self
            .store
            .modify(id, pre.expected(), PATCH_ATTEMPTS, apply)
            .await
        {
            Ok(written) => json_response(StatusCode::OK, written.stored()).into(),
            // Missing when read: 404; deleted since, 404 for a request
            // without a precondition, the 412 of a false `If-Match: *`
            // otherwise (the glue answers the conflict).
            // Nothing was written when the read failed.
            Err(ModifyError::Read(_)) => self.unavailable().into(),
            Err(ModifyError::Write(err)) => self.write_failed(err),
            Err(ModifyError::Change(res)) => (*res).into(),
            // Every attempt lost the race.
            Err(ModifyError::Busy(_)) => busy(id).into(),
            Err(_) => self.texts.unconfirmed().into(),
        }
    }

    /// In tests: lands the next write queued in `interleaved`, as another
    /// client would between a PATCH's read and its write (in the memory
    /// store the tests use, whose writes need no `await`).
    #[cfg(test)]
    fn land_interleaved_write(&self, id: &str) {
        let Store::Memory(memory) = &self.store else {
            return;
        };
        let next = self.interleaved.lock().unwrap().pop();
        match next {
            Some(Some(item)) => drop(memory.put(id.to_owned(), &Expected::Any, item).unwrap()),
            Some(None) => drop(memory.delete(id, &Expected::Any).unwrap()),
            None => {}
        }
    }

    /// `DELETE /items/{id}`.
    pub async fn delete(&self, id: &ItemId, pre: &Precondition) -> Reply {
        let id = id.as_str();
        // The item did not exist when the gate looked: the answer is 404
        // (RFC 9110 §13.2.1), whatever appeared since. The gate answers
        // that itself; this guards a call made without it.
        if *pre.expected() == Expected::Absent {
            return not_found(id).into();
        }
        match self.store.remove(id, pre.expected()).await {
            Ok(_) => {
                let mut res = Response::new(String::new());
                *res.status_mut() = StatusCode::NO_CONTENT;
                res.into()
            }
            // Nothing to delete and no If-Match said it should exist: 404.
            Err(WriteError::Conflict(c)) if c.is_gone() && *pre.expected() == Expected::Any => {
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
    fn ids_are_percent_decoded_once_and_checked() {
        let id = |path: &str| ItemId::from_path(path).map(|id| id.as_str().to_owned());
        assert_eq!(id("/items/a%62"), Ok("ab".to_owned()));
        assert_eq!(id("/items/%2541"), Ok("%41".to_owned()));
        assert_eq!(id("/items/a%2Fb"), Ok("a/b".to_owned()));
        assert_eq!(id("/items/%zz%4"), Ok("%zz%4".to_owned()));
        assert_eq!(id("/items/caf%C3%A9"), Ok("café".to_owned()));
        assert_eq!(id("/items/"), Err(InvalidId::Empty));
        assert_eq!(id("/items/%FF"), Err(InvalidId::NotUtf8));
        assert_eq!(id("/items/a%00b"), Err(InvalidId::Control('\0')));
        assert_eq!(id("/items/a%0Ab"), Err(InvalidId::Control('\n')));
        assert_eq!(id("/items/."), Err(InvalidId::DotSegment));
        assert_eq!(id("/items/.."), Err(InvalidId::DotSegment));
        assert_eq!(id("/items/%2E%2e"), Err(InvalidId::DotSegment));
        assert_eq!(id("/items/..."), Ok("...".to_owned()));
        let longest = "x".repeat(MAX_ID_BYTES);
        assert_eq!(id(&format!("/items/{longest}")), Ok(longest.clone()));
        assert_eq!(
            id(&format!("/items/{longest}y")),
            Err(InvalidId::TooLong(MAX_ID_BYTES + 1))
        );
        assert!(ID_RULE.contains(&format!(" {MAX_ID_BYTES} bytes")));
    }

    #[test]
    fn a_location_decodes_back_to_its_id() {
        for id in ["0123abcdef", "a/b c", "100%", "a+b", "café", "?#[]", "~-._"] {
            let path = location(id);
            assert!(HeaderValue::from_str(&path).is_ok(), "{path}");
            assert_eq!(
                ItemId::from_path(&path).map(|i| i.as_str().to_owned()),
                Ok(id.to_owned()),
                "{path}"
            );
        }
        assert_eq!(location("0123abcdef"), "/items/0123abcdef");
    }

    #[tokio::test]
    async fn patch_and_delete_of_an_item_absent_at_the_check_get_404() {
        // The gate let them through with `Absent` because the item did not
        // exist (the 404 comes first, RFC 9110 §13.2.1); one created since
        // is not theirs to change.
        let items = Items::new(Store::memory());
        let id = ItemId::from_path("/items/a").unwrap();
        let absent = Precondition::from(Expected::Absent);
        let json = &ContentHead::of_type(Some(b"application/json"));
        items.replace(&id, &absent, json, br#"{"n": 1}"#).await;
        let before = items.store.load("a").await.unwrap().unwrap();
        let merge = &ContentHead::of_type(Some(b"application/merge-patch+json"));
        for reply in [
            items.patch(&id, &absent, merge, br#"{"n": 2}"#).await,
            items.delete(&id, &absent).await,
        ] {
            match reply {
                Reply::Done(r) => assert_eq!(r.status(), StatusCode::NOT_FOUND, "{}", r.body()),
                Reply::Conflict(c) => panic!("412: {c}"),
            }
        }
        assert_eq!(items.store.load("a").await.unwrap(), Some(before));
    }

    /// Item "a" as `{"id": "a", ...fields}`, stored, and the PATCH that
    /// sets `"patched": true`, with `pre`, against the writes `interleaved`
    /// lands between its reads and its writes (first to last).
    async fn patch_racing(pre: &Precondition, interleaved: Vec<Option<Value>>) -> (Items, Reply) {
        let items = Items::new(Store::memory());
        let object = |v: Value| match v {
            Value::Object(mut map) => {
                map.insert("id".to_owned(), "a".into());
                map
            }
            _ => unreachable!(),
        };
        items
            .store
            .store("a", &Expected::Absent, object(serde_json::json!({"n": 0})))
            .await
            .unwrap();
        *items.interleaved.lock().unwrap() = interleaved
            .into_iter()
            .rev()
            .map(|w| w.map(object))
            .collect();
        let id = ItemId::from_path("/items/a").unwrap();
        let merge = &ContentHead::of_type(Some(b"application/merge-patch+json"));
        let reply = items.patch(&id, pre, merge, br#"{"patched": true}"#).await;
        (items, reply)
    }

    #[tokio::test]
    async fn a_patch_without_a_version_is_reapplied_to_a_write_that_raced_it() {
        // Opt-in mode without a precondition, and `If-Match: *`: the client
        // named no version, so another write between the read and the
        // write is not its to resolve. The patch lands on top of that
        // write: neither change is lost, and no 412 answers a condition
        // the client did not send.
        for pre in [Expected::Any, Expected::Exists] {
            let pre = Precondition::from(pre);
            let (items, reply) = patch_racing(&pre, vec![Some(serde_json::json!({"n": 1}))]).await;
            assert_eq!(reply.status(), StatusCode::OK, "{pre:?}");
            let now = items.store.load("a").await.unwrap().unwrap();
            assert_eq!(now.value()["n"], 1, "{pre:?}: the other write was lost");
            assert_eq!(now.value()["patched"], true, "{pre:?}");
        }
    }

    #[tokio::test]
    async fn a_patch_without_a_version_that_keeps_losing_gets_409_and_writes_nothing() {
        let pre = Precondition::from(Expected::Any);
        // Writes numbered 1 to `n`, each landing before one attempt's write.
        let writes = |n: u32| {
            (1..=n)
                .map(|n| Some(serde_json::json!({ "n": n })))
                .collect()
        };
        let (items, reply) = patch_racing(&pre, writes(PATCH_ATTEMPTS)).await;
        assert_eq!(reply.status(), StatusCode::CONFLICT);
        let now = items.store.load("a").await.unwrap().unwrap();
        assert_eq!(now.value()["n"], PATCH_ATTEMPTS);
        assert!(!now.value().contains_key("patched"));
        // One write fewer, and the last attempt succeeds.
        let (items, reply) = patch_racing(&pre, writes(PATCH_ATTEMPTS - 1)).await;
        assert_eq!(reply.status(), StatusCode::OK);
        let now = items.store.load("a").await.unwrap().unwrap();
        assert_eq!(now.value()["patched"], true);
    }

    #[tokio::test]
    async fn a_patch_that_named_a_version_is_not_reapplied() {
        // `If-Match: "v1"` no longer holds once another write landed: 412,
        // and the patch is not applied to the newer version.
        let pre = Precondition::from(Expected::ETag(ifmatch::ETag::from_version(1)));
        let (items, reply) = patch_racing(&pre, vec![Some(serde_json::json!({"n": 1}))]).await;
        assert_eq!(reply.status(), StatusCode::PRECONDITION_FAILED);
        let now = items.store.load("a").await.unwrap().unwrap();
        assert!(!now.value().contains_key("patched"));
    }

    #[tokio::test]
    async fn a_patch_whose_item_was_deleted_after_the_read_creates_nothing() {
        // Without a precondition: 404. With `If-Match: *`: the condition is
        // now false, 412. Either way the item stays deleted.
        for (pre, expected) in [
            (Expected::Any, StatusCode::NOT_FOUND),
            (Expected::Exists, StatusCode::PRECONDITION_FAILED),
        ] {
            let pre = Precondition::from(pre);
            let (items, reply) = patch_racing(&pre, vec![None]).await;
            assert_eq!(reply.status(), expected, "{pre:?}");
            assert_eq!(items.store.load("a").await.unwrap(), None, "{pre:?}");
        }
    }

    #[test]
    fn u0000_is_found_in_strings_and_keys_at_any_depth() {
        let at = |s: &str| nul_at(&serde_json::from_str(s).unwrap());
        assert_eq!(at(r#"{"a": "x", "b": [1, {"c": null}]}"#), None);
        assert_eq!(at(r#"{"a": "x\u0000"}"#), Some("/a".to_owned()));
        assert_eq!(at(r#"{"a\u0000": 1}"#), Some("/a\u{0}".to_owned()));
        assert_eq!(
            at(r#"{"a/~": [0, {"b": "\u0000"}]}"#),
            Some("/a~1~0/1/b".to_owned())
        );
    }

    #[test]
    fn a_write_whose_outcome_is_unknown_does_not_say_nothing_changed() {
        let items = Items::new(Store::memory());
        let detail = |res: &Response<String>| {
            let body: Value = serde_json::from_str(res.body()).unwrap();
            body["detail"].as_str().unwrap_or_default().to_owned()
        };
        let unknown = StoreError::unavailable("timed out").outcome_unknown();
        for creating in [false, true] {
            let res = items.store_failed(&unknown, creating);
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(detail(&res).contains("may or may not"), "{}", detail(&res));
            assert!(!detail(&res).contains("nothing"), "{}", detail(&res));
        }
        assert!(detail(&items.store_failed(&unknown, false)).contains("Load the item"));
        let down = StoreError::unavailable("connection refused");
        assert_eq!(
            items.store_failed(&down, false).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let refused = StoreError::refused("unsupported Unicode escape sequence");
        let res = items.store_failed(&refused, false);
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // The 422 says what the store refused.
        assert!(
            detail(&res).contains("(unsupported Unicode escape sequence)"),
            "{}",
            detail(&res)
        );
        assert_eq!(
            unknown.nothing_written().failure(),
            Failure::Unavailable,
            "a write known to be refused"
        );
    }

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
