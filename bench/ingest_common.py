"""What the DuckDB and Polars ingest peers share: townstat's rules as *data* (schemas,
alias tables, reference tables, read from the same files townstat compiles in), and the
per-file work that decides how a file is read (format, encoding, delimiter, where the
header is, which column feeds which canonical column, which unit a header states).

The row-level work (normalizing cells, parsing, validating, de-duplicating) is not here:
each peer does it in its own engine (`ingest_duckdb.py`: SQL; `ingest_polars.py`: Polars
expressions), since that is what is being measured. What both need per file is a
`FilePlan`; this module makes them, once per file, from the first rows only.

Ported from crates/domain/src/{text,number,division,industry,enums}.rs and
crates/ingest/src/{header,read/csv,read/decode,read/xlsx}.rs; the comments name the
Rust function each part mirrors.
"""
from __future__ import annotations

import codecs
import csv
import glob
import hashlib
import os
import tempfile
import time
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "sample-data" / "reference"

# The order a run ingests kinds in (registry first: every other kind references it).
SOURCE_KINDS = ["enterprise", "enterprise_annual", "designation", "employment", "patent", "financing"]

# ---------------------------------------------------------------------------------------
# Text (crates/domain/src/text.rs)
# ---------------------------------------------------------------------------------------

NULL_TOKENS = ["", "-", "—", "/", "无", "空", "null", "n/a"]


def normalize(raw: str) -> str:
    """NFKC, trimmed, whitespace runs folded to one space (text::normalize)."""
    return " ".join(unicodedata.normalize("NFKC", raw).split())


def match_key(raw: str) -> str:
    """How headers and aliases are compared (text::match_key)."""
    return normalize(raw).lower()


# ---------------------------------------------------------------------------------------
# Schemas and alias tables (schemas/*.toml, pipelines/enums.toml)
# ---------------------------------------------------------------------------------------


def load_schema(kind: str) -> dict:
    with open(ROOT / "schemas" / f"{kind}.toml", "rb") as f:
        return tomllib.load(f)


SCHEMAS = {k: load_schema(k) for k in SOURCE_KINDS + ["patent_applicant"]}


