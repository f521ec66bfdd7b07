//! The synthetic city: reference tables (towns, counties, townships, industry classes)
//! and the enterprises every record kind refers to. Only small per-enterprise state is
//! kept here (identity, place, industry, dates, a revenue scale and how many records of
//! each kind it has); the records themselves are generated while files are written.

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};
use rand::{Rng, SeedableRng};
use townstat_domain::division::Divisions;
use townstat_domain::industry::Industries;

use crate::names;
use crate::value::{R, date_between, period_end, pick, ymd};

const TOWNSHIPS_CSV: &str =
    include_str!("../../../sample-data/reference/datong_towns_townships.csv");

/// One town of the sample registry (indicators.md §5b), with the 2025 revenue the
/// generator aims its members at, so that towns land in different scale tiers.
#[derive(Debug, Clone, Copy)]
pub struct TownDef {
    /// Stable identifier.
    pub id: &'static str,
    /// Chinese name.
    pub name: &'static str,
    /// County code.
    pub county: &'static str,
    /// GB/T 4754 prefixes.
    pub codes: &'static [&'static str],
    /// `city` or `provincial`.
    pub level: &'static str,
    /// Designation year.
    pub year: i32,
    /// Tier target label.
    pub tier: &'static str,
    /// Aimed 2025 revenue of the reporting members, in 亿元.
    pub total_yi: f64,
}

/// The ten sample towns.
pub const TOWNS: [TownDef; 10] = [
    TownDef {
        id: "yunzhou_daylily",
        name: "云州大同黄花专业镇",
        county: "140215",
        codes: &["0141", "1371"],
        level: "provincial",
        year: 2022,
        tier: "20亿级",
        total_yi: 24.0,
    },
    TownDef {
        id: "jingkai_pharma",
        name: "经开区医药专业镇",
        county: "140271",
        codes: &["27"],
        level: "provincial",
        year: 2023,
        tier: "50亿级",
        total_yi: 62.0,
    },
    TownDef {
        id: "pingcheng_rail",
        name: "平城轨道交通专业镇",
        county: "140213",
        codes: &["3711", "3712", "3714", "3715", "3716", "3719", "4341"],
        level: "provincial",
        year: 2023,
        tier: "100亿级",
        total_yi: 215.0,
    },
    TownDef {
        id: "yungang_coal_machinery",
        name: "云冈智能煤机专业镇",
        county: "140214",
        codes: &["3511"],
        level: "city",
        year: 2023,
        tier: "50亿级",
        total_yi: 46.0,
    },
    TownDef {
        id: "xinrong_graphite",
        name: "新荣石墨碳素专业镇",
        county: "140212",
        codes: &["3091", "1092"],
        level: "city",
        year: 2023,
        tier: "20亿级",
        total_yi: 23.0,
    },
    TownDef {
        id: "guangling_recycled_metal",
        name: "广灵再生金属专业镇",
        county: "140223",
        codes: &["4210", "5191"],
        level: "city",
        year: 2023,
        tier: "10亿级",
        total_yi: 13.0,
    },
    TownDef {
        id: "yunzhou_paper",
        name: "云州纸业专业镇",
        county: "140215",
        codes: &["222", "223"],
        level: "city",
        year: 2023,
        tier: "5亿级",
        total_yi: 6.5,
    },
    TownDef {
        id: "hunyuan_astragalus",
        name: "浑源黄芪专业镇",
        county: "140225",
        codes: &["0171", "2730"],
        level: "city",
        year: 2023,
        tier: "10亿级",
        total_yi: 8.5,
    },
    TownDef {
        id: "zuoyun_activated_carbon",
        name: "左云活性炭专业镇",
        county: "140226",
        codes: &["2529", "2663"],
        level: "city",
        year: 2023,
        tier: "10亿级",
        total_yi: 11.5,
    },
    TownDef {
        id: "datong_data_services",
        name: "大同数据服务专业镇",
        county: "140271",
        codes: &["6450", "6550"],
        level: "city",
        year: 2024,
        tier: "5亿级",
        total_yi: 5.4,
    },
];

/// An industry class.
#[derive(Debug, Clone)]
pub struct Class {
    /// 4-digit code.
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// Section letter.
    pub section: String,
}

