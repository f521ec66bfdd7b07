//! The PostgreSQL catalog clients read to list tables and columns (`pg_catalog`,
//! `information_schema`), with the warehouse's Chinese labels as comments.
//!
//! datafusion-pg-catalog builds `pg_class`, `pg_attribute` and friends from the
//! session's tables, but its `pg_description` is a fixed copy of a stock PostgreSQL's
//! and it has no `obj_description`/`col_description`. Here both are filled from
//! `townstat_domain::schema` (the labels of `schemas/*.toml` and `schemas/marts.toml`),
//! keyed by the oids `pg_class` assigned, so `\d+ town_year` in psql, DBeaver's
//! navigator and Superset's table sync all show 镇名, 营业收入 and the rest.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{ColumnarValue, Signature, TypeSignature, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use townstat_domain::schema::{LINEAGE_LABELS, column_label, table_label};

use crate::error::{Error, Result};

/// The catalog every session is served under (`current_database()`).
pub const CATALOG: &str = "townstat";

/// `pg_class`'s own oid in PostgreSQL, used when this catalog does not list it.
const PG_CLASS_OID: i32 = 1259;

fn catalog_error(e: impl std::fmt::Display) -> Error {
    Error::Catalog(e.to_string())
}

/// Table oid → label, and (table oid, column number) → label.
#[derive(Debug, Default)]
struct Labels {
    /// The oid `pg_class` has here: the `classoid` of a table's or column's comment
    /// (clients write it `'pg_catalog.pg_class'::regclass`).
    class_oid: i32,
    tables: HashMap<i32, String>,
    columns: HashMap<(i32, i32), String>,
}

fn label_of_column(table: &str, column: &str) -> Option<&'static str> {
    column_label(table, column).or_else(|| {
        LINEAGE_LABELS
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, label)| *label)
    })
}

/// Sets up `pg_catalog` on a session whose warehouse tables are registered, with
/// the labels as comments.
pub async fn install(ctx: &SessionContext) -> Result<()> {
    setup_pg_catalog(ctx, CATALOG, EmptyContextProvider).map_err(catalog_error)?;
    let labels = Arc::new(read_labels(ctx).await?);
    replace_descriptions(ctx, &labels).await?;
    register_functions(ctx, labels);
    register_to_regtype(ctx).await
}

