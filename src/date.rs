//! HTTP dates, compared in whole seconds.
//!
//! Parsing and formatting are `httpdate`'s: it reads all three forms of
//! [RFC 9110 §5.6.7](https://www.rfc-editor.org/rfc/rfc9110#section-5.6.7)
//! (IMF-fixdate, obsolete RFC 850 and asctime) and rejects impossible dates.
//! It also rejects two that the grammar allows, dates before 1970 and leap
//! seconds (`23:59:60`); those are ignored like invalid dates. This server
//! never sends either in `Last-Modified`, so a client echoing a date it
//! was sent never meets the limit. It reads an RFC 850 date's two-digit
//! year 70–99 as 1970–1999, where §5.6.7 wants years less than 50 years
//! ahead read as future ones (2070–2076 today); no server generates that
//! obsolete form, and no modification date lies that far ahead.
//! This module only adds whole-second integer arithmetic (never floats:
//! 0.999999999 s must not round up) and guards `httpdate`'s panics on
//! times it cannot write.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

use crate::headers::trim_ows;

/// Seconds since the Unix epoch, rounded down (towards the past).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -secs - 1
            } else {
                -secs
            }
        }
    }
}

/// Parses one HTTP-date field value, in any of the three forms.
pub(crate) fn parse(value: &[u8]) -> Option<i64> {
    parse_time(value).map(unix_secs)
}

/// Parses one HTTP-date field value into a time.
///
/// An HTTP-date is printable ASCII and spaces only. `httpdate` trims with
/// `str::trim`, which also drops VT, FF, CR and LF, so those are refused
/// here first: [RFC 9110 §5.5](https://www.rfc-editor.org/rfc/rfc9110#section-5.5) allows none of them in a field value, a
/// date next to one is no valid HTTP-date, and §13.1.3/§13.1.4 ignore
/// the field, as the tag lists' parser does with the same bytes.
pub(crate) fn parse_time(value: &[u8]) -> Option<SystemTime> {
    let value = trim_ows(value);
    if !value.iter().all(|&b| (b' '..=b'~').contains(&b)) {
        return None;
    }
    let s = std::str::from_utf8(value).ok()?;
    httpdate::parse_http_date(s).ok()
}

/// The date of a field that must hold exactly one HTTP-date: `None` when the
/// field is absent, repeated, or not a valid date ([RFC 9110 §13.1.3](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.3) and
/// §13.1.4 say to ignore the field then).
pub(crate) fn single<'a>(mut lines: impl Iterator<Item = &'a [u8]>) -> Option<i64> {
    let first = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    parse(first)
}

/// First second that `httpdate` can no longer write (year 10000).
const YEAR_10000: u64 = 253_402_300_800;

/// Formats `t` as an IMF-fixdate field value, or `None` for times that an
/// HTTP-date cannot carry (before 1970 or after 9999), which `httpdate`
/// would panic on.
pub(crate) fn to_header_value(t: SystemTime) -> Option<HeaderValue> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    if secs >= YEAR_10000 {
        return None;
    }
    let whole = UNIX_EPOCH + Duration::from_secs(secs);
    HeaderValue::from_str(&httpdate::fmt_http_date(whole)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_beside_a_control_byte_is_not_a_date() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse(date.as_bytes()), Some(784_111_777));
        assert_eq!(parse(format!(" \t{date}\t ").as_bytes()), Some(784_111_777));
        for byte in ['\u{b}', '\u{c}', '\r', '\n', '\0', '\u{7f}'] {
            assert_eq!(
                parse(format!("{date}{byte}").as_bytes()),
                None,
                "{byte:?} after"
            );
            assert_eq!(
                parse(format!("{byte}{date}").as_bytes()),
                None,
                "{byte:?} before"
            );
        }
    }

    #[test]
    fn reads_all_three_forms_of_rfc_9110_section_5_6_7() {
        let expected = Some(784_111_777);
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994"), expected);
    }

    #[test]
    fn rejects_invalid_dates() {
        for bad in [
            &b""[..],
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
            b"Sun, 31 Feb 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 25:49:37 GMT",
            // Signs are no DIGITs: httpdate 1.0.1 read these with
            // `str::parse`, which takes a leading `+`.
            b"Sun, +6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 +8:49:37 GMT",
            b"Sunday, +6-Nov-94 08:49:37 GMT",
            b"Sun Nov +6 08:49:37 1994",
            b"\xff\xfe",
            b"1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_repeated_field_is_ignored() {
        let d = b"Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(single([&d[..]].into_iter()), Some(784_111_777));
        assert_eq!(single([&d[..], &d[..]].into_iter()), None);
        assert_eq!(single(std::iter::empty()), None);
    }

    #[test]
    fn seconds_round_down_without_floats() {
        let t = UNIX_EPOCH + Duration::new(10, 999_999_999);
        assert_eq!(unix_secs(t), 10);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::new(0, 1)), -1);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::new(2, 0)), -2);
        // Before the epoch, a fraction of a second still rounds towards the
        // past: 2.000000001 s before it is in the third second before it.
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::new(2, 1)), -3);
    }

    #[test]
    fn formats_only_what_an_http_date_can_carry() {
        let t = UNIX_EPOCH + Duration::new(784_111_777, 900_000_000);
        assert_eq!(to_header_value(t).unwrap(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(to_header_value(UNIX_EPOCH - Duration::from_secs(1)), None);
        assert_eq!(
            to_header_value(UNIX_EPOCH + Duration::from_secs(YEAR_10000)),
            None
        );
        assert!(to_header_value(UNIX_EPOCH + Duration::from_secs(YEAR_10000 - 1)).is_some());
    }
}
