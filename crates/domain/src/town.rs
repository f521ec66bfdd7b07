//! The town registry (专业镇名录) kept by the leading group's office: each town's county,
//! industry prefixes, level, designation year, tier target and optional roster, and
//! the revenue tiers of the plan (5亿/10亿/20亿/50亿/100亿/200亿级).

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};

/// Revenue tiers, highest first: (label, threshold in 亿元).
pub const TIERS: [(&str, i128); 6] = [
    ("200亿级", 200),
    ("100亿级", 100),
    ("50亿级", 50),
    ("20亿级", 20),
    ("10亿级", 10),
    ("5亿级", 5),
];

/// The label below the lowest tier.
pub const BELOW_TIERS: &str = "5亿以下";

/// The scale tier of a revenue in 元 cents.
pub fn scale_tier(revenue_cents: i128) -> &'static str {
    let yi = 100 * 100_000_000i128;
    TIERS
        .iter()
        .find(|(_, t)| revenue_cents >= t * yi)
        .map(|(label, _)| *label)
        .unwrap_or(BELOW_TIERS)
}

/// The threshold in 亿元 of a tier label (`20亿级` → 20; `5亿以下` → 0).
pub fn tier_threshold(label: &str) -> Option<i128> {
    if label == BELOW_TIERS {
        return Some(0);
    }
    TIERS.iter().find(|(l, _)| *l == label).map(|(_, t)| *t)
}

/// One town of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Town {
    /// Stable identifier (`xinrong_graphite`).
    pub town_id: String,
    /// Chinese name.
    pub name: String,
    /// Six-digit county code.
    pub county_code: String,
    /// GB/T 4754 prefixes: a section letter, or 2, 3 or 4 digits.
    pub industry_codes: Vec<String>,
    /// `city` or `provincial`.
    pub level: String,
    /// The year the town was designated, if it is.
    pub designated_year: Option<i32>,
    /// The revenue tier the plan targets, if any.
    pub tier_target: Option<String>,
    /// USCCs of the roster that overrides the rules, if the town has one.
    pub roster: Option<BTreeSet<String>>,
}

/// Loads the registry CSV: `town_id,name,county_code,industry_codes,level,
/// designated_year,tier_target,roster`, with `;` between industry codes and the roster
/// a path (relative to the registry) of a CSV whose first column is `uscc`.
pub fn load_registry(path: &Path) -> Result<Vec<Town>> {
    let text = read(path)?;
    const COLUMNS: [&str; 8] = [
        "town_id",
        "name",
        "county_code",
        "industry_codes",
        "level",
        "designated_year",
        "tier_target",
        "roster",
    ];
    let r = crate::reference_csv::rows(path, &text, &COLUMNS)?;
    let bad = |line: usize, message: String| r.bad(line, message);
    let divisions = crate::division::Divisions::datong();
    let industries = crate::industry::Industries::gbt4754_2017();
    let mut towns: Vec<Town> = vec![];
    for (n, f) in &r.rows {
        let n = *n;
        if divisions.county_name(f[2]).is_none() {
            return Err(bad(
                n,
                format!("county_code {} is not a Datong county", f[2]),
            ));
        }
        let industry_codes: Vec<String> = f[3]
            .split(';')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        for code in &industry_codes {
            if industries.get(code).is_none() {
                return Err(bad(
                    n,
                    format!("industry code {code} is not in GB/T 4754-2017"),
                ));
            }
        }
        if !["city", "provincial"].contains(&f[4]) {
            return Err(bad(
                n,
                format!("level {:?} is not city or provincial", f[4]),
            ));
        }
        let designated_year = match f[5] {
            "" => None,
            y => Some(
                y.parse()
                    .map_err(|_| bad(n, format!("designated_year {y:?}")))?,
            ),
        };
        let tier_target = match f[6] {
            "" => None,
            t if tier_threshold(t).is_some() => Some(t.to_string()),
            t => return Err(bad(n, format!("tier_target {t:?} is not a tier"))),
        };
        let roster = match f[7] {
            "" => None,
            r => Some(load_roster(
                &path.parent().unwrap_or(Path::new(".")).join(r),
            )?),
        };
        if towns.iter().any(|t| t.town_id == f[0]) {
            return Err(bad(n, format!("town_id {} appears twice", f[0])));
        }
        towns.push(Town {
            town_id: f[0].to_string(),
            name: crate::text::normalize(f[1]),
            county_code: f[2].to_string(),
            industry_codes,
            level: f[4].to_string(),
            designated_year,
            tier_target,
            roster,
        });
    }
    Ok(towns)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a roster: a CSV whose first column is `uscc`, each a valid USCC.
pub fn load_roster(path: &Path) -> Result<BTreeSet<String>> {
    let text = read(path)?;
    let mut out = BTreeSet::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let cell = line.split(',').next().unwrap_or("").trim();
        if cell.is_empty() {
            continue;
        }
        let code = crate::uscc::parse(cell).map_err(|e| Error::Reference {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.message,
        })?;
        out.insert(code);
    }
    Ok(out)
}

/// The registry's towns by what a ledger writes for them: the `town_id`, the name
/// (新荣石墨专业镇), or the name without 专业镇 (新荣石墨), matched after
/// normalization (full-width forms, case, spaces).
#[derive(Debug, Clone, Default)]
pub struct TownIndex {
    by_key: std::collections::HashMap<String, String>,
}

impl TownIndex {
    /// The index of a registry.
    pub fn new(towns: &[Town]) -> TownIndex {
        let mut by_key = std::collections::HashMap::new();
        for t in towns {
            let mut keys = vec![t.town_id.clone(), t.name.clone()];
            if let Some(short) = t.name.strip_suffix("专业镇") {
                keys.push(short.to_string());
            }
            for k in keys {
                by_key.insert(crate::text::match_key(&k), t.town_id.clone());
            }
        }
        TownIndex { by_key }
    }

    /// The town a cell names; `unknown_division` when it names none of the registry.
    pub fn resolve(&self, raw: &str) -> std::result::Result<String, crate::reason::Rejection> {
        self.by_key
            .get(&crate::text::match_key(raw))
            .cloned()
            .ok_or_else(|| {
                crate::reason::Rejection::new(
                    crate::reason::Reason::UnknownDivision,
                    format!("town \"{raw}\" is not a town of the town registry (id or name)"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers() {
        let yi = 100 * 100_000_000i128;
        assert_eq!(scale_tier(0), "5亿以下");
        assert_eq!(scale_tier(5 * yi - 1), "5亿以下");
        assert_eq!(scale_tier(5 * yi), "5亿级");
        assert_eq!(scale_tier(20 * yi), "20亿级");
        assert_eq!(scale_tier(199 * yi), "100亿级");
        assert_eq!(scale_tier(250 * yi), "200亿级");
        assert_eq!(tier_threshold("50亿级"), Some(50));
        assert_eq!(tier_threshold("7亿级"), None);
    }
}
