//! Reads one committed run's marts into a `Report`. Every figure comes from a mart
//! (town_year, county_year, city_year, their `_yoy` marts, town_evaluation,
//! town_evaluation_component, town_target_progress, town_target_pace) through the SQL
//! below; the report only rescales money (元 → 亿元 or 万元) and adds 合计 rows.
//! `docs/report.md` lists the queries that re-derive each table with `townstat sql`.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use townstat_query::Session;

use crate::glossary;
use crate::model::{Chart, ChartKind, Col, Fmt, Grid, Meta, Report, Sheet, Value};
use crate::{Error, Result};

/// Query results as rows of values, columns by name.
struct Rows {
    names: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    fn idx(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("the report's query has no column {name}"))
    }

    fn get(&self, row: usize, name: &str) -> &Value {
        &self.rows[row][self.idx(name)]
    }

    fn text(&self, row: usize, name: &str) -> String {
        match self.get(row, name) {
            Value::Text(s) => s.clone(),
            Value::Num(x) => format!("{x}"),
            Value::Null => String::new(),
        }
    }

    fn len(&self) -> usize {
        self.rows.len()
    }
}

fn cell(a: &dyn Array, i: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Float64 => Value::Num(a.as_primitive::<Float64Type>().value(i)),
        DataType::Int64 => Value::Num(a.as_primitive::<Int64Type>().value(i) as f64),
        DataType::Int32 => Value::Num(a.as_primitive::<Int32Type>().value(i) as f64),
        DataType::Decimal128(_, s) => {
            let raw = a.as_primitive::<Decimal128Type>().value(i);
            Value::Num(raw as f64 / 10f64.powi(*s as i32))
        }
        DataType::Boolean => Value::Text(
            if a.as_boolean().value(i) {
                "是"
            } else {
                "否"
            }
            .into(),
        ),
        DataType::Utf8 => Value::Text(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::Text(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::Text(a.as_string_view().value(i).to_string()),
        _ => match arrow::util::display::array_value_to_string(a, i) {
            Ok(s) => Value::Text(s),
            Err(_) => Value::Null,
        },
    }
}

fn rows_of(batches: &[RecordBatch]) -> Rows {
    let names = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let mut rows = vec![];
    for b in batches {
        for i in 0..b.num_rows() {
            rows.push(b.columns().iter().map(|c| cell(c.as_ref(), i)).collect());
        }
    }
    Rows { names, rows }
}

async fn query(session: &Session, sql: &str) -> Result<Rows> {
    let batches = session.query(sql).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("not found") && text.contains("table") {
            Error::Usage(format!(
                "run {} has no report marts ({text}); it was built by an older townstat: \
                 run the pipeline again, then report on the new run",
                session.run.run_id
            ))
        } else {
            Error::Failed(format!("{text}\n[SQL] {sql}"))
        }
    })?;
    Ok(rows_of(&batches))
}

/// The years that have annual returns (enterprise_annual) and mart rows, ascending.
pub async fn reported_years(session: &Session) -> Result<Vec<i32>> {
    let r = query(
        session,
        "SELECT DISTINCT CAST(a.year AS BIGINT) AS year FROM enterprise_annual a \
         JOIN (SELECT DISTINCT year FROM city_year) c ON c.year = a.year ORDER BY year",
    )
    .await?;
    Ok((0..r.len())
        .filter_map(|i| r.get(i, "year").num())
        .map(|y| y as i32)
        .collect())
}

/// How a mart column is shown: header unit, divisor, format.
pub struct Show {
    /// The unit in the header ("" for none).
    pub unit: &'static str,
    /// Stored value ÷ this = shown value.
    pub divisor: f64,
    /// Format.
    pub fmt: Fmt,
}

/// Money columns, stored in 元.
const MONEY: &[&str] = &[
    "revenue",
    "gross_output",
    "profit",
    "tax",
    "rd_expense",
    "export_value",
    "wage_total",
    "financing_total",
    "loan_total",
    "equity_total",
    "guide_fund_total",
    "bond_total",
    "planned_investment",
    "completed_investment",
    "contracted_amount",
    "funds_in_place",
    "funds_outside_province",
];

/// Fractions shown as percentages.
const RATIOS: &[&str] = &[
    "entities_growth",
    "doubling_progress",
    "rd_intensity",
    "cr1",
    "cr3",
    "cr5",
    "county_revenue_share",
    "progress",
    "time_progress",
    "revenue_cagr_3y",
    "profit_margin",
    "start_rate",
    "production_rate",
    "capacity_rate",
    "outside_province_share",
    "funds_in_place_rate",
];

