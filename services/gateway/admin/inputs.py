"""Input rules of the admin API: JSON bodies and query parameters -> validated values.

Pure: each rule raises ValidationFailed naming every bad field (common/errors.py's entry
shape), or collects the entries in the `errors` list it is handed.
"""

from __future__ import annotations

from typing import Any

from backorder.inventory.v1 import inventory_pb2, report_pb2
from backorder.storefront.v1 import storefront_pb2

from services.common.errors import ErrorEntry, ValidationFailed, field_error
from services.gateway import csv_format
from services.gateway.admin.http import bool_param, int_param, require_object, text_param
from services.gateway.admin.mapping import SETTINGS_TEXT_FIELDS

PRODUCT_FIELDS = ("product_id", "stock", "threshold", "incoming_stock", "back_in_stock_date")
MAX_TOKEN_NAME = 100


def whole_number(value: Any, field_name: str, *, minimum: int | None, errors: list[ErrorEntry],
                 item: int | None = None) -> int | None:
    """An integer (or its decimal text) within inventory's range; None after adding an entry to `errors`."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and csv_format.WHOLE_NUMBER.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        errors.append(field_error(field_name, "not_a_whole_number", item=item))
        return None
    if abs(number) > csv_format.MAX_INT:
        errors.append(field_error(field_name, "out_of_range", item=item))
        return None
    if minimum is not None and number < minimum:
        errors.append(field_error(field_name, "negative" if minimum == 0 else "too_small", item=item))
        return None
    return number


def parse_product_fields(body: Any, *, item: int | None = None, require_id: bool = True,
                         errors: list[ErrorEntry]) -> dict[str, Any]:
    """Validate one product's editable fields. Returns only the keys present (None = unlimited/cleared).

    Pure: `errors` collects an entry for every bad field.
    """
    if not isinstance(body, dict):
        errors.append(field_error("", "not_an_object", item=item))
        return {}
    fields: dict[str, Any] = {}
    if require_id or "product_id" in body:
        if "product_id" not in body:
            errors.append(field_error("product_id", "required", item=item))
        else:
            fields["product_id"] = whole_number(body["product_id"], "product_id", minimum=1, errors=errors, item=item)
    if "stock" in body and body["stock"] is not None:
        fields["stock"] = whole_number(body["stock"], "stock", minimum=0, errors=errors, item=item)
    if "threshold" in body:
        fields["threshold"] = (None if body["threshold"] in (None, "")
                               else whole_number(body["threshold"], "threshold", minimum=0, errors=errors, item=item))
    if "incoming_stock" in body:
        fields["incoming_stock"] = (0 if body["incoming_stock"] in (None, "")
                                    else whole_number(body["incoming_stock"], "incoming_stock", minimum=0,
                                                      errors=errors, item=item))
    if "back_in_stock_date" in body:
        date = body["back_in_stock_date"] or ""
        if not isinstance(date, str) or (date and not csv_format.validate_date(date)):
            errors.append(field_error("back_in_stock_date", "bad_date", item=item, expected="YYYY-MM-DD"))
        else:
            fields["back_in_stock_date"] = date
    for name in sorted(set(body) - set(PRODUCT_FIELDS)):
        errors.append(field_error(name, "unknown_field", item=item))
    return fields


def parse_product(body: Any, message: str, *, require_id: bool = True, path_id: int | None = None
                  ) -> dict[str, Any]:
    """One product's fields; raises ValidationFailed(message) naming every bad field. With
    `path_id` (the id in the URL), a product_id in the body must match it."""
    errors: list[ErrorEntry] = []
    fields = parse_product_fields(body, require_id=require_id, errors=errors)
    if path_id is not None:
        if fields.get("product_id") not in (None, path_id):
            errors.append(field_error("product_id", "does_not_match_path"))
        fields["product_id"] = path_id
    if errors:
        raise ValidationFailed(message, errors=errors)
    return fields


def parse_items(body: Any, key: str = "items", *, require_id: bool = True) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise ValidationFailed(f"{key} must be a non-empty list", errors=[field_error(key, "required")])
    errors: list[ErrorEntry] = []
    items = [parse_product_fields(entry, item=index, require_id=require_id, errors=errors)
             for index, entry in enumerate(body[key])]
    seen: dict[int, int] = {}
    for index, entry in enumerate(items):
        pid = entry.get("product_id")
        if pid is not None and seen.setdefault(pid, index) != index:
            errors.append(field_error("product_id", "duplicate", item=index, product_id=pid))
    if errors:
        raise ValidationFailed("some items are invalid; nothing was changed", errors=errors)
    return items


def parse_product_ids(raw: Any, field_name: str = "product_ids") -> list[int]:
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed(f"{field_name} must be a non-empty list of product ids",
                               errors=[field_error(field_name, "required")])
    errors: list[ErrorEntry] = []
    ids = [whole_number(v, field_name, minimum=1, errors=errors, item=i) for i, v in enumerate(raw)]
    if errors:
        raise ValidationFailed("product ids must be positive whole numbers", errors=errors)
    return list(dict.fromkeys(i for i in ids if i is not None))


def _invalid_settings(errors: list[ErrorEntry]) -> None:
    if errors:
        raise ValidationFailed("some settings are invalid; nothing was saved", errors=errors)


def settings_update(store: str, body: Any) -> storefront_pb2.UpdateSettingsRequest:
    """PUT /settings/storefront's body as the storefront service's update (only the fields sent)."""
    request = storefront_pb2.UpdateSettingsRequest(store_hash=store)
    errors: list[ErrorEntry] = []
    for name, value in require_object(body).items():
        if name in SETTINGS_TEXT_FIELDS:
            if not isinstance(value, str):
                errors.append(field_error(name, "not_a_string"))
            else:
                setattr(request, name, value)
        elif name == "custom_theme":
            request.custom_theme = bool_param(value, name)
        elif name == "low_stock_level":
            number = whole_number(value, name, minimum=0, errors=errors)
            if number is not None:
                request.low_stock_level = number
        elif name == "allowed_origins":
            if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
                errors.append(field_error(name, "not_a_list_of_strings"))
            else:
                request.allowed_origins.extend(o.strip() for o in value if o.strip())
                request.set_allowed_origins = True
        elif name == "reset_to_defaults":
            request.reset_to_defaults = bool_param(value, name)
        elif name not in {"selectors", "customized"}:
            errors.append(field_error(name, "unknown_field"))
    _invalid_settings(errors)
    return request


def inventory_settings_update(store: str, body: Any) -> inventory_pb2.UpdateStoreSettingsRequest:
    """PUT /settings/inventory's body as inventory's update (only the fields sent)."""
    update = inventory_pb2.UpdateStoreSettingsRequest(store_hash=store)
    errors: list[ErrorEntry] = []
    for name, value in require_object(body).items():
        if name == "low_stock_level":
            number = whole_number(value, name, minimum=0, errors=errors)
            if number is not None:
                update.low_stock_level = number
        elif name in {"return_stock_on_cancel", "keep_assigned_when_tracking_enabled"}:
            setattr(update, name, bool_param(value, name))
        elif name == "timezone":
            if not isinstance(value, str):
                errors.append(field_error(name, "not_a_string"))
            else:
                update.timezone = value
        else:
            errors.append(field_error(name, "unknown_field"))
    _invalid_settings(errors)
    return update


def parse_report_filter(params: Any) -> report_pb2.BackorderFilter:
    errors: list[ErrorEntry] = []
    dates = {}
    for name in ("from", "to"):
        value = text_param(params, name)
        if value and not csv_format.validate_date(value):
            errors.append(field_error(name, "bad_date", expected="YYYY-MM-DD"))
        dates[name] = value
    if errors:
        raise ValidationFailed("dates must be YYYY-MM-DD", errors=errors)
    return report_pb2.BackorderFilter(q=text_param(params, "q"), from_date=dates["from"],
                                      to_date=dates["to"], category_id=int_param(params, "category_id", 0),
                                      brand_id=int_param(params, "brand_id", 0))


def plan_code(body: Any) -> str:
    plan = body.get("plan") if isinstance(body, dict) else None
    if not isinstance(plan, str) or not plan.strip():
        raise ValidationFailed("plan is required", errors=[field_error("plan", "required")])
    return plan.strip()


def token_name(body: Any) -> str:
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_TOKEN_NAME:
        raise ValidationFailed(f"name is required (up to {MAX_TOKEN_NAME} characters)",
                               errors=[field_error("name", "required")])
    return name.strip()
