//! A local build's scratch files: step results written as Arrow IPC files (the
//! batches as they are in memory, no encoding) and read back as a table.
//!
//! DataFusion's own `ArrowFormat` is not used for reading: a scan that splits a file
//! into byte ranges reads all the record batches of a range with one call, and every
//! array then points into that one large buffer. DataFusion counts an array's memory
//! by the buffers it points into, so a hash join over such batches counted hundreds of
//! megabytes per batch and the mart build ran out of its pool (bench/RESULTS.md).
//! Here each partition reads its own run of batches one at a time, decodes only the
//! columns the query projects, and copies them out of the batch's block, so a batch
//! holds exactly its projected columns.
//!
//! A batch's block is mapped into memory, not read: Arrow's own reader reads the
//! whole block (every column) into a buffer, and the steps after `int_entity_year`
//! read two or three of its 35 columns, each time through all of its 980 MB at
//! scale 100. Mapped, only the pages of the projected columns are touched, and they
//! are copied once, from the page cache. The mapping ends when the copy is made, so
//! the process's resident memory does not count the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, MutableArrayData, make_array};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::ipc::Block;
use arrow::ipc::convert::fb_to_schema;
use arrow::ipc::reader::{FileDecoder, FileReader, read_footer_length};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
    SendableRecordBatchStream,
};

/// The file extension of a scratch file.
pub(crate) const EXTENSION: &str = ".arrow";

/// A writer of a scratch file.
pub(crate) type Writer = arrow::ipc::writer::FileWriter<std::io::BufWriter<std::fs::File>>;

/// Creates a scratch file for batches of `schema`.
pub(crate) fn create(path: &Path, schema: &SchemaRef) -> std::io::Result<Writer> {
    let file = std::fs::File::create(path)?;
    Writer::try_new(std::io::BufWriter::new(file), schema).map_err(std::io::Error::other)
}

/// Opens a scratch file for reading its batches in order: the columns of
/// `projection`, or all of them.
#[allow(unsafe_code)]
pub(crate) fn open(
    path: &Path,
    projection: Option<Vec<usize>>,
) -> std::io::Result<FileReader<std::io::BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path)?;
    let reader = FileReader::try_new(std::io::BufReader::new(file), projection)
        .map_err(std::io::Error::other)?;
    // SAFETY: see `TRUSTED`.
    Ok(unsafe { reader.with_skip_validation(TRUSTED) })
}

/// Whether a scratch file's arrays are taken as written, not validated again (every
/// string checked for UTF-8, every offset against its buffer) each time a step reads
/// them. Arrow allows it for "IPC files written by the same process": a scratch file
/// is written by this process, whole, from arrays that were valid, in the run's own
/// scratch directory, before any step reads it, and removed after its last reader —
/// the same assumption its mapping (`map`) already makes. The pipeline creates that
/// directory itself, owner-only, and fails a run whose directory already exists, so
/// no other user can have made it or written into it.
const TRUSTED: bool = true;

/// A scratch file as a table: the next steps and the marts' tests read it.
#[derive(Debug)]
pub(crate) struct ScratchTable {
    path: PathBuf,
    schema: SchemaRef,
    rows: usize,
}

impl ScratchTable {
    /// The table of a scratch file of `rows` rows.
    pub(crate) fn new(path: PathBuf, schema: SchemaRef, rows: usize) -> ScratchTable {
        ScratchTable { path, schema, rows }
    }

