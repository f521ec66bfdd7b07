#!/usr/bin/env python3
"""Checks `townstat docs`, the data catalog page, in headless Chromium (Debian's):

1. every table of the warehouse (information_schema, as `townstat sql` lists it) has
   its section, with its Chinese label, and the row count of `count(*)`;
2. the lineage of every SQL step, read independently from the SQL files with a
   regular expression (FROM / JOIN names that are not CTEs), equals the reads the page
   derived from DataFusion's plans; `town_year`'s upstream closure holds every step it
   transitively reads;
3. the last test results on the page are those of `test_result` for the run;
4. search by a Chinese label and by an English name, through the page's own script
   (the query in the URL's #q=), hides the other tables;
5. the page makes no network request (a logging proxy; a control page that loads
   something is caught), references nothing outside itself and carries a CSP; a
   screenshot is taken.

Usage: docs_check.py WAREHOUSE TOWNSTAT_BINARY [SCREENSHOT.png]
"""
import csv
import html
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import chromium, requests_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WH, BIN = sys.argv[1], sys.argv[2]
SHOT = Path(sys.argv[3]) if len(sys.argv) > 3 else None
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {str(detail)[:400]}")


def sql(query):
    p = subprocess.run([BIN, "--warehouse", WH, "sql", query, "--format", "csv"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"sql failed: {query}: {p.stderr}")
    return list(csv.DictReader(io.StringIO(p.stdout)))


def sections(dom):
    """Section id → its attributes, and its inner HTML."""
    out = {}
    for m in re.finditer(r'<section class="table"([^>]*)>(.*?)</section>', dom, re.S):
        attrs = dict((k, html.unescape(v)) for k, v in re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        attrs["hidden"] = re.search(r'\bhidden\b', m.group(1)) is not None
        out[attrs["data-name"]] = (attrs, m.group(2))
    return out


def sql_reads(text):
    """Table names a step's SQL reads: FROM/JOIN targets that are not its own CTEs."""
    text = re.sub(r"--[^\n]*", "", text)
    ctes = set(re.findall(r"(?:WITH|,)\s*(\w+)\s+AS\s*\(", text, re.I))
    names = set(re.findall(r"\b(?:FROM|JOIN)[\s(]+([a-z_][a-z0-9_]*)", text, re.I))
    return {n for n in names if n not in ctes and n.lower() not in {"unnest", "select"}}


with tempfile.TemporaryDirectory() as work:
    work = Path(work)
    out = work / "site"
    p = subprocess.run([BIN, "--warehouse", WH, "docs", "--out", str(out)], capture_output=True, text=True)
    check("townstat docs exits 0", p.returncode == 0, p.stderr)
    page = out / "index.html"
    raw = page.read_text()
    dom, seen = requests_of(page.as_uri())
    found = sections(dom)
    run_id = sql("SELECT run_id FROM run ORDER BY finished_at DESC LIMIT 1")[0]["run_id"]
    check("the page names the run", run_id in dom)

    # 1. Every table of the warehouse, with its label and row count.
    tables = [r["table_name"] for r in sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
    check("the warehouse has tables", len(tables) > 20, tables)
    for t in tables:
        check(f"section of {t}", t in found, sorted(found)[:10])
    labels = {"town_year": "专业镇年度指标", "county_year": "区县年度指标", "enterprise": "市场主体"}
    for t, label in labels.items():
        check(f"{t} has its label", t in found and label in found[t][1])
    for t in ["town_year", "enterprise", "town_member_year", "quarantine"]:
        n = sql(f"SELECT count(*) AS n FROM {t}")[0]["n"]
        m = re.search(r'<span class="rows">(\d+)</span>', found.get(t, ({}, ""))[1])
        check(f"row count of {t}", m is not None and m.group(1) == n, (m and m.group(1), n))

    # 2. Lineage: the page's reads against the SQL files read independently.
    steps, expanded = {}, set()
    for f in sorted((ROOT / "pipelines/marts").rglob("*.sql")):
        text = f.read_text()
        steps[f.stem] = sql_reads(text)
        if "${components}" in text or "${targets}" in text:
            expanded.add(f.stem)
    marts = {f.stem for f in (ROOT / "pipelines/marts/marts").glob("*.sql")}
    for name, reads in steps.items():
        attrs = found.get(name, ({}, ""))[0]
        page_reads = set(attrs.get("data-reads", "").split())
        if name in expanded:
            # SQL expanded from the configuration (evaluation components, targets)
            # reads the marts the expansion names, beyond what the file itself says.
            ok = reads <= page_reads and page_reads - reads <= marts | {"town", "division", "industry_code"}
        else:
            ok = reads == page_reads
        check(f"lineage of {name}", ok, (sorted(reads), sorted(page_reads)))
    closure, todo = set(), list(steps["town_year"])
    while todo:
        n = todo.pop()
        if n not in closure:
            closure.add(n)
            todo.extend(steps.get(n, ()))
    up = set(found["town_year"][0].get("data-upstream", "").split())
    check("town_year's upstream holds every step it reads", closure <= up, sorted(closure - up))
    check("town_year's upstream reaches the raw files", {"raw/enterprise", "raw/employment"} <= up, sorted(up))

    # 3. Test results as test_result has them.
    results = sql(f"SELECT test, status FROM test_result WHERE run_id = '{run_id}'")
    check("the run has test results", len(results) > 50, len(results))
    for r in results:
        if r["test"].startswith("town_year.") or r["test"].startswith("city_year."):
            table = r["test"].split(".")[0]
            row = re.search(r"<tr><td>" + re.escape(html.escape(r["test"], quote=True)) +
                            r"</td><td>\w+</td><td>.*?</td><td class=\"(\w+)\">", found[table][1])
            check(f"result of {r['test']}", row is not None and row.group(1) == r["status"],
                  row and row.group(1))

    # 4. Search, by the page's script.
    for q, shown, hidden in [("区县年度指标", "county_year", "town_year"),
                             ("town_cluster", "town_cluster", "county_year")]:
        d = chromium("--dump-dom", page.as_uri() + "#q=" + q).stdout
        s = sections(d)
        check(f"search {q} shows {shown}", shown in s and not s[shown][0]["hidden"])
        check(f"search {q} hides {hidden}", hidden in s and s[hidden][0]["hidden"])

    # 5. Nothing leaves the page.
    control = work / "control.html"
    control.write_text('<html><body><img src="http://townstat-test.invalid/x.png"></body></html>')
    _, caught = requests_of(control.as_uri())
    check("the proxy catches a page that loads something", len(caught) >= 1, caught)
    check("the page makes no network request", seen == [], seen)
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", raw, re.I)
    check("no external reference", all(r.startswith("#") for r in refs),
          [r for r in refs if not r.startswith("#")][:5])
    check("a CSP that forbids loads", "default-src 'none'" in raw)
    png = SHOT or work / "catalog.png"
    chromium(f"--screenshot={png}", "--window-size=1400,1600", "--hide-scrollbars", page.as_uri())
    check("a screenshot", png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n")

print(f"docs_check: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
