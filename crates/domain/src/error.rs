//! Errors raised while loading the domain's data files (alias tables, registries).
//! Value-level problems are not errors: they are [`crate::Rejection`]s.

use std::path::PathBuf;

/// Problems with a configuration or reference file the domain rules load.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TOML data file failed to parse or named an unknown key.
    #[error("{path}: {message}")]
    Config {
        /// The file that was being read.
        path: PathBuf,
        /// What was wrong, including the key or line where the parser says so.
        message: String,
    },
    /// A reference CSV (town registry, roster) has a bad row.
    #[error("{path}: line {line}: {message}")]
    Reference {
        /// The file that was being read.
        path: PathBuf,
        /// The physical line, header being line 1.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result of the domain's loaders.
pub type Result<T, E = Error> = std::result::Result<T, E>;
