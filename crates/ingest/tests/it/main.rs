//! Integration tests of ingestion: one binary (see the workspace README).

mod corpus;
mod fuzz;
mod hostile;
