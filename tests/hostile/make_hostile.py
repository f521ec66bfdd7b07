#!/usr/bin/env python3
"""Writes the small files of the hostile-input suite (files/) and their expected
outcomes (expect.csv): files built to break a reader, each with the exact outcome it
must have — rejected whole with a message naming the file and the problem, or read
with exact row counts. Files over 100 KB (a 200 MB line, a 4 M-row workbook, 50,000
NDJSON keys, nesting 100,000 deep) are not committed: the Rust tests generate them
(crates/ingest/tests/it/hostile.rs, crates/cli/tests/it/hostile.rs), as they do the
paths git cannot hold (a FIFO, a symlink loop, a GBK file name).

Regenerate with `python3 tests/hostile/make_hostile.py` (standard library only) and
commit the files; the tests only read them.
"""
import shutil, zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
A = "0123456789ABCDEFGHJKLMNPQRTUWXY"
W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc(n):
    body = f"91140212MA0C{n:05d}"
    s = sum(A.index(c) * w for c, w in zip(body, W))
    return body + A[(31 - s % 31) % 31]


HEADER = "统一社会信用代码,企业名称,成立日期,行业代码,行政区划代码,住所,注册资本(万元),登记状态"


def row(n, address=""):
    return f"{uscc(n)},大同测试{n}有限公司,2015-03-01,3091,140212,{address},500,存续"


expect = []  # (file, expectation)


def write(rel, data, what):
    p = FILES / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    assert p.stat().st_size < 100_000, rel
    expect.append((rel, what))


