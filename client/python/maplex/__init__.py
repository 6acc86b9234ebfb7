"""Python client of maplex-server: latency predictions for NAS-Bench-201 architectures on
hardware devices, device and model queries, health.

    import maplex
    with maplex.Client("127.0.0.1:50051") as client:
        for p in client.predict("pixel3", [0, 1, "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"]):
            print(p.arch_index, p.latency_ms, p.lower_ms, p.upper_ms, p.model_version)

The gRPC stubs (``maplex.v1``) are generated from ``proto/``: by ``pip install
./client/python`` (pyproject.toml; offline, see build_backend/maplex_build.py), or by the
CMake build, which assembles this package next to them in ``build/python`` so that
``PYTHONPATH=build/python`` is all a program needs (with Debian's ``python3-grpcio`` and
``python3-protobuf``).
"""

from maplex.client import DEFAULT_TIMEOUT_SECONDS, Client, Prediction, PredictionColumns
from maplex.errors import (AlreadyExists, Cancelled, DeadlineExceeded, FailedPrecondition,
                           Internal, InvalidArgument, MaplexError, NotFound, PermissionDenied,
                           ResourceExhausted, Unauthenticated, Unavailable)

__all__ = [
    "Client", "Prediction", "PredictionColumns", "DEFAULT_TIMEOUT_SECONDS",
    "MaplexError", "InvalidArgument", "NotFound", "AlreadyExists", "FailedPrecondition",
    "PermissionDenied", "Unauthenticated", "ResourceExhausted", "Unavailable",
    "DeadlineExceeded", "Cancelled", "Internal",
]
