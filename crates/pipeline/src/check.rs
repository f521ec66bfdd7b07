//! The configuration check a run passes before it writes anything: not the lock file,
//! not a table version, not even the warehouse folder.
//!
//! Everything a run reads besides the source rows themselves is loaded and checked
//! here: the pipeline file (already parsed by [`Pipeline::load`]), the alias tables,
//! the town registry and the rosters it names, `evaluation.toml` and `targets.toml`,
//! every glob (a valid pattern whose folder exists), the reference tables, and every
//! mart step, planned and run against empty tables of the warehouse's schemas — so
//! an evaluation indicator or a target metric that is not a column, or a mart SQL
//! file that does not fit the tables, stops the run here and not after the source
//! tables were committed.
//!
//! A glob whose folder exists but matches no file today is not an error: an agency
//! that delivered nothing new leaves the folder as it was (the files already loaded
//! are skipped by hash anyway).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use townstat_domain::town::Town;
use townstat_ingest::Pipeline;
use townstat_ingest::arrow_out::arrow_schema;
use townstat_query::marts;

use crate::error::{Error, Result};

/// What the check loaded, for the run to use as it is (it is not read twice).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The town registry with its rosters.
    pub towns: Vec<Town>,
    /// The towns' designation history (from the events file, else the registry).
    pub town_history: Vec<townstat_domain::town_history::TownVersion>,
    /// The 规上/限上 thresholds and the size classes.
    pub size_rules: townstat_domain::size_rule::SizeRules,
    /// The evaluation components (`evaluation.toml`; none when not configured).
    pub components: Vec<marts::Component>,
    /// The evaluation's grades and review rule (none when not configured).
    pub grading: marts::Grading,
    /// The cluster benchmarks (the defaults when not configured).
    pub cluster: marts::ClusterRule,
    /// The plan targets (`targets.toml`; the defaults when not configured).
    pub targets: marts::TargetsFile,
    /// How many source files the globs match now.
    pub files: usize,
}

fn config(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: {message}", path.display()))
}

/// Checks a pipeline and everything it references; writes nothing.
pub async fn precheck(pipeline: &Pipeline, as_of: NaiveDate) -> Result<Checked> {
    let enums = pipeline.resolve(&pipeline.file.enums);
    townstat_domain::enums::AliasTables::load(&enums)?;
    let towns = townstat_domain::town::load_registry(&pipeline.resolve(&pipeline.file.towns))?;
    let (town_history, size_rules) = registry_rules(pipeline, &towns)?;
    for s in &pipeline.file.sources {
        for pattern in &s.glob {
            let folder = fixed_folder(&pipeline.resolve(pattern));
            if !folder.is_dir() {
                return Err(config(
                    &pipeline.path,
                    format!(
                        "source {:?}: the folder {} of glob {pattern:?} does not exist",
                        s.name,
                        folder.display()
                    ),
                ));
            }
        }
    }
    let files = pipeline.files()?.len();
    let (components, grading, cluster) = match &pipeline.file.evaluation {
        Some(p) => marts::load_evaluation(&pipeline.resolve(p))
            .map_err(|e| config(&pipeline.path, format!("evaluation = {p:?}: {e}")))?,
        None => (
            vec![],
            marts::Grading::default(),
            marts::ClusterRule::default(),
        ),
    };
    let targets = match &pipeline.file.targets {
        Some(p) => marts::load_targets(&pipeline.resolve(p))
            .map_err(|e| config(&pipeline.path, format!("targets = {p:?}: {e}")))?,
        None => marts::TargetsFile::default(),
    };
    // The reference tables are built from compiled-in tables and the registry: a
    // registry the catalog cannot hold fails here.
    crate::reference::industry_codes()?;
    crate::reference::divisions()?;
    crate::reference::towns(&towns)?;
    crate::reference::rosters(&towns)?;
    crate::reference::town_history(&town_history)?;
    crate::reference::above_size_rules(&size_rules)?;
    crate::reference::size_class_rules(&size_rules)?;
    dry_marts(&components, &grading, &targets, as_of)
        .await
        .map_err(|e| {
            config(
                &pipeline.path,
                format!("the marts do not build against the warehouse's tables: {e}"),
            )
        })?;
    Ok(Checked {
        towns,
        town_history,
        size_rules,
        components,
        grading,
        cluster,
        targets,
        files,
    })
}

