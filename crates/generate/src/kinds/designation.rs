//! Designations (资质认定): qualifications such as 高新技术企业 or 专精特新"小巨人",
//! one row per enterprise, kind, level and year. Expiry years may lie after 2025.

use chrono::Datelike;
use rand::Rng;

use super::{base, reference_mutations};
use crate::emit::{FileSpec, Kind, Mutation};
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, col_date, pick};
use crate::world::World;

/// The designation kind.
pub struct Designation;

/// Kinds with their weight, possible levels and validity in years (0: no expiry).
const KINDS: &[(&str, u32, &[&str], i32)] = &[
    ("tech_sme", 30, &["provincial"], 1),
    ("high_tech", 25, &["national", "provincial"], 3),
    ("srdi", 15, &["provincial"], 3),
    ("leading", 8, &["national", "provincial", "city"], 0),
    ("tech_center", 8, &["national", "provincial", "city"], 0),
    ("engineering_center", 5, &["provincial", "city"], 5),
    ("key_lab", 4, &["provincial", "city"], 0),
    ("little_giant", 4, &["national"], 3),
    ("single_champion", 1, &["national"], 3),
];

fn pick_kind(rng: &mut R) -> usize {
    let total: u32 = KINDS.iter().map(|k| k.1).sum();
    let mut x = rng.random_range(0..total);
    for (i, k) in KINDS.iter().enumerate() {
        if x < k.1 {
            return i;
        }
        x -= k.1;
    }
    0
}

fn set_no_kind(r: &mut Row, _: &World, _: &mut R) {
    r.set("kind", V::Null);
}
fn set_unknown_kind(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "kind",
        V::Raw(pick(rng, &["优秀企业", "纳税大户"]).to_string()),
    );
}
fn set_unknown_level(r: &mut Row, _: &World, _: &mut R) {
    r.set("level", V::Raw("区级".to_string()));
}
fn set_order(r: &mut Row, _: &World, _: &mut R) {
    if let V::Year(y) = r.get("year") {
        let y = *y;
        r.set("expires_year", V::Year(y - 2));
    }
}
fn set_future(r: &mut Row, _: &World, _: &mut R) {
    r.set("year", V::Year(2099));
    r.set("expires_year", V::Null);
}
fn set_bad_year(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "year",
        V::Raw(pick(rng, &["21年", "2021-13-01"]).to_string()),
    );
}

impl Kind for Designation {
    fn name(&self) -> &'static str {
        "designation"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "designation_01_title.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市企业资质认定名单"),
                    blank_row: true,
                    sheet: "认定名单",
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("ref_name", "企业名称"),
                    col("kind", "认定类型"),
                    col("level", "级别"),
                    col("year", "认定年度"),
                    col("expires_year", "有效期至"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.3,
                by_name: false,
            },
            FileSpec {
                name: "designation_02_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "社会信用代码"),
                    col("kind", "资质名称"),
                    col("level", "级别"),
                    col_date("year", "认定日期"),
                    col_date("expires_year", "有效期至"),
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
                name: "designation_03_utf8.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "信用代码"),
                    col("kind", "荣誉类型"),
                    col("level", "级别"),
                    col("year", "认定年份"),
                    col("expires_year", "有效期至"),
                ],
                style: Style::default(),
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "designation_04_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("uscc", "uscc"),
                    col("ref_name", "企业名称"),
                    col("kind", "kind"),
                    col("level", "level"),
                    col("year", "year"),
                    col("expires_year", "expires_year"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.25,
                by_name: true,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        w.ents.iter().map(|e| u64::from(e.n_desig)).sum()
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        let e = &w.ents[i];
        let mut taken: Vec<usize> = vec![];
        for _ in 0..e.n_desig {
            let k = pick_kind(rng);
            if taken.contains(&k) {
                continue;
            }
            taken.push(k);
            let (kind, _, levels, valid) = KINDS[k];
            let first = (e.established.year() + 1).clamp(2015, 2025);
            let last = e.last_day().year().clamp(first, 2025);
            let year = rng.random_range(first..=last);
            let mut r = base(e);
            r.set("kind", V::Enum("designation_kind", kind));
            r.set(
                "level",
                V::Enum("designation_level", pick::<&str>(rng, levels)),
            );
            r.set("year", V::Year(year));
            r.set(
                "expires_year",
                if valid > 0 {
                    V::Year(year + valid)
                } else {
                    V::Null
                },
            );
            out.push(r);
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
                needs: &["level"],
                apply: set_unknown_level,
            },
            Mutation {
                codes: &["date_order"],
                needs: &["expires_year"],
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
                apply: set_bad_year,
            },
        ];
        m.extend(reference_mutations());
        m
    }

    fn conflict_needs(&self) -> &'static [&'static str] {
        &["expires_year"]
    }

    fn conflict(&self, row: &mut Row, _rng: &mut R) {
        let next = match (row.get("expires_year"), row.get("year")) {
            (V::Year(e), _) => e + 1,
            (_, V::Year(y)) => y + 3,
            _ => 2026,
        };
        row.set("expires_year", V::Year(next));
    }
}
