//! The nightly run: ingest every source file of a pipeline, commit the warehouse
//! tables, record what happened, and make the run visible with one final append to
//! the `run` table (the commit point; see `townstat-warehouse`).
//!
//! What this crate must not do: parse cells (that is `townstat-ingest`) or talk to
//! Delta directly (that is `townstat-warehouse`). It decides the order of commits.

pub mod check;
pub mod docs;
pub mod error;
pub mod explain;
pub mod export;
pub mod fault;
pub mod history;
pub mod lock;
pub mod maintain;
pub mod recover;
pub mod reference;
pub mod run;

pub use check::{Checked, Problem, check_file, precheck};
pub use error::{Error, Result};
pub use run::{FailedTests, RunOptions, RunReport, RunStatus, run, run_checked};