/// The registry's history (its events file when there is one) and the classification
/// rules (the pipeline's files, else the compiled-in ones). Their errors name the file
/// and line.
fn registry_rules(
    pipeline: &Pipeline,
    towns: &[Town],
) -> Result<(
    Vec<townstat_domain::town_history::TownVersion>,
    townstat_domain::size_rule::SizeRules,
)> {
    use townstat_domain::town_history;
    let events = match pipeline.town_events() {
        Some(p) => town_history::load_events(&p, towns)?,
        None => vec![],
    };
    let rules = townstat_domain::size_rule::SizeRules::load(
        pipeline
            .file
            .above_size_thresholds
            .as_deref()
            .map(|p| pipeline.resolve(p))
            .as_deref(),
        pipeline
            .file
            .size_classes
            .as_deref()
            .map(|p| pipeline.resolve(p))
            .as_deref(),
    )?;
    Ok((town_history::history(towns, &events), rules))
}

/// The folder part of a glob before its first wildcard component (`.` for none).
fn fixed_folder(pattern: &Path) -> PathBuf {
    let folder = folder_part(pattern);
    if folder.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        folder
    }
}

fn folder_part(pattern: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    let mut components = pattern.components().peekable();
    while let Some(c) = components.next() {
        let text = c.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[']) {
            return out;
        }
        // The last component without a wildcard names a file, not a folder.
        if components.peek().is_none() {
            return out;
        }
        out.push(c);
    }
    out
}

/// Runs every mart step, and the marts' declared tests, over empty tables with the
/// warehouse's schemas.
async fn dry_marts(
    components: &[marts::Component],
    grading: &marts::Grading,
    targets: &marts::TargetsFile,
    as_of: NaiveDate,
) -> Result<()> {
    // The tables are empty: the pool bounds nothing here but a sort's or a join's
    // first reservation, so it is the query default whatever TOWNSTAT_MEMORY_LIMIT
    // says (a run with a small limit fails in its marts, naming the limit, not here
    // as if its SQL were wrong).
    let ctx =
        townstat_query::session::context_with_limit(townstat_query::session::DEFAULT_MEMORY_LIMIT);
    register_empty_tables(&ctx).await?;
    let config = marts::MartConfig {
        run_id: "precheck".to_string(),
        run_year: as_of.year(),
        components: components.to_vec(),
        grading: grading.clone(),
        cluster: marts::ClusterRule::default(),
        targets: targets.clone(),
        scratch: None,
    };
    marts::build(&ctx, &config).await?;
    // The marts' declared tests plan and run over the empty marts too: a test that
    // names a column no mart has is found now, not after a night's ingest.
    let settings = townstat_query::mart_tests::Settings {
        grades: grading.grades.iter().map(|g| g.name.clone()).collect(),
    };
    townstat_query::mart_tests::run_all(&ctx, &settings).await?;
    Ok(())
}

