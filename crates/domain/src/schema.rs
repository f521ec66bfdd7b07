//! The table catalog: the schemas of `schemas/*.toml`, compiled in. Every crate that
//! needs a table's columns, key, types or Chinese labels asks here, so the TOML files
//! stay the single statement of the contract.

use std::collections::BTreeMap;
use std::sync::{OnceLock, RwLock};

use serde::Deserialize;

/// How a column's values are parsed from source cells and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Normalized text.
    Text,
    /// A GB 32100 code.
    Uscc,
    /// A calendar date.
    Date,
    /// A month, stored as its first day.
    Month,
    /// A four-digit year.
    Year,
    /// A year, or a date whose year is taken.
    YearOrDate,
    /// Money in 元, Decimal128(20,2).
    Money,
    /// A whole count.
    Count,
    /// A 64-bit integer (system tables).
    Int64,
    /// A boolean.
    Bool,
    /// A value of an alias table.
    Enum,
    /// A GB/T 4754-2017 class code.
    IndustryCode,
    /// A Datong county code.
    Division,
    /// A town of the town registry, by its `town_id` or its name; stored as the id.
    Town,
    /// A division code anywhere in China (GB/T 2260), or a province's name; stored
    /// as the six-digit code (a province as `XX0000`).
    Region,
    /// A patent application number.
    PatentNo,
    /// Several values in one cell, separated by `;` `；` `,` `，` `、`.
    List,
    /// A UTC timestamp (system tables).
    Timestamp,
    /// A list of text (system tables).
    TextList,
    /// A 64-bit float (marts).
    Float64,
}

/// The lower bound of a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Min {
    /// ≥ 0
    Zero,
    /// > 0
    Positive,
}

/// One column of a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSchema {
    /// snake_case name.
    pub name: String,
    /// Parse and storage type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// The alias table of an `enum` column.
    #[serde(default, rename = "enum")]
    pub enum_name: Option<String>,
    /// Chinese label.
    pub label: String,
    /// Required in source files.
    #[serde(default)]
    pub required: bool,
    /// Accepted header spellings.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Lower bound of a quantity.
    #[serde(default)]
    pub min: Option<Min>,
    /// A date or year after the run date is allowed.
    #[serde(default)]
    pub future_ok: bool,
    /// Not read from source files.
    #[serde(default)]
    pub derived: bool,
    /// Whether the stored column may hold nulls (default: unless key or required).
    #[serde(default)]
    pub nullable: Option<bool>,
}

/// The rules a source kind declares in its schema (`[source]`): how it is ingested,
/// beyond each column's own rule. The code knows a kind through this value, never by
/// comparing its name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRules {
    /// Where the kind comes in a run: the registry first, since the others reference
    /// it.
    pub order: u32,
    /// The kind is the registry of market entities: its names resolve the other
    /// kinds' name references, a pipeline may mark its files full snapshots, and the
    /// run keeps its history (`enterprise_history`).
    #[serde(default)]
    pub registry: bool,
    /// Rows reference the registry (`uscc`, or the enterprise's name under one of
    /// the name headers): an unknown USCC is `orphan_reference`, a name that matches
    /// no or several enterprises `orphan_reference` / `ambiguous_reference`.
    #[serde(default)]
    pub references_registry: bool,
    /// A rule set written in code, for checks a declaration cannot state.
    #[serde(default)]
    pub rules: Option<RuleSet>,
    /// Row checks across columns (`[[source.checks]]`).
    #[serde(default)]
    pub checks: Vec<Check>,
}

/// The rule sets written in code (crates/ingest validate.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSet {
    /// The registry's: entity kind from the USCC, dates of establishment and
    /// deregistration, county from the division code.
    Enterprise,
    /// Patents': number check digit, type against the number, year, applicants.
    Patent,
    /// Financing's: a deal id derived from the deal's fields when it has none.
    Financing,
}

