//! One ingest run over a pipeline's files: kinds in dependency order (the registry
//! first), files in path order, every row validated, exact duplicates dropped from the
//! later copy, conflicting duplicates all quarantined, and per file
//! `rows_read = rows_loaded + rows_duplicate + rows_quarantined`.
//!
//! A file that cannot be read at all (encoding, corrupt workbook, missing required
//! column, malformed line, a quote never closed, a second header row, a limit of the
//! readers passed, a file changed while read, even a panic in a reader) is rejected
//! whole: none of its rows are kept, it reports 0 rows read, and the run goes on with
//! the other files. Every path a source's globs match is listed, the ones that are not
//! readable files (directories, FIFOs, symlink loops) as rejected with the reason.
//!
//! Each file is read from disk once ([`read::read_input`]); its content hash, the check
//! against files already loaded, and the parse all use those bytes. An NDJSON file in
//! UTF-8 is the exception: it is hashed as it is read, not kept, and parsed from disk
//! line by line, each pass checking that the bytes are the ones hashed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use townstat_domain::division::Divisions;
use townstat_domain::enums::AliasTables;
use townstat_domain::industry::Industries;
use townstat_domain::number::Unit;
use townstat_domain::schema::{self, RuleSet, TableSchema};
use townstat_domain::town::TownIndex;
use townstat_domain::{Rejection, Warning};

use crate::arrow_out::{self, Lineage, catalog_batch, ints, strings, text_list};
use crate::cell::Cell;
use crate::error::{Error, FileRejection, Result};
use crate::header::{self, AliasIndex, ColumnMap};
use crate::pipeline::{Format, Matched, Pipeline, Source, escaped};
use crate::read::{self, Opened, RawRecord};
use crate::registry::Registry;
use crate::stage::{StageWriter, StagedRows};
use crate::validate::{Applicant, Rules, Value, validate_row};

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Read; its good rows are in the output.
    Loaded,
    /// Already ingested by an earlier run with the same content.
    Skipped,
    /// Could not be read at all.
    Rejected,
}

impl FileStatus {
    /// The value stored in `ingest_run.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Loaded => "loaded",
            FileStatus::Skipped => "skipped",
            FileStatus::Rejected => "rejected",
        }
    }
}

/// The account of one source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file as the run names it.
    pub source_file: String,
    /// The record kind.
    pub kind: String,
    /// SHA-256 of the file's bytes, hex.
    pub content_hash: String,
    /// Rows read (records after the header that are not blank).
    pub rows_read: i64,
    /// Rows that reach the warehouse.
    pub rows_loaded: i64,
    /// Exact duplicates dropped.
    pub rows_duplicate: i64,
    /// Rows sent to quarantine.
    pub rows_quarantined: i64,
    /// Loaded, skipped or rejected.
    pub status: FileStatus,
    /// Why the file was rejected or skipped.
    pub message: Option<String>,
}

/// A quarantined row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRow {
    /// Source file.
    pub source_file: String,
    /// Row number as a person counts it in that file.
    pub row_number: i64,
    /// Record kind.
    pub kind: String,
    /// The original cells as a JSON object keyed by header.
    pub raw: String,
    /// Distinct reason codes, in the order found.
    pub reasons: Vec<String>,
    /// One message per reason.
    pub messages: Vec<String>,
}

/// A loaded row's warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningRow {
    /// Source file.
    pub source_file: String,
    /// Row number.
    pub row_number: i64,
    /// Record kind.
    pub kind: String,
    /// Distinct warning codes.
    pub warnings: Vec<String>,
    /// One message per warning.
    pub messages: Vec<String>,
}

/// A table's rows to commit.
#[derive(Debug, Clone)]
pub enum TableRows {
    /// Held in memory: the registry (later steps of the run read it), the patent
    /// applicants, a kind without rows.
    Memory(RecordBatch),
    /// Staged on disk, read as a stream by the commit.
    Staged(StagedRows),
}

impl TableRows {
    /// How many rows.
    pub fn num_rows(&self) -> usize {
        match self {
            TableRows::Memory(b) => b.num_rows(),
            TableRows::Staged(s) => s.num_rows(),
        }
    }

    /// Every row in one batch.
    pub fn collect(&self) -> Result<RecordBatch> {
        match self {
            TableRows::Memory(b) => Ok(b.clone()),
            TableRows::Staged(s) => s.collect(),
        }
    }
}

