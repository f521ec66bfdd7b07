//! Errors of a run. Any of them means nothing of the run became visible.

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Ingestion could not start (bad pipeline, alias table, registry file).
    #[error(transparent)]
    Ingest(#[from] townstat_ingest::Error),
    /// A reference file (town registry) is bad.
    #[error(transparent)]
    Domain(#[from] townstat_domain::Error),
    /// Reading or committing a table failed.
    #[error(transparent)]
    Warehouse(Box<townstat_warehouse::Error>),
    /// A query over the committed state failed.
    #[error(transparent)]
    Query(#[from] townstat_query::Error),
    /// The configuration is bad (a referenced file is missing or invalid, a mart step
    /// does not plan): found before anything was written (exit status 2).
    #[error("{0}")]
    Config(String),
    /// Fault injection (`TOWNSTAT_FAIL_AT`) failed the run at a commit point.
    #[error("failed on purpose at {0} (TOWNSTAT_FAIL_AT)")]
    Injected(String),
    /// Another run holds the warehouse lock.
    #[error("{0}")]
    Locked(String),
    /// Error-level tests of the marts failed: the run published nothing, and its
    /// record (status `failed`) names the test tables that keep the failing rows.
    #[error("{0}")]
    TestsFailed(Box<crate::run::FailedTests>),
    /// Building a batch failed (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<townstat_warehouse::Error> for Error {
    fn from(e: townstat_warehouse::Error) -> Self {
        Error::Warehouse(Box::new(e))
    }
}

/// Result of a run.
pub type Result<T, E = Error> = std::result::Result<T, E>;
