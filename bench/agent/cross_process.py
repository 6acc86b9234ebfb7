"""Cross-process agreement of agent measurements (issue #13, "Measurements that agree across
processes"): N separate `maplex-agent --measure_only` processes measure the same architecture
list, one after another; for each later process, the per-architecture ratio of its median to the
first process's. Also, within one process, the list measured twice (second pass / first pass).

Usage: /usr/bin/python3 bench/agent/cross_process.py [--runtimes eigen,onednn] [--processes 3]
           [--archs 20] [--seed 13] [--threads 1] [--busy 0] [--within]
           [--agent_args "--pin_threads=false ..."]
--busy N starts N busy-loop processes (one core each, `while True: pass`) for the whole run: the
"machine is rarely idle" condition. Prints Markdown tables with the load average before and after.
Needs build/bin (scripts/build)."""

import argparse
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

BIN_DIR = os.environ.get("MAPLEX_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..",
                                                        "build", "bin"))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def quantile(values, q):
    """Linear interpolation between order statistics (as the agent's LatencyStats)."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def measure(runtime, threads, archs_file, agent_args):
    """The process's CSV rows (dicts) and its wall seconds."""
    start = time.time()
    done = subprocess.run([os.path.join(BIN_DIR, "maplex-agent"), f"--runtime={runtime}",
                           f"--threads={threads}", f"--measure_only={archs_file}", "--csv_protocol", *agent_args],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"maplex-agent exited {done.returncode}: {done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    header = lines[0].split(",")
    col = {name: i for i, name in enumerate(header)}
    return [dict(zip(header, line.split(","))) for line in lines[1:]], time.time() - start


def flagged_archs(rows):
    """Architectures the process stored with interference = flagged."""
    return {r["arch_index"] or r["arch"] for r in rows if r.get("interference") == "flagged"}


def by_arch(rows, column):
    """{arch (NB201 index or canonical string): [column value per occurrence, in order]}."""
    out = {}
    for r in rows:
        out.setdefault(r["arch_index"] or r["arch"], []).append(float(r[column]))
    return out


def ratio_row(label, ratios):
    return (f"| {label} | {statistics.median(ratios):.3f} | {quantile(ratios, 0.1):.3f} | "
            f"{quantile(ratios, 0.9):.3f} | {min(ratios):.3f} | {max(ratios):.3f} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtimes", default="eigen,onednn")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--within", action="store_true",
                        help="list the architectures twice in each process: in-process repeats")
    parser.add_argument("--agent_args", default="")
    parser.add_argument("--columns", default="median_ms",
                        help="CSV columns compared, comma-separated: median_ms (what is stored), "
                             "p10_ms, min_ms, wall_median_ms")
    args = parser.parse_args()
    agent_args = shlex.split(args.agent_args)
    cells = random.Random(args.seed).sample(range(15625), args.archs)
    tmp = tempfile.TemporaryDirectory(prefix="maplex_cross_process_")
    archs_file = os.path.join(tmp.name, "archs.txt")
    with open(archs_file, "w") as f:
        f.write("\n".join(map(str, cells * (2 if args.within else 1))) + "\n")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.busy)]
    try:
        if busy:
            time.sleep(1)  # let the busy loops settle on their cores
        print(f"load average before: {loadavg()}; busy loops: {args.busy}; "
              f"{args.archs} NB201 cells (seed {args.seed}), {args.threads} thread(s), "
              f"agent args: {' '.join(agent_args) or '(defaults)'}")
        print()
        print("| runtime, column, process vs process 1 | median ratio | p10 | p90 | min | max |")
        print("|---|---:|---:|---:|---:|---:|")
        summaries = []
        keys = [str(c) for c in cells]
        for runtime in args.runtimes.split(","):
            runs = [measure(runtime, args.threads, archs_file, agent_args)
                    for _ in range(args.processes)]
            for column in args.columns.split(","):
                values = [by_arch(rows, column) for rows, _ in runs]
                for p, run in enumerate(values[1:], start=2):
                    ratios = [run[k][0] / values[0][k][0] for k in keys]
                    print(ratio_row(f"{runtime}, {column}, process {p}", ratios))
                    # What a consumer that drops flagged measurements compares.
                    flagged = flagged_archs(runs[0][0]) | flagged_archs(runs[p - 1][0])
                    clean = [run[k][0] / values[0][k][0] for k in keys if k not in flagged]
                    if flagged and len(clean) >= 2:
                        print(ratio_row(f"{runtime}, {column}, process {p}, the {len(clean)} "
                                        f"cells flagged in neither", clean))
                if args.within:
                    for p, run in enumerate(values, start=1):
                        ratios = [run[k][1] / run[k][0] for k in keys]
                        diffs = [abs(r - 1) for r in ratios]
                        print(ratio_row(f"{runtime}, {column}, process {p}: 2nd pass / 1st pass "
                                        f"(median abs diff {100 * statistics.median(diffs):.1f} %)",
                                        ratios))
            seconds = [s for _, s in runs]
            rows = [r for rs, _ in runs for r in rs]
            flagged = sum(1 for r in rows if r["interference"] == "flagged")
            repeated = sum(1 for r in rows if r["interference"] == "repeated")
            preempted = sum(int(r["preempted_runs"]) for r in rows)
            timed = sum(int(r["timed_runs"]) for r in rows)
            cpu_wall = [float(r["median_ms"]) / float(r["wall_median_ms"]) for r in rows
                        if float(r["wall_median_ms"]) > 0]
            summaries.append(
                f"{runtime}: {statistics.mean(seconds):.1f} s per process "
                f"({len(keys) * (2 if args.within else 1)} measurements); of {len(rows)} "
                f"measurements {repeated} repeated after interference, {flagged} flagged; "
                f"{preempted} of {timed} timed runs preempted; clock {rows[0]['clock']}, "
                f"median of stored/wall-clock median {statistics.median(cpu_wall):.3f}")
        print()
        for s in summaries:
            print(s)
        print(f"load average after: {loadavg()}")
    finally:
        for b in busy:
            b.kill()
            b.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
