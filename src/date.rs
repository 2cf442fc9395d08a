//! HTTP dates, compared in whole seconds.
//!
//! Parsing and formatting are `httpdate`'s: it reads all three forms of
//! [RFC 9110 §5.6.7](https://www.rfc-editor.org/rfc/rfc9110#section-5.6.7)
//! (IMF-fixdate, obsolete RFC 850 and asctime) and rejects impossible dates.
//! It also rejects two that the grammar allows: dates before 1970, and the
//! leap second `23:59:60` ("00:00:00 - 23:59:60 (leap second)"). Those are
//! valid HTTP-dates, which §13.1.3/§13.1.4 evaluate rather than ignore, so
//! `httpdate` reads them too, moved into its range first: a year before
//! 1970 by whole 400-year Gregorian cycles (146,097 days, a whole number of
//! weeks, so the weekday and leap days it checks stay right), moved back
//! after; a leap second as second 59, plus one (POSIX time has no leap
//! seconds: `23:59:60` is the next day's `00:00:00`). It reads an RFC 850 date's two-digit
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
    httpdate::parse_http_date(s)
        .ok()
        .or_else(|| parse_beyond_httpdate(value))
}

/// 400 Gregorian years: 146,097 days, 20,871 weeks.
const GREGORIAN_CYCLE: Duration = Duration::from_secs(146_097 * 86_400);

/// The valid HTTP-dates `httpdate` refuses, moved into its range and read
/// by it (see the module documentation): an IMF-fixdate or asctime date
/// before 1970, and any of the three forms at `23:59:60`. `None` for
/// anything else, which `httpdate` has already refused.
fn parse_beyond_httpdate(value: &[u8]) -> Option<SystemTime> {
    let mut buf = [0u8; 40];
    let date = buf.get_mut(..value.len())?;
    date.copy_from_slice(value);
    let n = date.len();
    // Where the four-digit year and the time of day are, by the form's
    // fixed layout; an RFC 850 date has a two-digit year, which `httpdate`
    // never reads as one before 1970.
    let (year_at, time_at) = match (n, date.get(3)) {
        (29, Some(b',')) => (Some(12), 17),
        (24, _) => (Some(20), 11),
        _ if n >= 23 && date.ends_with(b" GMT") => (None, n - 12),
        _ => return None,
    };
    let mut cycles = 0;
    if let Some(at) = year_at {
        let digits = date.get_mut(at..at + 4)?;
        let year = digits.iter().try_fold(0u32, |y, &d| {
            d.is_ascii_digit().then(|| y * 10 + u32::from(d - b'0'))
        })?;
        if year < 1970 {
            cycles = (1970 - year).div_ceil(400);
            let mut moved = year + 400 * cycles;
            for d in digits.iter_mut().rev() {
                // `moved` is below 2370: four digits.
                *d = b'0' + (moved % 10) as u8;
                moved /= 10;
            }
        }
    }
    let time = date.get_mut(time_at..time_at + 8)?;
    let leap = time == b"23:59:60";
    if leap {
        time[6..].copy_from_slice(b"59");
    }
    if cycles == 0 && !leap {
        return None;
    }
    let t = httpdate::parse_http_date(std::str::from_utf8(date).ok()?).ok()?;
    let t = t.checked_sub(GREGORIAN_CYCLE * cycles)?;
    Some(if leap { t + Duration::from_secs(1) } else { t })
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

/// The tests' own calendar, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/civil.rs"]
mod civil;

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
    fn reads_the_valid_dates_httpdate_refuses() {
        // RFC 9110 §5.6.7: four-digit years from 0000, and a leap second.
        for (date, secs) in [
            ("Wed, 31 Dec 1969 23:59:59 GMT", -1),
            ("Wed Dec 31 23:59:59 1969", -1),
            ("Fri, 01 Jan 1960 00:00:00 GMT", -315_619_200),
            ("Thu, 01 Mar 1900 12:00:00 GMT", -2_203_848_000),
            ("Thu Jul  4 12:00:00 1776", -6_106_017_600),
            ("Mon, 01 Jan 0001 00:00:00 GMT", -62_135_596_800),
            // POSIX time has no leap second: 23:59:60 is the next 00:00:00.
            ("Sat, 31 Dec 2016 23:59:60 GMT", 1_483_228_800),
            ("Sat Dec 31 23:59:60 2016", 1_483_228_800),
            ("Saturday, 31-Dec-16 23:59:60 GMT", 1_483_228_800),
            ("Wed Dec 31 23:59:60 1969", 0),
        ] {
            assert_eq!(parse(date.as_bytes()), Some(secs), "{date}");
        }
        // Still refused: impossible dates and weekdays before 1970 (1900
        // was no leap year), a leap second at any other time, a year that
        // is not four digits.
        for bad in [
            "Thu, 29 Feb 1900 00:00:00 GMT",
            "Sat, 01 Jan 1960 00:00:00 GMT",
            "Fri Jan  1 00:00:00 196O",
            "Sun, 06 Nov 1994 12:00:60 GMT",
            "Sat, 31 Dec 2016 23:59:61 GMT",
            "Sat, 31 Dec 2016 23:60:60 GMT",
            "Sun, 06 Nov -994 08:49:37 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad}");
        }
    }

    use civil::civil_from_days;

    proptest::proptest! {
        /// Never a panic, whatever the bytes: most of all in the shapes of
        /// the three forms, which the fallback rewrites in place.
        #[test]
        fn any_bytes_parse_or_not_without_panicking(
            bytes in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::any::<u8>(),
                proptest::sample::select(&b"0123456789 :,-GMTSunDecWed"[..]),
            ], 0..48)
        ) {
            let _ = parse_time(&bytes);
        }

        #[test]
        fn every_date_from_year_1_to_9999_reads_back(secs in -62_135_596_800i64..YEAR_10000 as i64) {
            const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (year, month, day) = civil_from_days(days);
            let weekday = WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap()];
            let (h, m, s) = (rest / 3600, rest / 60 % 60, rest % 60);
            let month = MONTHS[month - 1];
            let imf = format!("{weekday}, {day:02} {month} {year:04} {h:02}:{m:02}:{s:02} GMT");
            let asctime = format!("{weekday} {month} {day:>2} {h:02}:{m:02}:{s:02} {year:04}");
            proptest::prop_assert_eq!(parse(imf.as_bytes()), Some(secs), "{}", imf);
            proptest::prop_assert_eq!(parse(asctime.as_bytes()), Some(secs), "{}", asctime);
            // The day before, had it ended in a leap second: that second
            // is this day's 00:00:00.
            let (year, month, day) = civil_from_days(days - 1);
            let weekday = WEEKDAYS[usize::try_from((days - 1).rem_euclid(7)).unwrap()];
            let leap = format!("{weekday}, {day:02} {} {year:04} 23:59:60 GMT", MONTHS[month - 1]);
            proptest::prop_assert_eq!(parse(leap.as_bytes()), Some(days * 86_400), "{}", leap);
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
