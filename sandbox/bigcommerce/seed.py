"""The demo catalog: brands, a category tree and about 40 products, a few with variants, varied stock."""

from __future__ import annotations

from typing import Any

from sandbox.bigcommerce import catalog
from sandbox.bigcommerce.core import Sandbox

BRANDS = ["Common Good", "Sagaform", "OFS", "Ember Works", "Northwind", "Fieldcraft"]
CATEGORY_TREE = {
    "Kitchen": ["Cookware", "Utensils", "Tableware"],
    "Garden": ["Tools", "Planters"],
    "Home": ["Lighting", "Textiles"],
    "Office": [],
}
SIMPLE_PRODUCTS = [
    # name, category, brand index, price, stock, tracking
    ("Cast Iron Skillet 10in", "Cookware", 3, 39.0, 25, "product"),
    ("Enamel Dutch Oven", "Cookware", 3, 89.0, 4, "product"),
    ("Copper Saucepan", "Cookware", 1, 120.0, 0, "product"),
    ("Carbon Steel Wok", "Cookware", 3, 55.0, 12, "product"),
    ("Stockpot 8qt", "Cookware", 4, 64.0, 2, "product"),
    ("Walnut Spatula", "Utensils", 0, 14.0, 80, "product"),
    ("Olive Wood Spoon Set", "Utensils", 0, 22.0, 0, "product"),
    ("Chef Knife 8in", "Utensils", 5, 98.0, 7, "product"),
    ("Silicone Tongs", "Utensils", 4, 11.5, 140, "product"),
    ("Measuring Cups", "Utensils", 1, 18.0, 33, "none"),
    ("Stoneware Dinner Plate", "Tableware", 1, 16.0, 60, "product"),
    ("Linen Napkins (4)", "Tableware", 0, 28.0, 1, "product"),
    ("Glass Tumbler Set", "Tableware", 1, 34.0, 0, "product"),
    ("Ceramic Serving Bowl", "Tableware", 4, 42.0, 9, "product"),
    ("Pruning Shears", "Tools", 5, 36.0, 15, "product"),
    ("Garden Trowel", "Tools", 5, 19.0, 0, "product"),
    ("Hori Hori Knife", "Tools", 5, 45.0, 3, "product"),
    ("Watering Can 2gal", "Tools", 4, 39.0, 21, "none"),
    ("Terracotta Pot 8in", "Planters", 2, 12.0, 48, "product"),
    ("Hanging Planter", "Planters", 2, 26.0, 0, "product"),
    ("Raised Bed Kit", "Planters", 2, 189.0, 2, "product"),
    ("Self-Watering Planter", "Planters", 4, 38.0, 11, "product"),
    ("Brass Table Lamp", "Lighting", 3, 149.0, 5, "product"),
    ("Pendant Shade", "Lighting", 3, 79.0, 0, "product"),
    ("Edison Bulb 4-Pack", "Lighting", 4, 24.0, 200, "none"),
    ("Wool Throw", "Textiles", 0, 110.0, 6, "product"),
    ("Cotton Bath Towel", "Textiles", 0, 32.0, 45, "product"),
    ("Linen Duvet Cover", "Textiles", 0, 180.0, 0, "product"),
    ("Desk Organizer", "Office", 2, 29.0, 17, "product"),
    ("Leather Notebook", "Office", 3, 35.0, 8, "product"),
    ("Fountain Pen", "Office", 3, 64.0, 0, "product"),
    ("Monitor Riser", "Office", 2, 58.0, 13, "none"),
    ("Orbit Terrarium", "Planters", 2, 109.0, 1, "product"),
    ("Smith Journal 13", "Office", 1, 12.5, 0, "product"),
]
VARIANT_PRODUCTS = [
    ("Linen Apron", "Textiles", 0, 38.0, "Color", ["Natural", "Indigo", "Rust"], [8, 0, 3]),
    ("Canvas Garden Gloves", "Tools", 5, 21.0, "Size", ["S", "M", "L"], [10, 4, 0]),
    ("Ceramic Mug", "Tableware", 1, 18.0, "Color", ["White", "Sage", "Charcoal", "Sand"], [30, 12, 0, 5]),
    ("Desk Chair Cushion", "Office", 4, 45.0, "Size", ["Standard", "Large"], [2, 0]),
    ("Apron Variant Tracked by Product", "Textiles", 0, 30.0, "Color", ["Olive", "Clay"], [0, 0]),
]


def seed_demo_catalog(sb: Sandbox, store_hash: str) -> dict[str, Any]:
    """Create the demo catalog in one transaction (fires no webhooks)."""
    with sb.db.transaction():
        return _seed(sb, store_hash)


def _seed(sb: Sandbox, store_hash: str) -> dict[str, Any]:
    brand_ids = [catalog.create_brand(sb, store_hash, {"name": name})["id"] for name in BRANDS]
    category_ids: dict[str, int] = {}
    for parent, children in CATEGORY_TREE.items():
        parent_id = catalog.create_category(sb, store_hash, {"name": parent})["category_id"]
        category_ids[parent] = parent_id
        for child in children:
            category_ids[child] = catalog.create_category(
                sb, store_hash, {"name": child, "parent_id": parent_id})["category_id"]
    product_ids = []
    for index, (name, category, brand, price, stock, tracking) in enumerate(SIMPLE_PRODUCTS):
        body = {"name": name, "type": "physical", "sku": f"DEMO-{index + 1:03d}", "price": price, "weight": 1,
                "categories": [category_ids[category]], "brand_id": brand_ids[brand], "inventory_level": stock,
                "inventory_tracking": tracking, "inventory_warning_level": 3,
                "description": f"<p>{name}, from the sandbox demo catalog.</p>"}
        if name == "Fountain Pen":
            body["availability"] = "preorder"
            body["preorder_message"] = "Expected %%DATE%%"
        if name == "Pendant Shade":
            body["availability"] = "disabled"
        if name == "Orbit Terrarium":
            body["is_visible"] = False
        product_ids.append(catalog.create_product(sb, store_hash, body, fire=False)["id"])
    for index, (name, category, brand, price, option, labels, stocks) in enumerate(VARIANT_PRODUCTS):
        tracking = "product" if "Tracked by Product" in name else "variant"
        variants = [{"sku": f"DEMO-V{index + 1}-{label.upper()}", "inventory_level": stock,
                     "option_values": [{"option_display_name": option, "label": label}]}
                    for label, stock in zip(labels, stocks, strict=True)]
        body = {"name": name, "type": "physical", "sku": f"DEMO-V{index + 1}", "price": price, "weight": 1,
                "categories": [category_ids[category]], "brand_id": brand_ids[brand],
                "inventory_tracking": tracking, "variants": variants}
        if tracking == "product":
            body["inventory_level"] = 6
        product_ids.append(catalog.create_product(sb, store_hash, body, fire=False)["id"])
    return {"brands": len(brand_ids), "categories": len(category_ids), "products": len(product_ids),
            "product_ids": product_ids}
