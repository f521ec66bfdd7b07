//! `to_char`, `to_date` and `to_timestamp` with PostgreSQL's format patterns
//! (`'YYYY-MM-DD HH24:MI:SS.US'`), which is what every PostgreSQL client sends:
//! Superset's time-range filters, Excel's and DBeaver's generated SQL, hand-written
//! reports copied from a PostgreSQL manual.
//!
//! DataFusion's functions of the same names take chrono's `strftime` patterns
//! (`'%Y-%m-%d'`). Each function here wraps DataFusion's: a call whose patterns
//! contain a `%` goes to DataFusion's function unchanged (so existing SQL keeps its
//! meaning); any other pattern is read as PostgreSQL reads it.
//!
//! What PostgreSQL does, and so what this does (PostgreSQL 15 manual, "Data Type
//! Formatting Functions", checked against a real PostgreSQL by
//! `tests/python/pg_dates.py`):
//! - Patterns: `YYYY YYY YY Y IYYY CC MM MONTH Month month MON Mon mon DDD DD D ID
//!   DAY Day day DY Dy dy WW IW Q HH24 HH12 HH MI SS MS US AM PM am pm A.M. P.M.
//!   a.m. p.m.`; numeric patterns in either case (`yyyy-mm-dd`); an `FM` prefix drops
//!   padding; `"text"` is copied (skipped when reading); other characters are copied.
//! - `to_char`: `Month`/`Day` are blank-padded to 9 characters unless `FM`; `D` is the
//!   day of the week with Sunday 1, `ID` with Monday 1; `WW` counts 7-day weeks from
//!   1 January; `Q` is the quarter.
//! - `to_date`/`to_timestamp`: leading spaces before a field are skipped; a separator
//!   in the pattern matches one separator in the text (or none); fields missing at the
//!   end of the text take their first value (`to_date('2015', 'YYYY')` is 1 January);
//!   text after the pattern is ignored; `MS`/`US` digits are a fraction
//!   (`SS.MS` of `12.3` is 300 ms); `Q`, day names and `D` are read and ignored; an
//!   impossible date (`2015-02-30`) is an error, as in PostgreSQL.
//! - `to_timestamp` gives a timestamp in the session's time zone, as DataFusion's does.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

type Result<T> = datafusion::error::Result<T>;

/// The three functions, wrapping DataFusion's (for [`crate::udf::udfs`]).
pub fn udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::datetime;
    [
        datetime::to_char(),
        datetime::to_date(),
        datetime::to_timestamp(&ConfigOptions::default()),
    ]
    .into_iter()
    .map(|inner| ScalarUDF::new_from_impl(PgPatterns { inner }))
    .collect()
}

/// One of DataFusion's functions, reading PostgreSQL patterns.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgPatterns {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for PgPatterns {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        // to_timestamp's result carries the session's time zone.
        let inner = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(PgPatterns {
            inner: Arc::new(inner),
        }))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() < 2 || !postgres_patterns(&args.args[1..]) {
            return self.inner.invoke_with_args(args);
        }
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.inner.name() {
            "to_char" => Arc::new(to_char(&arrays)?),
            "to_date" => Arc::new(to_date(&arrays)?),
            _ => {
                let tz = match args.return_type() {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                Arc::new(to_timestamp(&arrays, tz.as_deref())?.with_timezone_opt(tz))
            }
        };
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// Whether the pattern arguments are PostgreSQL's: no pattern contains `%`.
fn postgres_patterns(patterns: &[ColumnarValue]) -> bool {
    patterns.iter().all(|p| match p {
        ColumnarValue::Scalar(s) => match s {
            ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                v.as_deref().is_none_or(|v| !v.contains('%'))
            }
            ScalarValue::Null => true,
            _ => false,
        },
        ColumnarValue::Array(a) => match strings(a) {
            Ok(s) => s.iter().all(|v| v.is_none_or(|v| !v.contains('%'))),
            Err(_) => false,
        },
    })
}

