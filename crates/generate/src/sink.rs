//! File writers: CSV (UTF-8, UTF-8 with BOM, GBK; comma, tab or semicolon; quoted
//! multi-line fields), XLSX (a merged title row and an optional blank row above the
//! header, typed cells) and NDJSON. Each returns, for every record written, the row
//! number ingestion will report for it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatAlign, Workbook, Worksheet};

use crate::error::{Error, Result, io};
use crate::value::Cell;

/// A text encoding for CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    /// UTF-8.
    Utf8,
    /// UTF-8 with a byte-order mark.
    Bom,
    /// GBK.
    Gbk,
}

/// A file format with its options.
#[derive(Debug, Clone)]
pub enum FileFormat {
    /// Delimited text.
    Csv {
        /// Encoding.
        enc: Enc,
        /// Separator.
        delim: char,
        /// Windows line ends.
        crlf: bool,
    },
    /// A workbook.
    Xlsx {
        /// Merged title above the header.
        title: Option<&'static str>,
        /// A blank row between title and header.
        blank_row: bool,
        /// Sheet name.
        sheet: &'static str,
    },
    /// One JSON object per line.
    Ndjson,
}

/// A writer of one file.
pub trait Sink {
    /// Writes a record; returns its row number as ingestion counts it.
    fn write(&mut self, cells: &[Cell]) -> Result<u64>;
    /// Flushes and closes the file.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Opens a file for writing with its header.
pub fn open(path: &Path, format: &FileFormat, header: &[&str]) -> Result<Box<dyn Sink>> {
    Ok(match format {
        FileFormat::Csv { enc, delim, crlf } => {
            Box::new(CsvSink::new(path, *enc, *delim, *crlf, header)?)
        }
        FileFormat::Xlsx {
            title,
            blank_row,
            sheet,
        } => Box::new(XlsxSink::new(path, *title, *blank_row, sheet, header)?),
        FileFormat::Ndjson => Box::new(NdjsonSink::new(path, header)?),
    })
}

struct CsvSink {
    path: PathBuf,
    out: BufWriter<File>,
    enc: Enc,
    delim: char,
    eol: &'static str,
    /// The physical line the next record starts on.
    line: u64,
}

impl CsvSink {
    fn new(path: &Path, enc: Enc, delim: char, crlf: bool, header: &[&str]) -> Result<CsvSink> {
        let file = File::create(path).map_err(io(path))?;
        let mut sink = CsvSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            enc,
            delim,
            eol: if crlf { "\r\n" } else { "\n" },
            line: 1,
        };
        if enc == Enc::Bom {
            sink.out.write_all(b"\xEF\xBB\xBF").map_err(io(path))?;
        }
        let cells: Vec<Cell> = header
            .iter()
            .map(|h| Cell::Text((*h).to_string()))
            .collect();
        sink.write(&cells)?;
        Ok(sink)
    }

    fn field(&self, text: &str, line: &mut String) {
        if text.contains([self.delim, '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&text.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(text);
        }
    }
}

impl Sink for CsvSink {
    fn write(&mut self, cells: &[Cell]) -> Result<u64> {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                line.push(self.delim);
            }
            let text = match c {
                Cell::Empty => String::new(),
                Cell::Text(s) => s.clone(),
                Cell::Num(n) => n.to_string(),
                Cell::Date(d) | Cell::Month(d) => d.format("%Y-%m-%d").to_string(),
                Cell::Bool(b) => if *b { "是" } else { "否" }.to_string(),
            };
            self.field(&text, &mut line);
        }
        let start = self.line;
        self.line += 1 + line.matches('\n').count() as u64;
        line.push_str(self.eol);
        match self.enc {
            Enc::Gbk => {
                let (bytes, _, unmappable) = encoding_rs::GBK.encode(&line);
                if unmappable {
                    return Err(Error::Unencodable {
                        path: self.path.clone(),
                        text: line,
                    });
                }
                self.out.write_all(&bytes).map_err(io(&self.path))?;
            }
            Enc::Utf8 | Enc::Bom => self
                .out
                .write_all(line.as_bytes())
                .map_err(io(&self.path))?,
        }
        Ok(start)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(io(&self.path))
    }
}

struct NdjsonSink {
    path: PathBuf,
    out: BufWriter<File>,
    keys: Vec<String>,
    line: u64,
}