/// Columns with fractional values shown with two decimals.
const DECIMALS: &[&str] = &[
    "hhi",
    "location_quotient",
    "invention_per_10k",
    "patents_granted_frac",
    "avg_wage",
    "score",
    "percentile",
    "insured_avg",
    "productivity",
];

/// How a column is shown when money is in `money_unit` (亿元 or 万元).
pub fn show(column: &str, money_unit: &'static str) -> Show {
    if MONEY.contains(&column) {
        let divisor = if money_unit == "万元" { 1e4 } else { 1e8 };
        return Show {
            unit: money_unit,
            divisor,
            fmt: Fmt::Dec2,
        };
    }
    if RATIOS.contains(&column) || column.ends_with("_yoy") {
        return Show {
            unit: "%",
            divisor: 1.0,
            fmt: Fmt::Pct1,
        };
    }
    if DECIMALS.contains(&column) {
        return Show {
            unit: "",
            divisor: 1.0,
            fmt: Fmt::Dec2,
        };
    }
    Show {
        unit: "",
        divisor: 1.0,
        fmt: Fmt::Int,
    }
}

/// A mart column's Chinese name without the unit in brackets.
pub fn name_of(column: &str) -> String {
    let label = townstat_domain::schema::column_label("town_year", column).unwrap_or(column);
    match label.find('(') {
        Some(i) if label.ends_with(')') => label[..i].trim_end().to_string(),
        _ => label.to_string(),
    }
}

/// A mart column's header in a sheet whose money is in `money_unit`.
pub fn header(column: &str, money_unit: &'static str) -> String {
    let s = show(column, money_unit);
    let label = townstat_domain::schema::column_label("town_year", column).unwrap_or(column);
    if MONEY.contains(&column) {
        format!("{}({})", name_of(column), s.unit)
    } else if s.fmt == Fmt::Pct1 && !label.contains('%') {
        format!("{}(%)", name_of(column))
    } else {
        label.to_string()
    }
}

/// A grid column showing mart column `key`, summed in 合计 when `sum`.
fn mart_col(key: &str, money_unit: &'static str, sum: bool) -> Col {
    let c = Col::new(key, header(key, money_unit), show(key, money_unit).fmt);
    if sum { c.summed() } else { c }
}

/// The 同比 column next to `key`.
fn yoy_col(key: &str) -> Col {
    Col::new(&format!("{key}_yoy"), "同比(%)", Fmt::Pct1)
}

/// Picks columns of `rows` into grid rows: each `Col.key` names a query column; money
/// is divided into the sheet's unit.
fn pick(rows: &Rows, cols: &[Col], money_unit: &'static str) -> Vec<Vec<Value>> {
    (0..rows.len())
        .map(|r| {
            cols.iter()
                .map(|c| match rows.get(r, &c.key) {
                    Value::Num(x) => Value::Num(x / show(&c.key, money_unit).divisor),
                    v => v.clone(),
                })
                .collect()
        })
        .collect()
}

fn grid(id: &str, title: &str, cols: Vec<Col>, rows: Vec<Vec<Value>>, ids: Vec<String>) -> Grid {
    Grid {
        id: id.into(),
        title: title.into(),
        cols,
        rows,
        row_ids: ids,
        total: false,
        note: None,
        row_fmt: vec![],
    }
}

/// The level a town held at the report year's 12-31 (town_designation_year), in Chinese.
const LEVEL_ZH: &str = "CASE dy.designation_level WHEN 'provincial' THEN '省级' \
     WHEN 'city' THEN '市级' ELSE dy.designation_level END";

const TIERS: [&str; 7] = [
    "200亿级",
    "100亿级",
    "50亿级",
    "20亿级",
    "10亿级",
    "5亿级",
    "5亿以下",
];

