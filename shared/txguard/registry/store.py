"""The registry's storage: a tiny blob-store protocol with a local-folder and a Cloud Storage backend.

The registry needs only four operations, and two of them carry a precondition so that
concurrent publishers and promoters can never silently overwrite each other:
`create` (fails if the key exists: claims a version number) and `replace` (compare-and-swap on
the generation read before). Cloud Storage gives both natively (`if_generation_match`); the
local folder emulates them with hard links and a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from txguard.contract.errors import BlobExistsError, ConcurrentUpdateError, RegistryError

Generation = int | str
# What a conditional read (`read_if_changed`) returns when the object still has the given generation.
UNCHANGED = object()


class BlobStore(Protocol):
    location: str

    def read(self, key: str) -> tuple[bytes, Generation] | None:
        """Content and generation of `key`, or None when it does not exist."""

    def create(self, key: str, data: bytes) -> None:
        """Write `key` only if it does not exist yet (raises BlobExistsError otherwise)."""

    def replace(self, key: str, data: bytes, generation: Generation | None) -> None:
        """Write `key` only if its generation is still `generation` (None: must not exist)."""

    def list(self, prefix: str) -> list[str]:
        """Keys starting with `prefix`, sorted."""


# Local folder ----------------------------------------------------------------------------------
class LocalBlobStore:
    """A folder. Writes are atomic (temp file + link/rename); alias swaps hold a lock file."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.location = str(root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise RegistryError(f"invalid registry key {key!r}")
        return self.root / key

    def _tmp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return Path(tmp)

    def read(self, key: str) -> tuple[bytes, Generation] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def create(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = self._tmp(path, data)
        try:
            os.link(tmp, path)  # atomic, fails if the name exists
        except FileExistsError as exc:
            raise BlobExistsError(f"{key} already exists in {self.location}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def replace(self, key: str, data: bytes, generation: Generation | None) -> None:
        path = self._path(key)
        with self._locked(path):
            current = self.read(key)
            current_gen = None if current is None else current[1]
            if current_gen != generation:
                raise ConcurrentUpdateError(
                    f"{key} in {self.location} changed since it was read (someone else updated it); retry"
                )
            os.replace(self._tmp(path, data), path)

    def list(self, prefix: str) -> list[str]:
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"{self.location} is a file, not a model registry folder")
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.exists():
            return []
        keys = []
        for p in base.rglob("*"):
            if p.is_file() and not p.name.startswith("."):
                keys.append(p.relative_to(self.root).as_posix())
        return sorted(keys)


# Cloud Storage ---------------------------------------------------------------------------------
def split_gs(location: str) -> tuple[str, str]:
    """`gs://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    rest = location.removeprefix("gs://").strip("/")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise RegistryError(f"no bucket in registry location {location!r}")
    return bucket, prefix.strip("/")


class GcsBlobStore:
    """Objects under `gs://bucket/prefix/`, with generation preconditions for create and replace.

    google-cloud-storage is imported here, lazily, so local registries need no cloud library.
    With `STORAGE_EMULATOR_HOST` set (fake-gcs-server) it uses anonymous credentials.
    """

    def __init__(self, location: str, client: Any | None = None) -> None:
        from google.cloud import storage  # only gs:// registries need it

        self.location = location.rstrip("/")
        bucket_name, self.prefix = split_gs(location)
        if client is None:
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials

                project = os.environ.get("GOOGLE_CLOUD_PROJECT", "txguard-local")
                client = storage.Client(project=project, credentials=AnonymousCredentials())
            else:
                with gcs_errors(location):
                    client = storage.Client()
        self.client = client
        self.bucket = client.bucket(bucket_name)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str) -> tuple[bytes, Generation] | None:
        with gcs_errors(self.location):
            return self._read(key)

    def _read(self, key: str) -> tuple[bytes, Generation] | None:
        from google.api_core import exceptions as gexc

        blob = self.bucket.get_blob(self._name(key))
        if blob is None:
            return None
        try:
            data = blob.download_as_bytes(if_generation_match=blob.generation)
        except (gexc.NotFound, gexc.PreconditionFailed):
            # Deleted or replaced between the two calls: read again (bounded by the caller's logic).
            blob = self.bucket.get_blob(self._name(key))
            if blob is None:
                return None
            data = blob.download_as_bytes()
        return data, int(blob.generation)

    def _upload(self, key: str, data: bytes, generation: int, error: type[ConcurrentUpdateError]) -> None:
        from google.api_core import exceptions as gexc

        blob = self.bucket.blob(self._name(key))
        try:
            blob.upload_from_string(
                data, content_type="application/octet-stream", if_generation_match=generation
            )
        except gexc.PreconditionFailed as exc:
            raise error(
                f"{self.location}/{key} changed or already exists (generation precondition failed); retry"
            ) from exc

    def create(self, key: str, data: bytes) -> None:
        with gcs_errors(self.location):
            self._upload(key, data, 0, BlobExistsError)

    def replace(self, key: str, data: bytes, generation: Generation | None) -> None:
        with gcs_errors(self.location):
            self._upload(key, data, 0 if generation is None else int(generation), ConcurrentUpdateError)

    def list(self, prefix: str) -> list[str]:
        full = self._name(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        with gcs_errors(self.location):
            return sorted(b.name[strip:] for b in self.client.list_blobs(self.bucket, prefix=full))


NO_CREDENTIALS_HINT = (
    "run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS; "
    "STORAGE_EMULATOR_HOST for the emulator)"
)


@contextlib.contextmanager
def gcs_errors(location: str) -> Iterator[None]:
    """Cloud Storage and credential failures as one-line RegistryErrors naming the registry.

    A missing login, bucket or permission is the user's to fix, and a traceback through
    google-auth and google-api-core does not say which.
    """
    try:
        yield
    except RegistryError:
        raise
    except Exception as exc:
        module = type(exc).__module__
        if module.startswith("google.auth"):
            raise RegistryError(f"cannot reach {location}, no Google Cloud credentials, {NO_CREDENTIALS_HINT}") from exc
        code = getattr(exc, "code", None)
        if module.startswith("google.api_core") and code == 404:
            raise RegistryError(f"bucket of {location} does not exist (or the object is gone): {_message(exc)}") from exc
        if module.startswith("google.api_core") and code in (401, 403):
            raise RegistryError(f"no permission on {location}: {_message(exc)}") from exc
        if module.startswith(("google.api_core", "requests", "urllib3")) or isinstance(exc, OSError):
            raise RegistryError(f"cannot reach {location}: {_message(exc)}") from exc
        raise


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:300]
