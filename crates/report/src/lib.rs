//! The yearly report of the specialized-towns programme (专业镇年度评估与进展报告): an
//! Excel workbook and a self-contained HTML page with charts, read from the committed
//! marts of one run (`data`), modelled once (`model`) and rendered twice (`xlsx`,
//! `html`). Files are written under temporary names in the output folder and renamed
//! into place, so a reader finds the old report or the new one, never a part.

pub mod data;
pub mod glossary;
pub mod html;
pub mod model;
pub mod xlsx;

use std::path::{Path, PathBuf};

use townstat_query::Session;

pub use model::Report;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a year without data, an output folder that is a file, a run without
    /// the report's marts.
    #[error("{0}")]
    Usage(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Which files to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    /// The workbook.
    pub xlsx: bool,
    /// The page.
    pub html: bool,
}

impl std::str::FromStr for Formats {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "xlsx" => Ok(Formats {
                xlsx: true,
                html: false,
            }),
            "html" => Ok(Formats {
                xlsx: false,
                html: true,
            }),
            "both" => Ok(Formats {
                xlsx: true,
                html: true,
            }),
            _ => Err(format!(
                "unknown report format {s:?}: use xlsx, html or both"
            )),
        }
    }
}

/// The year a report is for: `year` if it has annual returns, else an error naming the
/// years that do; without `year`, the latest that does.
pub async fn choose_year(session: &Session, year: Option<i32>) -> Result<i32> {
    let years = data::reported_years(session).await?;
    let span = match (years.first(), years.last()) {
        (Some(a), Some(b)) if a == b => format!("{a}"),
        (Some(a), Some(b)) => format!("{a}–{b}"),
        _ => String::new(),
    };
    match year {
        None => years.last().copied().ok_or_else(|| {
            Error::Usage(format!(
                "run {} has no annual returns (enterprise_annual is empty): there is no year to report on",
                session.run.run_id
            ))
        }),
        Some(y) if years.contains(&y) => Ok(y),
        Some(y) if years.is_empty() => Err(Error::Usage(format!(
            "no data for {y}: run {} has no annual returns at all",
            session.run.run_id
        ))),
        Some(y) => Err(Error::Usage(format!(
            "no data for {y}: run {} has annual returns for {span} only",
            session.run.run_id
        ))),
    }
}

/// Reads the report of `year` from the session's run.
pub async fn build(session: &Session, year: i32) -> Result<Report> {
    data::build(session, year, env!("CARGO_PKG_VERSION")).await
}

/// The report's files in the chosen formats, each as (file name, bytes):
/// `townstat-report-<year>.xlsx` and `.html`. `write` and the nightly run's `[report]`
/// both publish these.
pub fn render(report: &Report, formats: Formats) -> Result<Vec<(String, Vec<u8>)>> {
    let year = report.meta.year;
    let mut files = vec![];
    if formats.xlsx {
        files.push((
            format!("townstat-report-{year}.xlsx"),
            xlsx::workbook(report)?,
        ));
    }
    if formats.html {
        files.push((
            format!("townstat-report-{year}.html"),
            html::page(report).into_bytes(),
        ));
    }
    Ok(files)
}

/// Checks that `out` is, or can become, a folder; creates it.
pub fn prepare_out(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::Usage(format!(
            "--out {}: is a file, not a folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| {
        Error::Usage(format!(
            "--out {}: cannot create the folder: {e}",
            out.display()
        ))
    })
}

/// Renders the report and writes its files into `out`; returns their paths. Each file
/// is written to a temporary name in `out`, synced, then renamed over the final name;
/// on any failure the temporary files are removed and nothing under the final names
/// has changed.
pub fn write(report: &Report, out: &Path, formats: Formats) -> Result<Vec<PathBuf>> {
    prepare_out(out)?;
    let files: Vec<(PathBuf, Vec<u8>)> = render(report, formats)?
        .into_iter()
        .map(|(name, bytes)| (out.join(name), bytes))
        .collect();
    publish(&files)
}

/// Writes every file under a temporary name, then renames them all into place.
pub fn publish(files: &[(PathBuf, Vec<u8>)]) -> Result<Vec<PathBuf>> {
    let tmp = |p: &Path| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        p.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
    };
    let mut written: Vec<PathBuf> = vec![];
    let cleanup = |written: &[PathBuf]| {
        for w in written {
            let _ = std::fs::remove_file(w);
        }
    };
    for (path, bytes) in files {
        let t = tmp(path);
        let result = (|| {
            use std::io::Write;
            let mut f = std::fs::File::create(&t)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = result {
            written.push(t);
            cleanup(&written);
            return Err(Error::Failed(format!("{}: {e}", path.display())));
        }
        written.push(t);
    }
    for (path, _) in files {
        if let Err(e) = std::fs::rename(tmp(path), path) {
            cleanup(&written);
            return Err(Error::Failed(format!("{}: {e}", path.display())));
        }
    }
    Ok(files.iter().map(|(p, _)| p.clone()).collect())
}
