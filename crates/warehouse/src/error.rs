//! Errors of the warehouse storage layer.

/// What can go wrong reading or committing warehouse tables.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The warehouse location is not a path or URL we can use.
    #[error("warehouse location {location:?}: {message}")]
    Location {
        /// The location as given.
        location: String,
        /// Why it cannot be used.
        message: String,
    },
    /// A Delta operation on a table failed.
    #[error("table {table}: {source}")]
    Delta {
        /// The table.
        table: String,
        /// The delta-rs error.
        #[source]
        source: deltalake::DeltaTableError,
    },
    /// A query over warehouse tables failed.
    #[error("table {table}: {source}")]
    Query {
        /// The table.
        table: String,
        /// The DataFusion error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// The run record is unreadable (a bug or a hand-edited table).
    #[error("run record: {0}")]
    RunRecord(String),
}

/// Result of warehouse operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
