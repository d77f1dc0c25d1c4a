"""The locks: one resolution of everything the repository installs, and the two files pip reads.

`uv.lock` is the resolution: the runtime and every extra (`train`, `infra`, `batch`, `dev`) solved
together, for every platform and Python from 3.11, as of the cut-off date in pyproject
(`[tool.uv] exclude-newer`). Two hash-pinned files are exported from it:

- `requirements.lock`, the runtime: every function archive ships it as `requirements.txt`
  (infra/archive.py), so Cloud Build installs byte-identical packages on every deploy;
- `requirements-dev.lock`, everything: `make venv` installs it with `--require-hashes --no-deps`,
  then the project itself with `--no-deps`, so nothing is resolved again and nothing the index
  publishes later reaches a fresh venv. The tests therefore run on the runtime's exact pins.

`make lock` (= `python -m infra.lockfile`) runs `uv lock` (existing pins kept, new requirements
resolved as of the cut-off) and exports both files. `make lock UPGRADE=1` is the one deliberate
move: the cut-off becomes today and every pin is re-resolved. Each export's header records its
inputs, so `check` (and the archive build, which refuses a stale lock) compares them with pyproject
offline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK_NAME = "requirements.lock"
DEV_LOCK_NAME = "requirements-dev.lock"
UV_LOCK_NAME = "uv.lock"
PROJECT = "txguard"
INPUT_PREFIX = "# input: "
CUTOFF_PREFIX = "# resolved as of: "
COMMAND = "make lock"
_CUTOFF_LINE = re.compile(r'(?m)^exclude-newer = "([^"]+)"$')


class StaleLockError(RuntimeError):
    """A lock does not describe pyproject's dependencies: run `make lock`."""


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    marker: str | None
    hashes: tuple[str, ...]


@dataclass
class Lock:
    inputs: list[str] = field(default_factory=list)
    cutoff: str | None = None
    pins: list[Pin] = field(default_factory=list)

    def versions(self, name: str) -> list[str]:
        key = canonicalize_name(name)
        return [p.version for p in self.pins if p.name == key]

    def by_name(self) -> dict[str, set[tuple[str, tuple[str, ...]]]]:
        """name -> {(version, hashes)}: a universal lock may hold one version per Python range."""
        out: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
        for pin in self.pins:
            out.setdefault(pin.name, set()).add((pin.version, tuple(sorted(pin.hashes))))
        return out