/// Registers an empty table for every table of the catalog, and
/// `enterprise_history`, which the run derives.
pub(crate) async fn register_empty_tables(ctx: &SessionContext) -> Result<()> {
    let q = |e: datafusion::error::DataFusionError| Error::Query(e.into());
    for t in townstat_domain::schema::catalog() {
        let schema = arrow_schema(t);
        let table = MemTable::try_new(schema, vec![vec![]]).map_err(q)?;
        ctx.register_table(t.name.as_str(), Arc::new(table))
            .map_err(q)?;
    }
    let history = ctx
        .sql(&crate::history::empty_history_sql())
        .await
        .map_err(q)?;
    ctx.register_table("enterprise_history", history.into_view())
        .map_err(q)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_of_a_glob_is_its_part_before_the_first_wildcard() {
        assert_eq!(
            fixed_folder(Path::new("base/../raw/enterprise/*.csv")),
            PathBuf::from("base/../raw/enterprise")
        );
        assert_eq!(
            fixed_folder(Path::new("data/enterprise.csv")),
            PathBuf::from("data")
        );
        assert_eq!(fixed_folder(Path::new("a/*/b.csv")), PathBuf::from("a"));
        assert_eq!(fixed_folder(Path::new("b.csv")), PathBuf::from("."));
    }
}

/// A problem `townstat check` reports: the file, the line when it is known, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file it is in.
    pub file: PathBuf,
    /// Its line (1-based), when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// The keys a pipeline file may have at the top, in a `[[source]]`, in `[report]`.
const TOP_KEYS: [&str; 10] = [
    "enums",
    "towns",
    "town_events",
    "above_size_thresholds",
    "size_classes",
    "kinds",
    "targets",
    "evaluation",
    "source",
    "report",
];
const SOURCE_KEYS: [&str; 10] = [
    "name",
    "kind",
    "glob",
    "format",
    "encoding",
    "delimiter",
    "sheet",
    "aliases",
    "units",
    "full_snapshot",
];
const REPORT_KEYS: [&str; 2] = ["format", "year"];

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `needle` in the `index`-th `[[source]]` (or anywhere, for none): the
/// first line after the section's header that contains it, else the header's.
fn line_of(text: &str, source: Option<usize>, needle: &str) -> Option<usize> {
    let starts: Vec<usize> = text
        .match_indices("[[source]]")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || text[..i].ends_with('\n'))
        .collect();
    let (from, to) = match source {
        Some(i) => (
            *starts.get(i)?,
            starts.get(i + 1).copied().unwrap_or(text.len()),
        ),
        None => (0, text.len()),
    };
    let section = &text[from..to];
    let hit = section
        .find(&format!("{needle} ="))
        .or_else(|| section.find(&format!("\"{needle}\"")))
        .or_else(|| section.find(needle));
    Some(line_at(text, from + hit.unwrap_or(0)))
}

