//! `townstat init DIR`: a starter project for a real deployment, written from what the
//! binary carries: the pipeline file (one `[[source]]` per agency, reading
//! `raw/<kind>/`), the alias tables, the evaluation weights and grades, the plan's
//! targets, the town registry with the ten towns of the plan (`raw/towns.csv`, whose
//! levels, years and tier targets are sample values to be replaced by the office's),
//! empty `raw/<kind>/` folders for the agencies' files, and a systemd service and
//! timer for the nightly run. Nothing is overwritten: the folder must be new or empty.

use std::path::Path;

use crate::Failure;
use crate::demo::{ENUMS, EVALUATION, NIGHTLY, TARGETS};

const TOWNS: &str = include_str!("../../../sample-data/raw/towns.csv");
const SERVICE: &str = include_str!("../../../deploy/townstat-nightly.service");
const TIMER: &str = include_str!("../../../deploy/townstat-nightly.timer");
const MAINTAIN: &str = include_str!("../../../deploy/townstat-maintain.service");
const MAINTAIN_TIMER: &str = include_str!("../../../deploy/townstat-maintain.timer");
const SERVE: &str = include_str!("../../../deploy/townstat-serve.service");
const SERVE_ENV: &str = include_str!("../../../deploy/serve.env.example");

fn usage(message: String) -> Failure {
    Failure { code: 2, message }
}

/// Writes the starter project into `dir`; returns the pipeline file's path.
pub fn init(dir: &Path) -> Result<std::path::PathBuf, Failure> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| usage(format!("{}: {e}", dir.display())))?
            .next()
            .is_none();
        if !empty {
            return Err(usage(format!(
                "{} is not empty: init writes a new project and overwrites nothing",
                dir.display()
            )));
        }
    }
    let root = std::path::absolute(dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    let pipeline = NIGHTLY.replace("../sample-data/raw", "../raw");
    let shown = root.display().to_string();
    let service = SERVICE.replace("/srv/townstat", &shown);
    let maintain = MAINTAIN.replace("/srv/townstat", &shown);
    let serve = SERVE.replace("/srv/townstat", &shown);
    let serve_env = SERVE_ENV.replace("/srv/townstat", &shown);
    let files: [(&str, &str); 12] = [
        ("pipelines/nightly.toml", &pipeline),
        ("pipelines/enums.toml", ENUMS),
        ("pipelines/evaluation.toml", EVALUATION),
        ("pipelines/targets.toml", TARGETS),
        ("raw/towns.csv", TOWNS),
        ("deploy/townstat-nightly.service", &service),
        ("deploy/townstat-nightly.timer", TIMER),
        ("deploy/townstat-maintain.service", &maintain),
        ("deploy/townstat-maintain.timer", MAINTAIN_TIMER),
        ("deploy/townstat-serve.service", &serve),
        ("deploy/serve.env.example", &serve_env),
        ("README.txt", &readme(&shown)),
    ];
    let write = |rel: &str, text: &str| -> Result<(), Failure> {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::from(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text).map_err(|e| Failure::from(format!("{}: {e}", path.display())))
    };
    for (rel, text) in files {
        write(rel, text)?;
    }
    // One folder per source kind, the order a run ingests them.
    for kind in townstat_domain::schema::source_kind_names() {
        let folder = root.join("raw").join(kind);
        std::fs::create_dir_all(&folder)
            .map_err(|e| Failure::from(format!("{}: {e}", folder.display())))?;
    }
    Ok(root.join("pipelines/nightly.toml"))
}

fn readme(root: &str) -> String {
    format!(
        "townstat project\n\
         ================\n\
         \n\
         pipelines/nightly.toml   the sources: one [[source]] per agency, reading raw/<kind>/\n\
         pipelines/enums.toml     alias tables of coded values (登记状态, 认定级别 …)\n\
         pipelines/evaluation.toml  evaluation weights, grades, cluster benchmarks\n\
         pipelines/targets.toml   the plan's targets\n\
         raw/towns.csv            the town registry: the ten towns of the plan; levels,\n\
         \x20                        designation years and tier targets are SAMPLE values —\n\
         \x20                        replace them with the office's\n\
         raw/<kind>/              put each agency's exports here (CSV, XLSX, NDJSON)\n\
         deploy/                  systemd units: the nightly run, the weekly maintenance,\n\
         \x20                        the PostgreSQL-protocol server (serve.env.example)\n\
         \n\
         Next:\n\
         \x20 townstat check {root}/pipelines/nightly.toml\n\
         \x20 townstat --warehouse {root}/warehouse run {root}/pipelines/nightly.toml\n\
         \x20 townstat --warehouse {root}/warehouse report --out {root}/report\n"
    )
}
