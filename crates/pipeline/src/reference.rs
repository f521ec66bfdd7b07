//! The reference tables every run republishes: GB/T 4754-2017 (`industry_code`),
//! Datong's divisions (`division`), the town registry (`town`) and its rosters
//! (`town_roster`), the registry's designation history (`town_history`) and the
//! bureau's classification rules (`above_size_rule`, `size_class_rule`). They are
//! small and replaced whole.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Array, Decimal128Array, Int32Builder, Int64Array, ListBuilder,
    StringBuilder,
};
use arrow::record_batch::RecordBatch;
use townstat_domain::division::Divisions;
use townstat_domain::industry::Industries;
use townstat_domain::size_rule::SizeRules;
use townstat_domain::town::Town;
use townstat_domain::town_history::TownVersion;
use townstat_ingest::arrow_out::{catalog_batch, date32, strings};

use crate::error::Result;

fn batch(name: &str, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    Ok(catalog_batch(name, columns)?)
}

/// The `industry_code` table.
pub fn industry_codes() -> Result<RecordBatch> {
    let t = Industries::gbt4754_2017();
    let rows = t.rows();
    batch(
        "industry_code",
        vec![
            strings(rows.iter().map(|r| Some(r.code.as_str()))),
            strings(rows.iter().map(|r| Some(r.name.as_str()))),
            strings(rows.iter().map(|r| Some(r.level.as_str()))),
            strings(
                rows.iter()
                    .map(|r| Some(r.parent_code.as_str()).filter(|p| !p.is_empty())),
            ),
            strings(rows.iter().map(|r| Some(r.section.as_str()))),
        ],
    )
}

/// The `division` table.
pub fn divisions() -> Result<RecordBatch> {
    let d = Divisions::datong();
    let rows = d.rows();
    batch(
        "division",
        vec![
            strings(rows.iter().map(|r| Some(r.code.as_str()))),
            strings(rows.iter().map(|r| Some(r.name.as_str()))),
            strings(rows.iter().map(|r| Some(r.level.as_str()))),
            strings(rows.iter().map(|r| Some(r.parent_code.as_str()))),
        ],
    )
}

/// The `town` table.
pub fn towns(towns: &[Town]) -> Result<RecordBatch> {
    let mut codes = ListBuilder::new(StringBuilder::new());
    let mut years = Int32Builder::new();
    let mut roster = BooleanBuilder::new();
    for t in towns {
        for c in &t.industry_codes {
            codes.values().append_value(c);
        }
        codes.append(true);
        years.append_option(t.designated_year);
        roster.append_value(t.roster.is_some());
    }
    batch(
        "town",
        vec![
            strings(towns.iter().map(|t| Some(t.town_id.as_str()))),
            strings(towns.iter().map(|t| Some(t.name.as_str()))),
            strings(towns.iter().map(|t| Some(t.county_code.as_str()))),
            Arc::new(codes.finish()),
            strings(towns.iter().map(|t| Some(t.level.as_str()))),
            Arc::new(years.finish()),
            strings(towns.iter().map(|t| t.tier_target.as_deref())),
            Arc::new(roster.finish()),
        ],
    )
}

/// The `town_roster` table.
pub fn rosters(towns: &[Town]) -> Result<RecordBatch> {
    let pairs: Vec<(&str, &str)> = towns
        .iter()
        .flat_map(|t| {
            t.roster
                .iter()
                .flatten()
                .map(move |u| (t.town_id.as_str(), u.as_str()))
        })
        .collect();
    batch(
        "town_roster",
        vec![
            strings(pairs.iter().map(|p| Some(p.0))),
            strings(pairs.iter().map(|p| Some(p.1))),
        ],
    )
}

/// The `town_history` table.
pub fn town_history(history: &[TownVersion]) -> Result<RecordBatch> {
    batch(
        "town_history",
        vec![
            strings(history.iter().map(|v| Some(v.town_id.as_str()))),
            strings(history.iter().map(|v| Some(v.status))),
            strings(history.iter().map(|v| Some(v.level.as_str()))),
            Arc::new(Date32Array::from_iter_values(
                history.iter().map(|v| date32(v.valid_from)),
            )),
            Arc::new(Date32Array::from_iter(
                history.iter().map(|v| v.valid_to.map(date32)),
            )),
            strings(history.iter().map(|v| Some(v.event.as_str()))),
            strings(history.iter().map(|v| v.document_no.as_deref())),
            strings(history.iter().map(|v| Some(v.origin))),
        ],
    )
}

/// The `above_size_rule` table: one row per industry prefix.
pub fn above_size_rules(rules: &SizeRules) -> Result<RecordBatch> {
    let t = &rules.thresholds;
    let revenue = Decimal128Array::from_iter(t.iter().map(|r| r.revenue_min_cents))
        .with_precision_and_scale(20, 2)
        .map_err(|e| crate::error::Error::Config(format!("above_size_rule: {e}")))?;
    batch(
        "above_size_rule",
        vec![
            strings(t.iter().map(|r| Some(r.scope.as_str()))),
            strings(t.iter().map(|r| Some(r.category.as_str()))),
            strings(t.iter().map(|r| Some(r.industry_prefix.as_str()))),
            Arc::new(revenue),
            strings(t.iter().map(|r| Some(r.basis.as_str()))),
        ],
    )
}

/// The `size_class_rule` table: one row per industry prefix, indicator and class.
pub fn size_class_rules(rules: &SizeRules) -> Result<RecordBatch> {
    let b = &rules.bands;
    batch(
        "size_class_rule",
        vec![
            strings(b.iter().map(|r| Some(r.sector.as_str()))),
            strings(b.iter().map(|r| Some(r.industry_prefix.as_str()))),
            strings(b.iter().map(|r| Some(r.indicator.as_str()))),
            strings(b.iter().map(|r| Some(r.class.as_str()))),
            Arc::new(Int64Array::from_iter_values(
                b.iter().map(|r| r.class_order),
            )),
            Arc::new(Int64Array::from_iter_values(b.iter().map(|r| r.lower))),
            Arc::new(Int64Array::from_iter(b.iter().map(|r| r.upper))),
            strings(b.iter().map(|r| Some(r.unit.as_str()))),
        ],
    )
}

/// The `declared_kind` table: the kinds the pipeline declared (`kinds = [...]`) with
/// their declarations, so that a process that reads no pipeline (`sql`, `serve`)
/// knows their labels.
pub fn declared_kinds() -> Result<RecordBatch> {
    let kinds = townstat_domain::schema::declared_kind_texts();
    batch(
        "declared_kind",
        vec![
            strings(kinds.iter().map(|(t, _)| Some(t.name.as_str()))),
            strings(kinds.iter().map(|(t, _)| Some(t.label.as_str()))),
            strings(kinds.iter().map(|(_, text)| Some(text.as_str()))),
        ],
    )
}