# What pyproject asks for -----------------------------------------------------------------------
def _project(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def _sorted_specs(specs: list[str]) -> list[str]:
    return sorted((str(Requirement(s)) for s in specs), key=lambda s: (canonicalize_name(Requirement(s).name), s))


def runtime_dependencies(root: Path = ROOT) -> list[str]:
    """pyproject's runtime requirements, normalised (`Requirement` text), sorted by name."""
    return _sorted_specs(_project(root)["project"]["dependencies"])


def extra_dependencies(root: Path = ROOT) -> dict[str, list[str]]:
    """Each extra's own requirements (the dev extra's reference to the others left out)."""
    extras = _project(root)["project"].get("optional-dependencies", {})
    return {name: _sorted_specs([s for s in specs if canonicalize_name(Requirement(s).name) != PROJECT])
            for name, specs in sorted(extras.items())}


def all_inputs(root: Path = ROOT) -> list[str]:
    """The dev lock's inputs: the runtime's requirements, then each extra's as `[extra] spec`."""
    return runtime_dependencies(root) + [f"[{extra}] {spec}" for extra, specs in
                                         extra_dependencies(root).items() for spec in specs]


def cutoff(root: Path = ROOT) -> str:
    """The date the locks resolve as of (`[tool.uv] exclude-newer`)."""
    try:
        return _project(root)["tool"]["uv"]["exclude-newer"]
    except KeyError as exc:
        raise StaleLockError("pyproject.toml has no [tool.uv] exclude-newer: the locks need a cut-off date") from exc


# Reading a lock --------------------------------------------------------------------------------
def parse(text: str) -> Lock:
    """The header (inputs, cut-off) and the pins of a requirements file with hashes."""
    lock = Lock()
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        if raw.startswith(INPUT_PREFIX):
            lock.inputs.append(raw[len(INPUT_PREFIX):].strip())
            continue
        if raw.startswith(CUTOFF_PREFIX):
            lock.cutoff = raw[len(CUTOFF_PREFIX):].strip()
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
            raise StaleLockError(f"{req.name} is not pinned with == ({spec})")
        lock.pins.append(Pin(canonicalize_name(req.name), specifier.version,
                             str(req.marker) if req.marker else None, hashes))
    return lock


def _pin_problems(lock: Lock, wanted: list[str], name: str) -> list[str]:
    out = []
    for spec in wanted:
        req = Requirement(spec.split("] ", 1)[-1])
        versions = lock.versions(req.name)
        if not versions:
            out.append(f"{name}: {req.name} is not pinned")
        out += [f"{name}: {req.name}=={v} does not satisfy {req}" for v in versions
                if not req.specifier.contains(v, prereleases=True)]
    out += [f"{name}: {p.name}=={p.version} has no --hash" for p in lock.pins if not p.hashes]
    return out


def _input_problems(lock: Lock, wanted: list[str], name: str) -> list[str]:
    if lock.inputs == wanted:
        return []
    added = sorted(set(wanted) - set(lock.inputs))
    removed = sorted(set(lock.inputs) - set(wanted))
    return [f"{name}: pyproject's dependencies changed since the lock was made "
            f"(new or changed: {added}, gone: {removed})"]


def problems(lock: Lock, root: Path = ROOT) -> list[str]:
    """Why the runtime lock does not fit pyproject (empty when it does)."""
    wanted = runtime_dependencies(root)
    return _input_problems(lock, wanted, LOCK_NAME) + _pin_problems(lock, wanted, LOCK_NAME)


def dev_problems(lock: Lock, root: Path = ROOT) -> list[str]:
    """Why the dev lock does not fit pyproject (inputs, cut-off, every requirement satisfied)."""
    wanted = all_inputs(root)
    out = _input_problems(lock, wanted, DEV_LOCK_NAME) + _pin_problems(lock, wanted, DEV_LOCK_NAME)
    if lock.cutoff != cutoff(root):
        out.append(f"{DEV_LOCK_NAME}: resolved as of {lock.cutoff}, pyproject says {cutoff(root)}")
    return out


def consistency(runtime: Lock, dev: Lock) -> list[str]:
    """The runtime lock is the dev lock's subset: every package both name has the same versions and hashes."""
    dev_pins = dev.by_name()
    out = []
    for name, pins in sorted(runtime.by_name().items()):
        if name not in dev_pins:
            out.append(f"{name} is in {LOCK_NAME} but not in {DEV_LOCK_NAME}")
        elif pins != dev_pins[name]:
            out.append(f"{name}: {LOCK_NAME} pins {sorted(v for v, _ in pins)}, "
                       f"{DEV_LOCK_NAME} {sorted(v for v, _ in dev_pins[name])} (or their hashes differ)")
    return out


def resolution_problems(dev: Lock, root: Path = ROOT) -> list[str]:
    """uv.lock is the resolution the dev lock was exported from: same cut-off, same versions."""
    path = root / UV_LOCK_NAME
    if not path.is_file():
        return [f"{UV_LOCK_NAME} is missing"]
    resolved = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    if resolved.get("options", {}).get("exclude-newer") != cutoff(root):
        out.append(f"{UV_LOCK_NAME} was resolved as of {resolved.get('options', {}).get('exclude-newer')}, "
                   f"pyproject says {cutoff(root)}")
    versions: dict[str, set[str]] = {}
    for package in resolved.get("package", []):
        if package["name"] != PROJECT:
            versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    exported = {name: {v for v, _ in pins} for name, pins in dev.by_name().items()}
    out += [f"{name}: {UV_LOCK_NAME} has {sorted(versions.get(name, ()))}, {DEV_LOCK_NAME} "
            f"{sorted(exported.get(name, ()))}" for name in sorted(set(versions) | set(exported))
            if versions.get(name, set()) != exported.get(name, set())]
    return out


def all_problems(root: Path = ROOT) -> list[str]:
    """Every reason the three files do not describe pyproject, or each other (offline)."""
    texts = {}
    for name in (LOCK_NAME, DEV_LOCK_NAME):
        if not (root / name).is_file():
            return [f"{name} is missing: run `{COMMAND}`"]
        texts[name] = parse((root / name).read_text(encoding="utf-8"))
    runtime, dev = texts[LOCK_NAME], texts[DEV_LOCK_NAME]
    return (problems(runtime, root) + dev_problems(dev, root) + consistency(runtime, dev)
            + resolution_problems(dev, root))


def read(root: Path = ROOT) -> str:
    """The runtime lock's text, refusing a missing or stale one (what the archives ship as requirements.txt)."""
    path = root / LOCK_NAME
    if not path.is_file():
        raise StaleLockError(f"{LOCK_NAME} is missing: run `{COMMAND}`")
    text = path.read_text(encoding="utf-8")
    found = problems(parse(text), root)
    if found:
        raise StaleLockError(f"{LOCK_NAME} is stale, run `{COMMAND}`: " + "; ".join(found))
    return text


def installed_differences(lock: Lock) -> dict[str, tuple[str, str | None]]:
    """Pins of `lock` that apply here but are not what this environment has: name -> (pinned, installed)."""
    from packaging.markers import Marker

    out = {}
    for pin in lock.pins:
        if pin.marker is not None and not Marker(pin.marker).evaluate():
            continue
        try:
            have: str | None = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            have = None
        if have != pin.version:
            out[pin.name] = (pin.version, have)
    return out


# Generation ------------------------------------------------------------------------------------
def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        raise SystemExit("error: uv is not installed, `make venv` installs it from the dev lock")
    return found


def _run(argv: list[str], root: Path) -> str:
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv[1:3])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def move_cutoff(root: Path, when: dt.datetime) -> str:
    """Write a new cut-off into pyproject (`make lock UPGRADE=1`): midnight UTC of `when`'s day."""
    stamp = when.astimezone(dt.UTC).strftime("%Y-%m-%dT00:00:00Z")
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    if not _CUTOFF_LINE.search(text):
        raise StaleLockError("pyproject.toml has no exclude-newer line under [tool.uv]")
    path.write_text(_CUTOFF_LINE.sub(f'exclude-newer = "{stamp}"', text, count=1), encoding="utf-8")
    return stamp


