#!/usr/bin/env python3
"""Checks `townstat report` end to end with independent readers and a real office suite
and browser:

1. the slt dataset (tests/slt, a tiny hand-made dataset with hand-computed figures) is
   run into a fresh warehouse and reported for 2023; openpyxl reads the workbook and
   named tables (the workbook's `t_<grid>` defined names) are checked against values
   computed by hand (tests/slt/*.slt): a town's 同比, a target's 完成率 and 时间进度, a
   county sheet's 合计, ranks and scores;
2. the same run reported twice gives byte-identical files;
3. LibreOffice (headless) converts the workbook to PDF and pdftotext finds the towns
   and a known total in it;
4. Chromium (headless) prints the page to PDF and takes a screenshot; its DOM has every
   chart with data; the page makes no network request (a logging proxy sees only the
   browser's own update checks, and a control page that does load something is caught);
   every figure of the town, ranking and target tables equals `townstat sql`'s;
5. bad input (a year without data, a run that does not exist, an output folder that is
   a file) exits 2 with a message and writes nothing.

With a second warehouse (the sample data's), step 4's figure comparison also runs on
its default report. Usage: report_check.py TOWNSTAT_BINARY [SAMPLE_WAREHOUSE]
"""
import csv
import html.parser
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import chromium, requests_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = sys.argv[1]
SAMPLE = Path(sys.argv[2]) if len(sys.argv) > 2 else None
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def close(a, b, tol=1e-9):
    return a is not None and b is not None and abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


