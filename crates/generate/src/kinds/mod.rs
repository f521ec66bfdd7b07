//! The six record kinds: their files (formats, encodings, header spellings), their
//! clean rows and the problems each can be given. Helpers shared by the kinds that
//! reference the registry live here.

pub mod annual;
pub mod designation;
pub mod employment;
pub mod enterprise;
pub mod financing;
pub mod patent;

use rand::Rng;

use crate::emit::Mutation;
use crate::value::{R, Row, V, pick};
use crate::world::{Ent, World};

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
