#!/usr/bin/env python3
"""The ingest peers against townstat on edge cases the generator does not write: a copy
of tiny generated data plus a CSV with title and blank rows, CRLF line ends, a ragged
row, a quoted line break, full-width text and a duplicate in another date style; and
files that must be rejected whole (a missing required column, a malformed JSON line,
UTF-16). Runs townstat and both peers on it and compares (ingest_peers.py compare);
exit 1 on any difference.

usage: edge_cases.py [--townstat BIN] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KINDS = ["enterprise", "enterprise_annual", "designation", "employment", "patent", "financing"]

EDGE_CSV = [
    "大同市市场主体登记（测试）,,,,", ",,,,", "统一社会信用代码,企业名称,成立日期,住所,行业代码",
    "91140213MA6JCP0C8Y,大同（测试）有限公司,2020-01-01,山西省大同市平城区Ａ路１号,C3091",
    ",,,,",
    '91140212118984068H,大同乙公司,2021/3/4,"南郊区\n口泉乡",3091',
    "91140212118984068H,大同乙公司,2021-03-04,南郊区 口泉乡,3091 石墨及碳素制品制造",
    "9114021211898406XX,短行",
    "  ,  ,,,",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--townstat", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "townstat"))
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="townstat-edge-"))
    if work.exists():
        shutil.rmtree(work)
    data = work / "data"
    subprocess.run([args.townstat, "generate", "--out", str(data), "--scale", "0.05", "--seed", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    (data / "enterprise" / "registry_08_missing.csv").write_text(
        "统一社会信用代码,成立日期,行业代码\n91310110666007217T,2020-01-01,3091\n")
    with open(data / "enterprise" / "registry_09_edge.csv", "w", newline="") as f:
        f.write("\r\n".join(EDGE_CSV) + "\r\n")
    (data / "patent" / "patent_06_bad.ndjson").write_text('{"application_no":"201710601862.3"}\n{not json\n')
    (data / "financing" / "financing_06_utf16.csv").write_bytes("编号,统一社会信用代码\n".encode("utf-16"))
    pipeline = work / "pipeline.toml"
    lines = [f'enums = "{ROOT}/pipelines/enums.toml"', f'towns = "{data}/towns.csv"',
             f'evaluation = "{ROOT}/pipelines/evaluation.toml"', f'targets = "{ROOT}/pipelines/targets.toml"']
    for k in KINDS:
        lines += ["[[source]]", f'name = "{k}"', f'kind = "{k}"', f'glob = ["{data}/{k}/*"]']
    pipeline.write_text("\n".join(lines) + "\n")
    status = subprocess.run([args.townstat, "--warehouse", str(work / "wh"), "run", str(pipeline),
                             "--as-of", "2026-01-15"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    if status not in (0, 3):  # 3: finished with files rejected whole, as intended here
        print(f"townstat run failed with exit status {status}", file=sys.stderr)
        return 1
    same = True
    for engine in ("duckdb", "polars"):
        out = work / f"peer-{engine}"
        subprocess.run([sys.executable, str(HERE / "ingest_peers.py"), "run", engine, str(data), str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        r = subprocess.run([sys.executable, str(HERE / "ingest_peers.py"), "compare", str(out), str(work / "wh"),
                            "--markdown"], capture_output=True, text=True)
        print(f"## {engine}\n{r.stdout}")
        same &= r.returncode == 0
    if not args.keep:
        shutil.rmtree(work)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
