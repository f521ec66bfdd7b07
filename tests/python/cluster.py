#!/usr/bin/env python3
"""The warehouse on S3-compatible object storage, and the marts on a Ballista cluster.

Starts, as separate processes on 127.0.0.1 (free ports): s3s-fs (an S3 server from
crates.io that stores real bytes in a folder), a `townstat scheduler` and two
`townstat executor`s. Then:

- builds the bundled sample into a local warehouse (the reference);
- builds it into s3://townstat/single with the local engine, and into
  s3://townstat/cluster with the marts built on the cluster (`run --cluster`);
- compares every mart of both with the reference, cell for cell (only `run_id`,
  which names the run, differs by design);
- runs a query with `sql --cluster` and through `serve --cluster` (psql) and compares
  it with the local answer; `maintain` on S3; the run lock on S3;
- kills one executor while a cluster run builds the marts: the run must either finish
  with the same marts, or fail with a clear error and leave the warehouse as it was.

    usage: cluster.py TOWNSTAT_BINARY S3S_FS_BINARY

Last line: "cluster: N passed, M failed"; exit status 1 when M > 0.
"""

import csv
import glob
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN, S3S = sys.argv[1], sys.argv[2]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AS_OF = "2026-01-15"
MARTS = sorted(os.path.basename(p)[:-4] for p in glob.glob(f"{REPO}/pipelines/marts/marts/*.sql"))
results = {"passed": 0, "failed": 0}
procs = []


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def start(args, log, env):
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(proc)
    return proc


