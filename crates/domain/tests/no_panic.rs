//! Fuzz-style robustness of every cell parser: arbitrary text (and arbitrary numbers
//! where a parser takes one) must give a value or a rejection, never a panic, and what
//! is accepted must lie inside the documented bounds (counts within ±10,000,000,
//! amounts within ±10^15 元, dates, months and years from 1900).
//!
//! Each target runs a fixed number of cases ([`CASES`]) so that the suite stays within
//! a few seconds in CI; a target reports how many cases it executed and fails when it
//! ran fewer. A panic inside a case is caught by proptest, shrunk, and reported with
//! the smallest input that triggers it.

use std::cell::Cell;
use std::path::Path;

use chrono::Datelike;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use townstat_domain::division::Divisions;
use townstat_domain::enums::{AliasTables, ENUMS};
use townstat_domain::industry::Industries;
use townstat_domain::number::{
    self, Decimal, MAX_AMOUNT_CENTS, MAX_CENTS, MAX_COUNT, Unit, parse_count, parse_decimal,
    parse_money, parse_number,
};
use townstat_domain::{Reason, boolean, date, patent, text, uscc};

/// Cases per target.
const CASES: u32 = 2_000;

const UNITS: [Unit; 3] = [Unit::Yuan, Unit::Wan, Unit::Yi];

/// Runs `check` on `CASES` values of `strategy`, prints and checks the case count.
fn run<S: Strategy>(
    target: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let executed = Cell::new(0u32);
    let result = runner.run(&strategy, |value| {
        executed.set(executed.get() + 1);
        check(value)
    });
    if let Err(e) = result {
        panic!("{target}: {e}");
    }
    eprintln!("{target}: {} cases", executed.get());
    assert!(
        executed.get() >= CASES,
        "{target}: only {} of {CASES} cases ran",
        executed.get()
    );
}

/// Any text, with a bias toward what the parsers look at: digits (ASCII and
/// full-width), signs, separators, units, exponents, date and time punctuation, and
/// very long digit runs.
fn cell_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,40}",
        "[-+¥ ]{0,2}[0-9０-９,.]{0,60}([eE][-+]?[0-9]{0,4})? ?(元|万元|万|亿元|亿|人|人次|%|吨|RMB)?",
        "-?[0-9]{20,400}(\\.[0-9]{0,400})?",
        "-?0?\\.0{30,200}[0-9]?",
        "[0-9]{0,6}[-/.年]?[0-9]{0,3}[-/.月]?[0-9]{0,3}日?([T ][0-9:+\\-.Z ]{0,24}(UTC)?)?",
        "(CN|ZL)?[0-9]{6,14}\\.?[0-9X]?",
        "[0-9A-Z]{16,19}",
        "[A-Z]?[0-9]{2,6}(\\.0)?( \\PC{0,8})?",
        "(NaN|nan|inf|-inf|Infinity|-0|\\+0|-0\\.0|1e308|1e-200|1E\\+11|9223372036854775807|-9223372036854775808)",
    ]
}

/// Any f64, NaN, infinities and subnormals included.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::ANY,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        -1e7f64..3e6,
    ]
}

#[test]
fn numbers_never_panic_and_stay_in_range() {
    run("numbers", (cell_text(), any::<bool>()), |(raw, ratio)| {
        if let Some(d) = parse_decimal(&raw) {
            prop_assert!(d.scale <= number::MAX_SCALE, "{raw:?}");
            prop_assert!(d.mantissa.unsigned_abs() < 10u128.pow(36), "{raw:?}");
        }
        let _ = parse_number(&raw, ratio).map(|d| (d.to_f64(), d.trunc(), d.has_fraction()));
        match parse_count(&raw) {
            Ok(n) => prop_assert!(n.unsigned_abs() <= MAX_COUNT as u64, "{raw:?} → {n}"),
            Err(e) => prop_assert!(
                matches!(e.reason, Reason::InvalidNumber | Reason::InvalidUnit),
                "{raw:?}: {e:?}"
            ),
        }
        Ok(())
    });
}

