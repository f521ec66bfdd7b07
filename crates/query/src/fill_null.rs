//! `COALESCE(column, literal)` computed in one pass over the column.
//!
//! DataFusion plans `COALESCE(x, 0)` as `CASE WHEN x IS NOT NULL THEN x ELSE 0 END`
//! and evaluates that CASE by filtering the batch twice (the rows where `x` is set,
//! the rows where it is not) and merging the two results back by the mask: about
//! 20 ns a row. The marts fill the missing figures of every member-year with zeros
//! this way. At scale 100 `town_member_year`'s 17 such columns of 1.4 M rows took
//! 0.45 s of its projection's 0.47 s, and `int_entity_year`'s six designation flags of
//! 2.53 M rows took 0.15 s (`TOWNSTAT_EXPLAIN_STEPS=1`, the `expr_N_eval_time` of each
//! projection). With this rule the step's projections took 0.28 s, and 0.16 s with
//! the return columns' zero written in their own type as well
//! (`town_member_year.sql`); `int_entity_year`'s went from 0.23 s to 0.14–0.15 s
//! (bench/RESULTS.md).
//! [`FillNulls`] replaces that CASE in projections with [`FillNull`]. It
//! returns a column without nulls as it is, and copies a column with nulls once, with
//! the literal where the column is null.
//!
//! Only that exact form is replaced:
//! - one `WHEN <column> IS NOT NULL THEN <the same column>`, of a fixed-width type
//!   (numbers, decimals, dates, times): a string's or a dictionary's CASE stays as
//!   planned;
//! - an `ELSE` literal that is not null and casts to the column's type;
//! - a result of the CASE's type, nullability and metadata.
//!
//! A projection whose schema would change is left as planned. Anything else stays as
//! DataFusion planned it. The rule is in every local session, queries and runs; a
//! cluster's sessions are built in `townstat-cluster` without it, because its
//! expression could not be sent to an executor.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, PrimitiveArray, downcast_primitive_array,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CaseExpr, Column, IsNotNullExpr, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};

/// A column with its nulls replaced by a value of its type that is not null.
#[derive(Debug, Eq)]
pub struct FillNull {
    arg: Arc<dyn PhysicalExpr>,
    fill: ScalarValue,
}

// Written out, as DataFusion's own expressions do: a derived `PartialEq` does not
// compile for an `Arc<dyn PhysicalExpr>` field (rust-lang/rust#78808), and `Hash`
// goes with it.
impl PartialEq for FillNull {
    fn eq(&self, other: &Self) -> bool {
        self.arg.eq(&other.arg) && self.fill == other.fill
    }
}

impl std::hash::Hash for FillNull {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.arg.hash(state);
        self.fill.hash(state);
    }
}

impl fmt::Display for FillNull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fill_null({}, {})", self.arg, self.fill)
    }
}

impl PhysicalExpr for FillNull {
    fn data_type(&self, input_schema: &Schema) -> DfResult<DataType> {
        self.arg.data_type(input_schema)
    }

    fn nullable(&self, _input_schema: &Schema) -> DfResult<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        Ok(match self.arg.evaluate(batch)? {
            ColumnarValue::Scalar(value) if value.is_null() => {
                ColumnarValue::Scalar(self.fill.clone())
            }
            ColumnarValue::Scalar(value) => ColumnarValue::Scalar(value),
            ColumnarValue::Array(array) => ColumnarValue::Array(fill_nulls(&array, &self.fill)?),
        })
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.arg]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        let [arg] = <[_; 1]>::try_from(children).map_err(|c| {
            DataFusionError::Internal(format!("fill_null takes one child, not {}", c.len()))
        })?;
        Ok(Arc::new(FillNull {
            arg,
            fill: self.fill.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "COALESCE(")?;
        self.arg.fmt_sql(f)?;
        write!(f, ", {})", self.fill)
    }
}

