//! The mart builder: runs the SQL files of `pipelines/marts/` in layers (staging →
//! intermediate → marts) over a session of pinned warehouse tables. Each step's result
//! is registered under its name for the steps after it; the mart layer's results are
//! returned for the pipeline to commit.
//!
//! The SQL files are compiled in (the binary carries the definitions it was tested
//! with); the evaluation weights and targets come from the pipeline's TOML files and
//! are expanded into the two SQL files that need them.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The steps, in order: (layer, name, SQL).
pub const STEPS: &[(&str, &str, &str)] = &[
    (
        "staging",
        "stg_year",
        include_str!("../../../pipelines/marts/staging/stg_year.sql"),
    ),
    (
        "staging",
        "stg_enterprise_year",
        include_str!("../../../pipelines/marts/staging/stg_enterprise_year.sql"),
    ),
    (
        "staging",
        "stg_employment_year",
        include_str!("../../../pipelines/marts/staging/stg_employment_year.sql"),
    ),
    (
        "intermediate",
        "int_town_code",
        include_str!("../../../pipelines/marts/intermediate/int_town_code.sql"),
    ),
    (
        "intermediate",
        "int_town_member",
        include_str!("../../../pipelines/marts/intermediate/int_town_member.sql"),
    ),
    (
        "intermediate",
        "int_industry_rule",
        include_str!("../../../pipelines/marts/intermediate/int_industry_rule.sql"),
    ),
    (
        "intermediate",
        "int_size_class",
        include_str!("../../../pipelines/marts/intermediate/int_size_class.sql"),
    ),
    (
        "intermediate",
        "int_above_size",
        include_str!("../../../pipelines/marts/intermediate/int_above_size.sql"),
    ),
    (
        "intermediate",
        "int_entity_year",
        include_str!("../../../pipelines/marts/intermediate/int_entity_year.sql"),
    ),
    (
        "intermediate",
        "int_group_sums",
        include_str!("../../../pipelines/marts/intermediate/int_group_sums.sql"),
    ),
    (
        "intermediate",
        "int_group_year",
        include_str!("../../../pipelines/marts/intermediate/int_group_year.sql"),
    ),
    (
        "intermediate",
        "int_town_industry_jobs",
        include_str!("../../../pipelines/marts/intermediate/int_town_industry_jobs.sql"),
    ),
    (
        "marts",
        "town_designation_year",
        include_str!("../../../pipelines/marts/marts/town_designation_year.sql"),
    ),
    (
        "marts",
        "town_membership",
        include_str!("../../../pipelines/marts/marts/town_membership.sql"),
    ),
    (
        "marts",
        "town_member_year",
        include_str!("../../../pipelines/marts/marts/town_member_year.sql"),
    ),
    (
        "marts",
        "town_year",
        include_str!("../../../pipelines/marts/marts/town_year.sql"),
    ),
    (
        "marts",
        "enterprise_size_year",
        include_str!("../../../pipelines/marts/marts/enterprise_size_year.sql"),
    ),
    (
        "marts",
        "county_year",
        include_str!("../../../pipelines/marts/marts/county_year.sql"),
    ),
    (
        "marts",
        "city_year",
        include_str!("../../../pipelines/marts/marts/city_year.sql"),
    ),
    (
        "marts",
        "town_year_yoy",
        include_str!("../../../pipelines/marts/marts/town_year_yoy.sql"),
    ),
    (
        "marts",
        "town_year_structure",
        include_str!("../../../pipelines/marts/marts/town_year_structure.sql"),
    ),
    (
        "marts",
        "quality_mark_year",
        include_str!("../../../pipelines/marts/marts/quality_mark_year.sql"),
    ),
    (
        "intermediate",
        "int_project_latest",
        include_str!("../../../pipelines/marts/intermediate/int_project_latest.sql"),
    ),
    (
        "marts",
        "project_status",
        include_str!("../../../pipelines/marts/marts/project_status.sql"),
    ),
    (
        "marts",
        "project_year",
        include_str!("../../../pipelines/marts/marts/project_year.sql"),
    ),
    (
        "marts",
        "investment_year",
        include_str!("../../../pipelines/marts/marts/investment_year.sql"),
    ),
    (
        "marts",
        "county_year_yoy",
        include_str!("../../../pipelines/marts/marts/county_year_yoy.sql"),
    ),
    (
        "marts",
        "city_year_yoy",
        include_str!("../../../pipelines/marts/marts/city_year_yoy.sql"),
    ),
    (
        "marts",
        "town_evaluation_component",
        include_str!("../../../pipelines/marts/marts/town_evaluation_component.sql"),
    ),
    (
        "marts",
        "town_evaluation",
        include_str!("../../../pipelines/marts/marts/town_evaluation.sql"),
    ),
    (
        "marts",
        "town_cluster",
        include_str!("../../../pipelines/marts/marts/town_cluster.sql"),
    ),
    (
        "marts",
        "town_target_progress",
        include_str!("../../../pipelines/marts/marts/town_target_progress.sql"),
    ),
    (
        "marts",
        "town_target_pace",
        include_str!("../../../pipelines/marts/marts/town_target_pace.sql"),
    ),
    (
        "marts",
        "dq_town_overlap",
        include_str!("../../../pipelines/marts/marts/dq_town_overlap.sql"),
    ),
    (
        "marts",
        "dq_unlinked_applicant",
        include_str!("../../../pipelines/marts/marts/dq_unlinked_applicant.sql"),
    ),
];

/// One evaluation component (`pipelines/evaluation.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// A town_year column.
    pub indicator: String,
    /// Its weight.
    pub weight: f64,
    /// Whether a higher value is better.
    pub higher_is_better: bool,
}

/// One grade of the evaluation (`[[grade]]` of `evaluation.toml`), best first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grade {
    /// The grade's name (优秀, 良好, 合格, 不合格 …).
    pub name: String,
    /// The lowest score (rounded to 9 decimals, as for ranks) that earns it; the last
    /// grade has none and takes every score below the others.
    #[serde(default)]
    pub min_score: Option<f64>,
}

