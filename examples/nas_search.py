#!/usr/bin/python3
"""Latency-constrained architecture search over NAS-Bench-201 or FBNet with maplex predictions.

Regularized evolution (Real et al., AAAI 2019: tournament selection, one-choice mutation, the
oldest individual dies) searches a space for the largest network whose predicted latency on
one device stays within a budget: NB201's 15,625 cells (`--space nb201`, the default; one
edge's op mutates), or FBNet's 9^22 networks (`--space fbnet`; one layer's block mutates),
where every candidate is almost surely a network nobody measured and the server's function
model prices it from its structure. Each round's children are priced in one batch Predict
call (FBNet: as a compact batch of block codes, `Client.predict_choices`); every
architecture priced is remembered, and the Pareto front of predicted latency against the
objective, over all of them within the budget, is printed.

The objective is a PROXY, not accuracy: this repository ships no accuracy data. NB201: the
parameter count of the convolutions that lie on a path from the cell's input to its output,
summed over the 15 cells of NB201's CIFAR network (5 cells each at 16, 32 and 64 channels;
ReLU-Conv-BN: k*k*C*C weights + 2*C batch-norm parameters). FBNet: the parameter count of the
22 searched layers of the macro-architecture in core/arch/fbnet_space.h (as
core/arch/fbnet_space.cc counts them: 1x1 expansion, KxK depthwise and 1x1 projection convolutions, each with its
batch norm; a skip that changes the shape is a 1x1 convolution). It ranks capacity, and a
real search would swap in accuracy (e.g. from the NAS-Bench-201 release) here.

Run against a server that holds data for the device (see README), with the client package
on the path:

    PYTHONPATH=build/python /usr/bin/python3 examples/nas_search.py \
        --server 127.0.0.1:50051 --device pixel3 --budget-ms 10
    PYTHONPATH=build/python /usr/bin/python3 examples/nas_search.py \
        --server 127.0.0.1:50051 --space fbnet --device pixel3 --budget-ms 20
"""

import argparse
import json
import os
import random
import sys

import maplex

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
# The six edges of an NB201 cell in cell-string order: (to node, from node).
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
STAGE_CHANNELS = [16, 32, 64]
CELLS_PER_STAGE = 5


def cell_string(ops):
    """The NB201 cell string of six ops in EDGES order."""
    node = {}
    for (to, frm), op in zip(EDGES, ops):
        node.setdefault(to, []).append(f"{op}~{frm}")
    return "+".join("|" + "|".join(node[to]) + "|" for to in (1, 2, 3))


def live_edges(ops):
    """Edges on some path from node 0 (input) to node 3 (output) through non-"none" ops."""
    present = [edge for edge, op in zip(EDGES, ops) if op != "none"]
    reached = {0}
    for to in (1, 2, 3):
        if any(t == to and f in reached for t, f in present):
            reached.add(to)
    leads_out = {3}
    for frm in (2, 1, 0):
        if any(f == frm and t in leads_out for t, f in present):
            leads_out.add(frm)
    return [(edge, op) for edge, op in zip(EDGES, ops)
            if op != "none" and edge[1] in reached and edge[0] in leads_out]


def proxy_parameters(ops):
    """The search objective (a capacity proxy, not accuracy): parameters of the live
    convolutions over the whole CIFAR network (see the module docstring)."""
    total = 0
    for _, op in live_edges(ops):
        if op in CONV_KERNEL:
            k = CONV_KERNEL[op]
            total += sum(CELLS_PER_STAGE * (k * k * c * c + 2 * c) for c in STAGE_CHANNELS)
    return total


def random_ops(rng):
    return tuple(rng.choice(OPS) for _ in EDGES)


def mutate(ops, rng):
    """One edge changed to a different op."""
    edge = rng.randrange(len(EDGES))
    child = list(ops)
    child[edge] = rng.choice([op for op in OPS if op != ops[edge]])
    return tuple(child)


# FBNet's blocks: (name, kernel, expansion, groups). A block's code in a compact batch is its
# position here, as in core/arch/fbnet_space.cc.
FBNET_BLOCKS = [("k3_e1", 3, 1, 1), ("k3_e1_g2", 3, 1, 2), ("k3_e3", 3, 3, 1),
                ("k3_e6", 3, 6, 1), ("k5_e1", 5, 1, 1), ("k5_e1_g2", 5, 1, 2),
                ("k5_e3", 5, 3, 1), ("k5_e6", 5, 6, 1), ("skip", 0, 0, 0)]
