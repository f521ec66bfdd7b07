//! Investment deals (招商引资签约项目台账): the agreements behind most projects whose
//! investor comes from outside (and some of the others), plus agreements not (yet)
//! among the major projects. The investor's region of origin is a division code of
//! its province or city, or their names (浙江省杭州市); a local investor's is 大同.
//! Amounts are in 万元 or 亿元.

use chrono::{Datelike, Days, NaiveDate};
use rand::Rng;

use super::project::{Investor, plans};
use super::{REGIONS, bad_code, datong_cell, outsider, place_cells, region_cell, set_unknown_town};
use crate::emit::{FileSpec, Kind, Mutation};
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, date_between, pick, ymd};
use crate::world::{Status, World};

/// The deal kind.
pub struct InvestmentDeal;

/// Who signed: a firm of a region, or the enterprise itself (origin 大同).
#[derive(Debug, Clone)]
enum Party {
    Region {
        region: usize,
        name: String,
        uscc: String,
    },
    Local {
        name: String,
        uscc: String,
        county: String,
    },
}

/// One deal of an enterprise.
#[derive(Debug, Clone)]
struct Deal {
    id: String,
    signed: NaiveDate,
    party: Party,
    town: usize,
    contracted_wan: i64,
    funds_wan: Option<i64>,
    project_id: Option<String>,
}

/// The deals of enterprise `i`: from its projects, and sometimes one of its own.
fn deals(w: &World, i: usize) -> Vec<Deal> {
    let e = &w.ents[i];
    let Some(town) = e.town else { return vec![] };
    if e.kind != 1 || e.deregistered.is_some() || e.status != Status::Active {
        return vec![];
    }
    let class = w
        .refs
        .classes
        .iter()
        .find(|c| c.code == e.industry)
        .map(|c| c.name.as_str())
        .unwrap_or("");
    let mut rng = super::own_rng(e, "investment_deal");
    let mut out = vec![];
    let local = |e: &crate::world::Ent| Party::Local {
        name: e.name.clone(),
        uscc: e.uscc.clone(),
        county: e.county.clone(),
    };
    for p in plans(w, i) {
        let party = match &p.investor {
            Investor::Outside(o) if rng.random_bool(0.9) => Party::Region {
                region: o.region,
                name: o.name.clone(),
                uscc: o.uscc.clone(),
            },
            Investor::Outside(_) => continue,
            // The enterprise's parent or partner from elsewhere, or the enterprise.
            _ if rng.random_bool(0.25) => {
                let o = outsider(&mut rng, REGIONS.len(), class);
                Party::Region {
                    region: o.region,
                    name: o.name,
                    uscc: o.uscc,
                }
            }
            _ if rng.random_bool(0.15) => local(e),
            _ => continue,
        };
        let contracted_wan = if rng.random_bool(0.75) {
            p.planned_wan
        } else {
            let f = rng.random_range(0.6..1.2);
            ((p.planned_wan as f64 * f / 10.0).round() * 10.0).max(10.0) as i64
        };
        let last = *p.reports.last().unwrap_or(&p.signed);
        let spent = p.completed_wan(last).min(contracted_wan);
        let funds_wan = rng.random_bool(0.85).then_some(spent);
        out.push(Deal {
            id: String::new(),
            signed: p.signed,
            party,
            town: p.town,
            contracted_wan,
            funds_wan,
            project_id: rng.random_bool(0.8).then(|| p.id.clone()),
        });
    }
    let first = (e.established + Days::new(30)).max(ymd(2021, 1, 1));
    if rng.random_bool(0.04) && first <= ymd(2025, 11, 30) {
        let signed = date_between(&mut rng, first, ymd(2025, 11, 30));
        let o = outsider(&mut rng, REGIONS.len(), class);
        let wan = rng.random_range(2_000f64.ln()..100_000f64.ln()).exp();
        let contracted_wan = ((wan / 10.0).round() * 10.0) as i64;
        let funds_wan = rng
            .random_bool(0.7)
            .then(|| (contracted_wan as f64 * rng.random_range(0.0..0.6)).round() as i64);
        out.push(Deal {
            id: String::new(),
            signed,
            party: Party::Region {
                region: o.region,
                name: o.name,
                uscc: o.uscc,
            },
            town,
            contracted_wan,
            funds_wan,
            project_id: None,
        });
    }
    for (k, d) in out.iter_mut().enumerate() {
        d.id = format!(
            "ZS{}-{}-{:05}",
            d.signed.year(),
            crate::world::TOWNS[d.town].county,
            3 * i + k + 1
        );
    }
    out
}

