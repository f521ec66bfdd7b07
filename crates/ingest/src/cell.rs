//! One source cell as the file gave it, before any rule is applied: text, a typed
//! XLSX number, boolean or date, or nothing. Cells keep their original form so that a
//! quarantined row can show exactly what arrived.

use chrono::NaiveDate;
use serde_json::Value as Json;
use townstat_domain::Rejection;
use townstat_domain::reason::Reason;
use townstat_domain::schema::{ColumnSchema, ColumnType};

/// A raw cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value at all.
    Empty,
    /// Text as read (not yet normalized).
    Text(String),
    /// A typed number (XLSX, JSON).
    Number(f64),
    /// A typed boolean (XLSX, JSON).
    Bool(bool),
    /// A typed date (XLSX date cells).
    Date(NaiveDate),
    /// A cell that holds no usable value although it is not empty: an XLSX error
    /// (`#DIV/0!`) or a formula never computed. The text names the cell and the
    /// problem (`D7: #DIV/0!`); the row is quarantined under the column's reason.
    Invalid(String),
}

impl Cell {
    /// The cell as text for the rules: numbers without a spurious `.0` when whole
    /// (`140214.0` is `140214`), dates in ISO form. `None` when empty.
    pub fn text(&self) -> Option<String> {
        match self {
            Cell::Empty => None,
            Cell::Text(s) => Some(s.clone()),
            Cell::Number(n) => Some(format_number(*n)),
            Cell::Bool(b) => Some(if *b { "true" } else { "false" }.to_string()),
            Cell::Date(d) => Some(d.format("%Y-%m-%d").to_string()),
            Cell::Invalid(why) => Some(why.clone()),
        }
    }

    /// The cell as JSON for `quarantine.raw`.
    pub fn to_json(&self) -> Json {
        match self {
            Cell::Empty => Json::Null,
            Cell::Text(s) => Json::String(s.clone()),
            Cell::Number(n) => serde_json::Number::from_f64(*n)
                .map(Json::Number)
                .unwrap_or_else(|| Json::String(n.to_string())),
            Cell::Bool(b) => Json::Bool(*b),
            Cell::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
            Cell::Invalid(why) => Json::String(why.clone()),
        }
    }
}

/// Why a row with a [`Cell::Invalid`] in a column is quarantined: the reason of the
/// column's type (a date column's `invalid_date`, a number's `invalid_number`, …; a
/// text column has no reason of its own and takes `missing_required`: it has no usable
/// value), with a message naming the column and the cell (`revenue: D7: #DIV/0!`).
pub fn invalid_rejection(col: &ColumnSchema, why: &str) -> Rejection {
    let reason = match col.ty {
        ColumnType::Date | ColumnType::Month | ColumnType::Year | ColumnType::YearOrDate => {
            Reason::InvalidDate
        }
        ColumnType::Money | ColumnType::Count | ColumnType::Int64 | ColumnType::Float64 => {
            Reason::InvalidNumber
        }
        ColumnType::Uscc => Reason::InvalidUscc,
        ColumnType::PatentNo => Reason::InvalidPatentNo,
        ColumnType::Enum | ColumnType::Bool => Reason::UnknownEnumValue,
        ColumnType::IndustryCode => Reason::UnknownIndustryCode,
        ColumnType::Division | ColumnType::Town | ColumnType::Region => Reason::UnknownDivision,
        ColumnType::Text | ColumnType::List | ColumnType::Timestamp | ColumnType::TextList => {
            Reason::MissingRequired
        }
    };
    Rejection::new(reason, format!("{}: {why}", col.name))
}

/// Formats a float the way a person reads it: whole numbers without a fraction,
/// others in the shortest form that round-trips (never in exponent notation).
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e17 {
        if n == 0.0 {
            format!("{n:.0}") // keeps the sign of -0
        } else {
            // A whole float below 1e17 converts to i64 exactly, and i64's digits come
            // without `{:.0}`'s exact-decimal (bignum) path: it was 3 % of NDJSON ingest.
            (n as i64).to_string()
        }
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(Cell::Number(140214.0).text().as_deref(), Some("140214"));
        assert_eq!(Cell::Number(1234.5).text().as_deref(), Some("1234.5"));
        assert_eq!(Cell::Number(0.1).text().as_deref(), Some("0.1"));
        assert_eq!(Cell::Empty.text(), None);
    }

    #[test]
    fn whole_numbers_read_as_before() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            9.007_199_254_740_993e15,
            99_999_999_999_999_990.0,
        ];
        let mut x = 1.0_f64;
        while x < 1e17 {
            values.extend([x, -x, x.floor(), (x * 7.3).floor(), -(x * 3.1).floor()]);
            x *= 1.9;
        }
        for n in values
            .into_iter()
            .filter(|n| n.fract() == 0.0 && n.abs() < 1e17)
        {
            assert_eq!(format_number(n), format!("{n:.0}"), "{n:e}");
        }
    }
}
