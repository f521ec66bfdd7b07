//! SQL functions where plain SQL would be clumsy, registered once in every session:
//!
//! - `scale_tier(revenue)` — the plan's tier label of a revenue in 元
//!   (`200亿级` … `5亿级`, `5亿以下`), from `townstat_domain::town::scale_tier`;
//! - `industry_matches(class_code, prefix)` — whether a GB/T 4754 class falls under a
//!   town rule's prefix (a section letter matches every class of its section).

use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::datatypes::{DataType, Decimal128Type};
use datafusion::common::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use townstat_domain::industry::Industries;

fn industries() -> &'static Industries {
    static T: OnceLock<Industries> = OnceLock::new();
    T.get_or_init(Industries::gbt4754_2017)
}

fn scale_tier(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let revenue = arrays[0]
        .as_primitive_opt::<Decimal128Type>()
        .ok_or_else(|| {
            DataFusionError::Execution("scale_tier takes a Decimal(20,2) revenue".into())
        })?;
    let out: StringArray = revenue
        .iter()
        .map(|r| r.map(townstat_domain::town::scale_tier))
        .collect();
    Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
}

fn industry_matches(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let (codes, prefixes) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
    let t = industries();
    let out: BooleanArray = (0..codes.len())
        .map(|i| {
            (codes.is_valid(i) && prefixes.is_valid(i))
                .then(|| t.matches_prefix(codes.value(i), prefixes.value(i)))
        })
        .collect();
    Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
}

/// The functions, for sessions built elsewhere (the cluster's scheduler and executors
/// must know them by name to decode a plan that calls them).
pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        create_udf(
            "scale_tier",
            vec![DataType::Decimal128(20, 2)],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(scale_tier),
        ),
        create_udf(
            "industry_matches",
            vec![DataType::Utf8, DataType::Utf8],
            DataType::Boolean,
            Volatility::Immutable,
            Arc::new(industry_matches),
        ),
    ]
}

/// Registers the functions in a session.
pub fn register(ctx: &SessionContext) {
    for f in udfs() {
        ctx.register_udf(f);
    }
}
