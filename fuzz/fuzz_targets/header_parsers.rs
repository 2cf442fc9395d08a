//! Feeds arbitrary bytes to the header parsers and the precondition
//! evaluator, checking invariants that must hold whatever the input.
//!
//! The input is used three ways:
//! - whole, as one entity-tag (`ETag::parse`);
//! - split on `\n`, as the lines of one list field (`ETagList::from_lines`);
//! - split on `\n`, as request header lines for `Policy::evaluate` through
//!   `RawHeaders`: the first byte of a line picks the field (one of the six
//!   the evaluator reads, in lower or upper case, or an arbitrary
//!   `name:value`), the rest is the value.

#![no_main]

#[path = "../../tests/support/invariants.rs"]
mod invariants;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ifmatch::{ETag, ETagList, Evaluation, Policy, RawHeaders, Validators};
use libfuzzer_sys::fuzz_target;

const FIELDS: [(HeaderName, &str, &str); 6] = [
    (header::IF_MATCH, "if-match", "IF-MATCH"),
    (header::IF_NONE_MATCH, "if-none-match", "If-None-Match"),
    (
        header::IF_MODIFIED_SINCE,
        "if-modified-since",
        "IF-Modified-SINCE",
    ),
    (
        header::IF_UNMODIFIED_SINCE,
        "if-unmodified-since",
        "If-Unmodified-Since",
    ),
    (header::IF_RANGE, "if-range", "IF-RANGE"),
    (header::RANGE, "range", "Range"),
];

const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::DELETE,
    Method::POST,
    Method::OPTIONS,
];

/// `Sun, 06 Nov 1994 08:49:37 GMT`, the example date of RFC 9110.
const RFC_DATE_SECS: u64 = 784_111_777;

fuzz_target!(|data: &[u8]| {
    check_etag(data);
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    check_list(&lines);
    check_evaluate(&lines);
});

fn check_etag(data: &[u8]) {
    let Ok(tag) = ETag::parse(data) else {
        return;
    };
    assert_eq!(tag.as_bytes(), data);
    assert_eq!(tag.to_header_value().as_bytes(), data);
    assert_eq!(ETag::try_from(&tag.to_header_value()), Ok(tag.clone()));
    assert_eq!(ETag::parse(tag.as_bytes()), Ok(tag.clone()));
    assert_eq!(tag.is_weak(), data.starts_with(b"W/"));
    // Rebuilt from its parts, it is the same tag.
    let rebuilt = if tag.is_weak() {
        ETag::weak(tag.tag())
    } else {
        ETag::strong(tag.tag())
    };
    assert_eq!(rebuilt, Ok(tag.clone()));
    assert!(tag.weak_eq(&tag));
    assert_eq!(tag.strong_eq(&tag), tag.is_strong());
    if data.is_ascii() {
        assert_eq!(tag.to_string().parse::<ETag>(), Ok(tag.clone()));
    }
}

fn check_list(lines: &[&[u8]]) {
    let parsed = ETagList::from_lines(lines.iter().copied());

    // The evaluator scans the same grammar without building the list: it
    // must find the same lines malformed.
    let pairs: Vec<(&[u8], &[u8])> = lines.iter().map(|&l| (&b"if-match"[..], l)).collect();
    let current = ETag::strong("a").expect("valid");
    let eval = Policy::default().evaluate(
        &Method::PUT,
        &RawHeaders::new(pairs.iter().copied()),
        Some(&current),
        SystemTime::UNIX_EPOCH,
    );
    assert_eq!(
        eval.malformed() == Some(header::IF_MATCH),
        parsed.is_err(),
        "from_lines {parsed:?}, evaluate {eval:?}"
    );

    let Ok(list) = parsed else {
        return;
    };
    // Written back on the wire, the list reads the same.
    let wire = match &list {
        ETagList::Tags(tags) => tags
            .iter()
            .map(|t| t.as_bytes().to_vec())
            .collect::<Vec<_>>()
            .join(&b", "[..]),
        _ => b"*".to_vec(),
    };
    assert_eq!(ETagList::from_lines([wire.as_slice()]), Ok(list.clone()));
    if wire.is_ascii() {
        assert_eq!(list.to_string().parse::<ETagList>(), Ok(list.clone()));
    }
    if let ETagList::Tags(tags) = &list {
        for tag in tags {
            assert_eq!(ETag::parse(tag.as_bytes()).as_ref(), Ok(tag));
        }
    }
}

fn check_evaluate(lines: &[&[u8]]) {
    // Header pairs, and the same headers in a HeaderMap when every name is a
    // known field and every value a valid HeaderValue.
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut map = Some(HeaderMap::new());
    for line in lines {
        let Some((&selector, value)) = line.split_first() else {
            continue;
        };
        match usize::from(selector % 8) {
            i @ 0..6 => {
                let (name, lower, mixed) = &FIELDS[i];
                let raw_name = if selector & 0x80 == 0 { lower } else { mixed };
                pairs.push((raw_name.as_bytes(), value));
                match (map.as_mut(), HeaderValue::from_bytes(value)) {
                    (Some(m), Ok(v)) => {
                        m.append(name.clone(), v);
                    }
                    _ => map = None,
                }
            }
            _ => {
                let mut parts = value.splitn(2, |&b| b == b':');
                let name = parts.next().unwrap_or_default();
                let value = parts.next().unwrap_or_default();
                pairs.push((name, value));
                map = None;
            }
        }
    }
    let raw = RawHeaders::new(pairs.iter().copied());

    // The current tag is the first line when that is a tag, so that the
    // fuzzer can make the lists match it.
    let tag = lines
        .first()
        .and_then(|l| ETag::parse(l).ok())
        .unwrap_or_else(|| ETag::strong("a").expect("valid"));
    let modified = UNIX_EPOCH + Duration::from_secs(RFC_DATE_SECS);
    let targets = [
        Validators::new(tag.clone()).with_last_modified(modified),
        Validators::new(tag),
        Validators::modified_at(modified),
    ];
    let now = modified + Duration::from_secs(60);

    for policy in [
        Policy::strict(),
        Policy::opt_in(),
        Policy::strict().accept_if_unmodified_since(true),
    ] {
        for method in &METHODS {
            for target in targets.iter().map(Some).chain([None]) {
                let from_raw = policy.evaluate(method, &raw, target, now);
                check_invariants(&policy, method, target, &from_raw);
                if let Some(map) = &map {
                    let from_map = policy.evaluate(method, map, target, now);
                    assert_eq!(from_map, from_raw, "HeaderMap and RawHeaders disagree");
                }
            }
        }
    }
}

fn check_invariants(
    policy: &Policy,
    method: &Method,
    current: Option<&Validators>,
    eval: &Evaluation,
) {
    if let Err(violation) = invariants::evaluation_invariants(policy, method, current, eval) {
        panic!("{violation}");
    }
}
