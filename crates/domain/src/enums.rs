//! Enumerations (entity kinds, statuses, designation kinds and levels, patent types,
//! financing instruments, currencies, listing markets) mapped from Chinese and English
//! synonyms. The alias tables are data (`pipelines/enums.toml`), not code: a new
//! spelling is a new line there. An unknown value is `unknown_enum_value`, never a
//! silent `other`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::reason::{Reason, Rejection};
use crate::text::match_key;

/// Enumerations added after the first release: an alias file may leave them out (an
/// older project's `enums.toml`), and then only their canonical values are accepted.
const LATER: &[&str] = &["quality_mark_kind", "quality_mark_level", "project_stage"];

/// The enumerations ingestion knows, with their canonical values. A table file may
/// only define these, and only map to these values.
pub const ENUMS: &[(&str, &[&str])] = &[
    (
        "entity_kind",
        &["enterprise", "individual", "cooperative", "other"],
    ),
    (
        "status",
        &["active", "deregistered", "revoked", "moved_out"],
    ),
    (
        "designation_kind",
        &[
            "srdi",
            "little_giant",
            "single_champion",
            "high_tech",
            "tech_sme",
            "leading",
            "tech_center",
            "engineering_center",
            "key_lab",
        ],
    ),
    ("designation_level", &["national", "provincial", "city"]),
    ("patent_type", &["invention", "utility_model", "design"]),
    (
        "instrument",
        &[
            "bank_loan",
            "equity",
            "guide_fund",
            "bond",
            "listing",
            "lease",
            "guarantee",
        ],
    ),
    ("currency", &["CNY"]),
    (
        "quality_mark_kind",
        &[
            "regional_brand",
            "collective_mark",
            "certification_mark",
            "geographical_indication",
            "national_standard",
            "industry_standard",
            "group_standard",
            "international_certification",
            "public_service_platform",
            "innovation_platform",
        ],
    ),
    (
        "quality_mark_level",
        &["international", "national", "provincial", "city"],
    ),
    (
        "project_stage",
        &["signed", "started", "in_production", "at_capacity"],
    ),
    (
        "market",
        &[
            "main_board",
            "chinext",
            "star",
            "bse",
            "neeq",
            "regional_equity",
            "overseas",
        ],
    ),
];

/// Whether a column of a kind declared by a pipeline (not townstat's own) names
/// enumeration `name`.
fn declared_enum(name: &str) -> bool {
    crate::schema::declared_kinds().iter().any(|t| {
        t.columns
            .iter()
            .any(|c| c.enum_name.as_deref() == Some(name))
    })
}

/// Alias tables: for each enumeration, normalized alias → canonical value.
#[derive(Debug, Clone, Default)]
pub struct AliasTables {
    tables: HashMap<String, HashMap<String, String>>,
}

