"""End-to-end: the `maplex` CLI against a real maplex-server process on 127.0.0.1 —
import, devices, predict, models, retrain, health, exit codes, graceful stop, restart,
and a kill -9 in the middle of an import."""

import csv
import gzip
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402

SMALL = ["silver_4114", "silver_4210r", "pixel3", "gold_6240"]


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess().start()
        cls.addr = cls.server.address
        cls.import_out = mp.cli(cls.addr, "import", "--latency", mp.LATENCY_CSV, "--devices",
                                mp.DEVICES_CSV, "--only", ",".join(SMALL), "--keep", "gold_6240=10")
        mp.cli(cls.addr, "retrain")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def test_import_reports_and_is_idempotent(self):
        self.assertIn("imported: 46885 new measurements", self.import_out.stdout)
        again = mp.cli(self.addr, "import", "--latency", mp.LATENCY_CSV, "--devices",
                       mp.DEVICES_CSV, "--only", "silver_4114,pixel3")
        self.assertIn("imported: 0 new measurements, 31250 already stored", again.stdout)

    def test_devices_list_show(self):
        out = mp.cli(self.addr, "devices", "list", "--format", "csv").stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        self.assertEqual([r["ID"] for r in rows], sorted(SMALL))
        gold = next(r for r in rows if r["ID"] == "gold_6240")
        self.assertEqual(gold["MEASURED"], "10")
        self.assertEqual(gold["HARDWARE"], "Intel Xeon Gold 6240")
        show = mp.cli(self.addr, "devices", "show", "pixel3").stdout
        self.assertIn("Google Pixel 3", show)
        self.assertIn("measured_archs", show)
        self.assertRegex(show, r"cv_accuracy +not scored: reference device")
        gold_show = mp.cli(self.addr, "devices", "show", "gold_6240").stdout
        self.assertRegex(gold_show, r"cv_accuracy +cross-validated \(model version \d+\): "
                                    r"Spearman [0-9.]+.*10 measurements held out, 5 folds")
        data = json.loads(mp.cli(self.addr, "devices", "show", "pixel3", "--format", "json").stdout)
        self.assertEqual(data["config"]["batch_size"], 1)
        mobile = mp.cli(self.addr, "devices", "list", "--category", "mobile").stdout
        self.assertIn("pixel3", mobile)
        self.assertNotIn("silver_4114", mobile)

    def test_predict_formats_and_accuracy(self):
        table = mp.cli(self.addr, "predict", "--device", "gold_6240", "0", "15624",
                       "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|").stdout
        lines = table.strip().splitlines()
        self.assertEqual(lines[0].split()[:3], ["INDEX", "CELL", "LATENCY_MS"])
        self.assertEqual(len(lines), 4)
        as_json = json.loads(mp.cli(self.addr, "predict", "--device", "gold_6240", "7",
                                    "--format", "json").stdout)
        self.assertEqual(as_json["predictions"][0]["arch_index"], 7)
        self.assertGreater(int(as_json["model_version"]), 0)
        out = mp.cli(self.addr, "predict", "--device", "gold_6240", "--all", "--format", "csv",
                     "--compare-with", mp.LATENCY_CSV,
                     "--output", os.path.join(self.server.tmp.name, "all.csv"))
        self.assertIn("15284 cells with a connected output; 341 disconnected", out.stdout)
        with open(os.path.join(self.server.tmp.name, "all.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 15625)
        self.assertIn("MEASURED_MS", rows[0])
        rho = float(out.stdout.split("Spearman rho ")[1].split()[0])
        self.assertGreater(rho, 0.8)

    def test_predict_from_file(self):
        path = os.path.join(self.server.tmp.name, "archs.txt")
        with open(path, "w") as f:
            f.write("# my candidates\n12\n\n|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
                    "|skip_connect~0|skip_connect~1|skip_connect~2|\n")
        out = mp.cli(self.addr, "predict", "--device", "pixel3", "--file", path,
                     "--format", "csv").stdout
        self.assertEqual(len(out.strip().splitlines()), 3)

    def test_models(self):
        out = mp.cli(self.addr, "models", "list").stdout
        self.assertIn("VERSION", out)
        self.assertIn("yes", out)
        show = mp.cli(self.addr, "models", "show").stdout
        self.assertIn("gold_6240", show)
        self.assertIn("adapted", show)
        self.assertIn("reference", show)
        # Only the target is scored, on held-out measurements; in-sample it read 1.0000.
        gold = next(line.split() for line in show.splitlines() if line.startswith("gold_6240"))
        self.assertEqual(gold[1], "nb201")        # SPACE
        self.assertEqual(gold[4:6], ["10", "5"])  # CV_SCORED, CV_FOLDS
        self.assertLess(float(gold[6]), 1.0)      # CV_SPEARMAN
        self.assertEqual(gold[-1], "cross-validated")
        pixel = next(line.split() for line in show.splitlines() if line.startswith("pixel3"))
        self.assertEqual(pixel[4:10], ["-"] * 6)

    def test_health(self):
        out = mp.cli(self.addr, "health").stdout
        self.assertIn("maplex.v1.Predictor", out)
        self.assertNotIn("NOT_SERVING", out)

    def test_health_of_one_service(self):
        out = mp.cli(self.addr, "health", "--service", "maplex.v1.Ingest").stdout
        self.assertIn("maplex.v1.Ingest", out)
        self.assertNotIn("maplex.v1.Predictor", out)
        # Before any model the server as a whole is NOT_SERVING, its registry already serves:
        # what a container health check of a fresh primary asks.
        fresh = mp.ServerProcess().start()
        try:
            self.assertEqual(mp.cli(fresh.address, "health", check=False).returncode, 1)
            registry = mp.cli(fresh.address, "health", "--service", "maplex.v1.DeviceRegistry")
            self.assertIn("SERVING", registry.stdout)
        finally:
            fresh.stop()
            fresh.cleanup()

    def test_failures_have_codes_and_messages(self):
        r = mp.cli(self.addr, "predict", "--device", "nobody", "1", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        r = mp.cli(self.addr, "predict", "--device", "pixel3", "|bogus|", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("archs[0].cell", r.stderr)
        r = mp.cli(self.addr, "predict", "--device", "pixel3", check=False)
        self.assertEqual(r.returncode, 2)
        r = mp.cli(self.addr, "devices", "frobnicate", check=False)
        self.assertEqual(r.returncode, 2)
        r = mp.cli(self.addr, "import", "--latency", "/nonexistent.csv", "--devices",
                   mp.DEVICES_CSV, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent.csv", r.stderr)
        r = mp.cli("127.0.0.1:1", "--timeout", "2", "devices", "list", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAVAILABLE", r.stderr)

    def test_every_command_has_help(self):
        overview = mp.cli(self.addr, "--help").stdout
        for command in (["devices", "list"], ["devices", "show"], ["devices", "retire"],
                        ["devices", "label"], ["predict"], ["models", "list"],
                        ["models", "show"], ["retrain"], ["import"], ["health"],
                        ["tokens", "create"], ["tokens", "list"], ["tokens", "revoke"]):
            self.assertIn(" ".join(command), overview)
            out = mp.cli(self.addr, *command, "--help").stdout
            self.assertIn("Usage: maplex", out)


class LifecycleTest(unittest.TestCase):
    def test_import_of_changed_values_is_refused_unless_replace(self):
        server = mp.ServerProcess().start()
        try:
            mp.cli(server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
                   mp.DEVICES_CSV, "--only", "pixel3")
            # The same file with the first three cells of pixel3 corrected (doubled).
            corrected = os.path.join(server.tmp.name, "corrected.csv")
            with gzip.open(mp.LATENCY_CSV, "rt") as f:
                rows = list(csv.reader(f))
            column = rows[0].index("pixel3")
            with open(corrected, "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["arch_index", "arch_str", "pixel3"])
                for i, row in enumerate(rows[1:]):
                    value = float(row[column]) * (2 if i < 3 else 1)
                    out.writerow([row[0], row[1], repr(value)])
            args = ["import", "--latency", corrected, "--devices", mp.DEVICES_CSV]
            refused = mp.cli(server.address, *args, check=False)
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("ALREADY_EXISTS", refused.stderr)
            self.assertIn('"import:pixel3:0"', refused.stderr)
            replaced = mp.cli(server.address, *args, "--replace")
            self.assertIn("imported: 15625 new measurements", replaced.stdout)
            with sqlite3.connect(server.db_path) as db:
                by_cell = dict(db.execute(
                    "SELECT arch, median_ms FROM measurements WHERE device_id = 'pixel3' "
                    "AND space = 'nb201'"))
                stored = {arch: by_cell[rows[1 + arch][1]] for arch in range(4)}
                count = db.execute("SELECT count(*) FROM measurements WHERE device_id = "
                                   "'pixel3'").fetchone()[0]
            self.assertEqual(count, 15625)  # replaced, not added
            for arch in range(4):
                original = float(rows[1 + arch][column])
                self.assertAlmostEqual(stored[arch], original * (2 if arch < 3 else 1))
        finally:
            server.stop()
            server.cleanup()

    def test_sigterm_stops_cleanly_and_restart_keeps_everything(self):
        server = mp.ServerProcess().start()
        try:
            mp.cli(server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
                   mp.DEVICES_CSV, "--only", "silver_4114,pixel3")
            mp.cli(server.address, "retrain")
            before = mp.cli(server.address, "predict", "--device", "pixel3", "1", "2", "3").stdout
            self.assertEqual(server.stop(), 0)
            self.assertIn("event=shutdown_finished", server.logs())
            # The WAL was checkpointed into the main file at shutdown.
            wal = server.db_path + "-wal"
            self.assertTrue(not os.path.exists(wal) or os.path.getsize(wal) == 0)
            server.start()
            after = mp.cli(server.address, "predict", "--device", "pixel3", "1", "2", "3").stdout
            self.assertEqual(before, after)
        finally:
            server.stop()
            server.cleanup()

    def test_kill_9_during_import_loses_and_duplicates_nothing(self):
        server = mp.ServerProcess().start()
        try:
            args = ["import", "--latency", mp.LATENCY_CSV, "--devices", mp.DEVICES_CSV,
                    "--only", "silver_4114,silver_4210r,gold_6240", "--batch", "500"]
            importer = mp.subprocess.Popen(
                [os.path.join(mp.BIN_DIR, "maplex"), "--server", server.address, *args],
                stdout=mp.subprocess.PIPE, stderr=mp.subprocess.PIPE)
            time.sleep(1.0)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            importer.wait(timeout=60)
            server.start()
            mp.cli(server.address, "import", *args[1:])
            self.assertEqual(server.stop(), 0)
            db = sqlite3.connect(server.db_path)
            count, distinct = db.execute(
                "SELECT count(*), count(DISTINCT measurement_id) FROM measurements").fetchone()
            self.assertEqual(count, 3 * 15625)
            self.assertEqual(distinct, count)
        finally:
            server.stop()
            server.cleanup()

    def test_refuses_a_file_that_is_not_its_database(self):
        server = mp.ServerProcess()
        try:
            with open(server.db_path, "wb") as f:
                f.write(b"this is not a database" * 100)
            server.start(wait=False)
            self.assertEqual(server.process.wait(timeout=30), 1)
            self.assertIn("not a readable SQLite database", server.logs())
            with open(server.db_path, "rb") as f:
                self.assertEqual(f.read(), b"this is not a database" * 100)
        finally:
            server.cleanup()


class TokensCliTest(unittest.TestCase):
    """--auth=token through the binaries: bootstrap, tokens create/list/revoke, --token_file
    and MAPLEX_TOKEN, refusals with their codes, and no open non-loopback address."""

    def test_bootstrap_create_use_and_revoke(self):
        server = mp.ServerProcess(extra_args=["--auth=token"])
        operator_file = os.path.join(server.tmp.name, "operator.token")
        server.extra_args.append(f"--bootstrap_token_file={operator_file}")
        try:
            server.start()
            self.assertEqual(os.stat(operator_file).st_mode & 0o777, 0o600)
            op = ["--token_file", operator_file]
            created = mp.cli(server.address, *op, "tokens", "create", "--role", "client",
                             "--name", "nas loop")
            secret = created.stdout.strip()
            self.assertTrue(secret.startswith("mplx_"), created.stdout)
            self.assertIn("shown only now", created.stderr)

            listed = mp.cli(server.address, *op, "tokens", "list").stdout
            self.assertIn("nas loop", listed)
            self.assertNotIn(secret, listed)

            # The client token reads, through --token and through MAPLEX_TOKEN ...
            mp.cli(server.address, "--token", secret, "devices", "list")
            env_run = subprocess.run(
                [os.path.join(mp.BIN_DIR, "maplex"), "--server", server.address, "models",
                 "list"], capture_output=True, text=True, timeout=60,
                env={**os.environ, "MAPLEX_TOKEN": secret})
            self.assertEqual(env_run.returncode, 0, env_run.stderr)
            # ... but may not manage tokens; no token at all is unauthenticated.
            r = mp.cli(server.address, "--token", secret, "tokens", "list", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("PERMISSION_DENIED", r.stderr)
            r = mp.cli(server.address, "devices", "list", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("UNAUTHENTICATED", r.stderr)

            token_id = next(line.split()[0] for line in listed.splitlines()
                            if "nas loop" in line)
            mp.cli(server.address, *op, "tokens", "revoke", token_id)
            r = mp.cli(server.address, "--token", secret, "devices", "list", check=False)
            self.assertIn("UNAUTHENTICATED", r.stderr)
            self.assertIn("revoked", r.stderr)

            # A restart keeps the tokens and does not bootstrap again.
            server.stop()
            server.start()
            mp.cli(server.address, *op, "tokens", "list")
        finally:
            server.stop()
            server.cleanup()

    def test_refuses_an_open_non_loopback_address(self):
        server = mp.ServerProcess()
        try:
            server.address = f"0.0.0.0:{server.port}"
            server.start(wait=False)
            self.assertEqual(server.process.wait(timeout=30), 1)
            self.assertIn("without authentication", server.logs())
        finally:
            server.cleanup()

    def test_agent_takes_security_flags(self):
        out = subprocess.run([os.path.join(mp.BIN_DIR, "maplex-agent"), "--helpfull"],
                             capture_output=True, text=True, timeout=30).stdout
        for flag in ("--token", "--token_file", "--ca", "--client_cert", "--client_key"):
            self.assertIn(flag, out)


class FbnetCliTest(unittest.TestCase):
    """`maplex import` of FBNet's file (column `arch`: canonical strings) beside NB201 data,
    and `maplex predict --space fbnet`."""

    def test_import_fbnet_beside_nb201(self):
        server = mp.ServerProcess().start()
        try:
            mp.cli(server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
                   mp.DEVICES_CSV, "--only", "pixel3", "--keep", "pixel3=5")
            out = mp.cli(server.address, "import", mp.FBNET_LATENCY_CSV, "--devices",
                         mp.FBNET_DEVICES_CSV, "--only", "pixel3,samsung_a50").stdout
            self.assertIn("imported: 8000 new measurements, 0 already stored", out)
            again = mp.cli(server.address, "import", mp.FBNET_LATENCY_CSV, "--devices",
                           mp.FBNET_DEVICES_CSV, "--only", "pixel3").stdout
            self.assertIn("imported: 0 new measurements, 4000 already stored", again)
            # pixel3 is one device known in both spaces.
            show = json.loads(mp.cli(server.address, "devices", "show", "pixel3", "--format",
                                     "json").stdout)
            self.assertEqual(show["measurement_count_by_space"], {"nb201": "5", "fbnet": "4000"})
            with gzip.open(mp.FBNET_LATENCY_CSV, "rt") as f:
                rows = list(csv.reader(f))
            column = rows[0].index("pixel3")
            with sqlite3.connect(server.db_path) as db:
                stored = dict(db.execute(
                    "SELECT arch, median_ms FROM measurements WHERE device_id = 'pixel3' "
                    "AND space = 'fbnet'"))
            self.assertEqual(len(stored), 4000)
            for row in rows[1:50]:
                self.assertEqual(stored[row[0]], float(row[column]))
            # Predict with FBNet strings: a bad one is named by position; a good one is
            # answered by the FBNet function model once a version is trained.
            first = rows[1][0]
            bad = mp.cli(server.address, "predict", "--device", "pixel3", "--space", "fbnet",
                         first, first.replace("k5_e6", "k9_e6", 1), check=False)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("INVALID_ARGUMENT", bad.stderr)
            self.assertIn("archs[1].canonical", bad.stderr)
            mp.cli(server.address, "retrain")
            # 200 architectures: the CLI sends them as one compact batch, packed two choices
            # per byte (4,400 bytes one per choice, above the client's threshold).
            some = [row[0] for row in rows[1:201]]
            good = mp.cli(server.address, "predict", "--device", "samsung_a50", "--space",
                          "fbnet", *some, "--format", "csv")
            lines = good.stdout.strip().splitlines()
            self.assertEqual(lines[0], "ARCH,LATENCY_MS,LOWER_MS,UPPER_MS")
            self.assertEqual([line.split(",")[0] for line in lines[1:]], some)
            a50 = rows[0].index("samsung_a50")
            # A reference device: its own additive fit; the median of 40 within 10 % of what
            # it measured (whole milliseconds on this phone).
            errors = sorted(abs(float(line.split(",")[1]) / float(row[a50]) - 1)
                            for line, row in zip(lines[1:], rows[1:41]))
            self.assertLess(errors[len(errors) // 2], 0.10)
            # models show: the FBNet part (two references) beside NB201's.
            show = mp.cli(server.address, "models", "show").stdout
            fbnet = next(line.split() for line in show.splitlines() if line.startswith("fbnet "))
            self.assertEqual(fbnet[1:3], ["yes", "function"])
            self.assertEqual(fbnet[4:7], ["2", "0", "8000"])  # REFERENCES, TARGETS, MEASUREMENTS
            self.assertTrue(any(line.startswith("pixel3") and " fbnet " in line
                                for line in show.splitlines()))
        finally:
            server.stop()
            server.cleanup()

    def test_import_holds_out_architectures_for_every_device(self):
        server = mp.ServerProcess().start()
        try:
            lists = []
            for attempt in range(2):  # the same seed holds out the same architectures
                path = os.path.join(server.tmp.name, f"held_out_{attempt}.txt")
                out = mp.cli(server.address, "import", mp.FBNET_LATENCY_CSV, "--devices",
                             mp.FBNET_DEVICES_CSV, "--only", "pixel3,samsung_a50",
                             "--hold-out", "0.25", "--hold-out-list", path, "--seed", "5").stdout
                self.assertIn("held out: 1000 of 4000 architectures", out)
                with open(path) as f:
                    lists.append(f.read().split())
            self.assertEqual(lists[0], lists[1])
            held_out = set(lists[0])
            self.assertEqual(len(held_out), 1000)
            with sqlite3.connect(server.db_path) as db:
                for device in ("pixel3", "samsung_a50"):
                    stored = {a for (a,) in db.execute(
                        "SELECT arch FROM measurements WHERE device_id = ? AND space = 'fbnet'",
                        (device,))}
                    self.assertEqual(len(stored), 3000)
                    self.assertFalse(stored & held_out)
            bad = mp.cli(server.address, "import", mp.FBNET_LATENCY_CSV, "--devices",
                         mp.FBNET_DEVICES_CSV, "--hold-out", "1.5", "--hold-out-list", path,
                         check=False)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("--hold-out wants a share in (0, 1)", bad.stderr)
        finally:
            server.stop()
            server.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
