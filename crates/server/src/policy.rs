//! What may reach the engine over the PostgreSQL protocol: queries, and the session
//! chatter clients send (`SET`, `SHOW`, `BEGIN`, cursors). Everything else is refused
//! before planning, with SQLSTATE 42501, and logged by the caller.
//!
//! This is an allowlist: a statement kind nobody thought of is refused, not let
//! through. `SET`, `RESET` and `SHOW` are decided on the setting's name as PostgreSQL
//! compares it ([`setting_name`]: quotes removed, lower-case, qualified parts joined
//! with dots), so `SET "datafusion.execution.batch_size" = 1` is refused as the
//! unquoted form is, and [`normalize`] rewrites the statement to that name before
//! datafusion-postgres's `SET` handling (which matches names as written) sees it. The
//! table of accepted and refused statements in `docs/serve.md` is checked against
//! [`check`] by a test here. The plan of an allowed statement is checked again with DataFusion's
//! read-only `SQLOptions` before it runs (`service.rs`), so a parser quirk cannot
//! smuggle DDL or DML past this module.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ContextModifier, Expr, Ident, ObjectName, Query, Reset, Set, SetExpr, Statement, TableFactor,
    Value, Visit, Visitor,
};

/// Insufficient privilege: the statement would change or read outside the warehouse.
pub const READ_ONLY: &str = "42501";

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The SQLSTATE sent to the client.
    pub code: &'static str,
    /// The message sent to the client.
    pub message: String,
}

fn refuse(message: impl Into<String>) -> Refusal {
    Refusal {
        code: READ_ONLY,
        message: message.into(),
    }
}

/// What to do with an allowed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Plan and run it (queries, `SHOW`, `EXPLAIN`, cursors, transaction no-ops).
    Run,
    /// A `SET` of a client-side setting the protocol layer keeps (`statement_timeout`,
    /// `DateStyle`, `TimeZone`, `search_path`, …): handled without the engine.
    SessionSetting,
    /// A `SET` of a PostgreSQL setting that means nothing here (`client_min_messages`,
    /// `SET NAMES`, transaction characteristics): acknowledged, nothing changes.
    IgnoredSetting,
    /// `SAVEPOINT` and `RELEASE`: there is nothing to undo in a read-only session,
    /// so they are acknowledged (SQLAlchemy and psycopg nest transactions with them).
    Acknowledge(&'static str),
    /// `ROLLBACK TO SAVEPOINT`: acknowledged, and the transaction usable again after an
    /// error, as in PostgreSQL.
    RollbackToSavepoint,
    /// `RESET name` / `RESET ALL` of session settings: the connection's value is
    /// dropped, so the server's default applies again.
    Reset,
    /// `DEALLOCATE name`: the connection's prepared statement of that name is dropped
    /// (psqlODBC deallocates its `_PLAN…` statements this way).
    Deallocate,
    /// `DISCARD ALL` (connection pools send it when a connection is given back): the
    /// session settings are reset and open portals closed. `DISCARD PLANS`,
    /// `SEQUENCES` and `TEMP` have nothing to discard here and are acknowledged.
    Discard,
}

/// A setting's name as PostgreSQL compares it: each part without its quotes and
/// lower-cased (setting names are case-insensitive, quoted or not), the parts of a
/// qualified name joined with dots. `"DataFusion"."execution".batch_size`,
/// `"datafusion.execution.batch_size"` and `DATAFUSION.EXECUTION.BATCH_SIZE` are all
/// `datafusion.execution.batch_size`.
pub fn setting_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) => ident.value.to_lowercase(),
            None => part.to_string().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Refuses names that are engine or extension options: every qualified name
/// (`datafusion.*`, `ballista.*`, any `prefix.name`). PostgreSQL's own settings have
/// no dot.
fn check_setting_name(name: &str) -> Result<(), Refusal> {
    if name.contains('.') {
        return Err(refuse(format!(
            "engine options cannot be changed over the PostgreSQL protocol ({name}); \
             limits are set when the server starts"
        )));
    }
    Ok(())
}