/// Grades and the dynamic-adjustment rule (`evaluation.toml`).
#[derive(Debug, Clone, Default)]
pub struct Grading {
    /// Grades, best first; none: `grade` is null and nothing is flagged.
    pub grades: Vec<Grade>,
    /// The grade that, held `review_years` years running, flags a town for review.
    pub review_grade: Option<String>,
    /// How many consecutive years of `review_grade` flag a town (at least 2).
    pub review_years: u32,
}

/// The cluster-strength benchmarks (`[cluster]` of `evaluation.toml`; see
/// `town_cluster.sql` for the rule).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRule {
    /// Specialised: location quotient at least this.
    #[serde(default = "default_lq_min")]
    pub lq_min: f64,
    /// Large: among this top share of its industry group's towns by employment.
    #[serde(default = "default_half")]
    pub size_top_share: f64,
    /// Strong: location quotient at least this …
    #[serde(default = "default_one")]
    pub strong_lq_min: f64,
    /// … and at or above this percent rank of the year's towns …
    #[serde(default = "default_three_quarters")]
    pub strong_lq_percentile: f64,
    /// … with employment and establishments above this percent rank.
    #[serde(default = "default_quarter")]
    pub strong_floor_percentile: f64,
}

fn default_lq_min() -> f64 {
    1.25
}
fn default_half() -> f64 {
    0.5
}
fn default_one() -> f64 {
    1.0
}
fn default_three_quarters() -> f64 {
    0.75
}
fn default_quarter() -> f64 {
    0.25
}

impl Default for ClusterRule {
    fn default() -> Self {
        ClusterRule {
            lq_min: default_lq_min(),
            size_top_share: default_half(),
            strong_lq_min: default_one(),
            strong_lq_percentile: default_three_quarters(),
            strong_floor_percentile: default_quarter(),
        }
    }
}

impl ClusterRule {
    fn check(&self) -> std::result::Result<(), String> {
        for (name, v) in [
            ("size_top_share", self.size_top_share),
            ("strong_lq_percentile", self.strong_lq_percentile),
            ("strong_floor_percentile", self.strong_floor_percentile),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("[cluster] {name} = {v}: a share between 0 and 1"));
            }
        }
        for (name, v) in [
            ("lq_min", self.lq_min),
            ("strong_lq_min", self.strong_lq_min),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "[cluster] {name} = {v}: a location quotient, 0 or more"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluationFile {
    component: Vec<Component>,
    #[serde(default)]
    cluster: ClusterRule,
    #[serde(default)]
    grade: Vec<Grade>,
    #[serde(default)]
    review_grade: Option<String>,
    #[serde(default = "default_review_years")]
    review_years: u32,
}

fn default_review_years() -> u32 {
    2
}

/// One target (`pipelines/targets.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Stable id.
    pub id: String,
    /// `city` or a town_id.
    pub scope: String,
    /// A city_year or town_year column.
    pub metric: String,
    /// `>=` (reach at least) or `<=` (stay at most).
    pub comparison: String,
    /// The target value.
    pub value: f64,
    /// The target year.
    pub year: i32,
    /// Yearly milestones before the target year (`[target.milestones]`, year = value):
    /// the target a year's row is measured against; the other years use `value`.
    #[serde(default)]
    pub milestones: std::collections::BTreeMap<String, f64>,
}

/// The targets file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsFile {
    /// B of doubling_progress.
    #[serde(default = "default_baseline")]
    pub baseline_year: i32,
    /// The year the registry's tier targets are for.
    #[serde(default = "default_tier_year")]
    pub tier_target_year: i32,
    /// The targets.
    #[serde(default)]
    pub target: Vec<Target>,
}

fn default_baseline() -> i32 {
    2022
}

fn default_tier_year() -> i32 {
    2025
}

impl Default for TargetsFile {
    fn default() -> Self {
        TargetsFile {
            baseline_year: default_baseline(),
            tier_target_year: default_tier_year(),
            target: vec![],
        }
    }
}

/// What the marts of one run are built from.
#[derive(Debug, Clone)]
pub struct MartConfig {
    /// The run building them (stored in every mart row).
    pub run_id: String,
    /// The run date's year: the last mart year.
    pub run_year: i32,
    /// Evaluation components.
    pub components: Vec<Component>,
    /// Evaluation grades and the review rule.
    pub grading: Grading,
    /// The cluster-strength benchmarks.
    pub cluster: ClusterRule,
    /// Targets and the baseline year.
    pub targets: TargetsFile,
    /// Where step results go instead of memory; `None` keeps them all in memory.
    pub scratch: Option<Scratch>,
}

/// Step results as files under a prefix of a store, registered as tables the next
/// steps read. A cluster cannot read the client's memory, so on a cluster every
/// step's result is written here as a Parquet object (`min_bytes` 0), and its marts
/// are also returned in memory. A local build (`min_bytes` > 0, a `file://` prefix)
/// executes each step as a stream and holds its batches until they reach `min_bytes`;
/// from there on the step's batches go to an Arrow IPC file here as they come
/// (`crate::scratch_ipc`). At scale 100
/// `int_entity_year` (about 1 GB in memory) and the mart `town_member_year` (700 MB)
/// are never held whole: the next steps stream them from disk, and a mart written
/// here is returned as [`MartRows::Scratch`] for the run to test, commit and export
/// from the file. The caller deletes the prefix when it is done with the marts.
#[derive(Debug, Clone)]
pub struct Scratch {
    /// The store.
    pub store: Arc<dyn object_store::ObjectStore>,
    /// The prefix in the store.
    pub prefix: object_store::path::Path,
    /// The prefix's URL (ends with `/`), as the executors resolve it.
    pub url: url::Url,
    /// The smallest staging or intermediate result written here; 0: every step's.
    pub min_bytes: usize,
}