/// Reads the report of `year` from the session's run.
pub async fn build(session: &Session, year: i32, version: &str) -> Result<Report> {
    let meta = meta(session, year, version).await?;
    // The towns the report covers: designated as the registry stood at the report
    // year's 12-31 (town_designation_year), as the evaluation.
    let towns = query(
        session,
        &format!(
            "SELECT ty.*, t.name, d.name AS county_name, {LEVEL_ZH} AS level, \
                    e.rank, e.score, \
                    y.revenue_yoy, y.entities_end_yoy, y.above_size_count_yoy, y.insured_avg_yoy, \
                    y.patents_applied_yoy, y.patents_granted_yoy, y.invention_granted_yoy, \
                    y.financing_total_yoy, \
                    st.revenue_cagr_3y, st.productivity, st.profit_margin \
             FROM town_year ty JOIN town t ON t.town_id = ty.town_id \
             JOIN town_designation_year dy ON dy.town_id = ty.town_id AND dy.year = ty.year \
             LEFT JOIN town_year_structure st ON st.town_id = ty.town_id AND st.year = ty.year \
             LEFT JOIN division d ON d.code = t.county_code \
             LEFT JOIN town_year_yoy y ON y.town_id = ty.town_id AND y.year = ty.year \
             LEFT JOIN town_evaluation e ON e.town_id = ty.town_id AND e.year = ty.year \
             WHERE ty.year = {year} AND dy.designated \
             ORDER BY e.rank NULLS LAST, ty.revenue DESC, ty.town_id"
        ),
    )
    .await?;
    let town_ids: Vec<String> = (0..towns.len()).map(|r| towns.text(r, "town_id")).collect();
    let counties = query(
        session,
        &format!(
            "SELECT c.*, \
                    y.revenue_yoy, y.entities_end_yoy, y.above_size_count_yoy, y.insured_avg_yoy, \
                    y.patents_applied_yoy, y.patents_granted_yoy, y.invention_granted_yoy, \
                    y.financing_total_yoy, \
                    (SELECT count(*) FROM town t JOIN town_designation_year dy \
                       ON dy.town_id = t.town_id AND dy.year = {year} \
                       WHERE t.county_code = c.county_code AND dy.designated) AS town_count \
             FROM county_year c \
             LEFT JOIN county_year_yoy y ON y.county_code = c.county_code AND y.year = c.year \
             WHERE c.year = {year} ORDER BY c.revenue DESC, c.county_code"
        ),
    )
    .await?;

    let mut sheets = vec![
        overview(session, year, &counties).await?,
        ranking(session, year).await?,
        town_sheet(&towns, &town_ids),
        trend(session, year, &towns, &town_ids).await?,
    ];
    sheets.extend(county_sheets(&towns, &counties));
    sheets.push(finance(&towns, &town_ids));
    sheets.push(innovation(&towns, &town_ids));
    if let Some(sheet) = ledgers(session, year, &towns, &town_ids).await? {
        sheets.push(sheet);
    }
    let glossary = glossary::sheet(&sheets);
    sheets.push(glossary);
    Ok(Report { meta, sheets })
}

async fn meta(session: &Session, year: i32, version: &str) -> Result<Meta> {
    let run_id = session.run.run_id.replace('\'', "''");
    let r = query(
        session,
        &format!(
            "SELECT CAST(as_of AS VARCHAR) AS as_of, \
                    to_char(finished_at, '%Y-%m-%dT%H:%M:%SZ') AS committed \
             FROM run WHERE run_id = '{run_id}'"
        ),
    )
    .await?;
    if r.len() != 1 {
        return Err(Error::Failed(format!(
            "the run table has no record of run {}",
            session.run.run_id
        )));
    }
    Ok(Meta {
        year,
        run_id: session.run.run_id.clone(),
        run_date: r.text(0, "as_of"),
        committed_at: r.text(0, "committed"),
        committed_micros: session.run.finished_at_micros,
        version: version.to_string(),
    })
}

/// The main indicators of a town or county row, with 同比 (money in 亿元).
fn main_cols(first: Col) -> Vec<Col> {
    let u = "亿元";
    vec![
        first,
        mart_col("revenue", u, true),
        yoy_col("revenue"),
        mart_col("entities_end", u, true),
        yoy_col("entities_end"),
        mart_col("above_size_count", u, true),
        yoy_col("above_size_count"),
        mart_col("insured_avg", u, true),
        yoy_col("insured_avg"),
        mart_col("patents_applied", u, true),
        yoy_col("patents_applied"),
        mart_col("invention_granted", u, true),
        yoy_col("invention_granted"),
        mart_col("financing_total", u, true),
        yoy_col("financing_total"),
    ]
}

