//! The quality ledger (质量品牌台账): certifications, standards an enterprise led,
//! trademarks, geographical indications, regional brands and platforms, held by a small
//! share of the enterprises (more in the towns; the towns' cooperatives hold their
//! brands and indications). Each row names its holder by USCC or name; certificates and
//! trademarks expire (the expiry may lie after the run date).

use chrono::{Datelike, Days, Months, NaiveDate};
use rand::Rng;

use super::{base, reference_mutations};
use crate::emit::{FileSpec, Kind, Mutation};
use crate::names::industry_word;
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, date_between, pick, ymd};
use crate::world::{Ent, World};

/// The quality-mark kind.
pub struct QualityMark;

/// Each town's brand (区域品牌, 商标 and 地理标志 titles).
const BRANDS: [&str; 10] = [
    "大同黄花",
    "大同医药",
    "平城轨道装备",
    "云冈煤机",
    "新荣石墨",
    "广灵再生金属",
    "云州纸业",
    "恒山黄芪",
    "左云活性炭",
    "大同数谷",
];

/// The industry-standard prefix of each town's trade (JB/T, YY/T …).
const SECTOR_STANDARDS: [&str; 10] = [
    "NY/T", "YY/T", "TB/T", "MT/T", "YB/T", "YS/T", "QB/T", "NY/T", "HG/T", "SJ/T",
];

/// Certifications.
const CERTIFICATIONS: &[&str] = &[
    "ISO 9001质量管理体系认证",
    "ISO 14001环境管理体系认证",
    "ISO 45001职业健康安全管理体系认证",
    "ISO 50001能源管理体系认证",
    "CE认证",
];

/// Kinds with weight, for: 0 any firm, 1 a town's firm, 2 a town's farm (coop).
const KINDS: &[(&str, u32, u8)] = &[
    ("international_certification", 30, 0),
    ("group_standard", 12, 0),
    ("industry_standard", 7, 0),
    ("national_standard", 3, 0),
    ("innovation_platform", 12, 0),
    ("public_service_platform", 6, 1),
    ("regional_brand", 6, 1),
    ("collective_mark", 4, 1),
    ("certification_mark", 3, 1),
    ("geographical_indication", 6, 2),
];

/// How many marks an enterprise holds (drawn from its own generator, so that the
/// row count is known before writing).
fn count(e: &Ent) -> usize {
    let p = match (e.kind, e.town) {
        (1, Some(_)) => 0.12,
        (1, None) => 0.03,
        (3, Some(0 | 7)) => 0.2,
        _ => return 0,
    };
    if e.established > ymd(2024, 12, 31) || e.deregistered.is_some() {
        return 0;
    }
    let mut rng = super::own_rng(e, "quality_mark");
    if !rng.random_bool(p) {
        return 0;
    }
    match rng.random_range(0..20) {
        0..=13 => 1,
        14..=18 => 2,
        _ => 3,
    }
}

/// The kinds an enterprise may hold (at least three).
fn kinds_for(e: &Ent) -> Vec<(&'static str, u32)> {
    KINDS
        .iter()
        .filter(|(_, _, who)| match (e.kind, e.town, who) {
            (3, _, 2) | (3, _, 1) => true,
            (3, _, _) => false,
            (_, Some(0 | 7), _) => true,
            (_, Some(_), 0 | 1) => true,
            (_, None, 0) => true,
            _ => false,
        })
        .map(|&(k, w, _)| (k, w))
        .chain((e.kind == 3).then_some(("group_standard", 4)))
        .collect()
}

fn years_after(d: NaiveDate, years: u32) -> NaiveDate {
    d.checked_add_months(Months::new(12 * years))
        .and_then(|x| x.pred_opt())
        .unwrap_or(d)
}

fn standard_title(rng: &mut R, word: &str) -> String {
    format!(
        "{word}{}",
        pick(
            rng,
            &[
                "技术条件",
                "通用技术要求",
                "生产技术规程",
                "质量分级",
                "检验方法"
            ]
        )
    )
}

