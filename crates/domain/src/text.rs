//! Text normalization: every header and every stored text value goes through
//! [`normalize`], so that `（集团）` and `(集团)`, full-width digits and stray spaces
//! compare equal. Null tokens are recognised here too.

use unicode_normalization::UnicodeNormalization;

/// NFKC, trimmed, every run of whitespace (line breaks included) folded to one space.
///
/// Most cells are already in NFKC (ASCII always is; so is ordinary Chinese text), and
/// Unicode's quick check says so without decomposing them: those skip the
/// normalization, which was the largest single cost of reading a file.
pub fn normalize(raw: &str) -> String {
    use unicode_normalization::{IsNormalized, is_nfkc_quick};
    let converted: String;
    let nfkc: &str = if raw.is_ascii() || is_nfkc_quick(raw.chars()) == IsNormalized::Yes {
        raw
    } else {
        converted = raw.nfkc().collect();
        &converted
    };
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The key a header or alias is matched by: normalized and lower-cased (English
/// headers such as `R&D经费支出` or `USCC` match in any case).
pub fn match_key(raw: &str) -> String {
    normalize(raw).to_lowercase()
}

/// The tokens that mean "no value" in a cell, compared after normalization.
pub const NULL_TOKENS: [&str; 8] = ["", "-", "—", "/", "无", "空", "null", "n/a"];

/// Whether a normalized cell is a null token (case-insensitive for the Latin ones).
pub fn is_null_token(normalized: &str) -> bool {
    if normalized.len() > 4 {
        return false;
    }
    let lower = normalized.to_lowercase();
    NULL_TOKENS.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn the_quick_check_changes_nothing(raw in "\\PC{0,24}") {
            let full: String = raw.nfkc().collect::<String>();
            let folded = full.split_whitespace().collect::<Vec<_>>().join(" ");
            proptest::prop_assert_eq!(normalize(&raw), folded);
        }
    }

    #[test]
    fn folds_width_brackets_and_space() {
        assert_eq!(
            normalize("  大同（集团）\n 有限公司 "),
            "大同(集团) 有限公司"
        );
        assert_eq!(normalize("ＡＢＣ１２３"), "ABC123");
        assert_eq!(normalize("a\u{3000}\tb"), "a b");
        assert_eq!(normalize("营业收入（万元）"), "营业收入(万元)");
    }

    #[test]
    fn null_tokens() {
        for t in ["", "-", "—", "/", "无", "空", "NULL", "null", "N/A", "n/a"] {
            assert!(is_null_token(t), "{t}");
        }
        for t in ["0", "无锡", "--x", "NA"] {
            assert!(!is_null_token(t), "{t}");
        }
    }
}
