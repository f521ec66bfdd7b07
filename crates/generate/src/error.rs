//! The one error type of the generator: I/O on the output folder, the XLSX writer,
//! text that GBK cannot encode, and options that make no sense.

use std::path::PathBuf;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The XLSX writer failed.
    #[error("{path}: {source}")]
    Xlsx {
        /// The workbook.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rust_xlsxwriter::XlsxError,
    },
    /// A GBK file was asked to hold a character GBK does not have.
    #[error("{path}: text {text:?} cannot be encoded as GBK")]
    Unencodable {
        /// The file.
        path: PathBuf,
        /// The offending line.
        text: String,
    },
    /// The scale is not a positive finite number.
    #[error("scale must be a positive number, got {0}")]
    Scale(f64),
}

/// The generator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with its path.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
