"""What every command checks of the files and registries it is given, before any work starts.

One wording for each edge, whichever command meets it: a missing file, an empty one, a CSV with a
header and no rows, an output whose folder does not exist, a registry that is not there. Each is a
`CliError` (txguard.cli.errors) with its exit class; local paths and gs:// objects alike (a gs://
path without credentials ends as the credentials line, through the same error path).
"""

from __future__ import annotations

from pathlib import Path

from txguard.cli.errors import CliError

HEAD_BYTES = 64 * 1024


def _head(path: str) -> tuple[bytes, bool]:
    """The first bytes of a local file or gs:// object, and whether that is the whole of it."""
    if path.startswith("gs://"):
        from google.cloud import storage

        from txguard.registry.store import split_gs

        bucket, name = split_gs(path)
        blob = storage.Client().bucket(bucket).get_blob(name)
        if blob is None:
            raise CliError(f"cannot read {path}", "no such object", "check the bucket and the object's name")
        data = blob.download_as_bytes(start=0, end=HEAD_BYTES - 1) if blob.size else b""
        return data, (blob.size or 0) <= HEAD_BYTES
    local = Path(path)
    if local.is_dir():
        raise CliError(f"cannot read {path}", "it is a folder, not a file", "give a file")
    if not local.is_file():
        raise CliError(f"cannot read {path}", "no such file", "check the path")
    with local.open("rb") as fh:
        data = fh.read(HEAD_BYTES)
    return data, local.stat().st_size <= HEAD_BYTES


def require_rows(path: str, what: str = "transactions", fix: str = "") -> None:
    """Refuse a missing, empty or header-only file (CSV by its name; other files need one non-blank
    line). Parquet files only need to exist and hold bytes (their rows are counted when read)."""
    data, whole = _head(path)
    fix = fix or f"give a file with at least one row of {what}"
    if not data.strip():
        if whole:
            raise CliError(f"{path} holds no {what}", "the file is empty" if not data else "it holds only blank lines",
                           fix)
        return
    if path.lower().endswith((".parquet", ".pq")):
        return
    lines = [line for line in data.splitlines() if line.strip()]
    if path.lower().endswith(".csv") and whole and len(lines) <= 1:
        raise CliError(f"{path} holds no {what}", "it has a header line and no rows", fix)


def require_matches(pattern: str, what: str = "transactions") -> list[str]:
    """The files a path or glob names (local or gs://), each refused when missing, empty or header only;
    a glob must match at least one file holding rows."""
    from txguard.batch.readers import expand
    from txguard.contract.errors import DataFileError

    if not pattern.startswith("gs://") and not any(ch in pattern for ch in "*?["):
        require_rows(pattern, what)
        return [pattern]
    try:
        files = expand(pattern)
    except DataFileError:
        raise CliError(f"no input file matches {pattern}", "the glob names nothing",
                       "check the pattern (quote it so the shell does not expand it)") from None
    refused: list[CliError] = []
    for path in files:
        try:
            require_rows(path, what)
        except CliError as exc:
            refused.append(exc)
    if len(refused) == len(files):
        first = refused[0]
        raise CliError(f"no file matching {pattern} holds {what}", f"{len(files)} file(s), e.g. {first.what}: "
                       f"{first.why}", first.fix)
    return files


def require_output_folder(path: str) -> None:
    """An output FILE's folder must exist: only an explicit --output folder is ever created."""
    if path.startswith("gs://") or path == "-":
        return
    folder = Path(path).parent
    if str(folder) not in ("", ".") and not folder.is_dir():
        raise CliError(f"cannot write {path}", f"the folder {folder} does not exist",
                       f"create it first (`mkdir -p {folder}`) or choose another path")


def require_registry(location: str) -> None:
    """A registry to read from: one wording for a missing one, whichever command needs it."""
    from txguard.registry import open_registry

    open_registry(location).check()  # RegistryError -> setup (exit 4), the registry's own words


def require_model(uri: str) -> None:
    """A model URI (`registry@ref`): its registry must be there before anything is read or run."""
    location = uri.rsplit("@", 1)[0] if "@" in uri else uri
    require_registry(location)


def require_pubsub() -> None:
    """Pub/Sub without an emulator means Google Cloud: its credentials are checked before any work
    (a publish without them would fail message by message)."""
    import os

    if os.environ.get("PUBSUB_EMULATOR_HOST"):
        return
    import google.auth

    google.auth.default()  # DefaultCredentialsError -> the credentials line, exit 4


def presume_score(score: float, option: str = "--presume-fraud-at", extra: dict | None = None) -> float | None:
    """A presumed-fraud score given on the command line (txguard.training.presumed): in (0, 1], or 0
    for off (None); anything else is refused as a usage error naming `option`."""
    from txguard.cli.errors import usage

    if not 0.0 <= score <= 1.0:
        raise usage(f"{option} {score:g} is not a score", "scores are in [0, 1]", "give a score in (0, 1], or 0 for off",
                    extra=extra)
    return score or None
