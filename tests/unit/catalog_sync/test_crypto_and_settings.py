"""Token encryption at rest and catalog_sync's settings."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.fernet import Fernet

from services.catalog_sync.crypto import KEY_FILE_NAME, TokenCipher
from services.catalog_sync.settings import CatalogSettings
from services.common.settings import Secret, ServiceSettings


def test_token_round_trip_and_ciphertext_hides_the_token():
    cipher = TokenCipher([Fernet.generate_key().decode()])
    sealed = cipher.encrypt("bc-secret-token")
    assert b"bc-secret-token" not in sealed
    assert cipher.decrypt(sealed) == "bc-secret-token"


def test_rotation_new_key_first_old_still_decrypts_then_rotate_drops_the_old_key():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = TokenCipher([old]).encrypt("tok")
    both = TokenCipher([new, old])
    assert both.decrypt(sealed) == "tok"
    rotated = both.rotate(sealed)
    assert TokenCipher([new]).decrypt(rotated) == "tok"
    with pytest.raises(ValueError):
        TokenCipher([new]).decrypt(sealed)


def test_malformed_key_fails_fast_without_printing_it():
    with pytest.raises(ValueError) as raised:
        TokenCipher(["not-a-key"])
    assert "not-a-key" not in str(raised.value)


def test_embedded_default_generates_a_private_key_file_once(tmp_path):
    first = TokenCipher.from_config("", str(tmp_path))
    sealed = first.encrypt("tok")
    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert TokenCipher.from_config("", str(tmp_path)).decrypt(sealed) == "tok"


def test_settings_from_env_and_extra_overrides():
    settings = CatalogSettings.from_env(environ={"BACKORDER_BC_API_URL": "https://api.example.com/",
                                                 "BACKORDER_WEBHOOK_SECRET_KEY": "k1",
                                                 "BACKORDER_INVENTORY_GRPC_ADDR": "inv:1"})
    assert settings.bc_api_url == "https://api.example.com"
    assert settings.webhook_secret_key.reveal() == "k1" and "k1" not in repr(settings)
    assert settings.inventory_addr == "inv:1"
    service = ServiceSettings("catalog_sync", Secret("sqlite://"), "nats://x", "127.0.0.1", 0, 0, "INFO", ".", 1.0,
                              extra={"public_url": "http://gw", "token_encryption_keys": "abc"})
    merged = CatalogSettings.for_service(service, environ={})
    assert merged.public_url == "http://gw"
    assert isinstance(merged.token_encryption_keys, Secret)
