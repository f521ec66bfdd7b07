//! The town registry file `towns.csv` (indicators.md §5b), in the format
//! `townstat_domain::town::load_registry` reads.

use std::path::Path;

use crate::error::{Result, io};
use crate::world::TOWNS;

/// Writes `<out>/towns.csv`; returns the number of towns.
pub fn write(out: &Path) -> Result<u64> {
    let mut text = String::from(
        "town_id,name,county_code,industry_codes,level,designated_year,tier_target,roster\n",
    );
    for t in &TOWNS {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},\n",
            t.id,
            t.name,
            t.county,
            t.codes.join(";"),
            t.level,
            t.year,
            t.tier
        ));
    }
    let path = out.join("towns.csv");
    std::fs::write(&path, text).map_err(io(&path))?;
    Ok(TOWNS.len() as u64)
}