/// A row check across columns, declared in a kind's schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// A year column is at least `min` (`invalid_date`); the message says `why`.
    MinYear {
        /// The year column.
        column: String,
        /// The first year accepted.
        min: i32,
        /// Why, as the rejection message ends: "year 1985 is before 1990, <why>".
        why: String,
    },
    /// `later` is not before `earlier` when both are present (`date_order`).
    Order {
        /// The column that comes first.
        earlier: String,
        /// The column that must not be before it.
        later: String,
        /// The rejection message: `{later}` and `{earlier}` stand for the values.
        message: String,
    },
    /// At least one of `columns` is given (`missing_required` with `message`).
    Any {
        /// The columns of which one must be present.
        columns: Vec<String>,
        /// The rejection message.
        message: String,
    },
    /// The given ones of `columns` (dates or years) are in order, each not before
    /// the one before it (`date_order`, one reason naming the first pair out of
    /// order: `{earlier_column}` `{earlier}` `{later_column}` `{later}`).
    Sequence {
        /// The columns, earliest first.
        columns: Vec<String>,
        /// The rejection message.
        message: String,
    },
    /// An empty `column` takes `value`.
    Default {
        /// The column.
        column: String,
        /// Its value when the file leaves it empty.
        value: String,
    },
}

/// One table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    /// snake_case table name.
    pub name: String,
    /// Chinese label.
    pub label: String,
    /// `source` (read from agency files), `derived`, `reference`, `system` or `mart`.
    pub kind: String,
    /// The columns that identify a row.
    pub key: Vec<String>,
    /// The columns, in stored order.
    pub columns: Vec<ColumnSchema>,
    /// How a source kind is ingested (`kind = "source"` only).
    #[serde(default)]
    pub source: Option<SourceRules>,
}

impl TableSchema {
    /// The column with this name.
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether a column may be null when stored.
    pub fn is_nullable(&self, column: &ColumnSchema) -> bool {
        column
            .nullable
            .unwrap_or(!(column.required || self.key.contains(&column.name)))
    }
}

const FILES: &[(&str, &str)] = &[
    (
        "enterprise",
        include_str!("../../../schemas/enterprise.toml"),
    ),
    (
        "enterprise_annual",
        include_str!("../../../schemas/enterprise_annual.toml"),
    ),
    (
        "designation",
        include_str!("../../../schemas/designation.toml"),
    ),
    (
        "employment",
        include_str!("../../../schemas/employment.toml"),
    ),
    ("patent", include_str!("../../../schemas/patent.toml")),
    (
        "patent_applicant",
        include_str!("../../../schemas/patent_applicant.toml"),
    ),
    ("financing", include_str!("../../../schemas/financing.toml")),
    (
        "quality_mark",
        include_str!("../../../schemas/quality_mark.toml"),
    ),
    ("project", include_str!("../../../schemas/project.toml")),
    (
        "investment_deal",
        include_str!("../../../schemas/investment_deal.toml"),
    ),
    ("town", include_str!("../../../schemas/town.toml")),
    (
        "declared_kind",
        include_str!("../../../schemas/declared_kind.toml"),
    ),
    (
        "town_history",
        include_str!("../../../schemas/town_history.toml"),
    ),
    (
        "above_size_rule",
        include_str!("../../../schemas/above_size_rule.toml"),
    ),
    (
        "size_class_rule",
        include_str!("../../../schemas/size_class_rule.toml"),
    ),
    (
        "town_roster",
        include_str!("../../../schemas/town_roster.toml"),
    ),
    (
        "industry_code",
        include_str!("../../../schemas/industry_code.toml"),
    ),
    ("division", include_str!("../../../schemas/division.toml")),
    (
        "quarantine",
        include_str!("../../../schemas/quarantine.toml"),
    ),
    (
        "ingest_warning",
        include_str!("../../../schemas/ingest_warning.toml"),
    ),
    (
        "ingest_run",
        include_str!("../../../schemas/ingest_run.toml"),
    ),
    ("run", include_str!("../../../schemas/run.toml")),
    (
        "test_result",
        include_str!("../../../schemas/test_result.toml"),
    ),
    (
        "test_failure",
        include_str!("../../../schemas/test_failure.toml"),
    ),
];

/// The compiled-in tables. The files are checked by a unit test, so a parse failure
/// here is a build defect, reported with the file name.
fn builtin() -> &'static [TableSchema] {
    static CATALOG: OnceLock<Vec<TableSchema>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, text)| {
                toml::from_str(text)
                    .unwrap_or_else(|e| panic!("schemas/{name}.toml is invalid: {e}"))
            })
            .collect()
    })
}

/// Source kinds a pipeline declares in its own schema files (`kinds = [...]`), added
/// for the life of the process: (the file's text, the table).
static DECLARED: RwLock<Vec<(String, &'static TableSchema)>> = RwLock::new(Vec::new());

fn declared() -> Vec<&'static TableSchema> {
    DECLARED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(_, t)| *t)
        .collect()
}

