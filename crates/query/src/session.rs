//! Sessions over pinned warehouse versions, and read-only execution.

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use townstat_warehouse::{CommittedRun, Warehouse};

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
    let run = warehouse
        .pinned_versions(run_id)
        .await?
        .ok_or_else(|| match run_id {
            Some(id) => Error::NoRun(format!("no committed run {id} in {}", warehouse.location())),
            None => Error::NoRun(format!(
                "the warehouse {} has no committed run yet; run `townstat run` or `townstat demo` first",
                warehouse.location()
            )),
        })?;
    let ctx = context();
    warehouse.register(&ctx, &run.versions).await?;
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