/// Everything an ingest run produced, ready to commit.
#[derive(Debug)]
pub struct IngestOutput {
    /// Rows to merge, per table (source kinds and `patent_applicant`).
    pub tables: BTreeMap<String, TableRows>,
    /// Quarantined rows.
    pub quarantine: Vec<QuarantineRow>,
    /// Warnings of loaded rows.
    pub warnings: Vec<WarningRow>,
    /// One report per file, in the order read.
    pub files: Vec<FileReport>,
    /// The registry after this run's enterprise files (for later steps).
    pub registry: Registry,
}

/// Options of an ingest run.
pub struct IngestOptions<'a> {
    /// The run's id, stored in lineage columns.
    pub run_id: &'a str,
    /// The run date.
    pub as_of: NaiveDate,
    /// Content hashes already loaded by earlier runs (such files are skipped).
    pub already_loaded: &'a (dyn Fn(&str) -> bool + Sync),
    /// Told the name of each file as its reading starts (progress display).
    pub on_file: &'a (dyn Fn(&str) + Sync),
    /// The run's town registry, for `town` columns (the registry the run checked and
    /// publishes, not a second read of the file).
    pub towns: &'a TownIndex,
    /// An existing folder for the run's staged rows (one Parquet file per file read);
    /// the caller removes it after the commit.
    pub stage: &'a Path,
}

/// A file read (in parallel with the other files of its kind), waiting to be counted
/// and de-duplicated in path order.
enum Prepared {
    Skipped,
    Rejected(String),
    Read(Vec<String>, FileRows),
    /// Building the file's Arrow batches failed: a bug, since values were validated.
    Broken(Error),
}

/// Valid rows are turned into Arrow batches of this many rows as they are read, so a
/// run holds its rows as compact columns rather than as one value object per cell.
const CHUNK_ROWS: usize = 16_384;

/// A file's rows after reading: the valid ones staged on disk as Arrow batches
/// (lineage included, in row order), what de-duplication needs of each, and the
/// rejected ones.
#[derive(Default)]
struct FileRows {
    /// The staged file and its row count (none when no row is valid).
    staged: Option<(PathBuf, usize)>,
    valid: Vec<RowMeta>,
    /// Per valid row: digests of its key and of its whole content.
    fingerprints: Vec<(u128, [u8; 16])>,
    rejected: Vec<(u64, Vec<Rejection>, String)>,
}

/// What is kept of a valid row besides its values (which are in the batches): 16
/// bytes, plus warnings and applicants for the rows that have any.
struct RowMeta {
    row_number: u64,
    extra: Option<Box<Extra>>,
}

struct Extra {
    warnings: Vec<(Warning, String)>,
    applicants: Vec<Applicant>,
    /// The patent's application number, when it has applicants.
    application_no: Option<String>,
}

impl RowMeta {
    fn warnings(&self) -> &[(Warning, String)] {
        self.extra.as_ref().map_or(&[], |e| e.warnings.as_slice())
    }

    fn applicants(&self) -> &[Applicant] {
        self.extra.as_ref().map_or(&[], |e| e.applicants.as_slice())
    }
}

/// Why reading a file stopped.
enum ReadError {
    /// The file is rejected whole; the run goes on.
    File(FileRejection),
    /// An internal error (building Arrow arrays).
    Build(Error),
}

impl From<FileRejection> for ReadError {
    fn from(e: FileRejection) -> Self {
        ReadError::File(e)
    }
}

/// Reads the files of one kind on every core: reading, decoding and validating are
/// independent per file; counting, duplicates and conflicts happen afterwards, in path
/// order, so the result does not depend on which file finished first.
fn prepare_files(
    files: &[&Matched],
    t: &TableSchema,
    rules: &Rules,
    opts: &IngestOptions,
) -> Vec<(String, String, Prepared)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<(String, String, Prepared)>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len())
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(m) = files.get(i) else {
                        break;
                    };
                    let display = display_path(&m.path);
                    (opts.on_file)(&display);
                    let stage = opts.stage.join(format!("{}-{i:05}.parquet", t.name));
                    let (hash, prepared) = prepare_one(m, &display, t, rules, opts, stage);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some((display, hash, prepared));
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// Reads one matched path: once from disk, hashed, skipped if that content is already
/// loaded, else parsed from the same bytes. A panic while parsing (a reader's bug on a
/// hostile file) rejects this file only.
fn prepare_one(
    m: &Matched,
    display: &str,
    t: &TableSchema,
    rules: &Rules,
    opts: &IngestOptions,
    stage: PathBuf,
) -> (String, Prepared) {
    if let Some(problem) = &m.problem {
        return (
            String::new(),
            Prepared::Rejected(format!("{display}: {problem}")),
        );
    }
    let format = m.source.format.or_else(|| Format::from_path(&m.path));
    let (hash, input) = match read::read_input(&m.path, display, format, m.source) {
        Ok(read) => read,
        Err(FileRejection(message)) => return (String::new(), Prepared::Rejected(message)),
    };
    if (opts.already_loaded)(&hash) {
        return (hash, Prepared::Skipped);
    }
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_file(
            input,
            &m.path,
            display,
            m.source,
            t,
            rules,
            opts.run_id,
            stage,
        )
    }));
    let prepared = match read {
        Ok(Err(ReadError::File(FileRejection(message)))) => Prepared::Rejected(message),
        Ok(Err(ReadError::Build(e))) => Prepared::Broken(e),
        Ok(Ok((header, rows))) => Prepared::Read(header, rows),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Prepared::Rejected(format!(
                "{display}: reading the file failed ({why}); the file is left out of this run"
            ))
        }
    };
    (hash, prepared)
}

