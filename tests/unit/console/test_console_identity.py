"""IAP in front of the console: without a valid assertion for the configured audience, 401."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt

from tests.console_fixtures import console_parts
from txguard.console.app import create_app
from txguard.console.identity import IAP_ASSERTION_HEADER, IAP_ISSUER, Identity, clean_name
from txguard.contract.errors import AuthenticationError

AUDIENCE = "/projects/123456789012/locations/europe-west1/services/txguard-console"


def keypair(kid: str) -> tuple[crypt.Signer, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return crypt.ES256Signer.from_string(pem, key_id=kid), public


def token(signer: crypt.Signer, **claims: object) -> str:
    now = int(time.time())
    payload = {"iss": IAP_ISSUER, "aud": AUDIENCE, "email": "accounts.google.com:alice@example.com",
               "sub": "accounts.google.com:1", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(signer, payload).decode()


@pytest.fixture(scope="module")
def keys() -> tuple[crypt.Signer, dict[str, str]]:
    signer, public = keypair("k1")
    return signer, {"k1": public}


def test_a_valid_assertion_names_the_analyst(keys) -> None:
    signer, certs = keys
    identity = Identity(AUDIENCE, fetch_certs=lambda: certs)
    assert identity.analyst({IAP_ASSERTION_HEADER: token(signer)}, {}) == "alice@example.com"


@pytest.mark.parametrize("claims", [{"aud": "/projects/1/other"}, {"iss": "https://evil"},
                                    {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, {"email": ""}])
def test_wrong_assertions_are_refused(keys, claims: dict) -> None:
    signer, certs = keys
    with pytest.raises(AuthenticationError):
        Identity(AUDIENCE, fetch_certs=lambda: certs).analyst({IAP_ASSERTION_HEADER: token(signer, **claims)}, {})


def test_a_forged_signature_or_no_assertion_is_refused(keys) -> None:
    _, certs = keys
    forger, _ = keypair("k1")  # same key id, another key
    identity = Identity(AUDIENCE, fetch_certs=lambda: certs)
    for headers in ({IAP_ASSERTION_HEADER: token(forger)}, {IAP_ASSERTION_HEADER: "not-a-jwt"}, {}):
        with pytest.raises(AuthenticationError):
            identity.analyst(headers, {"txguard_analyst": "mallory"})  # the local cookie counts for nothing


def test_the_deployed_console_refuses_unauthenticated_requests(tmp_path: Path, keys) -> None:
    signer, certs = keys
    parts = console_parts(tmp_path, IAP_AUDIENCE=AUDIENCE)
    parts.identity = Identity(AUDIENCE, fetch_certs=lambda: certs)
    client = create_app(parts).test_client()
    for path in ("/queue", "/api/queue", "/live", "/api/live/stream", "/score", "/models"):
        assert client.get(path).status_code == 401, path
    resp = client.post("/api/score", json={"transaction_id": "x"})
    assert resp.status_code == 401 and resp.get_json()["error"]["status"] == 401
    assert client.get("/queue", headers={IAP_ASSERTION_HEADER: token(signer)}).status_code == 200
    assert client.get("/healthz").status_code == 200  # the startup probe (never through IAP)
    parts.close()


def test_local_names_are_sanitised() -> None:
    assert clean_name(" alice <script> ") == "alicescript"
    assert clean_name(None) == clean_name("") == "analyst"
    assert len(clean_name("a" * 100)) == 48
