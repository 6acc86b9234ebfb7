"""End-to-end: one primary and two predictor replicas (`maplex-server --replica-of`) on
127.0.0.1. Replicas are NOT_SERVING until the primary has a model, then serve each version
the primary trains with predictions identical to the primary's."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402

DEVICES = "silver_4114,silver_4210r,gold_6240"


def predict_all(address, device="gold_6240"):
    """Every cell's prediction on `device` as the parsed JSON answer of `maplex predict`."""
    return json.loads(mp.cli(address, "predict", "--device", device, "--all",
                             "--format", "json").stdout)


def wait_for_version(address, version, timeout=20):
    """Polls the replica until it answers from `version` or later; returns its predictions.
    (A later version can only be the primary's own debounced retrain on the same data,
    which predicts bit-identically.)"""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = mp.cli(address, "predict", "--device", "gold_6240", "0", "--format", "json",
                   check=False)
        if r.returncode == 0 and int(json.loads(r.stdout)["model_version"]) >= version:
            return predict_all(address)["predictions"]
        time.sleep(0.2)
    raise AssertionError(f"{address} did not serve model version {version} in {timeout} s")


def import_gold(address, keep):
    mp.cli(address, "import", "--latency", mp.LATENCY_CSV, "--devices", mp.DEVICES_CSV,
           "--only", DEVICES, "--keep", f"gold_6240={keep}")


class ReplicaTest(unittest.TestCase):
    def setUp(self):
        # Versions come from explicit retrains: the debounced retrain stays out of the way.
        self.primary = mp.ServerProcess(extra_args=["--retrain_debounce_seconds=600"]).start()
        self.replicas = [mp.ServerProcess(replica_of=self.primary.address).start()
                         for _ in range(2)]

    def tearDown(self):
        for p in self.replicas + [self.primary]:
            p.stop()
            p.cleanup()

    def test_retrains_on_the_primary_reach_both_replicas(self):
        for r in self.replicas:
            health = mp.cli(r.address, "health", check=False)
            self.assertEqual(health.returncode, 1, health.stdout)
            self.assertIn("NOT_SERVING", health.stdout)

        import_gold(self.primary.address, 10)
        v1 = int(mp.cli(self.primary.address, "retrain").stdout.splitlines()[1].split()[0])
        primary_v1 = predict_all(self.primary.address)
        self.assertEqual(int(primary_v1["model_version"]), v1)
        self.assertEqual(len(primary_v1["predictions"]), 15625)
        for r in self.replicas:
            self.assertEqual(wait_for_version(r.address, v1), primary_v1["predictions"])
            health = mp.cli(r.address, "health")
            self.assertNotIn("NOT_SERVING", health.stdout)
            self.assertIn("not served here", health.stdout)  # registry and ingest
            retrain = mp.cli(r.address, "retrain", check=False)
            self.assertEqual(retrain.returncode, 1)
            self.assertIn("replica of " + self.primary.address, retrain.stderr)

        # More samples of gold_6240, a second retrain: a different model reaches both.
        import_gold(self.primary.address, 30)
        v2 = int(mp.cli(self.primary.address, "retrain").stdout.splitlines()[1].split()[0])
        self.assertGreater(v2, v1)
        primary_v2 = predict_all(self.primary.address)
        self.assertNotEqual(primary_v2["predictions"], primary_v1["predictions"])
        for r in self.replicas:
            self.assertEqual(wait_for_version(r.address, v2), primary_v2["predictions"])
            self.assertIn("event=replica_model_served", r.logs())

    def test_refuses_a_database(self):
        bad = mp.ServerProcess(replica_of=self.primary.address, extra_args=["--db=x.db"])
        try:
            bad.start(wait=False)
            self.assertEqual(bad.process.wait(timeout=30), 2)
            self.assertIn("a replica holds no database", bad.logs())
        finally:
            bad.stop()
            bad.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
