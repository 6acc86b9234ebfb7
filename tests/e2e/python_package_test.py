"""The Python client package (client/python/maplex) against a real maplex-server on
127.0.0.1: predictions, the prediction stream, device and model queries, health and typed
errors. What the real server cannot show yet (it has no auth or TLS) — the bearer token on
the wire, the TLS channel with a CA bundle, deadlines — is checked against a small
in-process Python gRPC server that records what it receives."""

import concurrent.futures
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402

import maplex  # noqa: E402  (from build/python, assembled by the build)
from maplex.v1 import predictor_pb2, predictor_pb2_grpc  # noqa: E402

DEVICES = ["gold_6240", "pixel3", "silver_4114"]
ALL_CONV3 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
             "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


class LiveServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess().start()
        mp.cli(cls.server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
               mp.DEVICES_CSV, "--only", ",".join(DEVICES), "--keep", "gold_6240=10")
        mp.cli(cls.server.address, "retrain")
        cls.client = maplex.Client(cls.server.address, timeout=20)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()
        cls.server.cleanup()

    def test_predict_by_index_and_cell(self):
        predictions = self.client.predict("pixel3", [5, 0, ALL_CONV3])
        self.assertEqual(len(predictions), 3)
        self.assertEqual([p.arch_index for p in predictions[:2]], [5, 0])
        version = self.client.get_model().version
        for p in predictions:
            self.assertIsInstance(p, maplex.Prediction)
            self.assertEqual(p.model_version, version)
            self.assertLess(0, p.lower_ms)
            self.assertLessEqual(p.lower_ms, p.latency_ms)
            self.assertLessEqual(p.latency_ms, p.upper_ms)
        # The all-conv3x3 cell is the largest network: slower than the cell with index 0.
        self.assertGreater(predictions[2].latency_ms, predictions[1].latency_ms)

    def test_predict_columns_match_predict(self):
        archs = list(range(0, 15625, 7)) + [ALL_CONV3]
        rows = self.client.predict("pixel3", archs)
        columns = self.client.predict_columns("pixel3", archs)
        self.assertIsInstance(columns, maplex.PredictionColumns)
        self.assertEqual(len(columns), len(archs))
        self.assertEqual(columns.model_version, rows[0].model_version)
        self.assertEqual(list(columns.latency_ms), [p.latency_ms for p in rows])
        self.assertEqual(list(columns.lower_ms), [p.lower_ms for p in rows])
        self.assertEqual(list(columns.upper_ms), [p.upper_ms for p in rows])
        with self.assertRaises(maplex.NotFound):
            self.client.predict_columns("no_such_device", [1])
        # The same cells as a compact batch of edge op codes.
        ops = {"none": 0, "skip_connect": 1, "nor_conv_1x1": 2, "nor_conv_3x3": 3,
               "avg_pool_3x3": 4}
        cells = [ALL_CONV3, "|none~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"]
        choices = bytes(ops[e.split("~")[0]] for cell in cells
                        for node in cell.strip("|").split("|+|") for e in node.split("|"))
        compact = self.client.predict_choices("pixel3", choices)
        self.assertEqual(list(compact.latency_ms),
                         [p.latency_ms for p in self.client.predict("pixel3", cells)])
        with self.assertRaises(maplex.InvalidArgument):
            self.client.predict_choices("pixel3", bytes([0, 0, 0, 0, 0, 9]))
        # A large batch goes packed two choices per byte; one byte per choice answers alike.
        self.assertEqual(maplex.client.pack_choices(bytes([1, 2, 3, 4, 5])),
                         bytes([0x21, 0x43, 0x05]))
        many = choices * 400  # 4,800 bytes: above PACK_CHOICES_FROM_BYTES
        self.assertGreaterEqual(len(many), maplex.client.PACK_CHOICES_FROM_BYTES)
        sent = maplex.client.choices_batch(many, "nb201")
        self.assertEqual((sent.bits_per_choice, len(sent.choices)), (4, 2400))
        self.assertEqual(maplex.client.choices_batch(many, "nb201", pack=False).choices, many)
        self.assertEqual(maplex.client.choices_batch(choices, "nb201").bits_per_choice, 0)
        # A code of 16 or more anywhere keeps the batch one byte per choice; 15 still packs.
        for code, bits in ((16, 0), (255, 0), (15, 4)):
            batch = bytearray(many)
            batch[len(batch) // 2] = code
            self.assertEqual(maplex.client.choices_batch(bytes(batch), "nb201").bits_per_choice,
                             bits)
        packed = self.client.predict_choices("pixel3", many)
        unpacked = self.client.predict_choices("pixel3", many, pack=False)
        self.assertEqual(len(packed), 800)
        self.assertEqual(list(packed.latency_ms), list(unpacked.latency_ms))
        self.assertEqual(list(packed.upper_ms), list(unpacked.upper_ms))
        self.assertEqual(list(packed.latency_ms[:2]), list(compact.latency_ms))
        with self.assertRaises(maplex.InvalidArgument):
            self.client.predict_choices("pixel3", bytes([0, 0, 0, 0, 0, 9]), pack=True)

    def test_predict_stream_matches_unary(self):
        batches = [list(range(0, 50)), [ALL_CONV3], list(range(15600, 15625))]
        streamed = list(self.client.predict_stream("silver_4114", iter(batches)))
        self.assertEqual(len(streamed), 3)
        for batch, got in zip(batches, streamed):
            self.assertEqual(got, self.client.predict("silver_4114", batch))

    def test_predict_stream_error_is_typed(self):
        with self.assertRaises(maplex.NotFound):
            list(self.client.predict_stream("no_such_device", [[1, 2]]))

    def test_devices(self):
        devices = self.client.list_devices(page_size=1)  # three pages
        self.assertEqual([d.id for d in devices], DEVICES)
        self.assertEqual([d.id for d in self.client.list_devices(category="mobile")],
                         ["pixel3"])
        gold = self.client.get_device("gold_6240")
        self.assertEqual(gold.measurement_count, 10)
        self.assertEqual(gold.hardware_name, "Intel Xeon Gold 6240")

    def test_models(self):
        models = self.client.list_models()
        self.assertGreaterEqual(len(models), 1)
        served = self.client.get_model()
        self.assertTrue(served.serving)
        self.assertEqual(served.version, models[0].version)
        self.assertEqual(self.client.get_model(served.version).method, served.method)
        watch = self.client.watch_models(timeout=10)
        self.assertEqual(next(watch).version, served.version)
        watch.close()
        with self.assertRaises(maplex.NotFound):
            self.client.get_model(served.version + 1000)

    def test_list_models_follows_pages(self):
        self.client.retrain()  # at least two versions, so that pages of one are several
        every = [m.version for m in self.client.list_models()]
        self.assertGreaterEqual(len(every), 2)
        self.assertEqual(every, sorted(every, reverse=True))
        self.assertEqual([m.version for m in self.client.list_models(page_size=1)], every)

    def test_health(self):
        for service in ("", "maplex.v1.Predictor", "maplex.v1.DeviceRegistry"):
            self.assertEqual(self.client.health(service), "SERVING", service)
        with self.assertRaises(maplex.NotFound):
            self.client.health("maplex.v1.NoSuchService")

    def test_errors_are_typed(self):
        with self.assertRaises(maplex.InvalidArgument) as e:
            self.client.predict("gold_6240", [99999])
        self.assertIn("archs[0].index", e.exception.details)
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIsInstance(e.exception, maplex.MaplexError)
        with self.assertRaises(maplex.NotFound):
            self.client.predict("no_such_device", [1])
        with self.assertRaises(maplex.NotFound):
            self.client.get_device("no_such_device")
        with self.assertRaises(maplex.ResourceExhausted):
            self.client.predict("pixel3", [1] * 20001)
        with self.assertRaises(maplex.NotFound):  # a version the server does not keep
            self.client.predict("pixel3", [1], model_version=self.client.get_model().version + 1000)
        with self.assertRaises(TypeError):
            self.client.predict("pixel3", [1.5])

    def test_token_is_accepted_by_a_server_without_auth(self):
        with maplex.Client(self.server.address, token="secret") as client:
            self.assertEqual(len(client.predict("pixel3", [1])), 1)

    def test_unreachable_server_is_unavailable(self):
        with maplex.Client(f"127.0.0.1:{mp.free_port()}", timeout=2) as client:
            with self.assertRaises((maplex.Unavailable, maplex.DeadlineExceeded)):
                client.predict("pixel3", [1])


class FbnetLiveServerTest(unittest.TestCase):
    """FBNet through the package: measurements listed per space in pages, architectures as
    canonical strings with space="fbnet"."""

    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess().start()
        mp.cli(cls.server.address, "import", mp.FBNET_LATENCY_CSV, "--devices",
               mp.FBNET_DEVICES_CSV, "--only", "pixel3")
        cls.client = maplex.Client(cls.server.address, timeout=20)
        # pixel3 is FBNet's one reference device: the function model serves it.
        cls.client.retrain()
        import csv
        import gzip
        with gzip.open(mp.FBNET_LATENCY_CSV, "rt") as f:
            rows = list(csv.reader(f))
        column = rows[0].index("pixel3")
        cls.truth = {row[0]: float(row[column]) for row in rows[1:]}

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()
        cls.server.cleanup()

    def test_list_measurements_per_space_in_pages(self):
        listed = self.client.list_measurements("pixel3", space="fbnet", page_size=1500)
        self.assertEqual(len(listed), 4000)
        strings = [m.arch.canonical for m in listed]
        self.assertEqual(strings, sorted(self.truth))
        self.assertEqual({m.arch.canonical: m.latency_ms for m in listed}, self.truth)
        self.assertEqual(self.client.list_measurements("pixel3"), [])  # no NB201 data
        device = self.client.get_device("pixel3")
        self.assertEqual(dict(device.measurement_count_by_space), {"fbnet": 4000})

    def test_predict_takes_canonical_strings_of_a_space(self):
        arch = next(iter(self.truth))
        [p] = self.client.predict("pixel3", [arch], space="fbnet")
        self.assertLess(abs(p.latency_ms / self.truth[arch] - 1), 0.15)
        self.assertLessEqual(p.lower_ms, p.latency_ms)
        with self.assertRaises(maplex.InvalidArgument) as e:
            self.client.predict("pixel3", [arch, arch.replace("-", "--", 1)], space="fbnet")
        self.assertIn("archs[1].canonical", e.exception.details)
        with self.assertRaises(TypeError):
            self.client.predict("pixel3", [3], space="fbnet")

    def test_columns_from_interval_factors_equal_the_rows(self):
        archs = sorted(self.truth)[:500]
        names = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6",
                 "skip"]
        choices = bytes(names.index(b) for a in archs for b in a.split("-"))
        # On the wire the function model answers with the two factors, not the columns.
        with grpc.insecure_channel(self.server.address) as channel:
            raw = predictor_pb2_grpc.PredictorStub(channel).Predict(
                predictor_pb2.PredictRequest(
                    device_id="pixel3", columnar=True, interval_factors=True,
                    arch_batch=maplex.client.choices_batch(choices, "fbnet")), timeout=20)
        self.assertEqual(len(raw.columns.lower_ms), 0)
        self.assertLess(raw.columns.lower_factor, 1)
        self.assertGreater(raw.columns.upper_factor, 1)
        # The client expands them into exactly the rows' bounds.
        rows = self.client.predict("pixel3", archs, space="fbnet")
        for columns in (self.client.predict_choices("pixel3", choices, space="fbnet"),
                        self.client.predict_columns("pixel3", archs, space="fbnet")):
            self.assertEqual(list(columns.latency_ms), [p.latency_ms for p in rows])
            self.assertEqual(list(columns.lower_ms), [p.lower_ms for p in rows])
            self.assertEqual(list(columns.upper_ms), [p.upper_ms for p in rows])
            self.assertEqual(columns.model_version, rows[0].model_version)


