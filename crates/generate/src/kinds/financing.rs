//! Financing deals (企业融资): loans, equity, guide funds, bonds, listings, leases and
//! guarantees, in 元, 万元 or 亿元. Some files carry a deal number; in the others the
//! deal id is derived from the row, so no two deals may agree on every field it hashes.

use std::collections::HashSet;

use chrono::Datelike;
use rand::Rng;

use super::{base, reference_mutations};
use crate::emit::{FileSpec, Kind, Mutation};
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, date_between, pick, ymd};
use crate::world::World;

/// The financing kind.
#[derive(Default)]
pub struct Financing {
    seq: u64,
    derived: HashSet<String>,
}

/// Canonical value, weight, amount range in 万元, institutions.
type Instrument = (&'static str, u32, (i64, i64), &'static [&'static str]);

/// The instruments deals are drawn from.
const INSTRUMENTS: &[Instrument] = &[
    (
        "bank_loan",
        40,
        (50, 3000),
        &[
            "中国工商银行大同分行",
            "中国建设银行大同分行",
            "中国农业银行大同分行",
            "中国银行大同分行",
            "晋商银行大同分行",
            "大同农商银行",
            "交通银行大同分行",
            "邮储银行大同市分行",
        ],
    ),
    (
        "equity",
        12,
        (500, 20000),
        &[
            "山西省中小企业发展基金",
            "深创投",
            "山西金控资本",
            "晋阳创投",
        ],
    ),
    (
        "guide_fund",
        8,
        (1000, 10000),
        &["大同市产业引导基金", "山西省综改区产业引导基金"],
    ),
    ("bond", 5, (10000, 100000), &["中信证券", "山西证券"]),
    (
        "listing",
        4,
        (20000, 150000),
        &["中信建投证券", "山西证券", "国泰君安证券"],
    ),
    (
        "lease",
        12,
        (200, 3000),
        &["远东国际融资租赁", "山西金融租赁"],
    ),
    (
        "guarantee",
        19,
        (100, 1000),
        &["大同市融资担保有限公司", "山西省融资再担保集团"],
    ),
];

const MARKETS: &[&str] = &[
    "main_board",
    "chinext",
    "star",
    "bse",
    "neeq",
    "regional_equity",
    "overseas",
];

fn set_no_amount(r: &mut Row, _: &World, _: &mut R) {
    r.set("amount", V::Null);
}
fn set_zero_amount(r: &mut Row, _: &World, rng: &mut R) {
    r.set("amount", V::Raw(pick(rng, &["0", "-500万"]).to_string()));
}
fn set_currency(r: &mut Row, _: &World, rng: &mut R) {
    r.set("currency", V::Raw(pick(rng, &["USD", "美元"]).to_string()));
}
fn set_amount_unit(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "amount",
        V::Raw(pick(rng, &["1.5兆元", "12吨"]).to_string()),
    );
}
fn set_amount_text(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "amount",
        V::Raw(pick(rng, &["五十万", "约50", "12.3.4"]).to_string()),
    );
}
fn set_instrument(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "instrument",
        V::Raw(pick(rng, &["众筹", "民间借贷"]).to_string()),
    );
}
fn set_bad_date(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "occurred_on",
        V::Raw(pick(rng, &["23/5/1", "2023-13-01"]).to_string()),
    );
}
fn set_future(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "occurred_on",
        V::Date(ymd(2099, rng.random_range(1..13), 28)),
    );
}
fn set_no_instrument(r: &mut Row, _: &World, _: &mut R) {
    r.set("instrument", V::Null);
}