fn mark_row(e: &Ent, w: &World, kind: &'static str, rng: &mut R) -> Row {
    let class = w
        .refs
        .classes
        .iter()
        .find(|c| c.code == e.industry)
        .map(|c| c.name.as_str())
        .unwrap_or("");
    // What a standard or a platform is about: one of the town's products, else the
    // trade (when its class name is short enough to read well).
    let word = match e.town {
        Some(t) => pick(rng, super::project::PRODUCTS[t]).0.to_string(),
        None => {
            let w = industry_word(class);
            if w.chars().count() >= 10 {
                "产品".to_string()
            } else {
                w
            }
        }
    };
    let brand = e.town.map(|t| BRANDS[t]).unwrap_or("大同");
    let from = (e.established + Days::new(180)).max(ymd(2012, 1, 1));
    let granted = date_between(rng, from, ymd(2025, 10, 31));
    let y = granted.year();
    let (level, identifier, title, expires) = match kind {
        "international_certification" => (
            "international",
            Some(format!(
                "{}{:02}{}{:05}R{}M",
                pick(rng, &["001", "016", "04"]),
                y % 100,
                pick(rng, &["Q", "E", "S"]),
                rng.random_range(0..100_000),
                rng.random_range(0..4)
            )),
            pick(rng, CERTIFICATIONS).to_string(),
            Some(years_after(granted, 3)),
        ),
        "group_standard" => {
            let (level, org) = *pick(
                rng,
                &[
                    ("national", "T/CNIA"),
                    ("national", "T/CAMET"),
                    ("provincial", "T/SXAS"),
                    ("provincial", "T/SXZL"),
                    ("city", "T/DTBX"),
                ],
            );
            (
                level,
                Some(format!("{org} {:03}-{y}", rng.random_range(1..300))),
                standard_title(rng, &word),
                None,
            )
        }
        "industry_standard" => (
            "national",
            Some(format!(
                "{} {}-{y}",
                e.town.map(|t| SECTOR_STANDARDS[t]).unwrap_or("JB/T"),
                rng.random_range(10_000..15_000)
            )),
            standard_title(rng, &word),
            None,
        ),
        "national_standard" => (
            "national",
            Some(format!("GB/T {}-{y}", rng.random_range(20_000..45_000))),
            standard_title(rng, &word),
            None,
        ),
        "innovation_platform" => {
            let (level, prefix, suffix) = *pick(
                rng,
                &[
                    ("national", "国家", "产业创新中心"),
                    ("provincial", "山西省", "技术创新中心"),
                    ("provincial", "山西省", "中试基地"),
                    ("city", "大同市", "工程技术研究中心"),
                    ("city", "大同市", "技术创新中心"),
                ],
            );
            (
                level,
                None,
                format!("{prefix}{word}{suffix}"),
                rng.random_bool(0.5).then(|| years_after(granted, 3)),
            )
        }
        "public_service_platform" => (
            *pick(rng, &["provincial", "city", "city"]),
            None,
            format!(
                "{brand}{}",
                pick(rng, &["产业公共服务平台", "检验检测公共服务平台"])
            ),
            rng.random_bool(0.4).then(|| years_after(granted, 3)),
        ),
        "regional_brand" => (
            *pick(rng, &["provincial", "city"]),
            None,
            pick(rng, &[brand.to_string(), format!("{brand}区域公用品牌")]).clone(),
            rng.random_bool(0.3).then(|| years_after(granted, 3)),
        ),
        "collective_mark" | "certification_mark" => (
            "national",
            Some(format!(
                "{}{}",
                rng.random_range(10_000_000..70_000_000),
                pick(rng, &["", "号"])
            )),
            brand.to_string(),
            Some(years_after(granted, 10)),
        ),
        _ => (
            "national",
            Some(format!("AGI{:05}", rng.random_range(1..4000))),
            brand.to_string(),
            None,
        ),
    };
    let mut r = base(e);
    r.set("kind", V::Enum("quality_mark_kind", kind));
    r.set("level", V::Enum("quality_mark_level", level));
    r.set("granted_on", V::Date(granted));
    r.set("expires_on", expires.map(V::Date).unwrap_or(V::Null));
    r.set("identifier", identifier.map(V::Text).unwrap_or(V::Null));
    r.set("title", V::Text(title));
    r
}

fn set_no_kind(r: &mut Row, _: &World, _: &mut R) {
    r.set("kind", V::Null);
}
fn set_unknown_kind(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "kind",
        V::Raw(pick(rng, &["驰名商标", "中华老字号", "名牌产品"]).to_string()),
    );
}
fn set_unknown_level(r: &mut Row, _: &World, rng: &mut R) {
    r.set("level", V::Raw(pick(rng, &["区级", "县级"]).to_string()));
}
fn set_order(r: &mut Row, _: &World, rng: &mut R) {
    if let V::Date(g) = r.get("granted_on").clone() {
        r.set(
            "expires_on",
            V::Date(g - Days::new(rng.random_range(30..1000))),
        );
    }
}
fn set_future(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "granted_on",
        V::Date(ymd(2099, rng.random_range(1..13), 28)),
    );
}
fn set_bad_date(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "granted_on",
        V::Raw(pick(rng, &["2022-02-29", "22/6/1", "2021-13-01"]).to_string()),
    );
}