def load_enums(path: Path = ROOT / "pipelines" / "enums.toml") -> dict[str, dict[str, str]]:
    """{enumeration: {match_key(alias): canonical}}, the canonical value an alias too."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    out: dict[str, dict[str, str]] = {}
    for name, values in raw.items():
        table: dict[str, str] = {}
        for canonical, aliases in values.items():
            for alias in [*aliases, canonical]:
                table[match_key(alias)] = canonical
        out[name] = table
    return out


ENUMS = load_enums()

# Booleans (domain/src/boolean.rs), compared after normalize + lower-case.
BOOL_TRUE = ["是", "y", "yes", "true", "1", "1.0", "√", "✓", "t"]
BOOL_FALSE = ["否", "n", "no", "false", "0", "0.0", "×", "✗", "f"]

# ---------------------------------------------------------------------------------------
# Money units (crates/domain/src/number.rs)
# ---------------------------------------------------------------------------------------

# Unit::parse: the unit names a cell suffix may carry, as powers of ten of 元.
UNIT_EXPONENTS = {"元": 0, "yuan": 0, "人民币元": 0, "万元": 4, "万": 4, "wan": 4, "亿元": 8, "亿": 8, "yi": 8}
# Decimal128(20,2): the largest amount in cents has 20 digits.
MAX_CENT_DIGITS = 20


def unit_from_header(header: str) -> int | None:
    """Unit::from_header: the unit a header names, as an exponent."""
    h = normalize(header)
    for needle, exp in [("亿元", 8), ("万元", 4), ("(元)", 0)]:
        if needle in h:
            return exp
    if h.endswith("(亿)"):
        return 8
    if h.endswith("(万)"):
        return 4
    return None


# ---------------------------------------------------------------------------------------
# Reference tables (crates/domain/src/{industry,division}.rs)
# ---------------------------------------------------------------------------------------


def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8") as f:
        return [r for r in csv.reader(f)][1:]


# GB/T 4754-2017 classes (4-digit codes) and their section letter.
INDUSTRY_CLASSES = {r[0]: r[4] for r in _csv_rows(REFERENCE / "gbt4754_2017.csv") if r[2] == "class"}
# Datong's current counties (code → name).
COUNTIES = {r[0]: r[1] for r in _csv_rows(REFERENCE / "datong_divisions.csv") if r[2] == "county"}
# Codes abolished in 2018: old code → (old name, current code, split?).
LEGACY = {"140202": ("城区", "140213", False), "140203": ("矿区", "140214", False),
          "140227": ("大同县", "140215", False), "140211": ("南郊区", "140214", True)}
ZONE_NAMES = ["山西大同经济开发区", "大同经济技术开发区", "经济技术开发区", "经济开发区"]


def _address_names() -> list[tuple[str, str, bool]]:
    """Divisions::datong().address_names: (name, county, legacy split), in the order an
    address is matched: county, legacy and zone names longest first, then townships
    longest first (so 南郊区口泉乡 is read as 南郊区)."""
    def longest_first(items):
        return sorted(items, key=lambda x: (-len(x[0]), x[0]))
    names = [(name, code, False) for code, name in COUNTIES.items()]
    names += [(name, to, split) for (name, to, split) in LEGACY.values()]
    names += [(n, "140271", False) for n in ZONE_NAMES]
    townships = [(r[1], r[2], False) for r in _csv_rows(REFERENCE / "datong_towns_townships.csv")
                 if len(r) == 3 and "乡级单位" not in r[1]]
    return longest_first(names) + longest_first(townships)


ADDRESS_NAMES = _address_names()

# ---------------------------------------------------------------------------------------
# Header mapping (crates/ingest/src/header.rs)
# ---------------------------------------------------------------------------------------

HEADER_SEARCH_ROWS = 10
REFERENCE_NAME_ALIASES = ["企业名称", "名称", "融资主体", "市场主体名称"]
REF = "__ref__"  # the target of an enterprise-name column of a referencing kind


def is_referencing(kind: str) -> bool:
    return kind in ("enterprise_annual", "designation", "employment", "financing")


class AliasIndex:
    """header::AliasIndex: normalized header → canonical column (or REF), plus the unit
    a header states. Pipelines' extra aliases are not supported (the generated data's
    pipeline has none)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.map: dict[str, str] = {}
        self.tried: dict[str, list[str]] = {}
        for col in SCHEMAS[kind]["columns"]:
            names = [] if col.get("derived") else [col["name"], *col.get("aliases", [])]
            for n in names:
                self.map.setdefault(match_key(n), col["name"])
            self.tried[col["name"]] = names
        if is_referencing(kind):
            for n in REFERENCE_NAME_ALIASES:
                self.map.setdefault(match_key(n), REF)

    def lookup(self, header: str) -> tuple[str, int | None] | None:
        key = match_key(header)
        unit = unit_from_header(key)
        if key in self.map:
            return self.map[key], unit
        # `营业收入(万元)` → `营业收入`; `注册资本万元` → `注册资本`.
        i = key.rfind("(")
        if i >= 0 and key.endswith(")"):
            bare = key[:i].rstrip()
        else:
            bare = next((key[: -len(u)] for u in ("亿元", "万元", "元") if key.endswith(u)), key)
        return (self.map[bare], unit) if bare in self.map else None

    def score(self, cells: list[str | None]) -> int:
        return sum(1 for c in cells if c is not None and self.lookup(c) is not None)


class FileRejected(Exception):
    """A file that cannot be read at all: rejected whole, the run goes on."""


@dataclass
class ColumnMap:
    """header::ColumnMap: per canonical column the file columns feeding it (the first
    non-null one wins), the unit its header states, and the enterprise-name columns."""
    header: list[str]
    sources: dict[str, list[int]]
    units: dict[str, int | None]
    ref_cols: list[int]


