//! Nothing half-published for outside readers.
//!
//! townstat's own readers read the versions of the last `run` row, so a run that
//! fails before that append is invisible to them. Outside Delta readers (deltalake,
//! Polars, DuckDB's `delta_scan`) open each table's *latest* version instead, and would
//! see the source tables a failed run had already merged. So:
//!
//! - before its first table write a run leaves a marker, `<warehouse>/_run.pending`
//!   (naming the run), and removes it right after its `run` row is appended;
//! - a run that fails with an error restores, before it releases the lock, every
//!   table whose latest version differs from the last committed run's version
//!   ([`Warehouse::restore_uncommitted`]), then removes the marker;
//! - a run killed outright (SIGKILL, power loss) leaves the marker; the next run or
//!   `townstat maintain` finds it under the lock and restores before doing anything.
//!
//! The restore is a new Delta commit whose snapshot equals the recorded version, so
//! the `run` rows stay true and the next run starts from exactly the committed state.
//! The marker keeps the cost off the normal path: without it, every start would open
//! every table twice to compare.

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use townstat_warehouse::Warehouse;

use crate::error::{Error, Result};

/// The marker's name under the warehouse root.
pub const MARKER: &str = "_run.pending";

fn marker(
    warehouse: &Warehouse,
) -> Result<(std::sync::Arc<dyn object_store::ObjectStore>, ObjectPath)> {
    let (store, prefix) = warehouse.root_store()?;
    Ok((store, prefix.clone().join(MARKER)))
}

fn failed(warehouse: &Warehouse, e: object_store::Error) -> Error {
    Error::Internal(format!("{}{MARKER}: {e}", warehouse.root()))
}

/// Leaves the marker: from now on this run may write table versions no run records.
pub async fn mark(warehouse: &Warehouse, run_id: &str) -> Result<()> {
    let (store, path) = marker(warehouse)?;
    let text = format!(
        "run {run_id} started writing at {}\n",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    store
        .put(&path, text.into())
        .await
        .map_err(|e| failed(warehouse, e))?;
    Ok(())
}

/// The marker's text, if a run left one.
pub async fn pending(warehouse: &Warehouse) -> Result<Option<String>> {
    let (store, path) = marker(warehouse)?;
    match store.get(&path).await {
        Ok(found) => {
            let bytes = found.bytes().await.map_err(|e| failed(warehouse, e))?;
            Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(failed(warehouse, e)),
    }
}

/// Removes the marker: every table's latest version is a committed one.
pub async fn clear(warehouse: &Warehouse) -> Result<()> {
    let (store, path) = marker(warehouse)?;
    match store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(failed(warehouse, e)),
    }
}

/// Restores every table to the last committed run and removes the marker; returns
/// the tables it changed. Call it holding the run lock.
pub async fn restore(warehouse: &Warehouse) -> Result<Vec<townstat_warehouse::Restored>> {
    let runs = warehouse.runs().await?;
    let restored = warehouse.restore_uncommitted(runs.last()).await?;
    clear(warehouse).await?;
    Ok(restored)
}

/// When a run left the marker (it was killed, or its own restore failed): restores
/// and says so in the log. Call it holding the run lock.
pub async fn restore_if_pending(warehouse: &Warehouse) -> Result<()> {
    let Some(left) = pending(warehouse).await? else {
        return Ok(());
    };
    let clock = std::time::Instant::now();
    tracing::warn!(
        marker = left,
        "a run ended without committing; restoring the tables it wrote"
    );
    let restored = restore(warehouse).await?;
    tracing::warn!(
        tables = restored.len(),
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "tables restored to the last committed run"
    );
    Ok(())
}
