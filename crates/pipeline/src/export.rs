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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Writes each mart's file into a run's export folder, one after the other, until
/// `stop` is set (then the files written so far stay, and the caller removes them).
fn write_files(dir: &Path, marts: &[(String, MartRows)], stop: &AtomicBool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for (name, batch) in marts {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).map_err(|e| io(&folder, e))?;
        let path = folder.join(format!("{name}.parquet"));
        let file = std::fs::File::create(&path).map_err(|e| io(&path, e))?;
        let file = write_parquet(file, name, batch).map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// The marts' export files of a local run, written on a thread of their own while the
/// run writes the same marts to their Delta tables and commits.
///
/// A Delta write encodes its Parquet on one thread, and so does an export file: one
/// after the other they kept one of the two cores idle for the length of both. The
/// files go to `exports/<run_id>/`, which nothing reads before [`Staged::publish`]
/// swaps the `export` link to it after the commit, so readers still see only committed
/// runs' exports. Dropped without a successful `publish` (the run failed, or its
/// export did), it stops after the file being written, waits for the thread and
/// removes the folder.
pub struct Staged {
    thread: Option<std::thread::JoinHandle<Result<()>>>,
    stop: Arc<AtomicBool>,
    root: PathBuf,
    run_id: String,
    /// Set once the link points at the folder: from then on it is the export readers see.
    published: bool,
}

impl Staged {
    /// Starts writing the marts' files of run `run_id` under the local warehouse `root`.
    pub fn start(root: &Path, run_id: &str, marts: Vec<(String, MartRows)>) -> Result<Staged> {
        let stop = Arc::new(AtomicBool::new(false));
        let dir = run_dir(root, run_id);
        let thread = {
            let (folder, stop) = (dir.clone(), stop.clone());
            std::thread::Builder::new()
                .name("export".to_string())
                .spawn(move || write_files(&folder, &marts, &stop))
                .map_err(|e| io(&dir, e))?
        };
        Ok(Staged {
            thread: Some(thread),
            stop,
            root: root.to_path_buf(),
            run_id: run_id.to_string(),
            published: false,
        })
    }

    /// Waits for the files, writes `more` marts (the reference tables, which were not
    /// staged) and `extras` (files under their relative paths) beside them, calls
    /// `before_swap` and swaps the `export` link to the run's folder, keeping the
    /// previous run's folder and removing older ones. On an error (the thread's, a
    /// file's or the swap's) the folder is removed and the link still points at the
    /// previous run's export, as when the files were written after the commit.
    pub fn publish(
        mut self,
        more: &[(String, MartRows)],
        extras: &[(String, Vec<u8>)],
        before_swap: impl FnOnce(),
    ) -> Result<()> {
        self.join()?;
        let dir = run_dir(&self.root, &self.run_id);
        write_files(&dir, more, &AtomicBool::new(false))?;
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
        let previous = swap_link(&self.root, &self.run_id)?;
        self.published = true;
        remove_older(&self.root, &self.run_id, previous);
        Ok(())
    }

    fn join(&mut self) -> Result<()> {
        match self.thread.take().map(|t| t.join()) {
            None => Ok(()),
            Some(Ok(written)) => written,
            Some(Err(_)) => Err(Error::Internal(format!(
                "export {}: the thread writing the files panicked",
                run_dir(&self.root, &self.run_id).display()
            ))),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.join();
        let dir = run_dir(&self.root, &self.run_id);
        if !self.published
            && dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(folder = %dir.display(), error = %e, "could not remove a failed run's export folder");
        }
    }
}

/// The folder of run `run_id`'s export files.
fn run_dir(root: &Path, run_id: &str) -> PathBuf {
    root.join("exports").join(run_id)
}

/// Points `export` at run `run_id`'s folder: the link is created under a temporary
/// name, then renamed over `export`, so a reader opens one run's files or the other's.
/// Returns where the link pointed before.
fn swap_link(root: &Path, run_id: &str) -> Result<Option<PathBuf>> {
    let link = root.join("export");
    let tmp = root.join(format!(".export-{run_id}"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("exports").join(run_id), &tmp).map_err(|e| io(&tmp, e))?;
    let previous = std::fs::read_link(&link).ok();
    std::fs::rename(&tmp, &link).map_err(|e| io(&link, e))?;
    Ok(previous)
}

/// Removes the run folders under `exports/` but run `run_id`'s and `previous` (where
/// the link pointed before: a reader may still be in it). Not fatal: a folder left
/// goes at the next run's export.
fn remove_older(root: &Path, run_id: &str, previous: Option<PathBuf>) {
    let keep: Vec<std::ffi::OsString> = [Some(PathBuf::from(run_id)), previous]
        .into_iter()
        .flatten()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    if let Ok(entries) = std::fs::read_dir(root.join("exports")) {
        for entry in entries.flatten() {
            if !keep.contains(&entry.file_name()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn mart(values: &[i64]) -> MartRows {
        let schema = Arc::new(Schema::new(vec![
            Field::new("town_id", DataType::Utf8, false),
            Field::new("revenue", DataType::Int64, false),
        ]));
        let towns: Vec<String> = values.iter().map(|v| format!("t{v}")).collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(towns)),
                Arc::new(Int64Array::from(values.to_vec())),
            ],
        )
        .expect("batch");
        MartRows::Memory(vec![batch.slice(0, 1), batch.slice(1, values.len() - 1)])
    }

    fn read_back(path: &Path) -> Vec<i64> {
        let file = std::fs::File::open(path).expect("export file");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024)
            .expect("parquet");
        reader
            .flat_map(|b| {
                let b = b.expect("batch");
                b.column(1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("revenue")
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn staged_files_are_published_and_removed_when_the_run_fails() {
        let root = tempfile::tempdir().expect("tmp");
        let marts = vec![
            ("town_year".to_string(), mart(&[3, 1, 2])),
            ("county_year".to_string(), mart(&[7, 8])),
        ];
        let staged = Staged::start(root.path(), "r1", marts.clone()).expect("start");
        let more = [("town".to_string(), mart(&[5]))];
        let extras = [("report/index.html".to_string(), b"<p>r1</p>".to_vec())];
        let mut swapped = false;
        staged
            .publish(&more, &extras, || swapped = true)
            .expect("publish");
        assert!(swapped);
        let export = root.path().join("export");
        assert_eq!(
            std::fs::read_link(&export).expect("link"),
            Path::new("exports/r1")
        );
        assert_eq!(
            read_back(&export.join("town_year/town_year.parquet")),
            [3, 1, 2]
        );
        assert_eq!(
            read_back(&export.join("county_year/county_year.parquet")),
            [7, 8]
        );
        assert_eq!(read_back(&export.join("town/town.parquet")), [5]);
        assert_eq!(
            std::fs::read(export.join("report/index.html")).expect("extra"),
            b"<p>r1</p>"
        );

        // A run that fails after starting its files (dropped without `publish`).
        let staged = Staged::start(root.path(), "r2", marts).expect("start");
        drop(staged);
        assert!(!root.path().join("exports/r2").exists());
        assert_eq!(
            read_back(&export.join("town_year/town_year.parquet")),
            [3, 1, 2]
        );
    }

    #[test]
    fn a_file_that_cannot_be_written_fails_the_export_and_leaves_no_folder() {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("exports/r1");
        std::fs::create_dir_all(&dir).expect("dir");
        // A plain file where the mart's folder goes.
        std::fs::write(dir.join("town_year"), b"not a folder").expect("file");
        let staged = Staged::start(
            root.path(),
            "r1",
            vec![("town_year".to_string(), mart(&[1, 2]))],
        )
        .expect("start");
        let err = staged
            .publish(&[], &[], || panic!("no swap after a failed file"))
            .expect_err("the folder is a file");
        assert!(err.to_string().contains("town_year"), "{err}");
        assert!(!dir.exists());
        assert!(std::fs::symlink_metadata(root.path().join("export")).is_err());
    }

    #[test]
    fn an_extra_that_cannot_be_written_keeps_the_previous_export() {
        let root = tempfile::tempdir().expect("tmp");
        let marts = vec![("town_year".to_string(), mart(&[1, 2]))];
        Staged::start(root.path(), "r1", marts.clone())
            .expect("start")
            .publish(&[], &[], || ())
            .expect("publish r1");
        // The extra's parent folder is a mart's file: it cannot be created.
        let extras = [("town_year/town_year.parquet/x".to_string(), vec![1])];
        let err = Staged::start(root.path(), "r2", marts)
            .expect("start")
            .publish(&[], &extras, || panic!("no swap after a failed extra"))
            .expect_err("the extra's folder is a file");
        assert!(err.to_string().contains("town_year.parquet"), "{err}");
        assert!(!root.path().join("exports/r2").exists());
        assert_eq!(
            std::fs::read_link(root.path().join("export")).expect("link"),
            Path::new("exports/r1")
        );
    }
}
