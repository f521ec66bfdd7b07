//! One ingest run over a pipeline's files: kinds in dependency order (the registry
//! first), files in path order, every row validated, exact duplicates dropped from the
//! later copy, conflicting duplicates all quarantined, and per file
//! `rows_read = rows_loaded + rows_duplicate + rows_quarantined`.
//!
//! A file that cannot be read at all (encoding, corrupt workbook, missing required
//! column, malformed line) is rejected whole: none of its rows are kept, it reports 0
//! rows read, and the run goes on with the other files.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use townstat_domain::division::Divisions;
use townstat_domain::enums::AliasTables;
use townstat_domain::industry::Industries;
use townstat_domain::number::Unit;
use townstat_domain::schema::{self, SOURCE_KINDS, TableSchema};
use townstat_domain::{Rejection, Warning};

use crate::arrow_out::{self, Lineage, catalog_batch, ints, strings, text_list};
use crate::cell::Cell;
use crate::error::{Error, FileRejection, Result};
use crate::header::{self, AliasIndex, ColumnMap};
use crate::pipeline::{Format, Pipeline, Source};
use crate::read::{self, Opened, RawRecord};
use crate::registry::Registry;
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

/// Everything an ingest run produced, ready to commit.
#[derive(Debug)]
pub struct IngestOutput {
    /// Rows to merge, per table (source kinds and `patent_applicant`).
    pub tables: BTreeMap<String, RecordBatch>,
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
}

/// A file read (in parallel with the other files of its kind), waiting to be counted
/// and de-duplicated in path order.
enum Prepared {
    Skipped,
    Rejected(String),
    Read(Vec<String>, Vec<(u64, Outcome)>),
}

/// A validated row, or its reasons and its original cells as JSON.
type Outcome = std::result::Result<crate::validate::ValidRow, (Vec<Rejection>, String)>;

/// A file's header and the outcome of each row, by row number.
type FileOutcomes = (Vec<String>, Vec<(u64, Outcome)>);

/// Reads the files of one kind on every core: reading, decoding and validating are
/// independent per file; counting, duplicates and conflicts happen afterwards, in path
/// order, so the result does not depend on which file finished first.
fn prepare_files(
    files: &[&(PathBuf, &Source)],
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
                    let Some((path, source)) = files.get(i).map(|f| (&f.0, f.1)) else {
                        break;
                    };
                    let display = display_path(path);
                    (opts.on_file)(&display);
                    let hash = content_hash(path).unwrap_or_default();
                    let prepared = if (opts.already_loaded)(&hash) {
                        Prepared::Skipped
                    } else {
                        match read_file(path, &display, source, t, rules) {
                            Err(FileRejection(message)) => Prepared::Rejected(message),
                            Ok((header, outcomes)) => Prepared::Read(header, outcomes),
                        }
                    };
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

/// A valid row kept until the run's duplicates are known. Its original cells are not
/// kept (they would double the memory of a run); the rare row that turns out to be a
/// conflicting duplicate is read again from its file for the quarantine's `raw`.
struct StoredRow {
    file: usize,
    row_number: u64,
    values: Vec<Value>,
    warnings: Vec<(Warning, String)>,
    applicants: Vec<Applicant>,
    conflicted: bool,
}

struct FileState {
    report: FileReport,
    header: Vec<String>,
    /// Where to read a row again (conflicting duplicates).
    origin: Option<(PathBuf, Source)>,
}

/// Hashes a file's bytes.
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// How the run names a file: relative to the working directory when under it.
pub fn display_path(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|d| std::fs::canonicalize(d).ok());
    match cwd.and_then(|d| abs.strip_prefix(&d).ok().map(Path::to_path_buf)) {
        Some(rel) => rel.to_string_lossy().into_owned(),
        None => abs.to_string_lossy().into_owned(),
    }
}

