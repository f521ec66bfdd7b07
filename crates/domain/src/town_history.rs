//! The designation history of the towns (评定、晋级、动态调整): dated events of the
//! registry — 申报 applied, 认定 designated, 晋级 upgraded, 摘牌/退出 withdrawn — kept
//! as a type-2 history (`town_history`), so that every year's figures use the registry
//! as it stood at Y-12-31 rather than today's.
//!
//! The events file is optional. A town without events keeps the registry's own
//! columns: designated from 1 January of `designated_year` at its `level` (the registry
//! CSV of earlier releases loads unchanged). A town with events takes its history from
//! them; its `designated_year` and `level` in the registry must then agree with its
//! first designation (the year and the level it was designated at: the registry
//! records how a town entered the programme, the events what happened since), so the
//! two files cannot tell different stories.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate};

use crate::error::{Error, Result};
use crate::town::Town;

/// What happened to a town on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// 申报: the county applied; not designated yet.
    Applied,
    /// 认定: designated at a level.
    Designated,
    /// 晋级: a designated town moves up a level (city → provincial).
    Upgraded,
    /// 摘牌 / 退出: the designation is withdrawn.
    Withdrawn,
}

impl Event {
    /// The name stored in `town_history.event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Applied => "applied",
            Event::Designated => "designated",
            Event::Upgraded => "upgraded",
            Event::Withdrawn => "withdrawn",
        }
    }

    /// Parses an English or Chinese event name.
    pub fn parse(s: &str) -> Option<Event> {
        match s {
            "applied" | "申报" => Some(Event::Applied),
            "designated" | "认定" => Some(Event::Designated),
            "upgraded" | "晋级" => Some(Event::Upgraded),
            "withdrawn" | "摘牌" | "退出" => Some(Event::Withdrawn),
            _ => None,
        }
    }
}

/// The levels of designation, lowest first.
pub const LEVELS: [&str; 2] = ["city", "provincial"];

fn level(s: &str) -> Option<&'static str> {
    match s {
        "city" | "市级" => Some("city"),
        "provincial" | "省级" => Some("provincial"),
        _ => None,
    }
}

fn rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

/// One row of the events file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TownEvent {
    /// The town (`town_id` of the registry).
    pub town_id: String,
    /// What happened.
    pub event: Event,
    /// The level applied for, designated at or upgraded to; for a withdrawal, none.
    pub level: Option<String>,
    /// The day it takes effect.
    pub effective_on: NaiveDate,
    /// The document (文号) that decided it.
    pub document_no: Option<String>,
    /// The file's line (header = 1), for error messages.
    pub line: usize,
}

/// One version of a town's standing: valid from `valid_from` (inclusive) to
/// `valid_to` (exclusive; none for the current version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TownVersion {
    /// The town.
    pub town_id: String,
    /// `applied`, `designated` or `withdrawn`.
    pub status: &'static str,
    /// The level held (or applied for; for a withdrawn town the level it last held).
    pub level: String,
    /// First day of the version.
    pub valid_from: NaiveDate,
    /// First day of the next version, if any.
    pub valid_to: Option<NaiveDate>,
    /// The event that opened the version.
    pub event: Event,
    /// Its document number.
    pub document_no: Option<String>,
    /// `events` when it comes from the events file, `registry` when from the
    /// registry's `designated_year`.
    pub origin: &'static str,
}

const COLUMNS: [&str; 5] = ["town_id", "event", "level", "effective_on", "document_no"];

/// Loads the events CSV (`town_id,event,level,effective_on,document_no`; UTF-8, a BOM
/// is accepted) and checks it against the registry: every town known, every event and
/// level known, each town's events in an order that can happen (applied → designated
/// → upgraded → withdrawn → designated again …). The error names the file and line.
pub fn load_events(path: &Path, towns: &[Town]) -> Result<Vec<TownEvent>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let r = crate::reference_csv::rows(path, &text, &COLUMNS)?;
    let bad = |line: usize, message: String| r.bad(line, message);
    let mut events = vec![];
    for (n, f) in &r.rows {
        let n = *n;
        if !towns.iter().any(|t| t.town_id == f[0]) {
            return Err(bad(n, format!("town_id {:?} is not in the registry", f[0])));
        }
        let event = Event::parse(f[1]).ok_or_else(|| {
            bad(
                n,
                format!(
                    "event {:?} is not applied/申报, designated/认定, upgraded/晋级 or \
                     withdrawn/摘牌/退出",
                    f[1]
                ),
            )
        })?;
        let lvl = match (f[2], event) {
            ("", Event::Withdrawn) => None,
            ("", _) => return Err(bad(n, format!("a {} event needs a level", event.as_str()))),
            (l, _) => Some(
                level(l)
                    .ok_or_else(|| {
                        bad(
                            n,
                            format!("level {l:?} is not city/市级 or provincial/省级"),
                        )
                    })?
                    .to_string(),
            ),
        };
        let effective_on = crate::date::parse_date(f[3])
            .map_err(|e| bad(n, format!("effective_on: {}", e.message)))?;
        events.push(TownEvent {
            town_id: f[0].to_string(),
            event,
            level: lvl,
            effective_on,
            document_no: Some(f[4].to_string()).filter(|d| !d.is_empty()),
            line: n,
        });
    }
    check_order(path, &events)?;
    check_registry(path, towns, &events)?;
    Ok(events)
}

