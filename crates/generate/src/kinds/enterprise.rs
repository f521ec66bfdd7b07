//! Enterprise registry files (市场主体登记): one row per enterprise. Division codes
//! come in every accepted form, including legacy codes and missing codes with an
//! address, which load with warnings.

use rand::Rng;

use crate::emit::{FileSpec, Kind, Mutation};
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, pick, ymd};
use crate::world::{Div, Ent, Status, World, address};

/// The enterprise kind.
#[derive(Default)]
pub struct Enterprise {
    next_fresh: usize,
}

fn entity_kind(kind: u8) -> &'static str {
    match kind {
        1 => "enterprise",
        2 => "individual",
        _ => "cooperative",
    }
}

/// The registry row of an enterprise, with the warnings its division yields.
fn ent_row(w: &World, e: &Ent, rng: &mut R) -> Row {
    let refs = &w.refs;
    let mut warn = vec![];
    let mut div = e.div;
    let with_township = rng.random_bool(0.4);
    let mut addr = address(rng, refs, &e.county, with_township);
    match div {
        Div::FromAddress => {
            // The address must name the county and nothing that matches first.
            let ok = |a: &str| {
                refs.divisions
                    .county_from_address(a)
                    .is_some_and(|c| c.code == e.county && c.warnings.len() == 1)
            };
            if !ok(&addr) {
                addr = address(rng, refs, &e.county, false);
            }
            if ok(&addr) {
                warn.push("division_from_address");
            } else {
                div = Div::Current;
            }
        }
        Div::Nanjiao => {
            addr = format!("山西省大同市南郊区{}号", rng.random_range(1..300));
            let ok = refs
                .divisions
                .county_from_address(&addr)
                .is_some_and(|c| c.code == e.county && c.warnings.len() == 2);
            if ok {
                warn.extend(["division_from_address", "legacy_division_split"]);
            } else {
                div = Div::Current;
            }
        }
        Div::LegacySplit => warn.push("legacy_division_split"),
        _ => {}
    }
    let division = match div {
        Div::Current => V::Division(e.county.clone()),
        Div::Township9(i) => V::Division(refs.townships[i].0.clone()),
        Div::Township12(i) => V::Division(format!("{}000", refs.townships[i].0)),
        Div::Legacy(code) => V::Division(code.to_string()),
        Div::LegacySplit => V::Division("140211".to_string()),
        Div::FromAddress | Div::Nanjiao => V::Null,
    };
    Row {
        vals: vec![
            ("uscc", V::Code(e.uscc.clone())),
            ("name", V::Text(e.name.clone())),
            ("entity_kind", V::Enum("entity_kind", entity_kind(e.kind))),
            ("established_on", V::Date(e.established)),
            (
                "deregistered_on",
                e.deregistered.map(V::Date).unwrap_or(V::Null),
            ),
            ("status", V::Enum("status", e.status.canonical())),
            ("division_code", division),
            ("address", V::Text(addr)),
            ("industry_code", V::Industry(e.industry.clone())),
            (
                "registered_capital",
                e.capital.map(V::Money).unwrap_or(V::Null),
            ),
        ],
        warn,
        name_ok: e.name_links(),
        links: vec![],
    }
}

const FULL_DATES: &[u8] = &[0, 1, 2, 3, 4];