static FROM_PIPELINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks that this process took its declared kinds from a pipeline file.
pub fn kinds_from_pipeline() {
    FROM_PIPELINE.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether this process took its declared kinds from a pipeline file (then a run's
/// stored declarations are not added: `townstat run` of a pipeline that dropped a
/// kind must not take it back from the previous run).
pub fn kinds_come_from_pipeline() -> bool {
    FROM_PIPELINE.load(std::sync::atomic::Ordering::SeqCst)
}

/// The kinds pipelines declared (`kinds = [...]`), in the order declared.
pub fn declared_kinds() -> Vec<&'static TableSchema> {
    declared()
}

/// Every table of the catalog: the compiled-in ones, then the kinds pipelines
/// declared.
pub fn catalog() -> Vec<&'static TableSchema> {
    builtin().iter().chain(declared()).collect()
}

/// Adds a source kind declared in a schema file of a pipeline (the same form as
/// `schemas/*.toml`, with `kind = "source"` and a `[source]` table). Declaring the
/// same file again is a no-op; another kind of an existing name is an error.
pub fn declare_kind(path: &std::path::Path) -> crate::error::Result<&'static TableSchema> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::error::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    declare_kind_text(&text, path)
}

/// The kinds this process declared, each with its declaration's text (what a run
/// stores in `declared_kind`, so that `sql` and `serve` know their labels).
pub fn declared_kind_texts() -> Vec<(&'static TableSchema, String)> {
    DECLARED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(text, t)| (*t, text.clone()))
        .collect()
}

/// [`declare_kind`] from the declaration's text; `path` names it in errors.
pub fn declare_kind_text(
    text: &str,
    path: &std::path::Path,
) -> crate::error::Result<&'static TableSchema> {
    let text = text.to_string();
    let bad = |message: String| crate::error::Error::Config {
        path: path.to_path_buf(),
        message,
    };
    let t: TableSchema = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut declared = DECLARED.write().unwrap_or_else(|e| e.into_inner());
    if let Some((known, table)) = declared.iter().find(|(_, d)| d.name == t.name) {
        return if *known == text {
            Ok(*table)
        } else {
            Err(bad(format!(
                "kind {} is already declared otherwise",
                t.name
            )))
        };
    }
    if builtin().iter().any(|b| b.name == t.name) {
        return Err(bad(format!("{} is a table of townstat's own", t.name)));
    }
    let snake = !t.name.is_empty()
        && t.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake {
        return Err(bad(format!("name {:?} is not snake_case", t.name)));
    }
    if t.kind != "source" || t.source.is_none() {
        return Err(bad(
            "a declared kind has kind = \"source\" and a [source] table".into(),
        ));
    }
    if t.source_rules().registry || t.source_rules().rules.is_some() {
        return Err(bad(
            "a declared kind is not the registry and has no rule set in code".into(),
        ));
    }
    for k in &t.key {
        if t.column(k).is_none() {
            return Err(bad(format!("key {k} is not a column")));
        }
    }
    for c in &t.columns {
        if (c.ty == ColumnType::Enum) != c.enum_name.is_some() {
            return Err(bad(format!(
                "{}: an enum column names its alias table, and only it",
                c.name
            )));
        }
    }
    for check in &t.source_rules().checks {
        for c in check.columns() {
            if t.column(c).is_none() {
                return Err(bad(format!("a check names no column {c}")));
            }
        }
    }
    let table: &'static TableSchema = Box::leak(Box::new(t));
    declared.push((text, table));
    Ok(table)
}

impl Check {
    /// The columns a check reads.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Check::MinYear { column, .. } | Check::Default { column, .. } => vec![column],
            Check::Order { earlier, later, .. } => vec![earlier, later],
            Check::Any { columns, .. } | Check::Sequence { columns, .. } => {
                columns.iter().map(String::as_str).collect()
            }
        }
    }
}

/// The table with this name.
pub fn table(name: &str) -> Option<&'static TableSchema> {
    builtin()
        .iter()
        .find(|t| t.name == name)
        .or_else(|| declared().into_iter().find(|t| t.name == name))
}

