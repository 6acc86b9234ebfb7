"""End-to-end: a malformed number (or boolean) in a flag or a MAPLEX_* environment variable
stops maplex-server, maplex-agent and the maplex CLI at start, with a message that names the
flag or variable and the value (no atoi/atof turning "64MiB" into 64 or "abc" into 0)."""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402

SERVER = os.path.join(mp.BIN_DIR, "maplex-server")
AGENT = os.path.join(mp.BIN_DIR, "maplex-agent")
CLI = os.path.join(mp.BIN_DIR, "maplex")


class ConfigErrorsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        # Were a bad value accepted, the process would start serving: port 0 and a throwaway
        # database keep that harmless, and the timeout below ends it.
        self.base = [f"--listen=127.0.0.1:{mp.free_port()}",
                     f"--db={os.path.join(self.dir.name, 'maplex.db')}", "--metrics_listen="]

    def run_process(self, argv, env=None):
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MAPLEX_")}
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                                    env=dict(clean, **(env or {})))
        except subprocess.TimeoutExpired:
            self.fail(f"{argv} {env} started instead of refusing its configuration")
        return result.returncode, result.stdout + result.stderr

    def assert_refused(self, argv, env, *named):
        code, out = self.run_process(argv, env)
        self.assertNotEqual(code, 0, f"{argv} {env}: {out}")
        for text in named:
            self.assertIn(text, out, f"{argv} {env}")

    def test_server_environment_numbers(self):
        for variable, value in (("MAPLEX_MAX_MESSAGE_BYTES", "64MiB"),
                                ("MAPLEX_RETRAIN_DEBOUNCE_SECONDS", "abc"),
                                ("MAPLEX_SHUTDOWN_GRACE_SECONDS", "10s"),
                                ("MAPLEX_MAX_CALL_SECONDS", "nan"),
                                ("MAPLEX_AGENT_MEASUREMENTS_PER_SECOND", "1e999"),
                                ("MAPLEX_INSECURE_ALLOW_UNAUTHENTICATED", "yes please")):
            with self.subTest(variable=variable):
                self.assert_refused([SERVER] + self.base, {variable: value}, variable,
                                    f'"{value}"')

    def test_server_flag_numbers(self):
        for flag, value in (("max_message_bytes", "64MiB"), ("retrain_debounce_seconds", "abc"),
                            ("max_call_seconds", "1h")):
            with self.subTest(flag=flag):
                self.assert_refused([SERVER] + self.base + [f"--{flag}={value}"], None, flag, value)

    def test_agent_flag_numbers(self):
        for flag, value in (("budget", "ten"), ("threads", "4x"), ("max_seconds", "abc")):
            with self.subTest(flag=flag):
                self.assert_refused([AGENT, "--server=127.0.0.1:1", "--once", f"--{flag}={value}"],
                                    None, flag, value)

    def test_cli_numbers(self):
        self.assert_refused([CLI, "--server", "127.0.0.1:1", "--timeout", "3s", "health"], None,
                            "--timeout", '"3s"')
        self.assert_refused([CLI, "--server", "127.0.0.1:1", "predict", "--device", "d",
                             "--model-version", "latest", "1"], None, "--model-version", "latest")

    def test_well_formed_values_still_start(self):
        # The check above is about the values, not the variables: good ones pass.
        server = mp.ServerProcess()
        try:
            os.environ["MAPLEX_MAX_MESSAGE_BYTES"] = "1048576"
            os.environ["MAPLEX_INSECURE_ALLOW_UNAUTHENTICATED"] = "false"
            server.start()
        finally:
            del os.environ["MAPLEX_MAX_MESSAGE_BYTES"]
            del os.environ["MAPLEX_INSECURE_ALLOW_UNAUTHENTICATED"]
            server.stop()
            server.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
