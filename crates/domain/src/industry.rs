//! GB/T 4754-2017 industry codes (with Amendment No. 1, 2019): the shipped table, the
//! accepted spellings of a class code, and prefix matching for town rules.

use std::collections::HashMap;

use crate::reason::{Reason, Rejection};

const GBT4754_CSV: &str = include_str!("../../../sample-data/reference/gbt4754_2017.csv");

/// One row of the classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndustryCode {
    /// Section letter, or 2-, 3- or 4-digit code.
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// `section`, `division`, `group` or `class`.
    pub level: String,
    /// The parent's code (empty for a section).
    pub parent_code: String,
    /// The section letter.
    pub section: String,
}

/// The classification with its look-ups.
#[derive(Debug, Clone)]
pub struct Industries {
    rows: Vec<IndustryCode>,
    by_code: HashMap<String, usize>,
}

impl Industries {
    /// The table shipped in `sample-data/reference/gbt4754_2017.csv`.
    pub fn gbt4754_2017() -> Industries {
        let rows: Vec<IndustryCode> = GBT4754_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                IndustryCode {
                    code: f[0].to_string(),
                    name: f[1].to_string(),
                    level: f[2].to_string(),
                    parent_code: f[3].to_string(),
                    section: f[4].to_string(),
                }
            })
            .collect();
        let by_code = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.code.clone(), i))
            .collect();
        Industries { rows, by_code }
    }

    /// Every row, in the file's order.
    pub fn rows(&self) -> &[IndustryCode] {
        &self.rows
    }

    /// The row of a code at any level.
    pub fn get(&self, code: &str) -> Option<&IndustryCode> {
        self.by_code.get(code).map(|&i| &self.rows[i])
    }

    /// The section letter of a code at any level.
    pub fn section_of(&self, code: &str) -> Option<&str> {
        self.get(code).map(|r| r.section.as_str())
    }

    /// Parses a class code written as `C3091`, `3091` or `3091 石墨及碳素制品制造` into
    /// the canonical 4-digit class. A section letter, when given, must be the class's.
    pub fn parse_class(&self, raw: &str) -> Result<String, Rejection> {
        let norm = crate::text::normalize(raw).to_uppercase();
        let unknown = |why: &str| {
            Rejection::new(
                Reason::UnknownIndustryCode,
                format!("industry code \"{raw}\" {why}"),
            )
        };
        let token: String = norm
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        let token = token.strip_suffix(".0").unwrap_or(&token);
        let (letter, digits) = match token.chars().next() {
            Some(c) if c.is_ascii_alphabetic() => (Some(c.to_string()), &token[1..]),
            _ => (None, token),
        };
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown("is not a 4-digit GB/T 4754-2017 class code"));
        }
        let row = self
            .get(digits)
            .filter(|r| r.level == "class")
            .ok_or_else(|| unknown("is not in GB/T 4754-2017"))?;
        if let Some(l) = letter
            && l != row.section
        {
            return Err(unknown(&format!(
                "has section {l} but class {digits} is in section {}",
                row.section
            )));
        }
        Ok(digits.to_string())
    }

    /// Whether a class code falls under a town rule's prefix: a section letter matches
    /// every class of that section, digits match by prefix.
    pub fn matches_prefix(&self, class_code: &str, prefix: &str) -> bool {
        if prefix.chars().all(|c| c.is_ascii_alphabetic()) {
            self.section_of(class_code) == Some(prefix)
        } else {
            class_code.starts_with(prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_counts() {
        let t = Industries::gbt4754_2017();
        let count = |level: &str| t.rows().iter().filter(|r| r.level == level).count();
        assert_eq!(
            (
                count("section"),
                count("division"),
                count("group"),
                count("class")
            ),
            (20, 97, 473, 1382)
        );
        assert_eq!(t.get("3091").unwrap().name, "石墨及碳素制品制造");
    }

    #[test]
    fn spellings() {
        let t = Industries::gbt4754_2017();
        for s in [
            "C3091",
            "3091",
            "3091 石墨及碳素制品制造",
            "c3091",
            "３０９１",
            "3091.0",
        ] {
            assert_eq!(t.parse_class(s).as_deref(), Ok("3091"), "{s}");
        }
        assert_eq!(t.parse_class("0141").as_deref(), Ok("0141"));
        for s in ["9999", "309", "B3091", "abc", ""] {
            assert_eq!(
                t.parse_class(s).unwrap_err().reason,
                Reason::UnknownIndustryCode,
                "{s}"
            );
        }
    }

    #[test]
    fn prefixes() {
        let t = Industries::gbt4754_2017();
        assert!(t.matches_prefix("3091", "3091"));
        assert!(t.matches_prefix("2221", "222"));
        assert!(t.matches_prefix("2710", "27"));
        assert!(t.matches_prefix("2710", "C"));
        assert!(!t.matches_prefix("0141", "C"));
        assert!(!t.matches_prefix("3092", "3091"));
    }
}
