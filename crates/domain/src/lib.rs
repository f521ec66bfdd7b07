//! Pure domain rules of townstat: the facts about Datong's codes, units, dates and
//! towns that every other crate relies on.
//!
//! Nothing here touches files, engines or the network. Each rule takes one raw value
//! and returns either its canonical form or a [`Rejection`] carrying one of the stable
//! reason codes of `sources.md`. Keeping the rules pure lets them be tested exhaustively
//! (unit and property tests) and reused by ingestion, the generator and SQL UDFs alike.

pub mod boolean;
pub mod date;
pub mod division;
pub mod enums;
pub mod error;
pub mod hash;
pub mod industry;
pub mod number;
pub mod patent;
pub mod reason;
mod reference_csv;
pub mod schema;
pub mod size_rule;
pub mod text;
pub mod town;
pub mod town_history;
pub mod uscc;

pub use error::{Error, Result};
pub use reason::{Reason, Rejection, Warning};