/// Rewrites a `SET`/`RESET` to the normalized name ([`setting_name`]) and `SET
/// SESSION` to plain `SET` (the same in PostgreSQL), so that what runs is what
/// [`check`] decided on.
pub fn normalize(statement: &mut Statement) {
    let plain = |name: &ObjectName| ObjectName::from(vec![Ident::new(setting_name(name))]);
    match statement {
        Statement::Set(Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        }) => {
            *variable = plain(variable);
            if *scope == Some(ContextModifier::Session) {
                *scope = None;
            }
            if setting_name(variable) == "search_path" {
                search_path_as_text(values);
            }
        }
        Statement::Set(Set::ParenthesizedAssignments { variables, .. }) => {
            for v in variables {
                *v = plain(v);
            }
        }
        Statement::Set(Set::MultipleAssignments { assignments }) => {
            for a in assignments {
                a.name = plain(&a.name);
            }
        }
        Statement::Reset(reset) => {
            if let Reset::ConfigurationParameter(name) = &mut reset.reset {
                *name = plain(name);
            }
        }
        Statement::ShowVariable { variable } => {
            for v in variable.iter_mut() {
                *v = Ident::new(v.value.to_lowercase());
            }
            let name: Vec<&str> = variable.iter().map(|v| v.value.as_str()).collect();
            if let Some((column, value)) = fixed_parameter(&name.join(" "))
                && let Ok(mut parsed) = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                    &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                    &format!("SELECT '{value}' AS \"{column}\""),
                )
                && parsed.len() == 1
            {
                *statement = parsed.remove(0);
            }
        }
        _ => {}
    }
}

/// `SET search_path = "public", pg_catalog` as one text value, `'public, pg_catalog'`:
/// the form datafusion-postgres keeps for the connection (and reports back with
/// `SHOW search_path`). Names written as identifiers would otherwise fall through to
/// DataFusion, which knows no such setting, and log a warning on every query of a
/// client that sends it (Superset does). Every table is in `public`, so the value
/// changes nothing else.
fn search_path_as_text(values: &mut Vec<Expr>) {
    let names: Vec<String> = values
        .iter()
        .map(|v| match v {
            Expr::Identifier(ident) => ident.value.clone(),
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            other => other.to_string(),
        })
        .collect();
    *values = vec![Expr::Value(
        Value::SingleQuotedString(names.join(", ")).with_empty_span(),
    )];
}

/// Settings that are the same for every connection here, answered to `SHOW` as
/// PostgreSQL answers them (column, value). datafusion-postgres answers an empty text
/// for the first three, and SQLAlchemy, reading `standard_conforming_strings` as off,
/// would double every backslash in the string literals it sends.
fn fixed_parameter(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "standard_conforming_strings" => ("standard_conforming_strings", "on"),
        "server_encoding" => ("server_encoding", "UTF8"),
        "integer_datetimes" => ("integer_datetimes", "on"),
        "max_identifier_length" => ("max_identifier_length", "63"),
        "transaction_isolation" | "transaction isolation level" => {
            ("transaction_isolation", "read committed")
        }
        "default_transaction_read_only" => ("default_transaction_read_only", "on"),
        "transaction_read_only" => ("transaction_read_only", "on"),
        _ => return None,
    })
}

/// Table functions a query may call: they compute rows and read nothing.
const TABLE_FUNCTIONS: [&str; 4] = ["generate_series", "range", "unnest", "pg_get_keywords"];

/// Settings kept per connection by datafusion-postgres's `SET` handling.
pub(crate) const SESSION_SETTINGS: [&str; 7] = [
    "statement_timeout",
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
];

/// Statement keywords that change something or read outside the warehouse. A text the
/// parser cannot read but that starts with one of these (DataFusion's own `CREATE
/// EXTERNAL TABLE … STORED AS CSV`, say) is refused as a write, not reported as a
/// syntax error, so that clients and logs see what was attempted.
const WRITE_KEYWORDS: [&str; 16] = [
    "ALTER", "ANALYZE", "CALL", "COPY", "CREATE", "DELETE", "DROP", "GRANT", "INSERT", "LOAD",
    "MERGE", "REINDEX", "REVOKE", "TRUNCATE", "UPDATE", "VACUUM",
];

