//! The small comma-separated files of reference data (the town registry, its events,
//! the classification rules): a fixed header, no quoting, every error naming the file
//! and line.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The data rows of a file: (line, fields), header = line 1.
pub(crate) struct Rows<'a> {
    pub(crate) path: PathBuf,
    pub(crate) rows: Vec<(usize, Vec<&'a str>)>,
}

impl Rows<'_> {
    /// An error naming the file and the line.
    pub(crate) fn bad(&self, line: usize, message: String) -> Error {
        Error::Reference {
            path: self.path.clone(),
            line,
            message,
        }
    }
}

/// Checks the header (a BOM is accepted) and the field count of every non-empty line.
pub(crate) fn rows<'a>(path: &Path, text: &'a str, columns: &[&str]) -> Result<Rows<'a>> {
    let bad = |line: usize, message: String| Error::Reference {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| {
            l.trim_start_matches('\u{feff}')
                .split(',')
                .map(str::trim)
                .collect()
        })
        .unwrap_or_default();
    if header != columns {
        return Err(bad(1, format!("header must be {}", columns.join(","))));
    }
    let mut out = vec![];
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != columns.len() {
            return Err(bad(
                i + 1,
                format!("{} fields, expected {}", f.len(), columns.len()),
            ));
        }
        out.push((i + 1, f));
    }
    Ok(Rows {
        path: path.to_path_buf(),
        rows: out,
    })
}