struct FileState {
    report: FileReport,
    header: Vec<String>,
    /// Where to read a row again (conflicting duplicates), and the content hash the
    /// file had when it was read.
    origin: Option<(PathBuf, Source, String)>,
}

/// Hashes a file's bytes (SHA-256, hex).
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    Ok(read::sha256_hex(&std::fs::read(path)?))
}

/// How the run names a file: relative to the working directory when under it.
pub fn display_path(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|d| std::fs::canonicalize(d).ok());
    match cwd.and_then(|d| abs.strip_prefix(&d).ok().map(Path::to_path_buf)) {
        Some(rel) => escaped(&rel),
        None => escaped(&abs),
    }
}

/// Reads some rows of a file again, by row number, as `raw` JSON; nothing when the
/// file no longer has the content it was read with.
fn reread_rows(state: &FileState, numbers: &[u64]) -> Vec<(u64, String)> {
    let Some((path, source, hash)) = &state.origin else {
        return vec![];
    };
    let Some(format) = source.format.or_else(|| Format::from_path(path)) else {
        return vec![];
    };
    let display = &state.report.source_file;
    let Ok((read_hash, input)) = read::read_input(path, display, Some(format), source) else {
        return vec![];
    };
    if &read_hash != hash {
        return vec![];
    }
    let records: Box<dyn Iterator<Item = std::result::Result<RawRecord, FileRejection>>> =
        // NDJSON rows' raw comes from their lines: no key needs a column.
        match read::open_input(input, path, display, format, source, &|_| false) {
            Ok(Opened::Tabular(r)) => r,
            Ok(Opened::Keyed { records, .. }) => records,
            Err(_) => return vec![],
        };
    let wanted: std::collections::HashSet<u64> = numbers.iter().copied().collect();
    let mut found = vec![];
    for record in records {
        // The file was loaded without a bad line: an error now means its content
        // changed since (an NDJSON file is read again from disk), so nothing of it.
        let Ok(record) = record else {
            return vec![];
        };
        if wanted.contains(&record.row_number) {
            found.push((record.row_number, raw_of(&state.header, &record)));
        }
    }
    found
}

/// The most bytes of a quarantined row's `raw` (64 KiB). A longer one is stored as
/// `{"_truncated": true, "_bytes": N, "_prefix": "<its start>"}`, still JSON and
/// within 64 KiB (N is the full raw's length).
pub const MAX_RAW_BYTES: usize = 64 * 1024;

/// A record's original cells as `raw` JSON: for NDJSON the row's own keys only (not
/// every key of the file), for tables the cells keyed by header; capped in size.
fn raw_of(header: &[String], record: &RawRecord) -> String {
    let raw = match record.line.as_deref().and_then(read::raw_of_line) {
        Some(map) => serde_json::Value::Object(map).to_string(),
        None => raw_json(header, &record.cells),
    };
    cap_raw(raw)
}

fn cap_raw(raw: String) -> String {
    if raw.len() <= MAX_RAW_BYTES {
        return raw;
    }
    // Escaping the prefix as a JSON string makes it longer: shorten until it fits.
    let mut budget = MAX_RAW_BYTES - 64;
    loop {
        let mut end = budget.min(raw.len());
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        let capped =
            serde_json::json!({"_truncated": true, "_bytes": raw.len(), "_prefix": &raw[..end]})
                .to_string();
        if capped.len() <= MAX_RAW_BYTES || end == 0 {
            return capped;
        }
        budget = end.saturating_sub(capped.len() - MAX_RAW_BYTES);
    }
}

