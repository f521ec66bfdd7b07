//! Writing one record kind: clean rows stream from the kind's generator into its files
//! in path order (each file gets its share; XLSX files are capped, the rest flows to the
//! text files after them), and problems are injected among them at a known rate. Every
//! reject reason the kind can produce is injected at least once (a queue spread over the
//! run and flushed at its end), and every injected problem, warning and duplicate is
//! written to the manifest with the row number ingestion will report.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::error::{Result, io};
use crate::sink::{self, FileFormat, Sink};
use crate::value::{Col, R, Row, Style, Target, V, render};
use crate::world::World;

/// At most this many data rows go into one XLSX file (the writer holds a workbook in
/// memory); the rest of the kind goes to the files after it.
pub const XLSX_CAP: u64 = 19_000;

/// Probability of a random injection after each clean row.
const RATE: f64 = 0.012;

/// One output file of a kind.
#[derive(Debug, Clone)]
pub struct FileSpec {
    /// File name inside the kind's folder.
    pub name: &'static str,
    /// Format.
    pub format: FileFormat,
    /// Columns.
    pub cols: Vec<Col>,
    /// Value spellings.
    pub style: Style,
    /// Share of the kind's rows.
    pub share: f64,
    /// Some rows give the enterprise's name instead of its USCC.
    pub by_name: bool,
}

impl FileSpec {
    fn target(&self) -> Target {
        match self.format {
            FileFormat::Csv { .. } => Target::Csv,
            FileFormat::Xlsx { .. } => Target::Xlsx,
            FileFormat::Ndjson => Target::Ndjson,
        }
    }

    /// Whether the file has a column.
    pub fn has(&self, canon: &str) -> bool {
        self.cols.iter().any(|c| c.canon == canon)
    }

    /// The canonical columns (what decides whether two rows are equal).
    fn signature(&self) -> Vec<&'static str> {
        let mut s: Vec<&'static str> = self
            .cols
            .iter()
            .map(|c| c.canon)
            .filter(|c| *c != "ref_name" && !c.starts_with('_'))
            .collect();
        s.sort_unstable();
        s
    }
}

/// A problem made by changing a clean row.
#[derive(Clone, Copy)]
pub struct Mutation {
    /// The reasons the changed row must carry, exactly.
    pub codes: &'static [&'static str],
    /// Columns the file must have.
    pub needs: &'static [&'static str],
    /// The change.
    pub apply: fn(&mut Row, &World, &mut R),
}

/// One kind of injected problem.
#[derive(Clone, Copy)]
pub enum Inj {
    /// A changed copy of a row.
    Mutate(Mutation),
    /// An exact copy of the previous row, later in the same file.
    Dup,
    /// An exact copy of a row of an earlier file with the same columns.
    DupCross,
    /// The previous row's key with another value, in the same file.
    Conflict,
    /// The same, in a later file.
    ConflictCross,
}

/// A record kind's generator.
pub trait Kind {
    /// The record kind (folder name).
    fn name(&self) -> &'static str;
    /// The files, in path order.
    fn files(&self) -> Vec<FileSpec>;
    /// How many clean rows the kind will have.
    fn estimate(&self, w: &World) -> u64;
    /// The clean rows of enterprise `i`.
    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>);
    /// The mutations this kind can suffer.
    fn mutations(&self) -> Vec<Mutation>;
    /// Columns a conflicting variant changes (both files must have them).
    fn conflict_needs(&self) -> &'static [&'static str];
    /// Changes a value that is not part of the key.
    fn conflict(&self, row: &mut Row, rng: &mut R);
    /// A clean row of an enterprise outside the registry, when injected rows must not
    /// touch registry entries others refer to (the enterprise kind).
    fn fresh(&mut self, _w: &World, _rng: &mut R) -> Option<Row> {
        None
    }
    /// Warnings ingestion records for a clean row written to a file.
    fn warnings(&self, row: &Row, _file: &FileSpec) -> Vec<&'static str> {
        row.warn.clone()
    }
}

/// The manifest of injected problems (`_manifest/injected.csv`), written as found.
pub struct Manifest {
    path: PathBuf,
    out: BufWriter<File>,
    lines: u64,
}

impl Manifest {
    /// Creates the manifest with its header.
    pub fn create(out: &Path) -> Result<Manifest> {
        let dir = out.join("_manifest");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join("injected.csv");
        let file = File::create(&path).map_err(io(&path))?;
        let mut m = Manifest {
            out: BufWriter::new(file),
            path,
            lines: 0,
        };
        writeln!(m.out, "file,row_number,kind,expect").map_err(io(&m.path))?;
        Ok(m)
    }

    fn line(&mut self, file: &str, row: u64, kind: &str, expect: &str) -> Result<()> {
        self.lines += 1;
        writeln!(self.out, "{file},{row},{kind},{expect}").map_err(io(&self.path))
    }

    /// Flushes; returns the number of lines.
    pub fn finish(mut self) -> Result<u64> {
        self.out.flush().map_err(io(&self.path))?;
        Ok(self.lines)
    }
}

