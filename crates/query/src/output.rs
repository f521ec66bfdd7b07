//! Output formats of query results: an aligned table for people, CSV and JSON for
//! programs, Parquet for files. Money keeps its two decimals in every format.
//!
//! CSV is what people open in Excel, and a text cell such as `=cmd|' /C calc'!A0` or
//! `@SUM(1)` is a formula there (CSV injection). `csv` therefore neutralises text
//! cells that start with `=`, `+`, `-`, `@`, a tab or a carriage return by putting a
//! `'` in front (the OWASP rule): Excel shows the text and evaluates nothing. Only text
//! columns are touched; numbers, money, dates and booleans are written as they are
//! (`-5` in a numeric column stays `-5`). `csv-raw` writes every cell unchanged, for
//! programs that need the exact text.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text table.
    Table,
    /// CSV with a header row; formula-leading text cells neutralised for Excel.
    Csv,
    /// CSV with a header row, every cell exactly as stored.
    CsvRaw,
    /// A JSON array of objects.
    Json,
    /// A Parquet file.
    Parquet,
    /// An Excel workbook: one sheet, typed cells (numbers, dates, booleans, text that is
    /// never a formula), the header row frozen.
    Xlsx,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "csv-raw" => Ok(Format::CsvRaw),
            "json" => Ok(Format::Json),
            "parquet" => Ok(Format::Parquet),
            "xlsx" => Ok(Format::Xlsx),
            _ => Err(format!(
                "unknown format {s:?}: use table, csv, csv-raw, json, parquet or xlsx"
            )),
        }
    }
}

fn out_err(e: impl std::fmt::Display) -> Error {
    Error::Output(e.to_string())
}

/// Writes batches in a format.
pub fn write<W: Write + Send>(batches: &[RecordBatch], format: Format, mut out: W) -> Result<()> {
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches).map_err(out_err)?;
            writeln!(out, "{table}").map_err(out_err)?;
        }
        Format::Csv | Format::CsvRaw => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                if format == Format::Csv {
                    w.write(&neutralise_formulas(b)?).map_err(out_err)?;
                } else {
                    w.write(b).map_err(out_err)?;
                }
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs).map_err(out_err)?;
            w.finish().map_err(out_err)?;
            let mut inner = w.into_inner();
            writeln!(inner).map_err(out_err)?;
        }
        Format::Parquet => {
            let schema = batches
                .first()
                .map(|b| b.schema())
                .ok_or_else(|| Error::Output("no result to write".into()))?;
            let mut w = parquet::arrow::ArrowWriter::try_new(out, schema, None).map_err(out_err)?;
            for b in batches {
                w.write(b).map_err(out_err)?;
            }
            w.close().map_err(out_err)?;
        }
        Format::Xlsx => {
            let bytes = crate::xlsx::workbook(batches)?;
            out.write_all(&bytes).map_err(out_err)?;
        }
    }
    Ok(())
}

/// The batches with each column named by its Chinese label (`--labels zh`): the label
/// of the column name in the catalog or the marts, the name itself when it has none. A
/// label that two columns would share keeps the column name after it, so no header is
/// ambiguous.
pub fn with_labels(batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(vec![]);
    };
    let names: Vec<String> = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let labels: Vec<String> = names
        .iter()
        .map(|n| {
            townstat_domain::schema::any_column_label(n)
                .unwrap_or(n)
                .to_string()
        })
        .collect();
    let headers: Vec<String> = labels
        .iter()
        .zip(&names)
        .map(|(l, n)| {
            if l != n && labels.iter().filter(|x| *x == l).count() > 1 {
                format!("{l} [{n}]")
            } else {
                l.clone()
            }
        })
        .collect();
    let fields: Vec<Field> = first
        .schema()
        .fields()
        .iter()
        .zip(&headers)
        .map(|(f, h)| f.as_ref().clone().with_name(h))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    batches
        .iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).map_err(out_err))
        .collect()
}

/// Whether a spreadsheet would read a text cell as a formula: it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return.
pub fn is_formula_like(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// The batch with every formula-like text cell prefixed by `'`. Text columns of any
/// string type (and dictionaries of strings) become `Utf8`; other columns, and batches
/// with nothing to change, are passed through as they are.
pub fn neutralise_formulas(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut changed = false;
    for (column, field) in batch.columns().iter().zip(batch.schema().fields()) {
        let is_text = match column.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
            DataType::Dictionary(_, v) => {
                matches!(
                    **v,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                )
            }
            _ => false,
        };
        if !is_text {
            columns.push(column.clone());
            fields.push(field.clone());
            continue;
        }
        let text = arrow::compute::cast(column, &DataType::Utf8).map_err(out_err)?;
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::Output("a text column did not cast to Utf8".into()))?;
        if !text.iter().flatten().any(is_formula_like) {
            columns.push(column.clone());
            fields.push(field.clone());
            continue;
        }
        changed = true;
        let safe: StringArray = text
            .iter()
            .map(|v| {
                v.map(|s| {
                    if is_formula_like(s) {
                        format!("'{s}")
                    } else {
                        s.to_string()
                    }
                })
            })
            .collect();
        columns.push(Arc::new(safe));
        fields.push(Arc::new(Field::new(
            field.name(),
            DataType::Utf8,
            field.is_nullable(),
        )));
    }
    if !changed {
        return Ok(batch.clone());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(out_err)
}

