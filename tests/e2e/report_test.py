"""End-to-end: `maplex report` against a real maplex-server on 127.0.0.1 writes a
self-contained HTML page with the four figures and the similar-devices table, and headless
Chromium renders it (screenshot non-empty and not one colour)."""

import html.parser
import os
import shutil
import subprocess
import sys
import unittest

from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402

REFERENCES = {"silver_4114", "silver_4210r", "pixel3"}
FIGURES = ["predicted-vs-measured", "error-histogram", "accuracy-vs-samples", "similar-devices"]


class ReportParser(html.parser.HTMLParser):
    """Collects figures (id, caption, SVG count), table rows by table id, and every tag
    or attribute that would fetch something or run a script."""

    def __init__(self):
        super().__init__()
        self.figures = {}
        self.tables = {}
        self.external = []
        self._figure = self._table = self._row = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "link", "img", "iframe", "object", "embed"):
            self.external.append(tag)
        for name in ("src", "href"):
            if name in attrs:
                self.external.append(f"{tag} {name}={attrs[name]}")
        if tag == "figure":
            self._figure = attrs.get("id")
            self.figures[self._figure] = {"caption": "", "svgs": 0}
        elif tag == "figcaption":
            self._in_caption = True
        elif tag == "svg" and self._figure:
            self.figures[self._figure]["svgs"] += 1
        elif tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        elif tag == "figcaption":
            self._in_caption = False
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in_caption:
            self.figures[self._figure]["caption"] += data
        elif self._row:
            self._row[-1] += data


def parse(path):
    parser = ReportParser()
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    return parser


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess(extra_args=["--retrain_debounce_seconds=600"]).start()
        mp.cli(cls.server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
               mp.DEVICES_CSV, "--only", ",".join(sorted(REFERENCES)) + ",gold_6240",
               "--keep", "gold_6240=10")
        mp.cli(cls.server.address, "retrain")
        cls.page = os.path.join(cls.server.tmp.name, "report.html")
        cls.out = mp.cli(cls.server.address, "report", "--device", "gold_6240", "--out", cls.page,
                         "--compare-with", mp.LATENCY_CSV, timeout=60).stdout

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def test_page_has_the_four_figures_and_the_similar_devices(self):
        self.assertIn("15625 measured cells", self.out)
        report = parse(self.page)
        self.assertEqual(report.external, [])
        self.assertEqual(list(report.figures), FIGURES)
        for name, figure in report.figures.items():
            self.assertEqual(figure["svgs"], 1, name)
            self.assertTrue(figure["caption"].strip(), name)
        summary = dict((row[0], row[1]) for row in report.tables["summary"])
        self.assertIn("15284 cells with a connected output", summary["scored against"])
        rho = float(summary["Spearman ρ / within ±5 % / within ±10 % / MAPE / 90 % coverage"]
                    .split(" / ")[0])
        self.assertGreater(rho, 0.8)
        similar = report.tables["similar-devices-table"]
        self.assertEqual(similar[0], ["rank", "device", "hardware", "category", "weight"])
        self.assertEqual({row[1] for row in similar[1:]}, REFERENCES)
        weights = [float(row[4]) for row in similar[1:]]
        self.assertEqual(weights, sorted(weights, reverse=True))
        self.assertAlmostEqual(sum(weights), 1.0, delta=0.01)
        curve = report.tables[None]  # the accuracy-vs-samples table has no id
        self.assertEqual([row[0] for row in curve[1:]], ["3", "5", "10", "20"])

    def test_stored_measurements_only(self):
        page = os.path.join(self.server.tmp.name, "stored.html")
        out = mp.cli(self.server.address, "report", "--device", "gold_6240", "--out", page,
                     timeout=60).stdout
        self.assertIn("10 measured cells", out)
        report = parse(page)
        self.assertEqual(list(report.figures), FIGURES)
        # The served model answers its stored measurements with themselves; the page scores
        # held-out predictions instead (each cell refit without it), which are not exact.
        summary = dict((row[0], row[1]) for row in report.tables["summary"])
        self.assertIn("cross-validated", summary["predictions"])
        figures = summary["Spearman ρ / within ±5 % / within ±10 % / MAPE / 90 % coverage"]
        self.assertGreater(float(figures.split(" / ")[3].split()[0]), 0.5)  # MAPE, percent
        self.assertIn("held out", summary["cross-validated on the server"])
        r = mp.cli(self.server.address, "report", "--device", "pixel3", "--out", page,
                   check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("reference device", r.stderr)
        r = mp.cli(self.server.address, "report", "--device", "nobody", "--out", page, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)

    def test_headless_chromium_renders_it(self):
        chromium = shutil.which("chromium")
        if chromium is None:
            self.skipTest("chromium is not installed (scripts/setup installs it)")
        shot = os.path.join(self.server.tmp.name, "report.png")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        f"--screenshot={shot}", "--window-size=1200,2000",
                        "file://" + self.page],
                       capture_output=True, timeout=60, check=True)
        self.assertGreater(os.path.getsize(shot), 0)
        with Image.open(shot) as image:
            self.assertEqual(image.size, (1200, 2000))
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        # A page of text, axes and blue points: far from one colour.
        self.assertIsNotNone(colours)
        self.assertGreater(len(colours), 10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