fn set_origin(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "origin_code",
        V::Raw(pick(rng, &["990000", "美国", "1402", "外省"]).to_string()),
    );
}
fn set_town(r: &mut Row, _: &World, rng: &mut R) {
    set_unknown_town(r, rng);
}
fn set_negative(r: &mut Row, _: &World, rng: &mut R) {
    let c = *pick(rng, &["contracted_amount", "funds_in_place"]);
    r.set(
        c,
        V::Raw(pick(rng, &["-500万", "-2.5亿", "-80"]).to_string()),
    );
}
fn set_no_place(r: &mut Row, _: &World, _: &mut R) {
    r.set("town_id", V::Null);
    r.set("county_code", V::Null);
}
fn set_no_investor(r: &mut Row, _: &World, _: &mut R) {
    r.set("investor_name", V::Null);
}
fn set_amount_text(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "contracted_amount",
        V::Raw(pick(rng, &["约5亿", "五千万", "12.3.4"]).to_string()),
    );
}
fn set_amount_unit(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "contracted_amount",
        V::Raw(pick(rng, &["1.5兆元", "3000万美元"]).to_string()),
    );
}
fn set_bad_date(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "signed_on",
        V::Raw(pick(rng, &["2024-02-30", "24/3/15", "2023-13-01"]).to_string()),
    );
}
fn set_future(r: &mut Row, _: &World, rng: &mut R) {
    r.set("signed_on", V::Date(ymd(2099, rng.random_range(1..13), 28)));
}
fn set_bad_uscc(r: &mut Row, _: &World, rng: &mut R) {
    let bad = bad_code(r.get("investor_uscc"), rng);
    r.set("investor_uscc", V::Raw(bad));
}

