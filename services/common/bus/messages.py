"""What a consumer's handlers see: a delivered message, how it is decoded, the two kinds of
failure a handler raises, and the consumer's specification."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backorder.events.v1 import envelope_pb2
from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg

from services.common.bus.connection import MSG_ID_HEADER
from services.common.db import UnitOfWork


class TransientError(Exception):
    """Try again later (nak with delay)."""


class PermanentError(Exception):
    """This message can never be handled (term)."""


@dataclass
class IncomingMessage:
    """One delivered message. `envelope` is set for domain events (protobuf)."""

    subject: str
    data: bytes
    message_id: str
    num_delivered: int
    envelope: envelope_pb2.Envelope | None = None

    def unpack(self, message_type: type[Message]) -> Message:
        if self.envelope is None:
            raise PermanentError("not a domain event")
        payload = message_type()
        if not self.envelope.payload.Unpack(payload):
            raise PermanentError(f"payload is {self.envelope.payload.type_url}, not {message_type.DESCRIPTOR.full_name}")
        return payload


def decode_envelope(msg: Msg) -> IncomingMessage:
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(msg.data)
    except DecodeError as exc:
        raise PermanentError(f"undecodable envelope: {exc}") from exc
    if not envelope.event_id:
        raise PermanentError("envelope without event_id")
    return IncomingMessage(msg.subject, msg.data, envelope.event_id, msg.metadata.num_delivered, envelope)


def decode_raw(msg: Msg) -> IncomingMessage:
    msg_id = (msg.headers or {}).get(MSG_ID_HEADER) or f"seq-{msg.metadata.sequence.stream}"
    return IncomingMessage(msg.subject, msg.data, msg_id, msg.metadata.num_delivered)


TransactionalHandler = Callable[[UnitOfWork, IncomingMessage], Awaitable[None]]
Effect = Callable[[IncomingMessage], Awaitable[None]]
# Batch forms: the handler gets every fresh message of a fetch in one transaction; the
# effect gets them all at once and answers one outcome per message (None = done).
BatchHandler = Callable[[UnitOfWork, list[IncomingMessage]], Awaitable[None]]
BatchEffect = Callable[[list[IncomingMessage]], Awaitable[Sequence[BaseException | None]]]


async def no_transactional_work(_uow: UnitOfWork, _message: IncomingMessage) -> None:
    return None


@dataclass
class ConsumerSpec:
    """A durable pull consumer.

    `handler(uow, message)` runs inside one transaction that also records the message id
    in the inbox; the message is acked only after that transaction committed. A message
    whose id is already in the inbox is acked without calling anything.

    `effect(message)`, when given, runs first and outside any transaction: for work on
    other systems (BigCommerce, another service over gRPC) that must not hold a database
    transaction open (on SQLite, the write lock). Such an effect must itself be idempotent
    — it runs again if the process dies between the effect and the inbox commit.
    """

    durable: str
    stream: str
    subjects: list[str]
    handler: TransactionalHandler = no_transactional_work
    decode: Callable[[Msg], IncomingMessage] = decode_envelope
    effect: Effect | None = None
    batch_handler: BatchHandler | None = None
    batch_effect: BatchEffect | None = None
    batch: int = 64
    concurrency: int = 16
    ack_wait_s: float = 30.0
    max_deliver: int = 50
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)

