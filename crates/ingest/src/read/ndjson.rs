//! NDJSON: one JSON object per line, keys matched like headers. A first pass collects
//! the keys (in first-seen order) so that every record aligns with one header; the
//! second pass streams the records. A line that is not a JSON object rejects the file,
//! naming the line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value as Json;

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::Source;
use crate::read::{Opened, RawRecord, decode};

fn to_cell(v: &Json) -> Cell {
    match v {
        Json::Null => Cell::Empty,
        Json::Bool(b) => Cell::Bool(*b),
        Json::Number(n) => n.as_f64().map(Cell::Number).unwrap_or(Cell::Empty),
        Json::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    }
}

fn lines(
    path: &Path,
    source: &Source,
) -> Result<impl Iterator<Item = (u64, Result<String, FileRejection>)> + use<>, FileRejection> {
    let decoded = decode::open(path, source.encoding)?;
    let name = path.display().to_string();
    Ok(BufReader::new(decoded.reader)
        .split(b'\n')
        .enumerate()
        .map(move |(i, line)| {
            let n = i as u64 + 1;
            let text = line
                .map_err(|e| FileRejection(format!("{name}: line {n}: {e}")))
                .and_then(|bytes| {
                    String::from_utf8(bytes)
                        .map_err(|_| FileRejection(format!("{name}: line {n} is not valid UTF-8")))
                });
            (n, text)
        }))
}

fn parse_line(
    name: &str,
    n: u64,
    text: &str,
) -> Result<Option<serde_json::Map<String, Json>>, FileRejection> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(FileRejection(format!(
            "{name}: line {n} is not a JSON object"
        ))),
        Err(e) => Err(FileRejection(format!(
            "{name}: line {n} is not valid JSON: {e}"
        ))),
    }
}

/// Opens an NDJSON file.
pub fn open(path: &Path, source: &Source) -> Result<Opened, FileRejection> {
    let name = path.display().to_string();
    let mut header: Vec<String> = vec![];
    let mut index: HashMap<String, usize> = HashMap::new();
    for (n, line) in lines(path, source)? {
        if let Some(map) = parse_line(&name, n, &line?)? {
            for key in map.keys() {
                if !index.contains_key(key) {
                    index.insert(key.clone(), header.len());
                    header.push(key.clone());
                }
            }
        }
    }
    let width = header.len();
    let records = lines(path, source)?.filter_map(move |(n, line)| {
        let map = match line.and_then(|l| parse_line(&name, n, &l)) {
            Ok(Some(map)) => map,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let mut cells = vec![Cell::Empty; width];
        for (k, v) in &map {
            if let Some(&i) = index.get(k) {
                cells[i] = to_cell(v);
            }
        }
        Some(Ok(RawRecord {
            row_number: n,
            cells,
        }))
    });
    Ok(Opened::Keyed {
        header,
        records: Box::new(records),
    })
}