impl Scratch {
    /// The local folder of a local build's scratch; `None` on a cluster (every result
    /// collected, then put) or for a prefix that is not a local folder.
    fn local_dir(&self) -> Option<std::path::PathBuf> {
        if self.min_bytes == 0 || self.url.scheme() != "file" {
            return None;
        }
        self.url.to_file_path().ok()
    }

    async fn table(
        &self,
        name: &str,
        schema: &SchemaRef,
        parts: &[Vec<RecordBatch>],
    ) -> Result<Arc<dyn TableProvider>> {
        use object_store::ObjectStoreExt;
        let file = format!("{name}.parquet");
        let fail = |e: &dyn std::fmt::Display| Error::Output(format!("scratch {file}: {e}"));
        let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), None)
            .map_err(|e| fail(&e))?;
        for batch in parts.iter().flatten() {
            w.write(batch).map_err(|e| fail(&e))?;
        }
        let bytes = w.into_inner().map_err(|e| fail(&e))?;
        self.store
            .put(&self.prefix.clone().join(file.as_str()), bytes.into())
            .await
            .map_err(|e| fail(&e))?;
        let url = self.url.join(&file).map_err(|e| fail(&e))?;
        listing(&url, schema)
    }
}

/// A Parquet object as a table the next steps (and the marts' tests) read.
fn listing(url: &url::Url, schema: &SchemaRef) -> Result<Arc<dyn TableProvider>> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    let config = ListingTableConfig::new(ListingTableUrl::parse(url.as_str())?)
        .with_listing_options(
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet"),
        )
        .with_schema(schema.clone());
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// A built mart's rows: the batches its plan produced, or the scratch file a local
/// build wrote them to (a large mart), in the order the plan produced them either way.
#[derive(Debug, Clone)]
pub enum MartRows {
    /// In memory, at least one batch (possibly empty).
    Memory(Vec<RecordBatch>),
    /// An Arrow IPC file in the local build's scratch folder.
    Scratch(ScratchFile),
}

/// A mart written to the local build's scratch folder.
#[derive(Debug, Clone)]
pub struct ScratchFile {
    /// The file.
    pub path: std::path::PathBuf,
    /// The rows' schema.
    pub schema: SchemaRef,
    /// How many rows it has.
    pub rows: usize,
}

impl ScratchFile {
    /// The file as a table to query.
    fn provider(&self) -> Result<Arc<dyn TableProvider>> {
        Ok(Arc::new(crate::scratch_ipc::ScratchTable::new(
            self.path.clone(),
            self.schema.clone(),
            self.rows,
        )))
    }
}

impl MartRows {
    /// The rows' schema.
    pub fn schema(&self) -> SchemaRef {
        match self {
            MartRows::Memory(batches) => batches[0].schema(),
            MartRows::Scratch(file) => file.schema.clone(),
        }
    }

    /// How many rows there are.
    pub fn num_rows(&self) -> usize {
        match self {
            MartRows::Memory(batches) => batches.iter().map(RecordBatch::num_rows).sum(),
            MartRows::Scratch(file) => file.rows,
        }
    }

    /// The rows as a table to query.
    pub fn provider(&self) -> Result<Arc<dyn TableProvider>> {
        match self {
            MartRows::Memory(batches) => Ok(Arc::new(MemTable::try_new(
                self.schema(),
                vec![batches.clone()],
            )?)),
            MartRows::Scratch(file) => file.provider(),
        }
    }

    /// Reads the rows from the start, in order, a batch at a time (a file is read as
    /// it is consumed, not loaded whole).
    pub fn batches(&self) -> Result<townstat_warehouse::BatchIter> {
        match self {
            MartRows::Memory(batches) => Ok(Box::new(batches.clone().into_iter().map(Ok))),
            MartRows::Scratch(file) => {
                let shown = file.path.display().to_string();
                let fail = move |e: &dyn std::fmt::Display| format!("scratch {shown}: {e}");
                let reader = crate::scratch_ipc::open(&file.path, None)
                    .map_err(|e| Error::Output(fail(&e)))?;
                let schema = file.schema.clone();
                Ok(Box::new(reader.map(move |b| {
                    // The file's schema may differ in metadata only: the rows take the
                    // step's.
                    b.map_err(|e| fail(&e)).and_then(|b| {
                        RecordBatch::try_new(schema.clone(), b.columns().to_vec())
                            .map_err(|e| fail(&e))
                    })
                })))
            }
        }
    }

    /// The rows as a stream for a table write.
    pub fn row_stream(&self) -> townstat_warehouse::RowStream {
        let rows = self.clone();
        townstat_warehouse::RowStream {
            schema: self.schema(),
            rows: self.num_rows(),
            open: Arc::new(move || match rows.batches() {
                Ok(batches) => batches,
                Err(e) => Box::new(std::iter::once(Err(e.to_string()))),
            }),
        }
    }
}

fn config_err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Output(format!("{}: {message}", path.display()))
}

/// Loads `evaluation.toml`: the components, the grades with the review rule, and the
/// cluster benchmarks.
pub fn load_evaluation(path: &Path) -> Result<(Vec<Component>, Grading, ClusterRule)> {
    let text = std::fs::read_to_string(path).map_err(|e| config_err(path, e))?;
    parse_evaluation(&text, path)
}

/// Parses the text of an `evaluation.toml` (`path` names it in errors).
pub fn parse_evaluation(text: &str, path: &Path) -> Result<(Vec<Component>, Grading, ClusterRule)> {
    let file: EvaluationFile = toml::from_str(text).map_err(|e| config_err(path, e))?;
    let grading = Grading {
        grades: file.grade,
        review_grade: file.review_grade,
        review_years: file.review_years,
    };
    check_grading(&grading).map_err(|m| config_err(path, m))?;
    file.cluster.check().map_err(|m| config_err(path, m))?;
    Ok((file.component, grading, file.cluster))
}

