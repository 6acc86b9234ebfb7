"""Agent benchmarks with real processes on 127.0.0.1 (issue: agent targets):
  - onboarding: agent start -> Predict available for the new device with k = 10;
  - repeatability: the same 50 cells measured in two separate agent runs (median |diff|);
  - the agent's peak resident memory.
Usage: /usr/bin/python3 bench/agent/onboarding.py [--runtime onednn] [--threads 1]
Prints a Markdown table. Needs build/bin (scripts/build)."""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "e2e"))
import maplex_processes as mp  # noqa: E402


def measure(runtime, threads, archs_file):
    out = subprocess.run([os.path.join(mp.BIN_DIR, "maplex-agent"), f"--runtime={runtime}",
                          f"--threads={threads}", f"--measure_only={archs_file}"],
                         capture_output=True, text=True, check=True).stdout
    return {int(l.split(",")[0]): float(l.split(",")[1]) for l in out.strip().splitlines()[1:]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", default="onednn")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    server = mp.ServerProcess().start()
    tmp = tempfile.TemporaryDirectory(prefix="maplex_bench_agent_")
    try:
        mp.cli(server.address, "import", "--latency", mp.LATENCY_CSV, "--devices", mp.DEVICES_CSV)
        mp.cli(server.address, "retrain")
        device = f"bench-{args.runtime}-{args.threads}t"
        start = time.time()
        agent = subprocess.Popen(
            [os.path.join(mp.BIN_DIR, "maplex-agent"), f"--server={server.address}",
             f"--device_id={device}", f"--runtime={args.runtime}", f"--threads={args.threads}",
             "--budget=10", "--k=10", "--once", f"--spool={tmp.name}/spool.db"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak_kib = 0
        while agent.poll() is None:  # VmHWM: the agent's peak resident set so far
            try:
                with open(f"/proc/{agent.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak_kib = max(peak_kib, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.02)
        if agent.returncode != 0:
            raise RuntimeError(f"maplex-agent exited with {agent.returncode}")
        agent_done = time.time() - start
        while mp.cli(server.address, "predict", "--device", device, "0", check=False).returncode:
            time.sleep(0.1)
        onboarding = time.time() - start
        rss_mib = peak_kib / 1024
        cells = random.Random(1).sample(range(15625), 50)
        archs_file = os.path.join(tmp.name, "cells.txt")
        with open(archs_file, "w") as f:
            f.write("\n".join(map(str, cells)) + "\n")
        first = measure(args.runtime, args.threads, archs_file)
        second = measure(args.runtime, args.threads, archs_file)
        diffs = [abs(first[c] - second[c]) / ((first[c] + second[c]) / 2) for c in cells]
        print(f"| figure ({args.runtime}, {args.threads} thread(s)) | value | target |")
        print("|---|---:|---:|")
        print(f"| agent start -> Predict available, k = 10 | {onboarding:.1f} s | <= 60 s |")
        print(f"| of which the agent run (probe, counters, micro-benchmarks, 10 measurements, delivery) | {agent_done:.1f} s | |")
        print(f"| repeatability: median relative difference of 50 cells between two runs | {100 * statistics.median(diffs):.2f} % | <= 3 % |")
        print(f"| repeatability: 90th percentile of that difference | {100 * sorted(diffs)[44]:.2f} % | |")
        print(f"| peak resident memory of the agent (VmHWM) | {rss_mib:.0f} MiB | <= 100 MB |")
    finally:
        server.stop()
        server.cleanup()
        tmp.cleanup()


if __name__ == "__main__":
    main()
