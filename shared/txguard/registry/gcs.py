"""Read-only Cloud Storage access for the serving path: the JSON API over urllib.

The scoring function only *reads* its registry at cold start (alias, metadata, artifact: three
GETs). google-cloud-storage costs ~0.4 s of imports (requests, google.api_core, protobuf...)
before the first byte is fetched, more than everything else the function imports; this module
costs nothing beyond the standard library. Writes (publish, promote) keep using
shared.registry's GcsBlobStore.

Credentials: none against the emulator (STORAGE_EMULATOR_HOST); on Cloud Run a token from the
metadata server; elsewhere (a laptop with `gcloud auth application-default login`) google-auth's
default credentials, imported only then.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from txguard.contract.errors import RegistryError, RegistryUnavailableError
from txguard.registry.store import UNCHANGED, Generation, gcs_errors, split_gs

GCS_API = "https://storage.googleapis.com"
METADATA_TOKEN_URL = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
_TIMEOUT_S = 30.0
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


class TokenSource:
    """An OAuth access token for storage reads, refreshed a minute before it expires."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._expires = 0.0
        self._credentials: Any = None

    def token(self) -> str:
        if self._token and time.monotonic() < self._expires - 60:
            return self._token
        if self._credentials is None:
            try:
                self._from_metadata_server()
                return self._token or ""
            except OSError:
                self._credentials = self._default_credentials()
        import google.auth.transport.requests  # off Cloud Run only

        self._credentials.refresh(google.auth.transport.requests.Request())
        self._token, self._expires = self._credentials.token, time.monotonic() + 300
        return self._token

    def _from_metadata_server(self) -> None:
        req = urllib.request.Request(METADATA_TOKEN_URL, headers={"Metadata-Flavor": "Google"})
        with urllib.request.urlopen(req, timeout=2) as resp:
            data = json.loads(resp.read())
        self._token = data["access_token"]
        self._expires = time.monotonic() + float(data.get("expires_in", 300))

    @staticmethod
    def _default_credentials() -> Any:
        import google.auth

        credentials, _project = google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_only"])
        return credentials


class GcsReader:
    """The read half of the registry's BlobStore protocol for `gs://bucket/prefix`."""

    def __init__(self, location: str, tokens: TokenSource | None = None) -> None:
        self.location = location.rstrip("/")
        self.bucket, self.prefix = split_gs(location)
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        self.api = (emulator if "://" in (emulator or "") else f"http://{emulator}") if emulator else GCS_API
        self.api = self.api.rstrip("/")
        self.tokens = None if emulator else (tokens or TokenSource())

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _get(self, url: str) -> tuple[bytes, dict[str, str]] | None | object:
        """Body and headers; None on 404; UNCHANGED on 304 (a conditional read that matched)."""
        with gcs_errors(self.location):  # no credentials off Cloud Run: one line, not a traceback
            headers = {"Authorization": f"Bearer {self.tokens.token()}"} if self.tokens else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S) as resp:
                return resp.read(), {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code == 304:
                return UNCHANGED
            error = RegistryUnavailableError if exc.code in _TRANSIENT else RegistryError
            raise error(f"GET {url} failed: HTTP {exc.code} {exc.reason}") from exc
        except OSError as exc:  # refused, reset, timed out, DNS, metadata server: all may pass
            raise RegistryUnavailableError(f"GET {url} failed: {exc}") from exc

    def _media_url(self, key: str) -> str:
        name = urllib.parse.quote(self._name(key), safe="")
        return f"{self.api}/download/storage/v1/b/{self.bucket}/o/{name}?alt=media"

    @staticmethod
    def _with_generation(found: tuple[bytes, dict[str, str]]) -> tuple[bytes, Generation]:
        data, headers = found
        return data, int(headers.get("x-goog-generation") or 0)

    def read(self, key: str) -> tuple[bytes, Generation] | None:
        found = self._get(self._media_url(key))
        if found is None or found is UNCHANGED:
            return None
        return self._with_generation(found)  # type: ignore[arg-type]

    def read_if_changed(self, key: str, generation: Generation) -> tuple[bytes, Generation] | None | object:
        """One conditional GET (`ifGenerationNotMatch`): UNCHANGED (HTTP 304, no body) while the object
        keeps `generation`, else its new content. fake-gcs-server ignores the precondition and answers
        200 with the same generation: that is reported as UNCHANGED too."""
        found = self._get(f"{self._media_url(key)}&ifGenerationNotMatch={int(generation)}")
        if found is None or found is UNCHANGED:
            return found
        data, current = self._with_generation(found)  # type: ignore[arg-type]
        return UNCHANGED if current == int(generation) else (data, current)

    def list(self, prefix: str) -> list[str]:
        full, strip = self._name(prefix), len(self.prefix) + 1 if self.prefix else 0
        names: list[str] = []
        token = ""
        while True:
            query = {"prefix": full, "fields": "items(name),nextPageToken"}
            if token:
                query["pageToken"] = token
            found = self._get(f"{self.api}/storage/v1/b/{self.bucket}/o?{urllib.parse.urlencode(query)}")
            if found is None or found is UNCHANGED:
                raise RegistryError(f"bucket {self.bucket!r} not found")
            page = json.loads(found[0])  # type: ignore[index]
            names.extend(item["name"][strip:] for item in page.get("items", []))
            token = page.get("nextPageToken", "")
            if not token:
                return sorted(names)

    def create(self, key: str, data: bytes) -> None:
        raise RegistryError("the serving path's Cloud Storage reader is read-only")

    def replace(self, key: str, data: bytes, generation: Generation | None) -> None:
        raise RegistryError("the serving path's Cloud Storage reader is read-only")
