//! Differential test of `Policy::evaluate` against an independent reference.
//!
//! The reference below is a naive reading of
//! [RFC 9110 §13.2.2](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.2)
//! (with §13.1.1–§13.1.5, §13.2.1, §8.8.2.2 and §8.8.3.2) and of the
//! "Policy where peers disagree" table in DESIGN.md. It was written from the
//! RFC, DESIGN.md and the crate's rendered public documentation only, without
//! looking at the evaluator's source: it parses the fields itself (its own
//! list splitter, entity-tag grammar and HTTP-date parser, not the crate's
//! and not `httpdate`) and decides in the most literal order it can.
//!
//! Random requests (methods, the five conditional fields and `Range`, on one
//! or several lines, with valid, weak, `*`, listed, malformed and empty
//! values, dates in all three §5.6.7 forms and broken ones) against random
//! targets and request times must give the same `Outcome` and the same
//! `Evaluation::malformed` from the crate, through a `HeaderMap` and through
//! `RawHeaders`, as from the reference.
//!
//! Where neither the RFC nor DESIGN.md decides, the reference follows the
//! crate's documentation, and says so where it does:
//!
//! - `Expected` (the state a write must still find) is crate policy: the
//!   strongest thing an evaluated condition checked, the current strong tag
//!   if any evaluated condition looked at the tag or the date, `Exists` if
//!   only existence was checked (`If-Match: *`) or the target has no strong
//!   tag, `Any` if nothing was evaluated, `Absent` for a PUT that a
//!   condition allowed to create and for every other method on an absent
//!   target (their 404 comes first).
//! - HTTP-dates: `httpdate`'s two-digit years (70–99 as 19xx and 00–69
//!   as 20xx), which the README states; a weekday that does not fit the
//!   date makes it invalid; second 60 only as the leap second `23:59:60`,
//!   which is the next day's `00:00:00` in POSIX time.
//! - Several field lines are one value joined with ", " (§5.3), so a `*`
//!   on one of several `If-Match` lines is a `*` inside a list (DESIGN.md:
//!   malformed).

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use http::Method;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE, RANGE,
};
use ifmatch::{ETag, Evaluation, Expected, Failed, Outcome, Policy, RawHeaders, Validators};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::RngSeed;

// ===========================================================================
// The request, the target and the policy, as plain data.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    IfMatch,
    IfNoneMatch,
    IfModifiedSince,
    IfUnmodifiedSince,
    IfRange,
    Range,
}

impl Field {
    fn name(self) -> HeaderName {
        match self {
            Self::IfMatch => IF_MATCH,
            Self::IfNoneMatch => IF_NONE_MATCH,
            Self::IfModifiedSince => IF_MODIFIED_SINCE,
            Self::IfUnmodifiedSince => IF_UNMODIFIED_SINCE,
            Self::IfRange => IF_RANGE,
            Self::Range => RANGE,
        }
    }

    /// The name as a client might spell it: `RawHeaders` compares names
    /// case-insensitively.
    fn shouted(self) -> String {
        self.name().as_str().to_ascii_uppercase()
    }
}

#[derive(Clone, PartialEq, Eq)]
struct PolicySpec {
    strict: bool,
    /// `None`: the default set (PUT, PATCH, DELETE).
    required: Option<Vec<Method>>,
    accept_ius: bool,
}

impl PolicySpec {
    fn build(&self) -> Policy {
        let mut policy = if self.strict {
            Policy::strict()
        } else {
            Policy::opt_in()
        };
        if let Some(methods) = &self.required {
            policy = policy.require_precondition_for(methods.iter().cloned());
        }
        policy.accept_if_unmodified_since(self.accept_ius)
    }

    fn requires(&self, method: &Method) -> bool {
        self.strict
            && match &self.required {
                Some(methods) => methods.contains(method),
                None => [Method::PUT, Method::PATCH, Method::DELETE].contains(method),
            }
    }
}

impl fmt::Debug for PolicySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", if self.strict { "strict" } else { "opt-in" })?;
        if let Some(methods) = &self.required {
            write!(f, ", required for {methods:?}")?;
        }
        if self.accept_ius {
            write!(f, ", accepting If-Unmodified-Since")?;
        }
        Ok(())
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Target {
    Absent,
    Present {
        /// Wire form of the current entity-tag.
        etag: Option<&'static str>,
        last_modified: Option<Duration>,
    },
}

impl Target {
    fn build(&self) -> Option<Validators> {
        match self {
            Self::Absent => None,
            Self::Present {
                etag,
                last_modified,
            } => {
                let mut v = match etag {
                    Some(wire) => {
                        Validators::new(ETag::parse(wire.as_bytes()).expect("test ETags are valid"))
                    }
                    None => Validators::default(),
                };
                if let Some(time) = last_modified {
                    v = v.with_last_modified(UNIX_EPOCH + *time);
                }
                Some(v)
            }
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absent => write!(f, "absent"),
            Self::Present {
                etag,
                last_modified,
            } => {
                write!(f, "present, ETag {}", etag.unwrap_or("none"))?;
                match last_modified {
                    Some(t) => write!(f, ", Last-Modified {}", show_time(*t)),
                    None => write!(f, ", no Last-Modified"),
                }
            }
        }
    }
}

