//! `townstat docs`: a static, self-contained data catalog (one HTML file that loads
//! nothing): every table and mart with its Chinese and English name, grain, key,
//! columns (type, label, definition, unit), declared tests with their last result, the
//! row counts of a committed run, and the lineage from the raw source kinds to each
//! mart.
//!
//! The lineage of the SQL steps is derived from the SQL itself: each step of
//! `pipelines/marts/` is expanded as a run expands it, planned by DataFusion over
//! empty tables of the warehouse's schemas, and the table scans of its logical plan
//! (subqueries included) are what it reads. The steps before SQL are ingestion's: the
//! raw files of each source kind go to the table of that kind (and patents to
//! `patent_applicant` too), the town registry file to `town` and `town_roster`, the
//! compiled-in code lists to `industry_code` and `division`, and the registrations to
//! `enterprise_history` and `enterprise_absent` (`history.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use chrono::{Datelike, NaiveDate};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use townstat_domain::schema;
use townstat_query::mart_tests::{self, TestCase};
use townstat_query::marts;
use townstat_query::output::sql_type;
use townstat_report::html::esc;

use crate::error::{Error, Result};

/// What the SQL steps are expanded with (a pipeline's evaluation and targets).
#[derive(Debug, Clone)]
pub struct MartSettings {
    /// Evaluation components.
    pub components: Vec<marts::Component>,
    /// Grades and the review rule.
    pub grading: marts::Grading,
    /// Cluster benchmarks.
    pub cluster: marts::ClusterRule,
    /// Plan targets.
    pub targets: marts::TargetsFile,
}

/// One SQL step: what it reads, as its logical plan says.
#[derive(Debug, Clone)]
pub struct Step {
    /// `staging`, `intermediate` or `marts`.
    pub layer: &'static str,
    /// The step's (and its result's) name.
    pub name: &'static str,
    /// Its SQL as a run executes it.
    pub sql: String,
    /// The tables and steps its plan scans, by name.
    pub reads: Vec<String>,
    /// Its result's columns.
    pub schema: SchemaRef,
}

fn query_err(e: datafusion::error::DataFusionError) -> Error {
    Error::Query(e.into())
}

/// Every table a logical plan scans, subqueries included.
pub fn scanned_tables(plan: &LogicalPlan) -> Result<Vec<String>> {
    let mut names = BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            names.insert(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(query_err)?;
    Ok(names.into_iter().collect())
}

/// Plans every SQL step over empty tables and returns what each reads.
pub async fn lineage(
    settings: &MartSettings,
    as_of: NaiveDate,
) -> Result<(Vec<Step>, SessionContext)> {
    let ctx = townstat_query::session::context();
    crate::check::register_empty_tables(&ctx).await?;
    // enterprise_history is a view there, which the planner would inline (its plan
    // would scan `enterprise`): a table of the same columns keeps it a node of its own.
    let history = ctx
        .table_provider("enterprise_history")
        .await
        .map_err(query_err)?
        .schema();
    ctx.deregister_table("enterprise_history")
        .map_err(query_err)?;
    ctx.register_table(
        "enterprise_history",
        Arc::new(MemTable::try_new(history, vec![vec![]]).map_err(query_err)?),
    )
    .map_err(query_err)?;
    let config = marts::MartConfig {
        run_id: "docs".to_string(),
        run_year: as_of.year(),
        components: settings.components.clone(),
        grading: settings.grading.clone(),
        cluster: settings.cluster.clone(),
        targets: settings.targets.clone(),
        scratch: None,
    };
    let mut out = vec![];
    for (layer, name, sql) in marts::expanded_steps(&config, 2015)? {
        let df = ctx
            .sql(&sql)
            .await
            .map_err(|e| Error::Config(format!("{layer}/{name}.sql: {e}")))?;
        let reads = scanned_tables(df.logical_plan())?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let empty = MemTable::try_new(schema.clone(), vec![vec![]]).map_err(query_err)?;
        ctx.deregister_table(name).map_err(query_err)?;
        ctx.register_table(name, Arc::new(empty))
            .map_err(query_err)?;
        out.push(Step {
            layer,
            name,
            sql,
            reads,
            schema,
        });
    }
    Ok((out, ctx))
}

/// A column of the catalog.
struct Col {
    name: String,
    ty: String,
    label: String,
    definition: String,
    unit: String,
}

/// A node of the catalog: a raw source, a table or a step.
struct Node {
    name: String,
    label: String,
    /// raw, source, reference, system, history, staging, intermediate, marts.
    layer: &'static str,
    key: Vec<String>,
    columns: Vec<Col>,
    description: String,
    reads: Vec<String>,
    sql: Option<String>,
    rows: Option<u64>,
    tests: Vec<(TestCase, Option<(String, i64)>)>,
}

fn layer_title(layer: &str) -> &'static str {
    match layer {
        "raw" => "源文件 raw files",
        "source" => "源数据表 source tables",
        "reference" => "参考表 reference tables",
        "system" => "运行与质量记录 run records",
        "history" => "历史 history",
        "staging" => "暂存 staging",
        "intermediate" => "中间 intermediate",
        _ => "指标 marts",
    }
}

