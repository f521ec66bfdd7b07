//! Booleans as agencies write them: 是/否, Y/N, yes/no, true/false, 1/0, √/×.

/// Parses a boolean, case-insensitively; `None` when the text is none of the forms.
pub fn parse_bool(raw: &str) -> Option<bool> {
    let s = crate::text::normalize(raw).to_lowercase();
    match s.as_str() {
        "是" | "y" | "yes" | "true" | "1" | "1.0" | "√" | "✓" | "t" => Some(true),
        "否" | "n" | "no" | "false" | "0" | "0.0" | "×" | "✗" | "f" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bool;

    #[test]
    fn forms() {
        for t in ["是", "Y", "yes", "TRUE", "1", "√"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["否", "n", "No", "false", "0", "×"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }
}
