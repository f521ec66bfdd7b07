//! String functions whose output is bounded before it is built.
//!
//! `repeat`, `lpad`, `rpad`, `concat`, `concat_ws`, `replace` and `regexp_replace`
//! build new strings whose size the arguments choose: `repeat('x', 1500000000)` asks
//! for 1.5 GB in one value, and DataFusion builds it outside any memory pool (a
//! projection's output is not accounted), so `--query-memory` does not stop it: 5.8
//! GiB were measured for `SELECT length(repeat('x', 1500000000))` under a 256 MiB
//! limit. Each of these functions is wrapped by one that first computes, from its
//! arguments alone, an upper bound of the bytes one call (one batch) would build, and
//! refuses with a `ResourcesExhausted` error (SQLSTATE 53200 on the server) naming the
//! function and the size when it is beyond [`MAX_STRING_BUILD_BYTES`]. Under the
//! bound the original function runs unchanged.
//!
//! Not covered: `||` is an operator, not a function; its output is the sum of its
//! inputs, which these bounds and the server's expression-depth limit keep finite.

use std::any::Any;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// The most bytes one call of a string-building function may produce: 64 MiB, far
/// beyond any label, code or report text, and far below what would hurt the machine.
pub const MAX_STRING_BUILD_BYTES: u64 = 64 << 20;

/// How a function's output size is bounded from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bound {
    /// `repeat(s, n)`: len(s) × n.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: n characters of at most the widest of s and fill.
    Pad,
    /// `concat(a, …)`: the sum of the arguments.
    Concat,
    /// `concat_ws(sep, a, …)`: the arguments and a separator between each.
    ConcatWs,
    /// `replace(s, from, to)`: each occurrence of `from` becomes `to`.
    Replace,
    /// `regexp_replace(s, pattern, to [, flags])`: at worst an empty match at every
    /// position, each replaced by `to` (which may repeat the match: counted twice).
    RegexpReplace,
}

/// The functions wrapped, by name.
const BOUNDED: [(&str, Bound); 7] = [
    ("repeat", Bound::Repeat),
    ("lpad", Bound::Pad),
    ("rpad", Bound::Pad),
    ("concat", Bound::Concat),
    ("concat_ws", Bound::ConcatWs),
    ("replace", Bound::Replace),
    ("regexp_replace", Bound::RegexpReplace),
];

/// Replaces the string-building functions registered in `ctx` by bounded ones (see
/// the module doc). Idempotent; a function the context lacks is skipped.
pub fn register(ctx: &SessionContext) {
    let state = ctx.state();
    let functions = state.scalar_functions();
    for (name, bound) in BOUNDED {
        let Some(udf) = functions.get(name) else {
            continue;
        };
        let wrapped: &dyn Any = udf.inner().as_ref();
        if wrapped.is::<Capped>() {
            continue;
        }
        ctx.register_udf(ScalarUDF::new_from_impl(Capped {
            inner: udf.as_ref().clone(),
            bound,
            cap: MAX_STRING_BUILD_BYTES,
        }));
    }
}

/// A string function refused beyond `cap` output bytes per call.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Capped {
    inner: ScalarUDF,
    bound: Bound,
    cap: u64,
}

/// The byte length of a string argument at `row` (0 for NULL or a non-string).
fn str_len(arg: &ColumnarValue, row: usize) -> u64 {
    let n = match arg {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => s.len(),
        ColumnarValue::Scalar(_) => 0,
        ColumnarValue::Array(a) if a.is_null(row) => 0,
        ColumnarValue::Array(a) => match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(row).len(),
            DataType::LargeUtf8 => a.as_string::<i64>().value(row).len(),
            DataType::Utf8View => a.as_string_view().value(row).len(),
            _ => 0,
        },
    };
    n as u64
}

/// The most bytes any character of a string argument at `row` takes (1 for ASCII).
fn widest_char(arg: &ColumnarValue, row: usize) -> u64 {
    let wide = |s: &str| s.chars().map(char::len_utf8).max().unwrap_or(1) as u64;
    match arg {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => wide(s),
        ColumnarValue::Array(a) if !a.is_null(row) => match a.data_type() {
            DataType::Utf8 => wide(a.as_string::<i32>().value(row)),
            DataType::LargeUtf8 => wide(a.as_string::<i64>().value(row)),
            DataType::Utf8View => wide(a.as_string_view().value(row)),
            _ => 1,
        },
        _ => 1,
    }
}

/// An integer argument at `row`, if it is one and not NULL.
fn int_at(arg: &ColumnarValue, row: usize) -> Option<i64> {
    let value = match arg {
        ColumnarValue::Scalar(s) => s.clone(),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(a, row).ok()?,
    };
    match value {
        ScalarValue::Int64(v) => v,
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::UInt64(v) => v.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        ScalarValue::UInt32(v) => v.map(i64::from),
        ScalarValue::UInt16(v) => v.map(i64::from),
        ScalarValue::UInt8(v) => v.map(i64::from),
        _ => None,
    }
}