/// Grades must run best first with falling `min_score`s, end with one without (the
/// floor), have distinct names, and the review grade must be one of them.
fn check_grading(g: &Grading) -> std::result::Result<(), String> {
    let mut last: Option<f64> = None;
    for (i, grade) in g.grades.iter().enumerate() {
        if grade.name.trim().is_empty() {
            return Err(format!("grade {}: an empty name", i + 1));
        }
        if g.grades[..i].iter().any(|o| o.name == grade.name) {
            return Err(format!("grade {:?} is listed twice", grade.name));
        }
        let is_last = i + 1 == g.grades.len();
        match (grade.min_score, is_last) {
            (None, false) => {
                return Err(format!(
                    "grade {:?} has no min_score; only the last grade (the floor) may omit it",
                    grade.name
                ));
            }
            (Some(_), true) => {
                return Err(format!(
                    "the last grade {:?} has a min_score; the last grade takes every lower score and has none",
                    grade.name
                ));
            }
            (Some(m), false) => {
                if !m.is_finite() || last.is_some_and(|l| m >= l) {
                    return Err(format!(
                        "grade {:?}: min_score {m} must be below the grade above it (grades run best first)",
                        grade.name
                    ));
                }
                last = Some(m);
            }
            (None, true) => {}
        }
    }
    if let Some(r) = &g.review_grade
        && !g.grades.iter().any(|x| &x.name == r)
    {
        return Err(format!("review_grade {r:?} is not one of the grades"));
    }
    if g.review_years < 2 {
        return Err(format!(
            "review_years = {}: a review needs two years running or more",
            g.review_years
        ));
    }
    Ok(())
}

/// The SQL of a town's grade (over `score`) and of its review flag (over `grade`,
/// `town_id` and `year`).
fn grading_sql(g: &Grading) -> (String, String) {
    if g.grades.is_empty() {
        return ("CAST(NULL AS VARCHAR)".into(), "false".into());
    }
    let mut grade = String::from("CASE");
    for x in &g.grades {
        match x.min_score {
            Some(m) => grade.push_str(&format!(
                " WHEN round(score, 9) >= {m:?} THEN {}",
                sql_str(&x.name)
            )),
            None => grade.push_str(&format!(" ELSE {}", sql_str(&x.name))),
        }
    }
    grade.push_str(" END");
    let review = match &g.review_grade {
        None => "false".to_string(),
        Some(r) => {
            let mut parts = vec![format!("COALESCE(grade = {}, false)", sql_str(r))];
            for k in 1..g.review_years {
                parts.push(format!(
                    "COALESCE(LAG(grade, {k}) OVER (PARTITION BY town_id ORDER BY year) = {r}, false)",
                    r = sql_str(r)
                ));
                parts.push(format!(
                    "COALESCE(LAG(year, {k}) OVER (PARTITION BY town_id ORDER BY year) = year - {k}, false)"
                ));
            }
            parts.join("\n           AND ")
        }
    };
    (grade, review)
}

/// Loads `targets.toml`.
pub fn load_targets(path: &Path) -> Result<TargetsFile> {
    let text = std::fs::read_to_string(path).map_err(|e| config_err(path, e))?;
    parse_targets(&text, path)
}