class CallLimitTest(unittest.TestCase):
    """The server ends every call after --max_call_seconds; a watch follows on."""

    def test_watch_outlives_the_servers_call_limit(self):
        server = mp.ServerProcess(extra_args=["--max_call_seconds=2"]).start()
        try:
            mp.cli(server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
                   mp.DEVICES_CSV, "--only", ",".join(DEVICES[:2]))
            mp.cli(server.address, "retrain")
            client = maplex.Client(server.address, timeout=20)
            watch = client.watch_models()
            seen = next(watch).version
            # Each call lasts at most about 2 s, so the model trained after 4 s can only come
            # through a watch that subscribed again (older updates still queued come first).
            time.sleep(4)
            latest = client.retrain().version
            while seen < latest:
                seen = next(watch).version
            self.assertEqual(seen, latest)
            watch.close()
            client.close()
        finally:
            server.stop()
            server.cleanup()


class RecordingPredictor(predictor_pb2_grpc.PredictorServicer):
    """Answers Predict with latency = arch index and remembers each call's metadata; device
    "slow" answers after two seconds."""

    def __init__(self):
        self.metadata = []
        self.requests = []
        self.lock = threading.Lock()

    def Predict(self, request, context):
        with self.lock:
            self.metadata.append(dict(context.invocation_metadata()))
            self.requests.append(request)
        if request.device_id == "slow":
            time.sleep(2)
        if request.columnar:
            # Latencies 1, 2, 3; the interval as factors 0.5 and 2 when asked for, else as
            # columns that are not those multiples (device "columns": always columns).
            latency = [1.0, 2.0, 3.0]
            if request.interval_factors and request.device_id != "columns":
                columns = predictor_pb2.PredictionColumns(latency_ms=latency, lower_factor=0.5,
                                                          upper_factor=2)
            else:
                columns = predictor_pb2.PredictionColumns(latency_ms=latency,
                                                          lower_ms=[0.9, 1.8, 2.7],
                                                          upper_ms=[1.1, 2.2, 3.3])
            return predictor_pb2.PredictResponse(model_version=7, method="m", columns=columns)
        return predictor_pb2.PredictResponse(model_version=7, predictions=[
            predictor_pb2.Prediction(arch_index=a.index, latency_ms=a.index,
                                     lower_ms=a.index, upper_ms=a.index)
            for a in request.archs])


