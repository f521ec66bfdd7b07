//! Plain Parquet exports of the marts for BI tools that read files and know nothing of
//! Delta: `<warehouse>/export/<mart>/<mart>.parquet`.
//!
//! `export` is a symbolic link to `exports/<run_id>/`. A run writes its files into a
//! fresh folder and then swaps the link with one `rename`, which is atomic: a reader
//! opens either the previous run's files or this run's, never a mix. The previous
//! run's folder is kept (a reader may still be in it); older ones are removed.
//! The marts are small (towns × years), so each is one file, not year partitions.
//! Other files of the run (the yearly report of `[report]`) go into the same folder,
//! under their relative paths, and are swapped in with the marts.

use std::path::Path;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use townstat_query::marts::MartRows;

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("export {}: {e}", path.display()))
}

/// A mart's batch with its Chinese labels in the Arrow field metadata (`label`: 镇名,
/// 营业收入(元) …) and the table's in the schema metadata, so that a BI tool or
/// pandas/pyarrow reading the Parquet file alone can show them.
fn labelled(
    table: &str,
    batch: &RecordBatch,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    use std::collections::HashMap;
    use townstat_domain::schema::{any_column_label, column_label, table_label};
    let schema = batch.schema();
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut metadata = f.metadata().clone();
            if let Some(label) =
                column_label(table, f.name()).or_else(|| any_column_label(f.name()))
            {
                metadata.insert("label".to_string(), label.to_string());
            }
            f.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    let mut metadata: HashMap<String, String> = schema.metadata().clone();
    if let Some(label) = table_label(table) {
        metadata.insert("label".to_string(), label.to_string());
    }
    let schema = arrow::datatypes::Schema::new_with_metadata(fields, metadata);
    RecordBatch::try_new(std::sync::Arc::new(schema), batch.columns().to_vec())
}

fn write_parquet<W: std::io::Write + Send>(
    out: W,
    table: &str,
    rows: &MartRows,
) -> std::result::Result<W, parquet::errors::ParquetError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let general = |e: String| parquet::errors::ParquetError::General(format!("{table}: {e}"));
    let empty = RecordBatch::new_empty(rows.schema());
    let mut w = ArrowWriter::try_new(out, labelled(table, &empty)?.schema(), Some(props))?;
    // A mart built to a scratch file is read back a batch at a time, in its order.
    for batch in rows.batches().map_err(|e| general(e.to_string()))? {
        w.write(&labelled(table, &batch.map_err(general)?)?)?;
    }
    w.into_inner()
}

/// Writes the marts of a run into an object store, where there are no symbolic links:
/// each run's files go to `exports/<run_id>/<mart>/<mart>.parquet` and are never
/// rewritten, then the one object `exports/LATEST` is replaced with the run's id. A
/// single-object put is atomic, so a reader that reads `LATEST` first and then the
/// folder it names gets one run's files, never a mix. As on local disk, the previous
/// run's folder is kept and older ones are deleted.
pub async fn publish_to_store(
    warehouse: &townstat_warehouse::Warehouse,
    run_id: &str,
    marts: &[(String, MartRows)],
    extras: &[(String, Vec<u8>)],
) -> Result<()> {
    use object_store::ObjectStoreExt;
    let (store, prefix) = warehouse
        .root_store()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::Internal(format!("export {}{what}: {e}", warehouse.root()))
    };
    let runs = prefix.clone().join("exports");
    for (name, batch) in marts {
        let key = format!("{run_id}/{name}/{name}.parquet");
        let bytes = write_parquet(Vec::new(), name, batch).map_err(|e| fail(&key, &e))?;
        let path = runs
            .clone()
            .join(run_id)
            .join(name.as_str())
            .join(format!("{name}.parquet"));
        store
            .put(&path, bytes.into())
            .await
            .map_err(|e| fail(&key, &e))?;
    }
    for (relative, bytes) in extras {
        let mut path = runs.clone().join(run_id);
        for part in relative.split('/') {
            path = path.join(part);
        }
        store
            .put(&path, bytes.clone().into())
            .await
            .map_err(|e| fail(relative, &e))?;
    }
    let latest = runs.clone().join("LATEST");
    let previous = match store.get(&latest).await {
        Ok(found) => {
            let b = found
                .bytes()
                .await
                .map_err(|e| fail("exports/LATEST", &e))?;
            Some(String::from_utf8_lossy(&b).trim().to_string())
        }
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(fail("exports/LATEST", &e)),
    };
    store
        .put(&latest, format!("{run_id}\n").into())
        .await
        .map_err(|e| fail("exports/LATEST", &e))?;
    let listing = store
        .list_with_delimiter(Some(&runs))
        .await
        .map_err(|e| fail("exports/", &e))?;
    for folder in listing.common_prefixes {
        let Some(id) = folder.filename() else {
            continue;
        };
        if id == run_id || Some(id) == previous.as_deref() {
            continue;
        }
        delete_prefix(store.as_ref(), &folder)
            .await
            .map_err(|e| fail("exports/", &e))?;
    }
    Ok(())
}

/// Deletes every object under a prefix of an object store. Tries them all and returns
/// the first failure, if any.
pub(crate) async fn delete_prefix(
    store: &dyn object_store::ObjectStore,
    prefix: &object_store::path::Path,
) -> object_store::Result<()> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let listed: Vec<_> = store
        .list(Some(prefix))
        .map_ok(|m| m.location)
        .try_collect()
        .await?;
    let mut first_error = None;
    for path in listed {
        if let Err(e) = store.delete(&path).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes the marts of a run and publishes them. Only for local warehouses.
pub fn publish(
    root: &Path,
    run_id: &str,
    marts: &[(String, MartRows)],
    extras: &[(String, Vec<u8>)],
    before_swap: impl FnOnce(),
) -> Result<()> {
    let runs = root.join("exports");
    let dir = runs.join(run_id);
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    for (name, batch) in marts {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).map_err(|e| io(&folder, e))?;
        let path = folder.join(format!("{name}.parquet"));
        let file = std::fs::File::create(&path).map_err(|e| io(&path, e))?;
        let file = write_parquet(file, name, batch).map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))?;
    }
    for (relative, bytes) in extras {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&path)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        write().map_err(|e| io(&path, e))?;
    }
    before_swap();
    // Swap the link: create it under a temporary name, then rename over `export`.
    let link = root.join("export");
    let tmp = root.join(format!(".export-{run_id}"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("exports").join(run_id), &tmp).map_err(|e| io(&tmp, e))?;
    let previous = std::fs::read_link(&link).ok();
    std::fs::rename(&tmp, &link).map_err(|e| io(&link, e))?;
    // Keep this run's folder and the previous one; remove the rest.
    let keep: Vec<std::ffi::OsString> = [Some(std::path::PathBuf::from(run_id)), previous]
        .into_iter()
        .flatten()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for entry in entries.flatten() {
            if !keep.contains(&entry.file_name()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(())
}