def main():
    shutil.rmtree(FILES, ignore_errors=True)

    # A quote opened on line 5 and never closed: 996 rows would become one cell.
    lines = [HEADER] + [row(i) for i in range(1, 1000)]
    lines[4] = row(4, '"大同市新荣区')
    write("enterprise/unclosed_quote.csv", "\n".join(lines) + "\n",
          "rejected:line 5: a quoted field opened on this line is not closed")

    # A closed quote that runs over 150 lines: refused as well, naming its line.
    lines = [HEADER, row(1, '"' + "\n".join(["一行"] * 150) + '"'), row(2)]
    write("enterprise/long_quote.csv", "\n".join(lines) + "\n",
          "rejected:line 2: a quoted field opened on this line runs over 150 lines")

    # Two exports joined, both headers near the top: the later header matches more
    # aliases, so it would be chosen and the rows above it lost.
    short = "统一社会信用代码,企业名称,成立日期"
    lines = [short] + [f"{uscc(i)},甲{i}公司,2015-03-01" for i in range(10, 13)]
    lines += [HEADER] + [row(i) for i in range(20, 23)]
    write("enterprise/two_exports_top.csv", "\n".join(lines) + "\n",
          "rejected:rows 1 and 5 both look like header rows")

    # Two exports joined further down: the second header is a row after the data.
    lines = [HEADER] + [row(i) for i in range(30, 50)] + [HEADER] + [row(i) for i in range(50, 55)]
    write("enterprise/two_exports_late.csv", "\n".join(lines) + "\n",
          "rejected:row 22 looks like a second header row")

    # Rows that look like data above the header are not titles.
    lines = [row(60), row(61), row(62), "", HEADER] + [row(i) for i in range(63, 66)]
    write("enterprise/data_above_header.csv", "\n".join(lines) + "\n",
          "rejected:row 1 above the header (row 5) has 7 filled cells")

    # Title rows above the header are fine (the control).
    lines = ["大同市市场主体名录", "单位：万元,制表日期：2024-01-05", HEADER] + [row(i) for i in range(70, 75)]
    write("enterprise/title_rows.csv", "\n".join(lines) + "\n", "rows:5/5/0")

    # CR-only line ends (old Mac exports): a bad USCC on physical line 4.
    lines = [HEADER, row(80), row(81), row(82).replace(uscc(82), "91140212MA0C0008XX"), row(83)]
    write("enterprise/cr_only.csv", "\r".join(lines) + "\r", "rows:4/3/1;row 4:invalid_uscc")

    # CRLF, a quoted field over two lines on line 3, a bad row on line 5.
    lines = [HEADER, row(90), row(91, '"大同市\r\n新荣区"'), row(92).replace(uscc(92), "X"), row(93)]
    write("enterprise/crlf.csv", "\r\n".join(lines) + "\r\n", "rows:4/3/1;row 5:invalid_uscc")

    # GBK, then a UTF-8 line (two exports in two encodings): rejected naming the line.
    gbk = ("\n".join([HEADER] + [row(i) for i in range(100, 105)]) + "\n").encode("gbk")
    utf8 = (row(105, "x,中") + "\n").encode("utf-8")
    write("enterprise/gbk_then_utf8.csv", gbk + utf8,
          "rejected:line 7: bytes (at offset")

    # XLSX.
    write("enterprise/shared_strings_bomb.xlsx", shared_strings_bomb(),
          "rejected:the shared strings claim 99999999999999999 strings")
    write("enterprise/formula_and_error_cells.xlsx", formula_cells(),
          "rows:3/1/2;row 3:invalid_number;row 4:invalid_date")
    write("enterprise/xfd1048576.xlsx", corner_cells(), "rows:2/1/1;row 1048576:missing_required")
    write("enterprise/rows_beyond_excel.xlsx", beyond_excel(),
          "rejected:beyond Excel's 1048576 rows")

    # Random bytes under each extension the readers take (a fixed seed: the same
    # bytes on every regeneration). None is a file of any format.
    import random
    rnd = random.Random(20261204)
    noise = bytes(rnd.randrange(256) for _ in range(4096))
    write("enterprise/noise.csv", noise, "rejected:noise.csv")
    write("enterprise/noise.tsv", noise, "rejected:noise.tsv")
    write("enterprise/noise.ndjson", noise, "rejected:noise.ndjson")
    write("enterprise/noise.xlsx", noise, "rejected:noise.xlsx")
    # A zip that is not a workbook, and a workbook cut in half.
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not a workbook")
    write("enterprise/not_a_workbook.xlsx", buf.getvalue(), "rejected:not_a_workbook.xlsx")
    whole = workbook(sheet({1: text_row(HEADER.split(",")), 2: text_row(row(230).split(","))}), EMPTY_SST)
    write("enterprise/cut_in_half.xlsx", whole[: len(whole) // 2], "rejected:cut_in_half.xlsx")
    # A zip bomb: a worksheet part that inflates a thousandfold. Its
    # ratio is far beyond any real workbook's.
    write("enterprise/zip_bomb.xlsx", zip_bomb(), "rejected:zip_bomb.xlsx")
    # An empty file, and a file of only a UTF-8 BOM.
    write("enterprise/empty.csv", b"", "rejected:the file is empty")
    write("enterprise/bom_only.csv", b"\xef\xbb\xbf", "rejected:the file is empty")
    # NUL bytes inside a cell: the row is read and its USCC rejected, the others load.
    lines = [HEADER, row(240), row(241).replace(uscc(241), uscc(241)[:9] + "\0\0" + uscc(241)[9:]), row(242)]
    write("enterprise/nul_bytes.csv", "\n".join(lines) + "\n", "rows:3/2/1;row 3:invalid_uscc")
    # A BOM in the middle of the file (two UTF-8 exports joined): the second BOM is
    # a zero-width no-break space at the start of a USCC, which NFKC keeps, so that
    # row's USCC is invalid and nothing is lost.
    lines = [HEADER, row(250), "\ufeff" + row(251), row(252)]
    write("enterprise/bom_mid_file.csv", "\ufeff" + "\n".join(lines) + "\n", "rows:3/2/1;row 3:invalid_uscc")
    # Numbers at the edge of every parser: 1e308, NaN, -0, a count past i64, a
    # decimal scale past i128, in a registered capital column.
    edge = ["1e308", "NaN", "-0", "9223372036854775808", "0." + "0" * 130, "-1e-200"]
    lines = [HEADER] + [row(260 + i).replace(",500,", f",{v},") for i, v in enumerate(edge)]
    write("enterprise/edge_numbers.csv", "\n".join(lines) + "\n",
          "rows:6/1/5;row 2:invalid_number;row 3:invalid_number;row 5:invalid_number;row 6:invalid_number;row 7:invalid_number")
    # An unclosed quote on the first data line: nothing after the header is data.
    lines = [HEADER, row(270, '"大同市')] + [row(i) for i in range(271, 400)]
    write("enterprise/unclosed_quote_first.csv", "\n".join(lines) + "\n",
          "rejected:line 2: a quoted field opened on this line is not closed")
    # Only a header.
    write("enterprise/header_only.csv", HEADER + "\n", "rows:0/0/0")

    with open(HERE / "expect.csv", "w", encoding="utf-8") as f:
        f.write("file,expect\n")
        for rel, what in expect:
            assert "," not in what, what
            f.write(f"{rel},{what}\n")


CT = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"""
RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"""
WB = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WB_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"""
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def workbook(sheet_xml, shared_xml):
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CT)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WB)
        z.writestr("xl/_rels/workbook.xml.rels", WB_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        z.writestr("xl/sharedStrings.xml", shared_xml)
    return buf.getvalue()


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def col(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def sheet(rows, dimension=None):
    """rows: {row_number: {col_index: cell xml body (attrs, inner)}}"""
    out = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {NS}>']
    if dimension:
        out.append(f'<dimension ref="{dimension}"/>')
    out.append("<sheetData>")
    for r in sorted(rows):
        out.append(f'<row r="{r}">')
        for c in sorted(rows[r]):
            attrs, inner = rows[r][c]
            out.append(f'<c r="{col(c)}{r}"{attrs}>{inner}</c>')
        out.append("</row>")
    out.append("</sheetData></worksheet>")
    return "".join(out)


def inline(s):
    return (' t="inlineStr"', f"<is><t>{esc(s)}</t></is>")


def num(x):
    return ("", f"<v>{x}</v>")


def text_row(values):
    return {i: inline(v) for i, v in enumerate(values) if v != ""}


def shared_strings_bomb():
    sst = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst {NS} count="99999999999999999" uniqueCount="99999999999999999"><si><t>a</t></si></sst>'
    return workbook(sheet({1: {0: ("", "<v>0</v>")}}), sst)


EMPTY_SST = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst {NS} count="0" uniqueCount="0"></sst>'


def formula_cells():
    rows = {1: text_row(HEADER.split(","))}
    rows[2] = text_row(row(200).split(","))
    # Row 3: 注册资本 (column G) is an error cell #DIV/0! with its formula.
    rows[3] = text_row(row(201).split(","))
    rows[3][6] = (' t="e"', "<f>1/0</f><v>#DIV/0!</v>")
    # Row 4: 成立日期 (column C) is a formula never computed: no cached value.
    rows[4] = text_row(row(202).split(","))
    rows[4][2] = ("", "<f>DATE(2015,3,1)</f>")
    return workbook(sheet(rows, "A1:H4"), EMPTY_SST)


def corner_cells():
    rows = {1: text_row(HEADER.split(",")), 2: text_row(row(210).split(","))}
    rows[1048576] = {16383: inline("x")}
    return workbook(sheet(rows, "A1:XFD1048576"), EMPTY_SST)


def beyond_excel():
    rows = {1: text_row(HEADER.split(",")), 2: text_row(row(220).split(","))}
    rows[1048577] = {0: num(1)}
    return workbook(sheet(rows), EMPTY_SST)


def zip_bomb():
    """A workbook whose worksheet part inflates to 64 MiB of blanks from about 64 KB (a ratio of 1,000)."""
    import io
    import zlib
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CT)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WB)
        z.writestr("xl/_rels/workbook.xml.rels", WB_RELS)
        z.writestr("xl/sharedStrings.xml", EMPTY_SST)
        head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {NS}><sheetData>'.encode()
        # Streamed, so that making the file does not need the gigabyte either.
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(head)
            block = b" " * (1 << 20)
            for _ in range(64):
                part.write(block)
            part.write(b"</sheetData></worksheet>")
    return buf.getvalue()


if __name__ == "__main__":
    main()
