//! The reference tables every run republishes: GB/T 4754-2017 (`industry_code`),
//! Datong's divisions (`division`), the town registry (`town`) and its rosters
//! (`town_roster`). They are small and replaced whole.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, Int32Builder, ListBuilder, StringBuilder};
use arrow::record_batch::RecordBatch;
use townstat_domain::division::Divisions;
use townstat_domain::industry::Industries;
use townstat_domain::town::Town;
use townstat_ingest::arrow_out::{catalog_batch, strings};

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
