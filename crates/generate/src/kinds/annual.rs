//! Annual statistical returns (企业年度统计报表): one row per enterprise and year,
//! 2018–2025, for the enterprises that file them. Revenues follow each enterprise's
//! 2025 scale, so town totals land in different tiers.

use rand::Rng;

use super::{base, reference_mutations, round_money};
use crate::emit::{FileSpec, Kind, Mutation};
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, pick};
use crate::world::World;

/// The enterprise_annual kind.
pub struct Annual;

fn years(e: &crate::world::Ent) -> impl Iterator<Item = i32> + '_ {
    (2018..=2025).filter(|y| e.exists_in(*y))
}

fn set_no_year(r: &mut Row, _: &World, _: &mut R) {
    r.set("year", V::Null);
}
fn set_bad_year(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "year",
        V::Raw(pick(rng, &["23年", "1985", "二〇二三"]).to_string()),
    );
}
fn set_future_year(r: &mut Row, _: &World, _: &mut R) {
    r.set("year", V::Raw("2099".to_string()));
}
fn set_revenue_text(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "revenue",
        V::Raw(pick(rng, &["约50", "五十万", "12.3.4"]).to_string()),
    );
}
fn set_employees_fraction(r: &mut Row, _: &World, _: &mut R) {
    r.set("employees", V::Raw("12.5".to_string()));
}
fn set_revenue_negative(r: &mut Row, _: &World, _: &mut R) {
    r.set("revenue", V::Raw("-3000".to_string()));
}
fn set_employees_negative(r: &mut Row, _: &World, _: &mut R) {
    r.set("employees", V::Raw("-3".to_string()));
}
fn set_revenue_unit(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "revenue",
        V::Raw(pick(rng, &["12吨", "1.5兆元"]).to_string()),
    );
}
fn set_above_size(r: &mut Row, _: &World, _: &mut R) {
    r.set("above_size", V::Raw("待定".to_string()));
}

