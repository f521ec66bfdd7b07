//! `enterprise_history`: type-2 history of the registry. Each run compares the
//! registry rows it loaded with the current version of each enterprise; a change of
//! name, county, industry code, kind or status closes the old version
//! (`valid_to` = the run date) and opens a new one (`valid_from` = the run date). A
//! first sighting opens the first version. Intervals are half-open: a version is valid
//! on day D when `valid_from ≤ D < valid_to` (or `valid_to` is null).
//!
//! Enterprises absent from a run's files are left as they are: registry exports are
//! not guaranteed to be full snapshots.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::datasource::MemTable;
use townstat_warehouse::Warehouse;

use crate::error::{Error, Result};

const COLUMNS: &str = "uscc, name, entity_kind, established_on, deregistered_on, status, \
                       division_code, address, industry_code, registered_capital";

/// A query with `enterprise_history`'s columns and no rows, over a session where
/// `enterprise` is registered: the configuration check plans the marts against it.
pub fn empty_history_sql() -> String {
    format!(
        "SELECT {COLUMNS}, DATE '2000-01-01' AS valid_from, CAST(NULL AS DATE) AS valid_to, \
         '' AS run_id FROM enterprise WHERE false"
    )
}

/// Computes the new history; `None` when nothing changed.
pub async fn update(
    warehouse: &Warehouse,
    previous: &BTreeMap<String, i64>,
    loaded: &RecordBatch,
    as_of: NaiveDate,
    run_id: &str,
) -> Result<Option<RecordBatch>> {
    let ctx = townstat_query::session::context();
    let has_previous = previous.contains_key("enterprise_history");
    if let Some(v) = previous.get("enterprise_history") {
        warehouse
            .register_as(&ctx, "enterprise_history", *v, "prev_history")
            .await?;
    }
    let snap = MemTable::try_new(loaded.schema(), vec![vec![loaded.clone()]])
        .map_err(townstat_query::Error::from)?;
    ctx.register_table("run_enterprise", Arc::new(snap))
        .map_err(townstat_query::Error::from)?;
    let day = format!("DATE '{as_of}'");
    let run = run_id.replace('\'', "''");
    let changed = format!(
        "SELECT {COLUMNS} FROM run_enterprise s WHERE {}",
        if has_previous {
            "NOT EXISTS (SELECT 1 FROM prev_history c WHERE c.valid_to IS NULL AND c.uscc = s.uscc \
             AND (c.name IS NOT DISTINCT FROM s.name) \
             AND (c.division_code IS NOT DISTINCT FROM s.division_code) \
             AND (c.industry_code IS NOT DISTINCT FROM s.industry_code) \
             AND (c.entity_kind IS NOT DISTINCT FROM s.entity_kind) \
             AND (c.status IS NOT DISTINCT FROM s.status))"
        } else {
            "true"
        }
    );
    let changed_df = ctx
        .sql(&changed)
        .await
        .map_err(townstat_query::Error::from)?;
    let changed_batches = changed_df
        .collect()
        .await
        .map_err(townstat_query::Error::from)?;
    if changed_batches.iter().all(|b| b.num_rows() == 0) && has_previous {
        return Ok(None);
    }
    let schema = changed_batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::Internal("history: no schema".into()))?;
    let changed_table =
        MemTable::try_new(schema, vec![changed_batches]).map_err(townstat_query::Error::from)?;
    ctx.register_table("changed", Arc::new(changed_table))
        .map_err(townstat_query::Error::from)?;
    let opened = format!(
        "SELECT {COLUMNS}, {day} AS valid_from, CAST(NULL AS DATE) AS valid_to, '{run}' AS run_id FROM changed"
    );
    let sql = if has_previous {
        let prefixed: Vec<String> = COLUMNS.split(", ").map(|c| format!("h.{c}")).collect();
        format!(
            "SELECT {}, h.valid_from, \
             CASE WHEN h.valid_to IS NULL AND c.uscc IS NOT NULL THEN {day} ELSE h.valid_to END AS valid_to, \
             h.run_id FROM prev_history h \
             LEFT JOIN (SELECT DISTINCT uscc FROM changed) c ON c.uscc = h.uscc \
             UNION ALL {opened}",
            prefixed.join(", ")
        )
    } else {
        opened
    };
    let df = ctx.sql(&sql).await.map_err(townstat_query::Error::from)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(townstat_query::Error::from)?;
    let batch = concat_batches(&schema, &batches).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Some(batch))
}

/// Registered enterprises (as of the last committed run) that a full registry
/// snapshot does not contain: they are not deleted, only listed, with the run date.
pub async fn absent(
    warehouse: &Warehouse,
    previous: &BTreeMap<String, i64>,
    snapshot: &RecordBatch,
    as_of: NaiveDate,
    run_id: &str,
) -> Result<Option<RecordBatch>> {
    let Some(v) = previous.get("enterprise") else {
        return Ok(None);
    };
    let ctx = townstat_query::session::context();
    let pinned: BTreeMap<String, i64> = [("enterprise".to_string(), *v)].into();
    warehouse.register(&ctx, &pinned).await?;
    let snap = MemTable::try_new(snapshot.schema(), vec![vec![snapshot.clone()]])
        .map_err(townstat_query::Error::from)?;
    ctx.register_table("snapshot", Arc::new(snap))
        .map_err(townstat_query::Error::from)?;
    let run = run_id.replace('\'', "''");
    let df = ctx
        .sql(&format!(
            "SELECT e.uscc, e.name, e.division_code, e.industry_code, DATE '{as_of}' AS absent_on, \
             '{run}' AS run_id FROM enterprise e \
             WHERE NOT EXISTS (SELECT 1 FROM snapshot s WHERE s.uscc = e.uscc) ORDER BY e.uscc"
        ))
        .await
        .map_err(townstat_query::Error::from)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(townstat_query::Error::from)?;
    let batch = concat_batches(&schema, &batches).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Some(batch))
}
