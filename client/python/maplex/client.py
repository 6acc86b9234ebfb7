"""maplex.Client: one gRPC channel to maplex-server and a method per question a NAS loop or
an operator asks. See the package docstring for a usage example."""

import dataclasses
import functools

import grpc

from maplex import errors

try:
    import health_pb2  # grpc.health.v1, generated top-level (grpcio owns the `grpc` package)
    import health_pb2_grpc
    from maplex.v1 import common_pb2, models_pb2, models_pb2_grpc
    from maplex.v1 import predictor_pb2, predictor_pb2_grpc
    from maplex.v1 import registry_pb2, registry_pb2_grpc
except ImportError as e:
    raise ImportError(
        "maplex: the generated gRPC stubs are missing. Build with scripts/build and import "
        "the package from build/python (PYTHONPATH=build/python), where the build places it "
        f"next to the stubs: {e}") from e

DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Predicted latency of one architecture on one device.

    Attributes:
        arch_index: NAS-Bench-201 index (0..15624) of the architecture asked for; 0 in
            other spaces (predictions follow the order of the request).
        latency_ms: predicted latency in milliseconds.
        lower_ms, upper_ms: the nominal 90 % interval around it.
        model_version: the model version that answered.
    """
    arch_index: int
    latency_ms: float
    lower_ms: float
    upper_ms: float
    model_version: int


@dataclasses.dataclass(frozen=True)
class PredictionColumns:
    """Predicted latencies of a whole batch as parallel sequences, element i for archs[i].

    Attributes:
        latency_ms, lower_ms, upper_ms: the predictions and their nominal 90 % intervals
            (sequences of float: protobuf repeated fields or lists; numpy.asarray() takes
            them).
        model_version: the model version that answered.
        method: the method of that model (e.g. "maplex").
    """
    latency_ms: object
    lower_ms: object
    upper_ms: object
    model_version: int
    method: str

    def __len__(self):
        return len(self.latency_ms)


_NB201_NAMES = ("", "nb201", "nasbench201")

# Client.predict_choices packs batches of at least this many bytes (as the C++ client).
PACK_CHOICES_FROM_BYTES = 4096
_CODES_BELOW_16 = bytes(range(16))


def pack_choices(data):
    """Codes given one per byte (each below 16) packed two per byte, as
    ArchitectureBatch.bits_per_choice = 4 stores them: code 2k in the low nibble of byte k,
    code 2k+1 in its high nibble, the high nibble of the last byte 0 for an odd count."""
    data = bytes(data)
    low, high = data[0::2], data[1::2]
    # Every code is below 16, so shifting the high codes by 4 bits as one big integer keeps
    # each inside its byte: one pass in C instead of a Python loop over the batch.
    packed = int.from_bytes(low, "little") | (int.from_bytes(high, "little") << 4)
    return packed.to_bytes(len(low), "little")


def choices_batch(data, space, pack=None):
    """The ArchitectureBatch predict_choices sends for `data` (codes one per byte): packed
    two per byte when `pack` says so (None: from PACK_CHOICES_FROM_BYTES bytes up) and every
    code is below 16; otherwise as given (a larger code then reaches the server, which names
    it)."""
    if pack is None:
        pack = len(data) >= PACK_CHOICES_FROM_BYTES
    # Every code below 16: nothing is left when they are deleted (one pass in C; max() over
    # the bytes takes 4 ms for 20,000 FBNet networks).
    if pack and data and not data.translate(None, _CODES_BELOW_16):
        return common_pb2.ArchitectureBatch(space=space, choices=pack_choices(data),
                                            bits_per_choice=4)
    return common_pb2.ArchitectureBatch(space=space, choices=data)


def _architecture(arch, space=""):
    """An Architecture message. In NB201 (`space` "" or "nb201"): an index (int) or a cell
    string (str), sent as before canonical strings existed; in any other space (e.g.
    "fbnet"): its canonical string (str)."""
    if isinstance(arch, common_pb2.Architecture):
        return arch
    if space not in _NB201_NAMES:
        if isinstance(arch, str):
            return common_pb2.Architecture(space=space, canonical=arch)
        raise TypeError(f"an architecture of {space} is its canonical string (str), "
                        f"not {type(arch).__name__}: {arch!r}")
    if isinstance(arch, int) and not isinstance(arch, bool):
        return common_pb2.Architecture(index=arch)
    if isinstance(arch, str):
        return common_pb2.Architecture(cell=arch)
    raise TypeError(f"an architecture is an NB201 index (int) or cell string (str), "
                    f"not {type(arch).__name__}: {arch!r}")


def _predictions(response):
    """The Prediction objects of a PredictResponse, in request order."""
    return [Prediction(p.arch_index, p.latency_ms, p.lower_ms, p.upper_ms,
                       response.model_version) for p in response.predictions]


def prediction_columns(response):
    """The PredictionColumns of a columnar PredictResponse. A function model's answer to
    interval_factors carries the interval as two factors of the latency column instead of
    two columns (a third of the bytes); they are expanded here, each bound the latency times
    its factor as the server computes it, so callers see three columns either way."""
    c = response.columns
    latency, lower, upper = c.latency_ms, c.lower_ms, c.upper_ms
    if latency and not lower and not upper and c.lower_factor > 0 and c.upper_factor > 0:
        lo, hi = c.lower_factor, c.upper_factor
        latency = list(latency)
        lower = [y * lo for y in latency]
        upper = [y * hi for y in latency]
    return PredictionColumns(latency, lower, upper, response.model_version, response.method)


def _typed_errors(method):
    """Makes `method` raise MaplexError subclasses instead of grpc.RpcError."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
    return wrapper