/// The leading `--` comment of a step's SQL, as prose.
pub(crate) fn header_comment(sql: &str) -> String {
    sql.lines()
        .take_while(|l| l.trim_start().starts_with("--"))
        .map(|l| l.trim_start().trim_start_matches("--").trim())
        .collect::<Vec<_>>()
        .join("\n")
}

fn columns_of(table: &str, schema: &arrow::datatypes::Schema) -> Vec<Col> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let d = schema::definition(f.name());
            Col {
                name: f.name().clone(),
                ty: sql_type(f.data_type()),
                label: schema::column_label(table, f.name())
                    .unwrap_or("")
                    .to_string(),
                definition: d.map(|d| d.definition.clone()).unwrap_or_default(),
                unit: d.map(|d| d.unit.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

/// A committed run the catalog reports on: its id and status, and the session on it.
pub struct RunView<'a> {
    /// The session pinned to the run.
    pub session: &'a townstat_query::Session,
}

/// Builds the catalog page.
pub async fn site(
    settings: &MartSettings,
    as_of: NaiveDate,
    run: Option<RunView<'_>>,
) -> Result<String> {
    let (steps, ctx) = lineage(settings, as_of).await?;
    let test_settings = mart_tests::Settings {
        grades: settings
            .grading
            .grades
            .iter()
            .map(|g| g.name.clone())
            .collect(),
    };
    let cases = mart_tests::declared(&test_settings)?;
    let mut results: BTreeMap<String, (String, i64)> = BTreeMap::new();
    if let Some(r) = &run
        && r.session
            .ctx
            .table_exist("test_result")
            .map_err(query_err)?
    {
        let q = format!(
            "SELECT test, status, failing_rows FROM test_result WHERE run_id = '{}'",
            r.session.run.run_id.replace('\'', "''")
        );
        for b in r.session.query(&q).await? {
            let t = townstat_warehouse::text_column(&b, 0)?;
            let s = townstat_warehouse::text_column(&b, 1)?;
            let n = arrow::compute::cast(b.column(2), &arrow::datatypes::DataType::Int64)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let n = n.as_any().downcast_ref::<arrow::array::Int64Array>();
            for i in 0..b.num_rows() {
                let failing = n.map(|a| a.value(i)).unwrap_or(0);
                results.insert(t.value(i).to_string(), (s.value(i).to_string(), failing));
            }
        }
    }

    let mut nodes: Vec<Node> = vec![];
    // Raw sources: ingestion's inputs.
    for t in schema::catalog().iter().filter(|t| t.kind == "source") {
        nodes.push(Node {
            name: format!("raw/{}", t.name),
            label: format!("{}(源文件)", t.label),
            layer: "raw",
            key: vec![],
            columns: vec![],
            description: format!(
                "The agencies' files of kind {} (CSV, XLSX or NDJSON, UTF-8 or GBK), read by the pipeline's [[source]] globs.",
                t.name
            ),
            reads: vec![],
            sql: None,
            rows: None,
            tests: vec![],
        });
    }
    for (name, label, description) in [
        (
            "raw/towns",
            "专业镇名录文件",
            "The town registry (towns = in the pipeline file), the rosters it names and its dated events (town_events.csv beside it, or town_events = in the pipeline file).",
        ),
        (
            "raw/size_rules",
            "规上标准与大中小微划分标准(内置或 pipeline 指定)",
            "The 规上/限上 thresholds by sector and the 2017 size classes, compiled into the binary (sample-data/reference) unless the pipeline names its own files (above_size_thresholds =, size_classes =).",
        ),
        (
            "raw/gbt4754",
            "国民经济行业分类 GB/T 4754-2017(内置)",
            "The industry codes, compiled into the binary (sample-data/reference).",
        ),
        (
            "raw/gbt2260",
            "大同市行政区划代码 GB/T 2260(内置)",
            "Datong's division codes, compiled into the binary (sample-data/reference).",
        ),
    ] {
        nodes.push(Node {
            name: name.to_string(),
            label: label.to_string(),
            layer: "raw",
            key: vec![],
            columns: vec![],
            description: description.to_string(),
            reads: vec![],
            sql: None,
            rows: None,
            tests: vec![],
        });
    }
    // Warehouse tables of the schema catalog.
    for t in schema::catalog() {
        let reads = match t.name.as_str() {
            "patent_applicant" => vec!["raw/patent".to_string()],
            "town" | "town_roster" | "town_history" => vec!["raw/towns".to_string()],
            "above_size_rule" | "size_class_rule" => vec!["raw/size_rules".to_string()],
            "industry_code" => vec!["raw/gbt4754".to_string()],
            "division" => vec!["raw/gbt2260".to_string()],
            n if t.kind == "source" => vec![format!("raw/{n}")],
            _ => vec![],
        };
        let layer = match t.kind.as_str() {
            "source" | "derived" => "source",
            "reference" => "reference",
            _ => "system",
        };
        let arrow = townstat_ingest::arrow_out::arrow_schema(t);
        nodes.push(Node {
            name: t.name.clone(),
            label: t.label.clone(),
            layer,
            key: t.key.clone(),
            columns: columns_of(&t.name, &arrow),
            description: String::new(),
            reads,
            sql: None,
            rows: None,
            tests: vec![],
        });
    }
    // The history tables, derived in Rust from the registrations.
    for name in ["enterprise_history", "enterprise_absent"] {
        let derived = &schema::derived_labels().tables[name];
        let schema_of = match ctx.table_provider(name).await {
            Ok(p) => Some(p.schema()),
            Err(_) => match &run {
                Some(r) => r
                    .session
                    .ctx
                    .table_provider(name)
                    .await
                    .ok()
                    .map(|p| p.schema()),
                None => None,
            },
        };
        nodes.push(Node {
            name: name.to_string(),
            label: derived.label.clone(),
            layer: "history",
            key: derived.key.clone(),
            columns: schema_of
                .map(|s| columns_of(name, &s))
                .unwrap_or_default(),
            description: if name == "enterprise_history" {
                "Type-2 history of the registrations: each change of a registered enterprise closes its current version (valid_to) and opens a new one (valid_from), written by every run from the enterprise rows it loads.".into()
            } else {
                "Registered enterprises a full registry snapshot no longer lists: flagged, never deleted.".into()
            },
            reads: vec!["enterprise".to_string()],
            sql: None,
            rows: None,
            tests: vec![],
        });
    }
    for s in &steps {
        let label = schema::derived_labels()
            .tables
            .get(s.name)
            .map(|t| t.label.clone())
            .unwrap_or_default();
        let key = schema::derived_labels()
            .tables
            .get(s.name)
            .map(|t| t.key.clone())
            .unwrap_or_default();
        nodes.push(Node {
            name: s.name.to_string(),
            label,
            layer: s.layer,
            key,
            columns: columns_of(s.name, &s.schema),
            description: header_comment(&s.sql),
            reads: s.reads.clone(),
            sql: Some(s.sql.clone()),
            rows: None,
            tests: vec![],
        });
    }
    for n in &mut nodes {
        n.tests = cases
            .iter()
            .filter(|c| c.table == n.name)
            .map(|c| (c.clone(), results.get(&c.name).cloned()))
            .collect();
        if let Some(r) = &run
            && n.layer != "raw"
            && r.session
                .ctx
                .table_exist(n.name.as_str())
                .map_err(query_err)?
        {
            let q = format!("SELECT count(*) FROM \"{}\"", n.name);
            let b = r.session.query(&q).await?;
            n.rows = b
                .first()
                .and_then(|b| {
                    arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64).ok()
                })
                .and_then(|a| {
                    a.as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .map(|a| a.value(0) as u64)
                });
        }
    }
    Ok(render(&nodes, run.as_ref().map(|r| &r.session.run)))
}

