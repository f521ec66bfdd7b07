#!/usr/bin/env python3
"""`townstat serve` through ODBC, as Excel, Power BI, Tableau, R's odbc package and
pyodbc scripts reach it: unixODBC, psqlODBC's Unicode driver (Debian's
odbc-postgresql, registered as "PostgreSQL Unicode") and pyodbc. Starts a real server
on 127.0.0.1 (a free port) over a warehouse the binary built, and checks values, not
only that calls return.

    usage: odbc_check.py WAREHOUSE TOWNSTAT_BINARY

psqlODBC hides some failures from the application (it ignores a refused DEALLOCATE,
say), so the driver's own log (CommLog, written to a temporary folder) and the
server's log (RUST_LOG=info, stderr) are read too: a failing check names the exact
statements the driver sent that failed and the server's warnings. Both lists are
printed in full at the end. The warehouse is only read.
Last line: "odbc_check: N passed, M failed"; exit status 1 when M > 0.
"""

import csv
import datetime
import decimal
import glob
import io
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib

import pyodbc

WAREHOUSE, BIN = sys.argv[1], sys.argv[2]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER, PASSWORD = "alice", "Tr0ub4dor&3 with spaces"
DRIVER = "PostgreSQL Unicode"
SQL_NUMERIC, SQL_TYPE_DATE = 2, 91
results = {"passed": 0, "failed": 0}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


def note(text):
    print("note " + text)


