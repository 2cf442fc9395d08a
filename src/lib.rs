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
//! ```
//! use std::time::SystemTime;
//! use http::{header, HeaderMap, Method};
//! use ifmatch::{Expected, MemoryStore, Outcome, Policy, ProblemTexts};
//!
//! let store: MemoryStore<&str, String> = MemoryStore::new();
//! let v1 = store.put("doc", &Expected::Absent, "draft".to_owned())?;
//!
//! // A client sends a PUT with the tag it read earlier.
//! let mut headers = HeaderMap::new();
//! headers.insert(header::IF_MATCH, v1.etag().to_header_value());
//!
//! let current = store.get("doc");
//! let eval = Policy::default().evaluate(&Method::PUT, &headers, current.as_ref(), SystemTime::now());
//! match eval.into_outcome() {
//!     Outcome::Proceed { expected, .. } => match store.put("doc", &expected, "final".to_owned()) {
//!         Ok(stored) => println!("200, ETag: {}", stored.etag()),
//!         // Someone else wrote between the check and the write.
//!         Err(conflict) => println!("{:?}", ProblemTexts::default().conflict(&conflict)),
//!     },
//!     outcome => {
//!         let res = ProblemTexts::default().respond(&outcome, current.as_ref(), &HeaderMap::new());
//!         println!("{res:?}");
//!     }
//! }
//! # Ok::<(), ifmatch::Conflict>(())
//! ```
//!
//! # Feature flags
//!
//! - `middleware` (off by default): tower layers, in the `middleware` module
//!   (requires `tower-layer`, `tower-service`, `pin-project-lite`).
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
pub use crate::headers::{RawHeaders, RequestHeaders};
pub use crate::list::ETagList;
pub use crate::precondition::{Evaluation, Failed, Mode, Outcome, Policy};
pub use crate::response::{
    NOT_MODIFIED_HEADERS, PROBLEM_JSON, ProblemKind, ProblemText, ProblemTexts, insert_validators,
    not_modified, problem_response,
};
pub use crate::retry::{IsConflict, Retry};
pub use crate::store::{ConditionalStore, MemoryStore, Stored, WriteError};
pub use crate::versioned::{Validators, Versioned};
pub use crate::write::{Conflict, Expected};
