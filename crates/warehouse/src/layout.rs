//! How table files are laid out, so that the filters people write skip what they
//! exclude.
//!
//! DataFusion skips a Parquet row group whose min/max statistics exclude a filter,
//! and, with the page index, the pages inside a row group that do. Both only help
//! when the rows a filter keeps sit next to each other and the units are small:
//!
//! - **Rows in key order.** A mart is written in the order its SQL's `ORDER BY` gives
//!   (town, year, ...): the write runs as one partition, so batches are not
//!   interleaved on their way to the file. A run writes a source table's rows in
//!   the order they arrive (sorting them there cost 3.6 s at scale 100 and sped up no
//!   query); `townstat maintain` Z-orders it by its first key column (the USCC for
//!   most), which a lookup of one enterprise prunes by.
//! - **Row groups of [`ROW_GROUP_ROWS`] rows** instead of Parquet's 1,048,576, with
//!   page-level statistics (the column and offset indexes): a town's 166 K rows in a
//!   1.4 M-row `town_membership` are a few row groups, not all of them, and two
//!   cores can scan a file's row groups in parallel.
//!
//! A sort that does not fit [`SORT_MEMORY`] spills to the system temporary folder.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use deltalake::delta_datafusion::DeltaSessionContext;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

/// The commit-info key a Z-order by `maintain` records its column under, so that the
/// next maintenance leaves a table nothing changed since.
pub const ZORDER_COMMIT_KEY: &str = "townstat.zorderBy";

/// Rows per Parquet row group in every file townstat writes.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Memory a layout sort (`maintain`'s Z-order) may hold before it spills to disk.
pub const SORT_MEMORY: usize = 512 << 20;

/// The Parquet writer settings of every table write: Snappy (what delta-rs writes by
/// default, read by every Parquet reader), statistics and page index per page, row
/// groups of [`ROW_GROUP_ROWS`].
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(format!("townstat {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// The DataFusion session writes and layout sorts run in: delta-rs's settings, one
/// partition (batches reach the file in the order the input gives them) and a memory
/// pool of [`SORT_MEMORY`] that makes a sort spill instead of growing.
pub fn session() -> Arc<SessionState> {
    let overrides = HashMap::from([(
        "datafusion.execution.target_partitions".to_string(),
        "1".to_string(),
    )]);
    let base = DeltaSessionContext::new_with_session_overrides(&overrides)
        .map(|c| c.state())
        .unwrap_or_else(|_| DeltaSessionContext::new().state());
    let state = match RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(SORT_MEMORY)))
        .build_arc()
    {
        Ok(runtime) => SessionStateBuilder::new_from_existing(base)
            .with_runtime_env(runtime)
            .build(),
        Err(_) => base,
    };
    Arc::new(state)
}