/// The source kinds, in the order a run ingests them (their schemas' `source.order`:
/// the registry first, since every other kind references it); declared kinds after
/// the compiled-in ones of the same order.
pub fn source_kinds() -> Vec<&'static TableSchema> {
    let mut kinds: Vec<&TableSchema> = catalog()
        .into_iter()
        .filter(|t| t.source.is_some())
        .collect();
    kinds.sort_by_key(|t| t.source.as_ref().map(|s| s.order));
    kinds
}

/// The names of the source kinds, in the order a run ingests them.
pub fn source_kind_names() -> Vec<&'static str> {
    source_kinds().iter().map(|t| t.name.as_str()).collect()
}

/// The registry kind (the one whose schema says `source.registry = true`).
pub fn registry_kind() -> &'static TableSchema {
    source_kinds()
        .iter()
        .find(|t| t.source.as_ref().is_some_and(|s| s.registry))
        .expect("schemas/: one source kind is the registry")
}

impl TableSchema {
    /// The kind's declared source rules (the defaults for a table that is no source).
    pub fn source_rules(&self) -> &SourceRules {
        static NONE: OnceLock<SourceRules> = OnceLock::new();
        self.source
            .as_ref()
            .unwrap_or_else(|| NONE.get_or_init(SourceRules::default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_and_is_consistent() {
        let cat = catalog();
        assert_eq!(cat.len(), FILES.len());
        for (t, (file, _)) in cat.iter().zip(FILES) {
            assert_eq!(&t.name, file, "schemas/{file}.toml names itself {}", t.name);
            for k in &t.key {
                assert!(t.column(k).is_some(), "{}: key {k} is not a column", t.name);
            }
            for c in &t.columns {
                assert!(!c.label.is_empty());
                assert_eq!(
                    c.ty == ColumnType::Enum,
                    c.enum_name.is_some(),
                    "{}.{}",
                    t.name,
                    c.name
                );
            }
        }
        assert_eq!(
            source_kind_names(),
            [
                "enterprise",
                "enterprise_annual",
                "designation",
                "employment",
                "patent",
                "financing",
                "quality_mark",
                "project",
                "investment_deal"
            ]
        );
        for t in catalog() {
            assert_eq!(t.kind == "source", t.source.is_some(), "{}", t.name);
            for check in &t.source_rules().checks {
                for c in check.columns() {
                    assert!(
                        t.column(c).is_some(),
                        "{}: check names no column {c}",
                        t.name
                    );
                }
            }
        }
        assert_eq!(registry_kind().name, "enterprise");
    }
}

/// The labels of derived tables (`schemas/marts.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedLabels {
    /// Per table: label and key.
    pub tables: std::collections::BTreeMap<String, DerivedTable>,
    /// Per column name: label.
    pub columns: std::collections::BTreeMap<String, String>,
}

/// A derived table's label, key and declared tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedTable {
    /// Chinese label.
    pub label: String,
    /// Grain: tested `unique` and `not_null` on every run.
    pub key: Vec<String>,
    /// What else must hold before a run publishes the table.
    #[serde(default)]
    pub tests: DeclaredTests,
}

/// The tests declared on a derived table (`[tables.NAME.tests]` of
/// `schemas/marts.toml`). Each one is a query for the rows that break it; a test
/// passes when there are none. Besides these, every table's `key` is tested `unique`
/// and `not_null`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredTests {
    /// Columns that must never be null.
    #[serde(default)]
    pub not_null: Vec<String>,
    /// Column → the only values it may take (nulls are left to `not_null`).
    #[serde(default)]
    pub accepted_values: BTreeMap<String, Vec<String>>,
    /// Column → `[min, max]`, both inclusive (nulls pass; NaN fails).
    #[serde(default)]
    pub range: BTreeMap<String, [f64; 2]>,
    /// Column → `table.column` every non-null value must occur in.
    #[serde(default)]
    pub relationships: BTreeMap<String, String>,
    /// Tests written as SQL: each returns the rows that break it.
    #[serde(default)]
    pub expression: Vec<ExpressionTest>,
    /// Names of tests (as `townstat test` lists them) that only warn: recorded, and
    /// a run still publishes when they fail.
    #[serde(default)]
    pub warn: Vec<String>,
}

/// A test written as SQL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressionTest {
    /// A snake_case name, unique within the table.
    pub name: String,
    /// What must hold, in a sentence a statistician can check.
    pub description: String,
    /// A query returning the rows that break it (any columns).
    pub sql: String,
}