class WireTest(unittest.TestCase):
    """Token, TLS and deadlines, seen from the server side."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="maplex_pkg_")
        cls.key = os.path.join(cls.tmp.name, "server.key")
        cls.cert = os.path.join(cls.tmp.name, "server.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", cls.key, "-out", cls.cert],
                       check=True, capture_output=True, timeout=30)
        with open(cls.key, "rb") as k, open(cls.cert, "rb") as c:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        cls.servicer = RecordingPredictor()
        cls.grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        predictor_pb2_grpc.add_PredictorServicer_to_server(cls.servicer, cls.grpc_server)
        cls.plain_port = cls.grpc_server.add_insecure_port("127.0.0.1:0")
        cls.tls_port = cls.grpc_server.add_secure_port("localhost:0", credentials)
        cls.grpc_server.start()

    @classmethod
    def tearDownClass(cls):
        cls.grpc_server.stop(grace=None)
        cls.tmp.cleanup()

    def last_metadata(self):
        with self.servicer.lock:
            return self.servicer.metadata[-1]

    def test_token_is_sent_as_bearer_metadata(self):
        with maplex.Client(f"127.0.0.1:{self.plain_port}", token="t0ken") as client:
            self.assertEqual([p.latency_ms for p in client.predict("d", [3, 4])], [3.0, 4.0])
        self.assertEqual(self.last_metadata().get("authorization"), "Bearer t0ken")

    def test_no_token_no_metadata(self):
        with maplex.Client(f"127.0.0.1:{self.plain_port}") as client:
            client.predict("d", [1])
        self.assertNotIn("authorization", self.last_metadata())

    def test_tls_with_ca_bundle(self):
        with maplex.Client(f"localhost:{self.tls_port}", token="t", ca=self.cert) as client:
            predictions = client.predict("d", [9])
        self.assertEqual(predictions, [maplex.Prediction(9, 9.0, 9.0, 9.0, 7)])
        self.assertEqual(self.last_metadata().get("authorization"), "Bearer t")

    def test_channel_options_are_passed(self):
        # The form used to balance over predictor replicas (docs/OPERATIONS.md).
        with maplex.Client(f"ipv4:127.0.0.1:{self.plain_port}",
                           channel_options=[("grpc.lb_policy_name", "round_robin")]) as client:
            self.assertEqual(len(client.predict("d", [1, 2])), 2)

    def test_columns_ask_for_interval_factors_and_expand_them(self):
        with maplex.Client(f"127.0.0.1:{self.plain_port}") as client:
            for call in (lambda d: client.predict_choices(d, bytes(18)),
                         lambda d: client.predict_columns(d, [0, 1, 2])):
                columns = call("d")
                with self.servicer.lock:
                    request = self.servicer.requests[-1]
                self.assertTrue(request.columnar)
                self.assertTrue(request.interval_factors)
                self.assertEqual(list(columns.latency_ms), [1.0, 2.0, 3.0])
                self.assertEqual(list(columns.lower_ms), [0.5, 1.0, 1.5])
                self.assertEqual(list(columns.upper_ms), [2.0, 4.0, 6.0])
                self.assertEqual((columns.model_version, columns.method), (7, "m"))
                # A server that sends the columns (a table model, or one that predates
                # interval_factors) is taken at its word.
                columns = call("columns")
                self.assertEqual(list(columns.lower_ms), [0.9, 1.8, 2.7])
                self.assertEqual(list(columns.upper_ms), [1.1, 2.2, 3.3])

    def test_deadline_default_and_per_call(self):
        with maplex.Client(f"127.0.0.1:{self.plain_port}", timeout=0.3) as client:
            start = time.monotonic()
            with self.assertRaises(maplex.DeadlineExceeded):
                client.predict("slow", [1])
            with self.assertRaises(maplex.DeadlineExceeded):
                client.predict("slow", [1], timeout=0.1)
            self.assertLess(time.monotonic() - start, 1.5)
            self.assertEqual(len(client.predict("slow", [1], timeout=10)), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
