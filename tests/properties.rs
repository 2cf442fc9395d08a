//! Properties of the public API, checked with proptest:
//!
//! - the parsers and the evaluator never panic, whatever the bytes;
//! - formatting and parsing round-trip (`ETag`, `ETagList`);
//! - list matching agrees with a naive reference of the list grammar of
//!   [RFC 9110 §5.6.1](https://www.rfc-editor.org/rfc/rfc9110#section-5.6.1)
//!   and the comparison rules of
//!   [§13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1) and
//!   [§13.1.2](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2);
//! - content tags depend on the content only, not on how it is split or on
//!   the iteration order of a map.
//!
//! Case counts are kept small so the file runs in seconds in a debug build;
//! set `PROPTEST_CASES` for a longer run (`PROPTEST_CASES=10000 cargo test
//! --release --test properties`).

#[path = "support/invariants.rs"]
mod invariants;
#[path = "support/xorshift.rs"]
mod xorshift;

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ifmatch::{
    ETag, ETagHasher, ETagList, Evaluation, Failed, Outcome, Policy, RawHeaders, Validators,
    Versioned,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// `cases` unless `PROPTEST_CASES` says otherwise. Failures are not
/// persisted to a regressions file: the minimal cases found so far are kept
/// as plain tests at the bottom of this file instead.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::POST,
    Method::OPTIONS,
];

/// The fields the evaluator reads, with their lowercase names.
const FIELDS: [(HeaderName, &str); 6] = [
    (header::IF_MATCH, "if-match"),
    (header::IF_NONE_MATCH, "if-none-match"),
    (header::IF_MODIFIED_SINCE, "if-modified-since"),
    (header::IF_UNMODIFIED_SINCE, "if-unmodified-since"),
    (header::IF_RANGE, "if-range"),
    (header::RANGE, "range"),
];

