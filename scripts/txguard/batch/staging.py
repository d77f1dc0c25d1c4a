"""What Dataflow workers need to run the pipeline: this checkout's txguard as a wheel.

Workers start from Beam's own container, which has apache-beam and pyarrow but not txguard. Unless
the caller already says how to ship the code (`--setup_file`, `--extra_package`,
`--sdk_container_image`), `txguard batch run --runner DataflowRunner` builds a wheel of the checkout
(`pip wheel --no-deps`) and passes it as `--extra_package`; each worker installs it with its
dependencies at start-up.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

# The project this module was installed from (an editable install of a checkout: pyproject.toml is
# three folders up, scripts/txguard/batch/staging.py -> the repository root).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
_SHIPPING_FLAGS = ("--setup_file", "--extra_package", "--extra_packages", "--sdk_container_image")


def build_wheel(dest: Path, root: Path = PROJECT_ROOT) -> Path:
    """A wheel of the txguard checkout at `root`, in `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dest), str(root)],
                   check=True, capture_output=True, text=True)
    wheels = sorted(dest.glob("txguard-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip wrote no txguard wheel into {dest}")
    return wheels[-1]


def dataflow_flags(beam_args: list[str], log: Callable[[str], None] = lambda _m: None) -> list[str]:
    """`beam_args` plus `--extra_package=<wheel>` unless the caller ships the code some other way."""
    if any(arg.split("=", 1)[0] in _SHIPPING_FLAGS for arg in beam_args):
        return beam_args
    wheel = build_wheel(Path(tempfile.mkdtemp(prefix="txguard-wheel-")))
    log(f"workers will install {wheel.name}")
    return [*beam_args, f"--extra_package={wheel}"]
