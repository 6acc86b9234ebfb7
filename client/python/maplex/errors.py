"""Typed errors of the maplex Python client.

Every failed call raises a subclass of MaplexError chosen by the gRPC status code, so a
search loop can catch what it can act on (``except maplex.Unavailable: retry``) and let the
rest through. The server's message, which names the offending field and value, is kept in
``details``.
"""

import grpc


class MaplexError(Exception):
    """A call to maplex-server failed.

    Attributes:
        code: the grpc.StatusCode of the failure.
        details: the server's (or gRPC's) message.
    """

    def __init__(self, code, details):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidArgument(MaplexError):
    """The request was malformed: bad architecture, empty device id, bad page size."""


class NotFound(MaplexError):
    """An unknown device or health service, or a model version the server does not keep."""


class AlreadyExists(MaplexError):
    """The thing to create exists already, e.g. a measurement id stored with other content."""


class FailedPrecondition(MaplexError):
    """The request is valid but the server's state does not allow it now: a retired device,
    a model version a replica does not serve, a device newer than the served model."""


class PermissionDenied(MaplexError):
    """The caller's token does not allow this call."""


class Unauthenticated(MaplexError):
    """The call carried no valid token."""


class ResourceExhausted(MaplexError):
    """Too much at once, e.g. more architectures in one request than the server accepts."""


class Unavailable(MaplexError):
    """The server cannot be reached or is not ready (e.g. no model is trained yet)."""


class DeadlineExceeded(MaplexError):
    """The call did not finish within its deadline."""


class Cancelled(MaplexError):
    """The call was cancelled."""


class Internal(MaplexError):
    """A server-side fault."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
}


def from_rpc_error(error):
    """Returns the MaplexError subclass instance for a grpc.RpcError (MaplexError itself for
    codes without a subclass)."""
    code = error.code()
    return _BY_CODE.get(code, MaplexError)(code, error.details())