/// `FIELDS` are the published ones, so that the evaluation test's noise
/// (any other field) proves that no other field changes an evaluation.
#[test]
fn the_fields_generated_are_the_published_ones() {
    let names: Vec<&HeaderName> = FIELDS.iter().map(|(name, _)| name).collect();
    let published: Vec<&HeaderName> = ifmatch::PRECONDITION_FIELDS.iter().collect();
    assert_eq!(names, published);
    for (name, lower) in &FIELDS {
        assert_eq!(name.as_str(), *lower);
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`, the example date of RFC 9110.
const RFC_DATE_SECS: u64 = 784_111_777;

fn policies() -> [Policy; 3] {
    [
        Policy::strict(),
        Policy::opt_in(),
        Policy::strict().accept_if_unmodified_since(true),
    ]
}

// ---------------------------------------------------------------------------
// The naive reference.
// ---------------------------------------------------------------------------

/// `OWS = *( SP / HTAB )` (RFC 9110 §5.6.3).
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().take_while(|&&b| is_ows(b)).count();
    let v = &v[start..];
    let end = v.len() - v.iter().rev().take_while(|&&b| is_ows(b)).count();
    &v[..end]
}

/// `etagc = %x21 / %x23-7E / obs-text`, `obs-text = %x80-FF`, spelled out as
/// in the ABNF.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || (0x80..=0xff).contains(&b)
}

/// `entity-tag = [ weak ] opaque-tag`, `weak = %s"W/"`,
/// `opaque-tag = DQUOTE *etagc DQUOTE` (RFC 9110 §8.8.3): the weakness and
/// the opaque tag, or `None`.
fn naive_entity_tag(v: &[u8]) -> Option<(bool, Vec<u8>)> {
    let (weak, rest) = match v.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let inner = rest.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    inner
        .iter()
        .all(|&b| is_etagc(b))
        .then(|| (weak, inner.to_vec()))
}

/// What an `If-Match` / `If-None-Match` field means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Naive {
    /// The whole field value is `*`.
    Any,
    /// A well-formed `#entity-tag`: (weak, opaque tag) of each member, in
    /// order.
    Tags(Vec<(bool, Vec<u8>)>),
    /// Neither.
    Malformed,
}

/// Reads the lines of one field as `"*" / #entity-tag`.
///
/// The lines are first combined into one field value, joined with `, `, as
/// RFC 9110 §5.3 allows; leading and trailing OWS are not part of a field
/// value (§5.5). The value is `*` only if it is exactly `*`.
///
/// Otherwise `#element = [ element ] *( OWS "," OWS [ element ] )` (§5.6.1):
/// the value is cut at each comma outside quotes, and every piece, without
/// its OWS, must be empty or one entity-tag. Cutting this way is exact: if
/// every piece is empty or an entity-tag, the value is such pieces joined by
/// `OWS "," OWS`, which is the grammar; and in a value that follows the
/// grammar, the only quotes are the two of each tag, so the commas outside
/// quotes are exactly the separators.
fn naive_list(lines: &[Vec<u8>]) -> Naive {
    let combined = lines.join(&b", "[..]);
    let value = trim_ows(&combined);
    if value == b"*" {
        return Naive::Any;
    }
    let mut pieces = vec![Vec::new()];
    let mut in_quotes = false;
    for &b in value {
        if b == b'"' {
            in_quotes = !in_quotes;
        }
        if b == b',' && !in_quotes {
            pieces.push(Vec::new());
        } else {
            pieces.last_mut().expect("never empty").push(b);
        }
    }
    let mut members = Vec::new();
    for piece in &pieces {
        let piece = trim_ows(piece);
        if piece.is_empty() {
            continue;
        }
        match naive_entity_tag(piece) {
            Some(member) => members.push(member),
            None => return Naive::Malformed,
        }
    }
    Naive::Tags(members)
}

/// Strong comparison (RFC 9110 §8.8.3.2): both strong, same opaque tag.
fn naive_strong_match(member: &(bool, Vec<u8>), current: &ETag) -> bool {
    !member.0 && current.is_strong() && member.1 == current.tag()
}

/// Weak comparison: same opaque tag, whatever the weakness.
fn naive_weak_match(member: &(bool, Vec<u8>), current: &ETag) -> bool {
    member.1 == current.tag()
}

// ---------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------

fn etagc() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0x21u8), 0x23u8..=0x7e, 0x80u8..=0xff]
}

fn ascii_etagc() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0x21u8), 0x23u8..=0x7e]
}

/// Opaque tags, mostly from a small pool so that list members often match
/// the current tag.
fn opaque() -> impl Strategy<Value = Vec<u8>> {
    let pool: Vec<&'static [u8]> = vec![b"", b"a", b"b", b"a,b", b"W/", b"*", b"\x80\xff"];
    prop_oneof![
        3 => select(pool).prop_map(<[u8]>::to_vec),
        1 => vec(etagc(), 0..60),
    ]
}

fn make_tag(weak: bool, opaque: &[u8]) -> ETag {
    let tag = if weak {
        ETag::weak(opaque)
    } else {
        ETag::strong(opaque)
    };
    tag.expect("etagc bytes make a valid tag")
}

fn current_tag() -> impl Strategy<Value = ETag> {
    (prop::bool::weighted(0.2), opaque()).prop_map(|(weak, opaque)| make_tag(weak, &opaque))
}

fn ows() -> impl Strategy<Value = Vec<u8>> {
    vec(select(vec![b' ', b'\t']), 0..3)
}

/// One element of a generated list line.
#[derive(Debug, Clone)]
enum Elem {
    Tag { weak: bool, opaque: Vec<u8> },
    Empty,
    Star,
    Garbage(Vec<u8>),
}

impl Elem {
    fn wire(&self) -> Vec<u8> {
        match self {
            Self::Tag { weak, opaque } => make_tag(*weak, opaque).as_bytes().to_vec(),
            Self::Empty => Vec::new(),
            Self::Star => b"*".to_vec(),
            Self::Garbage(g) => g.clone(),
        }
    }
}