    /// The statistics of a scan of some columns: the exact row count, and their
    /// size estimated from the file's (fixed-width columns by their width, the rest
    /// sharing what is left). DataFusion chooses a join's build side and whether to
    /// partition it by these, as it did with the Parquet files' statistics: without
    /// them it kept the SQL's order and built a hash table of a gigabyte.
    fn statistics(&self, columns: &[usize], file_bytes: usize) -> Statistics {
        let width = |i: usize| -> Option<usize> {
            let t = self.schema.field(i).data_type();
            match t {
                DataType::Boolean => Some(1),
                _ => t.primitive_width(),
            }
        };
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let fixed: usize = all.iter().filter_map(|&i| width(i)).sum::<usize>() * self.rows;
        let variable = all.iter().filter(|&&i| width(i).is_none()).count().max(1);
        let per_variable = file_bytes.saturating_sub(fixed) / variable;
        let bytes: usize = columns
            .iter()
            .map(|&i| width(i).map_or(per_variable, |w| w * self.rows))
            .sum();
        let projected = self
            .schema
            .project(columns)
            .unwrap_or_else(|_| (*self.schema).clone());
        Statistics {
            num_rows: Precision::Exact(self.rows),
            total_byte_size: Precision::Inexact(bytes),
            column_statistics: Statistics::unknown_column(&projected),
        }
    }
}

#[async_trait::async_trait]
impl TableProvider for ScratchTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&columns)?);
        let batches = Mapped::open(&self.path, vec![])
            .map_err(|e| io_error(&self.path, e))?
            .blocks
            .len();
        let file_bytes = std::fs::metadata(&self.path)
            .map_err(|e| io_error(&self.path, e))?
            .len() as usize;
        let mut statistics = self.statistics(&columns, file_bytes);
        if let Some(limit) = limit {
            // Each part stops at the limit: the scan yields at most that many per part.
            statistics.num_rows = Precision::Inexact(self.rows.min(limit));
        }
        let statistics = Arc::new(statistics);
        // Contiguous runs of batches, one per partition.
        let partitions = state.config().target_partitions().clamp(1, batches.max(1));
        let streams: Vec<Arc<dyn PartitionStream>> = (0..partitions)
            .map(|p| {
                Arc::new(Part {
                    path: self.path.clone(),
                    schema: schema.clone(),
                    columns: columns.clone(),
                    batches: (batches * p / partitions)..(batches * (p + 1) / partitions),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        let scan = StreamingTableExec::try_new(schema, streams, None, vec![], false, limit)?;
        Ok(Arc::new(ScratchExec {
            scan: Arc::new(scan),
            statistics,
        }))
    }
}

/// The scan of a scratch file: DataFusion's streaming table scan over the parts,
/// with the file's statistics (a streaming scan reports none).
#[derive(Debug)]
struct ScratchExec {
    scan: Arc<dyn ExecutionPlan>,
    statistics: Arc<Statistics>,
}

impl DisplayAs for ScratchExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScratchExec: rows={:?}, ", self.statistics.num_rows)?;
        self.scan.fmt_as(t, f)
    }
}

impl ExecutionPlan for ScratchExec {
    fn name(&self) -> &str {
        "ScratchExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.scan.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "a scratch scan has no inputs".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.scan.execute(partition, ctx)
    }

    fn partition_statistics(&self, partition: Option<usize>) -> DfResult<Arc<Statistics>> {
        Ok(match partition {
            None => self.statistics.clone(),
            // A part's share, not exact: parts are runs of whole batches.
            Some(_) => {
                let parts = self.properties().partitioning.partition_count().max(1);
                let mut part = (*self.statistics).clone();
                part.num_rows = part.num_rows.map(|n| n / parts).to_inexact();
                part.total_byte_size = part.total_byte_size.map(|n| n / parts).to_inexact();
                Arc::new(part)
            }
        })
    }
}

/// One partition of a scan: a run of the file's batches, the projected columns.
struct Part {
    path: PathBuf,
    schema: SchemaRef,
    columns: Vec<usize>,
    batches: std::ops::Range<usize>,
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} batches {:?}", self.path.display(), self.batches)
    }
}

impl PartitionStream for Part {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (path, schema) = (self.path.clone(), self.schema.clone());
        let rows = read_part(&path, &schema, &self.columns, self.batches.clone());
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(rows),
        ))
    }
}