struct Current {
    row: Row,
    pos: (usize, u64),
    /// Already the original of a duplicate or conflict.
    used: bool,
    warn_free: bool,
}

struct Carry {
    row: Row,
    file: usize,
    used: bool,
}

struct Pending {
    row: Row,
    orig: (usize, u64),
}

struct Emitter<'a> {
    out: &'a Path,
    kind: &'static str,
    files: Vec<FileSpec>,
    quotas: Vec<u64>,
    counts: Vec<u64>,
    cur: usize,
    sink: Option<Box<dyn Sink>>,
    carried: Vec<bool>,
    carries: Vec<Carry>,
    pending: Vec<Pending>,
    current: Option<Current>,
    manifest: &'a mut Manifest,
    written: &'a mut Vec<(PathBuf, u64)>,
}

impl Emitter<'_> {
    fn rel(&self, file: usize) -> String {
        format!("{}/{}", self.kind, self.files[file].name)
    }

    fn emit(&mut self, w: &World, row: &Row, codes: &[&'static str], rng: &mut R) -> Result<u64> {
        let file = &self.files[self.cur];
        if self.sink.is_none() {
            let dir = self.out.join(self.kind);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let header: Vec<&str> = file.cols.iter().map(|c| c.header).collect();
            self.sink = Some(sink::open(&dir.join(file.name), &file.format, &header)?);
        }
        let target = file.target();
        let cells: Vec<_> = file
            .cols
            .iter()
            .map(|c| match c.canon {
                "_person" => crate::value::Cell::Text(crate::names::person(rng)),
                "_phone" => crate::value::Cell::Text(crate::names::phone(rng)),
                canon => render(
                    row.get(canon),
                    c,
                    target,
                    &file.style,
                    rng,
                    &w.refs.industries,
                ),
            })
            .collect();
        let n = match self.sink.as_mut() {
            Some(s) => s.write(&cells)?,
            None => 0,
        };
        self.counts[self.cur] += 1;
        let rel = self.rel(self.cur);
        for code in codes {
            self.manifest.line(&rel, n, self.kind, code)?;
        }
        Ok(n)
    }

    fn close(&mut self) -> Result<()> {
        if let Some(s) = self.sink.take() {
            s.finish()?;
            self.written
                .push((PathBuf::from(self.rel(self.cur)), self.counts[self.cur]));
        }
        Ok(())
    }

    fn rotate(&mut self, kind: &dyn Kind, w: &World, rng: &mut R) -> Result<()> {
        if self.counts[self.cur] < self.quotas[self.cur] || self.cur + 1 >= self.files.len() {
            return Ok(());
        }
        self.close()?;
        self.cur += 1;
        self.current = None;
        // Conflicting variants waiting for a later file that has the changed columns.
        let needs = kind.conflict_needs();
        if needs.iter().all(|c| self.files[self.cur].has(c)) {
            for p in std::mem::take(&mut self.pending) {
                let n = self.emit(w, &p.row, &[], rng)?;
                let (f, r) = p.orig;
                let orig = self.rel(f);
                self.manifest
                    .line(&orig, r, self.kind, "conflicting_duplicate")?;
                let here = self.rel(self.cur);
                self.manifest
                    .line(&here, n, self.kind, "conflicting_duplicate")?;
            }
        }
        Ok(())
    }

    fn clean(&mut self, kind: &dyn Kind, w: &World, mut row: Row, rng: &mut R) -> Result<()> {
        self.rotate(kind, w, rng)?;
        let file = &self.files[self.cur];
        if file.by_name && row.name_ok && !row.get("ref_name").is_null() && rng.random_bool(0.25) {
            row.set("uscc", V::Null);
        }
        let warn = kind.warnings(&row, file);
        let n = self.emit(w, &row, &warn, rng)?;
        let mut used = false;
        if warn.is_empty() && gives_uscc(&row) && !self.carried[self.cur] {
            self.carries.push(Carry {
                row: row.clone(),
                file: self.cur,
                used: false,
            });
            self.carried[self.cur] = true;
            used = true;
        }
        self.current = Some(Current {
            row,
            pos: (self.cur, n),
            used,
            warn_free: warn.is_empty(),
        });
        Ok(())
    }

    /// Tries one injection; false when it does not apply here.
    fn inject(&mut self, kind: &mut dyn Kind, w: &World, inj: Inj, rng: &mut R) -> Result<bool> {
        let file = &self.files[self.cur];
        match inj {
            Inj::Mutate(m) => {
                if !m.needs.iter().all(|c| file.has(c)) {
                    return Ok(false);
                }
                // A changed copy is always rejected, so the clean original (and any
                // reference to it) is unaffected.
                let Some(mut row) = self.current.as_ref().map(|c| c.row.clone()) else {
                    return Ok(false);
                };
                (m.apply)(&mut row, w, rng);
                self.emit(w, &row, m.codes, rng)?;
                Ok(true)
            }
            Inj::Dup => {
                let Some(c) = self.current.as_mut().filter(|c| !c.used && c.warn_free) else {
                    return Ok(false);
                };
                c.used = true;
                let row = c.row.clone();
                self.emit(w, &row, &["exact_duplicate"], rng)?;
                Ok(true)
            }
            Inj::DupCross => {
                let sig = file.signature();
                let cur = self.cur;
                let found = self
                    .carries
                    .iter_mut()
                    .find(|c| !c.used && c.file < cur && self.files[c.file].signature() == sig);
                let Some(c) = found else { return Ok(false) };
                c.used = true;
                let row = c.row.clone();
                self.emit(w, &row, &["exact_duplicate"], rng)?;
                Ok(true)
            }
            Inj::Conflict | Inj::ConflictCross => {
                if !kind.conflict_needs().iter().all(|c| file.has(c)) {
                    return Ok(false);
                }
                let cross = matches!(inj, Inj::ConflictCross);
                if cross && self.cur + 1 >= self.files.len() {
                    return Ok(false);
                }
                let (orig, pos) = match kind.fresh(w, rng) {
                    Some(row) => {
                        // An enterprise nobody refers to, so that quarantining it
                        // orphans nothing.
                        let n = self.emit(w, &row, &[], rng)?;
                        (row, (self.cur, n))
                    }
                    None => {
                        // A row that names its enterprise cannot move to a file
                        // without the name column, so it is never an original.
                        let Some(c) = self
                            .current
                            .as_mut()
                            .filter(|c| !c.used && c.warn_free && gives_uscc(&c.row))
                        else {
                            return Ok(false);
                        };
                        c.used = true;
                        (c.row.clone(), c.pos)
                    }
                };
                let mut variant = orig;
                kind.conflict(&mut variant, rng);
                if cross {
                    self.pending.push(Pending {
                        row: variant,
                        orig: pos,
                    });
                } else {
                    self.emit(w, &variant, &["conflicting_duplicate"], rng)?;
                    let rel = self.rel(pos.0);
                    self.manifest
                        .line(&rel, pos.1, self.kind, "conflicting_duplicate")?;
                }
                Ok(true)
            }
        }
    }
}