fn strings(a: &ArrayRef) -> Result<StringArray> {
    let cast = arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

fn error(message: String) -> DataFusionError {
    DataFusionError::Execution(message)
}

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Field {
        field: Field,
        fill: bool,
    },
    Literal(String),
    /// Text in double quotes: copied when formatting, skipped when reading.
    Quoted(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Upper,
    Title,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Year4,
    Year3,
    Year2,
    Year1,
    IsoYear,
    Century,
    Month,
    MonthName(Case),
    MonthAbbrev(Case),
    DayOfYear,
    Day,
    WeekDay,
    IsoWeekDay,
    DayName(Case),
    DayAbbrev(Case),
    Week,
    IsoWeek,
    Quarter,
    Hour24,
    Hour12,
    Minute,
    Second,
    Milli,
    Micro,
    /// `AM`/`PM` (`dots`: `A.M.`), in upper or lower case.
    Meridian {
        upper: bool,
        dots: bool,
    },
}

/// Patterns whose spelling decides the case of the output, tried before the
/// case-insensitive numeric ones; longest first where one is a prefix of another.
const CASED: [(&str, Field); 20] = [
    ("MONTH", Field::MonthName(Case::Upper)),
    ("Month", Field::MonthName(Case::Title)),
    ("month", Field::MonthName(Case::Lower)),
    ("MON", Field::MonthAbbrev(Case::Upper)),
    ("Mon", Field::MonthAbbrev(Case::Title)),
    ("mon", Field::MonthAbbrev(Case::Lower)),
    ("DAY", Field::DayName(Case::Upper)),
    ("Day", Field::DayName(Case::Title)),
    ("day", Field::DayName(Case::Lower)),
    ("DY", Field::DayAbbrev(Case::Upper)),
    ("Dy", Field::DayAbbrev(Case::Title)),
    ("dy", Field::DayAbbrev(Case::Lower)),
    (
        "A.M.",
        Field::Meridian {
            upper: true,
            dots: true,
        },
    ),
    (
        "P.M.",
        Field::Meridian {
            upper: true,
            dots: true,
        },
    ),
    (
        "a.m.",
        Field::Meridian {
            upper: false,
            dots: true,
        },
    ),
    (
        "p.m.",
        Field::Meridian {
            upper: false,
            dots: true,
        },
    ),
    (
        "AM",
        Field::Meridian {
            upper: true,
            dots: false,
        },
    ),
    (
        "PM",
        Field::Meridian {
            upper: true,
            dots: false,
        },
    ),
    (
        "am",
        Field::Meridian {
            upper: false,
            dots: false,
        },
    ),
    (
        "pm",
        Field::Meridian {
            upper: false,
            dots: false,
        },
    ),
];

/// Numeric patterns, matched in upper case; longest first.
const NUMERIC: [(&str, Field); 21] = [
    ("IYYY", Field::IsoYear),
    ("HH24", Field::Hour24),
    ("HH12", Field::Hour12),
    ("YYYY", Field::Year4),
    ("YYY", Field::Year3),
    ("DDD", Field::DayOfYear),
    ("YY", Field::Year2),
    ("CC", Field::Century),
    ("MM", Field::Month),
    ("DD", Field::Day),
    ("ID", Field::IsoWeekDay),
    ("WW", Field::Week),
    ("IW", Field::IsoWeek),
    ("HH", Field::Hour12),
    ("SS", Field::Second),
    ("MS", Field::Milli),
    ("US", Field::Micro),
    ("Y", Field::Year1),
    ("D", Field::WeekDay),
    ("Q", Field::Quarter),
    ("MI", Field::Minute),
];

/// Splits a pattern into tokens.
fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut rest = pattern;
    let mut literal = String::new();
    let flush = |literal: &mut String, out: &mut Vec<Token>| {
        if !literal.is_empty() {
            out.push(Token::Literal(std::mem::take(literal)));
        }
    };
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            flush(&mut literal, &mut out);
            let mut text = String::new();
            let mut chars = rest[1..].char_indices();
            let mut end = rest.len();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            text.push(next);
                        }
                    }
                    '"' => {
                        end = i + 2;
                        break;
                    }
                    other => text.push(other),
                }
            }
            out.push(Token::Quoted(text));
            rest = &rest[end.min(rest.len())..];
            continue;
        }
        let (fill, body) = match rest.get(..2) {
            Some(p) if p.eq_ignore_ascii_case("FM") => (false, &rest[2..]),
            _ => (true, rest),
        };
        if let Some((len, field)) = field_at(body) {
            flush(&mut literal, &mut out);
            out.push(Token::Field { field, fill });
            rest = &body[len..];
            continue;
        }
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut literal, &mut out);
    out
}

