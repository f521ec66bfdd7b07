//! `townstat explain MART COLUMN KEY…`: where one published figure comes from — its
//! definition, the SQL steps it passed through (the lineage of `docs`), the members
//! behind it (`town_member_year`, the drill-down whose rows add up to `town_year`),
//! and the raw records of those members down to `source_file` and `source_row`, so an
//! official can check a number against the agency's spreadsheet.
//!
//! Members are stored for towns (`town_member_year`); a figure of any mart keyed by
//! `town_id` and `year` is explained through them. Which raw records are listed
//! follows the column's `sources` in `schemas/glossary.toml`, each source table with
//! the rows of the figure's year:
//!
//! | table | rows listed |
//! |---|---|
//! | `enterprise_annual` | the members' annual returns of the year |
//! | `employment` | the members' monthly returns of the year (`period`) |
//! | `financing` | the members' deals that occurred in the year |
//! | `designation` | the members' designations valid in the year |
//! | `patent` | patents with a member among the applicants, applied for (or, for a `…granted…` column, granted) in the year |
//! | `enterprise` | the members' registrations |
//!
//! Members listed are those with a non-zero contribution to the column (or, for a
//! ratio, to one of its `parts`); a column the drill-down does not carry (patents: a
//! patent counts once per town however many members applied) lists every member.

use std::collections::BTreeSet;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use townstat_domain::schema;
use townstat_query::Session;

use crate::error::{Error, Result};

/// One explained figure.
pub struct Explained {
    /// `town_year.revenue for town_id = alpha, year = 2023`.
    pub title: String,
    /// The figure as published.
    pub value: String,
    /// Chinese label, unit and definition.
    pub definition: Vec<String>,
    /// The SQL steps upstream of the mart, in build order: (layer, name, summary).
    pub steps: Vec<(String, String, String)>,
    /// The members behind it (a title line, then the rows).
    pub members: (String, Vec<RecordBatch>),
    /// The raw records: `source_table, source_file, source_row, uscc, detail`.
    pub sources: Vec<RecordBatch>,
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn ident(name: &str) -> Result<&str> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(name)
    } else {
        Err(Error::Config(format!(
            "{name:?} is not a table or column name"
        )))
    }
}

/// The raw-record tables `explain` lists, with the filter of a year and the columns
/// shown of each row.
fn source_rows_sql(table: &str, year: i64, members: &str, column: &str) -> Option<String> {
    let (filter, detail) = match table {
        "enterprise_annual" => (
            format!("year = {year}"),
            "revenue, gross_output, profit, tax, rd_expense, export_value, employees",
        ),
        "employment" => (
            format!("date_part('year', period) = {year}"),
            "period, insured, wage_total, new_hires, separations, trained",
        ),
        "financing" => (
            format!("date_part('year', occurred_on) = {year}"),
            "occurred_on, instrument, amount, institution",
        ),
        "designation" => (
            format!("year <= {year} AND (expires_year IS NULL OR expires_year >= {year})"),
            "kind, level, year, expires_year",
        ),
        "enterprise" => (
            "true".to_string(),
            "name, established_on, deregistered_on, status, division_code, industry_code",
        ),
        "patent" => {
            let date = if column.contains("granted") {
                "granted_on"
            } else {
                "applied_on"
            };
            return Some(format!(
                "SELECT 'patent' AS source_table, source_file, source_row, \
                 applicant_uscc AS uscc, \
                 concat_ws('; ', 'application_no=' || application_no, 'patent_type=' || patent_type, \
                 'applied_on=' || CAST(applied_on AS VARCHAR), 'granted_on=' || CAST(granted_on AS VARCHAR)) AS detail \
                 FROM patent WHERE date_part('year', {date}) = {year} AND application_no IN \
                 (SELECT application_no FROM patent_applicant WHERE uscc IN ({members}))"
            ));
        }
        _ => return None,
    };
    let parts: Vec<String> = detail
        .split(", ")
        .map(|c| format!("'{c}=' || COALESCE(CAST({c} AS VARCHAR), '')"))
        .collect();
    Some(format!(
        "SELECT '{table}' AS source_table, source_file, source_row, uscc, \
         concat_ws('; ', {}) AS detail FROM {table} WHERE uscc IN ({members}) AND {filter}",
        parts.join(", ")
    ))
}

