//! The pipeline file (`pipelines/nightly.toml`): which source files to read, as which
//! record kind, in which format and encoding, with which extra column aliases and
//! default units. A new source layout is a new `[[source]]` entry, not new code.
//! Unknown keys are errors that name the key and the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma, tab or semicolon separated text.
    Csv,
    /// An Excel workbook.
    Xlsx,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// The format a file's extension implies.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "xlsx" | "xlsm" | "xls" => Some(Format::Xlsx),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// A text encoding for CSV and NDJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 (with or without BOM) when the file is valid UTF-8, else GB18030.
    #[default]
    Auto,
    /// UTF-8; invalid bytes reject the file.
    #[serde(alias = "utf8")]
    #[serde(rename = "utf-8")]
    Utf8,
    /// GBK, read as its superset GB18030.
    Gbk,
    /// GB18030.
    Gb18030,
}

/// One source: a set of files of one record kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A name for logs.
    pub name: String,
    /// The record kind: enterprise, enterprise_annual, designation, employment,
    /// patent or financing.
    pub kind: String,
    /// Glob patterns, relative to the pipeline file.
    pub glob: Vec<String>,
    /// The format; inferred from each file's extension when absent.
    #[serde(default)]
    pub format: Option<Format>,
    /// The encoding of text files.
    #[serde(default)]
    pub encoding: Encoding,
    /// CSV separator; sniffed among `,` tab `;` when absent.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// XLSX sheet name; the first sheet when absent.
    #[serde(default)]
    pub sheet: Option<String>,
    /// Extra header aliases per canonical column.
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Default money unit per column (元, 万元, 亿元) when neither cell nor header says.
    #[serde(default)]
    pub units: BTreeMap<String, String>,
    /// The files are a full snapshot of the registry (enterprise sources only):
    /// registered enterprises absent from them are flagged in `enterprise_absent`.
    #[serde(default)]
    pub full_snapshot: bool,
}

/// The whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Alias tables of the enumerations.
    pub enums: String,
    /// The town registry CSV.
    pub towns: String,
    /// The registry's dated events (申报/认定/晋级/摘牌); when absent, a
    /// `town_events.csv` beside the registry is used if there is one.
    #[serde(default)]
    pub town_events: Option<String>,
    /// The 规上/限上 thresholds by sector; the compiled-in table when absent.
    #[serde(default)]
    pub above_size_thresholds: Option<String>,
    /// The 2017 size classes by sector; the compiled-in table when absent.
    #[serde(default)]
    pub size_classes: Option<String>,
    /// Schema files of source kinds this pipeline declares beyond townstat's own
    /// (globs relative to the pipeline; the form of `schemas/*.toml`).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Targets of the plan (marts).
    #[serde(default)]
    pub targets: Option<String>,
    /// Evaluation weights (marts).
    #[serde(default)]
    pub evaluation: Option<String>,
    /// The sources.
    #[serde(rename = "source")]
    pub sources: Vec<Source>,
    /// The yearly report, written with each run's exports (`[report]`); none without.
    #[serde(default)]
    pub report: Option<ReportConfig>,
}

/// A problem of a pipeline file's content, found after it parsed: the message, the
/// source it is in (its index among `[[source]]`s; none for the file as a whole) and a
/// piece of the file's text to find the line by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentProblem {
    /// What is wrong.
    pub message: String,
    /// The `[[source]]` it is in.
    pub source: Option<usize>,
    /// Text near the problem (a key or a value as written).
    pub needle: String,
}

