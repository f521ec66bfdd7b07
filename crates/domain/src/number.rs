//! Numbers and money. Amounts are exact: text is parsed into a decimal mantissa and
//! scale and converted to 元 cents (`i128`, stored as `Decimal128(20,2)`), never through
//! floating point, so `1,234.56万元` is exactly 12,345,600.00 元.
//!
//! Every parser here is total: any text gives a value or a [`Rejection`], never a panic
//! or a wrapped figure (`tests/no_panic.rs` feeds them arbitrary text). Three bounds
//! make that so, and keep every sum the marts take exact (docs/decisions.md,
//! "Plausible ranges"):
//!
//! - a number has at most [`MAX_DIGITS`] significant digits and at most [`MAX_SCALE`]
//!   digits after the point, so its mantissa and `10^scale` always fit `i128`;
//! - a count is within ±[`MAX_COUNT`];
//! - an amount is within ±[`MAX_AMOUNT_CENTS`] (10^15 元).
//!
//! Beyond them a cell is `invalid_number`.

use crate::reason::{Reason, Rejection};

/// Largest amount that fits `Decimal128(20,2)`, in cents.
pub const MAX_CENTS: i128 = 10i128.pow(20) - 1;

/// Most significant digits a number may have (10^36 < i128::MAX ≈ 1.7·10^38).
pub const MAX_DIGITS: usize = 36;

/// Most digits a number may have after the point, trailing zeros included. No register
/// writes more; `0.` and 130 zeros, or a JSON `1e-200` written out in full, are damage,
/// not data, and are `invalid_number` even where their value is 0.
pub const MAX_SCALE: u32 = 36;

/// Largest count (employees, insured persons, hires, separations, trainees, applicants)
/// a row may carry: 10,000,000. China's largest employer has about 1.5 million staff;
/// anything above ten million is a typing or export error, and with this bound the
/// marts' BIGINT sums cannot wrap (a sum would need more than 9·10^11 rows).
pub const MAX_COUNT: i64 = 10_000_000;

/// Largest amount a row may carry, in cents: 10^15 元 (a thousand trillion yuan, about
/// seven times China's GDP; the largest Chinese company's revenue is about 3.5·10^12
/// 元). It leaves a Decimal128(20,2) column (up to 10^18 元) room for sums of a
/// thousand rows at the bound, and Decimal128(38,2) sums room for 10^21 rows.
pub const MAX_AMOUNT_CENTS: i128 = 10i128.pow(17);

/// A money unit: how many 元 one of it is, as a power of ten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 元
    Yuan,
    /// 万元 (10^4 元)
    Wan,
    /// 亿元 (10^8 元)
    Yi,
}

impl Unit {
    /// Power of ten of 元 in one unit.
    pub fn exponent(self) -> u32 {
        match self {
            Unit::Yuan => 0,
            Unit::Wan => 4,
            Unit::Yi => 8,
        }
    }

    /// Parses a unit name as written in cells, headers and pipelines.
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "元" | "yuan" | "人民币元" => Some(Unit::Yuan),
            "万元" | "万" | "wan" => Some(Unit::Wan),
            "亿元" | "亿" | "yi" => Some(Unit::Yi),
            _ => None,
        }
    }

    /// The unit a header names in brackets or as a suffix: `营业收入(万元)`,
    /// `金额（亿元）`, `注册资本万元`. Headers are normalized, so brackets are ASCII.
    pub fn from_header(header: &str) -> Option<Unit> {
        let h = crate::text::normalize(header);
        for (needle, unit) in [
            ("亿元", Unit::Yi),
            ("万元", Unit::Wan),
            ("(元)", Unit::Yuan),
        ] {
            if h.contains(needle) {
                return Some(unit);
            }
        }
        if h.ends_with("(亿)") {
            return Some(Unit::Yi);
        }
        if h.ends_with("(万)") {
            return Some(Unit::Wan);
        }
        None
    }
}

/// An exact decimal: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    /// The digits as an integer, with sign.
    pub mantissa: i128,
    /// How many of the digits are after the point.
    pub scale: u32,
}

impl Decimal {
    /// Whether the value has a non-zero fractional part.
    pub fn has_fraction(&self) -> bool {
        match 10i128.checked_pow(self.scale) {
            Some(div) => self.mantissa % div != 0,
            // 10^scale exceeds any i128, so every non-zero mantissa is all fraction.
            None => self.mantissa != 0,
        }
    }

    /// The integer part (truncated toward zero).
    pub fn trunc(&self) -> i128 {
        match 10i128.checked_pow(self.scale) {
            Some(div) => self.mantissa / div,
            None => 0,
        }
    }

    /// The value as f64 (for ratios only; money never goes through this).
    pub fn to_f64(&self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }
}

