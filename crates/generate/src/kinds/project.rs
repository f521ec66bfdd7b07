//! Major projects (专业镇重点项目台账): a small share of the towns' enterprises run one
//! or two projects (年产5万吨石墨电极项目), each reported once or twice (数据截至
//! 2024-12-31, 2025-06-30) at the stage it had reached: 签约 → 开工 → 投产 → 达效, with
//! the dates of the stages passed and the investment completed so far. The investor is
//! the enterprise itself, a firm outside Shanxi, or not identified by a USCC.
//!
//! Which enterprises have projects, and the projects themselves, are drawn from each
//! enterprise's own generator ([`super::own_rng`]), so that the deal ledger can refer
//! to the same projects and the row count is known before writing.

use chrono::{Datelike, Days, NaiveDate};
use rand::Rng;

use super::{OUTSIDE_SHANXI, Outsider, bad_code, outsider, place_cells, set_unknown_town};
use crate::emit::{FileSpec, Kind, Mutation};
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, date_between, pick, ymd};
use crate::world::{Ent, Status, TOWNS, World};

/// The project kind.
pub struct Project;

/// Products each town's projects make: product, unit, output range (for 年产 names).
pub const PRODUCTS: [&[(&str, &str, u32, u32)]; 10] = [
    &[
        ("黄花菜精深加工", "吨", 2000, 20000),
        ("脱水黄花菜", "吨", 1000, 10000),
        ("黄花菜饮品", "万瓶", 500, 5000),
    ],
    &[
        ("原料药", "吨", 50, 1000),
        ("中药配方颗粒", "吨", 200, 2000),
        ("生物医药制剂", "万支", 1000, 20000),
    ],
    &[
        ("铁路货车", "辆", 500, 5000),
        ("轨道交通装备零部件", "万件", 10, 200),
        ("机车车辆配件", "套", 1000, 20000),
    ],
    &[
        ("智能综采装备", "台(套)", 100, 1000),
        ("液压支架", "架", 500, 5000),
        ("矿用智能掘进机", "台", 50, 500),
    ],
    &[
        ("石墨电极", "万吨", 1, 10),
        ("等静压石墨", "吨", 5000, 30000),
        ("锂电池负极材料", "万吨", 1, 10),
    ],
    &[
        ("再生铝", "万吨", 5, 30),
        ("废钢加工配送", "万吨", 10, 100),
        ("再生铜", "万吨", 1, 10),
    ],
    &[
        ("生活用纸", "万吨", 2, 15),
        ("纸制品包装", "万吨", 1, 8),
        ("瓦楞纸板", "万平方米", 1000, 10000),
    ],
    &[
        ("黄芪饮片", "吨", 500, 5000),
        ("黄芪提取物", "吨", 100, 1000),
        ("中药材精深加工", "吨", 1000, 10000),
    ],
    &[
        ("煤基活性炭", "万吨", 1, 10),
        ("柱状活性炭", "吨", 5000, 30000),
        ("活性炭再生", "吨", 3000, 20000),
    ],
    &[
        ("数据中心", "架机柜", 1000, 20000),
        ("智算中心", "P算力", 100, 2000),
        ("数据标注基地", "个工位", 200, 2000),
    ],
];

/// The report dates (数据截至日期) of the ledger.
const REPORTS: [(i32, u32, u32); 3] = [(2024, 6, 30), (2024, 12, 31), (2025, 6, 30)];

/// Who invests.
#[derive(Debug, Clone)]
pub enum Investor {
    /// The enterprise itself.
    Own,
    /// The enterprise, named only (no USCC in the ledger).
    Unnamed,
    /// A firm outside Shanxi.
    Outside(Outsider),
}

