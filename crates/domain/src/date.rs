//! Dates, months and years in the five styles agencies write them, plus Excel serial
//! numbers. Two-digit years are always rejected: `23/5/1` could be 1923 or 2023.
//!
//! Every date, month and year is on or after [`MIN_YEAR`] (1900): no record an agency
//! keeps dates from earlier, and a year 0 or 0001 is an unset field written out. A
//! date-time's time of day must be a real one (hour ≤ 23, minute ≤ 59, second ≤ 60);
//! `2023-05-01T25:99:99` is `invalid_date`, not 1 May.

use chrono::{Datelike, NaiveDate};

use crate::reason::{Reason, Rejection};

/// The earliest year a date, month or year may carry.
pub const MIN_YEAR: i32 = 1900;

/// The first Excel serial accepted: 61 is 1900-03-01. Excel counts a 29 February 1900
/// that never was, so serials 1–60 are a day off, and they precede every record.
pub const MIN_EXCEL_SERIAL: f64 = 61.0;

/// The last Excel serial: 2,958,465 is 9999-12-31, Excel's own limit.
pub const MAX_EXCEL_SERIAL: f64 = 2_958_465.0;

/// Day 0 of Excel's 1900 date system, counting the phantom 1900-02-29.
fn excel_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1899, 12, 30).expect("valid constant date")
}

/// The date of an Excel serial number (fractions are times of day and dropped);
/// `None` outside [`MIN_EXCEL_SERIAL`]..=[`MAX_EXCEL_SERIAL`] (and for NaN).
pub fn from_excel_serial(serial: f64) -> Option<NaiveDate> {
    if !(MIN_EXCEL_SERIAL..=MAX_EXCEL_SERIAL).contains(&serial) {
        return None;
    }
    excel_epoch().checked_add_days(chrono::Days::new(serial.trunc() as u64))
}

/// The Excel serial of a date (used by the generator).
pub fn to_excel_serial(date: NaiveDate) -> f64 {
    (date - excel_epoch()).num_days() as f64
}

fn invalid(raw: &str, what: &str) -> Rejection {
    Rejection::new(Reason::InvalidDate, format!("\"{raw}\" is not {what}"))
}

fn before_floor(raw: &str, year: i32) -> Rejection {
    Rejection::new(
        Reason::InvalidDate,
        format!("\"{raw}\" is in year {year}, before {MIN_YEAR}, the earliest accepted"),
    )
}

/// Checks the [`MIN_YEAR`] floor for a date that arrived already typed (an XLSX date
/// cell); `raw` names the cell in the message.
pub fn check_floor(date: NaiveDate, raw: &str) -> Result<NaiveDate, Rejection> {
    if date.year() < MIN_YEAR {
        return Err(before_floor(raw, date.year()));
    }
    Ok(date)
}

/// Whether `s` is `min_len..=max_len` ASCII digits with a value of at most `max`.
fn field(s: &str, min_len: usize, max_len: usize, max: u32) -> bool {
    (min_len..=max_len).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|v| v <= max)
}

/// Whether the text after a date is a valid time of day: `8:30`, `08:30:00`,
/// `08:30:00.123`, basic `083000` or `0830`, optionally followed by `Z`, `UTC` or an
/// offset (`+08:00`, `+0800`, `+08`, `-05:00`), with or without a space before it.
fn valid_time(t: &str) -> bool {
    let t = t.trim();
    let (clock, zone) = if let Some(c) = t.strip_suffix('Z').or_else(|| t.strip_suffix("UTC")) {
        (c, None)
    } else {
        match t.rfind(['+', '-']) {
            Some(i) => (&t[..i], Some(&t[i + 1..])),
            None => (t, None),
        }
    };
    if let Some(z) = zone {
        let ok = match z.split_once(':') {
            Some((h, m)) => field(h, 2, 2, 23) && field(m, 2, 2, 59),
            None if z.len() == 4 && z.is_ascii() => {
                field(&z[..2], 2, 2, 23) && field(&z[2..], 2, 2, 59)
            }
            None => field(z, 2, 2, 23),
        };
        if !ok {
            return false;
        }
    }
    let clock = clock.trim_end();
    let (clock, fraction) = match clock.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (clock, None),
    };
    if fraction
        .is_some_and(|f| f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let parts: Vec<&str> = if clock.contains(':') {
        clock.split(':').collect()
    } else if clock.is_ascii() && (clock.len() == 4 || clock.len() == 6) {
        (0..clock.len())
            .step_by(2)
            .map(|i| &clock[i..i + 2])
            .collect()
    } else {
        return false;
    };
    match parts.as_slice() {
        [h, m] => fraction.is_none() && field(h, 1, 2, 23) && field(m, 2, 2, 59),
        [h, m, sec] => field(h, 1, 2, 23) && field(m, 2, 2, 59) && field(sec, 2, 2, 60),
        _ => false,
    }
}

/// Splits `2023-5-1`, `2023/5/1`, `2023.5.1`, `2023年5月1日` into numeric fields.
fn fields(s: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = s
        .split(['-', '/', '.', '年', '月', '日'])
        .filter(|p| !p.is_empty())
        .collect();
    parts
        .iter()
        .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .then_some(parts)
}

