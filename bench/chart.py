#!/usr/bin/env python3
"""Draw the benchmark results as one chart of ratios (Debian's python3-matplotlib).

    python3 bench/chart.py [--net FILE] [--core FILE] [--v3 FILE] [--framework FILE] [-o docs/bench.svg]

Reads the JSON that net.py, run.py and framework.py (--json) write; any of
them may be missing (its panel is left out). Left: the network tests, each
server's round trips (requests) per server CPU-second divided by the C epoll
server's (1.0 = the C server). Middle: the core workloads, each loop's figure
against asyncio's, "times better" as in run.py's table (log scale; 2.0
workloads as uasyncio, the --v3 ones as uasyncio.v3). Right: the framework
app (framework.py), requests per server CPU-second against asyncio's.
`make chart` draws it from bench/results/, which `make bench` fills.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
sys.dont_write_bytecode = True

COLORS = {"uasyncio 2.0": "#1f77b4", "uasyncio.v3": "#17becf", "asyncio": "#7f7f7f",
          "uvloop": "#ff7f0e", "C epoll server": "#2ca02c", "uasyncio (2.0 / v3)": "#1f77b4"}
# The core panel: each workload's group names its API, so one series.
CORE_NAMES = {"uasyncio": "uasyncio (2.0 / v3)", "v3": "uasyncio (2.0 / v3)"}
NET_NAMES = {"uasyncio": "uasyncio 2.0", "v3": "uasyncio.v3", "asyncio": "asyncio",
             "uvloop": "uvloop", "c": "C epoll server"}


def load(path):
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def net_ratios(doc):
    """{test label: {series: per-CPU-s / C's}} for the echo and http tests."""
    out = {}
    for r in doc["results"]:
        if r["test"] not in ("echo", "http") or r.get("per_cpu_s") is None:
            continue
        out.setdefault("%s %s" % (r["test"], r["config"]), {})[r["server"]] = r["per_cpu_s"]
    ratios = {}
    for label, by in out.items():
        if by.get("c"):
            ratios[label] = {NET_NAMES[k]: v / by["c"] for k, v in by.items() if k in NET_NAMES}
    return ratios


def core_ratios(doc, better):
    """{workload: {series: times better than asyncio}} (idle left out: its
    figures are set-up noise)."""
    by = {}
    for r in doc["results"]:
        if r.get("value") and r["workload"] != "idle":
            by.setdefault(r["workload"], {})[r["loop"]] = r["value"]
    ratios = {}
    for name, vals in by.items():
        ref = vals.get("asyncio")
        if ref:
            hib = better.get(name, True)
            ratios[name] = {CORE_NAMES.get(k, k): (v / ref if hib else ref / v) for k, v in vals.items()}
    return ratios


def framework_ratios(doc):
    """{handler config: {series: per-CPU-s / asyncio's}}."""
    by = {}
    for r in doc["results"]:
        if r.get("per_cpu_s"):
            by.setdefault(r["config"], {})[r["server"]] = r["per_cpu_s"]
    return {config: {NET_NAMES[k]: v / vals["asyncio"] for k, v in vals.items() if k in NET_NAMES}
            for config, vals in by.items() if vals.get("asyncio")}


def bars(ax, groups, series, title, ylabel, log=False, ref_line=1.0):
    import numpy as np
    labels = list(groups)
    present = [s for s in series if any(s in groups[g] for g in labels)]
    width = 0.8 / max(1, len(present))
    x = np.arange(len(labels))
    for i, s in enumerate(present):
        vals = [groups[g].get(s, 0) for g in labels]
        rects = ax.bar(x - 0.4 + width * (i + 0.5), vals, width, label=s, color=COLORS.get(s))
        ax.bar_label(rects, ["%.2f" % v if v else "" for v in vals], fontsize=6, rotation=90, padding=2)
    ax.axhline(ref_line, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.15)
    # Below the axes, where no bar can be hidden behind it.
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(present), frameon=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", default=os.path.join(RESULTS, "net.json"))
    ap.add_argument("--core", default=os.path.join(RESULTS, "core.json"))
    ap.add_argument("--v3", default=os.path.join(RESULTS, "core-v3.json"))
    ap.add_argument("--framework", default=os.path.join(RESULTS, "framework.json"))
    ap.add_argument("-o", "--out", default=os.path.join(os.path.dirname(HERE), "docs", "bench.svg"))
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "uasyncio-bench"   # the same data gives the same file
    import matplotlib.pyplot as plt

    net, core, v3, fw = load(args.net), load(args.core), load(args.v3), load(args.framework)
    panels = []
    if net:
        panels.append(("net", net_ratios(net)))
    if core or v3:
        from workloads import WORKLOADS
        from v3_workloads import WORKLOADS as V3_WORKLOADS
        groups = {}
        for doc, wl, tag in ((core, WORKLOADS, "2.0"), (v3, V3_WORKLOADS, "v3")):
            if doc:
                better = {k: w["higher_is_better"] for k, w in wl.items()}
                for name, vals in core_ratios(doc, better).items():
                    groups["%s (%s)" % (name, tag)] = vals
        panels.append(("core", groups))
    if fw:
        panels.append(("framework", framework_ratios(fw)))
    if not panels:
        print("chart.py: no results (run make bench, or pass --net/--core/--v3/--framework)", file=sys.stderr)
        return 1

    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.0), squeeze=False)
    for ax, (kind, groups) in zip(axes[0], panels):
        if kind == "net":
            bars(ax, groups, list(COLORS), "Network servers: work per server CPU-second",
                 "x the C epoll server (1.0 = C)")
        elif kind == "core":
            bars(ax, groups, ["uasyncio (2.0 / v3)", "asyncio", "uvloop"],
                 "Core workloads", "x asyncio (times better; log scale)", log=True)
        else:
            bars(ax, groups, ["uasyncio.v3", "asyncio", "uvloop"],
                 "HTTP/1.1 framework app: requests per server CPU-second", "x asyncio")
    stamp = (net or core or v3 or fw)["meta"]
    fig.suptitle("uasyncio in C vs asyncio, uvloop and a C epoll server (median of %s, %s, %s)"
                 % (stamp.get("repeat", 1), stamp.get("host", "?"), stamp.get("time", "?")[:10]), fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, metadata={"Date": None} if args.out.endswith(".svg") else None)
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    sys.exit(main())
