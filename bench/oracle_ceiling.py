#!/usr/bin/env python3
"""Accuracy ceiling of log-linear transfer under leave-one-hardware-out (docs/ACCURACY.md).

For each device, fits its log latencies on ALL of its connected cells as an affine
combination of every device of other hardware (least squares, log space) and reports the
Spearman rho and +-10 % accuracy of that fit on the same cells. No k-sample method that
predicts the target as a combination of the training devices' log latencies can beat this
on average; it is an optimistic ceiling (it is fit on the cells it is scored on).

  python3 bench/oracle_ceiling.py data/nb201_latency.csv.gz data/nb201_devices.csv
"""
import csv
import gzip
import sys

import numpy as np


def ranks(x):
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i + 1
        while j < len(x) and sx[j] == sx[i]:
            j += 1
        r[order[i:j]] = 0.5 * (i + 1 + j)
        i = j
    return r


def spearman(a, b):
    return np.corrcoef(ranks(a), ranks(b))[0, 1]


def connected(ops):
    reached = [True, False, False, False]
    e = 0
    for node in range(1, 4):
        for src in range(node):
            if ops[e] != "none" and reached[src]:
                reached[node] = True
            e += 1
    return reached[3]


def main(latency_path, devices_path):
    with gzip.open(latency_path, "rt") as f:
        rows = list(csv.reader(f))
    names = rows[0][2:]
    log_l = np.log(np.array([[float(v) for v in r[2:]] for r in rows[1:]]))
    ops = [[t.split("~")[0] for t in r[1].replace("+", "").split("|") if t] for r in rows[1:]]
    mask = np.array([connected(o) for o in ops])
    with open(devices_path) as f:
        hardware = {r["device"]: r["hardware"] for r in csv.DictReader(f)}
    print("| device | ceiling Spearman ρ | ceiling ±10 % |")
    print("|---|---:|---:|")
    rho_sum = acc_sum = 0.0
    for t, name in enumerate(names):
        train = [i for i, n in enumerate(names) if hardware[n] != hardware[name]]
        x = np.column_stack([np.ones(mask.sum()), log_l[mask][:, train]])
        y = log_l[mask, t]
        pred = x @ np.linalg.lstsq(x, y, rcond=None)[0]
        rho = spearman(pred, y)
        acc = np.mean(np.abs(np.exp(pred - y) - 1) <= 0.10)
        rho_sum += rho
        acc_sum += acc
        print(f"| {name} | {rho:.3f} | {acc:.3f} |")
    print(f"| **mean** | **{rho_sum / len(names):.3f}** | **{acc_sum / len(names):.3f}** |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