#[cfg(test)]
mod tests {
    use arrow::array::{BooleanArray, Date32Array, Decimal128Array, Int64Array, LargeStringArray};

    use super::*;

    fn csv(batch: &RecordBatch, format: Format) -> String {
        let mut out = Vec::new();
        write(std::slice::from_ref(batch), format, &mut out).expect("csv written");
        String::from_utf8(out).expect("utf-8")
    }

    fn batch() -> RecordBatch {
        let names = StringArray::from(vec![
            Some("=cmd|' /C calc'!A0"),
            Some("@SUM(1)"),
            Some("+1"),
            Some("-1+2"),
            Some("\tx"),
            Some("\rx"),
            Some("大同=公司"),
            None,
            Some("a'b"),
        ]);
        let wide =
            LargeStringArray::from(vec!["=1", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"]);
        let n = Int64Array::from(vec![-1, 2, -3, 4, 5, 6, 7, 8, 9]);
        let money = Decimal128Array::from(vec![-150, 0, 1, 2, 3, 4, 5, 6, 7])
            .with_precision_and_scale(20, 2)
            .expect("decimal");
        let day = Date32Array::from(vec![0; 9]);
        let flag = BooleanArray::from(vec![true; 9]);
        RecordBatch::try_from_iter([
            ("name", Arc::new(names) as ArrayRef),
            ("wide", Arc::new(wide) as ArrayRef),
            ("n", Arc::new(n) as ArrayRef),
            ("money", Arc::new(money) as ArrayRef),
            ("day", Arc::new(day) as ArrayRef),
            ("flag", Arc::new(flag) as ArrayRef),
        ])
        .expect("batch")
    }

    #[test]
    fn csv_neutralises_formula_text_only() {
        let out = csv(&batch(), Format::Csv);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "name,wide,n,money,day,flag");
        assert_eq!(lines[1], "'=cmd|' /C calc'!A0,'=1,-1,-1.50,1970-01-01,true");
        assert_eq!(lines[2], "'@SUM(1),ok,2,0.00,1970-01-01,true");
        assert_eq!(lines[3], "'+1,ok,-3,0.01,1970-01-01,true");
        assert_eq!(lines[4], "'-1+2,ok,4,0.02,1970-01-01,true");
        assert_eq!(lines[5], "'\tx,ok,5,0.03,1970-01-01,true");
        // A carriage return makes the field quoted; the record spans the CR.
        assert!(out.contains("\"'\rx\",ok,6,0.04"), "{out:?}");
        assert!(out.contains("\n大同=公司,ok,7,"), "{out:?}");
        assert!(out.contains("\n,ok,8,"), "null stays empty: {out:?}");
        assert!(out.contains("\na'b,ok,9,"), "{out:?}");
    }

    #[test]
    fn csv_raw_keeps_every_cell() {
        let out = csv(&batch(), Format::CsvRaw);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "=cmd|' /C calc'!A0,=1,-1,-1.50,1970-01-01,true");
        assert_eq!(lines[2], "@SUM(1),ok,2,0.00,1970-01-01,true");
        assert_eq!(lines[3], "+1,ok,-3,0.01,1970-01-01,true");
        assert_eq!(lines[4], "-1+2,ok,4,0.02,1970-01-01,true");
        assert_eq!("csv-raw".parse::<Format>(), Ok(Format::CsvRaw));
        assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
    }

    #[test]
    fn harmless_batches_pass_through_unchanged() {
        let b = RecordBatch::try_from_iter([(
            "name",
            Arc::new(StringArray::from(vec!["大同", "a-b", "1+1"])) as ArrayRef,
        )])
        .expect("batch");
        let safe = neutralise_formulas(&b).expect("neutralised");
        assert_eq!(safe, b);
        assert_eq!(csv(&b, Format::Csv), csv(&b, Format::CsvRaw));
    }

    #[test]
    fn labels_replace_names_and_never_make_two_headers_alike() {
        let b = RecordBatch::try_from_iter([
            (
                "town_id",
                Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
            ),
            ("revenue", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("count(*)", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            (
                "designated_year",
                Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let out = with_labels(&[b]).expect("labels");
        let names: Vec<String> = out[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names[0], "专业镇编号");
        assert_eq!(names[1], "营业收入(元)");
        assert_eq!(names[2], "count(*)");
        assert_ne!(names[3], "designated_year");
    }
}
