//! Table storage: opening, time travel, append, overwrite and MERGE of Delta tables,
//! and the committed-run record that pins what readers see.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::DataType;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::Column;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::error::{Error, Result};
use crate::layout;

/// The warehouse root.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: Url,
    location: String,
    /// Register tables as listing tables over their files (for a cluster) instead of
    /// Delta's provider.
    as_files: bool,
}

/// What the last committed run left: its id and the version of every table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRun {
    /// The run's id.
    pub run_id: String,
    /// The run's status (`succeeded` or `partial`).
    pub status: String,
    /// Table name → Delta version.
    pub versions: BTreeMap<String, i64>,
    /// When the run committed, microseconds since the Unix epoch (UTC).
    pub finished_at_micros: i64,
}

/// One table [`Warehouse::restore_uncommitted`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The table.
    pub table: String,
    /// Its latest version before (`None`: a folder without a Delta log).
    pub from: Option<i64>,
    /// The committed version its content now equals; `None` when the table was
    /// removed because no committed run names it.
    pub to: Option<i64>,
}

/// Rows written by reading them as a stream (a run's staged files) rather than from
/// one batch in memory: their schema, how many there are, and a function that starts
/// reading them, again for each scan a write or a MERGE makes.
#[derive(Clone)]
pub struct RowStream {
    /// The rows' schema.
    pub schema: SchemaRef,
    /// How many rows the stream yields.
    pub rows: usize,
    /// Starts reading the rows from the beginning.
    pub open: Arc<dyn Fn() -> BatchIter + Send + Sync>,
}

/// The batches of a [`RowStream`]; an error names what could not be read.
pub type BatchIter = Box<dyn Iterator<Item = std::result::Result<RecordBatch, String>> + Send>;

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// A [`RowStream`] as the one partition of a DataFusion table, each batch given the
/// schema the stored table has (its labels; see [`Warehouse::aligned`]).
#[derive(Debug)]
struct StreamPartition {
    schema: SchemaRef,
    rows: RowStream,
}

impl PartitionStream for StreamPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let batches = (self.rows.open)().map(move |batch| {
            let batch = batch.map_err(DataFusionError::Execution)?;
            Ok(RecordBatch::try_new(
                schema.clone(),
                batch.columns().to_vec(),
            )?)
        });
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches),
        ))
    }
}

/// Which committed run a reader wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSelector {
    /// The last committed run.
    Latest,
    /// A run by id.
    Id(String),
    /// The N-th committed run, counting from 1 (`townstat sql --version N`).
    Sequence(usize),
    /// The last run committed at or before this instant (`--as-of`), in microseconds
    /// since the Unix epoch.
    AsOf(i64),
}

fn delta(table: &str) -> impl FnOnce(deltalake::DeltaTableError) -> Error + '_ {
    move |source| Error::Delta {
        table: table.to_string(),
        source,
    }
}

fn query(table: &str) -> impl FnOnce(datafusion::error::DataFusionError) -> Error + '_ {
    move |source| Error::Query {
        table: table.to_string(),
        source,
    }
}

fn qcol(qualifier: &str, name: &str) -> Expr {
    Expr::Column(Column::new(Some(qualifier), name))
}

/// Registers the object stores a warehouse URL may name (`s3://`, `s3a://`) with
/// delta-rs, once per process. Their endpoint, region and credentials come from the
/// environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...), as
/// object_store reads them.
pub fn register_object_stores() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| deltalake::aws::register_handlers(None));
}

/// The URL schemes a warehouse may live under.
const SCHEMES: [&str; 3] = ["file", "s3", "s3a"];

impl Warehouse {
    /// Opens a warehouse at a local path, a `file://` URL or an `s3://bucket/prefix`
    /// URL. A local folder is created when missing.
    pub fn open(location: &str) -> Result<Warehouse> {
        let bad = |message: String| Error::Location {
            location: location.to_string(),
            message,
        };
        let root = if location.contains("://") {
            let mut u = Url::parse(location).map_err(|e| bad(e.to_string()))?;
            if !SCHEMES.contains(&u.scheme()) {
                return Err(bad(format!(
                    "unsupported scheme {}: use a local path, file:// or s3://",
                    u.scheme()
                )));
            }
            if u.scheme() == "file" {
                std::fs::create_dir_all(u.path()).map_err(|e| bad(e.to_string()))?;
            } else {
                register_object_stores();
            }
            if !u.path().ends_with('/') {
                u.set_path(&format!("{}/", u.path()));
            }
            u
        } else {
            std::fs::create_dir_all(location).map_err(|e| bad(e.to_string()))?;
            let abs = std::fs::canonicalize(location).map_err(|e| bad(e.to_string()))?;
            Url::from_directory_path(&abs).map_err(|_| bad("not an absolute path".into()))?
        };
        Ok(Warehouse {
            root,
            location: location.to_string(),
            as_files: false,
        })
    }

    /// The same warehouse, registering its tables in sessions as Parquet listing
    /// tables over exactly the files of the pinned Delta version, instead of through
    /// Delta's table provider. A Ballista cluster can serialize those to its scheduler
    /// and executors; it cannot serialize Delta's provider. The tables are written
    /// without deletion vectors, column mapping or partitions (delta-rs writes none of
    /// them here), so the file list is the whole of a version's state.
    pub fn with_file_tables(mut self) -> Warehouse {
        self.as_files = true;
        self
    }

