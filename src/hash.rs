//! Content-derived entity-tags, hashed with blake3.
//!
//! The design notes (digest length, determinism) are on
//! [`ETag::from_content`], where rustdoc shows them.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::ser::{self, Serialize};

use crate::error::HashError;
use crate::etag::ETag;

/// Digest bytes kept in a content tag (192 bits; see [`ETag::from_content`]).
const DIGEST_LEN: usize = 24;
/// base64 characters for [`DIGEST_LEN`] bytes, no padding.
const ENCODED_LEN: usize = DIGEST_LEN / 3 * 4;

/// blake3 is fastest when given at least 16 KiB at once (it hashes several
/// 1 KiB chunks in parallel with SIMD); pieces smaller than that are copied
/// into a staging window of this size first.
const STAGE: usize = 64 * 1024;
/// Content up to this size is fed to blake3 as it comes, unstaged (see
/// [`Stage::write`]).
const DIRECT: u64 = 2 * 1024;

fn etag_from_hash(hash: &blake3::Hash) -> ETag {
    // `base64` takes its fast, 8-bytes-at-a-time path only when more than
    // 26 input bytes remain, so give it 27 digest bytes, straight into the
    // tag's storage after the opening quote, and put the closing quote over
    // the 33rd character: 24 is a multiple of 3, so the first 32 characters
    // encode exactly the first 24 bytes. For a 64-byte body this halves the
    // cost of the encoding, which would otherwise be a third of blake3's.
    const INPUT: usize = DIGEST_LEN + 3;
    const OUTPUT: usize = ENCODED_LEN + 4;
    ETag::inline_with(ENCODED_LEN + 2, |buf| {
        buf[0] = b'"';
        match URL_SAFE_NO_PAD.encode_slice(&hash.as_bytes()[..INPUT], &mut buf[1..=OUTPUT]) {
            Ok(OUTPUT) => {}
            // 27 bytes always encode to exactly 36 characters.
            _ => unreachable!("27 bytes encode to 36 base64 characters"),
        }
        // The URL-safe alphabet (A-Z a-z 0-9 - _) is all etagc.
        buf[ENCODED_LEN + 1] = b'"';
    })
}

impl ETag {
    /// Hashes `content` into a strong content tag: the first 192 bits of its
    /// blake3 hash, in the URL-safe base64 alphabet without padding (32
    /// characters, 34 bytes on the wire with the quotes, e.g.
    /// `"k0Yb0c5s3Nq6V2rQ0kqkq9p1aW3Ck3Zb"`).
    ///
    /// Use it for the bytes you send. The tag is a pure function of them (or,
    /// for [`from_serialize`](Self::from_serialize), of the value), so every
    /// process on every machine gives the same tag for the same content.
    ///
    /// Why 192 bits: a tag only has to tell versions of *one* resource apart,
    /// but those versions can be chosen by clients, so the tag must resist
    /// deliberate collisions, not only accidental ones. With an n-bit digest
    /// finding any collision takes about 2^(n/2) work: 128 bits (2^64 work) is
    /// within reach of a determined attacker with rented hardware, 192 bits
    /// (2^96) is not. 24 bytes are also exactly 32 base64 characters, so there
    /// is no padding to strip, and the whole tag fits the inline storage of
    /// `ETag`: building one never allocates.
    ///
    /// The tag for given content is
    /// [stable](ETag#stability-of-the-tags-this-crate-builds).
    ///
    /// ```
    /// use ifmatch::ETag;
    ///
    /// let tag = ETag::from_content(b"hello world");
    /// assert!(tag.is_strong());
    /// assert_eq!(tag.tag().len(), 32);
    /// assert_eq!(tag, ETag::from_content("hello world"));
    /// assert_ne!(tag, ETag::from_content("hello world!"));
    /// ```
    #[must_use]
    pub fn from_content(content: impl AsRef<[u8]>) -> Self {
        etag_from_hash(&blake3::hash(content.as_ref()))
    }

    /// Hashes a serializable value into a strong content tag, streaming the
    /// serialization straight into blake3 (no JSON text). Its memory: a
    /// 64 KiB buffer once the encoding passes 2 KiB (blake3 is fast only on
    /// large pieces), and, growing with the value, a 32-byte hash per
    /// entry of a map being hashed, kept in a `Vec` that may hold up to
    /// twice that while it grows, and a hasher of about 2.5 KiB for each
    /// map being hashed at once, one per level of maps nested in maps.
    ///
    /// The tag describes the *value*: its field names, variant names and
    /// data, each with its type and length, in a fixed encoding (a type
    /// byte, LEB128 lengths and numbers, zigzag for signed ones; a struct's
    /// field names have only their length, as nothing else can stand where
    /// they stand) that does not depend on byte order or word size, so it
    /// is the same on every machine. Maps are hashed
    /// entry by entry and the entry hashes are sorted, so a `HashMap` gives
    /// the same tag whatever its iteration order. Integers are widened to 64
    /// bits (`5u8` and `5u64` hash alike) and `f32` to `f64`, and every NaN
    /// hashes alike (`0.0` and `-0.0` do not: JSON writes them apart too).
    /// The hash is keyed (blake3's keyed mode, with a fixed
    /// key): a value tag is never the [content tag](Self::from_content) of
    /// any bytes.
    ///
    /// Values hash alike when serde hands them over alike, which is more
    /// than "they give the same JSON" in one way and less in another:
    /// - A newtype and the value inside it, `()` and a unit struct, a `Vec`
    ///   and a tuple with the same elements hash alike, as serde presents
    ///   them alike. So, by the first of these, do a tuple variant and a
    ///   newtype variant of the same name holding a tuple (`Point(1, 2)`
    ///   and `Point((1, 2))`), and a struct variant and a newtype variant
    ///   of the same name holding a struct with the same fields.
    /// - Names of types and enums, and the indices of variants, are not
    ///   hashed: renaming a type or reordering variants keeps its tags.
    ///   Field names and their order are: reordering a struct's fields
    ///   changes every tag of it, which during a rolling deploy answers
    ///   412 to tags the other version handed out.
    /// - Values that give the same JSON through *different* serde shapes
    ///   do not: a struct and a `serde_json::Value` object with the same
    ///   fields (a struct against a map), a `char` and a one-character
    ///   string, `Some(1)` and `1`, `5i32` and `5u32`, `5u64` and `5u128`
    ///   (128-bit integers are not narrowed), a unit variant and the
    ///   string of its name. So tag the same Rust type on every path: a
    ///   service that tags a typed struct when it reads and a
    ///   `serde_json::Value` when it writes never matches its own tags.
    /// - The serializer says it is human-readable, as serde_json's does, so
    ///   types that serialize in two forms (`IpAddr`) hash their text form,
    ///   alike with the string.
    ///
    /// Sets are serialized by serde as plain sequences, so a `HashSet`
    /// *does* depend on its iteration order: use a `BTreeSet` (or sort) in
    /// values you hash. The other way round, a map whose order carries
    /// meaning (an `IndexMap`, a `serde_json::Map` with serde_json's
    /// `preserve_order` feature, which another crate can turn on) is hashed
    /// as unordered: two orders of the same entries get one tag. Serialize
    /// such data as a sequence of pairs if reordering it is a change.
    ///
    /// For a given value the tag is
    /// [stable](ETag#stability-of-the-tags-this-crate-builds): the rules
    /// above are part of the API.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use ifmatch::ETag;
    ///
    /// let a: HashMap<&str, u32> = [("x", 1), ("y", 2)].into_iter().collect();
    /// let b: HashMap<&str, u32> = [("y", 2), ("x", 1)].into_iter().collect();
    /// assert_eq!(ETag::from_serialize(&a)?, ETag::from_serialize(&b)?);
    /// # Ok::<(), ifmatch::HashError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Returns the error the value's `Serialize` implementation reports, if
    /// any, and an error for a value that nests more than 256 levels deep
    /// (each `Option`, newtype, sequence, map or struct is a level): the
    /// limit keeps a hostile value from exhausting the stack. serde_json
    /// refuses to parse JSON nested deeper than 128 levels by default, so
    /// any `serde_json::Value` it parsed can be hashed. A typed value can
    /// spend several levels on one level of JSON (each struct, `Option` and
    /// newtype counts, a `Box` does not: a list of
    /// `Node { next: Option<Box<Node>> }` spends two per node), so a
    /// recursive type parsed from JSON within serde_json's limit may still
    /// be refused here.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, HashError> {
        let mut sink = Sink::staged_for_values();
        value
            .serialize(ValueSerializer {
                sink: &mut sink,
                depth: 0,
            })
            .map_err(|SerError(message)| HashError::new(message))?;
        Ok(etag_from_hash(&sink.finalize()))
    }
}

