"""The ingest peer in DuckDB: townstat's normalization and validation rules written as
SQL (macros for the value rules, one generated SELECT per kind for the row rules),
de-duplication with window functions, outputs written with COPY … TO Parquet.

Python only plans files (ingest_common.plan_kind: encoding, delimiter, header row,
column mapping, from the first rows) and generates SQL text; every row is read, parsed,
checked and written by DuckDB. Two things are not DuckDB's own:
  * GBK files are transcoded to UTF-8 by Python first (DuckDB reads GB18030 only
    through its `encodings` extension, which is downloaded from the network);
  * XLSX sheets are read by fastexcel (calamine) into Arrow and handed to DuckDB
    (the `excel` extension needs the network too).

Where this peer differs from townstat is listed in bench/README.md ("What the ingest
peers check"); the SQL below names the Rust function each rule mirrors.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

import ingest_common as C


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def sql_ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def sql_map(d: dict) -> str:
    items = ", ".join(f"{sql_str(k)}: {sql_str(v) if isinstance(v, str) else v}" for k, v in d.items())
    return "MAP {" + items + "}"


def sql_list(xs) -> str:
    return "[" + ", ".join(sql_str(x) if isinstance(x, str) else str(x) for x in xs) + "]"


# Full-width ASCII, the full-width currency signs and the ideographic space, and what
# NFKC folds them to. DuckDB has no NFKC (only nfc_normalize), so this is the part of
# NFKC the sources need: `（集团）` → `(集团)`, `１２３` → `123`.
FULLWIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000\uFFE0\uFFE1\uFFE2\uFFE4\uFFE5\uFFE6"
HALFWIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " \u00A2\u00A3\u00AC\u00A6\u00A5\u20A9"
# Unicode White_Space (Rust's split_whitespace); RE2's \s is ASCII only.
WS = r"[\s\x{0B}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+"
SEP = "[-/.年月日]"  # date field separators
# Σ value(cᵢ)·wᵢ over the first 17 characters of `u`, a character's value being its
# position in the alphabet (written out: a list lambda is twice as slow).
USCC_SUM = " + ".join(f"(strpos({sql_str(C.USCC_ALPHABET)}, u[{i + 1}]) - 1) * {w}"
                      for i, w in enumerate(C.USCC_WEIGHTS))

MACROS = f"""
-- text::normalize + is_null_token: a cell's normalized text, NULL when it is a null token.
-- (translate() is slow on long strings of pairs, so it only runs on text that has one.)
CREATE MACRO fold_width(s) AS CASE WHEN regexp_matches(s, '[\\x{{FF01}}-\\x{{FF5E}}\\x{{3000}}\\x{{FFE0}}-\\x{{FFE6}}]')
    THEN translate(s, {sql_str(FULLWIDTH)}, {sql_str(HALFWIDTH)}) ELSE s END;
CREATE MACRO norm(s) AS trim(regexp_replace(fold_width(s), '{WS}', ' ', 'g'));
CREATE MACRO tok(s) AS CASE WHEN lower(s) IN {tuple(C.NULL_TOKENS)} THEN NULL ELSE s END;
CREATE MACRO cell(s) AS tok(norm(s));

-- uscc::parse (on upper-cased text): alphabet, length, check character.
CREATE MACRO uscc_ok(u) AS CASE WHEN regexp_full_match(u, '[0-9A-HJ-NPQRTUWXY]{{18}}') THEN
    {sql_str(C.USCC_ALPHABET)}[(31 - ({USCC_SUM}) % 31) % 31 + 1] = u[18] ELSE false END;
CREATE MACRO uscc(t) AS CASE WHEN uscc_ok(upper(t)) THEN upper(t) END;

-- date::parse_date: date-times keep their date; YYYYMMDD; 5-digit Excel serials;
-- Y-M-D with any of - / . 年 月 日 between the fields.
CREATE MACRO cut_time(s) AS CASE WHEN strlen(regexp_extract(s, '^([^T ]*)[T ]', 1)) >= 8
    THEN regexp_extract(s, '^([^T ]*)[T ]', 1) ELSE s END;
CREATE MACRO ymd(y, m, d) AS try(make_date(CAST(y AS INTEGER), CAST(m AS INTEGER), CAST(d AS INTEGER)));
CREATE MACRO excel_date(n) AS CASE WHEN n BETWEEN 1 AND 2958465 THEN DATE '1899-12-30' + CAST(n AS INTEGER) END;
CREATE MACRO date_of(s) AS CASE
    WHEN regexp_full_match(s, '[0-9]{{8}}') THEN ymd(s[1:4], s[5:6], s[7:8])
    WHEN regexp_full_match(s, '[0-9]{{5}}(\\.0)?') THEN excel_date(CAST(s[1:5] AS INTEGER))
    WHEN regexp_full_match(s, '{SEP}*[0-9]{{4}}{SEP}+[0-9]{{1,2}}{SEP}+[0-9]{{1,2}}{SEP}*') THEN
        ymd(regexp_extract(s, '([0-9]+)', 1), regexp_extract(s, '[0-9]+[^0-9]+([0-9]+)', 1),
            regexp_extract(s, '[0-9]+[^0-9]+[0-9]+[^0-9]+([0-9]+)', 1))
    END;
