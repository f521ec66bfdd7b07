//! `townstat demo`: the main job on the bundled sample data. Generates the sample raw
//! files when they are absent, runs the nightly pipeline (the repository's
//! `pipelines/nightly.toml`, or the embedded copy when run elsewhere) and prints what
//! was loaded and rejected.

use std::path::Path;

use townstat_query::output::{self, Format};
use townstat_warehouse::Warehouse;

use crate::Failure;
use crate::commands::{exit_status, print_report, run};

const NIGHTLY: &str = include_str!("../../../pipelines/nightly.toml");
const ENUMS: &str = include_str!("../../../pipelines/enums.toml");

/// Scale and seed of the bundled sample.
pub const SAMPLE_SCALE: f64 = 0.1;
/// Seed of the bundled sample.
pub const SAMPLE_SEED: u64 = 1;

pub async fn demo(warehouse: &str, data: &Path) -> Result<u8, Failure> {
    if !data.join("towns.csv").exists() {
        eprintln!("generating sample data in {} ...", data.display());
        townstat_generate::generate(
            data,
            &townstat_generate::Options {
                scale: SAMPLE_SCALE,
                seed: SAMPLE_SEED,
            },
        )?;
    }
    let pipeline = Path::new("pipelines/nightly.toml");
    if !pipeline.exists() {
        std::fs::create_dir_all("pipelines")?;
        std::fs::write(pipeline, NIGHTLY)?;
        std::fs::write("pipelines/enums.toml", ENUMS)?;
    }
    let report = run(warehouse, pipeline, None, false).await?;
    let mut out = std::io::stdout();
    print_report(&report, &mut out)?;
    let wh = Warehouse::open(warehouse)?;
    let session = townstat_query::open_session(&wh, None).await?;
    let counts = session
        .query(
            "SELECT 'enterprise' AS \"table\", count(*) AS \"rows\" FROM enterprise \
             UNION ALL SELECT 'enterprise_annual', count(*) FROM enterprise_annual \
             UNION ALL SELECT 'designation', count(*) FROM designation \
             UNION ALL SELECT 'employment', count(*) FROM employment \
             UNION ALL SELECT 'patent', count(*) FROM patent \
             UNION ALL SELECT 'patent_applicant', count(*) FROM patent_applicant \
             UNION ALL SELECT 'financing', count(*) FROM financing \
             UNION ALL SELECT 'quarantine', count(*) FROM quarantine \
             UNION ALL SELECT 'ingest_warning', count(*) FROM ingest_warning",
        )
        .await?;
    println!("\nwarehouse tables after run {}:", report.run_id);
    output::write(&counts, Format::Table, &mut out)?;
    Ok(exit_status(&report))
}