/// Reference tables.
pub struct Refs {
    /// GB/T 4754-2017 (for spellings and prefix matching).
    pub industries: Industries,
    /// Datong's divisions (also the oracle for addresses).
    pub divisions: Divisions,
    /// Every class.
    pub classes: Vec<Class>,
    /// Indices into `classes` under each town's prefixes.
    pub town_classes: Vec<Vec<usize>>,
    /// Current counties: code and name.
    pub counties: Vec<(String, String)>,
    /// Townships: code, name, county code.
    pub townships: Vec<(String, String, String)>,
}

impl Refs {
    fn load() -> Refs {
        let industries = Industries::gbt4754_2017();
        let divisions = Divisions::datong();
        let classes: Vec<Class> = industries
            .rows()
            .iter()
            .filter(|r| r.level == "class")
            .map(|r| Class {
                code: r.code.clone(),
                name: r.name.clone(),
                section: r.section.clone(),
            })
            .collect();
        let town_classes = TOWNS
            .iter()
            .map(|t| {
                classes
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        t.codes
                            .iter()
                            .any(|p| industries.matches_prefix(&c.code, p))
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let counties = divisions
            .rows()
            .iter()
            .filter(|d| d.level == "county")
            .map(|d| (d.code.clone(), d.name.clone()))
            .collect();
        let townships = TOWNSHIPS_CSV
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.len() == 3 && !f[1].contains("乡级单位") && f[0].starts_with(f[2]))
                    .then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
            })
            .collect();
        Refs {
            industries,
            divisions,
            classes,
            town_classes,
            counties,
            townships,
        }
    }

    /// The name of a current county code.
    pub fn county_name(&self, code: &str) -> &str {
        self.counties
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, n)| n.as_str())
            .unwrap_or("")
    }

    /// The town an enterprise belongs to by the rules (county and industry prefix).
    pub fn town_of(&self, county: &str, class: &str) -> Option<usize> {
        TOWNS.iter().position(|t| {
            t.county == county
                && t.codes
                    .iter()
                    .any(|p| self.industries.matches_prefix(class, p))
        })
    }
}

/// How an enterprise's division is written in its registry row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Div {
    /// The current six-digit code.
    Current,
    /// A 9-digit township code (index into `townships`).
    Township9(usize),
    /// A 12-digit code: township plus zeros.
    Township12(usize),
    /// A legacy code that maps forward without a warning.
    Legacy(&'static str),
    /// 140211 南郊区: warning `legacy_division_split`.
    LegacySplit,
    /// Missing; the address names the county: warning `division_from_address`.
    FromAddress,
    /// Missing; the address names 南郊区: both warnings.
    Nanjiao,
}

/// The registration status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 存续/在业.
    Active,
    /// 注销.
    Deregistered,
    /// 吊销.
    Revoked,
    /// 迁出.
    MovedOut,
}

impl Status {
    /// The canonical value.
    pub fn canonical(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Deregistered => "deregistered",
            Status::Revoked => "revoked",
            Status::MovedOut => "moved_out",
        }
    }
}

/// One enterprise of the registry.
#[derive(Debug, Clone)]
pub struct Ent {
    /// USCC.
    pub uscc: String,
    /// Canonical (normalized) name.
    pub name: String,
    /// 1 enterprise, 2 individual business, 3 cooperative.
    pub kind: u8,
    /// Current county code.
    pub county: String,
    /// Town by the rules, if any.
    pub town: Option<usize>,
    /// 4-digit industry class.
    pub industry: String,
    /// Established.
    pub established: NaiveDate,
    /// Deregistered or revoked on.
    pub deregistered: Option<NaiveDate>,
    /// Status.
    pub status: Status,
    /// How the division is written.
    pub div: Div,
    /// Registered capital in cents.
    pub capital: Option<i128>,
    /// The name is shared with another enterprise on purpose.
    pub shared_name: bool,
    /// 2025 revenue scale in cents.
    pub revenue: i128,
    /// Typical head count.
    pub employees: i64,
    /// Files annual returns.
    pub annual: bool,
    /// Files monthly social-insurance returns.
    pub employment: bool,
    /// Number of designations.
    pub n_desig: u8,
    /// Number of patents.
    pub n_patents: u8,
    /// Number of financing deals.
    pub n_deals: u8,
}

impl Ent {
    /// Whether the enterprise existed during (part of) a year.
    pub fn exists_in(&self, year: i32) -> bool {
        self.established.year() <= year && self.deregistered.is_none_or(|d| d.year() > year)
    }

    /// The last day it existed within the data period.
    pub fn last_day(&self) -> NaiveDate {
        self.deregistered.unwrap_or(period_end()).min(period_end())
    }