/// Renders a record's cells as a JSON object keyed by the header.
fn raw_json(header: &[String], cells: &[Cell]) -> String {
    let mut map = serde_json::Map::new();
    for (i, cell) in cells.iter().enumerate() {
        let mut key = header
            .get(i)
            .filter(|h| !h.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| format!("column {}", i + 1));
        while map.contains_key(&key) {
            key.push('#');
        }
        map.insert(key, cell.to_json());
    }
    serde_json::Value::Object(map).to_string()
}

fn group_messages<C: Copy + PartialEq>(items: &[(C, String)]) -> (Vec<C>, Vec<String>) {
    let mut codes: Vec<C> = vec![];
    let mut messages: Vec<String> = vec![];
    for (code, msg) in items {
        match codes.iter().position(|c| c == code) {
            Some(i) => {
                messages[i].push_str("; ");
                messages[i].push_str(msg);
            }
            None => {
                codes.push(*code);
                messages.push(msg.clone());
            }
        }
    }
    (codes, messages)
}

/// Digests of a row's key (its key columns' canonical text) and of its content. Rows
/// are grouped by key digest: 128 bits of SHA-256, so that two keys sharing a digest
/// is not to be expected in any number of rows a town statistic has; were it to
/// happen, both rows would be quarantined as a conflict, never dropped silently.
fn fingerprint(t: &TableSchema, values: &[Value]) -> (u128, [u8; 16]) {
    let mut k = Sha256::new();
    for name in &t.key {
        if let Some(i) = t.columns.iter().position(|c| &c.name == name) {
            k.update(values[i].canonical_text().as_bytes());
            k.update([0x1f]);
        }
    }
    let mut key_bytes = [0u8; 16];
    key_bytes.copy_from_slice(&k.finalize()[..16]);
    let key = u128::from_le_bytes(key_bytes);
    let mut h = Sha256::new();
    for v in values {
        // A type tag keeps Null apart from empty text.
        let tag: u8 = match v {
            Value::Null => 0,
            _ => 1,
        };
        h.update([tag]);
        h.update(v.canonical_text().as_bytes());
        h.update([0x1f]);
    }
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    (key, out)
}

/// Reads one file: its valid rows into Arrow batches staged at `stage` (with their key
/// and content fingerprint for de-duplication), its rejected rows with their reasons
/// and original cells as JSON; or rejects it whole (and stages nothing). A valid row's
/// original cells are dropped here: they are not needed unless it turns out to
/// conflict, and then it is re-read.
#[allow(clippy::too_many_arguments)]
fn read_file(
    input: read::Input,
    path: &Path,
    display: &str,
    source: &Source,
    t: &TableSchema,
    rules: &Rules,
    run_id: &str,
    stage: PathBuf,
) -> std::result::Result<(Vec<String>, FileRows), ReadError> {
    let format = source
        .format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| {
            FileRejection(format!(
                "{display}: cannot tell the format from the extension; set format in the pipeline"
            ))
        })?;
    // An empty export (nothing but a BOM and white space) says so, rather than that
    // no header was found in it.
    if let Some(len) = input.blank() {
        return Err(FileRejection(format!(
            "{display}: the file is empty ({len} bytes, no header and no rows)"
        ))
        .into());
    }
    let index = AliasIndex::new(t, source);
    // Tables: the header row, its score, and the score from which a row looks like a
    // header too (a second header further down is refused, never read as data).
    let mut header_at: Option<(u64, usize)> = None;
    let (map, records): (
        ColumnMap,
        Box<dyn Iterator<Item = std::result::Result<RawRecord, FileRejection>>>,
    ) = match read::open_input(input, path, display, format, source, &|key| {
        index.lookup(key).is_some()
    })? {
        Opened::Keyed { header, records } => {
            (header::map_header(&header, t, &index, display)?, records)
        }
        Opened::Tabular(mut records) => {
            let mut head: Vec<RawRecord> = vec![];
            for r in records.by_ref() {
                head.push(r?);
                if head.len() >= header::HEADER_SEARCH_ROWS {
                    break;
                }
            }
            let best = head
                .iter()
                .enumerate()
                .map(|(i, r)| (header::header_score(&r.cells, &index), i))
                .max_by_key(|(score, i)| (*score, std::cmp::Reverse(*i)));
            let Some((score, at)) = best.filter(|(score, _)| *score > 0) else {
                return Err(FileRejection(format!(
                    "{display}: no header row in the first {} rows: no cell matches a column of {}",
                    header::HEADER_SEARCH_ROWS,
                    t.name
                ))
                .into());
            };
            header::check_above_header(&head[..at], &head[at], score, &index, display)?;
            header_at = Some((head[at].row_number, score));
            let header_cells: Vec<String> = head[at]
                .cells
                .iter()
                .map(|c| c.text().unwrap_or_default())
                .collect();
            let map = header::map_header(&header_cells, t, &index, display)?;
            let rest: Vec<RawRecord> = head.split_off(at + 1);
            (map, Box::new(rest.into_iter().map(Ok).chain(records)))
        }
    };
    let default_units: Vec<Unit> = t
        .columns
        .iter()
        .map(|c| {
            source
                .units
                .get(&c.name)
                .and_then(|u| Unit::parse(u))
                .unwrap_or(Unit::Yuan)
        })
        .collect();
    let mut out = FileRows::default();
    let mut writer = StageWriter::new(stage);
    let application_no = t.columns.iter().position(|c| c.name == "application_no");
    let read = read_rows(ReadRows {
        records,
        t,
        map: &map,
        default_units: &default_units,
        rules,
        header_at,
        index: &index,
        display,
        run_id,
        application_no,
        writer: &mut writer,
        out: &mut out,
    });
    match read {
        Ok(()) => {
            out.staged = writer.finish().map_err(ReadError::Build)?;
            Ok((map.header, out))
        }
        Err(e) => {
            writer.discard();
            Err(e)
        }
    }
}

