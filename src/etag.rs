//! The `ETag` type: strict parsing, formatting and comparison.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderValue;

use crate::error::{ETagErrorKind, InvalidETag};

/// An entity-tag, the opaque validator of a representation
/// ([RFC 9110 §8.8.3](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3)).
///
/// ```text
/// ETag       = entity-tag
/// entity-tag = [ weak ] opaque-tag
/// weak       = %s"W/"
/// opaque-tag = DQUOTE *etagc DQUOTE
/// etagc      = %x21 / %x23-7E / obs-text
///            ; VCHAR except double quotes, plus obs-text
/// ```
///
/// Example wire values: `"xyzzy"`, `W/"xyzzy"`, `""`.
///
/// An `ETag` always holds a value that follows this grammar exactly: parsing
/// rejects anything else with an [`InvalidETag`] that says what is wrong.
/// There is no length limit and nothing is truncated. `W/` is case-sensitive.
///
/// `==` means *identical* (same weakness, same opaque tag). Use
/// [`strong_eq`](Self::strong_eq) and [`weak_eq`](Self::weak_eq) for the two
/// comparison functions of [RFC 9110 §8.8.3.2](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3.2).
///
/// # Stability of the tags this crate builds
///
/// The tags that [`from_version`](Self::from_version),
/// [`from_timestamp`](Self::from_timestamp),
/// [`from_content`](Self::from_content),
/// [`from_serialize`](Self::from_serialize) and
/// [`ETagHasher`](crate::ETagHasher) build are part of this crate's API:
/// the same input gives the same bytes in every release of one
/// semver-compatible series. Clients, caches and databases keep these tags,
/// and during a rolling deploy old and new instances compare them, so a
/// different encoding would answer every stored tag with 412 or a needless
/// 200. A release that changes any of them is a breaking release, and its
/// changelog says so. Unit tests pin the exact bytes of each.
///
/// # Examples
///
/// ```
/// use ifmatch::ETag;
///
/// let tag: ETag = "W/\"xyzzy\"".parse()?;
/// assert!(tag.is_weak());
/// assert_eq!(tag.tag(), b"xyzzy");
/// assert_eq!(tag.to_string(), "W/\"xyzzy\"");
///
/// let strong = ETag::strong("xyzzy")?;
/// assert!(strong.weak_eq(&tag));
/// assert!(!strong.strong_eq(&tag));
/// # Ok::<(), ifmatch::InvalidETag>(())
/// ```
#[derive(Clone)]
pub struct ETag {
    // The complete wire form, quotes and `W/` included. Always valid.
    repr: Repr,
}

// Large enough for every tag this crate builds itself (content tags are 34
// bytes on the wire), so building one never touches the heap.
const INLINE_CAP: usize = 46;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE_CAP] },
    // `Bytes` so that cloning a long tag is a reference-count increment, not
    // an allocation: the evaluator clones the current tag on its hot path.
    Shared(Bytes),
}

/// `etagc = %x21 / %x23-7E / obs-text` (obs-text = %x80-FF).
#[inline]
pub(crate) const fn is_etagc(b: u8) -> bool {
    b == 0x21 || (b >= 0x23 && b != 0x7f)
}

/// Validates one complete entity-tag, returning whether it is weak.
pub(crate) fn validate(bytes: &[u8]) -> Result<bool, InvalidETag> {
    if bytes.is_empty() {
        return Err(InvalidETag::new(ETagErrorKind::Empty));
    }
    let weak = bytes.starts_with(b"W/");
    let open = if weak { 2 } else { 0 };
    match bytes.get(open) {
        Some(b'"') => {}
        Some(&found) => {
            return Err(InvalidETag::new(ETagErrorKind::MissingOpeningQuote {
                offset: open,
                found,
            }));
        }
        None => {
            return Err(InvalidETag::new(ETagErrorKind::EndBeforeOpeningQuote {
                offset: open,
            }));
        }
    }
    let mut i = open + 1;
    while let Some(&b) = bytes.get(i) {
        if b == b'"' {
            if i + 1 != bytes.len() {
                return Err(InvalidETag::new(ETagErrorKind::TrailingData {
                    offset: i + 1,
                }));
            }
            return Ok(weak);
        }
        if !is_etagc(b) {
            return Err(InvalidETag::new(ETagErrorKind::InvalidByte {
                offset: i,
                byte: b,
            }));
        }
        i += 1;
    }
    Err(InvalidETag::new(ETagErrorKind::MissingClosingQuote))
}