fn set_no_name(r: &mut Row, _: &World, _: &mut R) {
    r.set("name", V::Null);
}
fn set_bad_uscc(r: &mut Row, _: &World, rng: &mut R) {
    let bad = super::bad_uscc(r, rng);
    r.set("uscc", V::Raw(bad));
}
fn set_bad_date(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "established_on",
        V::Raw(pick(rng, &["23/5/1", "2023-13-01", "2019年2月30日"]).to_string()),
    );
}
fn set_future(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "established_on",
        V::Date(ymd(2099, rng.random_range(1..13), 1)),
    );
    r.set("deregistered_on", V::Null);
    r.set("status", V::Enum("status", Status::Active.canonical()));
}
fn set_order(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "established_on",
        V::Date(ymd(2016, rng.random_range(1..13), 15)),
    );
    r.set(
        "deregistered_on",
        V::Date(ymd(2013, rng.random_range(1..13), 3)),
    );
    r.set(
        "status",
        V::Enum("status", Status::Deregistered.canonical()),
    );
}
fn set_capital_text(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "registered_capital",
        V::Raw(pick(rng, &["五十万", "约50", "12.3.4"]).to_string()),
    );
}
fn set_capital_negative(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "registered_capital",
        V::Raw(pick(rng, &["-50", "-300万元"]).to_string()),
    );
}
fn set_capital_unit(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "registered_capital",
        V::Raw(pick(rng, &["12吨", "1.5兆元"]).to_string()),
    );
}
fn set_industry(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "industry_code",
        V::Raw(pick(rng, &["9999", "C9999"]).to_string()),
    );
}
fn set_division_unknown(r: &mut Row, _: &World, _: &mut R) {
    r.set("division_code", V::Raw("140299".to_string()));
}
fn set_division_outside(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "division_code",
        V::Raw(pick(rng, &["140105", "110105"]).to_string()),
    );
}
fn set_status(r: &mut Row, _: &World, _: &mut R) {
    r.set("status", V::Raw("休眠".to_string()));
}