    /// The location as the user gave it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The root URL.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The local folder of the warehouse, when it is on local disk.
    pub fn local_root(&self) -> Option<std::path::PathBuf> {
        (self.root.scheme() == "file")
            .then(|| self.root.to_file_path().ok())
            .flatten()
    }

    /// The object store the warehouse lives in and the warehouse's prefix in it, for
    /// the objects that are not Delta tables: the run lock and the exports.
    pub fn root_store(&self) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
        let bad = |message: String| Error::Location {
            location: self.location.clone(),
            message,
        };
        if let Some(dir) = self.local_root() {
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| bad(e.to_string()))?;
            return Ok((Arc::new(store), ObjectPath::default()));
        }
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_url(self.root.as_str())
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let prefix = ObjectPath::from_url_path(self.root.path()).map_err(|e| bad(e.to_string()))?;
        Ok((Arc::new(store), prefix))
    }

    /// The URL of a table.
    pub fn table_url(&self, name: &str) -> Result<Url> {
        self.root
            .join(&format!("tables/{name}/"))
            .map_err(|e| Error::Location {
                location: self.location.clone(),
                message: e.to_string(),
            })
    }

    /// Opens a table at its latest version, or `None` if it does not exist yet.
    pub async fn latest(&self, name: &str) -> Result<Option<DeltaTable>> {
        if !self.exists(name).await? {
            return Ok(None);
        }
        let url = self.table_url(name)?;
        let table = DeltaTable::try_from_url(url).await.map_err(delta(name))?;
        Ok(table.version().is_some().then_some(table))
    }

    /// Whether a table has a Delta log: a directory test on local disk, a listing of
    /// `_delta_log/` in an object store.
    async fn exists(&self, name: &str) -> Result<bool> {
        if let Some(dir) = self.local_root() {
            return Ok(dir.join("tables").join(name).join("_delta_log").is_dir());
        }
        let table = deltalake::DeltaTableBuilder::from_url(self.table_url(name)?)
            .and_then(|b| b.build())
            .map_err(delta(name))?;
        table
            .log_store()
            .is_delta_table_location()
            .await
            .map_err(delta(name))
    }

    /// Opens a table at a version.
    pub async fn at_version(&self, name: &str, version: i64) -> Result<DeltaTable> {
        let url = self.table_url(name)?;
        deltalake::open_table_with_version(url, version.max(0) as u64)
            .await
            .map_err(delta(name))
    }

    async fn handle(&self, name: &str) -> Result<DeltaTable> {
        if let Some(dir) = self.local_root() {
            std::fs::create_dir_all(dir.join("tables").join(name)).map_err(|e| {
                Error::Location {
                    location: self.location.clone(),
                    message: e.to_string(),
                }
            })?;
        }
        if let Some(table) = self.latest(name).await? {
            return Ok(table);
        }
        // A new table: a handle that is not loaded (loading would fail, noisily).
        deltalake::DeltaTableBuilder::from_url(self.table_url(name)?)
            .and_then(|b| b.build())
            .map_err(delta(name))
    }

    /// The batch with the field metadata (the Chinese label, `comment`) the existing
    /// table has for each of its columns. A label edited in `schemas/` between two
    /// releases must not stop the nightly run on a warehouse the older release made:
    /// delta-rs refuses to merge two values of one metadata key ("Cannot merge metadata
    /// with different values for key comment"). The stored table keeps its labels;
    /// readers get the current ones from `schemas/` anyway (`\d`, the server's
    /// comments, the exports). A table not created yet takes the batch as it is.
    fn aligned(name: &str, table: &DeltaTable, batch: RecordBatch) -> Result<RecordBatch> {
        let schema = Self::aligned_schema(table, batch.schema());
        if Arc::ptr_eq(&schema, &batch.schema()) {
            return Ok(batch);
        }
        RecordBatch::try_new(schema, batch.columns().to_vec())
            .map_err(|e| Error::RunRecord(format!("{name}: aligning the labels: {e}")))
    }

    /// The schema with the stored table's field metadata (see [`Self::aligned`]); the
    /// same `Arc` when nothing differs.
    fn aligned_schema(table: &DeltaTable, schema: SchemaRef) -> SchemaRef {
        let Ok(snapshot) = table.snapshot() else {
            return schema;
        };
        let stored = snapshot.snapshot().arrow_schema();
        let mut changed = false;
        let fields: Vec<arrow::datatypes::Field> = schema
            .fields()
            .iter()
            .map(|f| match stored.field_with_name(f.name()) {
                Ok(s) if s.metadata() != f.metadata() => {
                    changed = true;
                    f.as_ref().clone().with_metadata(s.metadata().clone())
                }
                _ => f.as_ref().clone(),
            })
            .collect();
        if !changed {
            return schema;
        }
        Arc::new(arrow::datatypes::Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        ))
    }

    /// A stream of rows as a DataFrame with the stored table's labels.
    fn stream_frame(name: &str, table: &DeltaTable, rows: RowStream) -> Result<DataFrame> {
        let schema = Self::aligned_schema(table, rows.schema.clone());
        let partition = Arc::new(StreamPartition {
            schema: schema.clone(),
            rows,
        });
        let provider = StreamingTable::try_new(schema, vec![partition]).map_err(query(name))?;
        SessionContext::new()
            .read_table(Arc::new(provider))
            .map_err(query(name))
    }

    /// A write of rows in townstat's file layout (the layout module: one partition,
    /// its writer properties); every append and overwrite goes through it.
    fn laid_out(
        table: DeltaTable,
        batches: Vec<RecordBatch>,
        mode: SaveMode,
    ) -> deltalake::operations::write::WriteBuilder {
        table
            .write(batches)
            .with_save_mode(mode)
            .with_session_state(layout::session())
            .with_writer_properties(layout::writer_properties())
    }

    fn commit_version(name: &str, table: &DeltaTable) -> Result<i64> {
        table
            .version()
            .map(|v| v as i64)
            .ok_or_else(|| Error::RunRecord(format!("{name} has no version after a commit")))
    }

    /// Appends rows (creating the table on first use). Returns the new version.
    pub async fn append(&self, name: &str, batch: RecordBatch) -> Result<i64> {
        self.write(name, vec![batch], SaveMode::Append).await
    }

    /// Replaces the table's rows (reference tables, marts). Returns the new version.
    ///
    /// The new version takes the batch's schema: a table replaced whole has the
    /// columns of the release that wrote it, so a release that adds a column to a
    /// mart or a reference table runs on a warehouse an older one made (delta-rs
    /// refuses a changed schema otherwise). Earlier versions keep their own schema
    /// for readers pinned to an older run.
    pub async fn overwrite(&self, name: &str, batch: RecordBatch) -> Result<i64> {
        self.write(name, vec![batch], SaveMode::Overwrite).await
    }

    /// [`Self::overwrite`] with rows read as a stream (a mart as its plan produced it,
    /// from memory or from the file a run's build wrote it to), written in the order
    /// the stream yields them.
    pub async fn overwrite_stream(&self, name: &str, rows: RowStream) -> Result<i64> {
        let table = self.handle(name).await?;
        let plan = Self::stream_frame(name, &table, rows)?
            .logical_plan()
            .clone();
        let table = Self::laid_out(table, vec![], SaveMode::Overwrite)
            .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
            .with_input_plan(plan)
            .await
            .map_err(delta(name))?;
        Self::commit_version(name, &table)
    }

    async fn write(&self, name: &str, batches: Vec<RecordBatch>, mode: SaveMode) -> Result<i64> {
        let table = self.handle(name).await?;
        let batches = batches
            .into_iter()
            .map(|b| Self::aligned(name, &table, b))
            .collect::<Result<Vec<_>>>()?;
        let mut write = Self::laid_out(table, batches, mode);
        if mode == SaveMode::Overwrite {
            write = write.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
        }
        let table = write.await.map_err(delta(name))?;
        Self::commit_version(name, &table)
    }

    /// Upserts rows by key: a row whose key exists replaces it, others are inserted.
    /// Nothing is committed for an empty batch on an existing table. Returns the
    /// table's version afterwards.
    pub async fn merge(&self, name: &str, batch: RecordBatch, key: &[String]) -> Result<i64> {
        let Some(table) = self.latest(name).await? else {
            return self.append(name, batch).await;
        };
        if batch.num_rows() == 0 {
            return Self::commit_version(name, &table);
        }
        let batch = Self::aligned(name, &table, batch)?;
        let ctx = SessionContext::new();
        let source = ctx.read_batch(batch).map_err(query(name))?;
        Self::merge_frame(name, table, source, key).await
    }

    /// [`Self::merge`] of rows read as a stream: the table's memory does not hold them
    /// all at once (the MERGE's own join still holds what it needs).
    pub async fn merge_stream(&self, name: &str, rows: RowStream, key: &[String]) -> Result<i64> {
        let Some(table) = self.latest(name).await? else {
            let table = self.handle(name).await?;
            let plan = Self::stream_frame(name, &table, rows)?
                .logical_plan()
                .clone();
            let table = Self::laid_out(table, vec![], SaveMode::Append)
                .with_input_plan(plan)
                .await
                .map_err(delta(name))?;
            return Self::commit_version(name, &table);
        };
        if rows.rows == 0 {
            return Self::commit_version(name, &table);
        }
        let source = Self::stream_frame(name, &table, rows)?;
        Self::merge_frame(name, table, source, key).await
    }

    /// MERGE of a source frame into a table by key: matched rows updated, the others
    /// inserted.
    async fn merge_frame(
        name: &str,
        table: DeltaTable,
        source: DataFrame,
        key: &[String],
    ) -> Result<i64> {
        let predicate = key
            .iter()
            .map(|k| qcol("target", k).eq(qcol("source", k)))
            .reduce(Expr::and)
            .ok_or_else(|| Error::RunRecord(format!("{name} has no key")))?;
        let columns: Vec<String> = source
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let update_cols = columns.clone();
        let (table, _metrics) = table
            .merge(source, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_writer_properties(layout::writer_properties())
            .when_matched_update(move |mut u| {
                for c in &update_cols {
                    u = u.update(Column::new(Some("target"), c), qcol("source", c));
                }
                u
            })
            .map_err(delta(name))?
            .when_not_matched_insert(move |mut i| {
                for c in &columns {
                    i = i.set(Column::new(Some("target"), c), qcol("source", c));
                }
                i
            })
            .map_err(delta(name))?
            .await
            .map_err(delta(name))?;
        Self::commit_version(name, &table)
    }

    /// Compacts a table, writes a checkpoint and vacuums every file that neither the
    /// latest version nor one of `keep_versions` references. With `cluster`, the
    /// compaction is a Z-order by that column: every file of the table is rewritten
    /// with its rows in that column's order (see the layout module). Returns (files
    /// added, files compacted away, files deleted), or `None` for a missing table.
    pub async fn maintain_table(
        &self,
        name: &str,
        keep_versions: &[u64],
        cluster: Option<&str>,
    ) -> Result<Option<(u64, u64, usize)>> {
        let Some(table) = self.latest(name).await? else {
            return Ok(None);
        };
        // A Z-order rewrites every file of the table, and the files it replaces stay
        // while a kept run's version names them: a table nothing changed since its
        // last Z-order by the same column is only compacted.
        let cluster = match cluster {
            Some(column) if !Self::clustered_by(name, &table, column).await? => Some(column),
            _ => None,
        };
        let mut optimize = table
            .optimize()
            .with_writer_properties(layout::writer_properties());
        if let Some(column) = cluster {
            optimize = optimize
                .with_type(deltalake::operations::optimize::OptimizeType::ZOrder(vec![
                    column.to_string(),
                ]))
                .with_session_state(layout::session())
                .with_commit_properties(
                    deltalake::kernel::transaction::CommitProperties::default().with_metadata([(
                        layout::ZORDER_COMMIT_KEY.to_string(),
                        serde_json::Value::String(column.to_string()),
                    )]),
                );
        }
        let (table, metrics) = optimize.await.map_err(delta(name))?;
        deltalake::checkpoints::create_checkpoint(&table, None)
            .await
            .map_err(delta(name))?;
        let (_, vacuum) = table
            .vacuum()
            .with_keep_versions(keep_versions)
            .with_retention_period(chrono::Duration::zero())
            .with_enforce_retention_duration(false)
            .await
            .map_err(delta(name))?;
        Ok(Some((
            metrics.num_files_added,
            metrics.num_files_removed,
            vacuum.files_deleted.len(),
        )))
    }

    /// Whether the table's last change of content is a Z-order by `column` (vacuum's
    /// own commits do not count).
    async fn clustered_by(name: &str, table: &DeltaTable, column: &str) -> Result<bool> {
        use futures::StreamExt;
        let mut history = table.history(Some(50));
        while let Some(info) = history.next().await {
            let info = info.map_err(delta(name))?;
            match info.operation.as_deref() {
                Some("VACUUM START" | "VACUUM END") => continue,
                Some("OPTIMIZE") => {
                    return Ok(info.info.get(layout::ZORDER_COMMIT_KEY)
                        == Some(&serde_json::Value::String(column.to_string())));
                }
                _ => return Ok(false),
            }
        }
        Ok(false)
    }

    /// The names of every table folder under `<root>/tables/`, whether or not it has a
    /// Delta log yet (a run killed before its first commit to a new table leaves an
    /// empty folder).
    pub async fn table_names(&self) -> Result<Vec<String>> {
        let bad = |message: String| Error::Location {
            location: self.location.clone(),
            message,
        };
        if let Some(dir) = self.local_root() {
            let tables = dir.join("tables");
            if !tables.is_dir() {
                return Ok(vec![]);
            }
            let mut names = vec![];
            for entry in
                std::fs::read_dir(&tables).map_err(|e| bad(format!("{}: {e}", tables.display())))?
            {
                let entry = entry.map_err(|e| bad(format!("{}: {e}", tables.display())))?;
                if entry.path().is_dir()
                    && let Some(name) = entry.file_name().to_str()
                {
                    names.push(name.to_string());
                }
            }
            names.sort();
            return Ok(names);
        }
        let (store, prefix) = self.root_store()?;
        let listed = store
            .list_with_delimiter(Some(&prefix.clone().join("tables")))
            .await
            .map_err(|e| bad(format!("listing tables/: {e}")))?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes a table entirely (its log and its files). Only for a table no
    /// committed run names: a run that failed before its first commit created it.
    async fn remove_table(&self, name: &str) -> Result<()> {
        use futures::TryStreamExt;
        let bad = |message: String| Error::Location {
            location: self.location.clone(),
            message,
        };
        if let Some(dir) = self.local_root() {
            let folder = dir.join("tables").join(name);
            return std::fs::remove_dir_all(&folder)
                .map_err(|e| bad(format!("{}: {e}", folder.display())));
        }
        let (store, prefix) = self.root_store()?;
        let folder = prefix.clone().join("tables").join(name);
        let objects: Vec<_> = store
            .list(Some(&folder))
            .try_collect()
            .await
            .map_err(|e| bad(format!("listing tables/{name}/: {e}")))?;
        // The log goes first: a reader then finds no table rather than a log naming
        // deleted files.
        let (log, data): (Vec<_>, Vec<_>) = objects
            .into_iter()
            .partition(|m| m.location.as_ref().contains("/_delta_log/"));
        for meta in log.iter().chain(data.iter()) {
            match store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(bad(format!("deleting {}: {e}", meta.location))),
            }
        }
        Ok(())
    }

    /// Brings every table back to the state the last committed run recorded, for
    /// outside Delta readers (deltalake, Polars, DuckDB's `delta_scan`), which open a
    /// table's latest version rather than the versions of a `run` row:
    /// - a table whose latest version holds other files than the recorded version gets
    ///   a Delta RESTORE commit whose snapshot equals the recorded version (its history
    ///   stays; the recorded version stays readable);
    /// - a table no committed run names (created by a run that failed) is removed.
    ///
    /// `run` itself is left alone: its only writer is the commit point. A latest
    /// version with the same files as the recorded one (already restored, or only
    /// checkpointed) is left as it is. Call it holding the run lock.
    pub async fn restore_uncommitted(&self, last: Option<&CommittedRun>) -> Result<Vec<Restored>> {
        let empty = BTreeMap::new();
        let recorded = last.map(|r| &r.versions).unwrap_or(&empty);
        let mut out = vec![];
        for name in self.table_names().await? {
            if name == "run" {
                continue;
            }
            let Some(&version) = recorded.get(&name) else {
                let latest = self.latest(&name).await?.and_then(|t| t.version());
                self.remove_table(&name).await?;
                out.push(Restored {
                    table: name,
                    from: latest.map(|v| v as i64),
                    to: None,
                });
                continue;
            };
            let Some(table) = self.latest(&name).await? else {
                return Err(Error::RunRecord(format!(
                    "the last committed run names {name} version {version}, but the table has \
                     no Delta log"
                )));
            };
            let latest = Self::commit_version(&name, &table)?;
            if latest <= version {
                continue;
            }
            let at = self.at_version(&name, version).await?;
            let files = |t: &DeltaTable| -> Result<std::collections::BTreeSet<String>> {
                Ok(t.get_file_uris().map_err(delta(&name))?.collect())
            };
            if files(&table)? == files(&at)? {
                continue;
            }
            let (table, _metrics) = table
                .restore()
                .with_version_to_restore(version.max(0) as u64)
                .await
                .map_err(delta(&name))?;
            tracing::warn!(
                table = name,
                uncommitted = latest,
                restored_to = version,
                new_version = table.version().map(|v| v as i64),
                "restored a table to the last committed run"
            );
            out.push(Restored {
                table: name,
                from: Some(latest),
                to: Some(version),
            });
        }
        Ok(out)
    }

    /// Appends a run's rows to an append-only table (quarantine, file records, ...)
    /// after deleting any rows whose `run_id` is not one of `committed`: rows that a
    /// run killed before its commit point had appended. Readers never saw them (they
    /// read pinned versions), but this append builds on the latest version, so without
    /// the delete they would become visible with this run.
    pub async fn append_for_run(
        &self,
        name: &str,
        batch: RecordBatch,
        committed: &[String],
    ) -> Result<i64> {
        let Some(table) = self.latest(name).await? else {
            return self.append(name, batch).await;
        };
        let run_id = datafusion::prelude::col("run_id");
        let orphan = if committed.is_empty() {
            run_id.is_not_null()
        } else {
            run_id.in_list(
                committed
                    .iter()
                    .map(|c| datafusion::prelude::lit(c.as_str()))
                    .collect(),
                true,
            )
        };
        Self::delete_then_append(name, table, orphan, batch).await
    }

    /// Replaces whole groups of rows: deletes every row whose `group` column value
    /// occurs in the batch, then appends the batch. Used for `patent_applicant`, where a
    /// corrected patent may have fewer applicants than before, so a MERGE by
    /// (application_no, position) would leave the old extra positions behind. Both
    /// commits happen before the run record, so readers never see the gap between them.
    ///
    /// The delete is a MERGE against the batch's distinct group values (a join), not
    /// a DELETE with an IN list: planning an IN list recurses once per value, and a
    /// `--force` run at scale 10 (tens of thousands of patents) overflowed a 32 MiB
    /// stack in a debug build.
    pub async fn replace_groups(&self, name: &str, batch: RecordBatch, group: &str) -> Result<i64> {
        let Some(table) = self.latest(name).await? else {
            return self.append(name, batch).await;
        };
        if batch.num_rows() == 0 {
            return Self::commit_version(name, &table);
        }
        let values = text_column(
            &batch,
            batch
                .schema()
                .index_of(group)
                .map_err(|e| Error::RunRecord(format!("{name} has no column {group}: {e}")))?,
        )?;
        let mut keys: Vec<&str> = values.iter().flatten().collect();
        keys.sort_unstable();
        keys.dedup();
        let keys_schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new(group, DataType::Utf8, false),
        ]));
        let keys = RecordBatch::try_new(keys_schema, vec![Arc::new(StringArray::from(keys))])
            .map_err(|e| Error::RunRecord(format!("{name}: {e}")))?;
        let ctx = SessionContext::new();
        let source = ctx.read_batch(keys).map_err(query(name))?;
        let (table, _metrics) = table
            .merge(source, qcol("target", group).eq(qcol("source", group)))
            .with_source_alias("source")
            .with_target_alias("target")
            .with_writer_properties(layout::writer_properties())
            .when_matched_delete(|d| d)
            .map_err(delta(name))?
            .await
            .map_err(delta(name))?;
        Self::append_to(name, table, batch).await
    }

    /// Appends a batch to an open table; the version committed.
    async fn append_to(name: &str, table: DeltaTable, batch: RecordBatch) -> Result<i64> {
        let batch = Self::aligned(name, &table, batch)?;
        let table = Self::laid_out(table, vec![batch], SaveMode::Append)
            .await
            .map_err(delta(name))?;
        Self::commit_version(name, &table)
    }

    /// Deletes the rows a predicate matches, then appends a batch: two commits, both
    /// before the run record, so readers never see the state between them.
    async fn delete_then_append(
        name: &str,
        table: DeltaTable,
        predicate: Expr,
        batch: RecordBatch,
    ) -> Result<i64> {
        let (table, _) = table
            .delete()
            .with_predicate(predicate)
            .with_writer_properties(layout::writer_properties())
            .await
            .map_err(delta(name))?;
        Self::append_to(name, table, batch).await
    }

    /// Registers tables at pinned versions in a DataFusion session.
    pub async fn register(
        &self,
        ctx: &SessionContext,
        versions: &BTreeMap<String, i64>,
    ) -> Result<()> {
        // Opened eight at a time: on an object store each open is several round trips
        // (listing and reading the log), and a session opens every table.
        use futures::StreamExt;
        let tasks: Vec<_> = versions
            .iter()
            .map(|(name, version)| {
                let (warehouse, ctx, name, version) =
                    (self.clone(), ctx.clone(), name.clone(), *version);
                async move {
                    let table = warehouse.at_version(&name, version).await?;
                    let provider = warehouse.provider(&ctx, &name, &table).await?;
                    Ok::<_, Error>((name, provider))
                }
            })
            .collect();
        let opened: Vec<Result<(String, Arc<dyn TableProvider>)>> = futures::stream::iter(tasks)
            .buffer_unordered(8)
            .collect()
            .await;
        for item in opened {
            let (name, provider) = item?;
            ctx.register_table(name.as_str(), provider)
                .map_err(query(&name))?;
        }
        Ok(())
    }

    /// Registers one table at a version under another name (`prev_history`, say).
    pub async fn register_as(
        &self,
        ctx: &SessionContext,
        name: &str,
        version: i64,
        alias: &str,
    ) -> Result<()> {
        let table = self.at_version(name, version).await?;
        let provider = self.provider(ctx, name, &table).await?;
        ctx.register_table(alias, provider).map_err(query(name))?;
        Ok(())
    }

    /// A table provider for a loaded version: Delta's, or a listing table over its
    /// files (see [`Warehouse::with_file_tables`]).
    async fn provider(
        &self,
        ctx: &SessionContext,
        name: &str,
        table: &DeltaTable,
    ) -> Result<Arc<dyn TableProvider>> {
        if !self.as_files {
            let state = ctx.state();
            table
                .update_datafusion_session(&state)
                .map_err(delta(name))?;
            // The scan follows the session's Parquet settings (string views or plain
            // strings, filter pushdown) rather than delta-rs's own defaults.
            return table
                .table_provider()
                .with_session(Arc::new(state))
                .await
                .map_err(query(name));
        }
        let schema = table
            .snapshot()
            .map_err(delta(name))?
            .snapshot()
            .arrow_schema();
        let files = table
            .get_file_uris()
            .map_err(delta(name))?
            .map(|uri| ListingTableUrl::parse(&uri))
            .collect::<datafusion::error::Result<Vec<_>>>()
            .map_err(query(name))?;
        if files.is_empty() {
            // A listing table needs a file; an empty version is an empty relation
            // with the table's columns.
            let columns: Vec<Expr> = schema
                .fields()
                .iter()
                .map(|f| {
                    datafusion::logical_expr::cast(
                        datafusion::prelude::lit(datafusion::scalar::ScalarValue::Null),
                        f.data_type().clone(),
                    )
                    .alias(f.name())
                })
                .collect();
            let plan = datafusion::logical_expr::LogicalPlanBuilder::empty(false)
                .project(columns)
                .and_then(|b| b.build())
                .map_err(query(name))?;
            return Ok(datafusion::dataframe::DataFrame::new(ctx.state(), plan).into_view());
        }
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(files)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(
            ListingTable::try_new(config).map_err(query(name))?,
        ))
    }
    /// Registers the run record as the chosen run saw it: the runs committed up to and
    /// including it (the `run` table is append-only, so this is exact).
    pub async fn register_run_record(
        &self,
        ctx: &SessionContext,
        upto: &CommittedRun,
    ) -> Result<()> {
        let Some(table) = self.latest("run").await? else {
            return Ok(());
        };
        let provider = self.provider(ctx, "run", &table).await?;
        let df = ctx.read_table(provider).map_err(query("run"))?;
        let cutoff =
            datafusion::prelude::lit(datafusion::scalar::ScalarValue::TimestampMicrosecond(
                Some(upto.finished_at_micros),
                Some("UTC".into()),
            ));
        let df = df
            .filter(datafusion::prelude::col("finished_at").lt_eq(cutoff))
            .map_err(query("run"))?;
        ctx.register_table("run", df.into_view())
            .map_err(query("run"))?;
        Ok(())
    }

    /// The Delta version of the run record, `None` before the first run. A reader
    /// compares it with the version it pinned to learn, cheaply, whether a run has
    /// committed since (the server does so before every statement).
    pub async fn run_record_version(&self) -> Result<Option<i64>> {
        if self.local_root().is_some() && !self.exists("run").await? {
            return Ok(None);
        }
        // One listing of the log, not a load of the table: this runs before every
        // statement the server answers. In an object store, an empty log is the
        // `InvalidVersion` delta-rs itself reads as "not a table" (`load_with_datetime`).
        let table = deltalake::DeltaTableBuilder::from_url(self.table_url("run")?)
            .and_then(|b| b.build())
            .map_err(delta("run"))?;
        match table.get_latest_version().await {
            Ok(version) => Ok(Some(version as i64)),
            Err(deltalake::DeltaTableError::InvalidVersion(_)) => Ok(None),
            Err(e) => Err(delta("run")(e)),
        }
    }

    /// Whether the run record has a version after `version` (`None`: whether it has
    /// one at all). Delta versions are consecutive, so a run that committed since
    /// wrote the log file of `version + 1`: one existence check, where
    /// [`Self::run_record_version`] lists the whole log. The server asks before every
    /// statement, and the log grows by a file every night.
    pub async fn run_record_advanced(&self, version: Option<i64>) -> Result<bool> {
        let Some(version) = version else {
            return Ok(self.run_record_version().await?.is_some());
        };
        let next = format!("{:020}.json", version + 1);
        if let Some(dir) = self.local_root() {
            let path = dir.join("tables").join("run").join("_delta_log").join(next);
            return match std::fs::metadata(&path) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::RunRecord(format!("{}: {e}", path.display()))),
            };
        }
        let (store, prefix) = self.root_store()?;
        let path = prefix
            .join("tables")
            .join("run")
            .join("_delta_log")
            .join(next.as_str());
        match store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::RunRecord(format!("{path}: {e}"))),
        }
    }

    /// Every committed run, oldest first.
    pub async fn runs(&self) -> Result<Vec<CommittedRun>> {
        let Some(table) = self.latest("run").await? else {
            return Ok(vec![]);
        };
        let ctx = SessionContext::new();
        table
            .update_datafusion_session(&ctx.state())
            .map_err(delta("run"))?;
        let provider = table.table_provider().await.map_err(query("run"))?;
        ctx.register_table("run", provider).map_err(query("run"))?;
        let batches = ctx
            .sql(
                "SELECT run_id, status, table_versions, finished_at FROM run \
                 ORDER BY finished_at, run_id",
            )
            .await
            .map_err(query("run"))?
            .collect()
            .await
            .map_err(query("run"))?;
        let mut out = vec![];
        for b in batches {
            let ids = text_column(&b, 0)?;
            let status = text_column(&b, 1)?;
            let versions = text_column(&b, 2)?;
            let finished = arrow::compute::cast(b.column(3), &DataType::Int64)
                .map_err(|e| Error::RunRecord(format!("finished_at: {e}")))?;
            let finished = finished.as_primitive::<arrow::datatypes::Int64Type>();
            for i in 0..b.num_rows() {
                if ids.is_null(i) || versions.is_null(i) {
                    return Err(Error::RunRecord(
                        "a run row has a null id or versions".into(),
                    ));
                }
                let v: BTreeMap<String, i64> = serde_json::from_str(versions.value(i))
                    .map_err(|e| Error::RunRecord(format!("run {}: {e}", ids.value(i))))?;
                out.push(CommittedRun {
                    run_id: ids.value(i).to_string(),
                    status: status.value(i).to_string(),
                    versions: v,
                    finished_at_micros: finished.value(i),
                });
            }
        }
        Ok(out)
    }

    /// The run a selector chooses, with the versions its readers see.
    pub async fn pinned_versions(&self, selector: &RunSelector) -> Result<Option<CommittedRun>> {
        let runs = self.runs().await?;
        let chosen: Option<CommittedRun> = match selector {
            RunSelector::Latest => runs.into_iter().next_back(),
            RunSelector::Id(id) => runs.into_iter().find(|r| &r.run_id == id),
            RunSelector::Sequence(n) => {
                runs.into_iter().nth(n.saturating_sub(1)).filter(|_| *n > 0)
            }
            RunSelector::AsOf(t) => runs.into_iter().rev().find(|r| r.finished_at_micros <= *t),
        };
        Ok(chosen)
    }
}

