//! Errors of the query layer.

/// What can go wrong opening a session or running a query. The large engine errors
/// are boxed so that `Result` stays small on the happy path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The warehouse could not be read.
    #[error(transparent)]
    Warehouse(Box<townstat_warehouse::Error>),
    /// The SQL failed to plan or run (including statements refused as writes).
    #[error("{0}")]
    Sql(Box<datafusion::error::DataFusionError>),
    /// Writing the output failed, or a mart file is bad.
    #[error("output: {0}")]
    Output(String),
    /// The statement ran past the statement timeout and was cancelled.
    #[error("{0}")]
    Timeout(String),
    /// No committed run exists yet, or the requested one does not.
    #[error("{0}")]
    NoRun(String),
}

impl From<townstat_warehouse::Error> for Error {
    fn from(e: townstat_warehouse::Error) -> Self {
        Error::Warehouse(Box::new(e))
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Error::Sql(Box::new(e))
    }
}

/// Result of the query layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
