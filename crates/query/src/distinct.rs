//! How many distinct values a warm column holds, and a scan that tells the planner.
//!
//! DataFusion puts the smaller input of a hash join on its build side, and estimates
//! a join's output as `left rows × right rows / max(distinct keys of either side)`.
//! Without a distinct count it takes a column's row count instead, which is right for
//! a key and wrong for a foreign key: `patent ⋈ patent_applicant` on the application
//! number came out at `patent`'s 268 K rows rather than the 343 K it gives, so the
//! next join built its hash table on those 343 K rows instead of on `enterprise`'s
//! 300 K, and could not stream `patent_applicant` through both joins. A warm column's
//! distinct values are counted once, after it is kept ([`distinct_count`], in the
//! background), and a scan of warm columns reports them ([`Counted`]).

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::hash_utils::{HLL_RANDOM_STATE, create_hashes};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result as DfResult, Statistics};
use datafusion::datasource::source::{DataSource, OpenArgs};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_expr_common::sort_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::DisplayFormatType;
use datafusion::physical_plan::SortOrderPushdownResult;
use datafusion::physical_plan::execution_plan::SchedulingType;
use datafusion::physical_plan::filter_pushdown::FilterPushdownPropagation;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;

/// Below this many rows a column's distinct values are counted exactly.
const EXACT_ROWS: usize = 1 << 16;
/// Bits of a hash that pick a HyperLogLog register: 2¹⁴ registers, a standard error
/// of 1.04 / √2¹⁴ ≈ 0.8 %.
const P: u32 = 14;
const REGISTERS: usize = 1 << P;

/// The distinct non-null values of a column held in `chunks`: exact up to
/// [`EXACT_ROWS`] rows, a HyperLogLog estimate above. `None` for a type DataFusion
/// cannot hash.
pub fn distinct_count(chunks: &[ArrayRef]) -> Option<usize> {
    let rows: usize = chunks.iter().map(|c| c.len()).sum();
    let mut exact: Option<HashSet<u64>> = (rows <= EXACT_ROWS).then(HashSet::new);
    let mut registers = vec![0u8; REGISTERS];
    let mut hashes = Vec::new();
    for chunk in chunks {
        hashes.clear();
        hashes.resize(chunk.len(), 0);
        create_hashes([chunk], &HLL_RANDOM_STATE, &mut hashes).ok()?;
        for (i, &hash) in hashes.iter().enumerate() {
            if chunk.is_null(i) {
                continue;
            }
            match exact.as_mut() {
                Some(seen) => {
                    seen.insert(hash);
                }
                None => {
                    // The top P bits pick the register; it keeps the longest run of
                    // leading zeros seen in the rest (a sentinel bit bounds the run).
                    let register = (hash >> (64 - P)) as usize;
                    let rest = (hash << P) | (1 << (P - 1));
                    let run = rest.leading_zeros() as u8 + 1;
                    registers[register] = registers[register].max(run);
                }
            }
        }
    }
    if let Some(seen) = exact {
        return Some(seen.len());
    }
    Some(estimate(&registers))
}

/// The HyperLogLog estimate of Flajolet et al. (2007), with linear counting while
/// registers are still empty (small cardinalities). 64-bit hashes need no correction
/// for large ones.
fn estimate(registers: &[u8]) -> usize {
    let m = registers.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| (-f64::from(r)).exp2()).sum();
    let raw = alpha * m * m / sum;
    let empty = registers.iter().filter(|&&r| r == 0).count();
    let value = if raw <= 2.5 * m && empty > 0 {
        m * (m / empty as f64).ln()
    } else {
        raw
    };
    value.round() as usize
}

/// A data source whose whole-scan statistics carry each column's distinct count (an
/// estimate: `Inexact`); everything else is the inner source's. What the inner source
/// returns when it is changed (a projection swapped into it, a limit, a repartition)
/// is wrapped again, its counts following the columns.
#[derive(Debug)]
pub struct Counted {
    inner: Arc<dyn DataSource>,
    /// Per column of the inner source's output.
    distinct: Arc<[Option<usize>]>,
}

impl Counted {
    pub fn new(inner: Arc<dyn DataSource>, distinct: Vec<Option<usize>>) -> Counted {
        Counted {
            inner,
            distinct: distinct.into(),
        }
    }

    fn wrap(&self, inner: Arc<dyn DataSource>) -> Arc<dyn DataSource> {
        Arc::new(Counted {
            inner,
            distinct: self.distinct.clone(),
        })
    }
}

impl DataSource for Counted {
    fn open(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.inner.open(partition, context)
    }