fn field_at(text: &str) -> Option<(usize, Field)> {
    for (p, f) in CASED {
        if text.starts_with(p) {
            return Some((p.len(), f));
        }
    }
    for (p, f) in NUMERIC {
        if text
            .get(..p.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(p))
        {
            return Some((p.len(), f));
        }
    }
    None
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn cased(name: &str, case: Case) -> String {
    match case {
        Case::Upper => name.to_uppercase(),
        Case::Title => name.to_string(),
        Case::Lower => name.to_lowercase(),
    }
}

/// A zero-padded number, or the bare number with `FM`.
fn number(out: &mut String, value: i64, width: usize, fill: bool) {
    if fill {
        if value < 0 {
            out.push_str(&format!("-{:0width$}", -value));
        } else {
            out.push_str(&format!("{value:0width$}"));
        }
    } else {
        out.push_str(&value.to_string());
    }
}

/// A name, blank-padded to 9 characters unless `FM`.
fn name(out: &mut String, text: String, fill: bool) {
    if fill {
        out.push_str(&format!("{text:<9}"));
    } else {
        out.push_str(&text);
    }
}

/// Formats a date and time with a pattern, as PostgreSQL's `to_char`.
fn format(t: &NaiveDateTime, pattern: &[Token]) -> String {
    let mut out = String::new();
    for token in pattern {
        let (field, fill) = match token {
            Token::Literal(s) | Token::Quoted(s) => {
                out.push_str(s);
                continue;
            }
            Token::Field { field, fill } => (*field, *fill),
        };
        let year = i64::from(t.year());
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => i64::from(h),
        };
        match field {
            Field::Year4 => number(&mut out, year, 4, fill),
            Field::Year3 => number(&mut out, year % 1000, 3, fill),
            Field::Year2 => number(&mut out, year % 100, 2, fill),
            Field::Year1 => number(&mut out, year % 10, 1, fill),
            Field::IsoYear => number(&mut out, i64::from(t.iso_week().year()), 4, fill),
            Field::Century => {
                let c = if year > 0 {
                    (year + 99) / 100
                } else {
                    year / 100 - 1
                };
                number(&mut out, c, 2, fill)
            }
            Field::Month => number(&mut out, i64::from(t.month()), 2, fill),
            Field::MonthName(case) => {
                name(&mut out, cased(MONTHS[t.month0() as usize], case), fill)
            }
            Field::MonthAbbrev(case) => {
                out.push_str(&cased(&MONTHS[t.month0() as usize][..3], case))
            }
            Field::DayOfYear => number(&mut out, i64::from(t.ordinal()), 3, fill),
            Field::Day => number(&mut out, i64::from(t.day()), 2, fill),
            Field::WeekDay => number(
                &mut out,
                i64::from(t.weekday().num_days_from_sunday() + 1),
                1,
                fill,
            ),
            Field::IsoWeekDay => number(
                &mut out,
                i64::from(t.weekday().number_from_monday()),
                1,
                fill,
            ),
            Field::DayName(case) => name(
                &mut out,
                cased(DAYS[t.weekday().num_days_from_sunday() as usize], case),
                fill,
            ),
            Field::DayAbbrev(case) => out.push_str(&cased(
                &DAYS[t.weekday().num_days_from_sunday() as usize][..3],
                case,
            )),
            Field::Week => number(&mut out, i64::from(t.ordinal0() / 7 + 1), 2, fill),
            Field::IsoWeek => number(&mut out, i64::from(t.iso_week().week()), 2, fill),
            Field::Quarter => number(&mut out, i64::from(t.month0() / 3 + 1), 1, fill),
            Field::Hour24 => number(&mut out, i64::from(t.hour()), 2, fill),
            Field::Hour12 => number(&mut out, hour12, 2, fill),
            Field::Minute => number(&mut out, i64::from(t.minute()), 2, fill),
            Field::Second => number(&mut out, i64::from(t.second()), 2, fill),
            Field::Milli => number(
                &mut out,
                i64::from(t.nanosecond() % 1_000_000_000 / 1_000_000),
                3,
                fill,
            ),
            Field::Micro => number(
                &mut out,
                i64::from(t.nanosecond() % 1_000_000_000 / 1_000),
                6,
                fill,
            ),
            Field::Meridian { upper, dots } => {
                let pm = t.hour() >= 12;
                let s = match (pm, dots) {
                    (false, false) => "AM",
                    (true, false) => "PM",
                    (false, true) => "A.M.",
                    (true, true) => "P.M.",
                };
                out.push_str(&if upper {
                    s.to_string()
                } else {
                    s.to_lowercase()
                });
            }
        }
    }
    out
}