class Server:
    """A `townstat serve` process; `port` is where it listens, `log` its stderr."""

    def __init__(self, tmp, *args):
        self.log = os.path.join(tmp, "server.log")
        env = dict(os.environ, TOWNSTAT_WAREHOUSE=WAREHOUSE, RUST_LOG="info")
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [BIN, "serve", "--listen", "127.0.0.1:0", *args],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.proc.stdout.readline()
        if "listening on 127.0.0.1:" not in line:
            raise RuntimeError(f"the server did not start: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Log:
    """A log file other processes append to, read from a mark on."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        return os.path.getsize(self.path) if self.path and os.path.exists(self.path) else 0

    def text(self, since=0):
        time.sleep(0.1)  # the writer logs before it answers; let the file catch up
        if not self.path or not os.path.exists(self.path):
            return ""
        with open(self.path, "rb") as f:
            f.seek(since)
            return ANSI.sub("", f.read().decode("utf-8", "replace"))


def server_warnings(log, since=0):
    """The server's WARN and ERROR lines, without timestamp and peer."""
    out = []
    for line in log.text(since).splitlines():
        if " WARN " in line or " ERROR " in line:
            line = re.sub(r"^\S+\s+", "", line)
            out.append(re.sub(r"peer=\S+ ", "", line))
    return out


TRACE_CALLS = ("PQsendQuery:", "PQprepare:", "PQexecPrepared:", "PQexecParams:", "PQexec:")


def statement_complete(text):
    """Whether a CommLog statement line holds the whole statement (its SQL may go on
    over several lines): `PQsendQuery: 0x… 'SQL'`, `PQprepare: 0x… 'SQL' plan=… nParams=N`."""
    call = text.split(":", 1)[0]
    if call in ("PQsendQuery", "PQexec", "PQexecParams"):
        return text.rstrip().endswith("'")
    if call == "PQprepare":
        return re.search(r"' plan=\S* nParams=\d+$", text) is not None
    return True


def driver_errors(trace, since=0):
    """(statement, SQLSTATE, message) of every statement psqlODBC sent that failed,
    read from its CommLog: a statement line, then `\t(ERROR) STATE 'message'`."""
    out, statement, pending, error_open = [], None, None, False
    for line in trace.text(since).splitlines():
        if pending is not None:
            pending += " " + line
            if statement_complete(pending):
                statement, pending = pending, None
        elif error_open:
            out[-1][2] += " " + line.strip()
            error_open = not line.rstrip().endswith("'")
        elif line.startswith(TRACE_CALLS):
            if statement_complete(line):
                statement = line
            else:
                pending = line
        elif line.startswith("\t(ERROR) "):
            state, _, message = line[len("\t(ERROR) "):].partition(" ")
            out.append([statement, state, message])
            error_open = not message.rstrip().endswith("'")
    errors = []
    for statement, state, message in out:
        call, _, rest = (statement or "?: ?").partition(":")
        rest = rest.strip()
        rest = rest.split(" ", 1)[1] if rest.startswith("0x") and " " in rest else rest  # the PGconn pointer
        errors.append((call + " " + " ".join(rest.split()), state, " ".join(message.strip().strip("'").split())))
    return errors


def shown(errors, deallocate=False):
    """Errors for a FAIL line; the refused DEALLOCATEs of earlier plans left out unless
    asked for (they have their own check)."""
    errors = [e for e in errors if deallocate or "DEALLOCATE" not in e[0]]
    return "; ".join(f"[{s}] {m[:300]} <- {q[:400]}" for q, s, m in errors) or "none"


def townstat_rows(query):
    out = subprocess.run([BIN, "--warehouse", WAREHOUSE, "sql", query, "--format", "csv"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return list(csv.reader(io.StringIO(out.stdout)))


def townstat_csv(query):
    return townstat_rows(query)[1:]


def users_file(tmp):
    path = os.path.join(tmp, "users")
    with open(path, "w") as f:
        f.write(f"# townstat serve users\n{USER}:{PASSWORD}\n")
    os.chmod(path, 0o600)
    return path


def odbc_setup(tmp):
    """A private unixODBC configuration (ODBCSYSINI) with the driver Debian registered
    as "PostgreSQL Unicode", plus psqlODBC's log folder; None when it is not installed."""
    try:
        out = subprocess.run(["odbcinst", "-q", "-d", "-n", DRIVER], capture_output=True, text=True)
    except FileNotFoundError:
        return None
    entries = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    driver = entries.get("Driver", "").strip()
    if out.returncode != 0 or not driver:
        return None
    conf, trace_dir = os.path.join(tmp, "odbc"), os.path.join(tmp, "odbc-trace")
    os.makedirs(conf)
    os.makedirs(trace_dir)
    with open(os.path.join(conf, "odbcinst.ini"), "w") as f:
        f.write(f"[{DRIVER}]\nDriver={driver}\nLogdir={trace_dir}\n")
    open(os.path.join(conf, "odbc.ini"), "w").close()
    os.environ.update(ODBCSYSINI=conf, ODBCINI=os.path.join(conf, "odbc.ini"))
    return trace_dir


def connect(server, autocommit=True, **options):
    parts = dict(Driver="{" + DRIVER + "}", Server="127.0.0.1", Port=server.port,
                 Database="townstat", Uid=USER, Pwd="{" + PASSWORD + "}", CommLog=1,
                 UseServerSidePrepare=1)
    parts.update(options)
    return pyodbc.connect(";".join(f"{k}={v}" for k, v in parts.items()),
                          autocommit=autocommit, timeout=10)


def attempt(fn):
    """fn()'s value and None, or None and the error's text."""
    try:
        return fn(), None
    except pyodbc.Error as e:
        return None, " ".join(" ".join(str(a) for a in e.args).split())


def labels():
    """Column and table labels of town_year and enterprise, from the schema files."""
    with open(os.path.join(REPO, "schemas", "marts.toml"), "rb") as f:
        marts = tomllib.load(f)
    with open(os.path.join(REPO, "schemas", "enterprise.toml"), "rb") as f:
        enterprise = tomllib.load(f)
    return ({"town_year": marts["columns"],
             "enterprise": {c["name"]: c["label"] for c in enterprise["columns"]}},
            {"town_year": marts["tables"]["town_year"]["label"], "enterprise": enterprise["label"]})


def catalog_checks(server, trace, log):
    conn = connect(server)
    cur = conn.cursor()
    note(f"psqlODBC {conn.getinfo(pyodbc.SQL_DRIVER_VER)}, pyodbc {pyodbc.version}, "
         f"unixODBC {conn.getinfo(pyodbc.SQL_DM_VER)}, server says "
         f"{conn.getinfo(pyodbc.SQL_DBMS_NAME)} {conn.getinfo(pyodbc.SQL_DBMS_VER)}")
    check("connects DSN-less (SCRAM) and answers", cur.execute("SELECT 1").fetchone()[0] == 1)

    def call(name, fn, ok, shown_value=lambda v: v):
        mark = trace.mark()
        value, error = attempt(fn)
        check(name, error is None and ok(value),
              f"{error}; the driver sent: {shown(driver_errors(trace, mark))}" if error
              else str(shown_value(value))[:600])
        return value

    # SQLTables: the tables, and the lists ODBC tools fill their pickers with.
    call("SQLTables lists the warehouse tables", lambda: cur.tables().fetchall(),
                lambda v: {"town_year", "county_year", "city_year", "enterprise"}
                <= {r.table_name for r in v if r.table_type == "TABLE"},
                lambda v: sorted((r.table_name, r.table_type) for r in v))
    call("SQLTables: schema list (schema='%')",
         lambda: cur.tables(catalog="", schema="%", table="").fetchall(),
         lambda v: "public" in {r.table_schem for r in v})
    call("SQLTables: catalog list (catalog='%')",
         lambda: cur.tables(catalog="%", schema="", table="").fetchall(), lambda v: len(v) >= 1)
    call("SQLTables: table type list (tableType='%')",
         lambda: cur.tables(catalog="", schema="", table="", tableType="%").fetchall(),
         lambda v: {"TABLE", "VIEW"} <= {r.table_type for r in v})

    # SQLColumns: names in order, types, nullability, the labels.
    expected = townstat_rows("SELECT * FROM town_year LIMIT 1")[0]
    cols = call("SQLColumns(town_year): the columns in order", lambda: cur.columns(table="town_year").fetchall(),
                lambda v: [r.column_name for r in v] == expected,
                lambda v: ([r.column_name for r in v], expected)) or []
    by = {r.column_name: r for r in cols}
    town_id, year, revenue = by.get("town_id"), by.get("year"), by.get("revenue")
    check("SQLColumns(town_year): types and nullability",
          town_id and town_id.type_name == "text" and town_id.nullable == 0 and year.type_name == "int8"
          and revenue.type_name == "numeric" and revenue.data_type == SQL_NUMERIC,
          [tuple(r)[3:11] for r in (town_id, year, revenue) if r])
    # Money is Decimal(20, 2) (docs: the contract); PostgreSQL would say numeric(20,2).
    check("SQLColumns(town_year): revenue is NUMERIC(20, 2)",
          revenue and (revenue.column_size, revenue.decimal_digits) == (20, 2),
          revenue and f"COLUMN_SIZE {revenue.column_size}, DECIMAL_DIGITS {revenue.decimal_digits} "
          f"(pg_attribute.atttypmod {revenue[24]})")
    call("SQLColumns(enterprise): date and numeric columns", lambda: cur.columns(table="enterprise").fetchall(),
         lambda v: {r.column_name: r.data_type for r in v}.get("established_on") == SQL_TYPE_DATE
         and {r.column_name: r.data_type for r in v}.get("registered_capital") == SQL_NUMERIC,
         lambda v: [(r.column_name, r.data_type) for r in v])

    column_labels, table_labels = labels()
    want = {c: column_labels["town_year"].get(c) for c in expected}
    got = {c: r.remarks for c, r in by.items()}
    if any(got.values()) or not got:
        check("SQLColumns(town_year): REMARKS are the labels", got == want,
              {c: (got.get(c), want[c]) for c in want if got.get(c) != want[c]})
    else:
        # psqlODBC (13.02 to 18.x) writes '' into REMARKS itself and never asks the
        # server (info.c, PGAPI_Columns and PGAPI_Tables): the server cannot change it.
        note("SQLColumns REMARKS are all empty: psqlODBC never fills them (driver limitation); "
             "the labels are checked through col_description below")
    for table in ("town_year", "enterprise"):
        rows, error = attempt(lambda: cur.execute(
            "SELECT a.attname, col_description(c.oid, a.attnum) FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
            "WHERE n.nspname = 'public' AND c.relname = ? AND a.attnum > 0 ORDER BY a.attnum", table).fetchall())
        want = column_labels[table]  # lineage columns (run_id, source_file, …) have theirs in code
        check(f"labels through ODBC: col_description for {table} = schemas/*.toml",
              error is None and rows and all(label and label == want.get(name, label) for name, label in rows),
              error or [(n, l, want.get(n)) for n, l in rows if not l or l != want.get(n, l)][:5])
        label, error = attempt(lambda: cur.execute(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relname = ?", table).fetchone()[0])
        check(f"labels through ODBC: obj_description for {table}", label == table_labels[table],
              error or (label, table_labels[table]))

    # Keys and indexes: the warehouse declares none to the catalog; an empty answer
    # (or the real key) is right, an error is not (Access, Excel and Power BI ask).
    call("SQLPrimaryKeys(town_year): empty result, not an error",
         lambda: cur.primaryKeys("town_year").fetchall(),
         lambda v: [r.column_name for r in v] in ([], ["town_id", "year"]))
    call("SQLForeignKeys(town_year): empty result, not an error",
         lambda: cur.foreignKeys(table="town_year").fetchall(), lambda v: v == [])
    call("SQLStatistics and SQLSpecialColumns(town_year) answer",
         lambda: (cur.statistics("town_year").fetchall(), cur.rowIdColumns("town_year").fetchall()),
         lambda v: True)
    call("SQLGetTypeInfo lists numeric and date", lambda: cur.getTypeInfo().fetchall(),
         lambda v: {"numeric", "date"} <= {r.type_name for r in v}, lambda v: [r.type_name for r in v])

    # psqlODBC 17.00.0007 and later (the Windows installers of 2025–2026) qualify every
    # operator of their catalog queries; this is their SQLColumns, sent verbatim.
    newer = ("select n.nspname, c.relname, a.attname, a.atttypid, t.typname, a.attnum, a.attlen, "
             "a.atttypmod, a.attnotnull, c.relhasrules, c.relkind, c.oid, pg_get_expr(d.adbin, d.adrelid), "
             "case t.typtype when 'd' then t.typbasetype else 0 end, t.typtypmod, 0, attidentity, "
             "c.relhassubclass from (((pg_catalog.pg_class c inner join pg_catalog.pg_namespace n on "
             "n.oid = c.relnamespace and c.relname like 'town_year' and n.nspname like 'public') inner join "
             "pg_catalog.pg_attribute a on (not a.attisdropped) and a.attnum operator(pg_catalog.>) 0 and "
             "a.attrelid operator(pg_catalog.=) c.oid) inner join pg_catalog.pg_type t on t.oid "
             "operator(pg_catalog.=) a.atttypid) left outer join pg_attrdef d on a.atthasdef and d.adrelid "
             "operator(pg_catalog.=) a.attrelid and d.adnum operator(pg_catalog.=) a.attnum "
             "order by n.nspname, c.relname, attnum")
    rows, error = attempt(lambda: cur.execute(newer).fetchall())
    check("SQLColumns of psqlODBC 17.00.0007+ (operator(pg_catalog.=)) runs",
          error is None and [r[2] for r in rows] == expected, error or len(rows))
    conn.close()


def query_checks(server, trace, log):
    # A parameterised query, server-side prepared (PQprepare/PQexecPrepared), several
    # executions on one statement, against townstat sql's answer.
    query = ("SELECT town_id, year, revenue, profit, entities_end, hhi FROM town_year "
             "WHERE town_id = ? AND year = ?")
    keys = [tuple(r) for r in townstat_csv("SELECT town_id, year FROM town_year WHERE hhi IS NOT NULL "
                                           "ORDER BY town_id, year LIMIT 3")]

    def expected(town, year):
        return townstat_csv(query.replace("?", f"'{town}'", 1).replace("?", year, 1))

    def as_text(rows):
        return [[str(v) if v is not None else "" for v in r] for r in rows]

    for prepare in (1, 0):
        how = "server-side prepared" if prepare else "driver-side literals (UseServerSidePrepare=0)"
        conn = connect(server, UseServerSidePrepare=prepare)
        cur = conn.cursor()
        for town, year in keys + keys:
            got, error = attempt(lambda: cur.execute(query, town, int(year)).fetchall())
            want = expected(town, year)
            if error or as_text(got) != want:
                break
        check(f"parameterised query, {how}: townstat sql's values", error is None and as_text(got) == want
              and want, error or (as_text(got), want))
        conn.close()

    conn = connect(server)
    cur = conn.cursor()
    # numeric -> decimal.Decimal, date -> datetime.date, with townstat sql's values.
    q = ("SELECT uscc, established_on, deregistered_on, registered_capital FROM enterprise "
         "WHERE uscc IN (SELECT uscc FROM enterprise ORDER BY uscc LIMIT 6) "
         "OR uscc IN (SELECT uscc FROM enterprise WHERE deregistered_on IS NOT NULL ORDER BY uscc LIMIT 3) "
         "ORDER BY uscc")
    rows, want = cur.execute(q).fetchall(), townstat_csv(q)
    decimals = [r.registered_capital for r in rows if r.registered_capital is not None]
    check("numeric columns come back as decimal.Decimal",
          decimals and all(type(v) is decimal.Decimal for v in decimals), [type(r[3]) for r in rows])
    dates = [r.established_on for r in rows] + [r.deregistered_on for r in rows if r.deregistered_on]
    check("date columns come back as datetime.date",
          any(r.deregistered_on for r in rows) and all(type(v) is datetime.date for v in dates),
          [(type(r[1]), type(r[2])) for r in rows])
    got = [[r.uscc, r.established_on.isoformat(), r.deregistered_on.isoformat() if r.deregistered_on else "",
            str(r.registered_capital) if r.registered_capital is not None else ""] for r in rows]
    check("decimal and date values equal townstat sql's", got == want and want, (got[:3], want[:3]))
    q = "SELECT deal_id, occurred_on, amount FROM financing ORDER BY deal_id LIMIT 20"
    got = [[a, b.isoformat(), str(c)] for a, b, c in cur.execute(q).fetchall()]
    check("financing amounts and dates equal townstat sql's", got == townstat_csv(q) and got, got[:2])
    n, error = attempt(lambda: cur.execute(
        "SELECT count(*) FROM enterprise WHERE established_on < ? AND registered_capital > ?",
        datetime.date(2010, 1, 1), decimal.Decimal("1000000.50")).fetchone()[0])
    want = townstat_csv("SELECT count(*) FROM enterprise WHERE established_on < DATE '2010-01-01' "
                        "AND registered_capital > 1000000.50")[0][0]
    check("date and decimal parameters", error is None and str(n) == want, error or (n, want))
    conn.close()

    # Declare/Fetch (UseDeclareFetch=1), what tools switch on for big tables: the rows
    # come in batches of Fetch through DECLARE … CURSOR / FETCH n / CLOSE.
    conn = connect(server, autocommit=False, UseDeclareFetch=1, Fetch=7)
    cur = conn.cursor()
    q = "SELECT town_id, year, entities_end FROM town_year WHERE year = 2020 ORDER BY town_id"
    mark = trace.mark()
    got, error = attempt(lambda: as_text(cur.execute(q).fetchall()))
    want = townstat_csv(q)
    # psqlODBC keeps the result whose command tag starts with "FETCH" (PostgreSQL's tag
    # for FETCH is "FETCH n"); what the server tagged it with, for the FAIL line:
    tags = re.findall(r"(?is)fetch \d+ in \"[^\"]*\"'.*?ok: - 'T' - ([^\n]*)", trace.text(mark))
    check("UseDeclareFetch=1, Fetch=7: every row, in batches", error is None and got == want and len(want) > 7,
          f"{error}; the driver sent: {shown(driver_errors(trace, mark))}; FETCH answered with command "
          f"tag(s) {tags} (PostgreSQL: 'FETCH n')" if error else (len(got), len(want)))
    conn.rollback()
    conn.close()


def lifecycle_checks(server, trace, log):
    """psqlODBC's prepared statements end with DEALLOCATE "_PLAN0x…" (statement
    re-prepared with other SQL, SQLFreeStmt, disconnect); inside a transaction it is
    wrapped in SAVEPOINT _per_query_svp_ … RELEASE. The driver does not report a failed
    DEALLOCATE, so the logs tell."""
    query = "SELECT count(*) FROM town_year WHERE year = ?"
    want = {y: int(townstat_csv(f"SELECT count(*) FROM town_year WHERE year = {y}")[0][0]) for y in (2020, 2021)}

    mark_log, mark_trace = log.mark(), trace.mark()
    conn = connect(server)
    cur = conn.cursor()
    for year in (2020, 2021, 2020):
        cur.execute(query, year).fetchall()
    cur.execute("SELECT count(*) FROM town WHERE town_id <> ?", "x").fetchall()  # re-prepare: DEALLOCATE
    cur.close()  # SQLFreeStmt(SQL_DROP): DEALLOCATE
    cur = conn.cursor()
    cur.execute(query, 2021).fetchall()
    conn.close()  # disconnect: DEALLOCATE
    sent = [e for e in driver_errors(trace, mark_trace) if "DEALLOCATE" in e[0]]
    refused = [w for w in server_warnings(log, mark_log) if "DEALLOCATE" in w]
    check("DEALLOCATE of the driver's plans accepted (autocommit)", not sent and not refused,
          f"{len(sent)} failed: {shown(sent[:1], deallocate=True)}; server: {refused[:1]}")

    # pyodbc's default: manual commit. A refused DEALLOCATE aborts the transaction.
    mark = trace.mark()
    conn = connect(server, autocommit=False)
    cur = conn.cursor()
    steps = []
    for label, fn in [("prepared query", lambda: cur.execute(query, 2020).fetchone()[0] == want[2020]),
                      ("other SQL on the same cursor", lambda: cur.execute(
                          "SELECT count(*) FROM town_year WHERE year = ? AND 1 = 1", 2021).fetchone()[0] == want[2021]),
                      ("new cursor after SQLFreeStmt", lambda: (cur.close(), conn.cursor().execute(
                          query, 2021).fetchone()[0] == want[2021])[1]),
                      ("commit", lambda: conn.commit() is None)]:
        ok, error = attempt(fn)
        steps.append(f"{label}: {'ok' if ok else error or 'wrong answer'}")
    conn.close()
    check("manual-commit transaction: re-prepare and SQLFreeStmt keep it usable",
          all(s.endswith(": ok") for s in steps),
          " | ".join(steps) + f"; the driver sent: {shown(driver_errors(trace, mark)[:3], deallocate=True)}")

    # An error inside a transaction: the next statement is refused with 25P02
    # (in_failed_sql_transaction), as PostgreSQL says, until ROLLBACK.
    conn = connect(server, autocommit=False, UseServerSidePrepare=0, Protocol="7.4-0")
    cur = conn.cursor()
    cur.execute("SELECT 1").fetchall()
    attempt(lambda: cur.execute("SELECT * FROM no_such_table").fetchall())
    _, error = attempt(lambda: cur.execute("SELECT 2").fetchall())
    check("after an error in a transaction the next statement gets SQLSTATE 25P02",
          error is not None and error.startswith("25P02"), error)
    conn.rollback()
    check("usable again after ROLLBACK", cur.execute("SELECT 3").fetchone()[0] == 3)
    conn.close()

    # DISCARD ALL: what pools and psqlODBC-based tools send to reset a session.
    conn = connect(server)
    cur = conn.cursor()
    cur.execute(query, 2020).fetchall()
    mark = trace.mark()
    _, error = attempt(lambda: conn.cursor().execute("DISCARD ALL"))
    check("DISCARD ALL", error is None, f"{error}; the driver sent: {shown(driver_errors(trace, mark))}")
    n, error = attempt(lambda: conn.cursor().execute(query, 2021).fetchone()[0])
    check("a new prepared statement after DISCARD ALL", n == want[2021], error or n)
    conn.close()


def search_path_checks(server, trace, log):
    conn = connect(server)
    cur = conn.cursor()
    for statement in ['SET search_path = "public"', "SET search_path = public", "SET search_path TO public",
                      "SET search_path = 'public'", 'SET search_path = "$user", public']:
        mark = log.mark()
        _, error = attempt(lambda: cur.execute(statement))
        warned = [w for w in server_warnings(log, mark) if "search_path" in w]
        check(f"{statement}: no error, no server warning", error is None and not warned, error or warned)
    # The setting is kept, whatever way its value is written.
    cur.execute('SET search_path = "pg_catalog"')
    shown_value = cur.execute("SHOW search_path").fetchone()[0]
    check('SET search_path = "pg_catalog" takes effect (SHOW search_path)', shown_value == "pg_catalog",
          shown_value)
    cur.execute("SET search_path = 'public'")
    check("SHOW search_path after SET search_path = 'public'",
          cur.execute("SHOW search_path").fetchone()[0] == "public")
    conn.close()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        trace_dir = odbc_setup(tmp)
        check(f'unixODBC knows the "{DRIVER}" driver (odbc-postgresql)', trace_dir is not None,
              "install unixodbc and odbc-postgresql")
        if trace_dir is None:
            print(f"odbc_check: {results['passed']} passed, {results['failed']} failed")
            sys.exit(1)
        pyodbc.pooling = False  # each close really disconnects (and deallocates)
        server = Server(tmp, "--users-file", users_file(tmp))
        log = Log(server.log)
        trace = Log(None)
        try:
            # psqlODBC names its CommLog psqlodbc_<program>_<user><pid>.log.
            connect(server).close()
            found = glob.glob(os.path.join(trace_dir, f"psqlodbc_*{os.getpid()}.log"))
            trace.path = found[0] if found else None
            if not found:
                note(f"no psqlODBC CommLog in {trace_dir}: failures will not name the statements")
            for part in (catalog_checks, query_checks, lifecycle_checks, search_path_checks):
                try:
                    part(server, trace, log)
                except Exception as e:  # a failure here is a finding, not a crash
                    check(part.__name__, False, repr(e)[:500])
        finally:
            server.stop()
        # The complete record: every statement the driver sent that failed, and every
        # warning or error the server logged, each once, in order.
        failed = list(dict.fromkeys(driver_errors(trace)))
        print(f"-- statements psqlODBC sent that failed ({len(failed)} distinct):")
        for statement, state, message in failed:
            print(f"   [{state}] {message[:300]}\n      <- {statement[:700]}")
        warnings = list(dict.fromkeys(re.sub(r"_PLAN0x[0-9a-f]+", "_PLAN0x…", w)
                                      for w in server_warnings(log)))
        print(f"-- server warnings and errors ({len(warnings)} distinct):")
        for w in warnings:
            print(f"   {w[:700]}")
    print(f"odbc_check: {results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