FBNET_SKIP = 8
# The searched layers' stages after the 16-channel stem: (layers, output channels, stride
# of the first layer).
FBNET_STAGES = [(1, 16, 1), (4, 24, 1), (4, 32, 2), (4, 64, 2), (4, 112, 1), (4, 184, 2),
                (1, 352, 1)]
FBNET_STEM_CHANNELS = 16


def fbnet_layers():
    """The 22 searched layers as (input channels, output channels, stride)."""
    layers, c_in = [], FBNET_STEM_CHANNELS
    for count, c_out, stride in FBNET_STAGES:
        for i in range(count):
            layers.append((c_in, c_out, stride if i == 0 else 1))
            c_in = c_out
    return layers


FBNET_LAYERS = fbnet_layers()


def fbnet_string(blocks):
    """FBNet's canonical string of 22 block codes: the block names joined by "-"."""
    return "-".join(FBNET_BLOCKS[b][0] for b in blocks)


def fbnet_parameters(blocks):
    """The FBNet search objective (a capacity proxy, not accuracy): parameters of the 22
    searched layers (see the module docstring)."""
    total = 0
    for (c_in, c_out, stride), block in zip(FBNET_LAYERS, blocks):
        keeps_shape = stride == 1 and c_in == c_out
        if block == FBNET_SKIP:
            if not keeps_shape:
                total += c_in * c_out + 2 * c_out  # 1x1 convolution + BN
            continue
        _, kernel, expansion, groups = FBNET_BLOCKS[block]
        mid = expansion * c_in
        total += (c_in // groups) * mid + 2 * mid  # 1x1 expansion + BN
        total += mid * kernel * kernel + 2 * mid  # KxK depthwise + BN
        total += (mid // groups) * c_out + 2 * c_out  # 1x1 projection + BN
    return total


class Nb201:
    """NB201's search: a genome is six op names in EDGES order, priced by cell string."""
    name = "nb201"
    header = f"{'INDEX':>6}  CELL"
    objective_text = "parameters of the live convolutions"

    def random(self, rng):
        return random_ops(rng)

    def mutate(self, genome, rng):
        return mutate(genome, rng)

    def objective(self, genome):
        return proxy_parameters(genome)

    def price(self, client, device, genomes, timeout):
        """Entries (identity and prediction) of `genomes`, and the model version."""
        predictions = client.predict(device, [cell_string(g) for g in genomes], timeout=timeout)
        entries = [{"cell": cell_string(g), "index": p.arch_index, "latency_ms": p.latency_ms,
                    "lower_ms": p.lower_ms, "upper_ms": p.upper_ms}
                   for g, p in zip(genomes, predictions)]
        return entries, predictions[0].model_version

    def describe(self, entry):
        return f"{entry['index']:6d}  {entry['cell']}"


class Fbnet:
    """FBNet's search: a genome is 22 block codes, priced as one compact batch."""
    name = "fbnet"
    header = "ARCH"
    objective_text = "parameters of the 22 searched layers"

    def random(self, rng):
        return tuple(rng.randrange(len(FBNET_BLOCKS)) for _ in FBNET_LAYERS)

    def mutate(self, genome, rng):
        """One layer's block changed to a different block."""
        layer = rng.randrange(len(genome))
        child = list(genome)
        child[layer] = rng.choice([b for b in range(len(FBNET_BLOCKS)) if b != genome[layer]])
        return tuple(child)

    def objective(self, genome):
        return fbnet_parameters(genome)

    def price(self, client, device, genomes, timeout):
        """Entries (identity and prediction) of `genomes`, and the model version."""
        columns = client.predict_choices(device, bytes(b for g in genomes for b in g),
                                         space="fbnet", timeout=timeout)
        entries = [{"arch": fbnet_string(g), "latency_ms": columns.latency_ms[i],
                    "lower_ms": columns.lower_ms[i], "upper_ms": columns.upper_ms[i]}
                   for i, g in enumerate(genomes)]
        return entries, columns.model_version

    def describe(self, entry):
        return entry["arch"]


SPACES = {"nb201": Nb201(), "fbnet": Fbnet()}


class Evaluator:
    """Prices architectures of `space` with the server, one batch Predict per call of
    price(), and remembers every one priced."""

    def __init__(self, client, space, device, timeout):
        self.client = client
        self.space = space
        self.device = device
        self.timeout = timeout
        self.seen = {}  # genome -> {"cell" or "arch", "latency_ms", ..., "objective"}
        self.model_version = None

    def price(self, population):
        new = list(dict.fromkeys(g for g in population if g not in self.seen))
        if new:
            entries, self.model_version = self.space.price(self.client, self.device, new,
                                                           self.timeout)
            for g, entry in zip(new, entries):
                entry["objective"] = self.space.objective(g)
                self.seen[g] = entry
        return [self.seen[g] for g in population]


def fitness(entry, budget_ms):
    """Within the budget, a larger objective is fitter; every architecture within the
    budget beats every one over it; over it, the faster is fitter."""
    if entry["latency_ms"] <= budget_ms:
        return (1, entry["objective"], -entry["latency_ms"])
    return (0, -entry["latency_ms"], 0)


def regularized_evolution(evaluator, budget_ms, population_size, sample_size, children,
                          rounds, rng):
    """Runs the search; returns nothing, everything priced is in evaluator.seen."""
    space = evaluator.space
    population = [space.random(rng) for _ in range(population_size)]
    evaluator.price(population)
    for _ in range(rounds):
        offspring = []
        for _ in range(children):
            contenders = rng.sample(population, sample_size)
            parent = max(contenders, key=lambda g: fitness(evaluator.seen[g], budget_ms))
            offspring.append(space.mutate(parent, rng))
        evaluator.price(offspring)
        population = population[len(offspring):] + offspring  # the oldest die


def pareto_front(entries, budget_ms):
    """Entries within the budget that no other dominates (lower or equal latency and larger
    or equal objective, one strictly), by increasing latency; one entry per distinct
    (latency, objective) point."""
    feasible = sorted((e for e in entries if e["latency_ms"] <= budget_ms),
                      key=lambda e: (e["latency_ms"], -e["objective"]))
    front = []
    for e in feasible:
        if not front or e["objective"] > front[-1]["objective"]:
            front.append(e)
    return front


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("MAPLEX_SERVER", "127.0.0.1:50051"),
                        help="maplex-server address (env MAPLEX_SERVER)")
    parser.add_argument("--token", help="bearer token, if the server wants one")
    parser.add_argument("--ca", help="PEM CA bundle: connect with TLS")
    parser.add_argument("--space", choices=sorted(SPACES), default="nb201",
                        help="search space (default nb201)")
    parser.add_argument("--device", required=True, help="device configuration id")
    parser.add_argument("--budget-ms", type=float, required=True,
                        help="largest predicted latency allowed, milliseconds")
    parser.add_argument("--rounds", type=int, default=30, help="generations (default 30)")
    parser.add_argument("--population", type=int, default=64, help="population size")
    parser.add_argument("--sample", type=int, default=16, help="tournament size")
    parser.add_argument("--children", type=int, default=32,
                        help="children per generation, priced in one batch")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--timeout", type=float, default=30, help="deadline per call, seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.sample <= args.population or args.children > args.population:
        parser.error("need 1 <= --sample <= --population and --children <= --population")

    rng = random.Random(args.seed)
    try:
        with maplex.Client(args.server, token=args.token, ca=args.ca) as client:
            evaluator = Evaluator(client, SPACES[args.space], args.device, args.timeout)
            regularized_evolution(evaluator, args.budget_ms, args.population, args.sample,
                                  args.children, args.rounds, rng)
    except maplex.MaplexError as e:
        print(f"nas_search: {e}", file=sys.stderr)
        return 1
    front = pareto_front(evaluator.seen.values(), args.budget_ms)

    if args.json:
        print(json.dumps({"space": args.space, "device": args.device,
                          "budget_ms": args.budget_ms,
                          "model_version": evaluator.model_version,
                          "objective": "proxy_parameters",
                          "evaluated": len(evaluator.seen), "front": front}, indent=1))
        return 0
    space = SPACES[args.space]
    print(f"{args.space}: device {args.device}, budget {args.budget_ms} ms, model version "
          f"{evaluator.model_version}: {len(evaluator.seen)} architectures priced, "
          f"{len(front)} on the Pareto front")
    print(f"objective: {space.objective_text} (a capacity PROXY, not accuracy)")
    print(f"{'LATENCY_MS':>10} {'90%_INTERVAL':>17} {'PROXY_PARAMS':>12} {space.header}")
    for e in front:
        interval = f"[{e['lower_ms']:.3f}, {e['upper_ms']:.3f}]"
        print(f"{e['latency_ms']:10.3f} {interval:>17} {e['objective']:12d} "
              f"{space.describe(e)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
