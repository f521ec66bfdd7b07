//! Errors of ingestion. Problems with one file are not errors of the run: they become
//! a [`FileRejection`] and the run goes on. [`Error`] is for what stops a run before
//! anything is read: a bad pipeline file, an unreadable alias table.

use std::path::PathBuf;

/// What stops an ingest run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file is missing, not TOML, or has an unknown key.
    #[error("{path}: {message}")]
    Pipeline {
        /// The pipeline file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A data file the pipeline names (alias tables, town registry) is bad.
    #[error(transparent)]
    Domain(#[from] townstat_domain::Error),
    /// Building Arrow arrays failed; a bug, since values were validated.
    #[error("internal error building {table}: {source}")]
    Arrow {
        /// The table being built.
        table: String,
        /// The Arrow error.
        source: arrow::error::ArrowError,
    },
    /// Staging the valid rows on disk failed (a full disk, an unwritable folder): the
    /// run stops, since rows would be lost otherwise.
    #[error("staging rows in {path}: {message}")]
    Stage {
        /// The staged file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Result of ingestion.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a whole file could not be read. The message names the file and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileRejection(pub String);
