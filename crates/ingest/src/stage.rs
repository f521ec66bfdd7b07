//! The run's staged rows: each file's valid rows go to a Parquet file of the run's
//! staging folder as they are read, in batches of [`crate::ingest`]'s chunk size, so
//! the memory a run needs does not grow with its rows. What de-duplication decides
//! afterwards (which rows are kept) is a mask per staged file, applied as the rows are
//! read back for the commit: nothing is rewritten.
//!
//! Rows come back in the order they were read: staged files in the order the kind's
//! files were read (path order), rows in file order. That is the order the committed
//! table gets, as when the rows were held in memory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// Rows are read back in batches of this many.
const READ_BATCH_ROWS: usize = 16_384;

fn stage_error(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Stage {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    }
}

/// Writes one file's valid rows to its staged Parquet file, batch by batch.
pub(crate) struct StageWriter {
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: usize,
}

impl StageWriter {
    /// A writer of `path`; the file is created with the first batch.
    pub(crate) fn new(path: PathBuf) -> StageWriter {
        StageWriter {
            path,
            writer: None,
            rows: 0,
        }
    }

    /// Appends a batch; its rows are on disk (or in the writer's current row group)
    /// when this returns.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.writer.is_none() {
            let file =
                File::create(&self.path).map_err(|e| stage_error(&self.path, "creating", e))?;
            // Plain encoding without compression: the file lives for one run and is
            // read once; dictionaries still shrink the lineage columns (one source file,
            // one run id) to almost nothing.
            let props = WriterProperties::builder()
                .set_max_row_group_row_count(Some(READ_BATCH_ROWS * 8))
                .build();
            self.writer = Some(
                ArrowWriter::try_new(file, batch.schema(), Some(props))
                    .map_err(|e| stage_error(&self.path, "starting", e))?,
            );
        }
        if let Some(w) = self.writer.as_mut() {
            w.write(batch)
                .map_err(|e| stage_error(&self.path, "writing", e))?;
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Closes the file: its staged rows (none when no batch was written).
    pub(crate) fn finish(self) -> Result<Option<(PathBuf, usize)>> {
        match self.writer {
            None => Ok(None),
            Some(w) => {
                w.close()
                    .map_err(|e| stage_error(&self.path, "closing", e))?;
                Ok(Some((self.path, self.rows)))
            }
        }
    }

    /// Leaves nothing behind (a file rejected part way through).
    pub(crate) fn discard(self) {
        let path = self.path.clone();
        drop(self.writer);
        let _ = std::fs::remove_file(path);
    }
}

/// One staged file and which of its rows are kept.
#[derive(Debug)]
struct Part {
    path: PathBuf,
    keep: Vec<bool>,
}

/// A table's kept rows, staged on disk: the committed table reads them as a stream.
#[derive(Debug, Clone)]
pub struct StagedRows {
    table: String,
    schema: SchemaRef,
    parts: Arc<Vec<Part>>,
    rows: usize,
}

impl StagedRows {
    /// Staged files with their keep masks (one entry per staged row), in reading order.
    pub(crate) fn new(
        table: &str,
        schema: SchemaRef,
        parts: Vec<(PathBuf, Vec<bool>)>,
    ) -> StagedRows {
        let rows = parts
            .iter()
            .map(|(_, keep)| keep.iter().filter(|k| **k).count())
            .sum();
        StagedRows {
            table: table.to_string(),
            schema,
            parts: Arc::new(
                parts
                    .into_iter()
                    .map(|(path, keep)| Part { path, keep })
                    .collect(),
            ),
            rows,
        }
    }

    /// The table's schema (lineage columns included).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// How many rows are kept.
    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// The kept rows, batch by batch, in reading order. Each call reads the staged
    /// files again from the start.
    pub fn batches(&self) -> impl Iterator<Item = Result<RecordBatch>> + Send + 'static {
        let staged = self.clone();
        (0..staged.parts.len()).flat_map(move |i| PartReader::open(&staged, i))
    }

    /// Every kept row in one batch (tests, small tables).
    pub fn collect(&self) -> Result<RecordBatch> {
        let batches = self.batches().collect::<Result<Vec<_>>>()?;
        arrow::compute::concat_batches(&self.schema, &batches).map_err(|source| Error::Arrow {
            table: self.table.clone(),
            source,
        })
    }
}

/// Reads one staged file, applying its mask.
struct PartReader {
    staged: StagedRows,
    part: usize,
    reader: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    /// Rows of the part read so far (the mask's offset).
    offset: usize,
    failed: bool,
}

impl PartReader {
    fn open(staged: &StagedRows, part: usize) -> PartReader {
        PartReader {
            staged: staged.clone(),
            part,
            reader: None,
            offset: 0,
            failed: false,
        }
    }

    fn start(&mut self) -> Result<()> {
        let path = &self.staged.parts[self.part].path;
        let file = File::open(path).map_err(|e| stage_error(path, "opening", e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| stage_error(path, "reading", e))?
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .map_err(|e| stage_error(path, "reading", e))?;
        self.reader = Some(reader);
        Ok(())
    }

    fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        if self.reader.is_none()
            && let Err(e) = self.start()
        {
            return Some(Err(e));
        }
        let part = &self.staged.parts[self.part];
        loop {
            let batch = match self.reader.as_mut()?.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(stage_error(&part.path, "reading", e))),
            };
            let (start, end) = (self.offset, self.offset + batch.num_rows());
            self.offset = end;
            let Some(keep) = part.keep.get(start..end) else {
                return Some(Err(stage_error(
                    &part.path,
                    "reading",
                    format!("{end} rows staged, {} expected", part.keep.len()),
                )));
            };
            // The schema the rows were built with (the Parquet round trip keeps the
            // types; this keeps the field metadata, the labels, exactly as well).
            let batch =
                match RecordBatch::try_new(self.staged.schema.clone(), batch.columns().to_vec()) {
                    Ok(b) => b,
                    Err(source) => {
                        return Some(Err(Error::Arrow {
                            table: self.staged.table.clone(),
                            source,
                        }));
                    }
                };
            if keep.iter().all(|k| *k) {
                return Some(Ok(batch));
            }
            if !keep.iter().any(|k| *k) {
                continue;
            }
            let mask = BooleanArray::from(keep.to_vec());
            return Some(
                arrow::compute::filter_record_batch(&batch, &mask).map_err(|source| Error::Arrow {
                    table: self.staged.table.clone(),
                    source,
                }),
            );
        }
    }
}

impl Iterator for PartReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.next_batch();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        if item.is_none() {
            // Every staged row must have been read: a shorter file is an error.
            let part = &self.staged.parts[self.part];
            if self.reader.is_some() && self.offset != part.keep.len() {
                self.failed = true;
                return Some(Err(stage_error(
                    &part.path,
                    "reading",
                    format!("{} rows staged, {} expected", self.offset, part.keep.len()),
                )));
            }
        }
        item
    }
}