/// What [`read_rows`] works with.
struct ReadRows<'a, 'b> {
    records: Box<dyn Iterator<Item = std::result::Result<RawRecord, FileRejection>> + 'b>,
    t: &'a TableSchema,
    map: &'a ColumnMap,
    default_units: &'a [Unit],
    rules: &'a Rules<'a>,
    header_at: Option<(u64, usize)>,
    index: &'a AliasIndex,
    display: &'a str,
    run_id: &'a str,
    application_no: Option<usize>,
    writer: &'a mut StageWriter,
    out: &'a mut FileRows,
}

/// Validates a file's records after its header: valid rows staged in chunks, rejected
/// ones kept with their reasons.
fn read_rows(r: ReadRows) -> std::result::Result<(), ReadError> {
    let ReadRows {
        records,
        t,
        map,
        default_units,
        rules,
        header_at,
        index,
        display,
        run_id,
        application_no,
        writer,
        out,
    } = r;
    let mut chunk: Vec<(u64, Vec<Value>)> = Vec::with_capacity(CHUNK_ROWS);
    let mut flush = |chunk: &mut Vec<(u64, Vec<Value>)>| {
        if chunk.is_empty() {
            return Ok(());
        }
        let values: Vec<&[Value]> = chunk.iter().map(|(_, v)| v.as_slice()).collect();
        let lineage = Lineage {
            run_id,
            rows: chunk.iter().map(|(n, _)| (display, *n as i64)).collect(),
        };
        let batch = arrow_out::build_batch(t, &values, Some(lineage)).map_err(ReadError::Build)?;
        writer.write(&batch).map_err(ReadError::Build)?;
        chunk.clear();
        Ok::<(), ReadError>(())
    };
    for record in records {
        let record = record?;
        if record.is_blank() {
            continue;
        }
        match validate_row(t, map, default_units, &record.cells, rules) {
            Err(reasons) => {
                // Only a rejected row can be a header (a header's cells are not valid
                // values), so the check costs nothing on good rows.
                if let Some((line, score)) = header_at {
                    header::check_late_header(&record, line, score, index, display)?;
                }
                out.rejected
                    .push((record.row_number, reasons, raw_of(&map.header, &record)));
            }
            Ok(valid) => {
                out.fingerprints.push(fingerprint(t, &valid.values));
                let extra =
                    (!valid.warnings.is_empty() || !valid.applicants.is_empty()).then(|| {
                        let application_no = (!valid.applicants.is_empty())
                            .then(|| application_no.map(|i| &valid.values[i]))
                            .flatten()
                            .filter(|v| !matches!(v, Value::Null))
                            .map(Value::canonical_text);
                        Box::new(Extra {
                            warnings: valid.warnings,
                            applicants: valid.applicants,
                            application_no,
                        })
                    });
                out.valid.push(RowMeta {
                    row_number: record.row_number,
                    extra,
                });
                chunk.push((record.row_number, valid.values));
                if chunk.len() >= CHUNK_ROWS {
                    flush(&mut chunk)?;
                }
            }
        }
    }
    flush(&mut chunk)
}

