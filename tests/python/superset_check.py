#!/usr/bin/env python3
"""Apache Superset against `townstat serve`, end to end, through Superset's own REST
API: a real Superset (tests/superset/requirements.txt) adds the warehouse as a
PostgreSQL database, lists its tables, makes datasets whose columns carry the Chinese
labels as descriptions, runs chart-data queries (a time-range filter and a time grain
on a DATE column) and a SQL Lab query, and the figures are compared with
`townstat sql`'s.

    usage: SUPERSET_PYTHON superset_check.py TOWNSTAT_BINARY WAREHOUSE

Run it with the Python of Superset's virtual environment (tests/superset/install.sh
makes it and prints its path): the `superset` command is taken from beside that
Python, and besides the standard library the check imports only requests (pinned in
tests/superset/requirements.txt), so the tests' own environment is not needed. Nothing
is written outside a temporary folder: Superset's SQLite metadata database, its
config (random SECRET_KEY, CSRF off, no examples), its logs, the server's users file
and log. Everything listens on 127.0.0.1 at free ports.

Superset reaches the server through a relay on 127.0.0.1 that passes every byte
unchanged and notes each statement sent (simple and extended protocol) and each
ErrorResponse the server answered; the statements the server failed are printed at
the end, with its SQLSTATE and message, and are themselves a check. On a failure the
tails of Superset's and the server's logs are printed; TOWNSTAT_KEEP_TMP=1 keeps the
temporary folder.

Last line: "superset_check: N passed, M failed"; exit status 1 when M > 0.
"""

import csv
import io
import json
import os
import secrets
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

import requests

BIN, WAREHOUSE = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUPERSET = os.path.join(os.path.dirname(sys.executable), "superset")
USER, PASSWORD = "superset", secrets.token_hex(12)
ADMIN, ADMIN_PASSWORD = "admin", secrets.token_hex(12)
results = {"passed": 0, "failed": 0}
started = time.monotonic()


def check(name, ok, detail="", limit=1500):
    results["passed" if ok else "failed"] += 1
    detail = str(detail)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail[:limit]}"), flush=True)
    return ok


