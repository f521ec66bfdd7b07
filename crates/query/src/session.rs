//! Sessions over pinned warehouse versions, and read-only execution.

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use townstat_warehouse::{CommittedRun, RunSelector, Warehouse};

use crate::error::{Error, Result};

/// A query session and the run whose tables it reads.
pub struct Session {
    /// The DataFusion context with every table registered.
    pub ctx: SessionContext,
    /// The run the tables come from.
    pub run: CommittedRun,
}

/// Opens a session on the last committed run, or on `run_id`.
pub async fn open_session(warehouse: &Warehouse, run_id: Option<&str>) -> Result<Session> {
    let selector = match run_id {
        Some(id) => RunSelector::Id(id.to_string()),
        None => RunSelector::Latest,
    };
    open_session_at(warehouse, &selector).await
}

/// Opens a session on the run a selector chooses.
pub async fn open_session_at(warehouse: &Warehouse, selector: &RunSelector) -> Result<Session> {
    let run = warehouse
        .pinned_versions(selector)
        .await?
        .ok_or_else(|| match selector {
            RunSelector::Id(id) => Error::NoRun(format!("no committed run {id} in {}", warehouse.location())),
            RunSelector::Sequence(n) => Error::NoRun(format!("no committed run number {n} in {}", warehouse.location())),
            RunSelector::AsOf(_) => Error::NoRun(format!("no run was committed by that time in {}", warehouse.location())),
            RunSelector::Latest => Error::NoRun(format!(
                "the warehouse {} has no committed run yet; run `townstat run` or `townstat demo` first",
                warehouse.location()
            )),
        })?;
    let ctx = context();
    warehouse.register(&ctx, &run.versions).await?;
    warehouse.register_run_record(&ctx, &run).await?;
    Ok(Session { ctx, run })
}

/// A session context with townstat's settings.
pub fn context() -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("townstat", "public");
    let ctx = SessionContext::new_with_config(config);
    crate::udf::register(&ctx);
    ctx
}

/// Options that let only queries through: no DDL, no DML, no `SET`.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

impl Session {
    /// Runs one read-only statement and collects its result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self.ctx.sql_with_options(sql, read_only()).await?;
        Ok(df.collect().await?)
    }

    /// The table versions this session reads.
    pub fn versions(&self) -> &BTreeMap<String, i64> {
        &self.run.versions
    }
}
