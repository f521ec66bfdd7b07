//! Readers of the three accepted formats. Each yields raw records (`row_number`, cells)
//! as a person would count rows in that file.
//!
//! A file is read from disk exactly once, into memory ([`load`]): its content hash,
//! the already-loaded check and the parse all use those same bytes, so a file changed
//! while the run reads it can never be recorded under a hash of content that was not
//! parsed (a size or mtime that moved during the read rejects the file for this run).
//! NDJSON in UTF-8 is read differently ([`read_input`]): hashed as it is read through
//! ([`scan`]), not kept, then parsed from disk line by line; each pass hashes what it
//! reads, and a content that is not the one hashed first rejects the file, so the same
//! guarantee holds without holding a 500 MB export in memory.
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
/// file other than UTF-8 NDJSON is held in memory while it is parsed (on each of the
/// run's workers).
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

/// How a file's records are read: from its bytes, held in memory, or line by line from
/// disk (NDJSON in UTF-8, the format of the largest exports: [`ndjson::open_file`]).
pub enum Input {
    /// The bytes [`load`] read.
    Bytes(Vec<u8>),
    /// What [`scan`] found, and where the text starts (after a BOM).
    Lines {
        /// The scan.
        scanned: Scanned,
        /// The first byte of text.
        start: usize,
    },
}

impl Input {
    /// The file's size when it is blank (nothing but a BOM and ASCII white space).
    pub fn blank(&self) -> Option<usize> {
        match self {
            Input::Bytes(bytes) => blank_after_bom(bytes).then_some(bytes.len()),
            Input::Lines { scanned, .. } => scanned.blank.then_some(scanned.len as usize),
        }
    }
}

/// Reads a file through once: its content hash, and its input. An NDJSON file in UTF-8
/// is only scanned (hashed, not kept); any other file is loaded. An NDJSON file that
/// turns out not to be UTF-8 is then loaded too, and rejected if its hash moved.
pub fn read_input(
    path: &Path,
    name: &str,
    format: Option<Format>,
    source: &Source,
) -> Result<(String, Input), FileRejection> {
    if format != Some(Format::Ndjson) {
        let loaded = load(path, name)?;
        return Ok((loaded.hash, Input::Bytes(loaded.bytes)));
    }
    let scanned = scan(path, name)?;
    match decode::sniff(&scanned.head, name, source.encoding)? {
        Some(start) => Ok((scanned.hash.clone(), Input::Lines { scanned, start })),
        None => {
            let loaded = load(path, name)?;
            scanned.same_content(name, &loaded.hash)?;
            Ok((loaded.hash, Input::Bytes(loaded.bytes)))
        }
    }
}

/// Parses an input in the given format ([`open`] for bytes).
pub fn open_input(
    input: Input,
    path: &Path,
    name: &str,
    format: Format,
    source: &Source,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Opened, FileRejection> {
    match input {
        Input::Bytes(bytes) => open(bytes, name, format, source, keep),
        Input::Lines { scanned, start } => ndjson::open_file(path, name, start, &scanned, keep),
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
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a file once into memory and hashes what was read. The file's size and mtime
/// are taken before and after (on the open handle and on the path, which catches a
/// file replaced by rename): if they moved, or the bytes read are not the size the
/// file had, the file was being written while it was read and is rejected for this
/// run; the next run reads it whole.
pub fn load(path: &Path, name: &str) -> Result<Loaded, FileRejection> {
    let (bytes, scanned) = read_through(path, name, true)?;
    Ok(Loaded {
        bytes,
        hash: scanned.hash,
    })
}

/// A file read through once without keeping its bytes (an NDJSON file in UTF-8,
/// parsed afterwards line by line from disk: [`ndjson::open_file`]).
#[derive(Debug, Clone)]
pub struct Scanned {
    /// SHA-256 of the bytes read, hex.
    pub hash: String,
    /// How many bytes were read.
    pub len: u64,
    /// The first block (64 KiB or the whole file), for the encoding.
    pub head: Vec<u8>,
    /// Whether everything after a UTF-8 BOM is ASCII white space.
    pub blank: bool,
}

impl Scanned {
    /// Whether a later reading of the file (its hash) found the content scanned; if
    /// not, the file changed in between and is left for the next run.
    pub(crate) fn same_content(&self, name: &str, hash: &str) -> Result<(), FileRejection> {
        if hash == self.hash {
            return Ok(());
        }
        Err(FileRejection(format!(
            "{name}: the file changed while it was read (its content differs from the {} \
             bytes read first); it is left for the next run",
            self.len
        )))
    }
}

/// [`load`] without keeping the bytes: the same checks, the hash, the first block.
pub fn scan(path: &Path, name: &str) -> Result<Scanned, FileRejection> {
    Ok(read_through(path, name, false)?.1)
}

/// Whether the bytes are nothing but a UTF-8 BOM and ASCII white space (a file's
/// start, or all of it).
fn blank_after_bom(bytes: &[u8]) -> bool {
    bytes
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(bytes)
        .iter()
        .all(u8::is_ascii_whitespace)
}

/// Reads a file through once, in blocks, hashing them (and keeping them when `keep`),
/// with [`load`]'s checks.
fn read_through(path: &Path, name: &str, keep: bool) -> Result<(Vec<u8>, Scanned), FileRejection> {
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
    let mut bytes = Vec::with_capacity(if keep { before.len() as usize + 1 } else { 0 });
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    // The first block, then the test pause point, then the rest: a test can rewrite
    // the file exactly while it is being read.
    let mut head = Vec::with_capacity(HEAD_BYTES as usize);
    file.by_ref()
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .map_err(|e| reject(format!("cannot read: {e}")))?;
    let mut blank = blank_after_bom(&head);
    hasher.update(&head);
    len += head.len() as u64;
    if keep {
        bytes.extend_from_slice(&head);
    }
    test_pause(path);
    let mut rest = file.by_ref().take(MAX_FILE_BYTES + 1 - len);
    let mut block = vec![0u8; 1 << 20];
    loop {
        let got = match rest.read(&mut block) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(reject(format!("cannot read: {e}"))),
        };
        let read = &block[..got];
        hasher.update(read);
        blank = blank && read.iter().all(u8::is_ascii_whitespace);
        len += got as u64;
        if keep {
            bytes.extend_from_slice(read);
        }
    }
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
    if stamp(&before) != stamp(&during) || stamp(&before) != stamp(&after) || len != before.len() {
        return Err(reject(format!(
            "the file changed while it was read ({} bytes before, {} read, {} after); \
             it is left for the next run",
            before.len(),
            len,
            after.len()
        )));
    }
    let hash = hex(&hasher.finalize());
    Ok((
        bytes,
        Scanned {
            hash,
            len,
            head,
            blank,
        },
    ))
}

/// The first block of a file, read before the test pause point and kept by [`scan`].
const HEAD_BYTES: u64 = 64 * 1024;

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