/// Validates the opaque part (without quotes) of a tag being built.
fn validate_opaque(tag: &[u8]) -> Result<(), InvalidETag> {
    match tag.iter().position(|&b| !is_etagc(b)) {
        Some(i) => Err(InvalidETag::new(ETagErrorKind::InvalidByte {
            offset: i,
            byte: tag[i],
        })),
        None => Ok(()),
    }
}

impl ETag {
    /// Builds a strong entity-tag from its opaque tag (the part between the
    /// quotes).
    ///
    /// # Errors
    ///
    /// [`InvalidETag`] when `tag` holds a byte that `etagc` does not allow
    /// (a double quote, a space, a control character, DEL).
    ///
    /// ```
    /// # use ifmatch::ETag;
    /// let tag = ETag::strong("v7")?;
    /// assert_eq!(tag.to_string(), "\"v7\"");
    /// assert!(ETag::strong("has\"quote").is_err());
    /// # Ok::<(), ifmatch::InvalidETag>(())
    /// ```
    pub fn strong(tag: impl AsRef<[u8]>) -> Result<Self, InvalidETag> {
        let tag = tag.as_ref();
        validate_opaque(tag).map_err(|e| e.offset_by(1))?;
        Ok(Self::from_parts(false, &[tag]))
    }

    /// Builds a weak entity-tag (`W/"…"`) from its opaque tag.
    ///
    /// # Errors
    ///
    /// [`InvalidETag`], as for [`strong`](Self::strong).
    ///
    /// ```
    /// # use ifmatch::ETag;
    /// let tag = ETag::weak("v7")?;
    /// assert_eq!(tag.to_string(), "W/\"v7\"");
    /// # Ok::<(), ifmatch::InvalidETag>(())
    /// ```
    pub fn weak(tag: impl AsRef<[u8]>) -> Result<Self, InvalidETag> {
        let tag = tag.as_ref();
        validate_opaque(tag).map_err(|e| e.offset_by(3))?;
        Ok(Self::from_parts(true, &[tag]))
    }

    /// Builds a strong entity-tag from a version number: `42` becomes
    /// `"v42"`.
    ///
    /// The tag depends on the number alone, so every instance of a service
    /// gives the same tag for the same version, across restarts. Never reuse
    /// a number for different content of the same resource (for example
    /// after a delete and re-create): take versions from a sequence that
    /// only grows and is never wound back (a restored backup or a lost
    /// counter winds it back), or draw them at random for each write.
    /// The format is [stable](Self#stability-of-the-tags-this-crate-builds).
    ///
    /// ```
    /// # use ifmatch::ETag;
    /// assert_eq!(ETag::from_version(42).to_string(), "\"v42\"");
    /// ```
    #[must_use]
    pub fn from_version(version: u64) -> Self {
        let mut digits = [0u8; 20];
        let n = write_decimal(version, &mut digits);
        Self::from_parts(false, &[b"v", &digits[digits.len() - n..]])
    }

