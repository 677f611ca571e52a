"""What a store hash is, for every service.

BigCommerce store hashes are short lower-case letters and digits (`context=stores/abc123`).
The hash goes into NATS subjects (`bc.webhooks.<hash>.…`, `backorder.<hash>.…`) and cache keys,
so anything else (dots, wildcards, spaces, unbounded length) is refused at every door.
"""

from __future__ import annotations

import re

STORE_HASH_PATTERN = re.compile(r"^[a-z0-9]{1,32}$")


def is_store_hash(value: object) -> bool:
    return isinstance(value, str) and STORE_HASH_PATTERN.fullmatch(value) is not None
