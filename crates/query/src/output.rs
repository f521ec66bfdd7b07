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
                let b = lists_as_text(b)?;
                if format == Format::Csv {
                    w.write(&neutralise_formulas(&b)?).map_err(out_err)?;
                } else {
                    w.write(&b).map_err(out_err)?;
                }
            }
        }
        Format::Json => {
            // A null is written as `null`, not left out: every object has every key.
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::JsonArray>(out);
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

/// A batch with its list columns (`quarantine.reasons`, say) as text, the elements
/// joined with `;` (`R02;R05`): CSV has no lists, and Excel shows one cell per field.
/// A NULL list stays empty; an element that is NULL is left out.
pub fn lists_as_text(batch: &RecordBatch) -> Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_)))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let lists: Option<Vec<Option<ArrayRef>>> = match field.data_type() {
            DataType::List(_) => {
                let l = column.as_any().downcast_ref::<arrow::array::ListArray>();
                l.map(|l| l.iter().collect())
            }
            DataType::LargeList(_) => {
                let l = column
                    .as_any()
                    .downcast_ref::<arrow::array::LargeListArray>();
                l.map(|l| l.iter().collect())
            }
            _ => None,
        };
        let Some(lists) = lists else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        };
        let options = arrow::util::display::FormatOptions::default();
        let mut text: Vec<Option<String>> = Vec::with_capacity(lists.len());
        for list in lists {
            text.push(match list {
                None => None,
                Some(values) => {
                    let f = arrow::util::display::ArrayFormatter::try_new(&values, &options)
                        .map_err(out_err)?;
                    let parts: Vec<String> = (0..values.len())
                        .filter(|i| values.is_valid(*i))
                        .map(|i| f.value(i).to_string())
                        .collect();
                    Some(parts.join(";"))
                }
            });
        }
        fields.push(
            Field::new(field.name(), DataType::Utf8, true).with_metadata(field.metadata().clone()),
        );
        columns.push(Arc::new(StringArray::from(text)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(out_err)
}

/// A column type as SQL names it (PostgreSQL's names, as `\d` in psql shows them):
/// `text`, `integer`, `numeric(20,2)`, `date`, `timestamp with time zone`, `text[]`.
pub fn sql_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "text".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("{}[]", sql_type(f.data_type()))
        }
        DataType::Dictionary(_, v) => sql_type(v),
        DataType::Null => "unknown".into(),
        other => other.to_string(),
    }
}

/// The batches with each column named by its Chinese label (`--labels zh`): the label
/// of the column name in the catalog or the marts, the name itself when it has none. A
/// label that two columns would share keeps the column name after it, so no header is
/// ambiguous.
pub fn with_labels(batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    with_labels_of(batches, None)
}

/// [`with_labels`] for a result that is one table's columns: that table's labels
/// first (`quarantine.kind` is 记录类型, where `kind` alone would find another
/// table's).
pub fn with_labels_of(batches: &[RecordBatch], table: Option<&str>) -> Result<Vec<RecordBatch>> {
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
            table
                .and_then(|t| townstat_domain::schema::column_label(t, n))
                .or_else(|| townstat_domain::schema::any_column_label(n))
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

    #[test]
    fn lists_are_joined_with_semicolons_and_json_keeps_nulls() {
        let reasons =
            arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>(
                vec![Some(vec![Some(2), Some(5)]), None, Some(vec![])],
            );
        let name = StringArray::from(vec![Some("a"), None, Some("c")]);
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("reasons", reasons.data_type().clone(), true),
                Field::new("name", DataType::Utf8, true),
            ])),
            vec![Arc::new(reasons), Arc::new(name)],
        )
        .expect("batch");
        assert_eq!(csv(&b, Format::Csv), "reasons,name\n2;5,a\n,\n,c\n");
        assert_eq!(
            csv(&b, Format::Json),
            "[{\"reasons\":[2,5],\"name\":\"a\"},{\"reasons\":null,\"name\":null},\
             {\"reasons\":[],\"name\":\"c\"}]\n"
        );
    }

    #[test]
    fn types_have_their_sql_names() {
        assert_eq!(sql_type(&DataType::Utf8View), "text");
        assert_eq!(sql_type(&DataType::Decimal128(20, 2)), "numeric(20,2)");
        assert_eq!(sql_type(&DataType::Int32), "integer");
        assert_eq!(
            sql_type(&DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into())
            )),
            "timestamp with time zone"
        );
        assert_eq!(
            sql_type(&DataType::List(Arc::new(Field::new(
                "item",
                DataType::Utf8,
                true
            )))),
            "text[]"
        );
    }
}