    /// The version number of a tag made by [`from_version`](Self::from_version):
    /// what a database store puts in `UPDATE … WHERE version = $n` for an
    /// [`Expected::ETag`](crate::Expected::ETag).
    ///
    /// `None` for any other tag, so that a store refuses the write (a tag it
    /// did not make cannot be current): a weak tag (`W/"v42"` has the same
    /// opaque tag, but `If-Match` and a compare-and-swap compare strongly,
    /// [RFC 9110 §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1)), a tag that is not `v` and decimal digits, and one
    /// that `from_version` would write otherwise (`"v042"`, `"v"`, a number
    /// over `u64::MAX`).
    ///
    /// ```
    /// use ifmatch::ETag;
    ///
    /// assert_eq!(ETag::from_version(42).version(), Some(42));
    /// assert_eq!(ETag::from_version(42).into_weak().version(), None);
    /// assert_eq!(ETag::strong("v042")?.version(), None);
    /// assert_eq!(ETag::from_content("v42").version(), None);
    ///
    /// // For a signed `bigint` column: a number over `i64::MAX` is no
    /// // version the column holds, so the write is refused too.
    /// let bigint = |tag: &ETag| tag.version().and_then(|v| i64::try_from(v).ok());
    /// assert_eq!(bigint(&ETag::from_version(42)), Some(42));
    /// assert_eq!(bigint(&ETag::from_version(u64::MAX)), None);
    /// # Ok::<(), ifmatch::InvalidETag>(())
    /// ```
    #[must_use]
    pub fn version(&self) -> Option<u64> {
        if self.is_weak() {
            return None;
        }
        let digits = self.tag().strip_prefix(b"v")?;
        // Exactly what `from_version` writes: no sign, no leading zero.
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        digits.iter().try_fold(0u64, |n, &d| {
            if !d.is_ascii_digit() {
                return None;
            }
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    }

    /// Builds a strong entity-tag from a modification time, with nanosecond
    /// precision: `"t1700000000.000000042"`.
    ///
    /// Per [RFC 9110 §8.8.1](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.1)
    /// a timestamp is only a strong validator if the resource cannot change
    /// twice within its resolution; use it when the store's clock gives
    /// every write a distinct time (or prefer [`from_version`](Self::from_version)).
    /// A column with one-second precision (MySQL's `TIMESTAMP`) does not:
    /// two writes within a second get one tag, and a client holding the
    /// first one's tag overwrites the second.
    /// Times before 1970 are written with a minus sign.
    /// The format is [stable](Self#stability-of-the-tags-this-crate-builds).
    ///
    /// ```
    /// # use ifmatch::ETag;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let t = UNIX_EPOCH + Duration::new(1_700_000_000, 42);
    /// assert_eq!(ETag::from_timestamp(t).to_string(), "\"t1700000000.000000042\"");
    /// ```
    #[must_use]
    pub fn from_timestamp(time: SystemTime) -> Self {
        let (sign, d): (&[u8], _) = match time.duration_since(UNIX_EPOCH) {
            Ok(d) => (b"", d),
            Err(e) => (b"-", e.duration()),
        };
        let mut secs = [0u8; 20];
        let ns = write_decimal(d.as_secs(), &mut secs);
        let mut nanos = [b'0'; 20];
        write_decimal(u64::from(d.subsec_nanos()), &mut nanos);
        Self::from_parts(
            false,
            &[
                b"t",
                sign,
                &secs[secs.len() - ns..],
                b".",
                &nanos[nanos.len() - 9..],
            ],
        )
    }

    /// Assembles `[W/]"<pieces…>"`; the pieces must already be etagc.
    pub(crate) fn from_parts(weak: bool, pieces: &[&[u8]]) -> Self {
        let prefix: &[u8] = if weak { b"W/\"" } else { b"\"" };
        let len = prefix.len() + pieces.iter().map(|p| p.len()).sum::<usize>() + 1;
        if len <= INLINE_CAP {
            let mut buf = [0u8; INLINE_CAP];
            let mut at = 0;
            for piece in std::iter::once(prefix).chain(pieces.iter().copied()) {
                buf[at..at + piece.len()].copy_from_slice(piece);
                at += piece.len();
            }
            buf[at] = b'"';
            Self {
                repr: Repr::Inline {
                    len: len as u8,
                    buf,
                },
            }
        } else {
            let mut v = Vec::with_capacity(len);
            v.extend_from_slice(prefix);
            for piece in pieces {
                v.extend_from_slice(piece);
            }
            v.push(b'"');
            Self {
                repr: Repr::Shared(Bytes::from(v)),
            }
        }
    }

    /// Builds a tag in place: `fill` writes a valid wire form of `len`
    /// bytes (at most the inline capacity) at the start of the buffer; what
    /// it writes after them is ignored.
    #[inline]
    pub(crate) fn inline_with(len: usize, fill: impl FnOnce(&mut [u8; INLINE_CAP])) -> Self {
        debug_assert!(len <= INLINE_CAP);
        let mut buf = [0u8; INLINE_CAP];
        fill(&mut buf);
        Self {
            repr: Repr::Inline {
                len: len as u8,
                buf,
            },
        }
    }

    /// Builds a tag from a complete, already validated wire form.
    #[inline]
    pub(crate) fn from_valid_wire(wire: &[u8]) -> Self {
        if wire.len() <= INLINE_CAP {
            let mut buf = [0u8; INLINE_CAP];
            buf[..wire.len()].copy_from_slice(wire);
            Self {
                repr: Repr::Inline {
                    len: wire.len() as u8,
                    buf,
                },
            }
        } else {
            Self {
                repr: Repr::Shared(Bytes::copy_from_slice(wire)),
            }
        }
    }

    /// Parses an entity-tag from bytes, exactly per [RFC 9110 §8.8.3](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3) (no
    /// surrounding whitespace, no length limit).
    ///
    /// # Errors
    ///
    /// [`InvalidETag`], saying what is wrong and at which byte: a missing
    /// quote, a lowercase `w/`, a byte outside `etagc`, anything after the
    /// closing quote.
    ///
    /// ```
    /// # use ifmatch::ETag;
    /// assert!(ETag::parse(b"\"abc\"").is_ok());
    /// assert!(ETag::parse(b"abc").is_err());
    /// assert!(ETag::parse(b"w/\"abc\"").is_err());
    /// ```
    pub fn parse(bytes: impl AsRef<[u8]>) -> Result<Self, InvalidETag> {
        let bytes = bytes.as_ref();
        validate(bytes)?;
        Ok(Self::from_valid_wire(bytes))
    }

    /// The complete wire form, e.g. `W/"xyzzy"`.
    #[inline]
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Shared(b) => b,
        }
    }

