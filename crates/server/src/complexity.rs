//! A statement's size and nesting, bounded before anything recurses over it.
//!
//! sqlparser reads `1+1+…+1` in a loop, but the tree it builds is as deep as the
//! chain is long, and everything after it recurses over that tree: the policy's
//! visitor, `Display`, `Clone`, `Drop`, DataFusion's planner and optimizer. 30,000
//! terms (60 KB of SQL) overflowed a 32 MiB worker stack and aborted the whole server;
//! 10,000 kept the planner busy for 155 s, beyond any statement deadline. So the
//! text is scanned first, in one pass over sqlparser's tokens with no recursion, and a
//! statement is refused with SQLSTATE 54001 ("statement too complex", PostgreSQL's
//! code for the same limit) when it is longer than [`MAX_STATEMENT_BYTES`] or its
//! expressions may nest deeper than [`MAX_EXPRESSION_DEPTH`].
//!
//! The depth computed is an upper bound of the syntax tree's: within each pair of
//! parentheses (or `CASE … END`), the binary operators and subscripts since the last
//! comma or clause keyword (a chain `a OR b OR c` nests one level per operator; the
//! `FROM` of `IS DISTINCT FROM`, `OVER` and `DISTINCT` end no chain, so that chains
//! of such terms are counted whole), plus the `UNION`s and `JOIN`s of that
//! level (a chain of them nests too), plus one for the parentheses themselves, summed
//! over the open parentheses. Long flat lists (`IN (1, 2, …)`, `VALUES`, `CASE WHEN
//! … WHEN …`, select lists) do not nest and are not limited beyond the byte size.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// SQLSTATE 54001, statement too complex.
pub const TOO_COMPLEX: &str = "54001";

/// The longest statement text accepted: 1 MiB. BI tools' generated SQL stays far
/// below; the planner's time grows with the text.
pub const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// The deepest expression nesting accepted (see the module doc). A filter of a few
/// hundred `OR`ed conditions passes; the planner's time grows faster than linearly in
/// the depth (10,000 took 155 s), and its stack with it.
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

/// Why a statement is too complex: the message sent with SQLSTATE 54001.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooComplex(pub String);

/// Keywords that start a new clause or a new item: the operator chain ends there.
const CLAUSES: [Keyword; 21] = [
    Keyword::SELECT,
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::BY,
    Keyword::HAVING,
    Keyword::ORDER,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::FETCH,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::ON,
    Keyword::USING,
    Keyword::AS,
    Keyword::WITH,
    Keyword::VALUES,
    Keyword::WINDOW,
    Keyword::PARTITION,
    Keyword::QUALIFY,
];

/// Keywords whose chains nest across clauses.
const NESTING: [Keyword; 4] = [
    Keyword::UNION,
    Keyword::INTERSECT,
    Keyword::EXCEPT,
    Keyword::JOIN,
];

/// Keywords that are binary (or chained unary) operators.
const OPERATORS: [Keyword; 11] = [
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::IS,
    Keyword::IN,
    Keyword::LIKE,
    Keyword::ILIKE,
    Keyword::BETWEEN,
    Keyword::SIMILAR,
    Keyword::AT,
    Keyword::COLLATE,
];

/// One level of parentheses.
#[derive(Default, Clone, Copy)]
struct Level {
    /// Operators since the last comma or clause keyword.
    chain: usize,
    /// `UNION`s and `JOIN`s at this level.
    nesting: usize,
}

impl Level {
    fn depth(self) -> usize {
        self.chain + self.nesting + 1
    }
}

/// Checks the size and the nesting bound of a statement text (several statements
/// separated by `;` are measured one by one). A text the tokenizer cannot read passes:
/// the parser reports it.
pub fn check(sql: &str) -> Result<(), TooComplex> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(TooComplex(format!(
            "statement too complex: {} bytes of SQL, townstat serve accepts at most {} \
             ({} MiB)",
            sql.len(),
            MAX_STATEMENT_BYTES,
            MAX_STATEMENT_BYTES >> 20
        )));
    }
    let depth = nesting_bound(sql);
    if depth > MAX_EXPRESSION_DEPTH {
        return Err(TooComplex(format!(
            "statement too complex: its expressions may nest {depth} levels deep, townstat \
             serve accepts at most {MAX_EXPRESSION_DEPTH}; write long lists of \
             alternatives as IN (…), or split the statement"
        )));
    }
    Ok(())
}

