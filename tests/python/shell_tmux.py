#!/usr/bin/env python3
"""The interactive SQL shell (`townstat sql` on a terminal), typed into through tmux
and read off the screen, as a person uses it: a mistyped table or column gets the
closest names and the shell stays, `\\d` shows SQL types, `\\x` expands rows, a long
result goes through $PAGER, Ctrl-C cancels a running statement and the prompt comes
back, the history is on disk after each statement.

    usage: shell_tmux.py WAREHOUSE TOWNSTAT_BINARY

Last line: "shell_tmux: N passed, M failed"; exit status 1 when M > 0.
"""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

WAREHOUSE, BIN = sys.argv[1], sys.argv[2]
results = {"passed": 0, "failed": 0}
SESSION = f"townstat-shell-{os.getpid()}"


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True)


def screen():
    return tmux("capture-pane", "-p", "-t", SESSION, "-S", "-200").stdout


def alive():
    return tmux("has-session", "-t", SESSION).returncode == 0


def wait_for(predicate, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        text = screen()
        if predicate(text):
            return True, text
        time.sleep(0.2)
    return False, screen()


def prompts(text):
    # capture-pane drops trailing spaces: the prompt is "townstat>" at a line's end.
    return sum(1 for line in text.splitlines() if line.startswith("townstat>"))


def type_line(line):
    """Types a line and waits until a new prompt follows it (the answer is complete)."""
    before = prompts(screen())
    send(line)
    tmux("send-keys", "-t", SESSION, "Enter")
    ok, text = wait_for(lambda t: prompts(t) > before)
    return ok, text


def send(text):
    """Types text as it is. tmux reads an argument's trailing ';' as its own command
    separator: it is escaped as tmux asks (`\\;`)."""
    if text.endswith(";"):
        text = text[:-1] + "\\;"
    tmux("set-buffer", "-b", "townstat", "--", text)
    tmux("paste-buffer", "-b", "townstat", "-t", SESSION, "-d")


def clear():
    tmux("send-keys", "-t", SESSION, "C-l")
    tmux("clear-history", "-t", SESSION)
    time.sleep(0.3)


def main():
    tmp = tempfile.mkdtemp(prefix="townstat-shell-")
    paged = os.path.join(tmp, "paged.txt")
    env = {
        "HOME": tmp,
        "TOWNSTAT_WAREHOUSE": WAREHOUSE,
        # The pager is run by `sh -c`, as psql runs it: here it keeps what it was given.
        "PAGER": f"cat >> {shlex.quote(paged)}",
        "TERM": "xterm",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    command = " ".join(["env", "-i"] + [f"{k}={shlex.quote(v)}" for k, v in env.items()]
                       + [shlex.quote(BIN), "sql"])
    tmux("kill-session", "-t", SESSION)
    started = tmux("new-session", "-d", "-s", SESSION, "-x", "140", "-y", "40", command)
    if started.returncode != 0:
        sys.exit(f"shell_tmux: tmux did not start: {started.stderr}")
    try:
        ok, text = wait_for(lambda t: prompts(t) > 0)
        check("the shell starts and prompts", ok, text[-500:])

        ok, text = type_line("\\d twn_year")
        check("\\d of a mistyped table: the closest name, and the shell stays",
              ok and "did you mean town_year" in text and alive(), text[-600:])

        ok, text = type_line("SELECT revenu FROM town_year;")
        check("a mistyped column: the closest name, not every column",
              ok and ("Did you mean 'town_year.revenue'" in text or "Closest columns:" in text)
              and "Valid fields are" not in text, text[-800:])

        ok, text = type_line("SELECT * FROM nosuch_table;")
        check("a statement's error keeps the shell", ok and "Error:" in text and alive(),
              text[-400:])

        clear()
        ok, text = type_line("\\d town_year")
        shown = open(paged, encoding="utf-8").read() if os.path.exists(paged) else ""
        check("\\d TABLE taller than the screen goes through $PAGER",
              ok and "revenue" in shown and "revenue " not in text.split("\\d town_year")[-1],
              f"paged {len(shown)} bytes; screen {text[-300:]!r}")
        check("\\d shows SQL types (text, integer, numeric(20,2)), not Arrow's",
              "numeric(20,2)" in shown and "| text" in shown and "Utf8" not in shown
              and "Decimal128" not in shown, shown[:600])

        clear()
        type_line("\\x")
        ok, text = type_line("SELECT town_id, year FROM town_year ORDER BY town_id, year LIMIT 1;")
        check("\\x shows a row as one line per column",
              ok and "-[ RECORD 1 ]" in text and "town_id | " in text and "year    | " in text,
              text[-400:])
        type_line("\\x")

        clear()
        slow = "SELECT sum(v) FROM generate_series(1, 50000000000) AS t(v);"
        before = prompts(screen())
        send(slow)
        tmux("send-keys", "-t", SESSION, "Enter")
        time.sleep(3)
        running = prompts(screen()) == before
        t0 = time.time()
        tmux("send-keys", "-t", SESSION, "C-c")
        ok, text = wait_for(lambda t: prompts(t) > before, seconds=20)
        took = time.time() - t0
        check("Ctrl-C cancels a running statement and the prompt comes back",
              running and ok and "canceling statement" in text and alive() and took < 10,
              f"running={running} back after {took:.1f} s: {text[-400:]}")
        ok, text = type_line("SELECT 41 + 1 AS answer;")
        check("the next statement runs at once", ok and "42" in text, text[-300:])

        history = os.path.join(tmp, ".townstat_history")
        saved = open(history, encoding="utf-8").read() if os.path.exists(history) else ""
        check("the history is on disk after each statement (before quitting)",
              "SELECT 41 + 1 AS answer;" in saved and "\\d twn_year" in saved, saved[-300:])

        send("\\q")
        tmux("send-keys", "-t", SESSION, "Enter")
        ok, _ = wait_for(lambda t: not alive(), seconds=10) if alive() else (True, "")
        check("\\q ends the shell", not alive())
    finally:
        tmux("kill-session", "-t", SESSION)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"shell_tmux: {results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