def townstat(env, *args, check_rc=True):
    p = subprocess.run([BIN, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if check_rc and p.returncode not in (0, 3):
        raise RuntimeError(f"townstat {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return p


def table(env, warehouse, query, *extra):
    """A query's rows through `townstat sql --format csv`: header and sorted rows,
    without the run_id column."""
    out = townstat(env, "--warehouse", warehouse, "sql", "--format", "csv", *extra, query).stdout
    rows = list(csv.reader(io.StringIO(out)))
    if not rows:
        return [], []
    header, body = rows[0], rows[1:]
    keep = [i for i, h in enumerate(header) if h != "run_id"]
    return [header[i] for i in keep], sorted([r[i] for i in keep] for r in body)


def compare_marts(env, reference, other, label, *extra):
    for mart in MARTS:
        want = table(env, reference, f"SELECT * FROM {mart}")
        got = table(env, other, f"SELECT * FROM {mart}", *extra)
        diff = "" if want == got else first_difference(want, got)
        check(f"{label}: {mart} equals the local build ({len(want[1])} rows)", want == got, diff)


def first_difference(want, got):
    if want[0] != got[0]:
        return f"columns {want[0]} vs {got[0]}"
    if len(want[1]) != len(got[1]):
        return f"{len(want[1])} rows vs {len(got[1])}"
    for a, b in zip(want[1], got[1]):
        if a != b:
            return f"row {a} vs {b}"
    return "?"


def runs(env, warehouse):
    return table(env, warehouse, "SELECT run_id, status FROM run")[1]


def main():
    work = tempfile.mkdtemp(prefix="townstat-cluster-")
    s3_root = os.path.join(work, "s3")
    os.makedirs(os.path.join(s3_root, "townstat"))
    s3_port, sched_port = free_port(), free_port()
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    env.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}",
        AWS_ALLOW_HTTP="true",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="townstat-test",
        AWS_SECRET_ACCESS_KEY="townstat-test-secret",
    )
    logs = {name: open(os.path.join(work, f"{name}.log"), "w")
            for name in ("s3", "scheduler", "executor1", "executor2")}
    try:
        s3 = start([S3S, "--host", "127.0.0.1", "--port", str(s3_port),
                    "--access-key", env["AWS_ACCESS_KEY_ID"],
                    "--secret-key", env["AWS_SECRET_ACCESS_KEY"], s3_root], logs["s3"], env)
        wait_port(s3_port, s3, "s3s-fs")

        local = os.path.join(work, "local")
        ref = townstat(env, "--warehouse", local, "run", "pipelines/nightly.toml", "--as-of", AS_OF)

        # The warehouse on S3, built by this process.
        single = "s3://townstat/single"
        p = townstat(env, "--warehouse", single, "run", "pipelines/nightly.toml", "--as-of", AS_OF)
        check("run on S3 exits as the local run does", p.returncode == ref.returncode,
              f"{p.returncode} vs {ref.returncode}")
        check("the run's tables are real objects in the bucket",
              len(glob.glob(f"{s3_root}/townstat/single/tables/*/_delta_log/*.json")) > 20)
        check("the run released its lock object",
              not os.path.exists(f"{s3_root}/townstat/single/_run.lock"))
        latest = open(f"{s3_root}/townstat/single/exports/LATEST").read().strip()
        check("exports: LATEST names a folder with the town_year Parquet",
              os.path.exists(f"{s3_root}/townstat/single/exports/{latest}/town_year/town_year.parquet"))
        compare_marts(env, local, single, "S3")

        # The run lock on S3: a lock object held by another run stops a second one.
        with open(f"{s3_root}/townstat/single/_run.lock", "w") as f:
            f.write("run other, pid 1")
        p = townstat(env, "--warehouse", single, "run", "pipelines/nightly.toml",
                     "--as-of", AS_OF, check_rc=False)
        check("a held lock on S3 stops a second run (exit 1, names the holder)",
              p.returncode == 1 and "run other, pid 1" in p.stderr, p.stderr[-300:])
        os.remove(f"{s3_root}/townstat/single/_run.lock")

        p = townstat(env, "--warehouse", single, "maintain", check_rc=False)
        check("maintain on S3", p.returncode == 0, p.stderr[-300:])
        compare_marts(env, local, single, "S3 after maintain")

        # The cluster: a scheduler and two executors, each its own process.
        scheduler = start([BIN, "scheduler", "--listen", f"127.0.0.1:{sched_port}",
                           "--executor-timeout", "10s"], logs["scheduler"], env)
        wait_port(sched_port, scheduler, "the scheduler")
        executors = []
        for i in (1, 2):
            port = free_port()
            executors.append(start(
                [BIN, "executor", "--scheduler", f"127.0.0.1:{sched_port}",
                 "--listen", f"127.0.0.1:{port}", "--tasks", "1", "--memory", "512MiB",
                 "--work-dir", os.path.join(work, f"executor{i}")],
                logs[f"executor{i}"], env))
            wait_port(port, executors[-1], f"executor {i}")
        url = f"df://127.0.0.1:{sched_port}"

        clustered = "s3://townstat/cluster"
        p = townstat(env, "--warehouse", clustered, "run", "--cluster", url,
                     "pipelines/nightly.toml", "--as-of", AS_OF)
        check("run --cluster exits as the local run does", p.returncode == ref.returncode,
              f"{p.returncode} vs {ref.returncode}")
        scratch = [f for f in glob.glob(f"{s3_root}/townstat/cluster/_scratch/**", recursive=True)
                   if os.path.isfile(f)]
        check("the cluster build's scratch results are deleted", not scratch, str(scratch[:3]))
        compare_marts(env, local, clustered, "marts built on the cluster")
        compare_marts(env, local, clustered, "marts read through sql --cluster", "--cluster", url)

        query = ("SELECT t.name, y.year, y.revenue, y.enterprises_end FROM town_year y "
                 "JOIN town t ON t.town_id = y.town_id WHERE y.year >= 2020")
        want = table(env, local, query)
        got = table(env, clustered, query, "--cluster", url)
        check("a join through sql --cluster equals the local answer", want == got and want[1],
              first_difference(want, got))

        # serve --cluster: psql's catalog commands stay local, data queries go to the cluster.
        serve = subprocess.Popen(
            [BIN, "--warehouse", clustered, "serve", "--listen", "127.0.0.1:0", "--cluster", url],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(serve)
        line = serve.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0]) if "127.0.0.1:" in line else None
        check("serve --cluster starts", port is not None, line)
        if port:
            psql = ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "townstat", "-d", "townstat",
                    "-X", "-A", "-t", "-F", ","]
            sql_ = ("SELECT t.name, y.year, y.revenue, y.enterprises_end FROM town_year y "
                    "JOIN town t ON t.town_id = y.town_id WHERE y.year >= 2020")
            p = subprocess.run([*psql, "-c", sql_], capture_output=True, text=True, env=env)
            rows = sorted(list(csv.reader(io.StringIO(p.stdout.strip())))) if p.stdout.strip() else []
            check("psql through serve --cluster gets the local answer", rows == want[1],
                  (p.stderr or first_difference(want, (want[0], rows)))[-300:])
            p = subprocess.run([*psql, "-c", "\\dt"], capture_output=True, text=True, env=env)
            check("psql \\dt (catalog, answered by the server) works with --cluster",
                  p.returncode == 0 and "town_year" in p.stdout, p.stderr[-300:])
            serve.terminate()
            serve.wait(timeout=10)

        # One executor killed while a cluster run builds the marts.
        before = runs(env, clustered)
        run = subprocess.Popen(
            [BIN, "--warehouse", clustered, "run", "--force", "--cluster", url,
             "pipelines/nightly.toml", "--as-of", AS_OF],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(run)
        deadline = time.time() + 300
        while time.time() < deadline and run.poll() is None:
            if [f for f in glob.glob(f"{s3_root}/townstat/cluster/_scratch/*/*") if os.path.isfile(f)]:
                break
            time.sleep(0.05)
        killed = run.poll() is None
        executors[0].send_signal(signal.SIGKILL)
        executors[0].wait(timeout=10)
        check("an executor was killed while the marts were being built", killed)
        out, err = run.communicate(timeout=600)
        after = runs(env, clustered)
        if run.returncode in (0, 3):
            check("after the kill the run finished on the other executor", len(after) == len(before) + 1)
            compare_marts(env, local, clustered, "marts rebuilt with one executor killed")
        else:
            check("after the kill the run failed with a clear error and committed nothing",
                  after == before and "Error:" in err, err[-500:])
            compare_marts(env, local, clustered, "marts unchanged after the failed run")
        print(f"(executor kill: run exited {run.returncode}; {err.strip().splitlines()[-1] if err.strip() else ''})")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs.values():
            log.close()
        if results["failed"]:
            for name in logs:
                path = os.path.join(work, f"{name}.log")
                print(f"--- {name} log (last lines) ---")
                print("".join(open(path, errors="replace").readlines()[-15:]))
        shutil.rmtree(work, ignore_errors=True)
    print(f"cluster: {results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