/// The labels of derived tables, compiled in.
pub fn derived_labels() -> &'static DerivedLabels {
    static LABELS: OnceLock<DerivedLabels> = OnceLock::new();
    LABELS.get_or_init(|| {
        toml::from_str(include_str!("../../../schemas/marts.toml"))
            .unwrap_or_else(|e| panic!("schemas/marts.toml is invalid: {e}"))
    })
}

/// The Chinese label of a table, from its schema file or `schemas/marts.toml`.
pub fn table_label(table: &str) -> Option<&'static str> {
    self::table(table)
        .map(|t| t.label.as_str())
        .or_else(|| derived_labels().tables.get(table).map(|t| t.label.as_str()))
}

/// The Chinese label of a column of a table.
pub fn column_label(table: &str, column: &str) -> Option<&'static str> {
    if let Some(t) = self::table(table) {
        if let Some(c) = t.column(column) {
            return Some(c.label.as_str());
        }
        if let Some((_, label)) = LINEAGE_LABELS.iter().find(|(n, _)| *n == column) {
            return Some(label);
        }
    }
    derived_labels().columns.get(column).map(String::as_str)
}

/// The Chinese label of a column name wherever it comes from, for query results whose
/// columns have lost their table: a derived table's label first (marts share their
/// column labels), then the first table of the catalog that has the column, then the
/// lineage columns'.
pub fn any_column_label(column: &str) -> Option<&'static str> {
    derived_labels()
        .columns
        .get(column)
        .map(String::as_str)
        .or_else(|| {
            catalog()
                .iter()
                .find_map(|t| t.column(column).map(|c| c.label.as_str()))
        })
        .or_else(|| {
            LINEAGE_LABELS
                .iter()
                .find(|(n, _)| *n == column)
                .map(|(_, l)| *l)
        })
}

/// The definition of an indicator column (`schemas/glossary.toml`): the unit it is
/// stored in, what it is, and the tables it is derived from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The unit as stored (元, 个, 人, 比率 …; empty for codes and text).
    pub unit: String,
    /// Chinese definition: formula, members, year rule, null rule.
    pub definition: String,
    /// Tables the figure is derived from.
    pub sources: Vec<String>,
    /// For a figure computed from other columns of the drill-down (a ratio, a share,
    /// a concentration), those columns: `townstat explain` lists the members whose
    /// parts are not zero. Empty: the figure is itself a sum over the members.
    #[serde(default)]
    pub parts: Vec<String>,
}

/// The definitions of the marts' columns, compiled in.
pub fn definitions() -> &'static std::collections::BTreeMap<String, Definition> {
    static DEFINITIONS: OnceLock<std::collections::BTreeMap<String, Definition>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        toml::from_str(include_str!("../../../schemas/glossary.toml"))
            .unwrap_or_else(|e| panic!("schemas/glossary.toml is invalid: {e}"))
    })
}

/// The definition of a mart column, by name.
pub fn definition(column: &str) -> Option<&'static Definition> {
    definitions().get(column)
}

/// Labels of the lineage columns every source table carries.
pub const LINEAGE_LABELS: [(&str, &str); 3] = [
    ("run_id", "写入该行的运行编号"),
    ("source_file", "源文件"),
    ("source_row", "源文件行号"),
];

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn every_mart_table_and_column_has_a_label() {
        let d = derived_labels();
        for t in ["town_year", "county_year", "city_year", "town_evaluation"] {
            assert!(table_label(t).is_some(), "{t}");
            for k in &d.tables[t].key {
                assert!(column_label(t, k).is_some(), "{t}.{k}");
            }
        }
        assert_eq!(column_label("enterprise", "uscc"), Some("统一社会信用代码"));
        assert_eq!(column_label("enterprise", "source_row"), Some("源文件行号"));
        assert_eq!(
            column_label("town_year", "hhi"),
            Some("赫芬达尔指数 HHI(0–10000)")
        );
        assert_eq!(any_column_label("revenue"), Some("营业收入(元)"));
        assert_eq!(any_column_label("uscc"), Some("统一社会信用代码"));
        assert_eq!(any_column_label("source_row"), Some("源文件行号"));
        assert_eq!(any_column_label("count(*)"), None);
        assert_eq!(definition("revenue").map(|d| d.unit.as_str()), Some("元"));
        // Every defined column has a label.
        for c in definitions().keys() {
            assert!(
                derived_labels().columns.contains_key(c),
                "{c} has a definition, no label"
            );
        }
    }
}
