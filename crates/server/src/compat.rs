//! Rewrites of the catalog queries client tools send that DataFusion cannot plan,
//! where the answer is known exactly without planning them.
//!
//! Only catalog facts that are always the same here are rewritten; a user's query is
//! never changed in meaning.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, TableWithJoins, Value, ValueWithSpan, visit_expressions_mut,
};

/// psql's `\d+` asks for
/// `array_to_string(c.reloptions || ARRAY(SELECT 'toast.' || x FROM
/// unnest(tc.reloptions) x), ', ')`: a table's storage options. Warehouse tables have
/// none (datafusion-pg-catalog's `pg_class` has no `reloptions` column at all), so
/// the answer is NULL, as PostgreSQL gives for a table without options.
fn storage_options(expr: &Expr) -> bool {
    let Expr::Function(f) = expr else {
        return false;
    };
    let FunctionArguments::List(args) = &f.args else {
        return false;
    };
    let name = f.name.to_string().to_lowercase();
    (name == "array_to_string" || name == "pg_catalog.array_to_string")
        && args.to_string().contains("reloptions")
}

fn null() -> Expr {
    Expr::Value(ValueWithSpan::from(Value::Null))
}

/// `SELECT e FROM pg_catalog.… [WHERE …]` with one projected expression and no
/// GROUP BY: a catalog lookup. Anything else (a user's tables above all) is `None`.
fn catalog_lookup(query: &mut Query) -> Option<&mut Select> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let only_catalog = !select.from.is_empty()
        && select.from.iter().all(|t| {
            std::iter::once(&t.relation)
                .chain(t.joins.iter().map(|j| &j.relation))
                .all(|r| {
                    matches!(r, TableFactor::Table { name, args: None, .. }
                    if name.to_string().to_lowercase().starts_with("pg_catalog."))
                })
        });
    let ungrouped = matches!(
        &select.group_by,
        datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty()
    );
    let single = select.projection.len() == 1
        && matches!(
            select.projection[0],
            SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
        );
    (only_catalog && ungrouped && single).then_some(select.as_mut())
}

fn projected(select: &mut Select) -> Option<&mut Expr> {
    match select.projection.first_mut()? {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

/// `e` → `function(e)`.
fn wrap_in_call(e: &mut Expr, function: &str) {
    let inner = std::mem::replace(e, null());
    *e = Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(function)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(inner))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
}

fn and(left: Expr, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(left))),
        op: BinaryOperator::And,
        right: Box::new(Expr::Nested(Box::new(right))),
    }
}

fn conjuncts(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        Expr::Nested(inner) => match *inner {
            e @ Expr::BinaryOp {
                op: BinaryOperator::And,
                ..
            } => conjuncts(e, out),
            e => out.push(Expr::Nested(Box::new(e))),
        },
        e => out.push(e),
    }
}

/// A condition's conjunct `(SELECT x FROM pg_catalog.t WHERE w) <op> y` becomes the
/// table `t` joined into the lookup and `w AND x <op> y` in its WHERE: the same rows
/// when `w` picks `t` by key. Returns the table and the predicate.
fn flatten_lookup_comparison(conjunct: &Expr) -> Option<(TableWithJoins, Expr)> {
    let inner = match conjunct {
        Expr::Nested(e) => e.as_ref(),
        e => e,
    };
    let Expr::BinaryOp { left, op, right } = inner else {
        return None;
    };
    let Expr::Subquery(query) = left.as_ref() else {
        return None;
    };
    let mut query = query.clone();
    let select = catalog_lookup(&mut query)?;
    if select.from.len() != 1 || !select.from[0].joins.is_empty() {
        return None;
    }
    let x = projected(select)?.clone();
    let comparison = Expr::BinaryOp {
        left: Box::new(x),
        op: op.clone(),
        right: right.clone(),
    };
    let predicate = match select.selection.clone() {
        Some(w) => and(w, comparison),
        None => comparison,
    };
    Some((select.from[0].clone(), predicate))
}

