"""Helpers shared by the benchmark runners (run.py, net.py, queue_bench.py):
child-process environment, command-line lists, number formatting, the
--repeat median, aligned text tables and the --json document.

Not to be confused with bench/servers/common.py, which the benchmark servers
import (they run with bench/servers first on sys.path).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")


# ------------------------------------------------------------ child processes

def child_env():
    """os.environ with the repository root first on PYTHONPATH (so that
    `import uasyncio` finds the in-tree build) and no bytecode written."""
    env = dict(os.environ)
    parts = [ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def probe_python(code, cwd=None):
    """Run `code` under $PYTHON: (True, its last line of output) if it
    succeeds, else (False, the last line of its error output)."""
    try:
        p = subprocess.run([PYTHON, "-c", code], env=child_env(), cwd=cwd, capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    lines = (p.stdout if p.returncode == 0 else p.stderr).strip().splitlines()
    if p.returncode == 0:
        return True, lines[-1] if lines else ""
    return False, lines[-1] if lines else "exit status %d" % p.returncode


def available(names, probe, skip_format):
    """Probe each of `names`, printing what was found; returns (the names
    that can run, {name: why not} for the others). `skip_format` % (name,
    why, hint) is the line printed for one that cannot."""
    ok_names, skipped = [], {}
    for name in names:
        ok, why = probe(name)
        if ok:
            ok_names.append(name)
            print("  %-8s %s" % (name, why))
        else:
            skipped[name] = why
            hint = " (build it: make -C %s build)" % ROOT if name in ("uasyncio", "v3") else ""
            print(skip_format % (name, why, hint))
    return ok_names, skipped


# ---------------------------------------------------------------- command line

def csv_list(text, allowed, what):
    """argparse type: a comma-separated list, each item one of `allowed`."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            "unknown %s %s (choose from %s)" % (what, ", ".join(bad) or "(none)", ", ".join(allowed)))
    return items


# ------------------------------------------------------------------- results

def combine(runs, median_value=True):
    """One record from --repeat runs: the run whose value is the median
    (closest to it for even counts), all runs kept under "runs". With
    `median_value`, its "value" is the median itself. Any failed run makes
    the whole entry a failure, so none goes unnoticed."""
    if len(runs) == 1:
        return runs[0]
    failed = [r for r in runs if "error" in r]
    if failed:
        return dict(failed[0], runs=runs)
    med = statistics.median(r["value"] for r in runs)
    best = min(runs, key=lambda r: abs(r["value"] - med))
    if median_value:
        return dict(best, value=med, runs=runs)
    return dict(best, runs=runs)


def describe(rec):
    """A run's record in a few words, for the progress lines."""
    if "error" in rec:
        return "ERROR: " + rec["error"]
    return (fmt_num(rec.get("value")) + " " + rec.get("unit", "")).rstrip()


def take_turns(name, runners, rounds, show=describe):
    """Run each of runners ({who: fn() -> record}) `rounds` times, taking
    turns (a, b, ..., a, b, ...) so that a machine whose speed drifts over
    minutes weighs on all of them alike; progress on stderr. Returns
    {who: [records]}."""
    runs = {who: [] for who in runners}
    for i in range(rounds):
        for who, run in runners.items():
            print("  %-14s on %-8s (%d/%d) ..." % (name, who, i + 1, rounds), end="", file=sys.stderr, flush=True)
            rec = run()
            runs[who].append(rec)
            print(" " + show(rec), file=sys.stderr, flush=True)
    return runs


def write_json(path, meta, results):
    """Write {"meta": meta + host, machine and time, "results": results}."""
    doc = {
        "meta": dict(meta, host=platform.node(), machine=platform.machine(),
                     time=time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "results": results,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote %s" % path)


# ---------------------------------------------------------------- formatting

def fmt_num(x):
    """Compact number: 4 significant digits, k/M suffixes for big ones."""
    if x is None:
        return "-"
    ax = abs(x)
    if ax >= 1e6:
        return "%.3g M" % (x / 1e6)
    if ax >= 1e4:
        return "%.4g k" % (x / 1e3)
    if ax >= 100:
        return "%.0f" % x
    return "%.4g" % x


def ratio(value, ref, higher_is_better=True):
    """How many times better `value` is than `ref` (>1: better, <1: worse)."""
    if value is None or ref is None or value <= 0 or ref <= 0:
        return None
    return value / ref if higher_is_better else ref / value


def fmt_ratio(r):
    return "-" if r is None else "%.2fx" % r


def render(head, rows, left=(0,), group_gap=True):
    """An aligned text table: columns whose index is in `left` left-aligned,
    the others right-aligned; with `group_gap`, a blank line wherever the
    first column changes."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    prev = None
    for row in rows:
        if group_gap and prev is not None and row[0] != prev:
            out.append("")
        out.append(line(row))
        prev = row[0]
    return "\n".join(out)

