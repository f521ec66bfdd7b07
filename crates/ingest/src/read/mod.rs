//! Readers of the three accepted formats. Each yields raw records (`row_number`, cells)
//! as a person would count rows in that file.
//!
//! A file is read from disk exactly once, into memory ([`load`]): its content hash,
//! the already-loaded check and the parse all use those same bytes, so a file changed
//! while the run reads it can never be recorded under a hash of content that was not
//! parsed (a size or mtime that moved during the read rejects the file for this run).
//! Every reader is bounded so that no file, however hostile, costs more than a small
//! multiple of its own size in memory: see the limits below.

mod csv;
mod decode;
mod ndjson;
mod xlsx;

pub use ndjson::raw_of_line;

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::{Format, Source};

/// The largest source file read (1 GiB): files are at most a few hundred MB, and a
/// file is held in memory while it is parsed (on each of the run's workers).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// One record of a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// XLSX: sheet row; CSV: physical line where the record starts; NDJSON: line.
    pub row_number: u64,
    /// The cells, aligned with the file's columns.
    pub cells: Vec<Cell>,
    /// NDJSON: the line itself, so that a quarantined row's `raw` shows the row's own
    /// keys only (not every key the file has).
    pub line: Option<String>,
}

impl RawRecord {
    /// A record of a tabular file.
    pub fn new(row_number: u64, cells: Vec<Cell>) -> RawRecord {
        RawRecord {
            row_number,
            cells,
            line: None,
        }
    }

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

/// Parses a file's bytes (as [`load`] read them) in the given format; `name` is how
/// messages name the file. For NDJSON, `keep` says which keys become columns (the
/// others are only in a quarantined row's `raw`).
pub fn open(
    bytes: Vec<u8>,
    name: &str,
    format: Format,
    source: &Source,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Opened, FileRejection> {
    match format {
        Format::Csv => csv::open(bytes, name, source).map(Opened::Tabular),
        Format::Xlsx => xlsx::open(bytes, name, source).map(Opened::Tabular),
        Format::Ndjson => ndjson::open(bytes, name, source, keep),
    }
}

/// A file's bytes as read once, and their SHA-256 (hex).
pub struct Loaded {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of exactly these bytes, hex.
    pub hash: String,
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a file once into memory and hashes what was read. The file's size and mtime
/// are taken before and after (on the open handle and on the path, which catches a
/// file replaced by rename): if they moved, or the bytes read are not the size the
/// file had, the file was being written while it was read and is rejected for this
/// run; the next run reads it whole.
pub fn load(path: &Path, name: &str) -> Result<Loaded, FileRejection> {
    let reject = |what: String| FileRejection(format!("{name}: {what}"));
    let before = std::fs::metadata(path).map_err(|e| reject(format!("cannot read: {e}")))?;
    if !before.is_file() {
        return Err(reject("not a regular file".into()));
    }
    if before.len() > MAX_FILE_BYTES {
        return Err(reject(format!(
            "the file is {} bytes, more than the {} bytes a source file may have",
            before.len(),
            MAX_FILE_BYTES
        )));
    }
    let mut file = std::fs::File::open(path).map_err(|e| reject(format!("cannot open: {e}")))?;
    let mut bytes = Vec::with_capacity(before.len() as usize + 1);
    // The first block, then the test pause point, then the rest: a test can rewrite
    // the file exactly while it is being read.
    let mut first = file.by_ref().take(64 * 1024);
    first
        .read_to_end(&mut bytes)
        .map_err(|e| reject(format!("cannot read: {e}")))?;
    test_pause(path);
    file.by_ref()
        .take(MAX_FILE_BYTES + 1 - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| reject(format!("cannot read: {e}")))?;
    let during = file
        .metadata()
        .map_err(|e| reject(format!("cannot read: {e}")))?;
    let after = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => reject(
            "the file was removed (or moved away) while it was read; nothing of it is \
             loaded in this run"
                .into(),
        ),
        _ => reject(format!("cannot read: {e}")),
    })?;
    let stamp = |m: &std::fs::Metadata| (m.len(), m.modified().ok());
    if stamp(&before) != stamp(&during)
        || stamp(&before) != stamp(&after)
        || bytes.len() as u64 != before.len()
    {
        return Err(reject(format!(
            "the file changed while it was read ({} bytes before, {} read, {} after); \
             it is left for the next run",
            before.len(),
            bytes.len(),
            after.len()
        )));
    }
    let hash = sha256_hex(&bytes);
    Ok(Loaded { bytes, hash })
}

/// Fault injection for the tests: when `TOWNSTAT_TEST_PAUSE_READ` is a file name and
/// this file has that name, the reader writes `<TOWNSTAT_TEST_PAUSE_DIR>/paused`
/// after reading the file's first block and waits (up to 60 s) until
/// `<TOWNSTAT_TEST_PAUSE_DIR>/resume` exists. Unset in production.
fn test_pause(path: &Path) {
    let Some(wanted) = std::env::var_os("TOWNSTAT_TEST_PAUSE_READ") else {
        return;
    };
    let Some(dir) = std::env::var_os("TOWNSTAT_TEST_PAUSE_DIR") else {
        return;
    };
    if path.file_name() != Some(wanted.as_os_str()) {
        return;
    }
    let dir = Path::new(&dir);
    let _ = std::fs::write(dir.join("paused"), b"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.join("resume").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The physical line (1-based) of a byte offset: a line ends at `\n`, `\r\n` or a lone
/// `\r` (old Mac exports), so CR-only and CRLF files number lines as an editor does.
pub fn line_of(text: &[u8], offset: usize) -> u64 {
    LineCursor::default().line_at(text, offset)
}

/// Counts line breaks up to increasing offsets without starting over each time.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineCursor {
    offset: usize,
    breaks: u64,
}

impl LineCursor {
    /// The line of `offset`; offsets must not decrease between calls.
    pub fn line_at(&mut self, text: &[u8], offset: usize) -> u64 {
        let end = offset.min(text.len());
        if end > self.offset {
            self.breaks += count_breaks(text, self.offset, end);
            self.offset = end;
        }
        self.breaks + 1
    }
}

/// Line breaks whose last byte lies in `text[from..to]`: every `\n`, and every `\r` not
/// followed by `\n` (looking past `to`, so a `\r\n` split at `to` counts once).
pub(crate) fn count_breaks(text: &[u8], from: usize, to: usize) -> u64 {
    let mut n = 0;
    for i in from..to {
        match text[i] {
            b'\n' => n += 1,
            b'\r' if text.get(i + 1) != Some(&b'\n') => n += 1,
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_every_ending() {
        let text = b"a\rb\r\nc\nd";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 5), 3);
        assert_eq!(line_of(text, 7), 4);
        let mut c = LineCursor::default();
        // Stopping between the `\r` and `\n` of a CRLF counts that break once.
        assert_eq!(c.line_at(text, 4), 2);
        assert_eq!(c.line_at(text, 5), 3);
        assert_eq!(c.line_at(text, 8), 4);
    }
}
