"""Billing: plans, subscriptions, charges and entitlements (issue 8; docs/billing.md)."""
