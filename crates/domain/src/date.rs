//! Dates, months and years in the five styles agencies write them, plus Excel serial
//! numbers. Two-digit years are always rejected: `23/5/1` could be 1923 or 2023.

use chrono::{Datelike, NaiveDate};

use crate::reason::{Reason, Rejection};

/// Day 0 of Excel's 1900 date system, counting the phantom 1900-02-29.
fn excel_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1899, 12, 30).expect("valid constant date")
}

/// The date of an Excel serial number (fractions are times of day and dropped).
pub fn from_excel_serial(serial: f64) -> Option<NaiveDate> {
    if !(1.0..=2_958_465.0).contains(&serial) {
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
/// serial numbers.
pub fn parse_date(raw: &str) -> Result<NaiveDate, Rejection> {
    let s = crate::text::normalize(raw);
    // Date-times: keep the date part.
    let s = match s.find(['T', ' ']) {
        Some(i) if i >= 8 => s[..i].to_string(),
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
/// date is accepted and gives its month. Returns the first day of the month.
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
                let d = parse_date(raw).map_err(|_| bad())?;
                (d.year(), d.month())
            }
        }
    };
    NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)
}

/// Parses a year: `2023`, `2023年`, `2023年度`, `2023.0`.
pub fn parse_year(raw: &str) -> Result<i32, Rejection> {
    let s = crate::text::normalize(raw);
    let s = s
        .strip_suffix("年度")
        .or_else(|| s.strip_suffix('年'))
        .or_else(|| s.strip_suffix(".0"))
        .unwrap_or(&s);
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(raw, "a four-digit year"));
    }
    s.parse().map_err(|_| invalid(raw, "a year"))
}

/// Parses a year, or a date whose year is taken (designation years are often dates).
pub fn parse_year_or_date(raw: &str) -> Result<i32, Rejection> {
    parse_year(raw).or_else(|_| {
        parse_date(raw)
            .map(|d| d.year())
            .map_err(|_| invalid(raw, "a year or a date"))
    })
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
}
