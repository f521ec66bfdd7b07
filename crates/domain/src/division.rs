//! Datong's division codes (GB/T 2260 plus the NBS code 140271 of the development
//! zone): the county table, the crosswalk of codes abolished by the 2018 reform, and
//! locating a county from address text when the code is missing.
//!
//! The tables are the shipped copies in `sample-data/reference/` (sources cited in its
//! README); they are compiled in so that the rules never depend on the working directory.

use std::collections::HashMap;

use crate::reason::{Reason, Rejection, Warning};

const DIVISIONS_CSV: &str = include_str!("../../../sample-data/reference/datong_divisions.csv");
const TOWNSHIPS_CSV: &str =
    include_str!("../../../sample-data/reference/datong_towns_townships.csv");

/// One row of the division table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    /// Six-digit code.
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// `city` or `county`.
    pub level: String,
    /// The parent division's code.
    pub parent_code: String,
}

/// Where a county came from and what is worth knowing about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct County {
    /// The current six-digit county code.
    pub code: String,
    /// Warnings to record for the row (legacy split, found from address).
    pub warnings: Vec<(Warning, String)>,
}

/// Codes abolished in 2018 and the county that holds their territory now. 南郊区 was
/// split between 云冈区 and 平城区, so its mapping carries a warning.
const LEGACY: [(&str, &str, &str, bool); 4] = [
    ("140202", "城区", "140213", false),
    ("140203", "矿区", "140214", false),
    ("140227", "大同县", "140215", false),
    ("140211", "南郊区", "140214", true),
];

/// Other names an address may use for the development zone (140271).
const ZONE_NAMES: [&str; 4] = [
    "山西大同经济开发区",
    "大同经济技术开发区",
    "经济技术开发区",
    "经济开发区",
];

/// The division table with its look-ups.
#[derive(Debug, Clone)]
pub struct Divisions {
    rows: Vec<Division>,
    counties: HashMap<String, String>,
    /// (name, county code, legacy split) sorted longest name first.
    address_names: Vec<(String, String, bool)>,
}

impl Divisions {
    /// Datong's table as shipped in `sample-data/reference/`.
    pub fn datong() -> Divisions {
        let rows: Vec<Division> = DIVISIONS_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                Division {
                    code: f[0].to_string(),
                    name: f[1].to_string(),
                    level: f[2].to_string(),
                    parent_code: f.get(3).unwrap_or(&"").to_string(),
                }
            })
            .collect();
        let counties: HashMap<String, String> = rows
            .iter()
            .filter(|d| d.level == "county")
            .map(|d| (d.code.clone(), d.name.clone()))
            .collect();
        let mut address_names: Vec<(String, String, bool)> = counties
            .iter()
            .map(|(code, name)| (name.clone(), code.clone(), false))
            .collect();
        for (_, name, to, split) in LEGACY {
            address_names.push((name.to_string(), to.to_string(), split));
        }
        for name in ZONE_NAMES {
            address_names.push((name.to_string(), "140271".to_string(), false));
        }
        // Longest first, so that 平城区 is never read as the legacy 城区.
        let longest_first = |a: &(String, String, bool), b: &(String, String, bool)| {
            b.0.chars()
                .count()
                .cmp(&a.0.chars().count())
                .then(a.0.cmp(&b.0))
        };
        address_names.sort_by(longest_first);
        // Townships locate their county too, but only after every county name has been
        // tried: `南郊区口泉乡` must be read as 南郊区 (with its split warning). The NBS
        // placeholder row of the zone is not a name anybody writes in an address.
        let mut townships: Vec<(String, String, bool)> = TOWNSHIPS_CSV
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.len() == 3 && !f[1].contains("乡级单位"))
                    .then(|| (f[1].to_string(), f[2].to_string(), false))
            })
            .collect();
        townships.sort_by(longest_first);
        address_names.extend(townships);
        Divisions {
            rows,
            counties,
            address_names,
        }
    }

    /// Every row (city and counties), as in the reference file.
    pub fn rows(&self) -> &[Division] {
        &self.rows
    }

    /// The name of a current county code.
    pub fn county_name(&self, code: &str) -> Option<&str> {
        self.counties.get(code).map(String::as_str)
    }

    /// Resolves a division code: 9- and 12-digit codes are truncated to the county,
    /// legacy codes map forward, codes outside 1402… are `outside_city`.
    pub fn resolve_code(&self, raw: &str) -> Result<County, Rejection> {
        let norm = crate::text::normalize(raw);
        let digits = norm.strip_suffix(".0").unwrap_or(&norm);
        let unknown = |why: &str| {
            Rejection::new(
                Reason::UnknownDivision,
                format!("division code \"{raw}\" {why}"),
            )
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) || ![6, 9, 12].contains(&digits.len()) {
            return Err(unknown("is not a 6-, 9- or 12-digit code"));
        }
        let county = &digits[..6];
        if !county.starts_with("1402") {
            return Err(Rejection::new(
                Reason::OutsideCity,
                format!("division code \"{raw}\" is outside Datong (1402…)"),
            ));
        }
        if self.counties.contains_key(county) {
            return Ok(County {
                code: county.to_string(),
                warnings: vec![],
            });
        }
        if let Some((_, name, to, split)) = LEGACY.iter().find(|l| l.0 == county) {
            let mut warnings = vec![];
            if *split {
                warnings.push((
                    Warning::LegacyDivisionSplit,
                    format!("legacy code {county} {name} was split in 2018; mapped to {to}"),
                ));
            }
            return Ok(County {
                code: to.to_string(),
                warnings,
            });
        }
        Err(unknown("is not one of Datong's counties"))
    }

    /// Finds the county an address names (current, legacy or township names, longest
    /// match first). Carries `division_from_address`, plus `legacy_division_split` for
    /// 南郊区.
    pub fn county_from_address(&self, address: &str) -> Option<County> {
        let text = crate::text::normalize(address);
        let (name, code, split) = self
            .address_names
            .iter()
            .find(|(name, _, _)| text.contains(name.as_str()))?;
        let mut warnings = vec![(
            Warning::DivisionFromAddress,
            format!("county {code} found from \"{name}\" in the address"),
        )];
        if *split {
            warnings.push((
                Warning::LegacyDivisionSplit,
                format!("legacy 南郊区 was split in 2018; mapped to {code}"),
            ));
        }
        Some(County {
            code: code.clone(),
            warnings,
        })
    }
}

