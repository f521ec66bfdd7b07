//! XLSX: a named sheet or the first one, read with calamine. Typed cells are kept
//! typed (numbers, booleans, dates from date-formatted cells); row numbers are sheet
//! rows as Excel shows them.

use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto};

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::Source;
use crate::read::{RawRecord, Records};

fn to_cell(d: &Data) -> Cell {
    match d {
        Data::Empty | Data::Error(_) => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) if dt.is_datetime() => {
            match townstat_domain::date::from_excel_serial(dt.as_f64()) {
                Some(d) => Cell::Date(d),
                None => Cell::Number(dt.as_f64()),
            }
        }
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
    }
}

/// Opens a workbook sheet as records.
pub fn open(path: &Path, source: &Source) -> Result<Records, FileRejection> {
    let name = path.display();
    let mut book = open_workbook_auto(path)
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
            // Keep columns where Excel has them, so that headers and cells align even
            // when the used range does not start in column A.
            let mut cells = vec![Cell::Empty; pad];
            cells.extend(row.iter().map(to_cell));
            RawRecord {
                row_number: first_row as u64 + i as u64 + 1,
                cells,
            }
        })
        .collect();
    Ok(Box::new(rows.into_iter().map(Ok)))
}
