//! Entity-tag lists, as sent in `If-Match` and `If-None-Match`.

use std::fmt;
use std::str::FromStr;

use http::HeaderValue;

use crate::error::{ETagErrorKind, InvalidETag};
use crate::etag::{ETag, is_etagc};
use crate::headers::trim_ows;

/// The field value of `If-Match` or `If-None-Match`: `*` or a list of
/// entity-tags ([RFC 9110 §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1),
/// [§13.1.2](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2)).
///
/// ```text
/// If-Match = "*" / #entity-tag
/// #element = [ element ] *( OWS "," OWS [ element ] )   ; §5.6.1
/// ```
///
/// Example wire values: `*`, `"xyzzy"`, `"xyzzy", W/"r2d2xxxx", "c3piozzzz"`,
/// `, "a" ,, "b",` (empty elements are allowed).
///
/// Commas inside the quotes belong to the tag (`"a,b"` is one tag). `*`
/// must be the whole value: `"a", *` is malformed. Several header lines are
/// one list ([RFC 9110 §5.3](https://www.rfc-editor.org/rfc/rfc9110#section-5.3)):
/// see [`from_lines`](Self::from_lines).
///
/// This type owns its tags, for services that want to inspect a list. The
/// [evaluator](crate::Policy::evaluate) does not build it: it scans the raw
/// field lines in place, without allocating.
///
/// ```
/// use ifmatch::{ETag, ETagList};
///
/// let list: ETagList = r#""a,b", W/"c""#.parse()?;
/// let current = ETag::strong("a,b")?;
/// assert!(list.strong_match(&current));
/// assert!(list.weak_match(&ETag::strong("c")?));
/// assert!(!list.strong_match(&ETag::strong("c")?));
/// assert_eq!(list.to_string(), r#""a,b", W/"c""#);
/// # Ok::<(), ifmatch::InvalidETag>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ETagList {
    /// `*`: any current representation.
    Any,
    /// A list of entity-tags, possibly empty.
    Tags(Vec<ETag>),
}

impl ETagList {
    /// Parses a list spread over several field lines, as one list.
    ///
    /// No lines at all give an empty list, the same as a field whose value
    /// is empty; but an absent `If-Match` is not an `If-Match` that matches
    /// nothing ([RFC 9110 §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1)), so check that the field is present
    /// before parsing it. [`Policy::evaluate`](crate::Policy::evaluate)
    /// does.
    ///
    /// # Errors
    ///
    /// [`InvalidETag`] for the first member that is not an entity-tag, or a
    /// `*` that is not the whole field value.
    ///
    /// ```
    /// use ifmatch::ETagList;
    ///
    /// let list = ETagList::from_lines([&b"\"a\""[..], b"\"b\", \"c\""])?;
    /// assert_eq!(list, "\"a\", \"b\", \"c\"".parse()?);
    /// # Ok::<(), ifmatch::InvalidETag>(())
    /// ```
    pub fn from_lines<'a, I>(lines: I) -> Result<Self, InvalidETag>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut tags = Vec::new();
        let mut star = false;
        let mut count = 0;
        for line in lines {
            count += 1;
            if is_star(line) {
                star = true;
                continue;
            }
            for item in Items::new(line) {
                match item? {
                    Item::Tag { wire } => tags.push(ETag::from_valid_wire(wire)),
                    Item::Star => return Err(InvalidETag::new(ETagErrorKind::StarInList)),
                }
            }
        }
        if star && count > 1 {
            return Err(InvalidETag::new(ETagErrorKind::StarInList));
        }
        Ok(if star { Self::Any } else { Self::Tags(tags) })
    }

    /// Whether the list is `*`, or holds a tag that matches `current` under
    /// the strong comparison (the `If-Match` rule, [RFC 9110 §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1)).
    #[must_use]
    pub fn strong_match(&self, current: &ETag) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|t| t.strong_eq(current)),
        }
    }

    /// Whether the list is `*`, or holds a tag that matches `current` under
    /// the weak comparison (the `If-None-Match` rule, [RFC 9110 §13.1.2](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2)).
    #[must_use]
    pub fn weak_match(&self, current: &ETag) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|t| t.weak_eq(current)),
        }
    }

    /// The list as a header value, for a client's `If-Match` or
    /// `If-None-Match`: `*`, or the tags separated by `", "`, byte for byte
    /// (a tag with obs-text bytes keeps them, which the `Display` text
    /// cannot).
    ///
    /// ```
    /// use http::header::{HeaderMap, IF_MATCH};
    /// use ifmatch::{ETag, ETagList};
    ///
    /// let list = ETagList::Tags(vec![ETag::from_version(1), ETag::parse(b"\"caf\xe9\"")?]);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(IF_MATCH, list.to_header_value());
    /// assert_eq!(headers[IF_MATCH].as_bytes(), b"\"v1\", \"caf\xe9\"");
    /// assert_eq!(ETagList::try_from(&headers[IF_MATCH])?, list);
    /// # Ok::<(), ifmatch::InvalidETag>(())
    /// ```
    #[must_use]
    pub fn to_header_value(&self) -> HeaderValue {
        let Self::Tags(tags) = self else {
            return HeaderValue::from_static("*");
        };
        let mut bytes = Vec::with_capacity(tags.iter().map(|t| t.as_bytes().len() + 2).sum());
        for (i, tag) in tags.iter().enumerate() {
            if i > 0 {
                bytes.extend_from_slice(b", ");
            }
            bytes.extend_from_slice(tag.as_bytes());
        }
        match HeaderValue::from_bytes(&bytes) {
            Ok(v) => v,
            // Tags hold only bytes a header value may (see
            // `ETag::to_header_value`), and ", " is visible ASCII and SP.
            Err(_) => unreachable!("an entity-tag list is always a valid header value"),
        }
    }
}