/// SQLAlchemy's column reflection asks, per column,
/// `CASE WHEN cond THEN (SELECT e FROM pg_catalog.… WHERE w) ELSE NULL END`: a
/// correlated scalar subquery inside `CASE`, which DataFusion cannot plan. Over the
/// catalog it equals `(SELECT max(e) FROM pg_catalog.… WHERE (w) AND (cond))`: when
/// `cond` is false no row matches and the answer is NULL; when it is true the lookup
/// is by key, so at most one row matches and `max` returns it. A conjunct of `cond`
/// that is itself a catalog lookup compared with something is joined in
/// ([`flatten_lookup_comparison`]). Only this shape, over `pg_catalog` tables only, is
/// rewritten; anything else is left for DataFusion.
fn guarded_catalog_lookup(expr: &mut Expr) -> bool {
    let Expr::Case {
        operand: None,
        conditions,
        else_result,
        ..
    } = expr
    else {
        return false;
    };
    let else_null = match else_result {
        None => true,
        Some(e) => matches!(e.as_ref(), Expr::Value(v) if v.value == Value::Null),
    };
    if conditions.len() != 1 || !else_null {
        return false;
    }
    let when = &mut conditions[0];
    let mut parts = vec![];
    conjuncts(when.condition.clone(), &mut parts);
    let mut joined = vec![];
    let mut guards = vec![];
    for part in parts {
        if part.to_string().to_uppercase().contains("SELECT") {
            match flatten_lookup_comparison(&part) {
                Some((table, predicate)) => {
                    joined.push(table);
                    guards.push(predicate);
                }
                None => return false,
            }
        } else {
            guards.push(part);
        }
    }
    let Expr::Subquery(query) = &mut when.result else {
        return false;
    };
    let Some(select) = catalog_lookup(query) else {
        return false;
    };
    let Some(e) = projected(select) else {
        return false;
    };
    wrap_in_call(e, "max");
    select.from.extend(joined);
    for guard in guards {
        select.selection = Some(match select.selection.take() {
            Some(w) => and(w, guard),
            None => guard,
        });
    }
    let subquery = std::mem::replace(&mut when.result, null());
    *expr = subquery;
    true
}

/// `'pg_class'::regclass` names a catalog table without its schema; PostgreSQL
/// finds it because `pg_catalog` is always searched first, datafusion-pg-catalog's
/// lookup searches `public` only and yields NULL (pgjdbc's `getTables` then loses
/// every table comment). Qualifies such literals with `pg_catalog.`; whether anything
/// changed. Applied to catalog-only statements as written, before the other rules.
pub fn qualify_catalog_regclass(statement: &mut Statement) -> bool {
    let mut changed = false;
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Cast {
            expr: inner,
            data_type,
            ..
        } = expr
            && data_type.to_string().eq_ignore_ascii_case("regclass")
            && let Expr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(name),
                ..
            }) = inner.as_mut()
            && name.starts_with("pg_")
            && !name.contains('.')
        {
            *name = format!("pg_catalog.{name}");
            changed = true;
        }
        ControlFlow::<()>::Continue(())
    });
    changed
}

/// Boolean columns of the catalog tables that clients compare with `'t'`/`'f'`
/// (psqlODBC's `SQLPrimaryKeys`: `i.indisprimary = 't'`). PostgreSQL reads the
/// literal as a boolean; DataFusion will not compare Boolean with Utf8.
const BOOLEAN_COLUMNS: [&str; 30] = [
    "indisprimary",
    "indisunique",
    "indisclustered",
    "indisvalid",
    "indisexclusion",
    "indimmediate",
    "indisready",
    "indislive",
    "indisreplident",
    "indcheckxmin",
    "indnullsnotdistinct",
    "relhasindex",
    "relisshared",
    "relhasrules",
    "relhastriggers",
    "relhassubclass",
    "relrowsecurity",
    "relforcerowsecurity",
    "relispopulated",
    "relispartition",
    "attnotnull",
    "atthasdef",
    "atthasmissing",
    "attisdropped",
    "attislocal",
    "condeferrable",
    "condeferred",
    "convalidated",
    "conislocal",
    "connoinherit",
];

