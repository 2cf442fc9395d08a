//! Optimistic concurrency over HTTP with ETags.
//!
//! Two people load the same record, both change it, both save: without a
//! check, the second save silently erases the first (the *lost update*).
//! `ifmatch` prevents it the way HTTP intends
//! ([RFC 9110 §13](https://www.rfc-editor.org/rfc/rfc9110#section-13)):
//!
//! 1. every representation carries a strong [`ETag`] (a version number or a
//!    blake3 hash of the content);
//! 2. a client that changes a resource sends `If-Match` with the tag it
//!    last read;
//! 3. the server [evaluates](Policy::evaluate) the preconditions and, if
//!    they hold, performs the write as a compare-and-swap on the
//!    [`Expected`] state ([`ConditionalStore`], [`MemoryStore`]): the check
//!    and the write are one atomic step;
//! 4. otherwise it answers 412 Precondition Failed with a problem body
//!    that says how to recover ([`ProblemTexts`]); a write with no
//!    precondition gets 428 Precondition Required ([`Mode::Strict`], the
//!    default);
//! 5. the client re-reads, reapplies its change and retries ([`Retry`]).
//!
//! # Example
//!
//! [`Gate`] evaluates a request's preconditions and builds the 304, 412 or
//! 428 when they stop it (and the 404 for a PATCH or DELETE of a missing
//! target); the store's compare-and-swap makes the write
//! conditional on the state that was checked. (With tower or axum, the
//! `middleware` feature's `PreconditionLayer` makes the [`Gate`] call.)
//!
//! ```
//! use std::time::SystemTime;
//! use http::{header, HeaderMap, Method, Response, StatusCode};
//! use ifmatch::{insert_validators, Decision, Expected, Gate, MemoryStore, Stored};
//!
//! fn put(store: &MemoryStore<&'static str, String>, headers: &HeaderMap, body: &str) -> Response<String> {
//!     let gate = Gate::default();
//!     let current = store.get("doc");
//!     match gate.check(&Method::PUT, headers, current.as_ref(), SystemTime::now()) {
//!         // The preconditions held: write only if the state is still the one checked.
//!         Decision::Proceed(pre) => match store.put("doc", pre.expected(), body.to_owned()) {
//!             Ok(stored) => {
//!                 let mut res = Response::new(String::new());
//!                 insert_validators(res.headers_mut(), &stored);
//!                 res
//!             }
//!             // Someone else wrote between the check and the write: the same 412.
//!             Err(conflict) => gate.conflict(&conflict),
//!         },
//!         // 304 (no body), or 412 or 428 with a problem body that says how to recover.
//!         Decision::Respond(res) => res,
//!     }
//! }
//!
//! let store = MemoryStore::new();
//! let v1 = store.put("doc", &Expected::Absent, "draft".to_owned())?;
//!
//! // No precondition: refused, nothing written (strict mode, the default).
//! assert_eq!(put(&store, &HeaderMap::new(), "blind").status(), StatusCode::PRECONDITION_REQUIRED);
//!
//! // A client sends the tag it read: the write goes ahead.
//! let mut headers = HeaderMap::new();
//! headers.insert(header::IF_MATCH, v1.etag().to_header_value());
//! let res = put(&store, &headers, "final");
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_ne!(res.headers()[header::ETAG], v1.etag().to_header_value());
//!
//! // The same tag again is stale now: 412 with the current tag, and the
//! // first change survives.
//! let res = put(&store, &headers, "lost?");
//! assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
//! assert_eq!(store.get("doc").map(Stored::into_value).as_deref(), Some("final"));
//! # Ok::<(), ifmatch::Conflict>(())
//! ```
//!
//! [`Policy::evaluate`] is the evaluator underneath, for services that
//! build their own responses.
//!
//! # Feature flags
//!
//! - `middleware` (off by default): tower layers, in the `middleware` module
//!   (requires `tower-layer`, `tower-service`, `http-body`,
//!   `pin-project-lite`).
//!
//! # Reading headers from any framework
//!
//! The evaluator reads `http` 1.x types ([`http::HeaderMap`],
//! [`http::request::Parts`], [`http::Request`]) and raw name/value bytes
//! ([`RawHeaders`]) for frameworks on `http` 0.2 such as actix-web 4.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unreachable_pub)]
#![warn(missing_docs, missing_debug_implementations)]

/// The README's code blocks, compiled and run as doctests.
#[cfg(all(doctest, feature = "middleware"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod copy;
mod date;
mod error;
mod etag;
mod gate;
mod hash;
mod headers;
mod list;
#[cfg(feature = "middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "middleware")))]
pub mod middleware;
mod precondition;
mod response;
mod retry;
mod store;
mod versioned;
mod write;

pub use crate::error::{HashError, InvalidETag};
pub use crate::etag::ETag;
pub use crate::gate::{Decision, Gate, Precondition};
pub use crate::hash::ETagHasher;
pub use crate::headers::{PRECONDITION_FIELDS, RawHeaders, RequestHeaders};
pub use crate::list::ETagList;
pub use crate::precondition::{Evaluation, Failed, Mode, Outcome, Policy};
pub use crate::response::{
    NOT_MODIFIED_HEADERS, PROBLEM_JSON, ProblemKind, ProblemText, ProblemTexts, insert_validators,
    not_modified, problem_response,
};
pub use crate::retry::{IsConflict, Retry};
pub use crate::store::{ConditionalStore, MemoryStore, ModifyError, Stored, WriteError, Written};
pub use crate::versioned::{Validators, Versioned};
pub use crate::write::{Conflict, Expected};