def _header(kind: str, inputs: list[str], root: Path) -> list[str]:
    return [
        f"# {kind}, fully pinned with hashes, exported from {UV_LOCK_NAME}",
        f"# (one resolution of the runtime and every extra). Do not edit: run `{COMMAND}` after changing",
        "# pyproject's dependencies (a test fails until then); `make lock UPGRADE=1` moves every pin.",
        f"{CUTOFF_PREFIX}{cutoff(root)}",
        *[f"{INPUT_PREFIX}{spec}" for spec in inputs],
    ]


def generate(root: Path = ROOT, upgrade: bool = False, today: dt.datetime | None = None) -> list[Path]:
    """Resolve (`uv lock`) and export both requirement files; returns the paths written."""
    uv = _uv()
    if upgrade:
        move_cutoff(root, today or dt.datetime.now(dt.UTC))
    _run([uv, "lock", "--quiet", *(["--upgrade"] if upgrade else [])], root)
    export = [uv, "export", "--frozen", "--no-emit-project", "--no-header", "--format", "requirements-txt",
              "--quiet"]
    runtime = _run(export, root)
    dev = _run([*export, "--all-extras"], root)
    written = []
    for name, kind, inputs, body in (
        (LOCK_NAME, "Runtime dependencies of the Cloud Run functions (every archive's requirements.txt)",
         runtime_dependencies(root), runtime),
        (DEV_LOCK_NAME, "Everything the repository installs (make venv): the runtime and every extra",
         all_inputs(root), dev),
    ):
        (root / name).write_text("\n".join(_header(kind, inputs, root)) + "\n" + body, encoding="utf-8")
        written.append(root / name)
    return [root / UV_LOCK_NAME, *written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.lockfile", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", choices=("generate", "check"), default="generate",
                        help="generate (default) or check the locks against pyproject and each other "
                             "(offline; exit 1 if stale)")
    parser.add_argument("--upgrade", action="store_true",
                        help="move the cut-off date to today and every pin to the newest allowed version")
    args = parser.parse_args(argv)
    if args.action == "check":
        found = all_problems()
        for problem in found:
            print(f"error: {problem}", file=sys.stderr)
        print(json.dumps({"lock": LOCK_NAME, "ok": not found, "problems": found}))
        return 1 if found else 0
    print(f"resolving {UV_LOCK_NAME} with uv as of {cutoff(ROOT)}{' (moving to today)' if args.upgrade else ''}",
          file=sys.stderr)
    generate(upgrade=args.upgrade)
    runtime = parse((ROOT / LOCK_NAME).read_text(encoding="utf-8"))
    dev = parse((ROOT / DEV_LOCK_NAME).read_text(encoding="utf-8"))
    print(json.dumps({"lock": LOCK_NAME, "packages": len(runtime.by_name()), "dev_packages": len(dev.by_name()),
                      "cutoff": cutoff(ROOT), "problems": all_problems()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
