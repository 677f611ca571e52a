"""Per-store API tokens (for partner ERPs and scripts): minted once in plaintext, stored
as a SHA-256 hash, revocable."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from services.common.clock import as_utc, utcnow
from services.common.db import UnitOfWork
from services.common.errors import NotFound, Unauthenticated, ValidationFailed
from services.inventory import domain, repository
from services.inventory.changes import Entry, Transactions
from services.inventory.tables import api_tokens

TOKEN_PREFIX = "bo_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, tx: Transactions) -> None:
        self.tx = tx

    async def create(self, store_hash: str, name: str) -> tuple[Any, str]:
        domain.check_store_hash(store_hash)
        if not name or len(name) > 255:
            raise ValidationFailed("name: required (at most 255 characters)",
                                   [domain.field_error(None, "name", "required", "required (at most 255 characters)")])
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {"id": str(uuid.uuid4()), "store_hash": store_hash, "name": name, "token_hash": hash_token(plaintext),
               "prefix": plaintext[:10], "created_at": utcnow(), "last_used_at": None, "revoked_at": None}

        async def body(uow: UnitOfWork) -> None:
            await uow.conn.execute(api_tokens.insert().values(**row))

        await self.tx.run(body)
        return Entry(row), plaintext

    async def list_for(self, store_hash: str, include_revoked: bool = False) -> list[Any]:
        domain.check_store_hash(store_hash)
        query = select(api_tokens).where(api_tokens.c.store_hash == store_hash).order_by(api_tokens.c.created_at)
        if not include_revoked:
            query = query.where(api_tokens.c.revoked_at.is_(None))
        async with self.tx.db.read() as conn:
            return list((await conn.execute(query)).all())

    async def revoke(self, store_hash: str, token_id: str) -> Any:
        domain.check_store_hash(store_hash)

        async def body(uow: UnitOfWork) -> Any:
            await uow.conn.execute(update(api_tokens).where(
                api_tokens.c.id == token_id, api_tokens.c.store_hash == store_hash, api_tokens.c.revoked_at.is_(None),
            ).values(revoked_at=utcnow()))
            return (await uow.conn.execute(select(api_tokens).where(
                api_tokens.c.id == token_id, api_tokens.c.store_hash == store_hash))).first()

        row = await self.tx.run(body)
        if row is None:
            raise NotFound(f"token {token_id} not found", details={"id": token_id})
        return row

    async def verify(self, token: str) -> tuple[str, str]:
        """(store_hash, token_id) of a live token; Unauthenticated otherwise."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise Unauthenticated("invalid API token")
        async with self.tx.db.read() as conn:
            row = await repository.token_by_hash(conn, hash_token(token))
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("invalid or revoked API token")
        last_used = as_utc(row.last_used_at)
        if last_used is None or utcnow() - last_used > dt.timedelta(minutes=1):
            with contextlib.suppress(DBAPIError):
                async with self.tx.db.unit_of_work() as uow:
                    await uow.conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(
                        last_used_at=utcnow()))
                    await uow.commit()
        return row.store_hash, row.id
