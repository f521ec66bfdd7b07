//! NDJSON: one JSON object per line, keys matched like headers. A first pass collects
//! the keys so that every record aligns with one header; the second pass streams the
//! records. A line that is not a JSON object rejects the file, naming the line.
//!
//! Both passes read a line straight into what they need (the keys not seen yet; the
//! record's cells) instead of into a `serde_json` map: at scale 100 the NDJSON files
//! hold a third of the rows and took two thirds of ingest. The header's order is the
//! one a map gave before (`serde_json::Map` sorts its keys): a line's new keys are added
//! in sorted order, lines in file order. A line either fast path refuses is read again
//! as a `serde_json::Value`, so a rejected file's message is that parser's.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::Source;
use crate::read::{Opened, RawRecord, Scanned, decode};

/// The longest line accepted (4 MiB): an object with thousands of keys fits; a longer
/// line is not a row of any agency export, and a bound keeps memory near the file's
/// own size.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// A line's text, checked for length and UTF-8.
fn check_line<'t>(bytes: &'t [u8], n: u64, name: &str) -> Result<&'t str, FileRejection> {
    if bytes.len() > MAX_LINE_BYTES {
        return Err(FileRejection(format!(
            "{name}: line {n} is {} bytes long; at most {MAX_LINE_BYTES} are accepted",
            bytes.len()
        )));
    }
    std::str::from_utf8(bytes)
        .map_err(|_| FileRejection(format!("{name}: line {n} is not valid UTF-8")))
}

/// The lines of the text from `start`, split at `\n`, numbered from 1.
fn lines<'t>(
    text: &'t [u8],
    start: usize,
    name: &'t str,
) -> impl Iterator<Item = (u64, Result<&'t str, FileRejection>)> + 't {
    text[start.min(text.len())..]
        .split(|b| *b == b'\n')
        .enumerate()
        .map(move |(i, bytes)| (i as u64 + 1, check_line(bytes, i as u64 + 1, name)))
}

/// A line's JSON text, or `None` for a blank line.
fn json_text(text: &str) -> Option<&str> {
    let text = text.trim_start_matches('\u{feff}').trim();
    (!text.is_empty()).then_some(text)
}

/// Reads one line with `seed`; on any failure, says why as the `Value` parser does.
fn read_line<'a, S>(name: &str, n: u64, text: &'a str, seed: S) -> Result<(), FileRejection>
where
    S: DeserializeSeed<'a, Value = ()>,
{
    let mut de = serde_json::Deserializer::from_str(text);
    let Err(fast) = seed.deserialize(&mut de).and_then(|()| de.end()) else {
        return Ok(());
    };
    Err(match serde_json::from_str::<Json>(text) {
        Err(e) => FileRejection(format!("{name}: line {n} is not valid JSON: {e}")),
        Ok(Json::Object(_)) => FileRejection(format!("{name}: line {n}: {fast}")),
        Ok(_) => FileRejection(format!("{name}: line {n} is not a JSON object")),
    })
}

/// A key, borrowed from the line when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// First pass: the keys of a line that `index` does not have yet.
struct NewKeys<'i> {
    index: &'i HashMap<String, Option<usize>>,
    new: &'i mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for NewKeys<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NewKeys<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            map.next_value::<IgnoredAny>()?;
            if !self.index.contains_key(key.as_ref()) && !self.new.iter().any(|k| *k == key) {
                self.new.push(key.into_owned());
            }
        }
        Ok(())
    }
}

/// Second pass: a line's values into the cells of their keys (a repeated key's last
/// value wins, as in a map).
struct Cells<'i> {
    index: &'i HashMap<String, Option<usize>>,
    cells: &'i mut [Cell],
}