/// `array` with `fill` where it is null; a column without nulls as it is.
fn fill_nulls(array: &ArrayRef, fill: &ScalarValue) -> DfResult<ArrayRef> {
    let Some(nulls) = array.nulls().filter(|n| n.null_count() > 0) else {
        return Ok(Arc::clone(array));
    };
    downcast_primitive_array!(
        array => {
            fill_primitive(array, nulls, fill)
        }
        t => {
            // The rule makes a FillNull of fixed-width columns only.
            Err(DataFusionError::Internal(format!(
                "fill_null of a {t} column: only fixed-width columns are filled"
            )))
        }
    )
}

/// A fixed-width column with nulls copied once, `fill` written where it is null.
fn fill_primitive<T: ArrowPrimitiveType>(
    array: &PrimitiveArray<T>,
    nulls: &NullBuffer,
    fill: &ScalarValue,
) -> DfResult<ArrayRef> {
    let fill_array = fill.to_array_of_size(1)?;
    let fill = fill_array
        .as_primitive_opt::<T>()
        .filter(|a| a.is_valid(0))
        .ok_or_else(|| {
            DataFusionError::Internal(format!(
                "fill_null: {fill} is not a value of {}",
                array.data_type()
            ))
        })?
        .value(0);
    let values: ScalarBuffer<T::Native> = array
        .values()
        .iter()
        .zip(nulls.iter())
        .map(|(value, set)| if set { *value } else { fill })
        .collect();
    Ok(Arc::new(
        PrimitiveArray::<T>::new(values, None).with_data_type(array.data_type().clone()),
    ))
}

/// See the module's documentation.
#[derive(Debug, Default)]
pub struct FillNulls;

/// `expr` as a [`FillNull`] when it is `CASE WHEN c IS NOT NULL THEN c ELSE v END`
/// over `schema` and the replacement has the CASE's type, nullability and metadata.
fn as_fill_null(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    let case = expr.downcast_ref::<CaseExpr>()?;
    let [(when, then)] = case.when_then_expr() else {
        return None;
    };
    if case.expr().is_some() {
        return None;
    }
    let tested = when
        .downcast_ref::<IsNotNullExpr>()?
        .arg()
        .downcast_ref::<Column>()?;
    if then.downcast_ref::<Column>()? != tested {
        return None;
    }
    let literal = case.else_expr()?.downcast_ref::<Literal>()?.value();
    if literal.is_null() {
        return None;
    }
    let data_type = then.data_type(schema).ok()?;
    if !data_type.is_primitive() {
        return None;
    }
    let fill = literal.cast_to(&data_type).ok()?;
    if fill.is_null() {
        return None;
    }
    let replaced: Arc<dyn PhysicalExpr> = Arc::new(FillNull {
        arg: Arc::clone(then),
        fill,
    });
    let (before, after) = (
        expr.return_field(schema).ok()?,
        replaced.return_field(schema).ok()?,
    );
    (before.data_type() == after.data_type()
        && before.is_nullable() == after.is_nullable()
        && before.metadata() == after.metadata())
    .then_some(replaced)
}