/// Each town's events in date order (the file's order on the same day) must be a
/// sequence that can happen.
fn check_order(path: &Path, events: &[TownEvent]) -> Result<()> {
    for (town, list) in by_town(events) {
        let mut state: Option<(&str, &str)> = None; // (status, level)
        for e in list {
            let bad = |message: String| Error::Reference {
                path: path.to_path_buf(),
                line: e.line,
                message: format!("{town}: {message}"),
            };
            let lvl = e.level.as_deref().unwrap_or("");
            state = Some(match (e.event, state) {
                (Event::Applied, None | Some(("applied" | "withdrawn", _))) => ("applied", lvl),
                (Event::Applied, Some(_)) => {
                    return Err(bad(format!(
                        "applied on {} while designated",
                        e.effective_on
                    )));
                }
                (Event::Designated, None | Some(("applied" | "withdrawn", _))) => {
                    ("designated", lvl)
                }
                (Event::Designated, Some(_)) => {
                    return Err(bad(format!(
                        "designated on {} while already designated (an upgrade is `upgraded`)",
                        e.effective_on
                    )));
                }
                (Event::Upgraded, Some(("designated", held))) if rank(lvl) > rank(held) => {
                    ("designated", lvl)
                }
                (Event::Upgraded, Some(("designated", held))) => {
                    return Err(bad(format!(
                        "upgraded on {} to {lvl}, not above the level it holds ({held})",
                        e.effective_on
                    )));
                }
                (Event::Upgraded, _) => {
                    return Err(bad(format!(
                        "upgraded on {} before it was designated",
                        e.effective_on
                    )));
                }
                (Event::Withdrawn, Some(("designated", held))) => ("withdrawn", held),
                (Event::Withdrawn, _) => {
                    return Err(bad(format!(
                        "withdrawn on {} before it was designated",
                        e.effective_on
                    )));
                }
            });
        }
    }
    Ok(())
}

/// A town with events: its registry row's `designated_year` and `level` are the year
/// and level of its first designation (none for a town never designated).
fn check_registry(path: &Path, towns: &[Town], events: &[TownEvent]) -> Result<()> {
    for (town_id, list) in by_town(events) {
        let Some(town) = towns.iter().find(|t| t.town_id == town_id) else {
            continue;
        };
        let first = list.iter().find(|e| e.event == Event::Designated);
        let bad = |line: usize, message: String| Error::Reference {
            path: path.to_path_buf(),
            line,
            message: format!("{town_id}: {message}"),
        };
        let line = first.or(list.first()).map_or(1, |e| e.line);
        let year = first.map(|e| e.effective_on.year());
        if year != town.designated_year {
            return Err(bad(
                line,
                format!(
                    "the registry says designated_year {}, the first designation event {}",
                    show(town.designated_year),
                    show(year)
                ),
            ));
        }
        if let Some(l) = first
            .and_then(|e| e.level.as_deref())
            .filter(|l| *l != town.level)
        {
            return Err(bad(
                line,
                format!(
                    "the registry says level {}, the first designation event {l}",
                    town.level
                ),
            ));
        }
    }
    Ok(())
}

fn show(year: Option<i32>) -> String {
    year.map_or("none".into(), |y| y.to_string())
}

fn by_town(events: &[TownEvent]) -> BTreeMap<&str, Vec<&TownEvent>> {
    let mut out: BTreeMap<&str, Vec<&TownEvent>> = BTreeMap::new();
    for e in events {
        out.entry(e.town_id.as_str()).or_default().push(e);
    }
    for list in out.values_mut() {
        list.sort_by_key(|e| (e.effective_on, e.line));
    }
    out
}