#[test]
fn money_never_panics_and_stays_in_range() {
    run(
        "money",
        (cell_text(), 0usize..4, 0usize..3),
        |(raw, header, default)| {
            let header = UNITS.get(header).copied();
            match parse_money(&raw, header, UNITS[default]) {
                Ok(c) => prop_assert!(c.unsigned_abs() <= MAX_AMOUNT_CENTS as u128, "{raw:?}"),
                Err(e) => prop_assert!(
                    matches!(e.reason, Reason::InvalidNumber | Reason::InvalidUnit),
                    "{raw:?}: {e:?}"
                ),
            }
            let _ = Unit::from_header(&raw);
            let _ = Unit::parse(&raw);
            Ok(())
        },
    );
}

#[test]
fn decimal_arithmetic_never_panics() {
    run(
        "decimal arithmetic",
        (
            any::<i128>(),
            prop_oneof![0u32..80, any::<u32>()],
            0usize..3,
        ),
        |(mantissa, scale, unit)| {
            let d = Decimal { mantissa, scale };
            let _ = (d.has_fraction(), d.trunc(), d.to_f64());
            if let Some(c) = number::to_cents(d, UNITS[unit]) {
                prop_assert!(c.unsigned_abs() <= MAX_CENTS as u128);
            }
            let text = number::format_cents(mantissa);
            prop_assert!(text.ends_with(|c: char| c.is_ascii_digit()));
            Ok(())
        },
    );
}

#[test]
fn dates_never_panic_and_start_in_1900() {
    run("dates, months, years", cell_text(), |raw| {
        if let Ok(d) = date::parse_date(&raw) {
            prop_assert!(d.year() >= date::MIN_YEAR, "{raw:?} → {d}");
        }
        if let Ok(m) = date::parse_month(&raw) {
            prop_assert!(m.year() >= date::MIN_YEAR && m.day() == 1, "{raw:?} → {m}");
        }
        if let Ok(y) = date::parse_year(&raw) {
            prop_assert!(y >= date::MIN_YEAR, "{raw:?} → {y}");
        }
        if let Ok(y) = date::parse_year_or_date(&raw) {
            prop_assert!(y >= date::MIN_YEAR, "{raw:?} → {y}");
        }
        Ok(())
    });
}

#[test]
fn excel_serials_never_panic() {
    run("excel serials", any_f64(), |serial| {
        if let Some(d) = date::from_excel_serial(serial) {
            prop_assert!(d.year() >= date::MIN_YEAR, "{serial} → {d}");
            prop_assert!(d.year() <= 9999, "{serial} → {d}");
        }
        Ok(())
    });
}

#[test]
fn codes_never_panic() {
    let industries = Industries::gbt4754_2017();
    let divisions = Divisions::datong();
    run(
        "booleans, USCC, patent numbers, codes",
        cell_text(),
        |raw| {
            let _ = boolean::parse_bool(&raw);
            if let Ok(code) = uscc::parse(&raw) {
                prop_assert_eq!(code.len(), 18);
                let _ = uscc::entity_kind(&code);
            }
            let _ = uscc::check_char(raw.as_bytes());
            if let Ok(p) = patent::parse(&raw) {
                prop_assert!(p.year >= 1985, "{raw:?}");
            }
            let _ = patent::check_char(&raw);
            if let Ok(class) = industries.parse_class(&raw) {
                prop_assert_eq!(class.len(), 4);
            }
            let _ = industries.section_of(&raw);
            if let Ok(county) = divisions.resolve_code(&raw) {
                prop_assert!(county.code.starts_with("1402"), "{raw:?}");
            }
            let _ = divisions.county_from_address(&raw);
            let _ = text::is_null_token(&text::normalize(&raw));
            let _ = text::match_key(&raw);
            Ok(())
        },
    );
}

#[test]
fn enum_lookups_never_panic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/enums.toml");
    let tables = AliasTables::load(&path).expect("pipelines/enums.toml loads");
    run(
        "enumerations",
        (cell_text(), 0..ENUMS.len()),
        |(raw, table)| {
            let (name, values) = ENUMS[table];
            match tables.lookup(name, &raw) {
                Ok(v) => prop_assert!(values.contains(&v.as_str()), "{raw:?} → {v}"),
                Err(e) => prop_assert_eq!(e.reason, Reason::UnknownEnumValue),
            }
            Ok(())
        },
    );
}
