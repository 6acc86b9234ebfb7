"""End-to-end: `maplex report` for an FBNet device against a real maplex-server on 127.0.0.1.
The space is the function model's, so every figure must be scored on architectures the
model did not see: with --compare-with, exactly the architectures `maplex import --hold-out`
kept from every device; without it, each stored measurement predicted by a refit without it."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402
from report_test import FIGURES, parse  # noqa: E402

TARGET = "silver_4210r"
REFERENCES = {"gold_6240", "silver_4114", "2080ti_1", "pixel3"}
METRICS_ROW = "held-out Spearman ρ / within ±5 % / within ±10 % / MAPE / 90 % coverage"


class FbnetReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess(extra_args=["--retrain_debounce_seconds=600"]).start()
        cls.held_out_list = os.path.join(cls.server.tmp.name, "held_out.txt")
        mp.cli(cls.server.address, "import", "--latency", mp.FBNET_LATENCY_CSV, "--devices",
               mp.FBNET_DEVICES_CSV, "--only", ",".join(sorted(REFERENCES | {TARGET})),
               "--keep", f"{TARGET}=10", "--hold-out", "0.2", "--hold-out-list",
               cls.held_out_list, "--seed", "5", timeout=120)
        # An NB201-only device: it has nothing to report in FBNet.
        mp.cli(cls.server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
               mp.DEVICES_CSV, "--only", "titanx_1", "--keep", "titanx_1=10")
        mp.cli(cls.server.address, "retrain")
        with open(cls.held_out_list) as f:
            cls.held_out = f.read().split()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def summary(self, report):
        return dict((row[0], row[1]) for row in report.tables["summary"])

    def test_compare_with_scores_exactly_the_held_out_architectures(self):
        page = os.path.join(self.server.tmp.name, "fbnet.html")
        # No --space: the file tells.
        out = mp.cli(self.server.address, "report", "--device", TARGET, "--out", page,
                     "--compare-with", mp.FBNET_LATENCY_CSV, timeout=120).stdout
        self.assertEqual(len(self.held_out), 800)
        self.assertIn("space fbnet", out)
        self.assertIn(f"{len(self.held_out)} held-out architectures", out)
        report = parse(page)
        self.assertEqual(report.external, [])
        self.assertEqual(list(report.figures), FIGURES)
        for name, figure in report.figures.items():
            self.assertEqual(figure["svgs"], 1, name)
        summary = self.summary(report)
        self.assertEqual(summary["space"], "fbnet")
        self.assertIn("10 architectures", summary["stored measurements"])
        self.assertIn("800 architectures no device on the server measured",
                      summary["scored against"])
        self.assertIn("800 held-out architectures", summary["scored against"])
        self.assertIn("the served model", summary["predictions"])
        rho, _, acc10, _, _ = summary[METRICS_ROW].split(" / ")
        self.assertGreater(float(rho), 0.8)
        self.assertGreater(float(acc10), 0.2)
        # Figure 3: the function evaluation, scored on the same held-out architectures.
        curve = report.tables["accuracy-vs-samples-table"]
        self.assertEqual([row[0] for row in curve[1:]], ["3", "5", "10", "20"])
        for row in curve[1:]:
            self.assertGreater(float(row[1]), 0.5, row)
        with open(page, encoding="utf-8") as f:
            self.assertIn("scored on 800 held-out architectures (the ones no device on the "
                          "server measured)", f.read())
        similar = report.tables["similar-devices-table"]
        self.assertEqual(similar[0], ["rank", "device", "hardware", "category", "Spearman ρ"])
        self.assertEqual({row[1] for row in similar[1:]}, REFERENCES)
        rhos = [float(row[4]) for row in similar[1:]]
        self.assertEqual(rhos, sorted(rhos, reverse=True))

    def test_stored_measurements_are_cross_validated(self):
        page = os.path.join(self.server.tmp.name, "stored.html")
        out = mp.cli(self.server.address, "report", "--device", TARGET, "--space", "fbnet",
                     "--out", page, timeout=120).stdout
        self.assertIn("10 held-out architectures", out)
        report = parse(page)
        self.assertEqual(list(report.figures), FIGURES)
        summary = self.summary(report)
        self.assertIn("cross-validated", summary["predictions"])
        self.assertIn("stored measurements", summary["scored against"])
        # Refits without each measurement do not reproduce it: a served model answering
        # with what it was fit on would read MAPE 0.
        mape = float(summary[METRICS_ROW].split(" / ")[3].split()[0])
        self.assertGreater(mape, 0.5)

    def test_a_device_without_fbnet_measurements_is_refused(self):
        page = os.path.join(self.server.tmp.name, "none.html")
        r = mp.cli(self.server.address, "report", "--device", "titanx_1", "--space", "fbnet",
                   "--out", page, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not cross-validated", r.stderr)
        r = mp.cli(self.server.address, "report", "--device", TARGET, "--space", "nope",
                   "--out", page, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown space", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
