//! Canonical values to Arrow: the storage type of each schema column type, and the
//! batch builder. Source tables carry three lineage columns (`run_id`, `source_file`,
//! `source_row`) so any stored row can be traced to the file line it came from.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use townstat_domain::schema::{ColumnType, TableSchema};

use crate::error::{Error, Result};
use crate::validate::Value;

/// Precision and scale of money: Decimal128(20,2) 元.
pub const MONEY: DataType = DataType::Decimal128(20, 2);

/// The lineage columns appended to source tables, with their Chinese labels.
pub const LINEAGE: [(&str, &str); 3] = townstat_domain::schema::LINEAGE_LABELS;

/// Whether a table carries lineage columns.
pub fn has_lineage(t: &TableSchema) -> bool {
    t.kind == "source" || t.kind == "derived"
}

/// The Arrow type a column is stored as.
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text
        | ColumnType::Uscc
        | ColumnType::Enum
        | ColumnType::IndustryCode
        | ColumnType::Division
        | ColumnType::Town
        | ColumnType::Region
        | ColumnType::PatentNo
        | ColumnType::List => DataType::Utf8,
        ColumnType::Date | ColumnType::Month => DataType::Date32,
        ColumnType::Year | ColumnType::YearOrDate => DataType::Int32,
        ColumnType::Money => MONEY,
        ColumnType::Count | ColumnType::Int64 => DataType::Int64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::TextList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        ColumnType::Float64 => DataType::Float64,
    }
}

/// The Arrow schema of a table, with field metadata `comment` holding the label.
pub fn arrow_schema(t: &TableSchema) -> SchemaRef {
    let mut fields: Vec<Field> = t
        .columns
        .iter()
        .map(|c| {
            Field::new(&c.name, arrow_type(c.ty), t.is_nullable(c)).with_metadata(
                [("comment".to_string(), c.label.clone())]
                    .into_iter()
                    .collect(),
            )
        })
        .collect();
    if has_lineage(t) {
        for (name, label) in LINEAGE {
            let ty = if name == "source_row" {
                DataType::Int64
            } else {
                DataType::Utf8
            };
            fields.push(
                Field::new(name, ty, false)
                    .with_metadata([("comment".to_string(), label.to_string())].into()),
            );
        }
    }
    Arc::new(Schema::new(fields))
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Days since 1970-01-01, Arrow's Date32.
pub fn date32(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

/// Lineage of each row of a batch.
pub struct Lineage<'a> {
    /// The run writing the rows.
    pub run_id: &'a str,
    /// Per row: source file and row number.
    pub rows: Vec<(&'a str, i64)>,
}

/// Builds a batch from rows of canonical values in schema order.
pub fn build_batch(
    t: &TableSchema,
    rows: &[&[Value]],
    lineage: Option<Lineage>,
) -> Result<RecordBatch> {
    let schema = arrow_schema(t);
    let mut columns: Vec<ArrayRef> = vec![];
    for (c, col) in t.columns.iter().enumerate() {
        let vals = rows.iter().map(|r| r.get(c).unwrap_or(&Value::Null));
        let array: ArrayRef = match arrow_type(col.ty) {
            DataType::Utf8 => {
                let mut b = StringBuilder::new();
                for v in vals {
                    match v {
                        Value::Null => b.append_null(),
                        other => b.append_value(other.canonical_text()),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Date32 => {
                let mut b = Date32Builder::new();
                for v in vals {
                    match v {
                        Value::Date(d) => b.append_value(date32(*d)),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Int32 => {
                let mut b = Int32Builder::new();
                for v in vals {
                    match v {
                        Value::Year(y) => b.append_value(*y),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Int64 => {
                let mut b = Int64Builder::new();
                for v in vals {
                    match v {
                        Value::Int(i) => b.append_value(*i),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Boolean => {
                let mut b = BooleanBuilder::new();
                for v in vals {
                    match v {
                        Value::Bool(x) => b.append_value(*x),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Decimal128(p, s) => {
                let mut b = Decimal128Builder::new();
                for v in vals {
                    match v {
                        Value::Money(x) => b.append_value(*x),
                        _ => b.append_null(),
                    }
                }
                Arc::new(
                    b.finish()
                        .with_precision_and_scale(p, s)
                        .map_err(|source| Error::Arrow {
                            table: t.name.clone(),
                            source,
                        })?,
                )
            }
            DataType::Float64 => {
                let mut b = Float64Builder::new();
                for _ in vals {
                    b.append_null();
                }
                Arc::new(b.finish())
            }
            DataType::Timestamp(..) => {
                let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                for _ in vals {
                    b.append_null();
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for _ in vals {
                    b.append_null();
                }
                Arc::new(b.finish())
            }
        };
        columns.push(array);
    }
    if let Some(l) = lineage {
        let mut run = StringBuilder::new();
        let mut file = StringBuilder::new();
        let mut row = Int64Builder::new();
        for (f, r) in &l.rows {
            run.append_value(l.run_id);
            file.append_value(f);
            row.append_value(*r);
        }
        columns.push(Arc::new(run.finish()));
        columns.push(Arc::new(file.finish()));
        columns.push(Arc::new(row.finish()));
    }
    RecordBatch::try_new(schema, columns).map_err(|source| Error::Arrow {
        table: t.name.clone(),
        source,
    })
}

/// A text column from optional strings.
pub fn strings<'a>(items: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for s in items {
        b.append_option(s);
    }
    Arc::new(b.finish())
}

/// An Int64 column.
pub fn ints(items: impl Iterator<Item = i64>) -> ArrayRef {
    let mut b = Int64Builder::new();
    for i in items {
        b.append_value(i);
    }
    Arc::new(b.finish())
}

/// A List<Utf8> column.
pub fn text_list(items: impl Iterator<Item = Vec<String>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for list in items {
        for s in list {
            b.values().append_value(s);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

/// A batch of a catalog table (its schema from `schemas/`) from ready columns.
pub fn catalog_batch(name: &str, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    let t = townstat_domain::schema::table(name).ok_or_else(|| Error::Pipeline {
        path: std::path::PathBuf::from(format!("schemas/{name}.toml")),
        message: "no such table in the catalog".into(),
    })?;
    RecordBatch::try_new(arrow_schema(t), columns).map_err(|source| Error::Arrow {
        table: name.to_string(),
        source,
    })
}