def not_reached(name, why):
    check(name, False, f"not reached ({why})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def townstat_csv(query):
    out = subprocess.run([BIN, "--warehouse", WAREHOUSE, "sql", query, "--format", "csv"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return list(csv.reader(io.StringIO(out.stdout)))[1:]


def close(a, b, tol=0.005):
    try:
        return abs(float(a) - float(b)) <= tol
    except (TypeError, ValueError):
        return False


def tail(path, n=60):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return f"({path}: {e})"


# -- expected labels, from the schema files the server compiles in -----------------

def expected_labels():
    """town_year (a mart: schemas/marts.toml [columns]) and enterprise (a source table:
    schemas/enterprise.toml, plus the lineage columns of crates/domain/src/schema.rs)."""
    with open(os.path.join(REPO, "schemas/marts.toml"), "rb") as f:
        marts = tomllib.load(f)
    with open(os.path.join(REPO, "schemas/enterprise.toml"), "rb") as f:
        enterprise = tomllib.load(f)
    lineage = {"run_id": "写入该行的运行编号", "source_file": "源文件", "source_row": "源文件行号"}
    return {
        "town_year": (marts["tables"]["town_year"]["label"], marts["columns"]),
        "enterprise": (enterprise["label"],
                       {**lineage, **{c["name"]: c["label"] for c in enterprise["columns"]}}),
    }


# -- the recording relay ------------------------------------------------------------

class Relay:
    """127.0.0.1:port → the server, bytes unchanged; records statements and errors."""

    SSL, GSS, CANCEL = 80877103, 80877104, 80877102

    def __init__(self, target, log_path):
        self.target, self.log = target, open(log_path, "w")
        self.lock = threading.Lock()
        self.statements, self.errors, self.connections = 0, [], 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _note(self, event):
        with self.lock:
            self.log.write(json.dumps(event, ensure_ascii=False) + "\n")
            self.log.flush()
            if event["event"] == "error":
                self.errors.append(event)
            elif event["event"] == "statement":
                self.statements += 1

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            state = {"n": n, "pending": [], "one_byte": 0, "opaque": False}
            threading.Thread(target=self._pump, args=(client, server, state, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, state, False), daemon=True).start()

    def _pump(self, src, dst, state, frontend):
        buf, untyped = b"", frontend
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not state["opaque"]:
                    buf += data
                    buf, untyped = self._parse(buf, state, frontend, untyped)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _parse(self, buf, state, frontend, untyped):
        while True:
            if frontend and untyped:
                if len(buf) < 8:
                    return buf, untyped
                length, code = struct.unpack("!ii", buf[:8])
                if len(buf) < length:
                    return buf, untyped
                buf = buf[length:]
                if code in (self.SSL, self.GSS):
                    state["one_byte"] += 1  # answered by one byte, then the startup
                elif code == self.CANCEL:
                    self._note({"event": "cancel", "conn": state["n"]})
                else:
                    untyped = False
                continue
            if not frontend and state["one_byte"]:
                if not buf:
                    return buf, untyped
                state["one_byte"] -= 1
                if buf[:1] != b"N":  # TLS or GSS accepted: nothing readable from here on
                    state["opaque"] = True
                    return b"", untyped
                buf = buf[1:]
                continue
            if len(buf) < 5:
                return buf, untyped
            kind, length = buf[:1], struct.unpack("!i", buf[1:5])[0]
            if len(buf) < 1 + length:
                return buf, untyped
            body, buf = buf[5:1 + length], buf[1 + length:]
            if frontend:
                sql = None
                if kind == b"Q":
                    sql = body.split(b"\0")[0]
                elif kind == b"P":
                    sql = body.split(b"\0")[1]
                if sql is not None:
                    sql = sql.decode("utf-8", "replace")
                    state["pending"].append(sql)
                    self._note({"event": "statement", "conn": state["n"], "sql": sql})
            elif kind == b"E":
                fields = {}
                for part in body.split(b"\0"):
                    if part:
                        fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
                sql = state["pending"][0] if state["pending"] else None
                self._note({"event": "error", "conn": state["n"], "sql": sql,
                            "sqlstate": fields.get("C"), "message": fields.get("M"),
                            "severity": fields.get("S")})
            elif kind == b"Z":
                state["pending"].clear()

    def stop(self):
        self.sock.close()


# -- processes ------------------------------------------------------------------------

class Townstat:
    def __init__(self, tmp):
        users = os.path.join(tmp, "users")
        with open(users, "w") as f:
            f.write(f"# throwaway users of superset_check\n{USER}:{PASSWORD}\n")
        os.chmod(users, 0o600)
        self.log_path = os.path.join(tmp, "townstat-serve.log")
        env = dict(os.environ, TOWNSTAT_WAREHOUSE=WAREHOUSE, RUST_LOG="info")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--users-file", users],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=open(self.log_path, "w"), text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        line = self.proc.stdout.readline() if ready else ""
        if "listening on 127.0.0.1:" not in line:
            self.stop()
            raise RuntimeError(f"townstat serve did not start: {line!r}\n{tail(self.log_path)}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Superset:
    def __init__(self, tmp):
        self.tmp = tmp
        self.log_path = os.path.join(tmp, "superset.log")
        config = os.path.join(tmp, "superset_config.py")
        with open(config, "w") as f:
            f.write(f"""\
SECRET_KEY = {secrets.token_urlsafe(42)!r}
SQLALCHEMY_DATABASE_URI = {"sqlite:///" + os.path.join(tmp, "superset.db")!r}
DATA_DIR = {tmp!r}
WTF_CSRF_ENABLED = False
TALISMAN_ENABLED = False
RATELIMIT_STORAGE_URI = "memory://"
SQLLAB_ASYNC_TIME_LIMIT_SEC = 120
SQLLAB_TIMEOUT = 120
SUPERSET_WEBSERVER_TIMEOUT = 120
""")
        self.env = dict(os.environ, SUPERSET_CONFIG_PATH=config, SUPERSET_HOME=tmp,
                        FLASK_APP="superset", PYTHONUNBUFFERED="1")
        self.proc = None

    def cli(self, *args, timeout=600):
        with open(self.log_path, "a") as log:
            log.write(f"\n==== superset {' '.join(args)}\n")
            log.flush()
            done = subprocess.run([SUPERSET, *args], env=self.env, cwd=self.tmp, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        return done.returncode == 0

    def start(self):
        self.port = free_port()
        log = open(self.log_path, "a")
        log.write("\n==== superset run\n")
        log.flush()
        self.proc = subprocess.Popen(
            [SUPERSET, "run", "-h", "127.0.0.1", "-p", str(self.port), "--with-threads"],
            env=self.env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(self.url + "/health", timeout=5).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(1)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# -- the API --------------------------------------------------------------------------

def one_line(sql):
    """A statement on one line; its line breaks shown as ⏎ when a -- comment needs them."""
    lines = [" ".join(line.split()) for line in (sql or "").splitlines()]
    return (" ⏎ " if "--" in (sql or "") else " ").join(line for line in lines if line)


class Api:
    """Superset's REST API; `errors` are the server's errors during the last call."""

    def __init__(self, url, relay):
        self.url, self.relay, self.s, self.errors = url, relay, requests.Session(), []

    def call(self, method, path, **kw):
        mark = len(self.relay.errors)
        r = self.s.request(method, self.url + path, timeout=300, **kw)
        self.errors = self.relay.errors[mark:]
        try:
            body = r.json()
        except ValueError:
            body = {"text": "(an HTML error page: see the Superset log)" if "<html" in r.text[:200]
                    else r.text[:1000]}
        return r.status_code, body

    def detail(self, *what):
        """What failed: the answer, and the server's errors behind it."""
        errors = "".join(f"\n    server [{e['sqlstate']}] {e['message']} <- {one_line(e['sql'])[:300]}"
                         for e in self.errors)
        return " ".join(str(w) for w in what) + errors


def chart_data(api, dataset_id, query):
    payload = {"datasource": {"id": dataset_id, "type": "table"}, "force": True,
               "queries": [dict({"row_limit": 10000, "filters": [], "extras": {}}, **query)],
               "result_format": "json", "result_type": "full"}
    code, body = api.call("POST", "/api/v1/chart/data", json=payload)
    if code == 200 and body.get("result"):
        return body["result"][0], None
    return None, api.detail(code, body)


def year_of(v):
    """A time-grain value as Superset returns it (epoch ms, or ISO text) → year."""
    if isinstance(v, (int, float)):
        return time.gmtime(v / 1000).tm_year
    return int(str(v)[:4])


def run_checks(api, relay, server):
    labels = expected_labels()
    code, body = api.call("POST", "/api/v1/security/login", json={
        "username": ADMIN, "password": ADMIN_PASSWORD, "provider": "db", "refresh": True})
    if not check("login (/api/v1/security/login)", code == 200 and "access_token" in body, api.detail(code, body)):
        return
    api.s.headers["Authorization"] = f"Bearer {body['access_token']}"

    uri = f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1:{relay.port}/townstat"
    code, body = api.call("POST", "/api/v1/database/test_connection/",
                          json={"sqlalchemy_uri": uri, "database_name": "townstat"})
    check("test connection (/api/v1/database/test_connection/)", code == 200, api.detail(code, body))
    code, body = api.call("POST", "/api/v1/database/", json={
        "database_name": "townstat", "sqlalchemy_uri": uri, "expose_in_sqllab": True,
        "allow_run_async": False, "allow_dml": False})
    if not check("database added (POST /api/v1/database/)", code == 201 and "id" in body, api.detail(code, body)):
        for name in ["schemas", "tables", "table metadata", "datasets", "chart data", "SQL Lab"]:
            not_reached(name, "the database was not added")
        return
    db = body["id"]

    code, body = api.call("GET", f"/api/v1/database/{db}/schemas/")
    check("schemas listed: public", code == 200 and "public" in body.get("result", []), api.detail(code, body))
    code, body = api.call("GET", f"/api/v1/database/{db}/tables/", params={"q": "(schema_name:public)"})
    names = {t.get("value") for t in body.get("result", [])} if code == 200 else set()
    check("tables listed: town_year, county_year, city_year, enterprise",
          {"town_year", "county_year", "city_year", "enterprise"} <= names, api.detail(code, sorted(names) or body))

    # SQL Lab's table panel: columns with their comments, keys, indexes, the table comment.
    code, body = api.call("GET", f"/api/v1/database/{db}/table_metadata/",
                          params={"name": "town_year", "schema": "public"})
    table_label, column_labels = labels["town_year"]
    if check("table metadata of town_year (/table_metadata/)", code == 200 and body.get("columns"),
             api.detail(code, body)):
        comments = {c["name"]: c.get("comment") for c in body["columns"]}
        check("table metadata: column comments are the labels",
              comments.get("revenue") == column_labels["revenue"]
              and comments.get("town_id") == column_labels["town_id"],
              {k: comments.get(k) for k in ("revenue", "town_id")})
        check("table metadata: table comment is the label", body.get("comment") == table_label,
              body.get("comment"))

    # Datasets: Superset reflects the columns, with the comments as descriptions.
    datasets = {}
    for table in ["town_year", "enterprise"]:
        code, body = api.call("POST", "/api/v1/dataset/",
                              json={"database": db, "schema": "public", "table_name": table})
        if check(f"dataset {table} created (POST /api/v1/dataset/)", code == 201 and "id" in body,
                 api.detail(code, body)):
            datasets[table] = body["id"]

    columns = {}
    for table, dataset_id in datasets.items():
        code, body = api.call("GET", f"/api/v1/dataset/{dataset_id}")
        cols = {c["column_name"]: c for c in body.get("result", {}).get("columns", [])} if code == 200 else {}
        columns[table] = cols
        table_label, column_labels = labels[table]
        check(f"dataset {table}: columns reflected", cols and set(column_labels) & set(cols)
              and all(c in cols for c in (["town_id", "year", "revenue"] if table == "town_year"
                                          else ["uscc", "established_on"])),
              api.detail(code, sorted(cols) or body))
        if not cols:
            continue
        wrong = {c: (cols[c].get("description"), column_labels.get(c)) for c in cols
                 if cols[c].get("description") != column_labels.get(c)}
        check(f"dataset {table}: every column's description is its Chinese label", not wrong,
              f"{len(wrong)} of {len(cols)} differ (got, expected): {wrong}")

    if "town_year" in columns and columns["town_year"]:
        cols = columns["town_year"]
        check("dataset town_year: types (town_id text, year integer, revenue numeric)",
              any(t in str(cols.get("town_id", {}).get("type")).upper() for t in ("VARCHAR", "TEXT"))
              and "INT" in str(cols.get("year", {}).get("type")).upper()
              and any(t in str(cols.get("revenue", {}).get("type")).upper() for t in ("NUMERIC", "DECIMAL")),
              {c: cols.get(c, {}).get("type") for c in ("town_id", "year", "revenue")})
    if "enterprise" in columns and columns["enterprise"]:
        col = columns["enterprise"].get("established_on", {})
        check("dataset enterprise: established_on is a temporal DATE column",
              col.get("is_dttm") is True and "DATE" in str(col.get("type")).upper(), col)

    # Chart data: the figures Superset shows, against townstat sql's.
    if "town_year" in datasets:
        expected = {int(y): (float(r), int(n)) for y, r, n in townstat_csv(
            "SELECT year, CAST(sum(revenue) AS VARCHAR), count(*) FROM town_year GROUP BY year")}
        result, error = chart_data(api, datasets["town_year"], {
            "columns": ["year"], "orderby": [["year", True]],
            "metrics": [{"expressionType": "SQL", "sqlExpression": "SUM(revenue)", "label": "revenue"},
                        {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}]})
        got = {int(r["year"]): (r["revenue"], r["n"]) for r in result["data"]} if result else {}
        check("chart data: town_year sum(revenue), count(*) by year = townstat sql",
              got and got.keys() == expected.keys()
              and all(close(got[y][0], expected[y][0]) and got[y][1] == expected[y][1] for y in expected),
              error or {"got": dict(list(got.items())[:3]), "expected": dict(list(expected.items())[:3]),
                        "query": (result or {}).get("query")})
    else:
        not_reached("chart data: town_year sum(revenue), count(*) by year = townstat sql", "no town_year dataset")

    # A virtual dataset (SQL Lab's "save as dataset"): Superset takes its columns from
    # the query's result description, not from the catalog.
    code, body = api.call("POST", "/api/v1/dataset/", json={
        "database": db, "schema": "public", "table_name": "enterprise_sql",
        "sql": "SELECT uscc, established_on, registered_capital FROM enterprise"})
    if check("virtual dataset over enterprise created (POST /api/v1/dataset/ with sql)",
             code == 201 and "id" in body, api.detail(code, body)):
        datasets["enterprise_sql"] = body["id"]
        code, body = api.call("GET", f"/api/v1/dataset/{body['id']}")
        col = {c["column_name"]: c for c in body.get("result", {}).get("columns", [])}.get("established_on", {})
        check("virtual dataset: established_on is a temporal DATE column",
              col.get("is_dttm") is True and "DATE" in str(col.get("type")).upper(), api.detail(code, col))

    window = "WHERE established_on >= DATE '2010-01-01' AND established_on < DATE '2020-01-01'"
    total = int(townstat_csv(f"SELECT count(*) FROM enterprise {window}")[0][0])
    per_year = {int(y): int(n) for y, n in townstat_csv(
        f"SELECT CAST(EXTRACT(YEAR FROM established_on) AS INT), count(*) FROM enterprise {window} "
        "GROUP BY 1")}
    count = {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}
    time_range = {"col": "established_on", "op": "TEMPORAL_RANGE", "val": "2010-01-01 : 2020-01-01"}
    for dataset in ["enterprise", "enterprise_sql"]:
        if dataset not in datasets:
            not_reached(f"chart data on {dataset}: time-range filter on established_on (2010 to 2020)",
                        f"no {dataset} dataset")
            not_reached(f"chart data on {dataset}: yearly time grain within the time range",
                        f"no {dataset} dataset")
            continue
        result, error = chart_data(api, datasets[dataset], {
            "columns": [], "metrics": [count], "filters": [time_range]})
        got = result["data"][0]["n"] if result and result.get("data") else None
        check(f"chart data on {dataset}: time-range filter on established_on (2010 to 2020)",
              got == total and total > 0, error or {"got": got, "expected": total,
                                                    "query": (result or {}).get("query")})
        result, error = chart_data(api, datasets[dataset], {
            "columns": [{"timeGrain": "P1Y", "columnType": "BASE_AXIS", "sqlExpression": "established_on",
                         "label": "established_on", "expressionType": "SQL"}],
            "metrics": [count], "orderby": [[count, False]], "filters": [time_range]})
        got = {year_of(r["established_on"]): r["n"] for r in result["data"]} if result else {}
        check(f"chart data on {dataset}: yearly time grain within the time range",
              got == per_year and per_year, error or {"got": got, "expected": per_year,
                                                      "query": (result or {}).get("query")})

    # A TIMESTAMP WITH TIME ZONE column (run.finished_at): Superset filters it with
    # TO_TIMESTAMP(…, 'YYYY-MM-DD HH24:MI:SS.US').
    code, body = api.call("POST", "/api/v1/dataset/", json={
        "database": db, "schema": "public", "table_name": "run_sql",
        "sql": "SELECT run_id, finished_at FROM run"})
    if check("virtual dataset over run created", code == 201 and "id" in body, api.detail(code, body)):
        total = int(townstat_csv("SELECT count(*) FROM run WHERE finished_at >= TIMESTAMP '2000-01-01' "
                                 "AND finished_at < TIMESTAMP '2100-01-01'")[0][0])
        result, error = chart_data(api, body["id"], {
            "columns": [], "metrics": [count],
            "filters": [{"col": "finished_at", "op": "TEMPORAL_RANGE", "val": "2000-01-01 : 2100-01-01"}]})
        got = result["data"][0]["n"] if result and result.get("data") else None
        check("chart data on run_sql: time-range filter on finished_at (a timestamp)",
              got == total and total > 0, error or {"got": got, "expected": total,
                                                    "query": (result or {}).get("query")})
    else:
        not_reached("chart data on run_sql: time-range filter on finished_at (a timestamp)", "no run_sql dataset")

    # SQL Lab, with Chinese text in the answer.
    sql = ("SELECT scale_tier, count(*) AS n, sum(revenue) AS revenue FROM town_year "
           "GROUP BY scale_tier ORDER BY scale_tier")
    expected = [(t, int(n), float(r)) for t, n, r in townstat_csv(sql.replace(
        "sum(revenue) AS revenue", "CAST(sum(revenue) AS VARCHAR) AS revenue"))]
    code, body = api.call("POST", "/api/v1/sqllab/execute/", json={
        "database_id": db, "sql": sql, "schema": "public", "runAsync": False,
        "client_id": secrets.token_hex(5), "queryLimit": 1000})
    rows = body.get("data") if code == 200 else None
    got = [(r["scale_tier"], int(r["n"]), r["revenue"]) for r in rows] if rows else []
    check("SQL Lab (/api/v1/sqllab/execute/): rows = townstat sql",
          got and len(got) == len(expected) and all(
              g[0] == e[0] and g[1] == e[1] and close(g[2], e[2]) for g, e in zip(got, expected)),
          api.detail(code, {"got": got[:4], "expected": expected[:4]} if rows else body))


def main():
    tmp = tempfile.mkdtemp(prefix="superset-check-")
    server = relay = superset = None
    try:
        server = Townstat(tmp)
        relay = Relay(server.port, os.path.join(tmp, "wire.jsonl"))
        superset = Superset(tmp)
        for step in (["db", "upgrade"],
                     ["fab", "create-admin", "--username", ADMIN, "--firstname", "Super",
                      "--lastname", "Set", "--email", "admin@example.invalid", "--password", ADMIN_PASSWORD],
                     ["init"]):
            if not check(f"superset {' '.join(step[:2])}", superset.cli(*step), tail(superset.log_path)):
                return
        if not check("Superset web server starts (/health)", superset.start(), tail(superset.log_path)):
            return
        print(f"  (Superset ready after {time.monotonic() - started:.0f} s)", flush=True)
        run_checks(Api(superset.url, relay), relay, server)

        # Every statement the server answered with an error is a gap a Superset user meets.
        distinct = {}
        for e in relay.errors:
            distinct.setdefault((e["sql"], e["sqlstate"], e["message"]), 0)
            distinct[(e["sql"], e["sqlstate"], e["message"])] += 1
        listing = "\n".join(f"  [{state}] {msg}\n    ({n}x) {one_line(sql)}"
                            for (sql, state, msg), n in distinct.items())
        check(f"the server answered all {relay.statements} statements Superset sent without an error",
              not relay.errors, f"{len(relay.errors)} errors, {len(distinct)} distinct:\n{listing}", limit=100_000)
    except Exception as e:  # a crash of the harness is a failure, with the logs
        check("superset_check ran to the end", False, repr(e))
    finally:
        if superset:
            superset.stop()
        if relay:
            relay.stop()
        if server:
            server.stop()
        if results["failed"] and superset:
            print("---- Superset log (tail) ----\n" + tail(superset.log_path, 80))
            print("---- townstat serve log (tail) ----\n" + tail(server.log_path, 40) if server else "")
        if os.environ.get("TOWNSTAT_KEEP_TMP"):
            print(f"  (kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"  ({time.monotonic() - started:.0f} s)")
    print(f"superset_check: {results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