/// Whether a row identifies its enterprise by USCC (or has no USCC column at all).
fn gives_uscc(row: &Row) -> bool {
    !row.vals.iter().any(|(c, _)| *c == "uscc") || !row.get("uscc").is_null()
}

/// The injections of a kind: its mutations plus duplicates and conflicts.
fn catalog(kind: &dyn Kind) -> Vec<Inj> {
    let mut all: Vec<Inj> = kind.mutations().into_iter().map(Inj::Mutate).collect();
    all.extend([Inj::Dup, Inj::Conflict, Inj::DupCross, Inj::ConflictCross]);
    all
}

/// Writes every file of one kind.
pub fn run(
    out: &Path,
    w: &World,
    kind: &mut dyn Kind,
    rng: &mut R,
    manifest: &mut Manifest,
    written: &mut Vec<(PathBuf, u64)>,
) -> Result<()> {
    let files = kind.files();
    let est = kind.estimate(w).max(1);
    let total: f64 = files.iter().map(|f| f.share).sum();
    let quotas = files
        .iter()
        .map(|f| {
            let q = ((est as f64) * f.share / total).ceil().max(1.0) as u64;
            match f.format {
                FileFormat::Xlsx { .. } => q.min(XLSX_CAP),
                _ => q,
            }
        })
        .collect();
    let n_files = files.len();
    let all = catalog(kind);
    let mut queue: VecDeque<Inj> = all.iter().copied().collect();
    // The must-have problems are spread over the first half of the run; random ones
    // follow at RATE throughout.
    let interval = (est / (2 * queue.len() as u64 + 2)).max(1);
    let mut em = Emitter {
        out,
        kind: kind.name(),
        files,
        quotas,
        counts: vec![0; n_files],
        cur: 0,
        sink: None,
        carried: vec![false; n_files],
        carries: vec![],
        pending: vec![],
        current: None,
        manifest,
        written,
    };
    let mut since = 0u64;
    let mut rows = vec![];
    for i in 0..w.ents.len() {
        kind.rows_for(w, i, rng, &mut rows);
        for row in rows.drain(..) {
            em.clean(kind, w, row, rng)?;
            since += 1;
            if since >= interval && !queue.is_empty() {
                for _ in 0..queue.len() {
                    let Some(inj) = queue.pop_front() else { break };
                    if em.inject(kind, w, inj, rng)? {
                        since = 0;
                        break;
                    }
                    queue.push_back(inj);
                }
            }
            if rng.random_bool(RATE) {
                let inj = all[rng.random_range(0..all.len())];
                em.inject(kind, w, inj, rng)?;
            }
        }
    }
    // Whatever the queue still holds goes into the last file.
    while let Some(inj) = queue.pop_front() {
        em.inject(kind, w, inj, rng)?;
    }
    em.close()
}