    /// Whether this tag carries the `W/` weakness indicator.
    #[inline]
    #[must_use]
    pub fn is_weak(&self) -> bool {
        self.as_bytes()[0] == b'W'
    }

    /// Whether this is a strong tag (no `W/`).
    #[inline]
    #[must_use]
    pub fn is_strong(&self) -> bool {
        !self.is_weak()
    }

    /// The opaque tag: the bytes between the quotes.
    ///
    /// ```
    /// # use ifmatch::ETag;
    /// assert_eq!(ETag::weak("x")?.tag(), b"x");
    /// # Ok::<(), ifmatch::InvalidETag>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn tag(&self) -> &[u8] {
        let b = self.as_bytes();
        let start = if b[0] == b'W' { 3 } else { 1 };
        &b[start..b.len() - 1]
    }

    /// The same opaque tag, marked weak (for a representation that a layer
    /// such as compression transforms; [RFC 9110 §8.8.1](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.1)).
    ///
    /// ```
    /// # use ifmatch::ETag;
    /// assert_eq!(ETag::strong("x")?.into_weak().to_string(), "W/\"x\"");
    /// # Ok::<(), ifmatch::InvalidETag>(())
    /// ```
    #[must_use]
    pub fn into_weak(self) -> Self {
        if self.is_weak() {
            self
        } else {
            Self::from_parts(true, &[self.tag()])
        }
    }

    /// Strong comparison ([RFC 9110 §8.8.3.2](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3.2)):
    /// both tags are strong and their opaque tags are identical.
    ///
    /// | A | B | strong | weak |
    /// |---|---|---|---|
    /// | `W/"1"` | `W/"1"` | no match | match |
    /// | `W/"1"` | `W/"2"` | no match | no match |
    /// | `W/"1"` | `"1"` | no match | match |
    /// | `"1"` | `"1"` | match | match |
    ///
    /// Used by `If-Match` and `If-Range`.
    #[must_use]
    pub fn strong_eq(&self, other: &ETag) -> bool {
        self.is_strong() && other.is_strong() && self.tag() == other.tag()
    }

    /// Weak comparison ([RFC 9110 §8.8.3.2](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3.2)): the opaque tags are identical,
    /// whatever the weakness of either. Used by `If-None-Match`.
    #[must_use]
    pub fn weak_eq(&self, other: &ETag) -> bool {
        self.tag() == other.tag()
    }

    /// The tag as a header value, for the `ETag` response field.
    ///
    /// This cannot fail: every `ETag` holds a valid field value.
    ///
    /// ```
    /// # use ifmatch::ETag;
    /// let v = ETag::from_version(3).to_header_value();
    /// assert_eq!(v, "\"v3\"");
    /// ```
    #[must_use]
    pub fn to_header_value(&self) -> HeaderValue {
        let result = match &self.repr {
            Repr::Inline { .. } => HeaderValue::from_bytes(self.as_bytes()),
            Repr::Shared(b) => HeaderValue::from_maybe_shared(b.clone()),
        };
        match result {
            Ok(v) => v,
            // The grammar (DQUOTE, `W/`, %x21-7E but 0x22, %x80-FF) is a
            // subset of what `HeaderValue` accepts, and every constructor
            // validates it, so this arm cannot run.
            Err(_) => unreachable!("an ETag always holds a valid header value"),
        }
    }
}

/// Writes `n` in decimal at the end of `out`, returning the digit count.
fn write_decimal(mut n: u64, out: &mut [u8; 20]) -> usize {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return out.len() - i;
        }
    }
}