def ts(wh, *args, ok=True):
    p = subprocess.run([BIN, "--warehouse", str(wh), *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise SystemExit(f"townstat {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def sql(wh, run, query):
    out = ts(wh, "sql", "--run", run, "--format", "csv-raw", query).stdout
    return list(csv.DictReader(io.StringIO(out)))


work = Path(tempfile.mkdtemp(prefix="townstat-report-"))
try:
    # 1. The hand-made dataset.
    wh = work / "wh"
    ts(wh, "run", str(ROOT / "tests/slt/data/pipeline.toml"), "--as-of", "2024-06-30")
    run_id = csv.DictReader(io.StringIO(ts(wh, "sql", "--format", "csv-raw",
                                           "SELECT run_id FROM run").stdout)).__next__()["run_id"]
    out = work / "out"
    p = ts(wh, "report", "--year", "2023", "--out", str(out))
    xlsx = out / "townstat-report-2023.xlsx"
    page = out / "townstat-report-2023.html"
    check("report writes both files", xlsx.is_file() and page.is_file(), p.stdout)
    check("report names the run", run_id in p.stdout, p.stdout)

    wb = openpyxl.load_workbook(xlsx, data_only=True)
    wbf = openpyxl.load_workbook(xlsx)  # formulas as written
    check("sheets", wb.sheetnames == ["总览", "评估排名", "专业镇指标", "营收趋势", "新荣区",
                                      "融资与上市", "创新", "项目与招商", "指标解释"], wb.sheetnames)

    def named(book, name):
        dn = book.defined_names[name]
        [(sheet, ref)] = list(dn.destinations)
        rows = [[c for c in r] for r in book[sheet][ref.replace("$", "")]]
        header = [c.value for c in rows[0]]
        return sheet, header, rows[1:]

    def row_of(book, name, first):
        _, header, rows = named(book, name)
        for r in rows:
            if r[0].value == first:
                return dict(zip(header, r)), [c for c in r]
        raise KeyError(f"{name}: no row {first!r}")

    # alpha (甲镇) 2023: revenue 4亿; 同比 (4亿 − 0.6亿) / 0.6亿 = 5.6667 (report_marts.slt).
    towns, _ = row_of(wb, "t_towns", "甲镇")
    check("甲镇 营业收入(亿元)", close(towns["营业收入(亿元)"].value, 4.0), towns["营业收入(亿元)"].value)
    _, header, rows = named(wb, "t_towns")
    i = header.index("营业收入(亿元)")
    alpha = next(r for r in rows if r[0].value == "甲镇")
    check("甲镇 营业收入同比", close(alpha[i + 1].value, 340 / 60), alpha[i + 1].value)
    check("同比 is a percentage format", alpha[i + 1].number_format == "0.0%", alpha[i + 1].number_format)
    check("money is a number, not text", alpha[i].data_type == "n", alpha[i].data_type)
    check("money format", alpha[i].number_format == "#,##0.00", alpha[i].number_format)

    # The other ledgers (quality.slt): E1, a member of 甲镇 and 乙镇, holds three marks
    # in force at 2023-12-31 (a geographical indication, two group standards); the slt
    # data has no project or deal.
    ledg, _ = row_of(wb, "t_ledgers", "甲镇")
    check("甲镇 质量品牌", close(ledg["在有效期内的质量品牌数"].value, 3), ledg["在有效期内的质量品牌数"].value)
    check("甲镇 no project", close(ledg["累计签约项目数"].value, 0), ledg["累计签约项目数"].value)

    # The ledgers dataset (tests/slt/ledgers, two runs; projects.slt, investment.slt):
    # 2023 — 甲镇: P1 signed, not started, planned 6000万, completed 0; D1 with 8000万
    # in place, all from outside the province. 乙镇: P2 started and in production,
    # planned 12000万, completed 8000万; no deal.
    lwh = work / "ledgers"
    for name in ["first.toml", "pipeline.toml"]:
        ts(lwh, "run", str(ROOT / "tests/slt/ledgers" / name), "--as-of", "2024-06-30")
    lout = work / "ledgers-out"
    ts(lwh, "report", "--year", "2023", "--out", str(lout))
    lwb = openpyxl.load_workbook(lout / "townstat-report-2023.xlsx", data_only=True)
    a, _ = row_of(lwb, "t_ledgers", "甲镇")
    b, _ = row_of(lwb, "t_ledgers", "乙镇")
    want_a = {"累计签约项目数": 1, "累计开工项目数": 0, "签约项目开工率(%)": 0.0,
              "计划总投资(万元)": 6000, "累计完成投资(万元)": 0, "签约项目数(招商引资)": 1,
              "到位资金(万元)": 8000, "省外到位资金(万元)": 8000, "省外到位资金占比(%)": 1.0}
    want_b = {"累计签约项目数": 1, "累计开工项目数": 1, "累计投产项目数": 1,
              "签约项目开工率(%)": 1.0, "开工项目投产率(%)": 1.0, "计划总投资(万元)": 12000,
              "累计完成投资(万元)": 8000, "签约项目数(招商引资)": 0}
    for town, row, want in [("甲镇", a, want_a), ("乙镇", b, want_b)]:
        for col, v in want.items():
            check(f"{town} {col}", col in row and close(row[col].value, v),
                  row[col].value if col in row else sorted(row))

    # Targets (targets.slt, report_marts.slt): tier_alpha 2023 0.8 done, time 1.0;
    # towns_total 2 of 2 in 2023.
    tier, _ = row_of(wb, "t_targets", "甲镇 营业收入")
    check("tier_alpha 完成率", close(tier["完成率(%)"].value, 0.8), tier["完成率(%)"].value)
    check("tier_alpha 时间进度", close(tier["时间进度(%)"].value, 1.0), tier["时间进度(%)"].value)
    check("tier_alpha 完成值 亿元", close(tier["完成值"].value, 4.0) and close(tier["目标值"].value, 5.0),
          (tier["完成值"].value, tier["目标值"].value))
    check("tier_alpha not met", tier["是否达成"].value == "否", tier["是否达成"].value)
    total_t, _ = row_of(wb, "t_targets", "全市 已认定专业镇数")
    check("towns_total", close(total_t["完成值"].value, 2) and close(total_t["完成率(%)"].value, 1.0)
          and total_t["是否达成"].value == "是", {k: v.value for k, v in total_t.items()})

    # 新荣区 (140212): alpha 4亿 + beta 6亿 = 10亿 in 合计, a SUM formula with its value.
    sheet, header, rows = named(wb, "t_county_140212_towns")
    check("county sheet", sheet == "新荣区", sheet)
    total = rows[-1]
    j = header.index("营业收入(亿元)")
    check("county 合计 label", total[0].value == "合计", total[0].value)
    check("county 合计 营业收入", close(total[j].value, 10.0), total[j].value)
    _, _, frows = named(wbf, "t_county_140212_towns")
    check("county 合计 is a SUM formula", str(frows[-1][j].value).startswith("=SUM("), frows[-1][j].value)

    # Ranks (evaluation.slt): 2023 beta 75 rank 1, alpha 25 rank 2.
    beta, _ = row_of(wb, "t_ranking", 1)
    check("rank 1", beta["专业镇"].value == "乙镇" and close(beta["综合得分"].value, 75.0),
          (beta["专业镇"].value, beta["综合得分"].value))
    a2, _ = row_of(wb, "t_ranking", 2)
    check("rank 2", a2["专业镇"].value == "甲镇" and close(a2["综合得分"].value, 25.0),
          (a2["专业镇"].value, a2["综合得分"].value))

    for ws in wb.worksheets:
        check(f"{ws.title}: run id in the sheet", run_id in str(ws["A2"].value), ws["A2"].value)
        check(f"{ws.title}: run id in the printed header", run_id in (ws.oddHeader.left.text or ""),
              ws.oddHeader.left.text)
        check(f"{ws.title}: frozen rows", ws.freeze_panes is not None, ws.freeze_panes)
        check(f"{ws.title}: column widths set", ws.column_dimensions["A"].width > 8,
              ws.column_dimensions["A"].width)

    gl = {r[1].value: r for r in named(wb, "t_glossary")[2]}
    for k in ["revenue", "revenue_yoy", "time_progress", "progress", "score", "financing_total"]:
        check(f"glossary {k}", k in gl and len(str(gl[k][4].value or "")) > 5, k)

    with zipfile.ZipFile(xlsx) as z:
        charts = sorted(n for n in z.namelist() if re.match(r"xl/charts/chart\d+\.xml$", n))
        check("five native charts", len(charts) == 5, charts)
        for n in charts:
            body = z.read(n).decode()
            check(f"{n} has series over cells", "<c:val>" in body and "<c:f>" in body, n)

    # 2. Reproducible: the same run gives the same bytes.
    again = work / "again"
    ts(wh, "report", "--year", "2023", "--out", str(again))
    check("workbook is byte-identical", (again / xlsx.name).read_bytes() == xlsx.read_bytes())
    check("page is byte-identical", (again / page.name).read_bytes() == page.read_bytes())

    # 3. LibreOffice opens the workbook.
    lo_home = work / "lo-home"
    lo_home.mkdir()
    lo = subprocess.run(["soffice", "--headless", "--norestore", "--convert-to", "pdf",
                         "--outdir", str(work / "lo"), str(xlsx)],
                        capture_output=True, text=True, timeout=180,
                        env={**os.environ, "HOME": str(lo_home)})
    lo_pdf = work / "lo" / "townstat-report-2023.pdf"
    check("LibreOffice converts the workbook", lo.returncode == 0 and lo_pdf.is_file(),
          lo.stdout + lo.stderr)
    if lo_pdf.is_file():
        text = subprocess.run(["pdftotext", "-layout", str(lo_pdf), "-"], capture_output=True,
                              text=True).stdout
        for s in ["甲镇", "乙镇", "新荣区", "合计", "10.00", run_id]:
            check(f"LibreOffice PDF has {s}", s in text, text[:400])

    # 4. Chromium renders the page.
    pdf = work / "page.pdf"
    png = work / "page.png"
    chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    chromium(f"--screenshot={png}", "--window-size=1400,2000", "--hide-scrollbars", page.as_uri())
    check("Chromium prints the page", pdf.is_file() and pdf.stat().st_size > 10_000)
    check("Chromium takes a screenshot", png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
          and png.stat().st_size > 20_000)
    if pdf.is_file():
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        for s in ["甲镇", "乙镇", "新荣区", "综合得分", run_id]:
            check(f"printed page has {s}", s in text, text[:300])
        pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        n = int(re.search(r"Pages:\s+(\d+)", pages).group(1))
        check("one printed page or more per section", n >= 8, n)

    control = work / "control.html"
    control.write_text('<html><body><img src="http://townstat-test.invalid/x.png"></body></html>')
    _, seen = requests_of(control.as_uri())
    check("the proxy catches a page that loads something", len(seen) >= 1, seen)
    dom, seen = requests_of(page.as_uri())
    check("the page makes no network request", seen == [], seen)
    raw = page.read_text()
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", raw, re.I)
    check("no external reference in the page",
          all(r.startswith("#") for r in refs) and not re.search(r"url\(|@import|<script", raw, re.I),
          [r for r in refs if not r.startswith("#")][:5])
    check("a CSP that forbids loads", "default-src 'none'" in raw)

    class Dom(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.charts = {}
            self.chart = None
            self.grids = {}
            self.grid = self.row = self.key = None
            self.text = ""

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "svg" and "data-chart" in a:
                self.chart = a["data-chart"]
                self.charts[self.chart] = {"points": int(a.get("data-points", 0)), "marks": 0}
            if self.chart and "data-value" in a:
                self.charts[self.chart]["marks"] += 1
            if tag == "table":
                self.grid = a.get("data-grid")
                self.grids[self.grid] = {}
            if tag == "tr" and self.grid:
                self.row = a.get("data-id")
                self.grids[self.grid].setdefault(self.row, {})
            if tag == "td" and self.row is not None:
                self.key, self.text = a.get("data-k"), ""

        def handle_data(self, data):
            if self.key:
                self.text += data

        def handle_endtag(self, tag):
            if tag == "svg":
                self.chart = None
            if tag == "td" and self.key:
                self.grids[self.grid][self.row][self.key] = self.text
                self.key = None
            if tag == "table":
                self.grid = self.row = None

    def parse(text):
        d = Dom()
        d.feed(text)
        return d

    def money(x, div):
        return f"{float(x) / div:,.2f}"

    def pct(x):
        return "" if x in ("", None) else f"{float(x) * 100:.1f}%"

    def compare(name, wh, run, year, text):
        d = parse(text)
        for c in ["targets", "tiers", "counties", "ranking", "trend"]:
            info = d.charts.get(c)
            check(f"{name}: chart {c} drawn with data", info is not None and info["points"] > 0
                  and info["marks"] == info["points"], info)
        rows = sql(wh, run, f"""SELECT ty.town_id, ty.revenue, y.revenue_yoy, ty.entities_end,
                   ty.insured_avg, ty.invention_granted, ty.financing_total, e.rank, e.score
            FROM town_year ty JOIN town t ON t.town_id = ty.town_id
            LEFT JOIN town_year_yoy y ON y.town_id = ty.town_id AND y.year = ty.year
            LEFT JOIN town_evaluation e ON e.town_id = ty.town_id AND e.year = ty.year
            WHERE ty.year = {year} AND t.designated_year <= {year}""")
        towns = {k: v for k, v in d.grids.get("towns", {}).items() if k not in (None, "合计")}
        check(f"{name}: one page row per designated town", len(towns) == len(rows), (len(towns), len(rows)))
        bad = []
        for r in rows:
            got = towns.get(r["town_id"], {})
            want = {
                "revenue": money(r["revenue"], 1e8),
                "revenue_yoy": pct(r["revenue_yoy"]),
                "entities_end": f"{int(r['entities_end']):,}",
                "insured_avg": f"{float(r['insured_avg']):,.2f}",
                "invention_granted": f"{int(r['invention_granted']):,}",
                "financing_total": money(r["financing_total"], 1e8),
                "rank": r["rank"],
            }
            for k, v in want.items():
                if got.get(k) != v:
                    bad.append((r["town_id"], k, got.get(k), v))
            if r["rank"]:
                rk = d.grids["ranking"].get(r["town_id"], {})
                if rk.get("score") != f"{float(r['score']):,.2f}":
                    bad.append((r["town_id"], "score", rk.get("score"), r["score"]))
        check(f"{name}: town figures equal townstat sql's", not bad, bad[:5])
        targets = sql(wh, run, f"""SELECT p.target_id, p.progress, c.time_progress
            FROM town_target_progress p JOIN town_target_pace c
              ON c.target_id = p.target_id AND c.year = p.year
            WHERE p.year = least({year}, p.target_year)""")
        bad = [(t["target_id"], d.grids["targets"].get(t["target_id"]))
               for t in targets
               if d.grids["targets"].get(t["target_id"], {}).get("progress") != pct(t["progress"])
               or d.grids["targets"][t["target_id"]].get("time_progress") != pct(t["time_progress"])]
        check(f"{name}: target figures equal townstat sql's", targets and not bad, bad[:3])
        city = sql(wh, run, f"SELECT revenue FROM city_year WHERE year = {year}")
        got = d.grids["city"].get("revenue", {}).get("city_this")
        check(f"{name}: city revenue equals townstat sql's", got == money(city[0]["revenue"], 1e8),
              (got, city))

    compare("slt", wh, run_id, 2023, dom)

    # 5. Bad input: exit 2, a message, nothing written.
    before = sorted(p.name for p in out.iterdir())
    p = ts(wh, "report", "--year", "2031", "--out", str(out), ok=False)
    check("a year without data: exit 2", p.returncode == 2 and "2031" in p.stderr
          and "2023" in p.stderr, (p.returncode, p.stderr))
    p = ts(wh, "report", "--run", "no-such-run", "--out", str(out), ok=False)
    check("a run that does not exist: exit 2", p.returncode == 2 and "no-such-run" in p.stderr,
          (p.returncode, p.stderr))
    afile = work / "afile"
    afile.write_text("not a folder")
    p = ts(wh, "report", "--year", "2023", "--out", str(afile), ok=False)
    check("an output folder that is a file: exit 2", p.returncode == 2 and "not a folder" in p.stderr,
          (p.returncode, p.stderr))
    check("the file is untouched", afile.read_text() == "not a folder")
    check("nothing half-written", sorted(p.name for p in out.iterdir()) == before,
          sorted(p.name for p in out.iterdir()))
    p = ts(work / "no-warehouse", "report", "--out", str(work / "o2"), ok=False)
    check("no warehouse: exit 2, nothing created", p.returncode == 2 and not (work / "no-warehouse").exists()
          and not (work / "o2").exists(), (p.returncode, p.stderr))

    # 6. Excel-friendly query output: typed cells, a BOM on request, Chinese headers.
    qx = work / "q.xlsx"
    q = ("SELECT town_id, year, revenue, entities_growth, '=1+1' AS f, "
         "CAST('2023-12-31' AS DATE) AS d, revenue > 0 AS b FROM town_year "
         "WHERE year = 2023 ORDER BY town_id")
    ts(wh, "sql", q, "--format", "xlsx", "-o", str(qx), "--labels", "zh")
    ws = openpyxl.load_workbook(qx).active
    head = [c.value for c in ws[1]]
    check("xlsx headers in Chinese", head[:3] == ["专业镇编号", "年度", "营业收入(元)"], head)
    alpha = [c for c in ws[2]]
    check("xlsx: alpha's revenue is a number with its decimals",
          alpha[2].data_type == "n" and close(alpha[2].value, 400_000_000) and alpha[2].number_format == "#,##0.00",
          (alpha[2].value, alpha[2].data_type, alpha[2].number_format))
    check("xlsx: a formula-like text stays text", alpha[4].data_type == "s" and alpha[4].value == "=1+1",
          (alpha[4].data_type, alpha[4].value))
    check("xlsx: a date is a date", alpha[5].is_date and str(alpha[5].value).startswith("2023-12-31"),
          alpha[5].value)
    check("xlsx: a boolean is a boolean", alpha[6].value is True, alpha[6].value)
    check("xlsx: header frozen", ws.freeze_panes == "A2", ws.freeze_panes)
    raw_csv = subprocess.run([BIN, "--warehouse", str(wh), "sql",
                              "SELECT town_id, revenue FROM town_year WHERE year = 2023 ORDER BY town_id",
                              "--format", "csv", "--bom", "--labels", "zh"], capture_output=True).stdout
    check("csv --bom starts with the UTF-8 BOM", raw_csv.startswith(b"\xef\xbb\xbf"), raw_csv[:10])
    check("csv --labels zh", raw_csv.decode("utf-8-sig").splitlines()[:2] == ["专业镇编号,营业收入(元)", "alpha,400000000.00"],
          raw_csv.decode("utf-8-sig").splitlines()[:2])
    bad = work / "bad.xlsx"
    p = ts(wh, "sql", "SELECT nosuch", "--format", "xlsx", "-o", str(bad), ok=False)
    check("a failed query leaves no file", p.returncode != 0 and not bad.exists(), p.returncode)
    p = ts(wh, "sql", "SELECT 1", "--format", "xlsx", ok=False)
    check("xlsx without -o: exit 2", p.returncode == 2, (p.returncode, p.stderr))

    # The sample data: every town's figures against townstat sql.
    if SAMPLE:
        sout = work / "sample"
        p = ts(SAMPLE, "report", "--out", str(sout), "--format", "html")
        [html_file] = list(sout.glob("*.html"))
        year = int(re.search(r"(\d{4})\.html$", html_file.name).group(1))
        srun = re.search(r"of run (\S+)", p.stdout).group(1)
        check("html only", not list(sout.glob("*.xlsx")))
        # A year with returns but before any town was designated: the city figures,
        # empty town tables, no empty chart.
        early = work / "early"
        p = ts(SAMPLE, "report", "--year", "2019", "--out", str(early), ok=False)
        check("a year before any designation reports", p.returncode == 0
              and (early / "townstat-report-2019.xlsx").is_file(), (p.returncode, p.stderr))
        if p.returncode == 0:
            ewb = openpyxl.load_workbook(early / "townstat-report-2019.xlsx", data_only=True)
            _, _, erows = named(ewb, "t_towns")
            check("2019: no towns, a 合计 of nothing", [r[0].value for r in erows] == ["合计"],
                  [r[0].value for r in erows])
        # The nightly run's [report] wrote the same report into its exports.
        nightly = SAMPLE / "export" / "report" / html_file.name
        check("the nightly run published the report with its exports", nightly.is_file(), nightly)
        if nightly.is_file():
            check("the nightly report equals townstat report's, byte for byte",
                  nightly.read_bytes() == html_file.read_bytes())
        compare("sample", SAMPLE, srun, year, html_file.read_text())
finally:
    if os.environ.get("KEEP_REPORT_CHECK"):
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)

print(f"report_check: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
