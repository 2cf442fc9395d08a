//! Black-box tests of `Policy::evaluate` against
//! [RFC 9110 §13.1–§13.2.2](https://www.rfc-editor.org/rfc/rfc9110#section-13)
//! and every row of the policy table in DESIGN.md.
//!
//! Every case runs through every way of handing headers to the evaluator
//! (`HeaderMap`, `http::Request`, `http::request::Parts`, `RawHeaders` with
//! mixed-case names, and `RawHeaders` with OWS around the values); all must
//! agree, and the `HeaderMap` result must be the expected one.
//!
//! Case names cite the rule they check: `§x.y` for RFC 9110, `row N` for the
//! DESIGN.md policy table, numbered from the top:
//!
//! | row | DESIGN.md case |
//! |---|---|
//! | 1 | `If-Match: *`, target present (with or without an ETag) → true |
//! | 2 | `If-Match: *` or any tag, target absent (PUT) → 412 |
//! | 3 | `If-Match` present but empty (`If-Match:` or `If-Match: ,`) → 412 |
//! | 4 | `If-None-Match: *` on GET/HEAD, target present → 304 |
//! | 5 | `If-None-Match: *` on PUT, target absent → create |
//! | 6 | `*` inside a list → malformed |
//! | 7 | malformed `If-Match` → never matches, 412 |
//! | 8 | malformed `If-None-Match` → reported; `If-Modified-Since` stays ignored |
//! | 9 | weak tag in `If-Match` → never matches |
//! | 10 | `If-Unmodified-Since` when `If-Match` is present → ignored |
//! | 11 | `If-Unmodified-Since` when the target has no Last-Modified → ignored |
//! | 12 | `If-Modified-Since` with `If-None-Match`, not GET/HEAD, or no Last-Modified → ignored |
//! | 13 | invalid HTTP-date in `If-Modified-Since` / `If-Unmodified-Since` → ignored |
//! | 14 | `If-Match` on GET/HEAD → evaluated |
//! | 15 | `If-Range` without `Range`, or method not GET → ignored |
//! | 16 | `If-Range` with a weak tag or an invalid value → ignore Range |
//! | 17 | `If-Range` with a date → exact match with a strong Last-Modified |
//! | 18 | CONNECT, OPTIONS, TRACE → not evaluated |
//! | 19 | PUT/PATCH/DELETE without `If-Match` (PUT: or `If-None-Match: *`) → 428 strict, proceed opt-in |
//! | 20 | only `If-Unmodified-Since` → 428 unless accepted and actually evaluated |
//!
//! "404 first" refers to the paragraph above the table: GET, HEAD, PATCH,
//! DELETE (and POST) on an absent target are answered 404 before any
//! precondition is looked at; only PUT is evaluated against "absent".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{
    HeaderMap, HeaderName, HeaderValue, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE, RANGE,
};
use http::{Method, Request, StatusCode};
use ifmatch::{
    ETag, Evaluation, Expected, Failed, Mode, Outcome, Policy, RawHeaders, Validators, Versioned,
};

// ---------------------------------------------------------------------------
// Time. The RFC's example date, and a request one hour later.

/// Last-Modified of the usual target: Sun, 06 Nov 1994 08:49:37 GMT.
const LM: Duration = Duration::from_secs(784_111_777);
/// The same second, one nanosecond before it ends: equal to `LM` as an
/// HTTP-date (whole seconds, rounded down, never up).
const LM_LATE_IN_SECOND: Duration = Duration::new(784_111_777, 999_999_999);
/// The next whole second after `LM`.
const LM_NEXT_SECOND: Duration = Duration::from_secs(784_111_778);
/// Time of the request: Sun, 06 Nov 1994 09:49:37 GMT.
const NOW: Duration = Duration::from_secs(784_115_377);

const LM_IMF: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const BEFORE_IMF: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
const AFTER_IMF: &str = "Sun, 06 Nov 1994 08:49:38 GMT";
const LM_850: &str = "Sunday, 06-Nov-94 08:49:37 GMT";
const BEFORE_850: &str = "Sunday, 06-Nov-94 08:49:36 GMT";
const LM_ASCTIME: &str = "Sun Nov  6 08:49:37 1994";
const BEFORE_ASCTIME: &str = "Sun Nov  6 08:49:36 1994";
/// A valid HTTP-date before the Unix epoch (year = 4DIGIT, §5.6.7).
const PRE_EPOCH_IMF: &str = "Wed, 31 Dec 1969 23:59:59 GMT";
/// A minute after `NOW`: a Last-Modified from a clock that runs ahead.
const NOW_PLUS_MINUTE: Duration = Duration::from_secs(784_115_377 + 60);
/// The second of `NOW`, and the one before it.
const NOW_IMF: &str = "Sun, 06 Nov 1994 09:49:37 GMT";
const NOW_MINUS_1_IMF: &str = "Sun, 06 Nov 1994 09:49:36 GMT";

// ---------------------------------------------------------------------------
// Header names as written in the tables.

const IM: &str = "If-Match";
const INM: &str = "If-None-Match";
const IMS: &str = "If-Modified-Since";
const IUS: &str = "If-Unmodified-Since";
const IR: &str = "If-Range";
const RNG: &str = "Range";
const BYTES: &str = "bytes=0-9";

// ---------------------------------------------------------------------------
// The target's current state.

#[derive(Debug, Clone, Copy)]
enum Current {
    Absent,
    Present {
        /// Wire form of the current ETag.
        etag: Option<&'static str>,
        modified: Option<Duration>,
    },
}

/// `"v1"`, Last-Modified `LM`: the usual target.
const TAGGED: Current = Current::Present {
    etag: Some("\"v1\""),
    modified: Some(LM),
};
/// `"v1"`, no Last-Modified.
const TAG_ONLY: Current = Current::Present {
    etag: Some("\"v1\""),
    modified: None,
};
/// Last-Modified `LM`, no ETag.
const DATE_ONLY: Current = Current::Present {
    etag: None,
    modified: Some(LM),
};
/// Exists, but has no validator at all.
const BARE: Current = Current::Present {
    etag: None,
    modified: None,
};
/// A weak current tag `W/"v1"` (the `Versioned` docs ask for strong tags,
/// but nothing stops a service from returning a weak one).
const WEAK: Current = Current::Present {
    etag: Some("W/\"v1\""),
    modified: Some(LM),
};
const ABSENT: Current = Current::Absent;

/// `"v1"` last modified at `time`.
const fn modified_at(time: Duration) -> Current {
    Current::Present {
        etag: Some("\"v1\""),
        modified: Some(time),
    }
}

const fn tagged_with(etag: &'static str) -> Current {
    Current::Present {
        etag: Some(etag),
        modified: Some(LM),
    }
}