impl PartialEq for ETag {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ETag {}

impl Hash for ETag {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ETag")
            .field(&format_args!("{self}"))
            .finish()
    }
}

/// Writes the wire form. Bytes of `obs-text` (0x80–0xFF) that are not UTF-8
/// are shown as the Latin-1 characters they stand for; use
/// [`as_bytes`](ETag::as_bytes) or [`to_header_value`](ETag::to_header_value)
/// for the exact bytes.
impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) => f.write_str(s),
            Err(_) => bytes
                .iter()
                .try_for_each(|&b| fmt::Write::write_char(f, char::from(b))),
        }
    }
}

impl FromStr for ETag {
    type Err = InvalidETag;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

impl TryFrom<&str> for ETag {
    type Error = InvalidETag;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s.as_bytes())
    }
}

impl TryFrom<String> for ETag {
    type Error = InvalidETag;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s.as_bytes())
    }
}

impl TryFrom<&[u8]> for ETag {
    type Error = InvalidETag;

    fn try_from(b: &[u8]) -> Result<Self, Self::Error> {
        Self::parse(b)
    }
}

impl TryFrom<&HeaderValue> for ETag {
    type Error = InvalidETag;

    fn try_from(v: &HeaderValue) -> Result<Self, Self::Error> {
        Self::parse(v.as_bytes())
    }
}

impl TryFrom<HeaderValue> for ETag {
    type Error = InvalidETag;

    fn try_from(v: HeaderValue) -> Result<Self, Self::Error> {
        Self::parse(v.as_bytes())
    }
}

impl From<ETag> for HeaderValue {
    fn from(tag: ETag) -> Self {
        tag.to_header_value()
    }
}

impl From<&ETag> for HeaderValue {
    fn from(tag: &ETag) -> Self {
        tag.to_header_value()
    }
}

/// Serializes as the wire string, e.g. `"\"v1\""` in JSON.
///
/// A tag whose bytes are not UTF-8 (possible with `obs-text`, 0x80–0xFF)
/// has no string that stands for it alone: shown as Latin-1, `"\xff"` would
/// read the same as the UTF-8 tag `"ÿ"`, and would come back as that other
/// tag. Serializing one is therefore an error that says so, rather than a
/// string that names a different tag (or a value tag, from
/// [`ETag::from_serialize`], shared with a different value).
///
/// ```
/// use ifmatch::ETag;
///
/// let utf8 = ETag::parse("\"café\"".as_bytes())?;
/// assert_eq!(serde_json::to_string(&utf8)?, r#""\"café\"""#);
///
/// let latin1 = ETag::parse(b"\"caf\xe9\"")?;
/// assert!(serde_json::to_string(&latin1).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl serde::Serialize for ETag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(wire) => serializer.serialize_str(wire),
            Err(_) => Err(serde::ser::Error::custom(format_args!(
                "the entity-tag {self} holds obs-text bytes that are not UTF-8, \
                 so no string stands for it exactly; serialize its bytes \
                 (ETag::as_bytes) instead"
            ))),
        }
    }
}

