//! Ingestion: raw agency exports (CSV in UTF-8 or GBK, XLSX, NDJSON) in, canonical
//! Arrow batches out, with every row accounted for.
//!
//! For each source file of a pipeline this crate finds the header, maps columns by
//! alias, parses every cell with the domain rules, applies the cross-field rules of
//! `sources.md`, drops exact duplicates, quarantines bad rows with all their reasons,
//! and reports `rows read = loaded + duplicates + quarantined`. It never writes to the
//! warehouse: that is `townstat-warehouse`'s job, so a failed ingest commits nothing.
//! Valid rows wait for the commit as Parquet files in a staging folder the caller
//! names ([`stage`]), not in memory.

pub mod arrow_out;
pub mod cell;
pub mod error;
pub mod header;
pub mod ingest;
pub mod pipeline;
pub mod read;
pub mod registry;
pub mod stage;
pub mod validate;

pub use error::{Error, Result};
pub use ingest::{FileReport, FileStatus, IngestOptions, IngestOutput, TableRows, ingest};
pub use pipeline::Pipeline;
pub use registry::Registry;