/// Runs ingestion over every file of a pipeline.
pub fn ingest(
    pipeline: &Pipeline,
    opts: &IngestOptions,
    mut registry: Registry,
) -> Result<IngestOutput> {
    let enums_path = pipeline.resolve(&pipeline.file.enums);
    let enums = AliasTables::load(&enums_path)?;
    // A declared kind's enum column must find its alias table, or every row of it
    // would be quarantined as unknown_enum_value.
    for t in schema::source_kinds() {
        for c in t.columns.iter().filter(|c| c.enum_name.is_some()) {
            let name = c.enum_name.as_deref().unwrap_or_default();
            if !enums.has(name) {
                return Err(Error::Pipeline {
                    path: enums_path.clone(),
                    message: format!(
                        "{}.{} takes values of enumeration [{name}], which this file does not define",
                        t.name, c.name
                    ),
                });
            }
        }
    }
    let divisions = Divisions::datong();
    let industries = Industries::gbt4754_2017();
    let files = pipeline.matches()?;
    let mut states: Vec<FileState> = vec![];
    let mut quarantine: Vec<QuarantineRow> = vec![];
    let mut warnings_out: Vec<WarningRow> = vec![];
    let mut tables = BTreeMap::new();

    for t in schema::source_kinds() {
        let kind = t.name.as_str();
        let kind_files: Vec<&Matched> = files.iter().filter(|m| m.source.kind == kind).collect();
        // (key digest, file among `read`, index among its valid rows, content digest)
        let mut prints: Vec<(u128, u32, u32, [u8; 16])> = vec![];
        let rules = Rules {
            as_of: opts.as_of,
            enums: &enums,
            divisions: &divisions,
            industries: &industries,
            registry: &registry,
            towns: opts.towns,
        };
        let prepared = prepare_files(&kind_files, t, &rules, opts);
        if prepared.len() != kind_files.len() {
            return Err(Error::Pipeline {
                path: pipeline.path.clone(),
                message: format!("reading the {kind} files failed in a worker thread"),
            });
        }
        // Per file of this kind that was read: its index in `states`, its rows, and
        // which of its valid rows are kept.
        let mut read: Vec<(usize, FileRows, Vec<bool>)> = vec![];
        for ((display, hash, prepared), m) in prepared.into_iter().zip(&kind_files) {
            let file_idx = states.len();
            let mut report = FileReport {
                source_file: display.clone(),
                kind: kind.to_string(),
                content_hash: hash.clone(),
                rows_read: 0,
                rows_loaded: 0,
                rows_duplicate: 0,
                rows_quarantined: 0,
                status: FileStatus::Loaded,
                message: None,
            };
            match prepared {
                Prepared::Broken(e) => return Err(e),
                Prepared::Skipped => {
                    report.status = FileStatus::Skipped;
                    report.message = Some("same content already loaded by an earlier run".into());
                    states.push(FileState {
                        report,
                        header: vec![],
                        origin: None,
                    });
                }
                Prepared::Rejected(message) => {
                    report.status = FileStatus::Rejected;
                    report.message = Some(message);
                    states.push(FileState {
                        report,
                        header: vec![],
                        origin: None,
                    });
                }
                Prepared::Read(header, mut rows) => {
                    report.rows_read = (rows.valid.len() + rows.rejected.len()) as i64;
                    for (row_number, reasons, raw) in std::mem::take(&mut rows.rejected) {
                        let items: Vec<_> =
                            reasons.into_iter().map(|r| (r.reason, r.message)).collect();
                        let (codes, messages) = group_messages(&items);
                        report.rows_quarantined += 1;
                        quarantine.push(QuarantineRow {
                            source_file: display.clone(),
                            row_number: row_number as i64,
                            kind: kind.to_string(),
                            raw,
                            reasons: codes.iter().map(|c| c.code().to_string()).collect(),
                            messages,
                        });
                    }
                    let keep = vec![true; rows.valid.len()];
                    let f = read.len() as u32;
                    prints.extend(
                        std::mem::take(&mut rows.fingerprints)
                            .into_iter()
                            .enumerate()
                            .map(|(i, (key, content))| (key, f, i as u32, content)),
                    );
                    states.push(FileState {
                        report,
                        header,
                        origin: Some((m.path.clone(), m.source.clone(), hash.clone())),
                    });
                    read.push((file_idx, rows, keep));
                }
            }
        }
        // Rows grouped by key, in reading order within a key (files in path order, rows
        // in file order): a later copy of an earlier row's content is an exact duplicate
        // and dropped; a key with more than one content is a conflict and every variant
        // is quarantined.
        prints.sort_unstable_by_key(|(key, f, i, _)| (*key, *f, *i));
        let mut conflicts: Vec<Vec<(usize, usize)>> = vec![];
        for group in prints.chunk_by(|a, b| a.0 == b.0) {
            let mut variants: Vec<([u8; 16], (usize, usize))> = vec![];
            for (_, f, i, content) in group {
                let at = (*f as usize, *i as usize);
                if variants.iter().any(|(c, _)| c == content) {
                    let (file, _, keep) = &mut read[at.0];
                    keep[at.1] = false;
                    states[*file].report.rows_duplicate += 1;
                } else {
                    variants.push((*content, at));
                }
            }
            if variants.len() > 1 {
                conflicts.push(variants.into_iter().map(|(_, at)| at).collect());
            }
        }
        drop(prints);
        let mut wanted: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for variants in &conflicts {
            for (f, i) in variants {
                let (file, rows, _) = &read[*f];
                wanted
                    .entry(*file)
                    .or_default()
                    .push(rows.valid[*i].row_number);
            }
        }
        let mut originals: HashMap<(usize, u64), String> = HashMap::new();
        for (file, numbers) in wanted {
            let state = &states[file];
            for (n, raw) in reread_rows(state, &numbers) {
                originals.insert((file, n), raw);
            }
        }
        for variants in conflicts {
            let places: Vec<String> = variants
                .iter()
                .map(|(f, i)| {
                    let (file, rows, _) = &read[*f];
                    format!(
                        "{} row {}",
                        states[*file].report.source_file, rows.valid[*i].row_number
                    )
                })
                .collect();
            for (f, i) in variants {
                let (file, rows, keep) = &mut read[f];
                keep[i] = false;
                let row_number = rows.valid[i].row_number;
                let state = &mut states[*file];
                state.report.rows_quarantined += 1;
                let raw = originals.remove(&(*file, row_number)).unwrap_or_else(|| {
                    r#"{"_note":"the file could not be read again for this row"}"#.to_string()
                });
                quarantine.push(QuarantineRow {
                    source_file: state.report.source_file.clone(),
                    row_number: row_number as i64,
                    kind: kind.to_string(),
                    raw,
                    reasons: vec!["conflicting_duplicate".to_string()],
                    messages: vec![format!(
                        "key ({}) has different values in {}",
                        t.key.join(", "),
                        places.join(", ")
                    )],
                });
            }
        }
        // The kept rows, file by file in path order: each file's staged rows with the
        // mask of those kept.
        let mut parts: Vec<(PathBuf, Vec<bool>)> = vec![];
        for (file, rows, keep) in &mut read {
            if let Some((path, staged)) = rows.staged.take() {
                if staged != keep.len() {
                    return Err(Error::Stage {
                        path,
                        message: format!(
                            "{staged} rows staged for {}, {} valid",
                            states[*file].report.source_file,
                            keep.len()
                        ),
                    });
                }
                parts.push((path, keep.clone()));
            }
        }
        let staged = StagedRows::new(&t.name, arrow_out::arrow_schema(t), parts);
        // The registry is read again by this run (the registry of later kinds, its
        // history): it stays in memory. A kind without rows is an empty batch.
        let table = if t.source_rules().registry || staged.num_rows() == 0 {
            TableRows::Memory(staged.collect()?)
        } else {
            TableRows::Staged(staged)
        };
        let mut kept: Vec<(usize, &RowMeta)> = vec![];
        for (file, rows, keep) in &read {
            kept.extend(
                rows.valid
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(m, _)| (*file, m)),
            );
        }
        for (file, m) in &kept {
            if !m.warnings().is_empty() {
                let (codes, messages) = group_messages(m.warnings());
                warnings_out.push(WarningRow {
                    source_file: states[*file].report.source_file.clone(),
                    row_number: m.row_number as i64,
                    kind: kind.to_string(),
                    warnings: codes.iter().map(|c| c.code().to_string()).collect(),
                    messages,
                });
            }
        }
        if let (true, TableRows::Memory(table)) = (t.source_rules().registry, &table) {
            let column = |name: &str| {
                t.columns.iter().position(|c| c.name == name).and_then(|i| {
                    arrow::compute::cast(table.column(i), &arrow::datatypes::DataType::Utf8).ok()
                })
            };
            if let (Some(codes), Some(names)) = (column("uscc"), column("name")) {
                use arrow::array::{Array, AsArray};
                let (codes, names) = (codes.as_string::<i32>(), names.as_string::<i32>());
                for i in 0..codes.len() {
                    if codes.is_valid(i) {
                        registry.add(codes.value(i), names.is_valid(i).then(|| names.value(i)));
                    }
                }
            }
        }
        if t.source_rules().rules == Some(RuleSet::Patent) {
            tables.insert(
                "patent_applicant".to_string(),
                TableRows::Memory(applicant_batch(&kept, &states, opts.run_id)?),
            );
        }
        drop(kept);
        tables.insert(kind.to_string(), table);
    }
    let files: Vec<FileReport> = states
        .into_iter()
        .map(|mut s| {
            let r = &mut s.report;
            r.rows_loaded = r.rows_read - r.rows_duplicate - r.rows_quarantined;
            s.report
        })
        .collect();
    Ok(IngestOutput {
        tables,
        quarantine,
        warnings: warnings_out,
        files,
        registry,
    })
}