/// The batches of a run, read one at a time as the stream is polled.
fn read_part(
    path: &Path,
    schema: &SchemaRef,
    columns: &[usize],
    batches: std::ops::Range<usize>,
) -> Box<dyn Iterator<Item = DfResult<RecordBatch>> + Send> {
    // No column asked for (a count): the first column is read for the row counts.
    let read: Vec<usize> = if columns.is_empty() {
        vec![0]
    } else {
        columns.to_vec()
    };
    let file = match Mapped::open(path, read) {
        Ok(f) => f,
        Err(e) => return Box::new(std::iter::once(Err(io_error(path, e)))),
    };
    if batches.end > file.blocks.len() {
        let e = std::io::Error::other(format!(
            "batches {batches:?} asked of a file of {}",
            file.blocks.len()
        ));
        return Box::new(std::iter::once(Err(io_error(path, e))));
    }
    let (schema, keep, path) = (schema.clone(), !columns.is_empty(), path.to_path_buf());
    Box::new(batches.map(move |i| {
        let batch = file.batch(i).map_err(|e| io_error(&path, e))?;
        let arrays: Vec<ArrayRef> = if keep {
            batch.columns().iter().map(owned).collect::<DfResult<_>>()?
        } else {
            vec![]
        };
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            arrays,
            &options,
        )?)
    }))
}

/// A scratch file opened for decoding some of its columns, batch by batch: its
/// footer's list of record batches, and a decoder that reads only the projected
/// columns of a batch.
struct Mapped {
    file: std::fs::File,
    /// The file's length when opened.
    size: u64,
    blocks: Vec<Block>,
    decoder: FileDecoder,
}

impl Mapped {
    /// Reads the footer of the file at `path` (as Arrow's `FileReader` does).
    fn open(path: &Path, projection: Vec<usize>) -> std::io::Result<Mapped> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(path)?;
        let size = file.metadata()?.len();
        let mut tail = [0u8; 10];
        file.seek(SeekFrom::End(-10))?;
        file.read_exact(&mut tail)?;
        let length = read_footer_length(tail).map_err(std::io::Error::other)?;
        let mut footer = vec![0u8; length];
        file.seek(SeekFrom::End(-10 - length as i64))?;
        file.read_exact(&mut footer)?;
        let footer = arrow::ipc::root_as_footer(&footer)
            .map_err(|e| std::io::Error::other(format!("footer: {e}")))?;
        let schema = footer
            .schema()
            .ok_or_else(|| std::io::Error::other("footer without a schema"))?;
        let blocks: Vec<Block> = footer
            .recordBatches()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default();
        let decoder = FileDecoder::new(Arc::new(fb_to_schema(schema)), footer.version())
            .with_projection(projection);
        // SAFETY: see `TRUSTED`.
        #[allow(unsafe_code)]
        let mut decoder = unsafe { decoder.with_skip_validation(TRUSTED) };
        for block in footer.dictionaries().iter().flatten() {
            let buffer = map(&file, size, block)?;
            decoder
                .read_dictionary(block, &buffer)
                .map_err(std::io::Error::other)?;
        }
        Ok(Mapped {
            file,
            size,
            blocks,
            decoder,
        })
    }

    /// Record batch `i`, its projected columns pointing into the mapped block (which
    /// stays mapped as long as they do).
    fn batch(&self, i: usize) -> std::io::Result<RecordBatch> {
        let block = &self.blocks[i];
        let buffer = map(&self.file, self.size, block)?;
        self.decoder
            .read_record_batch(block, &buffer)
            .map_err(std::io::Error::other)?
            .ok_or_else(|| std::io::Error::other(format!("block {i} holds no record batch")))
    }
}