class Client:
    """A connection to one maplex-server.

    Every unary call has a deadline: `timeout` seconds (the constructor's, default 30),
    overridable per call. Failures raise maplex.MaplexError subclasses (maplex.NotFound,
    maplex.InvalidArgument, maplex.Unavailable, ...). Use as a context manager or call
    close().
    """

    def __init__(self, address, token=None, ca=None, timeout=DEFAULT_TIMEOUT_SECONDS,
                 channel_options=()):
        """Opens a channel to `address` ("host:port").

        Args:
            address: the server's host:port.
            token: bearer token sent as "authorization: Bearer TOKEN" metadata on every call.
            ca: path to a PEM CA bundle; when given the channel uses TLS verified against it,
                otherwise it is plaintext (fine on loopback or inside a cluster network).
            timeout: default deadline of each call, in seconds.
            channel_options: gRPC channel arguments, e.g.
                [("grpc.lb_policy_name", "round_robin")] with address
                "dns:///maplex-predictor:50051" to spread calls over predictor replicas.
        """
        if ca is not None:
            with open(ca, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            self._channel = grpc.secure_channel(address, credentials, options=channel_options)
        else:
            self._channel = grpc.insecure_channel(address, options=channel_options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._predictor = predictor_pb2_grpc.PredictorStub(self._channel)
        self._registry = registry_pb2_grpc.DeviceRegistryStub(self._channel)
        self._models = models_pb2_grpc.ModelsStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def close(self):
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _deadline(self, timeout):
        return self._timeout if timeout is None else timeout

    # ---- predictions ----

    @_typed_errors
    def predict(self, device, archs, model_version=0, timeout=None, space=""):
        """Predicts the latency of `archs` on `device`.

        Args:
            device: device configuration id, e.g. "pixel3".
            archs: NAS-Bench-201 indices (int) and/or cell strings (str), or with `space`
                another space's canonical strings (e.g. FBNet's 22 block names joined by
                "-"); at most the server's per-request limit (20,000; the whole NB201 space
                of 15,625 fits). One space per request.
            model_version: 0 for the version being served, else that exact version
                (FailedPrecondition if it is not the one served).
            timeout: deadline in seconds (default: the client's).
            space: the architectures' space: "" or "nb201" (default), "fbnet", ...

        Returns:
            a list of Prediction, in the order of `archs`.
        """
        request = predictor_pb2.PredictRequest(
            device_id=device, archs=[_architecture(a, space) for a in archs],
            model_version=model_version)
        response = self._predictor.Predict(request, timeout=self._deadline(timeout),
                                           metadata=self._metadata)
        return _predictions(response)

    @_typed_errors
    def predict_columns(self, device, archs, model_version=0, timeout=None, space=""):
        """Predicts the latency of `archs` on `device`, answered as packed columns: the
        cheap form for large batches (one message for the whole batch instead of one per
        architecture). The interval is asked for as two factors (interval_factors) and
        expanded on receipt: see prediction_columns().

        Args: as predict().

        Returns:
            a PredictionColumns, element i for archs[i].
        """
        request = predictor_pb2.PredictRequest(
            device_id=device, archs=[_architecture(a, space) for a in archs],
            model_version=model_version, columnar=True, interval_factors=True)
        response = self._predictor.Predict(request, timeout=self._deadline(timeout),
                                           metadata=self._metadata)
        return prediction_columns(response)

    @_typed_errors
    def predict_choices(self, device, choices, space="nb201", model_version=0, timeout=None,
                        pack=None):
        """Predicts a compact batch: the architectures' choices as consecutive bytes, one per
        choice (NAS-Bench-201: 6 edge op codes 0..4 each, in edge order; FBNet with
        space="fbnet": 22 block codes 0..8 each, in layer order), e.g. a numpy uint8 array of
        shape (n, 6) or its bytes. The cheapest request for large batches.

        A batch of PACK_CHOICES_FROM_BYTES bytes or more whose codes are all below 16 is sent
        packed two choices per byte (ArchitectureBatch.bits_per_choice = 4), half the bytes,
        as the C++ client does. pack=False sends one byte per choice always (for a server
        built before bits_per_choice); pack=True packs any batch whose codes fit. The
        interval is asked for as two factors and expanded on receipt, as in predict_columns().

        Returns:
            a PredictionColumns, element i for the i-th architecture of the batch.
        """
        data = choices.tobytes() if hasattr(choices, "tobytes") else bytes(choices)
        request = predictor_pb2.PredictRequest(
            device_id=device, model_version=model_version, columnar=True,
            interval_factors=True, arch_batch=choices_batch(data, space, pack))
        response = self._predictor.Predict(request, timeout=self._deadline(timeout),
                                           metadata=self._metadata)
        return prediction_columns(response)

    def predict_stream(self, device, batches, model_version=0, timeout=None, space=""):
        """Predicts batch after batch over one PredictStream call, for loops that ask many
        times: one request per batch, answered in order.

        Args:
            device: device configuration id.
            batches: an iterable (may be a generator fed by the search) of lists of
                architectures, each as in predict().
            model_version: as in predict().
            timeout: deadline of the whole stream in seconds (default: the client's); pass a
                larger one for a long search.

        Yields:
            for each batch, the list of its Prediction, in order. Raises a MaplexError
            subclass when the server rejects a batch (the stream ends there).
        """
        requests = (predictor_pb2.PredictRequest(
            device_id=device, archs=[_architecture(a, space) for a in batch],
            model_version=model_version) for batch in batches)
        call = self._predictor.PredictStream(requests, timeout=self._deadline(timeout),
                                             metadata=self._metadata)
        try:
            for response in call:
                yield _predictions(response)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        finally:
            call.cancel()

    # ---- devices ----

    @_typed_errors
    def list_devices(self, category="", labels=None, include_retired=False, page_size=0,
                     timeout=None):
        """Lists device configurations, all pages, ordered by id.

        Args:
            category: only devices of this spec category (e.g. "mobile"); "" for all.
            labels: only devices carrying all of these labels (dict).
            include_retired: include retired devices.
            page_size: devices fetched per call (0: the server's default).
            timeout: deadline of each page's call in seconds (default: the client's).

        Returns:
            a list of maplex.v1 Device messages.
        """
        devices = []
        token = ""
        while True:
            response = self._registry.ListDevices(
                registry_pb2.ListDevicesRequest(category=category, labels=labels or {},
                                                include_retired=include_retired,
                                                page_size=page_size, page_token=token),
                timeout=self._deadline(timeout), metadata=self._metadata)
            devices.extend(response.devices)
            token = response.next_page_token
            if not token:
                return devices

    @_typed_errors
    def get_device(self, device, timeout=None):
        """Returns the Device message of `device` (NotFound when unknown)."""
        return self._registry.GetDevice(registry_pb2.GetDeviceRequest(id=device),
                                        timeout=self._deadline(timeout), metadata=self._metadata)

    @_typed_errors
    def list_measurements(self, device, space="", page_size=0, timeout=None):
        """The device's measured latency of each architecture of `space` ("" = nb201), all
        pages: NB201 by index, other spaces by canonical string.

        Returns:
            a list of maplex.v1 MeasuredLatency messages (arch.space and arch.canonical name
            the architecture; arch_index is its NB201 index, 0 in other spaces).
        """
        latencies = []
        token = ""
        while True:
            response = self._registry.ListMeasurements(
                registry_pb2.ListMeasurementsRequest(device_id=device, space=space,
                                                     page_size=page_size, page_token=token),
                timeout=self._deadline(timeout), metadata=self._metadata)
            latencies.extend(response.latencies)
            token = response.next_page_token
            if not token:
                return latencies

    # ---- models ----

    @_typed_errors
    def list_models(self, page_size=0, timeout=None):
        """Returns the ModelInfo messages of every model version the server keeps, newest
        first, following the pages (`page_size` per call; 0: the server's default)."""
        models = []
        token = ""
        while True:
            response = self._models.ListModels(
                models_pb2.ListModelsRequest(page_size=page_size, page_token=token),
                timeout=self._deadline(timeout), metadata=self._metadata)
            models.extend(response.models)
            token = response.next_page_token
            if not token:
                return models

    @_typed_errors
    def get_model(self, version=0, timeout=None):
        """Returns the ModelInfo of `version` (0: the version being served; NotFound when
        none is served yet or the version does not exist)."""
        return self._models.GetModel(models_pb2.GetModelRequest(version=version),
                                     timeout=self._deadline(timeout), metadata=self._metadata)

    @_typed_errors
    def retrain(self, timeout=None):
        """Trains a new model on everything stored, waits for it and returns its ModelInfo."""
        return self._models.Retrain(models_pb2.RetrainRequest(),
                                    timeout=self._deadline(timeout), metadata=self._metadata)

    def watch_models(self, timeout=None):
        """Follows the served model: yields the ModelInfo being served now, then each newer
        one as the server starts serving it.

        A watch is meant to stay open, so unlike the other calls it has no deadline unless
        `timeout` (seconds, for the whole watch) is given; close the generator to stop. The
        server ends every call after its --max_call_seconds (UNAVAILABLE); a watch without
        `timeout` then subscribes again by itself and yields only versions it has not
        yielded yet.
        """
        last = 0
        while True:
            delivered = False
            call = self._models.WatchModels(models_pb2.WatchModelsRequest(), timeout=timeout,
                                            metadata=self._metadata)
            try:
                for update in call:
                    delivered = True
                    if update.info.version > last:
                        last = update.info.version
                        yield update.info
                return
            except grpc.RpcError as e:
                # A stream that delivered was ended by the server's call limit or a restart:
                # follow on. Anything else, or a failure before any update, is the caller's.
                if timeout is not None or not delivered or \
                        e.code() != grpc.StatusCode.UNAVAILABLE:
                    raise errors.from_rpc_error(e) from None
            finally:
                call.cancel()

    # ---- health ----

    @_typed_errors
    def health(self, service="", timeout=None):
        """Returns the grpc.health.v1 status of `service` as a name: "SERVING" or
        "NOT_SERVING". "" is the server as a whole (SERVING once a model is loaded);
        services are named like "maplex.v1.Predictor" (NotFound for unknown names)."""
        response = self._health.Check(health_pb2.HealthCheckRequest(service=service),
                                      timeout=self._deadline(timeout), metadata=self._metadata)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