/// The history of every town: from its events when it has any, else one version from
/// 1 January of `designated_year` (none for a town never designated). Two events of
/// a town on the same day leave the later one's version.
pub fn history(towns: &[Town], events: &[TownEvent]) -> Vec<TownVersion> {
    let grouped = by_town(events);
    let mut out = vec![];
    for t in towns {
        match grouped.get(t.town_id.as_str()) {
            Some(list) => {
                let mut versions: Vec<TownVersion> = vec![];
                let mut held = t.level.clone();
                for e in list {
                    let status = match e.event {
                        Event::Applied => "applied",
                        Event::Designated | Event::Upgraded => "designated",
                        Event::Withdrawn => "withdrawn",
                    };
                    let level = e.level.clone().unwrap_or_else(|| held.clone());
                    if e.event != Event::Applied {
                        held = level.clone();
                    }
                    if let Some(prev) = versions.last_mut() {
                        if prev.valid_from == e.effective_on {
                            versions.pop();
                        } else {
                            prev.valid_to = Some(e.effective_on);
                        }
                    }
                    versions.push(TownVersion {
                        town_id: t.town_id.clone(),
                        status,
                        level,
                        valid_from: e.effective_on,
                        valid_to: None,
                        event: e.event,
                        document_no: e.document_no.clone(),
                        origin: "events",
                    });
                }
                out.extend(versions);
            }
            None => {
                if let Some(from) = t
                    .designated_year
                    .and_then(|y| NaiveDate::from_ymd_opt(y, 1, 1))
                {
                    out.push(TownVersion {
                        town_id: t.town_id.clone(),
                        status: "designated",
                        level: t.level.clone(),
                        valid_from: from,
                        valid_to: None,
                        event: Event::Designated,
                        document_no: None,
                        origin: "registry",
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn town(id: &str, level: &str, year: Option<i32>) -> Town {
        Town {
            town_id: id.into(),
            name: id.into(),
            county_code: "140212".into(),
            industry_codes: vec!["3091".into()],
            level: level.into(),
            designated_year: year,
            tier_target: None,
            roster: None,
        }
    }

    fn load(text: &str, towns: &[Town]) -> Result<Vec<TownEvent>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("town_events.csv");
        std::fs::write(&p, text).expect("write");
        load_events(&p, towns)
    }

    const HEAD: &str = "town_id,event,level,effective_on,document_no\n";

    #[test]
    fn an_upgrade_and_a_withdrawal_make_versions() {
        let towns = [
            town("a", "city", Some(2022)),
            town("b", "city", Some(2022)),
            town("c", "city", Some(2023)),
        ];
        let events = load(
            &format!(
                "{HEAD}a,申报,市级,2021-10-01,\na,认定,city,2022-03-01,同政发〔2022〕1号\n\
                 a,晋级,省级,2024-07-01,晋政办〔2024〕9号\nb,designated,city,2022-01-01,\n\
                 b,摘牌,,2025-03-01,同政发〔2025〕3号\n"
            ),
            &towns,
        )
        .expect("events");
        let h = history(&towns, &events);
        let a: Vec<_> = h
            .iter()
            .filter(|v| v.town_id == "a")
            .map(|v| {
                (
                    v.status,
                    v.level.as_str(),
                    v.valid_from.to_string(),
                    v.valid_to,
                )
            })
            .collect();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        assert_eq!(
            a,
            vec![
                ("applied", "city", "2021-10-01".into(), d("2022-03-01")),
                ("designated", "city", "2022-03-01".into(), d("2024-07-01")),
                ("designated", "provincial", "2024-07-01".into(), None),
            ]
        );
        let b: Vec<_> = h
            .iter()
            .filter(|v| v.town_id == "b")
            .map(|v| (v.status, v.level.as_str()))
            .collect();
        assert_eq!(b, vec![("designated", "city"), ("withdrawn", "city")]);
        // A town without events: designated from 1 January of designated_year.
        let c: Vec<_> = h.iter().filter(|v| v.town_id == "c").collect();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].valid_from, c[0].origin),
            (d("2023-01-01").expect("d"), "registry")
        );
    }

    #[test]
    fn impossible_sequences_name_the_line() {
        let towns = [town("a", "city", Some(2022))];
        let err = |text: &str| {
            load(&format!("{HEAD}{text}"), &towns)
                .expect_err(text)
                .to_string()
        };
        let e = err("a,withdrawn,,2021-05-01,\na,designated,city,2022-01-01,\n");
        assert!(
            e.contains("line 2: a: withdrawn on 2021-05-01 before it was designated"),
            "{e}"
        );
        let e = err("a,designated,city,2022-01-01,\na,upgraded,city,2023-01-01,\n");
        assert!(
            e.contains("line 3") && e.contains("not above the level"),
            "{e}"
        );
        let e = err("a,designated,county,2022-01-01,\n");
        assert!(e.contains("line 2: level \"county\""), "{e}");
        let e = err("a,promoted,city,2022-01-01,\n");
        assert!(e.contains("line 2: event \"promoted\""), "{e}");
        let e = err("z,designated,city,2022-01-01,\n");
        assert!(e.contains("town_id \"z\" is not in the registry"), "{e}");
        let e = err("a,designated,city,2021-01-01,\n");
        assert!(
            e.contains("designated_year 2022, the first designation event 2021"),
            "{e}"
        );
        let e = err("a,designated,provincial,2022-01-01,\n");
        assert!(e.contains("line 2: a: the registry says level city"), "{e}");
        let e = err("a,designated,city,2022-13-01,\n");
        assert!(e.contains("line 2: effective_on"), "{e}");
    }
}
