//! `townstat serve`: the warehouse over the PostgreSQL wire protocol, for psql,
//! DBeaver, Superset, Metabase, Power BI and every PostgreSQL driver.
//!
//! Built on datafusion-postgres and pgwire, and safe by default where they are not:
//!
//! - **who**: SCRAM-SHA-256 against users from a file or the environment (md5 only
//!   when asked for); without users, loopback only (`config`, `auth`);
//! - **TLS**: a configured certificate that cannot be loaded stops the server; with
//!   TLS on, other hosts must use it (`server`);
//! - **what**: only queries and session chatter reach the engine; DDL, DML, `COPY`,
//!   files, URLs and engine options are refused with SQLSTATE 42501 (`policy`);
//! - **how much**: statement text bounded in size and nesting before parsing (54001,
//!   `complexity`), a memory pool per statement with spilling, a ceiling on the whole
//!   server's resident memory that cancels the largest statement (53200, `ceiling`), string functions that
//!   refuse huge outputs (`townstat_query::bounded`), a deadline covering planning,
//!   execution and streaming, panics answered as errors, a session cap answered with
//!   53300, a separate pool and a timeout for unauthenticated connections, idle
//!   sessions closed, cancel requests and hang-ups honoured (`service`, `server`);
//! - **guessing**: stable mock SCRAM salts for unknown users, a growing delay after
//!   each failed login, every failure logged (`auth`);
//! - **fresh**: each statement reads the last committed run (`service`);
//! - **labelled**: the Chinese labels are table and column comments (`catalog`).

mod auth;
mod cache;
pub mod catalog;
pub mod ceiling;
mod compat;
pub mod complexity;
pub mod config;
mod error;
#[cfg(test)]
mod fuzz;
pub mod policy;
mod server;
mod service;

pub use config::{AuthMethod, ServeConfig, TlsFiles, Users};
pub use error::{Error, Result};
pub use server::{OnListening, serve};
