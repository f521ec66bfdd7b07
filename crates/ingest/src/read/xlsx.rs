//! XLSX: a named sheet or the first one, read with calamine. Typed cells are kept
//! typed (numbers, booleans, dates from date-formatted cells); row numbers are sheet
//! rows as Excel shows them.
//!
//! A workbook is a zip of XML parts, and a small one can claim or unpack to anything.
//! Before calamine allocates, the zip is checked ([`precheck`]): no part unpacks to
//! more than [`MAX_RATIO`] times its packed size (past 1 MiB) or to more than
//! [`MAX_PART_BYTES`], and the shared-string table does not claim more strings than
//! its bytes can hold. The sheet is then read cell by cell (calamine's streaming cell
//! reader, not a dense range over the declared dimension), within Excel's own limits
//! of 1,048,576 rows × 16,384 columns. A formula cell without a cached value and an
//! error cell (`#DIV/0!`) are kept as [`Cell::Invalid`] naming the cell, so that the
//! row is quarantined rather than loaded with a NULL.

use std::io::{Cursor, Read};

use calamine::{Data, DataRef, Reader, Xlsx, open_workbook_auto_from_rs};

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::Source;
use crate::read::{RawRecord, Records};

/// Excel's row limit.
pub const MAX_ROWS: u32 = 1_048_576;
/// Excel's column limit (XFD).
pub const MAX_COLUMNS: u32 = 16_384;
/// The largest unpacked size of one part of a workbook (1 GiB).
pub const MAX_PART_BYTES: u64 = 1 << 30;
/// The largest unpacked size of the shared-string table (256 MiB): it is held whole.
pub const MAX_SHARED_STRINGS_BYTES: u64 = 256 << 20;
/// The largest ratio of unpacked to packed size of a part over 1 MiB. Spreadsheet XML
/// packs 5-30 times; a zip bomb packs thousands of times.
pub const MAX_RATIO: u64 = 200;

fn data_to_cell(d: &Data) -> Cell {
    match d {
        Data::Empty => Cell::Empty,
        Data::Error(e) => Cell::Invalid(e.to_string()),
        Data::String(s) => Cell::Text(s.clone()),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) => datetime_cell(dt),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
    }
}

fn datetime_cell(dt: &calamine::ExcelDateTime) -> Cell {
    if dt.is_datetime() {
        match townstat_domain::date::from_excel_serial(dt.as_f64()) {
            Some(d) => Cell::Date(d),
            None => Cell::Number(dt.as_f64()),
        }
    } else {
        Cell::Number(dt.as_f64())
    }
}

/// `A1`-style name of a zero-based cell position.
pub fn cell_name(row: u32, col: u32) -> String {
    let mut letters = vec![];
    let mut c = col as u64 + 1;
    while c > 0 {
        c -= 1;
        letters.push(b'A' + (c % 26) as u8);
        c /= 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8_lossy(&letters), row as u64 + 1)
}

fn ref_to_cell(d: DataRef<'_>, row: u32, col: u32, formula: bool) -> Cell {
    match d {
        DataRef::Empty if formula => Cell::Invalid(format!(
            "{}: formula without a cached value (save the workbook in Excel to compute it)",
            cell_name(row, col)
        )),
        DataRef::Empty => Cell::Empty,
        DataRef::Error(e) => Cell::Invalid(format!("{}: {e}", cell_name(row, col))),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s),
        DataRef::SharedString(s) => Cell::Text(s.to_string()),
        DataRef::Int(i) => Cell::Number(i as f64),
        DataRef::Float(f) => Cell::Number(f),
        DataRef::Bool(b) => Cell::Bool(b),
        DataRef::DateTime(dt) => datetime_cell(&dt),
    }
}

/// Checks the zip parts of a workbook before calamine reads them (see the module doc).
fn precheck(bytes: &[u8], name: &str) -> Result<(), FileRejection> {
    let reject = |what: String| FileRejection(format!("{name}: {what}"));
    // The same words as calamine's own message for a broken zip.
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        reject(format!(
            "not a readable XLSX workbook: Xlsx error: Zip error: {e}"
        ))
    })?;
    let mut shared: Option<usize> = None;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| reject(format!("not a readable XLSX workbook: {e}")))?;
        let part = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let (size, packed) = (entry.size(), entry.compressed_size().max(1));
        if size > MAX_PART_BYTES || (size > 1 << 20 && size / packed > MAX_RATIO) {
            return Err(reject(format!(
                "workbook part {part} unpacks from {packed} to {size} bytes; more than \
                 {MAX_PART_BYTES} bytes or {MAX_RATIO} times its packed size is refused \
                 (a zip bomb, or not an export)"
            )));
        }
        if part.eq_ignore_ascii_case("xl/sharedStrings.xml") {
            shared = Some(i);
        }
    }
    let Some(i) = shared else {
        return Ok(());
    };
    let entry = zip
        .by_index(i)
        .map_err(|e| reject(format!("not a readable XLSX workbook: {e}")))?;
    let declared = entry.size();
    // The real unpacked size, not the one the zip header claims.
    let mut head = Vec::with_capacity(4096);
    let mut rest = entry.take(MAX_SHARED_STRINGS_BYTES + 1);
    rest.by_ref()
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| reject(format!("cannot unpack the shared strings: {e}")))?;
    let size = head.len() as u64
        + std::io::copy(&mut rest, &mut std::io::sink())
            .map_err(|e| reject(format!("cannot unpack the shared strings: {e}")))?;
    if size > MAX_SHARED_STRINGS_BYTES || size > declared.max(1) * 2 + 4096 {
        return Err(reject(format!(
            "the shared strings unpack to more than {} bytes (declared {declared}); refused",
            size.min(MAX_SHARED_STRINGS_BYTES)
        )));
    }
    // Each string takes at least `<si/>` (5 bytes): a larger claimed count is a lie
    // that would make the reader reserve memory for it.
    let head = String::from_utf8_lossy(&head);
    for attr in ["uniqueCount", "count"] {
        let Some(at) = head.find(&format!(" {attr}=\"")) else {
            continue;
        };
        let digits: String = head[at + attr.len() + 3..]
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        let claimed = digits.trim().parse::<u128>().map_err(|_| {
            reject(format!(
                "the shared strings' {attr}=\"{digits}\" is not a count"
            ))
        })?;
        if attr == "uniqueCount" && claimed > (size / 5) as u128 {
            return Err(reject(format!(
                "the shared strings claim {claimed} strings ({attr}) in {size} bytes, which \
                 hold at most {}; the workbook is corrupt",
                size / 5
            )));
        }
    }
    Ok(())
}

