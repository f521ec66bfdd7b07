//! The statistics bureau's classification rules as reference data, not code:
//!
//! - the thresholds of the "above designated size / above quota" (规模以上 / 限额以上)
//!   statistics by sector — industry 2000万, wholesale 2000万, retail 500万,
//!   accommodation and catering 200万, the services thresholds by sector, and the two
//!   categories decided by qualification rather than revenue (construction, real
//!   estate development) — `sample-data/reference/above_size_thresholds.csv`;
//! - the enterprise size classes 大型/中型/小型/微型 by sector, from《统计上大中小微型
//!   企业划分办法（2017）》(国统字〔2017〕213号) — `sample-data/reference/size_classes.csv`.
//!
//! Both are compiled in (the binary runs anywhere) and may be replaced by a pipeline's
//! own files (`above_size_thresholds = …`, `size_classes = …`). Every row is checked
//! and a bad one is an error naming the file and line: an unknown industry code, a
//! prefix in two rows, a class band that does not start where the one below it ends
//! (a gap or an overlap).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::industry::Industries;
use crate::reference_csv::{Rows, rows};

/// The compiled-in thresholds file.
pub const THRESHOLDS_CSV: &str =
    include_str!("../../../sample-data/reference/above_size_thresholds.csv");
/// The compiled-in size classes file.
pub const SIZE_CLASSES_CSV: &str = include_str!("../../../sample-data/reference/size_classes.csv");

/// The scopes of the 四上 statistics: 规上工业, 有资质的建筑业, 限上批零住餐,
/// 房地产开发经营业, 规上服务业.
pub const SCOPES: [&str; 5] = [
    "industry",
    "construction",
    "trade",
    "real_estate",
    "services",
];

/// The size classes, smallest first.
pub const CLASSES: [&str; 4] = ["微型", "小型", "中型", "大型"];

/// The indicators of the size classes and their units.
pub const INDICATORS: [(&str, &str); 3] =
    [("employees", "人"), ("revenue", "万元"), ("assets", "万元")];

/// One industry prefix of a threshold row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    /// `industry`, `construction`, `trade`, `real_estate` or `services`.
    pub scope: String,
    /// 规模以上工业, 限额以上零售业, …
    pub category: String,
    /// A section letter or a 2-, 3- or 4-digit GB/T 4754-2017 code.
    pub industry_prefix: String,
    /// The revenue from which a unit is in, in 元 cents; none when the category is
    /// decided by qualification, not revenue.
    pub revenue_min_cents: Option<i128>,
    /// The rule as the bureau states it.
    pub basis: String,
}

/// One industry prefix of a size class band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeBand {
    /// The sector of the 2017 table (工业, 零售业, …).
    pub sector: String,
    /// A section letter or a GB/T code.
    pub industry_prefix: String,
    /// `employees`, `revenue` or `assets`.
    pub indicator: String,
    /// 微型, 小型, 中型 or 大型.
    pub class: String,
    /// 1 for 微型 … 4 for 大型.
    pub class_order: i64,
    /// Lower bound (inclusive), in the unit.
    pub lower: i64,
    /// Upper bound (exclusive); none for 大型.
    pub upper: Option<i64>,
    /// 人 or 万元.
    pub unit: String,
}

/// Both rule tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeRules {
    /// The 规上/限上 thresholds, one row per industry prefix.
    pub thresholds: Vec<Threshold>,
    /// The size class bands, one row per industry prefix.
    pub bands: Vec<SizeBand>,
}

impl SizeRules {
    /// The compiled-in rules.
    pub fn builtin() -> SizeRules {
        SizeRules {
            thresholds: parse_thresholds(
                Path::new("above_size_thresholds.csv (compiled in)"),
                THRESHOLDS_CSV,
            )
            .unwrap_or_else(|e| panic!("the compiled-in thresholds are invalid: {e}")),
            bands: parse_size_classes(
                Path::new("size_classes.csv (compiled in)"),
                SIZE_CLASSES_CSV,
            )
            .unwrap_or_else(|e| panic!("the compiled-in size classes are invalid: {e}")),
        }
    }

