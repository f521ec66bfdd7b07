//! A hash join whose build side is small beside its probe side builds one table that
//! every partition probes, rather than splitting both sides by key.
//!
//! DataFusion splits both inputs of a hash join by the hash of the key (`Partitioned`)
//! unless the build side is below fixed thresholds (1 MB, 128 K rows): then it builds
//! one table for all partitions (`CollectLeft`). Splitting costs a repartition of both
//! inputs, which is most of the work when the probe side is many times the build
//! side: one town's memberships (166 K rows at scale 100) joined to every annual
//! return (1.07 M) spent more time repartitioning the returns than probing them. One
//! table costs a build on one thread while the other partitions wait for it. It is
//! chosen when the probe side has at least `partitions + 1` times the build side's
//! rows (3× on two cores) and the build side at most [`MAX_BUILD_ROWS`]. Measured at
//! scale 100 on two cores, twenty warm statements each (bench/RESULTS.md): the town's
//! revenue by year (166 K against 1.07 M rows, estimated 280 K) took a median 25.6–28.2
//! ms against 27.5–38.5; a year's returns (156 K) against the registry (300 K), about
//! 2×, got slower as one table (43–48 ms against 36–45 in the same minutes), so it
//! stays split.
//!
//! The rule runs right after DataFusion's join selection (which puts the smaller
//! input on the build side), before distribution is enforced, and changes only inner
//! joins whose inputs both have a row count in their statistics.
//!
//! Only in sessions that answer queries ([`crate::session::context`]: the shell, the
//! server, reports), whose tables' row counts are known. A run's marts keep
//! DataFusion's rule, which looks at the build side alone, with thresholds in
//! proportion to the pool ([`crate::session::collect_threshold`]): their build sides
//! are intermediate results whose estimates can be far off, and a hash table cannot
//! spill. With this rule, a scale-100 run ran out of its 1 GiB pool in
//! `int_group_year`.

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// The most rows a build side gets to be built on one thread (its estimate).
pub const MAX_BUILD_ROWS: usize = 1 << 19;

/// See the module's documentation.
#[derive(Debug, Default)]
pub struct CollectSmallBuildSides;

/// `DataFusion`'s physical optimizer rules with [`CollectSmallBuildSides`] right after
/// its join selection.
pub fn with_rule(
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut out = Vec::with_capacity(rules.len() + 1);
    for rule in rules {
        let after = rule.name() == "join_selection";
        out.push(rule);
        if after {
            out.push(
                Arc::new(CollectSmallBuildSides) as Arc<dyn PhysicalOptimizerRule + Send + Sync>
            );
        }
    }
    out
}

fn rows(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    // A context per question: its cache is keyed on node addresses, which a
    // rewrite of the plan may reuse.
    StatisticsContext::new()
        .compute(plan.as_ref(), &StatisticsArgs::new())
        .ok()
        .and_then(|s| s.num_rows.get_value().copied())
}

impl PhysicalOptimizerRule for CollectSmallBuildSides {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let partitions = config.execution.target_partitions;
        if partitions < 2 {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if *join.partition_mode() != PartitionMode::Partitioned
                || *join.join_type() != JoinType::Inner
                || join.null_aware
            {
                return Ok(Transformed::no(node));
            }
            let (Some(build), Some(probe)) = (rows(join.left()), rows(join.right())) else {
                return Ok(Transformed::no(node));
            };
            if build > MAX_BUILD_ROWS || probe < build.saturating_mul(partitions + 1) {
                return Ok(Transformed::no(node));
            }
            tracing::debug!(
                build,
                probe,
                "a hash join builds one table for every partition"
            );
            let collected = join
                .builder()
                .with_partition_mode(PartitionMode::CollectLeft)
                .build()?;
            Ok(Transformed::yes(
                Arc::new(collected) as Arc<dyn ExecutionPlan>
            ))
        })
        .data()
    }

    fn name(&self) -> &str {
        "collect_small_build_sides"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    fn table(ctx: &SessionContext, name: &str, rows: i64) {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batches = (0..rows)
            .step_by(8192)
            .map(|from| {
                let to = (from + 8192).min(rows);
                RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(Int64Array::from_iter_values(from..to))],
                )
                .expect("batch")
            })
            .collect::<Vec<_>>();
        let half = batches.len() / 2;
        let parts = vec![batches[..half].to_vec(), batches[half..].to_vec()];
        let t = MemTable::try_new(schema, parts).expect("table");
        ctx.register_table(name, Arc::new(t)).expect("register");
    }

    async fn modes(ctx: &SessionContext, build: &str, probe: &str) -> Vec<String> {
        let sql = format!("EXPLAIN SELECT count(*) FROM {build} s JOIN {probe} b ON b.k = s.k");
        let batches = ctx
            .sql(&sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("explain");
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string();
        text.match_indices("HashJoinExec: mode=")
            .map(|(i, _)| text[i + 19..].split(',').next().unwrap_or("").to_string())
            .collect()
    }

    #[tokio::test]
    async fn small_build_sides_are_built_once_by_probe_ratio_and_in_a_run_by_pool_share() {
        let partitions = 2;
        let query = crate::session::context();
        let run = crate::session::context_with_limit(256 << 20);
        for ctx in [&query, &run] {
            ctx.state_ref()
                .write()
                .config_mut()
                .options_mut()
                .execution
                .target_partitions = partitions;
            // Above DataFusion's own thresholds (128 K rows, 1 MB): split by default.
            table(ctx, "small", 150_000);
            table(ctx, "thrice", 450_000);
            table(ctx, "twice", 300_000);
        }
        assert_eq!(modes(&query, "small", "thrice").await, ["CollectLeft"]);
        assert_eq!(modes(&query, "small", "twice").await, ["Partitioned"]);
        // A run's session goes by the build side alone: 1.2 MB is under a sixteenth
        // of its 256 MiB pool, whatever the probe side; 2.2 M rows (17.6 MB) are not.
        assert_eq!(modes(&run, "small", "thrice").await, ["CollectLeft"]);
        assert_eq!(modes(&run, "small", "twice").await, ["CollectLeft"]);
        table(&run, "large", 2_200_000);
        table(&run, "larger", 2_300_000);
        assert_eq!(modes(&run, "large", "larger").await, ["Partitioned"]);
    }
}