def map_header(header: list[str], kind: str, index: AliasIndex, display: str) -> ColumnMap:
    schema = SCHEMAS[kind]
    sources: dict[str, list[int]] = {c["name"]: [] for c in schema["columns"]}
    units: dict[str, int | None] = {c["name"]: None for c in schema["columns"]}
    ref_cols: list[int] = []
    for i, h in enumerate(header):
        hit = index.lookup(h)
        if hit is None:
            continue
        target, unit = hit
        if target == REF:
            ref_cols.append(i)
        else:
            sources[target].append(i)
            if units[target] is None:
                units[target] = unit
    for col in schema["columns"]:
        if not col.get("required") or sources[col["name"]]:
            continue
        if col["name"] == "uscc" and ref_cols:
            continue
        raise FileRejected(f"{display}: missing required column {col['name']} ({col['label']}); "
                           f"tried: {', '.join(index.tried[col['name']])}")
    return ColumnMap(header, sources, units, ref_cols)


def find_header(rows: list[list[str | None]], index: AliasIndex, display: str) -> int:
    """The header row among the first rows: most cells matching an alias, the first
    such row on ties; no matching cell at all rejects the file."""
    best = max(((index.score(r), -i) for i, r in enumerate(rows[:HEADER_SEARCH_ROWS])), default=(0, 0))
    if best[0] <= 0:
        raise FileRejected(f"{display}: no header row in the first {HEADER_SEARCH_ROWS} rows: "
                           f"no cell matches a column of {index.kind}")
    return -best[1]


# ---------------------------------------------------------------------------------------
# Files: discovery, hashing, encodings, delimiters (crates/ingest/src/read/*.rs)
# ---------------------------------------------------------------------------------------

FORMATS = {"csv": "csv", "tsv": "csv", "txt": "csv", "xlsx": "xlsx", "xlsm": "xlsx", "xls": "xlsx",
           "ndjson": "ndjson", "jsonl": "ndjson", "json": "ndjson"}


def source_files(data_dir: Path, kind: str) -> list[Path]:
    """The files of a kind in path order (pipeline glob `<data>/<kind>/*`)."""
    return sorted(Path(p) for p in glob.glob(str(data_dir / kind / "*")) if os.path.isfile(p))


