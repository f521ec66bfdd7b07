"""The ingest peer in Polars: townstat's normalization and validation rules written as
Polars expressions, run as lazy queries per kind (value and row rules, then
duplicates), outputs written with `write_parquet`.

Python plans files (ingest_common.plan_kind, shared with the DuckDB peer) and builds
expressions; Polars does the row work. Files are read eagerly (Polars' multi-threaded
readers) and kept while their kind is processed, so that a quarantined row's original
cells can be written; everything after reading is lazy. Not Polars' own:
  * GBK files are transcoded to UTF-8 by Python first (Polars reads UTF-8 only);
  * XLSX sheets are read by fastexcel (calamine, what `pl.read_excel(engine="calamine")`
    uses), the same reader the DuckDB peer uses;
  * the derived financing `deal_id` is a SHA-256, which Polars has no expression for:
    it is computed by Python's hashlib over the (few) rows that lack a deal id.

Where this peer differs from townstat is listed in bench/README.md.
"""
from __future__ import annotations

import hashlib
import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

import ingest_common as C

S = pl.String
SEP = "[-/.年月日]"
MAX_CENTS = pl.lit(10**20 - 1, dtype=pl.Int128)
NUM_RE = r"^[+-]?([0-9]{1,3}(,[0-9]{3})+|[0-9]*)(\.[0-9]*)?$"
# The engine of the per-kind queries. Polars' streaming engine was tried: at scale 10 it
# took 1.7× as long and more memory than the in-memory one (PEER_POLARS_ENGINE=streaming).
ENGINE = os.environ.get("PEER_POLARS_ENGINE", "in-memory")


def col(name: str) -> pl.Expr:
    return pl.col(name)


# ---------------------------------------------------------------------------------------
# Value rules (crates/domain/src/*.rs) as expressions over normalized text
# ---------------------------------------------------------------------------------------


def cell(e: pl.Expr) -> pl.Expr:
    """text::normalize (NFKC, whitespace runs folded, trimmed), NULL for a null token."""
    n = e.str.normalize("NFKC").str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(n.str.to_lowercase().is_in(C.NULL_TOKENS)).then(None).otherwise(n)


def uscc(t: pl.Expr) -> pl.Expr:
    """uscc::parse: upper-cased, 18 characters of the alphabet, check character."""
    u = t.str.to_uppercase()
    # A character's value is its position in the alphabet.
    total = sum(pl.lit(C.USCC_ALPHABET).str.find(u.str.slice(i, 1), literal=True) * w
                for i, w in enumerate(C.USCC_WEIGHTS))
    check = ((31 - total % 31) % 31).replace_strict(dict(enumerate(C.USCC_ALPHABET)), return_dtype=S)
    return pl.when(u.str.contains(r"^[0-9A-HJ-NPQRTUWXY]{18}$") & (check == u.str.slice(17, 1))).then(u)