/// One project of an enterprise.
#[derive(Debug, Clone)]
pub struct Plan {
    /// 2023-140212-30-03-000417 (the investment project code's shape).
    pub id: String,
    /// 年产5万吨石墨电极项目.
    pub name: String,
    /// The town (index into `TOWNS`).
    pub town: usize,
    /// 签约.
    pub signed: NaiveDate,
    /// 开工.
    pub started: Option<NaiveDate>,
    /// 投产.
    pub in_production: Option<NaiveDate>,
    /// 达效.
    pub at_capacity: Option<NaiveDate>,
    /// Planned investment in 万元.
    pub planned_wan: i64,
    /// Share of the plan spent once at capacity.
    pub done: f64,
    /// The investor.
    pub investor: Investor,
    /// The report dates, earliest first.
    pub reports: Vec<NaiveDate>,
}

impl Plan {
    /// The stage reached on a date, as the canonical `project_stage` value.
    pub fn stage(&self, on: NaiveDate) -> &'static str {
        let passed = |d: Option<NaiveDate>| d.is_some_and(|d| d <= on);
        if passed(self.at_capacity) {
            "at_capacity"
        } else if passed(self.in_production) {
            "in_production"
        } else if passed(self.started) {
            "started"
        } else {
            "signed"
        }
    }

    /// Investment completed by a date, in 万元 (never decreasing with the date).
    pub fn completed_wan(&self, on: NaiveDate) -> i64 {
        let since = |d: Option<NaiveDate>, span: f64| {
            d.map(|d| ((on - d).num_days() as f64 / span).clamp(0.0, 1.0))
        };
        let share = match self.stage(on) {
            "at_capacity" => self.done,
            "in_production" => 0.7 + 0.25 * since(self.in_production, 365.0).unwrap_or(0.0),
            "started" => 0.05 + 0.6 * since(self.started, 540.0).unwrap_or(0.0),
            _ => 0.0,
        };
        (self.planned_wan as f64 * share).round() as i64
    }
}

fn after(d: NaiveDate, rng: &mut R, lo: u64, hi: u64) -> NaiveDate {
    d + Days::new(rng.random_range(lo..=hi))
}

/// Planned investment in 万元: 3,000 万元 to 30 亿元, log-uniform, in round figures.
fn planned_wan(rng: &mut R, town: usize) -> i64 {
    let (lo, hi): (f64, f64) = if town == 9 {
        (20_000.0, 500_000.0)
    } else {
        (3_000.0, 300_000.0)
    };
    let wan = rng.random_range(lo.ln()..hi.ln()).exp();
    let step = if wan >= 10_000.0 { 100.0 } else { 10.0 };
    ((wan / step).round() * step) as i64
}

fn project_name(rng: &mut R, town: usize) -> String {
    let (product, unit, lo, hi) = *pick(rng, PRODUCTS[town]);
    let n = rng.random_range(lo..=hi);
    // Round outputs: 5万吨, 3000吨, 1200辆, 450台(套).
    let n = match n {
        1000.. => n / 100 * 100,
        100.. => n / 50 * 50,
        20.. => n / 10 * 10,
        _ => n,
    };
    match (town, rng.random_range(0..6)) {
        (9, 0..=3) => format!("{n}{unit}{product}项目"),
        (9, _) => format!("{product}二期项目"),
        (_, 0..=2) => format!("年产{n}{unit}{product}项目"),
        (_, 3) => format!("{product}生产线技术改造项目"),
        (_, 4) => format!("{product}扩能改造项目"),
        _ => format!("年产{n}{unit}{product}建设项目"),
    }
}