/// The nesting bound of the module doc, over every statement in `sql`.
pub fn nesting_bound(sql: &str) -> usize {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return 0;
    };
    let mut levels = vec![Level::default()];
    // The sum of the open levels' depths, kept up to date.
    let mut deepest = 0;
    let total = |levels: &[Level]| levels.iter().map(|l| l.depth()).sum::<usize>();
    // The keyword before this token, whitespace skipped: `FROM` after `DISTINCT` is
    // part of the operator `IS [NOT] DISTINCT FROM`, not a clause.
    let mut previous = Keyword::NoKeyword;
    for token in &tokens {
        let top = levels.len() - 1;
        match token {
            // `CASE … END` is a parenthesis: its WHENs are a flat list inside it, and a
            // chain around it goes on past it (`CASE … END + CASE … END + …`).
            Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::CASE => {
                levels.push(Level::default())
            }
            Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::END => {
                if levels.len() > 1 {
                    levels.pop();
                }
            }
            Token::LParen => levels.push(Level::default()),
            // A subscript `a[1][2]…` nests one access in the next.
            Token::LBracket => {
                levels[top].chain += 1;
                levels.push(Level::default())
            }
            Token::RParen | Token::RBracket => {
                if levels.len() > 1 {
                    levels.pop();
                }
            }
            Token::Comma => levels[top].chain = 0,
            Token::SemiColon => levels = vec![Level::default()],
            Token::Word(w)
                if w.quote_style.is_none()
                    && w.keyword == Keyword::FROM
                    && previous == Keyword::DISTINCT => {}
            Token::Word(w) if w.quote_style.is_none() && CLAUSES.contains(&w.keyword) => {
                levels[top].chain = 0
            }
            Token::Word(w) if w.quote_style.is_none() && NESTING.contains(&w.keyword) => {
                levels[top].nesting += 1
            }
            Token::Word(w) if w.quote_style.is_none() && OPERATORS.contains(&w.keyword) => {
                levels[top].chain += 1
            }
            Token::Word(_)
            | Token::Number(..)
            | Token::Whitespace(_)
            | Token::Period
            | Token::Colon
            | Token::Placeholder(_)
            | Token::LBrace
            | Token::RBrace
            | Token::EOF => {}
            // Literals of every quoting style.
            t if is_literal(t) => {}
            // Every other token is an operator: `+`, `||`, `=`, `::`, `->`, `~`, …
            _ => levels[top].chain += 1,
        }
        match token {
            Token::Whitespace(_) => {}
            Token::Word(w) if w.quote_style.is_none() => previous = w.keyword,
            _ => previous = Keyword::NoKeyword,
        }
        // Cheap enough: the number of open levels is bounded by the parser's own
        // recursion limit for any statement that parses at all.
        if levels.len() <= 64 {
            deepest = deepest.max(total(&levels));
        } else {
            // So many parentheses will not parse: report them as deep.
            deepest = deepest.max(levels.len());
        }
    }
    deepest
}