    /// Whether the row references may use its name alone.
    pub fn name_links(&self) -> bool {
        !self.shared_name
    }
}

/// The whole synthetic city.
pub struct World {
    /// Reference tables.
    pub refs: Refs,
    /// The registry, in file order.
    pub ents: Vec<Ent>,
    /// Enterprises outside the registry for injected registry rows.
    pub fresh: Vec<Ent>,
    /// Valid USCCs no registry row has (orphan references).
    pub orphan_usccs: Vec<String>,
    /// Names no registry row has.
    pub unknown_names: Vec<String>,
    /// Names two registry rows share (ambiguous references).
    pub shared_names: Vec<String>,
}

struct Uniq {
    usccs: HashSet<String>,
    names: HashSet<String>,
}

fn make_uscc(rng: &mut R, kind: u8, est: NaiveDate, uniq: &mut Uniq) -> String {
    const ALPHA: &[u8] = townstat_domain::uscc::ALPHABET;
    loop {
        let auth = if est.year() < 2018 {
            *pick(
                rng,
                &[
                    "140200", "140202", "140203", "140211", "140227", "140212", "140221", "140222",
                    "140223", "140224", "140225", "140226",
                ],
            )
        } else {
            *pick(
                rng,
                &[
                    "140200", "140212", "140213", "140214", "140215", "140221", "140222", "140223",
                    "140224", "140225", "140226", "140271",
                ],
            )
        };
        let org: String = if est < ymd(2015, 10, 1) {
            let mut s: String = (0..8)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect();
            s.push(if rng.random_bool(0.1) {
                'X'
            } else {
                char::from(b'0' + rng.random_range(0..10u8))
            });
            s
        } else {
            let mut s = String::from("MA");
            s.extend((0..7).map(|_| char::from(ALPHA[rng.random_range(0..ALPHA.len())])));
            s
        };
        let Some(code) = townstat_domain::uscc::with_check(&format!("9{kind}{auth}{org}")) else {
            continue;
        };
        if uniq.usccs.insert(code.clone()) {
            return code;
        }
    }
}