/// Parses the text of a `targets.toml` (`path` names it in errors).
pub fn parse_targets(text: &str, path: &Path) -> Result<TargetsFile> {
    let file: TargetsFile = toml::from_str(text).map_err(|e| config_err(path, e))?;
    for t in &file.target {
        if t.comparison != ">=" && t.comparison != "<=" {
            return Err(config_err(
                path,
                format!(
                    "target {}: comparison {:?} is not supported (use \">=\" or \"<=\")",
                    t.id, t.comparison
                ),
            ));
        }
        for (year, value) in &t.milestones {
            let y: i32 = year.parse().map_err(|_| {
                config_err(
                    path,
                    format!("target {}: milestone {year:?} is not a year", t.id),
                )
            })?;
            if y >= t.year || !value.is_finite() {
                return Err(config_err(
                    path,
                    format!(
                        "target {}: milestone {y} = {value} must be a number for a year before the target year {}",
                        t.id, t.year
                    ),
                ));
            }
        }
    }
    Ok(file)
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The counts and amounts of project_year and investment_year: an evaluation
/// component of one of them is 0 for a town without a row in the year.
const LEDGER_TOTALS: &[&str] = &[
    "projects_signed",
    "signed_in_year",
    "projects_started",
    "started_in_year",
    "projects_in_production",
    "in_production_in_year",
    "projects_at_capacity",
    "at_capacity_in_year",
    "planned_investment",
    "completed_investment",
    "projects_reported",
    "deals_signed",
    "deals_outside_province",
    "deals_outside_city",
    "contracted_amount",
    "funds_in_place",
    "funds_outside_province",
];

fn components_sql(components: &[Component]) -> Result<String> {
    if components.is_empty() {
        // No evaluation configured: the evaluation marts exist, empty.
        return Ok(
            "SELECT town_id, year, '' AS indicator, CAST(NULL AS DOUBLE) AS value, \
                   CAST(0 AS DOUBLE) AS weight, true AS higher_is_better FROM town_year WHERE false"
                .to_string(),
        );
    }
    let parts: Result<Vec<String>> = components
        .iter()
        .map(|c| {
            if !ident_ok(&c.indicator) {
                return Err(Error::Output(format!(
                    "evaluation indicator {:?} is not a column name",
                    c.indicator
                )));
            }
            // A component names a column of town_year, of town_year_yoy (同比), of
            // town_year_structure (CAGR, productivity …), or of the town rows of
            // project_year / investment_year (the ledgers): the names do not overlap. A
            // ledger's count or amount is 0 for a town without a row that year (no
            // project, no deal); its rates stay null there (no divisor: not ranked).
            let col = if LEDGER_TOTALS.contains(&c.indicator.as_str()) {
                format!("COALESCE({}, 0)", c.indicator)
            } else {
                c.indicator.clone()
            };
            Ok(format!(
                "SELECT ty.town_id, ty.year, {ind} AS indicator, CAST({col} AS DOUBLE) AS value, \
                 CAST({w} AS DOUBLE) AS weight, {hib} AS higher_is_better \
                 FROM town_year ty \
                 JOIN town_designation_year dy ON dy.town_id = ty.town_id AND dy.year = ty.year \
                 LEFT JOIN town_year_yoy yoy ON yoy.town_id = ty.town_id AND yoy.year = ty.year \
                 LEFT JOIN town_year_structure st ON st.town_id = ty.town_id AND st.year = ty.year \
                 LEFT JOIN project_year pj ON pj.group_type = 'town' \
                      AND pj.group_id = ty.town_id AND pj.year = ty.year \
                 LEFT JOIN investment_year iv ON iv.group_type = 'town' \
                      AND iv.group_id = ty.town_id AND iv.year = ty.year \
                 WHERE dy.designated AND {col} IS NOT NULL",
                ind = sql_str(&c.indicator),
                w = c.weight,
                hib = c.higher_is_better
            ))
        })
        .collect();
    Ok(parts?.join("\n    UNION ALL\n    "))
}

fn targets_sql(targets: &[Target]) -> Result<String> {
    let mut out = String::new();
    for t in targets {
        if !ident_ok(&t.metric) {
            return Err(Error::Output(format!(
                "target {}: metric {:?} is not a column name",
                t.id, t.metric
            )));
        }
        let (from, filter) = if t.scope == "city" {
            ("city_year".to_string(), String::new())
        } else {
            (
                "town_year".to_string(),
                format!("town_id = {} AND ", sql_str(&t.scope)),
            )
        };
        // A year's target: its milestone when it has one, else the final value.
        let mut target = String::new();
        for (y, v) in &t.milestones {
            target.push_str(&format!(" WHEN {y} THEN {v:?}"));
        }
        let target = if target.is_empty() {
            format!("{:?}", t.value)
        } else {
            format!("CASE year{target} ELSE {:?} END", t.value)
        };
        out.push_str(&format!(
            "SELECT {id} AS target_id, {scope} AS scope, {metric_s} AS metric, {cmp} AS comparison, \
             CAST({target} AS DOUBLE) AS target, CAST({year} AS BIGINT) AS target_year, year, \
             CAST({metric} AS DOUBLE) AS actual FROM {from} WHERE {filter}year <= {year}\n    UNION ALL\n    ",
            id = sql_str(&t.id),
            scope = sql_str(&t.scope),
            metric_s = sql_str(&t.metric),
            cmp = sql_str(&t.comparison),
            metric = t.metric,
            year = t.year,
        ));
    }
    Ok(out)
}

/// The first mart year: the earliest establishment year in the data, or 2015 when
/// that is later.
async fn first_year(ctx: &SessionContext, run_year: i32) -> Result<i32> {
    let batches = ctx
        .sql("SELECT CAST(min(date_part('year', established_on)) AS INT) FROM enterprise")
        .await?
        .collect()
        .await?;
    let earliest = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| b.column(0).as_primitive::<Int32Type>().clone())
        .filter(|a| a.is_valid(0))
        .map(|a| a.value(0))
        .unwrap_or(run_year);
    Ok(earliest.max(2015).min(run_year))
}

/// Builds every step and returns the marts, in order: each as the batches its plan
/// produced (at least one, possibly empty; the ones the session's table of the mart
/// holds, not a copy), or as the scratch file a local build wrote a large one to.
pub async fn build(ctx: &SessionContext, config: &MartConfig) -> Result<Vec<(String, MartRows)>> {
    let first = first_year(ctx, config.run_year).await?;
    let components = components_sql(&config.components)?;
    let (grade, review) = grading_sql(&config.grading);
    let targets = targets_sql(&config.targets.target)?;
    let mut marts = vec![];
    let last_use = last_uses();
    // The scratch files of staging and intermediate steps, removed after their last
    // reader (at scale 100 they are gigabytes on disk).
    let mut step_files: std::collections::HashMap<&str, std::path::PathBuf> =
        std::collections::HashMap::new();
    for (step, (layer, name, sql)) in STEPS.iter().enumerate() {
        let text = expand(sql, config, first, &components, &grade, &review, &targets);
        let step_clock = std::time::Instant::now();
        let df = ctx
            .sql(&text)
            .await
            .map_err(|e| Error::Output(format!("{layer}/{name}.sql: {e}")))?;
        // The physical plan's schema is the one the batches really have (string
        // columns may be Utf8View where the logical schema says Utf8).
        let logical_schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let plan = df
            .create_physical_plan()
            .await
            .map_err(|e| Error::Output(format!("{layer}/{name}.sql: {e}")))?;
        // A cluster plans a step it can prove empty (a join with an empty table) as an
        // empty plan of no columns: the step keeps the columns its SQL selects.
        let plan_schema = if plan.schema().fields().len() == logical_schema.fields().len() {
            plan.schema()
        } else {
            logical_schema
        };
        let exec_clock = std::time::Instant::now();
        let spill = config.scratch.as_ref().and_then(|s| {
            s.local_dir().map(|dir| {
                let file = format!("{name}{}", crate::scratch_ipc::EXTENSION);
                (dir.join(file), s.min_bytes)
            })
        });
        let result = execute(plan.clone(), ctx, spill)
            .await
            .map_err(|e| Error::Output(format!("{layer}/{name}.sql: {e}")))?;
        let exec_ms = exec_clock.elapsed().as_millis() as u64;
        if explain_steps() {
            // The executed plan with its metrics (rows, time, memory, spills per
            // operator): how to find out where a step's time goes.
            let shown = datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
                plan.as_ref(),
            )
            .indent(true)
            .to_string();
            tracing::info!(step = *name, plan = %shown, "mart step plan");
        }
        let (table, rows, bytes, scratch_bytes, mart): (Arc<dyn TableProvider>, _, _, _, _) =
            match result {
                Executed::Held(parts) => {
                    let schema = match parts.iter().flatten().next() {
                        Some(b) => b.schema(),
                        None => compact_schema(&plan_schema),
                    };
                    let rows: usize = parts.iter().flatten().map(|b| b.num_rows()).sum();
                    // The memory the step's result holds: where a run's memory goes,
                    // step by step.
                    let bytes = held_bytes(parts.iter().flatten());
                    // On a cluster every result goes to the scratch store.
                    let table: Arc<dyn TableProvider> =
                        match config.scratch.as_ref().filter(|s| s.min_bytes == 0) {
                            Some(scratch) => scratch.table(name, &schema, &parts).await?,
                            None => Arc::new(MemTable::try_new(schema.clone(), parts.clone())?),
                        };
                    // Not concatenated: at scale 100 a copy of a large mart is hundreds
                    // of megabytes next to the batches the later steps read.
                    let mut batches: Vec<RecordBatch> = parts.into_iter().flatten().collect();
                    if batches.is_empty() {
                        batches.push(RecordBatch::new_empty(schema));
                    }
                    (table, rows, bytes, 0, MartRows::Memory(batches))
                }
                Executed::Written(file) => {
                    let size = std::fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
                    let table = file.provider()?;
                    if *layer != "marts" {
                        step_files.insert(*name, file.path.clone());
                    }
                    (table, file.rows, 0, size, MartRows::Scratch(file))
                }
            };
        ctx.deregister_table(*name)?;
        ctx.register_table(*name, table)?;
        tracing::info!(
            step = *name,
            rows,
            bytes,
            scratch_bytes,
            elapsed_ms = step_clock.elapsed().as_millis() as u64,
            exec_ms,
            "mart step"
        );
        if *layer == "marts" {
            marts.push((name.to_string(), mart));
        }
        // Staging and intermediate results no later step reads are dropped now, not
        // at the end of the build: at scale 100 they are gigabytes.
        for (earlier, (other_layer, other, _)) in STEPS.iter().enumerate().take(step + 1) {
            if *other_layer != "marts" && last_use[earlier] == step {
                ctx.deregister_table(*other)?;
                if let Some(path) = step_files.remove(*other) {
                    // Not fatal: the folder goes at the end of the build anyway.
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!(file = %path.display(), error = %e, "a scratch file could not be removed");
                    }
                }
            }
        }
    }
    Ok(marts)
}

