//! Errors that stop the server from starting or serving.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration the server refuses (unsafe, inconsistent or unreadable).
    #[error("{0}")]
    Config(String),
    /// TLS was configured but cannot be used.
    #[error("TLS is configured but cannot be loaded: {0}")]
    Tls(String),
    /// The warehouse cannot be read.
    #[error(transparent)]
    Query(#[from] Box<townstat_query::Error>),
    /// DataFusion refused to set up the catalog.
    #[error("catalog: {0}")]
    Catalog(String),
    /// The socket.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<townstat_query::Error> for Error {
    fn from(e: townstat_query::Error) -> Self {
        Error::Query(Box::new(e))
    }
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
