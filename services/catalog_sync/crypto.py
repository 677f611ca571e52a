"""Store tokens encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Keys come from BACKORDER_TOKEN_ENCRYPTION_KEYS (comma-separated urlsafe-base64 Fernet
keys): the first encrypts, every one decrypts, so a key is rotated by putting the new key
first, running `backorder catalog_sync rotate-token-key` (re-encrypts every row with the
first key) and then removing the old key (docs/operations-secrets.md). Without the
variable (the embedded default), a key is generated once into <data_dir>/token-key
(mode 0600), never in the repository and never logged.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE_NAME = "token-key"


class TokenCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one token encryption key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as exc:
            raise ValueError("BACKORDER_TOKEN_ENCRYPTION_KEYS holds a malformed Fernet key") from exc

    @classmethod
    def from_config(cls, keys: str, data_dir: str) -> TokenCipher:
        listed = [key.strip() for key in keys.split(",") if key.strip()]
        if listed:
            return cls(listed)
        return cls([load_or_create_key_file(Path(data_dir) / KEY_FILE_NAME)])

    def encrypt(self, token: str) -> bytes:
        return self._fernet.encrypt(token.encode())

    def decrypt(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(sealed)).decode()
        except InvalidToken as exc:
            raise ValueError("a store token cannot be decrypted with the configured keys") from exc

    def rotate(self, sealed: bytes) -> bytes:
        """Re-encrypt with the first key (MultiFernet.rotate)."""
        return self._fernet.rotate(bytes(sealed))


def load_or_create_key_file(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key