/// A text column of a query result as `Utf8`, whatever string type the scan produced
/// (Delta scans yield `Utf8View`).
pub fn text_column(batch: &RecordBatch, i: usize) -> Result<StringArray> {
    let cast = arrow::compute::cast(batch.column(i), &DataType::Utf8)
        .map_err(|e| Error::RunRecord(format!("column {i} is not text: {e}")))?;
    Ok(cast.as_string::<i32>().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};

    fn batch(columns: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(*c, DataType::Int64, true))
                .collect::<Vec<_>>(),
        ));
        let arrays = columns
            .iter()
            .map(|_| Arc::new(Int64Array::from(vec![1, 2])) as arrow::array::ArrayRef)
            .collect();
        RecordBatch::try_new(schema, arrays).expect("batch")
    }

    /// A table replaced whole (a mart, a reference table) takes the columns of the
    /// release that writes it: a release that adds a column runs on a warehouse an
    /// older one made, and the older version keeps its own schema.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replaced_table_takes_a_new_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wh = Warehouse::open(dir.path().to_str().expect("utf-8")).expect("open");
        let v0 = wh
            .overwrite("city_year", batch(&["year", "towns_total"]))
            .await
            .expect("v0");
        let v1 = wh
            .overwrite("city_year", batch(&["year", "towns_total", "towns_city"]))
            .await
            .expect("a new column");
        let fields = |t: &DeltaTable| -> Vec<String> {
            t.snapshot()
                .expect("snapshot")
                .snapshot()
                .arrow_schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        };
        assert_eq!(
            fields(&wh.at_version("city_year", v1).await.expect("v1")).len(),
            3
        );
        assert_eq!(
            fields(&wh.at_version("city_year", v0).await.expect("v0")),
            vec!["year", "towns_total"]
        );
    }

    /// The one file of a table's latest version: the rows of each row group, and the
    /// values of a text column in file order.
    async fn only_file(wh: &Warehouse, name: &str, column: &str) -> (Vec<i64>, Vec<String>) {
        let table = wh.latest(name).await.expect("read").expect("table");
        let mut out = vec![];
        for uri in table.get_file_uris().expect("files") {
            let path = Url::parse(&uri)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .unwrap_or_else(|| std::path::PathBuf::from(&uri));
            let file = std::fs::File::open(path).expect("file");
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .expect("parquet");
            let groups = reader
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            let mut values = vec![];
            for b in reader.build().expect("reader") {
                let b = b.expect("batch");
                let i = b.schema().index_of(column).expect("column");
                let c = arrow::compute::cast(b.column(i), &DataType::Utf8).expect("text");
                values.extend(
                    c.as_string::<i32>()
                        .iter()
                        .map(|v| v.unwrap_or("").to_string()),
                );
            }
            out.push((groups, values));
        }
        assert_eq!(out.len(), 1, "{name} is not one file");
        out.remove(0)
    }

    /// A table is written in row groups of `ROW_GROUP_ROWS` rows; a mart keeps the
    /// order of its batches, and `maintain_table` with a cluster column rewrites a
    /// source table in that column's order, every row kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tables_are_written_in_order_in_small_row_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wh = Warehouse::open(dir.path().to_str().expect("utf-8")).expect("open");
        let n = 300_000usize;
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("uscc", DataType::Utf8, false),
            arrow::datatypes::Field::new("year", DataType::Int64, false),
        ]));
        // Keys in batches of `size` rows, year 2024.
        let batches_of = |keys: &[String], size: usize| -> Vec<RecordBatch> {
            keys.chunks(size)
                .map(|chunk| {
                    RecordBatch::try_new(
                        schema.clone(),
                        vec![
                            Arc::new(StringArray::from(chunk.to_vec())),
                            Arc::new(Int64Array::from(vec![2024; chunk.len()])),
                        ],
                    )
                    .expect("batch")
                })
                .collect()
        };
        // Keys in a scrambled order, in several batches (as files arrive).
        let keys: Vec<String> = (0..n).map(|i| format!("K{:07}", (i * 7919) % n)).collect();
        let batches = batches_of(&keys, 40_000);
        let all = arrow::compute::concat_batches(&schema, &batches).expect("concat");
        let key = ["uscc".to_string(), "year".to_string()];
        wh.merge("source_like", all, &key).await.expect("merge");
        let mut sorted = keys.clone();
        sorted.sort();
        let groups = vec![131_072, 131_072, 37_856];
        let (rows, values) = only_file(&wh, "source_like", "uscc").await;
        assert_eq!(rows, groups);
        assert!(values == keys, "the rows are not in arrival order");

        // Maintenance clusters it by its first key column.
        let done = wh
            .maintain_table("source_like", &[], Some("uscc"))
            .await
            .expect("maintain")
            .expect("a table");
        assert_eq!((done.0, done.1), (1, 1));
        let (rows, values) = only_file(&wh, "source_like", "uscc").await;
        assert_eq!(rows, groups);
        assert!(
            values == sorted,
            "maintain did not put the rows in key order"
        );
        // Nothing changed since: the next maintenance rewrites nothing.
        let again = wh
            .maintain_table("source_like", &[], Some("uscc"))
            .await
            .expect("maintain")
            .expect("a table");
        assert_eq!((again.0, again.1), (0, 0));

        // A mart: batches already in order, many of them; the file keeps that order.
        let in_order = batches_of(&sorted, 10_000);
        let rows = RowStream {
            schema: in_order[0].schema(),
            rows: n,
            open: Arc::new(move || Box::new(in_order.clone().into_iter().map(Ok))),
        };
        wh.overwrite_stream("mart_like", rows)
            .await
            .expect("overwrite");
        let (rows, values) = only_file(&wh, "mart_like", "uscc").await;
        assert_eq!(rows, groups);
        assert!(values == sorted, "the mart is not in its batches' order");
    }
}