    /// The rules of a pipeline: its own files where it names them, else the
    /// compiled-in ones.
    pub fn load(thresholds: Option<&Path>, size_classes: Option<&Path>) -> Result<SizeRules> {
        let builtin = SizeRules::builtin();
        Ok(SizeRules {
            thresholds: match thresholds {
                Some(p) => parse_thresholds(p, &read(p)?)?,
                None => builtin.thresholds,
            },
            bands: match size_classes {
                Some(p) => parse_size_classes(p, &read(p)?)?,
                None => builtin.bands,
            },
        })
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Splits `B;C;D` into known GB/T 4754-2017 codes.
fn prefixes(industries: &Industries, r: &Rows, line: usize, cell: &str) -> Result<Vec<String>> {
    let list: Vec<String> = cell
        .split(';')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if list.is_empty() {
        return Err(r.bad(line, "industry_prefixes is empty".into()));
    }
    for c in &list {
        if industries.get(c).is_none() {
            return Err(r.bad(line, format!("industry code {c} is not in GB/T 4754-2017")));
        }
    }
    Ok(list)
}

fn number(r: &Rows, line: usize, name: &str, cell: &str) -> Result<i64> {
    cell.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| r.bad(line, format!("{name} {cell:?} is not a whole number ≥ 0")))
}

/// Parses the thresholds file:
/// `scope,category,industry_prefixes,revenue_min_wan,basis` (revenue in 万元; empty
/// for a category decided by qualification).
pub fn parse_thresholds(path: &Path, text: &str) -> Result<Vec<Threshold>> {
    let r = rows(
        path,
        text,
        &[
            "scope",
            "category",
            "industry_prefixes",
            "revenue_min_wan",
            "basis",
        ],
    )?;
    let industries = Industries::gbt4754_2017();
    let mut out: Vec<Threshold> = vec![];
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (line, f) in &r.rows {
        if !SCOPES.contains(&f[0]) {
            return Err(r.bad(
                *line,
                format!("scope {:?} is not one of {}", f[0], SCOPES.join(", ")),
            ));
        }
        let revenue_min_cents = match f[3] {
            "" => None,
            v => Some(i128::from(number(&r, *line, "revenue_min_wan", v)?) * 1_000_000),
        };
        for p in prefixes(&industries, &r, *line, f[2])? {
            if let Some(first) = seen.insert(p.clone(), *line) {
                return Err(r.bad(
                    *line,
                    format!("industry prefix {p} is already on line {first}"),
                ));
            }
            out.push(Threshold {
                scope: f[0].to_string(),
                category: f[1].to_string(),
                industry_prefix: p,
                revenue_min_cents,
                basis: f[4].to_string(),
            });
        }
    }
    Ok(out)
}

/// One band as read: (line, lower, upper), per (sector, indicator) and class order.
type Band = (usize, i64, Option<i64>);

/// Parses the size classes file:
/// `sector,industry_prefixes,indicator,class,lower,upper,unit`, one row per sector,
/// indicator and class, with the bounds of the bureau's table (`lower ≤ x < upper`).
/// Each sector's indicators have the four classes, 微型 from 0, each class starting
/// where the one below ends, 大型 open above.
pub fn parse_size_classes(path: &Path, text: &str) -> Result<Vec<SizeBand>> {
    let r = rows(
        path,
        text,
        &[
            "sector",
            "industry_prefixes",
            "indicator",
            "class",
            "lower",
            "upper",
            "unit",
        ],
    )?;
    let industries = Industries::gbt4754_2017();
    let mut out: Vec<SizeBand> = vec![];
    let mut bands: BTreeMap<(String, String), BTreeMap<usize, Band>> = BTreeMap::new();
    let mut sector_prefixes: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut prefix_sector: BTreeMap<String, String> = BTreeMap::new();
    for (line, f) in &r.rows {
        let (sector, indicator, class) = (f[0], f[2], f[3]);
        let Some(unit) = INDICATORS
            .iter()
            .find(|(i, _)| *i == indicator)
            .map(|x| x.1)
        else {
            return Err(r.bad(
                *line,
                format!("indicator {indicator:?} is not employees, revenue or assets"),
            ));
        };
        if f[6] != unit {
            return Err(r.bad(*line, format!("{indicator} is in {unit}, not {:?}", f[6])));
        }
        let Some(order) = CLASSES.iter().position(|c| *c == class) else {
            return Err(r.bad(
                *line,
                format!("class {class:?} is not one of {}", CLASSES.join(", ")),
            ));
        };
        let lower = number(&r, *line, "lower", f[4])?;
        let upper = match f[5] {
            "" => None,
            v => Some(number(&r, *line, "upper", v)?),
        };
        if upper.is_some_and(|u| u <= lower) {
            return Err(r.bad(*line, format!("upper {} is not above lower {lower}", f[5])));
        }
        match sector_prefixes.get(sector) {
            Some((first, p)) if p != f[1] => {
                return Err(r.bad(
                    *line,
                    format!(
                        "{sector} has industry_prefixes {:?} here and {p:?} on line {first}",
                        f[1]
                    ),
                ));
            }
            Some(_) => {}
            None => {
                for p in prefixes(&industries, &r, *line, f[1])? {
                    if let Some(other) = prefix_sector.insert(p.clone(), sector.to_string()) {
                        return Err(r.bad(
                            *line,
                            format!("industry prefix {p} is already in sector {other}"),
                        ));
                    }
                }
                sector_prefixes.insert(sector.to_string(), (*line, f[1].to_string()));
            }
        }
        let slot = bands
            .entry((sector.to_string(), indicator.to_string()))
            .or_default();
        if slot.insert(order, (*line, lower, upper)).is_some() {
            return Err(r.bad(*line, format!("{sector} {indicator} {class} appears twice")));
        }
        for p in prefixes(&industries, &r, *line, f[1])? {
            out.push(SizeBand {
                sector: sector.to_string(),
                industry_prefix: p,
                indicator: indicator.to_string(),
                class: class.to_string(),
                class_order: order as i64 + 1,
                lower,
                upper,
                unit: unit.to_string(),
            });
        }
    }
    for ((sector, indicator), classes) in &bands {
        let last_line = classes.values().map(|b| b.0).max().unwrap_or(1);
        for (order, class) in CLASSES.iter().enumerate() {
            let Some(&(line, lower, upper)) = classes.get(&order) else {
                return Err(r.bad(
                    last_line,
                    format!("{sector} {indicator} has no {class} band"),
                ));
            };
            if order == 0 && lower != 0 {
                return Err(r.bad(line, format!("{sector} {indicator} 微型 must start at 0")));
            }
            if order == CLASSES.len() - 1 && upper.is_some() {
                return Err(r.bad(
                    line,
                    format!("{sector} {indicator} 大型 has no upper bound"),
                ));
            }
            if let Some(&(_, _, Some(below_upper))) =
                order.checked_sub(1).and_then(|o| classes.get(&o))
                && below_upper != lower
            {
                let what = if below_upper < lower {
                    "a gap"
                } else {
                    "an overlap"
                };
                return Err(r.bad(
                    line,
                    format!(
                        "{sector} {indicator}: {class} starts at {lower} but {} ends at \
                         {below_upper} ({what})",
                        CLASSES[order - 1]
                    ),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_rules_load() {
        let rules = SizeRules::builtin();
        let retail = rules
            .thresholds
            .iter()
            .find(|t| t.industry_prefix == "52")
            .expect("retail");
        assert_eq!(retail.revenue_min_cents, Some(5_000_000 * 100));
        assert_eq!(retail.category, "限额以上零售业");
        let e = rules
            .thresholds
            .iter()
            .find(|t| t.industry_prefix == "E")
            .expect("construction");
        assert_eq!(e.revenue_min_cents, None);
        // 工业: two indicators × four classes × three prefixes.
        assert_eq!(
            rules.bands.iter().filter(|b| b.sector == "工业").count(),
            24
        );
    }

    #[test]
    fn a_gap_an_overlap_and_a_duplicate_name_the_line() {
        let head = "sector,industry_prefixes,indicator,class,lower,upper,unit\n";
        let ok = "零售业,52,revenue,微型,0,100,万元\n零售业,52,revenue,小型,100,500,万元\n\
                  零售业,52,revenue,中型,500,20000,万元\n零售业,52,revenue,大型,20000,,万元\n";
        let p = Path::new("size_classes.csv");
        assert_eq!(
            parse_size_classes(p, &format!("{head}{ok}"))
                .expect("ok")
                .len(),
            4
        );
        let gap = ok.replace("中型,500,", "中型,600,");
        let e = parse_size_classes(p, &format!("{head}{gap}"))
            .expect_err("gap")
            .to_string();
        assert!(
            e.contains("size_classes.csv: line 4: 零售业 revenue: 中型 starts at 600 but 小型 ends at 500 (a gap)"),
            "{e}"
        );
        let overlap = ok.replace("中型,500,", "中型,400,");
        let e = parse_size_classes(p, &format!("{head}{overlap}"))
            .expect_err("overlap")
            .to_string();
        assert!(e.contains("line 4") && e.contains("(an overlap)"), "{e}");
        let missing = ok.replace("零售业,52,revenue,大型,20000,,万元\n", "");
        let e = parse_size_classes(p, &format!("{head}{missing}"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("has no 大型 band"), "{e}");
        let unit = ok.replace("小型,100,500,万元", "小型,100,500,元");
        let e = parse_size_classes(p, &format!("{head}{unit}"))
            .expect_err("unit")
            .to_string();
        assert!(e.contains("line 3: revenue is in 万元"), "{e}");

        let head = "scope,category,industry_prefixes,revenue_min_wan,basis\n";
        let t = Path::new("above_size_thresholds.csv");
        let dup = "trade,限额以上零售业,52,500,x\ntrade,限额以上零售业,52;61,200,x\n";
        let e = parse_thresholds(t, &format!("{head}{dup}"))
            .expect_err("dup")
            .to_string();
        assert!(
            e.contains("line 3: industry prefix 52 is already on line 2"),
            "{e}"
        );
        let e = parse_thresholds(t, &format!("{head}trade,x,5299999,500,x\n"))
            .expect_err("code")
            .to_string();
        assert!(e.contains("line 2: industry code 5299999"), "{e}");
        let e = parse_thresholds(t, &format!("{head}trade,x,52,-5,x\n"))
            .expect_err("negative")
            .to_string();
        assert!(e.contains("revenue_min_wan \"-5\""), "{e}");
    }
}