impl From<&ETagList> for HeaderValue {
    fn from(list: &ETagList) -> Self {
        list.to_header_value()
    }
}

impl FromStr for ETagList {
    type Err = InvalidETag;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_lines([s.as_bytes()])
    }
}

impl TryFrom<&HeaderValue> for ETagList {
    type Error = InvalidETag;

    fn try_from(v: &HeaderValue) -> Result<Self, Self::Error> {
        Self::from_lines([v.as_bytes()])
    }
}

impl fmt::Display for ETagList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Tags(tags) => {
                for (i, t) in tags.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    fmt::Display::fmt(t, f)?;
                }
                Ok(())
            }
        }
    }
}

/// One member of a list line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    Star,
    /// An entity-tag, as it stands on the line (already validated).
    Tag {
        wire: &'a [u8],
    },
}

/// A quote-aware scanner over one field line: skips OWS and empty elements,
/// yields members, and stops after the first error.
pub(crate) struct Items<'a> {
    line: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Items<'a> {
    pub(crate) fn new(line: &'a [u8]) -> Self {
        Self {
            line,
            pos: 0,
            failed: false,
        }
    }

    fn fail(&mut self, kind: ETagErrorKind) -> Option<Result<Item<'a>, InvalidETag>> {
        self.failed = true;
        Some(Err(InvalidETag::new(kind)))
    }
}

