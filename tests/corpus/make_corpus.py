#!/usr/bin/env python3
"""Writes the bad-input corpus: small source files, each row or file with the exact
reject reasons, warnings or file-level error it must produce (expect.csv).

The expectations are decided here by hand from sources.md, not computed by townstat;
the Rust test `corpus` in crates/ingest/tests/it compares ingestion against them.
Regenerate with `python3 tests/corpus/make_corpus.py` (needs openpyxl) and commit the
files; CI only reads them.
"""
import csv, io, json, os, shutil, zipfile
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
A = "0123456789ABCDEFGHJKLMNPQRTUWXY"
W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc(body):
    s = sum(A.index(c) * w for c, w in zip(body, W))
    return body + A[(31 - s % 31) % 31]


def u(n, kind="91", county="140212"):
    return uscc(f"{kind}{county}MA0B{n:05d}")


def patno(d):
    w = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5] if len(d) == 12 else [2, 3, 4, 5, 6, 7, 8, 9]
    s = sum(int(x) * y for x, y in zip(d, w)) % 11
    return d + "." + ("X" if s == 10 else str(s))


expect = []  # (file, row, expect)


def exp(path, row, what):
    expect.append((path, row, what))


def write_csv(rel, rows, encoding="utf-8", delimiter=",", bom=False):
    p = FILES / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    data = buf.getvalue().encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    p.write_bytes(data)


if FILES.exists():
    shutil.rmtree(FILES)

# ---------------------------------------------------------------- enterprise
G1, G2, G3, G4, G5 = u(1), u(2, county="140213"), u(3, county="140214"), u(4, "92", "140215"), u(5, "93", "140225")
S1, S2 = u(6), u(7, county="140271")  # share a name
ent_header = ["统一社会信用代码", "企业名称", "成立日期", "行业代码", "行政区划代码", "住所", "注册资本(万元)", "登记状态", "法定代表人"]
rows = [ent_header,
        [G1, "大同新荣石墨(集团)有限公司", "2015-03-01", "C3091", "140212", "大同市新荣区", "500", "存续", "张三"],
        [G2, "大同轨道装备有限公司", "2016/5/1", "3711", "140213", "", "1,200", "在业", ""],
        [G3, "大同煤机制造有限公司", "2017年6月1日", "3511", "140211", "", "800", "存续", ""],
        [G4, "云州黄花种植户", "20180101", "0141", "", "大同市云州区西坪镇", "", "存续", ""],
        [G5, "浑源黄芪专业合作社", "2019.7.1", "0171", "", "大同市南郊区口泉乡", "", "存续", ""],
        [S1, "同名公司", "2015-01-01", "3091", "140212", "", "", "存续", ""],
        [S2, "同名公司", "2015-01-01", "2710", "140271", "", "", "存续", ""],
        [u(8, county="140213"), "大同市平城区 轨道\n配件厂", "2020-01-01", "3714", "140213", "大同市平城区\n魏都大道", "3.5亿", "存续", ""]]
write_csv("enterprise/00_registry.csv", rows, bom=True)
F = "enterprise/00_registry.csv"
exp(F, 4, "warn:legacy_division_split")
exp(F, 5, "warn:division_from_address")
exp(F, 6, "warn:division_from_address;legacy_division_split")
# row 9 spans lines 9-10 (embedded newlines) and loads cleanly.