/// `to_regtype(name)`: the oid of a type in `pg_type`, or NULL when there is no such
/// type (psycopg asks for `hstore` this way when SQLAlchemy connects).
async fn register_to_regtype(ctx: &SessionContext) -> Result<()> {
    let batches = ctx
        .sql("SELECT oid, typname FROM pg_catalog.pg_type")
        .await
        .map_err(catalog_error)?
        .collect()
        .await
        .map_err(catalog_error)?;
    let mut types: HashMap<String, i32> = HashMap::new();
    for b in &batches {
        let as_type = |i: usize, t: &DataType| {
            datafusion::arrow::compute::cast(b.column(i), t).map_err(catalog_error)
        };
        let (oids, names) = (as_type(0, &DataType::Int32)?, as_type(1, &DataType::Utf8)?);
        let (oids, names) = (oids.as_primitive::<Int32Type>(), names.as_string::<i32>());
        for i in 0..b.num_rows() {
            if oids.is_valid(i) && names.is_valid(i) {
                types.insert(names.value(i).to_string(), oids.value(i));
            }
        }
    }
    let lookup = move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let names = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let out: Int32Array = names
            .as_string::<i32>()
            .iter()
            .map(|n| {
                n.and_then(|n| {
                    let n = n.trim().trim_matches('"');
                    types
                        .get(n.strip_prefix("pg_catalog.").unwrap_or(n))
                        .copied()
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    };
    ctx.register_udf(create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(lookup),
    ));
    Ok(())
}

/// The oids `pg_class` gave the warehouse's tables and columns, joined with the labels.
async fn read_labels(ctx: &SessionContext) -> Result<Labels> {
    let sql = "SELECT CAST(c.oid AS INT) AS oid, c.relname, CAST(a.attnum AS INT) AS attnum, a.attname \
               FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
               LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
               WHERE n.nspname = 'public'";
    let batches = ctx
        .sql(sql)
        .await
        .map_err(catalog_error)?
        .collect()
        .await
        .map_err(catalog_error)?;
    let mut labels = Labels {
        class_oid: PG_CLASS_OID,
        ..Labels::default()
    };
    let own = ctx
        .sql("SELECT CAST(oid AS INT) FROM pg_catalog.pg_class WHERE relname = 'pg_class'")
        .await
        .map_err(catalog_error)?
        .collect()
        .await
        .map_err(catalog_error)?;
    if let Some(b) = own.first().filter(|b| b.num_rows() > 0) {
        labels.class_oid = b.column(0).as_primitive::<Int32Type>().value(0);
    }
    for batch in &batches {
        let text = |i: usize| -> Result<StringArray> {
            let cast = datafusion::arrow::compute::cast(batch.column(i), &DataType::Utf8)
                .map_err(catalog_error)?;
            Ok(cast.as_string::<i32>().clone())
        };
        let (oids, tables, columns) = (
            batch.column(0).as_primitive::<Int32Type>().clone(),
            text(1)?,
            text(3)?,
        );
        let attnums = batch.column(2).as_primitive::<Int32Type>().clone();
        for i in 0..batch.num_rows() {
            if oids.is_null(i) || tables.is_null(i) {
                continue;
            }
            let (oid, table) = (oids.value(i), tables.value(i));
            if let Some(label) = table_label(table) {
                labels.tables.insert(oid, label.to_string());
            }
            if !attnums.is_null(i)
                && !columns.is_null(i)
                && let Some(label) = label_of_column(table, columns.value(i))
            {
                labels
                    .columns
                    .insert((oid, attnums.value(i)), label.to_string());
            }
        }
    }
    Ok(labels)
}

/// `pg_description` = the stock rows + one per labelled table and column.
async fn replace_descriptions(ctx: &SessionContext, labels: &Labels) -> Result<()> {
    let catalog = ctx
        .catalog(CATALOG)
        .ok_or_else(|| Error::Catalog(format!("no catalog {CATALOG}")))?;
    let inner = catalog
        .schema("pg_catalog")
        .ok_or_else(|| Error::Catalog("pg_catalog was not set up".into()))?;
    let stock = inner
        .table("pg_description")
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| Error::Catalog("pg_catalog has no pg_description".into()))?;
    let schema = stock.schema();
    let mut batches = ctx
        .read_table(stock)
        .map_err(catalog_error)?
        .collect()
        .await
        .map_err(catalog_error)?;

    let mut rows: Vec<(i32, i32, String)> = labels
        .tables
        .iter()
        .map(|(oid, l)| (*oid, 0, l.clone()))
        .chain(
            labels
                .columns
                .iter()
                .map(|((oid, n), l)| (*oid, *n, l.clone())),
        )
        .collect();
    rows.sort();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|_| labels.class_oid),
        )),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.2.as_str()),
        )),
    ];
    // Cast to the stock table's types (and field metadata) so both sets of rows stack.
    let cast: Vec<ArrayRef> = columns
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
        .collect::<std::result::Result<_, _>>()
        .map_err(catalog_error)?;
    batches.push(RecordBatch::try_new(schema.clone(), cast).map_err(catalog_error)?);
    let table = Arc::new(MemTable::try_new(schema, vec![batches]).map_err(catalog_error)?);
    let mut tables: HashMap<&'static str, Arc<dyn TableProvider>> = HashMap::new();
    tables.insert("pg_description", table);
    for name in ["pg_index", "pg_constraint"] {
        tables.insert(name, with_arrays(ctx, &inner, name).await?);
    }
    tables.insert("pg_attribute", with_type_modifiers(ctx, &inner).await?);
    tables.insert("pg_class", with_reloptions(ctx, &inner).await?);
    catalog
        .register_schema("pg_catalog", Arc::new(Replaced { inner, tables }))
        .map_err(catalog_error)?;
    Ok(())
}