#[derive(Clone)]
struct Scenario {
    policy: PolicySpec,
    method: Method,
    lines: Vec<(Field, String)>,
    target: Target,
    /// The time of the request, since the epoch.
    now: Duration,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({:?})", self.method, self.policy)?;
        for (field, value) in &self.lines {
            // Between bars, so that OWS shows.
            writeln!(f, "  {}: |{}|", field.name(), value.escape_debug())?;
        }
        writeln!(f, "  target: {:?}", self.target)?;
        write!(f, "  now: {}", show_time(self.now))
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT +0.5s` style, for failure messages.
fn show_time(t: Duration) -> String {
    let secs = i64::try_from(t.as_secs()).expect("test times fit i64");
    format!(
        "{} (+{} ns)",
        format_date(secs, DateForm::Imf),
        t.subsec_nanos()
    )
}

// ===========================================================================
// The reference.

/// OWS = *( SP / HTAB ) (§5.6.3), trimmed from both ends of a field line.
fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// The lines of `field`, in order, each without its surrounding OWS.
fn lines_of(s: &Scenario, field: Field) -> Vec<&[u8]> {
    s.lines
        .iter()
        .filter(|(f, _)| *f == field)
        .map(|(_, v)| trim_ows(v.as_bytes()))
        .collect()
}

/// §5.3: several lines of one field are one value, joined with ", ".
/// `None` when the field is absent.
fn combined(s: &Scenario, field: Field) -> Option<Vec<u8>> {
    let lines = lines_of(s, field);
    if lines.is_empty() {
        None
    } else {
        Some(lines.join(&b", "[..]))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RefTag {
    weak: bool,
    opaque: Vec<u8>,
}

/// §8.8.3: entity-tag = [ %s"W/" ] DQUOTE *etagc DQUOTE, the whole input.
fn parse_entity_tag(b: &[u8]) -> Option<RefTag> {
    let (weak, rest) = match b.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    let opaque = rest.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    // etagc = %x21 / %x23-7E / obs-text
    let etagc = |c: &u8| *c == 0x21 || (0x23..=0x7e).contains(c) || *c >= 0x80;
    if opaque.iter().all(etagc) {
        Some(RefTag {
            weak,
            opaque: opaque.to_vec(),
        })
    } else {
        None
    }
}

/// Splits at the commas that are not between double quotes.
fn split_outside_quotes(v: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, &c) in v.iter().enumerate() {
        match c {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                pieces.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&v[start..]);
    pieces
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RefList {
    Star,
    Tags(Vec<RefTag>),
}

/// §13.1.1 / §13.1.2: `"*" / #entity-tag`, with the §5.6.1 list rule
/// (empty elements allowed). `Err` when malformed (DESIGN.md: `*` inside a
/// list is malformed).
fn parse_tag_list(v: &[u8]) -> Result<RefList, ()> {
    let v = trim_ows(v);
    if v == b"*" {
        return Ok(RefList::Star);
    }
    let mut tags = Vec::new();
    for piece in split_outside_quotes(v) {
        let piece = trim_ows(piece);
        if piece.is_empty() {
            continue;
        }
        tags.push(parse_entity_tag(piece).ok_or(())?);
    }
    Ok(RefList::Tags(tags))
}

// --- HTTP-date (§5.6.7), parsed by hand. ----------------------------------

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn lit(&mut self, s: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(s.as_bytes())?;
        Some(())
    }

    fn digits(&mut self, n: usize) -> Option<i64> {
        if self.0.len() < n || !self.0[..n].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = self.0[..n]
            .iter()
            .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
        self.0 = &self.0[n..];
        Some(value)
    }

    /// Index of the name (case-sensitive, §5.6.7) the input starts with.
    fn one_of(&mut self, names: &[&str]) -> Option<usize> {
        let i = names
            .iter()
            .position(|n| self.0.starts_with(n.as_bytes()))?;
        self.0 = &self.0[names[i].len()..];
        Some(i)
    }

