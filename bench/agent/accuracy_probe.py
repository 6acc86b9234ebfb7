"""Where a new device's prediction error comes from (issue #13): the model or the level.

Measures N seeded random architectures of a space on this machine in one `--measure_only`
process, then onboards this machine through a real server holding the bundled reference
devices (`maplex-agent --k 10 --budget 10`, as the Quick start and the e2e tests do) and
scores the server's predictions for those N against the first process's figures:

  - Spearman, within +-10 %, 90 % interval coverage, median predicted/measured ("level");
  - the same within +-10 % after dividing the predictions by that median ("level-corrected"),
    and the 0.9 quantile of |log error| then: what the model gets wrong when the two
    processes measured at one level.

A level far from 1 with a good level-corrected score means the processes disagreed (the
measurement protocol; docs/MEASUREMENT.md); a poor level-corrected score means the model.
Prints `uptime`'s load average: the level depends on other work on the machine.

Usage: /usr/bin/python3 bench/agent/accuracy_probe.py --space fbnet|nb201 [--count 200]
         [--runtime onednn] [--threads 1] [--seed 1] [--truth CSV] [--agent-args "FLAGS"]
         [--samples-out F]
--truth scores against a `maplex-agent --measure_only` CSV taken earlier (its `arch` and
`median_ms` columns) instead of measuring first: how far apart in time the two processes
may measure.
Needs build/bin (scripts/build)."""

import argparse
import csv
import gzip
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "e2e"))
import maplex_processes as mp  # noqa: E402
from agent_test import output_connected, spearman  # noqa: E402


def random_archs(space, count, seed):
    """`count` seeded random members of the space, canonical strings (NB201: connected cells)."""
    rng = random.Random(seed)
    if space == "nb201":
        cells = sorted(mp.nb201_index_of_cell(), key=mp.nb201_index_of_cell().get)
        return [c for c in rng.sample(cells, 4 * count) if output_connected(c)][:count]
    with gzip.open(mp.FBNET_LATENCY_CSV, "rt") as f:
        rows = csv.reader(f)
        next(rows)
        blocks = sorted({b for row in rows for b in row[0].split("-")})
    archs = set()
    while len(archs) < count:
        archs.add("-".join(rng.choice(blocks) for _ in range(22)))
    return sorted(archs)


def measure_only(runtime, threads, archs, path):
    with open(path, "w") as f:
        f.write("\n".join(archs) + "\n")
    out = subprocess.run([os.path.join(mp.BIN_DIR, "maplex-agent"), f"--runtime={runtime}",
                          f"--threads={threads}", f"--measure_only={path}"],
                         capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    return {row["arch"]: float(row["median_ms"]) for row in rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", choices=["nb201", "fbnet"], default="fbnet")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--runtime", default="onednn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--truth", help="a --measure_only CSV to score against")
    parser.add_argument("--agent-args", default="",
                        help="extra maplex-agent flags for the onboarding, space-separated")
    parser.add_argument("--samples-out",
                        help="write the onboarding's samples here (nb201: device_id,arch_index,"
                             "median_ms, the samples file of build/bin/onboard_check)")
    args = parser.parse_args()
    if args.truth:
        with open(args.truth) as f:
            truth = {row["arch"]: float(row["median_ms"]) for row in csv.DictReader(f)}
        archs = list(truth)
    else:
        archs = random_archs(args.space, args.count, args.seed)
    tmp = tempfile.TemporaryDirectory(prefix="maplex_accuracy_probe_")
    server = mp.ServerProcess(extra_args=["--retrain_debounce_seconds=2"]).start()
    try:
        load_before = os.getloadavg()[0]
        if not args.truth:
            truth = measure_only(args.runtime, args.threads, archs,
                                 os.path.join(tmp.name, "a.txt"))
        if args.space == "nb201":
            mp.cli(server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
                   mp.DEVICES_CSV)
        else:
            mp.cli(server.address, "import", mp.FBNET_LATENCY_CSV, "--devices",
                   mp.FBNET_DEVICES_CSV)
        mp.cli(server.address, "retrain")
        device = f"probe-{args.space}-{args.runtime}-{args.threads}t"
        subprocess.run([os.path.join(mp.BIN_DIR, "maplex-agent"), f"--server={server.address}",
                        f"--space={args.space}", f"--runtime={args.runtime}",
                        f"--threads={args.threads}", f"--device_id={device}", "--k=10",
                        "--budget=10", "--once", f"--spool={tmp.name}/spool.db"]
                       + args.agent_args.split(),
                       capture_output=True, text=True, check=True, timeout=900)
        probe = archs[0]
        deadline = time.time() + 180
        while mp.cli(server.address, "predict", "--device", device, "--space", args.space,
                     probe, check=False).returncode:
            if time.time() > deadline:
                raise RuntimeError("the device was not predictable within 180 s")
            time.sleep(0.2)
        with sqlite3.connect(server.db_path) as db:
            samples = list(db.execute(
                "SELECT arch, median_ms FROM measurements WHERE device_id = ?", (device,)))
        taken = {arch for arch, _ in samples}
        if args.samples_out:
            index_of = mp.nb201_index_of_cell() if args.space == "nb201" else None
            with open(args.samples_out, "w") as f:
                f.write("device_id,arch_index,median_ms\n" if index_of
                        else "device_id,arch,median_ms\n")
                for arch, ms in samples:
                    key = index_of[arch] if index_of else arch
                    f.write(f"{device},{key},{ms}\n")
        scored = [a for a in archs if a not in taken]
        listing = os.path.join(tmp.name, "scored.txt")
        with open(listing, "w") as f:
            f.write("\n".join(scored) + "\n")
        out = mp.cli(server.address, "predict", "--device", device, "--space", args.space,
                     "--file", listing, "--format", "csv").stdout
        predicted = {}  # rows end with arch, latency, lower, upper (NB201: the index first)
        for line in out.strip().splitlines()[1:]:
            fields = line.split(",")
            predicted[fields[-4]] = tuple(float(v) for v in fields[-3:])
        p = [predicted[a][0] for a in scored]
        t = [truth[a] for a in scored]
        ratios = sorted(x / y for x, y in zip(p, t))
        level = ratios[len(ratios) // 2]
        corrected = [x / level for x in p]
        log_errors = sorted(abs(math.log(x / y)) for x, y in zip(corrected, t))
        within = lambda q: sum(abs(x - y) / y <= 0.10 for x, y in zip(q, t)) / len(t)  # noqa
        coverage = sum(predicted[a][1] <= truth[a] <= predicted[a][2] for a in scored) / len(t)
        print(f"| {args.space}, {args.runtime} {args.threads} thread(s), k = 10, "
              f"{len(scored)} architectures measured by another process | value |")
        print("|---|---:|")
        print(f"| Spearman | {spearman(p, t):.3f} |")
        print(f"| within +-10 % | {within(p):.3f} |")
        print(f"| 90 % interval coverage | {coverage:.3f} |")
        print(f"| level: median predicted/measured | {level:.3f} |")
        print(f"| within +-10 %, level-corrected | {within(corrected):.3f} |")
        print(f"| 0.9 quantile of abs(log error), level-corrected | "
              f"{log_errors[int(0.9 * len(log_errors))]:.3f} |")
        print(f"| load average (1 min) before / after | {load_before:.2f} / "
              f"{os.getloadavg()[0]:.2f} |")
    finally:
        server.stop()
        server.cleanup()
        tmp.cleanup()


if __name__ == "__main__":
    main()