impl Current {
    fn build(self) -> Option<Validators> {
        match self {
            Self::Absent => None,
            Self::Present { etag, modified } => {
                let mut v = match etag {
                    Some(wire) => Validators::new(wire.parse::<ETag>().expect("valid test ETag")),
                    None => Validators::default(),
                };
                if let Some(m) = modified {
                    v = v.with_last_modified(UNIX_EPOCH + m);
                }
                Some(v)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Expected outcomes.

/// Which `Expected` a `Proceed` must carry.
#[derive(Debug, Clone, Copy)]
enum Exp {
    Any,
    Absent,
    Exists,
    /// `Expected::ETag` of the target's current tag.
    Current,
}

#[derive(Debug, Clone, Copy)]
enum Want {
    /// Proceed, honouring `Range` if any.
    Proceed(Exp),
    /// Proceed, ignoring `Range` (If-Range false).
    IgnoreRange(Exp),
    NotModified,
    Failed(Failed),
    Required,
}

const ANY: Want = Want::Proceed(Exp::Any);
const GONE: Want = Want::Proceed(Exp::Absent);
const EXISTS: Want = Want::Proceed(Exp::Exists);
const TAG: Want = Want::Proceed(Exp::Current);
const FULL_ANY: Want = Want::IgnoreRange(Exp::Any);
const FULL_TAG: Want = Want::IgnoreRange(Exp::Current);
const NOT_MODIFIED: Want = Want::NotModified;
const REQUIRED: Want = Want::Required;
const FAIL_IM: Want = Want::Failed(Failed::IfMatch);
const FAIL_INM: Want = Want::Failed(Failed::IfNoneMatch);
const FAIL_IUS: Want = Want::Failed(Failed::IfUnmodifiedSince);

fn expected_value(exp: Exp, current: Option<&Validators>) -> Expected {
    match exp {
        Exp::Any => Expected::Any,
        Exp::Absent => Expected::Absent,
        Exp::Exists => Expected::Exists,
        Exp::Current => Expected::ETag(
            current
                .and_then(Versioned::etag)
                .expect("case expects ETag(current) but the target has no ETag"),
        ),
    }
}

fn outcome_of(want: Want, current: Option<&Validators>) -> Outcome {
    match want {
        Want::Proceed(exp) => Outcome::Proceed {
            expected: expected_value(exp, current),
            ignore_range: false,
        },
        Want::IgnoreRange(exp) => Outcome::Proceed {
            expected: expected_value(exp, current),
            ignore_range: true,
        },
        Want::NotModified => Outcome::NotModified,
        Want::Failed(f) => Outcome::PreconditionFailed(f),
        Want::Required => Outcome::PreconditionRequired,
    }
}

// ---------------------------------------------------------------------------
// Policies.

fn strict() -> Policy {
    Policy::default()
}

fn opt_in() -> Policy {
    Policy::opt_in()
}

fn accepting_ius() -> Policy {
    Policy::strict().accept_if_unmodified_since(true)
}

fn strict_with_post() -> Policy {
    Policy::strict().require_precondition_for([
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::POST,
    ])
}

// ---------------------------------------------------------------------------
// The table.

/// Request header lines, in order, as `(name, value)`.
type Headers = &'static [(&'static str, &'static str)];

struct Case {
    name: &'static str,
    policy: fn() -> Policy,
    method: Method,
    headers: Headers,
    current: Current,
    now: Duration,
    want: Want,
    /// What `Evaluation::malformed()` must report.
    malformed: Option<HeaderName>,
}

/// A case under the default (strict) policy at `NOW`, with nothing malformed.
fn case(
    name: &'static str,
    method: Method,
    headers: Headers,
    current: Current,
    want: Want,
) -> Case {
    Case {
        name,
        policy: strict,
        method,
        headers,
        current,
        now: NOW,
        want,
        malformed: None,
    }
}

impl Case {
    fn policy(mut self, policy: fn() -> Policy) -> Self {
        self.policy = policy;
        self
    }

    fn at(mut self, now: Duration) -> Self {
        self.now = now;
        self
    }

    fn malformed(mut self, name: HeaderName) -> Self {
        self.malformed = Some(name);
        self
    }
}

/// The same case for each of `methods`.
fn each(methods: &[Method], make: impl Fn(Method) -> Case) -> Vec<Case> {
    methods.iter().cloned().map(make).collect()
}

const GET: Method = Method::GET;
const HEAD: Method = Method::HEAD;
const PUT: Method = Method::PUT;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;
const POST: Method = Method::POST;

const ALL: [Method; 6] = [GET, HEAD, PUT, PATCH, DELETE, POST];
const READS: [Method; 2] = [GET, HEAD];
const WRITES: [Method; 4] = [PUT, PATCH, DELETE, POST];

// ---------------------------------------------------------------------------
// Driving the evaluator through every header source.

/// Headers a buggy name lookup would confuse with the real ones; added to
/// every request.
const DECOYS: &[(&str, &str)] = &[
    ("X-If-Match", "\"v1\""),
    ("If-Match-Also", "*"),
    ("If-None-Matches", "*"),
    ("Content-Type", "application/json"),
];

fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in DECOYS[..2].iter().chain(headers).chain(&DECOYS[2..]) {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("valid test header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("valid test header value"),
        );
    }
    map
}

/// `If-Match` → `iF-MaTcH` (or `If-mAtCh` when `odd`).
fn mixed_case(name: &str, odd: bool) -> Vec<u8> {
    name.bytes()
        .enumerate()
        .map(|(i, b)| {
            if (i % 2 == 0) == odd {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            }
        })
        .collect()
}

fn raw_pairs(headers: &[(&str, &str)], pad: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    DECOYS[..2]
        .iter()
        .chain(headers)
        .chain(&DECOYS[2..])
        .enumerate()
        .map(|(i, (name, value))| {
            let value = if pad {
                format!(" \t{value}\t ").into_bytes()
            } else {
                value.as_bytes().to_vec()
            };
            (mixed_case(name, i % 2 == 1), value)
        })
        .collect()
}

fn as_slices(pair: &(Vec<u8>, Vec<u8>)) -> (&[u8], &[u8]) {
    (&pair.0, &pair.1)
}

/// Evaluates through every header source; `Err` if any disagrees with the
/// `HeaderMap` result.
fn evaluate_everywhere(
    policy: &Policy,
    method: &Method,
    headers: &[(&str, &str)],
    current: Option<&Validators>,
    now: SystemTime,
) -> Result<Evaluation, String> {
    let map = header_map(headers);
    let by_map = policy.evaluate(method, &map, current, now);

    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.headers_mut() = map.clone();
    let by_request = policy.evaluate(method, &request, current, now);
    let (parts, ()) = request.into_parts();
    let by_parts = policy.evaluate(method, &parts, current, now);

    let raw = raw_pairs(headers, false);
    let by_raw = policy.evaluate(
        method,
        &RawHeaders::new(raw.iter().map(as_slices)),
        current,
        now,
    );
    let padded = raw_pairs(headers, true);
    let by_padded = policy.evaluate(
        method,
        &RawHeaders::new(padded.iter().map(as_slices)),
        current,
        now,
    );

    let mut errors = Vec::new();
    for (source, eval) in [
        ("http::Request", &by_request),
        ("http::request::Parts", &by_parts),
        ("RawHeaders (mixed-case names)", &by_raw),
        ("RawHeaders (OWS-padded values)", &by_padded),
    ] {
        if *eval != by_map {
            errors.push(format!("{source} gave {eval:?}, HeaderMap gave {by_map:?}"));
        }
    }
    if errors.is_empty() {
        Ok(by_map)
    } else {
        Err(errors.join("; "))
    }
}

/// Checks one case; `Err` describes every mismatch.
fn check(case: &Case) -> Result<(), String> {
    let policy = (case.policy)();
    let current = case.current.build();
    let now = UNIX_EPOCH + case.now;
    let eval = evaluate_everywhere(&policy, &case.method, case.headers, current.as_ref(), now)?;
    let want = outcome_of(case.want, current.as_ref());
    let mut errors = Vec::new();
    if *eval.outcome() != want {
        errors.push(format!(
            "outcome: expected {want:?}, got {:?}",
            eval.outcome()
        ));
    }
    if eval.malformed() != case.malformed {
        errors.push(format!(
            "malformed(): expected {:?}, got {:?}",
            case.malformed,
            eval.malformed()
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn label(case: &Case) -> String {
    format!(
        "{} [{} {:?}, target {:?}]",
        case.name, case.method, case.headers, case.current
    )
}

/// Asserts every case, then reports all failures at once, each by name.
fn run(cases: &[Case]) {
    assert!(!cases.is_empty());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check(case)
                .err()
                .map(|err| format!("{}\n    {err}", label(case)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Tables.

fn strict_mode_cases() -> Vec<Case> {
    let mut cases = vec![
        case("row 19: PUT without preconditions", PUT, &[], TAGGED, REQUIRED),
        case("row 19: PATCH without preconditions", PATCH, &[], TAGGED, REQUIRED),
        case("row 19: DELETE without preconditions", DELETE, &[], TAGGED, REQUIRED),
        case("row 19: PUT that would create, without If-None-Match: *", PUT, &[], ABSENT, REQUIRED),
        case("row 19 + row 5: PUT with If-None-Match: * counts and creates", PUT, &[(INM, "*")], ABSENT, GONE),
        case("row 19: PUT with If-None-Match: * counts, then fails on a present target (§13.1.2)", PUT, &[(INM, "*")], TAGGED, FAIL_INM),
        case("row 19: PUT with If-None-Match listing tags does not count", PUT, &[(INM, "\"v0\"")], TAGGED, REQUIRED),
        case("row 19: PUT creating with If-None-Match listing tags does not count", PUT, &[(INM, "\"v0\"")], ABSENT, REQUIRED),
        case("row 19: PATCH with If-None-Match: * does not count (only PUT creates)", PATCH, &[(INM, "*")], TAGGED, REQUIRED),
        case("row 19: DELETE with If-None-Match: * does not count", DELETE, &[(INM, "*")], TAGGED, REQUIRED),
        case("row 19: If-Modified-Since is no precondition for a write", PUT, &[(IMS, LM_IMF)], TAGGED, REQUIRED),
        case("row 19: If-Range is no precondition for a write", PUT, &[(RNG, BYTES), (IR, "\"v1\"")], TAGGED, REQUIRED),
        case("row 19: PUT with matching If-Match proceeds", PUT, &[(IM, "\"v1\"")], TAGGED, TAG),
        case("row 19: PATCH with matching If-Match proceeds", PATCH, &[(IM, "\"v1\"")], TAGGED, TAG),
        case("row 19: DELETE with matching If-Match proceeds", DELETE, &[(IM, "\"v1\"")], TAGGED, TAG),
        case("row 19: PUT with If-Match: * proceeds", PUT, &[(IM, "*")], TAGGED, EXISTS),
        case("row 19 + row 7: a malformed If-Match is a failed precondition, not a missing one", PUT, &[(IM, "v1")], TAGGED, FAIL_IM).malformed(IF_MATCH),
        case("row 19 + row 3: an empty If-Match is a failed precondition, not a missing one", PUT, &[(IM, "")], TAGGED, FAIL_IM),
        case("404 first: PATCH on an absent target is not asked for a precondition", PATCH, &[], ABSENT, GONE),
        case("404 first: DELETE on an absent target is not asked for a precondition", DELETE, &[], ABSENT, GONE),
        case("row 19: opt-in PUT without preconditions proceeds unconditionally", PUT, &[], TAGGED, ANY).policy(opt_in),
        case("row 19: opt-in PATCH without preconditions proceeds unconditionally", PATCH, &[], TAGGED, ANY).policy(opt_in),
        case("row 19: opt-in DELETE without preconditions proceeds unconditionally", DELETE, &[], TAGGED, ANY).policy(opt_in),
        case("row 19: opt-in PUT creating without preconditions proceeds unconditionally", PUT, &[], ABSENT, ANY).policy(opt_in),
        case("row 19: opt-in still evaluates a sent If-Match", PUT, &[(IM, "\"v2\"")], TAGGED, FAIL_IM).policy(opt_in),
        case("row 19: opt-in passes a matching If-Match", PUT, &[(IM, "\"v1\"")], TAGGED, TAG).policy(opt_in),
        case("row 19: with_mode(OptIn) is opt-in", PUT, &[], TAGGED, ANY)
            .policy(|| Policy::strict().with_mode(Mode::OptIn)),
        case("row 19: with_mode(Strict) is strict", DELETE, &[], TAGGED, REQUIRED)
            .policy(|| Policy::opt_in().with_mode(Mode::Strict)),
        // DESIGN row 8: a malformed If-None-Match is "reported", and
        // `Evaluation::malformed` documents "the first conditional field
        // whose value does not follow its grammar".
        case("row 8 + row 19: a malformed If-None-Match on a PUT without If-Match is reported with the 428", PUT, &[(INM, "\"v0\", *")], TAGGED, REQUIRED).malformed(IF_NONE_MATCH),
    ];
    cases.extend(each(&[GET, HEAD, POST], |m| {
        case(
            "row 19: GET, HEAD and POST need no precondition by default",
            m,
            &[],
            TAGGED,
            ANY,
        )
    }));
    cases
}

fn if_unmodified_since_alone_cases() -> Vec<Case> {
    vec![
        case(
            "row 20: strict default refuses If-Unmodified-Since alone on PUT",
            PUT,
            &[(IUS, LM_IMF)],
            TAGGED,
            REQUIRED,
        ),
        case(
            "row 20: strict default refuses If-Unmodified-Since alone on PATCH",
            PATCH,
            &[(IUS, AFTER_IMF)],
            TAGGED,
            REQUIRED,
        ),
        case(
            "row 20: strict default refuses If-Unmodified-Since alone on DELETE",
            DELETE,
            &[(IUS, LM_IMF)],
            TAGGED,
            REQUIRED,
        ),
        case(
            "row 20: accept_if_unmodified_since(false) refuses it",
            PUT,
            &[(IUS, LM_IMF)],
            TAGGED,
            REQUIRED,
        )
        .policy(|| Policy::strict().accept_if_unmodified_since(false)),
        case(
            "row 20: accepted, equal date, PUT proceeds",
            PUT,
            &[(IUS, LM_IMF)],
            TAGGED,
            TAG,
        )
        .policy(accepting_ius),
        case(
            "row 20: accepted, later date, PATCH proceeds",
            PATCH,
            &[(IUS, AFTER_IMF)],
            TAGGED,
            TAG,
        )
        .policy(accepting_ius),
        case(
            "row 20: accepted, equal date, DELETE proceeds",
            DELETE,
            &[(IUS, LM_IMF)],
            TAGGED,
            TAG,
        )
        .policy(accepting_ius),
        case(
            "row 20: accepted, RFC 850 date counts",
            PUT,
            &[(IUS, LM_850)],
            TAGGED,
            TAG,
        )
        .policy(accepting_ius),
        case(
            "row 20: accepted, asctime date counts",
            PUT,
            &[(IUS, LM_ASCTIME)],
            TAGGED,
            TAG,
        )
        .policy(accepting_ius),
        case(
            "row 20: accepted, sub-second Last-Modified equals the date",
            PUT,
            &[(IUS, LM_IMF)],
            modified_at(LM_LATE_IN_SECOND),
            TAG,
        )
        .policy(accepting_ius),
        case(
            "row 20: accepted, target without ETag proceeds expecting it exists",
            PUT,
            &[(IUS, LM_IMF)],
            DATE_ONLY,
            EXISTS,
        )
        .policy(accepting_ius),
        case(
            "row 20: accepted, earlier date is evaluated and fails",
            PUT,
            &[(IUS, BEFORE_IMF)],
            TAGGED,
            FAIL_IUS,
        )
        .policy(accepting_ius),
        // §5.6.7: a date before 1970 is a valid HTTP-date (`httpdate`
        // refuses it; the crate reads it), so it is evaluated, and fails.
        case(
            "row 20 + §5.6.7: accepted, a date before 1970 is evaluated and fails",
            PUT,
            &[(IUS, PRE_EPOCH_IMF)],
            TAGGED,
            FAIL_IUS,
        )
        .policy(accepting_ius),
        case(
            "row 20 + row 13: accepted, invalid date is not evaluated → 428",
            PUT,
            &[(IUS, "yesterday")],
            TAGGED,
            REQUIRED,
        )
        .policy(accepting_ius),
        case(
            "row 20 + row 13: accepted, list of dates is not evaluated → 428",
            PUT,
            &[(
                IUS,
                "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:38 GMT",
            )],
            TAGGED,
            REQUIRED,
        )
        .policy(accepting_ius),
        case(
            "row 20 + row 13: accepted, repeated field is not evaluated → 428",
            PUT,
            &[(IUS, LM_IMF), (IUS, LM_IMF)],
            TAGGED,
            REQUIRED,
        )
        .policy(accepting_ius),
        case(
            "row 20 + row 11: accepted, target without Last-Modified → 428",
            PUT,
            &[(IUS, LM_IMF)],
            TAG_ONLY,
            REQUIRED,
        )
        .policy(accepting_ius),
        case(
            "row 20 + row 11: accepted, absent target has no Last-Modified → 428",
            PUT,
            &[(IUS, LM_IMF)],
            ABSENT,
            REQUIRED,
        )
        .policy(accepting_ius),
        case(
            "row 20: accepted applies to POST when POST is required",
            POST,
            &[(IUS, LM_IMF)],
            TAGGED,
            TAG,
        )
        .policy(|| strict_with_post().accept_if_unmodified_since(true)),
        case(
            "row 20: opt-in evaluates If-Unmodified-Since alone",
            PUT,
            &[(IUS, LM_IMF)],
            TAGGED,
            TAG,
        )
        .policy(opt_in),
    ]
}

fn post_cases() -> Vec<Case> {
    vec![
        case(
            "row 19: POST is not required by default",
            POST,
            &[],
            TAGGED,
            ANY,
        ),
        case(
            "require_precondition_for(POST): POST without preconditions → 428",
            POST,
            &[],
            TAGGED,
            REQUIRED,
        )
        .policy(strict_with_post),
        case(
            "require_precondition_for(POST): matching If-Match proceeds",
            POST,
            &[(IM, "\"v1\"")],
            TAGGED,
            TAG,
        )
        .policy(strict_with_post),
        case(
            "require_precondition_for(POST): If-Match: * proceeds",
            POST,
            &[(IM, "*")],
            TAGGED,
            EXISTS,
        )
        .policy(strict_with_post),
        case(
            "require_precondition_for(POST): stale If-Match → 412",
            POST,
            &[(IM, "\"v2\"")],
            TAGGED,
            FAIL_IM,
        )
        .policy(strict_with_post),
        case(
            "require_precondition_for(POST): If-None-Match: * counts only for PUT",
            POST,
            &[(INM, "*")],
            TAGGED,
            REQUIRED,
        )
        .policy(strict_with_post),
        case(
            "require_precondition_for(POST): 404 first on an absent target",
            POST,
            &[],
            ABSENT,
            GONE,
        )
        .policy(strict_with_post),
        case(
            "require_precondition_for(POST): PUT stays required",
            PUT,
            &[],
            TAGGED,
            REQUIRED,
        )
        .policy(strict_with_post),
        case(
            "require_precondition_for([POST]) replaces the default list",
            PUT,
            &[],
            TAGGED,
            ANY,
        )
        .policy(|| Policy::strict().require_precondition_for([Method::POST])),
        case(
            "require_precondition_for([POST]) replaces the default list (POST)",
            POST,
            &[],
            TAGGED,
            REQUIRED,
        )
        .policy(|| Policy::strict().require_precondition_for([Method::POST])),
        case(
            "require_precondition_for(POST) in opt-in mode requires nothing",
            POST,
            &[],
            TAGGED,
            ANY,
        )
        .policy(|| strict_with_post().with_mode(Mode::OptIn)),
    ]
}

fn if_match_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(each(&ALL, |m| {
        case(
            "row 14 / §13.1.1: If-Match with the current tag",
            m,
            &[(IM, "\"v1\"")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§13.1.1: If-Match with another tag",
            m,
            &[(IM, "\"v2\"")],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 9: weak tag in If-Match never matches",
            m,
            &[(IM, "W/\"v1\"")],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 9: strong If-Match never matches a weak current tag",
            m,
            &[(IM, "\"v1\"")],
            WEAK,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 9: weak If-Match never matches a weak current tag",
            m,
            &[(IM, "W/\"v1\"")],
            WEAK,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 1: If-Match: * on a present target with an ETag",
            m,
            &[(IM, "*")],
            TAGGED,
            EXISTS,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 1: If-Match: * on a present target without an ETag",
            m,
            &[(IM, "*")],
            DATE_ONLY,
            EXISTS,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 1: If-Match: * on a present target without any validator",
            m,
            &[(IM, "*")],
            BARE,
            EXISTS,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 1: If-Match: * with OWS",
            m,
            &[(IM, " * ")],
            TAGGED,
            EXISTS,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§13.1.1: a tag never matches a target without an ETag",
            m,
            &[(IM, "\"v1\"")],
            DATE_ONLY,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§13.1.1: list containing the current tag",
            m,
            &[(IM, "\"v0\", \"v1\", \"v2\"")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§13.1.1: list without the current tag (weak one does not count)",
            m,
            &[(IM, "\"v0\", W/\"v1\", \"v2\"")],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§5.3: several If-Match lines are one list (match on 2nd line)",
            m,
            &[(IM, "\"v0\""), (IM, "\"v2\", \"v1\"")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§5.3: several If-Match lines are one list (no match)",
            m,
            &[(IM, "\"v0\""), (IM, "\"v2\"")],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§5.6.1: empty list elements and OWS are allowed",
            m,
            &[(IM, ", \"v0\" ,,\t\"v1\" ,")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§5.6.1: an empty line beside a matching one",
            m,
            &[(IM, ""), (IM, "\"v1\"")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§8.8.3: a comma inside quotes is part of the tag",
            m,
            &[(IM, "\"a,b\"")],
            tagged_with("\"a,b\""),
            TAG,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§8.8.3: a tag split at an inner comma does not match",
            m,
            &[(IM, "\"a\", \"b\"")],
            tagged_with("\"a,b\""),
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "§8.8.3: obs-text in a tag compares bytewise",
            m,
            &[(IM, "\"caf\u{e9}\"")],
            tagged_with("\"caf\u{e9}\""),
            TAG,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 3: empty If-Match matches nothing",
            m,
            &[(IM, "")],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 3: If-Match: , matches nothing",
            m,
            &[(IM, ",")],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 3: If-Match: , , matches nothing",
            m,
            &[(IM, " , ,")],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 3: empty If-Match on a target without validators",
            m,
            &[(IM, "")],
            BARE,
            FAIL_IM,
        )
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 6: * after a tag is malformed",
            m,
            &[(IM, "\"v1\", *")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 6: * before a tag is malformed",
            m,
            &[(IM, "*, \"v1\"")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 6: * and a tag on separate lines is malformed",
            m,
            &[(IM, "*"), (IM, "\"v1\"")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 6: * on two lines is malformed",
            m,
            &[(IM, "*"), (IM, "*")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case("row 7: unquoted tag", m, &[(IM, "v1")], TAGGED, FAIL_IM).malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 7: lowercase weak prefix",
            m,
            &[(IM, "w/\"v1\"")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 7: missing comma between tags",
            m,
            &[(IM, "\"v0\" \"v1\"")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 7: unterminated tag",
            m,
            &[(IM, "\"v1")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 7: space inside a tag",
            m,
            &[(IM, "\"v 1\"")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 7: fail closed even after a matching member",
            m,
            &[(IM, "\"v1\", v2")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 7: fail closed when a later line is junk",
            m,
            &[(IM, "\"v1\""), (IM, "junk")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 7: malformed If-Match on a target without validators",
            m,
            &[(IM, "v1")],
            BARE,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&[PUT], |m| {
        case(
            "row 2: If-Match: * on an absent target (PUT)",
            m,
            &[(IM, "*")],
            ABSENT,
            FAIL_IM,
        )
    }));
    cases.extend(each(&[PUT], |m| {
        case(
            "row 2: If-Match tag on an absent target (PUT)",
            m,
            &[(IM, "\"v1\"")],
            ABSENT,
            FAIL_IM,
        )
    }));
    cases.extend(each(&[PUT], |m| {
        case(
            "row 2: If-Match list on an absent target (PUT)",
            m,
            &[(IM, "\"v0\", \"v1\"")],
            ABSENT,
            FAIL_IM,
        )
    }));
    cases.extend(each(&[PUT], |m| {
        case(
            "row 2 + row 7: malformed If-Match on an absent target (PUT)",
            m,
            &[(IM, "v1")],
            ABSENT,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&[PUT], |m| {
        case(
            "row 2 + row 3: empty If-Match on an absent target (PUT)",
            m,
            &[(IM, "")],
            ABSENT,
            FAIL_IM,
        )
    }));
    cases
}

fn if_match_precedence_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let methods = [GET, HEAD, PUT, DELETE];
    cases.extend(each(&methods, |m| {
        case(
            "row 10: matching If-Match ignores a failing If-Unmodified-Since",
            m,
            &[(IM, "\"v1\""), (IUS, BEFORE_IMF)],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&methods, |m| {
        case(
            "row 10: If-Match: * ignores a failing If-Unmodified-Since",
            m,
            &[(IM, "*"), (IUS, BEFORE_IMF)],
            TAGGED,
            EXISTS,
        )
    }));
    cases.extend(each(&methods, |m| {
        case(
            "row 10: header order does not matter",
            m,
            &[(IUS, BEFORE_IMF), (IM, "\"v1\"")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&methods, |m| {
        case(
            "row 10: failing If-Match is not rescued by a passing If-Unmodified-Since",
            m,
            &[(IM, "\"v2\""), (IUS, AFTER_IMF)],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&methods, |m| {
        case(
            "row 10 + row 7: malformed If-Match is not rescued by If-Unmodified-Since",
            m,
            &[(IM, "v1"), (IUS, AFTER_IMF)],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    cases.extend(each(&methods, |m| {
        case(
            "row 10 + row 3: empty If-Match is not rescued by If-Unmodified-Since",
            m,
            &[(IM, ""), (IUS, AFTER_IMF)],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases.extend(each(&methods, |m| {
        case(
            "§13.2.2: If-Match failure wins over a would-be 304",
            m,
            &[(IM, "\"v2\""), (INM, "\"v1\""), (IMS, LM_IMF)],
            TAGGED,
            FAIL_IM,
        )
    }));
    // RFC 9110 §13.2.2: step 1 (If-Match) comes before step 4
    // (If-Modified-Since), which alone would answer 304 here.
    cases.extend(each(&READS, |m| {
        case(
            "§13.2.2: If-Match failure wins over If-Modified-Since's 304",
            m,
            &[(IM, "\"v2\""), (IMS, AFTER_IMF)],
            TAGGED,
            FAIL_IM,
        )
    }));
    cases
}

fn if_unmodified_since_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let add = |cases: &mut Vec<Case>, make: fn(Method) -> Case| {
        cases.extend(each(&ALL, |m| make(m).policy(opt_in)));
    };
    add(&mut cases, |m| {
        case(
            "§13.1.4: modified after the date → 412",
            m,
            &[(IUS, BEFORE_IMF)],
            TAGGED,
            FAIL_IUS,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.1.4: modified at the date → true",
            m,
            &[(IUS, LM_IMF)],
            TAGGED,
            TAG,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.1.4: modified before the date → true",
            m,
            &[(IUS, AFTER_IMF)],
            TAGGED,
            TAG,
        )
    });
    add(&mut cases, |m| {
        case(
            "whole seconds: Last-Modified 37.999999999 s equals a date of 37 s",
            m,
            &[(IUS, LM_IMF)],
            modified_at(LM_LATE_IN_SECOND),
            TAG,
        )
    });
    add(&mut cases, |m| {
        case(
            "whole seconds: Last-Modified in the next second is later",
            m,
            &[(IUS, LM_IMF)],
            modified_at(LM_NEXT_SECOND),
            FAIL_IUS,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: RFC 850 date, modified after → 412",
            m,
            &[(IUS, BEFORE_850)],
            TAGGED,
            FAIL_IUS,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: RFC 850 date, equal → true",
            m,
            &[(IUS, LM_850)],
            TAGGED,
            TAG,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: asctime date, modified after → 412",
            m,
            &[(IUS, BEFORE_ASCTIME)],
            TAGGED,
            FAIL_IUS,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: asctime date, equal → true",
            m,
            &[(IUS, LM_ASCTIME)],
            TAGGED,
            TAG,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13: not a date → ignored",
            m,
            &[(IUS, "yesterday")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13: ISO 8601 is not an HTTP-date → ignored",
            m,
            &[(IUS, "1994-11-06T08:49:36Z")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13: impossible date → ignored",
            m,
            &[(IUS, "Sun, 31 Feb 1994 08:49:36 GMT")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13: empty value → ignored",
            m,
            &[(IUS, "")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13 / §13.1.4: a list of dates → ignored",
            m,
            &[(
                IUS,
                "Sun, 06 Nov 1994 08:49:36 GMT, Sun, 06 Nov 1994 08:49:36 GMT",
            )],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13 / §13.1.4: the field on two lines → ignored",
            m,
            &[(IUS, BEFORE_IMF), (IUS, BEFORE_IMF)],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 11: target without Last-Modified → ignored",
            m,
            &[(IUS, BEFORE_IMF)],
            TAG_ONLY,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 11: target without any validator → ignored",
            m,
            &[(IUS, BEFORE_IMF)],
            BARE,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.1.4: target without ETag, passing → expects it exists",
            m,
            &[(IUS, LM_IMF)],
            DATE_ONLY,
            EXISTS,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.1.4: target without ETag, modified after → 412",
            m,
            &[(IUS, BEFORE_IMF)],
            DATE_ONLY,
            FAIL_IUS,
        )
    });
    // §5.6.7 allows any 4-digit year and the leap second 23:59:60, which
    // `httpdate` refuses: the crate reads them (moved into its range), so
    // they are evaluated, not ignored as invalid (§13.1.4). 23:59:60 the
    // day before is the day's 00:00:00, before Last-Modified.
    cases.extend(each(&[GET, PUT, DELETE, POST], |m| {
        case(
            "§5.6.7: an HTTP-date before 1970 is evaluated → 412",
            m,
            &[(IUS, PRE_EPOCH_IMF)],
            TAGGED,
            FAIL_IUS,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&[GET, PUT, DELETE], |m| {
        case(
            "§5.6.7: the leap second 23:59:60 is evaluated → 412",
            m,
            &[(IUS, "Sat, 05 Nov 1994 23:59:60 GMT")],
            TAGGED,
            FAIL_IUS,
        )
        .policy(opt_in)
    }));
    cases.push(
        case(
            "§5.6.7: the leap second is the next day's 00:00:00 → true",
            PUT,
            &[(IUS, "Sat, 05 Nov 1994 23:59:60 GMT")],
            modified_at(Duration::from_secs(784_080_000)),
            TAG,
        )
        .policy(opt_in),
    );
    // POST is not required to carry a precondition in strict mode, so it
    // is evaluated there too.
    cases.push(case(
        "§5.6.7: strict mode, a POST with a date before 1970 → 412",
        POST,
        &[(IUS, PRE_EPOCH_IMF)],
        TAGGED,
        FAIL_IUS,
    ));
    // RFC 9110 §13.2.2: step 2 (If-Unmodified-Since) comes before step 3
    // (If-None-Match), which alone would answer 304 on a GET or HEAD and
    // 412 If-None-Match on a PUT.
    cases.extend(each(&[GET, HEAD, PUT], |m| {
        case(
            "§13.2.2: a failing If-Unmodified-Since comes before a matching If-None-Match",
            m,
            &[(IUS, BEFORE_IMF), (INM, "\"v1\"")],
            TAGGED,
            FAIL_IUS,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§13.2.2: a failing If-Unmodified-Since comes before If-None-Match, in any header order",
            m,
            &[(INM, "W/\"v1\""), (IUS, BEFORE_IMF)],
            TAGGED,
            FAIL_IUS,
        )
    }));
    cases.push(case(
        "§13.2.2 + row 19: PUT with If-None-Match: * counts in strict mode, \
         but a failing If-Unmodified-Since comes first",
        PUT,
        &[(IUS, BEFORE_IMF), (INM, "*")],
        TAGGED,
        FAIL_IUS,
    ));
    cases.push(
        case(
            "row 11: PUT on an absent target has no Last-Modified → ignored, \
             but the write must still find it absent",
            PUT,
            &[(IUS, BEFORE_IMF)],
            ABSENT,
            GONE,
        )
        .policy(opt_in),
    );
    cases
}

fn if_none_match_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(each(&READS, |m| {
        case(
            "§13.1.2: If-None-Match with the current tag → 304",
            m,
            &[(INM, "\"v1\"")],
            TAGGED,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§13.1.2: weak comparison, weak member matches strong current",
            m,
            &[(INM, "W/\"v1\"")],
            TAGGED,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§13.1.2: weak comparison, strong member matches weak current",
            m,
            &[(INM, "\"v1\"")],
            WEAK,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§13.1.2: weak comparison, weak matches weak",
            m,
            &[(INM, "W/\"v1\"")],
            WEAK,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§13.1.2: another tag → proceed",
            m,
            &[(INM, "\"v2\"")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§13.1.2: list with the current tag → 304",
            m,
            &[(INM, "\"v0\", W/\"v1\"")],
            TAGGED,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§5.3: several If-None-Match lines are one list → 304",
            m,
            &[(INM, "\"v0\""), (INM, "\"v1\"")],
            TAGGED,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§13.1.2: a comma inside quotes is part of the tag",
            m,
            &[(INM, "\"a,b\"")],
            tagged_with("\"a,b\""),
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 4: If-None-Match: * on a present target → 304",
            m,
            &[(INM, "*")],
            TAGGED,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 4: If-None-Match: * on a target without ETag → 304",
            m,
            &[(INM, "*")],
            DATE_ONLY,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 4: If-None-Match: * on a target without validators → 304",
            m,
            &[(INM, "*")],
            BARE,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§13.1.2: a tag never matches a target without ETag",
            m,
            &[(INM, "\"v1\"")],
            DATE_ONLY,
            EXISTS,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§5.6.1: empty If-None-Match matches nothing",
            m,
            &[(INM, "")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§5.6.1: If-None-Match: , matches nothing",
            m,
            &[(INM, ",")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 14 + §13.2.2: If-Match passes, then If-None-Match → 304",
            m,
            &[(IM, "\"v1\""), (INM, "\"v1\"")],
            TAGGED,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "§13.1.2: write with the current tag in If-None-Match → 412",
            m,
            &[(INM, "\"v1\"")],
            TAGGED,
            FAIL_INM,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "§13.1.2: write, weak comparison → 412",
            m,
            &[(INM, "W/\"v1\"")],
            TAGGED,
            FAIL_INM,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "§13.1.2: write, If-None-Match: * on a present target → 412",
            m,
            &[(INM, "*")],
            TAGGED,
            FAIL_INM,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "§13.1.2: write, list with the current tag → 412",
            m,
            &[(INM, "\"v0\", \"v1\"")],
            TAGGED,
            FAIL_INM,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "§13.1.2: write, another tag → proceed expecting the current tag",
            m,
            &[(INM, "\"v2\"")],
            TAGGED,
            TAG,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "§13.2.2: If-Match passes, If-None-Match fails on a write → 412",
            m,
            &[(IM, "\"v1\""), (INM, "\"v1\"")],
            TAGGED,
            FAIL_INM,
        )
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "§13.2.2: If-Match passes, If-None-Match passes → proceed",
            m,
            &[(IM, "\"v1\""), (INM, "\"v2\"")],
            TAGGED,
            TAG,
        )
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "§13.2.2: If-Match: * and If-None-Match: * on a present target → 412",
            m,
            &[(IM, "*"), (INM, "*")],
            TAGGED,
            FAIL_INM,
        )
    }));
    cases.extend([
        case(
            "row 5: If-None-Match: * on an absent PUT creates",
            PUT,
            &[(INM, "*")],
            ABSENT,
            GONE,
        ),
        case(
            "row 5: If-None-Match: * on an absent PUT creates (opt-in)",
            PUT,
            &[(INM, "*")],
            ABSENT,
            GONE,
        )
        .policy(opt_in),
        case(
            "§13.1.2: If-None-Match tag on an absent PUT → proceed expecting absence",
            PUT,
            &[(INM, "\"v1\"")],
            ABSENT,
            GONE,
        )
        .policy(opt_in),
        case(
            "row 2: If-Match: * and If-None-Match: * on an absent PUT → 412 If-Match",
            PUT,
            &[(IM, "*"), (INM, "*")],
            ABSENT,
            FAIL_IM,
        ),
    ]);
    cases
}

fn malformed_if_none_match_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(each(&READS, |m| {
        case(
            "row 6 + row 8: * inside an If-None-Match list is reported and ignored",
            m,
            &[(INM, "\"v1\", *")],
            TAGGED,
            ANY,
        )
        .malformed(IF_NONE_MATCH)
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 8: * on two If-None-Match lines is reported and ignored",
            m,
            &[(INM, "*"), (INM, "*")],
            TAGGED,
            ANY,
        )
        .malformed(IF_NONE_MATCH)
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 8: malformed If-None-Match keeps If-Modified-Since ignored",
            m,
            &[(INM, "v1"), (IMS, LM_IMF)],
            TAGGED,
            ANY,
        )
        .malformed(IF_NONE_MATCH)
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 8: malformed If-None-Match keeps a later If-Modified-Since ignored",
            m,
            &[(INM, "W/v1"), (IMS, AFTER_IMF)],
            TAGGED,
            ANY,
        )
        .malformed(IF_NONE_MATCH)
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 8: malformed If-None-Match after a matching member is still ignored",
            m,
            &[(INM, "\"v1\" \"v2\"")],
            TAGGED,
            ANY,
        )
        .malformed(IF_NONE_MATCH)
    }));
    cases.extend(each(&READS, |m| {
        case(
            "row 8: malformed If-None-Match beside a passing If-Match",
            m,
            &[(IM, "\"v1\""), (INM, "\"v1")],
            TAGGED,
            TAG,
        )
        .malformed(IF_NONE_MATCH)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "row 8: malformed If-None-Match on a write is reported, never a 5xx",
            m,
            &[(INM, "\"v1\", *")],
            TAGGED,
            ANY,
        )
        .policy(opt_in)
        .malformed(IF_NONE_MATCH)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "row 8: malformed If-None-Match beside a passing If-Match on a write",
            m,
            &[(IM, "\"v1\""), (INM, "v1")],
            TAGGED,
            TAG,
        )
        .malformed(IF_NONE_MATCH)
    }));
    cases.extend(each(&ALL, |m| {
        case(
            "row 7 + row 8: both malformed → If-Match reported first",
            m,
            &[(IM, "v1"), (INM, "v1")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_MATCH)
    }));
    // `Evaluation::malformed` documents "the first conditional field whose
    // value does not follow its grammar"; DESIGN row 8 says a malformed
    // If-None-Match is "reported" so that the service may answer 400.
    cases.extend(each(&ALL, |m| {
        case(
            "row 8: malformed If-None-Match is reported even when If-Match fails",
            m,
            &[(IM, "\"v2\""), (INM, "v1")],
            TAGGED,
            FAIL_IM,
        )
        .malformed(IF_NONE_MATCH)
    }));
    cases.push(
        case(
            "row 8: malformed If-None-Match on an absent PUT",
            PUT,
            &[(INM, "*, \"v1\"")],
            ABSENT,
            ANY,
        )
        .policy(opt_in)
        .malformed(IF_NONE_MATCH),
    );
    cases
}

fn if_modified_since_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let add = |cases: &mut Vec<Case>, make: fn(Method) -> Case| cases.extend(each(&READS, make));
    add(&mut cases, |m| {
        case(
            "§13.1.3: not modified since (equal) → 304",
            m,
            &[(IMS, LM_IMF)],
            TAGGED,
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.1.3: not modified since (later date) → 304",
            m,
            &[(IMS, AFTER_IMF)],
            TAGGED,
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.1.3: modified since → proceed",
            m,
            &[(IMS, BEFORE_IMF)],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "whole seconds: Last-Modified 37.999999999 s equals a date of 37 s → 304",
            m,
            &[(IMS, LM_IMF)],
            modified_at(LM_LATE_IN_SECOND),
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "whole seconds: Last-Modified in the next second is modified",
            m,
            &[(IMS, LM_IMF)],
            modified_at(LM_NEXT_SECOND),
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: IMF-fixdate",
            m,
            &[(IMS, LM_IMF)],
            DATE_ONLY,
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: RFC 850 date, equal → 304",
            m,
            &[(IMS, LM_850)],
            TAGGED,
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: RFC 850 date, earlier → proceed",
            m,
            &[(IMS, BEFORE_850)],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: asctime date, equal → 304",
            m,
            &[(IMS, LM_ASCTIME)],
            TAGGED,
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: asctime date, earlier → proceed",
            m,
            &[(IMS, BEFORE_ASCTIME)],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13: not a date → ignored",
            m,
            &[(IMS, "yesterday")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13: impossible time → ignored",
            m,
            &[(IMS, "Sun, 06 Nov 1994 25:49:37 GMT")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "§5.6.7: a date before 1970, modified since → proceed",
            m,
            &[(IMS, PRE_EPOCH_IMF)],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13: a Unix timestamp is not an HTTP-date → ignored",
            m,
            &[(IMS, "784111777")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13: empty value → ignored",
            m,
            &[(IMS, "")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13 / §13.1.3: more than one member → ignored",
            m,
            &[(
                IMS,
                "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
            )],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 13 / §13.1.3: the field on two lines → ignored",
            m,
            &[(IMS, LM_IMF), (IMS, LM_IMF)],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 12: target without Last-Modified → ignored",
            m,
            &[(IMS, AFTER_IMF)],
            TAG_ONLY,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 12: with a non-matching If-None-Match → ignored",
            m,
            &[(INM, "\"v2\""), (IMS, AFTER_IMF)],
            TAGGED,
            TAG,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 12: with an empty If-None-Match → ignored (the field is present)",
            m,
            &[(INM, ""), (IMS, AFTER_IMF)],
            TAGGED,
            TAG,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.2.2: a matching If-None-Match decides, not If-Modified-Since",
            m,
            &[(INM, "\"v1\""), (IMS, BEFORE_IMF)],
            TAGGED,
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.2.2: a failing If-Unmodified-Since comes before If-Modified-Since",
            m,
            &[(IUS, BEFORE_IMF), (IMS, AFTER_IMF)],
            TAGGED,
            FAIL_IUS,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.2.2: a passing If-Unmodified-Since, then If-Modified-Since → 304",
            m,
            &[(IUS, AFTER_IMF), (IMS, LM_IMF)],
            TAGGED,
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.2.2: a passing If-Match, then If-Modified-Since → 304",
            m,
            &[(IM, "\"v1\""), (IMS, LM_IMF)],
            TAGGED,
            NOT_MODIFIED,
        )
    });
    add(&mut cases, |m| {
        case(
            "§13.2.2: a passing If-Match, modified since → proceed",
            m,
            &[(IM, "\"v1\""), (IMS, BEFORE_IMF)],
            TAGGED,
            TAG,
        )
    });
    cases.extend(each(&WRITES, |m| {
        case(
            "row 12: not GET/HEAD → ignored (equal)",
            m,
            &[(IMS, LM_IMF)],
            TAGGED,
            ANY,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "row 12: not GET/HEAD → ignored (later)",
            m,
            &[(IMS, AFTER_IMF)],
            TAGGED,
            ANY,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&WRITES, |m| {
        case(
            "row 12: not GET/HEAD, beside a passing If-Match → ignored",
            m,
            &[(IM, "\"v1\""), (IMS, LM_IMF)],
            TAGGED,
            TAG,
        )
    }));
    cases
}

fn if_range_cases() -> Vec<Case> {
    let full = |name: &'static str, headers: Headers, current: Current, want: Want| {
        case(name, GET, headers, current, want)
    };
    vec![
        full(
            "§13.1.5: strong tag matching → keep Range",
            &[(RNG, BYTES), (IR, "\"v1\"")],
            TAGGED,
            ANY,
        ),
        full(
            "§13.1.5: strong tag not matching → ignore Range",
            &[(RNG, BYTES), (IR, "\"v2\"")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "§13.1.5: If-Range before Range in the request",
            &[(IR, "\"v2\""), (RNG, BYTES)],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 16: weak tag → ignore Range",
            &[(RNG, BYTES), (IR, "W/\"v1\"")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 16: weak tag against a weak current tag → ignore Range",
            &[(RNG, BYTES), (IR, "W/\"v1\"")],
            WEAK,
            FULL_ANY,
        ),
        full(
            "§13.1.5: strong tag against a weak current tag → ignore Range",
            &[(RNG, BYTES), (IR, "\"v1\"")],
            WEAK,
            FULL_ANY,
        ),
        full(
            "§13.1.5: tag against a target without ETag → ignore Range",
            &[(RNG, BYTES), (IR, "\"v1\"")],
            DATE_ONLY,
            FULL_ANY,
        ),
        full(
            "row 16: invalid value → ignore Range",
            &[(RNG, BYTES), (IR, "yesterday")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 16: empty value → ignore Range",
            &[(RNG, BYTES), (IR, "")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 16: unterminated tag → ignore Range",
            &[(RNG, BYTES), (IR, "\"v1")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 16: a list of tags is invalid → ignore Range",
            &[(RNG, BYTES), (IR, "\"v1\", \"v2\"")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 16: lowercase weak prefix → ignore Range",
            &[(RNG, BYTES), (IR, "w/\"v1\"")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 16: * is not valid in If-Range → ignore Range",
            &[(RNG, BYTES), (IR, "*")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 16: the field on two lines → ignore Range",
            &[(RNG, BYTES), (IR, "\"v1\""), (IR, "\"v1\"")],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 17: date equal to a strong Last-Modified → keep Range",
            &[(RNG, BYTES), (IR, LM_IMF)],
            TAGGED,
            ANY,
        ),
        full(
            "row 17: RFC 850 date equal → keep Range",
            &[(RNG, BYTES), (IR, LM_850)],
            TAGGED,
            ANY,
        ),
        full(
            "row 17: asctime date equal → keep Range",
            &[(RNG, BYTES), (IR, LM_ASCTIME)],
            TAGGED,
            ANY,
        ),
        full(
            "row 17: date equal, target without ETag → keep Range",
            &[(RNG, BYTES), (IR, LM_IMF)],
            DATE_ONLY,
            ANY,
        ),
        full(
            "row 17: date one second earlier → ignore Range (exact match only)",
            &[(RNG, BYTES), (IR, BEFORE_IMF)],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 17: date one second later → ignore Range (exact match only)",
            &[(RNG, BYTES), (IR, AFTER_IMF)],
            TAGGED,
            FULL_ANY,
        ),
        full(
            "row 17: sub-second Last-Modified equals the date in whole seconds → keep Range",
            &[(RNG, BYTES), (IR, LM_IMF)],
            modified_at(LM_LATE_IN_SECOND),
            ANY,
        ),
        full(
            "row 17: date against a target without Last-Modified → ignore Range",
            &[(RNG, BYTES), (IR, LM_IMF)],
            TAG_ONLY,
            FULL_ANY,
        ),
        full(
            "row 17: Last-Modified exactly one second before now → keep Range",
            &[(RNG, BYTES), (IR, NOW_MINUS_1_IMF)],
            modified_at(NOW - Duration::from_secs(1)),
            ANY,
        ),
        full(
            "row 17: Last-Modified at x.999999999 s, now at x+1 s → keep Range (whole seconds)",
            &[(RNG, BYTES), (IR, NOW_MINUS_1_IMF)],
            modified_at(NOW - Duration::from_nanos(1)),
            ANY,
        ),
        full(
            "row 17: Last-Modified in the same second as now → ignore Range",
            &[(RNG, BYTES), (IR, NOW_IMF)],
            modified_at(NOW),
            FULL_ANY,
        ),
        full(
            "row 17: Last-Modified at x.2 s, now at x.9 s → ignore Range",
            &[(RNG, BYTES), (IR, NOW_IMF)],
            modified_at(NOW + Duration::from_millis(200)),
            FULL_ANY,
        )
        .at(NOW + Duration::from_millis(900)),
        full(
            "row 17: Last-Modified after now (clock skew) → ignore Range",
            &[(RNG, BYTES), (IR, AFTER_IMF)],
            modified_at(LM_NEXT_SECOND),
            FULL_ANY,
        )
        .at(LM),
        full(
            "row 15: If-Range without Range → ignored",
            &[(IR, "\"v2\"")],
            TAGGED,
            ANY,
        ),
        full(
            "row 15: invalid If-Range without Range → ignored",
            &[(IR, "yesterday")],
            TAGGED,
            ANY,
        ),
        full(
            "§14.2: Range without If-Range → keep Range",
            &[(RNG, BYTES)],
            TAGGED,
            ANY,
        ),
        case(
            "row 15: If-Range on HEAD → ignored",
            HEAD,
            &[(RNG, BYTES), (IR, "\"v2\"")],
            TAGGED,
            ANY,
        ),
        case(
            "row 15: invalid If-Range on HEAD → ignored",
            HEAD,
            &[(RNG, BYTES), (IR, "W/\"v1\"")],
            TAGGED,
            ANY,
        ),
        case(
            "row 15: If-Range on PUT → ignored",
            PUT,
            &[(RNG, BYTES), (IR, "\"v2\"")],
            TAGGED,
            ANY,
        )
        .policy(opt_in),
        case(
            "row 15: If-Range on PATCH → ignored",
            PATCH,
            &[(RNG, BYTES), (IR, "\"v2\"")],
            TAGGED,
            ANY,
        )
        .policy(opt_in),
        case(
            "row 15: If-Range on DELETE → ignored",
            DELETE,
            &[(RNG, BYTES), (IR, "\"v2\"")],
            TAGGED,
            ANY,
        )
        .policy(opt_in),
        case(
            "row 15: If-Range on POST → ignored",
            POST,
            &[(RNG, BYTES), (IR, "\"v2\"")],
            TAGGED,
            ANY,
        ),
        full(
            "§13.2.2: passing If-Match, matching If-Range → keep Range",
            &[(RNG, BYTES), (IM, "\"v1\""), (IR, "\"v1\"")],
            TAGGED,
            TAG,
        ),
        full(
            "§13.2.2: passing If-Match, stale If-Range → ignore Range",
            &[(RNG, BYTES), (IM, "\"v1\""), (IR, "\"v0\"")],
            TAGGED,
            FULL_TAG,
        ),
        full(
            "§13.2.2: passing If-None-Match, stale If-Range → ignore Range",
            &[(RNG, BYTES), (INM, "\"v0\""), (IR, "\"v0\"")],
            TAGGED,
            FULL_TAG,
        ),
        full(
            "§13.2.2: If-None-Match → 304 comes before If-Range",
            &[(RNG, BYTES), (INM, "\"v1\""), (IR, "\"v0\"")],
            TAGGED,
            NOT_MODIFIED,
        ),
        full(
            "§13.2.2: If-Modified-Since → 304 comes before If-Range",
            &[(RNG, BYTES), (IMS, LM_IMF), (IR, "\"v0\"")],
            TAGGED,
            NOT_MODIFIED,
        ),
        full(
            "§13.2.2: If-Unmodified-Since → 412 comes before If-Range",
            &[(RNG, BYTES), (IUS, BEFORE_IMF), (IR, "\"v1\"")],
            TAGGED,
            FAIL_IUS,
        ),
        full(
            "§13.2.2: If-Match → 412 comes before If-Range",
            &[(RNG, BYTES), (IM, "\"v0\""), (IR, "\"v1\"")],
            TAGGED,
            FAIL_IM,
        ),
        full(
            "404 first: GET with Range and stale If-Range on an absent target",
            &[(RNG, BYTES), (IR, "\"v0\"")],
            ABSENT,
            GONE,
        ),
    ]
}

fn connect_options_trace_cases() -> Vec<Case> {
    let methods = [Method::CONNECT, Method::OPTIONS, Method::TRACE];
    let mut cases = Vec::new();
    let add = |cases: &mut Vec<Case>, make: fn(Method) -> Case| cases.extend(each(&methods, make));
    add(&mut cases, |m| {
        case(
            "row 18: stale If-Match ignored",
            m,
            &[(IM, "\"v2\"")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: If-Match: * on an absent target ignored",
            m,
            &[(IM, "*")],
            ABSENT,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: empty If-Match ignored",
            m,
            &[(IM, "")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: malformed If-Match ignored and not reported",
            m,
            &[(IM, "v1")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: malformed If-None-Match ignored and not reported",
            m,
            &[(INM, "\"v1\", *")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: matching If-None-Match ignored",
            m,
            &[(INM, "\"v1\"")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: If-None-Match: * ignored",
            m,
            &[(INM, "*")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: failing If-Unmodified-Since ignored",
            m,
            &[(IUS, BEFORE_IMF)],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: If-Modified-Since ignored",
            m,
            &[(IMS, AFTER_IMF)],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: stale If-Range ignored",
            m,
            &[(RNG, BYTES), (IR, "\"v0\"")],
            TAGGED,
            ANY,
        )
    });
    add(&mut cases, |m| {
        case(
            "row 18: a policy listing the method cannot demand a precondition",
            m,
            &[],
            TAGGED,
            ANY,
        )
        .policy(|| {
            Policy::strict().require_precondition_for([
                Method::CONNECT,
                Method::OPTIONS,
                Method::TRACE,
            ])
        })
    });
    cases
}

fn absent_target_cases() -> Vec<Case> {
    let methods = [GET, HEAD, PATCH, DELETE, POST];
    let mut cases = Vec::new();
    let add = |cases: &mut Vec<Case>, make: fn(Method) -> Case| cases.extend(each(&methods, make));
    add(&mut cases, |m| {
        case("404 first: no preconditions", m, &[], ABSENT, GONE)
    });
    add(&mut cases, |m| {
        case(
            "404 first: If-Match tag",
            m,
            &[(IM, "\"v1\"")],
            ABSENT,
            GONE,
        )
    });
    add(&mut cases, |m| {
        case("404 first: If-Match: *", m, &[(IM, "*")], ABSENT, GONE)
    });
    add(&mut cases, |m| {
        case(
            "404 first: malformed If-Match is ignored with the rest",
            m,
            &[(IM, "v1")],
            ABSENT,
            GONE,
        )
    });
    add(&mut cases, |m| {
        case(
            "404 first: If-None-Match: *",
            m,
            &[(INM, "*")],
            ABSENT,
            GONE,
        )
    });
    add(&mut cases, |m| {
        case(
            "404 first: If-Unmodified-Since",
            m,
            &[(IUS, BEFORE_IMF)],
            ABSENT,
            GONE,
        )
    });
    add(&mut cases, |m| {
        case(
            "404 first: If-Modified-Since",
            m,
            &[(IMS, AFTER_IMF)],
            ABSENT,
            GONE,
        )
    });
    add(&mut cases, |m| {
        case("404 first: opt-in", m, &[], ABSENT, GONE).policy(opt_in)
    });
    cases.extend([
        case(
            "row 2: PUT, If-Match: * on an absent target → 412",
            PUT,
            &[(IM, "*")],
            ABSENT,
            FAIL_IM,
        ),
        case(
            "row 2: PUT, If-Match tag on an absent target → 412",
            PUT,
            &[(IM, "\"v1\"")],
            ABSENT,
            FAIL_IM,
        ),
        case(
            "row 2: PUT, If-Match: * on an absent target → 412 (opt-in)",
            PUT,
            &[(IM, "*")],
            ABSENT,
            FAIL_IM,
        )
        .policy(opt_in),
        case(
            "row 5: PUT, If-None-Match: * creates",
            PUT,
            &[(INM, "*")],
            ABSENT,
            GONE,
        ),
        case(
            "row 5 + row 11: PUT, If-None-Match: * with If-Unmodified-Since (no Last-Modified)",
            PUT,
            &[(INM, "*"), (IUS, BEFORE_IMF)],
            ABSENT,
            GONE,
        ),
        case(
            "row 19: PUT without preconditions on an absent target → 428",
            PUT,
            &[],
            ABSENT,
            REQUIRED,
        ),
        case(
            "row 19: PUT without preconditions on an absent target (opt-in)",
            PUT,
            &[],
            ABSENT,
            ANY,
        )
        .policy(opt_in),
    ]);
    cases
}

fn expected_state_cases() -> Vec<Case> {
    vec![
        case(
            "Any: opt-in write without precondition",
            PUT,
            &[],
            TAGGED,
            ANY,
        )
        .policy(opt_in),
        case("Any: GET without precondition", GET, &[], TAGGED, ANY),
        case(
            "Any: a passing If-Modified-Since guards no write",
            GET,
            &[(IMS, BEFORE_IMF)],
            TAGGED,
            ANY,
        ),
        case(
            "Any: If-Range guards no write",
            GET,
            &[(RNG, BYTES), (IR, "\"v1\"")],
            TAGGED,
            ANY,
        ),
        case(
            "Any: an ignored If-Unmodified-Since (no Last-Modified)",
            PUT,
            &[(IUS, AFTER_IMF)],
            TAG_ONLY,
            ANY,
        )
        .policy(opt_in),
        case(
            "Any: an ignored If-Unmodified-Since (invalid date)",
            PUT,
            &[(IUS, "soon")],
            TAGGED,
            ANY,
        )
        .policy(opt_in),
        case(
            "Any: a malformed, ignored If-None-Match",
            PUT,
            &[(INM, "v1")],
            TAGGED,
            ANY,
        )
        .policy(opt_in)
        .malformed(IF_NONE_MATCH),
        case(
            "Any: CONNECT/OPTIONS/TRACE",
            Method::OPTIONS,
            &[(IM, "\"v1\"")],
            TAGGED,
            ANY,
        ),
        case(
            "ETag: If-Match with the current tag",
            PUT,
            &[(IM, "\"v1\"")],
            TAGGED,
            TAG,
        ),
        case(
            "ETag: If-Match list with the current tag",
            PUT,
            &[(IM, "\"v0\", \"v1\"")],
            TAGGED,
            TAG,
        ),
        case(
            "ETag: If-Match: * narrowed by a passing If-None-Match",
            PUT,
            &[(IM, "*"), (INM, "\"v0\"")],
            TAGGED,
            TAG,
        ),
        case(
            "ETag: a passing If-None-Match tag on a write",
            PUT,
            &[(INM, "\"v0\"")],
            TAGGED,
            TAG,
        )
        .policy(opt_in),
        case(
            "ETag: a passing If-Unmodified-Since",
            PUT,
            &[(IUS, LM_IMF)],
            TAGGED,
            TAG,
        )
        .policy(opt_in),
        case("Exists: If-Match: *", PUT, &[(IM, "*")], TAGGED, EXISTS),
        case(
            "Exists: If-Match: * on a target without ETag",
            DELETE,
            &[(IM, "*")],
            DATE_ONLY,
            EXISTS,
        ),
        case(
            "Exists: If-Match: * and If-None-Match tag on a target without ETag",
            PUT,
            &[(IM, "*"), (INM, "\"v0\"")],
            DATE_ONLY,
            EXISTS,
        ),
        case(
            "Exists: a passing If-Unmodified-Since on a target without ETag",
            PATCH,
            &[(IUS, LM_IMF)],
            DATE_ONLY,
            EXISTS,
        )
        .policy(opt_in),
        case(
            "Exists: a passing If-None-Match tag on a target without ETag",
            PUT,
            &[(INM, "\"v0\"")],
            BARE,
            EXISTS,
        )
        .policy(opt_in),
        case(
            "Absent: If-None-Match: * on an absent PUT",
            PUT,
            &[(INM, "*")],
            ABSENT,
            GONE,
        ),
        case(
            "Absent: If-None-Match tag on an absent PUT",
            PUT,
            &[(INM, "\"v0\"")],
            ABSENT,
            GONE,
        )
        .policy(opt_in),
        case(
            "Absent: 404 first for DELETE on an absent target",
            DELETE,
            &[(IM, "\"v1\"")],
            ABSENT,
            GONE,
        ),
    ]
}

/// Every table, for the cross-table invariants.
/// §8.8.2.1: "If the last modification time is derived from
/// implementation-specific metadata that evaluates to some time in the
/// future, according to the origin server's clock, then the origin server
/// MUST replace that value with the message origination date." The
/// evaluator compares the value the server sends, so a client echoing it
/// gets the answer that date deserves.
fn future_last_modified_cases() -> Vec<Case> {
    let future = modified_at(NOW_PLUS_MINUTE);
    let mut cases = Vec::new();
    cases.extend(each(&READS, |m| {
        case(
            "§8.8.2.1: a future Last-Modified is compared as now: not modified since now → 304",
            m,
            &[(IMS, NOW_IMF)],
            future,
            NOT_MODIFIED,
        )
    }));
    cases.extend(each(&READS, |m| {
        case(
            "§8.8.2.1: a future Last-Modified is compared as now: modified since a second ago",
            m,
            &[(IMS, NOW_MINUS_1_IMF)],
            future,
            ANY,
        )
    }));
    cases.extend(each(&[PUT, PATCH, DELETE], |m| {
        case(
            "§8.8.2.1: a future Last-Modified is compared as now: unmodified since now → proceed",
            m,
            &[(IUS, NOW_IMF)],
            future,
            TAG,
        )
        .policy(opt_in)
    }));
    cases.extend(each(&[PUT, PATCH, DELETE], |m| {
        case(
            "§8.8.2.1: a future Last-Modified is compared as now: modified since a second ago → 412",
            m,
            &[(IUS, NOW_MINUS_1_IMF)],
            future,
            FAIL_IUS,
        )
        .policy(opt_in)
    }));
    cases
}

fn all_cases() -> Vec<Case> {
    [
        strict_mode_cases(),
        if_unmodified_since_alone_cases(),
        post_cases(),
        if_match_cases(),
        if_match_precedence_cases(),
        if_unmodified_since_cases(),
        if_none_match_cases(),
        malformed_if_none_match_cases(),
        if_modified_since_cases(),
        if_range_cases(),
        connect_options_trace_cases(),
        absent_target_cases(),
        expected_state_cases(),
        future_last_modified_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn a_last_modified_in_the_future_is_compared_as_the_time_of_the_request() {
    run(&future_last_modified_cases());
}

#[test]
fn strict_mode_refuses_writes_without_if_match_with_428() {
    run(&strict_mode_cases());
}

/// `Policy::mode` reports the mode the evaluator applies: a service that
/// logs or branches on it (for example to say in a 428's body that writes
/// need `If-Match`, RFC 6585 §3) must read the mode the rows above check.
#[test]
fn mode_reports_the_mode_the_evaluator_applies() {
    assert_eq!(Policy::default().mode(), Mode::Strict);
    assert_eq!(Policy::strict().mode(), Mode::Strict);
    assert_eq!(Policy::opt_in().mode(), Mode::OptIn);
    assert_eq!(Policy::strict().with_mode(Mode::OptIn).mode(), Mode::OptIn);
    assert_eq!(
        Policy::opt_in().with_mode(Mode::Strict).mode(),
        Mode::Strict
    );
    // The mode and the 428 go together.
    for policy in [Policy::strict(), Policy::opt_in()] {
        let eval = policy.evaluate(
            &PUT,
            &HeaderMap::new(),
            TAGGED.build().as_ref(),
            UNIX_EPOCH + NOW,
        );
        assert_eq!(
            eval.outcome() == &Outcome::PreconditionRequired,
            policy.mode() == Mode::Strict,
            "{policy:?}"
        );
    }
}

#[test]
fn if_unmodified_since_alone_satisfies_strict_mode_only_when_accepted_and_evaluated() {
    run(&if_unmodified_since_alone_cases());
}

#[test]
fn post_requires_a_precondition_only_when_configured() {
    run(&post_cases());
}

#[test]
fn if_match_uses_strong_comparison_and_fails_closed_on_every_method() {
    run(&if_match_cases());
}

#[test]
fn if_match_takes_precedence_over_if_unmodified_since() {
    run(&if_match_precedence_cases());
}

#[test]
fn if_unmodified_since_compares_whole_seconds_and_ignores_what_it_cannot_use() {
    run(&if_unmodified_since_cases());
}

#[test]
fn if_none_match_uses_weak_comparison_and_answers_304_only_for_get_and_head() {
    run(&if_none_match_cases());
}

#[test]
fn a_malformed_if_none_match_is_reported_and_still_disables_if_modified_since() {
    run(&malformed_if_none_match_cases());
}

#[test]
fn if_modified_since_applies_only_to_get_and_head_without_if_none_match() {
    run(&if_modified_since_cases());
}

#[test]
fn if_range_keeps_the_range_only_for_an_exact_strong_match() {
    run(&if_range_cases());
}

#[test]
fn connect_options_and_trace_never_evaluate_preconditions() {
    run(&connect_options_trace_cases());
}

#[test]
fn absent_targets_answer_404_before_any_precondition_except_put() {
    run(&absent_target_cases());
}

#[test]
fn proceed_hands_back_the_state_the_preconditions_checked() {
    run(&expected_state_cases());
}

/// The `Expected` handed back describes the state the request was checked
/// against, so the target, unchanged, must satisfy it: otherwise the
/// store's compare-and-swap refuses a write whose preconditions passed.
#[test]
fn every_proceed_hands_back_a_state_the_unchanged_target_admits() {
    let mut failures = Vec::new();
    for case in all_cases() {
        let current = case.current.build();
        let eval = match evaluate_everywhere(
            &(case.policy)(),
            &case.method,
            case.headers,
            current.as_ref(),
            UNIX_EPOCH + case.now,
        ) {
            Ok(eval) => eval,
            Err(err) => {
                failures.push(format!("{}\n    {err}", label(&case)));
                continue;
            }
        };
        if let Outcome::Proceed { expected, .. } = eval.outcome() {
            if !expected.admits(current.as_ref()) {
                failures.push(format!(
                    "{}\n    {expected:?} does not admit the target it was checked against ({current:?})",
                    label(&case)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A service may, against the `Versioned` docs ("Return a strong tag"),
/// hand in a weak current tag. Preconditions that pass on it must still
/// yield an `Expected` that the unchanged target admits; otherwise every
/// such write ends in a spurious 412 from the store's compare-and-swap.
#[test]
fn a_weak_current_tag_still_yields_an_expected_state_the_target_admits() {
    let current = WEAK.build();
    let now = UNIX_EPOCH + NOW;
    let requests: [(&str, Policy, Method, Headers); 4] = [
        (
            "passing If-Unmodified-Since",
            Policy::opt_in(),
            PUT,
            &[(IUS, LM_IMF)],
        ),
        (
            "passing If-None-Match tag",
            Policy::opt_in(),
            PUT,
            &[(INM, "\"v0\"")],
        ),
        (
            "If-Match: * with passing If-None-Match",
            strict(),
            PATCH,
            &[(IM, "*"), (INM, "\"v0\"")],
        ),
        ("If-Match: *", strict(), DELETE, &[(IM, "*")]),
    ];
    let mut failures = Vec::new();
    for (name, policy, method, headers) in requests {
        let eval = evaluate_everywhere(&policy, &method, headers, current.as_ref(), now)
            .unwrap_or_else(|err| panic!("{name}: header sources disagree: {err}"));
        match eval.outcome() {
            Outcome::Proceed { expected, .. } if expected.admits(current.as_ref()) => {}
            outcome => failures.push(format!(
                "{name} [{method} {headers:?}]: {outcome:?} (the weak target W/\"v1\" is not admitted)"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Strict mode's point is that no required write goes ahead unguarded.
#[test]
fn strict_mode_never_lets_a_required_write_proceed_unconditionally() {
    let mut failures = Vec::new();
    for case in all_cases() {
        let policy = (case.policy)();
        // Row 18: CONNECT, OPTIONS and TRACE are never evaluated, and the
        // policy does not require a precondition for them even when it
        // lists them.
        if !policy.requires_precondition(&case.method) {
            continue;
        }
        let current = case.current.build();
        let eval = policy.evaluate(
            &case.method,
            &header_map(case.headers),
            current.as_ref(),
            UNIX_EPOCH + case.now,
        );
        if let Outcome::Proceed {
            expected: Expected::Any,
            ..
        } = eval.outcome()
        {
            failures.push(label(&case));
        }
    }
    assert!(
        failures.is_empty(),
        "required writes proceeded with Expected::Any:\n{}",
        failures.join("\n")
    );
}

#[test]
fn raw_header_names_match_in_any_case_and_lines_merge_across_spellings() {
    let current = Validators::new(ETag::from_version(1)).with_last_modified(UNIX_EPOCH + LM);
    let now = UNIX_EPOCH + NOW;
    let policy = Policy::default();
    let pairs: [(&[u8], &[u8]); 5] = [
        (b"IF-MATCH", b"\"v0\""),
        (b"x-if-match", b"\"v1\""),
        (b"if-match", b"\"v2\""),
        (b"If-mAtCh", b"  \"v1\"\t"),
        (b"IF-NONE-MATCH", b"W/\"v9\""),
    ];
    let eval = policy.evaluate(
        &Method::PUT,
        &RawHeaders::new(pairs.iter().copied()),
        Some(&current),
        now,
    );
    assert_eq!(
        eval.outcome(),
        &Outcome::Proceed {
            expected: Expected::ETag(ETag::from_version(1)),
            ignore_range: false
        }
    );

    // A date that is not UTF-8 is an invalid date: ignored, like in a map.
    let pairs: [(&[u8], &[u8]); 1] = [(b"if-unmodified-since", b"Sun, 06 Nov 1994 08:49:36 \xff")];
    let eval = Policy::opt_in().evaluate(
        &Method::PUT,
        &RawHeaders::new(pairs.iter().copied()),
        Some(&current),
        now,
    );
    let mut map = HeaderMap::new();
    map.insert(
        IF_UNMODIFIED_SINCE,
        HeaderValue::from_bytes(b"Sun, 06 Nov 1994 08:49:36 \xff").unwrap(),
    );
    assert_eq!(
        eval,
        Policy::opt_in().evaluate(&Method::PUT, &map, Some(&current), now)
    );
    assert_eq!(
        eval.outcome(),
        &Outcome::Proceed {
            expected: Expected::Any,
            ignore_range: false
        }
    );

    // Names the evaluator reads, spelled every which way.
    let pairs: [(&[u8], &[u8]); 3] = [
        (b"rAnGe", b"bytes=0-9"),
        (b"IF-RANGE", b"\"v0\""),
        (b"If-Modified-SINCE", LM_IMF.as_bytes()),
    ];
    let eval = policy.evaluate(
        &Method::GET,
        &RawHeaders::new(pairs.iter().copied()),
        Some(&current),
        now,
    );
    assert_eq!(eval.outcome(), &Outcome::NotModified);
    let mut map = HeaderMap::new();
    map.insert(RANGE, HeaderValue::from_static("bytes=0-9"));
    map.insert(IF_RANGE, HeaderValue::from_static("\"v0\""));
    map.insert(IF_MODIFIED_SINCE, HeaderValue::from_static(LM_IMF));
    assert_eq!(
        eval,
        policy.evaluate(&Method::GET, &map, Some(&current), now)
    );
}

fn ten_thousand_tags(last: &str) -> String {
    let mut tags: Vec<String> = (0..9_999).map(|i| format!("\"tag-{i}\"")).collect();
    tags.push(last.to_owned());
    tags.join(", ")
}

#[test]
fn ten_thousand_if_match_tags_are_all_considered() {
    let current = Some(Validators::new(ETag::strong("tag-current").unwrap()));
    let now = UNIX_EPOCH + NOW;
    let policy = Policy::default();
    let eval = |method: &Method, headers: &[(&str, &str)]| {
        evaluate_everywhere(&policy, method, headers, current.as_ref(), now)
            .unwrap_or_else(|err| panic!("header sources disagree: {err}"))
    };
    let tag_current = Outcome::Proceed {
        expected: Expected::ETag(ETag::strong("tag-current").unwrap()),
        ignore_range: false,
    };

    let matching = ten_thousand_tags("\"tag-current\"");
    let stale = ten_thousand_tags("\"tag-9999\"");
    let weak_last = ten_thousand_tags("W/\"tag-current\"");
    let star_last = ten_thousand_tags("*");
    let junk_last = ten_thousand_tags("tag-current");

    // Match at the end of one line.
    let e = eval(&Method::PUT, &[(IM, &matching)]);
    assert_eq!(e.outcome(), &tag_current);
    assert_eq!(e.malformed(), None);
    // No match.
    let e = eval(&Method::PUT, &[(IM, &stale)]);
    assert_eq!(e.outcome(), &Outcome::PreconditionFailed(Failed::IfMatch));
    assert_eq!(e.malformed(), None);
    // A weak last member still does not match strongly.
    let e = eval(&Method::DELETE, &[(IM, &weak_last)]);
    assert_eq!(e.outcome(), &Outcome::PreconditionFailed(Failed::IfMatch));
    // Malformed at the very end: detected, fail closed.
    for bad in [&star_last, &junk_last] {
        let e = eval(&Method::PATCH, &[(IM, bad)]);
        assert_eq!(e.outcome(), &Outcome::PreconditionFailed(Failed::IfMatch));
        assert_eq!(e.malformed(), Some(IF_MATCH));
    }
    // If-None-Match with 10,000 tags: weak comparison finds the last one.
    let e = eval(&Method::GET, &[(INM, &weak_last)]);
    assert_eq!(e.outcome(), &Outcome::NotModified);

    // 10,000 lines of one tag each, match on the last line.
    let lines: Vec<String> = (0..9_999)
        .map(|i| format!("\"tag-{i}\""))
        .chain(["\"tag-current\"".to_owned()])
        .collect();
    let mut headers: Vec<(&str, &str)> = lines.iter().map(|l| (IM, l.as_str())).collect();
    assert_eq!(eval(&Method::PUT, &headers).outcome(), &tag_current);
    headers.pop();
    assert_eq!(
        eval(&Method::PUT, &headers).outcome(),
        &Outcome::PreconditionFailed(Failed::IfMatch)
    );
}

/// `Outcome::status` is what a service answers instead of performing the
/// method: none to proceed, 304 Not Modified (RFC 9110 §15.4.5), 412
/// Precondition Failed (§15.5.13) or 428 Precondition Required (RFC 6585
/// §3). Checked on the outcome of every case in the tables.
#[test]
fn status_is_the_answer_each_outcome_calls_for() {
    let mut seen = [false; 4];
    for case in all_cases() {
        let current = case.current.build();
        let eval = (case.policy)().evaluate(
            &case.method,
            &header_map(case.headers),
            current.as_ref(),
            UNIX_EPOCH + case.now,
        );
        let (slot, want) = match eval.outcome() {
            Outcome::Proceed { .. } => (0, None),
            Outcome::NotModified => (1, Some(StatusCode::NOT_MODIFIED)),
            Outcome::PreconditionFailed(_) => (2, Some(StatusCode::PRECONDITION_FAILED)),
            Outcome::PreconditionRequired => (3, Some(StatusCode::PRECONDITION_REQUIRED)),
            other => panic!("{}: unexpected outcome {other:?}", label(&case)),
        };
        seen[slot] = true;
        assert_eq!(eval.outcome().status(), want, "{}", label(&case));
    }
    assert_eq!(seen, [true; 4], "the tables cover every outcome");
}

#[test]
fn a_policy_that_lists_connect_options_or_trace_never_requires_a_precondition_for_them() {
    // RFC 9110 §13.2.1: preconditions are not evaluated for these methods,
    // so no 428 either, and the policy says so when asked.
    let policy = Policy::strict().require_precondition_for([
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
    ]);
    let current = Validators::new(ETag::from_version(1));
    for method in [Method::CONNECT, Method::OPTIONS, Method::TRACE] {
        assert!(!policy.requires_precondition(&method), "{method}");
        let eval = policy.evaluate(&method, &HeaderMap::new(), Some(&current), UNIX_EPOCH);
        assert_eq!(eval.outcome().status(), None, "{method}");
    }
    assert!(policy.requires_precondition(&Method::PUT));
}
