"""What the admin API's route modules (routes/products.py, routes/backorder_products.py, …)
and the admin UI (routes/admin_ui.py) share: HTTP plumbing (http), input rules (inputs),
proto -> JSON (mapping), the list queries (queries) and the import-job engine (import_jobs)."""