/// Opens a workbook sheet as records.
pub fn open(bytes: Vec<u8>, name: &str, source: &Source) -> Result<Records, FileRejection> {
    if !bytes.starts_with(b"PK") {
        return legacy(bytes, name, source);
    }
    precheck(&bytes, name)?;
    let reject = |what: String| FileRejection(format!("{name}: {what}"));
    let mut book = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| reject(format!("not a readable XLSX workbook: Xlsx error: {e}")))?;
    let sheet = match &source.sheet {
        Some(sheet) => {
            if !book.sheet_names().contains(sheet) {
                return Err(reject(format!(
                    "no sheet named {sheet:?}; sheets: {}",
                    book.sheet_names().join(", ")
                )));
            }
            sheet.clone()
        }
        None => match book.sheet_names().first() {
            Some(s) => s.clone(),
            None => return Err(reject("the workbook has no sheet".into())),
        },
    };
    let mut cells = book
        .worksheet_cells_reader(&sheet)
        .map_err(|e| reject(format!("cannot read the sheet: {e}")))?;
    let beyond = |(row, col): (u32, u32)| row >= MAX_ROWS || col >= MAX_COLUMNS;
    let dims = cells.dimensions();
    if beyond(dims.end) {
        return Err(reject(format!(
            "the sheet's dimension reaches {}, beyond Excel's {MAX_ROWS} rows × {MAX_COLUMNS} \
             columns",
            cell_name(dims.end.0, dims.end.1)
        )));
    }
    let mut rows: Vec<RawRecord> = vec![];
    loop {
        let cell = match cells.next_cell_with_formula_metadata() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => return Err(reject(format!("cannot read the sheet: {e}"))),
        };
        let (row, col) = cell.pos;
        if beyond(cell.pos) {
            return Err(reject(format!(
                "cell {} is beyond Excel's {MAX_ROWS} rows × {MAX_COLUMNS} columns",
                cell_name(row, col)
            )));
        }
        let number = row as u64 + 1;
        match rows.last() {
            Some(last) if last.row_number == number => {}
            Some(last) if last.row_number > number => {
                return Err(reject(format!(
                    "cell {} comes after row {}: the sheet's rows are out of order",
                    cell_name(row, col),
                    last.row_number
                )));
            }
            _ => rows.push(RawRecord::new(number, vec![])),
        }
        let value = ref_to_cell(cell.value, row, col, cell.formula.is_some());
        if let Some(last) = rows.last_mut() {
            // Keep columns where Excel has them, so that headers and cells align even
            // when the used range does not start in column A.
            let c = col as usize;
            if last.cells.len() <= c {
                last.cells.resize(c + 1, Cell::Empty);
            }
            last.cells[c] = value;
        }
    }
    Ok(Box::new(rows.into_iter().map(Ok)))
}

/// Legacy `.xls` workbooks (not zips): read whole with calamine, as before; their
/// format limits a sheet to 65,536 rows × 256 columns.
fn legacy(bytes: Vec<u8>, name: &str, source: &Source) -> Result<Records, FileRejection> {
    let mut book = open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| FileRejection(format!("{name}: not a readable XLSX workbook: {e}")))?;
    let range = match &source.sheet {
        Some(sheet) => {
            if !book.sheet_names().contains(sheet) {
                return Err(FileRejection(format!(
                    "{name}: no sheet named {sheet:?}; sheets: {}",
                    book.sheet_names().join(", ")
                )));
            }
            book.worksheet_range(sheet)
        }
        None => match book.worksheet_range_at(0) {
            Some(r) => r,
            None => return Err(FileRejection(format!("{name}: the workbook has no sheet"))),
        },
    }
    .map_err(|e| FileRejection(format!("{name}: cannot read the sheet: {e}")))?;
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let pad = first_col as usize;
    let rows: Vec<RawRecord> = range
        .rows()
        .enumerate()
        .map(|(i, row)| {
            let mut cells = vec![Cell::Empty; pad];
            cells.extend(row.iter().map(data_to_cell));
            RawRecord::new(first_row as u64 + i as u64 + 1, cells)
        })
        .collect();
    Ok(Box::new(rows.into_iter().map(Ok)))
}

#[cfg(test)]
mod tests {
    use super::cell_name;

    #[test]
    fn cell_names() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(6, 3), "D7");
        assert_eq!(cell_name(0, 26), "AA1");
        assert_eq!(cell_name(1_048_575, 16_383), "XFD1048576");
    }
}
