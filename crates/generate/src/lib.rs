//! Deterministic synthetic raw source files for townstat: the town registry, the nine
//! record kinds (the registry, annual returns, designations, employment, patents,
//! financing, the quality ledger, major projects and investment deals) in every format
//! and encoding ingestion accepts (CSV in UTF-8, UTF-8 with BOM and GBK,
//! comma/tab/semicolon, multi-line quoted fields; XLSX with title rows and typed cells;
//! NDJSON), with problems injected at a known rate and listed in
//! `_manifest/injected.csv` so that tests can check ingestion finds exactly them.
//!
//! The same scale and seed give byte-identical files. Rows are written as they are
//! generated; only small per-enterprise state is held in memory.

mod emit;
mod error;
mod kinds;
mod names;
mod sink;
mod towns;
mod value;
mod world;

use std::path::{Path, PathBuf};

use rand::SeedableRng;

pub use error::{Error, Result};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// 1.0 ≈ 3,000 enterprises; 0.1 ≈ 300; 100 ≈ 300,000.
    pub scale: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Each file written (relative to the output folder) with its data-row count.
    pub files: Vec<(PathBuf, u64)>,
    /// Lines of the manifest of injected problems.
    pub injected: u64,
}

/// Writes the whole set under `out`.
pub fn generate(out: &Path, opts: &Options) -> Result<Summary> {
    if !(opts.scale.is_finite() && opts.scale > 0.0) {
        return Err(Error::Scale(opts.scale));
    }
    std::fs::create_dir_all(out).map_err(error::io(out))?;
    let world = world::World::build(opts.scale, opts.seed);
    let mut files = vec![(PathBuf::from("towns.csv"), towns::write(out)?)];
    let mut manifest = emit::Manifest::create(out)?;
    let mut all: Vec<Box<dyn emit::Kind>> = vec![
        Box::new(kinds::enterprise::Enterprise::default()),
        Box::new(kinds::annual::Annual),
        Box::new(kinds::designation::Designation),
        Box::new(kinds::employment::Employment),
        Box::new(kinds::patent::Patent::default()),
        Box::new(kinds::financing::Financing::default()),
        // Kinds added later come last: each takes the next stream, and the files of
        // the kinds before it stay as they were.
        Box::new(kinds::quality_mark::QualityMark),
        Box::new(kinds::project::Project),
        Box::new(kinds::investment_deal::InvestmentDeal),
    ];
    for (stream, kind) in all.iter_mut().enumerate() {
        // Each kind draws from its own stream, so a change in one kind leaves the
        // others' files as they were.
        let mut rng = value::R::seed_from_u64(opts.seed);
        rng.set_stream(stream as u64 + 1);
        emit::run(
            out,
            &world,
            kind.as_mut(),
            &mut rng,
            &mut manifest,
            &mut files,
        )?;
    }
    let injected = manifest.finish()?;
    files.push((PathBuf::from("_manifest/injected.csv"), injected));
    Ok(Summary { files, injected })
}