impl Kind for Annual {
    fn name(&self) -> &'static str {
        "enterprise_annual"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "annual_01_stats_bureau.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市企业主要经济指标年报（单位：万元）"),
                    blank_row: false,
                    sheet: "年报",
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("ref_name", "企业名称"),
                    col("year", "统计年度"),
                    col("revenue", "营业收入(万元)"),
                    col("gross_output", "工业总产值(万元)"),
                    col("profit", "利润总额(万元)"),
                    col("tax", "应交税金(万元)"),
                    col("rd_expense", "研发费用(万元)"),
                    col("export_value", "出口交货值(万元)"),
                    col("employees", "从业人员平均人数"),
                    col("above_size", "是否规上"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "annual_02_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "社会信用代码"),
                    col("year", "年份"),
                    col("revenue", "主营业务收入"),
                    col("gross_output", "工业总产值"),
                    col("profit", "利润总额"),
                    col("tax", "纳税总额"),
                    col("rd_expense", "R&D经费支出"),
                    col("export_value", "出口交货值"),
                    col("employees", "从业人数"),
                    col("above_size", "规模以上"),
                ],
                style: Style {
                    suffix: 0.7,
                    null_tokens: 0.3,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "annual_03_semicolon.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ';',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "信用代码"),
                    col("year", "报告期"),
                    col("revenue", "营业收入(元)"),
                    col("gross_output", "工业总产值(元)"),
                    col("profit", "利润总额(元)"),
                    col("tax", "税金总额(元)"),
                    col("rd_expense", "研发费用(元)"),
                    col("export_value", "出口交货值(元)"),
                    col("employees", "从业人员期末人数"),
                    col("above_size", "是否规上"),
                ],
                // No thousands separators here: commas would outnumber the semicolons
                // when ingestion sniffs the separator.
                style: Style::default(),
                share: 0.15,
                by_name: false,
            },
            FileSpec {
                name: "annual_04_by_name.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("ref_name", "企业名称"),
                    col("uscc", "统一社会信用代码"),
                    col("year", "统计年度"),
                    col("revenue", "营业收入（万元）"),
                    col("profit", "利润总额（万元）"),
                    col("tax", "税金总额（万元）"),
                    col("employees", "从业人员期末人数"),
                    col("above_size", "是否规上"),
                ],
                style: Style {
                    fullwidth: 0.3,
                    thousands: true,
                    ..Style::default()
                },
                share: 0.15,
                by_name: true,
            },
            FileSpec {
                name: "annual_05_bom.csv",
                format: FileFormat::Csv {
                    enc: Enc::Bom,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("year", "统计年度"),
                    col("revenue", "营业收入(亿元)"),
                    col("gross_output", "工业总产值(亿元)"),
                    col("profit", "利润总额(亿元)"),
                    col("tax", "税金总额(亿元)"),
                    col("rd_expense", "研发费用(亿元)"),
                    col("export_value", "出口交货值(亿元)"),
                    col("employees", "从业人员平均人数"),
                    col("above_size", "规模以上"),
                ],
                style: Style {
                    suffix: 0.2,
                    ..Style::default()
                },
                share: 0.15,
                by_name: false,
            },
            FileSpec {
                name: "annual_06_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("uscc", "uscc"),
                    col("ref_name", "企业名称"),
                    col("year", "year"),
                    col("revenue", "revenue"),
                    col("gross_output", "gross_output"),
                    col("profit", "profit"),
                    col("tax", "tax"),
                    col("rd_expense", "rd_expense"),
                    col("export_value", "export_value"),
                    col("employees", "employees"),
                    col("above_size", "above_size"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.15,
                by_name: true,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        w.ents
            .iter()
            .filter(|e| e.annual)
            .map(|e| years(e).count() as u64)
            .sum()
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        let e = &w.ents[i];
        if !e.annual {
            return;
        }
        let section = w
            .refs
            .industries
            .section_of(&e.industry)
            .unwrap_or("")
            .to_string();
        let industrial = matches!(section.as_str(), "B" | "C" | "D");
        let base_rev = (e.revenue / 100) as f64;
        let exporter = rng.random_bool(0.2);
        for y in years(e) {
            let growth = 0.72 + 0.28 * f64::from(y - 2018) / 7.0;
            let revenue = base_rev * growth * rng.random_range(0.9..1.1);
            let rev = round_money(revenue);
            let mut r = base(e);
            r.set("year", V::Year(y));
            r.set("revenue", V::Money(rev));
            r.set(
                "gross_output",
                if industrial {
                    V::Money(round_money(revenue * rng.random_range(0.92..1.08)))
                } else {
                    V::Null
                },
            );
            let margin = rng.random_range(-0.06..0.12);
            let profit = ((revenue * margin / 100.0).round() as i128) * 100 * 100;
            r.set("profit", V::Money(profit));
            r.set(
                "tax",
                V::Money(round_money(revenue * rng.random_range(0.015..0.06))),
            );
            r.set(
                "rd_expense",
                if rng.random_bool(0.8) {
                    V::Money(round_money(revenue * rng.random_range(0.0..0.05)))
                } else {
                    V::Null
                },
            );
            r.set(
                "export_value",
                if exporter {
                    V::Money(round_money(revenue * rng.random_range(0.02..0.3)))
                } else {
                    V::Null
                },
            );
            let emp = ((e.employees as f64) * rng.random_range(0.85..1.05))
                .round()
                .max(1.0) as i64;
            r.set("employees", V::Count(emp));
            let above = if industrial {
                revenue >= 2.0e7
            } else {
                revenue >= 5.0e7
            };
            r.set(
                "above_size",
                if rng.random_bool(0.1) {
                    V::Null
                } else {
                    V::Bool(above)
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
                apply: set_no_year,
            },
            Mutation {
                codes: &["invalid_date"],
                needs: &[],
                apply: set_bad_year,
            },
            Mutation {
                codes: &["future_date"],
                needs: &[],
                apply: set_future_year,
            },
            Mutation {
                codes: &["invalid_number"],
                needs: &[],
                apply: set_revenue_text,
            },
            Mutation {
                codes: &["invalid_number"],
                needs: &[],
                apply: set_employees_fraction,
            },
            Mutation {
                codes: &["negative_amount"],
                needs: &[],
                apply: set_revenue_negative,
            },
            Mutation {
                codes: &["negative_amount"],
                needs: &[],
                apply: set_employees_negative,
            },
            Mutation {
                codes: &["invalid_unit"],
                needs: &[],
                apply: set_revenue_unit,
            },
            Mutation {
                codes: &["unknown_enum_value"],
                needs: &["above_size"],
                apply: set_above_size,
            },
        ];
        m.extend(reference_mutations());
        m
    }

    fn conflict_needs(&self) -> &'static [&'static str] {
        &["revenue"]
    }

    fn conflict(&self, row: &mut Row, rng: &mut R) {
        if let V::Money(c) = row.get("revenue") {
            let c = *c + rng.random_range(1..500i128) * 1_000_000;
            row.set("revenue", V::Money(c));
        }
    }
}