impl AliasTables {
    /// Loads a TOML file of the form `[enum] canonical = ["alias", ...]`.
    pub fn load(path: &Path) -> Result<AliasTables> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        AliasTables::from_toml(&text, path)
    }

    /// Parses the TOML text; `path` only names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<AliasTables> {
        let config = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let raw: BTreeMap<String, BTreeMap<String, Vec<String>>> =
            toml::from_str(text).map_err(|e| config(e.to_string()))?;
        let mut tables = HashMap::new();
        for (name, values) in raw {
            // townstat's own enumerations have fixed canonical values (the marts and
            // the code compare them); an enumeration that only a declared kind's column
            // names (`enum =` in a pipeline's `kinds` file) takes its values from here.
            let own: Option<Vec<&str>> = ENUMS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, values)| values.to_vec());
            let canonical: Vec<&str> = match own {
                Some(values) => values,
                None if declared_enum(&name) => values.keys().map(String::as_str).collect(),
                None => {
                    return Err(config(format!(
                        "unknown enumeration [{name}]; known: {} (or one a declared kind's \
                         column names with `enum =`)",
                        ENUMS.iter().map(|e| e.0).collect::<Vec<_>>().join(", ")
                    )));
                }
            };
            let mut map = HashMap::new();
            for (value, aliases) in &values {
                let value = value.clone();
                if !canonical.contains(&value.as_str()) {
                    return Err(config(format!(
                        "[{name}] has unknown value {value:?}; allowed: {}",
                        canonical.join(", ")
                    )));
                }
                for alias in aliases.iter().chain(std::iter::once(&value)) {
                    let key = match_key(alias);
                    if let Some(prev) = map.insert(key.clone(), value.clone())
                        && prev != value
                    {
                        return Err(config(format!(
                            "[{name}] alias {alias:?} maps to both {prev} and {value}"
                        )));
                    }
                }
            }
            tables.insert(name, map);
        }
        for (name, canonical) in ENUMS {
            if tables.contains_key(*name) {
                continue;
            }
            if !LATER.contains(name) {
                return Err(config(format!("missing enumeration [{name}]")));
            }
            // An enumeration added after a project's alias file was written: its
            // canonical values are accepted (anything else is unknown_enum_value, as
            // ever), so an older project's file still loads.
            let map = canonical
                .iter()
                .map(|v| (match_key(v), v.to_string()))
                .collect();
            tables.insert(name.to_string(), map);
        }
        Ok(AliasTables { tables })
    }

    /// Whether the file defines enumeration `name`.
    pub fn has(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }

    /// The canonical value of `raw` in enumeration `name`.
    pub fn lookup(&self, name: &str, raw: &str) -> Result<String, Rejection> {
        self.tables
            .get(name)
            .and_then(|t| t.get(&match_key(raw)))
            .cloned()
            .ok_or_else(|| {
                Rejection::new(
                    Reason::UnknownEnumValue,
                    format!("\"{raw}\" is not a known {name}"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        [entity_kind]
        enterprise = ["企业", "有限责任公司"]
        individual = ["个体工商户"]
        cooperative = []
        other = []
        [status]
        active = ["存续", "在业", "开业"]
        deregistered = ["注销"]
        revoked = []
        moved_out = []
        [designation_kind]
        srdi = ["专精特新中小企业"]
        [designation_level]
        national = ["国家级"]
        [patent_type]
        invention = ["发明"]
        [instrument]
        listing = ["上市", "IPO", "挂牌"]
        [currency]
        CNY = ["人民币", "元"]
        [market]
        neeq = ["新三板"]
    "#;

    #[test]
    fn lookups() {
        let t = AliasTables::from_toml(SAMPLE, Path::new("enums.toml")).unwrap();
        // A file written before the quality ledger existed: its canonical values only.
        assert_eq!(
            t.lookup("quality_mark_level", "national").as_deref(),
            Ok("national")
        );
        assert!(t.lookup("quality_mark_level", "国家级").is_err());
        assert_eq!(t.lookup("status", " 存续 ").as_deref(), Ok("active"));
        assert_eq!(t.lookup("instrument", "ipo").as_deref(), Ok("listing"));
        assert_eq!(t.lookup("currency", "cny").as_deref(), Ok("CNY"));
        assert_eq!(
            t.lookup("entity_kind", "有限责任公司").as_deref(),
            Ok("enterprise")
        );
        let e = t.lookup("status", "休眠").unwrap_err();
        assert_eq!(e.reason, Reason::UnknownEnumValue);
    }

    #[test]
    fn typos_are_errors() {
        let bad = SAMPLE.replace("[market]", "[markets]");
        let e = AliasTables::from_toml(&bad, Path::new("enums.toml")).unwrap_err();
        assert!(
            e.to_string().contains("unknown enumeration [markets]"),
            "{e}"
        );
        let bad = SAMPLE.replace("neeq =", "neq =");
        let e = AliasTables::from_toml(&bad, Path::new("enums.toml")).unwrap_err();
        assert!(e.to_string().contains("unknown value \"neq\""), "{e}");
    }
}
