//! Row validation: every cell parsed by its column's rule, then the cross-field rules
//! of `sources.md` (date order, patent type and year, references to the registry,
//! derived values). A row carries every reason that applies, not only the first.

use chrono::{Datelike, NaiveDate};
use townstat_domain::division::Divisions;
use townstat_domain::enums::AliasTables;
use townstat_domain::industry::Industries;
use townstat_domain::number::{self, Unit};
use townstat_domain::patent::{self, PatentType};
use townstat_domain::schema::{Check, ColumnSchema, ColumnType, Min, RuleSet, TableSchema};
use townstat_domain::text::{is_null_token, normalize};
use townstat_domain::town::TownIndex;
use townstat_domain::{Reason, Rejection, Warning, date, uscc};

use crate::cell::Cell;
use crate::header::ColumnMap;
use crate::registry::{NameLink, Registry};

/// A canonical value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// No value.
    Null,
    /// Text (normalized), codes, enum values.
    Str(String),
    /// A date (also months, as their first day).
    Date(NaiveDate),
    /// A year.
    Year(i32),
    /// A count or integer.
    Int(i64),
    /// Money in 元 cents.
    Money(i128),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The text of a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Canonical text form (ISO dates, 元 with two decimals), as in the derived deal id.
    pub fn canonical_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Str(s) => s.clone(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::Year(y) => y.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Money(c) => number::format_cents(*c),
            Value::Bool(b) => b.to_string(),
        }
    }
}

/// One patent applicant after linking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicant {
    /// Position from 1.
    pub position: i64,
    /// Normalized name.
    pub name: String,
    /// The linked enterprise, if any.
    pub uscc: Option<String>,
    /// `uscc` or `name` when linked.
    pub link_method: Option<&'static str>,
}

/// A row that passed every rule.
#[derive(Debug, Clone)]
pub struct ValidRow {
    /// Values in schema column order.
    pub values: Vec<Value>,
    /// Warnings to record.
    pub warnings: Vec<(Warning, String)>,
    /// Patent applicants (patent rows only).
    pub applicants: Vec<Applicant>,
}

/// What the rules need besides the row.
pub struct Rules<'a> {
    /// The run date: "now" for every future-date check.
    pub as_of: NaiveDate,
    /// Enumeration alias tables.
    pub enums: &'a AliasTables,
    /// Datong's divisions.
    pub divisions: &'a Divisions,
    /// GB/T 4754-2017.
    pub industries: &'a Industries,
    /// Known enterprises.
    pub registry: &'a Registry,
    /// The town registry's towns, for `town` columns.
    pub towns: &'a TownIndex,
}

/// The separators of a list cell.
pub const LIST_SEPARATORS: [char; 5] = [';', '；', ',', '，', '、'];

/// Splits a list cell on `;` `；` `,` `，` `、` (after normalization the full-width
/// separators are still distinct characters, so all are listed).
pub fn split_list(text: &str) -> Vec<String> {
    text.split(LIST_SEPARATORS)
        .map(normalize)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The first non-null cell text among a column's file columns.
fn cell_text<'c>(cells: &'c [Cell], sources: &[usize]) -> Option<(&'c Cell, String)> {
    sources.iter().find_map(|&i| {
        let cell = cells.get(i)?;
        let text = cell.text()?;
        if is_null_token(&normalize(&text)) {
            None
        } else {
            Some((cell, text))
        }
    })
}

struct Parsed {
    value: Value,
    patent: Option<patent::ApplicationNo>,
    county_warnings: Vec<(Warning, String)>,
}

impl Parsed {
    fn plain(value: Value) -> Parsed {
        Parsed {
            value,
            patent: None,
            county_warnings: vec![],
        }
    }
}

fn check_min(col: &ColumnSchema, raw: &str, v: i128) -> Result<(), Rejection> {
    let fails = match col.min {
        Some(Min::Zero) => v < 0,
        Some(Min::Positive) => v <= 0,
        None => false,
    };
    if fails {
        let what = if v == 0 { "zero" } else { "negative" };
        return Err(Rejection::new(
            Reason::NegativeAmount,
            format!(
                "{} \"{raw}\" is {what}; it must be {}",
                col.name,
                match col.min {
                    Some(Min::Positive) => "greater than 0",
                    _ => "at least 0",
                }
            ),
        ));
    }
    Ok(())
}