def display_path(path: Path) -> str:
    """ingest::display_path: relative to the working directory when under it."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def content_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


SNIFF = 64 * 1024


def detect_encoding(path: Path) -> str:
    """decode::open (Auto): UTF-8 when the first 64 KiB are UTF-8 (an incomplete
    character at the end is fine) or start with a BOM, else GB18030. UTF-16 is refused."""
    with open(path, "rb") as f:
        head = f.read(SNIFF)
    if head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff"):
        raise FileRejected(f"{path}: the file is UTF-16, which is not accepted; export it as UTF-8 or GBK")
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def utf8_copy(path: Path, workdir: Path) -> Path:
    """A UTF-8 copy of a GB18030 file. Neither DuckDB (without its `encodings`
    extension, which needs the network) nor Polars reads GBK, so GBK files are
    transcoded by Python's codec first; this time counts in the peer's ingest time."""
    out = workdir / (path.name + ".utf8")
    try:
        with open(path, encoding="gb18030", errors="strict", newline="") as src, \
                open(out, "w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except UnicodeDecodeError as e:
        raise FileRejected(f"{path}: bytes near offset {e.start} are neither UTF-8 nor GBK/GB18030") from e
    return out


def sniff_delimiter(head: bytes) -> str:
    """read/csv.rs sniff_delimiter: the candidate whose (non-zero) count per line is
    most consistent over the first 12 lines, then the larger total, then `,` tab `;`."""
    candidates = [b",", b"\t", b";"]
    per_line = [[0, 0, 0]]
    in_quotes = False
    for b in head:
        c = bytes([b])
        if c == b'"':
            in_quotes = not in_quotes
        elif c == b"\n" and not in_quotes:
            if len(per_line) >= 12:
                break
            per_line.append([0, 0, 0])
        elif not in_quotes and c in candidates:
            per_line[-1][candidates.index(c)] += 1

    def score(i):
        counts = sorted(line[i] for line in per_line if line[i] > 0)
        best = (0, 0)
        j = 0
        while j < len(counts):
            k = sum(1 for c in counts[j:] if c == counts[j])
            if k > best[0]:
                best = (k, counts[j])
            j += k
        return (best[0], sum(counts))

    best = max(range(3), key=lambda i: (score(i), 3 - i))
    return candidates[best].decode()


# ---------------------------------------------------------------------------------------
# File plans
# ---------------------------------------------------------------------------------------


@dataclass
class FilePlan:
    """How one file is read and which of its columns feed which canonical column. The
    engines read `read_path` (a UTF-8 copy for GBK files) as all-text columns c0..cN-1
    and number rows with `row_of(i) = first_row + i` (i the 0-based record index after
    the header)."""
    index: int                      # position in the run (files in path order per kind)
    kind: str
    path: Path
    display: str
    fmt: str
    content_hash: str
    read_path: Path | None = None
    delimiter: str = ","
    skip_lines: int = 0             # CSV: physical lines up to and including the header
    header_row: int = 0             # XLSX: 0-based sheet row of the header
    first_row: int = 0              # row number of the first record after the header
    ncols: int = 0
    columns: ColumnMap | None = None
    rejected: str | None = None
    xlsx: object = None             # XLSX: the sheet as a pyarrow Table of strings


def _csv_head(path: Path, delimiter: str, n: int) -> list[tuple[list[str], int]]:
    """The first n non-blank records and the physical line each ends on (Python's csv
    module, as townstat's csv crate: `"` quotes, doubled to escape, empty lines skipped)."""
    out = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            for rec in reader:
                if rec == []:
                    continue
                out.append((rec, reader.line_num))
                if len(out) >= n:
                    break
        except (csv.Error, UnicodeDecodeError) as e:
            raise FileRejected(f"{path}: {e}") from e
    return out


def read_xlsx(path: Path):
    """The first sheet as strings, with fastexcel (calamine, the reader townstat uses).
    Typed cells arrive as text: numbers in their shortest form (`140214`, `14604.26`),
    booleans as `true`/`false`, date cells as `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`;
    the time of a date cell is dropped here, since townstat reads a date cell as a date
    (also in month columns, where date-time *text* would be rejected)."""
    import fastexcel
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        sheet = fastexcel.read_excel(str(path)).load_sheet(0, header_row=None, dtypes="string")
    except Exception as e:  # noqa: BLE001 - any reader error rejects the file
        raise FileRejected(f"{path}: not a readable XLSX workbook: {e}") from e
    t = sheet.to_arrow()
    cols = []
    for c in t.columns:
        c = c.cast(pa.string())
        cols.append(pc.replace_substring_regex(c, r"^(\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2}$", r"\1"))
    return pa.table(cols, names=[f"c{i}" for i in range(len(cols))])


def plan_file(i: int, kind: str, path: Path, workdir: Path) -> FilePlan:
    """Decides how to read one file; a FileRejected becomes `plan.rejected`."""
    fmt = FORMATS.get(path.suffix.lower().lstrip("."))
    plan = FilePlan(index=i, kind=kind, path=path, display=display_path(path), fmt=fmt or "",
                    content_hash=content_hash(path))
    index = AliasIndex(kind)
    try:
        if fmt is None:
            raise FileRejected(f"{plan.display}: cannot tell the format from the extension")
        if fmt == "xlsx":
            t = read_xlsx(path)
            head = [[t.column(c)[r].as_py() for c in range(t.num_columns)]
                    for r in range(min(HEADER_SEARCH_ROWS, t.num_rows))]
            at = find_header(head, index, plan.display)
            header = [h or "" for h in head[at]]
            plan.header_row = at
            plan.first_row = at + 2          # sheet rows count from 1; data starts below
            plan.xlsx = t.slice(at + 1)
            plan.ncols = t.num_columns
        else:
            encoding = detect_encoding(path)
            plan.read_path = utf8_copy(path, workdir) if encoding == "gb18030" else path
            if fmt == "ndjson":
                # The header is the set of keys; the engine reads it (see the engines).
                return plan
            with open(plan.read_path, "rb") as f:
                plan.delimiter = sniff_delimiter(f.read(SNIFF))
            head = _csv_head(plan.read_path, plan.delimiter, HEADER_SEARCH_ROWS)
            at = find_header([[c if c != "" else None for c in r] for r, _ in head], index, plan.display)
            header, plan.skip_lines = head[at]
            plan.first_row = plan.skip_lines + 1
            plan.ncols = len(header)
        plan.columns = map_header(header, kind, index, plan.display)
    except FileRejected as e:
        plan.rejected = str(e)
    return plan


def map_ndjson_keys(plan: FilePlan, keys: list[str]) -> None:
    """The NDJSON header is every key in first-seen order (read by the engine)."""
    plan.ncols = len(keys)
    plan.first_row = 1
    try:
        plan.columns = map_header(keys, plan.kind, AliasIndex(plan.kind), plan.display)
    except FileRejected as e:
        plan.rejected = str(e)


def plan_kind(data_dir: Path, kind: str, workdir: Path, start: int) -> list[FilePlan]:
    return [plan_file(start + i, kind, p, workdir) for i, p in enumerate(source_files(data_dir, kind))]


def raw_json_keys(header: list[str]) -> list[str]:
    """ingest::raw_json: the keys of a quarantined row's `raw` object (blank headers are
    `column N`, repeated ones get `#` appended)."""
    keys: list[str] = []
    for i, h in enumerate(header):
        k = h if h.strip() else f"column {i + 1}"
        while k in keys:
            k += "#"
        keys.append(k)
    return keys


# ---------------------------------------------------------------------------------------
# Column groups the engines build expressions from
# ---------------------------------------------------------------------------------------


def columns_of(kind: str, *types: str) -> list[dict]:
    return [c for c in SCHEMAS[kind]["columns"] if c["type"] in types and not c.get("derived")]


def key_columns(kind: str) -> list[str]:
    return SCHEMAS[kind]["key"]


def all_columns(kind: str) -> list[str]:
    return [c["name"] for c in SCHEMAS[kind]["columns"]]


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="townstat-peer-"))