#[inline]
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<Item<'a>, InvalidETag>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let line = self.line;
        let n = line.len();
        let mut i = self.pos;
        // Empty elements and OWS before a member.
        while i < n && (is_ows(line[i]) || line[i] == b',') {
            i += 1;
        }
        if i == n {
            self.pos = n;
            return None;
        }
        let start = i;
        let item = if line[i] == b'*' {
            i += 1;
            Item::Star
        } else {
            if line[i..].starts_with(b"W/") {
                i += 2;
            }
            match line.get(i) {
                Some(b'"') => {}
                Some(&found) => {
                    return self.fail(ETagErrorKind::MissingOpeningQuote { offset: i, found });
                }
                None => return self.fail(ETagErrorKind::EndBeforeOpeningQuote { offset: i }),
            }
            i += 1;
            i += etagc_run(&line[i..]);
            match line.get(i) {
                Some(b'"') => {}
                Some(&byte) => {
                    return self.fail(ETagErrorKind::InvalidByte { offset: i, byte });
                }
                None => return self.fail(ETagErrorKind::MissingClosingQuote),
            }
            i += 1;
            Item::Tag {
                wire: &line[start..i],
            }
        };
        // OWS, then a comma or the end of the line.
        while i < n && is_ows(line[i]) {
            i += 1;
        }
        if i < n && line[i] != b',' {
            return self.fail(ETagErrorKind::MissingComma { offset: i });
        }
        self.pos = i;
        Some(Ok(item))
    }
}

/// The length of the run of etagc bytes `s` starts with, read 16 bytes at a
/// time: content tags are 32 bytes, so a byte-at-a-time loop with three
/// comparisons per byte dominates the evaluator.
#[inline]
pub(crate) fn etagc_run(s: &[u8]) -> usize {
    let mut i = 0;
    for w in s.chunks_exact(16) {
        let Ok(w) = <&[u8; 16]>::try_from(w) else {
            break;
        };
        // Branch-free over a fixed-size block, so it compiles to a few
        // SIMD compares.
        let bad = w.iter().fold(0u8, |acc, &b| {
            acc | u8::from((b < 0x21) | (b == 0x22) | (b == 0x7f))
        });
        if bad != 0 {
            break;
        }
        i += 16;
    }
    while i < s.len() && is_etagc(s[i]) {
        i += 1;
    }
    i
}

/// What a list field said about the current representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The field is not in the request.
    Absent,
    /// The field value is `*`.
    Any,
    /// A well-formed list; `matched` is whether a member matched.
    Tags { matched: bool },
    /// The field value does not follow the grammar.
    Malformed,
}

/// Scans all lines of a list field against `current`, in one pass and
/// without allocating. `matches(weak, opaque)` decides whether a member
/// matches; it is not called once a member has matched.
pub(crate) fn scan<'a, I, F>(lines: I, mut matches: F) -> Scan
where
    I: Iterator<Item = &'a [u8]>,
    F: FnMut(bool, &[u8]) -> bool,
{
    let mut count = 0;
    let mut star = false;
    let mut matched = false;
    for line in lines {
        count += 1;
        if is_star(line) {
            star = true;
            continue;
        }
        if !scan_line(line, &mut matches, &mut matched) {
            return Scan::Malformed;
        }
    }
    match (count, star) {
        (0, _) => Scan::Absent,
        (1, true) => Scan::Any,
        (_, true) => Scan::Malformed,
        (_, false) => Scan::Tags { matched },
    }
}