    fn time_of_day(&mut self) -> Option<(i64, i64, i64)> {
        let hour = self.digits(2)?;
        self.lit(":")?;
        let minute = self.digits(2)?;
        self.lit(":")?;
        let second = self.digits(2)?;
        Some((hour, minute, second))
    }

    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

struct DateParts {
    weekday: usize,
    year: i64,
    month: usize,
    day: i64,
    time: (i64, i64, i64),
}

/// IMF-fixdate = day-name "," SP day SP month SP year SP hh:mm:ss SP "GMT"
fn imf_fixdate(v: &[u8]) -> Option<DateParts> {
    let mut c = Cursor(v);
    let weekday = c.one_of(&DAY_NAMES)?;
    c.lit(", ")?;
    let day = c.digits(2)?;
    c.lit(" ")?;
    let month = c.one_of(&MONTHS)?;
    c.lit(" ")?;
    let year = c.digits(4)?;
    c.lit(" ")?;
    let time = c.time_of_day()?;
    c.lit(" GMT")?;
    c.end()?;
    Some(DateParts {
        weekday,
        year,
        month,
        day,
        time,
    })
}

/// rfc850-date = day-name-l "," SP day "-" month "-" 2DIGIT SP hh:mm:ss SP "GMT"
fn rfc850_date(v: &[u8]) -> Option<DateParts> {
    let mut c = Cursor(v);
    let weekday = c.one_of(&LONG_DAY_NAMES)?;
    c.lit(", ")?;
    let day = c.digits(2)?;
    c.lit("-")?;
    let month = c.one_of(&MONTHS)?;
    c.lit("-")?;
    let yy = c.digits(2)?;
    c.lit(" ")?;
    let time = c.time_of_day()?;
    c.lit(" GMT")?;
    c.end()?;
    // httpdate's fixed window (documented in the README): 70–99 are 19xx.
    let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
    Some(DateParts {
        weekday,
        year,
        month,
        day,
        time,
    })
}

/// asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP hh:mm:ss SP year
fn asctime_date(v: &[u8]) -> Option<DateParts> {
    let mut c = Cursor(v);
    let weekday = c.one_of(&DAY_NAMES)?;
    c.lit(" ")?;
    let month = c.one_of(&MONTHS)?;
    c.lit(" ")?;
    let day = if c.lit(" ").is_some() {
        c.digits(1)?
    } else {
        c.digits(2)?
    };
    c.lit(" ")?;
    let time = c.time_of_day()?;
    c.lit(" ")?;
    let year = c.digits(4)?;
    c.end()?;
    Some(DateParts {
        weekday,
        year,
        month,
        day,
        time,
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: usize) -> i64 {
    match month {
        1 => {
            if is_leap(year) {
                29
            } else {
                28
            }
        }
        3 | 5 | 8 | 10 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `year`-`month`-`day` (month 0-based), counted
/// the slow, obvious way.
fn days_since_epoch(year: i64, month: usize, day: i64) -> i64 {
    let mut days = 0;
    for y in 1970..year {
        days += if is_leap(y) { 366 } else { 365 };
    }
    for y in year..1970 {
        days -= if is_leap(y) { 366 } else { 365 };
    }
    for m in 0..month {
        days += days_in_month(year, m);
    }
    days + day - 1
}

/// Seconds since the epoch of a valid HTTP-date; `None` for anything else.
fn parse_http_date(v: &[u8]) -> Option<i64> {
    let v = trim_ows(v);
    let p = imf_fixdate(v)
        .or_else(|| rfc850_date(v))
        .or_else(|| asctime_date(v))?;
    let (hour, minute, second) = p.time;
    let leap_second = (hour, minute, second) == (23, 59, 60);
    let valid = (1..=days_in_month(p.year, p.month)).contains(&p.day)
        && hour < 24
        && minute < 60
        && (second < 60 || leap_second);
    if !valid {
        return None;
    }
    let days = days_since_epoch(p.year, p.month, p.day);
    // 1970-01-01 was a Thursday; a weekday that does not fit is invalid.
    if usize::try_from((days + 4).rem_euclid(7)).ok()? != p.weekday {
        return None;
    }
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

// --- The evaluation. -------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    /// No condition was evaluated.
    Nothing,
    /// Only the target's existence was checked.
    Existence,
    /// A condition looked at the current tag or date.
    State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    outcome: Outcome,
    malformed: Option<HeaderName>,
}

fn secs(t: Duration) -> i64 {
    i64::try_from(t.as_secs()).expect("test times fit i64")
}

fn reference(s: &Scenario) -> Reference {
    let if_match = combined(s, Field::IfMatch).map(|v| parse_tag_list(&v));
    let if_none_match = combined(s, Field::IfNoneMatch).map(|v| parse_tag_list(&v));
    // Evaluation::malformed: the first malformed of If-Match, If-None-Match.
    let malformed = if matches!(if_match, Some(Err(()))) {
        Some(IF_MATCH)
    } else if matches!(if_none_match, Some(Err(()))) {
        Some(IF_NONE_MATCH)
    } else {
        None
    };
    let outcome = reference_outcome(s, if_match, if_none_match);
    // Crate policy (DESIGN.md does not say): a field of a request whose
    // preconditions are not evaluated at all (CONNECT, OPTIONS, TRACE; an
    // absent target other than a PUT's) is not reported.
    let evaluated = ![Method::CONNECT, Method::OPTIONS, Method::TRACE].contains(&s.method)
        && (s.target != Target::Absent || s.method == Method::PUT);
    Reference {
        outcome,
        malformed: malformed.filter(|_| evaluated),
    }
}

fn reference_outcome(
    s: &Scenario,
    if_match: Option<Result<RefList, ()>>,
    if_none_match: Option<Result<RefList, ()>>,
) -> Outcome {
    let proceed = |expected| Outcome::Proceed {
        expected,
        ignore_range: false,
    };
    let method = &s.method;
    let is_get_or_head = *method == Method::GET || *method == Method::HEAD;

    // Row 18, §13.2.1: CONNECT, OPTIONS, TRACE are never evaluated.
    if [Method::CONNECT, Method::OPTIONS, Method::TRACE].contains(method) {
        return proceed(Expected::Any);
    }

    let (current_tag, last_modified) = match &s.target {
        Target::Absent => {
            // §13.2.1 and the paragraph above the DESIGN.md table: without
            // preconditions the answer is 404, so they are ignored. Only a
            // PUT, which can create the target, is evaluated.
            if *method != Method::PUT {
                return proceed(Expected::Absent);
            }
            (None, None)
        }
        Target::Present {
            etag,
            last_modified,
        } => (
            etag.map(|wire| parse_entity_tag(wire.as_bytes()).expect("test ETags are valid")),
            *last_modified,
        ),
    };
    let exists = s.target != Target::Absent;
    // §8.8.2.1: a modification time after the time of the request is
    // compared as the time of the request. Whole seconds (DESIGN.md),
    // rounded down: an HTTP-date cannot say more.
    let now_secs = secs(s.now);
    let modified = last_modified.map(|t| secs(t).min(now_secs));

    // Dates that are actually evaluated: valid (§13.1.3, §13.1.4, row 13)
    // and the target has a modification time (rows 11, 12).
    let date_of = |field| {
        combined(s, field)
            .and_then(|v| parse_http_date(&v))
            .filter(|_| modified.is_some())
    };
    let if_unmodified_since = date_of(Field::IfUnmodifiedSince);
    let if_modified_since = date_of(Field::IfModifiedSince);

    // Rows 19, 20: strict mode, a method that needs a precondition and has
    // none. (Absent targets other than PUT already proceeded.)
    let has_precondition = if_match.is_some()
        || (*method == Method::PUT && if_none_match == Some(Ok(RefList::Star)))
        || (s.policy.accept_ius && if_unmodified_since.is_some());
    if s.policy.requires(method) && !has_precondition {
        return Outcome::PreconditionRequired;
    }

    let mut bound = Bound::Nothing;

    // §13.2.2 step 1: If-Match, strong comparison (§13.1.1, rows 1, 2, 3,
    // 6, 7, 9, 14).
    if let Some(list) = &if_match {
        let matched = match list {
            Err(()) => false,
            Ok(RefList::Star) => exists,
            Ok(RefList::Tags(tags)) => tags.iter().any(|t| {
                current_tag
                    .as_ref()
                    .is_some_and(|c| !t.weak && !c.weak && t.opaque == c.opaque)
            }),
        };
        if !matched {
            return Outcome::PreconditionFailed(Failed::IfMatch);
        }
        bound = bound.max(match list {
            Ok(RefList::Star) => Bound::Existence,
            _ => Bound::State,
        });
    } else if let (Some(date), Some(modified)) = (if_unmodified_since, modified) {
        // Step 2: If-Unmodified-Since (§13.1.4, rows 10, 11, 13): true if
        // the target has not been modified after the date.
        if modified > date {
            return Outcome::PreconditionFailed(Failed::IfUnmodifiedSince);
        }
        bound = bound.max(Bound::State);
    }

    // Step 3: If-None-Match, weak comparison (§13.1.2, rows 4, 5, 8). A
    // malformed one is ignored (row 8).
    if let Some(Ok(list)) = &if_none_match {
        let matched = match list {
            RefList::Star => exists,
            RefList::Tags(tags) => tags
                .iter()
                .any(|t| current_tag.as_ref().is_some_and(|c| t.opaque == c.opaque)),
        };
        if matched {
            return if is_get_or_head {
                Outcome::NotModified
            } else {
                Outcome::PreconditionFailed(Failed::IfNoneMatch)
            };
        }
        bound = bound.max(Bound::State);
    } else if if_none_match.is_none() && is_get_or_head {
        // Step 4: If-Modified-Since, GET and HEAD only, and only without
        // If-None-Match, even a malformed one (§13.1.3, rows 8, 12).
        // Crate policy: a GET or HEAD that was modified since binds
        // nothing (it writes nothing; `Expected` stays what the other
        // conditions made it).
        if let (Some(date), Some(modified)) = (if_modified_since, modified) {
            if modified <= date {
                return Outcome::NotModified;
            }
        }
    }

    // Step 5: If-Range, for a GET with Range (§13.1.5, rows 15, 16, 17).
    let ignore_range = *method == Method::GET
        && combined(s, Field::Range).is_some()
        && combined(s, Field::IfRange)
            .is_some_and(|v| !if_range_holds(&v, &current_tag, modified, now_secs));

    let expected = if !exists {
        // Only a PUT gets here. Row 5: it creates under the condition it
        // checked against "absent"; with none evaluated it is unconditional.
        // Crate policy: a valid If-Unmodified-Since counts as a condition
        // here although §13.1.4 ignores it (no modification date): the
        // client expected an existing state, so the write may only create.
        let valid_ius = combined(s, Field::IfUnmodifiedSince)
            .and_then(|v| parse_http_date(&v))
            .is_some();
        if !valid_ius && if_none_match.as_ref().is_none_or(Result::is_err) {
            Expected::Any
        } else {
            Expected::Absent
        }
    } else {
        let strong = s.target_strong_tag();
        match (bound, strong) {
            (Bound::Nothing, _) => Expected::Any,
            (Bound::State, Some(tag)) => Expected::ETag(tag),
            _ => Expected::Exists,
        }
    };
    Outcome::Proceed {
        expected,
        ignore_range,
    }
}

/// §13.1.5: an entity-tag holds on a strong match; an HTTP-date holds on an
/// exact match with a Last-Modified that is strong (§8.8.2.2: at least one
/// second before the time of the request, in whole seconds); anything else
/// (a weak tag, a list, `*`, several lines, an invalid date) is false.
fn if_range_holds(
    value: &[u8],
    current: &Option<RefTag>,
    modified: Option<i64>,
    now_secs: i64,
) -> bool {
    if let Some(tag) = parse_entity_tag(trim_ows(value)) {
        return current
            .as_ref()
            .is_some_and(|c| !tag.weak && !c.weak && tag.opaque == c.opaque);
    }
    match (parse_http_date(value), modified) {
        (Some(date), Some(modified)) => date == modified && now_secs - modified >= 1,
        _ => false,
    }
}

impl Scenario {
    fn target_strong_tag(&self) -> Option<ETag> {
        match &self.target {
            Target::Present {
                etag: Some(wire), ..
            } => ETag::parse(wire.as_bytes()).ok().filter(ETag::is_strong),
            _ => None,
        }
    }

    /// `None` when a line holds a byte a `HeaderValue` cannot.
    fn header_map(&self) -> Option<HeaderMap> {
        let mut map = HeaderMap::new();
        map.append("content-type", HeaderValue::from_static("application/json"));
        for (field, value) in &self.lines {
            map.append(
                field.name(),
                HeaderValue::from_bytes(value.as_bytes()).ok()?,
            );
        }
        Some(map)
    }

    fn raw_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.lines
            .iter()
            .map(|(field, value)| (field.shouted().into_bytes(), value.as_bytes().to_vec()))
            .collect()
    }
}

// ===========================================================================
// Formatting dates, for the generator.

#[derive(Debug, Clone, Copy)]
enum DateForm {
    Imf,
    Rfc850,
    Asctime,
}

fn civil(secs: i64) -> (i64, usize, i64, usize, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let weekday = usize::try_from((days + 4).rem_euclid(7)).expect("0..7");
    let mut year = 1970;
    let mut left = days;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if left < len {
            break;
        }
        left -= len;
        year += 1;
    }
    let mut month = 0;
    while left >= days_in_month(year, month) {
        left -= days_in_month(year, month);
        month += 1;
    }
    (
        year,
        month,
        left + 1,
        weekday,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
    )
}

fn format_date(secs: i64, form: DateForm) -> String {
    let (year, month, day, weekday, h, m, s) = civil(secs);
    let (mon, wd) = (MONTHS[month], DAY_NAMES[weekday]);
    match form {
        DateForm::Imf => format!("{wd}, {day:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT"),
        DateForm::Rfc850 => format!(
            "{}, {day:02}-{mon}-{:02} {h:02}:{m:02}:{s:02} GMT",
            LONG_DAY_NAMES[weekday],
            year % 100
        ),
        DateForm::Asctime => format!("{wd} {mon} {day:>2} {h:02}:{m:02}:{s:02} {year}"),
    }
}

// ===========================================================================
// The generator.

/// Base seconds of the target's Last-Modified: the RFC's example date, and
/// a date in 2030 (a two-digit year under 70).
const BASES: [u64; 2] = [784_111_777, 1_900_000_000];
const NANOS: [u32; 5] = [0, 1, 400_000_000, 600_000_000, 999_999_999];
/// The time of the request relative to the base second (negative: the
/// Last-Modified lies in the future).
const NOW_OFFSETS: [i64; 7] = [-60, -1, 0, 1, 2, 3_600, 86_400 * 400];

const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::POST,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// `METHODS`, and extension methods: methods are case-sensitive (§9.1), so
/// `put` and `get` are not PUT and GET.
fn all_methods() -> Vec<Method> {
    let mut methods = METHODS.to_vec();
    for name in ["put", "get", "PROPFIND"] {
        methods.push(Method::from_bytes(name.as_bytes()).expect("valid method"));
    }
    methods
}

/// Current entity-tags: strong, weak, one with a comma, the empty tag, one
/// with obs-text.
const CURRENT_TAGS: [&str; 5] = ["\"v1\"", "W/\"v1\"", "\"a,b\"", "\"\"", "\"v\u{e9}\""];

/// List members: the current tags strong and weak, other tags, `*`, and
/// malformed members.
const MEMBERS: [&str; 22] = [
    "\"v1\"",
    "W/\"v1\"",
    "\"v2\"",
    "W/\"v2\"",
    "\"a,b\"",
    "W/\"a,b\"",
    "\"\"",
    "W/\"\"",
    "\"v\u{e9}\"",
    "*",
    "v1",
    "\"v1",
    "w/\"v1\"",
    "W/ \"v1\"",
    "\"v 1\"",
    "\"v1\"x",
    "W/v1",
    "W/",
    "\"",
    "\"a\"b\"",
    "'v1'",
    "\"a\",\"b\"",
];

const SEPARATORS: [&str; 7] = [", ", ",", " , ", ",\t", ",,", ", ,", " ,"];
const PADDING: [&str; 4] = ["", " ", "\t", " \t "];

fn tag_line() -> BoxedStrategy<String> {
    let list = (
        select(&PADDING[..]),
        proptest::collection::vec((select(&MEMBERS[..]), select(&SEPARATORS[..])), 0..4),
        select(&PADDING[..]),
    )
        .prop_map(|(lead, members, trail)| {
            let mut line = lead.to_owned();
            for (i, (member, sep)) in members.iter().enumerate() {
                if i > 0 {
                    line.push_str(sep);
                }
                line.push_str(member);
            }
            line.push_str(trail);
            line
        });
    prop_oneof![
        4 => select(&MEMBERS[..]).prop_map(str::to_owned),
        2 => Just("*".to_owned()),
        1 => select(&["", ",", " , ", "\t"][..]).prop_map(str::to_owned),
        4 => list,
    ]
    .boxed()
}

/// Ways to break a date.
const DATE_MUTATIONS: [&str; 12] = [
    "lowercase",
    "UTC",
    "single-digit day",
    "wrong weekday",
    "double space",
    "trailing junk",
    "second 60",
    "hour 24",
    "31st of the month",
    "29 February",
    "no GMT",
    "padded",
];

fn mutate(date: &str, mutation: &str, secs: i64, form: DateForm) -> String {
    let (year, month, _, weekday, h, m, s) = civil(secs);
    match mutation {
        "lowercase" => date.to_ascii_lowercase(),
        "UTC" => date.replace("GMT", "UTC"),
        "single-digit day" => date.replacen(" 0", " ", 1).replacen("  ", " ", 1),
        "wrong weekday" => date.replacen(DAY_NAMES[weekday], DAY_NAMES[(weekday + 1) % 7], 1),
        "double space" => date.replacen(' ', "  ", 1),
        "trailing junk" => format!("{date} x"),
        "second 60" => date.replacen(
            &format!("{h:02}:{m:02}:{s:02}"),
            &format!("{h:02}:{m:02}:60"),
            1,
        ),
        "hour 24" => date.replacen(&format!(" {h:02}:"), " 24:", 1),
        "31st of the month" => {
            let wd = DAY_NAMES[weekday];
            let mon = MONTHS[month];
            match form {
                DateForm::Imf => format!("{wd}, 31 {mon} {year} {h:02}:{m:02}:00 GMT"),
                DateForm::Rfc850 => format!(
                    "{}, 31-{mon}-{:02} {h:02}:{m:02}:00 GMT",
                    LONG_DAY_NAMES[weekday],
                    year % 100
                ),
                DateForm::Asctime => format!("{wd} {mon} 31 {h:02}:{m:02}:00 {year}"),
            }
        }
        "29 February" => format!("{}, 29 Feb {year} {h:02}:{m:02}:00 GMT", DAY_NAMES[weekday]),
        "no GMT" => date.replace(" GMT", ""),
        "padded" => format!(" \t{date}\t "),
        _ => date.to_owned(),
    }
}

/// Fixed odd dates: before 1970, a leap second, garbage, two dates on one
/// line, numbers.
const ODD_DATES: [&str; 10] = [
    "Wed, 31 Dec 1969 23:59:59 GMT",
    "Fri, 01 Jan 1960 00:00:00 GMT",
    "Sat, 05 Nov 1994 23:59:60 GMT",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Thursday, 01-Jan-70 00:00:00 GMT",
    "",
    "yesterday",
    "784111777",
    "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:38 GMT",
    "Sun, 06 Nov 1994 08:49:37 GMT ",
];

#[derive(Debug, Clone, Copy)]
struct Times {
    base: i64,
    now: i64,
}

fn date_line(times: Times) -> BoxedStrategy<String> {
    let anchored = (
        prop_oneof![
            3 => (-2i64..=2).prop_map(move |k| times.base + k),
            1 => (-1i64..=1).prop_map(move |k| times.now + k),
        ],
        select(
            &[
                DateForm::Imf,
                DateForm::Imf,
                DateForm::Rfc850,
                DateForm::Asctime,
            ][..],
        ),
        proptest::option::weighted(0.25, select(&DATE_MUTATIONS[..])),
    )
        .prop_map(|(secs, form, mutation)| {
            let date = format_date(secs, form);
            match mutation {
                Some(m) => mutate(&date, m, secs, form),
                None => date,
            }
        });
    prop_oneof![
        8 => anchored,
        1 => select(&ODD_DATES[..]).prop_map(str::to_owned),
    ]
    .boxed()
}

fn if_range_line(times: Times, dates: u32) -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(&MEMBERS[..]).prop_map(str::to_owned),
        dates => date_line(times),
        1 => tag_line(),
    ]
    .boxed()
}

/// 1 line usually, sometimes 2 or 3.
fn lines_count() -> impl Strategy<Value = usize> {
    prop_oneof![8 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)]
}