# Fixed English messages per reason (townstat's messages quote the cell; the peers name
# the column(s) instead, which is enough to find the cell in `raw`).
def reason_message(code: str, columns: list[str]) -> str:
    return f"{code}: {', '.join(columns)}"


# ---------------------------------------------------------------------------------------
# Cross-field rules of crates/ingest/src/validate.rs, as data both engines iterate over
# ---------------------------------------------------------------------------------------

# (later, earlier): a row whose `later` value is before its `earlier` value is date_order.
DATE_ORDER = {
    "enterprise": [("deregistered_on", "established_on")],
    "designation": [("expires_year", "year")],
    "patent": [("granted_on", "applied_on")],
}
# Annual returns start in 1990; an earlier year is invalid_date.
FIRST_ANNUAL_YEAR = 1990
# List cells (patent applicants and their codes) split on these.
LIST_SEPARATORS = ";；,，、"
# USCC alphabet and weights (domain/src/uscc.rs); patent check weights (patent.rs).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
PATENT_WEIGHTS = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5]
PATENT_TYPES = {"1": ("invention", False), "2": ("utility_model", False), "3": ("design", False),
                "8": ("invention", True), "9": ("utility_model", True)}
# Date, month and field separators of domain/src/date.rs.
DATE_SEPARATORS = "-/.年月日"


def run_kinds(data_dir: Path, workdir: Path, timings: dict, load, settle) -> None:
    """The peers' common loop, in townstat's kind order: plan the kind's files, load
    the readable ones (`load(plan)`), then check and write the kind (`settle(kind,
    plans)`, called even when no file could be read), recording the three phases' times
    in `timings[kind]`."""
    start = 0
    for kind in SOURCE_KINDS:
        t0 = time.perf_counter()
        plans = plan_kind(data_dir, kind, workdir, start)
        start += len(plans)
        t1 = time.perf_counter()
        for p in plans:
            if not p.rejected:
                load(p)
        t2 = time.perf_counter()
        settle(kind, plans)
        timings[kind] = {"plan_s": round(t1 - t0, 3), "read_s": round(t2 - t1, 3),
                         "check_write_s": round(time.perf_counter() - t2, 3)}
