//! Integration tests of the nightly run: one binary for the pipeline crate.

mod slt;