async fn overview(session: &Session, year: i32, counties: &Rows) -> Result<Sheet> {
    let city = query(
        session,
        &format!(
            "SELECT c.*, y.revenue_yoy, y.entities_end_yoy, y.above_size_count_yoy, \
                    y.insured_avg_yoy, y.patents_applied_yoy, y.patents_granted_yoy, \
                    y.invention_granted_yoy, y.financing_total_yoy \
             FROM city_year c LEFT JOIN city_year_yoy y ON y.year = c.year \
             WHERE c.year IN ({}, {year}) ORDER BY c.year",
            year - 1
        ),
    )
    .await?;
    let this = city.len().checked_sub(1).ok_or_else(|| {
        Error::Usage(format!(
            "no city_year row for {year} in run {}",
            session.run.run_id
        ))
    })?;
    let last = (city.len() == 2).then_some(0);
    let u = "亿元";
    let items = [
        "entities_end",
        "enterprises_end",
        "entities_new",
        "above_size_count",
        "revenue",
        "gross_output",
        "profit",
        "tax",
        "rd_expense",
        "export_value",
        "insured_avg",
        "patents_applied",
        "patents_granted",
        "invention_granted",
        "financing_total",
        "listed_enterprises",
        "towns_total",
        "towns_provincial",
    ];
    let mut rows = vec![];
    let mut row_fmt = vec![];
    for key in items {
        let s = show(key, u);
        let val = |r: Option<usize>| match r.map(|r| city.get(r, key)) {
            Some(Value::Num(x)) => Value::Num(x / s.divisor),
            _ => Value::Null,
        };
        let yoy_key = format!("{key}_yoy");
        let yoy = if city.names.contains(&yoy_key) {
            city.get(this, &yoy_key).clone()
        } else {
            Value::Null
        };
        row_fmt.push(s.fmt);
        rows.push(vec![
            Value::Text(name_of(key)),
            Value::Text(
                if s.unit.is_empty() {
                    unit_of(key)
                } else {
                    s.unit
                }
                .into(),
            ),
            val(last),
            val(Some(this)),
            yoy,
        ]);
    }
    // Each row is an indicator of its own kind: its format is the row's.
    let city_grid = Grid {
        row_fmt,
        note: Some("全市全部市场主体(不限于专业镇成员);同比 = (本年 − 上年) / 上年".into()),
        ..grid(
            "city",
            "全市主要指标",
            vec![
                Col::new("indicator", "指标", Fmt::Text),
                Col::new("unit", "单位", Fmt::Text),
                Col::new("city_prev", format!("{}年", year - 1), Fmt::Dec2),
                Col::new("city_this", format!("{year}年"), Fmt::Dec2),
                Col::new("city_yoy", "同比(%)", Fmt::Pct1),
            ],
            rows,
            items.iter().map(|s| s.to_string()).collect(),
        )
    };

    let tiers = query(
        session,
        &format!(
            "SELECT ty.scale_tier, \
                    sum(CASE WHEN dy.designation_level = 'provincial' THEN 1 ELSE 0 END) AS provincial, \
                    sum(CASE WHEN dy.designation_level = 'provincial' THEN 0 ELSE 1 END) AS city_level, \
                    count(*) AS towns \
             FROM town_year ty \
             JOIN town_designation_year dy ON dy.town_id = ty.town_id AND dy.year = ty.year \
             WHERE ty.year = {year} AND dy.designated \
             GROUP BY ty.scale_tier"
        ),
    )
    .await?;
    let tier_rows: Vec<Vec<Value>> = TIERS
        .iter()
        .map(|tier| {
            let r = (0..tiers.len()).find(|&r| tiers.text(r, "scale_tier") == *tier);
            let n = |k: &str| Value::Num(r.and_then(|r| tiers.get(r, k).num()).unwrap_or(0.0));
            vec![
                Value::Text(tier.to_string()),
                n("provincial"),
                n("city_level"),
                n("towns"),
            ]
        })
        .collect();
    let tier_grid = Grid {
        total: true,
        note: Some(format!(
            "{year}年已认定专业镇,按当年营业收入规模档次和认定级别"
        )),
        ..grid(
            "tiers",
            "专业镇规模档次与级别",
            vec![
                Col::new("scale_tier", "规模档次", Fmt::Text),
                Col::new("provincial", "省级", Fmt::Int).summed(),
                Col::new("city_level", "市级", Fmt::Int).summed(),
                Col::new("towns", "合计", Fmt::Int).summed(),
            ],
            tier_rows,
            TIERS.iter().map(|s| s.to_string()).collect(),
        )
    };

    let targets = query(
        session,
        &format!(
            "SELECT p.target_id, p.scope, p.metric, p.comparison, p.target, p.target_year, p.year, p.actual, \
                    p.progress, p.met, c.time_progress, c.ahead, t.name AS town_name \
             FROM town_target_progress p \
             JOIN town_target_pace c ON c.target_id = p.target_id AND c.year = p.year \
             LEFT JOIN town t ON t.town_id = p.scope \
             WHERE p.year = least({year}, p.target_year) \
             ORDER BY CASE WHEN p.scope = 'city' THEN 0 ELSE 1 END, p.target_id"
        ),
    )
    .await?;
    let mut target_rows = vec![];
    let mut target_fmt = vec![];
    for r in 0..targets.len() {
        let metric = targets.text(r, "metric");
        let s = show(&metric, u);
        let scaled = |k: &str| match targets.get(r, k) {
            Value::Num(x) => Value::Num(x / s.divisor),
            v => v.clone(),
        };
        let scope = if targets.text(r, "scope") == "city" {
            "全市".to_string()
        } else {
            targets.text(r, "town_name")
        };
        let unit = if s.unit.is_empty() {
            unit_of(&metric)
        } else {
            s.unit
        };
        target_fmt.push(s.fmt);
        target_rows.push(vec![
            Value::Text(if targets.text(r, "comparison") == "<=" {
                format!("{scope} {}(上限)", name_of(&metric))
            } else {
                format!("{scope} {}", name_of(&metric))
            }),
            targets.get(r, "target_year").clone(),
            targets.get(r, "year").clone(),
            Value::Text(unit.into()),
            scaled("actual"),
            scaled("target"),
            targets.get(r, "progress").clone(),
            targets.get(r, "time_progress").clone(),
            targets.get(r, "ahead").clone(),
            targets.get(r, "met").clone(),
        ]);
    }
    let target_grid = Grid {
        row_fmt: target_fmt,
        note: Some(
            "完成率 = 完成值 / 目标值;时间进度 = (年度 − 规划基准年) / (目标年度 − 规划基准年)"
                .into(),
        ),
        ..grid(
            "targets",
            "规划目标完成情况",
            vec![
                Col::new("target_name", "目标", Fmt::Text),
                Col::new("target_year", "目标年度", Fmt::Plain),
                Col::new("year", "统计年度", Fmt::Plain),
                Col::new("unit", "单位", Fmt::Text),
                Col::new("actual", "完成值", Fmt::Dec2),
                Col::new("target", "目标值", Fmt::Dec2),
                Col::new("progress", "完成率(%)", Fmt::Pct1),
                Col::new("time_progress", "时间进度(%)", Fmt::Pct1),
                Col::new("ahead", "快于时间进度", Fmt::Text),
                Col::new("met", "是否达成", Fmt::Text),
            ],
            target_rows,
            (0..targets.len())
                .map(|r| targets.text(r, "target_id"))
                .collect(),
        )
    };

    let county_cols = main_cols(Col::new("county_name", "区县", Fmt::Text));
    let county_rows = pick(counties, &county_cols, u);
    let county_grid = Grid {
        total: true,
        note: Some("各区县全部市场主体(不限于专业镇成员)".into()),
        ..grid(
            "counties",
            "区县对比",
            county_cols,
            county_rows,
            (0..counties.len())
                .map(|r| counties.text(r, "county_code"))
                .collect(),
        )
    };

    Ok(Sheet {
        name: "总览".into(),
        title: "总览".into(),
        charts: vec![
            Chart {
                id: "targets".into(),
                title: "规划目标完成率与时间进度".into(),
                kind: ChartKind::Bar,
                grid: "targets".into(),
                category: 0,
                series: vec![6, 7],
                axis: "%".into(),
            },
            Chart {
                id: "tiers".into(),
                title: "专业镇规模档次分布".into(),
                kind: ChartKind::Column,
                grid: "tiers".into(),
                category: 0,
                series: vec![1, 2],
                axis: "个".into(),
            },
            Chart {
                id: "counties".into(),
                title: "各区县营业收入".into(),
                kind: ChartKind::Column,
                grid: "counties".into(),
                category: 0,
                series: vec![1],
                axis: "亿元".into(),
            },
        ],
        grids: vec![city_grid, tier_grid, target_grid, county_grid],
    })
}