impl Kind for QualityMark {
    fn name(&self) -> &'static str {
        "quality_mark"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "quality_mark_01_ledger.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市专业镇质量品牌建设台账"),
                    blank_row: true,
                    sheet: "质量品牌",
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("ref_name", "企业名称"),
                    col("kind", "品牌类型"),
                    col("level", "级别"),
                    col("title", "名称"),
                    col("identifier", "编号"),
                    col("granted_on", "认定日期"),
                    col("expires_on", "有效期至"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.3,
                by_name: false,
            },
            FileSpec {
                name: "quality_mark_02_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "社会信用代码"),
                    col("kind", "类型"),
                    col("level", "级别"),
                    col("title", "品牌名称"),
                    col("identifier", "注册号"),
                    col("granted_on", "授予日期"),
                    col("expires_on", "到期日期"),
                ],
                style: Style {
                    dates: &[0, 1, 2, 3, 4],
                    null_tokens: 0.3,
                    ..Style::default()
                },
                share: 0.25,
                by_name: false,
            },
            FileSpec {
                name: "quality_mark_03_multiline.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "信用代码"),
                    col("ref_name", "企业名称"),
                    col("kind", "质量品牌类型"),
                    col("level", "级别"),
                    col("title", "名称"),
                    col("identifier", "证书编号"),
                    col("granted_on", "获证日期"),
                    col("expires_on", "有效期至"),
                ],
                style: Style {
                    dates: &[0, 1, 3],
                    multiline: true,
                    fullwidth: 0.3,
                    ..Style::default()
                },
                share: 0.2,
                by_name: true,
            },
            FileSpec {
                name: "quality_mark_04_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("uscc", "uscc"),
                    col("ref_name", "企业名称"),
                    col("kind", "kind"),
                    col("level", "level"),
                    col("granted_on", "granted_on"),
                    col("expires_on", "expires_on"),
                    col("identifier", "identifier"),
                    col("title", "title"),
                ],
                style: Style {
                    dates: &[0, 5],
                    typed: true,
                    ..Style::default()
                },
                share: 0.25,
                by_name: true,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        w.ents.iter().map(|e| count(e) as u64).sum()
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        let e = &w.ents[i];
        let n = count(e);
        if n == 0 {
            return;
        }
        // Distinct kinds, so that no two marks share the key.
        let mut pool = kinds_for(e);
        for _ in 0..n {
            let total: u32 = pool.iter().map(|k| k.1).sum();
            let mut x = rng.random_range(0..total);
            let mut k = 0;
            while x >= pool[k].1 {
                x -= pool[k].1;
                k += 1;
            }
            let (kind, _) = pool.remove(k);
            out.push(mark_row(e, w, kind, rng));
        }
    }

    fn mutations(&self) -> Vec<Mutation> {
        let mut m = vec![
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_kind,
            },
            Mutation {
                codes: &["unknown_enum_value"],
                needs: &[],
                apply: set_unknown_kind,
            },
            Mutation {
                codes: &["unknown_enum_value"],
                needs: &[],
                apply: set_unknown_level,
            },
            Mutation {
                codes: &["date_order"],
                needs: &["expires_on"],
                apply: set_order,
            },
            Mutation {
                codes: &["future_date"],
                needs: &[],
                apply: set_future,
            },
            Mutation {
                codes: &["invalid_date"],
                needs: &[],
                apply: set_bad_date,
            },
        ];
        m.extend(reference_mutations());
        m
    }

    fn conflict_needs(&self) -> &'static [&'static str] {
        &["expires_on"]
    }

    fn conflict(&self, row: &mut Row, _rng: &mut R) {
        // The same mark with another expiry (renewed, or corrected).
        let next = match (row.get("expires_on"), row.get("granted_on")) {
            (V::Date(d), _) => years_after(*d, 1),
            (_, V::Date(g)) => years_after(*g, 3),
            _ => ymd(2028, 12, 31),
        };
        row.set("expires_on", V::Date(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::TOWNS;

    #[test]
    fn every_holder_has_three_kinds_to_choose_from() {
        for kind in [1u8, 3] {
            for town in [None, Some(0usize), Some(4), Some(7), Some(9)] {
                let e = Ent {
                    kind,
                    town,
                    ..test_ent()
                };
                let pool = kinds_for(&e);
                assert!(pool.len() >= 3, "{kind} {town:?}: {pool:?}");
                let mut names: Vec<_> = pool.iter().map(|k| k.0).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), pool.len(), "{pool:?}");
            }
        }
        assert_eq!(TOWNS.len(), BRANDS.len());
    }

    fn test_ent() -> Ent {
        Ent {
            uscc: String::new(),
            name: String::new(),
            kind: 1,
            county: String::new(),
            town: None,
            industry: String::new(),
            established: ymd(2010, 1, 1),
            deregistered: None,
            status: crate::world::Status::Active,
            div: crate::world::Div::Current,
            capital: None,
            shared_name: false,
            revenue: 0,
            employees: 1,
            annual: false,
            employment: false,
            n_desig: 0,
            n_patents: 0,
            n_deals: 0,
        }
    }
}
