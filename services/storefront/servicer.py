"""StorefrontService: proto <-> domain. Domain errors are mapped by the shared interceptor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import grpc
from backorder.storefront.v1 import storefront_pb2 as pb
from backorder.storefront.v1 import storefront_pb2_grpc

from services.common.errors import ValidationFailed
from services.storefront import domain
from services.storefront.handlers import StorefrontHandlers, StoreSettings

# The servicer reads nothing from its context (errors are raised and mapped by the interceptor).
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

MAX_VIEWS_PER_CALL = 250
MAX_NOTES_PER_CALL = 1000

# Optional scalar fields of UpdateSettingsRequest that map 1:1 onto Settings.
_UPDATABLE = tuple(name for name in domain.SETTINGS_FIELDS if name != "allowed_origins")


def selectors_pb(selectors: domain.Selectors) -> pb.ThemeSelectors:
    return pb.ThemeSelectors(**selectors.as_dict())


def settings_pb(store_hash: str, stored: StoreSettings) -> pb.StorefrontSettings:
    values = stored.settings.as_dict()
    return pb.StorefrontSettings(
        store_hash=store_hash, selectors=selectors_pb(stored.settings.selectors), customized=stored.customized, known=stored.known,
        **values,
    )


def view_pb(view: domain.ProductView) -> pb.ProductView:
    message = pb.ProductView(
        product_id=view.product_id, assigned=view.assigned, status=view.status, stock=view.stock,
        back_in_stock_date=view.back_in_stock_date, incoming_stock=view.incoming_stock, version=view.version,
        settings_revision=view.settings_revision,
        messages=pb.ProductMessages(
            inventory=view.messages.inventory, shipping=view.messages.shipping,
            button_text=view.messages.button_text, button_color=view.messages.button_color,
            button_text_color=view.messages.button_text_color,
        ),
    )
    if view.threshold is not None:
        message.threshold = view.threshold
    if view.salable_qty is not None:
        message.salable_qty = view.salable_qty
    return message


def themes_pb() -> list[pb.Theme]:
    return [
        pb.Theme(id=theme.id, name=theme.name, vendor=theme.vendor, based_on=theme.based_on,
                 versions=[pb.ThemeVersion(version=v.version, selectors=selectors_pb(v.selectors))
                           for v in theme.versions])
        for theme in domain.THEMES
    ]


class StorefrontServicer(storefront_pb2_grpc.StorefrontServiceServicer):
    def __init__(self, handlers: StorefrontHandlers) -> None:
        self.handlers = handlers

    async def GetSettings(self, request: pb.GetSettingsRequest, context: Context) -> pb.GetSettingsResponse:
        stored = await self.handlers.get_settings(request.store_hash)
        return pb.GetSettingsResponse(settings=settings_pb(request.store_hash, stored))

    async def UpdateSettings(self, request: pb.UpdateSettingsRequest, context: Context) -> pb.UpdateSettingsResponse:
        present = {descriptor.name for descriptor, _ in request.ListFields()}
        changes: dict[str, Any] = {name: getattr(request, name) for name in _UPDATABLE if name in present}
        if request.set_allowed_origins:
            changes["allowed_origins"] = list(request.allowed_origins)
        stored = await self.handlers.update_settings(request.store_hash, changes, reset=request.reset_to_defaults)
        return pb.UpdateSettingsResponse(settings=settings_pb(request.store_hash, stored))

    async def ListThemes(self, request: pb.ListThemesRequest, context: Context) -> pb.ListThemesResponse:
        return pb.ListThemesResponse(themes=themes_pb())

    async def GetProductView(self, request: pb.GetProductViewRequest, context: Context) -> pb.GetProductViewResponse:
        _check_product_ids([request.product_id])
        views = await self.handlers.product_views(request.store_hash, [request.product_id])
        return pb.GetProductViewResponse(view=view_pb(views[0]))

    async def GetProductViews(self, request: pb.GetProductViewsRequest, context: Context) -> pb.GetProductViewsResponse:
        _check_product_ids(request.product_ids)
        views = await self.handlers.product_views(request.store_hash, list(request.product_ids))
        return pb.GetProductViewsResponse(views=[view_pb(view) for view in views])

    async def CheckCart(self, request: pb.CheckCartRequest, context: Context) -> pb.CheckCartResponse:
        lines = [domain.CartLine(line.product_id, line.quantity, line.in_cart_qty) for line in request.lines]
        result = await self.handlers.check_cart(request.store_hash, lines)
        return pb.CheckCartResponse(
            lines=[pb.CartLineResult(product_id=r.product_id, quantity=r.quantity, assigned=r.assigned,
                                     backordered_qty=r.backordered_qty, over_threshold=r.over_threshold,
                                     alert=r.alert, cart_message=r.cart_message) for r in result.lines],
            mixed_cart_alert=result.mixed_cart_alert, over_threshold=result.over_threshold,
            over_threshold_alert=result.over_threshold_alert, cart_message=result.cart_message,
            backordered_qty=result.backordered_qty, added_qty=result.added_qty,
        )

    async def RenderOrderNote(self, request: pb.RenderOrderNoteRequest, context: Context) -> pb.RenderOrderNoteResponse:
        lines = [domain.OrderNoteLine(line.name, line.sku, line.backordered_qty) for line in request.lines]
        return pb.RenderOrderNoteResponse(note=await self.handlers.order_note(request.store_hash, lines))

    async def RenderOrderNotes(self, request: pb.RenderOrderNotesRequest, context: Context
                               ) -> pb.RenderOrderNotesResponse:
        if len(request.orders) > MAX_NOTES_PER_CALL:
            raise ValidationFailed("too many orders", errors=[
                {"field": "orders", "reason": "too_many", "max_items": MAX_NOTES_PER_CALL}])
        orders = [[domain.OrderNoteLine(line.name, line.sku, line.backordered_qty) for line in order.lines]
                  for order in request.orders]
        return pb.RenderOrderNotesResponse(notes=await self.handlers.order_notes(request.store_hash, orders))


def _check_product_ids(product_ids: Iterable[int]) -> None:
    ids = list(product_ids)
    errors = [{"field": "product_ids", "item": i, "reason": "must_be_positive"}
              for i, pid in enumerate(ids) if not domain.valid_product_id(pid)]
    if not ids:
        errors.append({"field": "product_ids", "reason": "empty"})
    if len(ids) > MAX_VIEWS_PER_CALL:
        errors.append({"field": "product_ids", "reason": "too_many", "max_items": MAX_VIEWS_PER_CALL})
    if errors:
        raise ValidationFailed("invalid product ids", errors=errors)
