"""End-to-end: `maplex-agent --measure_only` measures architectures of every registered
space (NB201 by index and by cell string, FBNet by its canonical string) with both built-in
runtimes, and refuses a line that no space parses. No server is involved."""

import os
import subprocess
import tempfile
import unittest

BIN_DIR = os.environ.get("MAPLEX_BIN_DIR", "build/bin")
QUICK = ["--max_repeats=5", "--max_seconds=1", "--threads=1"]
NB201_CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
              "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
FBNET = "-".join(["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3",
                  "k5_e6", "skip"] * 2 + ["k5_e6", "skip", "k3_e1_g2", "k5_e3"])


def measure_only(lines, runtime, *flags):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        return subprocess.run([os.path.join(BIN_DIR, "maplex-agent"), f"--runtime={runtime}",
                               *QUICK, *flags, f"--measure_only={f.name}"],
                              capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(f.name)


class MeasureOnlyTest(unittest.TestCase):
    def test_measures_every_space(self):
        for runtime in ("eigen", "onednn"):
            done = measure_only(["1462", "# a comment", NB201_CELL, FBNET], runtime)
            self.assertEqual(done.returncode, 0, done.stderr[-2000:])
            rows = [line.split(",") for line in done.stdout.strip().splitlines()]
            self.assertEqual(rows[0], ["arch_index", "median_ms", "p90_ms", "stddev_ms",
                                       "repeats", "stop_reason", "arch"])
            self.assertEqual(len(rows), 4)
            # Index 1462 is the all-conv3x3 cell: both lines are the same architecture.
            self.assertEqual(rows[1][0], "1462")
            self.assertEqual(rows[1][6], NB201_CELL)
            self.assertEqual(rows[2][0], "1462")
            self.assertEqual(rows[2][6], NB201_CELL)
            # FBNet has no NB201 index.
            self.assertEqual(rows[3][0], "")
            self.assertEqual(rows[3][6], FBNET)
            for row in rows[1:]:
                self.assertGreater(float(row[1]), 0)

    def test_independent_measurements_are_printed(self):
        done = measure_only([NB201_CELL], "onednn", "--independent_measurements=2",
                            "--csv_protocol")
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        header, row = [line.split(",") for line in done.stdout.strip().splitlines()]
        fields = dict(zip(header, row))
        medians = [float(v) for v in fields["independent_medians_ms"].split(";")]
        self.assertIn(len(medians), (2, 3))
        self.assertIn(float(fields["median_ms"]), [round(v, 6) for v in medians])

    def test_passes_measure_the_list_again_and_keep_the_lower_of_the_closest(self):
        done = measure_only([NB201_CELL, "1462", FBNET], "onednn", "--passes=2",
                            "--csv_protocol")
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        lines = done.stdout.strip().splitlines()
        header = lines[0].split(",")
        self.assertEqual(len(lines), 4)
        for line in lines[1:]:
            fields = dict(zip(header, line.split(",")))
            medians = [float(v) for v in fields["independent_medians_ms"].split(";")]
            self.assertEqual(len(medians), 2, line)
            self.assertEqual(float(fields["median_ms"]), round(min(medians), 6), line)
        # Each is one of the two step-10 mechanisms: both at once is refused.
        for flags in (["--passes=2", "--independent_measurements=2"], ["--passes=4"]):
            done = measure_only([NB201_CELL], "onednn", *flags)
            self.assertEqual(done.returncode, 2, flags)
            self.assertIn("--passes", done.stderr)

    def test_refuses_a_line_of_no_space(self):
        done = measure_only(["k5_e6-skip"], "eigen")
        self.assertEqual(done.returncode, 2)
        self.assertIn("k5_e6-skip", done.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