impl NdjsonSink {
    fn new(path: &Path, header: &[&str]) -> Result<NdjsonSink> {
        let file = File::create(path).map_err(io(path))?;
        Ok(NdjsonSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            keys: header.iter().map(|h| (*h).to_string()).collect(),
            line: 0,
        })
    }
}

impl Sink for NdjsonSink {
    fn write(&mut self, cells: &[Cell]) -> Result<u64> {
        use serde_json::Value as J;
        // Keys in header order (serde_json's map would sort them).
        let mut parts = vec![];
        for (key, cell) in self.keys.iter().zip(cells) {
            let value = match cell {
                Cell::Empty => J::Null,
                Cell::Text(s) => J::String(s.clone()),
                Cell::Num(n) => serde_json::Number::from_f64(*n)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(n.to_string())),
                Cell::Date(d) | Cell::Month(d) => J::String(d.format("%Y-%m-%d").to_string()),
                Cell::Bool(b) => J::Bool(*b),
            };
            parts.push(format!("{}:{}", J::String(key.clone()), value));
        }
        self.line += 1;
        writeln!(self.out, "{{{}}}", parts.join(",")).map_err(io(&self.path))?;
        Ok(self.line)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(io(&self.path))
    }
}

struct XlsxSink {
    path: PathBuf,
    sheet: Worksheet,
    /// 0-based index of the next row.
    row: u32,
    date: Format,
    month: Format,
}

impl XlsxSink {
    fn new(
        path: &Path,
        title: Option<&str>,
        blank_row: bool,
        sheet_name: &str,
        header: &[&str],
    ) -> Result<XlsxSink> {
        let err = |source| Error::Xlsx {
            path: path.to_path_buf(),
            source,
        };
        let mut sheet = Worksheet::new();
        sheet.set_name(sheet_name).map_err(err)?;
        let mut row = 0;
        if let Some(title) = title {
            let f = Format::new().set_bold().set_align(FormatAlign::Center);
            let last = (header.len().max(2) - 1) as u16;
            sheet.merge_range(0, 0, 0, last, title, &f).map_err(err)?;
            row = if blank_row { 2 } else { 1 };
        }
        let bold = Format::new().set_bold();
        for (c, h) in header.iter().enumerate() {
            sheet
                .write_string_with_format(row, c as u16, *h, &bold)
                .map_err(err)?;
            sheet.set_column_width(c as u16, 16).map_err(err)?;
        }
        Ok(XlsxSink {
            path: path.to_path_buf(),
            sheet,
            row: row + 1,
            date: Format::new().set_num_format("yyyy-mm-dd"),
            month: Format::new().set_num_format("yyyy-mm"),
        })
    }
}

fn excel_date(
    d: chrono::NaiveDate,
) -> std::result::Result<ExcelDateTime, rust_xlsxwriter::XlsxError> {
    use chrono::Datelike;
    ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)
}

impl Sink for XlsxSink {
    fn write(&mut self, cells: &[Cell]) -> Result<u64> {
        let err = |source| Error::Xlsx {
            path: self.path.clone(),
            source,
        };
        let r = self.row;
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Empty => {}
                Cell::Text(s) => {
                    self.sheet.write_string(r, c, s).map_err(err)?;
                }
                Cell::Num(n) => {
                    self.sheet.write_number(r, c, *n).map_err(err)?;
                }
                Cell::Bool(b) => {
                    self.sheet.write_boolean(r, c, *b).map_err(err)?;
                }
                Cell::Date(d) => {
                    let dt = excel_date(*d).map_err(err)?;
                    self.sheet
                        .write_datetime_with_format(r, c, &dt, &self.date)
                        .map_err(err)?;
                }
                Cell::Month(d) => {
                    let dt = excel_date(*d).map_err(err)?;
                    self.sheet
                        .write_datetime_with_format(r, c, &dt, &self.month)
                        .map_err(err)?;
                }
            }
        }
        self.row += 1;
        Ok(u64::from(r) + 1)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let XlsxSink { path, sheet, .. } = *self;
        let err = |source| Error::Xlsx {
            path: path.clone(),
            source,
        };
        let mut book = Workbook::new();
        // A fixed creation time: the same seed must give byte-identical files.
        let created = ExcelDateTime::from_ymd(2026, 1, 1).map_err(err)?;
        let props = DocProperties::new()
            .set_creation_datetime(&created)
            .set_author("townstat-generate");
        book.set_properties(&props);
        book.push_worksheet(sheet);
        book.save(&path).map_err(err)
    }
}
