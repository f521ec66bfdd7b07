//! Social-insurance monthly returns (社保参保月报): one row per enterprise and month,
//! 2019-01 to 2025-12, while the enterprise exists.

use chrono::{Datelike, NaiveDate};
use rand::Rng;

use super::{base, reference_mutations};
use crate::emit::{FileSpec, Kind, Mutation};
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, pick, ymd};
use crate::world::{Ent, World};

/// The employment kind.
pub struct Employment;

fn months(e: &Ent) -> impl Iterator<Item = NaiveDate> + use<> {
    let start = ymd(e.established.year(), e.established.month(), 1).max(ymd(2019, 1, 1));
    // The month of deregistration is not reported.
    let end = match e.deregistered {
        Some(d) => ymd(d.year(), d.month(), 1),
        None => ymd(2026, 1, 1),
    };
    let mut m = start;
    std::iter::from_fn(move || {
        if m >= end {
            return None;
        }
        let this = m;
        m = m.checked_add_months(chrono::Months::new(1))?;
        Some(this)
    })
}

fn set_no_insured(r: &mut Row, _: &World, _: &mut R) {
    r.set("insured", V::Null);
}
fn set_bad_period(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "period",
        V::Raw(pick(rng, &["2023-13", "23-05", "2023年13月"]).to_string()),
    );
}
fn set_future_period(r: &mut Row, _: &World, rng: &mut R) {
    r.set("period", V::Month(ymd(2099, rng.random_range(1..13), 1)));
}
fn set_insured_text(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "insured",
        V::Raw(pick(rng, &["12.5", "约50", "五十"]).to_string()),
    );
}
fn set_separations_negative(r: &mut Row, _: &World, _: &mut R) {
    r.set("separations", V::Raw("-3".to_string()));
}
fn set_wage_negative(r: &mut Row, _: &World, _: &mut R) {
    r.set("wage_total", V::Raw("-1200".to_string()));
}
fn set_wage_unit(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "wage_total",
        V::Raw(pick(rng, &["1.5兆元", "12吨"]).to_string()),
    );
}

impl Kind for Employment {
    fn name(&self) -> &'static str {
        "employment"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "employment_01_insurance.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("period", "所属期"),
                    col("insured", "参保人数"),
                    col("wage_total", "缴费工资总额(元)"),
                    col("new_hires", "新增就业人数"),
                    col("separations", "减少人数"),
                    col("trained", "培训人次"),
                ],
                style: Style::default(),
                share: 0.25,
                by_name: false,
            },
            FileSpec {
                name: "employment_02_title.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市参保单位月度参保情况"),
                    blank_row: false,
                    sheet: "参保月报",
                },
                cols: vec![
                    col("uscc", "信用代码"),
                    col("ref_name", "企业名称"),
                    col("period", "年月"),
                    col("insured", "在职职工人数"),
                    col("wage_total", "工资总额(万元)"),
                    col("new_hires", "新招用人数"),
                    col("separations", "离职人数"),
                    col("trained", "技能培训人数"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.15,
                by_name: false,
            },
            FileSpec {
                name: "employment_03_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "社会信用代码"),
                    col("period", "统计期"),
                    col("insured", "参保人数"),
                    col("wage_total", "工资总额"),
                    col("new_hires", "新增就业人数"),
                    col("separations", "减少人数"),
                ],
                style: Style {
                    suffix: 0.6,
                    thousands: true,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "employment_04_tab.tsv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: '\t',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("period", "所属期"),
                    col("insured", "参保人数"),
                    col("wage_total", "缴费工资总额"),
                    col("new_hires", "新招用人数"),
                    col("separations", "离职人数"),
                    col("trained", "培训人次"),
                ],
                style: Style {
                    null_tokens: 0.4,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "employment_05_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("uscc", "uscc"),
                    col("ref_name", "企业名称"),
                    col("period", "period"),
                    col("insured", "insured"),
                    col("wage_total", "wage_total"),
                    col("new_hires", "new_hires"),
                    col("separations", "separations"),
                    col("trained", "trained"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.2,
                by_name: true,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        w.ents
            .iter()
            .filter(|e| e.employment)
            .map(|e| months(e).count() as u64)
            .sum()
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        let e = &w.ents[i];
        if !e.employment {
            return;
        }
        let wage = rng.random_range(4200..9000i64);
        let mut insured = ((e.employees as f64) * rng.random_range(0.8..1.0))
            .round()
            .max(1.0) as i64;
        for m in months(e) {
            let hires = if rng.random_bool(0.3) {
                rng.random_range(0..=(insured / 10 + 1))
            } else {
                0
            };
            let leaves = if rng.random_bool(0.3) {
                rng.random_range(0..=(insured / 12 + 1))
                    .min(insured - 1)
                    .max(0)
            } else {
                0
            };
            insured = (insured + hires - leaves).max(1);
            let mut r = base(e);
            r.set("period", V::Month(m));
            r.set("insured", V::Count(insured));
            let monthly = wage + i64::from(m.year() - 2019) * 250;
            r.set(
                "wage_total",
                V::Money(i128::from(insured * monthly / 100) * 100 * 100),
            );
            r.set("new_hires", V::Count(hires));
            r.set("separations", V::Count(leaves));
            let trained = match rng.random_range(0..10) {
                0 => V::Null,
                1 | 2 => V::Count(rng.random_range(1..=insured.max(1))),
                _ => V::Count(0),
            };
            r.set("trained", trained);
            out.push(r);
        }
    }

    fn mutations(&self) -> Vec<Mutation> {
        let mut m = vec![
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_insured,
            },
            Mutation {
                codes: &["invalid_date"],
                needs: &[],
                apply: set_bad_period,
            },
            Mutation {
                codes: &["future_date"],
                needs: &[],
                apply: set_future_period,
            },
            Mutation {
                codes: &["invalid_number"],
                needs: &[],
                apply: set_insured_text,
            },
            Mutation {
                codes: &["negative_amount"],
                needs: &["separations"],
                apply: set_separations_negative,
            },
            Mutation {
                codes: &["negative_amount"],
                needs: &["wage_total"],
                apply: set_wage_negative,
            },
            Mutation {
                codes: &["invalid_unit"],
                needs: &["wage_total"],
                apply: set_wage_unit,
            },
        ];
        m.extend(reference_mutations());
        m
    }

    fn conflict_needs(&self) -> &'static [&'static str] {
        &["insured"]
    }

    fn conflict(&self, row: &mut Row, rng: &mut R) {
        if let V::Count(n) = row.get("insured") {
            let n = *n + rng.random_range(1..6);
            row.set("insured", V::Count(n));
        }
    }
}
