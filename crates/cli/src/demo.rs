//! `townstat demo`: the main job on the bundled sample data. Generates the sample raw
//! files when they are absent, runs the nightly pipeline and prints what was loaded
//! and rejected.
//!
//! The binary carries everything the demo needs, so it runs from any folder: the
//! generator writes the sample, and when the current folder has no
//! `pipelines/nightly.toml` (anywhere but the repository) the compiled-in pipeline —
//! `nightly.toml` pointed at the sample folder, `enums.toml`, `evaluation.toml`,
//! `targets.toml` — is written to `pipelines/` first (the mart SQL is compiled into
//! the binary anyway). Files an earlier version of the demo left there are completed,
//! never overwritten. Then the run checks the whole configuration before it writes a
//! table.

use std::path::{Path, PathBuf};

use arrow::array::Array;
use townstat_query::output::{self, Format};
use townstat_warehouse::Warehouse;

use crate::Failure;
use crate::commands::{exit_status, print_report, run};

pub(crate) const NIGHTLY: &str = include_str!("../../../pipelines/nightly.toml");
pub(crate) const ENUMS: &str = include_str!("../../../pipelines/enums.toml");
pub(crate) const EVALUATION: &str = include_str!("../../../pipelines/evaluation.toml");
pub(crate) const TARGETS: &str = include_str!("../../../pipelines/targets.toml");

/// Where the compiled-in nightly pipeline expects the raw files, relative to itself.
const BUNDLED_DATA: &str = "../sample-data/raw";

/// Scale and seed of the bundled sample.
pub const SAMPLE_SCALE: f64 = 0.1;
/// Seed of the bundled sample.
pub const SAMPLE_SEED: u64 = 1;

fn usage(message: String) -> Failure {
    Failure { code: 2, message }
}

/// The pipeline the demo runs: `pipelines/nightly.toml` under `folder`, written from
/// the compiled-in copies where absent (see the module doc).
fn demo_pipeline(folder: &Path, data: &Path) -> Result<PathBuf, Failure> {
    let dir = folder.join("pipelines");
    let nightly = dir.join("nightly.toml");
    let write = |name: &str, text: &str| -> Result<(), Failure> {
        let path = dir.join(name);
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|e| Failure::from(format!("demo: cannot write {}: {e}", path.display())))
    };
    if nightly.exists() {
        // The repository's, or one a user edited: used as it is. Only the demo's own
        // copy (identical to the compiled-in one) is completed.
        let text = std::fs::read_to_string(&nightly)
            .map_err(|e| usage(format!("{}: {e}", nightly.display())))?;
        if text == NIGHTLY {
            for (name, text) in [
                ("enums.toml", ENUMS),
                ("evaluation.toml", EVALUATION),
                ("targets.toml", TARGETS),
            ] {
                write(name, text)?;
            }
        }
        return Ok(nightly);
    }
    let shown = data.to_string_lossy();
    if shown.contains(['*', '?', '[', ']', '"', '\\']) {
        return Err(usage(format!(
            "demo: --data {shown:?} has a glob or quoting character; choose another folder"
        )));
    }
    // The pipeline's paths are relative to its own folder.
    let from_pipeline = if data.is_absolute() {
        shown.to_string()
    } else {
        format!("../{shown}")
    };
    let nightly_text = NIGHTLY.replace(BUNDLED_DATA, from_pipeline.trim_end_matches('/'));
    for (name, text) in [
        ("enums.toml", ENUMS),
        ("evaluation.toml", EVALUATION),
        ("targets.toml", TARGETS),
        ("nightly.toml", nightly_text.as_str()),
    ] {
        write(name, text)?;
    }
    Ok(nightly)
}

/// Where the demo works: the project folder, the raw files as the file system sees
/// them, the same as the pipeline (in `folder/pipelines/`) refers to them, and the
/// warehouse.
struct Layout {
    folder: PathBuf,
    data: PathBuf,
    data_from_folder: PathBuf,
    warehouse: String,
}