/// Computes a content [`ETag`] from content that arrives in pieces.
///
/// Feeding the pieces one by one gives exactly the tag that
/// [`ETag::from_content`] gives for their concatenation. Small pieces are
/// coalesced into a 64 KiB window before they reach blake3, which hashes
/// large inputs several times faster than small ones; memory use is bounded
/// by that window, whatever the content's size.
///
/// ```
/// use ifmatch::{ETag, ETagHasher};
///
/// let mut hasher = ETagHasher::new();
/// hasher.update(b"hello ");
/// hasher.update(b"world");
/// assert_eq!(hasher.finish(), ETag::from_content(b"hello world"));
/// ```
///
/// It is also an [`io::Write`], so `io::copy` can feed it from a reader:
///
/// ```
/// use std::io;
/// use ifmatch::{ETag, ETagHasher};
///
/// let mut file: &[u8] = b"hello world"; // any `io::Read`, e.g. a `File`
/// let mut hasher = ETagHasher::new();
/// io::copy(&mut file, &mut hasher)?;
/// assert_eq!(hasher.finish(), ETag::from_content(b"hello world"));
/// # Ok::<(), io::Error>(())
/// ```
#[derive(Clone)]
pub struct ETagHasher {
    sink: Sink,
}

/// Shows no state: the staged bytes are the content being hashed, which
/// has no place in a log (as `blake3::Hasher` shows none).
impl std::fmt::Debug for ETagHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ETagHasher").finish_non_exhaustive()
    }
}

impl Default for ETagHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl ETagHasher {
    /// A hasher with nothing fed yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sink: Sink::staged(),
        }
    }

    /// A hasher whose staging window holds at most `window` bytes (64 KiB
    /// at most): for content known to be no larger, so that the window is
    /// not larger than the content. The tag is the same whatever the window.
    #[cfg(feature = "middleware")]
    pub(crate) fn with_window(window: usize) -> Self {
        Self {
            sink: Sink::new(window.min(STAGE), blake3::Hasher::new()),
        }
    }

    /// Feeds the next piece of content.
    pub fn update(&mut self, piece: &[u8]) -> &mut Self {
        self.sink.write(piece);
        self
    }

    /// The tag of everything fed, which ends the hasher. To read a tag and
    /// go on feeding, finish a clone (it copies any pieces not hashed yet,
    /// up to the window).
    #[must_use]
    pub fn finish(mut self) -> ETag {
        etag_from_hash(&self.sink.finalize())
    }
}

impl io::Write for ETagHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Pieces up to this size are gathered in [`Sink::small`] first, copied with
/// fixed-size moves rather than a `memcpy` call each (value items are a few
/// bytes: a type tag, a length, a number, a field name).
const SMALL_PIECE: usize = 64;
/// Size of [`Sink::small`].
const SMALL: usize = 512;

/// A blake3 hasher with an optional staging window that coalesces small
/// writes.
#[derive(Debug, Clone)]
struct Sink {
    big: Stage,
    small: [u8; SMALL],
    small_len: usize,
}

#[derive(Debug, Clone)]
struct Stage {
    hasher: blake3::Hasher,
    // At most `window` bytes wait here. A window of 0: write straight to
    // the hasher (map entries, which are small and short-lived).
    stage: Vec<u8>,
    window: usize,
}

