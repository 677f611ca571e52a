"""catalog_sync: installed stores, the catalog mirror and every call to BigCommerce."""