/// The projects of enterprise `i` (none for most).
pub fn plans(w: &World, i: usize) -> Vec<Plan> {
    let e: &Ent = &w.ents[i];
    let Some(town) = e.town else { return vec![] };
    if e.kind != 1 || e.deregistered.is_some() || e.status != Status::Active {
        return vec![];
    }
    let mut rng = super::own_rng(e, "project");
    if !rng.random_bool(0.12) {
        return vec![];
    }
    let first = (e.established + Days::new(90)).max(ymd(2020, 1, 1));
    let last = ymd(2025, 6, 30);
    if first > last {
        return vec![];
    }
    let n = if rng.random_bool(0.2) { 2 } else { 1 };
    let class = w
        .refs
        .classes
        .iter()
        .find(|c| c.code == e.industry)
        .map(|c| c.name.as_str())
        .unwrap_or("");
    (0..n)
        .map(|k| {
            let signed = date_between(&mut rng, first, last);
            let started = rng
                .random_bool(0.85)
                .then(|| after(signed, &mut rng, 20, 240));
            let in_production = started
                .filter(|_| rng.random_bool(0.7))
                .map(|d| after(d, &mut rng, 180, 720));
            let at_capacity = in_production
                .filter(|_| rng.random_bool(0.6))
                .map(|d| after(d, &mut rng, 180, 540));
            let investor = match rng.random_range(0..20) {
                0..=10 => Investor::Own,
                11..=14 => Investor::Unnamed,
                _ => Investor::Outside(outsider(&mut rng, OUTSIDE_SHANXI, class)),
            };
            let dates: Vec<NaiveDate> = REPORTS
                .iter()
                .map(|&(y, m, d)| ymd(y, m, d))
                .filter(|d| *d >= signed)
                .collect();
            let keep = if dates.len() >= 2 && rng.random_bool(0.55) {
                2
            } else {
                1
            };
            let reports = dates[dates.len() - keep..].to_vec();
            let industry2 = e.industry.get(..2).unwrap_or("00");
            Plan {
                id: format!(
                    "{}-{}-{industry2}-03-{:06}",
                    signed.year(),
                    TOWNS[town].county,
                    2 * i + k + 1
                ),
                name: project_name(&mut rng, town),
                town,
                signed,
                started,
                in_production,
                at_capacity,
                planned_wan: planned_wan(&mut rng, town),
                done: rng.random_range(0.95..=1.0),
                investor,
                reports,
            }
        })
        .collect()
}

fn set_order(r: &mut Row, _: &World, rng: &mut R) {
    // A later stage dated before an earlier one: 开工 before 签约, or 签约 after the
    // report date.
    if let V::Date(signed) = r.get("signed_on").clone() {
        if rng.random_bool(0.7) {
            let d = signed - Days::new(rng.random_range(20..300));
            r.set("started_on", V::Date(d));
        } else if let V::Date(rep) = r.get("reported_on").clone() {
            r.set(
                "signed_on",
                V::Date(rep + Days::new(rng.random_range(1..60))),
            );
            for c in ["started_on", "in_production_on", "at_capacity_on"] {
                r.set(c, V::Null);
            }
        }
    }
}
fn set_stage(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "stage",
        V::Raw(pick(rng, &["前期", "停建", "筹建中"]).to_string()),
    );
}
fn set_no_stage(r: &mut Row, _: &World, _: &mut R) {
    r.set("stage", V::Null);
}
fn set_no_name(r: &mut Row, _: &World, _: &mut R) {
    r.set("name", V::Null);
}
fn set_no_place(r: &mut Row, _: &World, _: &mut R) {
    r.set("town_id", V::Null);
    r.set("county_code", V::Null);
}
fn set_negative(r: &mut Row, _: &World, rng: &mut R) {
    let c = *pick(rng, &["planned_investment", "completed_investment"]);
    r.set(
        c,
        V::Raw(pick(rng, &["-3000", "-500万", "-1.2亿"]).to_string()),
    );
}
fn set_town(r: &mut Row, _: &World, rng: &mut R) {
    set_unknown_town(r, rng);
}
fn set_county(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "county_code",
        V::Raw(pick(rng, &["140100", "130700"]).to_string()),
    );
    if r.get("town_id").is_null() {
        r.set("town_id", V::Text(TOWNS[4].id.to_string()));
    }
}
fn set_bad_date(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "signed_on",
        V::Raw(pick(rng, &["2023-02-30", "23/5/1", "2023-13-01"]).to_string()),
    );
}
fn set_future(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "reported_on",
        V::Date(ymd(2099, rng.random_range(1..13), 28)),
    );
}
fn set_bad_uscc(r: &mut Row, _: &World, rng: &mut R) {
    let bad = bad_code(r.get("investor_uscc"), rng);
    r.set("investor_uscc", V::Raw(bad));
}

