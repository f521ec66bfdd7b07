//! Finding the header row and mapping its cells to canonical columns. Headers match
//! after normalization (NFKC, trimmed, whitespace folded, lower-cased); a header with
//! a unit (`营业收入(万元)`, `金额（亿元）`) matches its bare alias and lends its unit to
//! the column. Columns no alias maps are ignored, never a reason to reject.

use std::collections::HashMap;

use townstat_domain::number::Unit;
use townstat_domain::schema::TableSchema;
use townstat_domain::text::match_key;

use crate::cell::Cell;
use crate::error::FileRejection;
use crate::pipeline::Source;
use crate::read::RawRecord;

/// How many rows from the top the header may be found in (title rows above it).
pub const HEADER_SEARCH_ROWS: usize = 10;

/// Header spellings under which a referencing kind may name the enterprise instead of
/// giving its USCC (sources.md, settled details).
pub const REFERENCE_NAME_ALIASES: [&str; 4] = ["企业名称", "名称", "融资主体", "市场主体名称"];

/// Whether a kind references the registry (and may name enterprises): its schema's
/// `source.references_registry`.
pub fn is_referencing(schema: &TableSchema) -> bool {
    schema.source_rules().references_registry
}

/// Where a header cell goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A canonical column, by index in the schema.
    Column(usize),
    /// The enterprise name of a referencing kind.
    ReferenceName,
}

/// The alias look-up of one source.
#[derive(Debug, Clone)]
pub struct AliasIndex {
    map: HashMap<String, Target>,
    /// For messages: every alias of each column, as written.
    pub tried: Vec<Vec<String>>,
}

impl AliasIndex {
    /// Builds the index of a kind's schema plus the source's extra aliases.
    pub fn new(schema: &TableSchema, source: &Source) -> AliasIndex {
        let mut map = HashMap::new();
        let mut tried = vec![];
        for (i, col) in schema.columns.iter().enumerate() {
            let mut names = vec![];
            if !col.derived {
                names.push(col.name.clone());
                names.extend(col.aliases.iter().cloned());
                if let Some(extra) = source.aliases.get(&col.name) {
                    names.extend(extra.iter().cloned());
                }
            }
            for n in &names {
                map.entry(match_key(n)).or_insert(Target::Column(i));
            }
            tried.push(names);
        }
        if is_referencing(schema) {
            for n in REFERENCE_NAME_ALIASES {
                map.entry(match_key(n)).or_insert(Target::ReferenceName);
            }
        }
        AliasIndex { map, tried }
    }

    /// Where a header cell goes, and the unit it states.
    pub fn lookup(&self, header: &str) -> Option<(Target, Option<Unit>)> {
        let key = match_key(header);
        let unit = Unit::from_header(&key);
        if let Some(t) = self.map.get(&key) {
            return Some((*t, unit));
        }
        // `营业收入(万元)` → `营业收入`; `注册资本万元` → `注册资本`.
        let bare = match key.rfind('(') {
            Some(i) if key.ends_with(')') => key[..i].trim_end().to_string(),
            _ => ["亿元", "万元", "元"]
                .iter()
                .find_map(|u| key.strip_suffix(u))
                .unwrap_or(&key)
                .to_string(),
        };
        self.map.get(&bare).map(|t| (*t, unit))
    }
}

/// The columns of one file mapped to the schema.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    /// The header cells as the file wrote them.
    pub header: Vec<String>,
    /// For each schema column, the file columns that feed it (first non-empty wins).
    pub sources: Vec<Vec<usize>>,
    /// For each schema column, the unit its header states.
    pub header_units: Vec<Option<Unit>>,
    /// File columns holding an enterprise name (referencing kinds).
    pub reference_name: Vec<usize>,
}

/// Maps a header row; rejects the file when a required column is missing, naming the
/// column and every alias tried.
pub fn map_header(
    header: &[String],
    schema: &TableSchema,
    index: &AliasIndex,
    file: &str,
) -> Result<ColumnMap, FileRejection> {
    let mut sources = vec![vec![]; schema.columns.len()];
    let mut header_units = vec![None; schema.columns.len()];
    let mut reference_name = vec![];
    for (i, h) in header.iter().enumerate() {
        match index.lookup(h) {
            Some((Target::Column(c), unit)) => {
                sources[c].push(i);
                if header_units[c].is_none() {
                    header_units[c] = unit;
                }
            }
            Some((Target::ReferenceName, _)) => reference_name.push(i),
            None => {}
        }
    }
    for (c, col) in schema.columns.iter().enumerate() {
        if !col.required || !sources[c].is_empty() {
            continue;
        }
        if col.name == "uscc" && !reference_name.is_empty() {
            continue;
        }
        let mut tried = index.tried[c].join(", ");
        if col.name == "uscc" && is_referencing(schema) {
            tried.push_str(&format!(
                "; or an enterprise name under {}",
                REFERENCE_NAME_ALIASES.join(", ")
            ));
        }
        return Err(FileRejection(format!(
            "{file}: missing required column {} ({}); tried: {tried}",
            col.name, col.label
        )));
    }
    Ok(ColumnMap {
        header: header.to_vec(),
        sources,
        header_units,
        reference_name,
    })
}