impl PipelineFile {
    /// Adds the source kinds of the pipeline's `kinds` files to the catalog (each
    /// glob relative to `base`, the pipeline's folder); the first problem, naming its
    /// file.
    pub fn declare_kinds(&self, base: &Path) -> std::result::Result<(), String> {
        // This process's kinds are the pipeline's from now on: a run's stored
        // declarations (an earlier run's, maybe of kinds since removed) are not added.
        townstat_domain::schema::kinds_from_pipeline();
        for pattern in &self.kinds {
            let full = base.join(pattern);
            let mut paths: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
                .map_err(|e| format!("kinds {pattern:?}: {e}"))?
                .filter_map(|p| p.ok())
                .collect();
            if paths.is_empty() {
                return Err(format!("kinds {pattern:?}: no schema file matches"));
            }
            paths.sort();
            for p in paths {
                townstat_domain::schema::declare_kind(&p).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Every problem of the sources and of `[report]`, in file order: an unknown kind,
    /// an alias or unit for a column the kind does not have, a unit that is not 元, 万元
    /// or 亿元, a full snapshot of a kind other than enterprise, an empty glob, an
    /// unknown report format. `Pipeline::from_toml` refuses the first; `townstat
    /// check` lists them all.
    pub fn problems(&self) -> Vec<ContentProblem> {
        let mut out = vec![];
        let mut at = |message: String, source: Option<usize>, needle: &str| {
            out.push(ContentProblem {
                message,
                source,
                needle: needle.to_string(),
            })
        };
        for (i, s) in self.sources.iter().enumerate() {
            let Some(schema) =
                townstat_domain::schema::table(&s.kind).filter(|t| t.kind == "source")
            else {
                at(
                    format!(
                        "source {:?}: unknown kind {:?}; known: {}",
                        s.name,
                        s.kind,
                        townstat_domain::schema::source_kind_names().join(", ")
                    ),
                    Some(i),
                    &s.kind,
                );
                continue;
            };
            for col in s.aliases.keys().chain(s.units.keys()) {
                if schema.column(col).is_none() {
                    at(
                        format!("source {:?}: {} has no column {col:?}", s.name, s.kind),
                        Some(i),
                        col,
                    );
                }
            }
            for (col, unit) in &s.units {
                if townstat_domain::number::Unit::parse(unit).is_none() {
                    at(
                        format!(
                            "source {:?}: unit {unit:?} of {col} is not 元, 万元 or 亿元",
                            s.name
                        ),
                        Some(i),
                        unit,
                    );
                }
            }
            if s.full_snapshot && !schema.source_rules().registry {
                at(
                    format!(
                        "source {:?}: full_snapshot is for {} sources only",
                        s.name,
                        townstat_domain::schema::registry_kind().name
                    ),
                    Some(i),
                    "full_snapshot",
                );
            }
            if s.glob.is_empty() {
                at(
                    format!("source {:?}: glob is empty", s.name),
                    Some(i),
                    "glob",
                );
            }
        }
        if let Some(r) = &self.report
            && !["xlsx", "html", "both"].contains(&r.format.as_str())
        {
            at(
                format!(
                    "[report] format {:?}: use \"xlsx\", \"html\" or \"both\"",
                    r.format
                ),
                None,
                &r.format,
            );
        }
        out
    }
}

/// `[report]`: each run writes the yearly report (`townstat report`) into its export
/// folder, `report/townstat-report-<year>.{xlsx,html}`, published with the marts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// xlsx, html or both (the default).
    #[serde(default = "default_report_format")]
    pub format: String,
    /// The report year; default: the latest year with annual returns.
    #[serde(default)]
    pub year: Option<i32>,
}

fn default_report_format() -> String {
    "both".into()
}

/// A loaded pipeline, with paths resolved against the pipeline file's folder.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The pipeline file.
    pub path: PathBuf,
    /// The folder paths are relative to.
    pub base: PathBuf,
    /// The parsed file.
    pub file: PipelineFile,
}

impl Pipeline {
    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Pipeline {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Pipeline::from_toml(&text, path)
    }

    /// Parses pipeline text; `path` names the file in errors and anchors relative paths.
    pub fn from_toml(text: &str, path: &Path) -> Result<Pipeline> {
        let err = |message: String| Error::Pipeline {
            path: path.to_path_buf(),
            message,
        };
        let file: PipelineFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        file.declare_kinds(&base).map_err(err)?;
        if let Some(p) = file.problems().into_iter().next() {
            return Err(err(p.message));
        }
        Ok(Pipeline {
            path: path.to_path_buf(),
            base,
            file,
        })
    }

    /// A path of the pipeline resolved against its folder.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.base.join(relative)
    }

    /// The registry's events file: `town_events` when the pipeline names it, else a
    /// `town_events.csv` beside the registry when there is one.
    pub fn town_events(&self) -> Option<PathBuf> {
        match &self.file.town_events {
            Some(p) => Some(self.resolve(p)),
            None => {
                let sibling = self
                    .resolve(&self.file.towns)
                    .parent()
                    .map(|d| d.join("town_events.csv"))?;
                sibling.is_file().then_some(sibling)
            }
        }
    }

    /// Every regular source file with its source, in path order, each file once.
    pub fn files(&self) -> Result<Vec<(PathBuf, &Source)>> {
        Ok(self
            .matches()?
            .into_iter()
            .filter(|m| m.problem.is_none())
            .map(|m| (m.path, m.source))
            .collect())
    }

    /// Every path a source's globs match, in path order, each once: regular files to
    /// read, and what cannot be read (a directory, a FIFO, a symlink loop, an
    /// unreadable directory) with the reason, so that the run lists it in `ingest_run`
    /// instead of passing over it without a word. File names that are not UTF-8 (a
    /// GBK-named `登记名录.csv`) are matched too, by their lossy form: the glob crate
    /// alone skips them.
    pub fn matches(&self) -> Result<Vec<Matched<'_>>> {
        let mut out: BTreeMap<PathBuf, (&Source, Option<String>)> = BTreeMap::new();
        for s in &self.file.sources {
            for pattern in &s.glob {
                let full = self.resolve(pattern);
                let found = expand(&full).map_err(|e| Error::Pipeline {
                    path: self.path.clone(),
                    message: format!("source {:?}: bad glob {pattern:?}: {e}", s.name),
                })?;
                for (p, problem) in found {
                    if let Some((other, _)) = out.insert(p.clone(), (s, problem))
                        && other.name != s.name
                    {
                        return Err(Error::Pipeline {
                            path: self.path.clone(),
                            message: format!(
                                "{} is matched by sources {:?} and {:?}",
                                p.display(),
                                other.name,
                                s.name
                            ),
                        });
                    }
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|(path, (source, problem))| Matched {
                path,
                source,
                problem,
            })
            .collect())
    }
}