fn future(col: &ColumnSchema, raw: &str, what: &str, run: &str) -> Rejection {
    Rejection::new(
        Reason::FutureDate,
        format!("{} \"{raw}\" is after the run {what} {run}", col.name),
    )
}

fn parse_cell(
    col: &ColumnSchema,
    cell: &Cell,
    raw: &str,
    header_unit: Option<Unit>,
    default_unit: Unit,
    rules: &Rules,
) -> Result<Parsed, Rejection> {
    if let Cell::Invalid(why) = cell {
        return Err(crate::cell::invalid_rejection(col, why));
    }
    let as_of = rules.as_of;
    let value = match col.ty {
        ColumnType::Text | ColumnType::List => Value::Str(normalize(raw)),
        ColumnType::Uscc => Value::Str(uscc::parse(raw)?),
        ColumnType::Date => {
            let d = match cell {
                // Typed XLSX dates get the same 1900 floor as text ones.
                Cell::Date(d) => date::check_floor(*d, raw)?,
                Cell::Number(n) if (10_000.0..100_000.0).contains(n) => date::from_excel_serial(*n)
                    .ok_or_else(|| {
                        Rejection::new(Reason::InvalidDate, format!("\"{raw}\" is not a date"))
                    })?,
                _ => date::parse_date(raw)?,
            };
            if d > as_of && !col.future_ok {
                return Err(future(col, raw, "date", &as_of.to_string()));
            }
            Value::Date(d)
        }
        ColumnType::Month => {
            let m = match cell {
                Cell::Date(d) => date::check_floor(d.with_day(1).unwrap_or(*d), raw)?,
                _ => date::parse_month(raw)?,
            };
            if (m.year(), m.month()) > (as_of.year(), as_of.month()) && !col.future_ok {
                return Err(future(
                    col,
                    raw,
                    "month",
                    &as_of.format("%Y-%m").to_string(),
                ));
            }
            Value::Date(m)
        }
        ColumnType::Year | ColumnType::YearOrDate => {
            let y = match (cell, col.ty) {
                (Cell::Date(d), ColumnType::YearOrDate) => date::check_floor(*d, raw)?.year(),
                (_, ColumnType::Year) => date::parse_year(raw)?,
                _ => date::parse_year_or_date(raw)?,
            };
            if y > as_of.year() && !col.future_ok {
                return Err(future(col, raw, "year", &as_of.year().to_string()));
            }
            Value::Year(y)
        }
        ColumnType::Money => {
            // Bounded to ±number::MAX_AMOUNT_CENTS (10^15 元): beyond it `invalid_number`.
            let cents = number::parse_money(raw, header_unit, default_unit)?;
            check_min(col, raw, cents)?;
            Value::Money(cents)
        }
        ColumnType::Count | ColumnType::Int64 => {
            // Bounded to ±number::MAX_COUNT: beyond it `invalid_number`.
            let n = number::parse_count(raw)?;
            check_min(col, raw, n as i128)?;
            Value::Int(n)
        }
        ColumnType::Bool => match cell {
            Cell::Bool(b) => Value::Bool(*b),
            _ => Value::Bool(townstat_domain::boolean::parse_bool(raw).ok_or_else(|| {
                Rejection::new(
                    Reason::UnknownEnumValue,
                    format!(
                        "{} \"{raw}\" is not a yes/no value (是/否, Y/N, 1/0, √/×)",
                        col.name
                    ),
                )
            })?),
        },
        ColumnType::Enum => {
            let name = col.enum_name.as_deref().unwrap_or(&col.name);
            match rules.enums.lookup(name, raw) {
                Ok(v) => Value::Str(v),
                Err(_) if name == "currency" => {
                    return Err(Rejection::new(
                        Reason::UnsupportedCurrency,
                        format!("currency \"{raw}\" is not CNY (人民币); only CNY is accepted"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        ColumnType::IndustryCode => {
            let text = match cell {
                // A numeric cell lost its leading zeros: 141 is class 0141.
                Cell::Number(n) if n.fract() == 0.0 && *n >= 0.0 && *n < 10_000.0 => {
                    format!("{:04}", *n as i64)
                }
                _ => raw.to_string(),
            };
            Value::Str(rules.industries.parse_class(&text)?)
        }
        ColumnType::Division => {
            let county = rules.divisions.resolve_code(raw)?;
            return Ok(Parsed {
                value: Value::Str(county.code),
                patent: None,
                county_warnings: county.warnings,
            });
        }
        ColumnType::Town => Value::Str(rules.towns.resolve(raw)?),
        ColumnType::Region => Value::Str(rules.divisions.resolve_region(raw)?),
        ColumnType::PatentNo => {
            let p = patent::parse(raw)?;
            return Ok(Parsed {
                value: Value::Str(p.canonical.clone()),
                patent: Some(p),
                county_warnings: vec![],
            });
        }
        ColumnType::Timestamp | ColumnType::TextList | ColumnType::Float64 => {
            Value::Str(normalize(raw))
        }
    };
    Ok(Parsed::plain(value))
}

fn idx(schema: &TableSchema, name: &str) -> usize {
    schema
        .columns
        .iter()
        .position(|c| c.name == name)
        .unwrap_or(usize::MAX)
}

fn get<'v>(schema: &TableSchema, values: &'v [Value], name: &str) -> &'v Value {
    values.get(idx(schema, name)).unwrap_or(&Value::Null)
}

/// Validates one record of a kind. `default_units` holds each column's pipeline
/// default unit.
pub fn validate_row(
    schema: &TableSchema,
    map: &ColumnMap,
    default_units: &[Unit],
    cells: &[Cell],
    rules: &Rules,
) -> Result<ValidRow, Vec<Rejection>> {
    let mut reasons: Vec<Rejection> = vec![];
    let mut values = vec![Value::Null; schema.columns.len()];
    let mut warnings = vec![];
    let mut patent_no = None;
    let mut present = vec![false; schema.columns.len()];
    for (c, col) in schema.columns.iter().enumerate() {
        if col.derived {
            continue;
        }
        let Some((cell, raw)) = cell_text(cells, &map.sources[c]) else {
            continue;
        };
        present[c] = true;
        match parse_cell(
            col,
            cell,
            &raw,
            map.header_units[c],
            default_units[c],
            rules,
        ) {
            Ok(p) => {
                values[c] = p.value;
                warnings.extend(p.county_warnings);
                if p.patent.is_some() {
                    patent_no = p.patent;
                }
            }
            Err(r) => reasons.push(r),
        }
    }
    let reference_name = cell_text(cells, &map.reference_name).map(|(_, t)| normalize(&t));
    for (c, col) in schema.columns.iter().enumerate() {
        let stands_in = col.name == "uscc" && reference_name.is_some();
        if col.required && !present[c] && !stands_in {
            reasons.push(Rejection::new(
                Reason::MissingRequired,
                format!("{} ({}) is empty", col.name, col.label),
            ));
        }
    }
    let mut applicants = vec![];
    let source = schema.source_rules();
    match source.rules {
        Some(RuleSet::Enterprise) => enterprise_rules(
            schema,
            &mut values,
            &present,
            &mut warnings,
            &mut reasons,
            rules,
        ),
        Some(RuleSet::Patent) => {
            applicants = patent_rules(
                schema,
                &mut values,
                cells,
                map,
                patent_no,
                &mut warnings,
                &mut reasons,
                rules,
            );
        }
        Some(RuleSet::Financing) | None => {}
    }
    declared_checks(schema, &source.checks, &mut values, &present, &mut reasons);
    if crate::header::is_referencing(schema) {
        resolve_reference(
            schema,
            &mut values,
            &present,
            reference_name.as_deref(),
            &mut reasons,
            rules,
        );
    }
    if source.rules == Some(RuleSet::Financing) && reasons.is_empty() {
        let d = idx(schema, "deal_id");
        if values[d] == Value::Null {
            let t = |n: &str| get(schema, &values, n).canonical_text();
            let institution = get(schema, &values, "institution")
                .as_str()
                .map(str::to_string);
            let amount = match get(schema, &values, "amount") {
                Value::Money(c) => *c,
                _ => 0,
            };
            values[d] = Value::Str(townstat_domain::hash::deal_id(
                &t("uscc"),
                &t("occurred_on"),
                &t("instrument"),
                amount,
                institution.as_deref(),
            ));
        }
    }
    if reasons.is_empty() {
        Ok(ValidRow {
            values,
            warnings,
            applicants,
        })
    } else {
        Err(reasons)
    }
}

/// The row checks a kind declares in its schema (`[[source.checks]]`), in order.
fn declared_checks(
    schema: &TableSchema,
    checks: &[Check],
    values: &mut [Value],
    present: &[bool],
    reasons: &mut Vec<Rejection>,
) {
    for check in checks {
        match check {
            Check::MinYear { column, min, why } => {
                if let Value::Year(y) = get(schema, values, column)
                    && y < min
                {
                    reasons.push(Rejection::new(
                        Reason::InvalidDate,
                        format!("{column} {y} is before {min}, {why}"),
                    ));
                }
            }
            Check::Order {
                earlier,
                later,
                message,
            } => {
                let (a, b) = (get(schema, values, earlier), get(schema, values, later));
                let before = match (a, b) {
                    (Value::Year(a), Value::Year(b)) => b < a,
                    (Value::Date(a), Value::Date(b)) => b < a,
                    _ => false,
                };
                if before {
                    reasons.push(Rejection::new(
                        Reason::DateOrder,
                        message
                            .replace("{later}", &b.canonical_text())
                            .replace("{earlier}", &a.canonical_text()),
                    ));
                }
            }
            Check::Any { columns, message } => {
                // A cell given but not valid has its own reason already.
                if columns
                    .iter()
                    .all(|c| !present.get(idx(schema, c)).copied().unwrap_or(false))
                {
                    reasons.push(Rejection::new(Reason::MissingRequired, message.clone()));
                }
            }
            Check::Sequence { columns, message } => {
                // The given values in column order; the first one earlier than the
                // latest value before it is the pair named.
                let mut last: Option<(&str, &Value)> = None;
                for c in columns {
                    let v = get(schema, values, c);
                    if *v == Value::Null {
                        continue;
                    }
                    if let Some((lc, lv)) = last {
                        let before = match (lv, v) {
                            (Value::Year(a), Value::Year(b)) => b < a,
                            (Value::Date(a), Value::Date(b)) => b < a,
                            _ => false,
                        };
                        if before {
                            reasons.push(Rejection::new(
                                Reason::DateOrder,
                                message
                                    .replace("{later_column}", c)
                                    .replace("{later}", &v.canonical_text())
                                    .replace("{earlier_column}", lc)
                                    .replace("{earlier}", &lv.canonical_text()),
                            ));
                            break;
                        }
                    }
                    last = Some((c, v));
                }
            }
            Check::Default { column, value } => {
                let c = idx(schema, column);
                if values[c] == Value::Null {
                    values[c] = Value::Str(value.clone());
                }
            }
        }
    }
}

fn enterprise_rules(
    schema: &TableSchema,
    values: &mut [Value],
    present: &[bool],
    warnings: &mut Vec<(Warning, String)>,
    reasons: &mut Vec<Rejection>,
    rules: &Rules,
) {
    let kind = idx(schema, "entity_kind");
    if values[kind] == Value::Null
        && !present[kind]
        && let Value::Str(code) = &values[idx(schema, "uscc")]
    {
        values[kind] = Value::Str(uscc::entity_kind(code).to_string());
    }
    if let (Value::Date(start), Value::Date(end)) = (
        &values[idx(schema, "established_on")],
        &values[idx(schema, "deregistered_on")],
    ) && end < start
    {
        reasons.push(Rejection::new(
            Reason::DateOrder,
            format!("deregistered_on {end} is before established_on {start}"),
        ));
    }
    let div = idx(schema, "division_code");
    if !present[div] {
        let address = values[idx(schema, "address")].as_str().map(str::to_string);
        match address.and_then(|a| rules.divisions.county_from_address(&a)) {
            Some(county) => {
                values[div] = Value::Str(county.code);
                warnings.extend(county.warnings);
            }
            None => reasons.push(Rejection::new(
                Reason::UnknownDivision,
                "no division code, and the address names no Datong county or township",
            )),
        }
    }
}

fn resolve_reference(
    schema: &TableSchema,
    values: &mut [Value],
    present: &[bool],
    reference_name: Option<&str>,
    reasons: &mut Vec<Rejection>,
    rules: &Rules,
) {
    let u = idx(schema, "uscc");
    if present[u] {
        // The USCC decides; a name beside it is ignored. Only valid codes are checked.
        if let Value::Str(code) = &values[u]
            && !rules.registry.contains(code)
        {
            reasons.push(Rejection::new(
                Reason::OrphanReference,
                format!("USCC {code} has no entry in the enterprise registry"),
            ));
        }
        return;
    }
    let Some(name) = reference_name else { return };
    match rules.registry.link_name(name) {
        NameLink::One(code) => values[u] = Value::Str(code),
        NameLink::None => reasons.push(Rejection::new(
            Reason::OrphanReference,
            format!("name \"{name}\" matches no enterprise in the registry"),
        )),
        NameLink::Many(n) => reasons.push(Rejection::new(
            Reason::AmbiguousReference,
            format!("name \"{name}\" matches {n} enterprises in the registry"),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn patent_rules(
    schema: &TableSchema,
    values: &mut [Value],
    cells: &[Cell],
    map: &ColumnMap,
    number: Option<patent::ApplicationNo>,
    warnings: &mut Vec<(Warning, String)>,
    reasons: &mut Vec<Rejection>,
    rules: &Rules,
) -> Vec<Applicant> {
    let t = idx(schema, "patent_type");
    if let Some(no) = &number {
        let from_number = no.patent_type;
        if let Value::Str(stated) = &values[t]
            && PatentType::from_canonical(stated) != Some(from_number)
        {
            reasons.push(Rejection::new(
                Reason::PatentTypeMismatch,
                format!(
                    "patent_type {stated} contradicts the number {}, which is {}",
                    no.canonical,
                    from_number.as_str()
                ),
            ));
        }
        values[t] = Value::Str(from_number.as_str().to_string());
        values[idx(schema, "is_pct")] = Value::Bool(no.pct);
        if let Value::Date(applied) = values[idx(schema, "applied_on")]
            && applied.year() != no.year
        {
            reasons.push(Rejection::new(
                Reason::YearMismatch,
                format!(
                    "applied_on {applied} is not in {}, the year of number {}",
                    no.year, no.canonical
                ),
            ));
        }
    }
    if let (Value::Date(applied), Value::Date(granted)) = (
        &values[idx(schema, "applied_on")],
        &values[idx(schema, "granted_on")],
    ) && granted < applied
    {
        reasons.push(Rejection::new(
            Reason::DateOrder,
            format!("granted_on {granted} is before applied_on {applied}"),
        ));
    }
    let names = match &values[idx(schema, "applicants")] {
        Value::Str(s) => split_list(s),
        _ => vec![],
    };
    let uscc_col = idx(schema, "applicant_uscc");
    let raw_codes = cell_text(cells, &map.sources[uscc_col])
        .map(|(_, t)| {
            // Keep empty positions: `A;;C` aligns C with the third applicant.
            t.split(LIST_SEPARATORS).map(normalize).collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if raw_codes.len() > names.len() && raw_codes.iter().skip(names.len()).any(|c| !c.is_empty()) {
        reasons.push(Rejection::new(
            Reason::MissingRequired,
            format!(
                "applicant_uscc lists {} codes for {} applicants",
                raw_codes.len(),
                names.len()
            ),
        ));
    }
    let mut codes = vec![];
    for raw in &raw_codes {
        if raw.is_empty() || is_null_token(raw) {
            codes.push(None);
            continue;
        }
        match uscc::parse(raw) {
            Ok(c) => codes.push(Some(c)),
            Err(e) => {
                reasons.push(e);
                codes.push(None);
            }
        }
    }
    values[uscc_col] = if codes.iter().any(Option::is_some) {
        Value::Str(
            codes
                .iter()
                .map(|c| c.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(";"),
        )
    } else {
        Value::Null
    };
    if !names.is_empty() {
        values[idx(schema, "applicants")] = Value::Str(names.join(";"));
    }
    values[idx(schema, "applicant_count")] = Value::Int(names.len() as i64);
    let mut applicants = vec![];
    for (i, name) in names.iter().enumerate() {
        let given = codes.get(i).cloned().flatten();
        let (uscc, method) = match given.filter(|c| rules.registry.contains(c)) {
            Some(c) => (Some(c), Some("uscc")),
            None => match rules.registry.link_name(name) {
                NameLink::One(c) => (Some(c), Some("name")),
                NameLink::None => {
                    warnings.push((
                        Warning::UnlinkedApplicant,
                        format!("applicant {} \"{name}\" links to no registry entry", i + 1),
                    ));
                    (None, None)
                }
                NameLink::Many(n) => {
                    warnings.push((
                        Warning::UnlinkedApplicant,
                        format!(
                            "applicant {} \"{name}\" matches {n} registry entries; left unlinked",
                            i + 1
                        ),
                    ));
                    (None, None)
                }
            },
        };
        applicants.push(Applicant {
            position: i as i64 + 1,
            name: name.clone(),
            uscc,
            link_method: method,
        });
    }
    applicants
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use townstat_domain::schema;

    use super::*;

    struct Tables {
        enums: AliasTables,
        divisions: Divisions,
        industries: Industries,
        registry: Registry,
        towns: TownIndex,
    }

    fn tables() -> Tables {
        let enums = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/enums.toml");
        Tables {
            enums: AliasTables::load(&enums).expect("pipelines/enums.toml loads"),
            divisions: Divisions::datong(),
            industries: Industries::gbt4754_2017(),
            registry: Registry::default(),
            towns: TownIndex::new(
                &townstat_domain::town::load_registry(
                    &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/raw/towns.csv"),
                )
                .expect("the sample registry loads"),
            ),
        }
    }

    fn rules(t: &Tables) -> Rules<'_> {
        Rules {
            as_of: NaiveDate::from_ymd_opt(2026, 1, 15).expect("date"),
            enums: &t.enums,
            divisions: &t.divisions,
            industries: &t.industries,
            registry: &t.registry,
            towns: &t.towns,
        }
    }

    fn column(table: &str, name: &str) -> &'static ColumnSchema {
        schema::table(table)
            .and_then(|t| t.column(name))
            .unwrap_or_else(|| panic!("{table}.{name}"))
    }

    /// Parses one cell as the column would, through `Cell::text` as ingestion does.
    fn parse(table: &str, name: &str, cell: Cell) -> Result<Value, Reason> {
        let t = tables();
        let raw = cell.text().expect("a non-empty cell");
        parse_cell(
            column(table, name),
            &cell,
            &raw,
            None,
            Unit::Yuan,
            &rules(&t),
        )
        .map(|p| p.value)
        .map_err(|r| r.reason)
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn typed_dates_before_1900_are_invalid() {
        let old = Cell::Date(ymd(1899, 12, 31));
        let zero = Cell::Date(ymd(0, 1, 1));
        for (table, col) in [
            ("enterprise", "established_on"),
            ("employment", "period"),
            ("designation", "year"),
        ] {
            for cell in [old.clone(), zero.clone()] {
                assert_eq!(
                    parse(table, col, cell.clone()),
                    Err(Reason::InvalidDate),
                    "{table}.{col} {cell:?}"
                );
            }
        }
        assert_eq!(
            parse("enterprise", "established_on", Cell::Date(ymd(1900, 1, 1))),
            Ok(Value::Date(ymd(1900, 1, 1)))
        );
        assert_eq!(
            parse("designation", "year", Cell::Date(ymd(1900, 6, 30))),
            Ok(Value::Year(1900))
        );
        assert_eq!(
            parse(
                "enterprise",
                "established_on",
                Cell::Text("0000-01-01".into())
            ),
            Err(Reason::InvalidDate)
        );
        assert_eq!(
            parse(
                "enterprise",
                "established_on",
                Cell::Text("2023-05-01T25:99:99".into())
            ),
            Err(Reason::InvalidDate)
        );
    }

    #[test]
    fn typed_numbers_beyond_the_bounds_are_invalid() {
        for n in [
            9_223_372_036_854_775_807.0,
            1e-200,
            1e308,
            10_000_001.0,
            0.5,
        ] {
            assert_eq!(
                parse("enterprise_annual", "employees", Cell::Number(n)),
                Err(Reason::InvalidNumber),
                "{n:e}"
            );
        }
        assert_eq!(
            parse("enterprise_annual", "employees", Cell::Number(10_000_000.0)),
            Ok(Value::Int(10_000_000))
        );
        assert_eq!(
            parse("enterprise_annual", "employees", Cell::Number(-0.0)),
            Ok(Value::Int(0))
        );
        for n in [1e16, 1e308, 1e-200] {
            assert_eq!(
                parse("enterprise_annual", "revenue", Cell::Number(n)),
                Err(Reason::InvalidNumber),
                "{n:e}"
            );
        }
        assert_eq!(
            parse("enterprise_annual", "revenue", Cell::Number(1e15)),
            Ok(Value::Money(10i128.pow(17)))
        );
    }

    fn any_cell() -> impl Strategy<Value = Cell> {
        prop_oneof![
            any::<String>().prop_map(Cell::Text),
            "[-+]?[0-9.,]{0,50}(e[-+]?[0-9]{1,3})?[万亿元人%]?".prop_map(Cell::Text),
            "[0-9]{4}[-/年][0-9]{1,2}[-/月][0-9]{1,2}日?([T ][0-9:+Z.-]{0,16})?"
                .prop_map(Cell::Text),
            prop::num::f64::ANY.prop_map(Cell::Number),
            (-1e8f64..1e8).prop_map(Cell::Number),
            any::<bool>().prop_map(Cell::Bool),
            (-1_000_000i32..3_000_000).prop_map(|days| Cell::Date(
                NaiveDate::from_num_days_from_ce_opt(days).unwrap_or_default()
            )),
        ]
    }

    /// Every column of every source table, fed arbitrary cells: a value or a
    /// rejection, never a panic; accepted counts, amounts and dates within bounds.
    #[test]
    fn every_source_column_takes_any_cell() {
        let t = tables();
        let rules = rules(&t);
        let columns: Vec<&'static ColumnSchema> = schema::catalog()
            .iter()
            .filter(|s| s.kind == "source")
            .flat_map(|s| s.columns.iter())
            .filter(|c| !c.derived)
            .collect();
        const CASES: u32 = 3_000;
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let executed = std::cell::Cell::new(0u32);
        let result = runner.run(&(0..columns.len(), any_cell()), |(c, cell)| {
            executed.set(executed.get() + 1);
            let Some(raw) = cell.text() else {
                return Ok(());
            };
            match parse_cell(columns[c], &cell, &raw, None, Unit::Wan, &rules).map(|p| p.value) {
                Ok(Value::Int(n)) => prop_assert!(n.unsigned_abs() <= 10_000_000, "{raw}"),
                Ok(Value::Money(m)) => prop_assert!(m.unsigned_abs() <= 10u128.pow(17), "{raw}"),
                Ok(Value::Date(d)) => prop_assert!(d.year() >= 1900, "{raw}"),
                Ok(Value::Year(y)) => prop_assert!(y >= 1900, "{raw}"),
                _ => {}
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        eprintln!("validate parse_cell: {} cases", executed.get());
        assert!(executed.get() >= CASES);
    }
}