/// The fields read from a text.
#[derive(Debug, Default)]
struct Read {
    year: Option<i32>,
    /// Only the last digits were given (`YY`, `YYY`, `Y`): PostgreSQL picks the year
    /// nearest 2020 with them.
    year_digits: Option<u32>,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    hour: Option<u32>,
    twelve_hour: bool,
    pm: Option<bool>,
    minute: Option<u32>,
    second: Option<u32>,
    nanos: Option<u32>,
}

fn is_separator(c: char) -> bool {
    !c.is_alphanumeric()
}

/// Reads up to `max` digits (after optional spaces and, for years, a sign).
fn digits(text: &str, max: usize) -> Option<(&str, &str)> {
    let text = text.trim_start_matches(' ');
    let end = text
        .char_indices()
        .take(max)
        .take_while(|(_, c)| c.is_ascii_digit())
        .map(|(i, c)| i + c.len_utf8())
        .last()?;
    Some((&text[..end], &text[end..]))
}

fn name_at<'a>(text: &'a str, names: &[&str], len: Option<usize>) -> Option<(usize, &'a str)> {
    let text = text.trim_start_matches(' ');
    names.iter().enumerate().find_map(|(i, n)| {
        let n = len.map_or(*n, |l| &n[..l]);
        text.get(..n.len())
            .filter(|t| t.eq_ignore_ascii_case(n))
            .map(|_| (i, &text[n.len()..]))
    })
}

