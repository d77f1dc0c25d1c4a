"""Local paths and gs:// objects behind one interface: inputs, outputs, errors and status records.

google-cloud-storage is imported only when a gs:// path is used (and never by the runtime).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def open_binary(path: str, mode: str) -> Iterator[IO[bytes]]:
    """A local file or a gs:// object as a binary stream (`mode` "r" or "w")."""
    if path.startswith("gs://"):
        from google.cloud import storage

        from txguard.registry.store import split_gs

        bucket, name = split_gs(path)
        with storage.Client().bucket(bucket).blob(name).open(mode + "b") as fh:
            yield fh
    else:
        if "w" in mode:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, mode + "b") as fh:
            yield fh


@contextmanager
def staged(path: str) -> Iterator[IO[bytes]]:
    """Write `path` whole or not at all: a temporary file (or object) next to it, moved into place
    when the block ends without an exception, removed otherwise. The folder must exist."""
    import os
    import uuid

    temp = f"{path}.partial-{uuid.uuid4().hex[:8]}"
    try:
        if path.startswith("gs://"):
            with open_binary(temp, "w") as fh:
                yield fh
            from google.cloud import storage

            from txguard.registry.store import split_gs

            bucket_name, name = split_gs(temp)
            bucket = storage.Client().bucket(bucket_name)
            blob = bucket.blob(name)
            bucket.copy_blob(blob, bucket, split_gs(path)[1])
            blob.delete()
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)  # the CLI refuses a missing folder first
            with open(temp, "wb") as fh:
                yield fh
            os.replace(temp, path)
    except BaseException:
        _remove_quietly(temp)
        raise


def _remove_quietly(path: str) -> None:
    import contextlib

    with contextlib.suppress(Exception):  # the original failure is the one to report
        remove(path)


def join(base: str, *parts: str) -> str:
    """`base/part/...` for a local folder or a gs:// prefix."""
    if base.startswith("gs://"):
        return "/".join([base.rstrip("/"), *parts])
    return str(Path(base, *parts))


def exists(path: str) -> bool:
    if path.startswith("gs://"):
        from google.cloud import storage

        from txguard.registry.store import split_gs

        bucket, name = split_gs(path)
        return storage.Client().bucket(bucket).blob(name).exists()
    return Path(path).exists()


def read_bytes(path: str) -> bytes:
    with open_binary(path, "r") as fh:
        return fh.read()


def write_bytes(path: str, data: bytes) -> None:
    with open_binary(path, "w") as fh:
        fh.write(data)


def list_matching(folder: str, prefixes: tuple[str, ...]) -> list[str]:
    """Files directly in `folder` (local or gs:// prefix) whose names start with one of `prefixes`."""
    if folder.startswith("gs://"):
        from google.cloud import storage

        from txguard.registry.store import split_gs

        bucket, prefix = split_gs(folder)
        base = f"{prefix}/" if prefix else ""
        names = (b.name for b in storage.Client().list_blobs(bucket, prefix=base, delimiter="/"))
        return sorted(f"gs://{bucket}/{n}" for n in names if n[len(base):].startswith(prefixes))
    path = Path(folder)
    if not path.is_dir():
        return []
    return sorted(str(p) for p in path.iterdir() if p.is_file() and p.name.startswith(prefixes))


def remove(path: str) -> None:
    if path.startswith("gs://"):
        from google.cloud import storage

        from txguard.registry.store import split_gs

        bucket, name = split_gs(path)
        storage.Client().bucket(bucket).blob(name).delete()
    else:
        Path(path).unlink(missing_ok=True)