/// The province-level divisions of GB/T 2260 (code prefix, the short name people
/// write): where a region of origin may be.
const PROVINCES: &[(&str, &str)] = &[
    ("11", "北京"),
    ("12", "天津"),
    ("13", "河北"),
    ("14", "山西"),
    ("15", "内蒙古"),
    ("21", "辽宁"),
    ("22", "吉林"),
    ("23", "黑龙江"),
    ("31", "上海"),
    ("32", "江苏"),
    ("33", "浙江"),
    ("34", "安徽"),
    ("35", "福建"),
    ("36", "江西"),
    ("37", "山东"),
    ("41", "河南"),
    ("42", "湖北"),
    ("43", "湖南"),
    ("44", "广东"),
    ("45", "广西"),
    ("46", "海南"),
    ("50", "重庆"),
    ("51", "四川"),
    ("52", "贵州"),
    ("53", "云南"),
    ("54", "西藏"),
    ("61", "陕西"),
    ("62", "甘肃"),
    ("63", "青海"),
    ("64", "宁夏"),
    ("65", "新疆"),
    ("71", "台湾"),
    ("81", "香港"),
    ("82", "澳门"),
];

impl Divisions {
    /// A region anywhere in China (an investor's place of origin): a 6-, 9- or
    /// 12-digit division code whose first two digits are a province of GB/T 2260
    /// (inside Datong, 140200 or one of its counties, legacy codes mapped), or a name:
    /// one of Datong's counties or townships, 大同 (140200), or a text beginning with a
    /// province's name (浙江省杭州市 → 330000). Stored as six digits. Anything else is
    /// `unknown_division`; the code's last four digits outside Datong are not checked
    /// (the national table is not shipped).
    pub fn resolve_region(&self, raw: &str) -> Result<String, Rejection> {
        let norm = crate::text::normalize(raw);
        let digits = norm.strip_suffix(".0").unwrap_or(&norm);
        let unknown =
            |why: &str| Rejection::new(Reason::UnknownDivision, format!("region \"{raw}\" {why}"));
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if ![6, 9, 12].contains(&digits.len()) {
                return Err(unknown("is not a 6-, 9- or 12-digit division code"));
            }
            let code = &digits[..6];
            if !PROVINCES.iter().any(|(p, _)| code.starts_with(p)) {
                return Err(unknown("does not begin with a province's code (GB/T 2260)"));
            }
            if code.starts_with("1402") && code != "140200" {
                return self
                    .resolve_code(code)
                    .map(|c| c.code)
                    .map_err(|_| unknown("is not one of Datong's counties"));
            }
            return Ok(code.to_string());
        }
        let text = norm.strip_prefix("中国").unwrap_or(&norm);
        if let Some((_, code, _)) = self
            .address_names
            .iter()
            .find(|(name, _, _)| text.contains(name.as_str()))
        {
            return Ok(code.clone());
        }
        if text.contains("大同") {
            return Ok("140200".to_string());
        }
        match PROVINCES.iter().find(|(_, name)| text.starts_with(name)) {
            Some((code, _)) => Ok(format!("{code}0000")),
            None => Err(unknown(
                "is neither a division code nor a name beginning with a province's",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        let d = Divisions::datong();
        assert_eq!(d.resolve_region("330100").unwrap(), "330100");
        assert_eq!(d.resolve_region("330106001").unwrap(), "330106");
        assert_eq!(d.resolve_region("浙江省杭州市").unwrap(), "330000");
        assert_eq!(d.resolve_region("山西省太原市").unwrap(), "140000");
        assert_eq!(d.resolve_region("大同市").unwrap(), "140200");
        assert_eq!(d.resolve_region("山西省大同市").unwrap(), "140200");
        assert_eq!(d.resolve_region("140200").unwrap(), "140200");
        assert_eq!(d.resolve_region("大同市新荣区").unwrap(), "140212");
        assert_eq!(d.resolve_region("140202").unwrap(), "140213");
        for bad in ["990000", "14029", "140299", "火星", ""] {
            assert_eq!(
                d.resolve_region(bad).unwrap_err().reason,
                Reason::UnknownDivision,
                "{bad}"
            );
        }
    }

    #[test]
    fn codes() {
        let d = Divisions::datong();
        assert_eq!(d.rows().len(), 12);
        assert_eq!(d.resolve_code("140212").unwrap().code, "140212");
        assert_eq!(d.resolve_code("140214.0").unwrap().code, "140214");
        assert_eq!(d.resolve_code("140213001").unwrap().code, "140213");
        assert_eq!(d.resolve_code("140213001002").unwrap().code, "140213");
        assert_eq!(d.resolve_code("140202").unwrap().code, "140213");
        assert_eq!(d.resolve_code("140203").unwrap().code, "140214");
        assert_eq!(d.resolve_code("140227").unwrap().code, "140215");
        let split = d.resolve_code("140211").unwrap();
        assert_eq!(split.code, "140214");
        assert_eq!(split.warnings[0].0, Warning::LegacyDivisionSplit);
        assert_eq!(
            d.resolve_code("140105").unwrap_err().reason,
            Reason::OutsideCity
        );
        assert_eq!(
            d.resolve_code("140299").unwrap_err().reason,
            Reason::UnknownDivision
        );
        assert_eq!(
            d.resolve_code("1402").unwrap_err().reason,
            Reason::UnknownDivision
        );
        assert_eq!(
            d.resolve_code("140200").unwrap_err().reason,
            Reason::UnknownDivision
        );
    }

    #[test]
    fn addresses() {
        let d = Divisions::datong();
        let c = d
            .county_from_address("山西省大同市平城区魏都大道1号")
            .unwrap();
        assert_eq!(c.code, "140213");
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(
            d.county_from_address("大同市城区东街").unwrap().code,
            "140213"
        );
        let nj = d.county_from_address("大同市南郊区口泉乡").unwrap();
        assert_eq!(nj.code, "140214");
        let codes: Vec<Warning> = nj.warnings.iter().map(|w| w.0).collect();
        assert_eq!(
            codes,
            [Warning::DivisionFromAddress, Warning::LegacyDivisionSplit]
        );
        assert_eq!(
            d.county_from_address("大同县西坪镇").unwrap().code,
            "140215"
        );
        assert_eq!(
            d.county_from_address("大同经济技术开发区").unwrap().code,
            "140271"
        );
        assert_eq!(d.county_from_address("古店镇某村").unwrap().code, "140212");
        assert!(d.county_from_address("太原市小店区").is_none());
    }
}
