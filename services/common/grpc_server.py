"""gRPC plumbing: the aio server bootstrap, interceptors, and client channels with deadlines."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]
from prometheus_client import Histogram

from services.common.errors import DomainError, error_metadata

log = logging.getLogger(__name__)

RPC_SECONDS = Histogram(
    "backorder_grpc_server_seconds", "gRPC handling time", ["method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

DEFAULT_DEADLINE_S = 5.0
# Health entry that is SERVING for as long as the server answers, whatever the database and
# NATS do: Kubernetes liveness probes ask for it, so a dependency outage takes pods out of
# rotation (the overall "" entry) without restarting them.
LIVENESS_SERVICE = "backorder.liveness"


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Maps DomainError to its status (details as JSON in trailing metadata), hides internal
    errors behind INTERNAL, logs failures and records latency per method."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method

        async def fail(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
            if isinstance(exc, DomainError):
                await context.abort(exc.grpc_status, exc.message, trailing_metadata=error_metadata(exc))
            log.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started = time.perf_counter()
                outcome = "OK"
                try:
                    return await inner(request, context)
                except grpc.aio.AbortError:
                    outcome = "ABORTED_BY_HANDLER"
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped in fail()
                    outcome = exc.grpc_status.name if isinstance(exc, DomainError) else "INTERNAL"
                    await fail(context, exc)
                finally:
                    RPC_SECONDS.labels(method, outcome).observe(time.perf_counter() - started)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped in fail()
                    await fail(context, exc)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


class GrpcServer:
    """A grpc.aio server with the library health servicer and reflection.

    Health starts NOT_SERVING for every registered service; the runtime flips it to
    SERVING once the database and NATS are reachable.
    """

    def __init__(self, interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> None:
        self.server = grpc.aio.server(
            interceptors=[ErrorMappingInterceptor(), *interceptors],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", 32 * 1024 * 1024),
                # Our clients ping every 30 s (see insecure_channel); the server's default
                # minimum of 5 min would answer a long call's pings with GOAWAY too_many_pings.
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names: list[str] = []
        self.ports: list[int] = []

    def add(self, add_to_server: Callable[[Any, Any], None], servicer: Any, full_name: str) -> None:
        add_to_server(servicer, self.server)
        self.service_names.append(full_name)

    def bind(self, host: str, port: int) -> int:
        """Listen on host:port (0 = any free port); a port in use is an error naming it."""
        address = f"{host}:{port}"
        try:
            bound = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {address}: port in use or unavailable") from exc
        if bound == 0:
            raise OSError(f"cannot listen on {address}: port in use or unavailable")
        self.ports.append(bound)
        return bound

    async def start(self) -> None:
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        await self.set_serving(False)
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, grace_s: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


# ---------------------------------------------------------------- clients

_RETRY_POLICY = json.dumps({
    # Spread calls over every address the name resolves to (a headless Service lists each
    # ready pod); the default pick_first would send a client's calls to one pod only.
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{}],
        "retryPolicy": {
            "maxAttempts": 4,
            "initialBackoff": "0.05s",
            "maxBackoff": "1s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }]
})


def insecure_channel(address: str) -> grpc.aio.Channel:
    """A channel to a peer on the cluster network, retrying UNAVAILABLE a few times."""
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", _RETRY_POLICY),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.max_receive_message_length", 32 * 1024 * 1024),
            # Subchannels of its own: by default channels to one address share them, so a new
            # channel to a restarted peer inherited the old connection's reconnect backoff
            # and failed at once with UNAVAILABLE (seen in tests that restart a peer).
            ("grpc.use_local_subchannel_pool", 1),
        ],
    )


class DeadlineStub:
    """Wraps a generated stub so that every call carries a deadline unless one is given."""

    def __init__(self, stub: Any, timeout_s: float = DEFAULT_DEADLINE_S) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        timeout_s = self._timeout_s

        def call(request: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_s)
            return method(request, **kwargs)

        return call


async def check_health(address: str, service: str = "", timeout_s: float = 1.0) -> bool:
    """True when the peer answers SERVING."""
    async with insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