/// A step's result: held in memory, each output partition's batches where they are
/// (the next steps scan them in parallel, and nothing is concatenated: a
/// concatenation of string views copies every buffer each batch points into, once per
/// batch), or written to a scratch file.
enum Executed {
    Held(Vec<Vec<RecordBatch>>),
    Written(ScratchFile),
}

/// Executes a step's plan, each output partition in its own task. With `spill` (a
/// file and a byte count), the batches are held until they reach that many bytes,
/// then they and every later batch go to the file as they come: a large result is
/// never whole in memory.
async fn execute(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    ctx: &SessionContext,
    spill: Option<(std::path::PathBuf, usize)>,
) -> Result<Executed> {
    use futures::StreamExt;
    let partitions = plan.properties().output_partitioning().partition_count();
    // A few batches per partition in flight: the tasks wait while the file is written.
    let (tx, mut rx) = tokio::sync::mpsc::channel(2 * partitions.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for partition in 0..partitions {
        let mut stream = plan.execute(partition, ctx.task_ctx())?;
        let tx = tx.clone();
        tasks.spawn(async move {
            while let Some(batch) = stream.next().await {
                let failed = batch.is_err();
                if tx.send((partition, batch)).await.is_err() || failed {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut held: Vec<Vec<RecordBatch>> = vec![vec![]; partitions];
    let mut held_size = HeldBytes::default();
    let mut writer: Option<(crate::scratch_ipc::Writer, SchemaRef, usize)> = None;
    let fail = |path: &std::path::Path, e: &dyn std::fmt::Display| {
        Error::Output(format!("scratch {}: {e}", path.display()))
    };
    // Dropping `tasks` on an early return stops the partitions still running.
    while let Some((partition, batch)) = rx.recv().await {
        let batch = compact(&batch?)?;
        if let Some((w, schema, rows)) = writer.as_mut() {
            let path = &spill.as_ref().expect("a writer has a file").0;
            *rows += batch.num_rows();
            let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                .map_err(|e| fail(path, &e))?;
            w.write(&batch).map_err(|e| fail(path, &e))?;
            continue;
        }
        held_size.add(&batch);
        held[partition].push(batch);
        if let Some((path, min_bytes)) = spill.as_ref()
            && held_size.bytes >= *min_bytes
        {
            // The first batch's schema for all: the batches of one plan differ at most
            // in metadata.
            let schema = held.iter().flatten().next().expect("a batch").schema();
            let mut w = crate::scratch_ipc::create(path, &schema).map_err(|e| fail(path, &e))?;
            let mut rows = 0;
            for batch in held.drain(..).flatten() {
                rows += batch.num_rows();
                let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                    .map_err(|e| fail(path, &e))?;
                w.write(&batch).map_err(|e| fail(path, &e))?;
            }
            writer = Some((w, schema, rows));
        }
    }
    // Every task has ended (the channel closed); one that panicked failed the step.
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| Error::Output(format!("a partition of the step failed: {e}")))?;
    }
    match writer {
        Some((w, schema, rows)) => {
            let path = spill.expect("a writer has a file").0;
            // Writes the footer and flushes the buffer to the file (not synced: the
            // next steps read it while the page cache still has it).
            w.into_inner().map_err(|e| fail(&path, &e))?;
            Ok(Executed::Written(ScratchFile { path, schema, rows }))
        }
        None => Ok(Executed::Held(held)),
    }
}

/// A step's SQL with the run's values and the configuration's expansions in place of
/// its `${...}` placeholders.
fn expand(
    sql: &str,
    config: &MartConfig,
    first: i32,
    components: &str,
    grade: &str,
    review: &str,
    targets: &str,
) -> String {
    sql.replace("${run_id}", &config.run_id.replace('\'', "''"))
        .replace("${run_year}", &config.run_year.to_string())
        .replace("${first_year}", &first.to_string())
        .replace(
            "${baseline_year}",
            &config.targets.baseline_year.to_string(),
        )
        .replace(
            "${tier_target_year}",
            &config.targets.tier_target_year.to_string(),
        )
        .replace("${components}", components)
        .replace("${grade}", grade)
        .replace("${lq_min}", &format!("{:?}", config.cluster.lq_min))
        .replace(
            "${size_top_share}",
            &format!("{:?}", config.cluster.size_top_share),
        )
        .replace(
            "${strong_lq_min}",
            &format!("{:?}", config.cluster.strong_lq_min),
        )
        .replace(
            "${strong_lq_percentile}",
            &format!("{:?}", config.cluster.strong_lq_percentile),
        )
        .replace(
            "${strong_floor_percentile}",
            &format!("{:?}", config.cluster.strong_floor_percentile),
        )
        .replace("${review_flag}", review)
        .replace("${targets}", targets)
}

/// Every step with its SQL as a run with this configuration executes it (first mart
/// year `first`): what the lineage of `townstat docs` is derived from.
pub fn expanded_steps(
    config: &MartConfig,
    first: i32,
) -> Result<Vec<(&'static str, &'static str, String)>> {
    let components = components_sql(&config.components)?;
    let (grade, review) = grading_sql(&config.grading);
    let targets = targets_sql(&config.targets.target)?;
    Ok(STEPS
        .iter()
        .map(|(layer, name, sql)| {
            (
                *layer,
                *name,
                expand(sql, config, first, &components, &grade, &review, &targets),
            )
        })
        .collect())
}

/// Whether `TOWNSTAT_EXPLAIN_STEPS` asks for each step's executed plan in the log.
fn explain_steps() -> bool {
    std::env::var("TOWNSTAT_EXPLAIN_STEPS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// For each step, the index of the last step whose SQL reads its result (itself when
/// none does).
fn last_uses() -> Vec<usize> {
    STEPS
        .iter()
        .enumerate()
        .map(|(i, (_, name, _))| {
            STEPS
                .iter()
                .enumerate()
                .skip(i + 1)
                .filter(|(_, (_, _, sql))| mentions(sql, name))
                .map(|(j, _)| j)
                .next_back()
                .unwrap_or(i)
        })
        .collect()
}

/// Whether SQL text names a table: the name with no identifier character on either
/// side (`stg_year` is not found in `stg_year_x`).
pub fn mentions(sql: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    sql.match_indices(name).any(|(at, _)| {
        let before = sql[..at].chars().next_back();
        let after = sql[at + name.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Rewrites string-view columns as plain strings. A step's result is built by joins
/// whose string views point into the buffers of every input batch; kept as they are,
/// the next step's joins drag those buffers along (and DataFusion's memory accounting
/// counts them once per batch, so sorts spill early). Plain strings are compact.
fn compact(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = compact_schema(&batch.schema());
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                // Same type: the column is kept (the batch takes the new schema).
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type())
                    .map_err(|e| Error::Output(format!("{}: {e}", f.name())))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Output(e.to_string()))
}

/// The bytes the buffers of some batches take, a buffer that several batches share
/// counted once (by its start: slices of one buffer at different offsets are each
/// counted whole, so the figure can only be too high).
fn held_bytes<'a>(batches: impl Iterator<Item = &'a RecordBatch>) -> usize {
    let mut held = HeldBytes::default();
    batches.for_each(|b| held.add(b));
    held.bytes
}

/// [`held_bytes`] counted batch by batch. A batch's own memory size would count a
/// buffer once per batch that slices it: an aggregate's output batches are slices of
/// a few large buffers, and at scale 10 `int_size_class` (10.5 MB) counted as more
/// than 64 MB that way.
#[derive(Default)]
struct HeldBytes {
    seen: std::collections::HashSet<usize>,
    bytes: usize,
}

impl HeldBytes {
    fn add(&mut self, batch: &RecordBatch) {
        fn visit(
            data: &arrow::array::ArrayData,
            seen: &mut std::collections::HashSet<usize>,
        ) -> usize {
            let mut bytes = 0;
            let nulls = data.nulls().map(|n| n.buffer());
            for buffer in data.buffers().iter().chain(nulls) {
                if seen.insert(buffer.data_ptr().as_ptr() as usize) {
                    bytes += buffer.capacity();
                }
            }
            for child in data.child_data() {
                bytes += visit(child, seen);
            }
            bytes
        }
        for column in batch.columns() {
            self.bytes += visit(&column.to_data(), &mut self.seen);
        }
    }
}

/// A schema with every string-view column made a plain string column, and no field
/// metadata: a column comment inherited from a source table would make a step's
/// columns differ from the same columns built from literals (in a UNION), and the
/// marts take their labels from `schemas/marts.toml` anyway.
fn compact_schema(schema: &SchemaRef) -> SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    let fields: Vec<Arc<Field>> = schema
        .fields()
        .iter()
        .map(|f| {
            let data_type = match f.data_type() {
                DataType::Utf8View => DataType::Utf8,
                other => other.clone(),
            };
            Arc::new(Field::new(f.name(), data_type, f.is_nullable()))
        })
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    /// The values of column 0 (BIGINT) of a mart's rows, read back in order.
    fn values(rows: &super::MartRows) -> Vec<i64> {
        use arrow::array::AsArray;
        rows.batches()
            .expect("batches")
            .flat_map(|b| {
                let b = b.expect("batch");
                b.column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_result_goes_to_its_file_in_order_and_a_small_one_stays_in_memory() {
        use super::{Executed, MartRows, execute};
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = datafusion::prelude::SessionContext::new();
        let n = 200_000i64;
        let sql = format!("SELECT value FROM generate_series(1, {n}) ORDER BY value DESC");
        let plan = || async {
            ctx.sql(&sql)
                .await
                .expect("sql")
                .create_physical_plan()
                .await
                .expect("plan")
        };
        let descending: Vec<i64> = (1..=n).rev().collect();

        // Past 64 KiB (the first few batches) every batch goes to the file.
        let file = dir.path().join("big.arrow");
        let written = execute(plan().await, &ctx, Some((file.clone(), 64 << 10)))
            .await
            .expect("execute");
        let Executed::Written(scratch) = written else {
            panic!("a 1.6 MB result past a 64 KiB threshold was held in memory");
        };
        assert_eq!(
            (scratch.path.as_path(), scratch.rows),
            (file.as_path(), n as usize)
        );
        let rows = MartRows::Scratch(scratch);
        assert_eq!(rows.num_rows(), n as usize);
        assert_eq!(values(&rows), descending, "the file keeps the plan's order");
        // The tests and the next steps read the same rows from the file.
        let counted = ctx
            .read_table(rows.provider().expect("provider"))
            .expect("read")
            .count()
            .await
            .expect("count");
        assert_eq!(counted, n as usize);

        // Under the threshold nothing is written.
        let other = dir.path().join("small.arrow");
        let held = execute(plan().await, &ctx, Some((other.clone(), 64 << 20)))
            .await
            .expect("execute");
        let Executed::Held(parts) = held else {
            panic!("a 1.6 MB result under a 64 MiB threshold went to a file");
        };
        assert!(!other.exists());
        let rows = MartRows::Memory(parts.into_iter().flatten().collect());
        assert_eq!(values(&rows), descending);

        // A failing step fails, whether it is being held or written.
        let failing = ctx
            .sql("SELECT CAST('x' || value AS BIGINT) FROM generate_series(1, 100000)")
            .await
            .expect("sql")
            .create_physical_plan()
            .await
            .expect("plan");
        let err = execute(failing, &ctx, Some((dir.path().join("bad.arrow"), 1)))
            .await
            .err()
            .expect("a cast error");
        assert!(err.to_string().contains("Cannot cast"), "{err}");
    }

    #[test]
    fn every_intermediate_is_read_by_a_later_step() {
        assert!(super::mentions("FROM stg_year y", "stg_year"));
        assert!(!super::mentions("FROM stg_year_x y", "stg_year"));
        let last = super::last_uses();
        for (i, (layer, name, _)) in super::STEPS.iter().enumerate() {
            if *layer != "marts" {
                assert!(last[i] > i, "{name} is built but no later step reads it");
            }
        }
    }

    #[test]
    fn grades_must_be_ordered_and_end_in_a_floor() {
        use super::load_evaluation;
        let dir = std::env::temp_dir().join(format!("townstat-grades-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let comp = "[[component]]\nindicator = 'revenue'\nweight = 1\nhigher_is_better = true\n";
        let load = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("{text}{comp}")).expect("write");
            load_evaluation(&p).map(|_| ()).map_err(|e| e.to_string())
        };
        let grade = |n: &str, m: Option<f64>| match m {
            Some(m) => format!("[[grade]]\nname = '{n}'\nmin_score = {m}\n"),
            None => format!("[[grade]]\nname = '{n}'\n"),
        };
        let ok = format!("{}{}", grade("优秀", Some(80.0)), grade("不合格", None));
        assert_eq!(
            load("ok.toml", &format!("review_grade = '不合格'\n{ok}")),
            Ok(())
        );
        let rising = format!(
            "{}{}{}",
            grade("A", Some(50.0)),
            grade("B", Some(60.0)),
            grade("C", None)
        );
        let e = load("rising.toml", &rising).unwrap_err();
        assert!(
            e.contains("rising.toml") && e.contains("grade \"B\"") && e.contains("below"),
            "{e}"
        );
        let no_floor = format!("{}{}", grade("A", Some(50.0)), grade("B", Some(10.0)));
        let e = load("floor.toml", &no_floor).unwrap_err();
        assert!(e.contains("the last grade \"B\""), "{e}");
        let e = load("review.toml", &format!("review_grade = 'D'\n{ok}")).unwrap_err();
        assert!(e.contains("review_grade \"D\""), "{e}");
        let e = load(
            "years.toml",
            &format!("review_grade = '不合格'\nreview_years = 1\n{ok}"),
        )
        .unwrap_err();
        assert!(e.contains("review_years = 1"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn targets_take_caps_and_milestones_and_refuse_the_rest() {
        use super::load_targets;
        let dir = std::env::temp_dir().join(format!("townstat-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let load = |name: &str, extra: &str, cmp: &str| {
            let p = dir.join(name);
            let text = format!(
                "[[target]]\nid = 't'\nscope = 'city'\nmetric = 'towns_total'\n\
                 comparison = '{cmp}'\nvalue = 20\nyear = 2025\n{extra}"
            );
            std::fs::write(&p, text).expect("write");
            load_targets(&p).map_err(|e| e.to_string())
        };
        let ok = load(
            "ok.toml",
            "[target.milestones]\n2023 = 8\n2024 = 12\n",
            "<=",
        )
        .expect("ok");
        assert_eq!(ok.target[0].milestones.len(), 2);
        let e = load("cmp.toml", "", ">").unwrap_err();
        assert!(
            e.contains("cmp.toml") && e.contains("comparison \">\""),
            "{e}"
        );
        let e = load("late.toml", "[target.milestones]\n2025 = 8\n", ">=").unwrap_err();
        assert!(e.contains("milestone 2025"), "{e}");
        let e = load("word.toml", "[target.milestones]\nnext = 8\n", ">=").unwrap_err();
        assert!(e.contains("milestone \"next\" is not a year"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
