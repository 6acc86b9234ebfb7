#!/usr/bin/python3
"""How far FBNet's per-device "ceiling" (each device's own additive fit, docs/ACCURACY.md)
is a cap: per device, on a seeded 80/20 split of the 4,000 networks, the Spearman rho on the
20 % of

  additive: its own ridge fit over the 199 block-per-layer one-hots (the features of the
            function model), on all of its 80 %;
  costs:    a least-squares fit of 5 numbers, intercept + MACs, parameters, activation
            elements and primitive count of each network (counted as core/arch/fbnet_space.cc
            counts them), on the same 80 %.

    /usr/bin/python3 bench/fbnet_cost_fit.py data/fbnet_latency.csv.gz [--seed 0]

Not the protocol of maplex-eval (its own seeded split; no k samples): a check of what the
features can express per device, with all of its data.
"""
import argparse
import csv
import gzip

import numpy as np

from oracle_ceiling import spearman  # bench/: Spearman's rho with average ranks for ties

# (name, kernel, expansion, groups), in the order of core/arch/fbnet_space.cc.
BLOCKS = [("k3_e1", 3, 1, 1), ("k3_e1_g2", 3, 1, 2), ("k3_e3", 3, 3, 1), ("k3_e6", 3, 6, 1),
          ("k5_e1", 5, 1, 1), ("k5_e1_g2", 5, 1, 2), ("k5_e3", 5, 3, 1), ("k5_e6", 5, 6, 1),
          ("skip", 0, 0, 0)]
NAMES = [b[0] for b in BLOCKS]
# (layers, output channels, first stride) after the 16-channel stem at 32x32.
STAGES = [(1, 16, 1), (4, 24, 1), (4, 32, 2), (4, 64, 2), (4, 112, 1), (4, 184, 2), (1, 352, 1)]


def layers():
    out, c_in, side = [], 16, 32
    for count, c_out, stride in STAGES:
        for i in range(count):
            s = stride if i == 0 else 1
            out.append((c_in, c_out, s, side))
            c_in, side = c_out, side // s
    return out


LAYERS = layers()


def costs(arch):
    """MACs, parameters, activation elements and primitives of the 22 searched layers (the
    stem and head add the same to every network)."""
    macs = params = acts = prims = 0
    for (c_in, c_out, stride, side), name in zip(LAYERS, arch.split("-")):
        _, kernel, expansion, groups = BLOCKS[NAMES.index(name)]
        out_side = side // stride
        in_px, out_px = side * side, out_side * out_side
        keeps_shape = stride == 1 and c_in == c_out
        if name == "skip":
            if not keeps_shape:
                macs += out_px * c_in * c_out
                params += c_in * c_out + 2 * c_out
                acts += 2 * c_out * out_px
                prims += 1
            continue
        mid = expansion * c_in
        macs += in_px * (c_in // groups) * mid + out_px * mid * kernel * kernel + \
            out_px * (mid // groups) * c_out
        params += (c_in // groups) * mid + 2 * mid + mid * kernel * kernel + 2 * mid + \
            (mid // groups) * c_out + 2 * c_out
        acts += 3 * mid * in_px + 3 * mid * out_px + 2 * c_out * out_px + \
            (c_out * out_px if keeps_shape else 0)
        prims += 3 + (1 if keeps_shape else 0)
    return macs, params, acts, prims


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("latency", help="data/fbnet_latency.csv.gz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split")
    args = parser.parse_args()
    with gzip.open(args.latency, "rt") as f:
        rows = list(csv.reader(f))
    devices = rows[0][1:]
    archs = [r[0] for r in rows[1:]]
    y = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    n = len(archs)
    onehot = np.zeros((n, 1 + len(LAYERS) * len(BLOCKS)))
    onehot[:, 0] = 1
    for i, a in enumerate(archs):
        for layer, name in enumerate(a.split("-")):
            onehot[i, 1 + layer * len(BLOCKS) + NAMES.index(name)] = 1
    c = np.array([costs(a) for a in archs], dtype=float)
    cost_features = np.c_[np.ones(n), c / c.mean(axis=0)]
    order = np.random.default_rng(args.seed).permutation(n)
    test, train = order[: n // 5], order[n // 5:]
    ridge = np.eye(onehot.shape[1])
    ridge[0, 0] = 0
    additive = np.linalg.solve(onehot[train].T @ onehot[train] + ridge,
                               onehot[train].T @ y[train])
    print(f"{'device':16s} {'additive':>8s} {'costs':>6s}")
    sums = np.zeros(2)
    for d, name in enumerate(devices):
        w = np.linalg.lstsq(cost_features[train], y[train, d], rcond=None)[0]
        rho = (spearman(onehot[test] @ additive[:, d], y[test, d]),
               spearman(cost_features[test] @ w, y[test, d]))
        sums += rho
        print(f"{name:16s} {rho[0]:8.3f} {rho[1]:6.3f}")
    print(f"{'mean':16s} {sums[0] / len(devices):8.3f} {sums[1] / len(devices):6.3f}")


if __name__ == "__main__":
    main()
