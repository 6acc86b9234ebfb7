"""Real maplex processes on 127.0.0.1 for end-to-end tests: a server on a free port over a
temporary database, and the `maplex` CLI pointed at it. Binaries come from MAPLEX_BIN_DIR
(set by CTest)."""

import os
import socket
import subprocess
import tempfile
import time

BIN_DIR = os.environ.get("MAPLEX_BIN_DIR", "build/bin")
SOURCE_DIR = os.environ.get("MAPLEX_SOURCE_DIR", ".")
LATENCY_CSV = os.path.join(SOURCE_DIR, "data", "nb201_latency.csv.gz")
DEVICES_CSV = os.path.join(SOURCE_DIR, "data", "nb201_devices.csv")
FBNET_LATENCY_CSV = os.path.join(SOURCE_DIR, "data", "fbnet_latency.csv.gz")
FBNET_DEVICES_CSV = os.path.join(SOURCE_DIR, "data", "fbnet_devices.csv")


def nb201_index_of_cell():
    """{cell string: official index} of NAS-Bench-201 (data/nb201_arch_index.csv): the
    store keys measurements by (space, canonical string) since schema v4."""
    with open(os.path.join(SOURCE_DIR, "data", "nb201_arch_index.csv")) as f:
        next(f)
        return {line.split(",")[1]: int(line.split(",")[0]) for line in f if line.strip()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """maplex-server as a child process; stop() sends SIGTERM and waits. With `replica_of`
    it is a predictor replica of that address (no database)."""

    def __init__(self, db_path=None, extra_args=(), replica_of=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="maplex_e2e_")
        self.db_path = db_path or os.path.join(self.tmp.name, "maplex.db")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.metrics_port = free_port()  # never the fixed default: servers run side by side
        self.log_path = os.path.join(self.tmp.name, "server.log")
        self.extra_args = list(extra_args)
        self.replica_of = replica_of
        self.process = None

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        role = ([f"--replica-of={self.replica_of}"] if self.replica_of
                else [f"--db={self.db_path}", "--retrain_debounce_seconds=0.5"])
        self.process = subprocess.Popen(
            [os.path.join(BIN_DIR, "maplex-server"), f"--listen={self.address}",
             f"--metrics_listen=127.0.0.1:{self.metrics_port}"] + role + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"maplex-server exited with {self.process.returncode}:\n"
                                   + self.logs())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("maplex-server did not listen in time:\n" + self.logs())

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=30):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=timeout)
        if self.process:
            self.log.close()
        return self.process.returncode if self.process else None

    def cleanup(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.tmp.cleanup()


def cli(address, *args, check=True, timeout=300):
    """Runs `maplex --server ADDRESS ARGS...`; returns the CompletedProcess."""
    result = subprocess.run([os.path.join(BIN_DIR, "maplex"), "--server", address, *args],
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"maplex {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result