impl<'de> DeserializeSeed<'de> for Cells<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Cells<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            match self.index.get(key.as_ref()) {
                Some(&Some(i)) => self.cells[i] = map.next_value::<JsonCell>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A JSON value as a cell: null is empty, numbers are numbers, strings text, and an
/// array or object its compact JSON text.
struct JsonCell(Cell);

impl<'de> de::Deserialize<'de> for JsonCell {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CellVisitor)
    }
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = JsonCell;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<JsonCell, E> {
        Ok(JsonCell(Cell::Empty))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JsonCell, E> {
        Ok(JsonCell(Cell::Bool(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonCell, E> {
        Ok(JsonCell(Cell::Number(v as f64)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonCell, E> {
        Ok(JsonCell(Cell::Number(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonCell, E> {
        Ok(JsonCell(Cell::Number(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonCell, E> {
        Ok(JsonCell(Cell::Text(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<JsonCell, E> {
        Ok(JsonCell(Cell::Text(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<JsonCell, A::Error> {
        let v: Json = de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(JsonCell(Cell::Text(v.to_string())))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<JsonCell, A::Error> {
        let v: Json = de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(JsonCell(Cell::Text(v.to_string())))
    }
}

/// Parses an NDJSON file's bytes. Only the keys `keep` accepts (the ones a column's
/// alias matches) become header columns with a cell in every record: a file whose
/// lines carry 50,000 other keys costs no 50,000 cells per row. A quarantined row's
/// `raw` comes from its line, with all of its own keys.
pub fn open(
    bytes: Vec<u8>,
    name: &str,
    source: &Source,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Opened, FileRejection> {
    let decoded = decode::decode(bytes, name, source.encoding)?;
    let mut keys = Keys::default();
    for (n, line) in lines(&decoded.text, decoded.start, name) {
        keys.add(name, n, line?, keep)?;
    }
    let Keys { header, index, .. } = keys;
    let width = header.len();
    let name = name.to_string();
    let (text, start) = (decoded.text, decoded.start);
    let mut at = start.min(text.len());
    let mut n = 0u64;
    let records = std::iter::from_fn(move || {
        loop {
            if at >= text.len() {
                return None;
            }
            let rest = &text[at..];
            let len = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            at += len + 1;
            n += 1;
            let line = match check_line(&rest[..len], n, &name) {
                Ok(line) => line,
                Err(e) => return Some(Err(e)),
            };
            if let Some(record) = record(&name, n, line, &index, width) {
                return Some(record);
            }
        }
    });
    Ok(Opened::Keyed {
        header,
        records: Box::new(records),
    })
}

/// [`open`] of a UTF-8 file on disk (`start`: where its text begins, after a BOM),
/// read line by line, twice (the keys, then the records), instead of held whole: at
/// scale 100 one NDJSON export is 523 MB. `scanned` is what reading it through gave
/// (its hash, already checked against the files loaded before); each pass hashes what
/// it reads, and a file whose content is no longer that is rejected for this run, at
/// the end of the pass that finds it (the records read so far are dropped with it).
pub fn open_file(
    path: &Path,
    name: &str,
    start: usize,
    scanned: &Scanned,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Opened, FileRejection> {
    let mut keys = Keys::default();
    let mut lines = FileLines::open(path, name, start)?;
    while let Some(line) = lines.next_line() {
        let (n, line) = line?;
        keys.add(name, n, line, keep)?;
    }
    lines.finish(scanned)?;
    let Keys { header, index, .. } = keys;
    let width = header.len();
    let name = name.to_string();
    let scanned = scanned.clone();
    let mut lines = Some(FileLines::open(path, &name, start)?);
    let records = std::iter::from_fn(move || {
        loop {
            let reading = lines.as_mut()?;
            let Some(line) = reading.next_line() else {
                // The end: the content must be the one that was hashed.
                let done = lines.take()?;
                return done.finish(&scanned).err().map(Err);
            };
            let (n, line) = match line {
                Ok(line) => line,
                Err(e) => {
                    lines = None;
                    return Some(Err(e));
                }
            };
            if let Some(record) = record(&name, n, line, &index, width) {
                return Some(record);
            }
        }
    });
    Ok(Opened::Keyed {
        header,
        records: Box::new(records),
    })
}

/// The first pass: the header (kept keys, in the order [`open`] documents) and every
/// key seen, each judged once, with its column if kept.
#[derive(Default)]
struct Keys {
    header: Vec<String>,
    index: HashMap<String, Option<usize>>,
    new: Vec<String>,
}

impl Keys {
    /// Adds a line's new keys (nothing for a blank line).
    fn add(
        &mut self,
        name: &str,
        n: u64,
        line: &str,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(), FileRejection> {
        let Some(text) = json_text(line) else {
            return Ok(());
        };
        read_line(
            name,
            n,
            text,
            NewKeys {
                index: &self.index,
                new: &mut self.new,
            },
        )?;
        self.new.sort_unstable();
        for key in self.new.drain(..) {
            if keep(&key) {
                self.index.insert(key.clone(), Some(self.header.len()));
                self.header.push(key);
            } else {
                self.index.insert(key, None);
            }
        }
        Ok(())
    }
}

/// A line's record (`None` for a blank line).
fn record(
    name: &str,
    n: u64,
    line: &str,
    index: &HashMap<String, Option<usize>>,
    width: usize,
) -> Option<Result<RawRecord, FileRejection>> {
    let json = json_text(line)?;
    let mut cells = vec![Cell::Empty; width];
    let read = read_line(
        name,
        n,
        json,
        Cells {
            index,
            cells: &mut cells,
        },
    );
    Some(read.map(|()| RawRecord {
        row_number: n,
        cells,
        line: Some(json.to_string()),
    }))
}

/// A file's lines read from disk, split at `\n` and numbered from 1 as [`lines`]
/// does, each at most [`MAX_LINE_BYTES`] held; every byte read is hashed.
struct FileLines {
    reader: std::io::BufReader<std::fs::File>,
    hasher: Sha256,
    name: String,
    n: u64,
    buf: Vec<u8>,
}

impl FileLines {
    fn open(path: &Path, name: &str, start: usize) -> Result<FileLines, FileRejection> {
        use std::io::Read;
        let file = std::fs::File::open(path)
            .map_err(|e| FileRejection(format!("{name}: cannot open: {e}")))?;
        let mut lines = FileLines {
            reader: std::io::BufReader::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            name: name.to_string(),
            n: 0,
            buf: vec![],
        };
        // The BOM, hashed like every other byte.
        let mut bom = vec![];
        (&mut lines.reader)
            .take(start as u64)
            .read_to_end(&mut bom)
            .map_err(|e| lines.failed(e))?;
        lines.hasher.update(&bom);
        Ok(lines)
    }

    fn failed(&self, e: std::io::Error) -> FileRejection {
        FileRejection(format!("{}: cannot read: {e}", self.name))
    }

    /// The next line and its number; `None` at the end of the file.
    fn next_line(&mut self) -> Option<Result<(u64, &str), FileRejection>> {
        use std::io::{BufRead, Read};
        self.buf.clear();
        let got = match (&mut self.reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut self.buf)
        {
            Ok(got) => got,
            Err(e) => return Some(Err(self.failed(e))),
        };
        if got == 0 {
            return None;
        }
        self.hasher.update(&self.buf);
        self.n += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > MAX_LINE_BYTES {
            // Too long: the rest of the line is read (and hashed) only to say how long.
            let mut len = self.buf.len();
            loop {
                let block = match self.reader.fill_buf() {
                    Ok(block) => block,
                    Err(e) => return Some(Err(self.failed(e))),
                };
                if block.is_empty() {
                    break;
                }
                let (used, ended) = match block.iter().position(|b| *b == b'\n') {
                    Some(at) => (at + 1, true),
                    None => (block.len(), false),
                };
                self.hasher.update(&block[..used]);
                len += used - usize::from(ended);
                self.reader.consume(used);
                if ended {
                    break;
                }
            }
            return Some(Err(FileRejection(format!(
                "{}: line {} is {len} bytes long; at most {MAX_LINE_BYTES} are accepted",
                self.name, self.n
            ))));
        }
        Some(check_line(&self.buf, self.n, &self.name).map(|line| (self.n, line)))
    }

    /// Reads what is left and checks that the bytes read are the ones `scanned` hashed.
    fn finish(mut self, scanned: &Scanned) -> Result<(), FileRejection> {
        use std::io::Read;
        let mut rest = vec![];
        self.reader
            .read_to_end(&mut rest)
            .map_err(|e| self.failed(e))?;
        self.hasher.update(&rest);
        scanned.same_content(&self.name, &crate::read::hex(&self.hasher.finalize()))
    }
}

/// A quarantined NDJSON row's `raw`: its own keys and values as cells would show them
/// (a nested value as its compact JSON text), a repeated key's last value.
pub fn raw_of_line(line: &str) -> Option<serde_json::Map<String, Json>> {
    struct Pairs(serde_json::Map<String, Json>);
    impl<'de> Visitor<'de> for &mut Pairs {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(Key(key)) = map.next_key()? {
                let JsonCell(cell) = map.next_value()?;
                self.0.insert(key.into_owned(), cell.to_json());
            }
            Ok(())
        }
    }
    let mut pairs = Pairs(serde_json::Map::new());
    let mut de = serde_json::Deserializer::from_str(line);
    de::Deserializer::deserialize_map(&mut de, &mut pairs).ok()?;
    Some(pairs.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Format;

    /// A file's header and its records (line number, cells).
    type Read = (Vec<String>, Vec<(u64, Vec<Cell>)>);

    /// The reader this one replaced: every line into a `serde_json` map. The header and
    /// cells of the new reader must be exactly its.
    fn through_maps(text: &str) -> Read {
        let maps: Vec<(u64, serde_json::Map<String, Json>)> = text
            .split('\n')
            .enumerate()
            .filter_map(|(i, l)| {
                let l = json_text(l)?;
                match serde_json::from_str::<Json>(l) {
                    Ok(Json::Object(map)) => Some((i as u64 + 1, map)),
                    other => panic!("oracle: line {l}: {other:?}"),
                }
            })
            .collect();
        let mut header: Vec<String> = vec![];
        for (_, map) in &maps {
            for key in map.keys() {
                if !header.contains(key) {
                    header.push(key.clone());
                }
            }
        }
        let rows = maps
            .iter()
            .map(|(n, map)| {
                let mut cells = vec![Cell::Empty; header.len()];
                for (k, v) in map {
                    let i = header.iter().position(|h| h == k).expect("key in header");
                    cells[i] = match v {
                        Json::Null => Cell::Empty,
                        Json::Bool(b) => Cell::Bool(*b),
                        Json::Number(x) => x.as_f64().map(Cell::Number).unwrap_or(Cell::Empty),
                        Json::String(s) => Cell::Text(s.clone()),
                        other => Cell::Text(other.to_string()),
                    };
                }
                (*n, cells)
            })
            .collect();
        (header, rows)
    }

    fn read(text: &str) -> Result<Read, String> {
        read_bytes(text.as_bytes())
    }

    const NAME: &str = "a.ndjson";

    fn source() -> Source {
        toml::from_str("name='t'\nkind='employment'\nglob=['x']").unwrap()
    }

    /// The header and records of an opened file, or the first rejection.
    fn collect(opened: Result<Opened, FileRejection>) -> Result<Read, String> {
        let strip = |e: FileRejection| e.0.replacen(&format!("{NAME}: "), "", 1);
        let Opened::Keyed { header, records } = opened.map_err(strip)? else {
            panic!("NDJSON is keyed");
        };
        let rows = records
            .map(|r| r.map(|r| (r.row_number, r.cells)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(strip)?;
        Ok((header, rows))
    }

    /// Reads the bytes in memory and from a file on disk (line by line when they are
    /// UTF-8): both must give the same header, records and rejections.
    fn read_bytes(bytes: &[u8]) -> Result<Read, String> {
        let source = source();
        let in_memory = collect(open(bytes.to_vec(), NAME, &source, &|_| true));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NAME);
        std::fs::write(&path, bytes).unwrap();
        let from_disk = crate::read::read_input(&path, NAME, Some(Format::Ndjson), &source)
            .and_then(|(_, input)| {
                crate::read::open_input(input, &path, NAME, Format::Ndjson, &source, &|_| true)
            });
        assert_eq!(
            collect(from_disk),
            in_memory,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        in_memory
    }

    #[test]
    fn a_file_on_disk_reads_as_its_bytes_do() {
        let long = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_LINE_BYTES));
        for bytes in [
            b"{\"a\": 1}".to_vec(),
            b"{\"a\": 1}\r\n{\"b\": 2}\r\n\r\n".to_vec(),
            b"\xef\xbb\xbf{\"a\": 1}\n\n\n{\"a\": 2}".to_vec(),
            b"\xef\xbb\xbf".to_vec(),
            b"".to_vec(),
            b"{\"a\": 1}\n{\"a\": \"\xff\"}\n".to_vec(),
            format!("{{\"a\": 1}}\n{long}\n{{\"a\": 2}}\n").into_bytes(),
            format!("{{\"a\": 1}}\n{long}").into_bytes(),
            format!("{{\"a\": \"{}\"}}\n", "y".repeat(MAX_LINE_BYTES - 9)).into_bytes(),
            b"\xff\xfe{".to_vec(),
        ] {
            let _ = read_bytes(&bytes);
        }
        let e = read_bytes(format!("{{\"a\": 1}}\n{long}\n").as_bytes()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "line 2 is {} bytes long; at most {MAX_LINE_BYTES} are accepted",
                long.len()
            )
        );
    }

    #[test]
    fn a_file_that_changes_after_it_was_hashed_is_rejected() {
        let source = source();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NAME);
        let before = "{\"a\": 1}\n{\"a\": 2}\n";
        let after = "{\"a\": 1}\n{\"a\": 3}\n";
        let changed = "the file changed while it was read (its content differs from the 18 \
                       bytes read first); it is left for the next run";
        // Between the hash and the keys.
        std::fs::write(&path, before).unwrap();
        let (_, input) =
            crate::read::read_input(&path, NAME, Some(Format::Ndjson), &source).unwrap();
        std::fs::write(&path, after).unwrap();
        let opened =
            crate::read::open_input(input, &path, NAME, Format::Ndjson, &source, &|_| true);
        assert_eq!(collect(opened).unwrap_err(), changed);
        // Between the keys and the records: the records read are followed by the
        // rejection, which drops the file.
        std::fs::write(&path, before).unwrap();
        let (_, input) =
            crate::read::read_input(&path, NAME, Some(Format::Ndjson), &source).unwrap();
        let opened =
            crate::read::open_input(input, &path, NAME, Format::Ndjson, &source, &|_| true);
        std::fs::write(&path, after).unwrap();
        assert_eq!(collect(opened).unwrap_err(), changed);
    }

    #[test]
    fn reads_as_a_map_would() {
        let text = concat!(
            "\u{feff}{\"b\": 1, \"a\": \"x\", \"b\": 2.5}\n",
            "\n",
            "{\"c\": null, \"a\": -3, \"0\": true, \"z\": 18446744073709551615}\r\n",
            "  {\"k\\u00e9\": [1, {\"x\": \"y\\n\"}], \"a\": {\"n\": null, \"m\": 1e3}}  \n",
            "{\"b\": \"\\\"quoted\\\"\", \"ké\": 140214, \"a\": 0.1}\n",
            "{}\n",
        );
        let (header, rows) = read(text).unwrap();
        assert_eq!((header.clone(), rows.clone()), through_maps(text));
        assert_eq!(header, ["a", "b", "0", "c", "z", "ké"]);
        assert_eq!(
            rows[0].1[1],
            Cell::Number(2.5),
            "a repeated key's last value"
        );
        assert_eq!(
            rows[2].1[5],
            Cell::Text("[1,{\"x\":\"y\\n\"}]".into()),
            "escaped key, nested value as compact JSON"
        );
        assert_eq!(rows[2].1[0], Cell::Text("{\"m\":1000.0,\"n\":null}".into()));
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 3, 4, 5, 6]
        );
    }

    #[test]
    fn only_kept_keys_become_cells_and_raw_keeps_the_rows_own_keys() {
        let text = "{\"z\": 1, \"a\": \"x\", \"extra_1\": [1]}\n{\"a\": \"y\", \"extra_2\": 2}\n";
        let source: Source = toml::from_str("name='t'\nkind='employment'\nglob=['x']").unwrap();
        let Opened::Keyed { header, records } =
            open(text.as_bytes().to_vec(), "a.ndjson", &source, &|k| {
                !k.starts_with("extra")
            })
            .unwrap()
        else {
            panic!("NDJSON is keyed");
        };
        assert_eq!(header, ["a", "z"]);
        let rows: Vec<RawRecord> = records.map(Result::unwrap).collect();
        assert_eq!(rows[0].cells, [Cell::Text("x".into()), Cell::Number(1.0)]);
        assert_eq!(rows[1].cells, [Cell::Text("y".into()), Cell::Empty]);
        let raw = raw_of_line(rows[1].line.as_deref().unwrap()).unwrap();
        assert_eq!(
            Json::Object(raw).to_string(),
            r#"{"a":"y","extra_2":2.0}"#,
            "the row's own keys, as cells show them"
        );
    }

    #[test]
    fn bad_lines_reject_the_file_naming_the_line() {
        for (text, message) in [
            ("{\"a\": 1}\n[1, 2]\n", "line 2 is not a JSON object"),
            ("{\"a\": 1}\n\"a\"\n", "line 2 is not a JSON object"),
            ("{\"a\": 1}\n{\"a\": }\n", "line 2 is not valid JSON: "),
            ("{\"a\": 1}\n[1,\n", "line 2 is not valid JSON: "),
            (
                "{\"a\": 1} {\"b\": 2}\n",
                "line 1 is not valid JSON: trailing characters",
            ),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.starts_with(message), "{text:?}: {e}");
        }
    }
}