fn elem() -> impl Strategy<Value = Elem> {
    prop_oneof![
        14 => (prop::bool::weighted(0.3), opaque())
            .prop_map(|(weak, opaque)| Elem::Tag { weak, opaque }),
        4 => Just(Elem::Empty),
        1 => Just(Elem::Star),
        1 => vec(select(b"ab W/\"*,\t\x7f\x00\xff".to_vec()), 1..6).prop_map(Elem::Garbage),
    ]
}

/// One field line: `OWS elem *( OWS "," OWS elem ) OWS`, with random OWS.
fn list_line() -> impl Strategy<Value = Vec<u8>> {
    (ows(), vec((ows(), ows(), elem()), 0..6), ows()).prop_map(|(lead, elems, trail)| {
        let mut line = lead;
        for (i, (before, after, elem)) in elems.iter().enumerate() {
            if i > 0 {
                line.extend_from_slice(before);
                line.push(b',');
                line.extend_from_slice(after);
            }
            line.extend_from_slice(&elem.wire());
        }
        line.extend_from_slice(&trail);
        line
    })
}

/// The lines of one list field (at least one): mostly lists, sometimes a
/// lone `*`.
fn list_lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        9 => vec(list_line(), 1..4),
        1 => (ows(), ows()).prop_map(|(a, b)| vec![[a, b"*".to_vec(), b].concat()]),
    ]
}

/// Header values for the never-panic properties: arbitrary bytes, grammar
/// soup, and values that mean something to the evaluator.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let meaningful: Vec<&'static [u8]> = vec![
        b"",
        b" ",
        b",",
        b"*",
        b"\"a\"",
        b"W/\"a\"",
        b"\"a\", W/\"b\", \"a,b\"",
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        b"Sunday, 06-Nov-94 08:49:37 GMT",
        b"Sun Nov  6 08:49:37 1994",
        b"Sun, 06 Nov 1994 08:49:36 GMT",
        b"Sun, 06 Nov 1994 08:49:38 GMT",
        b"bytes=0-1",
        b"\xff\x00",
    ];
    prop_oneof![
        3 => vec(any::<u8>(), 0..40),
        3 => vec(select(b" \t,\"W/*a0:-=\x80".to_vec()), 0..24),
        2 => select(meaningful).prop_map(<[u8]>::to_vec),
    ]
}

/// The lines of each of the six fields (often absent).
fn all_fields() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    let lines = prop_oneof![
        2 => Just(Vec::new()),
        2 => vec(header_bytes(), 1..2),
        1 => vec(header_bytes(), 2..4),
    ];
    vec(lines, FIELDS.len())
}

fn validators() -> impl Strategy<Value = Validators> {
    let modified = prop_oneof![
        Just(None),
        select(vec![
            Duration::from_secs(RFC_DATE_SECS),
            Duration::from_secs(RFC_DATE_SECS - 1),
            Duration::from_secs(RFC_DATE_SECS + 1),
            Duration::new(RFC_DATE_SECS, 500_000_000),
        ])
        .prop_map(|d| Some(UNIX_EPOCH + d)),
    ];
    (prop::option::of(current_tag()), modified).prop_map(|(etag, modified)| {
        let v = match etag {
            Some(etag) => Validators::new(etag),
            None => Validators::default(),
        };
        match modified {
            Some(t) => v.with_last_modified(t),
            None => v,
        }
    })
}

fn now() -> impl Strategy<Value = SystemTime> {
    select(vec![
        RFC_DATE_SECS,
        RFC_DATE_SECS + 1,
        RFC_DATE_SECS + 86_400,
    ])
    .prop_map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Content of every size around the hasher's 64 KiB staging window.
fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..2048),
        1 => (any::<u64>(), 0usize..200_000).prop_map(|(seed, len)| xorshift::bytes(seed, len)),
    ]
}

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

/// A `HeaderMap` with one field's lines, or `None` if `HeaderValue` rejects
/// one of them.
fn header_map(name: &HeaderName, lines: &[Vec<u8>]) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    for line in lines {
        map.append(name.clone(), HeaderValue::from_bytes(line).ok()?);
    }
    Some(map)
}

