"""Drives a real maplex-server from Python with stubs generated from the project's .proto
files (system protoc + grpc_python_plugin) and Debian's python3-grpcio: health check,
ListDevices, Predict."""

import os
import sys
import unittest

import grpc

sys.path.insert(0, os.path.dirname(__file__))
import maplex_processes as mp  # noqa: E402

import health_pb2  # noqa: E402  (grpc.health.v1, generated from proto/grpc/health/v1)
import health_pb2_grpc  # noqa: E402
from maplex.v1 import common_pb2, predictor_pb2, predictor_pb2_grpc  # noqa: E402
from maplex.v1 import registry_pb2, registry_pb2_grpc  # noqa: E402


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess().start()
        mp.cli(cls.server.address, "import", "--latency", mp.LATENCY_CSV, "--devices",
               mp.DEVICES_CSV, "--only", "silver_4114,pixel3,gold_6240", "--keep", "gold_6240=10")
        mp.cli(cls.server.address, "retrain")
        cls.channel = grpc.insecure_channel(cls.server.address)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop()
        cls.server.cleanup()

    def test_health(self):
        health = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", "maplex.v1.Predictor", "maplex.v1.DeviceRegistry"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING, service)

    def test_list_devices(self):
        registry = registry_pb2_grpc.DeviceRegistryStub(self.channel)
        reply = registry.ListDevices(registry_pb2.ListDevicesRequest(page_size=2), timeout=10)
        self.assertEqual([d.id for d in reply.devices], ["gold_6240", "pixel3"])
        self.assertTrue(reply.next_page_token)
        rest = registry.ListDevices(
            registry_pb2.ListDevicesRequest(page_token=reply.next_page_token), timeout=10)
        self.assertEqual([d.id for d in rest.devices], ["silver_4114"])
        self.assertEqual(rest.devices[0].measurement_count, 15625)
        self.assertEqual(rest.devices[0].spec.category, "desktop_cpu")

    def test_predict(self):
        predictor = predictor_pb2_grpc.PredictorStub(self.channel)
        archs = [common_pb2.Architecture(index=i) for i in range(100)]
        archs.append(common_pb2.Architecture(
            cell="|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"))
        reply = predictor.Predict(predictor_pb2.PredictRequest(device_id="gold_6240", archs=archs),
                                  timeout=30)
        self.assertGreater(reply.model_version, 0)
        self.assertEqual(len(reply.predictions), 101)
        for p in reply.predictions:
            self.assertGreater(p.latency_ms, 0)
            self.assertLessEqual(p.lower_ms, p.latency_ms)
            self.assertGreaterEqual(p.upper_ms, p.latency_ms)
        # The all-conv3x3 cell is among the slowest on a CPU.
        self.assertGreater(reply.predictions[-1].latency_ms,
                           sorted(p.latency_ms for p in reply.predictions[:100])[50])

    def test_errors_carry_codes(self):
        predictor = predictor_pb2_grpc.PredictorStub(self.channel)
        with self.assertRaises(grpc.RpcError) as e:
            predictor.Predict(predictor_pb2.PredictRequest(
                device_id="gold_6240", archs=[common_pb2.Architecture(index=99999)]), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("archs[0].index", e.exception.details())


if __name__ == "__main__":
    unittest.main(verbosity=2)
