"""The services catalog_sync calls over gRPC, and how their failures and times are read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from services.common.bus import TransientError
from services.common.clock import as_utc


@dataclass
class Peers:
    """DeadlineStubs of the services catalog_sync calls."""

    inventory: Any
    billing: Any
    storefront: Any


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(as_utc(moment))
    return stamp


def rpc_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    return exc.code() if hasattr(exc, "code") else None


def transient(exc: grpc.RpcError, what: str) -> TransientError:
    return TransientError(f"{what}: {rpc_code(exc)} {exc.details() if hasattr(exc, 'details') else exc}")