/// Reads some rows of a file again, by row number, as `raw` JSON.
fn reread_rows(state: &FileState, numbers: &[u64]) -> Vec<(u64, String)> {
    let Some((path, source)) = &state.origin else {
        return vec![];
    };
    let Some(format) = source.format.or_else(|| Format::from_path(path)) else {
        return vec![];
    };
    let records: Box<dyn Iterator<Item = std::result::Result<RawRecord, FileRejection>>> =
        match read::open(path, format, source) {
            Ok(Opened::Tabular(r)) => r,
            Ok(Opened::Keyed { records, .. }) => records,
            Err(_) => return vec![],
        };
    let wanted: std::collections::HashSet<u64> = numbers.iter().copied().collect();
    records
        .filter_map(|r| r.ok())
        .filter(|r| wanted.contains(&r.row_number))
        .map(|r| (r.row_number, raw_json(&state.header, &r.cells)))
        .collect()
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

/// Key text and content fingerprint of a row.
fn fingerprint(t: &TableSchema, values: &[Value]) -> (String, [u8; 16]) {
    let mut key = String::new();
    for k in &t.key {
        if let Some(i) = t.columns.iter().position(|c| &c.name == k) {
            key.push_str(&values[i].canonical_text());
            key.push('\u{1f}');
        }
    }
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

/// Reads one file to its outcomes (row number, and the valid row or the reasons with
/// the original cells as JSON), or rejects it whole. A valid row's cells are dropped
/// here: they are not needed unless it turns out to conflict, and then it is re-read.
fn read_file(
    path: &Path,
    display: &str,
    source: &Source,
    t: &TableSchema,
    rules: &Rules,
) -> Result<FileOutcomes, FileRejection> {
    let format = source
        .format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| {
            FileRejection(format!(
                "{display}: cannot tell the format from the extension; set format in the pipeline"
            ))
        })?;
    let index = AliasIndex::new(t, source);
    let (map, records): (
        ColumnMap,
        Box<dyn Iterator<Item = std::result::Result<RawRecord, FileRejection>>>,
    ) = match read::open(path, format, source)? {
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
            let Some((_, at)) = best.filter(|(score, _)| *score > 0) else {
                return Err(FileRejection(format!(
                    "{display}: no header row in the first {} rows: no cell matches a column of {}",
                    header::HEADER_SEARCH_ROWS,
                    t.name
                )));
            };
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
    let mut out = vec![];
    for record in records {
        let record = record?;
        if record.is_blank() {
            continue;
        }
        let outcome = validate_row(t, &map, &default_units, &record.cells, rules)
            .map_err(|reasons| (reasons, raw_json(&map.header, &record.cells)));
        out.push((record.row_number, outcome));
    }
    Ok((map.header, out))
}

/// Runs ingestion over every file of a pipeline.
pub fn ingest(
    pipeline: &Pipeline,
    opts: &IngestOptions,
    mut registry: Registry,
) -> Result<IngestOutput> {
    let enums = AliasTables::load(&pipeline.resolve(&pipeline.file.enums))?;
    let divisions = Divisions::datong();
    let industries = Industries::gbt4754_2017();
    let files = pipeline.files()?;
    let mut states: Vec<FileState> = vec![];
    let mut quarantine: Vec<QuarantineRow> = vec![];
    let mut warnings_out: Vec<WarningRow> = vec![];
    let mut tables = BTreeMap::new();

    for kind in SOURCE_KINDS {
        let t = schema::table(kind).ok_or_else(|| Error::Pipeline {
            path: pipeline.path.clone(),
            message: format!("no schema for kind {kind}"),
        })?;
        let kind_files: Vec<&(PathBuf, &Source)> =
            files.iter().filter(|(_, s)| s.kind == kind).collect();
        let mut rows: Vec<StoredRow> = vec![];
        // key → variants (content fingerprint, index into rows)
        let mut keys: HashMap<String, Vec<([u8; 16], usize)>> = HashMap::new();
        let rules = Rules {
            as_of: opts.as_of,
            enums: &enums,
            divisions: &divisions,
            industries: &industries,
            registry: &registry,
        };
        let prepared = prepare_files(&kind_files, t, &rules, opts);
        if prepared.len() != kind_files.len() {
            return Err(Error::Pipeline {
                path: pipeline.path.clone(),
                message: format!("reading the {kind} files failed in a worker thread"),
            });
        }
        for ((display, hash, prepared), (path, source)) in prepared.into_iter().zip(&kind_files) {
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
                Prepared::Read(header, outcomes) => {
                    for (row_number, outcome) in outcomes {
                        report.rows_read += 1;
                        match outcome {
                            Err((reasons, raw)) => {
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
                            Ok(valid) => {
                                let (key, content) = fingerprint(t, &valid.values);
                                let variants = keys.entry(key).or_default();
                                if variants.iter().any(|(c, _)| *c == content) {
                                    report.rows_duplicate += 1;
                                    continue;
                                }
                                variants.push((content, rows.len()));
                                rows.push(StoredRow {
                                    file: file_idx,
                                    row_number,
                                    values: valid.values,
                                    warnings: valid.warnings,
                                    applicants: valid.applicants,
                                    conflicted: false,
                                });
                            }
                        }
                    }
                    states.push(FileState {
                        report,
                        header,
                        origin: Some((path.clone(), (*source).clone())),
                    });
                }
            }
        }
        // Same key, different values: every variant is quarantined.
        let conflicts: Vec<&Vec<([u8; 16], usize)>> =
            keys.values().filter(|v| v.len() > 1).collect();
        let mut wanted: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for variants in &conflicts {
            for (_, i) in variants.iter() {
                wanted
                    .entry(rows[*i].file)
                    .or_default()
                    .push(rows[*i].row_number);
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
            let files: Vec<String> = variants
                .iter()
                .map(|(_, i)| {
                    let r = &rows[*i];
                    format!("{} row {}", states[r.file].report.source_file, r.row_number)
                })
                .collect();
            for (_, i) in variants {
                rows[*i].conflicted = true;
                let r = &rows[*i];
                let state = &mut states[r.file];
                state.report.rows_quarantined += 1;
                let raw = originals
                    .remove(&(r.file, r.row_number))
                    .unwrap_or_else(|| {
                        r#"{"_note":"the file could not be read again for this row"}"#.to_string()
                    });
                quarantine.push(QuarantineRow {
                    source_file: state.report.source_file.clone(),
                    row_number: r.row_number as i64,
                    kind: kind.to_string(),
                    raw,
                    reasons: vec!["conflicting_duplicate".to_string()],
                    messages: vec![format!(
                        "key ({}) has different values in {}",
                        t.key.join(", "),
                        files.join(", ")
                    )],
                });
            }
        }
        let kept: Vec<&StoredRow> = rows.iter().filter(|r| !r.conflicted).collect();
        for r in &kept {
            if !r.warnings.is_empty() {
                let (codes, messages) = group_messages(&r.warnings);
                warnings_out.push(WarningRow {
                    source_file: states[r.file].report.source_file.clone(),
                    row_number: r.row_number as i64,
                    kind: kind.to_string(),
                    warnings: codes.iter().map(|c| c.code().to_string()).collect(),
                    messages,
                });
            }
        }
        if kind == "enterprise" {
            let u = t.columns.iter().position(|c| c.name == "uscc").unwrap_or(0);
            let n = t.columns.iter().position(|c| c.name == "name").unwrap_or(1);
            for r in &kept {
                if let Value::Str(code) = &r.values[u] {
                    registry.add(code, r.values[n].as_str());
                }
            }
        }
        let values: Vec<&[Value]> = kept.iter().map(|r| r.values.as_slice()).collect();
        let lineage = Lineage {
            run_id: opts.run_id,
            rows: kept
                .iter()
                .map(|r| {
                    (
                        states[r.file].report.source_file.as_str(),
                        r.row_number as i64,
                    )
                })
                .collect(),
        };
        tables.insert(
            kind.to_string(),
            arrow_out::build_batch(t, &values, Some(lineage))?,
        );
        if kind == "patent" {
            tables.insert(
                "patent_applicant".to_string(),
                applicant_batch(t, &kept, &states, opts.run_id)?,
            );
        }
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

fn applicant_batch(
    patent: &TableSchema,
    kept: &[&StoredRow],
    states: &[FileState],
    run_id: &str,
) -> Result<RecordBatch> {
    let t = schema::table("patent_applicant").ok_or_else(|| Error::Pipeline {
        path: PathBuf::from("schemas/patent_applicant.toml"),
        message: "missing".into(),
    })?;
    let no = patent
        .columns
        .iter()
        .position(|c| c.name == "application_no")
        .unwrap_or(0);
    let mut values: Vec<Vec<Value>> = vec![];
    let mut lineage = vec![];
    for r in kept {
        for a in &r.applicants {
            values.push(vec![
                r.values[no].clone(),
                Value::Int(a.position),
                Value::Str(a.name.clone()),
                a.uscc.clone().map(Value::Str).unwrap_or(Value::Null),
                a.link_method
                    .map(|m| Value::Str(m.to_string()))
                    .unwrap_or(Value::Null),
            ]);
            lineage.push((
                states[r.file].report.source_file.as_str(),
                r.row_number as i64,
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