/// Parses plain decimal text: optional sign, digits with optional `,` thousands
/// groups, optional fraction. Returns `None` for anything else (`12.3.4`, `约50`,
/// `1e3`, `NaN`, `inf`), and for more than [`MAX_DIGITS`] significant digits or more
/// than [`MAX_SCALE`] digits after the point.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int_part.is_empty() && frac_part.is_none_or(str::is_empty) {
        return None;
    }
    let int_digits: String = if int_part.contains(',') {
        let groups: Vec<&str> = int_part.split(',').collect();
        let ok = !groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3);
        if !ok {
            return None;
        }
        groups.concat()
    } else {
        int_part.to_string()
    };
    let frac = frac_part.unwrap_or("");
    if frac.len() > MAX_SCALE as usize {
        return None;
    }
    if !int_digits.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int_digits}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > MAX_DIGITS {
        return None;
    }
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(Decimal {
        mantissa: if negative { -mantissa } else { mantissa },
        scale: frac.len() as u32,
    })
}

/// Splits normalized text into a leading numeric part and a trailing suffix.
fn split_suffix(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+')))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    (s[..end].trim_end(), s[end..].trim_start())
}

fn invalid_number(raw: &str, why: &str) -> Rejection {
    Rejection::new(Reason::InvalidNumber, format!("\"{raw}\" is not {why}"))
}