impl Bound {
    /// An upper bound of the bytes one row's value takes.
    fn row(self, args: &[ColumnarValue], row: usize) -> u64 {
        let len = |i: usize| args.get(i).map_or(0, |a| str_len(a, row));
        match self {
            Bound::Repeat => {
                let n = args.get(1).and_then(|a| int_at(a, row)).unwrap_or(0).max(0) as u64;
                len(0).saturating_mul(n)
            }
            Bound::Pad => {
                let n = args.get(1).and_then(|a| int_at(a, row)).unwrap_or(0).max(0) as u64;
                let widest = args
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != 1)
                    .map(|(_, a)| widest_char(a, row))
                    .max()
                    .unwrap_or(1);
                n.saturating_mul(widest).max(len(0))
            }
            Bound::Concat => (0..args.len()).map(len).fold(0, u64::saturating_add),
            Bound::ConcatWs => {
                let parts = args.len().saturating_sub(1) as u64;
                (1..args.len())
                    .map(len)
                    .fold(len(0).saturating_mul(parts), u64::saturating_add)
            }
            Bound::Replace => {
                let (s, from, to) = (len(0), len(1), len(2));
                match s.checked_div(from) {
                    Some(times) => s.saturating_add(times.saturating_mul(to)),
                    None => s,
                }
            }
            Bound::RegexpReplace => {
                let (s, to) = (len(0), len(2));
                s.saturating_add(
                    s.saturating_add(1)
                        .saturating_mul(to.saturating_mul(2).saturating_add(s)),
                )
            }
        }
    }

    /// An upper bound of the bytes a call on `rows` rows builds.
    fn call(self, args: &[ColumnarValue], rows: usize) -> u64 {
        let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        if all_scalar {
            // One value, whatever the batch size: a scalar result stays scalar.
            return self.row(args, 0);
        }
        (0..rows)
            .map(|row| self.row(args, row))
            .fold(0, u64::saturating_add)
    }
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.inner().return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = self.bound.call(&args.args, args.number_rows);
        if bytes > self.cap {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would build {} MiB of text in one call; townstat allows {} MiB \
                 (MAX_STRING_BUILD_BYTES)",
                self.name(),
                bytes >> 20,
                self.cap >> 20
            )));
        }
        self.inner.invoke_with_args(args)
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn one(ctx: &SessionContext, sql: &str) -> Result<String> {
        let batches = ctx.sql(sql).await?.collect().await?;
        let column = batches[0].column(0);
        Ok(arrow::util::display::array_value_to_string(column, 0)?)
    }

    #[tokio::test]
    async fn string_builders_refuse_huge_outputs_and_work_below() {
        let ctx = SessionContext::new();
        register(&ctx);
        register(&ctx); // idempotent
        for sql in [
            "SELECT length(repeat('x', 1500000000))",
            "SELECT length(lpad('x', 1500000000))",
            "SELECT length(rpad('x', 100000000, 'ab'))",
            "SELECT length(repeat(s, 2000)) FROM (VALUES ('abcdefghij'), ('k')) t(s) \
             CROSS JOIN generate_series(1, 4000)",
        ] {
            let e = one(&ctx, sql).await.unwrap_err();
            assert!(
                matches!(e.find_root(), DataFusionError::ResourcesExhausted(m) if m.contains("MiB of text")),
                "{sql}: {e}"
            );
        }
        assert_eq!(
            one(&ctx, "SELECT length(repeat('ab', 1000))")
                .await
                .unwrap(),
            "2000"
        );
        assert_eq!(one(&ctx, "SELECT lpad('7', 3, '0')").await.unwrap(), "007");
        assert_eq!(one(&ctx, "SELECT rpad('a', 3, 'é')").await.unwrap(), "aéé");
        assert_eq!(
            one(&ctx, "SELECT concat('a', 'b', NULL, 'c')")
                .await
                .unwrap(),
            "abc"
        );
        assert_eq!(
            one(&ctx, "SELECT concat_ws('-', 'a', 'b')").await.unwrap(),
            "a-b"
        );
        assert_eq!(
            one(&ctx, "SELECT replace('aXa', 'X', 'YY')").await.unwrap(),
            "aYYa"
        );
        assert_eq!(
            one(&ctx, "SELECT regexp_replace('abc', 'b', 'Z')")
                .await
                .unwrap(),
            "aZc"
        );
    }

    #[test]
    fn bounds_are_upper_bounds() {
        let s = |v: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.into())));
        let n = |v: i64| ColumnarValue::Scalar(ScalarValue::Int64(Some(v)));
        assert_eq!(Bound::Repeat.call(&[s("ab"), n(5)], 8192), 10);
        assert_eq!(Bound::Repeat.call(&[s("ab"), n(-5)], 1), 0);
        assert_eq!(Bound::Pad.call(&[s("abc"), n(2)], 1), 3);
        assert_eq!(Bound::Pad.call(&[s("a"), n(4), s("é")], 1), 8);
        assert_eq!(Bound::Concat.call(&[s("ab"), s("c")], 1), 3);
        assert_eq!(Bound::ConcatWs.call(&[s("--"), s("a"), s("b")], 1), 6);
        assert_eq!(Bound::Replace.call(&[s("aaaa"), s("a"), s("bbb")], 1), 16);
        assert_eq!(Bound::Replace.call(&[s("aaaa"), s(""), s("bbb")], 1), 4);
    }
}
