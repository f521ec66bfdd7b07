//! An optimizer rule: a filter on one side of an inner join also filters the other
//! side when the join key is a widening integer cast of the filtered column.
//!
//! The source tables store `year` as a 32-bit integer and the marts as a 64-bit one,
//! so a statement joining `enterprise_annual a` to `town_membership m` on
//! `m.year = a.year` gets the key `CAST(a.year AS BIGINT) = m.year`. DataFusion carries
//! a filter across an equi-join only when both keys are plain columns: `WHERE a.year IN
//! (2024, 2025)` then reads and hashes every year of `town_membership`. This rule runs
//! just before DataFusion pushes filters down: for a filter above an inner join and a
//! key pair where one side is column `c` (or an injective integer cast of it), each
//! conjunct that compares `c` with literals only is repeated on the other key
//! (`m.year IN (BIGINT 2024, BIGINT 2025)`). For every joined row the other key is `c`
//! (or its cast, which keeps values apart and in order), so the repeated conjunct holds
//! wherever the original does: the
//! filter's result is unchanged, and filter push-down then moves the new conjunct to
//! the other side, where it prunes rows before the join (and Parquet row groups
//! before the scan).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Filter, JoinType, LogicalPlan, Operator,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct InferAcrossCastKeys;

/// The rule's name, as `EXPLAIN VERBOSE` shows it.
pub const NAME: &str = "townstat_infer_across_cast_keys";

impl OptimizerRule for InferAcrossCastKeys {
    fn name(&self) -> &str {
        NAME
    }

    fn apply_order(&self) -> Option<datafusion::optimizer::ApplyOrder> {
        Some(datafusion::optimizer::ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Filter(filter) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let LogicalPlan::Join(join) = filter.input.as_ref() else {
            return Ok(Transformed::no(plan));
        };
        if join.join_type != JoinType::Inner
            || join.null_aware
            || join.null_equality != NullEquality::NullEqualsNothing
        {
            return Ok(Transformed::no(plan));
        }
        let conjuncts: Vec<&Expr> = split_conjunction(&filter.predicate);
        let mut added: Vec<Expr> = vec![];
        for (l, r) in &join.on {
            for (from, to) in [(l, r), (r, l)] {
                let Some((column, written_as, literals_as)) = substitute(from, to, join)? else {
                    continue;
                };
                for conjunct in &conjuncts {
                    if !compares_with_literals(conjunct, &column)
                        || !literals_cast_exactly(conjunct, literals_as.as_ref())
                    {
                        continue;
                    }
                    let inferred = (*conjunct)
                        .clone()
                        .transform(|e| match &e {
                            Expr::Column(c) if *c == column => {
                                Ok(Transformed::yes(written_as.clone()))
                            }
                            Expr::Literal(value, metadata) => match &literals_as {
                                Some(t) => Ok(Transformed::yes(Expr::Literal(
                                    value.cast_to(t)?,
                                    metadata.clone(),
                                ))),
                                None => Ok(Transformed::no(e)),
                            },
                            _ => Ok(Transformed::no(e)),
                        })?
                        .data;
                    if !conjuncts.contains(&&inferred) && !added.contains(&inferred) {
                        added.push(inferred);
                    }
                }
            }
        }
        if added.is_empty() {
            return Ok(Transformed::no(plan));
        }
        let Some(predicate) = conjunction(conjuncts.into_iter().cloned().chain(added)) else {
            return Ok(Transformed::no(plan));
        };
        Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
            predicate,
            Arc::clone(&filter.input),
        )?)))
    }
}

/// For the key pair `from = to`: the column `from` is or casts, what to write for it
/// in a conjunct on the other side, and the type to give the conjunct's literals.
/// `from` a column `c`: `c` is `to` on every joined row, literals stay. `from` an
/// order-preserving, injective integer cast `CAST(c AS T)`: `c op L` holds exactly when
/// `CAST(c AS T) op CAST(L AS T)` does, and `CAST(c AS T)` is `to` on every joined row,
/// so `c` is written `to` and each literal cast to `T`. `None` when both keys are
/// plain columns (DataFusion infers those itself) or `from` is neither form.
type Substitute = (Column, Expr, Option<DataType>);

