//! End-to-end tests of the `townstat` binary: one test binary for the CLI crate.
//! They run the real executable on real files in temporary warehouses.

mod corpus_run;
mod fault;
mod gate;
mod generated_run;
mod history_run;
mod hostile;
mod serve;
mod support;