/// Bytes around a line that a `HeaderValue` cannot hold but `RawHeaders`
/// can: control characters that are neither OWS nor CR, LF or NUL. §5.5
/// makes a field value holding them invalid, so a date carrying one is no
/// valid HTTP-date and its field is ignored (§13.1.3, §13.1.4, §13.1.5).
/// CR, LF and NUL are left out: §5.5 lets a recipient replace those with SP
/// (which would make a date at either end of them valid) as well as reject
/// the message, so either reading is right.
const STRAY_BYTES: [&str; 5] = ["\u{1}", "\u{b}", "\u{c}", "\u{1f}", "\u{7f}"];

fn field_lines(
    field: Field,
    present: f64,
    stray: f64,
    line: BoxedStrategy<String>,
) -> impl Strategy<Value = Vec<(Field, String)>> {
    let line = if stray > 0.0 {
        (
            line,
            proptest::option::weighted(stray, (select(&STRAY_BYTES[..]), any::<bool>())),
        )
            .prop_map(|(line, stray)| match stray {
                Some((byte, true)) => format!("{byte}{line}"),
                Some((byte, false)) => format!("{line}{byte}"),
                None => line,
            })
            .boxed()
    } else {
        line
    };
    proptest::option::weighted(
        present,
        lines_count().prop_flat_map(move |n| proptest::collection::vec(line.clone(), n)),
    )
    .prop_map(move |lines| {
        lines
            .unwrap_or_default()
            .into_iter()
            .map(|l| (field, l))
            .collect()
    })
}

