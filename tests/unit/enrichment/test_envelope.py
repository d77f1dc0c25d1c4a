"""The Pub/Sub envelope: every malformed kind becomes InvalidEventError with the right kind."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from txguard.contract.errors import InvalidEventError
from txguard.enrichment import envelope as env

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def _tx_bytes(event: dict) -> bytes:
    return env.decode(env.parse_envelope(event)).raw


def test_valid_push_body_decodes_to_a_transaction() -> None:
    event = _event("pubsub_push_valid.json")
    delivery = env.decode(env.parse_envelope(event))
    tx = env.parse_transaction(delivery.raw)
    assert tx.transaction_id == json.loads(base64.b64decode(event["message"]["data"]))["transaction_id"]
    assert delivery.message_id == event["message"]["messageId"]
    assert delivery.subscription == event["subscription"]
    assert delivery.attributes == event["message"]["attributes"]


def test_eventarc_snake_case_fields_are_accepted() -> None:
    data = _event("cloudevent_pubsub_valid.json")["data"]
    message = {k: v for k, v in data["message"].items() if k not in ("messageId", "publishTime")}
    delivery = env.decode(env.parse_envelope({"message": message, "subscription": data["subscription"]}))
    assert delivery.message_id == message["message_id"]


def test_converted_push_body_without_subscription_is_accepted() -> None:
    """functions-framework drops `subscription` when it converts a raw push body."""
    event = _event("pubsub_push_valid.json")
    delivery = env.decode(env.parse_envelope({"message": event["message"]}))
    assert delivery.subscription is None
    env.parse_transaction(delivery.raw)


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("pubsub_push_not_base64.json", env.KIND_ENCODING),
        ("pubsub_push_not_utf8.json", env.KIND_ENCODING),
        ("pubsub_push_not_json.json", env.KIND_JSON),
        ("pubsub_push_schema_error.json", env.KIND_SCHEMA),
        ("pubsub_push_nan_amount.json", env.KIND_SCHEMA),
        ("pubsub_push_far_future.json", env.KIND_SCHEMA),
    ],
)
def test_malformed_fixtures(fixture: str, kind: str) -> None:
    event = _event(fixture)
    with pytest.raises(InvalidEventError) as info:
        env.parse_transaction(_tx_bytes(event))
    assert info.value.kind == kind
    assert info.value.reason


def test_schema_reason_names_the_fields() -> None:
    with pytest.raises(InvalidEventError) as info:
        env.parse_transaction(_tx_bytes(_event("pubsub_push_schema_error.json")))
    assert "amount" in info.value.reason and "currency" in info.value.reason


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_amounts_are_schema_errors(literal: bytes) -> None:
    raw = _tx_bytes(_event("pubsub_push_valid.json"))
    doc = json.loads(raw)
    bad = json.dumps(doc).replace(f'"amount": {doc["amount"]}', '"amount": ' + literal.decode()).encode()
    assert literal in bad
    with pytest.raises(InvalidEventError) as info:
        env.parse_transaction(bad)
    assert info.value.kind in (env.KIND_SCHEMA, env.KIND_JSON)


def test_oversized_payload() -> None:
    raw = _tx_bytes(_event("pubsub_push_valid.json"))
    big = raw[:-1] + b', "padding": "' + b"x" * env.MAX_PAYLOAD_BYTES + b'"}'
    with pytest.raises(InvalidEventError) as info:
        env.parse_transaction(big)
    assert info.value.kind == env.KIND_OVERSIZED


@pytest.mark.parametrize("raw", [b"", b"   \n"])
def test_empty_payload(raw: bytes) -> None:
    with pytest.raises(InvalidEventError) as info:
        env.parse_transaction(raw)
    assert info.value.kind == env.KIND_JSON


@pytest.mark.parametrize("data", [{}, {"message": "text"}, {"message": {"data": 5}}, "not json", None, [1, 2]])
def test_bad_envelopes(data: object) -> None:
    with pytest.raises(InvalidEventError) as info:
        env.parse_envelope(data)
    assert info.value.kind == env.KIND_ENVELOPE


def test_json_array_payload_is_a_schema_error() -> None:
    with pytest.raises(InvalidEventError) as info:
        env.parse_transaction(b"[1, 2, 3]")
    assert info.value.kind == env.KIND_SCHEMA


def test_original_bytes_of_unparseable_events() -> None:
    assert env.original_bytes(b"\x00raw") == b"\x00raw"
    assert env.original_bytes("text") == b"text"
    assert json.loads(env.original_bytes({"a": 1})) == {"a": 1}
