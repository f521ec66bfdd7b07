//! Rewrites of the catalog queries client tools send that DataFusion cannot plan,
//! where the answer is known exactly without planning them.
//!
//! Only catalog facts that are always the same here are rewritten; a user's query is
//! never changed in meaning.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArguments, Statement, Value, ValueWithSpan, visit_expressions_mut,
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

/// Rewrites a parsed statement in place.
pub fn rewrite(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if storage_options(expr) {
            *expr = Expr::Value(ValueWithSpan::from(Value::Null));
        }
        ControlFlow::<()>::Continue(())
    });
}