/// The unit of a count or ratio column, from the glossary.
fn unit_of(column: &str) -> &'static str {
    glossary::entry(column)
        .map(|e| e.unit.as_str())
        .unwrap_or("")
}

async fn ranking(session: &Session, year: i32) -> Result<Sheet> {
    let eval = query(
        session,
        &format!(
            "SELECT e.town_id, e.rank, e.score, e.grade, e.review_flag, t.name, \
                    d.name AS county_name \
             FROM town_evaluation e JOIN town t ON t.town_id = e.town_id \
             LEFT JOIN division d ON d.code = t.county_code \
             WHERE e.year = {year} ORDER BY e.rank, e.town_id"
        ),
    )
    .await?;
    let comps = query(
        session,
        &format!(
            "SELECT town_id, indicator, value, percentile, weight FROM town_evaluation_component \
             WHERE year = {year} ORDER BY weight DESC, indicator"
        ),
    )
    .await?;
    let mut indicators: Vec<(String, f64)> = vec![];
    for r in 0..comps.len() {
        let ind = comps.text(r, "indicator");
        if !indicators.iter().any(|(i, _)| *i == ind) {
            indicators.push((ind, comps.get(r, "weight").num().unwrap_or(0.0)));
        }
    }
    let u = "亿元";
    let mut cols = vec![
        Col::new("rank", "排名", Fmt::Int),
        Col::new("name", "专业镇", Fmt::Text),
        Col::new("county_name", "区县", Fmt::Text),
        Col::new("score", "综合得分", Fmt::Dec2),
        Col::new("grade", "评估等级", Fmt::Text),
        Col::new("review_flag", "连续不合格需复核", Fmt::Text),
    ];
    for (ind, w) in &indicators {
        let s = show(ind, u);
        let unit = if s.unit.is_empty() {
            String::new()
        } else {
            format!("({})", s.unit)
        };
        cols.push(Col::new(ind, format!("{}{unit}", name_of(ind)), s.fmt));
        cols.push(Col::new(
            &format!("{ind}_percentile"),
            format!("{}百分位(权重{w})", name_of(ind)),
            Fmt::Dec2,
        ));
    }
    let mut rows = vec![];
    for r in 0..eval.len() {
        let town = eval.text(r, "town_id");
        let mut row = vec![
            eval.get(r, "rank").clone(),
            eval.get(r, "name").clone(),
            eval.get(r, "county_name").clone(),
            eval.get(r, "score").clone(),
            eval.get(r, "grade").clone(),
            eval.get(r, "review_flag").clone(),
        ];
        for (ind, _) in &indicators {
            let c = (0..comps.len())
                .find(|&c| comps.text(c, "town_id") == town && comps.text(c, "indicator") == *ind);
            let divisor = show(ind, u).divisor;
            row.push(match c.map(|c| comps.get(c, "value")) {
                Some(Value::Num(x)) => Value::Num(x / divisor),
                _ => Value::Null,
            });
            row.push(
                c.map(|c| comps.get(c, "percentile").clone())
                    .unwrap_or(Value::Null),
            );
        }
        rows.push(row);
    }
    let g = Grid {
        note: Some(format!(
            "{year}年已认定专业镇;各分项按百分位得分(0–100)加权平均为综合得分,权重见 evaluation.toml"
        )),
        ..grid(
            "ranking",
            "专业镇年度评估排名",
            cols,
            rows,
            (0..eval.len()).map(|r| eval.text(r, "town_id")).collect(),
        )
    };
    Ok(Sheet {
        name: "评估排名".into(),
        title: "评估排名".into(),
        grids: vec![g],
        charts: vec![Chart {
            id: "ranking".into(),
            title: "综合得分排名".into(),
            kind: ChartKind::Bar,
            grid: "ranking".into(),
            category: 1,
            series: vec![3],
            axis: "分".into(),
        }],
    })
}