/// `'t'`, `'true'`, `'f'`, … as PostgreSQL reads a boolean literal.
fn boolean_text(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn boolean_column(expr: &Expr) -> bool {
    let last = match expr {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    BOOLEAN_COLUMNS.contains(&last.to_ascii_lowercase().as_str())
}

/// `bool_column = 't'` → `bool_column = true` for the catalog's boolean columns.
fn boolean_literals(expr: &mut Expr) -> bool {
    let Expr::BinaryOp { left, op, right } = expr else {
        return false;
    };
    if !matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
        return false;
    }
    let literal = if boolean_column(left) {
        right
    } else if boolean_column(right) {
        left
    } else {
        return false;
    };
    if let Expr::Value(ValueWithSpan {
        value: Value::SingleQuotedString(text),
        ..
    }) = literal.as_ref()
        && let Some(b) = boolean_text(text)
    {
        **literal = Expr::Value(ValueWithSpan::from(Value::Boolean(b)));
        return true;
    }
    false
}

/// `SELECT NULL, NULL, relkind FROM …` (psqlODBC's `SQLTables` listings): PostgreSQL
/// allows two result columns of the same name, DataFusion does not. The second and
/// later unnamed expressions whose text repeats get PostgreSQL's name for an unnamed
/// column, `?column?`, numbered. Clients read these by position.
fn unique_column_names(statement: &mut Statement) -> bool {
    let mut changed = false;
    let _ = datafusion::sql::sqlparser::ast::visit_statements_mut(statement, |s| {
        if let Statement::Query(q) = s {
            changed |= unique_names_in(q);
        }
        ControlFlow::<()>::Continue(())
    });
    changed
}

fn unique_names_in(query: &mut Query) -> bool {
    fn in_set(body: &mut SetExpr) -> bool {
        match body {
            SetExpr::Select(select) => {
                let mut seen = std::collections::HashSet::new();
                let mut changed = false;
                for (n, item) in select.projection.iter_mut().enumerate() {
                    let SelectItem::UnnamedExpr(e) = &*item else {
                        continue;
                    };
                    let (name, column) = match e {
                        Expr::Identifier(i) => (i.value.clone(), true),
                        Expr::CompoundIdentifier(p) => {
                            (p.last().map(|i| i.value.clone()).unwrap_or_default(), true)
                        }
                        other => (other.to_string(), false),
                    };
                    if !seen.insert(name) && !column {
                        let expr = e.clone();
                        *item = SelectItem::ExprWithAlias {
                            expr,
                            alias: Ident::with_quote('"', format!("?column?{}", n + 1)),
                        };
                        changed = true;
                    }
                }
                changed
            }
            SetExpr::Query(q) => unique_names_in(q),
            SetExpr::SetOperation { left, right, .. } => in_set(left) | in_set(right),
            _ => false,
        }
    }
    in_set(query.body.as_mut())
}

/// `a operator(pg_catalog.=) b`, as psqlODBC 17 and later write every comparison of
/// their catalog queries (so that a user's operators cannot capture them): the
/// built-in operator itself.
fn qualified_operator(expr: &mut Expr) -> bool {
    let Expr::BinaryOp { op, .. } = expr else {
        return false;
    };
    let BinaryOperator::PGCustomBinaryOperator(parts) = op else {
        return false;
    };
    let [schema, symbol] = parts.as_slice() else {
        return false;
    };
    if !schema.eq_ignore_ascii_case("pg_catalog") {
        return false;
    }
    let plain = match symbol.as_str() {
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        ">" => BinaryOperator::Gt,
        "<=" => BinaryOperator::LtEq,
        ">=" => BinaryOperator::GtEq,
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "||" => BinaryOperator::StringConcat,
        _ => return false,
    };
    *op = plain;
    true
}

/// `'townstat'::name` (psqlODBC's `SQLForeignKeys`): PostgreSQL's `name` type is
/// text here.
fn name_type(expr: &mut Expr) -> bool {
    if let Expr::Cast { data_type, .. } = expr
        && let datafusion::sql::sqlparser::ast::DataType::Custom(name, modifiers) = data_type
        && modifiers.is_empty()
        && matches!(
            name.to_string().to_ascii_lowercase().as_str(),
            "name" | "pg_catalog.name"
        )
    {
        *data_type = datafusion::sql::sqlparser::ast::DataType::Text;
        return true;
    }
    false
}

/// `SELECT …, generate_series(array_lower(conkey, 1), array_upper(conkey, 1)) AS i`
/// (psqlODBC's `SQLForeignKeys`) and `SELECT unnest(ix.indkey) attnum,
/// generate_subscripts(ix.indkey, 1) ord` (SQLAlchemy's primary key reflection): in
/// PostgreSQL a set-returning function in a SELECT list makes one row per value;
/// DataFusion's `generate_series` there is one list value, and `generate_subscripts`
/// (see `catalog.rs`) is the list of subscripts. `unnest(…)` of them is the same rows
/// in DataFusion (several unnests in one list are zipped, as PostgreSQL zips them).
fn set_returning_projections(statement: &mut Statement) -> bool {
    fn is_series(e: &Expr) -> bool {
        matches!(e, Expr::Function(f)
        if matches!(
            f.name.to_string().to_ascii_lowercase().trim_start_matches("pg_catalog."),
            "generate_series" | "generate_subscripts"
        ))
    }
    struct Series(bool);
    impl datafusion::sql::sqlparser::ast::VisitorMut for Series {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let SetExpr::Select(select) = query.body.as_mut() {
                for item in &mut select.projection {
                    match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }
                            if is_series(e) =>
                        {
                            wrap_in_call(e, "unnest");
                            self.0 = true;
                        }
                        _ => {}
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Series(false);
    let _ = datafusion::sql::sqlparser::ast::VisitMut::visit(statement, &mut v);
    v.0
}

/// The fixes of catalog-only statements, applied after datafusion-pg-catalog's
/// parser: boolean literals of boolean columns, `operator(pg_catalog.=)` and
/// `::name`, set-returning functions in SELECT lists, duplicate unnamed columns
/// named. Whether anything changed.
pub fn fix_catalog_statement(statement: &mut Statement) -> bool {
    let mut changed = false;
    let _ = visit_expressions_mut(statement, |expr| {
        changed |= qualified_operator(expr);
        changed |= name_type(expr);
        changed |= boolean_literals(expr);
        ControlFlow::<()>::Continue(())
    });
    changed |= set_returning_projections(statement);
    changed | unique_column_names(statement)
}

/// Rewrites a parsed statement in place; whether anything changed.
pub fn rewrite(statement: &mut Statement) -> bool {
    let mut changed = false;
    let _ = visit_expressions_mut(statement, |expr| {
        if storage_options(expr) {
            *expr = null();
            changed = true;
        } else {
            changed |= guarded_catalog_lookup(expr);
        }
        ControlFlow::<()>::Continue(())
    });
    changed
}

/// `pg_stat_activity`, which Superset's "Stop query" reads (`SELECT
/// pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = '…'`): each reference
/// becomes a derived table of the given connections, `(pid, usename, datname,
/// state)`. Built per statement from the server's connections (the caller's user's
/// only, as PostgreSQL shows other users' rows without their details). Whether
/// anything changed.
pub fn stat_activity(statement: &mut Statement, rows: impl FnOnce() -> Vec<(i32, String)>) -> bool {
    use datafusion::sql::sqlparser::ast::TableAlias;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    fn subquery(rows: &[(i32, String)]) -> Option<Box<Query>> {
        let values: Vec<String> = rows
            .iter()
            .map(|(pid, user)| {
                format!(
                    "(CAST({pid} AS INT), '{}', 'townstat', 'active')",
                    user.replace('\'', "''")
                )
            })
            .collect();
        let sql = if values.is_empty() {
            "SELECT CAST(NULL AS INT) AS pid, CAST(NULL AS TEXT) AS usename, \
             CAST(NULL AS TEXT) AS datname, CAST(NULL AS TEXT) AS state WHERE false"
                .to_string()
        } else {
            format!(
                "SELECT * FROM (VALUES {}) AS a(pid, usename, datname, state)",
                values.join(", ")
            )
        };
        match Parser::parse_sql(&PostgreSqlDialect {}, &sql).map(|mut v| v.pop()) {
            Ok(Some(Statement::Query(q))) => Some(q),
            _ => None,
        }
    }
    fn is_activity(name: &ObjectName) -> bool {
        let last = name.0.last().map(|p| p.to_string().to_ascii_lowercase());
        let schema_ok = name.0.len() == 1
            || (name.0.len() == 2 && name.0[0].to_string().eq_ignore_ascii_case("pg_catalog"));
        schema_ok && last.as_deref() == Some("pg_stat_activity")
    }
    struct Activity<F> {
        rows: Option<F>,
        subquery: Option<Box<Query>>,
        changed: bool,
    }
    impl<F: FnOnce() -> Vec<(i32, String)>> datafusion::sql::sqlparser::ast::VisitorMut
        for Activity<F>
    {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table { name, alias, .. } = factor else {
                return ControlFlow::Continue(());
            };
            if !is_activity(name) {
                return ControlFlow::Continue(());
            }
            if self.subquery.is_none()
                && let Some(rows) = self.rows.take()
            {
                self.subquery = subquery(&rows());
            }
            let Some(q) = &self.subquery else {
                return ControlFlow::Continue(());
            };
            let alias = alias.clone().unwrap_or(TableAlias {
                name: Ident::new("pg_stat_activity"),
                columns: vec![],
                explicit: true,
                at: None,
            });
            *factor = TableFactor::Derived {
                lateral: false,
                subquery: q.clone(),
                alias: Some(alias),
                sample: None,
            };
            self.changed = true;
            ControlFlow::Continue(())
        }
    }
    let mut v = Activity {
        rows: Some(rows),
        subquery: None,
        changed: false,
    };
    let _ = datafusion::sql::sqlparser::ast::VisitMut::visit(statement, &mut v);
    v.changed
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parsed(sql: &str) -> String {
        Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap()[0].to_string()
    }

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        super::rewrite(&mut s);
        s.to_string()
    }

    #[test]
    fn guarded_catalog_lookups_become_aggregated_lookups() {
        assert_eq!(
            rewritten(
                "SELECT CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid) \
                 FROM pg_catalog.pg_attrdef d WHERE d.adnum = a.attnum) ELSE NULL END \
                 FROM pg_catalog.pg_attribute a"
            ),
            "SELECT (SELECT max(pg_get_expr(d.adbin, d.adrelid)) FROM pg_catalog.pg_attrdef d \
             WHERE (d.adnum = a.attnum) AND (a.atthasdef)) FROM pg_catalog.pg_attribute a"
        );
        assert_eq!(
            rewritten(
                "SELECT CASE WHEN (a.attcollation != 0 AND (SELECT t.typcollation FROM pg_catalog.pg_type t \
                 WHERE t.oid = a.atttypid) != a.attcollation) THEN (SELECT c.collname \
                 FROM pg_catalog.pg_collation c WHERE c.oid = a.attcollation) ELSE NULL END \
                 FROM pg_catalog.pg_attribute a"
            ),
            "SELECT (SELECT max(c.collname) FROM pg_catalog.pg_collation c, pg_catalog.pg_type t \
             WHERE ((c.oid = a.attcollation) AND (a.attcollation <> 0)) \
             AND ((t.oid = a.atttypid) AND (t.typcollation <> a.attcollation))) \
             FROM pg_catalog.pg_attribute a"
        );
    }

    #[test]
    fn catalog_regclass_literals_are_qualified() {
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM pg_catalog.pg_description d WHERE d.classoid = 'pg_class'::regclass \
             AND d.objoid = 'public.town'::regclass",
        )
        .unwrap()
        .remove(0);
        assert!(super::qualify_catalog_regclass(&mut s));
        assert_eq!(
            s.to_string(),
            "SELECT 1 FROM pg_catalog.pg_description d WHERE d.classoid = 'pg_catalog.pg_class'::REGCLASS \
             AND d.objoid = 'public.town'::REGCLASS"
        );
    }

    #[test]
    fn catalog_statements_get_booleans_and_unique_names() {
        let fixed = |sql: &str| {
            let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
                .unwrap()
                .remove(0);
            let changed = super::fix_catalog_statement(&mut s);
            (changed, s.to_string())
        };
        assert_eq!(
            fixed(
                "SELECT a.attname FROM pg_catalog.pg_index i, pg_catalog.pg_attribute a \
                   WHERE i.indisprimary = 't' AND 'f' <> i.indisunique AND a.relpersistence = 't'"
            ),
            (
                true,
                "SELECT a.attname FROM pg_catalog.pg_index i, pg_catalog.pg_attribute a \
                 WHERE i.indisprimary = true AND false <> i.indisunique AND a.relpersistence = 't'"
                    .to_string()
            )
        );
        assert_eq!(
            fixed("SELECT NULL, NULL, relkind FROM (SELECT 'r' AS relkind UNION SELECT 'v') AS a"),
            (
                true,
                "SELECT NULL, NULL AS \"?column?2\", relkind FROM (SELECT 'r' AS relkind UNION \
                 SELECT 'v') AS a"
                    .to_string()
            )
        );
        assert_eq!(
            fixed("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"),
            (
                false,
                "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c".to_string()
            )
        );
    }

    #[test]
    fn user_queries_are_never_rewritten() {
        let user = "SELECT CASE WHEN x.ok THEN (SELECT revenue FROM town_year t \
                    WHERE t.town_id = x.town_id) ELSE NULL END FROM town x";
        assert_eq!(rewritten(user), parsed(user));
    }

    #[test]
    fn pg_stat_activity_becomes_the_given_connections() {
        let mut statements = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = '7'",
        )
        .unwrap();
        let changed = super::stat_activity(&mut statements[0], || {
            vec![(7, "alice".to_string()), (9, "alice".to_string())]
        });
        assert!(changed);
        let text = statements[0].to_string();
        assert!(
            text.contains(
                "VALUES (CAST(7 AS INT), 'alice', 'townstat', 'active'), (CAST(9 AS INT)"
            ) && text.contains("AS pg_stat_activity"),
            "{text}"
        );
        // A statement without it is left alone, and the rows are never asked for.
        let mut other = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT 1 FROM town").unwrap();
        assert!(!super::stat_activity(&mut other[0], || panic!(
            "not needed"
        )));
    }
}
