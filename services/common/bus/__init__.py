"""The event bus: JetStream connection and streams, the transactional outbox and its relay,
and durable pull consumers with an inbox.

Guarantees (documented for subscribers in docs/events.md):
- A producer writes its event rows in the same transaction as the change (`add_event`);
  the relay publishes them with `Nats-Msg-Id` = event id and marks them sent only after
  JetStream's ack. A relay killed between publish and mark publishes again on restart and
  JetStream drops the duplicate inside its duplicate window; past the window the
  consumer's inbox drops it.
- A consumer acks only after its transaction committed; a message delivered again (ack
  lost, consumer killed, AckWait passed) finds its id in the inbox and changes nothing.

Modules: `connection` (EventBus, streams), `outbox` (envelopes, outbox rows, the relay;
the tables themselves are in services/common/tables.py), `messages` (what handlers see), `consumer` (the consumer loop).
"""

from services.common.bus.connection import (
    DUPLICATE_WINDOW_S,
    EVENTS_SUBJECTS,
    MSG_ID_HEADER,
    STREAM_EVENTS,
    STREAM_WEBHOOKS,
    WEBHOOK_SUBJECTS,
    EventBus,
)
from services.common.bus.consumer import CONSUMED, FETCH_GIVE_UP_S, FETCH_WAIT_S, Consumer
from services.common.bus.messages import (
    BatchEffect,
    BatchHandler,
    ConsumerSpec,
    Effect,
    IncomingMessage,
    PermanentError,
    TransactionalHandler,
    TransientError,
    decode_envelope,
    decode_raw,
    no_transactional_work,
)
from services.common.bus.outbox import (
    OUTBOX_PENDING,
    OUTBOX_PUBLISHED,
    OutboxRelay,
    add_event,
    add_events,
    build_envelope,
    event_subject,
)

__all__ = [
    "CONSUMED", "DUPLICATE_WINDOW_S", "EVENTS_SUBJECTS", "FETCH_GIVE_UP_S", "FETCH_WAIT_S", "MSG_ID_HEADER",
    "OUTBOX_PENDING", "OUTBOX_PUBLISHED", "STREAM_EVENTS", "STREAM_WEBHOOKS", "WEBHOOK_SUBJECTS",
    "BatchEffect", "BatchHandler", "Consumer", "ConsumerSpec", "Effect", "EventBus", "IncomingMessage",
    "OutboxRelay", "PermanentError", "TransactionalHandler", "TransientError",
    "add_event", "add_events", "build_envelope", "decode_envelope",
    "decode_raw", "event_subject", "no_transactional_work",
]
