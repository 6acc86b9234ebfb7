"""examples/nas_search.py against a real maplex-server holding two imported devices: the
search runs, and its Pareto front is non-empty, within the latency budget, free of
dominated points, and priced exactly as the server predicts."""

import json
import os
import statistics
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402

import maplex  # noqa: E402

EXAMPLE = os.path.join(mp.SOURCE_DIR, "examples", "nas_search.py")
sys.path.insert(0, os.path.dirname(EXAMPLE))
import nas_search  # noqa: E402


class NasSearchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess().start()
        mp.cli(cls.server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
               mp.DEVICES_CSV, "--only", "pixel3,silver_4114")
        mp.cli(cls.server.address, "retrain")
        cls.client = maplex.Client(cls.server.address)
        # Budget: the median predicted latency over a spread of cells, so that about half the
        # space is feasible and the front has a trade-off to show.
        sample = cls.client.predict("pixel3", list(range(0, 15625, 25)))
        cls.budget_ms = statistics.median(p.latency_ms for p in sample)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()
        cls.server.cleanup()

    def run_example(self, *extra):
        return subprocess.run(
            [sys.executable, EXAMPLE, "--server", self.server.address, "--device", "pixel3",
             "--budget-ms", repr(self.budget_ms), "--rounds", "15", "--seed", "3", *extra],
            capture_output=True, text=True, timeout=60, check=True)

    def test_front_is_within_budget_and_non_dominated(self):
        result = json.loads(self.run_example("--json").stdout)
        front = result["front"]
        self.assertGreater(len(front), 1)
        self.assertEqual(result["objective"], "proxy_parameters")
        self.assertGreater(result["evaluated"], len(front))
        for e in front:
            self.assertLessEqual(e["latency_ms"], self.budget_ms)
        for a in front:
            for b in front:
                if a is b:
                    continue
                dominates = (b["latency_ms"] <= a["latency_ms"] and
                             b["objective"] >= a["objective"] and
                             (b["latency_ms"], b["objective"]) != (a["latency_ms"], a["objective"]))
                self.assertFalse(dominates, f"{b} dominates {a}")
        # The latencies are the server's predictions, the objective the documented proxy.
        predicted = self.client.predict("pixel3", [e["cell"] for e in front])
        for e, p in zip(front, predicted):
            self.assertAlmostEqual(e["latency_ms"], p.latency_ms, places=9)
            self.assertEqual(e["index"], p.arch_index)
            ops = tuple(op.split("~")[0] for op in e["cell"].replace("+", "").split("|") if op)
            self.assertEqual(nas_search.cell_string(ops), e["cell"])
            self.assertEqual(e["objective"], nas_search.proxy_parameters(ops))

    def test_table_output_labels_the_proxy(self):
        out = self.run_example().stdout
        self.assertIn("PROXY, not accuracy", out)
        self.assertIn("on the Pareto front", out)

    def test_front_of_known_points(self):
        entries = [{"latency_ms": 1, "objective": 5}, {"latency_ms": 2, "objective": 5},
                   {"latency_ms": 2, "objective": 9}, {"latency_ms": 3, "objective": 7},
                   {"latency_ms": 9, "objective": 99}]
        self.assertEqual(nas_search.pareto_front(entries, budget_ms=3),
                         [entries[0], entries[2]])

    def test_proxy_counts_live_convolutions_only(self):
        conv3 = sum(5 * (9 * c * c + 2 * c) for c in (16, 32, 64))
        self.assertEqual(nas_search.proxy_parameters(("nor_conv_3x3",) * 6), 6 * conv3)
        # A conv into node 1 whose output never reaches node 3 adds nothing.
        dead_end = ("nor_conv_3x3", "none", "none", "skip_connect", "none", "none")
        self.assertEqual(nas_search.proxy_parameters(dead_end), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
