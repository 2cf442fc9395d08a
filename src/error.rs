//! Error types.
//!
//! Errors are opaque structs with a private kind, like `http`'s
//! `InvalidHeaderValue`, so that causes can be added without breaking callers.

use std::fmt;

/// An entity-tag (or a list of them) did not follow the grammar of
/// [RFC 9110 §8.8.3](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3).
///
/// The message says what is wrong and where, for example
/// `invalid entity-tag: byte 0x20 at offset 3 is not allowed inside the quotes`.
///
/// ```
/// use ifmatch::ETag;
///
/// let err = "\"a b\"".parse::<ETag>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid entity-tag: byte 0x20 at offset 2 is not allowed inside the quotes"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("invalid entity-tag: {kind}")]
pub struct InvalidETag {
    kind: ETagErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ETagErrorKind {
    Empty,
    MissingOpeningQuote {
        offset: usize,
        found: u8,
    },
    /// The value ends where the opening `"` should be (`W/`).
    EndBeforeOpeningQuote {
        offset: usize,
    },
    InvalidByte {
        offset: usize,
        byte: u8,
    },
    MissingClosingQuote,
    TrailingData {
        offset: usize,
    },
    StarInList,
    MissingComma {
        offset: usize,
    },
}

impl fmt::Display for ETagErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("the value is empty"),
            Self::MissingOpeningQuote {
                offset,
                found: b'w',
            } => write!(
                f,
                "expected `\"` or `W/\"` at offset {offset}; the weak prefix is case-sensitive (`W/`, not `w/`)"
            ),
            Self::MissingOpeningQuote { offset, found } => write!(
                f,
                "expected `\"` or `W/\"` at offset {offset}, found byte {found:#04x}"
            ),
            Self::EndBeforeOpeningQuote { offset } => write!(
                f,
                "expected `\"` at offset {offset}, found the end of the value"
            ),
            Self::InvalidByte { offset, byte } => write!(
                f,
                "byte {byte:#04x} at offset {offset} is not allowed inside the quotes"
            ),
            Self::MissingClosingQuote => f.write_str("the closing `\"` is missing"),
            Self::TrailingData { offset } => {
                write!(
                    f,
                    "unexpected data after the closing `\"` at offset {offset}"
                )
            }
            Self::StarInList => {
                f.write_str("`*` must be the whole field value, not a member of a list")
            }
            Self::MissingComma { offset } => {
                write!(f, "expected `,` between entity-tags at offset {offset}")
            }
        }
    }
}

impl InvalidETag {
    pub(crate) fn new(kind: ETagErrorKind) -> Self {
        Self { kind }
    }

    /// Shifts byte offsets by `by`, for errors found inside a larger value.
    pub(crate) fn offset_by(mut self, by: usize) -> Self {
        match &mut self.kind {
            ETagErrorKind::MissingOpeningQuote { offset, .. }
            | ETagErrorKind::EndBeforeOpeningQuote { offset }
            | ETagErrorKind::InvalidByte { offset, .. }
            | ETagErrorKind::TrailingData { offset }
            | ETagErrorKind::MissingComma { offset } => *offset += by,
            ETagErrorKind::Empty
            | ETagErrorKind::MissingClosingQuote
            | ETagErrorKind::StarInList => {}
        }
        self
    }
}

/// A value could not be hashed into a content [`ETag`](crate::ETag).
///
/// Returned by [`ETag::from_serialize`](crate::ETag::from_serialize) when the
/// value's `Serialize` implementation reports an error (for example a
/// `Mutex` that is poisoned, or a custom implementation that fails), or when
/// the value nests more than 256 levels deep.
///
/// ```
/// use ifmatch::ETag;
/// use serde_json::json;
///
/// // 300 arrays in arrays, past the limit of 256 levels.
/// let mut deep = json!(0);
/// for _ in 0..300 {
///     deep = json!([deep]);
/// }
/// let refused = ETag::from_serialize(&deep);
/// assert!(refused.is_err_and(|err| err.to_string() == "cannot hash value: it nests more than 256 levels deep"));
/// // A store can still tag such a value, by its version (as `MemoryStore::with_etags` shows).
/// let tag = ETag::from_serialize(&deep).unwrap_or_else(|_| ETag::from_version(7));
/// assert_eq!(tag, ETag::from_version(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot hash value: {message}")]
pub struct HashError {
    message: String,
}

impl HashError {
    pub(crate) fn new(message: String) -> Self {
        Self { message }
    }
}