/// Whether a suffix is a scientific-notation exponent (`e308`, `E+11`, `e-200`). Such
/// a cell is not written exactly (Excel shows 12-digit figures as `1.23E+11`), so it is
/// `invalid_number`, not an unknown unit.
fn is_exponent(suffix: &str) -> bool {
    let Some(rest) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn scientific(raw: &str) -> Rejection {
    invalid_number(
        raw,
        "an exact figure (scientific notation is not accepted: write the digits)",
    )
}

/// Parses a number for a column that is not money. `ratio` allows a trailing `%`
/// (the value is then divided by 100).
pub fn parse_number(raw: &str, ratio: bool) -> Result<Decimal, Rejection> {
    let s = crate::text::normalize(raw);
    let (num, suffix) = split_suffix(&s);
    if is_exponent(suffix) {
        return Err(scientific(raw));
    }
    let value = parse_decimal(num).ok_or_else(|| invalid_number(raw, "a number"))?;
    match suffix {
        "" => Ok(value),
        "%" if ratio => Ok(Decimal {
            mantissa: value.mantissa,
            scale: value.scale + 2,
        }),
        _ => Err(Rejection::new(
            Reason::InvalidUnit,
            format!("\"{raw}\" has the unknown unit \"{suffix}\""),
        )),
    }
}

/// Parses a count (employees, insured persons, hires): an integer, optionally written
/// with the unit 人 or 人次; `12.0` is 12, `12.5` is `invalid_number`, and so is a
/// count beyond ±[`MAX_COUNT`].
pub fn parse_count(raw: &str) -> Result<i64, Rejection> {
    let s = crate::text::normalize(raw);
    let s = s
        .strip_suffix("人次")
        .or_else(|| s.strip_suffix('人'))
        .unwrap_or(&s)
        .trim_end();
    let value = parse_number(s, false).map_err(|mut e| {
        e.message = e
            .message
            .replace(&format!("\"{s}\""), &format!("\"{raw}\""));
        e
    })?;
    if value.has_fraction() {
        return Err(invalid_number(raw, "a whole number"));
    }
    match i64::try_from(value.trunc()) {
        Ok(n) if n.unsigned_abs() <= MAX_COUNT as u64 => Ok(n),
        _ => Err(invalid_number(
            raw,
            "a plausible count (at most 10,000,000 in absolute value)",
        )),
    }
}

/// Parses money into 元 cents. The unit comes from the cell's suffix (`3.5亿`,
/// `1200万元`, `800元`), else `header_unit`, else `default_unit`. Amounts with more
/// than two decimals in 元 are rounded half away from zero to the cent. An amount
/// beyond ±[`MAX_AMOUNT_CENTS`] (10^15 元) is `invalid_number`.
pub fn parse_money(
    raw: &str,
    header_unit: Option<Unit>,
    default_unit: Unit,
) -> Result<i128, Rejection> {
    let s = crate::text::normalize(raw);
    let s = s
        .strip_prefix('¥')
        .or_else(|| s.strip_prefix("RMB"))
        .unwrap_or(&s)
        .trim_start();
    let (num, suffix) = split_suffix(s);
    if is_exponent(suffix) {
        return Err(scientific(raw));
    }
    let value = parse_decimal(num).ok_or_else(|| invalid_number(raw, "an amount"))?;
    let unit = if suffix.is_empty() {
        header_unit.unwrap_or(default_unit)
    } else {
        Unit::parse(suffix).ok_or_else(|| {
            Rejection::new(
                Reason::InvalidUnit,
                format!(
                    "\"{raw}\" has the unknown unit \"{suffix}\" (元, 万元 and 亿元 are known)"
                ),
            )
        })?
    };
    match to_cents(value, unit) {
        Some(cents) if cents.unsigned_abs() <= MAX_AMOUNT_CENTS as u128 => Ok(cents),
        _ => Err(invalid_number(
            raw,
            "a plausible amount (at most 10^15 元 in absolute value)",
        )),
    }
}

/// Converts an exact decimal in a unit to 元 cents, rounding half away from zero.
pub fn to_cents(value: Decimal, unit: Unit) -> Option<i128> {
    let shift = unit.exponent() as i64 + 2 - value.scale as i64;
    let cents = if shift >= 0 {
        value
            .mantissa
            .checked_mul(10i128.checked_pow(shift as u32)?)?
    } else {
        let div = match 10i128.checked_pow((-shift) as u32) {
            Some(div) => div,
            // 10^(scale - unit - 2) exceeds i128 and so twice any mantissa: the value
            // is below half a cent and rounds to 0.
            None => return Some(0),
        };
        let q = value.mantissa / div;
        let r = value.mantissa % div;
        // `|r| * 2 >= div` without the doubling, which could overflow.
        if r.unsigned_abs() >= div.unsigned_abs() - r.unsigned_abs() {
            q + value.mantissa.signum()
        } else {
            q
        }
    };
    (cents.unsigned_abs() <= MAX_CENTS as u128).then_some(cents)
}

/// Formats cents as 元 with two decimals (`1234.50`), the canonical text form.
pub fn format_cents(cents: i128) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(s: &str) -> Result<i128, Reason> {
        parse_money(s, None, Unit::Yuan).map_err(|e| e.reason)
    }

    #[test]
    fn money_units() {
        assert_eq!(money("3.5亿"), Ok(35_000_000_000));
        assert_eq!(money("1200万元"), Ok(1_200_000_000));
        assert_eq!(money("800元"), Ok(80_000));
        assert_eq!(money("1,234.5"), Ok(123_450));
        assert_eq!(money("¥12"), Ok(1200));
        assert_eq!(money("１２００万元"), Ok(1_200_000_000));
        assert_eq!(money("-5"), Ok(-500));
        assert_eq!(money("0.005"), Ok(1), "half rounds away from zero");
        assert_eq!(money("0.004"), Ok(0));
        assert_eq!(parse_money("5", Some(Unit::Wan), Unit::Yuan), Ok(5_000_000));
        assert_eq!(parse_money("5", None, Unit::Yi), Ok(50_000_000_000));
        assert_eq!(
            parse_money("5元", Some(Unit::Wan), Unit::Yi),
            Ok(500),
            "cell beats header"
        );
    }

    #[test]
    fn money_rejects() {
        assert_eq!(money("12吨"), Err(Reason::InvalidUnit));
        assert_eq!(money("1.5兆元"), Err(Reason::InvalidUnit));
        assert_eq!(money("五十万"), Err(Reason::InvalidNumber));
        assert_eq!(money("约50"), Err(Reason::InvalidNumber));
        assert_eq!(money("12.3.4"), Err(Reason::InvalidNumber));
        assert_eq!(money("1,23,4"), Err(Reason::InvalidNumber));
        assert_eq!(money("999999999999亿"), Err(Reason::InvalidNumber));
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("12"), Ok(12));
        assert_eq!(parse_count("12.0"), Ok(12));
        assert_eq!(parse_count("1,200人"), Ok(1200));
        assert_eq!(parse_count("-3"), Ok(-3));
        assert_eq!(
            parse_count("12.5").unwrap_err().reason,
            Reason::InvalidNumber
        );
        assert_eq!(
            parse_count("十二").unwrap_err().reason,
            Reason::InvalidNumber
        );
        assert_eq!(parse_count("12吨").unwrap_err().reason, Reason::InvalidUnit);
    }

    #[test]
    fn hostile_numbers_are_rejections_not_panics() {
        let zeros = format!("0.{}", "0".repeat(130));
        // JSON 1e-200 and 1e308 as the NDJSON reader writes them out.
        let tiny = format!("0.{}1", "0".repeat(199));
        let huge = format!("1{}", "0".repeat(308));
        for s in [
            zeros.as_str(),
            tiny.as_str(),
            huge.as_str(),
            "9223372036854775807",
            "-9223372036854775808",
            "170141183460469231731687303715884105727",
            "1e308",
            "1E2",
            "1.23E+11",
            "5e-3",
            "NaN",
            "inf",
            "-inf",
            "Infinity",
        ] {
            let e = parse_count(s).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidNumber, "{s}");
            assert!(e.message.contains(s), "{s}: {}", e.message);
            assert_eq!(money(s), Err(Reason::InvalidNumber), "{s}");
        }
        for s in ["10000001", "-10,000,001"] {
            assert_eq!(parse_count(s).unwrap_err().reason, Reason::InvalidNumber);
        }
        // The limits themselves.
        let scale_36 = format!("0.{}", "0".repeat(36));
        let scale_37 = format!("0.{}", "0".repeat(37));
        assert_eq!(parse_count(&scale_36), Ok(0));
        assert_eq!(
            parse_count(&scale_37).unwrap_err().reason,
            Reason::InvalidNumber
        );
        assert_eq!(money(&scale_36), Ok(0));
        assert_eq!(
            money(&format!("1{}", "0".repeat(35))),
            Err(Reason::InvalidNumber)
        );
        assert!(parse_decimal(&"9".repeat(36)).is_some());
        assert!(parse_decimal(&"9".repeat(37)).is_none());
        // Zero in every sign.
        for s in ["-0", "+0", "-0.0", "0.", ".0"] {
            assert_eq!(parse_count(s), Ok(0), "{s}");
            assert_eq!(money(s), Ok(0), "{s}");
        }
    }

    #[test]
    fn plausible_ranges() {
        assert_eq!(parse_count("10000000"), Ok(MAX_COUNT));
        assert_eq!(parse_count("-10,000,000人"), Ok(-MAX_COUNT));
        assert_eq!(money("1000000000000000"), Ok(MAX_AMOUNT_CENTS));
        assert_eq!(money("-1000000000000000"), Ok(-MAX_AMOUNT_CENTS));
        assert_eq!(money("10000000亿"), Ok(MAX_AMOUNT_CENTS));
        assert_eq!(
            parse_money("100000000000", Some(Unit::Wan), Unit::Yuan),
            Ok(MAX_AMOUNT_CENTS)
        );
        assert_eq!(money("1000000000000000.01"), Err(Reason::InvalidNumber));
        assert_eq!(money("1000000000000000.005"), Err(Reason::InvalidNumber));
        assert_eq!(money("10000000.0001亿"), Err(Reason::InvalidNumber));
        assert_eq!(money("-100000000000.01万"), Err(Reason::InvalidNumber));
        // 10^15 元 plus less than half a cent rounds to the bound.
        assert_eq!(money("1000000000000000.004"), Ok(MAX_AMOUNT_CENTS));
    }

    #[test]
    fn decimal_arithmetic_is_total() {
        let tiny = Decimal {
            mantissa: 5,
            scale: 200,
        };
        assert!(tiny.has_fraction());
        assert_eq!(tiny.trunc(), 0);
        let zero = Decimal {
            mantissa: 0,
            scale: u32::MAX,
        };
        assert!(!zero.has_fraction());
        assert_eq!(zero.trunc(), 0);
        let big = |mantissa, scale| Decimal { mantissa, scale };
        assert_eq!(to_cents(big(i128::MAX, 200), Unit::Yuan), Some(0));
        assert_eq!(to_cents(big(i128::MIN, 38), Unit::Yuan), Some(-170));
        assert_eq!(to_cents(big(i128::MAX, 2), Unit::Yuan), None);
        assert_eq!(to_cents(big(i128::MIN, 2), Unit::Yuan), None);
        assert_eq!(to_cents(big(i128::MAX, 0), Unit::Yi), None);
        assert_eq!(to_cents(big(5, 3), Unit::Yuan), Some(1));
        assert_eq!(to_cents(big(-5, 3), Unit::Yuan), Some(-1));
        assert_eq!(to_cents(big(-4, 3), Unit::Yuan), Some(0));
        assert_eq!(
            format_cents(i128::MIN),
            "-1701411834604692317316873037158841057.28"
        );
    }

    #[test]
    fn headers() {
        assert_eq!(Unit::from_header("营业收入(万元)"), Some(Unit::Wan));
        assert_eq!(Unit::from_header("金额（亿元）"), Some(Unit::Yi));
        assert_eq!(Unit::from_header("营业收入"), None);
        assert_eq!(Unit::from_header("注册资本(元)"), Some(Unit::Yuan));
    }

    #[test]
    fn ratios() {
        assert_eq!(parse_number("12.5%", true).unwrap().to_f64(), 0.125);
        assert_eq!(
            parse_number("12.5%", false).unwrap_err().reason,
            Reason::InvalidUnit
        );
        assert_eq!(format_cents(123_450), "1234.50");
        assert_eq!(format_cents(-5), "-0.05");
    }
}
