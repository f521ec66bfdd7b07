//! Fuzzing of the server's startup and query path, as far as it reads bytes from
//! outside before the engine: the statement text through the size and nesting scan
//! (`complexity`), sqlparser, the catalog compatibility rewrites (`compat`) and the
//! policy (`policy`); and the users file and the duration flags read at startup.
//!
//! Property tests on stable Rust, so CI runs them with the other unit tests: SQL made
//! of real tokens (keywords, operators, quotes, the warehouse's table names, the
//! statements of docs/serve.md's policy table cut and spliced), and arbitrary text for
//! the startup inputs. Each must give an answer or an error, never a panic or a stack
//! overflow; the statement path runs on a thread with the server's worker stack
//! (32 MiB). The number of cases per target is fixed (`CASES`).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Cases per target.
const CASES: u32 = 3000;

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "UNION ALL",
    "JOIN",
    "LEFT JOIN",
    "ON",
    "USING",
    "AS",
    "WITH",
    "VALUES",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "AND",
    "OR",
    "NOT",
    "IS",
    "NULL",
    "IN",
    "LIKE",
    "BETWEEN",
    "DISTINCT",
    "OVER",
    "PARTITION BY",
    "EXPLAIN",
    "SET",
    "SHOW",
    "RESET",
    "ALL",
    "SESSION",
    "LOCAL",
    "DROP",
    "DELETE",
    "INSERT INTO",
    "UPDATE",
    "COPY",
    "CREATE TABLE",
    "TO",
    "DECLARE",
    "CURSOR FOR",
    "FETCH",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    ".",
    "*",
    "+",
    "-",
    "/",
    "%",
    "||",
    "::",
    "=",
    "<>",
    "<",
    ">=",
    "~",
    "->>",
    "1",
    "0",
    "2025",
    "1e308",
    "-0",
    "'x'",
    "''",
    "'",
    "\"",
    "\"datafusion.execution.batch_size\"",
    "$1",
    "?",
    "town_year",
    "enterprise",
    "pg_catalog.pg_class",
    "information_schema.tables",
    "read_csv",
    "'/etc/passwd'",
    "repeat",
    "count(*)",
    "statement_timeout",
    "datafusion",
    "\u{00a0}",
    "\u{feff}",
    "中文",
    "--",
    "/*",
    "*/",
    "E'\\x00'",
    "$$",
    "'a'::regclass",
];

/// Statements of the policy table and a BI tool's catalog queries.
const SEEDS: &[&str] = &[
    "SELECT * FROM town_year WHERE year = 2025",
    "WITH t AS (SELECT 1) SELECT * FROM t",
    "EXPLAIN SELECT 1",
    "DECLARE c CURSOR FOR SELECT 1",
    "SET \"STATEMENT_TIMEOUT\" = '5s'",
    "SET SESSION \"datafusion.execution.batch_size\" = 1",
    "RESET \"Statement_Timeout\"",
    "COPY town_year TO '/tmp/out.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * INTO t2 FROM town_year",
    "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = 'town_year'::regclass",
    "SELECT t.town_id, (SELECT count(*) FROM enterprise e WHERE e.town_id = t.town_id) FROM town t",
    "SELECT CASE WHEN year > 2020 THEN 'a' ELSE 'b' END, sum(revenue) OVER (PARTITION BY town_id) FROM town_year",
];

/// Runs the statement path as the server does before planning; panics propagate.
fn statement_path(sql: String) {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            if crate::complexity::check(&sql).is_err() {
                return;
            }
            let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
            let Ok(statements) =
                datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, &sql)
            else {
                let _ = crate::policy::check_unparsed(&sql);
                return;
            };
            for mut statement in statements {
                crate::compat::rewrite(&mut statement);
                crate::policy::normalize(&mut statement);
                let _ = crate::policy::check(&statement);
                let _ = statement.to_string();
            }
        })
        .expect("thread")
        .join()
        .expect("the statement path panicked");
}

fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value)) -> u32
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let ran = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |v| {
            ran.set(ran.get() + 1);
            test(v);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    ran.get()
}

#[test]
fn fuzz_statements_of_sql_tokens() {
    let soup = prop::collection::vec(prop::sample::select(TOKENS), 0..300)
        .prop_map(|tokens| tokens.join(" "));
    let n = run(soup, statement_path);
    assert!(n >= CASES, "{n}");
}

#[test]
fn fuzz_mutated_statements() {
    // A seed with token insertions, deletions and cuts at random byte positions.
    let mutated = (
        prop::sample::select(SEEDS),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..4,
                prop::sample::select(TOKENS),
            ),
            1..8,
        ),
    )
        .prop_map(|(seed, edits)| {
            let mut s: Vec<char> = seed.chars().collect();
            for (at, op, token) in edits {
                let i = at.index(s.len() + 1);
                match op {
                    0 => {
                        let t: Vec<char> = format!(" {token} ").chars().collect();
                        s.splice(i..i, t);
                    }
                    1 if i < s.len() => {
                        s.remove(i);
                    }
                    2 => s.truncate(i),
                    _ => {
                        let copy: Vec<char> = s[i.min(s.len())..].to_vec();
                        s.extend(copy);
                    }
                }
            }
            s.into_iter().collect::<String>()
        });
    let n = run(mutated, statement_path);
    assert!(n >= CASES, "{n}");
}

#[test]
fn fuzz_startup_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("users");
    let n = run(
        (any::<String>(), prop::collection::vec(any::<u8>(), 0..512)),
        |(text, bytes)| {
            let _ = crate::config::parse_duration(&text);
            for content in [text.as_bytes(), bytes.as_slice()] {
                std::fs::write(&path, content).expect("write");
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .expect("chmod");
                }
                let _ = crate::config::Users::load(Some(&path));
            }
        },
    );
    assert!(n >= CASES, "{n}");
}