/// Writes `n` as LEB128 (7 bits a byte, low first, high bit = more) into
/// `out` (at least 10 bytes), returning the length.
#[inline]
fn leb128(mut n: u64, out: &mut [u8]) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = n as u8 | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// Copies `src` (at most [`SMALL_PIECE`] bytes) to the start of `dst`
/// with two overlapping fixed-size moves.
#[inline(always)]
fn copy_small(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n >= 32 {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..n].copy_from_slice(&src[n - 32..]);
    } else if n >= 16 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..n].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..n].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..n].copy_from_slice(&src[n - 4..]);
    } else if n > 0 {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

impl Stage {
    fn write(&mut self, mut data: &[u8]) {
        if self.window == 0 {
            self.hasher.update(data);
            return;
        }
        if self.stage.len() + data.len() <= self.window {
            if self.stage.capacity() == 0 {
                // Nothing staged yet. Until blake3 has seen a few chunks
                // (1 KiB each) it hashes them one after the other whatever
                // the piece size, so small content (a serialized value is
                // usually a few hundred bytes) goes straight to it, without
                // allocating the window.
                if data.len() >= self.window || self.hasher.count() + data.len() as u64 <= DIRECT {
                    self.hasher.update(data);
                    return;
                }
                self.stage.reserve_exact(self.window);
            }
            crate::copy::extend(&mut self.stage, data);
            return;
        }
        if !self.stage.is_empty() {
            let take = self.window - self.stage.len();
            crate::copy::extend(&mut self.stage, &data[..take]);
            self.hasher.update(&self.stage);
            self.stage.clear();
            data = &data[take..];
        }
        if data.len() >= self.window {
            self.hasher.update(data);
        } else {
            crate::copy::extend(&mut self.stage, data);
        }
    }

    fn finalize(&mut self) -> blake3::Hash {
        if !self.stage.is_empty() {
            self.hasher.update(&self.stage);
            self.stage.clear();
        }
        self.hasher.finalize()
    }
}

impl Sink {
    fn staged() -> Self {
        Self::new(STAGE, blake3::Hasher::new())
    }

    /// The sink of a value tag: blake3 keyed with [`VALUE_KEY`], so that no
    /// value tag is ever the content tag of some bytes (a raw upload can
    /// hold any bytes, a value's encoding included).
    fn staged_for_values() -> Self {
        Self::new(STAGE, blake3::Hasher::new_keyed(&VALUE_KEY))
    }

    fn direct() -> Self {
        Self::new(0, blake3::Hasher::new())
    }

    fn new(window: usize, hasher: blake3::Hasher) -> Self {
        Self {
            big: Stage {
                hasher,
                stage: Vec::new(),
                window,
            },
            small: [0; SMALL],
            small_len: 0,
        }
    }

    #[inline]
    fn write(&mut self, data: &[u8]) {
        if data.len() <= SMALL_PIECE && self.small_len + SMALL_PIECE <= SMALL {
            copy_small(&mut self.small[self.small_len..], data);
            self.small_len += data.len();
            return;
        }
        self.write_big(data);
    }

    #[cold]
    fn write_big(&mut self, data: &[u8]) {
        self.flush_small();
        if data.len() <= SMALL_PIECE {
            copy_small(&mut self.small, data);
            self.small_len = data.len();
        } else {
            self.big.write(data);
        }
    }

    fn flush_small(&mut self) {
        if self.small_len > 0 {
            self.big.write(&self.small[..self.small_len]);
            self.small_len = 0;
        }
    }

    fn finalize(&mut self) -> blake3::Hash {
        self.flush_small();
        self.big.finalize()
    }

    /// Back to nothing written, keeping the allocations.
    fn reset(&mut self) {
        self.big.hasher.reset();
        self.big.stage.clear();
        self.small_len = 0;
    }

    fn tag(&mut self, t: u8) {
        self.write(&[t]);
    }

    /// `t`, then `n` in LEB128 (1 byte below 128): one write.
    #[inline]
    fn tagged_varint(&mut self, t: u8, n: u64) {
        if n < 0x80 {
            self.write(&[t, n as u8]);
            return;
        }
        let mut b = [0u8; 11];
        b[0] = t;
        let len = 1 + leb128(n, &mut b[1..]);
        self.write(&b[..len]);
    }

    /// `n` in LEB128.
    fn u64(&mut self, n: u64) {
        let mut b = [0u8; 10];
        let len = leb128(n, &mut b);
        self.write(&b[..len]);
    }

    /// A struct field name: its length plus one in LEB128, then the bytes.
    /// No type byte: inside a struct only a field name or the end
    /// ([`FIELDS_END`], zero, which no length plus one can be) can come
    /// next.
    #[inline]
    fn field_name(&mut self, name: &[u8]) {
        let n = name.len();
        if n + 2 <= SMALL_PIECE && self.small_len + SMALL_PIECE <= SMALL {
            let at = self.small_len;
            self.small[at] = n as u8 + 1;
            copy_small(&mut self.small[at + 1..], name);
            self.small_len = at + 1 + n;
            return;
        }
        self.u64(n as u64 + 1);
        self.write(name);
    }

    #[inline]
    fn bytes(&mut self, t: u8, b: &[u8]) {
        let n = b.len();
        // Most names and strings are short: type byte, one length byte and
        // the bytes go into the small buffer in one step.
        if n + 2 <= SMALL_PIECE && self.small_len + SMALL_PIECE <= SMALL {
            let at = self.small_len;
            self.small[at] = t;
            self.small[at + 1] = n as u8;
            copy_small(&mut self.small[at + 2..], b);
            self.small_len = at + 2 + n;
            return;
        }
        self.tagged_varint(t, n as u64);
        self.write(b);
    }
}

/// The key value tags are hashed with: `blake3::derive_key(VALUE_CONTEXT,
/// b"")`, written out (a test checks it). Keyed hashing is a separate
/// domain from plain hashing, and costs nothing more per hash.
const VALUE_KEY: [u8; 32] = [
    0x40, 0x81, 0x5e, 0x52, 0x8c, 0x37, 0xc7, 0x74, 0x54, 0xb3, 0x19, 0xde, 0xbf, 0xdc, 0x0e, 0xeb,
    0x6d, 0xbc, 0xff, 0x9f, 0xfa, 0xc7, 0xe6, 0x11, 0xcb, 0xef, 0x40, 0xb0, 0xeb, 0x3f, 0x0d, 0x4a,
];
/// The blake3 context string [`VALUE_KEY`] is derived from. A change of
/// the value encoding changes the version in it.
#[cfg(test)]
const VALUE_CONTEXT: &str = "ifmatch 2026-11-27 ETag::from_serialize value encoding v1";

// Type tags of the value encoding. Every item is self-delimiting (tagged,
// and length-prefixed where its size varies), so concatenations cannot be
// confused with each other.
const T_BOOL: u8 = b'b';
const T_INT: u8 = b'i';
const T_UINT: u8 = b'u';
const T_I128: u8 = b'I';
const T_U128: u8 = b'U';
const T_FLOAT: u8 = b'd';
const T_CHAR: u8 = b'c';
const T_STR: u8 = b's';
const T_BYTES: u8 = b'y';
const T_NONE: u8 = b'n';
const T_SOME: u8 = b'S';
const T_UNIT: u8 = b'z';
const T_VARIANT: u8 = b'e';
/// A unit variant: its name alone, so that it differs from a newtype
/// variant of the same name holding a unit (`"A"` against `{"A":null}`).
const T_UNIT_VARIANT: u8 = b'v';
const T_SEQ: u8 = b'q';
const T_STRUCT: u8 = b'o';
const T_MAP: u8 = b'm';
const T_END: u8 = b']';
/// Ends the fields of a struct (see [`Sink::field_name`]).
const FIELDS_END: u8 = 0;

/// The error of the serializer inside [`ETag::from_serialize`]: serde
/// requires it to implement `serde::ser::Error`, and `HashError` must not
/// (that would let anyone build one, and make serde's trait part of its
/// API), so it is converted once, at the end.
#[derive(Debug)]
struct SerError(String);

impl std::fmt::Display for SerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerError {}

impl serde::ser::Error for SerError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// How deep values may nest: each level of serialization takes some stack,
/// and values can come from requests. serde_json's parser stops at 128
/// levels by default; wrappers (`Option`, newtypes) count as levels here,
/// so this leaves room for them.
const MAX_DEPTH: u32 = 256;

#[cold]
#[inline(never)]
fn too_deep() -> SerError {
    SerError(format!("it nests more than {MAX_DEPTH} levels deep"))
}

struct ValueSerializer<'a> {
    sink: &'a mut Sink,
    // How many values enclose this one.
    depth: u32,
}