/// The refusal for a statement text that did not parse, when it is a write.
pub fn check_unparsed(sql: &str) -> Option<Refusal> {
    let mut words = sql
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(')
        .filter(|w| !w.is_empty());
    let first = words.next()?.to_uppercase();
    WRITE_KEYWORDS.contains(&first.as_str()).then(|| {
        let second = words.next().map(str::to_uppercase).unwrap_or_default();
        refuse(format!(
            "townstat serve is read-only: {} statements are not allowed",
            format!("{first} {second}").trim_end()
        ))
    })
}

/// Decides whether a statement may run.
pub fn check(statement: &Statement) -> Result<Verdict, Refusal> {
    match statement {
        Statement::Query(query) => check_query(query).map(|()| Verdict::Run),
        Statement::Explain { statement, .. } => match statement.as_ref() {
            Statement::Query(query) => check_query(query).map(|()| Verdict::Run),
            other => Err(refuse(format!(
                "EXPLAIN is allowed for queries only, not for {}",
                kind(other)
            ))),
        },
        Statement::ExplainTable { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowFunctions { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback {
            savepoint: None, ..
        }
        | Statement::Fetch { .. }
        | Statement::Close { .. } => Ok(Verdict::Run),
        Statement::Declare { stmts } => {
            for declare in stmts {
                match &declare.for_query {
                    Some(query) => check_query(query)?,
                    None => return Err(refuse("DECLARE without a query is not allowed")),
                }
            }
            Ok(Verdict::Run)
        }
        Statement::Savepoint { .. } => Ok(Verdict::Acknowledge("SAVEPOINT")),
        Statement::ReleaseSavepoint { .. } => Ok(Verdict::Acknowledge("RELEASE")),
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Ok(Verdict::RollbackToSavepoint),
        Statement::Deallocate { .. } => Ok(Verdict::Deallocate),
        Statement::Discard { .. } => Ok(Verdict::Discard),
        Statement::Set(set) => check_set(set),
        Statement::Reset(reset) => match &reset.reset {
            Reset::ALL => Ok(Verdict::Reset),
            Reset::ConfigurationParameter(name) => {
                check_setting_name(&setting_name(name)).map(|()| Verdict::Reset)
            }
        },
        other => Err(refuse(format!(
            "townstat serve is read-only: {} statements are not allowed",
            kind(other)
        ))),
    }
}

fn check_set(set: &Set) -> Result<Verdict, Refusal> {
    let names: Vec<String> = match set {
        Set::SingleAssignment { variable, .. } => vec![setting_name(variable)],
        Set::ParenthesizedAssignments { variables, .. } => {
            variables.iter().map(setting_name).collect()
        }
        Set::MultipleAssignments { assignments } => {
            assignments.iter().map(|a| setting_name(&a.name)).collect()
        }
        Set::SetTimeZone { local: false, .. } => return Ok(Verdict::SessionSetting),
        Set::SetRole { .. } | Set::SetSessionAuthorization(_) => {
            return Err(refuse("roles cannot be changed on townstat serve"));
        }
        _ => return Ok(Verdict::IgnoredSetting),
    };
    for name in &names {
        check_setting_name(name)?;
    }
    match set {
        Set::SingleAssignment {
            scope: None | Some(ContextModifier::Session),
            hivevar: false,
            variable,
            values,
        } if !values.is_empty() && SESSION_SETTINGS.contains(&setting_name(variable).as_str()) => {
            Ok(Verdict::SessionSetting)
        }
        _ => Ok(Verdict::IgnoredSetting),
    }
}

/// Walks a query: it may not write (`SELECT … INTO`, data-modifying CTEs), call table
/// functions beyond [`TABLE_FUNCTIONS`], or name files and URLs as tables.
fn check_query(query: &Query) -> Result<(), Refusal> {
    struct Walk;
    impl Visitor for Walk {
        type Break = Refusal;

        fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<Refusal> {
            match s {
                Statement::Query(_) => ControlFlow::Continue(()),
                other => ControlFlow::Break(refuse(format!(
                    "townstat serve is read-only: {} inside a query is not allowed",
                    kind(other)
                ))),
            }
        }

        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<Refusal> {
            if let SetExpr::Select(select) = q.body.as_ref()
                && select.into.is_some()
            {
                return ControlFlow::Break(refuse(
                    "townstat serve is read-only: SELECT … INTO is not allowed",
                ));
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<Refusal> {
            let verdict = match t {
                TableFactor::Table {
                    name,
                    args: Some(_),
                    ..
                }
                | TableFactor::Function { name, .. } => table_function(name),
                TableFactor::Table { name, .. } => table_name(name),
                TableFactor::TableFunction { .. } => Err(refuse(
                    "TABLE(…) functions are not allowed on townstat serve",
                )),
                _ => Ok(()),
            };
            match verdict {
                Ok(()) => ControlFlow::Continue(()),
                Err(r) => ControlFlow::Break(r),
            }
        }
    }
    match query.visit(&mut Walk) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(r) => Err(r),
    }
}

fn table_function(name: &ObjectName) -> Result<(), Refusal> {
    let last = name
        .0
        .last()
        .map(|p| p.to_string().to_lowercase())
        .unwrap_or_default();
    if TABLE_FUNCTIONS.contains(&last.trim_matches('"')) {
        Ok(())
    } else {
        Err(refuse(format!(
            "the table function {name} is not allowed on townstat serve"
        )))
    }
}

fn table_name(name: &ObjectName) -> Result<(), Refusal> {
    let text = name.to_string();
    let lower = text.to_lowercase();
    let looks_like_a_file = [
        "/", "\\", "://", ".parquet", ".csv", ".json", ".avro", ".arrow",
    ]
    .iter()
    .any(|m| lower.contains(m));
    if looks_like_a_file {
        Err(refuse(format!(
            "{text} names a file or URL; townstat serve reads only the warehouse's tables"
        )))
    } else {
        Ok(())
    }
}

/// The statement's kind, as the refusal names it (`INSERT`, `CREATE TABLE`, `COPY`).
fn kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    let upper = |w: &str| w.to_uppercase();
    match words.as_slice() {
        [first, second, ..] if ["CREATE", "DROP", "ALTER"].contains(&upper(first).as_str()) => {
            let second = upper(second);
            if ["OR", "EXTERNAL", "TEMPORARY", "TEMP", "UNLOGGED", "UNIQUE"]
                .contains(&second.as_str())
            {
                format!(
                    "{} {} {}",
                    upper(first),
                    second,
                    words.get(2).map(|w| upper(w)).unwrap_or_default()
                )
            } else {
                format!("{} {second}", upper(first))
            }
        }
        [first, ..] => upper(first),
        [] => "empty".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn verdict(sql: &str) -> Result<Verdict, Refusal> {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        check(&statements[0])
    }

    #[test]
    fn queries_and_session_chatter_pass() {
        for sql in [
            "SELECT * FROM town_year WHERE year = 2025",
            "WITH t AS (SELECT 1) SELECT * FROM t",
            "SELECT * FROM generate_series(1, 3)",
            "EXPLAIN SELECT 1",
            "SHOW search_path",
            "BEGIN",
            "COMMIT",
            "DECLARE c CURSOR FOR SELECT 1",
            "ROLLBACK",
        ] {
            assert_eq!(verdict(sql), Ok(Verdict::Run), "{sql}");
        }
        assert_eq!(
            verdict("SET statement_timeout = '5s'"),
            Ok(Verdict::SessionSetting)
        );
        assert_eq!(
            verdict("SET TIME ZONE 'Asia/Shanghai'"),
            Ok(Verdict::SessionSetting)
        );
        assert_eq!(
            verdict("SET client_min_messages = warning"),
            Ok(Verdict::IgnoredSetting)
        );
    }

    #[test]
    fn writes_files_and_engine_options_are_refused() {
        for sql in [
            "INSERT INTO town_year VALUES (1)",
            "UPDATE town_year SET year = 1",
            "DELETE FROM town_year",
            "DROP TABLE town_year",
            "CREATE TABLE x (a INT)",
            "CREATE TABLE x AS SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "TRUNCATE town_year",
            "COPY town_year TO '/tmp/out.csv'",
            "COPY town_year FROM STDIN",
            "SELECT * INTO t2 FROM town_year",
            "WITH d AS (DELETE FROM town_year RETURNING *) SELECT * FROM d",
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM \"s3://bucket/x.parquet\"",
            "SELECT * FROM read_csv('/etc/passwd')",
            "EXPLAIN DELETE FROM town_year",
            "SET datafusion.execution.batch_size = 1",
            "SET ROLE postgres",
            "GRANT SELECT ON town_year TO bob",
        ] {
            let r = verdict(sql);
            assert!(matches!(&r, Err(x) if x.code == READ_ONLY), "{sql}: {r:?}");
        }
    }

    #[test]
    fn refusals_name_the_statement() {
        let r =
            check_unparsed("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'").unwrap();
        assert_eq!(r.code, READ_ONLY);
        assert!(r.message.contains("CREATE EXTERNAL"), "{}", r.message);
        assert_eq!(check_unparsed("SELEC 1"), None);
        let r = verdict("DROP TABLE town_year").unwrap_err();
        assert!(r.message.contains("DROP TABLE"), "{}", r.message);
    }

    /// The answer column of the table in `docs/serve.md`.
    fn answer(verdict: &Result<Verdict, Refusal>) -> String {
        match verdict {
            Ok(Verdict::Run) => "runs".into(),
            Ok(Verdict::SessionSetting) => "kept for the connection".into(),
            Ok(Verdict::IgnoredSetting) => "acknowledged, no effect".into(),
            Ok(Verdict::Acknowledge(_) | Verdict::RollbackToSavepoint) => "acknowledged".into(),
            Ok(Verdict::Reset) => "resets the connection's value".into(),
            Ok(Verdict::Deallocate) => "drops the prepared statement".into(),
            Ok(Verdict::Discard) => "resets the session".into(),
            Err(r) => format!("refused, {}", r.code),
        }
    }

    /// The rows of the statement table in `docs/serve.md`: (SQL, answer).
    fn doc_table() -> Vec<(String, String)> {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/serve.md"))
                .expect("docs/serve.md");
        let start = doc
            .find("<!-- policy-table -->")
            .expect("the table's start marker");
        let end = doc
            .find("<!-- /policy-table -->")
            .expect("the table's end marker");
        doc[start..end]
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
                assert_eq!(cells.len(), 2, "a row of two cells: {l}");
                let sql = cells[0].trim().trim_matches('`').replace("\\|", "|");
                (sql, cells[1].trim().to_string())
            })
            .collect()
    }

    #[test]
    fn the_documented_table_is_what_the_policy_answers() {
        let rows = doc_table();
        assert!(rows.len() >= 30, "{} rows", rows.len());
        for (sql, documented) in &rows {
            assert_eq!(&answer(&verdict(sql)), documented, "{sql}");
        }
        // Every spelling of an engine option is in the table, and refused.
        for form in [
            "SET datafusion.execution.batch_size = 1",
            "SET \"datafusion.execution.batch_size\" = 1",
            "SET \"datafusion\".\"execution\".\"batch_size\" = 1",
            "SET DATAFUSION.EXECUTION.BATCH_SIZE = 1",
            "SET SESSION \"datafusion.execution.batch_size\" = 1",
            "RESET datafusion.execution.batch_size",
            "RESET \"datafusion.execution.batch_size\"",
        ] {
            let row = rows.iter().find(|(sql, _)| sql == form);
            assert_eq!(
                row.map(|(_, a)| a.as_str()),
                Some("refused, 42501"),
                "{form} in docs/serve.md"
            );
        }
        for form in [
            "SHOW \"statement_timeout\"",
            "RESET ALL",
            "SET \"STATEMENT_TIMEOUT\" = '5s'",
        ] {
            assert!(
                rows.iter().any(|(sql, _)| sql == form),
                "{form} in docs/serve.md"
            );
        }
    }

    #[test]
    fn normalized_set_names_reach_the_handler_unquoted() {
        for (sql, expected) in [
            (
                "SET \"STATEMENT_TIMEOUT\" = '5s'",
                "SET statement_timeout = '5s'",
            ),
            (
                "SET SESSION statement_timeout = '5s'",
                "SET statement_timeout = '5s'",
            ),
            ("RESET \"Statement_Timeout\"", "RESET statement_timeout"),
            ("SHOW \"Statement_Timeout\"", "SHOW statement_timeout"),
        ] {
            let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
                .unwrap()
                .remove(0);
            normalize(&mut statement);
            assert_eq!(statement.to_string(), expected);
        }
    }
}