/// A block of a file of `size` bytes (its message and body) mapped into memory, as a
/// buffer that owns the mapping. A block that reaches past the end of the file is an
/// error: reading a mapped page beyond it would kill the process (`SIGBUS`).
#[allow(unsafe_code)]
fn map(file: &std::fs::File, size: u64, block: &Block) -> std::io::Result<Buffer> {
    let (offset, length) = (
        u64::try_from(block.offset()).map_err(std::io::Error::other)?,
        usize::try_from(block.metaDataLength()).map_err(std::io::Error::other)?
            + usize::try_from(block.bodyLength()).map_err(std::io::Error::other)?,
    );
    if offset.saturating_add(length as u64) > size || length == 0 {
        return Err(std::io::Error::other(format!(
            "a block of {length} bytes at {offset} in a file of {size}"
        )));
    }
    // SAFETY: a mapping is undefined behaviour if the file changes under it. A scratch
    // file is written whole by the step that made it, in the run's own scratch
    // directory, before any step reads it, and removed only after its last reader.
    let mapping = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(length)
            .map(file)?
    };
    let start = std::ptr::NonNull::new(mapping.as_ptr().cast_mut())
        .ok_or_else(|| std::io::Error::other("an empty mapping"))?;
    // SAFETY: `start` points to `length` readable bytes that live as long as
    // `mapping`, which the buffer owns.
    Ok(unsafe { Buffer::from_custom_allocation(start, length, Arc::new(mapping)) })
}

/// A copy of an array in buffers of its own: a decoded array points into the block
/// its batch was read into, which holds every column of the file.
pub(crate) fn owned(array: &ArrayRef) -> DfResult<ArrayRef> {
    let data = array.to_data();
    let mut copy = MutableArrayData::new(vec![&data], false, data.len());
    copy.try_extend(0, 0, data.len())?;
    Ok(make_array(copy.freeze()))
}