    fn open_with_args(&self, args: OpenArgs) -> DfResult<SendableRecordBatchStream> {
        self.inner.open_with_args(args)
    }

    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }

    fn repartitioned(
        &self,
        target_partitions: usize,
        repartition_file_min_size: usize,
        output_ordering: Option<LexOrdering>,
    ) -> DfResult<Option<Arc<dyn DataSource>>> {
        Ok(self
            .inner
            .repartitioned(
                target_partitions,
                repartition_file_min_size,
                output_ordering,
            )?
            .map(|inner| self.wrap(inner)))
    }

    fn output_partitioning(&self) -> Partitioning {
        self.inner.output_partitioning()
    }

    fn eq_properties(&self) -> EquivalenceProperties {
        self.inner.eq_properties()
    }

    fn scheduling_type(&self) -> SchedulingType {
        self.inner.scheduling_type()
    }

    /// The whole scan's statistics get the counts; a partition's rows hold an unknown
    /// share of them.
    fn partition_statistics(&self, partition: Option<usize>) -> DfResult<Arc<Statistics>> {
        let stats = self.inner.partition_statistics(partition)?;
        if partition.is_some() || self.distinct.iter().all(Option::is_none) {
            return Ok(stats);
        }
        let mut stats = Arc::unwrap_or_clone(stats);
        for (column, distinct) in stats.column_statistics.iter_mut().zip(self.distinct.iter()) {
            if let Some(n) = distinct {
                column.distinct_count = Precision::Inexact(*n);
            }
        }
        Ok(Arc::new(stats))
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn DataSource>> {
        self.inner.with_fetch(limit).map(|inner| self.wrap(inner))
    }

    fn fetch(&self) -> Option<usize> {
        self.inner.fetch()
    }

    fn metrics(&self) -> ExecutionPlanMetricsSet {
        self.inner.metrics()
    }

    /// A projection of columns keeps their counts; a computed column has none.
    fn try_swapping_with_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> DfResult<Option<Arc<dyn DataSource>>> {
        let Some(inner) = self.inner.try_swapping_with_projection(projection)? else {
            return Ok(None);
        };
        let distinct: Vec<Option<usize>> = projection
            .iter()
            .map(|p| {
                p.expr
                    .downcast_ref::<Column>()
                    .and_then(|c| self.distinct.get(c.index()).copied().flatten())
            })
            .collect();
        Ok(Some(Arc::new(Counted::new(inner, distinct))))
    }

    fn try_pushdown_filters(
        &self,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn DataSource>>> {
        let pushed = self.inner.try_pushdown_filters(filters, config)?;
        Ok(FilterPushdownPropagation {
            filters: pushed.filters,
            updated_node: pushed.updated_node.map(|inner| self.wrap(inner)),
        })
    }

    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
    ) -> DfResult<SortOrderPushdownResult<Arc<dyn DataSource>>> {
        Ok(self
            .inner
            .try_pushdown_sort(order)?
            .map(|inner| self.wrap(inner)))
    }

    fn with_preserve_order(&self, preserve_order: bool) -> Option<Arc<dyn DataSource>> {
        self.inner
            .with_preserve_order(preserve_order)
            .map(|inner| self.wrap(inner))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn with_new_state(&self, state: Arc<dyn Any + Send + Sync>) -> Option<Arc<dyn DataSource>> {
        self.inner
            .with_new_state(state)
            .map(|inner| self.wrap(inner))
    }

    fn create_sibling_state(&self, config: &ConfigOptions) -> Option<Arc<dyn Any + Send + Sync>> {
        self.inner.create_sibling_state(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringViewArray};

    fn strings(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
        Arc::new(values.collect::<StringViewArray>())
    }

    #[test]
    fn a_small_column_is_counted_exactly_and_nulls_are_not_values() {
        let chunks = vec![
            strings((0..1000).map(|i| Some(format!("9114020{:011}", i % 700)))),
            strings((0..10).map(|i| (i % 2 == 0).then(|| format!("9114020{:011}", 800 + i)))),
        ];
        assert_eq!(distinct_count(&chunks), Some(705));
    }

    #[test]
    fn a_large_column_is_estimated_within_two_percent() {
        for distinct in [80_000i64, 267_700, 1_000_000] {
            let chunks: Vec<ArrayRef> = (0..distinct * 5 / 4)
                .collect::<Vec<_>>()
                .chunks(8192)
                .map(|c| {
                    Arc::new(c.iter().map(|v| v % distinct).collect::<Int64Array>()) as ArrayRef
                })
                .collect();
            let n = distinct_count(&chunks).unwrap() as f64;
            let error = (n - distinct as f64).abs() / distinct as f64;
            assert!(error < 0.02, "{distinct} distinct values estimated at {n}");
        }
    }
}