fn substitute(
    from: &Expr,
    to: &Expr,
    join: &datafusion::logical_expr::Join,
) -> Result<Option<Substitute>> {
    if matches!((from, to), (Expr::Column(_), Expr::Column(_))) {
        return Ok(None);
    }
    let schema = join.schema.as_ref();
    match from {
        // `to` a widening cast of column d: compare d itself with the literals in d's
        // type (when each converts exactly), which Parquet statistics can prune on.
        Expr::Column(c) => match to {
            Expr::Cast(datafusion::logical_expr::Cast { expr, field })
                if matches!(expr.as_ref(), Expr::Column(_))
                    && widens(&expr.get_type(schema)?, field.data_type()) =>
            {
                Ok(Some((
                    c.clone(),
                    expr.as_ref().clone(),
                    Some(expr.get_type(schema)?),
                )))
            }
            _ => Ok(Some((c.clone(), to.clone(), None))),
        },
        Expr::Cast(datafusion::logical_expr::Cast { expr, field })
        | Expr::TryCast(datafusion::logical_expr::TryCast { expr, field }) => {
            let Expr::Column(c) = expr.as_ref() else {
                return Ok(None);
            };
            let inner = expr.get_type(schema)?;
            if !widens(&inner, field.data_type()) {
                return Ok(None);
            }
            Ok(Some((
                c.clone(),
                to.clone(),
                Some(field.data_type().clone()),
            )))
        }
        _ => Ok(None),
    }
}

/// Whether every literal of a conjunct converts to `t` and back without change (a
/// BIGINT bound beyond INT's range does not: such a conjunct is not repeated).
fn literals_cast_exactly(expr: &Expr, t: Option<&DataType>) -> bool {
    let Some(t) = t else {
        return true;
    };
    let mut exact = true;
    let _ = expr.apply(|e| {
        if let Expr::Literal(value, _) = e {
            let back = value
                .cast_to(t)
                .and_then(|narrow| narrow.cast_to(&value.data_type()));
            exact &= matches!(back, Ok(v) if v == *value) && !value.is_null();
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    exact
}

/// Whether a cast from `from` to `to` keeps every value distinct and in order (signed
/// integers to signed integers at least as wide).
fn widens(from: &DataType, to: &DataType) -> bool {
    fn width(t: &DataType) -> Option<u8> {
        match t {
            DataType::Int8 => Some(8),
            DataType::Int16 => Some(16),
            DataType::Int32 => Some(32),
            DataType::Int64 => Some(64),
            _ => None,
        }
    }
    matches!((width(from), width(to)), (Some(a), Some(b)) if a <= b)
}

/// Whether a conjunct only compares `column` with literals: `=`, `<>`, `<`, `<=`, `>`,
/// `>=`, `IN (…)`, `BETWEEN`, and AND / OR / NOT of such. Anything else (a function,
/// another column, a subquery) is left alone.
fn compares_with_literals(expr: &Expr, column: &Column) -> bool {
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c == column);
    let is_literal = |e: &Expr| matches!(e, Expr::Literal(..));
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => {
                compares_with_literals(left, column) && compares_with_literals(right, column)
            }
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq => {
                (is_column(left) && is_literal(right)) || (is_literal(left) && is_column(right))
            }
            _ => false,
        },
        Expr::Not(inner) => compares_with_literals(inner, column),
        Expr::InList(list) => is_column(&list.expr) && list.list.iter().all(is_literal),
        Expr::Between(b) => is_column(&b.expr) && is_literal(&b.low) && is_literal(&b.high),
        _ => false,
    }
}