/// The columns of `pg_index` and `pg_constraint` that are arrays in PostgreSQL
/// (`int2vector`, `oidvector`, `int2[]`, `oid[]`), with their element type.
/// datafusion-pg-catalog keeps them as text (`"1 2"`, `"{1,2}"`), so the inspectors of
/// SQLAlchemy (Superset), psqlODBC and pgjdbc fail on `unnest(i.indkey)`,
/// `i.indkey[n]`, `array_lower(conkey, 1)` or `a.attnum = ANY(conkey)` even though the
/// answer would be "no rows" for every warehouse table.
const ARRAY_COLUMNS: [(&str, DataType); 12] = [
    ("indkey", DataType::Int16),
    ("indoption", DataType::Int16),
    ("indcollation", DataType::Int32),
    ("indclass", DataType::Int32),
    ("conkey", DataType::Int16),
    ("confkey", DataType::Int16),
    ("confdelsetcols", DataType::Int16),
    ("conpfeqop", DataType::Int32),
    ("conppeqop", DataType::Int32),
    ("conffeqop", DataType::Int32),
    ("conexclop", DataType::Int32),
    ("conincluding", DataType::Int16),
];

/// A stock catalog table with its array columns as arrays ([`ARRAY_COLUMNS`]); the
/// rows (the system catalogs' own indexes and constraints) are kept. Warehouse
/// tables have no index and no constraint, so their lookups answer no rows, which is
/// the truth.
async fn with_arrays(
    ctx: &SessionContext,
    pg_catalog: &Arc<dyn SchemaProvider>,
    name: &str,
) -> Result<Arc<dyn TableProvider>> {
    use datafusion::arrow::array::ListArray;
    use datafusion::arrow::datatypes::{Field, Int16Type, Schema};
    let stock = pg_catalog
        .table(name)
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| Error::Catalog(format!("pg_catalog has no {name}")))?;
    let batches = ctx
        .read_table(stock.clone())
        .map_err(catalog_error)?
        .collect()
        .await
        .map_err(catalog_error)?;
    let element = |field: &str| {
        ARRAY_COLUMNS
            .iter()
            .find(|(n, _)| *n == field)
            .map(|(_, t)| t.clone())
    };
    let fields: Vec<Field> = stock
        .schema()
        .fields()
        .iter()
        .map(|f| match element(f.name()) {
            Some(t) => Field::new(
                f.name(),
                DataType::List(Arc::new(Field::new("item", t, true))),
                true,
            ),
            None => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    // "{1,2}" (arrays) and "1 2" (vectors) as lists; NULL stays NULL.
    let numbers = |text: &str| -> Vec<i64> {
        text.trim_matches(|c| c == '{' || c == '}')
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter_map(|n| n.trim().parse::<i64>().ok())
            .collect()
    };
    let mut out = Vec::with_capacity(batches.len());
    for batch in &batches {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (i, field) in stock.schema().fields().iter().enumerate() {
            let Some(t) = element(field.name()) else {
                columns.push(batch.column(i).clone());
                continue;
            };
            let text = datafusion::arrow::compute::cast(batch.column(i), &DataType::Utf8)
                .map_err(catalog_error)?;
            let text = text.as_string::<i32>();
            let rows = text.iter().map(|v| v.map(numbers));
            let list: ArrayRef = if t == DataType::Int16 {
                Arc::new(ListArray::from_iter_primitive::<Int16Type, _, _>(
                    rows.map(|r| r.map(|ns| ns.into_iter().map(|n| Some(n as i16)))),
                ))
            } else {
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
                    rows.map(|r| r.map(|ns| ns.into_iter().map(|n| Some(n as i32)))),
                ))
            };
            columns.push(list);
        }
        out.push(RecordBatch::try_new(schema.clone(), columns).map_err(catalog_error)?);
    }
    Ok(Arc::new(
        MemTable::try_new(schema, vec![out]).map_err(catalog_error)?,
    ))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn json_build_object_keeps_order_and_types() {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
            super::JsonBuildObject::new(),
        ));
        let batches = ctx
            .sql("SELECT json_build_object('z', 1, 'a', 'x\"y', 'm', true, 'n', NULL)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0)
            .unwrap();
        assert_eq!(text, r#"{"z":1,"a":"x\"y","m":true,"n":null}"#);
    }

    #[test]
    fn sizes_as_postgresql_prints_them() {
        // Values checked against PostgreSQL 15's pg_size_pretty.
        assert_eq!(super::pretty_size(0), "0 bytes");
        assert_eq!(super::pretty_size(10239), "10239 bytes");
        assert_eq!(super::pretty_size(10240), "10 kB");
        assert_eq!(super::pretty_size(1_000_000), "977 kB");
        assert_eq!(super::pretty_size(123_456_789), "118 MB");
        assert_eq!(super::pretty_size(10 << 30), "10 GB");
    }
}

