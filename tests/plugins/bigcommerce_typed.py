"""The BigCommerce client with typed results, for tests and benchmarks that drive the sandbox.

The platform reads BigCommerce's JSON as it comes (services/catalog_sync/bc_client.py over
services.common.bigcommerce's transport); tests and benchmarks that create products, orders,
hooks and scripts on a sandbox store, check its batch limits or pull its catalog use these
typed results (dataclasses keeping the raw JSON), filters and batch helpers, which split work
into each endpoint's documented batch size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from services.common.bigcommerce import MAX_PAGE_SIZE, BigCommerceClient

PRODUCT_BATCH_SIZE = 10
VARIANT_BATCH_SIZE = 50
INVENTORY_BATCH_SIZE = 2000
DELETE_BATCH_SIZE = 250


T = TypeVar("T")
ItemT = TypeVar("ItemT")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _build(cls: type[T], data: Mapping[str, Any], **overrides: Any) -> T:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls) if f.name != "raw")  # type: ignore[arg-type]
    values = {name: data[name] for name in names if name in data}
    values.update(overrides)
    # Parsed JSON is already a private dict; keep it as is instead of copying every product.
    return cls(**values, raw=data if isinstance(data, dict) else dict(data))  # type: ignore[call-arg]


@dataclass
class Variant:
    id: int
    product_id: int = 0
    sku: str = ""
    price: float | None = None
    calculated_price: float | None = None
    inventory_level: int = 0
    inventory_warning_level: int = 0
    purchasing_disabled: bool = False
    purchasing_disabled_message: str = ""
    option_values: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Variant:
        return _build(cls, data)


@dataclass
class Product:
    id: int
    name: str = ""
    sku: str = ""
    type: str = "physical"
    price: float = 0.0
    calculated_price: float = 0.0
    inventory_level: int = 0
    inventory_warning_level: int = 0
    inventory_tracking: str = "none"
    availability: str = "available"
    availability_description: str = ""
    is_visible: bool = True
    categories: list[int] = field(default_factory=list)
    brand_id: int = 0
    base_variant_id: int | None = None
    order_quantity_minimum: int = 0
    order_quantity_maximum: int = 0
    date_modified: str = ""
    variants: list[Variant] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Product:
        variants = data.get("variants")
        if not variants:
            return _build(cls, data)
        return _build(cls, data, variants=[Variant.from_api(v) for v in variants])


@dataclass
class Brand:
    id: int
    name: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Brand:
        return _build(cls, data)


@dataclass
class Category:
    category_id: int
    parent_id: int = 0
    tree_id: int = 1
    name: str = ""
    is_visible: bool = True
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Category:
        return _build(cls, data)


@dataclass
class InventoryLocation:
    location_id: int
    available_to_sell: int = 0
    total_inventory_onhand: int = 0
    qty_backordered: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> InventoryLocation:
        return _build(cls, data)


@dataclass
class InventoryItem:
    sku: str | None
    product_id: int | None
    variant_id: int | None
    locations: list[InventoryLocation] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> InventoryItem:
        identity = data.get("identity") or {}
        return cls(sku=identity.get("sku"), product_id=identity.get("product_id"),
                   variant_id=identity.get("variant_id"),
                   locations=[InventoryLocation.from_api(loc) for loc in data.get("locations") or []], raw=dict(data))


@dataclass
class Order:
    id: int
    status_id: int = 0
    status: str = ""
    customer_id: int = 0
    date_created: str = ""
    date_modified: str = ""
    items_total: int = 0
    total_inc_tax: str = "0"
    currency_code: str = "USD"
    staff_notes: str = ""
    customer_message: str = ""
    channel_id: int = 1
    cart_id: str = ""
    order_source: str = ""
    external_source: str | None = None
    billing_address: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def email(self) -> str:
        return str(self.billing_address.get("email", ""))

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Order:
        return _build(cls, data)


@dataclass
class OrderProduct:
    id: int
    order_id: int = 0
    product_id: int = 0
    variant_id: int = 0
    name: str = ""
    sku: str = ""
    quantity: int = 0
    quantity_backordered: int | None = None
    price_inc_tax: str = "0"
    total_inc_tax: str = "0"
    product_options: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> OrderProduct:
        return _build(cls, data)


@dataclass
class Hook:
    id: int
    scope: str = ""
    destination: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    is_active: bool = True
    client_id: str = ""
    store_hash: str = ""
    created_at: int = 0
    updated_at: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Hook:
        return _build(cls, data, headers=dict(data.get("headers") or {}))


@dataclass
class Script:
    uuid: str
    name: str = ""
    kind: str = "src"
    src: str = ""
    html: str = ""
    location: str = "footer"
    visibility: str = "storefront"
    load_method: str = "default"
    consent_category: str = "unknown"
    enabled: bool = True
    auto_uninstall: bool = True
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Script:
        return _build(cls, data)


@dataclass
class StoreInfo:
    id: str
    name: str = ""
    domain: str = ""
    secure_url: str = ""
    account_uuid: str = ""
    currency: str = "USD"
    timezone_name: str = "UTC"
    timezone_raw_offset: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> StoreInfo:
        zone = data.get("timezone") or {}
        return cls(id=str(data.get("id", "")), name=data.get("name", ""), domain=data.get("domain", ""),
                   secure_url=data.get("secure_url", ""), account_uuid=data.get("account_uuid", ""),
                   currency=data.get("currency", "USD"), timezone_name=zone.get("name", "UTC"),
                   timezone_raw_offset=int(zone.get("raw_offset", 0)), raw=dict(data))


@dataclass
class Page(Generic[ItemT]):
    items: list[ItemT]
    pagination: dict[str, Any]



def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(_query_value(v) for v in value)
    return str(value)


def filter_params(filters: Mapping[str, Any] | None = None, **named: Any) -> dict[str, str]:
    """BigCommerce query filters from a mapping (`{"id:in": [1, 2]}`) or keywords (`id__in=[1, 2]`)."""
    params = {key: _query_value(value) for key, value in (filters or {}).items() if value is not None}
    params.update({key.replace("__", ":"): _query_value(value) for key, value in named.items() if value is not None})
    return params


def _chunks(items: Sequence[ItemT], size: int) -> Iterable[Sequence[ItemT]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]



class TypedClient(BigCommerceClient):
    """A store's API with typed results, batch helpers and filters (`id__in=[1, 2]`)."""

    # -- catalog --
    async def get_product(self, product_id: int, *, include: Sequence[str] = (),
                          include_fields: Sequence[str] = ()) -> Product:
        params = filter_params(include=list(include) or None, include_fields=list(include_fields) or None)
        body = await self._v3("GET", f"/v3/catalog/products/{product_id}", params=params)
        return Product.from_api(body["data"])

    async def list_products(self, *, page: int = 1, limit: int = MAX_PAGE_SIZE, include: Sequence[str] = (),
                            include_fields: Sequence[str] = (), filters: Mapping[str, Any] | None = None,
                            **named_filters: Any) -> Page[Product]:
        params = filter_params(filters, include=list(include) or None, include_fields=list(include_fields) or None,
                               **named_filters)
        items, pagination = await self._v3_page("/v3/catalog/products",
                                                {**params, "page": str(page), "limit": str(min(limit, 250))})
        return Page([Product.from_api(item) for item in items], pagination)

    async def iter_products(self, *, limit: int = MAX_PAGE_SIZE, include: Sequence[str] = (),
                            include_fields: Sequence[str] = (), filters: Mapping[str, Any] | None = None,
                            concurrency: int = 1, **named_filters: Any) -> AsyncIterator[Product]:
        """All products matching the filters (e.g. `id__in=[1, 2]`, `date_modified__min=...`), page by page."""
        params = filter_params(filters, include=list(include) or None, include_fields=list(include_fields) or None,
                               **named_filters)
        async for item in self.iter_v3("/v3/catalog/products", params, limit=limit, concurrency=concurrency):
            yield Product.from_api(item)

    async def create_product(self, fields_: Mapping[str, Any]) -> Product:
        body = await self._v3("POST", "/v3/catalog/products", json=dict(fields_))
        return Product.from_api(body["data"])

    async def update_product(self, product_id: int, fields_: Mapping[str, Any]) -> Product:
        body = await self._v3("PUT", f"/v3/catalog/products/{product_id}", json=dict(fields_))
        return Product.from_api(body["data"])

    async def update_products(self, updates: Iterable[Mapping[str, Any]]) -> list[Product]:
        """Batch PUT in groups of 10 (BigCommerce's limit); every update needs its `id`."""
        results: list[Product] = []
        for chunk in _chunks([dict(u) for u in updates], PRODUCT_BATCH_SIZE):
            body = await self._v3("PUT", "/v3/catalog/products", json=list(chunk))
            results += [Product.from_api(item) for item in body.get("data") or []]
        return results

    async def delete_products(self, product_ids: Iterable[int]) -> None:
        for chunk in _chunks(list(product_ids), DELETE_BATCH_SIZE):
            await self.request("DELETE", "/v3/catalog/products", params=filter_params({"id:in": list(chunk)}))

    async def iter_variants(self, product_id: int | None = None, *, filters: Mapping[str, Any] | None = None,
                            **named_filters: Any) -> AsyncIterator[Variant]:
        path = f"/v3/catalog/products/{product_id}/variants" if product_id else "/v3/catalog/variants"
        async for item in self.iter_v3(path, filter_params(filters, **named_filters)):
            yield Variant.from_api(item)

    async def update_variant(self, product_id: int, variant_id: int, fields_: Mapping[str, Any]) -> Variant:
        body = await self._v3("PUT", f"/v3/catalog/products/{product_id}/variants/{variant_id}", json=dict(fields_))
        return Variant.from_api(body["data"])

    async def update_variants(self, updates: Iterable[Mapping[str, Any]]) -> list[Variant]:
        """Batch PUT in groups of 50 (BigCommerce's limit); every update needs its `id`."""
        results: list[Variant] = []
        for chunk in _chunks([dict(u) for u in updates], VARIANT_BATCH_SIZE):
            body = await self._v3("PUT", "/v3/catalog/variants", json=list(chunk))
            results += [Variant.from_api(item) for item in body.get("data") or []]
        return results

    async def iter_brands(self, **named_filters: Any) -> AsyncIterator[Brand]:
        async for item in self.iter_v3("/v3/catalog/brands", filter_params(**named_filters)):
            yield Brand.from_api(item)

    async def iter_categories(self, **named_filters: Any) -> AsyncIterator[Category]:
        async for item in self.iter_v3("/v3/catalog/trees/categories", filter_params(**named_filters)):
            yield Category.from_api(item)

    # -- inventory --
    async def iter_inventory_items(self, *, filters: Mapping[str, Any] | None = None,
                                   **named_filters: Any) -> AsyncIterator[InventoryItem]:
        async for item in self.iter_v3("/v3/inventory/items", filter_params(filters, **named_filters)):
            yield InventoryItem.from_api(item)

    async def adjust_inventory_absolute(self, items: Sequence[Mapping[str, Any]], reason: str = "") -> list[str]:
        """Absolute adjustments in groups of 2000; returns the transaction ids."""
        return await self._adjust("PUT", "/v3/inventory/adjustments/absolute", items, reason)

    async def adjust_inventory_relative(self, items: Sequence[Mapping[str, Any]], reason: str = "") -> list[str]:
        return await self._adjust("POST", "/v3/inventory/adjustments/relative", items, reason)

    async def _adjust(self, method: str, path: str, items: Sequence[Mapping[str, Any]], reason: str) -> list[str]:
        transactions = []
        for chunk in _chunks([dict(i) for i in items], INVENTORY_BATCH_SIZE):
            body = {"items": list(chunk), **({"reason": reason} if reason else {})}
            result = await self.request(method, path, json=body) or {}
            transactions.append(str(result.get("transaction_id", "")))
        return transactions

    async def update_location_items(self, location_id: int, settings: Sequence[Mapping[str, Any]]) -> list[str]:
        """Per-location item settings (safety stock, backorder_limit, ...) in groups of 2000."""
        transactions = []
        for chunk in _chunks([dict(s) for s in settings], INVENTORY_BATCH_SIZE):
            result = await self.request("PUT", f"/v3/inventory/locations/{location_id}/items",
                                        json={"settings": list(chunk)}) or {}
            transactions.append(str(result.get("transaction_id", "")))
        return transactions

    async def get_inventory_settings(self) -> dict[str, Any]:
        return dict((await self._v3("GET", "/v3/settings/inventory"))["data"])

    # -- orders --
    async def get_order(self, order_id: int) -> Order:
        return Order.from_api(await self.request("GET", f"/v2/orders/{order_id}"))

    async def create_order(self, body: Mapping[str, Any]) -> Order:
        return Order.from_api(await self.request("POST", "/v2/orders", json=dict(body)))

    async def update_order(self, order_id: int, fields_: Mapping[str, Any]) -> Order:
        return Order.from_api(await self.request("PUT", f"/v2/orders/{order_id}", json=dict(fields_)))

    async def iter_orders(self, **named_filters: Any) -> AsyncIterator[Order]:
        async for item in self.iter_v2("/v2/orders", filter_params(**named_filters)):
            yield Order.from_api(item)

    async def iter_order_products(self, order_id: int, *, limit: int = MAX_PAGE_SIZE) -> AsyncIterator[OrderProduct]:
        async for item in self.iter_v2(f"/v2/orders/{order_id}/products", limit=limit):
            yield OrderProduct.from_api(item)

    async def list_order_products(self, order_id: int) -> list[OrderProduct]:
        return [line async for line in self.iter_order_products(order_id)]

    async def list_order_statuses(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/v2/order_statuses") or [])

    # -- webhooks --
    async def list_hooks(self, **named_filters: Any) -> list[Hook]:
        return [Hook.from_api(item) async for item in self.iter_v3("/v3/hooks", filter_params(**named_filters))]

    async def create_hook(self, scope: str, destination: str, *, headers: Mapping[str, str] | None = None,
                          is_active: bool = True) -> Hook:
        body = await self._v3("POST", "/v3/hooks", json={"scope": scope, "destination": destination,
                                                         "is_active": is_active, "headers": dict(headers or {})})
        return Hook.from_api(body["data"])

    async def update_hook(self, hook_id: int, fields_: Mapping[str, Any]) -> Hook:
        return Hook.from_api((await self._v3("PUT", f"/v3/hooks/{hook_id}", json=dict(fields_)))["data"])

    async def delete_hook(self, hook_id: int) -> None:
        await self.request("DELETE", f"/v3/hooks/{hook_id}")

    # -- scripts --
    async def list_scripts(self) -> list[Script]:
        return [Script.from_api(item) async for item in self.iter_v3("/v3/content/scripts")]

    async def create_script(self, fields_: Mapping[str, Any]) -> Script:
        return Script.from_api((await self._v3("POST", "/v3/content/scripts", json=dict(fields_)))["data"])

    async def update_script(self, script_uuid: str, fields_: Mapping[str, Any]) -> Script:
        body = await self._v3("PUT", f"/v3/content/scripts/{script_uuid}", json=dict(fields_))
        return Script.from_api(body["data"])

    async def delete_script(self, script_uuid: str) -> None:
        await self.request("DELETE", f"/v3/content/scripts/{script_uuid}")

    # -- store --
    async def get_store_info(self) -> StoreInfo:
        return StoreInfo.from_api(await self.request("GET", "/v2/store"))

