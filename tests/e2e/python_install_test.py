"""`pip install ./client/python` works offline on Debian 12 and the installed package talks to
a real maplex-server: a venv that sees Debian's grpcio/protobuf (--system-site-packages),
pip with --no-index (nothing may be downloaded), then a program run by the venv's Python
without PYTHONPATH predicts through the installed package."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402

CLIENT = ("import json, sys, maplex\n"
          "with maplex.Client(sys.argv[1], timeout=20) as c:\n"
          "    p = c.predict('pixel3', [0, 15624])\n"
          "    print(json.dumps({'module': maplex.__file__,\n"
          "                      'latency_ms': [x.latency_ms for x in p]}))\n")


class PipInstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="maplex_pip_")
        cls.server = mp.ServerProcess().start()
        mp.cli(cls.server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
               mp.DEVICES_CSV, "--only", "gold_6240,pixel3")
        mp.cli(cls.server.address, "retrain")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_installs_offline_and_predicts(self):
        venv = os.path.join(self.tmp, "venv")
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                       check=True)
        python = os.path.join(venv, "bin", "python")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PIP_NO_INDEX"] = "1"  # nothing may come from an index
        package = os.path.join(mp.SOURCE_DIR, "client", "python")
        install = subprocess.run([python, "-m", "pip", "install", "--no-cache-dir", package],
                                 env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(install.returncode, 0, install.stdout + install.stderr)
        # The source tree is left as it was (the backend writes into temporary directories).
        status = subprocess.run(["git", "-C", mp.SOURCE_DIR, "status", "--porcelain",
                                 "--ignored", "client/python"],
                                capture_output=True, text=True)
        if status.returncode == 0:  # a checkout (not an exported tree)
            self.assertNotIn("client/python/maplex/v1", status.stdout)
        run = subprocess.run([python, "-c", CLIENT, self.server.address], env=env,
                             cwd=self.tmp, capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        out = json.loads(run.stdout)
        self.assertTrue(out["module"].startswith(venv), out["module"])
        self.assertEqual(len(out["latency_ms"]), 2)
        self.assertTrue(all(x > 0 for x in out["latency_ms"]), out)


if __name__ == "__main__":
    unittest.main()