/// `pg_attribute` with `atttypmod` of the warehouse's DECIMAL columns:
/// `((precision << 16) | scale) + 4`, as PostgreSQL stores `numeric(p, s)`.
/// datafusion-pg-catalog writes -1 ("no modifier") for every column, so drivers
/// report money as `numeric` of unknown size (psqlODBC: 28 digits, 6 decimals) and
/// `format_type` says `numeric` where `numeric(20,2)` is the truth. The table is
/// the stock one's rows, read once for the pinned run (its tables do not change).
async fn with_type_modifiers(
    ctx: &SessionContext,
    pg_catalog: &Arc<dyn SchemaProvider>,
) -> Result<Arc<dyn TableProvider>> {
    let stock = pg_catalog
        .table("pg_attribute")
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| Error::Catalog("pg_catalog has no pg_attribute".into()))?;
    // (table oid, column name) → modifier, for the public tables' DECIMAL columns.
    let classes = ctx
        .sql(
            "SELECT CAST(c.oid AS INT), c.relname FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public'",
        )
        .await
        .map_err(catalog_error)?
        .collect()
        .await
        .map_err(catalog_error)?;
    let mut modifiers: HashMap<(i32, String), i32> = HashMap::new();
    for b in &classes {
        let names = datafusion::arrow::compute::cast(b.column(1), &DataType::Utf8)
            .map_err(catalog_error)?;
        let (oids, names) = (
            b.column(0).as_primitive::<Int32Type>(),
            names.as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            if oids.is_null(i) || names.is_null(i) {
                continue;
            }
            let Ok(table) = ctx.table_provider(names.value(i)).await else {
                continue;
            };
            for f in table.schema().fields() {
                if let DataType::Decimal128(p, s) = f.data_type() {
                    let typmod = ((i32::from(*p) << 16) | i32::from(*s as u8)) + 4;
                    modifiers.insert((oids.value(i), f.name().clone()), typmod);
                }
            }
        }
    }
    let schema = stock.schema();
    let batches = ctx
        .read_table(stock)
        .map_err(catalog_error)?
        .collect()
        .await
        .map_err(catalog_error)?;
    let index = |name: &str| {
        schema
            .index_of(name)
            .map_err(|e| Error::Catalog(format!("pg_attribute: {e}")))
    };
    let (rel, att, typmod) = (index("attrelid")?, index("attname")?, index("atttypmod")?);
    let mut out = Vec::with_capacity(batches.len());
    for b in &batches {
        let rels = datafusion::arrow::compute::cast(b.column(rel), &DataType::Int32)
            .map_err(catalog_error)?;
        let names = datafusion::arrow::compute::cast(b.column(att), &DataType::Utf8)
            .map_err(catalog_error)?;
        let (rels, names) = (rels.as_primitive::<Int32Type>(), names.as_string::<i32>());
        let old = b.column(typmod).as_primitive::<Int32Type>();
        let fixed: Int32Array = (0..b.num_rows())
            .map(|i| {
                let key = (rels.is_valid(i) && names.is_valid(i))
                    .then(|| (rels.value(i), names.value(i).to_string()));
                key.and_then(|k| modifiers.get(&k).copied())
                    .or_else(|| old.is_valid(i).then(|| old.value(i)))
            })
            .collect();
        let mut columns = b.columns().to_vec();
        columns[typmod] = Arc::new(fixed);
        out.push(RecordBatch::try_new(schema.clone(), columns).map_err(catalog_error)?);
    }
    Ok(Arc::new(
        MemTable::try_new(schema, vec![out]).map_err(catalog_error)?,
    ))
}

