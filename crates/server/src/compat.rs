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
    let inner = std::mem::replace(e, null());
    *e = Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("max")]),
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
    fn user_queries_are_never_rewritten() {
        let user = "SELECT CASE WHEN x.ok THEN (SELECT revenue FROM town_year t \
                    WHERE t.town_id = x.town_id) ELSE NULL END FROM town x";
        assert_eq!(rewritten(user), parsed(user));
    }
}
#[cfg(test)]
mod debug_tests {
    #[test]
    fn show() {
        let p = datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
        let mut s = p.parse("SELECT a.attname, CASE WHEN a.atthasdef THEN (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d WHERE a.atthasdef AND d.adrelid = a.attrelid AND d.adnum = a.attnum) ELSE NULL END AS dflt FROM pg_catalog.pg_attribute a LIMIT 2").unwrap();
        super::rewrite(&mut s[0]);
        println!("REWRITTEN {}", s[0]);
        let again = p.parse(&s[0].to_string()).unwrap();
        println!("AGAIN {}", again[0]);
    }
}