/// A path a source's glob matched.
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    /// The path.
    pub path: PathBuf,
    /// Its source.
    pub source: &'a Source,
    /// Why it cannot be read, when it cannot.
    pub problem: Option<String>,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The paths a pattern matches, each with why it cannot be read (if so). The folders
/// are expanded by the glob crate (its errors become unreadable entries); the last
/// component is matched here against every directory entry, so that names that are
/// not UTF-8 and entries that are not files are seen.
fn expand(full: &Path) -> std::result::Result<Vec<(PathBuf, Option<String>)>, String> {
    let options = glob::MatchOptions::new();
    let mut out = vec![];
    let last = full.file_name().map(|n| n.to_string_lossy().into_owned());
    let parent = full.parent().filter(|p| !p.as_os_str().is_empty());
    let (Some(last), Some(parent)) = (last.filter(|l| !l.contains("**")), parent) else {
        // A bare pattern, or `**` last: the glob crate alone.
        for entry in glob::glob(&full.to_string_lossy()).map_err(|e| e.to_string())? {
            match entry {
                Ok(p) => {
                    let problem = classify(&p);
                    out.push((p, problem));
                }
                Err(e) => out.push((
                    e.path().to_path_buf(),
                    Some(format!("cannot read: {}", e.error())),
                )),
            }
        }
        return Ok(out);
    };
    let name_pattern = glob::Pattern::new(&last).map_err(|e| e.to_string())?;
    let parent_text = parent.to_string_lossy();
    let mut dirs = vec![];
    if has_wildcard(&parent_text) {
        for entry in glob::glob(&parent_text).map_err(|e| e.to_string())? {
            match entry {
                Ok(d) if d.is_dir() => dirs.push(d),
                Ok(_) => {}
                Err(e) => out.push((
                    e.path().to_path_buf(),
                    Some(format!("cannot read the folder: {}", e.error())),
                )),
            }
        }
    } else {
        dirs.push(parent.to_path_buf());
    }
    for dir in dirs {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A folder that does not exist matches nothing, as with any glob.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
            Err(e) => {
                out.push((dir.clone(), Some(format!("cannot read the folder: {e}"))));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    out.push((dir.clone(), Some(format!("cannot read the folder: {e}"))));
                    continue;
                }
            };
            let name = entry.file_name();
            if name_pattern.matches_with(&name.to_string_lossy(), options) {
                let p = dir.join(&name);
                let problem = classify(&p);
                out.push((p, problem));
            }
        }
    }
    Ok(out)
}

/// Why a matched path cannot be read as a source file, if it cannot.
fn classify(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some("a directory, not a regular file; not read".into()),
        Ok(_) => Some("not a regular file (a FIFO, socket or device); not read".into()),
        Err(e) => Some(format!("cannot read: {e}")),
    }
}

/// A path as text for the run's records: exact when it is UTF-8; otherwise ASCII as it
/// is and every other byte as `\xNN` (a GBK name `\xB5\xC7\xBC\xC7….csv`), so that it is
/// still told apart and can be found (decoding the bytes that happen to form UTF-8
/// would show characters the name never had).
pub fn escaped(path: &Path) -> String {
    if let Some(text) = path.to_str() {
        return text.to_string();
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::new();
        for &b in path.as_os_str().as_bytes() {
            if b.is_ascii() {
                out.push(b as char);
            } else {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let text = "enums = 'e'\ntowns = 't'\n[[source]]\nname='a'\nkind='patent'\nglob=['x']\nsheeet='S'\n";
        let e = Pipeline::from_toml(text, Path::new("p.toml")).unwrap_err();
        assert!(e.to_string().contains("unknown field `sheeet`"), "{e}");
        let text = "enums = 'e'\ntowns = 't'\n[[source]]\nname='a'\nkind='patents'\nglob=['x']\n";
        let e = Pipeline::from_toml(text, Path::new("p.toml")).unwrap_err();
        assert!(e.to_string().contains("unknown kind \"patents\""), "{e}");
        let text = "enums = 'e'\ntowns = 't'\n[[source]]\nname='a'\nkind='patent'\nglob=['x']\n[source.aliases]\ntitel=['x']\n";
        let e = Pipeline::from_toml(text, Path::new("p.toml")).unwrap_err();
        assert!(e.to_string().contains("no column \"titel\""), "{e}");
        let base = "enums = 'e'\ntowns = 't'\nsource = []\n";
        let e = Pipeline::from_toml(
            &format!("{base}[report]\nformat = 'pdf'\n"),
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("[report] format \"pdf\""), "{e}");
        let e = Pipeline::from_toml(
            &format!("{base}[report]\nyeer = 2025\n"),
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `yeer`"), "{e}");
        let p = Pipeline::from_toml(&format!("{base}[report]\n"), Path::new("p.toml")).expect("ok");
        let r = p.file.report.expect("[report]");
        assert_eq!((r.format.as_str(), r.year), ("both", None));
    }
}
