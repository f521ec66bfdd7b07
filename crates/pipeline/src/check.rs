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
        components,
        grading,
        cluster,
        targets,
        files,
    })
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

/// Runs every mart step over empty tables with the warehouse's schemas.
async fn dry_marts(
    components: &[marts::Component],
    grading: &marts::Grading,
    targets: &marts::TargetsFile,
    as_of: NaiveDate,
) -> Result<()> {
    let ctx = townstat_query::session::context();
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
    Ok(())
}

/// Registers an empty table for every table of the catalog, and
/// `enterprise_history`, which the run derives.
async fn register_empty_tables(ctx: &SessionContext) -> Result<()> {
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