/// The hot loop of [`scan`]: the grammar of [`Items`] without building
/// items or errors. Returns whether `line` is a well-formed list (a `*`
/// inside it is not).
#[inline]
fn scan_line<F>(line: &[u8], matches: &mut F, matched: &mut bool) -> bool
where
    F: FnMut(bool, &[u8]) -> bool,
{
    let n = line.len();
    let mut i = 0;
    loop {
        // Empty elements and OWS before a member.
        while i < n && matches!(line[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i == n {
            return true;
        }
        let weak = line[i] == b'W';
        if weak {
            if line.get(i + 1) != Some(&b'/') {
                return false;
            }
            i += 2;
        }
        if line.get(i) != Some(&b'"') {
            return false;
        }
        i += 1;
        let open = i;
        i += etagc_run(&line[i..]);
        if line.get(i) != Some(&b'"') {
            return false;
        }
        if !*matched && matches(weak, &line[open..i]) {
            *matched = true;
        }
        i += 1;
        // OWS, then a comma or the end of the line.
        while i < n && is_ows(line[i]) {
            i += 1;
        }
        if i < n && line[i] != b',' {
            return false;
        }
    }
}

/// The one member of a list field that is a well-formed list of exactly
/// one entity-tag, as it stands on its line: `None` for `*`, for no tag or
/// several, and for a malformed field, as [`ETagList::from_lines`] would
/// see it. Stops at a second member, and allocates nothing.
pub(crate) fn only_tag<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let mut only = None;
    for line in lines {
        for item in Items::new(line) {
            match item.ok()? {
                Item::Tag { wire } if only.is_none() => only = Some(wire),
                // A second tag, or a `*`: alone (`Any`) or in a list
                // (malformed), it is no single tag.
                _ => return None,
            }
        }
    }
    only
}

/// `"*"` is an alternative to the whole list, not a member of it: it is
/// only `*` if the field is one line holding nothing else (no empty
/// elements either: `*,` is malformed).
fn is_star(line: &[u8]) -> bool {
    trim_ows(line) == b"*"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_str(lines: &[&str], current: &str) -> Scan {
        let cur: ETag = current.parse().unwrap();
        scan(lines.iter().map(|l| l.as_bytes()), |weak, opaque| {
            !weak && cur.is_strong() && opaque == cur.tag()
        })
    }

    #[test]
    fn etagc_run_agrees_with_the_byte_rule() {
        for b in 0..=255u8 {
            for at in 0..20 {
                let mut s = vec![b'a'; 20];
                s[at] = b;
                let want = if is_etagc(b) { 20 } else { at };
                assert_eq!(etagc_run(&s), want, "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn etagc_run_agrees_with_the_byte_rule_whatever_surrounds_the_byte() {
        // The 16-byte blocks must reject every byte `etagc` rejects, also
        // in a block with no other kind of byte: bytes at the edges of the
        // rule (0x20/0x21, 0x22, 0x7e/0x7f, 0x80) as filler.
        for fill in [0x00, b' ', b'!', b'"', b'#', b'~', 0x7f, 0x80, 0xff] {
            for b in 0..=255u8 {
                for at in 0..40 {
                    let mut s = vec![fill; 40];
                    s[at] = b;
                    let want = s.iter().take_while(|&&c| is_etagc(c)).count();
                    assert_eq!(etagc_run(&s), want, "byte {b:#x} at {at} among {fill:#x}");
                }
            }
        }
    }

    #[test]
    fn commas_inside_quotes_are_part_of_the_tag() {
        assert_eq!(
            scan_str(&["\"a,b\""], "\"a,b\""),
            Scan::Tags { matched: true }
        );
        assert_eq!(
            scan_str(&["\"a,b\""], "\"a\""),
            Scan::Tags { matched: false }
        );
    }

    #[test]
    fn empty_elements_and_ows_are_allowed() {
        assert_eq!(
            scan_str(&[" , \"x\" ,\t,, \"a\" , "], "\"a\""),
            Scan::Tags { matched: true }
        );
        assert_eq!(scan_str(&[""], "\"a\""), Scan::Tags { matched: false });
        assert_eq!(scan_str(&[","], "\"a\""), Scan::Tags { matched: false });
    }

    #[test]
    fn lines_are_merged_into_one_list() {
        assert_eq!(
            scan_str(&["\"x\"", "\"y\", \"a\""], "\"a\""),
            Scan::Tags { matched: true }
        );
        assert_eq!(scan_str(&[], "\"a\""), Scan::Absent);
    }

    #[test]
    fn star_must_stand_alone() {
        assert_eq!(scan_str(&["*"], "\"a\""), Scan::Any);
        assert_eq!(scan_str(&[" * "], "\"a\""), Scan::Any);
        assert_eq!(scan_str(&["\"a\", *"], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["*, \"a\""], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["*", "\"a\""], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["*", "*"], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["**"], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["*,"], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&[", *"], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["*", ""], "\"a\""), Scan::Malformed);
        assert!("*,".parse::<ETagList>().is_err());
    }

    #[test]
    fn a_malformed_member_anywhere_makes_the_list_malformed() {
        assert_eq!(scan_str(&["\"a\", b"], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["\"a\" \"b\""], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["\"a b\""], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["\"a"], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["w/\"a\""], "\"a\""), Scan::Malformed);
        assert_eq!(scan_str(&["\"a\"", "junk"], "\"a\""), Scan::Malformed);
    }

    #[test]
    fn weak_members_never_match_strongly() {
        assert_eq!(
            scan_str(&["W/\"a\""], "\"a\""),
            Scan::Tags { matched: false }
        );
    }

    #[test]
    fn only_tag_is_the_single_tag_from_lines_finds() {
        let cases: &[&[&str]] = &[
            &["\"a\""],
            &[" , \"a\" ,"],
            &["W/\"a\""],
            &["\"a\"", ""],
            &["", "\"a,b\""],
            &["\"a\"", "\"b\""],
            &["\"a\", \"b\""],
            &["\"a\", junk"],
            &["junk, \"a\""],
            &["\"a\"", "*"],
            &["*"],
            &["\"a\", *"],
            &["*,"],
            &[""],
            &[],
        ];
        for lines in cases {
            let bytes = || lines.iter().map(|l| l.as_bytes());
            let want = match ETagList::from_lines(bytes()) {
                Ok(ETagList::Tags(tags)) if tags.len() == 1 => Some(tags[0].as_bytes().to_vec()),
                _ => None,
            };
            assert_eq!(only_tag(bytes()).map(<[u8]>::to_vec), want, "{lines:?}");
        }
    }

    #[test]
    fn ten_thousand_tags_scan_fine() {
        let mut line = String::new();
        for i in 0..10_000 {
            line.push_str(&format!("\"tag-{i}\", "));
        }
        assert_eq!(
            scan_str(&[&line], "\"tag-9999\""),
            Scan::Tags { matched: true }
        );
        let parsed: ETagList = line.parse().unwrap();
        assert!(matches!(parsed, ETagList::Tags(ref t) if t.len() == 10_000));
    }

    #[test]
    fn owned_list_parses_and_prints() {
        assert_eq!("*".parse::<ETagList>().unwrap(), ETagList::Any);
        assert_eq!("".parse::<ETagList>().unwrap(), ETagList::Tags(vec![]));
        assert!("\"a\", *".parse::<ETagList>().is_err());
        let err = "\"a\" \"b\"".parse::<ETagList>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid entity-tag: expected `,` between entity-tags at offset 4"
        );
        let err = "\"a\", W/".parse::<ETagList>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid entity-tag: expected `\"` at offset 7, found the end of the value"
        );
        let err = "*, \"a\"".parse::<ETagList>().unwrap_err();
        assert!(
            err.to_string()
                .contains("`*` must be the whole field value")
        );
        let list: ETagList = " \"a\" ,W/\"b\"".parse().unwrap();
        assert_eq!(list.to_string(), "\"a\", W/\"b\"");
        assert!(!ETagList::Tags(vec![]).strong_match(&ETag::strong("a").unwrap()));
        assert!(ETagList::Any.strong_match(&ETag::strong("a").unwrap()));
    }

    #[test]
    fn weak_match_is_the_if_none_match_comparison() {
        // RFC 9110 §13.1.2: If-None-Match uses the weak comparison
        // (§8.8.3.2): opaque tags equal, weakness ignored.
        let list: ETagList = r#""x", W/"a""#.parse().unwrap();
        assert!(list.weak_match(&ETag::strong("a").unwrap()));
        assert!(list.weak_match(&ETag::weak("x").unwrap()));
        assert!(!list.weak_match(&ETag::strong("b").unwrap()));
        assert!(!list.weak_match(&ETag::weak("ax").unwrap()));
        assert!(!ETagList::Tags(vec![]).weak_match(&ETag::strong("a").unwrap()));
        assert!(ETagList::Any.weak_match(&ETag::weak("a").unwrap()));
    }
}
