//! CSV: comma, tab or semicolon separated (sniffed from the first lines unless the
//! pipeline says), quoted fields with embedded newlines, ragged rows. Row numbers are
//! the physical line where each record starts.

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::Source;
use crate::read::{LineCursor, RawRecord, Records, count_breaks, decode};

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

/// The longest record accepted (1 MiB): a longer one is a broken file (a quote never
/// closed, no line ends at all), and a bound keeps a 200 MB single line from costing
/// gigabytes. Checked as the record is read, so never more than this (plus one read
/// buffer) is held for a record.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// The most columns a record may have: Excel's 16,384.
pub const MAX_COLUMNS: usize = 16_384;
/// The most lines one quoted field may span. Addresses and business scopes may hold a
/// few line breaks; a quote that runs on for more than 100 lines was never closed, and
/// every row it swallowed would otherwise vanish into one cell.
pub const MAX_QUOTED_LINES: u64 = 100;

/// The decoded text as the csv reader's input, refusing to hand out bytes beyond
/// `limit` (the current record's start + [`MAX_RECORD_BYTES`]).
struct Guard {
    text: Vec<u8>,
    pos: usize,
    limit: std::rc::Rc<std::cell::Cell<usize>>,
}

/// The error a [`Guard`] returns at its limit.
const TOO_LONG: &str = "record longer than the limit";