fn unique_name(uniq: &mut Uniq, mut make: impl FnMut(u32) -> String) -> String {
    for attempt in 0.. {
        let n = make(attempt);
        if uniq.names.insert(n.clone()) {
            return n;
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Established dates lean towards recent years, as registries do.
fn established(rng: &mut R) -> NaiveDate {
    let u: f64 = rng.random();
    let year = 1995 + (31.0 * u.sqrt()).floor().min(30.0) as i32;
    date_between(rng, ymd(year, 1, 1), ymd(year, 12, 31))
}

impl World {
    /// Builds the city for a scale (1.0 ≈ 3,000 enterprises) from a seed.
    pub fn build(scale: f64, seed: u64) -> World {
        let mut rng = R::seed_from_u64(seed);
        rng.set_stream(0);
        let refs = Refs::load();
        let mut uniq = Uniq {
            usccs: HashSet::new(),
            names: HashSet::new(),
        };
        let n = ((3000.0 * scale).round() as usize).max(20);
        let mut ents = Vec::with_capacity(n);
        let mut forced = [false; 3];
        for _ in 0..n {
            let mut e = Self::enterprise(&mut rng, &refs, &mut uniq, None);
            // Make sure every division warning occurs at least once, even at small scale.
            if e.div == Div::Current && e.kind == 1 {
                if e.county == "140214" && !forced[0] {
                    e.div = Div::LegacySplit;
                    forced[0] = true;
                } else if e.county == "140214" && !forced[1] {
                    e.div = Div::Nanjiao;
                    forced[1] = true;
                } else if !forced[2] {
                    e.div = Div::FromAddress;
                    forced[2] = true;
                }
            }
            ents.push(e);
        }
        // Two pairs of enterprises share a name on purpose (ambiguous references).
        let mut shared_names = vec![];
        let firms: Vec<usize> = (0..ents.len()).filter(|&i| ents[i].kind == 1).collect();
        for k in 0..2 {
            let (Some(&a), Some(&b)) = (firms.get(3 + 4 * k), firms.get(5 + 4 * k)) else {
                break;
            };
            let name = ents[a].name.clone();
            ents[b].name = name.clone();
            ents[a].shared_name = true;
            ents[b].shared_name = true;
            shared_names.push(name);
        }
        Self::revenues(&mut rng, &mut ents);
        let fresh_n = (n / 10).max(80);
        let fresh = (0..fresh_n)
            .map(|_| Self::enterprise(&mut rng, &refs, &mut uniq, Some(1)))
            .collect();
        let orphan_usccs = (0..32)
            .map(|_| {
                let est = established(&mut rng);
                make_uscc(&mut rng, 1, est, &mut uniq)
            })
            .collect();
        let unknown_names = (0..16)
            .map(|_| {
                let class = pick(&mut rng, &refs.classes).name.clone();
                unique_name(&mut uniq, |a| names::company(&mut rng, &class, a))
            })
            .collect();
        World {
            refs,
            ents,
            fresh,
            orphan_usccs,
            unknown_names,
            shared_names,
        }
    }

    /// One enterprise; `only_kind` forces the kind and a plain, clean registry row
    /// (for injected rows).
    fn enterprise(rng: &mut R, refs: &Refs, uniq: &mut Uniq, only_kind: Option<u8>) -> Ent {
        let kind = only_kind.unwrap_or_else(|| match rng.random::<f64>() {
            u if u < 0.85 => 1,
            u if u < 0.95 => 2,
            _ => 3,
        });
        let est = established(rng);
        let county_idx = rng.random_range(0..refs.counties.len());
        let (county, class) = match kind {
            1 if rng.random_bool(0.62) => {
                let t = rng.random_range(0..TOWNS.len());
                let c = *pick(rng, &refs.town_classes[t]);
                (TOWNS[t].county.to_string(), c)
            }
            1 => {
                let c = rng.random_range(0..refs.classes.len());
                (refs.counties[county_idx].0.clone(), c)
            }
            2 => {
                let pool: Vec<usize> = (0..refs.classes.len())
                    .filter(|&i| matches!(refs.classes[i].section.as_str(), "F" | "H" | "O"))
                    .collect();
                (refs.counties[county_idx].0.clone(), *pick(rng, &pool))
            }
            _ => {
                if rng.random_bool(0.5) {
                    let t = *pick(rng, &[0usize, 7]);
                    let c = *pick(rng, &refs.town_classes[t]);
                    let c = if refs.classes[c].section == "A" {
                        c
                    } else {
                        refs.town_classes[t][0]
                    };
                    (TOWNS[t].county.to_string(), c)
                } else {
                    let pool: Vec<usize> = (0..refs.classes.len())
                        .filter(|&i| refs.classes[i].section == "A")
                        .collect();
                    (refs.counties[county_idx].0.clone(), *pick(rng, &pool))
                }
            }
        };
        let class_name = refs.classes[class].name.clone();
        let county_name = refs.county_name(&county).to_string();
        let name = unique_name(uniq, |a| match kind {
            1 => names::company(rng, &class_name, a),
            2 => names::individual(rng, &county_name, a),
            _ => names::cooperative(rng, &county_name, &class_name, a),
        });
        let uscc = make_uscc(rng, kind, est, uniq);
        let plain = only_kind.is_some();
        let deregistered = (!plain && rng.random_bool(0.08))
            .then(|| est + chrono::Days::new(60))
            .filter(|d| *d < period_end())
            .map(|from| date_between(rng, from, period_end()));
        let status = match deregistered {
            Some(_) if rng.random_bool(0.8) => Status::Deregistered,
            Some(_) => Status::Revoked,
            None if !plain && rng.random_bool(0.03) => Status::MovedOut,
            None => Status::Active,
        };
        let div = if plain {
            Div::Current
        } else {
            Self::div(rng, refs, &county)
        };
        let capital = match kind {
            1 => Some((rng.random_range(3.9f64..10.8).exp().round() as i128).max(1) * 1_000_000),
            2 => rng
                .random_bool(0.7)
                .then(|| rng.random_range(1..50i128) * 1_000_000),
            _ => Some(rng.random_range(10..500i128) * 1_000_000),
        };
        let industry = refs.classes[class].code.clone();
        Ent {
            town: refs.town_of(&county, &industry),
            uscc,
            name,
            kind,
            county,
            industry,
            established: est,
            deregistered,
            status,
            div,
            capital,
            shared_name: false,
            revenue: 0,
            employees: 1,
            annual: false,
            employment: false,
            n_desig: 0,
            n_patents: 0,
            n_deals: 0,
        }
    }

    fn div(rng: &mut R, refs: &Refs, county: &str) -> Div {
        let townships: Vec<usize> = (0..refs.townships.len())
            .filter(|&i| refs.townships[i].2 == county)
            .collect();
        let u: f64 = rng.random();
        match county {
            "140214" if u < 0.02 => return Div::LegacySplit,
            "140214" if u < 0.03 => return Div::Nanjiao,
            "140213" if u < 0.08 => return Div::Legacy("140202"),
            "140214" if u < 0.08 => return Div::Legacy("140203"),
            "140215" if u < 0.08 => return Div::Legacy("140227"),
            _ => {}
        }
        if u > 0.97 {
            Div::FromAddress
        } else if u > 0.88 && !townships.is_empty() {
            Div::Township9(*pick(rng, &townships))
        } else if u > 0.84 && !townships.is_empty() {
            Div::Township12(*pick(rng, &townships))
        } else {
            Div::Current
        }
    }

    /// Revenue scales, head counts and how many records of each kind an enterprise has.
    fn revenues(rng: &mut R, ents: &mut [Ent]) {
        let mut weights = vec![0.0f64; ents.len()];
        let mut sums = [0.0f64; TOWNS.len()];
        for (i, e) in ents.iter_mut().enumerate() {
            let reports = e.kind == 1 && (2018..=2025).any(|y| e.exists_in(y));
            e.annual = reports && rng.random_bool(0.7);
            e.employment = (2019..=2025).any(|y| e.exists_in(y)) && rng.random_bool(0.4);
            if e.kind == 1 {
                e.n_desig = match rng.random::<f64>() {
                    u if u < 0.08 => 2,
                    u if u < 0.26 => 1,
                    _ => 0,
                };
                let p = if e.town.is_some() { 0.35 } else { 0.18 };
                e.n_patents = if rng.random_bool(p) {
                    rng.random_range(1..=6)
                } else {
                    0
                };
                e.n_deals = if rng.random_bool(0.13) {
                    rng.random_range(1..=3)
                } else {
                    0
                };
            } else if e.kind == 3 && rng.random_bool(0.04) {
                e.n_patents = 1;
            }
            match e.town {
                Some(t) if e.kind == 1 => {
                    // A few big firms per town, many small ones.
                    let u: f64 = rng.random_range(0.02..1.0);
                    let w = u.powf(-1.3);
                    weights[i] = w;
                    if e.annual && e.exists_in(2025) {
                        sums[t] += w;
                    }
                }
                _ => {
                    let yuan = rng.random_range(15.0f64..19.8).exp();
                    e.revenue = (yuan / 100.0).round() as i128 * 100 * 100;
                }
            }
        }
        for (i, e) in ents.iter_mut().enumerate() {
            if let Some(t) = e.town
                && e.kind == 1
            {
                let share = if sums[t] > 0.0 {
                    weights[i] / sums[t]
                } else {
                    0.1
                };
                let yuan = TOWNS[t].total_yi * 1e8 * share.min(0.6);
                e.revenue = ((yuan / 100.0).round() as i128).max(10_000) * 100 * 100;
            }
            let yuan = (e.revenue / 100) as f64;
            e.employees = match e.kind {
                1 => ((yuan / rng.random_range(300_000.0..800_000.0)) as i64
                    + rng.random_range(3..12))
                .min(20_000),
                2 => rng.random_range(1..8),
                _ => rng.random_range(3..30),
            };
        }
    }
}

/// An address in the enterprise's county: `山西省大同市平城区魏都大道128号`, sometimes
/// with a township and a building part after a space.
pub fn address(rng: &mut R, refs: &Refs, county: &str, with_township: bool) -> String {
    const ROADS: &[&str] = &[
        "魏都大道",
        "御河西路",
        "迎宾街",
        "文瀛湖路",
        "同泉路",
        "兴云街",
        "永泰南路",
        "开源街",
        "北都街",
        "恒安街",
        "和阳街",
        "新建南路",
        "振华南街",
        "东信大道",
        "云冈大道",
        "柳航路",
    ];
    let mut s = if county == "140271" {
        String::from(refs.county_name(county))
    } else {
        format!("山西省大同市{}", refs.county_name(county))
    };
    if with_township {
        let options: Vec<&(String, String, String)> =
            refs.townships.iter().filter(|t| t.2 == county).collect();
        if !options.is_empty() {
            s.push_str(&pick(rng, &options).1);
        }
    }
    s.push_str(pick::<&str>(rng, ROADS));
    s.push_str(&format!("{}号", rng.random_range(1..400)));
    if rng.random_bool(0.3) {
        s.push_str(&format!(
            " {}号楼{}室",
            rng.random_range(1..20),
            rng.random_range(101..1800)
        ));
    }
    s
}
