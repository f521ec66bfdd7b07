//! The record kinds: their files (formats, encodings, header spellings), their clean
//! rows and the problems each can be given. Helpers shared by the kinds that reference
//! the registry, and by the ledgers of projects and deals (regions investors come from,
//! firms outside the city, how a town is written), live here.

pub mod annual;
pub mod designation;
pub mod employment;
pub mod enterprise;
pub mod financing;
pub mod investment_deal;
pub mod patent;
pub mod project;
pub mod quality_mark;

use rand::{Rng, SeedableRng};

use crate::emit::Mutation;
use crate::value::{R, Row, V, pick};
use crate::world::{Ent, TOWNS, World};

/// A referencing row's start: the enterprise's USCC and name.
pub fn base(e: &Ent) -> Row {
    Row {
        vals: vec![
            ("uscc", V::Code(e.uscc.clone())),
            ("ref_name", V::Text(e.name.clone())),
        ],
        name_ok: e.name_links(),
        ..Row::default()
    }
}

/// A USCC that fails the check: the known invalid example, or the row's own code with
/// another check character.
pub fn bad_uscc(row: &Row, rng: &mut R) -> String {
    match row.get("uscc") {
        V::Code(code) if rng.random_bool(0.6) => {
            let alphabet = townstat_domain::uscc::ALPHABET;
            let last = code.as_bytes()[17];
            let pos = alphabet.iter().position(|&a| a == last).unwrap_or(0);
            let other = alphabet[(pos + 1 + rng.random_range(0..29)) % 31] as char;
            format!("{}{other}", &code[..17])
        }
        _ => "91350211M00013FA1N".to_string(),
    }
}

fn set_bad_uscc(r: &mut Row, _w: &World, rng: &mut R) {
    let bad = bad_uscc(r, rng);
    r.set("uscc", V::Raw(bad));
}

fn set_orphan_uscc(r: &mut Row, w: &World, rng: &mut R) {
    r.set("uscc", V::Code(pick(rng, &w.orphan_usccs).clone()));
}

fn set_orphan_name(r: &mut Row, w: &World, rng: &mut R) {
    r.set("uscc", V::Null);
    r.set("ref_name", V::Text(pick(rng, &w.unknown_names).clone()));
}

fn set_ambiguous_name(r: &mut Row, w: &World, rng: &mut R) {
    r.set("uscc", V::Null);
    r.set("ref_name", V::Text(pick(rng, &w.shared_names).clone()));
}

/// Problems every referencing kind can have in its USCC or name.
pub fn reference_mutations() -> Vec<Mutation> {
    vec![
        Mutation {
            codes: &["invalid_uscc"],
            needs: &[],
            apply: set_bad_uscc,
        },
        Mutation {
            codes: &["orphan_reference"],
            needs: &[],
            apply: set_orphan_uscc,
        },
        Mutation {
            codes: &["orphan_reference"],
            needs: &["ref_name"],
            apply: set_orphan_name,
        },
        Mutation {
            codes: &["ambiguous_reference"],
            needs: &["ref_name"],
            apply: set_ambiguous_name,
        },
    ]
}

/// Money rounded to 100 元 (cents), at least 100 元.
pub fn round_money(yuan: f64) -> i128 {
    ((yuan / 100.0).round() as i128).max(1) * 100 * 100
}

/// A generator of its own for one enterprise and purpose, seeded from its USCC: what
/// two kinds must agree on (an enterprise's projects, which the deal ledger refers to)
/// and what a kind must count before writing (its row estimate) is drawn from it, so
/// neither depends on the order or the stream of another kind.
pub fn own_rng(e: &Ent, purpose: &str) -> R {
    // FNV-1a over the code and the purpose.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in e.uscc.bytes().chain([b'|']).chain(purpose.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    R::seed_from_u64(h)
}

/// A region investors come from (GB/T 2260): the province's full and short names,
/// the city (empty for a municipality) and the city's (or municipality's) code.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    /// 浙江省.
    pub province: &'static str,
    /// 浙江.
    pub short: &'static str,
    /// 杭州市.
    pub city: &'static str,
    /// 330100.
    pub code: &'static str,
}

const fn region(
    province: &'static str,
    short: &'static str,
    city: &'static str,
    code: &'static str,
) -> Region {
    Region {
        province,
        short,
        city,
        code,
    }
}

/// Regions outside Shanxi, then Shanxi's other cities (the last four).
pub const REGIONS: &[Region] = &[
    region("浙江省", "浙江", "杭州市", "330100"),
    region("浙江省", "浙江", "宁波市", "330200"),
    region("江苏省", "江苏", "苏州市", "320500"),
    region("江苏省", "江苏", "无锡市", "320200"),
    region("广东省", "广东", "深圳市", "440300"),
    region("广东省", "广东", "广州市", "440100"),
    region("北京市", "北京", "", "110000"),
    region("上海市", "上海", "", "310000"),
    region("天津市", "天津", "", "120000"),
    region("山东省", "山东", "青岛市", "370200"),
    region("山东省", "山东", "济南市", "370100"),
    region("河北省", "河北", "石家庄市", "130100"),
    region("河北省", "河北", "张家口市", "130700"),
    region("河南省", "河南", "郑州市", "410100"),
    region("内蒙古自治区", "内蒙古", "呼和浩特市", "150100"),
    region("内蒙古自治区", "内蒙古", "鄂尔多斯市", "150600"),
    region("福建省", "福建", "厦门市", "350200"),
    region("湖北省", "湖北", "武汉市", "420100"),
    region("四川省", "四川", "成都市", "510100"),
    region("陕西省", "陕西", "西安市", "610100"),
    region("山西省", "山西", "太原市", "140100"),
    region("山西省", "山西", "朔州市", "140600"),
    region("山西省", "山西", "晋中市", "140700"),
    region("山西省", "山西", "忻州市", "140900"),
];

