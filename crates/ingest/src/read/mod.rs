//! Readers of the three accepted formats. Each yields raw records (`row_number`, cells)
//! as a person would count rows in that file, streaming where the format allows: CSV
//! and NDJSON are never held whole in memory; XLSX is, since the format is a zip.

mod csv;
mod decode;
mod ndjson;
mod xlsx;

use std::path::Path;

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::{Format, Source};

/// One record of a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// XLSX: sheet row; CSV: physical line where the record starts; NDJSON: line.
    pub row_number: u64,
    /// The cells, aligned with the file's columns.
    pub cells: Vec<Cell>,
}

impl RawRecord {
    /// Whether every cell is empty or blank text (such records are not rows).
    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| match c {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
        })
    }
}

/// A stream of records, each possibly a reason to reject the whole file.
pub type Records = Box<dyn Iterator<Item = Result<RawRecord, FileRejection>>>;

/// An opened file: either rows whose header is still to be found (CSV, XLSX), or
/// keyed objects whose keys are the header (NDJSON).
pub enum Opened {
    /// Header among the first rows.
    Tabular(Records),
    /// The header is known: every key seen in the file, in first-seen order.
    Keyed {
        /// The keys.
        header: Vec<String>,
        /// The records, aligned with `header`.
        records: Records,
    },
}

/// Opens a file in the given format.
pub fn open(path: &Path, format: Format, source: &Source) -> Result<Opened, FileRejection> {
    match format {
        Format::Csv => csv::open(path, source).map(Opened::Tabular),
        Format::Xlsx => xlsx::open(path, source).map(Opened::Tabular),
        Format::Ndjson => ndjson::open(path, source),
    }
}