/// Every node upstream of one, nearest first.
fn upstream(nodes: &[Node], name: &str) -> Vec<String> {
    let by_name: BTreeMap<&str, &Node> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut seen = BTreeSet::new();
    let mut order = vec![];
    let mut queue: std::collections::VecDeque<String> = by_name
        .get(name)
        .map(|n| n.reads.iter().cloned().collect())
        .unwrap_or_default();
    while let Some(next) = queue.pop_front() {
        if !seen.insert(next.clone()) {
            continue;
        }
        if let Some(n) = by_name.get(next.as_str()) {
            queue.extend(n.reads.iter().cloned());
        }
        order.push(next);
    }
    order
}

fn anchor(name: &str) -> String {
    format!("t-{}", name.replace('/', "-"))
}

fn link(name: &str) -> String {
    format!("<a href=\"#{}\">{}</a>", anchor(name), esc(name))
}

const LAYERS: [&str; 5] = ["raw", "source", "staging", "intermediate", "marts"];

fn column_of(layer: &str) -> usize {
    match layer {
        "raw" => 0,
        "source" | "reference" | "system" => 1,
        "staging" | "history" => 2,
        "intermediate" => 3,
        _ => 4,
    }
}

/// The lineage graph: one column per layer, an edge from each table to each step
/// that reads it. System tables (run records) have no edges and stay out of it.
fn graph(nodes: &[Node]) -> String {
    const W: usize = 200;
    const GAP: usize = 60;
    const H: usize = 22;
    const VGAP: usize = 6;
    let shown: Vec<&Node> = nodes.iter().filter(|n| n.layer != "system").collect();
    let mut pos: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut heights = [0usize; 5];
    for n in &shown {
        let c = column_of(n.layer);
        pos.insert(n.name.as_str(), (c, heights[c]));
        heights[c] += 1;
    }
    let rows = heights.iter().copied().max().unwrap_or(0);
    let width = 5 * W + 4 * GAP + 20;
    let height = 30 + rows * (H + VGAP) + 10;
    let xy = |c: usize, r: usize| (10 + c * (W + GAP), 30 + r * (H + VGAP));
    let mut svg = format!(
        "<svg id=\"lineage-graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"lineage\">"
    );
    for (i, l) in LAYERS.iter().enumerate() {
        let (x, _) = xy(i, 0);
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"18\" class=\"layer\">{}</text>",
            esc(layer_title(l))
        );
    }
    for n in &shown {
        let Some(&(c, r)) = pos.get(n.name.as_str()) else {
            continue;
        };
        let (x1, y1) = xy(c, r);
        for up in &n.reads {
            let Some(&(uc, ur)) = pos.get(up.as_str()) else {
                continue;
            };
            let (x0, y0) = xy(uc, ur);
            let (sx, sy) = (x0 + W, y0 + H / 2);
            let (ex, ey) = (x1, y1 + H / 2);
            let mid = (sx + ex) / 2;
            let _ = write!(
                svg,
                "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}\"/>",
                esc(up),
                esc(&n.name)
            );
        }
    }
    for n in &shown {
        let Some(&(c, r)) = pos.get(n.name.as_str()) else {
            continue;
        };
        let (x, y) = xy(c, r);
        let _ = write!(
            svg,
            "<a href=\"#{}\"><g class=\"node {}\" data-name=\"{}\"><rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"4\"/><text x=\"{}\" y=\"{}\">{}</text></g></a>",
            anchor(&n.name),
            n.layer,
            esc(&n.name),
            x + 6,
            y + 15,
            esc(&n.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:0;color:#1d2733}\
header{position:sticky;top:0;background:#f4f6f9;border-bottom:1px solid #cfd6df;padding:10px 20px;z-index:2}\
h1{font-size:20px;margin:0 0 6px}header p{margin:0 0 6px;font-size:13px;color:#4a5563}\
#q{width:420px;font-size:15px;padding:4px 8px}main{padding:10px 20px}\
section.table{border-top:1px solid #dde3ea;padding:8px 0 14px}section.table h2{font-size:17px;margin:6px 0}\
section.table h2 small{font-weight:normal;color:#4a5563;margin-left:8px}\
.meta{font-size:13px;color:#333}.meta b{font-weight:600}table{border-collapse:collapse;font-size:13px;margin:6px 0}\
td,th{border:1px solid #d5dbe3;padding:2px 6px;text-align:left;vertical-align:top}th{background:#eef1f5}\
td.def{max-width:640px}pre{background:#f7f7f9;padding:8px;font-size:12px;overflow:auto;max-height:360px}\
.pass{color:#17713a}.fail{color:#b3261e;font-weight:600}.warn{color:#9a6700;font-weight:600}.absent,.none{color:#777}\
#lineage{overflow:auto}svg .edge{fill:none;stroke:#9aa7b8;stroke-width:1}svg .layer{font-size:13px;font-weight:600;fill:#333}\
svg rect{fill:#fff;stroke:#6b7a8d}svg .marts rect{fill:#e6f0ff}svg .raw rect{fill:#fff4e0}\
svg .staging rect,svg .intermediate rect,svg .history rect{fill:#eef7ee}svg text{font-size:12px;fill:#1d2733}\
nav{font-size:13px;columns:4;margin:8px 0}nav div{break-inside:avoid;margin-bottom:6px}\
.desc{white-space:pre-wrap;font-size:13px;color:#333;margin:4px 0}";

const SCRIPT: &str = "(function(){var q=document.getElementById('q');\
function apply(){var t=q.value.trim().toLowerCase();var n=0;\
document.querySelectorAll('section.table').forEach(function(s){var hit=!t||s.getAttribute('data-search').toLowerCase().indexOf(t)>=0;\
if(hit){s.removeAttribute('hidden');n++}else{s.setAttribute('hidden','')}});\
document.getElementById('count').textContent=n;}\
q.addEventListener('input',apply);\
var m=/^#q=(.*)$/.exec(location.hash);if(m){q.value=decodeURIComponent(m[1]);}apply();})();";

fn render(nodes: &[Node], run: Option<&townstat_warehouse::CommittedRun>) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width\">");
    // The page loads nothing: its style and script are inline, and the browser is
    // told to refuse anything else.
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">");
    h.push_str("<title>townstat 数据目录 data catalog</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body><header><h1>townstat 数据目录 · data catalog</h1><p>");
    match run {
        Some(r) => {
            let _ = write!(
                h,
                "运行 run <b id=\"run-id\">{}</b> ({}): 行数与检验结果取自该运行 — row counts and test results of this run.",
                esc(&r.run_id),
                esc(&r.status)
            );
        }
        None => h.push_str("尚无运行 — no committed run yet: no row counts or test results."),
    }
    let tables = nodes.iter().filter(|n| n.layer != "raw").count();
    let _ = write!(
        h,
        " {tables} 张表与步骤 tables and steps; 血缘由 SQL 的逻辑计划推导 — lineage derived from each step's DataFusion logical plan.</p>\
         <input id=\"q\" type=\"search\" placeholder=\"搜索表、列或中文名 / search tables, columns, labels\" autocomplete=\"off\"> \
         <span class=\"meta\"><span id=\"count\">{}</span> shown</span></header><main>",
        nodes.len()
    );
    // Index by layer.
    h.push_str("<nav>");
    for layer in [
        "raw",
        "source",
        "reference",
        "system",
        "history",
        "staging",
        "intermediate",
        "marts",
    ] {
        let members: Vec<&Node> = nodes.iter().filter(|n| n.layer == layer).collect();
        if members.is_empty() {
            continue;
        }
        let _ = write!(h, "<div><b>{}</b><br>", esc(layer_title(layer)));
        for n in members {
            let _ = write!(h, "{} {}<br>", link(&n.name), esc(&n.label));
        }
        h.push_str("</div>");
    }
    h.push_str("</nav><section id=\"lineage\"><h2>血缘 Lineage</h2>");
    h.push_str(&graph(nodes));
    h.push_str("</section>");
    let readers: BTreeMap<&str, Vec<&str>> = {
        let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in nodes {
            for r in &n.reads {
                m.entry(r.as_str()).or_default().push(n.name.as_str());
            }
        }
        m
    };
    for n in nodes {
        let mut search = format!("{} {} {}", n.name, n.label, n.layer);
        for c in &n.columns {
            let _ = write!(search, " {} {}", c.name, c.label);
        }
        let up = upstream(nodes, &n.name);
        let _ = write!(
            h,
            "<section class=\"table\" id=\"{}\" data-name=\"{}\" data-layer=\"{}\" data-reads=\"{}\" data-upstream=\"{}\" data-search=\"{}\">",
            anchor(&n.name),
            esc(&n.name),
            n.layer,
            esc(&n.reads.join(" ")),
            esc(&up.join(" ")),
            esc(&search)
        );
        let _ = write!(
            h,
            "<h2>{}<small>{}</small></h2><div class=\"meta\"><b>层 layer</b>: {}",
            esc(&n.name),
            esc(&n.label),
            esc(layer_title(n.layer))
        );
        if !n.key.is_empty() {
            let _ = write!(
                h,
                " · <b>粒度 grain / key</b>: one row per ({})",
                esc(&n.key.join(", "))
            );
        }
        match n.rows {
            Some(r) => {
                let _ = write!(h, " · <b>行数 rows</b>: <span class=\"rows\">{r}</span>");
            }
            None if n.layer == "staging" || n.layer == "intermediate" => {
                h.push_str(" · <b>行数 rows</b>: not stored (a step of the mart build)");
            }
            None => {}
        }
        h.push_str("</div>");
        if !n.description.is_empty() {
            let _ = write!(h, "<div class=\"desc\">{}</div>", esc(&n.description));
        }
        if !n.reads.is_empty() {
            let reads: Vec<String> = n.reads.iter().map(|r| link(r)).collect();
            let _ = write!(
                h,
                "<div class=\"meta\"><b>读取 reads</b>: <span class=\"reads\">{}</span></div>",
                reads.join(", ")
            );
            let all: Vec<String> = up.iter().map(|r| link(r)).collect();
            let _ = write!(
                h,
                "<div class=\"meta\"><b>全部上游 all upstream</b>: {}</div>",
                all.join(" ← ")
            );
        }
        if let Some(rs) = readers.get(n.name.as_str()) {
            let rs: Vec<String> = rs.iter().map(|r| link(r)).collect();
            let _ = write!(
                h,
                "<div class=\"meta\"><b>被读取 read by</b>: {}</div>",
                rs.join(", ")
            );
        }
        if !n.columns.is_empty() {
            h.push_str("<table class=\"columns\"><tr><th>列 column</th><th>类型 type</th><th>中文名 label</th><th>单位 unit</th><th>定义 definition</th></tr>");
            for c in &n.columns {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"def\">{}</td></tr>",
                    esc(&c.name),
                    esc(&c.ty),
                    esc(&c.label),
                    esc(&c.unit),
                    esc(&c.definition)
                );
            }
            h.push_str("</table>");
        }
        if !n.tests.is_empty() {
            h.push_str("<table class=\"tests\"><tr><th>检验 test</th><th>级别 severity</th><th>规则 rule</th><th>上次结果 last result</th><th>未通过行 failing rows</th></tr>");
            for (c, r) in &n.tests {
                let (status, failing) = match r {
                    Some((s, f)) => (s.as_str(), f.to_string()),
                    None => ("none", String::new()),
                };
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{status}\">{status}</td><td>{failing}</td></tr>",
                    esc(&c.name),
                    c.severity.as_str(),
                    esc(&c.description)
                );
            }
            h.push_str("</table>");
        }
        if let Some(sql) = &n.sql {
            let _ = write!(
                h,
                "<details><summary>SQL</summary><pre>{}</pre></details>",
                esc(sql)
            );
        }
        h.push_str("</section>");
    }
    h.push_str("</main><script>");
    h.push_str(SCRIPT);
    h.push_str("</script></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MartSettings {
        MartSettings {
            components: vec![],
            grading: marts::Grading::default(),
            cluster: marts::ClusterRule::default(),
            targets: marts::TargetsFile::default(),
        }
    }

    #[tokio::test]
    async fn town_year_reads_what_its_sql_reads() {
        let (steps, _) = lineage(&settings(), NaiveDate::from_ymd_opt(2025, 6, 30).unwrap())
            .await
            .expect("lineage");
        let town_year = steps.iter().find(|s| s.name == "town_year").expect("step");
        assert_eq!(
            town_year.reads,
            ["int_group_year", "int_town_industry_jobs", "town"]
        );
        // A step that reads a source table through a subquery still names it.
        let member = steps
            .iter()
            .find(|s| s.name == "town_member_year")
            .expect("step");
        assert!(
            member.reads.contains(&"enterprise".to_string()),
            "{:?}",
            member.reads
        );
    }
}
