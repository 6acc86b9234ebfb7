"""examples/nas_search.py against a real maplex-server: in NB201 (two imported devices) and
in FBNet (three reference devices and a target known from 10 samples, searched over networks
nobody measured), the search runs, and its Pareto front is non-empty, within the latency
budget, free of dominated points, and priced exactly as the server predicts."""

import json
import os
import random
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


def checked_front(test, stdout, budget_ms):
    """The front of the example's JSON output, checked: more than one point, each within the
    budget, none dominated by another."""
    result = json.loads(stdout)
    front = result["front"]
    test.assertGreater(len(front), 1)
    test.assertEqual(result["objective"], "proxy_parameters")
    test.assertGreater(result["evaluated"], len(front))
    for e in front:
        test.assertLessEqual(e["latency_ms"], budget_ms)
    for a in front:
        for b in front:
            if a is b:
                continue
            dominates = (b["latency_ms"] <= a["latency_ms"] and
                         b["objective"] >= a["objective"] and
                         (b["latency_ms"], b["objective"]) != (a["latency_ms"], a["objective"]))
            test.assertFalse(dominates, f"{b} dominates {a}")
    return front


def run_example(server, budget_ms, *extra):
    return subprocess.run(
        [sys.executable, EXAMPLE, "--server", server.address, "--device", "pixel3",
         "--budget-ms", repr(budget_ms), "--rounds", "15", "--seed", "3", *extra],
        capture_output=True, text=True, timeout=60, check=True)


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
        return run_example(self.server, self.budget_ms, *extra)

    def test_front_is_within_budget_and_non_dominated(self):
        front = checked_front(self, self.run_example("--json").stdout, self.budget_ms)
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


class FbnetNasSearchTest(unittest.TestCase):
    """--space fbnet: references gold_6240, silver_4114 and titanxp_1 with all their FBNet
    data, pixel3 a new device with 10 samples, the search over networks nobody measured."""

    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess().start()
        mp.cli(cls.server.address, "import", mp.FBNET_LATENCY_CSV, "--devices",
               mp.FBNET_DEVICES_CSV, "--only", "gold_6240,pixel3,silver_4114,titanxp_1",
               "--keep", "pixel3=10")
        mp.cli(cls.server.address, "retrain")
        cls.client = maplex.Client(cls.server.address)
        # Budget: the median predicted latency of random networks.
        rng = random.Random(7)
        sample = bytes(rng.randrange(9) for _ in range(22 * 200))
        cls.budget_ms = statistics.median(
            cls.client.predict_choices("pixel3", sample, space="fbnet").latency_ms)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()
        cls.server.cleanup()

    def test_front_is_within_budget_and_priced_by_the_server(self):
        front = checked_front(
            self, run_example(self.server, self.budget_ms, "--space", "fbnet", "--json").stdout,
            self.budget_ms)
        names = [b[0] for b in nas_search.FBNET_BLOCKS]
        predicted = self.client.predict("pixel3", [e["arch"] for e in front], space="fbnet")
        for e, p in zip(front, predicted):
            blocks = tuple(names.index(name) for name in e["arch"].split("-"))
            self.assertEqual(len(blocks), 22)
            self.assertEqual(nas_search.fbnet_string(blocks), e["arch"])
            self.assertAlmostEqual(e["latency_ms"], p.latency_ms, places=9)
            self.assertAlmostEqual(e["lower_ms"], p.lower_ms, places=9)
            self.assertAlmostEqual(e["upper_ms"], p.upper_ms, places=9)
            self.assertEqual(e["objective"], nas_search.fbnet_parameters(blocks))
        out = run_example(self.server, self.budget_ms, "--space", "fbnet").stdout
        self.assertIn("fbnet: device pixel3", out)
        self.assertIn("PROXY, not accuracy", out)

    def test_proxy_counts_the_searched_layers_by_hand(self):
        # All skip: only the six layers that change the shape have weights, a 1x1 convolution
        # and its BN each: 16->24, 24->32, 32->64, 64->112, 112->184, 184->352.
        all_skip = (nas_search.FBNET_SKIP,) * 22
        shape_changes = [(16, 24), (24, 32), (32, 64), (64, 112), (112, 184), (184, 352)]
        self.assertEqual(nas_search.fbnet_parameters(all_skip),
                         sum(i * o + 2 * o for i, o in shape_changes))  # 97,280
        self.assertEqual(nas_search.fbnet_parameters(all_skip), 97280)
        # Layer 2 (16 -> 24, stride 1) as k3_e1_g2: mid 16; expansion 8*16+32, depthwise
        # 16*9+32, projection 8*24+48 = 576 instead of the skip's 16*24+48 = 432.
        one_block = list(all_skip)
        one_block[1] = 1
        self.assertEqual(nas_search.fbnet_parameters(one_block), 97280 - 432 + 576)
        # Layer 1 (16 -> 16, stride 1) as k5_e6: mid 96; 16*96+192 + 96*25+192 + 96*16+32.
        one_block = list(all_skip)
        one_block[0] = 7
        self.assertEqual(nas_search.fbnet_parameters(one_block), 97280 + 1728 + 2592 + 1568)

    def test_proxy_matches_the_cases_the_cpp_space_is_tested_on(self):
        # tests/core/arch_space_test.cc, CostOfAllK3E1ByHand and CostOfMixedByHand, without
        # the stem and head (the same in every network; the proxy leaves them out).
        def k3_e1(ci, co):
            return (ci * ci + 2 * ci) + (9 * ci + 2 * ci) + (ci * co + 2 * co)
        all_k3_e1 = (k3_e1(16, 16) + k3_e1(16, 24) + 3 * k3_e1(24, 24) + k3_e1(24, 32) +
                     3 * k3_e1(32, 32) + k3_e1(32, 64) + 3 * k3_e1(64, 64) + k3_e1(64, 112) +
                     3 * k3_e1(112, 112) + k3_e1(112, 184) + 3 * k3_e1(184, 184) +
                     k3_e1(184, 352))
        self.assertEqual(nas_search.fbnet_parameters((0,) * 22), all_k3_e1)
        # All skip but layer 0 = k5_e6 and layer 5 = k3_e1_g2 (24 -> 32, stride 2, 2 groups).
        mixed = [nas_search.FBNET_SKIP] * 22
        mixed[0], mixed[5] = 7, 1
        l0 = (16 * 96 + 2 * 96) + (96 * 25 + 2 * 96) + (96 * 16 + 2 * 16)
        l5 = (12 * 24 + 48) + (24 * 9 + 48) + (12 * 32 + 64)
        self.assertEqual(nas_search.fbnet_parameters(mixed), 97280 - (24 * 32 + 64) + l0 + l5)
        self.assertEqual(nas_search.fbnet_string(mixed).split("-")[:6],
                         ["k5_e6", "skip", "skip", "skip", "skip", "k3_e1_g2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