impl PhysicalOptimizerRule for FillNulls {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(projection) = node.downcast_ref::<ProjectionExec>() else {
                return Ok(Transformed::no(node));
            };
            let input_schema = projection.input().schema();
            let mut changed = false;
            let mut exprs = Vec::with_capacity(projection.expr().len());
            for item in projection.expr() {
                let expr = Arc::clone(&item.expr).transform_up(|e| {
                    Ok(match as_fill_null(&e, &input_schema) {
                        Some(fill) => Transformed::yes(fill),
                        None => Transformed::no(e),
                    })
                })?;
                changed |= expr.transformed;
                exprs.push(ProjectionExpr {
                    expr: expr.data,
                    alias: item.alias.clone(),
                });
            }
            if !changed {
                return Ok(Transformed::no(node));
            }
            let schema = projection.schema();
            let replaced = ProjectionExec::try_new_with_schema_metadata(
                exprs,
                Arc::clone(projection.input()),
                &schema,
            )?;
            if replaced.schema() != schema {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(
                Arc::new(replaced) as Arc<dyn ExecutionPlan>
            ))
        })
        .data()
    }

    fn name(&self) -> &str {
        "fill_nulls"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, Int64Array, StringArray};
    use datafusion::prelude::SessionContext;

    fn batch() -> RecordBatch {
        let revenue = Decimal128Array::from(vec![Some(12_345), None, Some(-5), None])
            .with_precision_and_scale(20, 2)
            .unwrap();
        RecordBatch::try_from_iter([
            ("revenue", Arc::new(revenue) as ArrayRef),
            (
                "employees",
                Arc::new(Int64Array::from(vec![None, Some(7), None, Some(0)])),
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("甲"), None, Some("乙"), None])),
            ),
            (
                "full",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(3), Some(4)])),
            ),
        ])
        .unwrap()
    }

    /// The statement's result and its physical plan, with or without the rule.
    async fn run(sql: &str, rule: bool) -> (RecordBatch, String) {
        let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        if rule {
            rules.push(Arc::new(FillNulls));
        }
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_batch("t", batch()).unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        let batches = df.collect().await.unwrap();
        let schema = batches[0].schema();
        (
            datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap(),
            shown,
        )
    }

    #[tokio::test]
    async fn coalesce_to_a_literal_gives_what_the_case_gives_in_one_pass() {
        let sql = "SELECT COALESCE(revenue, 0) AS r, \
                          CAST(COALESCE(revenue, 0) AS DECIMAL(20, 2)) AS r2, \
                          COALESCE(employees, 0) AS e, COALESCE(employees, 3) + 1 AS e3, \
                          COALESCE(full, 0) AS f \
                   FROM t";
        let (with, plan) = run(sql, true).await;
        let (without, before) = run(sql, false).await;
        assert_eq!(with, without);
        assert_eq!(with.schema(), without.schema());
        assert!(before.contains("IS NOT NULL THEN"), "{before}");
        assert!(!plan.contains("IS NOT NULL THEN"), "{plan}");
        assert!(plan.contains("fill_null("), "{plan}");
        let r = with
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
        assert_eq!(r.null_count(), 0);
        assert_eq!(r.values().to_vec(), [12_345, 0, -5, 0]);
        let e3 = with
            .column(3)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        assert_eq!(e3.values().to_vec(), [4, 8, 4, 1]);
    }

    #[tokio::test]
    async fn other_forms_stay_as_planned() {
        // Two arguments that are both columns, a NULL literal, a CASE that tests one
        // column and returns another, and a string column.
        let sql = "SELECT COALESCE(employees, full) AS a, COALESCE(employees, NULL) AS b, \
                          CASE WHEN employees IS NOT NULL THEN full ELSE 0 END AS c, \
                          COALESCE(name, '无') AS n \
                   FROM t";
        let (with, plan) = run(sql, true).await;
        let (without, _) = run(sql, false).await;
        assert_eq!(with, without);
        assert!(!plan.contains("fill_null("), "{plan}");
        let n = with.column(3).as_string::<i32>();
        assert_eq!(
            n.iter().collect::<Vec<_>>(),
            [Some("甲"), Some("无"), Some("乙"), Some("无")]
        );
    }

    #[test]
    fn a_fixed_width_column_keeps_its_type_and_loses_its_nulls() {
        let array: ArrayRef = Arc::new(
            Decimal128Array::from(vec![None, Some(250), None])
                .with_precision_and_scale(20, 2)
                .unwrap(),
        );
        let fill = ScalarValue::Decimal128(Some(0), 20, 2);
        let filled = fill_nulls(&array, &fill).unwrap();
        assert_eq!(filled.data_type(), &DataType::Decimal128(20, 2));
        assert_eq!(filled.null_count(), 0);
        let filled = filled.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
        assert_eq!(filled.values().to_vec(), [0, 250, 0]);
        // A column without nulls is the same column.
        let full: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let same = fill_nulls(&full, &ScalarValue::Int64(Some(0))).unwrap();
        assert!(Arc::ptr_eq(&full, &same));
    }
}