impl Kind for Enterprise {
    fn name(&self) -> &'static str {
        "enterprise"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "registry_01_market_utf8.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("name", "企业名称"),
                    col("entity_kind", "市场主体类型"),
                    col("established_on", "成立日期"),
                    col("deregistered_on", "核准注销日期"),
                    col("status", "登记状态"),
                    col("division_code", "所属区县代码"),
                    col("address", "住所"),
                    col("industry_code", "国民经济行业代码"),
                    col("registered_capital", "注册资本(万元)"),
                ],
                style: Style {
                    dates: &[0, 1],
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "registry_02_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "社会信用代码"),
                    col("name", "市场主体名称"),
                    col("entity_kind", "企业类型"),
                    col("established_on", "成立时间"),
                    col("deregistered_on", "注销日期"),
                    col("status", "经营状态"),
                    col("division_code", "行政区划代码"),
                    col("address", "注册地址"),
                    col("industry_code", "行业代码"),
                    col("registered_capital", "注册资本"),
                    col("_person", "法定代表人"),
                ],
                style: Style {
                    dates: FULL_DATES,
                    suffix: 0.8,
                    fullwidth: 0.4,
                    null_tokens: 0.3,
                    ..Style::default()
                },
                share: 0.15,
                by_name: false,
            },
            FileSpec {
                name: "registry_03_bom.csv",
                format: FileFormat::Csv {
                    enc: Enc::Bom,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "信用代码"),
                    col("name", "名称"),
                    col("established_on", "注册日期"),
                    col("deregistered_on", "吊销日期"),
                    col("status", "登记状态"),
                    col("division_code", "区划代码"),
                    col("address", "地址"),
                    col("industry_code", "所属行业代码"),
                    col("registered_capital", "注册资本(元)"),
                    col("_phone", "联系电话"),
                ],
                style: Style {
                    dates: &[3, 4],
                    thousands: true,
                    fullwidth: 0.2,
                    ..Style::default()
                },
                share: 0.15,
                by_name: false,
            },
            FileSpec {
                name: "registry_04_title.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市市场主体登记信息（截至2025年12月31日）"),
                    blank_row: true,
                    sheet: "登记信息",
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("name", "企业名称"),
                    col("entity_kind", "企业类型"),
                    col("established_on", "成立日期"),
                    col("deregistered_on", "注销日期"),
                    col("status", "登记状态"),
                    col("division_code", "行政区划代码"),
                    col("address", "住所"),
                    col("industry_code", "行业代码"),
                    col("registered_capital", "注册资本（万元）"),
                ],
                style: Style {
                    dates: &[0, 3],
                    typed: true,
                    fullwidth: 0.2,
                    ..Style::default()
                },
                share: 0.15,
                by_name: false,
            },
            FileSpec {
                name: "registry_05_tab.tsv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: '\t',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("name", "企业名称"),
                    col("entity_kind", "市场主体类型"),
                    col("established_on", "成立日期"),
                    col("deregistered_on", "注销日期"),
                    col("status", "经营状态"),
                    col("division_code", "区划代码"),
                    col("address", "住所"),
                    col("industry_code", "行业代码"),
                    col("registered_capital", "注册资本"),
                    col("_person", "负责人"),
                ],
                style: Style {
                    dates: &[1, 2],
                    suffix: 0.5,
                    ..Style::default()
                },
                share: 0.1,
                by_name: false,
            },
            FileSpec {
                name: "registry_06_multiline.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "统一社会信用代码"),
                    col("name", "企业名称"),
                    col("entity_kind", "市场主体类型"),
                    col("established_on", "成立日期"),
                    col("deregistered_on", "注销日期"),
                    col("status", "登记状态"),
                    col("division_code", "行政区划代码"),
                    col("address", "住所"),
                    col("industry_code", "国民经济行业代码"),
                    col("registered_capital", "注册资本(万元)"),
                ],
                style: Style {
                    dates: FULL_DATES,
                    multiline: true,
                    ..Style::default()
                },
                share: 0.1,
                by_name: false,
            },
            FileSpec {
                name: "registry_07_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("uscc", "uscc"),
                    col("name", "name"),
                    col("entity_kind", "entity_kind"),
                    col("established_on", "established_on"),
                    col("deregistered_on", "deregistered_on"),
                    col("status", "status"),
                    col("division_code", "division_code"),
                    col("address", "address"),
                    col("industry_code", "industry_code"),
                    col("registered_capital", "registered_capital"),
                ],
                style: Style {
                    dates: &[0, 5],
                    typed: true,
                    ..Style::default()
                },
                share: 0.15,
                by_name: false,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        w.ents.len() as u64
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        out.push(ent_row(w, &w.ents[i], rng));
    }

    fn mutations(&self) -> Vec<Mutation> {
        vec![
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_name,
            },
            Mutation {
                codes: &["invalid_uscc"],
                needs: &[],
                apply: set_bad_uscc,
            },
            Mutation {
                codes: &["invalid_date"],
                needs: &[],
                apply: set_bad_date,
            },
            Mutation {
                codes: &["future_date"],
                needs: &["status"],
                apply: set_future,
            },
            Mutation {
                codes: &["date_order"],
                needs: &["deregistered_on"],
                apply: set_order,
            },
            Mutation {
                codes: &["invalid_number"],
                needs: &["registered_capital"],
                apply: set_capital_text,
            },
            Mutation {
                codes: &["negative_amount"],
                needs: &["registered_capital"],
                apply: set_capital_negative,
            },
            Mutation {
                codes: &["invalid_unit"],
                needs: &["registered_capital"],
                apply: set_capital_unit,
            },
            Mutation {
                codes: &["unknown_industry_code"],
                needs: &[],
                apply: set_industry,
            },
            Mutation {
                codes: &["unknown_division"],
                needs: &[],
                apply: set_division_unknown,
            },
            Mutation {
                codes: &["outside_city"],
                needs: &[],
                apply: set_division_outside,
            },
            Mutation {
                codes: &["unknown_enum_value"],
                needs: &["status"],
                apply: set_status,
            },
        ]
    }

    fn conflict_needs(&self) -> &'static [&'static str] {
        &["registered_capital"]
    }

    fn conflict(&self, row: &mut Row, rng: &mut R) {
        let old = match row.get("registered_capital") {
            V::Money(c) => *c,
            _ => 0,
        };
        row.set(
            "registered_capital",
            V::Money(old + rng.random_range(1..50i128) * 1_000_000),
        );
    }

    fn fresh(&mut self, w: &World, rng: &mut R) -> Option<Row> {
        let e = w.fresh.get(self.next_fresh)?;
        self.next_fresh += 1;
        Some(ent_row(w, e, rng))
    }
}