impl std::io::Read for Guard {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.text.len().min(self.limit.get());
        if self.pos >= end {
            if self.pos < self.text.len() {
                return Err(std::io::Error::other(TOO_LONG));
            }
            return Ok(0);
        }
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.text[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The quoted fields of one record's raw text, as `csv_core` reads them (a field is
/// quoted when it starts with `"`; `""` inside is a quote): the one spanning the most
/// line breaks as (offset of its opening quote, breaks inside, closed).
fn widest_quote(raw: &[u8], delimiter: u8) -> Option<(usize, u64, bool)> {
    #[derive(PartialEq)]
    enum S {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = S::FieldStart;
    let mut open = 0;
    let mut breaks = 0u64;
    let mut best: Option<(usize, u64, bool)> = None;
    let keep = |open: usize, breaks: u64, closed: bool, best: &mut Option<(usize, u64, bool)>| {
        if best.is_none_or(|b| breaks > b.1 || !closed) {
            *best = Some((open, breaks, closed));
        }
    };
    for (i, &b) in raw.iter().enumerate() {
        state = match state {
            S::FieldStart if b == b'"' => {
                open = i;
                breaks = 0;
                S::Quoted
            }
            S::FieldStart | S::Unquoted if b == delimiter => S::FieldStart,
            S::FieldStart | S::Unquoted if b == b'\n' || b == b'\r' => break,
            S::FieldStart | S::Unquoted => S::Unquoted,
            S::Quoted if b == b'"' => S::QuoteInQuoted,
            S::Quoted => {
                if b == b'\n' || (b == b'\r' && raw.get(i + 1) != Some(&b'\n')) {
                    breaks += 1;
                }
                S::Quoted
            }
            S::QuoteInQuoted if b == b'"' => S::Quoted,
            S::QuoteInQuoted => {
                keep(open, breaks, true, &mut best);
                if b == delimiter {
                    S::FieldStart
                } else if b == b'\n' || b == b'\r' {
                    return best;
                } else {
                    S::Unquoted
                }
            }
        };
    }
    match state {
        S::Quoted => keep(open, breaks, false, &mut best),
        S::QuoteInQuoted => keep(open, breaks, true, &mut best),
        _ => {}
    }
    best
}

/// Parses a CSV file's bytes as a stream of records.
pub fn open(bytes: Vec<u8>, name: &str, source: &Source) -> Result<Records, FileRejection> {
    let decoded = decode::decode(bytes, name, source.encoding)?;
    let base = decoded.start;
    let delimiter = match source.delimiter {
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => {
            return Err(FileRejection(format!(
                "{name}: delimiter {c:?} is not an ASCII character"
            )));
        }
        None => sniff_delimiter(&decoded.text[base..decoded.text.len().min(base + 64 * 1024)]),
    };
    let limit = std::rc::Rc::new(std::cell::Cell::new(base + MAX_RECORD_BYTES));
    let guard = Guard {
        text: decoded.text,
        pos: base,
        limit: limit.clone(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(guard);
    let mut lines = LineCursor::default();
    let name = name.to_string();
    let encoding = decoded.encoding;
    let mut record = csv::ByteRecord::new();
    let mut done = false;
    // Where the record being read starts (offset in the text): the end of the last one.
    let mut next_start = base;
    Ok(Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let result = reader.read_byte_record(&mut record);
        let text = &reader.get_ref().text;
        let reject = |message: String| Some(Err(FileRejection(format!("{name}: {message}"))));
        match result {
            Ok(false) => {
                done = true;
                None
            }
            Ok(true) => {
                let mut start = base + record.position().map_or(0, |p| p.byte() as usize);
                // No record starts with a line terminator: skip blank lines and the
                // `\n` of a `\r\n` the reported start may point at.
                while matches!(text.get(start), Some(b'\r' | b'\n')) {
                    start += 1;
                }
                let end = base + reader.position().byte() as usize;
                next_start = end;
                limit.set(end.saturating_add(MAX_RECORD_BYTES));
                let line = lines.line_at(text, start);
                let end_line = line_of_range(text, start, end, line);
                // A record over several lines, or the last one (a quote still open at
                // the end of the file), is checked for a runaway quote.
                if end_line > line + 1 || end >= text.len() {
                    let raw = &text[start..end.min(text.len())];
                    if let Some((open, breaks, closed)) = widest_quote(raw, delimiter) {
                        let open_line = line_of_range(text, start, start + open, line);
                        if !closed {
                            done = true;
                            return reject(format!(
                                "line {open_line}: a quoted field opened on this line is not \
                                 closed before the end of the file; every line after it would \
                                 be read as one cell"
                            ));
                        }
                        if breaks > MAX_QUOTED_LINES {
                            done = true;
                            return reject(format!(
                                "line {open_line}: a quoted field opened on this line runs over \
                                 {} lines (at most {MAX_QUOTED_LINES} are accepted); a quote is \
                                 probably not closed",
                                breaks + 1
                            ));
                        }
                    }
                }
                if record.len() > MAX_COLUMNS {
                    done = true;
                    return reject(format!(
                        "line {line} has {} columns; at most {MAX_COLUMNS} are accepted",
                        record.len()
                    ));
                }
                let mut cells = Vec::with_capacity(record.len());
                for field in record.iter() {
                    match std::str::from_utf8(field) {
                        Ok("") => cells.push(Cell::Empty),
                        Ok(s) => cells.push(Cell::Text(s.to_string())),
                        Err(_) => {
                            done = true;
                            return reject(format!(
                                "line {line} is not valid UTF-8 (read as {encoding}); \
                                 if the file is GBK, say encoding = \"gbk\" in the pipeline"
                            ));
                        }
                    }
                }
                Some(Ok(RawRecord::new(line, cells)))
            }
            Err(e) => {
                done = true;
                match e.kind() {
                    csv::ErrorKind::Io(io) if io.to_string() == TOO_LONG => {
                        let mut start = next_start;
                        while matches!(text.get(start), Some(b'\r' | b'\n')) {
                            start += 1;
                        }
                        let line = lines.line_at(text, start);
                        let upto = text.len().min(start + MAX_RECORD_BYTES);
                        match widest_quote(&text[start..upto], delimiter) {
                            Some((open, _, false)) => reject(format!(
                                "line {}: a quoted field opened on this line is not closed \
                                 within {MAX_RECORD_BYTES} bytes; a quote is probably not closed",
                                line_of_range(text, start, start + open, line)
                            )),
                            _ => reject(format!(
                                "line {line}: a record longer than {MAX_RECORD_BYTES} bytes \
                                 (the limit); the file is not a table this reader accepts"
                            )),
                        }
                    }
                    csv::ErrorKind::Io(io) => reject(io.to_string()),
                    _ => reject(e.to_string()),
                }
            }
        }
    })))
}

/// The line of `to`, given that `from` is on line `line` (`from <= to`).
fn line_of_range(text: &[u8], from: usize, to: usize, line: u64) -> u64 {
    line + count_breaks(text, from, to.min(text.len()))
}

#[cfg(test)]
mod tests {
    use super::sniff_delimiter;

    #[test]
    fn thousands_separators_do_not_fool_the_sniffer() {
        let head = "代码;金额;日期\n1;1,234,567;2023\n2;12,345,678,901;2023\n3;5;2023\n";
        assert_eq!(sniff_delimiter(head.as_bytes()), b';');
    }

    fn lines_and_error(text: &str) -> (Vec<u64>, Option<String>) {
        let source: crate::pipeline::Source =
            toml::from_str("name='t'\nkind='patent'\nglob=['x']").unwrap();
        let mut lines = vec![];
        for r in super::open(text.as_bytes().to_vec(), "a.csv", &source).unwrap() {
            match r {
                Ok(r) => lines.push(r.row_number),
                Err(e) => return (lines, Some(e.0)),
            }
        }
        (lines, None)
    }

    #[test]
    fn line_numbers_are_physical_for_every_line_end() {
        let lf = "title\nh1,h2\n1,\"x\ny\"\n2,z\n\n3,w\n";
        for text in [
            lf.to_string(),
            lf.replace('\n', "\r\n"),
            lf.replace('\n', "\r"),
        ] {
            assert_eq!(
                lines_and_error(&text),
                (vec![1, 2, 3, 5, 7], None),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_quote_never_closed_rejects_the_file_naming_its_line() {
        let mut text = String::from("a,b\n");
        for i in 2..=1000 {
            if i == 5 {
                text.push_str("5,\"open\n");
            } else {
                text.push_str(&format!("{i},x\n"));
            }
        }
        let (lines, e) = lines_and_error(&text);
        assert_eq!(lines, vec![1, 2, 3, 4]);
        let e = e.unwrap();
        assert!(
            e.starts_with("a.csv: line 5: a quoted field opened on this line"),
            "{e}"
        );
        // A closed quote spanning more than 100 lines is refused too, naming its line.
        let long = format!("a,b\n1,\"{}\"\n2,y\n", "l\n".repeat(150));
        let e = lines_and_error(&long).1.unwrap();
        assert!(
            e.contains("line 2: a quoted field opened on this line runs over 151 lines"),
            "{e}"
        );
        // A quote open at the end of a short file as well.
        let e = lines_and_error("a,b\n1,x\n2,\"y\n3,z\n").1.unwrap();
        assert!(e.starts_with("a.csv: line 3: a quoted field"), "{e}");
        // Quotes that close, a quote inside an unquoted field, a few lines in a field.
        assert_eq!(
            lines_and_error("a,b\n1,ab\"c\n2,\"x\"\"y\ny\"\n3,\"z\"\n").0,
            vec![1, 2, 3, 5]
        );
    }

    #[test]
    fn records_and_columns_are_bounded() {
        let line = format!("a,b\n1,{}\n", "x".repeat(super::MAX_RECORD_BYTES + 10));
        let (lines, e) = lines_and_error(&line);
        assert_eq!(lines, vec![1]);
        assert!(
            e.unwrap()
                .contains("line 2: a record longer than 1048576 bytes")
        );
        let wide = format!("a\n{}\n", ",".repeat(super::MAX_COLUMNS));
        let e = lines_and_error(&wide).1.unwrap();
        assert!(e.contains("line 2 has 16385 columns"), "{e}");
    }

    #[test]
    fn sniffs() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n"), b',');
        assert_eq!(sniff_delimiter(b"a\tb\tc\n1\t2,5\t3\n"), b'\t');
        assert_eq!(sniff_delimiter(b"a;b;c\n\"1,2\";2;3\n"), b';');
    }
}