CREATE MACRO parse_date(s) AS date_of(cut_time(s));
-- date::parse_month: YYYYMM, Y-M, or a full date's month; fields must be digits.
CREATE MACRO parse_month(s) AS CASE
    WHEN regexp_full_match(s, '[0-9]{{6}}') THEN ymd(s[1:4], s[5:6], 1)
    WHEN NOT regexp_full_match(s, '{SEP}*[0-9]+({SEP}+[0-9]+)*{SEP}*') THEN NULL
    WHEN regexp_full_match(s, '{SEP}*[0-9]{{4}}{SEP}+[0-9]{{1,2}}{SEP}*') THEN
        ymd(regexp_extract(s, '([0-9]+)', 1), regexp_extract(s, '[0-9]+[^0-9]+([0-9]+)', 1), 1)
    ELSE CAST(date_trunc('month', date_of(s)) AS DATE) END;
-- date::parse_year, parse_year_or_date.
CREATE MACRO parse_year(s) AS TRY_CAST(nullif(regexp_extract(s, '^([0-9]{{4}})(年度|年|\\.0)?$', 1), '') AS INTEGER);
CREATE MACRO parse_year_or_date(s) AS coalesce(parse_year(s), year(parse_date(s)));

-- number.rs: a leading number and a unit suffix; exact decimals to 元 cents.
CREATE MACRO money_text(s) AS CASE WHEN starts_with(s, '¥') THEN ltrim(s[2:])
    WHEN starts_with(s, 'RMB') THEN ltrim(s[4:]) ELSE s END;
CREATE MACRO num_part(s) AS regexp_extract(s, '^[0-9.,+-]*');
CREATE MACRO unit_part(s) AS ltrim(s[length(num_part(s)) + 1:]);
CREATE MACRO decimal_ok(n) AS regexp_full_match(n, '[+-]?([0-9]{{1,3}}(,[0-9]{{3}})+|[0-9]*)(\\.[0-9]*)?')
    AND regexp_matches(n, '[0-9]') AND length(ltrim(regexp_replace(n, '[^0-9]', '', 'g'), '0')) <= 36;
CREATE MACRO dec_int(n) AS replace(regexp_extract(n, '^[+-]?([0-9,]*)', 1), ',', '');
CREATE MACRO dec_frac(n) AS regexp_extract(n, '\\.([0-9]*)$', 1);
CREATE MACRO dec_sign(n) AS CASE WHEN starts_with(n, '-') THEN -1 ELSE 1 END;
CREATE MACRO big(digits) AS CAST(coalesce(nullif(ltrim(digits, '0'), ''), '0') AS HUGEINT);
-- number::to_cents: |int.frac| × 10^e 元 in cents, half away from zero; NULL when it
-- cannot fit (the sign is applied by the caller).
CREATE MACRO cents_of(di, df, e) AS CASE
    WHEN length(df) <= e + 2 THEN
        CASE WHEN length(ltrim(di || df, '0')) + e + 2 - length(df) > 21 THEN NULL
             ELSE big(di || df || repeat('0', e + 2 - length(df))) END
    ELSE big(left(di || df, length(di) + e + 2)) + CASE WHEN substr(df, e + 3, 1) >= '5' THEN 1 ELSE 0 END
    END;
CREATE MACRO to_money(cents) AS CAST(CAST(cents AS DECIMAL(38, 0)) * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(20, 2));
CREATE MACRO count_text(s) AS rtrim(regexp_replace(s, '(人次|人)$', ''));

-- patent::parse: CN/ZL prefixes, spaces and the dot dropped; 12 or 8 digits and a check.
CREATE MACRO pat_s(t) AS
    regexp_replace(regexp_replace(regexp_replace(upper(t), '[\\s.]', '', 'g'), '^CN', ''), '^ZL', '');
CREATE MACRO pat_digits(s) AS CASE WHEN regexp_full_match(s, '([0-9]{{12}}|[0-9]{{8}})[\\x00-\\x7F]')
    THEN s[1:length(s) - 1] END;
CREATE MACRO pat_check(d) AS CASE list_sum(list_transform(range(1, length(d) + 1),
    lambda i: CAST(d[i] AS INTEGER) * {sql_list(C.PATENT_WEIGHTS)}[i])) % 11 WHEN 10 THEN 'X'
    ELSE CAST(list_sum(list_transform(range(1, length(d) + 1),
        lambda i: CAST(d[i] AS INTEGER) * {sql_list(C.PATENT_WEIGHTS)}[i])) % 11 AS VARCHAR) END;
CREATE MACRO pat_year(d) AS CASE
    WHEN length(d) = 12 AND CAST(d[1:4] AS INTEGER) >= 2003 THEN CAST(d[1:4] AS INTEGER)
    WHEN length(d) = 8 AND CAST(d[1:2] AS INTEGER) BETWEEN 85 AND 99 THEN 1900 + CAST(d[1:2] AS INTEGER)
    WHEN length(d) = 8 AND CAST(d[1:2] AS INTEGER) BETWEEN 0 AND 3 THEN 2000 + CAST(d[1:2] AS INTEGER) END;
CREATE MACRO pat_type_digit(d) AS CASE WHEN length(d) = 12 THEN d[5] ELSE d[3] END;
-- industry::parse_class: the leading code token (C3091, 3091, 3091.0) → 4-digit class.
CREATE MACRO industry_token(t) AS regexp_replace(regexp_extract(upper(t), '^[A-Z0-9.]*'), '\\.0$', '');