fn layout(
    warehouse: Option<&str>,
    dir: Option<&Path>,
    data: Option<&Path>,
) -> Result<Layout, Failure> {
    let in_repository =
        dir.is_none() && data.is_none() && Path::new("pipelines/nightly.toml").exists();
    if in_repository {
        return Ok(Layout {
            folder: PathBuf::from("."),
            data: PathBuf::from("sample-data/raw"),
            data_from_folder: PathBuf::from("sample-data/raw"),
            warehouse: warehouse.unwrap_or("./warehouse").to_string(),
        });
    }
    let folder = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("townstat-demo"));
    let (data, data_from_folder) = match data {
        Some(d) => {
            let abs = std::path::absolute(d)
                .map_err(|e| usage(format!("--data {}: {e}", d.display())))?;
            if !abs.join("towns.csv").is_file() {
                return Err(usage(format!(
                    "--data {}: no towns.csv there; the folder must look like the sample's \
                     (towns.csv and one subfolder per source kind)",
                    d.display()
                )));
            }
            (abs.clone(), abs)
        }
        None => (
            folder.join("sample-data/raw"),
            PathBuf::from("sample-data/raw"),
        ),
    };
    let warehouse = match warehouse {
        Some(w) => w.to_string(),
        None => folder.join("warehouse").display().to_string(),
    };
    Ok(Layout {
        folder,
        data,
        data_from_folder,
        warehouse,
    })
}

pub async fn demo(
    warehouse: Option<&str>,
    dir: Option<&Path>,
    data: Option<&Path>,
) -> Result<u8, Failure> {
    let Layout {
        folder,
        data,
        data_from_folder,
        warehouse,
    } = layout(warehouse, dir, data)?;
    if !data.join("towns.csv").exists() {
        eprintln!("generating sample data in {} ...", data.display());
        townstat_generate::generate(
            &data,
            &townstat_generate::Options {
                scale: SAMPLE_SCALE,
                seed: SAMPLE_SEED,
            },
        )?;
    }
    let pipeline = demo_pipeline(&folder, &data_from_folder)?;
    if folder != Path::new(".") {
        eprintln!(
            "demo project in {}: pipelines/, the raw files, the warehouse",
            folder.display()
        );
    }
    let warehouse = warehouse.as_str();
    let report = run(warehouse, &pipeline, None, false, None).await?;
    let mut out = std::io::stdout();
    print_report(&report, &mut out)?;
    let wh = Warehouse::open(warehouse)?;
    let session = townstat_query::open_session(&wh, None).await?;
    let year = latest_reported_year(&session).await?;
    println!(
        "\n专业镇 {year} (the latest year with annual returns; run {}):",
        report.run_id
    );
    let towns = session.query(&town_table_sql(year)).await?;
    output::write(&towns, Format::Table, &mut out)?;
    // On object stores there are no symbolic links: `exports/LATEST` names the folder.
    let exports = match wh.local_root() {
        Some(_) => format!("{}/export/", warehouse.trim_end_matches('/')),
        None => format!("{}exports/{}/", wh.root(), report.run_id),
    };
    let flag = if warehouse == "./warehouse" {
        String::new()
    } else {
        format!(" --warehouse {warehouse}")
    };
    println!(
        "\nQuery the warehouse: townstat{flag} sql \"SELECT * FROM town_year WHERE year = {year}\"; \
         exports for BI tools: {exports}; the yearly report (Excel and a page to open in a \
         browser): {exports}report/"
    );
    Ok(exit_status(&report))
}

/// The latest year that has annual returns: the run year's returns arrive later, so
/// the town table shows the last year with revenue figures.
async fn latest_reported_year(session: &townstat_query::Session) -> Result<i64, Failure> {
    let b = session
        .query("SELECT CAST(COALESCE(max(year), 0) AS BIGINT) FROM enterprise_annual")
        .await?;
    let year = b
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    Ok(year)
}

/// The demo's town table: one row per town for a year, in evaluation order.
pub fn town_table_sql(year: i64) -> String {
    format!(
        "SELECT t.name AS \"专业镇\", ty.scale_tier AS \"规模档次\", \
                CAST(ty.revenue / 100000000 AS DECIMAL(20, 2)) AS \"营业收入(亿元)\", \
                ty.entities_end AS \"市场主体\", \
                CAST(round(ty.entities_growth * 100, 1) AS VARCHAR) AS \"增长(%)\", \
                CAST(round(ty.insured_avg, 0) AS BIGINT) AS \"参保人数\", \
                ty.invention_granted AS \"发明授权\", \
                CAST(ty.financing_total / 100000000 AS DECIMAL(20, 2)) AS \"融资(亿元)\", \
                e.rank AS \"评估排名\" \
         FROM town_year ty JOIN town t ON t.town_id = ty.town_id \
         LEFT JOIN town_evaluation e ON e.town_id = ty.town_id AND e.year = ty.year \
         WHERE ty.year = {year} \
         ORDER BY e.rank NULLS LAST, ty.revenue DESC, t.town_id"
    )
}