fn io_error(path: &Path, e: std::io::Error) -> DataFusionError {
    DataFusionError::External(format!("scratch {}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Decimal128Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Decimal128Type, Field, Int64Type, Schema};

    fn write(path: &Path, batches: usize, rows: usize) -> SchemaRef {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
            Field::new("d", DataType::Decimal128(20, 2), true),
        ]));
        let mut w = create(path, &schema).expect("create");
        for b in 0..batches {
            let n: Vec<i64> = (0..rows).map(|i| (b * rows + i) as i64).collect();
            let s: Vec<Option<String>> = n
                .iter()
                .map(|v| (v % 7 != 0).then(|| format!("a long enough string {v}")))
                .collect();
            let d = Decimal128Array::from(
                n.iter()
                    .map(|v| Some(*v as i128 * 100 + 1))
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(20, 2)
            .expect("decimal");
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(n)),
                    Arc::new(StringArray::from(s)),
                    Arc::new(d),
                ],
            )
            .expect("batch");
            w.write(&batch).expect("write");
        }
        w.into_inner().expect("finish");
        schema
    }

    #[tokio::test]
    async fn a_scratch_file_reads_back_as_a_table_in_parts_with_only_its_projected_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.arrow");
        let (batches, rows) = (9, 1000);
        let schema = write(&path, batches, rows);
        let total = (batches * rows) as i64;

        // Read in order, every column (the exports and the table writes).
        let read: Vec<i64> = open(&path, None)
            .expect("open")
            .flat_map(|b| {
                b.expect("batch")
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(read, (0..total).collect::<Vec<_>>());

        // As a table, in two partitions: the same rows, counts without columns,
        // filters and limits.
        let ctx = datafusion::prelude::SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_target_partitions(2),
        );
        ctx.register_table(
            "t",
            Arc::new(ScratchTable::new(
                path.clone(),
                schema.clone(),
                total as usize,
            )),
        )
        .expect("register");
        let one = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx
                    .sql(sql)
                    .await
                    .expect("sql")
                    .collect()
                    .await
                    .expect("collect");
                arrow::util::pretty::pretty_format_batches(&batches)
                    .expect("format")
                    .to_string()
            }
        };
        let expected_sum = (0..total).sum::<i64>();
        let expected_nulls = (0..total).filter(|v| v % 7 == 0).count();
        let got =
            one("SELECT count(*) AS rows, sum(n) AS sum, count(s) AS s, max(d) AS d FROM t").await;
        assert!(
            got.contains(&format!(
                "| {total} | {expected_sum} | {} | {}.01 |",
                total as usize - expected_nulls,
                total - 1
            )),
            "{got}"
        );
        let got = one("SELECT s FROM t WHERE n = 4321").await;
        assert!(got.contains("| a long enough string 4321 |"), "{got}");
        let got = one("SELECT count(*) AS c FROM (SELECT n FROM t LIMIT 5)").await;
        assert!(got.contains("| 5 |"), "{got}");

        // A partition's batches hold only the projected column, in buffers of its
        // own: not the block of all three columns it was read from.
        let parts = read_part(
            &path,
            &Arc::new(schema.project(&[0]).expect("project")),
            &[0],
            3..5,
        );
        let parts: Vec<RecordBatch> = parts.map(|b| b.expect("batch")).collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].column(0).as_primitive::<Int64Type>().value(0),
            (3 * rows) as i64
        );
        for b in &parts {
            assert_eq!(b.num_columns(), 1);
            assert!(
                b.column(0).get_array_memory_size() < rows * 8 + 1024,
                "{} bytes for {rows} integers",
                b.column(0).get_array_memory_size()
            );
        }
        // The decimal column alone, mapped block by block: every value, in order.
        let decimals: Vec<i128> = read_part(
            &path,
            &Arc::new(schema.project(&[2]).expect("project")),
            &[2],
            0..batches,
        )
        .flat_map(|b| {
            b.expect("batch")
                .column(0)
                .as_primitive::<Decimal128Type>()
                .values()
                .to_vec()
        })
        .collect();
        assert_eq!(
            decimals,
            (0..total).map(|v| v as i128 * 100 + 1).collect::<Vec<_>>()
        );
        // No column (a count): the row counts alone.
        let empty = Arc::new(schema.project(&[]).expect("project"));
        let counted: usize = read_part(&path, &empty, &[], 0..batches)
            .map(|b| b.expect("batch").num_rows())
            .sum();
        assert_eq!(counted, total as usize);
        // A file cut short (no footer) is an error that names it.
        let cut = dir.path().join("cut.arrow");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let err = read_part(&cut, &empty, &[], 0..1)
            .next()
            .expect("an item")
            .expect_err("cut short");
        assert!(err.to_string().contains("cut.arrow"), "{err}");
        // A footer that names a block past the end of the file is an error, not a
        // mapped page beyond it: the last batch's block, the file cut after it and a
        // footer copied back on.
        let (footer_at, last) = {
            let m = Mapped::open(&path, vec![0]).expect("open");
            let b = m.blocks[batches - 1];
            (
                (b.offset() + i64::from(b.metaDataLength()) + b.bodyLength()) as usize,
                b,
            )
        };
        let short = dir.path().join("short.arrow");
        let mut cut_bytes = bytes[..last.offset() as usize + 8].to_vec();
        cut_bytes.extend_from_slice(&bytes[footer_at..]);
        std::fs::write(&short, &cut_bytes).expect("write");
        let err = read_part(&short, &empty, &[], batches - 1..batches)
            .next()
            .expect("an item")
            .expect_err("past the end");
        assert!(err.to_string().contains("short.arrow"), "{err}");
        assert!(err.to_string().contains("in a file of"), "{err}");
        // A missing file is an error that names it.
        let err = read_part(&dir.path().join("gone.arrow"), &empty, &[], 0..1)
            .next()
            .expect("an item")
            .expect_err("no file");
        assert!(err.to_string().contains("gone.arrow"), "{err}");
    }
}
