"""Storefront service: settings per store, theme collection, product views, cart checks."""