F = "enterprise/01_bad_rows.csv"
bad = [ent_header[:-1]]
cases = [
    (["91350211M00013FA1N", "坏代码公司", "2015-01-01", "3091", "140212", "", "", "存续"], "invalid_uscc"),
    ([u(20), "", "2015-01-01", "3091", "140212", "", "", "存续"], "missing_required"),
    ([u(21), "未来公司", "2099-01-01", "3091", "140212", "", "", "存续"], "future_date"),
    ([u(22), "两位年公司", "23/5/1", "3091", "140212", "", "", "存续"], "invalid_date"),
    ([u(23), "倒序公司", "2020-01-01", "3091", "140212", "", "", "存续"], None),
    ([u(24), "行业错公司", "2015-01-01", "9999", "140212", "", "", "存续"], "unknown_industry_code"),
    ([u(25), "区划错公司", "2015-01-01", "3091", "140299", "", "", "存续"], "unknown_division"),
    ([u(26), "外地公司", "2015-01-01", "3091", "140105", "", "", "存续"], "outside_city"),
    ([u(27), "休眠公司", "2015-01-01", "3091", "140212", "", "", "休眠"], "unknown_enum_value"),
    ([u(28), "负资本公司", "2015-01-01", "3091", "140212", "", "-5", "存续"], "negative_amount"),
    ([u(29), "吨资本公司", "2015-01-01", "3091", "140212", "", "12吨", "存续"], "invalid_unit"),
    ([u(30), "中文数公司", "2015-01-01", "3091", "140212", "", "五十万", "存续"], "invalid_number"),
    (["91350211M00013FA1N", "多错公司", "2099-01-01", "99", "140212", "", "", "存续"], "invalid_uscc;future_date;unknown_industry_code"),
    ([u(31), "冲突公司甲", "2015-01-01", "3091", "140212", "", "", "存续"], "conflicting_duplicate"),
    ([u(31), "冲突公司乙", "2015-01-01", "3091", "140212", "", "", "存续"], "conflicting_duplicate"),
    ([G2, "大同轨道装备有限公司", "2016-05-01", "C3711", "140213", "", "1200万元", "在业"], "duplicate"),
    ([u(32), "无区划无地址公司", "2015-01-01", "3091", "", "太原市小店区", "", "存续"], "unknown_division"),
]
for i, (r, what) in enumerate(cases):
    bad.append(r)
# date_order row: add a deregistration column? keep it simple: a separate file below.
write_csv(F, bad)
for i, (r, what) in enumerate(cases):
    if what:
        exp(F, i + 2, what)
# row 6 (倒序公司) is clean here; its date-order twin lives in 02_dates.csv

F = "enterprise/02_dates_gbk.csv"
write_csv(F, [["信用代码", "市场主体名称", "成立时间", "注销日期", "所属行业代码", "所属区县代码", "经营状态"],
              [u(40), "注销早于成立公司", "2020-01-01", "2019-12-31", "3091", "140212", "注销"],
              [u(41), "正常注销公司", "2015-01-01", "2021-06-30", "3091 石墨及碳素制品制造", "140212001", "注销"],
              [u(42), "吊销公司", "2015-01-01", "2022-01-01", "3091", "140212001001", "吊销"]],
          encoding="gbk", delimiter="\t")
exp(F, 2, "date_order")

# ---------------------------------------------------------------- enterprise_annual (xlsx, header in row 4)
F = "enterprise_annual/annual_header_row4.xlsx"
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "年报"
ws["A1"] = "2023年度规模以上工业企业主要指标"
ws.merge_cells("A1:F1")
ws["A3"] = "单位：万元"
ws.append([])
hdr = ["统一社会信用代码", "企业名称", "统计年度", "营业收入(万元)", "从业人员平均人数", "是否规上"]
for j, h in enumerate(hdr):
    ws.cell(row=4, column=j + 1, value=h)
data = [
    ([G1, None, 2023, 12345.67, 120, "是"], None),
    ([None, "大同轨道装备有限公司", 2023, 5000, 80, "否"], None),
    ([u(99), None, 2023, 100, 3, "否"], "orphan_reference"),
    ([None, "同名公司", 2023, 100, 3, "否"], "ambiguous_reference"),
    ([None, "不存在的公司", 2023, 100, 3, "否"], "orphan_reference"),
    ([G1, None, 2022, 100, 12.5, "是"], "invalid_number"),
    ([G2, None, 2022, 100, -3, "是"], "negative_amount"),
    ([G3, None, 2099, 100, 3, "是"], "future_date"),
    ([G3, None, "23", 100, 3, "是"], "invalid_date"),
    (["91350211M00013FA1N", None, 2023, 100, 3, "是"], "invalid_uscc"),
    ([G4, None, 2023, "约50", 3, "也许"], "invalid_number;unknown_enum_value"),
]
for i, (r, what) in enumerate(data):
    for j, v in enumerate(r):
        ws.cell(row=5 + i, column=j + 1, value=v)
    if what:
        exp(F, 5 + i, what)
