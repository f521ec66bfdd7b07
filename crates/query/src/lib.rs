//! The query layer: a DataFusion session over the warehouse as a committed run left
//! it, read-only SQL, and the output formats of `townstat sql`.
//!
//! Sessions only ever see pinned table versions (see `townstat-warehouse`), so a query
//! never mixes two runs, and `--run ID` reproduces exactly what a past run published.

pub mod bounded;
pub mod distinct;
pub mod error;
pub mod fill_null;
pub mod infer;
pub mod join_mode;
pub mod mart_tests;
pub mod marts;
pub mod output;
pub mod pgdate;
mod scratch_ipc;
pub mod session;
pub mod shared;
pub mod udf;
pub mod warm;
pub mod xlsx;

pub use error::{Error, Result};
pub use session::{Session, open_session, open_session_at, open_session_in};