/// Evaluates one list field, through a `HeaderMap` (when the lines are valid
/// header values) and through `RawHeaders`; both must agree.
fn evaluate_list_field<V: Versioned>(
    method: &Method,
    name: &HeaderName,
    lines: &[Vec<u8>],
    current: &V,
) -> Result<Evaluation, TestCaseError> {
    let policy = Policy::default();
    let now = UNIX_EPOCH + Duration::from_secs(RFC_DATE_SECS);
    let pairs: Vec<(&[u8], &[u8])> = lines
        .iter()
        .map(|line| (name.as_str().as_bytes(), line.as_slice()))
        .collect();
    let raw = policy.evaluate(
        method,
        &RawHeaders::new(pairs.iter().copied()),
        Some(current),
        now,
    );
    if let Some(map) = header_map(name, lines) {
        let from_map = policy.evaluate(method, &map, Some(current), now);
        prop_assert_eq!(&from_map, &raw, "HeaderMap and RawHeaders disagree");
    }
    Ok(raw)
}

/// What must hold of any evaluation, whatever the headers.
fn check_invariants(
    policy: &Policy,
    method: &Method,
    current: Option<&Validators>,
    eval: &Evaluation,
) -> Result<(), TestCaseError> {
    invariants::evaluation_invariants(policy, method, current, eval).map_err(TestCaseError::fail)
}