fn policy() -> impl Strategy<Value = PolicySpec> {
    (
        any::<bool>(),
        proptest::option::weighted(
            0.3,
            proptest::sample::subsequence(all_methods(), 0..=all_methods().len()),
        ),
        any::<bool>(),
    )
        .prop_map(|(strict, required, accept_ius)| PolicySpec {
            strict,
            required,
            accept_ius,
        })
}

fn target(base: u64, nanos: u32, dated: f64) -> impl Strategy<Value = Target> {
    prop_oneof![
        1 => Just(Target::Absent),
        6 => (
            proptest::option::weighted(0.75, select(&CURRENT_TAGS[..])),
            proptest::option::weighted(dated, Just(Duration::new(base, nanos))),
        )
            .prop_map(|(etag, last_modified)| Target::Present { etag, last_modified }),
    ]
}

/// How often each thing appears in generated requests.
#[derive(Debug, Clone)]
struct Mix {
    methods: Vec<(u32, Method)>,
    now_offsets: &'static [i64],
    /// Probability that a present target has a Last-Modified.
    dated: f64,
    if_match: f64,
    if_none_match: f64,
    if_modified_since: f64,
    if_unmodified_since: f64,
    if_range: f64,
    /// Weight of dates among If-Range values (tags weigh 4, lists 1).
    if_range_dates: u32,
    range: f64,
    /// Probability that a line carries a byte only `RawHeaders` can.
    stray: f64,
}