impl<'a> ValueSerializer<'a> {
    /// The serializer for a value inside one at `depth`, or the error that
    /// it nests too deep.
    #[inline(always)]
    fn nested(sink: &'a mut Sink, depth: u32) -> Result<Self, SerError> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(Self {
            sink,
            depth: depth + 1,
        })
    }

    fn variant(self, variant: &str) -> Self {
        self.sink.bytes(T_VARIANT, variant.as_bytes());
        self
    }

    fn compound(self) -> Compound<'a> {
        Compound {
            sink: self.sink,
            depth: self.depth,
        }
    }
}

struct Compound<'a> {
    sink: &'a mut Sink,
    depth: u32,
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        value.serialize(ValueSerializer::nested(&mut *self.sink, self.depth)?)
    }

    fn end(self) -> Result<(), SerError> {
        self.sink.tag(T_END);
        Ok(())
    }

    fn end_fields(self) -> Result<(), SerError> {
        self.sink.tag(FIELDS_END);
        Ok(())
    }
}

struct MapSerializer<'a> {
    parent: &'a mut Sink,
    depth: u32,
    // One sink for all entries, reset for each: boxed, so that a map
    // inside a map inside a map does not put a hasher on the stack at
    // every level.
    entry: Option<Box<Sink>>,
    // Whether a key was serialized and its value not yet.
    open: bool,
    digests: Vec<[u8; 32]>,
}