fn is_literal(token: &Token) -> bool {
    matches!(
        token,
        Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(op: &str, n: usize) -> String {
        let terms = vec!["1"; n];
        format!("SELECT {}", terms.join(op))
    }

    #[test]
    fn chains_nest_lists_do_not() {
        assert_eq!(nesting_bound("SELECT 1"), 1);
        assert_eq!(nesting_bound(&chain("+", 10)), 10);
        assert_eq!(nesting_bound(&chain(" OR ", 10)), 10);
        assert_eq!(nesting_bound("SELECT (1+(1+(1+1)))"), 7);
        // Flat lists: commas and WHEN end a chain.
        let list: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        let sql = format!("SELECT * FROM t WHERE x IN ({})", list.join(", "));
        assert!(nesting_bound(&sql) < 10, "{}", nesting_bound(&sql));
        let cases: String = (0..3000)
            .map(|i| format!(" WHEN x = {i} THEN {i}"))
            .collect();
        assert!(nesting_bound(&format!("SELECT CASE{cases} END FROM t")) < 10);
        // UNION chains nest across their SELECTs.
        let unions = vec!["SELECT 1"; 2000].join(" UNION ALL ");
        assert!(nesting_bound(&unions) >= 2000);
        // Quoted words are names, not operators; strings are literals.
        assert_eq!(nesting_bound("SELECT \"or\", 'and or and' FROM t"), 1);
    }

    #[test]
    fn limits() {
        assert!(check(&chain("+", 900)).is_ok());
        let e = check(&chain("+", 30_000)).unwrap_err();
        assert!(e.0.contains("30000 levels"), "{}", e.0);
        let e = check(&format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES))).unwrap_err();
        assert!(e.0.contains("bytes of SQL"), "{}", e.0);
        // A statement after a long one is measured on its own.
        assert!(check(&format!("{}; {}", chain("+", 900), chain("+", 900))).is_ok());
    }

    /// Parses, checks, prints and drops a statement on a thread with the server's
    /// worker stack (32 MiB): what the server does before planning. A stack overflow
    /// aborts the test process, which fails the test run.
    fn survives_the_parse_path(sql: String) {
        std::thread::Builder::new()
            .stack_size(32 << 20)
            .spawn(move || {
                let parsed = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                    &PostgreSqlDialect {},
                    &sql,
                );
                if let Ok(mut statements) = parsed {
                    for s in &mut statements {
                        crate::policy::normalize(s);
                        let _ = crate::policy::check(s);
                        let _ = s.to_string();
                    }
                }
            })
            .expect("thread")
            .join()
            .expect("the parse path does not panic");
    }

    /// Chains whose operators are separated by keywords that may stand inside an
    /// expression (`CASE … END`, `IS DISTINCT FROM`, `OVER`, `AS` in a cast, a
    /// subquery's `SELECT`), and unary, postfix and subscript chains: 30,000 terms of
    /// each are refused before parsing (the planner would recurse over every one), and
    /// at the parse path's worst the server's stack holds. Found by reading the scanner
    /// as an attacker would: the first three passed it.
    #[test]
    fn chains_through_keywords_are_bounded() {
        let n = 30_000;
        let terms = [
            "CASE WHEN true THEN 1 END",
            "1 IS DISTINCT FROM 1",
            "1 IS NOT DISTINCT FROM 1",
            "sum(1) OVER ()",
            "CAST(1 AS INT)",
            "(SELECT 1)",
            "x::INT",
            "'a' COLLATE \"C\"",
            "EXISTS (SELECT 1)",
            "1 BETWEEN 0 AND 2",
            "INTERVAL '1 day'",
            "DATE '2020-01-01'",
        ];
        for term in terms {
            for op in [" + ", " OR ", " || ", " = "] {
                let sql = format!("SELECT {}", vec![term; n].join(op));
                assert!(check(&sql).is_err(), "accepted: {term}{op}… ({n} terms)");
                survives_the_parse_path(sql);
            }
        }
        for (pre, post) in [
            ("NOT ", ""),
            ("- ", ""),
            ("", "::INT"),
            ("", " IS NULL"),
            ("", "[1]"),
        ] {
            let sql = format!("SELECT {}1{}", pre.repeat(n), post.repeat(n));
            assert!(check(&sql).is_err(), "accepted: {pre}…1…{post}");
            survives_the_parse_path(sql);
        }
        // What a BI tool writes still passes: a long CASE, DISTINCT, window functions.
        let cases: String = (0..3000)
            .map(|i| format!(" WHEN x = {i} THEN {i}"))
            .collect();
        assert!(check(&format!("SELECT CASE{cases} END + 1 FROM t")).is_ok());
        assert!(
            check(
                "SELECT DISTINCT a, sum(b) OVER (PARTITION BY a) FROM t WHERE a IS DISTINCT FROM b"
            )
            .is_ok()
        );
    }
}
