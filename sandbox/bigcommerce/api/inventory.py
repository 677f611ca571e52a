"""/v3/inventory and /v3/settings/inventory."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bigcommerce import inventory
from sandbox.bigcommerce.api.responses import json_body, v3, v3_list
from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.errors import not_found, unprocessable


async def inventory_items(request: Request) -> Response:
    items = inventory.inventory_items(Sandbox.of(request), request.path_params["store_hash"],
                                    dict(request.query_params))
    return v3_list(request, items)


async def adjust_absolute(request: Request) -> Response:
    return JSONResponse(inventory.adjust_inventory(Sandbox.of(request), request.path_params["store_hash"],
                                                 await json_body(request), relative=False))


async def adjust_relative(request: Request) -> Response:
    return JSONResponse(inventory.adjust_inventory(Sandbox.of(request), request.path_params["store_hash"],
                                                 await json_body(request), relative=True))


async def locations(request: Request) -> Response:
    return v3_list(request, [{"id": 1, "code": "BC-LOCATION-1", "label": "Default location",
                              "description": "", "managed_by_external_source": False, "type_id": "PHYSICAL",
                              "enabled": True, "operating_hours": {}, "time_zone": "UTC",
                              "address": None, "storefront_visibility": True}])


async def location_items(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    location_id = request.path_params["location_id"]
    if request.method == "PUT":
        return JSONResponse(inventory.update_location_settings(sb, store_hash, location_id, await json_body(request)))
    if location_id != 1:
        raise not_found(f"Location {location_id} was not found")
    items = []
    for item in inventory.inventory_items(sb, store_hash, dict(request.query_params)):
        entry = dict(item["locations"][0])
        settings = entry.pop("settings")
        items.append({"identity": item["identity"], **{k: v for k, v in entry.items() if not k.startswith("location_")},
                      "settings": settings})
    return v3_list(request, items)


async def inventory_settings(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    settings = sb.store(store_hash)["inventory_settings"]
    if request.method == "PUT":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
        unknown = set(body) - set(settings)
        if unknown:
            raise unprocessable("Unknown settings", {k: "unknown setting" for k in sorted(unknown)})
        settings.update(body)
        sb.update_store(store_hash, inventory_settings=settings)
    return v3(settings)