impl<'a> ser::Serializer for ValueSerializer<'a> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = MapSerializer<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), SerError> {
        self.sink.write(&[T_BOOL, u8::from(v)]);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), SerError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), SerError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), SerError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), SerError> {
        // Zigzag, so small negative numbers stay short too.
        self.sink
            .tagged_varint(T_INT, ((v << 1) ^ (v >> 63)) as u64);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), SerError> {
        self.sink.tag(T_I128);
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), SerError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), SerError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), SerError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), SerError> {
        self.sink.tagged_varint(T_UINT, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), SerError> {
        self.sink.tag(T_U128);
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), SerError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), SerError> {
        // Every NaN alike: its payload bits differ between CPUs (and
        // between a constant and a computed NaN), and serde_json writes
        // any NaN as `null`.
        let v = if v.is_nan() { f64::NAN } else { v };
        let mut b = [T_FLOAT; 9];
        b[1..].copy_from_slice(&v.to_bits().to_le_bytes());
        self.sink.write(&b);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), SerError> {
        let mut b = [T_CHAR; 5];
        b[1..].copy_from_slice(&u32::from(v).to_le_bytes());
        self.sink.write(&b);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        self.sink.bytes(T_STR, v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), SerError> {
        self.sink.bytes(T_BYTES, v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), SerError> {
        self.sink.tag(T_NONE);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), SerError> {
        self.sink.tag(T_SOME);
        value.serialize(ValueSerializer::nested(self.sink, self.depth)?)
    }
    fn serialize_unit(self) -> Result<(), SerError> {
        self.sink.tag(T_UNIT);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), SerError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.sink.bytes(T_UNIT_VARIANT, variant.as_bytes());
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        value.serialize(ValueSerializer::nested(self.sink, self.depth)?)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        let this = self.variant(variant);
        value.serialize(ValueSerializer::nested(this.sink, this.depth)?)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, SerError> {
        self.sink.tag(T_SEQ);
        Ok(self.compound())
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, SerError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, SerError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, SerError> {
        self.variant(variant).serialize_seq(Some(len))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSerializer<'a>, SerError> {
        Ok(MapSerializer {
            parent: self.sink,
            depth: self.depth,
            entry: None,
            open: false,
            digests: Vec::new(),
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>, SerError> {
        self.sink.tag(T_STRUCT);
        Ok(self.compound())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, SerError> {
        self.sink.bytes(T_VARIANT, variant.as_bytes());
        self.sink.tag(T_STRUCT);
        Ok(self.compound())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        Compound::end(self)
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        Compound::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        Compound::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        Compound::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.sink.field_name(key.as_bytes());
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        self.end_fields()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.sink.field_name(key.as_bytes());
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        self.end_fields()
    }
}

impl ser::SerializeMap for MapSerializer<'_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        if self.open {
            return Err(SerError(
                "map key serialized after a key without its value".to_owned(),
            ));
        }
        let entry = self.entry.get_or_insert_with(|| Box::new(Sink::direct()));
        entry.reset();
        self.open = true;
        key.serialize(ValueSerializer::nested(entry, self.depth)?)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        let (true, Some(entry)) = (self.open, self.entry.as_mut()) else {
            return Err(SerError("map value serialized before its key".to_owned()));
        };
        value.serialize(ValueSerializer::nested(entry, self.depth)?)?;
        self.digests.push(*entry.finalize().as_bytes());
        self.open = false;
        Ok(())
    }

    fn end(mut self) -> Result<(), SerError> {
        if self.open {
            return Err(SerError("map key without a value".to_owned()));
        }
        // Sorting the entry hashes makes the result independent of the
        // order in which the map yielded its entries.
        self.digests.sort_unstable();
        self.parent.tag(T_MAP);
        self.parent.u64(self.digests.len() as u64);
        for d in &self.digests {
            self.parent.write(d);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::io::Write as _;

    use super::*;

    #[test]
    fn content_tag_has_the_documented_shape() {
        let tag = ETag::from_content(b"");
        assert!(tag.is_strong());
        assert_eq!(tag.as_bytes().len(), 34);
        assert!(
            tag.tag()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        );
        // blake3("") starts with af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7.
        let expected = URL_SAFE_NO_PAD.encode(&blake3::hash(b"").as_bytes()[..24]);
        assert_eq!(tag.tag(), expected.as_bytes());
        assert_eq!(tag.to_string(), "\"rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3\"");
    }

    #[test]
    fn streaming_gives_the_one_shot_tag_for_any_split() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = ETag::from_content(&data);
        for piece in [1, 7, 1000, 8192, 16 * 1024, 65_535, 65_536, 65_537, 200_000] {
            let mut h = ETagHasher::new();
            for chunk in data.chunks(piece) {
                h.update(chunk);
            }
            assert_eq!(h.finish(), whole, "piece size {piece}");
        }
        let mut h = ETagHasher::new();
        h.update(&data[..10])
            .update(&data[10..100_000])
            .update(&data[100_000..]);
        assert_eq!(h.finish(), whole);
        let mut h = ETagHasher::new();
        h.write_all(&data).unwrap();
        assert_eq!(h.finish(), whole);
        assert_eq!(ETagHasher::new().finish(), ETag::from_content(b""));
    }

    #[test]
    fn hash_map_order_does_not_change_the_tag() {
        let mut a = HashMap::new();
        let mut b = HashMap::new();
        for i in 0..200 {
            a.insert(format!("k{i}"), i);
        }
        for i in (0..200).rev() {
            b.insert(format!("k{i}"), i);
        }
        let ka: Vec<_> = a.keys().cloned().collect();
        let kb: Vec<_> = b.keys().cloned().collect();
        // Make sure the two maps really iterate differently.
        assert_ne!(ka, kb, "test needs two different iteration orders");
        assert_eq!(
            ETag::from_serialize(&a).unwrap(),
            ETag::from_serialize(&b).unwrap()
        );
        let sorted: BTreeMap<_, _> = a.clone().into_iter().collect();
        assert_eq!(
            ETag::from_serialize(&a).unwrap(),
            ETag::from_serialize(&sorted).unwrap()
        );
        b.insert("k0".to_owned(), 1);
        assert_ne!(
            ETag::from_serialize(&a).unwrap(),
            ETag::from_serialize(&b).unwrap()
        );
    }

    #[test]
    fn value_tags_tell_structure_apart() {
        let t = |v: &serde_json::Value| ETag::from_serialize(v).unwrap();
        let cases = [
            serde_json::json!({"a": "bc"}),
            serde_json::json!({"ab": "c"}),
            serde_json::json!({"a": ["b", "c"]}),
            serde_json::json!({"a": ["bc"]}),
            serde_json::json!({"a": [["b"], "c"]}),
            serde_json::json!({"a": {"b": "c"}}),
            serde_json::json!({"a": 1}),
            serde_json::json!({"a": 1.0}),
            serde_json::json!({"a": "1"}),
            serde_json::json!({"a": null}),
            serde_json::json!({"a": true}),
            serde_json::json!({}),
            serde_json::json!([]),
            serde_json::json!(""),
        ];
        let tags: Vec<_> = cases.iter().map(t).collect();
        for i in 0..tags.len() {
            for j in i + 1..tags.len() {
                assert_ne!(tags[i], tags[j], "{} vs {}", cases[i], cases[j]);
            }
        }
        assert_eq!(t(&cases[0]), t(&serde_json::json!({"a": "bc"})));
    }

    /// The shape rules `from_serialize` documents: a newtype is its inner
    /// value, inside a variant too; type names and variant indices are not
    /// hashed, field order is; 128-bit integers and signed zeros stay
    /// apart; a type with a text form hashes as its text.
    #[test]
    fn the_documented_shape_rules_hold() {
        fn t<T: Serialize>(v: &T) -> ETag {
            ETag::from_serialize(v).unwrap()
        }
        #[derive(serde::Serialize)]
        enum Variants {
            Point(u8, u8),
            Circle { r: u8 },
        }
        #[derive(serde::Serialize)]
        struct Circle {
            r: u8,
        }
        #[derive(serde::Serialize)]
        enum Newtypes {
            Point((u8, u8)),
            Circle(Circle),
        }
        assert_eq!(t(&Variants::Point(1, 2)), t(&Newtypes::Point((1, 2))));
        assert_eq!(
            t(&Variants::Circle { r: 3 }),
            t(&Newtypes::Circle(Circle { r: 3 }))
        );

        #[derive(serde::Serialize)]
        struct Xy {
            x: u8,
            y: u8,
        }
        #[derive(serde::Serialize)]
        struct Renamed {
            x: u8,
            y: u8,
        }
        #[derive(serde::Serialize)]
        struct Yx {
            y: u8,
            x: u8,
        }
        assert_eq!(t(&Xy { x: 1, y: 2 }), t(&Renamed { x: 1, y: 2 }));
        assert_ne!(t(&Xy { x: 1, y: 2 }), t(&Yx { y: 2, x: 1 }));

        #[derive(serde::Serialize)]
        enum Before {
            A,
            B(u8),
        }
        #[derive(serde::Serialize)]
        enum After {
            B(u8),
            A,
        }
        assert_eq!(t(&Before::A), t(&After::A));
        assert_eq!(t(&Before::B(1)), t(&After::B(1)));

        assert_ne!(t(&5u64), t(&5u128));
        assert_ne!(t(&-5i64), t(&-5i128));
        assert_ne!(t(&0.0f64), t(&-0.0f64));

        let ip = std::net::IpAddr::from([192, 0, 2, 1]);
        assert_eq!(t(&ip), t(&"192.0.2.1"));
    }

    #[test]
    fn value_tags_are_stable_across_processes_and_machines() {
        // Pinned: the encoding is byte-order and width independent, so
        // this literal must hold on every platform and in every release
        // that does not announce a change of tags.
        #[derive(serde::Serialize)]
        struct Item<'a> {
            id: &'a str,
            count: u32,
            tags: Vec<&'a str>,
        }
        let item = Item {
            id: "x1",
            count: 3,
            tags: vec!["a", "b"],
        };
        // The documented encoding, written out by hand: a type tag, then a
        // LEB128 length or number (one byte below 128), then the bytes.
        // Field names have no type byte and their length plus one, so that
        // the zero ending the fields cannot be taken for one.
        let mut enc = vec![T_STRUCT];
        let s = |enc: &mut Vec<u8>, v: &str| {
            enc.extend_from_slice(&[T_STR, v.len() as u8]);
            enc.extend_from_slice(v.as_bytes());
        };
        let field = |enc: &mut Vec<u8>, v: &str| {
            enc.push(v.len() as u8 + 1);
            enc.extend_from_slice(v.as_bytes());
        };
        field(&mut enc, "id");
        s(&mut enc, "x1");
        field(&mut enc, "count");
        enc.extend_from_slice(&[T_UINT, 3]);
        field(&mut enc, "tags");
        enc.push(T_SEQ);
        s(&mut enc, "a");
        s(&mut enc, "b");
        enc.extend_from_slice(&[T_END, FIELDS_END]);
        let tag = ETag::from_serialize(&item).unwrap();
        // Hashed with blake3 keyed by VALUE_KEY: never the content tag of
        // the same bytes.
        assert_eq!(tag, etag_from_hash(&blake3::keyed_hash(&VALUE_KEY, &enc)));
        assert_ne!(tag, ETag::from_content(&enc));
        assert_eq!(tag.to_string(), "\"7wyrhm0kxjddX_8SoNO7hAj5ioOUIyHT\"");
    }

    #[test]
    fn the_type_bytes_have_their_values() {
        // The encoding tests write expected encodings with these constants,
        // so a changed value passes them; yet it changes every tag of such
        // items. Pinned here by value.
        assert_eq!(
            [
                T_BOOL,
                T_INT,
                T_UINT,
                T_I128,
                T_U128,
                T_FLOAT,
                T_CHAR,
                T_STR,
                T_BYTES,
                T_NONE,
                T_SOME,
                T_UNIT,
                T_VARIANT,
                T_UNIT_VARIANT,
                T_SEQ,
                T_STRUCT,
                T_MAP,
                T_END,
                FIELDS_END,
            ],
            *b"biuIUdcsynSzevqom]\0"
        );
    }

    #[test]
    fn the_value_key_is_derived_from_its_context() {
        assert_eq!(VALUE_KEY, blake3::derive_key(VALUE_CONTEXT, b""));
    }

    #[test]
    fn values_that_render_as_different_json_get_different_tags() {
        use std::marker::PhantomData;

        #[derive(serde::Serialize)]
        enum Unit {
            Archived,
        }
        #[derive(serde::Serialize)]
        struct Marker;
        #[derive(serde::Serialize)]
        enum Newtype {
            Archived(Marker),
        }
        #[derive(serde::Serialize)]
        enum Same {
            #[serde(rename = "x")]
            Empty,
            #[serde(rename = "x")]
            Marked(PhantomData<u8>),
        }
        let t = |v: &dyn erased::Value| v.tag();
        // "Archived" against {"Archived":null}.
        assert_ne!(t(&Unit::Archived), t(&Newtype::Archived(Marker)));
        assert_ne!(t(&Same::Empty), t(&Same::Marked(PhantomData)));
        // A unit variant is not its name as a string either.
        assert_ne!(t(&Unit::Archived), t(&"Archived"));
    }

    #[test]
    fn every_nan_gets_one_tag() {
        let computed = f64::from_bits(0xfff8_0000_0000_0001);
        assert!(computed.is_nan());
        assert_eq!(
            ETag::from_serialize(&computed).unwrap(),
            ETag::from_serialize(&f64::NAN).unwrap()
        );
        assert_eq!(
            ETag::from_serialize(&f32::NAN).unwrap(),
            ETag::from_serialize(&f64::NAN).unwrap()
        );
        assert_ne!(
            ETag::from_serialize(&f64::NAN).unwrap(),
            ETag::from_serialize(&f64::INFINITY).unwrap()
        );
    }

    #[test]
    fn a_map_key_without_its_value_is_an_error_not_a_tag() {
        use serde::ser::{SerializeMap, Serializer};

        struct Broken(&'static [&'static str]);
        impl Serialize for Broken {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(None)?;
                for key in self.0 {
                    map.serialize_key(key)?;
                }
                map.end()
            }
        }
        // A key left open at the end, and two keys in a row.
        assert!(ETag::from_serialize(&Broken(&["a"])).is_err());
        assert!(ETag::from_serialize(&Broken(&["a", "b"])).is_err());
        assert!(ETag::from_serialize(&Broken(&[])).is_ok());
    }

    /// Object-safe access to a value's tag, for tables of values of
    /// different types.
    mod erased {
        pub(super) trait Value {
            fn tag(&self) -> crate::ETag;
        }
        impl<T: serde::Serialize> Value for T {
            fn tag(&self) -> crate::ETag {
                crate::ETag::from_serialize(self).unwrap()
            }
        }
    }

    #[test]
    fn numbers_and_lengths_of_every_width_stay_distinct() {
        let t = |v: &serde_json::Value| ETag::from_serialize(v).unwrap();
        let values = [
            serde_json::json!(0),
            serde_json::json!(1),
            serde_json::json!(-1),
            serde_json::json!(127),
            serde_json::json!(128),
            serde_json::json!(-64),
            serde_json::json!(-65),
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MIN),
            serde_json::json!(i64::MAX),
            serde_json::json!("a".repeat(127)),
            serde_json::json!("a".repeat(128)),
            serde_json::json!("a".repeat(300)),
            serde_json::json!(["a".repeat(127), "a"]),
            serde_json::json!(["a".repeat(128)]),
        ];
        let tags: Vec<_> = values.iter().map(t).collect();
        for i in 0..tags.len() {
            for j in i + 1..tags.len() {
                assert_ne!(tags[i], tags[j], "{} vs {}", values[i], values[j]);
            }
        }
    }

    /// The tag of a value whose encoding is `enc`.
    fn encoded_as(enc: &[u8]) -> ETag {
        etag_from_hash(&blake3::keyed_hash(&VALUE_KEY, enc))
    }

    /// `n` in LEB128, written out by hand for the expected encodings.
    fn leb(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(low);
                return out;
            }
            out.push(low | 0x80);
        }
    }

    /// A string's or byte string's encoding: type, LEB128 length, bytes.
    fn sized(t: u8, b: &[u8]) -> Vec<u8> {
        [&[t][..], &leb(b.len() as u64), b].concat()
    }

    /// A struct whose field names are given, each holding `()`.
    struct Fields(Vec<&'static str>);
    impl Serialize for Fields {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeStruct as _;
            let mut st = s.serialize_struct("Fields", self.0.len())?;
            for name in &self.0 {
                st.serialize_field(name, &())?;
            }
            st.end()
        }
    }

    /// What [`Fields`] encodes to.
    fn fields_encoding(names: &[&str]) -> Vec<u8> {
        let mut enc = vec![T_STRUCT];
        for name in names {
            enc.extend(leb(name.len() as u64 + 1));
            enc.extend_from_slice(name.as_bytes());
            enc.push(T_UNIT);
        }
        enc.push(FIELDS_END);
        enc
    }

    /// A map's encoding: the count, then the sorted hashes of its entries'
    /// encodings (plain blake3, unkeyed).
    fn map_encoding(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut digests: Vec<[u8; 32]> = entries
            .iter()
            .map(|e| *blake3::hash(e).as_bytes())
            .collect();
        digests.sort_unstable();
        let mut enc = vec![T_MAP];
        enc.extend(leb(entries.len() as u64));
        for d in &digests {
            enc.extend_from_slice(d);
        }
        enc
    }

    #[test]
    fn field_names_of_every_length_stay_distinct() {
        let leak = |n: usize| -> &'static str { "a".repeat(n).leak() };
        let cases = [
            vec![],
            vec![""],
            vec!["", ""],
            vec!["a"],
            vec![leak(126)],
            vec![leak(127)],
            vec![leak(128)],
            vec![leak(127), ""],
            vec![leak(300)],
        ];
        let tags: Vec<_> = cases
            .iter()
            .map(|c| ETag::from_serialize(&Fields(c.clone())).unwrap())
            .collect();
        for i in 0..tags.len() {
            for j in i + 1..tags.len() {
                assert_ne!(tags[i], tags[j], "{:?} vs {:?}", cases[i], cases[j]);
            }
        }
        // A struct is not the map with the same entries.
        let map: std::collections::BTreeMap<&str, ()> = [("a", ())].into_iter().collect();
        assert_ne!(
            ETag::from_serialize(&map).unwrap(),
            ETag::from_serialize(&Fields(vec!["a"])).unwrap()
        );
    }

    #[test]
    fn deep_values_hash_within_a_small_stack_and_too_deep_ones_are_an_error() {
        type Wrap = fn(serde_json::Value) -> serde_json::Value;
        // Values can come from requests; a stack overflow would abort the
        // whole process. Run where a tokio worker would: on a 2 MiB stack.
        fn nest(depth: usize, wrap: Wrap) -> serde_json::Value {
            (0..depth).fold(serde_json::json!(1), |v, _| wrap(v))
        }
        let check = || {
            let wraps: [(&str, Wrap); 2] = [
                ("maps", |v| serde_json::json!({ "k": v })),
                ("arrays", |v| serde_json::json!([v])),
            ];
            for (name, wrap) in wraps {
                let deepest = nest(MAX_DEPTH as usize, wrap);
                assert!(ETag::from_serialize(&deepest).is_ok(), "{name}");
                let err = ETag::from_serialize(&nest(MAX_DEPTH as usize + 1, wrap)).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!("cannot hash value: it nests more than {MAX_DEPTH} levels deep"),
                    "{name}"
                );
            }
            // Options and newtypes nest too, without any compound.
            struct Chain(usize);
            impl Serialize for Chain {
                fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    match self.0 {
                        0 => s.serialize_none(),
                        n if n % 2 == 0 => s.serialize_some(&Chain(n - 1)),
                        n => s.serialize_newtype_struct("Chain", &Chain(n - 1)),
                    }
                }
            }
            assert!(ETag::from_serialize(&Chain(MAX_DEPTH as usize)).is_ok());
            assert!(ETag::from_serialize(&Chain(100_000)).is_err());
        };
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(check)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_hashers_debug_shows_none_of_the_content() {
        let mut hasher = ETagHasher::new();
        hasher.update(b"password=hunter2");
        // Past the direct threshold, so the window holds staged bytes too.
        hasher.update(&[b'S'; 4096]);
        let shown = format!("{hasher:?}");
        assert_eq!(shown, "ETagHasher { .. }");
    }

    #[test]
    fn long_values_hash_through_the_staging_window() {
        let big: Vec<String> = (0..20_000).map(|i| format!("value number {i}")).collect();
        let mut other = big.clone();
        let a = ETag::from_serialize(&big).unwrap();
        assert_eq!(a, ETag::from_serialize(&big).unwrap());
        other[19_999].push('!');
        assert_ne!(a, ETag::from_serialize(&other).unwrap());
    }

    #[test]
    fn serialize_errors_are_reported() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("nope"))
            }
        }
        let err = ETag::from_serialize(&vec![Fails]).unwrap_err();
        assert_eq!(err.to_string(), "cannot hash value: nope");

        // A `Serialize` impl that adds context to an inner error formats
        // the serializer's error: its message must survive that.
        struct Field(Fails);
        impl Serialize for Field {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0
                    .serialize(s)
                    .map_err(|e| ser::Error::custom(format!("field `price`: {e}")))
            }
        }
        let err = ETag::from_serialize(&Field(Fails)).unwrap_err();
        assert_eq!(err.to_string(), "cannot hash value: field `price`: nope");
    }

    #[test]
    fn past_two_kib_blake3_is_fed_no_piece_under_16_kib() {
        // DESIGN.md: blake3 fed pieces under 16 KiB is much slower, so the
        // hasher coalesces them. Watch what reaches blake3 (its byte count)
        // after each piece, for small, middling and just-under-a-window
        // pieces, and a window part-filled before a large piece.
        let data: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        let patterns: [&[usize]; 6] = [
            &[10],
            &[100],
            &[1000],
            &[8 * 1024],
            &[60_000],
            &[3 * 1024, 64_000, 5, 64_000],
        ];
        for sizes in patterns {
            let mut hasher = ETagHasher::new();
            let (mut at, mut i) = (0, 0);
            while at < data.len() {
                let end = (at + sizes[i % sizes.len()]).min(data.len());
                let before = hasher.sink.big.hasher.count();
                hasher.update(&data[at..end]);
                let after = hasher.sink.big.hasher.count();
                assert!(
                    after == before || after <= DIRECT || after - before >= 16 * 1024,
                    "pieces {sizes:?}: blake3 fed {} bytes at {before}",
                    after - before
                );
                (at, i) = (end, i + 1);
            }
            assert_eq!(
                hasher.finish(),
                ETag::from_content(&data),
                "pieces {sizes:?}"
            );
        }
    }

    #[test]
    fn every_item_has_its_documented_encoding() {
        // Pinned item by item, like the struct in
        // `value_tags_are_stable_across_processes_and_machines`: a change
        // of any of these bytes changes every stored tag of such values.
        #[derive(serde::Serialize)]
        struct Unit;
        #[derive(serde::Serialize)]
        struct Pair(u8, u8);
        #[derive(serde::Serialize)]
        enum E {
            A,
            N(u8),
            T(u8, u8),
            S { x: u8 },
        }
        struct Bytes(Vec<u8>);
        impl Serialize for Bytes {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        let long = |n: usize| -> &'static str { "f".repeat(n).leak() };
        let x = |n: usize| "x".repeat(n);
        let max9 = [0xff; 9];
        let cases: Vec<(&str, Box<dyn erased::Value>, Vec<u8>)> = vec![
            ("true", Box::new(true), vec![T_BOOL, 1]),
            ("false", Box::new(false), vec![T_BOOL, 0]),
            // Integers widened to 64 bits, signed ones zigzagged.
            ("5i8", Box::new(5i8), vec![T_INT, 10]),
            ("5i16", Box::new(5i16), vec![T_INT, 10]),
            ("5i32", Box::new(5i32), vec![T_INT, 10]),
            ("5i64", Box::new(5i64), vec![T_INT, 10]),
            ("-1i8", Box::new(-1i8), vec![T_INT, 1]),
            ("-65i16", Box::new(-65i16), vec![T_INT, 0x81, 0x01]),
            (
                "i64::MIN",
                Box::new(i64::MIN),
                [&[T_INT][..], &max9, &[1]].concat(),
            ),
            (
                "i64::MAX",
                Box::new(i64::MAX),
                [&[T_INT][..], &[0xfe], &max9[1..], &[1]].concat(),
            ),
            ("5u8", Box::new(5u8), vec![T_UINT, 5]),
            ("5u16", Box::new(5u16), vec![T_UINT, 5]),
            ("5u32", Box::new(5u32), vec![T_UINT, 5]),
            ("5u64", Box::new(5u64), vec![T_UINT, 5]),
            ("127u8", Box::new(127u8), vec![T_UINT, 127]),
            ("128u16", Box::new(128u16), vec![T_UINT, 0x80, 0x01]),
            ("300u32", Box::new(300u32), vec![T_UINT, 0xac, 0x02]),
            (
                "u64::MAX",
                Box::new(u64::MAX),
                [&[T_UINT][..], &max9, &[1]].concat(),
            ),
            (
                "-2i128",
                Box::new(-2i128),
                [&[T_I128][..], &(-2i128).to_le_bytes()].concat(),
            ),
            (
                "7u128",
                Box::new(7u128),
                [&[T_U128][..], &7u128.to_le_bytes()].concat(),
            ),
            // Floats widened to f64, as their bits.
            (
                "1.5f32",
                Box::new(1.5f32),
                [&[T_FLOAT][..], &1.5f64.to_bits().to_le_bytes()].concat(),
            ),
            (
                "-0.0f64",
                Box::new(-0.0f64),
                [&[T_FLOAT][..], &(-0.0f64).to_bits().to_le_bytes()].concat(),
            ),
            ("'é'", Box::new('é'), vec![T_CHAR, 0xe9, 0, 0, 0]),
            ("\"\"", Box::new(""), vec![T_STR, 0]),
            ("\"ab\"", Box::new("ab"), sized(T_STR, b"ab")),
            ("62 chars", Box::new(x(62)), sized(T_STR, x(62).as_bytes())),
            ("63 chars", Box::new(x(63)), sized(T_STR, x(63).as_bytes())),
            (
                "200 chars",
                Box::new(x(200)),
                sized(T_STR, x(200).as_bytes()),
            ),
            (
                "bytes",
                Box::new(Bytes(vec![0, 0xff])),
                sized(T_BYTES, &[0, 0xff]),
            ),
            (
                "300 bytes",
                Box::new(Bytes(vec![7; 300])),
                sized(T_BYTES, &[7; 300]),
            ),
            ("None", Box::new(None::<u8>), vec![T_NONE]),
            ("Some(3)", Box::new(Some(3u8)), vec![T_SOME, T_UINT, 3]),
            ("()", Box::new(()), vec![T_UNIT]),
            ("unit struct", Box::new(Unit), vec![T_UNIT]),
            (
                "unit variant",
                Box::new(E::A),
                vec![T_UNIT_VARIANT, 1, b'A'],
            ),
            (
                "newtype variant",
                Box::new(E::N(3)),
                vec![T_VARIANT, 1, b'N', T_UINT, 3],
            ),
            (
                "tuple variant",
                Box::new(E::T(1, 2)),
                vec![T_VARIANT, 1, b'T', T_SEQ, T_UINT, 1, T_UINT, 2, T_END],
            ),
            (
                "struct variant",
                Box::new(E::S { x: 1 }),
                vec![T_VARIANT, 1, b'S', T_STRUCT, 2, b'x', T_UINT, 1, FIELDS_END],
            ),
            (
                "seq",
                Box::new(vec![1u8, 2]),
                vec![T_SEQ, T_UINT, 1, T_UINT, 2, T_END],
            ),
            (
                "tuple",
                Box::new((1u8, 2u8)),
                vec![T_SEQ, T_UINT, 1, T_UINT, 2, T_END],
            ),
            (
                "tuple struct",
                Box::new(Pair(1, 2)),
                vec![T_SEQ, T_UINT, 1, T_UINT, 2, T_END],
            ),
            (
                "field names of 62, 63 and 200 bytes",
                Box::new(Fields(vec![long(62), long(63), long(200)])),
                fields_encoding(&[long(62), long(63), long(200)]),
            ),
            (
                "map",
                Box::new(BTreeMap::from([("k", 1u8), ("l", 2u8)])),
                map_encoding(&[
                    vec![T_STR, 1, b'k', T_UINT, 1],
                    vec![T_STR, 1, b'l', T_UINT, 2],
                ]),
            ),
            (
                "map of 130 entries",
                Box::new((0..130u64).map(|k| (k, ())).collect::<BTreeMap<_, _>>()),
                map_encoding(
                    &(0..130u64)
                        .map(|k| [&[T_UINT][..], &leb(k), &[T_UNIT]].concat())
                        .collect::<Vec<_>>(),
                ),
            ),
        ];
        for (what, value, enc) in &cases {
            assert_eq!(value.tag(), encoded_as(enc), "{what}");
        }
    }

    #[test]
    fn the_encoding_does_not_depend_on_what_came_before() {
        // Items are gathered in buffers before they reach blake3; wherever
        // an item falls in them, it must encode the same.
        #[derive(serde::Serialize)]
        struct Item {
            m: BTreeMap<&'static str, u8>,
            #[serde(rename = "a_field_name_of_exactly_sixty_two_bytes_to_fill_a_small_piece_")]
            after_map: f64,
            s: String,
            n: u64,
            l: Fields,
        }
        let long_name = "a_field_name_of_exactly_sixty_two_bytes_to_fill_a_small_piece_";
        assert_eq!(long_name.len(), 62);
        let item = Item {
            m: BTreeMap::from([("k", 1)]),
            after_map: 0.5,
            s: "s".repeat(63),
            n: 1 << 40,
            l: Fields(vec!["f", "g".repeat(40).leak(), "h".repeat(70).leak()]),
        };
        let mut item_enc = vec![T_STRUCT, 2, b'm'];
        item_enc.extend(map_encoding(&[vec![T_STR, 1, b'k', T_UINT, 1]]));
        item_enc.extend(leb(63));
        item_enc.extend_from_slice(long_name.as_bytes());
        item_enc.push(T_FLOAT);
        item_enc.extend_from_slice(&0.5f64.to_bits().to_le_bytes());
        item_enc.extend([2, b's']);
        item_enc.extend(sized(T_STR, "s".repeat(63).as_bytes()));
        item_enc.extend([2, b'n', T_UINT]);
        item_enc.extend(leb(1 << 40));
        item_enc.extend([2, b'l']);
        item_enc.extend(fields_encoding(&item.l.0));
        item_enc.push(FIELDS_END);
        // Units encode to one byte each, so a sequence of `prefix` of them
        // puts the item at every offset of the buffers in turn (a long
        // string would not: it is written past them).
        for prefix in 0..1200 {
            let units = vec![(); prefix];
            let enc = [
                &[T_SEQ, T_SEQ][..],
                &vec![T_UNIT; prefix],
                &[T_END],
                &item_enc,
                &[T_END],
            ]
            .concat();
            assert_eq!(
                ETag::from_serialize(&(&units, &item)).unwrap(),
                encoded_as(&enc),
                "after a prefix of {prefix} bytes"
            );
        }
    }
}
