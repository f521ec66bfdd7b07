//! SQL functions where plain SQL would be clumsy, registered once in every session:
//!
//! - `scale_tier(revenue)` — the plan's tier label of a revenue in 元
//!   (`200亿级` … `5亿级`, `5亿以下`), from `townstat_domain::town::scale_tier`;
//! - `industry_matches(class_code, prefix)` — whether a GB/T 4754 class falls under a
//!   town rule's prefix (a section letter matches every class of its section).
//! - `top_k_sum(value, k)` — an aggregate: the sum of the k largest non-null decimals
//!   of a group (null for a group with none). The concentration ratios cr1/cr3/cr5 in
//!   one pass over the members, with no sort of every member by revenue.
//! - `to_char`, `to_date`, `to_timestamp` with PostgreSQL's format patterns
//!   (`'YYYY-MM-DD'`) besides DataFusion's `'%Y-%m-%d'` (`crate::pgdate`).

use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, ListArray, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarUDF, Signature, Volatility,
    create_udf,
};
use datafusion::physical_expr::expressions::Literal;
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
    let mut out = vec![
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
    ];
    // to_char / to_date / to_timestamp reading PostgreSQL's patterns too.
    out.extend(crate::pgdate::udfs());
    out
}

/// The aggregate functions, for sessions built elsewhere (as [`udfs`]).
pub fn udafs() -> Vec<AggregateUDF> {
    vec![AggregateUDF::new_from_impl(TopKSum::new())]
}

/// Registers the functions in a session.
pub fn register(ctx: &SessionContext) {
    for f in udfs() {
        ctx.register_udf(f);
    }
    for f in udafs() {
        ctx.register_udaf(f);
    }
    crate::bounded::register(ctx);
}

/// `top_k_sum(value DECIMAL, k)`: the sum of the k largest values, as DECIMAL(38, s).
/// k must be a positive integer literal. Ties need no order: equal values add up to
/// the same sum whichever of them is taken.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TopKSum {
    signature: Signature,
}

impl TopKSum {
    fn new() -> Self {
        TopKSum {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn top_k_err(message: &str) -> DataFusionError {
    DataFusionError::Plan(format!("top_k_sum: {message}"))
}

impl AggregateUDFImpl for TopKSum {
    fn name(&self) -> &str {
        "top_k_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> datafusion::error::Result<Vec<DataType>> {
        match arg_types {
            [DataType::Decimal128(p, s), k] if k.is_integer() => {
                Ok(vec![DataType::Decimal128(*p, *s), DataType::Int64])
            }
            _ => Err(top_k_err("takes a DECIMAL value and an integer k")),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        match arg_types.first() {
            Some(DataType::Decimal128(_, s)) => Ok(DataType::Decimal128(38, *s)),
            _ => Err(top_k_err("takes a DECIMAL value")),
        }
    }

    fn accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> datafusion::error::Result<Box<dyn Accumulator>> {
        let k = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value() {
                ScalarValue::Int64(Some(k)) if *k > 0 => usize::try_from(*k).ok(),
                _ => None,
            })
            .ok_or_else(|| top_k_err("k must be a positive integer literal"))?;
        let DataType::Decimal128(_, scale) = args.return_type() else {
            return Err(top_k_err("takes a DECIMAL value"));
        };
        Ok(Box::new(TopK {
            k,
            scale: *scale,
            top: Vec::with_capacity(k + 1),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> datafusion::error::Result<Vec<FieldRef>> {
        let item = Field::new_list_field(args.return_type().clone(), true);
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "top"),
            DataType::List(Arc::new(item)),
            true,
        ))])
    }
}

/// The k largest values seen, largest first.
#[derive(Debug)]
struct TopK {
    k: usize,
    scale: i8,
    top: Vec<i128>,
}

impl TopK {
    fn add(&mut self, v: i128) {
        if self.top.len() == self.k {
            match self.top.last() {
                Some(&least) if v > least => {
                    self.top.pop();
                }
                _ => return,
            }
        }
        let at = self.top.partition_point(|&t| t >= v);
        self.top.insert(at, v);
    }

    fn add_array(&mut self, values: &ArrayRef) -> datafusion::error::Result<()> {
        let values = values
            .as_primitive_opt::<Decimal128Type>()
            .ok_or_else(|| top_k_err("takes a DECIMAL value"))?;
        for v in values.iter().flatten() {
            self.add(v);
        }
        Ok(())
    }
}

impl Accumulator for TopK {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::error::Result<()> {
        self.add_array(&values[0])
    }

    fn evaluate(&mut self) -> datafusion::error::Result<ScalarValue> {
        let sum = (!self.top.is_empty()).then(|| self.top.iter().sum());
        Ok(ScalarValue::Decimal128(sum, 38, self.scale))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.top.capacity() * std::mem::size_of::<i128>()
    }

    fn state(&mut self) -> datafusion::error::Result<Vec<ScalarValue>> {
        let values =
            Decimal128Array::from(self.top.clone()).with_precision_and_scale(38, self.scale)?;
        let list = ListArray::new(
            Arc::new(Field::new_list_field(values.data_type().clone(), true)),
            OffsetBuffer::from_lengths([values.len()]),
            Arc::new(values),
            None,
        );
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::error::Result<()> {
        let lists = states[0]
            .as_list_opt::<i32>()
            .ok_or_else(|| top_k_err("state is not a list"))?;
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                self.add_array(&lists.value(i))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::Accumulator;

    use super::TopK;

    fn top(k: usize, values: &[i128]) -> TopK {
        let mut t = TopK {
            k,
            scale: 2,
            top: vec![],
        };
        for v in values {
            t.add(*v);
        }
        t
    }

    #[test]
    fn keeps_the_k_largest_whatever_the_order() {
        assert_eq!(top(3, &[5, 1, 9, 7, 3]).top, vec![9, 7, 5]);
        assert_eq!(top(3, &[3, 7, 9, 1, 5]).top, vec![9, 7, 5]);
        assert_eq!(top(2, &[4, 4, 4]).top, vec![4, 4]);
        assert_eq!(top(5, &[-2, 8]).top, vec![8, -2]);
    }

    #[test]
    fn sums_or_is_null() {
        let value = |t: &mut TopK| t.evaluate().unwrap().to_string();
        assert_eq!(value(&mut top(3, &[100, 250, 50, 75])), "4.25");
        assert_eq!(value(&mut top(1, &[])), "NULL");
    }

    #[test]
    fn merges_states() {
        let mut a = top(2, &[10, 30]);
        let mut b = top(2, &[20, 40]);
        let state = b.state().unwrap()[0].to_array().unwrap();
        a.merge_batch(&[state]).unwrap();
        assert_eq!(a.top, vec![40, 30]);
    }
}