impl Kind for InvestmentDeal {
    fn name(&self) -> &'static str {
        "investment_deal"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "investment_deal_01_signed.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市招商引资签约项目台账"),
                    blank_row: false,
                    sheet: "签约项目",
                },
                cols: vec![
                    col("deal_id", "签约项目编号"),
                    col("signed_on", "签约日期"),
                    col("investor_name", "签约企业"),
                    col("investor_uscc", "投资方统一社会信用代码"),
                    col("origin_code", "投资方所在地"),
                    col("town_id", "落地专业镇"),
                    col("county_code", "落地县区代码"),
                    col("industry_code", "行业代码"),
                    col("contracted_amount", "协议投资额(亿元)"),
                    col("funds_in_place", "到位资金(亿元)"),
                    col("project_id", "对应项目编号"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.3,
                by_name: false,
            },
            FileSpec {
                name: "investment_deal_02_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("deal_id", "协议编号"),
                    col("signed_on", "签约时间"),
                    col("investor_name", "投资方"),
                    col("investor_uscc", "投资方信用代码"),
                    col("origin_code", "来源地"),
                    col("town_id", "专业镇"),
                    col("county_code", "县区代码"),
                    col("contracted_amount", "签约金额"),
                    col("funds_in_place", "实际到位资金"),
                    col("project_id", "重点项目编号"),
                    col("_person", "招商责任人"),
                ],
                style: Style {
                    dates: &[0, 1, 2, 3, 4],
                    suffix: 0.9,
                    null_tokens: 0.25,
                    ..Style::default()
                },
                share: 0.25,
                by_name: false,
            },
            FileSpec {
                name: "investment_deal_03_tab.tsv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: '\t',
                    crlf: false,
                },
                cols: vec![
                    col("deal_id", "签约项目编号"),
                    col("signed_on", "签约日期"),
                    col("investor_name", "投资方名称"),
                    col("origin_code", "来源地区划代码"),
                    col("town_id", "所在专业镇"),
                    col("county_code", "行政区划代码"),
                    col("industry_code", "国民经济行业代码"),
                    col("contracted_amount", "签约投资额(万元)"),
                    col("funds_in_place", "累计到位资金(万元)"),
                ],
                style: Style {
                    dates: &[0, 3],
                    thousands: true,
                    fullwidth: 0.3,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "investment_deal_04_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("deal_id", "deal_id"),
                    col("signed_on", "signed_on"),
                    col("investor_name", "investor_name"),
                    col("investor_uscc", "investor_uscc"),
                    col("origin_code", "origin_code"),
                    col("town_id", "town_id"),
                    col("county_code", "county_code"),
                    col("industry_code", "industry_code"),
                    col("contracted_amount", "contracted_amount"),
                    col("funds_in_place", "funds_in_place"),
                    col("project_id", "project_id"),
                ],
                style: Style {
                    dates: &[0, 5],
                    typed: true,
                    ..Style::default()
                },
                share: 0.25,
                by_name: false,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        (0..w.ents.len()).map(|i| deals(w, i).len() as u64).sum()
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        let e = &w.ents[i];
        for d in deals(w, i) {
            let mut r = Row::default();
            r.set("deal_id", V::Text(d.id.clone()));
            r.set("signed_on", V::Date(d.signed));
            let (name, uscc, origin) = match &d.party {
                Party::Region { region, name, uscc } => {
                    (name.clone(), uscc.clone(), region_cell(rng, *region))
                }
                Party::Local { name, uscc, county } => {
                    (name.clone(), uscc.clone(), datong_cell(rng, county))
                }
            };
            r.set("investor_name", V::Text(name));
            r.set(
                "investor_uscc",
                if rng.random_bool(0.8) {
                    V::Code(uscc)
                } else {
                    V::Null
                },
            );
            r.set("origin_code", origin);
            place_cells(rng, d.town, &mut r);
            r.set(
                "industry_code",
                if rng.random_bool(0.7) {
                    V::Industry(e.industry.clone())
                } else {
                    V::Null
                },
            );
            r.set(
                "contracted_amount",
                V::Money(i128::from(d.contracted_wan) * 1_000_000),
            );
            r.set(
                "funds_in_place",
                d.funds_wan
                    .map(|f| V::Money(i128::from(f) * 1_000_000))
                    .unwrap_or(V::Null),
            );
            r.set("project_id", d.project_id.map(V::Text).unwrap_or(V::Null));
            out.push(r);
        }
    }

    fn mutations(&self) -> Vec<Mutation> {
        vec![
            Mutation {
                codes: &["unknown_division"],
                needs: &[],
                apply: set_origin,
            },
            Mutation {
                codes: &["unknown_division"],
                needs: &[],
                apply: set_town,
            },
            Mutation {
                codes: &["negative_amount"],
                needs: &[],
                apply: set_negative,
            },
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_place,
            },
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_investor,
            },
            Mutation {
                codes: &["invalid_number"],
                needs: &[],
                apply: set_amount_text,
            },
            Mutation {
                codes: &["invalid_unit"],
                needs: &[],
                apply: set_amount_unit,
            },
            Mutation {
                codes: &["invalid_date"],
                needs: &[],
                apply: set_bad_date,
            },
            Mutation {
                codes: &["future_date"],
                needs: &[],
                apply: set_future,
            },
            Mutation {
                codes: &["invalid_uscc"],
                needs: &["investor_uscc"],
                apply: set_bad_uscc,
            },
        ]
    }

    fn conflict_needs(&self) -> &'static [&'static str] {
        &["funds_in_place"]
    }

    fn conflict(&self, row: &mut Row, rng: &mut R) {
        // Funds in place grown since the other report of the deal.
        let c = match row.get("funds_in_place") {
            V::Money(c) => *c,
            _ => 0,
        };
        let more = rng.random_range(1..300i128) * 10 * 1_000_000;
        row.set("funds_in_place", V::Money(c + more));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::OUTSIDE_SHANXI;
    use rand::SeedableRng;

    #[test]
    fn every_region_spelling_resolves_to_its_province() {
        let d = townstat_domain::division::Divisions::datong();
        let mut rng = R::seed_from_u64(3);
        for (i, r) in REGIONS.iter().enumerate() {
            for _ in 0..40 {
                let text = match region_cell(&mut rng, i) {
                    V::Division(s) | V::Text(s) => s,
                    other => panic!("{other:?}"),
                };
                let code = d.resolve_region(&text).expect("a region");
                assert_eq!(&code[..2], &r.code[..2], "{text}");
            }
        }
        for county in ["140212", "140271"] {
            for _ in 0..20 {
                let text = match datong_cell(&mut rng, county) {
                    V::Division(s) | V::Text(s) => s,
                    other => panic!("{other:?}"),
                };
                assert!(d.resolve_region(&text).expect("Datong").starts_with("1402"));
            }
        }
        for bad in ["990000", "美国", "1402", "外省"] {
            assert!(d.resolve_region(bad).is_err(), "{bad}");
        }
        assert!(OUTSIDE_SHANXI < REGIONS.len());
        assert!(
            REGIONS[..OUTSIDE_SHANXI]
                .iter()
                .all(|r| !r.code.starts_with("14"))
        );
    }
}
