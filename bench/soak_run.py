#!/usr/bin/python3
"""Soak: does the database stop growing under endless ingest with retrains? (issue #14)

    /usr/bin/python3 bench/soak_run.py                      # 10 min; prints the table
    /usr/bin/python3 bench/soak_run.py --duration 60        # harness check

Builds nothing: build/bin/{maplex-server,maplex} and build/python must exist
(bash scripts/build). Starts maplex-server on a free loopback port over a new temporary
database with the bundled data (`maplex import`, `maplex retrain`), every flag at its
default (keep the newest 10 model versions; retrain 2 s after data stops arriving) except
`--retrain_debounce_seconds` when given. Then, for `--duration` seconds, an agent-like
sender registers one device and every `--interval` seconds sends `--batch` new
measurements (new ids; latencies of a bundled device with a little noise, so each batch
changes what the model reads and a retrain follows), and every 30 s re-reports the same
descriptor (which must not retrain). Every 10 s it samples the size of the database file
and its WAL, the model versions stored (ListModels, paged), the served version and the
measurement count. Raw samples: build/soak/soak_run.json.
"""

import argparse
import gzip
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
sys.path.insert(0, os.path.join(ROOT, "build", "python"))

import grpc  # noqa: E402
from maplex.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc  # noqa: E402
from maplex.v1 import models_pb2, models_pb2_grpc, registry_pb2, registry_pb2_grpc  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(address, *args):
    subprocess.run([os.path.join(BIN, "maplex"), "--server", address, "--timeout", "600", *args],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def file_mib(path):
    return os.path.getsize(path) / 2**20 if os.path.exists(path) else 0.0


def bundled_latencies(device):
    """(arch_index, ms) of one column of the bundled latency table."""
    with gzip.open(os.path.join(ROOT, "data", "nb201_latency.csv.gz"), "rt") as f:
        header = f.readline().rstrip("\n").split(",")
        column = header.index(device)
        out = []
        for line in f:
            cells = line.rstrip("\n").split(",")
            if cells[column]:
                out.append((int(cells[0]), float(cells[column])))
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between batches")
    ap.add_argument("--batch", type=int, default=100, help="measurements per batch")
    ap.add_argument("--retrain_debounce_seconds", type=float, default=None)
    ap.add_argument("--keep_model_versions", type=int, default=None)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="maplex_soak_")
    db = os.path.join(work, "maplex.db")
    port = free_port()
    address = "127.0.0.1:%d" % port
    server_args = [os.path.join(BIN, "maplex-server"), "--listen", address, "--db", db,
                   "--metrics_listen", ""]
    if args.retrain_debounce_seconds is not None:
        server_args.append("--retrain_debounce_seconds=%g" % args.retrain_debounce_seconds)
    if args.keep_model_versions is not None:
        server_args.append("--keep_model_versions=%d" % args.keep_model_versions)
    log_path = os.path.join(work, "server.log")
    with open(log_path, "wb") as log:
        server = subprocess.Popen(server_args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            if server.poll() is not None:
                sys.exit("soak_run: maplex-server exited; see " + log_path)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("soak_run: maplex-server does not listen; see " + log_path)
                time.sleep(0.1)
        cli(address, "import", "--latency", "data/nb201_latency.csv.gz", "--devices",
            "data/nb201_devices.csv")
        cli(address, "retrain")

        channel = grpc.insecure_channel(address)
        registry = registry_pb2_grpc.DeviceRegistryStub(channel)
        ingest = ingest_pb2_grpc.IngestStub(channel)
        models = models_pb2_grpc.ModelsStub(channel)
        reg = registry_pb2.RegisterDeviceRequest(
            id="soak-agent", hardware_fingerprint="soak:board", hardware_name="Soak board")
        reg.config.runtime = "eigen"
        reg.config.precision = "fp32"
        reg.config.batch_size = 1
        reg.config.threads = 1
        reg.spec.category = "edge_cpu"
        reg.spec.compute_units = 4
        registry.RegisterDevice(reg, timeout=30)
        descriptor = ingest_pb2.ReportDescriptorRequest(device_id="soak-agent",
                                                        reference_workload_seconds=1.25)
        counter = descriptor.counters.add()
        counter.name = "instructions"
        counter.available = True
        counter.value = 1e9
        ingest.ReportDescriptor(descriptor, timeout=30)

        source = bundled_latencies("pixel3")
        rng = random.Random(1)

        def list_versions():
            versions, token = [], ""
            while True:
                r = models.ListModels(models_pb2.ListModelsRequest(page_token=token), timeout=30)
                versions += [m.version for m in r.models]
                token = r.next_page_token
                if not token:
                    return versions

        def served_version():
            return models.GetModel(models_pb2.GetModelRequest(version=0), timeout=30).version

        samples = []
        sent = 0
        start = time.monotonic()
        next_batch = start
        next_sample = start
        next_descriptor = start + 30
        first_version = served_version()
        while True:
            now = time.monotonic()
            if now >= next_sample:
                versions = list_versions()
                samples.append({
                    "t": round(now - start, 1),
                    "db_mib": round(file_mib(db), 2),
                    "wal_mib": round(file_mib(db + "-wal"), 2),
                    "versions_stored": len(versions),
                    "served_version": served_version(),
                    "measurements_sent": sent,
                })
                print("t=%5.0fs db=%7.1f MiB wal=%6.1f MiB versions=%2d served=v%d sent=%d" % (
                    samples[-1]["t"], samples[-1]["db_mib"], samples[-1]["wal_mib"],
                    len(versions), samples[-1]["served_version"], sent), flush=True)
                next_sample += 10
            if now - start >= args.duration:
                break
            if now >= next_descriptor:
                ingest.ReportDescriptor(descriptor, timeout=30)  # the same values again
                next_descriptor += 30
            if now >= next_batch:
                batch = ingest_pb2.MeasurementBatch()
                for _ in range(args.batch):
                    arch, ms = source[rng.randrange(len(source))]
                    m = batch.measurements.add()
                    m.id = "soak:%d" % sent
                    m.device_id = "soak-agent"
                    m.arch.index = arch
                    m.stats.median_ms = ms * rng.uniform(0.95, 1.05)
                    m.stats.p90_ms = m.stats.median_ms * 1.05
                    m.stats.repeats = 10
                    m.protocol.tool = "soak_run"
                    sent += 1
                for ack in ingest.StreamMeasurements(iter([batch]), timeout=60):
                    assert ack.inserted == args.batch, ack
                next_batch += args.interval
            time.sleep(max(0.0, min(next_batch, next_sample) - time.monotonic()))
        last_version = served_version()
        channel.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    skipped = open(log_path).read().count("event=training_skipped")
    deleted = open(log_path).read().count("event=model_versions_deleted")
    result = {"command": " ".join(["/usr/bin/python3", "bench/soak_run.py"] + sys.argv[1:]),
              "retrains": last_version - first_version, "training_skipped_lines": skipped,
              "retention_lines": deleted, "samples": samples,
              "db_mib_after_shutdown": round(file_mib(db), 2)}
    os.makedirs(os.path.join(ROOT, "build", "soak"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "soak", "soak_run.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("retrains during the soak: %d (v%d -> v%d); training_skipped: %d; retention runs "
          "that deleted versions: %d; db after shutdown (WAL checkpointed): %.1f MiB" % (
              result["retrains"], first_version, last_version, skipped, deleted,
              result["db_mib_after_shutdown"]))
    print("server log:", log_path)


if __name__ == "__main__":
    main()
