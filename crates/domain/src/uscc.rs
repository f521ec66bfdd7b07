//! Unified social credit codes (统一社会信用代码, GB 32100-2015): validation of the
//! alphabet, length and check character, and the entity kind the code implies.

use crate::reason::{Reason, Rejection};

/// The 31 characters a USCC may use, in value order (no I, O, S, V, Z).
pub const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights 3^(i−1) mod 31 for positions 1..=17.
pub const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character for the first 17 characters, or `None` when one of them is
/// outside the alphabet.
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        sum += value_of(*c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(ALPHABET[check as usize] as char)
}

/// Parses a USCC: NFKC-normalized, trimmed and upper-cased, then checked.
/// Returns the canonical 18-character code.
pub fn parse(raw: &str) -> Result<String, Rejection> {
    let code = crate::text::normalize(raw).to_uppercase();
    let bytes = code.as_bytes();
    let bad = |why: &str| {
        Rejection::new(
            Reason::InvalidUscc,
            format!("\"{raw}\" is not a valid USCC: {why}"),
        )
    };
    if bytes.len() != 18 || code.chars().count() != 18 {
        return Err(bad(&format!(
            "{} characters instead of 18",
            code.chars().count()
        )));
    }
    if let Some(c) = bytes.iter().find(|c| value_of(**c).is_none()) {
        return Err(bad(&format!(
            "'{}' is not in the USCC alphabet",
            *c as char
        )));
    }
    let expected = check_char(&bytes[..17]).ok_or_else(|| bad("bad characters"))?;
    if bytes[17] as char != expected {
        return Err(bad(&format!(
            "check character is '{}', expected '{expected}'",
            bytes[17] as char
        )));
    }
    Ok(code)
}

/// Completes 17 characters with their check character (used by the generator).
pub fn with_check(first17: &str) -> Option<String> {
    let c = check_char(first17.as_bytes())?;
    Some(format!("{first17}{c}"))
}

/// The entity kind implied by positions 1–2 of a valid code: for the market-regulation
/// department (9), 1 is an enterprise, 2 an individual business (个体工商户) and 3 a
/// farmers' cooperative (农民专业合作社); everything else is `other`.
pub fn entity_kind(code: &str) -> &'static str {
    match code.as_bytes().get(..2) {
        Some(b"91") => "enterprise",
        Some(b"92") => "individual",
        Some(b"93") => "cooperative",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes() {
        assert_eq!(
            parse("91310110666007217T").as_deref(),
            Ok("91310110666007217T")
        );
        assert_eq!(
            parse(" 91310110666007217t ").as_deref(),
            Ok("91310110666007217T")
        );
        // Full-width characters are folded before checking.
        assert!(parse("９１310110666007217T").is_ok());
        let err = parse("91350211M00013FA1N").unwrap_err();
        assert_eq!(err.reason, Reason::InvalidUscc);
        assert!(parse("9131011066600721").is_err());
        assert!(parse("91310110666007217I").is_err());
    }

    #[test]
    fn kinds() {
        assert_eq!(entity_kind("91310110666007217T"), "enterprise");
        assert_eq!(entity_kind("92140200MA0000000X"), "individual");
        assert_eq!(entity_kind("93140200MA0000000X"), "cooperative");
        assert_eq!(entity_kind("12140200MA0000000X"), "other");
    }

    fn body() -> impl Strategy<Value = String> {
        proptest::collection::vec(0usize..31, 17)
            .prop_map(|v| v.into_iter().map(|i| ALPHABET[i] as char).collect())
    }

    proptest! {
        #[test]
        fn completed_codes_validate(b in body()) {
            let code = with_check(&b).unwrap();
            prop_assert_eq!(parse(&code), Ok(code.clone()));
        }

        #[test]
        fn any_single_substitution_is_caught(b in body(), pos in 0usize..18, delta in 1usize..31) {
            let code = with_check(&b).unwrap();
            let mut bytes = code.into_bytes();
            let old = ALPHABET.iter().position(|&a| a == bytes[pos]).unwrap();
            bytes[pos] = ALPHABET[(old + delta) % 31];
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(parse(&changed).is_err());
        }
    }
}