/// `patent_applicant` rows of the kept patents (each row's application number was
/// kept with its applicants when it was read).
fn applicant_batch(
    kept: &[(usize, &RowMeta)],
    states: &[FileState],
    run_id: &str,
) -> Result<RecordBatch> {
    let t = schema::table("patent_applicant").ok_or_else(|| Error::Pipeline {
        path: PathBuf::from("schemas/patent_applicant.toml"),
        message: "missing".into(),
    })?;
    let mut values: Vec<Vec<Value>> = vec![];
    let mut lineage = vec![];
    for (file, m) in kept {
        let number = m
            .extra
            .as_ref()
            .and_then(|e| e.application_no.clone())
            .map_or(Value::Null, Value::Str);
        for a in m.applicants() {
            values.push(vec![
                number.clone(),
                Value::Int(a.position),
                Value::Str(a.name.clone()),
                a.uscc.clone().map(Value::Str).unwrap_or(Value::Null),
                a.link_method
                    .map(|m| Value::Str(m.to_string()))
                    .unwrap_or(Value::Null),
            ]);
            lineage.push((
                states[*file].report.source_file.as_str(),
                m.row_number as i64,
            ));
        }
    }
    let refs: Vec<&[Value]> = values.iter().map(Vec::as_slice).collect();
    arrow_out::build_batch(
        t,
        &refs,
        Some(Lineage {
            run_id,
            rows: lineage,
        }),
    )
}