// ---------------------------------------------------------------------------
// Parsers never panic.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn etag_parse_never_panics_and_follows_the_grammar(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..64),
            vec(select(b"W/\" !#~\x7f\x80\xff\t,".to_vec()), 0..12),
        ]
    ) {
        let parsed = ETag::parse(&bytes);
        prop_assert_eq!(parsed.is_ok(), naive_entity_tag(&bytes).is_some());
        prop_assert_eq!(ETag::try_from(bytes.as_slice()).ok(), parsed.clone().ok());
        if let Ok(tag) = parsed {
            let (weak, opaque) = naive_entity_tag(&bytes).expect("checked above");
            prop_assert_eq!(tag.as_bytes(), bytes.as_slice());
            prop_assert_eq!(tag.is_weak(), weak);
            prop_assert_eq!(tag.tag(), opaque.as_slice());
            let value = tag.to_header_value();
            prop_assert_eq!(value.as_bytes(), bytes.as_slice());
        }
    }

    #[test]
    fn etag_from_str_never_panics(s in any::<String>()) {
        let by_try = ETag::try_from(s.as_str());
        let by_parse = s.parse::<ETag>();
        prop_assert_eq!(by_try.is_ok(), naive_entity_tag(s.as_bytes()).is_some());
        prop_assert_eq!(by_try.ok(), by_parse.ok());
    }

    #[test]
    fn etag_list_from_lines_never_panics(
        lines in vec(
            prop_oneof![
                vec(any::<u8>(), 0..48),
                vec(select(b"W/\" a,*\t\x80".to_vec()), 0..24),
            ],
            0..4,
        )
    ) {
        if let Ok(list) = ETagList::from_lines(lines.iter().map(Vec::as_slice)) {
            // What was read, written back on the wire, reads the same.
            let wire = match &list {
                ETagList::Any => b"*".to_vec(),
                ETagList::Tags(tags) => tags
                    .iter()
                    .map(|t| t.as_bytes().to_vec())
                    .collect::<Vec<_>>()
                    .join(&b", "[..]),
                _ => return Ok(()),
            };
            prop_assert_eq!(ETagList::from_lines([wire.as_slice()]).ok(), Some(list));
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn evaluate_never_panics_on_any_header_bytes(
        fields in all_fields(),
        upper in vec(any::<bool>(), FIELDS.len()),
        noise in vec(
            (vec(any::<u8>(), 0..12), vec(any::<u8>(), 0..12)).prop_filter(
                "noise must not name a field the evaluator reads",
                |(name, _)| !FIELDS.iter().any(|(_, f)| name.eq_ignore_ascii_case(f.as_bytes())),
            ),
            0..3,
        ),
        current in validators(),
        now in now(),
    ) {
        // HeaderMap: every value HeaderValue accepts.
        let mut map = HeaderMap::new();
        let mut skipped = false;
        for ((name, _), lines) in FIELDS.iter().zip(&fields) {
            for line in lines {
                match HeaderValue::from_bytes(line) {
                    Ok(v) => {
                        map.append(name.clone(), v);
                    }
                    Err(_) => skipped = true,
                }
            }
        }
        // RawHeaders: every value, names in mixed case, with noise between.
        let names: Vec<Vec<u8>> = FIELDS
            .iter()
            .zip(&upper)
            .map(|((_, name), &up)| {
                if up { name.to_ascii_uppercase().into_bytes() } else { name.as_bytes().to_vec() }
            })
            .collect();
        let mut pairs: Vec<(&[u8], &[u8])> = noise
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        for (name, lines) in names.iter().zip(&fields) {
            for line in lines {
                pairs.push((name.as_slice(), line.as_slice()));
            }
        }
        let raw = RawHeaders::new(pairs.iter().copied());

        for policy in policies() {
            for method in &METHODS {
                for target in [Some(&current), None] {
                    let from_map = policy.evaluate(method, &map, target, now);
                    let from_raw = policy.evaluate(method, &raw, target, now);
                    check_invariants(&policy, method, target, &from_map)?;
                    check_invariants(&policy, method, target, &from_raw)?;
                    if !skipped {
                        prop_assert_eq!(from_map, from_raw, "{} {:?}", method, target);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Format → parse round-trips.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn version_tags_read_back_their_number_and_nothing_else_does(
        n in any::<u64>(),
        weak in any::<bool>(),
        opaque in vec(prop_oneof![Just(b'v'), Just(b'0'), Just(b'7'), etagc()], 0..24),
    ) {
        prop_assert_eq!(ETag::from_version(n).version(), Some(n));
        // Any tag whose number reads back is exactly the tag of that number.
        let tag = make_tag(weak, &opaque);
        if let Some(v) = tag.version() {
            prop_assert_eq!(ETag::from_version(v), tag);
        }
    }

    #[test]
    fn valid_tags_round_trip(weak in any::<bool>(), opaque in vec(etagc(), 0..100)) {
        let tag = make_tag(weak, &opaque);
        let mut wire = if weak { b"W/\"".to_vec() } else { b"\"".to_vec() };
        wire.extend_from_slice(&opaque);
        wire.push(b'"');

        prop_assert_eq!(tag.as_bytes(), wire.as_slice());
        prop_assert_eq!(tag.is_weak(), weak);
        prop_assert_eq!(tag.tag(), opaque.as_slice());
        prop_assert_eq!(ETag::parse(tag.as_bytes()), Ok(tag.clone()));
        let value = tag.to_header_value();
        prop_assert_eq!(value.as_bytes(), tag.as_bytes());
        prop_assert_eq!(ETag::try_from(&tag.to_header_value()), Ok(tag.clone()));
    }

    #[test]
    fn ascii_tags_round_trip_through_display(
        weak in any::<bool>(),
        opaque in vec(ascii_etagc(), 0..100),
    ) {
        let tag = make_tag(weak, &opaque);
        let shown = tag.to_string();
        prop_assert_eq!(shown.as_bytes(), tag.as_bytes());
        prop_assert_eq!(tag.to_string().parse::<ETag>(), Ok(tag.clone()));
        prop_assert_eq!(ETag::try_from(tag.to_string().as_str()), Ok(tag));
    }

    #[test]
    fn lists_round_trip(
        members in vec((any::<bool>(), vec(etagc(), 0..60)), 0..8),
        any_list in prop::bool::weighted(0.1),
    ) {
        let list = if any_list {
            ETagList::Any
        } else {
            ETagList::Tags(members.iter().map(|(w, o)| make_tag(*w, o)).collect())
        };
        // Wire bytes: `, ` between members, as Display writes them.
        let wire = match &list {
            ETagList::Tags(tags) => tags
                .iter()
                .map(|t| t.as_bytes().to_vec())
                .collect::<Vec<_>>()
                .join(&b", "[..]),
            _ => b"*".to_vec(),
        };
        prop_assert_eq!(ETagList::from_lines([wire.as_slice()]).ok(), Some(list.clone()));
        let value = HeaderValue::from_bytes(&wire).expect("a list is a valid header value");
        prop_assert_eq!(ETagList::try_from(&value).ok(), Some(list.clone()));
        // What a client sends is exactly those bytes, obs-text included.
        prop_assert_eq!(list.to_header_value(), value);
        if wire.is_ascii() {
            let shown = list.to_string();
            prop_assert_eq!(shown.as_bytes(), wire.as_slice());
            prop_assert_eq!(list.to_string().parse::<ETagList>().ok(), Some(list));
        }
    }

    #[test]
    fn ascii_lists_round_trip_through_display(
        members in vec((any::<bool>(), vec(ascii_etagc(), 0..60)), 0..8),
    ) {
        let list = ETagList::Tags(members.iter().map(|(w, o)| make_tag(*w, o)).collect());
        prop_assert_eq!(list.to_string().parse::<ETagList>().ok(), Some(list));
    }
}

// ---------------------------------------------------------------------------
// List matching agrees with the naive reference.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn if_match_proceeds_iff_a_member_strongly_matches(
        lines in list_lines(),
        current in current_tag(),
    ) {
        let naive = naive_list(&lines);
        let proceeds = match &naive {
            Naive::Any => true,
            Naive::Tags(members) => members.iter().any(|m| naive_strong_match(m, &current)),
            Naive::Malformed => false,
        };
        let eval = evaluate_list_field(&Method::PUT, &header::IF_MATCH, &lines, &current)?;
        let shown: Vec<String> = lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
        prop_assert_eq!(
            matches!(eval.outcome(), Outcome::Proceed { .. }),
            proceeds,
            "If-Match {:?} on {}: naive {:?}, got {:?}", shown, current, naive, eval
        );
        if !proceeds {
            prop_assert_eq!(eval.outcome(), &Outcome::PreconditionFailed(Failed::IfMatch));
        }
        prop_assert_eq!(
            eval.malformed(),
            (naive == Naive::Malformed).then_some(header::IF_MATCH),
            "If-Match {:?}: naive {:?}", shown, naive
        );
    }

    #[test]
    fn if_none_match_gives_304_iff_a_member_weakly_matches(
        lines in list_lines(),
        current in current_tag(),
    ) {
        let naive = naive_list(&lines);
        let not_modified = match &naive {
            Naive::Any => true,
            Naive::Tags(members) => members.iter().any(|m| naive_weak_match(m, &current)),
            Naive::Malformed => false,
        };
        let eval = evaluate_list_field(&Method::GET, &header::IF_NONE_MATCH, &lines, &current)?;
        let shown: Vec<String> = lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
        prop_assert_eq!(
            eval.outcome() == &Outcome::NotModified,
            not_modified,
            "If-None-Match {:?} on {}: naive {:?}, got {:?}", shown, current, naive, eval
        );
        prop_assert_eq!(
            eval.malformed(),
            (naive == Naive::Malformed).then_some(header::IF_NONE_MATCH),
            "If-None-Match {:?}: naive {:?}", shown, naive
        );
    }

    #[test]
    fn etag_list_from_lines_agrees_with_the_reference(lines in list_lines()) {
        let expected = match naive_list(&lines) {
            Naive::Any => Some(ETagList::Any),
            Naive::Tags(members) => Some(ETagList::Tags(
                members.iter().map(|(w, o)| make_tag(*w, o)).collect(),
            )),
            Naive::Malformed => None,
        };
        let shown: Vec<String> = lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
        prop_assert_eq!(
            ETagList::from_lines(lines.iter().map(Vec::as_slice)).ok(),
            expected,
            "{:?}", shown
        );
    }
}

// ---------------------------------------------------------------------------
// Content tags.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn hasher_gives_the_content_tag_whatever_the_split(
        content in content(),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(content.len() + 1)).collect();
        cuts.push(0);
        cuts.push(content.len());
        cuts.sort_unstable();
        let pieces: Vec<&[u8]> = cuts.windows(2).map(|w| &content[w[0]..w[1]]).collect();

        let whole = ETag::from_content(&content);
        let mut hasher = ETagHasher::new();
        for piece in &pieces {
            hasher.update(piece);
        }
        prop_assert_eq!(hasher.finish(), whole.clone());

        let mut writer = ETagHasher::new();
        for piece in &pieces {
            writer.write_all(piece).expect("hashing cannot fail");
        }
        prop_assert_eq!(writer.finish(), whole);
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn map_tags_do_not_depend_on_insertion_order(
        (entries, first, second) in btree_map("\\PC{0,8}", any::<u32>(), 0..24)
            .prop_flat_map(|m| {
                let entries: Vec<(String, u32)> = m.into_iter().collect();
                (
                    Just(entries.clone()),
                    Just(entries.clone()).prop_shuffle(),
                    Just(entries).prop_shuffle(),
                )
            })
    ) {
        let mut a: HashMap<String, u32> = HashMap::new();
        a.extend(first);
        let mut b: HashMap<String, u32> = HashMap::with_capacity(64);
        b.extend(second);
        let sorted: BTreeMap<String, u32> = entries.into_iter().collect();

        let tag = ETag::from_serialize(&a).expect("a map of strings serializes");
        prop_assert_eq!(ETag::from_serialize(&b).ok(), Some(tag.clone()));
        prop_assert_eq!(ETag::from_serialize(&sorted).ok(), Some(tag));
    }
}

// ---------------------------------------------------------------------------
// Minimal cases found by the properties above, kept as plain tests.
// ---------------------------------------------------------------------------

/// `If-Match = "*" / #entity-tag`: `*` is an alternative to the list, not a
/// list member, so `*` next to an empty list element is neither `*` nor a
/// list of entity-tags. Found by `if_match_proceeds_iff_a_member_strongly_matches`,
/// `if_none_match_gives_304_iff_a_member_weakly_matches` and
/// `etag_list_from_lines_agrees_with_the_reference`.
#[test]
fn star_with_an_empty_list_element_is_malformed() {
    struct Case {
        name: &'static str,
        lines: &'static [&'static [u8]],
    }
    let cases = [
        Case {
            name: "trailing comma",
            lines: &[b"*,"],
        },
        Case {
            name: "leading comma",
            lines: &[b", *"],
        },
        Case {
            name: "empty second line",
            lines: &[b"*", b""],
        },
    ];
    let current = ETag::strong("a").expect("valid");
    for case in cases {
        let lines: Vec<Vec<u8>> = case.lines.iter().map(|l| l.to_vec()).collect();
        assert_eq!(naive_list(&lines), Naive::Malformed, "{}", case.name);
        assert!(
            ETagList::from_lines(case.lines.iter().copied()).is_err(),
            "{}: ETagList::from_lines accepts it",
            case.name
        );
        let put = evaluate_list_field(&Method::PUT, &header::IF_MATCH, &lines, &current)
            .expect("HeaderMap and RawHeaders agree");
        assert_eq!(
            put.malformed(),
            Some(header::IF_MATCH),
            "{}: If-Match gives {put:?}",
            case.name
        );
        let get = evaluate_list_field(&Method::GET, &header::IF_NONE_MATCH, &lines, &current)
            .expect("HeaderMap and RawHeaders agree");
        assert_eq!(
            get.malformed(),
            Some(header::IF_NONE_MATCH),
            "{}: If-None-Match gives {get:?}",
            case.name
        );
    }
}
