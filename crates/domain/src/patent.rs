//! Chinese patent application numbers: the 12-digit form used since 2003
//! (`YYYY T NNNNNNN . C`) and the older 8-digit form (`YY T NNNNN . C`), their check
//! characters, the type digit and the canonical form `201710601862.3`.

use crate::reason::{Reason, Rejection};

/// The three patent types the warehouse stores. PCT inventions count as inventions and
/// PCT utility models as utility models; the PCT route is kept in a separate flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatentType {
    /// 发明
    Invention,
    /// 实用新型
    UtilityModel,
    /// 外观设计
    Design,
}

impl PatentType {
    /// The canonical value stored in `patent.patent_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            PatentType::Invention => "invention",
            PatentType::UtilityModel => "utility_model",
            PatentType::Design => "design",
        }
    }

    /// Parses the canonical value.
    pub fn from_canonical(s: &str) -> Option<PatentType> {
        match s {
            "invention" => Some(PatentType::Invention),
            "utility_model" => Some(PatentType::UtilityModel),
            "design" => Some(PatentType::Design),
            _ => None,
        }
    }
}

/// A validated application number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationNo {
    /// Canonical form: the digits, a dot, the check character.
    pub canonical: String,
    /// The application year the number encodes.
    pub year: i32,
    /// The type the number encodes.
    pub patent_type: PatentType,
    /// Whether the type digit says the application entered through PCT (8 or 9).
    pub pct: bool,
}

const WEIGHTS_12: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
const WEIGHTS_8: [u32; 8] = [2, 3, 4, 5, 6, 7, 8, 9];

/// The check character of 8 or 12 digits: Σ dᵢ·wᵢ mod 11, 10 written `X`.
pub fn check_char(digits: &str) -> Option<char> {
    let weights: &[u32] = match digits.len() {
        12 => &WEIGHTS_12,
        8 => &WEIGHTS_8,
        _ => return None,
    };
    let mut sum = 0;
    for (c, w) in digits.chars().zip(weights) {
        sum += c.to_digit(10)? * w;
    }
    Some(match sum % 11 {
        10 => 'X',
        d => char::from_digit(d, 10)?,
    })
}

/// Parses an application number. Accepts `CN`/`ZL` prefixes, a missing dot and
/// spaces; rejects anything whose check character, year or type digit is wrong.
pub fn parse(raw: &str) -> Result<ApplicationNo, Rejection> {
    let bad = |why: &str| {
        Rejection::new(
            Reason::InvalidPatentNo,
            format!("\"{raw}\" is not a valid application number: {why}"),
        )
    };
    let mut s: String = crate::text::normalize(raw)
        .to_uppercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect();
    for prefix in ["CN", "ZL"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_string();
        }
    }
    let (digits, check) = match s.len() {
        13 | 9 if s.is_ascii() => s.split_at(s.len() - 1),
        _ => return Err(bad("expected 12 or 8 digits and a check character")),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the number part has a non-digit"));
    }
    let expected = check_char(digits).ok_or_else(|| bad("bad digits"))?;
    if !check.starts_with(expected) {
        return Err(bad(&format!(
            "check character is '{check}', expected '{expected}'"
        )));
    }
    let (year, type_digit) = if digits.len() == 12 {
        let year: i32 = digits[..4].parse().map_err(|_| bad("bad year"))?;
        if year < 2003 {
            return Err(bad("12-digit numbers start in 2003"));
        }
        (year, digits.as_bytes()[4])
    } else {
        let yy: i32 = digits[..2].parse().map_err(|_| bad("bad year"))?;
        let year = match yy {
            85..=99 => 1900 + yy,
            0..=3 => 2000 + yy,
            _ => return Err(bad("8-digit numbers carry years 1985–2003")),
        };
        (year, digits.as_bytes()[2])
    };
    let (patent_type, pct) = match type_digit {
        b'1' => (PatentType::Invention, false),
        b'2' => (PatentType::UtilityModel, false),
        b'3' => (PatentType::Design, false),
        b'8' => (PatentType::Invention, true),
        b'9' => (PatentType::UtilityModel, true),
        d => return Err(bad(&format!("type digit {} is unknown", d as char))),
    };
    Ok(ApplicationNo {
        canonical: format!("{digits}.{expected}"),
        year,
        patent_type,
        pct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_numbers() {
        let p = parse("201710601862.3").unwrap();
        assert_eq!(p.canonical, "201710601862.3");
        assert_eq!(p.year, 2017);
        assert_eq!(p.patent_type, PatentType::Invention);
        for form in [
            "CN201710601862.3",
            "ZL 2017 1060 1862.3",
            "2017106018623",
            "ZL201710601862.3",
        ] {
            assert_eq!(parse(form).unwrap().canonical, "201710601862.3", "{form}");
        }
        assert_eq!(
            parse("201710601862.4").unwrap_err().reason,
            Reason::InvalidPatentNo
        );
        let old = parse("97101765.4").unwrap();
        assert_eq!((old.year, old.patent_type), (1997, PatentType::Invention));
        assert!(
            parse("50101765.0").is_err(),
            "8-digit year 50 is not 1985–2003"
        );
    }

    proptest! {
        #[test]
        fn generated_numbers_round_trip(year in 2003u32..2030, t in prop::sample::select(vec![1u32, 2, 3, 8, 9]), serial in 0u32..10_000_000) {
            let digits = format!("{year}{t}{serial:07}");
            let c = check_char(&digits).unwrap();
            let p = parse(&format!("CN{digits}{c}")).unwrap();
            prop_assert_eq!(p.canonical, format!("{digits}.{c}"));
            prop_assert_eq!(p.year, year as i32);
            prop_assert_eq!(p.pct, t >= 8);
        }

        #[test]
        fn a_changed_digit_is_caught(serial in 0u32..10_000_000, pos in 0usize..12, delta in 1u32..10) {
            let digits = format!("20181{serial:07}");
            let c = check_char(&digits).unwrap();
            let mut d: Vec<u32> = digits.chars().map(|c| c.to_digit(10).unwrap()).collect();
            d[pos] = (d[pos] + delta) % 10;
            let changed: String = d.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect();
            // Weights 2..9 are all non-zero mod 11, so a single changed digit changes the sum.
            let text = format!("{changed}.{c}");
            prop_assert!(parse(&text).is_err());
        }
    }
}