impl IngestOutput {
    /// The `quarantine` rows of this run as a batch.
    pub fn quarantine_batch(&self, run_id: &str) -> Result<RecordBatch> {
        let q = &self.quarantine;
        catalog_batch(
            "quarantine",
            vec![
                strings(q.iter().map(|_| Some(run_id))),
                strings(q.iter().map(|r| Some(r.source_file.as_str()))),
                ints(q.iter().map(|r| r.row_number)),
                strings(q.iter().map(|r| Some(r.kind.as_str()))),
                strings(q.iter().map(|r| Some(r.raw.as_str()))),
                text_list(q.iter().map(|r| r.reasons.clone())),
                text_list(q.iter().map(|r| r.messages.clone())),
            ],
        )
    }

    /// The `ingest_warning` rows of this run as a batch.
    pub fn warning_batch(&self, run_id: &str) -> Result<RecordBatch> {
        let w = &self.warnings;
        catalog_batch(
            "ingest_warning",
            vec![
                strings(w.iter().map(|_| Some(run_id))),
                strings(w.iter().map(|r| Some(r.source_file.as_str()))),
                ints(w.iter().map(|r| r.row_number)),
                strings(w.iter().map(|r| Some(r.kind.as_str()))),
                text_list(w.iter().map(|r| r.warnings.clone())),
                text_list(w.iter().map(|r| r.messages.clone())),
            ],
        )
    }

    /// The `ingest_run` rows of this run as a batch.
    pub fn ingest_run_batch(&self, run_id: &str) -> Result<RecordBatch> {
        let f = &self.files;
        catalog_batch(
            "ingest_run",
            vec![
                strings(f.iter().map(|_| Some(run_id))),
                strings(f.iter().map(|r| Some(r.source_file.as_str()))),
                strings(f.iter().map(|r| Some(r.kind.as_str()))),
                strings(f.iter().map(|r| Some(r.content_hash.as_str()))),
                ints(f.iter().map(|r| r.rows_read)),
                ints(f.iter().map(|r| r.rows_loaded)),
                ints(f.iter().map(|r| r.rows_duplicate)),
                ints(f.iter().map(|r| r.rows_quarantined)),
                strings(f.iter().map(|r| Some(r.status.as_str()))),
                strings(f.iter().map(|r| r.message.as_deref())),
            ],
        )
    }
}