/// Reads a text with a pattern, as PostgreSQL's `to_date`/`to_timestamp` do.
fn read(text: &str, pattern: &[Token]) -> std::result::Result<NaiveDateTime, String> {
    let mut r = Read::default();
    let mut rest = text;
    let bad = |what: &str, rest: &str| {
        format!(
            "invalid value \"{}\" for \"{what}\" reading \"{text}\"",
            rest.chars().take(12).collect::<String>()
        )
    };
    for token in pattern {
        if rest.is_empty() {
            break;
        }
        let field = match token {
            Token::Literal(s) => {
                for c in s.chars() {
                    match rest.chars().next() {
                        Some(r0) if r0 == c || (is_separator(c) && is_separator(r0)) => {
                            rest = &rest[r0.len_utf8()..];
                        }
                        _ if is_separator(c) => {}
                        Some(r0) => rest = &rest[r0.len_utf8()..],
                        None => break,
                    }
                }
                continue;
            }
            Token::Quoted(s) => {
                let n = s.chars().count();
                let skip: usize = rest.chars().take(n).map(char::len_utf8).sum();
                rest = &rest[skip..];
                continue;
            }
            Token::Field { field, .. } => *field,
        };
        let number =
            |rest: &mut &str, max: usize, what: &str| -> std::result::Result<u32, String> {
                let (d, after) = digits(rest, max).ok_or_else(|| bad(what, rest))?;
                *rest = after;
                d.parse::<u32>().map_err(|_| bad(what, d))
            };
        match field {
            Field::Year4 | Field::IsoYear => {
                let negative = rest.trim_start_matches(' ').starts_with('-');
                if negative {
                    rest = &rest.trim_start_matches(' ')[1..];
                }
                let y = number(&mut rest, 4, "YYYY")? as i32;
                r.year = Some(if negative { -y } else { y });
            }
            Field::Year3 => {
                r.year = Some(number(&mut rest, 3, "YYY")? as i32);
                r.year_digits = Some(3);
            }
            Field::Year2 => {
                r.year = Some(number(&mut rest, 2, "YY")? as i32);
                r.year_digits = Some(2);
            }
            Field::Year1 => {
                r.year = Some(number(&mut rest, 1, "Y")? as i32);
                r.year_digits = Some(1);
            }
            Field::Century => {
                number(&mut rest, 2, "CC")?;
            }
            Field::Month => r.month = Some(number(&mut rest, 2, "MM")?),
            Field::MonthName(_) => {
                let (i, after) = name_at(rest, &MONTHS, None)
                    .or_else(|| name_at(rest, &MONTHS, Some(3)))
                    .ok_or_else(|| bad("Month", rest))?;
                r.month = Some(i as u32 + 1);
                rest = after;
            }
            Field::MonthAbbrev(_) => {
                let (i, after) = name_at(rest, &MONTHS, Some(3)).ok_or_else(|| bad("Mon", rest))?;
                r.month = Some(i as u32 + 1);
                rest = after;
            }
            Field::DayOfYear => r.day_of_year = Some(number(&mut rest, 3, "DDD")?),
            Field::Day => r.day = Some(number(&mut rest, 2, "DD")?),
            Field::WeekDay | Field::IsoWeekDay | Field::Quarter => {
                number(&mut rest, 1, "D")?;
            }
            Field::Week | Field::IsoWeek => {
                number(&mut rest, 2, "WW")?;
            }
            Field::DayName(_) => {
                let (_, after) = name_at(rest, &DAYS, None)
                    .or_else(|| name_at(rest, &DAYS, Some(3)))
                    .ok_or_else(|| bad("Day", rest))?;
                rest = after;
            }
            Field::DayAbbrev(_) => {
                let (_, after) = name_at(rest, &DAYS, Some(3)).ok_or_else(|| bad("Dy", rest))?;
                rest = after;
            }
            Field::Hour24 => r.hour = Some(number(&mut rest, 2, "HH24")?),
            Field::Hour12 => {
                r.hour = Some(number(&mut rest, 2, "HH12")?);
                r.twelve_hour = true;
            }
            Field::Minute => r.minute = Some(number(&mut rest, 2, "MI")?),
            Field::Second => r.second = Some(number(&mut rest, 2, "SS")?),
            Field::Milli | Field::Micro => {
                let max = if field == Field::Milli { 3 } else { 6 };
                let (d, after) = digits(rest, max).ok_or_else(|| bad("US", rest))?;
                rest = after;
                let scaled = format!("{d:0<9}");
                let nanos = scaled.parse::<u32>().map_err(|_| bad("US", d))?;
                r.nanos = Some(r.nanos.unwrap_or(0) + nanos);
            }
            Field::Meridian { dots, .. } => {
                let t = rest.trim_start_matches(' ');
                let n = if dots { 4 } else { 2 };
                let word = t.get(..n).ok_or_else(|| bad("AM", rest))?.to_uppercase();
                r.pm = match word.replace('.', "").as_str() {
                    "AM" => Some(false),
                    "PM" => Some(true),
                    _ => return Err(bad("AM", rest)),
                };
                rest = &t[n..];
            }
        }
    }
    finish(&r, text)
}