/// Checks a pipeline file and everything it names without running anything, and
/// returns every problem found (empty: the run would start). What can be checked on
/// its own is all checked: the file's syntax, unknown keys anywhere, each source's
/// kind, columns, units and glob folders, the alias tables, the town registry and its
/// rosters, the evaluation and targets files. Only when all of those pass are the
/// marts planned against empty tables (the last step of [`precheck`]).
pub async fn check_file(path: &Path, as_of: NaiveDate) -> Vec<Problem> {
    let problem = |file: &Path, line: Option<usize>, message: String| Problem {
        file: file.to_path_buf(),
        line,
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![problem(path, None, format!("cannot read: {e}"))],
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| line_at(&text, s.start));
            return vec![problem(path, line, e.message().to_string())];
        }
    };
    let mut out = vec![];
    let unknown = |table: &toml::Table, known: &[&str], source: Option<usize>, what: &str| {
        table
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| {
                problem(
                    path,
                    line_of(&text, source, k),
                    format!("{what}: unknown key {k:?}; known: {}", known.join(", ")),
                )
            })
            .collect::<Vec<_>>()
    };
    out.extend(unknown(&table, &TOP_KEYS, None, "the file"));
    if let Some(toml::Value::Array(sources)) = table.get("source") {
        for (i, s) in sources.iter().enumerate() {
            if let toml::Value::Table(t) = s {
                out.extend(unknown(
                    t,
                    &SOURCE_KEYS,
                    Some(i),
                    &format!("source {}", i + 1),
                ));
            }
        }
    }
    if let Some(toml::Value::Table(r)) = table.get("report") {
        out.extend(unknown(r, &REPORT_KEYS, None, "[report]"));
    }
    // The rest is checked on the file without its unknown keys, so that one typo
    // does not hide the other problems.
    let mut cleaned = table.clone();
    cleaned.retain(|k, _| TOP_KEYS.contains(&k));
    if let Some(toml::Value::Array(sources)) = cleaned.get_mut("source") {
        for s in sources.iter_mut() {
            if let toml::Value::Table(t) = s {
                t.retain(|k, _| SOURCE_KEYS.contains(&k));
            }
        }
    }
    if let Some(toml::Value::Table(r)) = cleaned.get_mut("report") {
        r.retain(|k, _| REPORT_KEYS.contains(&k));
    }
    let file: townstat_ingest::pipeline::PipelineFile = match cleaned.try_into() {
        Ok(f) => f,
        Err(e) => {
            // A missing key or a value of the wrong type: nothing below can be read.
            let line = toml::from_str::<townstat_ingest::pipeline::PipelineFile>(&text)
                .err()
                .and_then(|e| e.span())
                .map(|s| line_at(&text, s.start));
            out.push(problem(path, line, e.message().to_string()));
            return out;
        }
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Err(message) = file.declare_kinds(&base) {
        out.push(problem(path, line_of(&text, None, "kinds"), message));
    }
    out.extend(
        file.problems()
            .into_iter()
            .map(|p| problem(path, line_of(&text, p.source, &p.needle), p.message)),
    );
    let pipeline = townstat_ingest::Pipeline {
        path: path.to_path_buf(),
        base: path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        file,
    };
    for (i, s) in pipeline.file.sources.iter().enumerate() {
        for pattern in &s.glob {
            let folder = fixed_folder(&pipeline.resolve(pattern));
            if !folder.is_dir() {
                out.push(problem(
                    path,
                    line_of(&text, Some(i), pattern),
                    format!(
                        "source {:?}: the folder {} of glob {pattern:?} does not exist",
                        s.name,
                        folder.display()
                    ),
                ));
            }
        }
    }
    // The alias tables' and the registry's errors name their own file (and line).
    let enums = pipeline.resolve(&pipeline.file.enums);
    if let Err(e) = townstat_domain::enums::AliasTables::load(&enums) {
        out.push(problem(
            path,
            line_of(&text, None, "enums"),
            format!("enums: {e}"),
        ));
    }
    let towns = pipeline.resolve(&pipeline.file.towns);
    match townstat_domain::town::load_registry(&towns) {
        Err(e) => out.push(problem(
            path,
            line_of(&text, None, "towns"),
            format!("towns: {e}"),
        )),
        Ok(towns) => {
            if let Err(e) = registry_rules(&pipeline, &towns) {
                out.push(problem(path, line_of(&text, None, "towns"), e.to_string()));
            }
        }
    }
    if let Some(p) = &pipeline.file.evaluation
        && let Err(e) = marts::load_evaluation(&pipeline.resolve(p))
    {
        out.push(problem(
            path,
            line_of(&text, None, "evaluation"),
            format!("evaluation = {p:?}: {}", plain(e)),
        ));
    }
    if let Some(p) = &pipeline.file.targets
        && let Err(e) = marts::load_targets(&pipeline.resolve(p))
    {
        out.push(problem(
            path,
            line_of(&text, None, "targets"),
            format!("targets = {p:?}: {}", plain(e)),
        ));
    }
    if out.is_empty()
        && let Err(e) = precheck(&pipeline, as_of).await
    {
        out.push(problem(path, None, e.to_string()));
    }
    // In the order of the file.
    out.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    out
}

/// A config file's error without the query layer's "output:" prefix.
fn plain(e: townstat_query::Error) -> String {
    match e {
        townstat_query::Error::Output(m) => m,
        other => other.to_string(),
    }
}