/// `pg_class` with PostgreSQL's `reloptions` column (storage options, `text[]`):
/// NULL for every relation, as PostgreSQL has it for a table created without options.
/// SQLAlchemy's index reflection selects `i.reloptions`; datafusion-pg-catalog's
/// `pg_class` has no such column. Read once for the pinned run, as `pg_attribute`.
async fn with_reloptions(
    ctx: &SessionContext,
    pg_catalog: &Arc<dyn SchemaProvider>,
) -> Result<Arc<dyn TableProvider>> {
    use datafusion::arrow::datatypes::{Field, Schema};
    let stock = pg_catalog
        .table("pg_class")
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| Error::Catalog("pg_catalog has no pg_class".into()))?;
    let stock_schema = stock.schema();
    if stock_schema.index_of("reloptions").is_ok() {
        return Ok(stock);
    }
    let options = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let mut fields: Vec<Field> = stock_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("reloptions", options.clone(), true));
    let schema = Arc::new(Schema::new_with_metadata(
        fields,
        stock_schema.metadata().clone(),
    ));
    let batches = ctx
        .read_table(stock)
        .map_err(catalog_error)?
        .collect()
        .await
        .map_err(catalog_error)?;
    let out = batches
        .iter()
        .map(|b| {
            let mut columns = b.columns().to_vec();
            columns.push(datafusion::arrow::array::new_null_array(
                &options,
                b.num_rows(),
            ));
            RecordBatch::try_new(schema.clone(), columns).map_err(catalog_error)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(
        MemTable::try_new(schema, vec![out]).map_err(catalog_error)?,
    ))
}

/// `pg_catalog` with our `pg_description`, `pg_index`, `pg_constraint`,
/// `pg_attribute` and `pg_class`; every other table is the stock one.
#[derive(Debug)]
struct Replaced {
    inner: Arc<dyn SchemaProvider>,
    tables: HashMap<&'static str, Arc<dyn TableProvider>>,
}

#[async_trait]
impl SchemaProvider for Replaced {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let lower = name.to_ascii_lowercase();
        if let Some(t) = self.tables.get(lower.as_str()) {
            return Ok(Some(t.clone()));
        }
        self.inner.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// A catalog function whose answer is the same for every argument here.
fn constant_udf(
    name: &str,
    args: Vec<DataType>,
    value: datafusion::scalar::ScalarValue,
) -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        name,
        args,
        value.data_type(),
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
    )
}

/// PostgreSQL's `pg_size_pretty(bigint)`: bytes below 10 kB, then kB, MB, GB, TB
/// and PB, each rounded half away from zero as PostgreSQL rounds them.
pub fn pretty_size(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // One extra bit kept for rounding, as PostgreSQL does.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

fn size_pretty(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let sizes = datafusion::arrow::compute::cast(&arrays[0], &DataType::Int64)?;
    let out: StringArray = sizes
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .iter()
        .map(|s| s.map(pretty_size))
        .collect();
    Ok(ColumnarValue::Array(Arc::new(out)))
}

/// PostgreSQL's `json_build_object(key, value, …)`, as JSON text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: datafusion::logical_expr::Signature,
}