fn finish(r: &Read, text: &str) -> std::result::Result<NaiveDateTime, String> {
    let out_of_range = || format!("date/time field value out of range: \"{text}\"");
    let mut year = r.year.unwrap_or(1);
    if let Some(n) = r.year_digits {
        // PostgreSQL: two digits are 1970–2069, three are 1100–2099, one is 2000s.
        year = match n {
            2 if year < 70 => 2000 + year,
            2 => 1900 + year,
            3 if year < 100 => 2000 + year,
            3 => 1000 + year,
            _ => 2000 + year,
        };
    }
    let date = match (r.day_of_year, r.month, r.day) {
        (Some(doy), None, None) => NaiveDate::from_yo_opt(year, doy),
        _ => NaiveDate::from_ymd_opt(year, r.month.unwrap_or(1), r.day.unwrap_or(1)),
    }
    .ok_or_else(out_of_range)?;
    let mut hour = r.hour.unwrap_or(0);
    if r.twelve_hour || r.pm.is_some() {
        if !(1..=12).contains(&hour) && r.hour.is_some() {
            return Err(format!(
                "hour \"{hour}\" is invalid for the 12-hour clock reading \"{text}\""
            ));
        }
        hour %= 12;
        if r.pm == Some(true) {
            hour += 12;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(
        hour,
        r.minute.unwrap_or(0),
        r.second.unwrap_or(0),
        r.nanos.unwrap_or(0),
    )
    .ok_or_else(out_of_range)?;
    Ok(date.and_time(time))
}

/// The pattern of row `i` among the pattern arrays: the first that reads the text,
/// or the last one's error.
fn read_any(text: &str, patterns: &[StringArray], i: usize) -> Result<Option<NaiveDateTime>> {
    let mut last = None;
    for p in patterns {
        if p.is_null(i) {
            return Ok(None);
        }
        match read(text, &tokens(p.value(i))) {
            Ok(t) => return Ok(Some(t)),
            Err(e) => last = Some(e),
        }
    }
    Err(error(last.unwrap_or_else(|| "no pattern".to_string())))
}

fn patterns(arrays: &[ArrayRef]) -> Result<Vec<StringArray>> {
    arrays[1..].iter().map(strings).collect()
}

fn to_date(arrays: &[ArrayRef]) -> Result<Date32Array> {
    let texts = strings(&arrays[0])?;
    let patterns = patterns(arrays)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (0..texts.len())
        .map(|i| {
            if texts.is_null(i) {
                return Ok(None);
            }
            Ok(read_any(texts.value(i), &patterns, i)?
                .map(|t| (t.date() - epoch).num_days() as i32))
        })
        .collect()
}

fn to_timestamp(arrays: &[ArrayRef], tz: Option<&str>) -> Result<TimestampNanosecondArray> {
    let texts = strings(&arrays[0])?;
    let patterns = patterns(arrays)?;
    let zone: Option<arrow::array::timezone::Tz> = tz.map(str::parse).transpose()?;
    (0..texts.len())
        .map(|i| {
            if texts.is_null(i) {
                return Ok(None);
            }
            let Some(t) = read_any(texts.value(i), &patterns, i)? else {
                return Ok(None);
            };
            // The text is a time of the session's zone.
            let utc = match &zone {
                Some(z) => z
                    .from_local_datetime(&t)
                    .earliest()
                    .ok_or_else(|| error(format!("{t} does not exist in {}", tz.unwrap_or(""))))?
                    .naive_utc(),
                None => t,
            };
            utc.and_utc()
                .timestamp_nanos_opt()
                .map(Some)
                .ok_or_else(|| error(format!("{t} is out of the timestamp range")))
        })
        .collect()
}

/// The wall-clock times of a date or timestamp array (timestamps with a zone in
/// that zone).
fn wall_clock(a: &ArrayRef) -> Result<Vec<Option<NaiveDateTime>>> {
    let to_ns = |a: &ArrayRef, tz: &Option<Arc<str>>| -> Result<Vec<Option<NaiveDateTime>>> {
        let ns = arrow::compute::cast(a, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
        let ns = ns.as_primitive::<arrow::datatypes::TimestampNanosecondType>();
        let zone: Option<arrow::array::timezone::Tz> = tz.as_deref().map(str::parse).transpose()?;
        Ok(ns
            .iter()
            .map(|v| {
                v.map(|v| {
                    let utc = DateTime::from_timestamp_nanos(v);
                    match &zone {
                        Some(z) => utc.with_timezone(z).naive_local(),
                        None => utc.naive_utc(),
                    }
                })
            })
            .collect())
    };
    match a.data_type() {
        DataType::Date32 | DataType::Date64 => to_ns(a, &None),
        DataType::Timestamp(unit, tz) => {
            // Casting away the zone keeps the instant; the zone is applied after.
            let plain = arrow::compute::cast(a, &DataType::Timestamp(*unit, None))?;
            to_ns(&plain, tz)
        }
        DataType::Null => Ok(vec![None; a.len()]),
        other => Err(error(format!(
            "to_char with a PostgreSQL pattern formats dates and timestamps, not {other}"
        ))),
    }
}

fn to_char(arrays: &[ArrayRef]) -> Result<StringArray> {
    let values = wall_clock(&arrays[0])?;
    let patterns = strings(&arrays[1])?;
    Ok(values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(t) if patterns.is_valid(i) => Some(format(t, &tokens(patterns.value(i)))),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_micro_opt(h, mi, s, us))
            .expect("a valid time")
    }

    fn fmt(t: NaiveDateTime, p: &str) -> String {
        format(&t, &tokens(p))
    }

    // Expected strings are PostgreSQL 15's answers to the same calls.
    #[test]
    fn formats_as_postgresql() {
        let t = at(2025, 3, 9, 14, 5, 7, 123456);
        assert_eq!(
            fmt(t, "YYYY-MM-DD HH24:MI:SS.US"),
            "2025-03-09 14:05:07.123456"
        );
        assert_eq!(fmt(t, "yyyy-mm-dd"), "2025-03-09");
        assert_eq!(fmt(t, "Q"), "1");
        assert_eq!(fmt(t, "YYYY\"年\"MM\"月\""), "2025年03月");
        assert_eq!(fmt(t, "Month DD"), "March     09");
        assert_eq!(fmt(t, "FMMonth FMDD"), "March 9");
        assert_eq!(
            fmt(t, "Dy, DD Mon YYYY HH12:MI AM"),
            "Sun, 09 Mar 2025 02:05 PM"
        );
        assert_eq!(fmt(t, "D ID DDD WW IW"), "1 7 068 10 10");
        assert_eq!(fmt(t, "MS"), "123");
    }

    #[test]
    fn reads_as_postgresql() {
        let r = |s: &str, p: &str| read(s, &tokens(p));
        assert_eq!(
            r("2015-01-01", "YYYY-MM-DD"),
            Ok(at(2015, 1, 1, 0, 0, 0, 0))
        );
        assert_eq!(r("2015-1-5", "YYYY-MM-DD"), Ok(at(2015, 1, 5, 0, 0, 0, 0)));
        assert_eq!(
            r("2015-01-01 13:04:05.5", "YYYY-MM-DD HH24:MI:SS.US"),
            Ok(at(2015, 1, 1, 13, 4, 5, 500000))
        );
        assert_eq!(r("2015", "YYYY-MM-DD"), Ok(at(2015, 1, 1, 0, 0, 0, 0)));
        assert_eq!(
            r("05 Dec 2000", "DD Mon YYYY"),
            Ok(at(2000, 12, 5, 0, 0, 0, 0))
        );
        assert_eq!(
            r("2015/06/30", "YYYY-MM-DD"),
            Ok(at(2015, 6, 30, 0, 0, 0, 0))
        );
        assert_eq!(r("12:30 PM", "HH12:MI AM"), Ok(at(1, 1, 1, 12, 30, 0, 0)));
        assert_eq!(r("12:30 AM", "HH12:MI AM"), Ok(at(1, 1, 1, 0, 30, 0, 0)));
        assert_eq!(
            r("2025年3月", "YYYY\"年\"MM\"月\""),
            Ok(at(2025, 3, 1, 0, 0, 0, 0))
        );
        assert!(r("2015-02-30", "YYYY-MM-DD").is_err());
        assert!(r("abc", "YYYY").is_err());
    }
}