/// Everything, evenly.
fn broad() -> Mix {
    Mix {
        methods: all_methods().into_iter().map(|m| (1, m)).collect(),
        now_offsets: &NOW_OFFSETS,
        dated: 0.75,
        if_match: 0.4,
        if_none_match: 0.4,
        if_modified_since: 0.35,
        if_unmodified_since: 0.35,
        if_range: 0.35,
        if_range_dates: 4,
        range: 0.5,
        stray: 0.02,
    }
}

/// Mostly GETs with Range and If-Range, dated targets, and requests within
/// a second or two of the modification: §8.8.2.2 and whole seconds.
fn ranges_and_dates() -> Mix {
    Mix {
        methods: vec![(6, Method::GET), (1, Method::HEAD), (1, Method::PUT)],
        now_offsets: &[-1, 0, 1, 2],
        dated: 0.95,
        if_match: 0.15,
        if_none_match: 0.15,
        if_modified_since: 0.3,
        if_unmodified_since: 0.3,
        if_range: 0.9,
        if_range_dates: 20,
        range: 0.9,
        stray: 0.0,
    }
}

fn scenario(mix: Mix) -> impl Strategy<Value = Scenario> {
    (
        select(&BASES[..]),
        select(&NANOS[..]),
        select(mix.now_offsets),
        select(&NANOS[..]),
    )
        .prop_flat_map(move |(base, lm_nanos, offset, now_nanos)| {
            let now_secs = base.checked_add_signed(offset).expect("after the epoch");
            let times = Times {
                base: i64::try_from(base).expect("fits"),
                now: i64::try_from(now_secs).expect("fits"),
            };
            let methods = proptest::strategy::Union::new_weighted(
                mix.methods
                    .iter()
                    .map(|(w, m)| (*w, Just(m.clone())))
                    .collect(),
            );
            (
                policy(),
                methods,
                target(base, lm_nanos, mix.dated),
                Just(Duration::new(now_secs, now_nanos)),
                field_lines(Field::IfMatch, mix.if_match, mix.stray, tag_line()),
                field_lines(Field::IfNoneMatch, mix.if_none_match, mix.stray, tag_line()),
                field_lines(
                    Field::IfModifiedSince,
                    mix.if_modified_since,
                    mix.stray,
                    date_line(times),
                ),
                field_lines(
                    Field::IfUnmodifiedSince,
                    mix.if_unmodified_since,
                    mix.stray,
                    date_line(times),
                ),
                field_lines(
                    Field::IfRange,
                    mix.if_range,
                    mix.stray,
                    if_range_line(times, mix.if_range_dates),
                ),
                proptest::option::weighted(mix.range, Just((Field::Range, "bytes=0-9".to_owned()))),
            )
        })
        .prop_map(
            |(policy, method, target, now, im, inm, ims, ius, ir, range)| {
                let lines = [im, inm, ims, ius, ir, range.into_iter().collect()]
                    .into_iter()
                    .flatten()
                    .collect();
                Scenario {
                    policy,
                    method,
                    lines,
                    target,
                    now,
                }
            },
        )
}