fn town_cols() -> Vec<Col> {
    let mut cols = vec![
        Col::new("name", "专业镇", Fmt::Text),
        Col::new("county_name", "区县", Fmt::Text),
        Col::new("level", "级别", Fmt::Text),
        Col::new("scale_tier", "规模档次", Fmt::Text),
    ];
    cols.extend(main_cols(Col::new("_", "", Fmt::Text)).into_iter().skip(1));
    for key in ["revenue_cagr_3y", "productivity", "profit_margin"] {
        cols.push(mart_col(key, "亿元", false));
    }
    cols.push(Col::new("rank", "评估排名", Fmt::Int));
    cols
}

fn town_sheet(towns: &Rows, ids: &[String]) -> Sheet {
    let cols = town_cols();
    let rows = pick(towns, &cols, "亿元");
    Sheet {
        name: "专业镇指标".into(),
        title: "专业镇主要指标".into(),
        grids: vec![Grid {
            total: true,
            note: Some(
                "同比 = (本年 − 上年) / 上年;合计为所列专业镇之和(成员企业可能同属多个专业镇)"
                    .into(),
            ),
            ..grid("towns", "专业镇主要指标", cols, rows, ids.to_vec())
        }],
        charts: vec![],
    }
}

async fn trend(session: &Session, year: i32, towns: &Rows, ids: &[String]) -> Result<Sheet> {
    let years: Vec<i32> = reported_years(session)
        .await?
        .into_iter()
        .filter(|y| *y <= year)
        .collect();
    let list = years
        .iter()
        .map(|y| y.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let rev = query(
        session,
        &format!(
            "SELECT town_id, CAST(year AS BIGINT) AS year, revenue FROM town_year \
             WHERE year IN ({list})"
        ),
    )
    .await?;
    let mut cols = vec![Col::new("year", "年度", Fmt::Plain)];
    for (r, id) in ids.iter().enumerate() {
        cols.push(Col::new(id, towns.text(r, "name"), Fmt::Dec2).summed());
    }
    let rows = years
        .iter()
        .map(|y| {
            let mut row = vec![Value::Num(*y as f64)];
            for id in ids {
                let v = (0..rev.len())
                    .find(|&r| {
                        rev.text(r, "town_id") == *id && rev.get(r, "year").num() == Some(*y as f64)
                    })
                    .and_then(|r| rev.get(r, "revenue").num())
                    .map(|x| Value::Num(x / 1e8))
                    .unwrap_or(Value::Null);
                row.push(v);
            }
            row
        })
        .collect();
    let n = cols.len();
    Ok(Sheet {
        name: "营收趋势".into(),
        title: "专业镇营业收入历年趋势".into(),
        grids: vec![Grid {
            note: Some("营业收入(亿元),有企业年报的年度;含认定前年度,便于比较".into()),
            ..grid(
                "trend",
                "专业镇营业收入(亿元)",
                cols,
                rows,
                years.iter().map(|y| y.to_string()).collect(),
            )
        }],
        charts: vec![Chart {
            id: "trend".into(),
            title: "专业镇营业收入趋势".into(),
            kind: ChartKind::Line,
            grid: "trend".into(),
            category: 0,
            series: (1..n).collect(),
            axis: "亿元".into(),
        }],
    })
}

fn county_sheets(towns: &Rows, counties: &Rows) -> Vec<Sheet> {
    let mut out = vec![];
    for c in 0..counties.len() {
        if counties.get(c, "town_count").num().unwrap_or(0.0) < 1.0 {
            continue;
        }
        let code = counties.text(c, "county_code");
        let name = counties.text(c, "county_name");
        let cols = main_cols(Col::new("name", "专业镇", Fmt::Text));
        let members: Vec<usize> = (0..towns.len())
            .filter(|&r| towns.text(r, "county_code") == code)
            .collect();
        let sub = Rows {
            names: towns.names.clone(),
            rows: members.iter().map(|&r| towns.rows[r].clone()).collect(),
        };
        let county_row = Rows {
            names: counties.names.clone(),
            rows: vec![counties.rows[c].clone()],
        };
        let county_cols = main_cols(Col::new("county_name", "区县", Fmt::Text));
        out.push(Sheet {
            name: sheet_name(&name),
            title: format!("{name}专业镇"),
            grids: vec![
                Grid {
                    note: Some("区县全部市场主体(不限于专业镇成员)".into()),
                    ..grid(
                        &format!("county_{code}"),
                        &format!("{name}全域"),
                        county_cols.clone(),
                        pick(&county_row, &county_cols, "亿元"),
                        vec![code.clone()],
                    )
                },
                Grid {
                    total: true,
                    ..grid(
                        &format!("county_{code}_towns"),
                        &format!("{name}所属专业镇"),
                        cols.clone(),
                        pick(&sub, &cols, "亿元"),
                        members.iter().map(|&r| towns.text(r, "town_id")).collect(),
                    )
                },
            ],
            charts: vec![],
        });
    }
    out
}

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(name: &str) -> String {
    name.chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect()
}

fn finance(towns: &Rows, ids: &[String]) -> Sheet {
    let u = "万元";
    let cols = vec![
        Col::new("name", "专业镇", Fmt::Text),
        mart_col("financing_total", u, true),
        yoy_col("financing_total"),
        mart_col("loan_total", u, true),
        mart_col("equity_total", u, true),
        mart_col("guide_fund_total", u, true),
        mart_col("bond_total", u, true),
        mart_col("financed_enterprises", u, true),
        mart_col("listed_enterprises", u, true),
    ];
    let grid = towns_grid(
        towns,
        ids,
        ("finance", "专业镇融资与上市挂牌"),
        cols,
        "金额单位:万元",
    );
    one_grid_sheet("融资与上市", "融资与上市", grid)
}

/// A grid of one row per town (and 合计), money in 万元.
fn towns_grid(
    towns: &Rows,
    ids: &[String],
    (id, title): (&str, &str),
    cols: Vec<Col>,
    note: &str,
) -> Grid {
    let rows = pick(towns, &cols, "万元");
    Grid {
        total: true,
        note: Some(note.into()),
        ..grid(id, title, cols, rows, ids.to_vec())
    }
}

fn one_grid_sheet(name: &str, title: &str, grid: Grid) -> Sheet {
    Sheet {
        name: name.into(),
        title: title.into(),
        grids: vec![grid],
        charts: vec![],
    }
}

fn innovation(towns: &Rows, ids: &[String]) -> Sheet {
    let u = "万元";
    let cols = vec![
        Col::new("name", "专业镇", Fmt::Text),
        mart_col("patents_applied", u, true),
        yoy_col("patents_applied"),
        mart_col("invention_applied", u, true),
        mart_col("patents_granted", u, true),
        yoy_col("patents_granted"),
        mart_col("invention_granted", u, true),
        mart_col("invention_per_10k", u, false),
        mart_col("patenting_enterprises", u, true),
        mart_col("rd_expense", u, true),
        mart_col("rd_intensity", u, false),
        mart_col("srdi_count", u, true),
        mart_col("little_giant_count", u, true),
        mart_col("single_champion_count", u, true),
        mart_col("high_tech_count", u, true),
        mart_col("leading_count", u, true),
        mart_col("rd_institution_count", u, true),
    ];
    let grid = towns_grid(
        towns,
        ids,
        ("innovation", "专业镇专利、研发与企业认定"),
        cols,
        "研发费用单位:万元;认定为年内有效的企业认定",
    );
    one_grid_sheet("创新", "创新:专利、研发与认定", grid)
}

/// The other ledgers per town in the report year: major projects (签约/开工/投产/达效
/// and their rates, investment), investment deals (funds in place, the share from
/// outside the province) and quality marks in force. None when the three ledgers hold
/// nothing for the towns that year (a pipeline without these sources).
async fn ledgers(
    session: &Session,
    year: i32,
    towns: &Rows,
    ids: &[String],
) -> Result<Option<Sheet>> {
    let per_town = query(
        session,
        &format!(
            "SELECT t.town_id, \
                    COALESCE(p.projects_signed, 0) AS projects_signed, \
                    COALESCE(p.signed_in_year, 0) AS signed_in_year, \
                    COALESCE(p.projects_started, 0) AS projects_started, \
                    COALESCE(p.projects_in_production, 0) AS projects_in_production, \
                    COALESCE(p.projects_at_capacity, 0) AS projects_at_capacity, \
                    p.start_rate, p.production_rate, p.capacity_rate, \
                    COALESCE(p.planned_investment, 0) AS planned_investment, \
                    p.completed_investment, \
                    COALESCE(i.deals_signed, 0) AS deals_signed, \
                    COALESCE(i.contracted_amount, 0) AS contracted_amount, \
                    COALESCE(i.funds_in_place, 0) AS funds_in_place, \
                    COALESCE(i.funds_outside_province, 0) AS funds_outside_province, \
                    i.outside_province_share, \
                    COALESCE(q.marks, 0) AS marks \
             FROM town t \
             LEFT JOIN project_year p ON p.group_type = 'town' AND p.group_id = t.town_id \
                                     AND p.year = {year} \
             LEFT JOIN investment_year i ON i.group_type = 'town' AND i.group_id = t.town_id \
                                        AND i.year = {year} \
             LEFT JOIN (SELECT group_id, SUM(marks) AS marks FROM quality_mark_year \
                        WHERE group_type = 'town' AND year = {year} GROUP BY group_id) q \
                    ON q.group_id = t.town_id"
        ),
    )
    .await?;
    // The rows in the report's town order, with the town's name.
    let mut names = per_town.names.clone();
    names.push("name".into());
    let mut rows = vec![];
    for (r, id) in ids.iter().enumerate() {
        let Some(i) = (0..per_town.len()).find(|&i| per_town.text(i, "town_id") == *id) else {
            continue;
        };
        let mut row = per_town.rows[i].clone();
        row.push(towns.get(r, "name").clone());
        rows.push(row);
    }
    let rows = Rows { names, rows };
    let any = ["projects_signed", "deals_signed", "marks"]
        .iter()
        .any(|c| (0..rows.len()).any(|r| matches!(rows.get(r, c), Value::Num(x) if *x > 0.0)));
    if !any {
        return Ok(None);
    }
    let u = "万元";
    let cols = vec![
        Col::new("name", "专业镇", Fmt::Text),
        mart_col("projects_signed", u, true),
        mart_col("signed_in_year", u, true),
        mart_col("projects_started", u, true),
        mart_col("projects_in_production", u, true),
        mart_col("projects_at_capacity", u, true),
        mart_col("start_rate", u, false),
        mart_col("production_rate", u, false),
        mart_col("capacity_rate", u, false),
        mart_col("planned_investment", u, true),
        mart_col("completed_investment", u, true),
        mart_col("deals_signed", u, true),
        mart_col("contracted_amount", u, true),
        mart_col("funds_in_place", u, true),
        mart_col("funds_outside_province", u, true),
        mart_col("outside_province_share", u, false),
        mart_col("marks", u, true),
    ];
    let grid = towns_grid(
        &rows,
        ids,
        ("ledgers", "专业镇重点项目、招商引资与质量品牌"),
        cols,
        "金额单位:万元;项目为截至年末累计(重点项目台账最近一次填报),招商引资为当年签约,质量品牌为年末有效",
    );
    Ok(Some(one_grid_sheet(
        "项目与招商",
        "重点项目、招商引资与质量品牌",
        grid,
    )))
}
