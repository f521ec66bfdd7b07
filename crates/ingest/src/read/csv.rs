//! CSV: comma, tab or semicolon separated (sniffed from the first lines unless the
//! pipeline says), quoted fields with embedded newlines, ragged rows. Row numbers are
//! the physical line where each record starts.

use std::path::Path;

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::Source;
use crate::read::{RawRecord, Records, decode};

/// Picks the separator that occurs most in the first lines, outside quotes.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let candidates = [b',', b'\t', b';'];
    let mut in_quotes = false;
    let mut lines = 0;
    for &b in head {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => {
                lines += 1;
                if lines >= 12 {
                    break;
                }
            }
            _ if !in_quotes => {
                if let Some(i) = candidates.iter().position(|c| *c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    candidates[best]
}

/// Opens a CSV file as a stream of records.
pub fn open(path: &Path, source: &Source) -> Result<Records, FileRejection> {
    let decoded = decode::open(path, source.encoding)?;
    let delimiter = match source.delimiter {
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => {
            return Err(FileRejection(format!(
                "{}: delimiter {c:?} is not an ASCII character",
                path.display()
            )));
        }
        None => sniff_delimiter(&decoded.head),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(decoded.reader);
    let name = path.display().to_string();
    let encoding = decoded.encoding;
    let mut record = csv::ByteRecord::new();
    let mut done = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        match reader.read_byte_record(&mut record) {
            Ok(false) => {
                done = true;
                None
            }
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                let mut cells = Vec::with_capacity(record.len());
                for field in record.iter() {
                    match std::str::from_utf8(field) {
                        Ok("") => cells.push(Cell::Empty),
                        Ok(s) => cells.push(Cell::Text(s.to_string())),
                        Err(_) => {
                            done = true;
                            return Some(Err(FileRejection(format!(
                                "{name}: line {line} is not valid UTF-8 (read as {encoding}); \
                                 if the file is GBK, say encoding = \"gbk\" in the pipeline"
                            ))));
                        }
                    }
                }
                Some(Ok(RawRecord {
                    row_number: line,
                    cells,
                }))
            }
            Err(e) => {
                done = true;
                let why = match e.kind() {
                    csv::ErrorKind::Io(io) => io.to_string(),
                    _ => e.to_string(),
                };
                Some(Err(FileRejection(format!("{name}: {why}"))))
            }
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::sniff_delimiter;

    #[test]
    fn sniffs() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n"), b',');
        assert_eq!(sniff_delimiter(b"a\tb\tc\n1\t2,5\t3\n"), b'\t');
        assert_eq!(sniff_delimiter(b"a;b;c\n\"1,2\";2;3\n"), b';');
    }
}