// ===========================================================================
// The comparison.

/// The crate's evaluation through `RawHeaders` and, when the values fit
/// in one, through a `HeaderMap`.
fn crate_evaluations(s: &Scenario) -> Vec<(&'static str, Evaluation)> {
    let policy = s.policy.build();
    let current = s.target.build();
    let now = UNIX_EPOCH + s.now;
    let raw = s.raw_pairs();
    let mut evaluations = vec![(
        "RawHeaders",
        policy.evaluate(
            &s.method,
            &RawHeaders::new(raw.iter().map(|(n, v)| (&n[..], &v[..]))),
            current.as_ref(),
            now,
        ),
    )];
    if let Some(map) = s.header_map() {
        evaluations.push((
            "HeaderMap",
            policy.evaluate(&s.method, &map, current.as_ref(), now),
        ));
    }
    evaluations
}

/// `Err` describes how the crate and the reference disagree.
fn compare(s: &Scenario) -> Result<(), String> {
    let want = reference(s);
    let mut errors = Vec::new();
    for (source, eval) in crate_evaluations(s) {
        if *eval.outcome() != want.outcome {
            errors.push(format!(
                "{source}: outcome {:?}, reference {:?}",
                eval.outcome(),
                want.outcome
            ));
        }
        if eval.malformed() != want.malformed {
            errors.push(format!(
                "{source}: malformed {:?}, reference {:?}",
                eval.malformed(),
                want.malformed
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// A fixed case count and seed: the same requests on every run.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 20_000,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x1f_4a7c_9110),
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_evaluator_agrees_with_an_independent_reading_of_rfc_9110_and_the_design_table(
        s in scenario(broad())
    ) {
        if let Err(diff) = compare(&s) {
            prop_assert!(false, "{s:?}\n{diff}");
        }
    }

    #[test]
    fn if_range_and_dates_agree_with_the_reference_to_the_second(
        s in scenario(ranges_and_dates())
    ) {
        if let Err(diff) = compare(&s) {
            prop_assert!(false, "{s:?}\n{diff}");
        }
    }
}

/// Header lines as `(name, value)` bytes.
type RawPairs = &'static [(&'static [u8], &'static [u8])];

/// The shortest requests the properties found the crate and the reference
/// disagreeing on: a valid date with a vertical tab or form feed before or
/// after it. Such a field value is invalid (§5.5: field-vchar, SP and HTAB
/// only), so it is no valid HTTP-date, and the field must be ignored
/// (§13.1.3, §13.1.4; DESIGN.md: "invalid HTTP-date … that header is
/// ignored"; §13.1.5 and DESIGN.md: an invalid If-Range is false). Only
/// `RawHeaders` can carry these bytes; `HeaderValue` and httparse refuse
/// them.
#[test]
fn a_date_with_a_vertical_tab_or_form_feed_around_it_is_not_a_valid_http_date() {
    let modified = Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    let now = UNIX_EPOCH + modified + Duration::from_secs(3_600);
    let current = Validators::new(ETag::from_version(1)).with_last_modified(UNIX_EPOCH + modified);
    let cases: [(&str, Policy, Method, RawPairs, Outcome); 4] = [
        (
            "an If-Unmodified-Since that would fail is ignored",
            Policy::opt_in(),
            Method::PUT,
            &[(b"if-unmodified-since", b"Sun, 06 Nov 1994 08:49:36 GMT\x0b")],
            Outcome::Proceed {
                expected: Expected::Any,
                ignore_range: false,
            },
        ),
        (
            "an ignored If-Unmodified-Since does not satisfy strict mode",
            Policy::strict().accept_if_unmodified_since(true),
            Method::PUT,
            &[(b"if-unmodified-since", b"\x0bSun, 06 Nov 1994 08:49:37 GMT")],
            Outcome::PreconditionRequired,
        ),
        (
            "an If-Modified-Since that would answer 304 is ignored",
            Policy::default(),
            Method::GET,
            &[(b"if-modified-since", b"Sun, 06 Nov 1994 08:49:37 GMT\x0c")],
            Outcome::Proceed {
                expected: Expected::Any,
                ignore_range: false,
            },
        ),
        (
            "an If-Range that would keep the Range is false",
            Policy::default(),
            Method::GET,
            &[
                (b"range", b"bytes=0-9"),
                (b"if-range", b"\x0cSun, 06 Nov 1994 08:49:37 GMT"),
            ],
            Outcome::Proceed {
                expected: Expected::Any,
                ignore_range: true,
            },
        ),
    ];
    let mut failures = Vec::new();
    for (name, policy, method, pairs, want) in cases {
        let eval = policy.evaluate(
            &method,
            &RawHeaders::new(pairs.iter().copied()),
            Some(&current),
            now,
        );
        if *eval.outcome() != want {
            failures.push(format!("{name}: got {:?}, want {want:?}", eval.outcome()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ===========================================================================
// Checks of the reference itself, so that a disagreement is the crate's.

fn date(v: &str) -> Option<i64> {
    parse_http_date(v.as_bytes())
}

#[test]
fn the_reference_reads_the_three_date_forms_of_the_rfc_example_alike() {
    let want = Some(784_111_777);
    assert_eq!(date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
    assert_eq!(date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
    assert_eq!(date("Sun Nov  6 08:49:37 1994"), want);
    assert_eq!(date("Sun Nov 06 08:49:37 1994"), want);
    for form in [DateForm::Imf, DateForm::Rfc850, DateForm::Asctime] {
        assert_eq!(date(&format_date(784_111_777, form)), want, "{form:?}");
        assert_eq!(
            date(&format_date(1_900_000_000, form)),
            Some(1_900_000_000),
            "{form:?}"
        );
    }
    // §5.6.7: four-digit years before 1970, and the leap second.
    assert_eq!(date("Wed, 31 Dec 1969 23:59:59 GMT"), Some(-1));
    assert_eq!(date("Thu Jul  4 12:00:00 1776"), Some(-6_106_017_600));
    assert_eq!(date("Sat, 31 Dec 2016 23:59:60 GMT"), Some(1_483_228_800));
}

#[test]
fn the_reference_refuses_dates_outside_the_grammar() {
    for bad in [
        "sun, 06 nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Mon, 06 Nov 1994 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:60 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 23:58:60 GMT",
        "Tue, 29 Feb 2030 00:00:00 GMT",
        "Thu, 29 Feb 1900 00:00:00 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:38 GMT",
        "",
    ] {
        assert_eq!(date(bad), None, "{bad:?}");
    }
}

/// The reference's date parser agrees with `httpdate` on what the
/// generator makes (and so with the crate, where both are right), except
/// on the valid dates `httpdate` refuses and the crate reads itself:
/// years before 1970 and the leap second.
#[test]
fn the_reference_date_parser_agrees_with_httpdate_on_generated_dates() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 5_000,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(7),
        ..ProptestConfig::default()
    });
    let result = runner.run(
        &date_line(Times {
            base: 784_111_777,
            now: 784_115_377,
        }),
        |v| {
            let theirs = httpdate::parse_http_date(trim_ows_str(&v))
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(secs);
            let ours = date(&v);
            let beyond_httpdate = ours.is_some_and(|t| t < 0) || v.contains("23:59:60");
            if !(theirs.is_none() && beyond_httpdate) {
                prop_assert_eq!(ours, theirs, "{:?}", v);
            }
            Ok(())
        },
    );
    if let Err(err) = result {
        panic!("{err}");
    }
}

fn trim_ows_str(v: &str) -> &str {
    v.trim_matches([' ', '\t'])
}

#[test]
fn the_reference_splits_lists_only_outside_quotes() {
    let tags = |v: &str| match parse_tag_list(v.as_bytes()) {
        Ok(RefList::Tags(tags)) => Some(tags.len()),
        _ => None,
    };
    assert_eq!(tags("\"a,b\""), Some(1));
    assert_eq!(tags(" \"a\" ,, W/\"b\" ,"), Some(2));
    assert_eq!(tags(""), Some(0));
    assert_eq!(tags(","), Some(0));
    assert_eq!(tags("\"a\", *"), None);
    assert_eq!(tags("*, "), None);
    assert_eq!(tags("\"a\" \"b\""), None);
    assert_eq!(tags("w/\"a\""), None);
    assert_eq!(tags("\"a"), None);
    assert_eq!(parse_tag_list(b" * "), Ok(RefList::Star));
}
