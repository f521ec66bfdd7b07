//! Query results as an Excel workbook (`townstat sql --format xlsx -o FILE`): one sheet,
//! a bold frozen header row, and each cell of its own type, so Excel sums, sorts and
//! filters without "number stored as text": integers and floats are numbers, money
//! (Decimal128) is a number with its decimals as the format, dates and timestamps are
//! Excel dates, booleans are booleans, and text is always text — a cell such as
//! `=cmd|…` is written as a string, never as a formula. A result Excel cannot hold
//! (more rows than a sheet has, a text longer than a cell holds) is an error naming
//! the limit, not a silently cut file.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet};

use crate::error::{Error, Result};

/// Data rows one sheet holds (1,048,576 rows less the header).
pub const MAX_ROWS: usize = 1_048_575;
/// Characters one cell holds.
pub const MAX_TEXT: usize = 32_767;

fn err(e: impl std::fmt::Display) -> Error {
    Error::Output(format!("xlsx: {e}"))
}

/// Display width of text in Excel columns (a CJK or full-width character is two).
pub fn width(s: &str) -> usize {
    s.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 })
        .sum()
}

/// The workbook's bytes.
pub fn workbook(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows > MAX_ROWS {
        return Err(Error::Output(format!(
            "the result has {rows} rows; an Excel sheet holds {MAX_ROWS}: use --format csv or parquet"
        )));
    }
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("result").map_err(err)?;
    let Some(first) = batches.first() else {
        return wb.save_to_buffer().map_err(err);
    };
    let schema = first.schema();
    let header = Format::new().set_bold().set_background_color("#DDEBF7");
    let mut widths: Vec<usize> = vec![];
    for (c, f) in schema.fields().iter().enumerate() {
        ws.write_string_with_format(0, c as u16, f.name(), &header)
            .map_err(err)?;
        widths.push(width(f.name()).max(6));
    }
    let formats: Vec<Format> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Decimal128(_, s) if *s > 0 => {
                Format::new().set_num_format(format!("#,##0.{}", "0".repeat(*s as usize)))
            }
            DataType::Decimal128(..) => Format::new().set_num_format("#,##0"),
            DataType::Date32 => Format::new().set_num_format("yyyy-mm-dd"),
            DataType::Timestamp(..) => Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            _ => Format::new(),
        })
        .collect();
    let mut row = 1u32;
    for b in batches {
        for i in 0..b.num_rows() {
            for (c, col) in b.columns().iter().enumerate() {
                let shown =
                    cell(ws, row, c as u16, col.as_ref(), i, &formats[c]).map_err(|e| match e {
                        Error::Output(m) => Error::Output(format!(
                            "row {row}, column {}: {m}",
                            schema.field(c).name()
                        )),
                        other => other,
                    })?;
                if row <= 1000 {
                    widths[c] = widths[c].max(shown);
                }
            }
            row += 1;
        }
    }
    for (c, w) in widths.iter().enumerate() {
        ws.set_column_width(c as u16, (*w).min(50) as f64 + 2.0)
            .map_err(err)?;
    }
    ws.set_freeze_panes(1, 0).map_err(err)?;
    wb.save_to_buffer().map_err(err)
}

/// Writes one cell; returns its display width.
fn cell(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    a: &dyn Array,
    i: usize,
    f: &Format,
) -> Result<usize> {
    if a.is_null(i) {
        return Ok(0);
    }
    let number = |ws: &mut Worksheet, x: f64| -> Result<usize> {
        if x.is_finite() {
            ws.write_number_with_format(row, col, x, f).map_err(err)?;
            Ok(format!("{x}").len())
        } else {
            // Excel has no NaN or infinity: the text says what it is.
            let t = format!("{x}");
            ws.write_string(row, col, &t).map_err(err)?;
            Ok(t.len())
        }
    };
    match a.data_type() {
        DataType::Int8 => number(ws, a.as_primitive::<Int8Type>().value(i) as f64),
        DataType::Int16 => number(ws, a.as_primitive::<Int16Type>().value(i) as f64),
        DataType::Int32 => number(ws, a.as_primitive::<Int32Type>().value(i) as f64),
        DataType::Int64 => number(ws, a.as_primitive::<Int64Type>().value(i) as f64),
        DataType::UInt8 => number(ws, a.as_primitive::<UInt8Type>().value(i) as f64),
        DataType::UInt16 => number(ws, a.as_primitive::<UInt16Type>().value(i) as f64),
        DataType::UInt32 => number(ws, a.as_primitive::<UInt32Type>().value(i) as f64),
        DataType::UInt64 => number(ws, a.as_primitive::<UInt64Type>().value(i) as f64),
        DataType::Float32 => number(ws, a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => number(ws, a.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, s) => {
            let raw = a.as_primitive::<Decimal128Type>().value(i);
            number(ws, raw as f64 / 10f64.powi(*s as i32)).map(|w| w + 4)
        }
        DataType::Boolean => {
            ws.write_boolean(row, col, a.as_boolean().value(i))
                .map_err(err)?;
            Ok(5)
        }
        DataType::Date32 => {
            let days = a.as_primitive::<Date32Type>().value(i) as i64;
            let d = ExcelDateTime::from_timestamp(days * 86_400).map_err(err)?;
            ws.write_datetime_with_format(row, col, &d, f)
                .map_err(err)?;
            Ok(10)
        }
        DataType::Timestamp(unit, _) => {
            let secs = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => a
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i)
                    .div_euclid(1_000),
                TimeUnit::Microsecond => a
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(i)
                    .div_euclid(1_000_000),
                TimeUnit::Nanosecond => a
                    .as_primitive::<TimestampNanosecondType>()
                    .value(i)
                    .div_euclid(1_000_000_000),
            };
            let d = ExcelDateTime::from_timestamp(secs).map_err(err)?;
            ws.write_datetime_with_format(row, col, &d, f)
                .map_err(err)?;
            Ok(19)
        }
        _ => {
            let text = match a.data_type() {
                DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
                DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
                DataType::Utf8View => a.as_string_view().value(i).to_string(),
                _ => arrow::util::display::array_value_to_string(a, i).map_err(err)?,
            };
            let n = text.chars().count();
            if n > MAX_TEXT {
                return Err(Error::Output(format!(
                    "a text of {n} characters; an Excel cell holds {MAX_TEXT}: use --format csv or parquet"
                )));
            }
            // write_string: text, never a formula, whatever it starts with.
            ws.write_string(row, col, &text).map_err(err)?;
            Ok(width(&text))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray};

    use super::*;

    #[test]
    fn a_text_longer_than_a_cell_is_an_error_not_a_cut() {
        let long = "长".repeat(MAX_TEXT + 1);
        let b = RecordBatch::try_from_iter([(
            "name",
            Arc::new(StringArray::from(vec!["ok", long.as_str()])) as ArrayRef,
        )])
        .expect("batch");
        let e = workbook(&[b]).expect_err("too long");
        let m = e.to_string();
        assert!(
            m.contains("row 2, column name") && m.contains("32767"),
            "{m}"
        );
    }

    #[test]
    fn an_empty_result_is_an_empty_sheet() {
        let bytes = workbook(&[]).expect("workbook");
        assert_eq!(&bytes[..2], b"PK");
    }
}