/// The session's optimizer rules with this one just before DataFusion's filter
/// push-down (which then moves the inferred conjuncts below the join).
pub fn with_rule(
    rules: &[Arc<dyn OptimizerRule + Send + Sync>],
) -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut out: Vec<Arc<dyn OptimizerRule + Send + Sync>> = Vec::with_capacity(rules.len() + 1);
    let mut placed = false;
    for rule in rules {
        if !placed && rule.name() == "push_down_filter" {
            out.push(Arc::new(InferAcrossCastKeys));
            placed = true;
        }
        out.push(Arc::clone(rule));
    }
    if !placed {
        out.push(Arc::new(InferAcrossCastKeys));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    /// `a`: an annual table with an INT year; `m`: a membership table with a BIGINT
    /// year, one year far outside INT's range.
    fn register(ctx: &SessionContext) {
        let a = Arc::new(Schema::new(vec![
            Field::new("uscc", DataType::Utf8, false),
            Field::new("year", DataType::Int32, true),
            Field::new("revenue", DataType::Int64, true),
        ]));
        let a = RecordBatch::try_new(
            a.clone(),
            vec![
                Arc::new(StringArray::from(vec!["A", "A", "A", "B", "B", "C", "C"])),
                Arc::new(Int32Array::from(vec![
                    Some(2022),
                    Some(2023),
                    Some(2024),
                    Some(2023),
                    Some(2024),
                    None,
                    Some(2024),
                ])),
                Arc::new(Int64Array::from(vec![1, 10, 100, 1000, 10000, 7, 100000])),
            ],
        )
        .expect("a");
        let m = Arc::new(Schema::new(vec![
            Field::new("town", DataType::Utf8, false),
            Field::new("uscc", DataType::Utf8, false),
            Field::new("year", DataType::Int64, true),
        ]));
        let m = RecordBatch::try_new(
            m.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    "T1", "T1", "T1", "T2", "T2", "T2", "T3",
                ])),
                Arc::new(StringArray::from(vec!["A", "A", "A", "B", "B", "C", "C"])),
                Arc::new(Int64Array::from(vec![
                    Some(2022),
                    Some(2023),
                    Some(2024),
                    Some(2024),
                    Some(5_000_000_000),
                    None,
                    Some(2024),
                ])),
            ],
        )
        .expect("m");
        for (name, batch) in [("a", a), ("m", m)] {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("table");
            ctx.register_table(name, Arc::new(table)).expect("register");
        }
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let batches = ctx
            .sql(sql)
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .expect("prints")
            .to_string()
            .lines()
            .map(str::to_string)
            .collect()
    }

    async fn optimized(ctx: &SessionContext, sql: &str) -> String {
        let plan = ctx
            .sql(sql)
            .await
            .expect("plans")
            .into_optimized_plan()
            .expect("optimizes");
        plan.display_indent().to_string()
    }

    #[tokio::test]
    async fn a_filter_crosses_a_cast_join_key_and_answers_stay_the_same() {
        let with = crate::session::context();
        let without = SessionContext::new();
        register(&with);
        register(&without);
        let cases = [
            // The filter on the INT side reaches the BIGINT side.
            (
                "SELECT m.town, a.year, sum(a.revenue) AS r FROM a JOIN m \
                 ON m.uscc = a.uscc AND m.year = a.year WHERE a.year IN (2023, 2024) \
                 GROUP BY m.town, a.year ORDER BY 1, 2",
                vec![
                    "T1|2023|10",
                    "T1|2024|100",
                    "T2|2024|10000",
                    "T3|2024|100000",
                ],
                Some("m.year"),
            ),
            // And the other way, with a range and a negation.
            (
                "SELECT a.uscc, a.year FROM a JOIN m ON a.year = m.year AND a.uscc = m.uscc \
                 WHERE m.year BETWEEN 2023 AND 2030 AND NOT m.year = 2023 ORDER BY 1, 2",
                vec!["A|2024", "B|2024", "C|2024"],
                Some("a.year"),
            ),
            // A bound beyond INT's range is not repeated (it would not convert).
            (
                "SELECT a.uscc, a.year FROM a JOIN m ON a.year = m.year AND a.uscc = m.uscc \
                 WHERE m.year < 5000000000 AND m.year > -5000000000 ORDER BY 1, 2",
                vec!["A|2022", "A|2023", "A|2024", "B|2024", "C|2024"],
                None,
            ),
        ];
        for (sql, expected, crossed) in cases {
            let got = rows(&with, sql).await;
            assert_eq!(got, rows(&without, sql).await, "{sql}");
            let data: Vec<String> = got
                .iter()
                .filter(|l| l.starts_with("| ") && !l.contains("year"))
                .map(|l| {
                    l.trim_matches('|')
                        .split('|')
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
            assert_eq!(data, expected, "{sql}");
            let Some(crossed) = crossed else {
                continue;
            };
            // The other side is filtered before the join; without the rule it is not.
            let filtered = |plan: String| {
                plan.lines()
                    .any(|l| l.trim_start().starts_with("Filter:") && l.contains(crossed))
            };
            let plan = optimized(&with, sql).await;
            assert!(filtered(plan.clone()), "{sql}\n{plan}");
            assert!(!filtered(optimized(&without, sql).await), "{sql}");
        }
    }
}