p = FILES / F
p.parent.mkdir(parents=True, exist_ok=True)
wb.save(p)

# A truncated workbook: the first half of a valid one.
F = "enterprise_annual/truncated.xlsx"
whole = p.read_bytes()
(FILES / F).write_bytes(whole[: len(whole) // 2])
exp(F, 0, "rejected:not a readable XLSX workbook")

# ---------------------------------------------------------------- designation (GBK, semicolons)
F = "designation/designation_gbk.csv"
write_csv(F, [["统一社会信用代码", "认定类型", "级别", "认定年度", "有效期至"],
              [G1, "专精特新中小企业", "省级", "2022年", "2025"],
              [G2, "专精特新“小巨人”", "国家级", "2023-07-01", "2026"],
              [G3, "优秀企业", "省级", "2022", ""],
              [G3, "高新技术企业", "国家级", "2022", "2021"],
              [G1, "专精特新中小企业", "省级", "2022年度", "2025年"]],
          encoding="gbk", delimiter=";")
exp(F, 4, "unknown_enum_value")
exp(F, 5, "date_order")
exp(F, 6, "duplicate")

# ---------------------------------------------------------------- employment (ndjson)
F = "employment/employment.ndjson"
lines = [
    {"统一社会信用代码": G1, "所属期": "2023-05", "参保人数": 120, "工资总额": "60万元"},
    {"统一社会信用代码": G1, "所属期": "2023年6月", "参保人数": "121", "工资总额": 610000},
    {"统一社会信用代码": G1, "所属期": "2099-01", "参保人数": 1},
    {"统一社会信用代码": G2, "所属期": "202305"},
    {"统一社会信用代码": G2, "所属期": "202306", "参保人数": "十"},
    {"统一社会信用代码": G2, "所属期": "23-05", "参保人数": 3},
]
p = FILES / F
p.parent.mkdir(parents=True, exist_ok=True)
p.write_text("\n".join(json.dumps(l, ensure_ascii=False) for l in lines) + "\n", encoding="utf-8")
exp(F, 3, "future_date")
exp(F, 4, "missing_required")
exp(F, 5, "invalid_number")
exp(F, 6, "invalid_date")

F = "employment/malformed.ndjson"
(FILES / F).write_text('{"统一社会信用代码": "%s", "所属期": "2023-05", "参保人数": 1}\n{"统一社会信用代码": "x"\n' % G1, encoding="utf-8")
exp(F, 0, "rejected:line 2 is not valid JSON")

F = "employment/utf16.csv"
(FILES / F).write_bytes("统一社会信用代码,所属期,参保人数\n".encode("utf-16"))
exp(F, 0, "rejected:UTF-16")

# ---------------------------------------------------------------- wrong encoding (pipeline says utf-8)
F = "employment_utf8/gbk_declared_utf8.csv"
write_csv(F, [["统一社会信用代码", "所属期", "参保人数"], [G1, "2023-07", "5"]], encoding="gbk")
exp(F, 0, "rejected:is not valid UTF-8")

# ---------------------------------------------------------------- patent
F = "patent/patents.csv"
P1, P2, P3, P4, P5 = patno("202310601862"), patno("202320601863"), patno("202330601864"), patno("202380601865"), patno("202210601866")
rows = [["申请号", "专利类型", "专利名称", "申请日", "授权公告日", "申请人", "申请人统一社会信用代码"],
        ["CN" + P1, "发明", "一种石墨电极", "2023-03-01", "2024-05-01", "大同新荣石墨(集团)有限公司；太原理工大学", G1],
        ["ZL" + P2.replace(".", ""), "实用新型", "一种转向架", "2023-04-01", "", "大同轨道装备有限公司、同名公司", ""],
        [P3, "发明", "一种外观", "2023-05-01", "", "大同煤机制造有限公司", G3],
        [P4, "", "一种PCT发明", "2023-06-01", "", "大同新荣石墨(集团)有限公司", ""],
        [P5, "发明", "年份不符", "2023-01-01", "", "大同新荣石墨(集团)有限公司", ""],
        ["202310601862.4", "发明", "校验错", "2023-01-01", "", "大同新荣石墨(集团)有限公司", ""],
        [patno("202310601870"), "发明", "授权早于申请", "2023-06-01", "2023-01-01", "大同新荣石墨(集团)有限公司", ""],
        [patno("99101765"), "发明", "老专利", "1999-03-01", "2001-01-01", "张三", ""]]
write_csv(F, rows)
exp(F, 2, "warn:unlinked_applicant")
exp(F, 3, "warn:unlinked_applicant")
exp(F, 4, "patent_type_mismatch")
exp(F, 6, "year_mismatch")
exp(F, 7, "invalid_patent_no")
exp(F, 8, "date_order")
exp(F, 9, "warn:unlinked_applicant")

# ---------------------------------------------------------------- financing (tab separated)
F = "financing/deals.tsv"
rows = [["业务编号", "统一社会信用代码", "融资主体", "融资日期", "融资类型", "融资金额", "币种", "金融机构", "上市板块"],
        ["D1", G1, "", "2023-03-01", "银行贷款", "500万元", "人民币", "大同银行", ""],
        ["", "", "大同轨道装备有限公司", "2023-04-01", "股权融资", "0.5亿", "", "某基金", ""],
        ["D3", G1, "", "2023-05-01", "银行贷款", "100", "美元", "", ""],
        ["D4", G1, "", "2023-05-01", "银行贷款", "0", "CNY", "", ""],
        ["D5", G1, "", "2023-05-01", "银行贷款", "1.5兆元", "CNY", "", ""],
        ["D6", "", "不存在的公司", "2023-05-01", "银行贷款", "100", "", "", ""],
        ["D7", G1, "", "2023-05-01", "众筹", "100", "", "", ""],
        ["D8", G2, "", "2023-08-01", "上市", "3亿元", "", "", "新三板"]]
write_csv(F, rows, delimiter="\t")
exp(F, 4, "unsupported_currency")
exp(F, 5, "negative_amount")
exp(F, 6, "invalid_unit")
exp(F, 7, "orphan_reference")
exp(F, 8, "unknown_enum_value")

F = "financing/missing_column.csv"
write_csv(F, [["统一社会信用代码", "融资类型", "融资金额"], [G1, "银行贷款", "1"]])
exp(F, 0, "rejected:missing required column occurred_on")

F = "financing/no_header.csv"
write_csv(F, [["a", "b"], ["1", "2"]])
exp(F, 0, "rejected:no header row in the first 10 rows")

# ---------------------------------------------------------------- hostile values (numbers, dates)
# Cells that once panicked or were accepted with a wrong figure (number.rs, date.rs):
# more than 36 decimals, counts beyond 10,000,000, amounts beyond 10^15 元, scientific
# notation, years before 1900, times of day that do not exist. Rows at the bounds load.
F = "enterprise_annual/hostile_numbers.csv"
rows = [["统一社会信用代码", "统计年度", "营业收入", "从业人员平均人数"],
        [G1, "2021", "100元", "0." + "0" * 130],
        [G1, "2020", "100元", "9223372036854775807"],
        [G1, "2019", "100元", "10000001"],
        [G1, "2018", "100元", "10000000"],
        [G2, "2021", "1000000000000000.01元", "5"],
        [G2, "2020", "1000000000000000元", "5"],
        [G2, "2019", "10000000亿", "-0"],
        [G2, "2018", "1.23E+11", "5"],
        [G3, "2021", "NaN", "inf"],
        [G3, "2020", "100元", "0." + "0" * 36],
        [G3, "2019", "100元", "0." + "0" * 37],
        [G3, "0000", "100元", "5"]]
write_csv(F, rows)
exp(F, 2, "invalid_number")
exp(F, 3, "invalid_number")
exp(F, 4, "invalid_number")
exp(F, 6, "invalid_number")
exp(F, 9, "invalid_number")
exp(F, 10, "invalid_number")
exp(F, 12, "invalid_number")
exp(F, 13, "invalid_date")

# JSON numbers as NDJSON writes them: 1e-200 and 1e308 are numbers, not text.
F = "employment/hostile_numbers.ndjson"
lines = [
    '{"统一社会信用代码": "%s", "所属期": "2022-01", "参保人数": 1e-200}' % G1,
    '{"统一社会信用代码": "%s", "所属期": "2022-02", "参保人数": 1e308}' % G1,
    '{"统一社会信用代码": "%s", "所属期": "2022-03", "参保人数": 9223372036854775807}' % G1,
    '{"统一社会信用代码": "%s", "所属期": "2022-04", "参保人数": -0.0, "工资总额": 1e15}' % G1,
    '{"统一社会信用代码": "%s", "所属期": "2022-05", "参保人数": 3, "工资总额": 1e16}' % G1,
    '{"统一社会信用代码": "%s", "所属期": "0000-05", "参保人数": 3}' % G1,
    '{"统一社会信用代码": "%s", "所属期": "2022-06", "参保人数": 10000000.0}' % G1,
]
p = FILES / F
p.parent.mkdir(parents=True, exist_ok=True)
p.write_text("\n".join(lines) + "\n", encoding="utf-8")
exp(F, 1, "invalid_number")
exp(F, 2, "invalid_number")
exp(F, 3, "invalid_number")
exp(F, 5, "invalid_number")
exp(F, 6, "invalid_date")

F = "enterprise/03_hostile_dates.csv"
rows = [["统一社会信用代码", "企业名称", "成立日期", "行业代码", "行政区划代码", "登记状态"],
        [u(50), "零年公司", "0000-01-01", "3091", "140212", "存续"],
        [u(51), "十九世纪公司", "1899-12-31", "3091", "140212", "存续"],
        [u(52), "一九〇〇公司", "1900-01-01", "3091", "140212", "存续"],
        [u(53), "错时公司", "2023-05-01T25:99:99", "3091", "140212", "存续"],
        [u(54), "二十四点公司", "2023-05-01 24:00", "3091", "140212", "存续"],
        [u(55), "闰秒公司", "2023-05-01T23:59:60Z", "3091", "140212", "存续"],
        [u(56), "时区公司", "2023-05-01T08:30:00+08:00", "3091", "140212", "存续"],
        [u(57), "零年八位公司", "00000101", "3091", "140212", "存续"]]
write_csv(F, rows)
exp(F, 2, "invalid_date")
exp(F, 3, "invalid_date")
exp(F, 5, "invalid_date")
exp(F, 6, "invalid_date")
exp(F, 9, "invalid_date")


# ---------------------------------------------------------------- quality_mark (the quality ledger)
F = "quality_mark/marks.csv"
write_csv(F, [["统一社会信用代码", "类型", "级别", "授予日期", "有效期至", "证书编号", "名称"],
              [G1, "地理标志", "国家级", "2021-05-10", "2031-05-09", "GI-001", "大同黄花"],
              [G2, "团体标准", "省级", "2023/3/1", "", "T/SXGX 001-2023", "轨道车辆配件"],
              [G1, "区域品牌", "市级", "2024-01-01", "2023-12-31", "RB-9", "云州黄花"],
              [G1, "驰名商标", "国家级", "2022-01-01", "", "X-1", "石墨"],
              [u(90), "集体商标", "省级", "2022-06-01", "", "CM-1", "未登记企业"],
              [G2, "创新平台", "县级", "2022-06-01", "", "P-1", "轨道创新中心"]])
exp(F, 4, "date_order")
exp(F, 5, "unknown_enum_value")
exp(F, 6, "orphan_reference")
exp(F, 7, "unknown_enum_value")

# ---------------------------------------------------------------- project (major projects)
# Not checked against the registry: an investor outside the city (a USCC registered in
# 浙江, row 3) or none (row 4) loads. Town by name (row 2), id (row 3), or county only
# (row 4). A stage reported without its date loads (row 4: 投产 without 投产日期).
F = "project/projects_gbk.csv"
OUT = uscc("91330100MA2C0000" + "1")
write_csv(F, [["项目编号", "项目名称", "所在专业镇", "县区代码", "行业代码", "投资主体统一社会信用代码", "投资主体",
               "项目阶段", "签约日期", "开工日期", "投产日期", "达效日期", "计划总投资(亿元)", "累计完成投资(万元)", "数据截至日期"],
              ["XM-1", "年产5万吨石墨电极项目", "新荣石墨碳素专业镇", "", "3091", G1, "", "开工", "2023-03-01", "2023/9/1", "", "", "5.2", "12,000", "2025-12-31"],
              ["XM-2", "负极材料项目", "xinrong_graphite", "", "3091", OUT, "浙江某新材料公司", "签约", "2024年5月1日", "", "", "", "3", "0", "2025-12-31"],
              ["XM-3", "碳纤维项目", "", "140212", "", "", "外地客商", "投产", "2022-01-01", "2022-06-01", "", "", "1", "9000", "2025-12-31"],
              # 开工 before 签约
              ["XM-4", "石墨烯项目", "xinrong_graphite", "", "3091", "", "", "开工", "2024-06-01", "2024-03-01", "", "", "2", "100", "2025-12-31"],
              # 达效 after the report's own date
              ["XM-5", "碳素制品项目", "xinrong_graphite", "", "3091", "", "", "达效", "2021-01-01", "2021-06-01", "2022-01-01", "2025-11-30", "2", "2", "2025-06-30"],
              ["XM-6", "储能项目", "xinrong_graphite", "", "3091", "", "", "前期", "2024-01-01", "", "", "", "1", "0", "2025-12-31"],
              ["XM-7", "回收项目", "xinrong_graphite", "", "3091", "", "", "签约", "2024-01-01", "", "", "", "-1", "0", "2025-12-31"],
              ["XM-8", "无处项目", "", "", "3091", "", "", "签约", "2024-01-01", "", "", "", "1", "0", "2025-12-31"],
              ["XM-9", "外镇项目", "黄花专业镇", "", "0141", "", "", "签约", "2024-01-01", "", "", "", "1", "0", "2025-12-31"],
              ["XM-10", "县外项目", "", "140105", "3091", "", "", "签约", "2024-01-01", "", "", "", "1", "0", "2025-12-31"],
              ["", "无编号项目", "xinrong_graphite", "", "3091", "", "", "签约", "2024-01-01", "", "", "", "1", "0", "2025-12-31"]],
          encoding="gbk")
exp(F, 5, "date_order")
exp(F, 6, "date_order")
exp(F, 7, "unknown_enum_value")
exp(F, 8, "negative_amount")
exp(F, 9, "missing_required")
exp(F, 10, "unknown_division")
exp(F, 11, "outside_city")
exp(F, 12, "missing_required")

# ---------------------------------------------------------------- investment_deal (招商引资)
# A deal from another province loads (row 2, by name; row 3, by code); one from 大同
# itself (row 4). Bad: an origin that is no region (row 5), a negative amount (row 6),
# neither town nor county (row 7), an amount that is not a number (row 8), a future
# signing (row 9).
F = "investment_deal/deals.csv"
write_csv(F, [["签约项目编号", "签约日期", "投资方名称", "投资方来源地", "落地专业镇", "落地县区代码", "行业代码", "签约金额(亿元)", "到位资金(万元)"],
              ["ZS-1", "2025-03-01", "杭州某科技有限公司", "浙江省杭州市", "新荣石墨碳素专业镇", "", "3091", "2", "5,000"],
              ["ZS-2", "2025/4/1", "深圳某投资有限公司", "440300", "", "140212", "", "0.5", ""],
              ["ZS-3", "2025-05-01", "大同本地某公司", "大同市", "xinrong_graphite", "", "3091", "0.3", "3000"],
              ["ZS-4", "2025-06-01", "某外资公司", "火星", "xinrong_graphite", "", "3091", "1", "0"],
              ["ZS-5", "2025-06-01", "某公司", "110000", "xinrong_graphite", "", "3091", "-1", "0"],
              ["ZS-6", "2025-06-01", "某公司", "110000", "", "", "3091", "1", "0"],
              ["ZS-7", "2025-06-01", "某公司", "110000", "xinrong_graphite", "", "3091", "约一亿", "0"],
              ["ZS-8", "2027-01-01", "某公司", "110000", "xinrong_graphite", "", "3091", "1", "0"]],
          bom=True)
exp(F, 5, "unknown_division")
exp(F, 6, "negative_amount")
exp(F, 7, "missing_required")
exp(F, 8, "invalid_number")
exp(F, 9, "future_date")

with open(HERE / "expect.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["file", "row_number", "expect"])
    for e in sorted(expect):
        w.writerow(e)
print(f"{len(expect)} expectations")
