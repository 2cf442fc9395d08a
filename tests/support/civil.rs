//! A calendar for tests that write HTTP-dates themselves, sharing no code
//! with `httpdate` or the crate's date handling; used by `src/date.rs`'s
//! unit tests and by the test files that need it.

/// Year, month (1 to 12) and day of the day `days` after 1970-01-01 (before
/// it when negative), in the proleptic Gregorian calendar: Howard
/// Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, usize::try_from(month).expect("1 to 12"), day)
}