/// Parses a date: `2023-05-01`, `2023/5/1`, `2023.5.1`, `2023年5月1日`, `20230501`,
/// ISO date-times (`2023-05-01T08:00:00Z`, `2023-05-01 08:00`), and 5-digit Excel
/// serial numbers. The date is on or after 1900-01-01; a date-time's time must be a
/// valid time of day (it is checked, then dropped).
pub fn parse_date(raw: &str) -> Result<NaiveDate, Rejection> {
    let d = parse_date_any_year(raw)?;
    check_floor(d, raw)
}

fn parse_date_any_year(raw: &str) -> Result<NaiveDate, Rejection> {
    let s = crate::text::normalize(raw);
    // Date-times: keep the date part, once the time is known to be a time of day.
    let s = match s.find(['T', ' ']) {
        Some(i) if i >= 8 => {
            if !valid_time(&s[i + 1..]) {
                return Err(invalid(
                    raw,
                    "a date-time with a valid time of day (hour 0-23, minute 0-59, second 0-60)",
                ));
            }
            s[..i].to_string()
        }
        _ => s,
    };
    let bad = || invalid(raw, "a date (YYYY-MM-DD, YYYY/M/D, YYYY年M月D日, YYYYMMDD)");
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.len() {
            8 => {
                let y = s[..4].parse().map_err(|_| bad())?;
                let m = s[4..6].parse().map_err(|_| bad())?;
                let d = s[6..].parse().map_err(|_| bad())?;
                NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad)
            }
            5 => from_excel_serial(s.parse().map_err(|_| bad())?).ok_or_else(bad),
            _ => Err(bad()),
        };
    }
    if let Some(serial) = s.strip_suffix(".0").filter(|x| x.len() == 5) {
        return from_excel_serial(serial.parse().map_err(|_| bad())?).ok_or_else(bad);
    }
    let f = fields(&s).ok_or_else(bad)?;
    if f.len() != 3 || f[0].len() != 4 || f[1].len() > 2 || f[2].len() > 2 {
        return Err(bad());
    }
    let (y, m, d) = (
        f[0].parse().map_err(|_| bad())?,
        f[1].parse().map_err(|_| bad())?,
        f[2].parse().map_err(|_| bad())?,
    );
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad)
}

/// Parses a month (`period`): `2023-05`, `2023/05`, `2023年5月`, `202305`; a full
/// date is accepted and gives its month. Returns the first day of the month, on or
/// after 1900-01.
pub fn parse_month(raw: &str) -> Result<NaiveDate, Rejection> {
    let s = crate::text::normalize(raw);
    let bad = || invalid(raw, "a month (YYYY-MM, YYYY/MM, YYYY年M月, YYYYMM)");
    let (y, m) = if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
        (
            s[..4].parse().map_err(|_| bad())?,
            s[4..].parse().map_err(|_| bad())?,
        )
    } else {
        let f = fields(&s).ok_or_else(bad)?;
        match f.len() {
            2 if f[0].len() == 4 && f[1].len() <= 2 => (
                f[0].parse().map_err(|_| bad())?,
                f[1].parse().map_err(|_| bad())?,
            ),
            _ => {
                let d = parse_date_any_year(raw).map_err(|_| bad())?;
                (d.year(), d.month())
            }
        }
    };
    check_floor(NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?, raw)
}

