//! CSV: comma, tab or semicolon separated (sniffed from the first lines unless the
//! pipeline says), quoted fields with embedded newlines, ragged rows. Row numbers are
//! the physical line where each record starts.

use std::path::Path;

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::Source;
use crate::read::{RawRecord, Records, decode};

/// Picks the separator of a file from its first lines: for each candidate, how many of
/// those lines have the same (non-zero) number of it outside quotes. A real separator
/// is consistent from line to line; commas inside unquoted numbers (`1,234,567`) are
/// not. Ties go to the larger total, then to comma.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let candidates = [b',', b'\t', b';'];
    let mut per_line: Vec<[usize; 3]> = vec![[0; 3]];
    let mut in_quotes = false;
    for &b in head {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => {
                if per_line.len() >= 12 {
                    break;
                }
                per_line.push([0; 3]);
            }
            _ if !in_quotes => {
                if let Some(i) = candidates.iter().position(|c| *c == b)
                    && let Some(last) = per_line.last_mut()
                {
                    last[i] += 1;
                }
            }
            _ => {}
        }
    }
    let score = |i: usize| {
        let mut counts: Vec<usize> = per_line.iter().map(|l| l[i]).filter(|&c| c > 0).collect();
        counts.sort_unstable();
        // The most common non-zero count, and how many lines have it.
        let mut best = (0usize, 0usize);
        let mut j = 0;
        while j < counts.len() {
            let k = counts[j..].iter().take_while(|&&c| c == counts[j]).count();
            if k > best.0 {
                best = (k, counts[j]);
            }
            j += k;
        }
        let total: usize = counts.iter().sum();
        (best.0, total)
    };
    let best = (0..3).max_by_key(|&i| (score(i), 3 - i)).unwrap_or(0);
    candidates[best]
}

/// Records the offsets of line-terminator bytes (`\r`, `\n`) as the CSV reader consumes
/// bytes, so that each record's starting line is exact for `\n` and `\r\n` files and
/// around blank lines (the csv crate's own position may point at a terminator before
/// the record, and its line counter treats `\r\n` unevenly).
struct LineCounter<R> {
    inner: R,
    /// (offset, is line feed) of terminators not yet passed by a record start.
    pending: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<(u64, bool)>>>,
    offset: u64,
}

impl<R: std::io::Read> std::io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut pending = self.pending.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' || *b == b'\r' {
                pending.push_back((self.offset + i as u64, *b == b'\n'));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
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
    let pending = std::rc::Rc::new(std::cell::RefCell::new(std::collections::VecDeque::new()));
    let counter = LineCounter {
        inner: decoded.reader,
        pending: pending.clone(),
        offset: 0,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(counter);
    // Line feeds before the current record's first byte: its line is that count + 1.
    let mut lines_before: u64 = 0;
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
                let mut start = record.position().map(|p| p.byte()).unwrap_or(0);
                {
                    // Terminators before the reported start, then any run of them at
                    // it (blank lines, the `\n` of a `\r\n`): no record starts with one.
                    let mut q = pending.borrow_mut();
                    while let Some(&(at, lf)) = q.front() {
                        if at < start {
                            q.pop_front();
                        } else if at == start {
                            q.pop_front();
                            start += 1;
                        } else {
                            break;
                        }
                        if lf {
                            lines_before += 1;
                        }
                    }
                }
                let line = lines_before + 1;
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
    fn thousands_separators_do_not_fool_the_sniffer() {
        let head = "代码;金额;日期\n1;1,234,567;2023\n2;12,345,678,901;2023\n3;5;2023\n";
        assert_eq!(sniff_delimiter(head.as_bytes()), b';');
    }

    #[test]
    fn crlf_line_numbers_are_physical() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "title\r\nh1,h2\r\n1,\"x\r\ny\"\r\n2,z\r\n\r\n3,w\r\n").unwrap();
        let q = dir.path().join("b.csv");
        std::fs::write(&q, "title\nh1,h2\n1,\"x\ny\"\n2,z\n\n3,w\n").unwrap();
        let source: crate::pipeline::Source =
            toml::from_str("name='t'\nkind='patent'\nglob=['x']").unwrap();
        let lines: Vec<u64> = super::open(&p, &source)
            .unwrap()
            .map(|r| r.unwrap().row_number)
            .collect();
        assert_eq!(lines, vec![1, 2, 3, 5, 7]);
        let lf: Vec<u64> = super::open(&q, &source)
            .unwrap()
            .map(|r| r.unwrap().row_number)
            .collect();
        assert_eq!(lf, vec![1, 2, 3, 5, 7]);
    }

    #[test]
    fn sniffs() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n"), b',');
        assert_eq!(sniff_delimiter(b"a\tb\tc\n1\t2,5\t3\n"), b'\t');
        assert_eq!(sniff_delimiter(b"a;b;c\n\"1,2\";2;3\n"), b';');
    }
}