/// Deserializes from the wire string, with the same strict grammar as
/// [`ETag::parse`].
///
/// ```
/// use ifmatch::ETag;
///
/// let tag: ETag = serde_json::from_str(r#""W/\"v1\"""#)?;
/// assert_eq!(tag, ETag::weak("v1")?);
/// // The quotes are part of the tag: a bare string is refused.
/// assert!(serde_json::from_str::<ETag>(r#""v1""#).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<'de> serde::Deserialize<'de> for ETag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ETag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entity-tag such as \"\\\"v1\\\"\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ETag, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> ETag {
        s.parse().unwrap()
    }

    #[test]
    fn comparison_table_of_rfc_9110_section_8_8_3_2() {
        struct Row {
            a: &'static str,
            b: &'static str,
            strong: bool,
            weak: bool,
        }
        let rows = [
            Row {
                a: "W/\"1\"",
                b: "W/\"1\"",
                strong: false,
                weak: true,
            },
            Row {
                a: "W/\"1\"",
                b: "W/\"2\"",
                strong: false,
                weak: false,
            },
            Row {
                a: "W/\"1\"",
                b: "\"1\"",
                strong: false,
                weak: true,
            },
            Row {
                a: "\"1\"",
                b: "\"1\"",
                strong: true,
                weak: true,
            },
        ];
        for row in rows {
            let (a, b) = (tag(row.a), tag(row.b));
            assert_eq!(a.strong_eq(&b), row.strong, "strong {} {}", row.a, row.b);
            assert_eq!(b.strong_eq(&a), row.strong, "strong {} {}", row.b, row.a);
            assert_eq!(a.weak_eq(&b), row.weak, "weak {} {}", row.a, row.b);
            assert_eq!(b.weak_eq(&a), row.weak, "weak {} {}", row.b, row.a);
        }
    }

    #[test]
    fn parses_the_grammar_and_nothing_else() {
        let valid: &[&[u8]] = &[
            b"\"\"",
            b"W/\"\"",
            b"\"xyzzy\"",
            b"W/\"xyzzy\"",
            b"\"!#~\"",
            b"\"\x80\xff\"",
            b"\"a,b\"",
        ];
        for v in valid {
            assert!(ETag::parse(v).is_ok(), "{:?}", String::from_utf8_lossy(v));
        }
        let invalid: &[&[u8]] = &[
            b"",
            b"xyzzy",
            b"\"xyzzy",
            b"xyzzy\"",
            b"w/\"xyzzy\"",
            b"W\"xyzzy\"",
            b"W/xyzzy",
            b"\"a b\"",
            b"\"a\"b\"",
            b"\"a\x7f\"",
            b"\"a\tb\"",
            b" \"a\"",
            b"\"a\" ",
            b"*",
            b"W/",
            b"\"",
        ];
        for v in invalid {
            assert!(ETag::parse(v).is_err(), "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let msg = |s: &[u8]| ETag::parse(s).unwrap_err().to_string();
        assert_eq!(msg(b""), "invalid entity-tag: the value is empty");
        assert_eq!(
            msg(b"abc"),
            "invalid entity-tag: expected `\"` or `W/\"` at offset 0, found byte 0x61"
        );
        assert!(msg(b"w/\"a\"").contains("case-sensitive"));
        assert_eq!(
            msg(b"W/"),
            "invalid entity-tag: expected `\"` at offset 2, found the end of the value"
        );
        assert_eq!(
            msg(b"\"abc"),
            "invalid entity-tag: the closing `\"` is missing"
        );
        assert_eq!(
            msg(b"\"a\"b"),
            "invalid entity-tag: unexpected data after the closing `\"` at offset 3"
        );
        assert_eq!(
            ETag::weak("a b").unwrap_err().to_string(),
            "invalid entity-tag: byte 0x20 at offset 4 is not allowed inside the quotes"
        );
    }

    #[test]
    fn long_tags_are_kept_whole() {
        let long = "x".repeat(100_000);
        let t = ETag::strong(&long).unwrap();
        assert_eq!(t.tag().len(), 100_000);
        assert_eq!(t.clone(), t);
        let parsed: ETag = t.to_string().parse().unwrap();
        assert_eq!(parsed, t);
        assert_eq!(t.to_header_value().as_bytes(), t.as_bytes());
    }

    #[test]
    fn inline_boundary_round_trips() {
        for n in 40..50 {
            let t = ETag::strong("a".repeat(n)).unwrap();
            assert_eq!(t.as_bytes().len(), n + 2);
            assert_eq!(ETag::parse(t.as_bytes()).unwrap(), t);
            let w = t.clone().into_weak();
            assert_eq!(w.tag(), t.tag());
            assert!(w.is_weak());
        }
    }

    #[test]
    fn version_and_timestamp_tags_are_deterministic() {
        assert_eq!(ETag::from_version(0).as_bytes(), b"\"v0\"");
        assert_eq!(
            ETag::from_version(u64::MAX).as_bytes(),
            b"\"v18446744073709551615\""
        );
        let t = UNIX_EPOCH + std::time::Duration::new(5, 7);
        assert_eq!(ETag::from_timestamp(t).as_bytes(), b"\"t5.000000007\"");
        let before = UNIX_EPOCH - std::time::Duration::new(1, 500_000_000);
        assert_eq!(
            ETag::from_timestamp(before).as_bytes(),
            b"\"t-1.500000000\""
        );
        assert!(ETag::from_version(1).is_strong());
    }

    #[test]
    fn version_reads_back_zero_and_nothing_with_a_leading_zero() {
        // `"v0"` is what `from_version(0)` writes: a store whose first
        // version is 0 must find it again, or it refuses every write.
        assert_eq!(ETag::from_version(0).version(), Some(0));
        assert_eq!(ETag::from_version(10).version(), Some(10));
        // Only the one spelling `from_version` writes reads back.
        for other in ["v00", "v01", "v042", "v0042", "v"] {
            assert_eq!(ETag::strong(other).unwrap().version(), None, "{other}");
        }
    }

    #[test]
    fn equality_means_identical() {
        assert_eq!(tag("\"a\""), tag("\"a\""));
        assert_ne!(tag("\"a\""), tag("W/\"a\""));
        assert_ne!(tag("\"a\""), tag("\"b\""));
    }

    #[test]
    fn hash_follows_the_wire_form() {
        // `Hash` must agree with `==` (identical wire forms), and a map or
        // set keyed by tags (for example by tags clients send) must not put
        // every tag in one bucket: tags that differ, if only in `W/`, hash
        // apart. `DefaultHasher::new()` has fixed keys, so this is exact.
        use std::collections::hash_map::DefaultHasher;
        fn hash_of(t: &ETag) -> u64 {
            let mut h = DefaultHasher::new();
            t.hash(&mut h);
            h.finish()
        }
        let long = "x".repeat(100);
        for (a, b) in [
            (tag("\"v7\""), ETag::from_version(7)),
            (tag("W/\"a\""), ETag::weak("a").unwrap()),
            (
                ETag::strong(&long).unwrap(),
                ETag::parse(format!("\"{long}\"")).unwrap(),
            ),
        ] {
            assert_eq!(a, b);
            assert_eq!(hash_of(&a), hash_of(&b), "{a}");
        }
        let distinct = [tag("\"a\""), tag("W/\"a\""), tag("\"b\""), tag("\"\"")];
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(hash_of(a), hash_of(b), "{a} and {b}");
            }
        }
    }

    #[test]
    fn debug_shows_the_wire_form() {
        // What a failed `assert_eq!` or a log line shows for a tag, or for a
        // `Precondition` or `Conflict` holding one.
        let t = tag("W/\"a\"");
        assert_eq!(format!("{t:?}"), "ETag(W/\"a\")");
        let e = ETag::parse(b"\"\xe9\"").unwrap();
        assert_eq!(format!("{e:?}"), "ETag(\"\u{e9}\")");
    }

    #[test]
    fn obs_text_displays_as_latin1_and_keeps_exact_bytes() {
        let t = ETag::parse(b"\"\xe9\"").unwrap();
        assert_eq!(t.to_string(), "\"\u{e9}\"");
        assert_eq!(t.to_header_value().as_bytes(), b"\"\xe9\"");
    }

    #[test]
    fn converts_from_header_values() {
        let v = HeaderValue::from_static("W/\"a\"");
        assert_eq!(ETag::try_from(&v).unwrap(), tag("W/\"a\""));
        assert!(ETag::try_from(HeaderValue::from_static("a")).is_err());
        assert_eq!(HeaderValue::from(tag("\"a\"")), "\"a\"");
        assert_eq!(
            ETag::try_from("W/\"a\"".to_owned()).unwrap(),
            tag("W/\"a\"")
        );
        assert!(ETag::try_from("a".to_owned()).is_err());
    }

    #[test]
    fn serde_uses_the_wire_string() {
        let t = tag("W/\"a\"");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#""W/\"a\"""#);
        let back: ETag = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<ETag>("\"nope\"").is_err());
        // A value of another type says what was expected instead.
        let err = serde_json::from_str::<ETag>("1").unwrap_err().to_string();
        assert!(err.contains("expected an entity-tag such as"), "{err}");
    }

    #[test]
    fn serde_refuses_a_tag_no_string_stands_for() {
        // 0xFF alone is Latin-1 "ÿ"; C3 BF is UTF-8 "ÿ": two tags.
        let latin1 = ETag::parse(b"\"\xff\"").unwrap();
        let utf8 = ETag::parse("\"ÿ\"".as_bytes()).unwrap();
        assert_ne!(latin1, utf8);
        let err = serde_json::to_string(&latin1).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
        let json = serde_json::to_string(&utf8).unwrap();
        assert_eq!(serde_json::from_str::<ETag>(&json).unwrap(), utf8);
        // So a value holding one cannot share a value tag with a value
        // holding the other.
        assert!(ETag::from_serialize(&[&latin1]).is_err());
        assert!(ETag::from_serialize(&[&utf8]).is_ok());
    }
}