impl JsonBuildObject {
    fn new() -> Self {
        JsonBuildObject {
            signature: datafusion::logical_expr::Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return Err(DataFusionError::Plan(
                "json_build_object takes key, value pairs".into(),
            ));
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // Built by hand to keep the keys in the order given, as PostgreSQL does.
        let out: StringArray = (0..args.number_rows)
            .map(|row| {
                let fields: Vec<String> = arrays
                    .chunks(2)
                    .map(|pair| {
                        let key =
                            datafusion::arrow::util::display::array_value_to_string(&pair[0], row)
                                .unwrap_or_default();
                        format!(
                            "{}:{}",
                            serde_json::Value::String(key),
                            json_value(&pair[1], row)
                        )
                    })
                    .collect();
                Some(format!("{{{}}}", fields.join(",")))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

fn json_value(array: &ArrayRef, row: usize) -> serde_json::Value {
    // Logical nulls: a NULL literal arrives as a NullArray, which has no null bitmap.
    if array.logical_nulls().is_some_and(|n| n.is_null(row)) {
        return serde_json::Value::Null;
    }
    let text =
        datafusion::arrow::util::display::array_value_to_string(array, row).unwrap_or_default();
    match array.data_type() {
        DataType::Boolean => serde_json::Value::Bool(text == "true"),
        t if t.is_numeric() => {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        }
        _ => serde_json::Value::String(text),
    }
}

/// `generate_subscripts(list, 1)`: `[1, 2, …, n]` for a list of n elements; NULL
/// for a NULL list (PostgreSQL returns no rows for it, and `unnest(NULL)` none).
fn subscripts(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    use datafusion::arrow::array::{Int32Builder, ListBuilder};
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let list = &arrays[0];
    let mut b = ListBuilder::new(Int32Builder::new());
    let lengths: Vec<Option<usize>> = match list.data_type() {
        DataType::List(_) => {
            let l = list.as_list::<i32>();
            (0..l.len())
                .map(|i| l.is_valid(i).then(|| l.value(i).len()))
                .collect()
        }
        DataType::LargeList(_) => {
            let l = list.as_list::<i64>();
            (0..l.len())
                .map(|i| l.is_valid(i).then(|| l.value(i).len()))
                .collect()
        }
        DataType::Null => vec![None; list.len()],
        other => {
            return Err(DataFusionError::Plan(format!(
                "generate_subscripts takes an array, not {other}"
            )));
        }
    };
    for n in lengths {
        match n {
            Some(n) => {
                for i in 1..=n {
                    b.values().append_value(i as i32);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Ok(ColumnarValue::Array(Arc::new(b.finish())))
}

/// `obj_description(oid[, catalog])`, `col_description(oid, column_number)` and the
/// other catalog functions clients call, as PostgreSQL has them.
fn register_functions(ctx: &SessionContext, labels: Arc<Labels>) {
    let for_tables = labels.clone();
    let obj = move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let oids = datafusion::arrow::compute::cast(&arrays[0], &DataType::Int32)?;
        let oids = oids.as_primitive::<Int32Type>();
        let out: StringArray = oids
            .iter()
            .map(|o| o.and_then(|o| for_tables.tables.get(&o).cloned()))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    };
    let col = move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let oids = datafusion::arrow::compute::cast(&arrays[0], &DataType::Int32)?;
        let nums = datafusion::arrow::compute::cast(&arrays[1], &DataType::Int32)?;
        let (oids, nums) = (
            oids.as_primitive::<Int32Type>(),
            nums.as_primitive::<Int32Type>(),
        );
        let out: StringArray = (0..oids.len())
            .map(|i| {
                (oids.is_valid(i) && nums.is_valid(i))
                    .then(|| labels.columns.get(&(oids.value(i), nums.value(i))).cloned())
                    .flatten()
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    };
    // PostgreSQL's form first: drivers and SQLAlchemy read the version number out of
    // `version()`; the engine is named after it.
    let version = format!(
        "PostgreSQL 16.6 on {}-{}, townstat {} (Apache DataFusion {})",
        std::env::consts::ARCH,
        std::env::consts::OS,
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION
    );
    use datafusion::scalar::ScalarValue;
    ctx.register_udf(constant_udf(
        "version",
        vec![],
        ScalarValue::Utf8(Some(version)),
    ));
    ctx.register_udf(create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(size_pretty),
    ));
    // Table sizes are not tracked per pinned version: NULL ("unknown") rather than
    // the 0 datafusion-pg-catalog reports, which would claim the tables are empty.
    for name in [
        "pg_table_size",
        "pg_relation_size",
        "pg_total_relation_size",
    ] {
        ctx.register_udf(constant_udf(
            name,
            vec![DataType::Int32],
            ScalarValue::Int64(None),
        ));
    }
    // SQLAlchemy's column reflection: no column here is backed by a sequence.
    ctx.register_udf(constant_udf(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
        ScalarValue::Utf8(None),
    ));
    // Every collation and type (pg_catalog's) is on the search path: SQLAlchemy's
    // enum and domain reflection filter with `pg_type_is_visible`.
    for name in ["pg_collation_is_visible", "pg_type_is_visible"] {
        ctx.register_udf(constant_udf(
            name,
            vec![DataType::Int32],
            ScalarValue::Boolean(Some(true)),
        ));
    }
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        JsonBuildObject::new(),
    ));
    // `obj_description(oid)` (one argument, PostgreSQL's older form Superset's
    // inspector sends) looks in every catalog; oids are unique here, so both forms
    // find the same comment.
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
        datafusion::logical_expr::SimpleScalarUDF::new_with_signature(
            "obj_description",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Int32]),
                    TypeSignature::Exact(vec![DataType::Int32, DataType::Utf8]),
                    // An oid written as a number literal: `obj_description(16484, …)`.
                    TypeSignature::Exact(vec![DataType::Int64]),
                    TypeSignature::Exact(vec![DataType::Int64, DataType::Utf8]),
                ],
                Volatility::Stable,
            ),
            DataType::Utf8,
            Arc::new(obj),
        ),
    ));
    // `pg_get_indexdef(index_oid[, column, pretty])` (SQLAlchemy 2's index
    // reflection): the warehouse tables have no index, so it is only ever asked about
    // pg_catalog's own, whose definitions are not kept here: NULL.
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
        datafusion::logical_expr::SimpleScalarUDF::new_with_signature(
            "pg_get_indexdef",
            Signature::variadic_any(Volatility::Stable),
            DataType::Utf8,
            Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
        ),
    ));
    // `generate_subscripts(array, 1)`: the subscripts 1..n of a list, as a list (the
    // rewrite in compat.rs unnests it into rows, as PostgreSQL returns them).
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
        datafusion::logical_expr::SimpleScalarUDF::new_with_signature(
            "generate_subscripts",
            Signature::any(2, Volatility::Immutable),
            DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new(
                "item",
                DataType::Int32,
                true,
            ))),
            Arc::new(subscripts),
        ),
    ));
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
        datafusion::logical_expr::SimpleScalarUDF::new_with_signature(
            "col_description",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Int32, DataType::Int32]),
                    TypeSignature::Exact(vec![DataType::Int64, DataType::Int64]),
                    TypeSignature::Exact(vec![DataType::Int32, DataType::Int64]),
                    TypeSignature::Exact(vec![DataType::Int64, DataType::Int32]),
                ],
                Volatility::Stable,
            ),
            DataType::Utf8,
            Arc::new(col),
        ),
    ));
}
