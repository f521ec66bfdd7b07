//! `townstat maintain`: keep the Delta tables small and fast without losing a vintage.
//!
//! For every table: compact small files (optimize; for a source table a Z-order by its
//! first key column, which puts its rows back in key order), write a checkpoint, then vacuum
//! the files that neither the latest version nor any version a kept run recorded still
//! references. By default every recorded run is kept, so `townstat sql --run ID` works
//! for every run ever committed; `--keep-runs N` keeps the last N runs' vintages only.
//! Maintenance takes the run lock, so it never races a nightly run, and first
//! restores the tables a killed run left (`recover`).

use std::collections::{BTreeMap, BTreeSet};

use townstat_warehouse::Warehouse;

use crate::error::Result;

/// What maintenance did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMaintenance {
    /// The table.
    pub table: String,
    /// Files written by compaction.
    pub files_added: u64,
    /// Small files compaction replaced.
    pub files_removed: u64,
    /// Files vacuum deleted.
    pub files_deleted: usize,
}

/// Runs maintenance over every table of the warehouse.
pub async fn maintain(
    warehouse: &Warehouse,
    keep_runs: Option<usize>,
) -> Result<Vec<TableMaintenance>> {
    let lock = crate::lock::RunLock::take(warehouse, "maintain").await?;
    // A run killed before its commit left table versions past the committed ones:
    // they are restored first, so compaction works on committed data only and
    // outside readers of latest versions are back on the committed state.
    let report = match crate::recover::restore_if_pending(warehouse).await {
        Ok(()) => maintain_holding_lock(warehouse, keep_runs).await,
        Err(e) => Err(e),
    };
    lock.release().await;
    report
}

async fn maintain_holding_lock(
    warehouse: &Warehouse,
    keep_runs: Option<usize>,
) -> Result<Vec<TableMaintenance>> {
    let runs = warehouse.runs().await?;
    let kept = match keep_runs {
        Some(n) => &runs[runs.len().saturating_sub(n)..],
        None => &runs[..],
    };
    // Versions each table must keep readable.
    let mut keep: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for run in kept {
        for (table, v) in &run.versions {
            keep.entry(table.clone())
                .or_default()
                .insert((*v).max(0) as u64);
        }
    }
    let mut tables: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.versions.keys().cloned())
        .collect();
    tables.insert("run".to_string());
    let mut report = vec![];
    for name in tables {
        let versions: Vec<u64> = keep
            .get(&name)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        // A source table is clustered by its first key column (the USCC for most):
        // runs write its rows in arrival order, and nightly MERGEs append more.
        // Marts are written in their ORDER BY order by every run.
        let cluster = townstat_domain::schema::table(&name)
            .filter(|t| t.kind == "source")
            .and_then(|t| t.key.first())
            .map(String::as_str);
        let Some((added, removed, deleted)) =
            warehouse.maintain_table(&name, &versions, cluster).await?
        else {
            continue;
        };
        tracing::info!(
            table = name,
            compacted_in = removed,
            compacted_out = added,
            vacuumed = deleted,
            "maintained"
        );
        report.push(TableMaintenance {
            table: name,
            files_added: added,
            files_removed: removed,
            files_deleted: deleted,
        });
    }
    Ok(report)
}