impl Kind for Financing {
    fn name(&self) -> &'static str {
        "financing"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "financing_01_ledger.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市企业融资台账"),
                    blank_row: true,
                    sheet: "融资台账",
                },
                cols: vec![
                    col("deal_id", "业务编号"),
                    col("uscc", "统一社会信用代码"),
                    col("ref_name", "企业名称"),
                    col("occurred_on", "放款日期"),
                    col("instrument", "融资方式"),
                    col("amount", "金额（亿元）"),
                    col("currency", "币种"),
                    col("institution", "金融机构"),
                    col("market", "上市板块"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.25,
                by_name: false,
            },
            FileSpec {
                name: "financing_02_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("uscc", "信用代码"),
                    col("occurred_on", "融资日期"),
                    col("instrument", "融资类型"),
                    col("amount", "融资金额"),
                    col("currency", "币种"),
                    col("institution", "投资机构"),
                    col("market", "上市板块"),
                ],
                style: Style {
                    dates: &[0, 1, 2, 3, 4],
                    suffix: 0.85,
                    null_tokens: 0.2,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "financing_03_semicolon.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ';',
                    crlf: false,
                },
                cols: vec![
                    col("deal_id", "编号"),
                    col("uscc", "社会信用代码"),
                    col("occurred_on", "日期"),
                    col("instrument", "融资类型"),
                    col("amount", "融资金额(万元)"),
                    col("currency", "币种"),
                    col("institution", "出资方"),
                    col("market", "上市板块"),
                ],
                style: Style {
                    dates: &[0, 3, 5],
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "financing_04_bom.csv",
                format: FileFormat::Csv {
                    enc: Enc::Bom,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("ref_name", "融资主体"),
                    col("uscc", "统一社会信用代码"),
                    col("occurred_on", "融资日期"),
                    col("instrument", "融资方式"),
                    col("amount", "金额(万元)"),
                    col("institution", "金融机构"),
                    col("market", "上市板块"),
                ],
                style: Style {
                    dates: &[1, 4],
                    fullwidth: 0.3,
                    thousands: true,
                    ..Style::default()
                },
                share: 0.15,
                by_name: true,
            },
            FileSpec {
                name: "financing_05_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("deal_id", "deal_id"),
                    col("uscc", "uscc"),
                    col("ref_name", "融资主体"),
                    col("occurred_on", "occurred_on"),
                    col("instrument", "instrument"),
                    col("amount", "amount"),
                    col("currency", "currency"),
                    col("institution", "institution"),
                    col("market", "market"),
                ],
                style: Style {
                    dates: &[0, 5],
                    typed: true,
                    ..Style::default()
                },
                share: 0.2,
                by_name: true,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        w.ents.iter().map(|e| u64::from(e.n_deals)).sum()
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        let e = &w.ents[i];
        let start = e.established.max(ymd(2015, 1, 1));
        let end = e.last_day();
        if start > end {
            return;
        }
        let total: u32 = INSTRUMENTS.iter().map(|x| x.1).sum();
        for _ in 0..e.n_deals {
            let mut x = rng.random_range(0..total);
            let mut k = 0;
            while x >= INSTRUMENTS[k].1 {
                x -= INSTRUMENTS[k].1;
                k += 1;
            }
            let (instrument, _, (lo, hi), institutions) = INSTRUMENTS[k];
            let date = date_between(rng, start, end);
            let mut wan = rng.random_range(lo..=hi);
            let institution = if rng.random_bool(0.9) {
                Some(pick(rng, institutions).to_string())
            } else {
                None
            };
            // The derived deal id hashes these fields: keep them distinct per deal.
            loop {
                let key = format!("{}|{date}|{instrument}|{wan}|{institution:?}", e.uscc);
                if self.derived.insert(key) {
                    break;
                }
                wan += 1;
            }
            self.seq += 1;
            let mut r = base(e);
            r.set(
                "deal_id",
                V::Text(format!("RZ{}-{:06}", date.year(), self.seq)),
            );
            r.set("occurred_on", V::Date(date));
            r.set("instrument", V::Enum("instrument", instrument));
            r.set("amount", V::Money(i128::from(wan) * 1_000_000));
            r.set(
                "currency",
                if rng.random_bool(0.3) {
                    V::Null
                } else {
                    V::Enum("currency", "CNY")
                },
            );
            r.set("institution", institution.map(V::Text).unwrap_or(V::Null));
            r.set(
                "market",
                if instrument == "listing" {
                    V::Enum("market", pick::<&str>(rng, MARKETS))
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
                apply: set_no_amount,
            },
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_instrument,
            },
            Mutation {
                codes: &["negative_amount"],
                needs: &[],
                apply: set_zero_amount,
            },
            Mutation {
                codes: &["unsupported_currency"],
                needs: &["currency"],
                apply: set_currency,
            },
            Mutation {
                codes: &["invalid_unit"],
                needs: &[],
                apply: set_amount_unit,
            },
            Mutation {
                codes: &["invalid_number"],
                needs: &[],
                apply: set_amount_text,
            },
            Mutation {
                codes: &["unknown_enum_value"],
                needs: &[],
                apply: set_instrument,
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
        ];
        m.extend(reference_mutations());
        m
    }

    fn conflict_needs(&self) -> &'static [&'static str] {
        &["deal_id"]
    }

    fn conflict(&self, row: &mut Row, rng: &mut R) {
        if let V::Money(c) = row.get("amount") {
            let c = *c + rng.random_range(1..100i128) * 1_000_000;
            row.set("amount", V::Money(c));
        }
    }
}