/// How many cells of a candidate row are known headers.
pub fn header_score(cells: &[Cell], index: &AliasIndex) -> usize {
    cells
        .iter()
        .filter_map(|c| c.text())
        .filter(|t| index.lookup(t).is_some())
        .count()
}

/// From which score a row looks like a header as much as the chosen one (`best`): at
/// least two known column names and at least half as many as the header has.
pub fn header_like(score: usize, best: usize) -> bool {
    score >= 2 && score * 2 >= best
}

/// How many cells of a row hold something.
fn filled(cells: &[Cell]) -> usize {
    cells
        .iter()
        .filter(|c| c.text().is_some_and(|t| !t.trim().is_empty()))
        .count()
}

/// The rows above the header are titles: a report name, a unit, a date, a cell or
/// two. A row there with two or more known column names (a first export's header,
/// matching fewer aliases than the one chosen), or with three or more filled cells
/// (data), would be lost without a count: the file is rejected instead, naming both
/// rows.
pub fn check_above_header(
    above: &[RawRecord],
    header: &RawRecord,
    best: usize,
    index: &AliasIndex,
    file: &str,
) -> Result<(), FileRejection> {
    for row in above {
        let score = header_score(&row.cells, index);
        if score >= 2 {
            return Err(FileRejection(format!(
                "{file}: rows {} and {} both look like header rows ({score} and {best} known \
                 column names); the file seems to be two exports joined; split it",
                row.row_number, header.row_number
            )));
        }
        let n = filled(&row.cells);
        if n >= 3 {
            return Err(FileRejection(format!(
                "{file}: row {} above the header (row {}) has {n} filled cells, like data; \
                 rows above the header are read as titles, so it would be lost",
                row.row_number, header.row_number
            )));
        }
    }
    Ok(())
}

/// A row after the header that looks like a header as much as the header does (a
/// second export appended) rejects the file, naming both rows: its rows may have
/// other columns in other places.
pub fn check_late_header(
    row: &RawRecord,
    header_row: u64,
    best: usize,
    index: &AliasIndex,
    file: &str,
) -> Result<(), FileRejection> {
    let score = header_score(&row.cells, index);
    if header_like(score, best) {
        return Err(FileRejection(format!(
            "{file}: row {} looks like a second header row ({score} known column names; the \
             header on row {header_row} has {best}); the file seems to be two exports joined; \
             split it",
            row.row_number
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        toml::from_str(
            "name='t'\nkind='enterprise_annual'\nglob=['x']\n[aliases]\nrevenue=['销售额']",
        )
        .unwrap()
    }

    #[test]
    fn headers_with_units_and_extra_aliases() {
        let schema = townstat_domain::schema::table("enterprise_annual").unwrap();
        let idx = AliasIndex::new(schema, &source());
        let rev = schema
            .columns
            .iter()
            .position(|c| c.name == "revenue")
            .unwrap();
        assert_eq!(
            idx.lookup("营业收入（万元）"),
            Some((Target::Column(rev), Some(Unit::Wan)))
        );
        assert_eq!(idx.lookup(" 营业收入 "), Some((Target::Column(rev), None)));
        assert_eq!(
            idx.lookup("销售额(亿元)"),
            Some((Target::Column(rev), Some(Unit::Yi)))
        );
        assert_eq!(
            idx.lookup("r&d经费支出").map(|t| t.0),
            idx.lookup("研发费用").map(|t| t.0)
        );
        assert_eq!(idx.lookup("企业名称"), Some((Target::ReferenceName, None)));
        assert_eq!(idx.lookup("联系电话"), None);
    }

    #[test]
    fn missing_required_names_aliases() {
        let schema = townstat_domain::schema::table("enterprise_annual").unwrap();
        let idx = AliasIndex::new(schema, &source());
        let header = vec!["信用代码".to_string(), "营业收入".to_string()];
        let e = map_header(&header, schema, &idx, "a.csv").unwrap_err();
        assert_eq!(
            e.0,
            "a.csv: missing required column year (统计年度); tried: year, 年份, 统计年度, 报告期"
        );
    }
}
