#!/usr/bin/env python3
"""`to_char`, `to_date` and `to_timestamp` with PostgreSQL's patterns: the same
expressions run in a real PostgreSQL (a throwaway cluster of the Debian `postgresql`
package, on a Unix socket only) and in `townstat sql`, compared text for text.

    usage: pg_dates.py WAREHOUSE TOWNSTAT_BINARY

Last line: "pg_dates: N passed, M failed"; exit status 1 when M > 0.
"""

import csv
import glob
import io
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

WAREHOUSE, BIN = sys.argv[1], sys.argv[2]
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


# Each expression yields text in both engines (timestamps go through to_char, so that
# neither side's display of a timestamp matters).
EXPRESSIONS = [
    "to_char(DATE '2025-03-09', 'YYYY-MM-DD')",
    "to_char(DATE '2025-03-09', 'yyyy-mm-dd')",
    "to_char(DATE '2025-03-09', 'Q')",
    "to_char(DATE '2025-12-31', 'YYYY\"年第\"Q\"季度\"')",
    "to_char(DATE '2025-03-09', 'Month DD, YYYY')",
    "to_char(DATE '2025-03-09', 'FMMonth FMDD')",
    "to_char(DATE '2025-03-09', 'MONTH mon Mon')",
    "to_char(DATE '2025-03-09', 'Day DY dy')",
    "to_char(DATE '2025-03-09', 'D ID DDD WW IW IYYY CC')",
    "to_char(DATE '2024-12-30', 'IYYY-IW ID')",
    "to_char(DATE '2021-01-01', 'IYYY-IW WW')",
    "to_char(DATE '2025-03-09', 'YY YYY Y')",
    "to_char(TIMESTAMP '2025-03-09 14:05:07.123456', 'YYYY-MM-DD HH24:MI:SS.US')",
    "to_char(TIMESTAMP '2025-03-09 14:05:07.123456', 'HH12:MI AM MS')",
    "to_char(TIMESTAMP '2025-03-09 00:05:07', 'HH12 am a.m. P.M.')",
    "to_char(TIMESTAMP '2025-03-09 12:00:00', 'HH:MI PM')",
    "to_char(to_date('2015-01-01', 'YYYY-MM-DD'), 'YYYY-MM-DD')",
    "to_char(to_date('2015-1-5', 'YYYY-MM-DD'), 'YYYY-MM-DD')",
    "to_char(to_date('2015/06/30', 'YYYY-MM-DD'), 'YYYY-MM-DD')",
    "to_char(to_date('20150630', 'YYYYMMDD'), 'YYYY-MM-DD')",
    "to_char(to_date('2015', 'YYYY'), 'YYYY-MM-DD')",
    "to_char(to_date('05 Dec 2000', 'DD Mon YYYY'), 'YYYY-MM-DD')",
    "to_char(to_date('December 5, 2000', 'Month DD, YYYY'), 'YYYY-MM-DD')",
    "to_char(to_date('2025年3月9日', 'YYYY\"年\"MM\"月\"DD\"日\"'), 'YYYY-MM-DD')",
    "to_char(to_date('2015-01-01 23:59', 'YYYY-MM-DD'), 'YYYY-MM-DD')",
    "to_char(to_date('15-06-30', 'YY-MM-DD'), 'YYYY-MM-DD')",
    "to_char(to_date('2015 060', 'YYYY DDD'), 'YYYY-MM-DD')",
    "to_char(to_timestamp('2015-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US'), "
    "'YYYY-MM-DD HH24:MI:SS.US')",
    "to_char(to_timestamp('2015-01-01', 'YYYY-MM-DD'), 'YYYY-MM-DD HH24:MI:SS')",
    "to_char(to_timestamp('2015-01-01 13:04:05.5', 'YYYY-MM-DD HH24:MI:SS.US'), "
    "'YYYY-MM-DD HH24:MI:SS.US')",
    # A timestamp here has nanoseconds (years 1677 to 2262), so the texts carry a
    # year: PostgreSQL's default of year 1 is outside that range.
    "to_char(to_timestamp('2015 12.3', 'YYYY SS.MS'), 'HH24:MI:SS.MS')",
    "to_char(to_timestamp('2015 07:30:15 PM', 'YYYY HH12:MI:SS AM'), 'HH24:MI:SS')",
    "to_char(to_timestamp('2015-01-01T08:09:10', 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
    "'YYYY-MM-DD HH24:MI:SS')",
]


