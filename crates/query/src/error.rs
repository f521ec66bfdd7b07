//! Errors of the query layer.

/// What can go wrong opening a session or running a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The warehouse could not be read.
    #[error(transparent)]
    Warehouse(#[from] townstat_warehouse::Error),
    /// The SQL failed to plan or run (including statements refused as writes).
    #[error("{0}")]
    Sql(#[from] datafusion::error::DataFusionError),
    /// Writing the output failed.
    #[error("output: {0}")]
    Output(String),
    /// No committed run exists yet, or the requested one does not.
    #[error("{0}")]
    NoRun(String),
}

/// Result of the query layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
