"""The runtime lock: every package the functions install, pinned with its hashes (`requirements.lock`).

pyproject's `[project.dependencies]` name only the top-level packages, in ranges. A function
archive built from those would let Cloud Build resolve the transitive packages again on every
deploy; the lock pins the whole closure instead, with the SHA-256 of every wheel and sdist, so
pip installs in hash-checking mode and a redeploy installs byte-identical packages.

`make lock` (= `python -m infra.lockfile`) regenerates it with uv (the dev extra installs it):
1. resolve the runtime together with the dev extra, so the pins also fit the test environment
   (`make venv` installs the lock first: the tests run on what is deployed);
2. resolve the runtime alone under those versions, with hashes, for every platform and Python
   from 3.11 (`--universal`, markers where versions differ).
Pins already in the lock are kept unless `--upgrade` is given (uv reads the previous output as
preferences), so adding a dependency only adds its closure. The header records the inputs:
`check` (and `infra/archive.py`, which refuses to build from a stale lock) compares them with
pyproject, offline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK_NAME = "requirements.lock"
INPUT_PREFIX = "# input: "
PYTHON_VERSION = "3.11"  # the oldest runtime the functions deploy on (infra/config.py: python311)
COMMAND = "make lock"


class StaleLockError(RuntimeError):
    """The lock does not describe pyproject's runtime dependencies: run `make lock`."""


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    marker: str | None
    hashes: tuple[str, ...]


@dataclass
class Lock:
    inputs: list[str] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)

    def versions(self, name: str) -> list[str]:
        key = canonicalize_name(name)
        return [p.version for p in self.pins if p.name == key]


def runtime_dependencies(root: Path = ROOT) -> list[str]:
    """pyproject's runtime requirements, normalised (`Requirement` text), sorted by name."""
    specs = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return sorted((str(Requirement(s)) for s in specs), key=lambda s: canonicalize_name(Requirement(s).name))


def parse(text: str) -> Lock:
    """The inputs header and the pins of a uv/pip-compile requirements file with hashes."""
    lock = Lock()
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        if raw.startswith(INPUT_PREFIX):
            lock.inputs.append(raw[len(INPUT_PREFIX):].strip())
            continue
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    for entry in logical:
        words = entry.split()
        hashes = tuple(w.split("=", 1)[1] for w in words if w.startswith("--hash="))
        spec = " ".join(w for w in words if not w.startswith("--hash="))
        req = Requirement(spec)
        (specifier,) = req.specifier  # exactly one `==` per pin
        if specifier.operator != "==":
            raise StaleLockError(f"{LOCK_NAME}: {req.name} is not pinned with == ({spec})")
        lock.pins.append(Pin(canonicalize_name(req.name), specifier.version,
                             str(req.marker) if req.marker else None, hashes))
    return lock


def problems(lock: Lock, root: Path = ROOT) -> list[str]:
    """Why `lock` does not fit pyproject (empty when it does)."""
    out = []
    wanted = runtime_dependencies(root)
    if lock.inputs != wanted:
        added = sorted(set(wanted) - set(lock.inputs))
        removed = sorted(set(lock.inputs) - set(wanted))
        out.append(f"pyproject's runtime dependencies changed since the lock was made "
                   f"(new or changed: {added}, gone: {removed})")
    for spec in wanted:
        req = Requirement(spec)
        versions = lock.versions(req.name)
        if not versions:
            out.append(f"{req.name} is not pinned")
        out += [f"{req.name}=={v} does not satisfy {spec}" for v in versions
                if not req.specifier.contains(v, prereleases=True)]
    out += [f"{p.name}=={p.version} has no --hash" for p in lock.pins if not p.hashes]
    return out


def read(root: Path = ROOT) -> str:
    """The lock's text, refusing a missing or stale one (what the archives ship as requirements.txt)."""
    path = root / LOCK_NAME
    if not path.is_file():
        raise StaleLockError(f"{LOCK_NAME} is missing: run `{COMMAND}`")
    text = path.read_text(encoding="utf-8")
    found = problems(parse(text), root)
    if found:
        raise StaleLockError(f"{LOCK_NAME} is stale, run `{COMMAND}`: " + "; ".join(found))
    return text


# Generation ------------------------------------------------------------------------------------
def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        raise SystemExit("uv is not installed: `make venv` installs it (dev extra)")
    return found


def _installed_pins() -> str:
    """`name==version` of this environment: the first lock starts from what the tests ran on."""
    seen = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and canonicalize_name(name) not in ("txguard", "pip", "setuptools"):
            seen[canonicalize_name(name)] = f"{name}=={dist.version}"
    return "\n".join(sorted(seen.values())) + "\n"


def _compile(uv: str, root: Path, out: Path, extra: list[str], upgrade: bool) -> None:
    argv = [uv, "pip", "compile", "pyproject.toml", "--universal", "--python-version", PYTHON_VERSION,
            "--custom-compile-command", COMMAND, "--quiet", "-o", str(out), *extra]
    if upgrade:
        argv.append("--upgrade")
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"uv pip compile failed ({done.returncode}):\n{done.stderr[-3000:]}")


def generate(root: Path = ROOT, upgrade: bool = False) -> Path:
    """Write `<root>/requirements.lock` (see the module docstring for the two steps)."""
    uv = _uv()
    path = root / LOCK_NAME
    previous = path.read_text(encoding="utf-8") if path.is_file() else _installed_pins()
    with tempfile.TemporaryDirectory(prefix="txguard-lock-") as tmp:
        together, runtime = Path(tmp) / "with-dev.txt", Path(tmp) / "runtime.txt"
        together.write_text(previous)  # uv keeps the pins of an existing output file
        runtime.write_text(previous)
        _compile(uv, root, together, ["--extra", "dev"], upgrade)
        _compile(uv, root, runtime, ["--generate-hashes", "-c", str(together)], upgrade)
        # The constraint file's temporary path would make every run's text differ (and the archives'
        # hashes with it): its "via" lines go.
        body = "".join(line for line in runtime.read_text(encoding="utf-8").splitlines(keepends=True)
                       if str(together) not in line)
    header = [
        "# Runtime dependencies of the Cloud Run functions, fully pinned with hashes: every function",
        "# archive ships this file as its requirements.txt (infra/archive.py). Do not edit: run",
        f"# `{COMMAND}` after changing [project.dependencies] in pyproject.toml (a test fails until then).",
        *[f"{INPUT_PREFIX}{spec}" for spec in runtime_dependencies(root)],
    ]
    path.write_text("\n".join(header) + "\n" + body, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.lockfile", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", choices=("generate", "check"), default="generate",
                        help="generate (default) or check the lock against pyproject (exit 1 if stale)")
    parser.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed version")
    args = parser.parse_args(argv)
    if args.action == "check":
        found = problems(parse((ROOT / LOCK_NAME).read_text(encoding="utf-8"))) \
            if (ROOT / LOCK_NAME).is_file() else [f"{LOCK_NAME} is missing"]
        for problem in found:
            print(problem, file=sys.stderr)
        print(json.dumps({"lock": LOCK_NAME, "ok": not found, "problems": found}))
        return 1 if found else 0
    print(f"resolving {LOCK_NAME} with uv (Python >= {PYTHON_VERSION}, all platforms)", file=sys.stderr)
    lock = parse(generate(upgrade=args.upgrade).read_text(encoding="utf-8"))
    print(json.dumps({"lock": LOCK_NAME, "packages": len({p.name for p in lock.pins}),
                      "inputs": len(lock.inputs)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