def ymd(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    """A date from text fields; NULL when it does not exist (2023-02-30)."""
    return pl.concat_str([y, pl.lit("-"), m.str.zfill(2), pl.lit("-"), d.str.zfill(2)]).str.to_date(
        "%Y-%m-%d", strict=False)


def date_of(s: pl.Expr) -> pl.Expr:
    """date::parse_date after the time is cut: YYYYMMDD, 5-digit Excel serials, Y-M-D
    with any of - / . 年 月 日 between the fields."""
    g8 = s.str.extract_groups(r"^(?<y>[0-9]{4})(?<m>[0-9]{2})(?<d>[0-9]{2})$")
    g3 = s.str.extract_groups(rf"^{SEP}*(?<y>[0-9]{{4}}){SEP}+(?<m>[0-9]{{1,2}}){SEP}+(?<d>[0-9]{{1,2}}){SEP}*$")
    serial = s.str.extract(r"^([0-9]{5})(?:\.0)?$", 1).cast(pl.Int64)
    excel = pl.when(serial.is_between(1, 2958465)).then(pl.lit(date(1899, 12, 30)) + pl.duration(days=serial))

    def fields(g: pl.Expr) -> pl.Expr:
        return ymd(g.struct.field("y"), g.struct.field("m"), g.struct.field("d"))

    return pl.coalesce(fields(g8), excel, fields(g3))


def cut_time(t: pl.Expr) -> pl.Expr:
    """Date-times keep their date: the text before the first `T` or space, when that
    is at least 8 bytes long."""
    prefix = t.str.extract(r"^([^T ]*)[T ]", 1)
    return pl.when(prefix.str.len_bytes() >= 8).then(prefix).otherwise(t)


def parse_month(s: pl.Expr) -> pl.Expr:
    """date::parse_month: YYYYMM, Y-M, or a full date's month; fields must be digits."""
    g2 = s.str.extract_groups(rf"^{SEP}*(?<y>[0-9]{{4}}){SEP}+(?<m>[0-9]{{1,2}}){SEP}*$")
    return (pl.when(s.str.contains(r"^[0-9]{6}$")).then(ymd(s.str.slice(0, 4), s.str.slice(4, 2), pl.lit("1")))
            .when(~s.str.contains(rf"^{SEP}*[0-9]+({SEP}+[0-9]+)*{SEP}*$")).then(None)
            .when(s.str.contains(rf"^{SEP}*[0-9]{{4}}{SEP}+[0-9]{{1,2}}{SEP}*$"))
            .then(ymd(g2.struct.field("y"), g2.struct.field("m"), pl.lit("1")))
            .otherwise(date_of(s).dt.month_start()))


def parse_year(s: pl.Expr) -> pl.Expr:
    """date::parse_year: 2023, 2023年, 2023年度, 2023.0."""
    return s.str.extract(r"^([0-9]{4})(?:年度|年|\.0)?$", 1).cast(pl.Int32)


def big(digits: pl.Expr) -> pl.Expr:
    """Decimal digits as an Int128 (leading zeros dropped; NULL when too long)."""
    d = digits.str.strip_chars_start("0")
    return pl.when(d == "").then(pl.lit("0")).otherwise(d).cast(pl.Int128, strict=False)


def cents_of(di: pl.Expr, df: pl.Expr, e: pl.Expr) -> pl.Expr:
    """number::to_cents of |int.frac| × 10^e 元, half away from zero; NULL when it
    cannot fit Decimal(20,2)."""
    shift = e + 2 - df.str.len_chars()
    digits = di + df
    pow10 = shift.clip(0, 12).replace_strict({i: 10**i for i in range(13)}, return_dtype=pl.Int128)
    up = (df.str.slice(e + 2, 1) >= "5").cast(pl.Int128)
    return (pl.when(shift >= 0)
            .then(pl.when(digits.str.strip_chars_start("0").str.len_chars() + shift > 21).then(None)
                  .otherwise(big(digits) * pow10))
            .otherwise(big(digits.str.head(di.str.len_chars() + e + 2)) + up))


def to_money(cents: pl.Expr) -> pl.Expr:
    return (cents.cast(pl.Decimal(38, 0)) * pl.lit(Decimal("0.01"))).cast(pl.Decimal(20, 2))


def split_list(t: pl.Expr) -> pl.Expr:
    """validate::split_list without dropping empty pieces: split on ; ； , ， 、, trimmed."""
    seps = "[" + C.LIST_SEPARATORS.replace(";", "") + "]"
    return t.str.replace_all(seps, ";").str.split(";").list.eval(pl.element().str.strip_chars())


def pat_s(t: pl.Expr) -> pl.Expr:
    """patent::parse: spaces and dots dropped, CN then ZL prefix stripped."""
    return t.str.to_uppercase().str.replace_all(r"[\s.]", "").str.replace(r"^CN", "").str.replace(r"^ZL", "")


def pat_check(d: pl.Expr) -> pl.Expr:
    """Σ dᵢ·wᵢ mod 11 (weights 2…9,2…5; an 8-digit number uses the first 8), 10 is X."""
    total = sum(d.str.slice(i, 1).cast(pl.Int64, strict=False).fill_null(0) * w
                for i, w in enumerate(C.PATENT_WEIGHTS))
    r = total % 11
    return pl.when(r == 10).then(pl.lit("X")).otherwise(r.cast(S))


def pat_year(d: pl.Expr) -> pl.Expr:
    y4, y2 = d.str.slice(0, 4).cast(pl.Int32, strict=False), d.str.slice(0, 2).cast(pl.Int32, strict=False)
    n = d.str.len_chars()
    return (pl.when((n == 12) & (y4 >= 2003)).then(y4)
            .when((n == 8) & y2.is_between(85, 99)).then(1900 + y2)
            .when((n == 8) & y2.is_between(0, 3)).then(2000 + y2))


def pat_type_digit(d: pl.Expr) -> pl.Expr:
    return pl.when(d.str.len_chars() == 12).then(d.str.slice(4, 1)).otherwise(d.str.slice(2, 1))


def reason(t: pl.Expr, *cases: tuple[pl.Expr, str]) -> pl.Expr:
    """The first reason whose condition holds, for a present cell."""
    e = pl.when(t.is_null()).then(None)
    for cond, code in cases:
        e = e.when(cond).then(pl.lit(code))
    return e


class PolarsPeer:
    def __init__(self, out: Path, as_of: str, workdir: Path):
        self.out = out
        self.as_of = date.fromisoformat(as_of)
        self.workdir = workdir
        self.raw: dict[int, pl.DataFrame] = {}
        self.reg = pl.DataFrame({"uscc": []}, schema={"uscc": S})
        self.reg_name = pl.DataFrame(schema={"name": S, "n": pl.UInt32, "uscc": S})
        self.quarantine: list[pl.DataFrame] = []
        self.warnings: list[pl.DataFrame] = []
        self.ingest_run: list[dict] = []
        self.timings: dict[str, dict] = {}

    # -- reading ------------------------------------------------------------------------

    def load(self, plan: C.FilePlan) -> None:
        """Reads one file as text columns c0… with its row numbers (_row), or rejects it."""
        try:
            if plan.fmt == "xlsx":
                df = pl.from_arrow(plan.xlsx)
                plan.xlsx = None
            elif plan.fmt == "ndjson":
                keys = list(pl.scan_ndjson(plan.read_path, infer_schema_length=None).collect_schema())
                C.map_ndjson_keys(plan, keys)
                if plan.rejected:
                    return
                df = pl.read_ndjson(plan.read_path, schema={k: S for k in keys})
                df.columns = [f"c{j}" for j in range(len(keys))]
            else:
                df = pl.read_csv(plan.read_path, has_header=False, skip_lines=plan.skip_lines,
                                 separator=plan.delimiter, quote_char='"',
                                 schema={f"c{j}": S for j in range(plan.ncols)}, missing_columns="insert",
                                 truncate_ragged_lines=True)
        except (pl.exceptions.PolarsError, OSError) as e:
            plan.rejected = f"{plan.display}: {str(e).splitlines()[0]}"
            return
        cells = [col(f"c{j}") for j in range(plan.ncols)]
        row = pl.int_range(pl.len(), dtype=pl.Int64) + plan.first_row
        if plan.fmt == "csv" and cells and df.select(pl.any_horizontal(
                [c.str.contains("\n", literal=True).any() for c in cells])).item():
            # read/csv.rs: a record's row is the physical line where it starts, so line
            # breaks inside earlier records (quoted fields) shift it.
            breaks = pl.sum_horizontal([c.str.count_matches("\n", literal=True).fill_null(0) for c in cells])
            row = row + breaks.cum_sum() - breaks
        self.raw[plan.index] = df.with_columns(row.alias("_row"))

    def staged(self, plan: C.FilePlan) -> pl.LazyFrame:
        """One file's rows as canonical text columns t_<column>, the unit each money
        header states (u_<column>), the enterprise name (_ref), lineage (_file, _row)."""
        m = plan.columns

        def first(idxs: list[int]) -> pl.Expr:
            return pl.coalesce([cell(col(f"c{i}")) for i in idxs]) if idxs else pl.lit(None, S)

        exprs = [pl.lit(plan.index, pl.Int32).alias("_file"), col("_row")]
        for c in C.SCHEMAS[plan.kind]["columns"]:
            if c.get("derived"):
                continue
            exprs.append(first(m.sources[c["name"]]).alias(f"t_{c['name']}"))
            if c["type"] == "money":
                exprs.append(pl.lit(m.units[c["name"]], pl.Int32).alias(f"u_{c['name']}"))
        exprs.append(first(m.ref_cols).alias("_ref"))
        blank = pl.all_horizontal([col(f"c{j}").str.strip_chars().fill_null("") == "" for j in range(plan.ncols)])
        return self.raw[plan.index].lazy().filter(~blank).select(exprs)

    # -- value rules (validate::parse_cell) --------------------------------------------------

    def column_exprs(self, c: dict) -> list[list[pl.Expr]]:
        """Expressions giving v_<name> (value) and r_<name> (reason code) for a column,
        in levels: each level refers only to columns made by earlier ones."""
        n, ty = c["name"], c["type"]
        t = col(f"t_{n}")

        def v() -> pl.Expr:  # this column's value
            return col(f"v_{n}")

        def r(e: pl.Expr) -> pl.Expr:  # this column's reason
            return e.alias(f"r_{n}")

        def x(name: str) -> pl.Expr:  # an intermediate of this column
            return col(f"{name}_{n}")

        if ty in ("text", "list"):
            return [[t.alias(f"v_{n}"), pl.lit(None, S).alias(f"r_{n}")]]
        if ty == "uscc":
            return [[uscc(t).alias(f"v_{n}")], [r(reason(t, (v().is_null(), "invalid_uscc")))]]
        if ty in ("date", "month", "year", "year_or_date"):
            as_of = pl.lit(self.as_of)
            if ty == "date":
                levels = [[cut_time(t).alias(f"s_{n}")], [date_of(x("s")).alias(f"d_{n}")]]
                future = x("d") > as_of
            elif ty == "month":
                levels = [[parse_month(t).alias(f"d_{n}")]]
                future = x("d") > as_of.dt.month_start()
            else:
                parsed = parse_year(t) if ty == "year" else pl.coalesce(parse_year(t), date_of(cut_time(t)).dt.year())
                levels = [[parsed.alias(f"d_{n}")]]
                future = x("d") > self.as_of.year
            if c.get("future_ok"):
                future = pl.lit(False)
            return levels + [[pl.when(~future).then(x("d")).alias(f"v_{n}"),
                              r(reason(t, (x("d").is_null(), "invalid_date"), (future, "future_date")))]]
        if ty in ("money", "count"):
            if ty == "money":
                text = (pl.when(t.str.starts_with("¥")).then(t.str.slice(1).str.strip_chars_start())
                        .when(t.str.starts_with("RMB")).then(t.str.slice(3).str.strip_chars_start()).otherwise(t))
            else:
                text = t.str.replace(r"(人次|人)$", "").str.strip_chars_end()
            levels = [[text.alias(f"m_{n}")],
                      [x("m").str.extract(r"^([0-9.,+-]*)", 1).alias(f"n_{n}"),
                       x("m").str.extract(r"^[0-9.,+-]*(.*)$", 1).str.strip_chars_start().alias(f"un_{n}")],
                      [(x("n").str.contains(NUM_RE) & x("n").str.contains("[0-9]")
                        & (x("n").str.replace_all("[^0-9]", "").str.strip_chars_start("0").str.len_chars() <= 36))
                       .alias(f"ok_{n}"),
                       x("n").str.extract(r"^[+-]?([0-9,]*)", 1).str.replace_all(",", "").alias(f"di_{n}"),
                       x("n").str.extract(r"\.([0-9]*)$", 1).fill_null("").alias(f"df_{n}"),
                       pl.when(x("n").str.starts_with("-")).then(-1).otherwise(1).cast(pl.Int128).alias(f"sg_{n}")]]
            if ty == "money":
                low = {"zero": x("k") < 0, "positive": x("k") <= 0}.get(c.get("min"), pl.lit(False))
                unit = (pl.when(x("un") == "").then(x("u").fill_null(0))
                        .otherwise(x("un").replace_strict(C.UNIT_EXPONENTS, default=None, return_dtype=pl.Int32)))
                levels[2].append(unit.alias(f"e_{n}"))
                levels += [[pl.when(x("ok") & x("e").is_not_null()).then(x("sg") * cents_of(x("di"), x("df"), x("e")))
                            .alias(f"k_{n}")],
                           [r(reason(t, (~x("ok"), "invalid_number"), (x("e").is_null(), "invalid_unit"),
                                     (x("k").is_null() | (x("k").abs() > MAX_CENTS), "invalid_number"),
                                     (low, "negative_amount")))],
                           [pl.when(col(f"r_{n}").is_null()).then(to_money(x("k"))).alias(f"v_{n}")]]
            else:
                low = x("k") < 0 if c.get("min") else pl.lit(False)
                levels += [[(x("sg") * big(x("di"))).alias(f"k_{n}")],
                           [r(reason(t, (~x("ok"), "invalid_number"), (x("un") != "", "invalid_unit"),
                                     (x("df").str.contains("[1-9]"), "invalid_number"),
                                     (x("k").is_null() | ~x("k").is_between(-(2**63), 2**63 - 1), "invalid_number"),
                                     (low, "negative_amount")))],
                           [pl.when(col(f"r_{n}").is_null()).then(x("k").cast(pl.Int64, strict=False)).alias(f"v_{n}")]]
            return levels
        if ty == "bool":
            lower = t.str.to_lowercase()
            value = pl.when(lower.is_in(C.BOOL_TRUE)).then(True).when(lower.is_in(C.BOOL_FALSE)).then(False)
            return [[value.alias(f"v_{n}")], [r(reason(t, (v().is_null(), "unknown_enum_value")))]]
        if ty == "enum":
            code = "unsupported_currency" if c["enum"] == "currency" else "unknown_enum_value"
            value = t.str.to_lowercase().replace_strict(C.ENUMS[c["enum"]], default=None, return_dtype=S)
            return [[value.alias(f"v_{n}")], [r(reason(t, (v().is_null(), code)))]]
        if ty == "industry_code":
            token = t.str.to_uppercase().str.extract(r"^([A-Z0-9.]*)", 1).str.replace(r"\.0$", "")
            g = token.str.extract_groups(r"^(?<l>[A-Z]?)(?<d>[0-9]{4})$")
            return [[g.struct.field("l").alias(f"il_{n}"), g.struct.field("d").alias(f"id_{n}")],
                    [x("id").replace_strict(C.INDUSTRY_CLASSES, default=None, return_dtype=S).alias(f"sec_{n}")],
                    [pl.when(x("sec").is_not_null() & ((x("il") == "") | (x("il") == x("sec")))).then(x("id"))
                     .alias(f"v_{n}")],
                    [r(reason(t, (v().is_null(), "unknown_industry_code")))]]
        if ty == "division":
            counties = {**{k: k for k in C.COUNTIES}, **{k: v_[1] for k, v_ in C.LEGACY.items()}}
            dv = t.str.replace(r"\.0$", "")
            return [[dv.alias(f"dv_{n}")],
                    [x("dv").str.contains(r"^[0-9]{6}([0-9]{3}){0,2}$").alias(f"dk_{n}")],
                    [pl.when(x("dk") & x("dv").str.starts_with("1402"))
                     .then(x("dv").str.slice(0, 6).replace_strict(counties, default=None, return_dtype=S))
                     .alias(f"v_{n}")],
                    [r(reason(t, (~x("dk"), "unknown_division"), (~x("dv").str.starts_with("1402"), "outside_city"),
                              (v().is_null(), "unknown_division")))]]
        if ty == "patent_no":
            return [[pat_s(t).alias(f"ps_{n}")],
                    [x("ps").str.extract(r"^([0-9]{12}|[0-9]{8})[\x00-\x7F]$", 1).alias(f"pd_{n}")],
                    [pat_check(x("pd")).alias(f"pc_{n}"), pat_year(x("pd")).alias(f"py_{n}")],
                    [pl.when(x("pd").is_not_null() & (x("ps").str.slice(-1, 1) == x("pc")) & x("py").is_not_null()
                             & pat_type_digit(x("pd")).is_in(list(C.PATENT_TYPES)))
                     .then(x("pd") + "." + x("pc")).alias(f"v_{n}")],
                    [r(reason(t, (v().is_null(), "invalid_patent_no")))]]
        raise ValueError(f"no rule for type {ty}")

    # -- row rules (validate::validate_row) -----------------------------------------------

    def check_kind(self, kind: str, plans: list[C.FilePlan]) -> pl.DataFrame:
        """Every row with its canonical values x_<column>, its reasons as columns _i<j>
        (a code or NULL; `items[j]` names the column), and its warnings."""
        cols = C.SCHEMAS[kind]["columns"]
        lf = pl.concat([self.staged(p) for p in plans if not p.rejected], how="vertical")
        levels: list[list[pl.Expr]] = []
        for c in cols:
            if not c.get("derived"):
                for i, exprs in enumerate(self.column_exprs(c)):
                    levels += [[] for _ in range(i + 1 - len(levels))]
                    levels[i] += exprs
        for exprs in levels:
            lf = lf.with_columns(exprs)
        items: list[tuple[pl.Expr, str]] = [(col(f"r_{c['name']}"), c["name"]) for c in cols if not c.get("derived")]
        for c in cols:
            if c.get("required"):
                missing = col(f"t_{c['name']}").is_null()
                if c["name"] == "uscc" and C.is_referencing(kind):
                    missing = missing & col("_ref").is_null()
                items.append((pl.when(missing).then(pl.lit("missing_required")), c["name"]))
        for later, earlier in C.DATE_ORDER.get(kind, []):
            items.append((pl.when(col(f"v_{later}") < col(f"v_{earlier}")).then(pl.lit("date_order")), later))
        values = {c["name"]: col(f"v_{c['name']}") for c in cols if not c.get("derived")}
        warnings: list[pl.Expr] = []
        if kind == "enterprise":
            # A missing division is found from the address (Divisions::county_from_address):
            # of the names the address contains, the first in match order.
            prio: dict[str, int] = {}
            for i, (name, _, _) in enumerate(C.ADDRESS_NAMES):
                prio.setdefault(name, i)
            found = (pl.when(col("t_division_code").is_null())
                     .then(col("v_address").str.extract_many(list(prio), overlapping=True)
                           .list.eval(pl.element().replace_strict(prio, return_dtype=pl.Int64)).list.min()))
            lf = lf.with_columns(found.alias("_prio"))
            addr_code = col("_prio").replace_strict({i: c_ for i, (_, c_, _) in enumerate(C.ADDRESS_NAMES)},
                                                    default=None, return_dtype=S)
            addr_split = col("_prio").replace_strict({i: s for i, (_, _, s) in enumerate(C.ADDRESS_NAMES)},
                                                     default=None, return_dtype=pl.Boolean)
            items.append((pl.when(col("t_division_code").is_null() & addr_code.is_null())
                          .then(pl.lit("unknown_division")), "division_code"))
            values["division_code"] = pl.coalesce(col("v_division_code"), addr_code)
            values["entity_kind"] = (pl.when(col("t_entity_kind").is_null() & col("v_uscc").is_not_null())
                                     .then(col("v_uscc").str.slice(0, 2).replace_strict(
                                         {"91": "enterprise", "92": "individual", "93": "cooperative"},
                                         default="other", return_dtype=S))
                                     .otherwise(col("v_entity_kind")))
            legacy_code = (col("dv_division_code").str.slice(0, 6) == "140211") & col("v_division_code").is_not_null()
            warnings = [pl.when(addr_code.is_not_null()).then(pl.lit("division_from_address")),
                        pl.when(legacy_code | addr_split.fill_null(False)).then(pl.lit("legacy_division_split"))]
        if kind == "enterprise_annual":
            items.append((pl.when(col("v_year") < C.FIRST_ANNUAL_YEAR).then(pl.lit("invalid_date")), "year"))
        if kind == "patent":
            # The number decides the type (a stated type must agree), the PCT flag and
            # the application year; applicants are split, their codes aligned by position.
            el = pl.element()
            lf = lf.with_columns(
                pl.when(col("t_applicant_uscc").is_null()).then(pl.lit([], pl.List(S)))
                .otherwise(split_list(col("t_applicant_uscc"))).alias("_raw_codes"),
                split_list(col("v_applicants").fill_null("")).list.eval(el.filter(el != "")).alias("_names"),
                col("pd_application_no").alias("_digits"))
            lf = lf.with_columns(col("_raw_codes").list.eval(
                pl.when((el == "") | el.str.to_lowercase().is_in(C.NULL_TOKENS)).then(None)
                .when(uscc(el).is_null()).then(pl.lit("!")).otherwise(uscc(el))).alias("_codes"))
            number_type = pat_type_digit(col("_digits")).replace_strict(
                {d: t for d, (t, _) in C.PATENT_TYPES.items()}, default=None, return_dtype=S)
            has_no = col("v_application_no").is_not_null()
            date_order = items.pop()
            items += [(pl.when(has_no & col("v_patent_type").is_not_null() & (col("v_patent_type") != number_type))
                       .then(pl.lit("patent_type_mismatch")), "patent_type"),
                      (pl.when(has_no & (col("v_applied_on").dt.year() != pat_year(col("_digits"))))
                       .then(pl.lit("year_mismatch")), "applied_on"),
                      date_order,
                      (pl.when((col("_raw_codes").list.len() > col("_names").list.len())
                               & col("_raw_codes").list.slice(col("_names").list.len()).list.eval(el != "").list.any())
                       .then(pl.lit("missing_required")), "applicant_uscc"),
                      (pl.when(col("_codes").list.contains("!")).then(pl.lit("invalid_uscc")), "applicant_uscc")]
            good = col("_codes").list.eval(el.is_not_null() & (el != "!")).list.any()
            values.update({
                "patent_type": pl.when(has_no).then(number_type).otherwise(col("v_patent_type")),
                "is_pct": pl.when(has_no).then(pat_type_digit(col("_digits")).is_in(["8", "9"])),
                "applicants": pl.when(col("_names").list.len() > 0).then(col("_names").list.join(";"))
                .otherwise(col("v_applicants")),
                "applicant_uscc": pl.when(good).then(col("_codes").list.eval(
                    pl.when(el.is_null() | (el == "!")).then(pl.lit("")).otherwise(el)).list.join(";")),
                "applicant_count": col("_names").list.len().cast(pl.Int64),
            })
        if kind == "financing":
            values["currency"] = pl.coalesce(col("v_currency"), pl.lit("CNY"))
        if C.is_referencing(kind):
            # resolve_reference: a USCC must be registered (only valid ones are checked);
            # without one, the name must link to exactly one enterprise.
            lf = (lf.join(self.reg.lazy().with_columns(pl.lit(True).alias("_in_reg")),
                          left_on="v_uscc", right_on="uscc", how="left", maintain_order="left")
                  .with_columns(pl.when(col("t_uscc").is_null()).then(col("_ref")).alias("_ref_key"))
                  .join(self.reg_name.lazy().rename({"n": "_rn_n", "uscc": "_rn_uscc"}),
                        left_on="_ref_key", right_on="name", how="left", maintain_order="left"))
            present = col("t_uscc").is_not_null()
            items.append((pl.when(present & col("v_uscc").is_not_null() & col("_in_reg").is_null())
                          .then(pl.lit("orphan_reference"))
                          .when(~present & col("_ref").is_not_null() & col("_rn_n").is_null())
                          .then(pl.lit("orphan_reference"))
                          .when(~present & (col("_rn_n") > 1)).then(pl.lit("ambiguous_reference")), "uscc"))
            values["uscc"] = pl.when(present).then(col("v_uscc")).when(col("_rn_n") == 1).then(col("_rn_uscc"))
        self.item_fields = [f for _, f in items]
        out = [col("_file"), col("_row")]
        out += [e.alias(f"_i{j}") for j, (e, _) in enumerate(items)]
        out.append(pl.concat_list([w for w in warnings] or [pl.lit(None, S)]).list.drop_nulls().alias("_warnings"))
        schema = {c["name"]: c for c in cols}
        out += [values.get(c["name"], pl.lit(None)).cast(self.dtype(schema[c["name"]]["type"])).alias(f"x_{c['name']}")
                for c in cols]
        if kind == "patent":
            out += [col("_names"), col("_codes")]
        checked = lf.select(out).with_columns(
            pl.all_horizontal([col(f"_i{j}").is_null() for j in range(len(items))]).alias("_ok")
        ).collect(engine=ENGINE)
        if kind == "financing":
            checked = self.deal_ids(checked)
        return checked

    @staticmethod
    def deal_ids(checked: pl.DataFrame) -> pl.DataFrame:
        """hash::deal_id for valid rows without one: the first 16 hex digits of the
        SHA-256 of uscc|date|instrument|amount|institution (Python's hashlib: Polars
        has no SHA-256 expression)."""
        text = pl.concat_str([col("x_uscc"), col("x_occurred_on").dt.strftime("%Y-%m-%d"), col("x_instrument"),
                              col("x_amount").cast(S), col("x_institution").fill_null("")], separator="|")
        need = col("_ok") & col("x_deal_id").is_null()
        return checked.with_columns(pl.when(need).then(text.map_elements(
            lambda s: hashlib.sha256(s.encode()).hexdigest()[:16], return_dtype=S))
            .otherwise(col("x_deal_id")).alias("x_deal_id"))

    @staticmethod
    def dtype(ty: str):
        return {"date": pl.Date, "month": pl.Date, "year": pl.Int32, "year_or_date": pl.Int32,
                "money": pl.Decimal(20, 2), "count": pl.Int64, "bool": pl.Boolean}.get(ty, S)

    # -- duplicates, outputs ---------------------------------------------------------------

    def settle_kind(self, kind: str, plans: list[C.FilePlan], checked: pl.DataFrame) -> None:
        cols = [f"x_{c}" for c in C.all_columns(kind)]
        key = [f"x_{c}" for c in C.key_columns(kind)]
        files = {p.index: p for p in plans}
        names = pl.DataFrame({"_file": [p.index for p in plans], "source_file": [p.display for p in plans]},
                             schema={"_file": pl.Int32, "source_file": S})
        # Same canonical values: the first copy (path order, then row order) stays, the
        # later ones are exact duplicates. Same key, different values: every variant is
        # quarantined as conflicting_duplicate.
        settled = (checked.lazy().filter(col("_ok")).sort("_file", "_row")
                   .with_columns(pl.int_range(pl.len()).over(cols).alias("_copy"))
                   .with_columns((col("_copy") == 0).sum().over(key).alias("_variants"))
                   .with_columns(pl.when(col("_copy") > 0).then(pl.lit("duplicate"))
                                 .when(col("_variants") > 1).then(pl.lit("conflict"))
                                 .otherwise(pl.lit("loaded")).alias("_status"))).collect(engine=ENGINE)
        loaded = settled.filter(col("_status") == "loaded").join(names, on="_file", how="left")
        loaded.select([col(f"x_{c}").alias(c) for c in C.all_columns(kind)]
                      + [col("source_file"), col("_row").alias("source_row")]
                      ).write_parquet(self.out / f"{kind}.parquet")
        # Quarantine: each row's reason codes (distinct, in the order found) with the
        # columns that gave them; conflicting variants; `raw` from the file's cells.
        item_names = pl.DataFrame({"_j": list(range(len(self.item_fields))), "f": self.item_fields},
                                  schema={"_j": pl.Int64, "f": S})
        bad = (checked.filter(~col("_ok")).select("_file", "_row", *[f"_i{j}" for j in range(len(self.item_fields))])
               .unpivot(index=["_file", "_row"], variable_name="_j", value_name="c").drop_nulls("c")
               .with_columns(col("_j").str.slice(2).cast(pl.Int64)).sort("_file", "_row", "_j")
               .join(item_names, on="_j", how="left", maintain_order="left"))
        conflicts = settled.filter(col("_status") == "conflict").select(
            "_file", "_row", pl.lit(0, pl.Int64).alias("_j"), pl.lit("conflicting_duplicate").alias("c"),
            pl.lit("key").alias("f"))
        q = (pl.concat([bad, conflicts]).group_by("_file", "_row", "c", maintain_order=True)
             .agg(col("f").str.join(", "))
             .group_by("_file", "_row", maintain_order=True)
             .agg(col("c").alias("reasons"), (col("c") + ": " + col("f")).alias("messages")))
        for i, part in q.partition_by("_file", as_dict=True).items():
            plan = files[i[0]]
            keys = C.raw_json_keys(plan.columns.header)
            cells = pl.struct([col(f"c{j}").alias(k) for j, k in enumerate(keys)])
            raw = (self.raw[plan.index].join(part.select("_row"), on="_row", how="semi")
                   .select("_row", cells.struct.json_encode().alias("raw")))
            self.quarantine.append(part.join(raw, on="_row", how="left").sort("_row").select(
                pl.lit(plan.display).alias("source_file"), col("_row").alias("row_number"),
                pl.lit(kind).alias("kind"), "raw", "reasons", "messages"))
        warned = loaded.filter(col("_warnings").list.len() > 0)
        if kind == "patent":
            warned = self.patent_applicants(loaded)
        self.warnings.append(warned.select("source_file", col("_row").alias("row_number"), pl.lit(kind).alias("kind"),
                                           col("_warnings").alias("warnings")))
        if kind == "enterprise":
            self.reg = loaded.select(col("x_uscc").alias("uscc")).unique()
            self.reg_name = loaded.group_by(col("x_name").alias("name")).agg(
                col("x_uscc").n_unique().alias("n"), col("x_uscc").min().alias("uscc"))
        status = pl.concat([checked.filter(~col("_ok")).select("_file", pl.lit("quarantined").alias("_status")),
                            settled.select("_file", "_status")])
        counts = {r["_file"]: r for r in status.group_by("_file").agg(
            pl.len().alias("read"), (col("_status") == "loaded").sum().alias("loaded"),
            (col("_status") == "duplicate").sum().alias("dup")).to_dicts()}
        for p in plans:
            c = counts.get(p.index, {"read": 0, "loaded": 0, "dup": 0}) if not p.rejected else \
                {"read": 0, "loaded": 0, "dup": 0}
            self.ingest_run.append({"source_file": p.display, "kind": kind, "content_hash": p.content_hash,
                                    "rows_read": c["read"], "rows_loaded": c["loaded"], "rows_duplicate": c["dup"],
                                    "rows_quarantined": c["read"] - c["loaded"] - c["dup"],
                                    "status": "rejected" if p.rejected else "loaded", "message": p.rejected})

    def patent_applicants(self, loaded: pl.DataFrame) -> pl.DataFrame:
        """patent_applicant rows: an applicant links by its USCC when registered, else by
        exact name (one match); otherwise it stays unlinked, and its patent row gets the
        warning unlinked_applicant. Returns the warned patent rows."""
        a = (loaded.select("source_file", "_file", "_row", col("x_application_no").alias("application_no"),
                           col("_names").alias("applicant_name"), col("_codes"),
                           pl.int_ranges(1, col("_names").list.len() + 1).alias("position"))
             .explode("applicant_name", "position")
             .drop_nulls("applicant_name")
             .with_columns(col("_codes").list.get(col("position") - 1, null_on_oob=True).alias("_code"))
             .join(self.reg.with_columns(col("uscc").alias("_reg")), left_on="_code", right_on="uscc", how="left",
                   maintain_order="left")
             .join(self.reg_name, left_on="applicant_name", right_on="name", how="left", maintain_order="left")
             .with_columns(pl.when(col("_reg").is_not_null()).then(col("_reg"))
                           .when(col("n") == 1).then(col("uscc")).alias("uscc"),
                           pl.when(col("_reg").is_not_null()).then(pl.lit("uscc"))
                           .when(col("n") == 1).then(pl.lit("name")).alias("link_method")))
        a.select("application_no", col("position").cast(pl.Int64), "applicant_name", "uscc", "link_method",
                 "source_file", col("_row").alias("source_row")).write_parquet(self.out / "patent_applicant.parquet")
        return (a.filter(col("uscc").is_null()).select("source_file", "_row").unique(maintain_order=True)
                .with_columns(pl.lit(["unlinked_applicant"], pl.List(S)).alias("_warnings")))

    # -- the run ---------------------------------------------------------------------------

    def settle(self, kind: str, plans) -> None:
        if any(not p.rejected for p in plans):
            self.settle_kind(kind, plans, self.check_kind(kind, plans))
        self.raw.clear()

    def run(self, data_dir: Path) -> None:
        C.run_kinds(data_dir, self.workdir, self.timings, self.load, self.settle)
        pl.concat(self.quarantine).write_parquet(self.out / "quarantine.parquet")
        pl.concat(self.warnings).sort("kind", "source_file", "row_number").write_parquet(
            self.out / "ingest_warning.parquet")
        pl.DataFrame(self.ingest_run, schema={
            "source_file": S, "kind": S, "content_hash": S, "rows_read": pl.Int64, "rows_loaded": pl.Int64,
            "rows_duplicate": pl.Int64, "rows_quarantined": pl.Int64, "status": S, "message": S,
        }).write_parquet(self.out / "ingest_run.parquet")


def run(data_dir: Path, out: Path, as_of: str, threads: int, workdir: Path) -> dict:
    # The thread count is fixed by POLARS_MAX_THREADS before polars is imported (run.sh).
    peer = PolarsPeer(out, as_of, workdir)
    peer.run(data_dir)
    return {"engine": "polars", "version": pl.__version__, "threads": pl.thread_pool_size(), "kinds": peer.timings}