def postgres_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("pg_dates: no PostgreSQL server (Debian package `postgresql`)")
    return os.path.dirname(found[-1])


class Postgres:
    """A throwaway cluster listening on a Unix socket in a temporary folder only."""

    def __init__(self, tmp):
        self.bin = postgres_bin()
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(self.dir)
        self.as_user = []
        # PostgreSQL refuses to run as root: the cluster belongs to the package's user.
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chmod(tmp, 0o755)
            for d in (tmp, self.dir):
                os.chown(d, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.run("initdb", "-D", self.dir + "/data", "-A", "trust", "-U", "postgres",
                 "--no-sync", "-E", "UTF8", "--locale", "C")
        self.run("pg_ctl", "-D", self.dir + "/data", "-w", "-l", self.dir + "/log", "-o",
                 f"-c listen_addresses='' -k {self.dir} -c TimeZone=UTC", "start")

    def run(self, tool, *args):
        subprocess.run(self.as_user + [os.path.join(self.bin, tool), *args], check=True,
                       stdout=subprocess.DEVNULL)

    def value(self, expr):
        out = subprocess.run(
            ["psql", "-h", self.dir, "-U", "postgres", "-d", "postgres", "-AtX", "-c",
             f"SELECT {expr}"], capture_output=True, text=True)
        return out.stdout.rstrip("\n") if out.returncode == 0 else "ERROR " + out.stderr.strip()

    def stop(self):
        self.run("pg_ctl", "-D", self.dir + "/data", "-m", "immediate", "stop")


def townstat(query):
    out = subprocess.run([BIN, "--warehouse", WAREHOUSE, "sql", query, "--format", "csv"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip()
    return list(csv.reader(io.StringIO(out.stdout)))[1:], ""


def main():
    tmp = tempfile.mkdtemp(prefix="townstat-pg-")
    pg = Postgres(tmp)
    try:
        # One query for every expression: one process, one plan.
        select = ", ".join(f"{e} AS e{i}" for i, e in enumerate(EXPRESSIONS))
        rows, err = townstat(f"SELECT {select}")
        ours = rows[0] if rows else [f"ERROR {err}"] * len(EXPRESSIONS)
        for expr, got in zip(EXPRESSIONS, ours):
            want = pg.value(expr)
            check(expr, got == want, f"townstat {got!r}, PostgreSQL {want!r}")
        # PostgreSQL raises an error for an impossible date; so does townstat.
        want = pg.value("to_date('2015-02-30', 'YYYY-MM-DD')")
        _, err = townstat("SELECT to_date('2015-02-30', 'YYYY-MM-DD')")
        check("an impossible date is an error in both", want.startswith("ERROR") and
              "out of range" in err, f"PostgreSQL {want!r}, townstat {err!r}")
        # The filter Superset sends, on a real table, against the plain comparison.
        rows, err = townstat(
            "SELECT (SELECT count(*) FROM enterprise WHERE established_on >= "
            "TO_DATE('2015-01-01', 'YYYY-MM-DD')) AS a, (SELECT count(*) FROM enterprise WHERE "
            "established_on >= DATE '2015-01-01') AS b, (SELECT count(*) FROM enterprise WHERE "
            "established_on >= TO_TIMESTAMP('2015-01-01 00:00:00.000000', "
            "'YYYY-MM-DD HH24:MI:SS.US') AND established_on < TO_TIMESTAMP("
            "'2020-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')) AS c, (SELECT count(*) "
            "FROM enterprise WHERE established_on >= DATE '2015-01-01' AND established_on "
            "< DATE '2020-01-01') AS d")
        ok = rows is not None and rows[0][0] == rows[0][1] and rows[0][2] == rows[0][3] \
            and int(rows[0][1]) > 0
        check("date filters with PostgreSQL patterns select the same rows", ok, f"{rows} {err}")
        # chrono's patterns keep DataFusion's meaning.
        rows, err = townstat("SELECT to_char(DATE '2025-03-09', '%Y/%m/%d'), "
                             "to_date('09.03.2025', '%d.%m.%Y')")
        check("a pattern with % is DataFusion's", rows == [["2025/03/09", "2025-03-09"]],
              f"{rows} {err}")
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"pg_dates: {results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
