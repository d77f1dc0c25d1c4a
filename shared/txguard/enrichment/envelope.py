"""The Pub/Sub envelope: CloudEvent data -> message -> base64 data -> `Transaction` (or `LabelEvent`).

Read like Powertools' SQS envelope: the platform's wrapper is validated with its own model
(`PubSubEnvelope`), then the payload with the contract (`TRANSACTION_ADAPTER.validate_json` on
bytes). Every way a message can be malformed becomes one `InvalidEventError(reason, kind)` so the
pipeline can park it on the `invalid` topic with the original bytes; nothing here retries.

Two shapes reach the function and both validate here:
- a raw push body converted by functions-framework: `{"message": {"data", "attributes",
  "messageId", "publishTime", "@type"}}` (the framework drops `subscription`);
- an Eventarc CloudEvent: `{"message": {...}, "subscription": "projects/.../subscriptions/..."}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from txguard.contract.errors import InvalidEventError
from txguard.contract.models import LABEL_ADAPTER, TRANSACTION_ADAPTER, LabelEvent, Transaction

T = TypeVar("T")

MAX_PAYLOAD_BYTES = 64 * 1024

# error kinds (the `error_kind` attribute on the invalid topic)
KIND_ENVELOPE = "envelope"
KIND_ENCODING = "encoding"  # not base64, or not UTF-8
KIND_JSON = "json"
KIND_SCHEMA = "schema"
KIND_OVERSIZED = "oversized"


class PubSubMessage(BaseModel):
    """`PubsubMessage` as pushed (camelCase) or as Eventarc delivers it (both spellings accepted)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    data: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)
    message_id: str = Field("", validation_alias=AliasChoices("messageId", "message_id"))
    publish_time: str | None = Field(None, validation_alias=AliasChoices("publishTime", "publish_time"))
    ordering_key: str | None = Field(None, validation_alias=AliasChoices("orderingKey", "ordering_key"))


class PubSubEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    message: PubSubMessage
    subscription: str | None = None


ENVELOPE_ADAPTER: TypeAdapter[PubSubEnvelope] = TypeAdapter(PubSubEnvelope)


@dataclass(frozen=True)
class Delivery:
    """One delivered message: what the pipeline needs besides the payload."""

    raw: bytes  # the original payload bytes (what goes to `invalid` if it does not validate)
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    subscription: str | None = None
    publish_time: str | None = None  # RFC 3339, set by Pub/Sub when it accepted the message (kept on redelivery)


def _first_error(exc: ValidationError) -> tuple[str, str]:
    """(reason, kind) from a pydantic error: JSON syntax errors are `json`, the rest `schema`."""
    errors = exc.errors(include_url=False, include_input=False)
    kind = KIND_JSON if any(e["type"] == "json_invalid" for e in errors) else KIND_SCHEMA
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more, kind


def parse_envelope(data: Any) -> PubSubEnvelope:
    """Validate the platform's wrapper (a dict from the CloudEvent, or its JSON bytes)."""
    try:
        if isinstance(data, bytes | str):
            return ENVELOPE_ADAPTER.validate_json(data)
        return ENVELOPE_ADAPTER.validate_python(data)
    except ValidationError as exc:
        reason, _ = _first_error(exc)
        raise InvalidEventError(f"not a Pub/Sub message: {reason}", KIND_ENVELOPE) from None


def undecoded(envelope: PubSubEnvelope) -> Delivery:
    """The delivery before its data is decoded: the original bytes are the (not base64) text itself,
    so a message that does not decode still reaches `invalid` as it was sent, with its id."""
    msg = envelope.message
    return Delivery(msg.data.encode("utf-8", "surrogatepass"), dict(msg.attributes), msg.message_id,
                    envelope.subscription, msg.publish_time)


def decode(envelope: PubSubEnvelope) -> Delivery:
    """Base64-decode the message data (strictly: a lenient decoder would hide corrupt payloads).

    Size is checked after decoding (`parse_transaction`): Pub/Sub already caps a message at 10 MB,
    and the invalid topic should get the decoded original bytes."""
    msg = envelope.message
    encoded = msg.data
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidEventError(f"message data is not base64: {exc}", KIND_ENCODING) from None
    return Delivery(raw, dict(msg.attributes), msg.message_id, envelope.subscription, msg.publish_time)


def parse_transaction(raw: bytes) -> Transaction:
    """The payload: UTF-8 JSON that the contract accepts (finite numbers, no far-future times)."""
    return parse_payload(raw, TRANSACTION_ADAPTER)


def parse_label(raw: bytes) -> LabelEvent:
    """A `labels` message: the same checks as a transaction, with the LabelEvent contract."""
    return parse_payload(raw, LABEL_ADAPTER)


def parse_payload(raw: bytes, adapter: TypeAdapter[T]) -> T:
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise InvalidEventError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}", KIND_OVERSIZED)
    if not raw.strip():
        raise InvalidEventError("empty payload", KIND_JSON)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEventError(f"payload is not UTF-8: {exc}", KIND_ENCODING) from None
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        reason, kind = _first_error(exc)
        raise InvalidEventError(reason, kind) from None


def original_bytes(data: Any) -> bytes:
    """Best-effort bytes of an event whose envelope did not validate (for the invalid topic)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    try:
        return json.dumps(data, separators=(",", ":"), default=str).encode()
    except (TypeError, ValueError):
        return repr(data).encode()
