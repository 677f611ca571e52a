"""BigCommerce's REST API under /stores/{store_hash}/v2|v3: the route table, behind `ApiGate`.

One module per resource family: catalog, inventory, orders, store (info, hooks, scripts).
"""

from __future__ import annotations

from starlette.routing import Route

from sandbox.bigcommerce.api import catalog, inventory, orders, store
from sandbox.bigcommerce.api.gate import ApiGate

__all__ = ["ROUTES", "ApiGate"]

PREFIX = "/stores/{store_hash}"
ROUTES = [
    Route(PREFIX + "/v3/catalog/products", catalog.products_collection, methods=["GET", "POST", "PUT", "DELETE"]),
    Route(PREFIX + "/v3/catalog/products/{product_id:int}", catalog.product_item, methods=["GET", "PUT", "DELETE"]),
    Route(PREFIX + "/v3/catalog/products/{product_id:int}/variants", catalog.product_variants, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/catalog/products/{product_id:int}/variants/{variant_id:int}", catalog.product_variant_item,
          methods=["GET", "PUT"]),
    Route(PREFIX + "/v3/catalog/products/{product_id:int}/options", catalog.product_options, methods=["GET"]),
    Route(PREFIX + "/v3/catalog/variants", catalog.variants_collection, methods=["GET", "PUT"]),
    Route(PREFIX + "/v3/catalog/brands", catalog.brands_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/catalog/brands/{brand_id:int}", catalog.brand_item, methods=["GET", "PUT", "DELETE"]),
    Route(PREFIX + "/v3/catalog/trees", catalog.trees, methods=["GET"]),
    Route(PREFIX + "/v3/catalog/trees/categories", catalog.tree_categories, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/catalog/trees/{tree_id:int}/categories", catalog.tree_nested, methods=["GET"]),
    Route(PREFIX + "/v3/catalog/categories", catalog.legacy_categories, methods=["GET"]),
    Route(PREFIX + "/v3/catalog/summary", catalog.catalog_summary, methods=["GET"]),
    Route(PREFIX + "/v3/inventory/items", inventory.inventory_items, methods=["GET"]),
    Route(PREFIX + "/v3/inventory/adjustments/absolute", inventory.adjust_absolute, methods=["PUT"]),
    Route(PREFIX + "/v3/inventory/adjustments/relative", inventory.adjust_relative, methods=["POST"]),
    Route(PREFIX + "/v3/inventory/locations", inventory.locations, methods=["GET"]),
    Route(PREFIX + "/v3/inventory/locations/{location_id:int}/items", inventory.location_items, methods=["GET", "PUT"]),
    Route(PREFIX + "/v3/settings/inventory", inventory.inventory_settings, methods=["GET", "PUT"]),
    Route(PREFIX + "/v3/hooks", store.hooks_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/hooks/{hook_id:int}", store.hook_item, methods=["GET", "PUT", "DELETE"]),
    Route(PREFIX + "/v3/content/scripts", store.scripts_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/content/scripts/{uuid}", store.script_item, methods=["GET", "PUT", "DELETE"]),
    Route(PREFIX + "/v2/store", store.store_info, methods=["GET"]),
    Route(PREFIX + "/v2/orders", orders.orders_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/v2/orders/count", orders.orders_count, methods=["GET"]),
    Route(PREFIX + "/v2/orders/{order_id:int}", orders.order_item, methods=["GET", "PUT"]),
    Route(PREFIX + "/v2/orders/{order_id:int}/products", orders.order_products, methods=["GET"]),
    Route(PREFIX + "/v2/orders/{order_id:int}/products/{line_id:int}", orders.order_product_item, methods=["GET"]),
    Route(PREFIX + "/v2/order_statuses", orders.order_statuses, methods=["GET"]),
    Route(PREFIX + "/{rest:path}", store.unknown_api_path, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
]