/// A year written as a year (`2023`, `2023年`, `2023年度`, `2023.0`), any value.
fn year_text(raw: &str) -> Option<i32> {
    let s = crate::text::normalize(raw);
    let s = s
        .strip_suffix("年度")
        .or_else(|| s.strip_suffix('年'))
        .or_else(|| s.strip_suffix(".0"))
        .unwrap_or(&s);
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn check_year_floor(year: i32, raw: &str) -> Result<i32, Rejection> {
    if year < MIN_YEAR {
        return Err(before_floor(raw, year));
    }
    Ok(year)
}

/// Parses a year: `2023`, `2023年`, `2023年度`, `2023.0`; 1900 or later.
pub fn parse_year(raw: &str) -> Result<i32, Rejection> {
    let year = year_text(raw).ok_or_else(|| invalid(raw, "a four-digit year"))?;
    check_year_floor(year, raw)
}

/// Parses a year, or a date whose year is taken (designation years are often dates).
pub fn parse_year_or_date(raw: &str) -> Result<i32, Rejection> {
    match year_text(raw) {
        // A year before the floor stays that rejection (`0000` is no date either).
        Some(year) => check_year_floor(year, raw),
        None => parse_date(raw)
            .map(|d| d.year())
            .map_err(|_| invalid(raw, "a year or a date")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn date_styles() {
        for s in [
            "2023-05-01",
            "2023/5/1",
            "2023.5.1",
            "2023年5月1日",
            "20230501",
            "2023-05-01T08:30:00Z",
            "2023-05-01 08:30:00",
            "2023-05-01T08:30:00+08:00",
            "45047",
            "45047.0",
            "２０２３年５月１日",
        ] {
            assert_eq!(parse_date(s), Ok(d(2023, 5, 1)), "{s}");
        }
        for s in [
            "23/5/1",
            "23-05-01",
            "2023-13-01",
            "2023年2月30日",
            "May 1",
            "2023-05",
            "1",
        ] {
            assert_eq!(
                parse_date(s).unwrap_err().reason,
                Reason::InvalidDate,
                "{s}"
            );
        }
    }

    #[test]
    fn months_and_years() {
        for s in [
            "2023-05",
            "2023/05",
            "2023/5",
            "2023年5月",
            "202305",
            "2023-05-17",
        ] {
            assert_eq!(parse_month(s), Ok(d(2023, 5, 1)), "{s}");
        }
        assert!(parse_month("23-05").is_err());
        assert!(parse_month("2023-13").is_err());
        for s in ["2023", "2023年", "2023年度", "2023.0"] {
            assert_eq!(parse_year(s), Ok(2023), "{s}");
        }
        assert!(parse_year("23").is_err());
        assert!(parse_year("23年").is_err());
        assert_eq!(parse_year_or_date("2021-06-30"), Ok(2021));
    }

    #[test]
    fn excel_round_trip() {
        assert_eq!(to_excel_serial(d(2023, 5, 1)), 45047.0);
        assert_eq!(from_excel_serial(45047.75), Some(d(2023, 5, 1)));
    }

    #[test]
    fn excel_serials_are_bounded() {
        assert_eq!(from_excel_serial(61.0), Some(d(1900, 3, 1)));
        assert_eq!(from_excel_serial(2_958_465.0), Some(d(9999, 12, 31)));
        for serial in [
            60.0,
            1.0,
            0.0,
            -1.0,
            2_958_466.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e308,
        ] {
            assert_eq!(from_excel_serial(serial), None, "{serial}");
        }
    }

    #[test]
    fn dates_before_1900_are_invalid() {
        assert_eq!(parse_date("1900-01-01"), Ok(d(1900, 1, 1)));
        for s in [
            "0000-01-01",
            "0001-01-01",
            "1899-12-31",
            "00000101",
            "0000年1月1日",
            "0000-01-01T00:00:00Z",
        ] {
            let e = parse_date(s).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidDate, "{s}");
        }
        assert!(
            parse_date("0000-01-01")
                .unwrap_err()
                .message
                .contains("before 1900")
        );
        assert_eq!(parse_month("1900-01"), Ok(d(1900, 1, 1)));
        for s in ["0000-05", "189912", "1899-12-31"] {
            assert_eq!(
                parse_month(s).unwrap_err().reason,
                Reason::InvalidDate,
                "{s}"
            );
        }
        assert_eq!(parse_year("1900"), Ok(1900));
        for s in ["0000", "1899年", "0000年度"] {
            assert_eq!(
                parse_year(s).unwrap_err().reason,
                Reason::InvalidDate,
                "{s}"
            );
            assert_eq!(
                parse_year_or_date(s).unwrap_err().reason,
                Reason::InvalidDate,
                "{s}"
            );
        }
        assert!(parse_year_or_date("0000-06-30").is_err());
        assert_eq!(
            check_floor(d(1899, 12, 31), "x").unwrap_err().reason,
            Reason::InvalidDate
        );
        assert_eq!(check_floor(d(1900, 1, 1), "x"), Ok(d(1900, 1, 1)));
    }

    #[test]
    fn date_times_need_a_real_time_of_day() {
        for s in [
            "2023-05-01T00:00",
            "2023-05-01T23:59:59",
            "2023-05-01T23:59:60Z",
            "2023-05-01 8:30",
            "2023-05-01 08:30:00.123456",
            "2023-05-01T08:30:00.5+08:00",
            "2023-05-01T08:30:00-0500",
            "2023-05-01T08:30:00+08",
            "2023-05-01 08:30:00 +08:00",
            "2023-05-01 08:30:00 UTC",
            "2023-05-01T083000Z",
            "2023/5/1 0:00:00",
            "2023年5月1日 08:30",
        ] {
            assert_eq!(parse_date(s), Ok(d(2023, 5, 1)), "{s}");
        }
        for s in [
            "2023-05-01T25:99:99",
            "2023-05-01T24:00:00",
            "2023-05-01T23:60:00",
            "2023-05-01T23:59:61",
            "2023-05-01T08",
            "2023-05-01T08:3",
            "2023-05-01T08:30:00.",
            "2023-05-01T08:30.5",
            "2023-05-01T08:30:00+25:00",
            "2023-05-01T08:30:00+08:60",
            "2023-05-01T",
            "2023-05-01 上午",
            "2023-05-01T-1:00",
        ] {
            assert_eq!(
                parse_date(s).unwrap_err().reason,
                Reason::InvalidDate,
                "{s}"
            );
        }
        assert!(parse_month("2023-05-01T25:99:99").is_err());
        assert!(parse_year_or_date("2023-05-01T25:99:99").is_err());
    }
}
