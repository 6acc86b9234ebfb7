#!/usr/bin/python3
"""Batch Predict of FBNet architectures from Python: the interval as three columns against
the interval as two factors (PredictRequest.interval_factors), each read as latency only and
with the interval (the factors expanded in Python), over the generated stub; and
maplex.Client.predict_choices (which asks for the factors and expands them), read whole.
Every column read is converted to a list. The figures
behind the Python paragraph of docs/BENCHMARKS.md ("The interval as two factors").

    PYTHONPATH=build/python /usr/bin/python3 bench/python_predict_bench.py

Builds nothing: build/bin/{maplex-server,maplex} and build/python must exist (bash
scripts/build). Starts maplex-server on a free loopback port over a new temporary database,
imports FBNet's references gold_6240, silver_4114 and titanxp_1 and pixel3 as a new device
with 10 samples, retrains, then times batches of 20,000 random networks (the server's
default per-request limit) for pixel3, alternating the five forms, and prints one JSON
object: architectures per second per form, median over the rounds.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import maplex_processes as mp  # noqa: E402

import grpc  # noqa: E402
import maplex  # noqa: E402
from maplex.v1 import predictor_pb2, predictor_pb2_grpc  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=20000, help="architectures per call")
    parser.add_argument("--calls", type=int, default=30, help="calls per form and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the five forms")
    args = parser.parse_args()

    server = mp.ServerProcess().start()
    try:
        mp.cli(server.address, "import", mp.FBNET_LATENCY_CSV, "--devices", mp.FBNET_DEVICES_CSV,
               "--only", "gold_6240,pixel3,silver_4114,titanxp_1", "--keep", "pixel3=10")
        mp.cli(server.address, "retrain")
        rng = random.Random(1)
        data = bytes(rng.randrange(9) for _ in range(22 * args.batch))
        batch = maplex.client.choices_batch(data, "fbnet")
        # The generated stub, not maplex.Client: the bench sends raw requests (Client has no
        # interval_factors option).
        with grpc.insecure_channel(server.address) as channel:
            stub = predictor_pb2_grpc.PredictorStub(channel)

            def answer(factors):
                return stub.Predict(predictor_pb2.PredictRequest(
                    device_id="pixel3", columnar=True, arch_batch=batch,
                    interval_factors=factors), timeout=60).columns

            # The forms answer alike: factors (no interval columns) that expand to the columns.
            columns, factored = answer(False), answer(True)
            assert len(columns.lower_ms) == args.batch and not factored.lower_ms
            assert factored.lower_factor > 0 and factored.upper_factor > 0
            assert list(columns.latency_ms) == list(factored.latency_ms)
            assert all(abs(y * factored.lower_factor - lo) <= 1e-12 * y
                       for y, lo in zip(factored.latency_ms, columns.lower_ms))

            def call(factors, expand):
                c = answer(factors)
                latency = list(c.latency_ms)
                if not expand:
                    return len(latency)
                if factors:
                    lo, hi = c.lower_factor, c.upper_factor
                    lower = [y * lo for y in latency]
                    upper = [y * hi for y in latency]
                else:
                    lower, upper = list(c.lower_ms), list(c.upper_ms)
                return len(latency) + len(lower) + len(upper)

            def client_call():
                c = client.predict_choices("pixel3", data, space="fbnet")
                return len(list(c.latency_ms)) + len(list(c.lower_ms)) + len(list(c.upper_ms))

            # name: the call timed
            forms = {"columns_latency_only": lambda: call(False, False),
                     "columns": lambda: call(False, True),
                     "factors_latency_only": lambda: call(True, False),
                     "factors_expanded_in_python": lambda: call(True, True),
                     "client_predict_choices": client_call}
            rates = {name: [] for name in forms}
            with maplex.Client(server.address, timeout=60) as client:
                for _ in range(args.rounds):
                    for name, timed in forms.items():
                        start = time.perf_counter()
                        for _ in range(args.calls):
                            timed()
                        seconds = (time.perf_counter() - start) / args.calls
                        rates[name].append(args.batch / seconds)
    finally:
        server.stop()
        server.cleanup()
    print(json.dumps({"batch": args.batch, "calls": args.calls, "rounds": args.rounds,
                      "loadavg_1min": os.getloadavg()[0],
                      "architectures_per_second": {n: round(statistics.median(r))
                                                   for n, r in rates.items()},
                      "per_round": {n: [round(x) for x in r] for n, r in rates.items()}},
                     indent=1))


if __name__ == "__main__":
    main()
