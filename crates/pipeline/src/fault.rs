//! The test-only fault switch of the marts' tests: `TOWNSTAT_FAULT_MART` corrupts the
//! marts a run just built, before their tests run, so that a test can prove the tests
//! stop the run (or, for `warn`, let it publish). Comma-separated faults:
//!
//! | fault | what it does | the test that catches it |
//! |---|---|---|
//! | `duplicate_key` | repeats `town_year`'s first row | `town_year.unique` |
//! | `null` | nulls `town_year.county_code` in the first row | `town_year.not_null.county_code` |
//! | `unknown_tier` | sets the first row's `town_year.scale_tier` to `999亿级` | `town_year.accepted_values.scale_tier` |
//! | `broken_sum` | adds 1 元 to the first `town_year.revenue` that has one | `town_year.members_add_up` |
//! | `warn` | sets the first `town_year_yoy.revenue_yoy` to 50 (5,000 % growth) | `town_year_yoy.range.revenue_yoy` (warn) |
//!
//! Like `TOWNSTAT_FAIL_AT`, nobody sets it outside tests; a run with it set says so in
//! its log.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, StringArray};
use arrow::datatypes::{DataType, Decimal128Type};
use arrow::record_batch::RecordBatch;
use townstat_query::marts::MartRows;

use crate::error::{Error, Result};

/// The environment variable of the switch.
pub const VAR: &str = "TOWNSTAT_FAULT_MART";

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{VAR}: {e}"))
}

fn column_index(batch: &RecordBatch, name: &str) -> Result<usize> {
    batch
        .schema()
        .index_of(name)
        .map_err(|_| internal(format!("no column {name}")))
}

fn replace(batch: &RecordBatch, name: &str, column: ArrayRef) -> Result<RecordBatch> {
    let i = column_index(batch, name)?;
    let mut columns = batch.columns().to_vec();
    columns[i] = column;
    RecordBatch::try_new(batch.schema(), columns).map_err(internal)
}

fn first_row_only(len: usize) -> BooleanArray {
    (0..len).map(|i| Some(i == 0)).collect()
}

/// Applies the faults `TOWNSTAT_FAULT_MART` names, if any.
pub fn corrupt_marts(marts: &mut [(String, MartRows)]) -> Result<()> {
    let Ok(faults) = std::env::var(VAR) else {
        return Ok(());
    };
    for fault in faults.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let table = if fault == "warn" {
            "town_year_yoy"
        } else {
            "town_year"
        };
        let Some((_, rows)) = marts.iter_mut().find(|(n, _)| n == table) else {
            return Err(internal(format!("no mart {table}")));
        };
        // The marts corrupted here are a few hundred rows, always built in memory.
        let MartRows::Memory(batches) = rows else {
            return Err(internal(format!("{table} was built to a scratch file")));
        };
        let schema = batches
            .first()
            .map(RecordBatch::schema)
            .ok_or_else(|| internal(format!("{table} has no batch")))?;
        *batches = vec![arrow::compute::concat_batches(&schema, batches.iter()).map_err(internal)?];
        let batch = &mut batches[0];
        if batch.num_rows() == 0 {
            return Err(internal(format!("{table} has no rows to corrupt")));
        }
        tracing::warn!(fault, table, "corrupting a mart on purpose ({VAR})");
        *batch = match fault {
            "duplicate_key" => {
                arrow::compute::concat_batches(&batch.schema(), [&*batch, &batch.slice(0, 1)])
                    .map_err(internal)?
            }
            "null" => {
                let c = batch.column(column_index(batch, "county_code")?);
                let nulled =
                    arrow::compute::nullif(c, &first_row_only(c.len())).map_err(internal)?;
                replace(batch, "county_code", nulled)?
            }
            "unknown_tier" => {
                let c = batch.column(column_index(batch, "scale_tier")?);
                let text = arrow::compute::cast(c, &DataType::Utf8).map_err(internal)?;
                let text = text.as_string::<i32>();
                let changed: StringArray = (0..text.len())
                    .map(|i| {
                        if i == 0 {
                            Some("999亿级")
                        } else {
                            text.is_valid(i).then(|| text.value(i))
                        }
                    })
                    .collect();
                let back = arrow::compute::cast(&changed, c.data_type()).map_err(internal)?;
                replace(batch, "scale_tier", back)?
            }
            "broken_sum" => {
                let c = batch.column(column_index(batch, "revenue")?);
                let DataType::Decimal128(p, s) = c.data_type().clone() else {
                    return Err(internal("town_year.revenue is not a decimal"));
                };
                let money = c.as_primitive::<Decimal128Type>();
                let at = (0..money.len())
                    .find(|&i| money.is_valid(i))
                    .ok_or_else(|| internal("no town_year row has a revenue"))?;
                let one_yuan = 10i128.pow(s.max(0) as u32);
                let changed: arrow::array::Decimal128Array = (0..money.len())
                    .map(|i| {
                        money
                            .is_valid(i)
                            .then(|| money.value(i) + if i == at { one_yuan } else { 0 })
                    })
                    .collect();
                let changed = changed.with_precision_and_scale(p, s).map_err(internal)?;
                replace(batch, "revenue", Arc::new(changed))?
            }
            "warn" => {
                let c = batch.column(column_index(batch, "revenue_yoy")?);
                let values = arrow::compute::cast(c, &DataType::Float64).map_err(internal)?;
                let values = values.as_primitive::<arrow::datatypes::Float64Type>();
                let changed: Float64Array = (0..values.len())
                    .map(|i| {
                        if i == 0 {
                            Some(50.0)
                        } else {
                            values.is_valid(i).then(|| values.value(i))
                        }
                    })
                    .collect();
                let back = arrow::compute::cast(&changed, c.data_type()).map_err(internal)?;
                replace(batch, "revenue_yoy", back)?
            }
            other => return Err(internal(format!("unknown fault {other:?}"))),
        };
    }
    Ok(())
}