/// How many of [`REGIONS`] lie outside Shanxi (they come first).
pub const OUTSIDE_SHANXI: usize = REGIONS.len() - 4;

/// An investor from outside the city: a registered firm of a region, with a valid
/// USCC issued there (so never one of the registry's, which are all 1402…).
#[derive(Debug, Clone)]
pub struct Outsider {
    /// Index into [`REGIONS`].
    pub region: usize,
    /// 杭州恒泰新材料股份有限公司.
    pub name: String,
    /// Its USCC.
    pub uscc: String,
}

/// A firm of a region among the first `among` of [`REGIONS`], in an industry.
pub fn outsider(rng: &mut R, among: usize, class_name: &str) -> Outsider {
    let region = rng.random_range(0..among.clamp(1, REGIONS.len()));
    let reg = REGIONS[region];
    let place = match reg.city.strip_suffix('市') {
        Some(city) if rng.random_bool(0.7) => city,
        _ => reg.short,
    };
    let name = crate::names::firm_at(rng, place, class_name);
    let alphabet = townstat_domain::uscc::ALPHABET;
    let uscc = loop {
        // The registration authority: the city, or one of its districts.
        let auth = if rng.random_bool(0.5) {
            reg.code.to_string()
        } else {
            format!("{}{:02}", &reg.code[..4], rng.random_range(2..12))
        };
        let org: String = (0..7)
            .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
            .collect();
        if let Some(code) = townstat_domain::uscc::with_check(&format!("91{auth}MA{org}")) {
            break code;
        }
    };
    Outsider { region, name, uscc }
}

/// A region as an investor ledger writes it: its code (6 or 12 digits), its province
/// and city (浙江省杭州市, 浙江杭州), or its province alone.
pub fn region_cell(rng: &mut R, region: usize) -> V {
    let r = REGIONS[region];
    let city_short = r.city.strip_suffix('市').unwrap_or(r.city);
    match rng.random_range(0..10) {
        0..=2 => V::Division(r.code.to_string()),
        3 => V::Division(format!("{}000000", r.code)),
        4..=6 => V::Text(format!("{}{}", r.province, r.city)),
        7 if !r.city.is_empty() => V::Text(format!("{}{city_short}", r.short)),
        _ => V::Text(r.province.to_string()),
    }
}

/// Datong itself (or one of its counties) as the region of a local investor.
pub fn datong_cell(rng: &mut R, county: &str) -> V {
    match rng.random_range(0..5) {
        0 => V::Division("140200".to_string()),
        1 => V::Division(county.to_string()),
        2 => V::Text("山西省大同市".to_string()),
        _ => V::Text("大同市".to_string()),
    }
}

/// How a ledger names a town: its id, its name, or its name without 专业镇.
pub fn town_cell(rng: &mut R, town: usize) -> V {
    let t = &TOWNS[town];
    match rng.random_range(0..10) {
        0..=3 => V::Text(t.id.to_string()),
        4..=7 => V::Text(t.name.to_string()),
        _ => V::Text(t.name.strip_suffix("专业镇").unwrap_or(t.name).to_string()),
    }
}

/// The town and county cells of a ledger row: mostly the town, with or without its
/// county; sometimes the county alone. Never neither.
pub fn place_cells(rng: &mut R, town: usize, r: &mut Row) {
    let county = V::Division(TOWNS[town].county.to_string());
    if rng.random_bool(0.12) {
        r.set("town_id", V::Null);
        r.set("county_code", county);
    } else {
        r.set("town_id", town_cell(rng, town));
        r.set(
            "county_code",
            if rng.random_bool(0.6) {
                county
            } else {
                V::Null
            },
        );
    }
}

/// A USCC that fails the check, for an optional USCC column (`investor_uscc`): the
/// row's own code with another check character, or an outside firm's.
pub fn bad_code(current: &V, rng: &mut R) -> String {
    let code = match current {
        V::Code(c) => c.clone(),
        _ => outsider(rng, OUTSIDE_SHANXI, "").uscc,
    };
    let alphabet = townstat_domain::uscc::ALPHABET;
    let last = code.as_bytes()[17];
    let pos = alphabet.iter().position(|&a| a == last).unwrap_or(0);
    let other = alphabet[(pos + 1 + rng.random_range(0..29)) % 31] as char;
    format!("{}{other}", &code[..17])
}

/// A town name no registry town has.
pub const UNKNOWN_TOWNS: &[&str] = &[
    "云冈新材料专业镇",
    "阳高冷链物流专业镇",
    "天镇特色食品",
    "lingqiu_marble",
];

/// The town cell of a row replaced by a town the registry does not have; the county
/// is given, so only the town is wrong.
pub fn set_unknown_town(r: &mut Row, rng: &mut R) {
    r.set("town_id", V::Raw(pick(rng, UNKNOWN_TOWNS).to_string()));
    if r.get("county_code").is_null() {
        // The county of the row's own town, or any Datong county.
        let county = pick(rng, &["140212", "140213", "140214", "140215"]).to_string();
        r.set("county_code", V::Division(county));
    }
}