-- lists (validate::split_list): split on ; ； , ， 、, pieces trimmed.
CREATE MACRO split_keep(t) AS list_transform(regexp_split_to_array(t, '[{C.LIST_SEPARATORS}]'), lambda x: trim(x));
"""


class DuckPeer:
    def __init__(self, out: Path, as_of: str, threads: int, workdir: Path):
        self.out = out
        self.as_of = as_of
        self.workdir = workdir
        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {threads}")
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute(f"SET temp_directory = {sql_str(str(workdir / 'duckdb_tmp'))}")
        self.con.execute(MACROS)
        self.con.execute(
            "CREATE TEMP TABLE address_names AS SELECT * FROM (VALUES "
            + ", ".join(f"({sql_str(n)}, {sql_str(c)}, {str(s).lower()}, {i})"
                        for i, (n, c, s) in enumerate(C.ADDRESS_NAMES))
            + ") t(name, code, split, prio)")
        for t in ("quarantine", "warnings"):
            self.con.execute(f"CREATE TEMP TABLE {t} (source_file VARCHAR, row_number BIGINT, kind VARCHAR, "
                             + ("raw VARCHAR, reasons VARCHAR[], messages VARCHAR[])" if t == "quarantine"
                                else "warnings VARCHAR[])"))
        self.con.execute("CREATE TEMP TABLE ingest_run (source_file VARCHAR, kind VARCHAR, content_hash VARCHAR, "
                         "rows_read BIGINT, rows_loaded BIGINT, rows_duplicate BIGINT, rows_quarantined BIGINT, "
                         "status VARCHAR, message VARCHAR)")
        # The registry other kinds are checked against (filled after the enterprise kind).
        self.con.execute("CREATE TEMP TABLE reg (uscc VARCHAR)")
        self.con.execute("CREATE TEMP TABLE reg_name (name VARCHAR, n BIGINT, uscc VARCHAR)")
        self.timings: dict[str, dict] = {}

    # -- reading ------------------------------------------------------------------------

    def load(self, plan: C.FilePlan) -> None:
        """Reads one file into the table raw_<index> (text columns c0…), or rejects it."""
        t = f"raw_{plan.index}"
        try:
            if plan.fmt == "xlsx":
                self.con.register(f"xl_{plan.index}", plan.xlsx)
                self.con.execute(f"CREATE TEMP TABLE {t} AS SELECT * FROM xl_{plan.index}")
                self.con.unregister(f"xl_{plan.index}")
                plan.xlsx = None
            elif plan.fmt == "ndjson":
                src = (f"read_json({sql_str(str(plan.read_path))}, format='newline_delimited', records=true, "
                       "maximum_depth=1, sample_size=-1)")
                keys = [r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
                C.map_ndjson_keys(plan, keys)
                if plan.rejected:
                    return
                # A JSON value as townstat reads it (read/ndjson.rs to_cell + Cell::text):
                # strings as they are, whole numbers without `.0`.
                cols = ", ".join(
                    f"CASE json_type({sql_ident(k)}) WHEN 'VARCHAR' THEN json_extract_string({sql_ident(k)}, '$') "
                    f"WHEN 'DOUBLE' THEN regexp_replace(CAST(CAST({sql_ident(k)} AS DOUBLE) AS VARCHAR), '\\.0$', '') "
                    f"ELSE CAST({sql_ident(k)} AS VARCHAR) END AS c{j}" for j, k in enumerate(keys))
                self.con.execute(f"CREATE TEMP TABLE {t} AS SELECT {cols} FROM {src}")
            else:
                columns = "{" + ", ".join(f"'c{j}': 'VARCHAR'" for j in range(plan.ncols)) + "}"
                sql = (f"CREATE TEMP TABLE {t} AS SELECT * FROM read_csv({sql_str(str(plan.read_path))}, "
                       f"delim={sql_str(plan.delimiter)}, quote='\"', escape='\"', header=false, "
                       f"skip={plan.skip_lines}, columns={columns}, auto_detect=false, null_padding=true, "
                       "strict_mode=false, parallel=PARALLEL)")
                try:
                    self.con.execute(sql.replace("PARALLEL", "true"))
                except duckdb.Error as e:
                    # Short rows are padded with NULLs (null_padding), which DuckDB's
                    # parallel reader cannot combine with quoted line breaks.
                    if "parallel" not in str(e):
                        raise
                    self.con.execute(sql.replace("PARALLEL", "false"))
                # Records spanning several lines (quoted line breaks) shift the physical
                # line numbers of the records after them; see row_sql.
                plan.multiline = self.con.execute(
                    f"SELECT bool_or({' OR '.join(f'contains(c{j}, chr(10))' for j in range(plan.ncols))}) "
                    f"FROM {t}").fetchall()[0][0] or False
        except duckdb.Error as e:
            self.con.execute(f"DROP TABLE IF EXISTS {t}")
            plan.rejected = f"{plan.display}: {str(e).splitlines()[0]}"

    @staticmethod
    def row_sql(plan: C.FilePlan) -> str:
        """A record's row number (read/csv.rs: the physical line where it starts): the
        record index after the header, plus the line breaks inside earlier records."""
        if not getattr(plan, "multiline", False):
            return f"rowid + {plan.first_row}"
        breaks = " + ".join(f"coalesce(length(c{j}) - length(replace(c{j}, chr(10), '')), 0)"
                            for j in range(plan.ncols))
        return (f"rowid + {plan.first_row} + coalesce(sum({breaks}) OVER "
                "(ORDER BY rowid ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)")

    def staged_select(self, plan: C.FilePlan) -> str:
        """One file's rows as canonical text columns t_<column> (normalized, NULL for a
        null token; the first non-null of the file columns that map to it), the unit
        each money header states (u_<column>), the enterprise name of a referencing
        row (_ref), and the lineage (_file, _row). Blank records are not rows."""
        m = plan.columns

        def first(idxs: list[int]) -> str:
            if not idxs:
                return "CAST(NULL AS VARCHAR)"
            return "coalesce(" + ", ".join(f"cell(c{i})" for i in idxs) + ")"

        cols = [f"{plan.index} AS _file", f"{self.row_sql(plan)} AS _row"]
        for c in C.SCHEMAS[plan.kind]["columns"]:
            if c.get("derived"):
                continue
            cols.append(f"{first(m.sources[c['name']])} AS t_{c['name']}")
            if c["type"] == "money":
                unit = m.units[c["name"]]
                cols.append(f"{'NULL' if unit is None else unit}::INTEGER AS u_{c['name']}")
        cols.append(f"{first(m.ref_cols)} AS _ref")
        blank = " AND ".join(f"coalesce(trim(c{j}), '') = ''" for j in range(plan.ncols)) or "false"
        return f"SELECT {', '.join(cols)} FROM raw_{plan.index} WHERE NOT ({blank})"

    # -- value rules (validate::parse_cell), one column at a time --------------------------

    def column_sql(self, c: dict) -> list[list[str]]:
        """The SELECT items giving v_<name> (the canonical value, NULL when absent or
        bad) and r_<name> (the reason code, NULL when fine) for one column, in levels:
        an item refers only to the columns of earlier levels, so that each level is one
        projection and every intermediate value is computed once (DuckDB inlines
        lateral column aliases, which multiplies nested rules)."""
        n, ty, t = c["name"], c["type"], f"t_{c['name']}"
        as_of = f"DATE {sql_str(self.as_of)}"

        def bad(cond: str, code: str) -> str:
            return f"CASE WHEN {t} IS NOT NULL AND {cond} THEN '{code}' END AS r_{n}"

        if ty in ("text", "list"):
            return [[f"{t} AS v_{n}", f"CAST(NULL AS VARCHAR) AS r_{n}"]]
        if ty == "uscc":
            return [[f"uscc({t}) AS v_{n}"], [bad(f"v_{n} IS NULL", "invalid_uscc")]]
        if ty in ("date", "month", "year", "year_or_date"):
            if ty == "date":
                parse, later = [f"cut_time({t}) AS s_{n}"], [f"date_of(s_{n}) AS d_{n}"]
                future = f"d_{n} > {as_of}"
            elif ty == "month":
                parse, later = [f"parse_month({t}) AS d_{n}"], []
                future = f"d_{n} > date_trunc('month', {as_of})"
            else:
                fn = "parse_year" if ty == "year" else "parse_year_or_date"
                parse, later = [f"{fn}({t}) AS d_{n}"], []
                future = f"d_{n} > year({as_of})"
            if c.get("future_ok"):
                future = "false"
            levels = [parse] + ([later] if later else [])
            return levels + [[f"CASE WHEN NOT ({future}) THEN d_{n} END AS v_{n}",
                              f"CASE WHEN {t} IS NULL THEN NULL WHEN d_{n} IS NULL THEN 'invalid_date' "
                              f"WHEN {future} THEN 'future_date' END AS r_{n}"]]
        if ty == "money":
            low = {"zero": f"k_{n} < 0", "positive": f"k_{n} <= 0"}.get(c.get("min"), "false")
            return [[f"money_text({t}) AS m_{n}"],
                    [f"num_part(m_{n}) AS n_{n}", f"unit_part(m_{n}) AS un_{n}"],
                    [f"decimal_ok(n_{n}) AS ok_{n}", f"dec_int(n_{n}) AS di_{n}", f"dec_frac(n_{n}) AS df_{n}",
                     f"dec_sign(n_{n}) AS sg_{n}",
                     f"CASE WHEN un_{n} = '' THEN coalesce(u_{n}, 0) "
                     f"ELSE {sql_map(C.UNIT_EXPONENTS)}[un_{n}] END AS e_{n}"],
                    [f"CASE WHEN ok_{n} AND e_{n} IS NOT NULL THEN sg_{n} * cents_of(di_{n}, df_{n}, e_{n}) "
                     f"END AS k_{n}"],
                    [f"CASE WHEN {t} IS NULL THEN NULL WHEN NOT ok_{n} THEN 'invalid_number' "
                     f"WHEN e_{n} IS NULL THEN 'invalid_unit' "
                     f"WHEN k_{n} IS NULL OR abs(k_{n}) > 99999999999999999999 THEN 'invalid_number' "
                     f"WHEN {low} THEN 'negative_amount' END AS r_{n}"],
                    [f"CASE WHEN r_{n} IS NULL THEN to_money(k_{n}) END AS v_{n}"]]
        if ty == "count":
            low = f"k_{n} < 0" if c.get("min") else "false"
            return [[f"count_text({t}) AS s_{n}"],
                    [f"num_part(s_{n}) AS n_{n}", f"unit_part(s_{n}) AS un_{n}"],
                    [f"decimal_ok(n_{n}) AS ok_{n}", f"dec_int(n_{n}) AS di_{n}", f"dec_frac(n_{n}) AS df_{n}"],
                    [f"CASE WHEN ok_{n} AND length(ltrim(di_{n}, '0')) <= 19 "
                     f"THEN dec_sign(n_{n}) * big(di_{n}) END AS k_{n}"],
                    [f"CASE WHEN {t} IS NULL THEN NULL WHEN NOT ok_{n} THEN 'invalid_number' "
                     f"WHEN un_{n} <> '' THEN 'invalid_unit' "
                     f"WHEN regexp_matches(df_{n}, '[1-9]') THEN 'invalid_number' "
                     f"WHEN k_{n} IS NULL OR k_{n} NOT BETWEEN -9223372036854775808 AND 9223372036854775807 "
                     f"THEN 'invalid_number' WHEN {low} THEN 'negative_amount' END AS r_{n}"],
                    [f"CASE WHEN r_{n} IS NULL THEN CAST(k_{n} AS BIGINT) END AS v_{n}"]]
        if ty == "bool":
            return [[f"CASE WHEN lower({t}) IN {tuple(C.BOOL_TRUE)} THEN true "
                     f"WHEN lower({t}) IN {tuple(C.BOOL_FALSE)} THEN false END AS v_{n}"],
                    [bad(f"v_{n} IS NULL", "unknown_enum_value")]]
        if ty == "enum":
            code = "unsupported_currency" if c["enum"] == "currency" else "unknown_enum_value"
            return [[f"{sql_map(C.ENUMS[c['enum']])}[lower({t})] AS v_{n}"], [bad(f"v_{n} IS NULL", code)]]
        if ty == "industry_code":
            return [[f"regexp_extract(industry_token({t}), '^([A-Z]?)([0-9]{{4}})$', ['l', 'd']) AS i_{n}"],
                    [f"{sql_map(C.INDUSTRY_CLASSES)}[i_{n}['d']] AS sec_{n}"],
                    [f"CASE WHEN sec_{n} IS NOT NULL AND i_{n}['l'] IN ('', sec_{n}) THEN i_{n}['d'] END AS v_{n}"],
                    [bad(f"v_{n} IS NULL", "unknown_industry_code")]]
        if ty == "division":
            counties = {**{k: k for k in C.COUNTIES}, **{k: v[1] for k, v in C.LEGACY.items()}}
            return [[f"regexp_replace({t}, '\\.0$', '') AS dv_{n}"],
                    [f"regexp_full_match(dv_{n}, '[0-9]{{6}}([0-9]{{3}}){{0,2}}') AS dk_{n}"],
                    [f"CASE WHEN dk_{n} AND starts_with(dv_{n}, '1402') THEN {sql_map(counties)}[dv_{n}[1:6]] "
                     f"END AS v_{n}"],
                    [f"CASE WHEN {t} IS NULL THEN NULL WHEN NOT dk_{n} THEN 'unknown_division' "
                     f"WHEN NOT starts_with(dv_{n}, '1402') THEN 'outside_city' "
                     f"WHEN v_{n} IS NULL THEN 'unknown_division' END AS r_{n}"]]
        if ty == "patent_no":
            return [[f"pat_s({t}) AS ps_{n}"], [f"pat_digits(ps_{n}) AS pd_{n}"],
                    [f"pat_check(pd_{n}) AS pc_{n}", f"pat_year(pd_{n}) AS py_{n}"],
                    [f"CASE WHEN pd_{n} IS NOT NULL AND right(ps_{n}, 1) = pc_{n} AND py_{n} IS NOT NULL "
                     f"AND pat_type_digit(pd_{n}) IN {tuple(C.PATENT_TYPES)} "
                     f"THEN pd_{n} || '.' || pc_{n} END AS v_{n}"],
                    [bad(f"v_{n} IS NULL", "invalid_patent_no")]]
        raise ValueError(f"no rule for type {ty}")

    # -- row rules (validate::validate_row) -----------------------------------------------

    def check_kind(self, kind: str, plans: list[C.FilePlan]) -> None:
        """Creates `checked`: every row with its canonical values v_<column>, its list of
        (reason, column) items (empty for a valid row), its warnings."""
        cols = C.SCHEMAS[kind]["columns"]
        live = [p for p in plans if not p.rejected]
        staged = " UNION ALL ".join(self.staged_select(p) for p in live)
        levels: list[list[str]] = []
        for c in cols:
            if not c.get("derived"):
                for i, items_ in enumerate(self.column_sql(c)):
                    levels += [[] for _ in range(i + 1 - len(levels))]
                    levels[i] = levels[i] + items_
        ctes = [f"s AS ({staged})"]
        for i, items_ in enumerate(levels):
            ctes.append(f"a{i} AS (SELECT *, {', '.join(items_)} FROM {'s' if i == 0 else f'a{i - 1}'})")
        ctes.append(f"a AS (SELECT * FROM a{len(levels) - 1})")
        joins, items, extra = [], [], []
        # Column reasons, in schema order.
        for c in cols:
            if not c.get("derived"):
                items.append(f"{{'c': r_{c['name']}, 'f': '{c['name']}'}}")
        # missing_required: a required column with no value; a referencing row's name
        # stands in for its USCC.
        for c in cols:
            if c.get("required"):
                stand_in = " AND _ref IS NULL" if c["name"] == "uscc" and C.is_referencing(kind) else ""
                items.append(f"{{'c': CASE WHEN t_{c['name']} IS NULL{stand_in} THEN 'missing_required' END, "
                             f"'f': '{c['name']}'}}")
        for later, earlier in C.DATE_ORDER.get(kind, []):
            items.append(f"{{'c': CASE WHEN v_{later} < v_{earlier} THEN 'date_order' END, 'f': '{later}'}}")
        values = {c["name"]: f"v_{c['name']}" for c in cols if not c.get("derived")}
        warnings = "CAST([] AS VARCHAR[])"
        if kind == "enterprise":
            # A missing division is found from the address (Divisions::county_from_address).
            ctes.append("addr AS (SELECT a._file, a._row, arg_min(n.code, n.prio) AS code, "
                        "arg_min(n.split, n.prio) AS split FROM a JOIN address_names n "
                        "ON contains(a.v_address, n.name) WHERE a.t_division_code IS NULL GROUP BY ALL)")
            joins.append("LEFT JOIN addr USING (_file, _row)")
            items.append("{'c': CASE WHEN t_division_code IS NULL AND addr.code IS NULL "
                         "THEN 'unknown_division' END, 'f': 'division_code'}")
            values["division_code"] = "coalesce(v_division_code, addr.code)"
            values["entity_kind"] = ("CASE WHEN t_entity_kind IS NULL AND v_uscc IS NOT NULL THEN "
                                     "CASE v_uscc[1:2] WHEN '91' THEN 'enterprise' WHEN '92' THEN 'individual' "
                                     "WHEN '93' THEN 'cooperative' ELSE 'other' END ELSE v_entity_kind END")
            warnings = ("list_filter([CASE WHEN addr.code IS NOT NULL THEN 'division_from_address' END, "
                        "CASE WHEN dv_division_code[1:6] = '140211' AND v_division_code IS NOT NULL "
                        "OR addr.split THEN 'legacy_division_split' END], lambda w: w IS NOT NULL)")
        if kind == "enterprise_annual":
            items.append(f"{{'c': CASE WHEN v_year < {C.FIRST_ANNUAL_YEAR} THEN 'invalid_date' END, 'f': 'year'}}")
        if kind == "patent":
            # The number decides the type (a stated type must agree), the PCT flag and
            # the application year; applicants are split, their codes aligned by position.
            ctes.append("p AS (SELECT *, CASE WHEN t_applicant_uscc IS NULL THEN CAST([] AS VARCHAR[]) "
                        "ELSE split_keep(t_applicant_uscc) END AS _raw_codes, "
                        "list_filter(split_keep(coalesce(v_applicants, '')), lambda x: x <> '') AS _names, "
                        "pd_application_no AS _digits FROM a)")
            extra.append("list_transform(_raw_codes, lambda x: CASE WHEN x = '' OR tok(x) IS NULL THEN NULL "
                         "WHEN uscc(x) IS NULL THEN '!' ELSE uscc(x) END) AS _codes")
            number_type = ("CASE pat_type_digit(_digits) " + " ".join(
                f"WHEN '{d}' THEN '{t}'" for d, (t, _) in C.PATENT_TYPES.items()) + " END")
            items += [
                f"{{'c': CASE WHEN v_application_no IS NOT NULL AND v_patent_type IS NOT NULL "
                f"AND v_patent_type <> {number_type} THEN 'patent_type_mismatch' END, 'f': 'patent_type'}}",
                "{'c': CASE WHEN v_application_no IS NOT NULL AND year(v_applied_on) <> pat_year(_digits) "
                "THEN 'year_mismatch' END, 'f': 'applied_on'}",
            ]
            # date_order of granted_on was added above; keep townstat's order of reasons.
            items.append(items.pop(-3))
            items += [
                "{'c': CASE WHEN len(_raw_codes) > len(_names) AND list_bool_or(list_transform("
                "_raw_codes[len(_names) + 1:], lambda x: x <> '')) THEN 'missing_required' END, "
                "'f': 'applicant_uscc'}",
                "{'c': CASE WHEN list_contains(_codes, '!') THEN 'invalid_uscc' END, 'f': 'applicant_uscc'}",
            ]
            values["patent_type"] = f"CASE WHEN v_application_no IS NOT NULL THEN {number_type} ELSE v_patent_type END"
            values["is_pct"] = "CASE WHEN v_application_no IS NOT NULL THEN pat_type_digit(_digits) IN ('8', '9') END"
            values["applicants"] = "CASE WHEN len(_names) > 0 THEN array_to_string(_names, ';') ELSE v_applicants END"
            values["applicant_uscc"] = ("CASE WHEN len(list_filter(_codes, lambda x: x IS NOT NULL AND x <> '!')) > 0 "
                                        "THEN array_to_string(list_transform(_codes, lambda x: CASE WHEN x IS NULL "
                                        "OR x = '!' THEN '' ELSE x END), ';') END")
            values["applicant_count"] = "CAST(len(_names) AS BIGINT)"
        if kind == "financing":
            values["currency"] = "coalesce(v_currency, 'CNY')"
        if C.is_referencing(kind):
            # resolve_reference: a USCC must be registered (only valid ones are
            # checked); without one, the name must link to exactly one enterprise.
            joins.append("LEFT JOIN reg ON reg.uscc = v_uscc")
            joins.append("LEFT JOIN reg_name rn ON rn.name = _ref AND t_uscc IS NULL")
            items.append("{'c': CASE WHEN t_uscc IS NOT NULL AND v_uscc IS NOT NULL AND reg.uscc IS NULL "
                         "THEN 'orphan_reference' WHEN t_uscc IS NULL AND _ref IS NOT NULL AND rn.n IS NULL "
                         "THEN 'orphan_reference' WHEN t_uscc IS NULL AND rn.n > 1 THEN 'ambiguous_reference' "
                         "END, 'f': 'uscc'}")
            values["uscc"] = "CASE WHEN t_uscc IS NOT NULL THEN v_uscc WHEN rn.n = 1 THEN rn.uscc END"
        src = "p" if kind == "patent" else "a"
        select = ["_file", "_row", *extra,
                  f"list_filter([{', '.join(items)}], lambda x: x.c IS NOT NULL) AS _items",
                  f"{warnings} AS _warnings"]
        select += [f"{values.get(c['name'], 'NULL')} AS x_{c['name']}" for c in cols]
        if kind == "patent":
            select += ["_names"]
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS WITH {', '.join(ctes)} "
                         f"SELECT {', '.join(select)} FROM {src} {' '.join(joins)}")
        if kind == "financing":
            # deal_id, when absent: the first 16 hex digits of the SHA-256 of the
            # row's canonical values (hash::deal_id); only for valid rows.
            self.con.execute(
                "UPDATE checked SET x_deal_id = sha256(x_uscc || '|' || strftime(x_occurred_on, '%Y-%m-%d') || '|' "
                "|| x_instrument || '|' || CAST(x_amount AS VARCHAR) || '|' || coalesce(x_institution, ''))[1:16] "
                "WHERE x_deal_id IS NULL AND len(_items) = 0")

    # -- duplicates, outputs ---------------------------------------------------------------

    def settle_kind(self, kind: str, plans: list[C.FilePlan]) -> None:
        cols = C.all_columns(kind)
        every = ", ".join(f"x_{c}" for c in cols)
        key = ", ".join(f"x_{c}" for c in C.key_columns(kind))
        # Same canonical values: the first copy (path order, then row order) stays, the
        # later ones are exact duplicates. Same key, different values: every variant is
        # quarantined as conflicting_duplicate.
        self.con.execute(f"""CREATE OR REPLACE TEMP TABLE settled AS
            WITH r AS (SELECT *, row_number() OVER (PARTITION BY {every} ORDER BY _file, _row) AS _copy
                       FROM checked WHERE len(_items) = 0)
            SELECT *, CASE WHEN _copy > 1 THEN 'duplicate'
                           WHEN sum(CASE WHEN _copy = 1 THEN 1 ELSE 0 END) OVER (PARTITION BY {key}) > 1
                           THEN 'conflict' ELSE 'loaded' END AS _status FROM r""")
        files = {p.index: p for p in plans}
        file_name = "CASE _file " + " ".join(f"WHEN {p.index} THEN {sql_str(p.display)}" for p in plans) + " END"
        schema = {c["name"]: c for c in C.SCHEMAS[kind]["columns"]}
        out_cols = ", ".join(f"CAST(x_{c} AS {self.sql_type(schema[c]['type'])}) AS {c}" for c in cols)
        self.con.execute(f"COPY (SELECT {out_cols}, {file_name} AS source_file, _row AS source_row FROM settled "
                         f"WHERE _status = 'loaded' ORDER BY _file, _row) "
                         f"TO {sql_str(str(self.out / (kind + '.parquet')))} (FORMAT parquet)")
        # Quarantine: rows with reasons, then the conflicting variants; `raw` from the file.
        self.con.execute("""CREATE OR REPLACE TEMP TABLE q AS
            SELECT _file, _row, list_filter(list_transform(_items, lambda x: x.c),
                       lambda x, i: list_position(list_transform(_items, lambda y: y.c), x) = i) AS reasons,
                   _items FROM checked WHERE len(_items) > 0
            UNION ALL SELECT _file, _row, ['conflicting_duplicate'],
                   [{'c': 'conflicting_duplicate', 'f': 'key'}] FROM settled WHERE _status = 'conflict'""")
        for i in [r[0] for r in self.con.execute("SELECT DISTINCT _file FROM q").fetchall()]:
            plan = files[i]
            keys = C.raw_json_keys(plan.columns.header)
            obj = ", ".join(f"{sql_ident(k)} := c{j}" for j, k in enumerate(keys)) or "x := NULL"
            self.con.execute(f"""INSERT INTO quarantine
                SELECT {sql_str(plan.display)}, q._row, '{kind}', CAST(to_json(struct_pack({obj})) AS VARCHAR),
                       q.reasons, list_transform(q.reasons, lambda code: code || ': ' || array_to_string(
                           list_transform(list_filter(q._items, lambda x: x.c = code), lambda x: x.f), ', '))
                FROM q JOIN (SELECT {self.row_sql(plan)} AS _row, * FROM raw_{i}) r USING (_row)
                WHERE q._file = {i} ORDER BY q._row""")
        self.con.execute(f"INSERT INTO warnings SELECT {file_name}, _row, '{kind}', _warnings FROM settled "
                         "WHERE _status = 'loaded' AND len(_warnings) > 0")
        if kind == "enterprise":
            self.con.execute("CREATE OR REPLACE TEMP TABLE reg AS SELECT DISTINCT x_uscc AS uscc FROM settled "
                             "WHERE _status = 'loaded'")
            self.con.execute("CREATE OR REPLACE TEMP TABLE reg_name AS SELECT x_name AS name, "
                             "count(DISTINCT x_uscc) AS n, min(x_uscc) AS uscc FROM settled "
                             "WHERE _status = 'loaded' GROUP BY x_name")
        if kind == "patent":
            self.patent_applicants(file_name)
        counts = {r[0]: r[1:] for r in self.con.execute(
            "SELECT _file, count(*), count(*) FILTER (WHERE _status = 'loaded'), "
            "count(*) FILTER (WHERE _status = 'duplicate') FROM ("
            "SELECT _file, CASE WHEN len(_items) > 0 THEN 'quarantined' END AS _status FROM checked "
            "WHERE len(_items) > 0 UNION ALL SELECT _file, _status FROM settled) GROUP BY _file").fetchall()}
        for p in plans:
            read, loaded, dup = counts.get(p.index, (0, 0, 0)) if not p.rejected else (0, 0, 0)
            self.con.execute("INSERT INTO ingest_run VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [p.display, kind, p.content_hash, read, loaded, dup, read - loaded - dup,
                              "rejected" if p.rejected else "loaded", p.rejected])

    def patent_applicants(self, file_name: str) -> None:
        """patent_applicant rows of loaded patents: an applicant links by its USCC when
        registered, else by exact name (one match); otherwise it stays unlinked with
        the warning unlinked_applicant on its patent row."""
        self.con.execute("""CREATE OR REPLACE TEMP TABLE applicant AS
            WITH e AS (SELECT _file, _row, x_application_no, unnest(_names) AS name,
                              unnest(generate_series(1, len(_names))) AS position, _codes FROM settled
                       WHERE _status = 'loaded')
            SELECT e._file, e._row, x_application_no AS application_no, position, e.name AS applicant_name,
                   CASE WHEN reg.uscc IS NOT NULL THEN reg.uscc WHEN rn.n = 1 THEN rn.uscc END AS uscc,
                   CASE WHEN reg.uscc IS NOT NULL THEN 'uscc' WHEN rn.n = 1 THEN 'name' END AS link_method
            FROM e LEFT JOIN reg ON reg.uscc = e._codes[position]
                   LEFT JOIN reg_name rn ON rn.name = e.name""")
        self.con.execute(f"COPY (SELECT application_no, CAST(position AS BIGINT) AS position, applicant_name, uscc, "
                         f"link_method, {file_name} AS source_file, _row AS source_row FROM applicant "
                         f"ORDER BY _file, _row, position) TO {sql_str(str(self.out / 'patent_applicant.parquet'))} "
                         "(FORMAT parquet)")
        self.con.execute(f"INSERT INTO warnings SELECT {file_name}, _row, 'patent', ['unlinked_applicant'] "
                         "FROM applicant WHERE uscc IS NULL GROUP BY _file, _row")

    @staticmethod
    def sql_type(ty: str) -> str:
        return {"date": "DATE", "month": "DATE", "year": "INTEGER", "year_or_date": "INTEGER",
                "money": "DECIMAL(20, 2)", "count": "BIGINT", "bool": "BOOLEAN"}.get(ty, "VARCHAR")

    # -- the run ---------------------------------------------------------------------------

    def settle(self, kind: str, plans) -> None:
        if any(not p.rejected for p in plans):
            self.check_kind(kind, plans)
            self.settle_kind(kind, plans)
        else:
            self.con.execute("CREATE OR REPLACE TEMP TABLE checked AS SELECT 1 WHERE false")
        for p in plans:
            self.con.execute(f"DROP TABLE IF EXISTS raw_{p.index}")

    def run(self, data_dir: Path) -> None:
        C.run_kinds(data_dir, self.workdir, self.timings, self.load, self.settle)
        for t in ("quarantine", "ingest_run"):
            self.con.execute(f"COPY (SELECT * FROM {t}) TO {sql_str(str(self.out / (t + '.parquet')))} "
                             "(FORMAT parquet)")
        self.con.execute("COPY (SELECT source_file, row_number, kind, warnings FROM warnings ORDER BY kind, "
                         f"source_file, row_number) TO {sql_str(str(self.out / 'ingest_warning.parquet'))} "
                         "(FORMAT parquet)")


def run(data_dir: Path, out: Path, as_of: str, threads: int, workdir: Path) -> dict:
    peer = DuckPeer(out, as_of, threads, workdir)
    peer.run(data_dir)
    return {"engine": "duckdb", "version": duckdb.__version__, "threads": threads, "kinds": peer.timings}