/// Explains `mart.column` at a key (values in the order of the mart's key).
pub async fn explain(
    session: &Session,
    steps: &[crate::docs::Step],
    mart: &str,
    column: &str,
    key: &[String],
) -> Result<Explained> {
    let mart = ident(mart)?;
    let column = ident(column)?;
    let derived = schema::derived_labels().tables.get(mart).ok_or_else(|| {
        Error::Config(format!(
            "{mart} is not a mart (townstat docs lists them, with their keys)"
        ))
    })?;
    if key.len() != derived.key.len() {
        return Err(Error::Config(format!(
            "{mart} is keyed by ({}): give {} value{}",
            derived.key.join(", "),
            derived.key.len(),
            if derived.key.len() == 1 { "" } else { "s" }
        )));
    }
    let q = |e: townstat_query::Error| Error::Query(e);
    let provider = session
        .ctx
        .table_provider(mart)
        .await
        .map_err(|e| Error::Config(format!("{mart}: {e}")))?;
    if provider.schema().index_of(column).is_err() {
        return Err(Error::Config(format!("{mart} has no column {column}")));
    }
    let conditions: Vec<String> = derived
        .key
        .iter()
        .zip(key)
        .map(|(k, v)| format!("CAST({k} AS VARCHAR) = {}", literal(v)))
        .collect();
    let title = format!(
        "{mart}.{column} for {}",
        derived
            .key
            .iter()
            .zip(key)
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let found = session
        .query(&format!(
            "SELECT CAST({column} AS VARCHAR) AS v FROM {mart} WHERE {}",
            conditions.join(" AND ")
        ))
        .await
        .map_err(q)?;
    let rows: usize = found.iter().map(|b| b.num_rows()).sum();
    if rows != 1 {
        return Err(Error::Config(format!(
            "{title}: {rows} rows (the key names no published row)"
        )));
    }
    let mut value = String::new();
    if let Some(b) = found.iter().find(|b| b.num_rows() == 1) {
        let a = townstat_warehouse::text_column(b, 0)?;
        value = if a.is_valid(0) {
            a.value(0).to_string()
        } else {
            "null".to_string()
        };
    }
    let glossary = schema::definition(column);
    let mut definition = vec![];
    if let Some(label) = schema::column_label(mart, column) {
        definition.push(label.to_string());
    }
    if let Some(d) = glossary.filter(|d| !d.unit.is_empty()) {
        definition.push(format!("单位 unit: {}", d.unit));
    }
    if let Some(d) = glossary {
        definition.push(d.definition.clone());
    }

    // The SQL steps upstream of the mart, in build order.
    let mut up = BTreeSet::new();
    let mut todo = vec![mart.to_string()];
    while let Some(n) = todo.pop() {
        if let Some(s) = steps.iter().find(|s| s.name == n) {
            for r in &s.reads {
                if up.insert(r.clone()) {
                    todo.push(r.clone());
                }
            }
        }
    }
    // A step's title: the first line of its SQL header.
    let summary = |sql: &str| -> String {
        crate::docs::header_comment(sql)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let step_list: Vec<(String, String, String)> = steps
        .iter()
        .filter(|s| up.contains(s.name) || s.name == mart)
        .map(|s| (s.layer.to_string(), s.name.to_string(), summary(&s.sql)))
        .collect();

    // Members: through the drill-down, for marts keyed by town and year.
    let town = derived
        .key
        .iter()
        .position(|k| k == "town_id")
        .map(|i| key[i].clone());
    let year = derived
        .key
        .iter()
        .position(|k| k == "year")
        .map(|i| key[i].clone());
    let (Some(town), Some(year)) = (town, year) else {
        return Err(Error::Config(format!(
            "{mart} is not keyed by town_id and year: members are stored for towns only \
             (town_member_year); query the source tables with townstat sql"
        )));
    };
    let year: i64 = year
        .parse()
        .map_err(|_| Error::Config(format!("year {year:?} is not a year")))?;
    let drill = session
        .ctx
        .table_provider("town_member_year")
        .await
        .map_err(|e| Error::Config(format!("town_member_year: {e}")))?
        .schema();
    let mut parts: Vec<String> = glossary.map(|d| d.parts.clone()).unwrap_or_default();
    if parts.is_empty() {
        parts.push(column.to_string());
    }
    parts.retain(|p| drill.index_of(p).is_ok());
    let base = format!(
        "FROM town_member_year WHERE town_id = {} AND year = {year}",
        literal(&town)
    );
    let (member_title, member_sql) = if parts.is_empty() {
        (
            format!("every member of {town} in {year} (the drill-down does not carry {column})"),
            format!("SELECT uscc, name, basis {base} ORDER BY uscc"),
        )
    } else {
        let nonzero: Vec<String> = parts
            .iter()
            .map(|p| format!("COALESCE({p} <> 0, false)"))
            .collect();
        (
            format!(
                "members of {town} in {year} with a non-zero {} (town_member_year)",
                parts.join(" or ")
            ),
            format!(
                "SELECT uscc, name, basis, {} {base} AND ({}) ORDER BY uscc",
                parts.join(", "),
                nonzero.join(" OR ")
            ),
        )
    };
    let members = session.query(&member_sql).await.map_err(q)?;
    let mut usccs = vec![];
    for b in &members {
        let u = townstat_warehouse::text_column(b, 0)?;
        for i in 0..b.num_rows() {
            usccs.push(literal(u.value(i)));
        }
    }
    let mut sources = vec![];
    if !usccs.is_empty() {
        let list = usccs.join(", ");
        let tables: Vec<String> = glossary.map(|d| d.sources.clone()).unwrap_or_default();
        let mut selects = vec![];
        for t in &tables {
            if let Some(s) = source_rows_sql(t, year, &list, column) {
                selects.push(s);
            }
        }
        if !selects.is_empty() {
            let sql = format!(
                "SELECT * FROM ({}) ORDER BY source_table, source_file, source_row",
                selects.join(" UNION ALL ")
            );
            sources = session.query(&sql).await.map_err(q)?;
        }
    }
    Ok(Explained {
        title,
        value,
        definition,
        steps: step_list,
        members: (member_title, members),
        sources,
    })
}
