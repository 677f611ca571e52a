"""gRPC stubs to every backend, each call with a deadline."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import grpc

from services.common.grpc_server import DeadlineStub, check_health, insecure_channel
from services.gateway.settings import GatewaySettings

# peer -> [(attribute on Backends, generated grpc module, stub class)]
_STUBS: dict[str, list[tuple[str, str, str]]] = {
    "inventory": [
        ("inventory", "backorder.inventory.v1.inventory_pb2_grpc", "InventoryServiceStub"),
        ("reports", "backorder.inventory.v1.report_pb2_grpc", "ReportServiceStub"),
        ("tokens", "backorder.inventory.v1.token_pb2_grpc", "TokenServiceStub"),
    ],
    "catalog_sync": [("catalog", "backorder.catalog.v1.catalog_pb2_grpc", "CatalogServiceStub")],
    "storefront": [("storefront", "backorder.storefront.v1.storefront_pb2_grpc", "StorefrontServiceStub")],
    "billing": [("billing", "backorder.billing.v1.billing_pb2_grpc", "BillingServiceStub")],
}


@dataclass
class Backends:
    """Attributes: inventory, reports, tokens, catalog, storefront, billing (DeadlineStub each)."""

    addresses: dict[str, str]
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    stubs: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["stubs"][name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def connect(cls, settings: GatewaySettings) -> Backends:
        backends = cls(dict(settings.peers))
        for peer, address in backends.addresses.items():
            channel = insecure_channel(address)
            backends.channels[peer] = channel
            for attribute, module_name, stub_name in _STUBS[peer]:
                try:
                    module = importlib.import_module(module_name)
                except ModuleNotFoundError:
                    continue  # that service's protos are not generated (yet)
                backends.stubs[attribute] = DeadlineStub(getattr(module, stub_name)(channel))
        return backends

    async def health(self) -> dict[str, bool]:
        return {peer: await check_health(address) for peer, address in self.addresses.items()}

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
