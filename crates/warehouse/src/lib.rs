//! The warehouse: Delta Lake tables of Parquet files under one root (a local folder
//! or an object-store URL), and the run record that makes a nightly run atomic.
//!
//! Every table is its own Delta table at `<root>/tables/<name>`. A run commits its
//! tables one by one, then appends one row to the `run` table naming the version of
//! every table it left: that append is the run's commit point. Readers never read
//! "the latest version" of a table; they read the versions the last committed run
//! recorded, so a run that dies half-way is invisible to them, and any past run's
//! figures can be read again exactly.

pub mod error;
pub mod layout;
pub mod store;

pub use error::{Error, Result};
pub use store::{
    BatchIter, CommittedRun, Restored, RowStream, RunSelector, Warehouse, register_object_stores,
    text_column,
};
