"""The inventory service: assigned products, stock arithmetic, the ledger, the report, ERP API."""