impl Kind for Project {
    fn name(&self) -> &'static str {
        "project"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "project_01_ledger.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市专业镇重点项目建设进度台账"),
                    blank_row: true,
                    sheet: "重点项目",
                },
                cols: vec![
                    col("project_id", "项目编号"),
                    col("name", "项目名称"),
                    col("town_id", "所在专业镇"),
                    col("county_code", "县区代码"),
                    col("industry_code", "行业代码"),
                    col("investor_name", "项目单位"),
                    col("investor_uscc", "统一社会信用代码"),
                    col("stage", "项目阶段"),
                    col("signed_on", "签约日期"),
                    col("started_on", "开工日期"),
                    col("in_production_on", "投产日期"),
                    col("at_capacity_on", "达产日期"),
                    col("planned_investment", "计划总投资(万元)"),
                    col("completed_investment", "累计完成投资(万元)"),
                    col("reported_on", "数据截至日期"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.25,
                by_name: false,
            },
            FileSpec {
                name: "project_02_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: true,
                },
                cols: vec![
                    col("project_id", "项目代码"),
                    col("name", "项目名称"),
                    col("town_id", "专业镇"),
                    col("county_code", "行政区划代码"),
                    col("investor_name", "投资主体"),
                    col("investor_uscc", "投资方信用代码"),
                    col("stage", "建设阶段"),
                    col("signed_on", "签约时间"),
                    col("started_on", "开工时间"),
                    col("in_production_on", "投产时间"),
                    col("at_capacity_on", "达效时间"),
                    col("planned_investment", "总投资"),
                    col("completed_investment", "完成投资"),
                    col("reported_on", "截至日期"),
                    col("_person", "联系人"),
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
                name: "project_03_semicolon.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ';',
                    crlf: false,
                },
                cols: vec![
                    col("project_id", "项目编码"),
                    col("name", "项目名称"),
                    col("town_id", "所属专业镇"),
                    col("county_code", "所在县区代码"),
                    col("industry_code", "国民经济行业代码"),
                    col("investor_name", "建设单位"),
                    col("stage", "进展阶段"),
                    col("signed_on", "签约日期"),
                    col("started_on", "开工日期"),
                    col("in_production_on", "投产日期"),
                    col("at_capacity_on", "达效日期"),
                    col("planned_investment", "计划投资(亿元)"),
                    col("completed_investment", "已完成投资(亿元)"),
                    col("reported_on", "统计截止日期"),
                ],
                style: Style {
                    dates: &[0, 3, 5],
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "project_04_bom.csv",
                format: FileFormat::Csv {
                    enc: Enc::Bom,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("project_id", "项目编号"),
                    col("name", "项目名称"),
                    col("town_id", "专业镇"),
                    col("county_code", "区划代码"),
                    col("investor_name", "项目单位"),
                    col("investor_uscc", "项目单位统一社会信用代码"),
                    col("stage", "项目状态"),
                    col("signed_on", "签约日期"),
                    col("started_on", "开工日期"),
                    col("in_production_on", "投产日期"),
                    col("at_capacity_on", "达产日期"),
                    col("planned_investment", "计划总投资(元)"),
                    col("completed_investment", "累计完成投资(元)"),
                    col("reported_on", "填报日期"),
                    col("_phone", "联系电话"),
                ],
                style: Style {
                    dates: &[1, 4],
                    fullwidth: 0.3,
                    thousands: true,
                    ..Style::default()
                },
                share: 0.15,
                by_name: false,
            },
            FileSpec {
                name: "project_05_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("project_id", "project_id"),
                    col("name", "name"),
                    col("town_id", "town_id"),
                    col("county_code", "county_code"),
                    col("industry_code", "industry_code"),
                    col("investor_uscc", "investor_uscc"),
                    col("investor_name", "investor_name"),
                    col("stage", "stage"),
                    col("signed_on", "signed_on"),
                    col("started_on", "started_on"),
                    col("in_production_on", "in_production_on"),
                    col("at_capacity_on", "at_capacity_on"),
                    col("planned_investment", "planned_investment"),
                    col("completed_investment", "completed_investment"),
                    col("reported_on", "reported_on"),
                ],
                style: Style {
                    dates: &[0, 5],
                    typed: true,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        (0..w.ents.len())
            .flat_map(|i| plans(w, i))
            .map(|p| p.reports.len() as u64)
            .sum()
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        let e = &w.ents[i];
        for p in plans(w, i) {
            for &on in &p.reports {
                let mut r = Row::default();
                r.set("project_id", V::Text(p.id.clone()));
                r.set("name", V::Text(p.name.clone()));
                place_cells(rng, p.town, &mut r);
                r.set(
                    "industry_code",
                    if rng.random_bool(0.8) {
                        V::Industry(e.industry.clone())
                    } else {
                        V::Null
                    },
                );
                let (uscc, name) = match &p.investor {
                    Investor::Own => (V::Code(e.uscc.clone()), V::Text(e.name.clone())),
                    Investor::Unnamed if rng.random_bool(0.7) => (V::Null, V::Text(e.name.clone())),
                    Investor::Unnamed => (V::Null, V::Null),
                    Investor::Outside(o) => (V::Code(o.uscc.clone()), V::Text(o.name.clone())),
                };
                r.set("investor_uscc", uscc);
                r.set("investor_name", name);
                r.set("stage", V::Enum("project_stage", p.stage(on)));
                r.set("signed_on", V::Date(p.signed));
                let shown = |d: Option<NaiveDate>| match d {
                    Some(d) if d <= on => V::Date(d),
                    _ => V::Null,
                };
                // Some reports leave out the start date of a project already producing.
                let started = if p.in_production.is_some_and(|d| d <= on) && rng.random_bool(0.1) {
                    V::Null
                } else {
                    shown(p.started)
                };
                r.set("started_on", started);
                r.set("in_production_on", shown(p.in_production));
                r.set("at_capacity_on", shown(p.at_capacity));
                r.set(
                    "planned_investment",
                    if rng.random_bool(0.95) {
                        V::Money(i128::from(p.planned_wan) * 1_000_000)
                    } else {
                        V::Null
                    },
                );
                let done = p.completed_wan(on);
                r.set(
                    "completed_investment",
                    if done == 0 && rng.random_bool(0.5) {
                        V::Null
                    } else {
                        V::Money(i128::from(done) * 1_000_000)
                    },
                );
                r.set("reported_on", V::Date(on));
                out.push(r);
            }
        }
    }

    fn mutations(&self) -> Vec<Mutation> {
        vec![
            Mutation {
                codes: &["date_order"],
                needs: &[],
                apply: set_order,
            },
            Mutation {
                codes: &["unknown_enum_value"],
                needs: &[],
                apply: set_stage,
            },
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_stage,
            },
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_name,
            },
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_place,
            },
            Mutation {
                codes: &["negative_amount"],
                needs: &[],
                apply: set_negative,
            },
            Mutation {
                codes: &["unknown_division"],
                needs: &[],
                apply: set_town,
            },
            Mutation {
                codes: &["outside_city"],
                needs: &[],
                apply: set_county,
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
        &["completed_investment"]
    }

    fn conflict(&self, row: &mut Row, rng: &mut R) {
        let c = match row.get("completed_investment") {
            V::Money(c) => *c,
            _ => 0,
        };
        let more = rng.random_range(1..500i128) * 10 * 1_000_000;
        row.set("completed_investment", V::Money(c + more));
    }
}
