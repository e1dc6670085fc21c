"""Where a result came from, and writing it so that no run leaves a half-written file.

Every results file records the toolkit version, the library versions and (by its caller) the
full configuration and seed; every file is written atomically.
"""

from __future__ import annotations

import os
import platform
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

LIBRARIES = ("numpy", "scipy", "torch", "sympy", "matplotlib")


def toolkit_version() -> str:
    """The installed version of lora-asymmetry ("unknown" when run from an uninstalled tree)."""
    try:
        return version("lora-asymmetry")
    except PackageNotFoundError:
        return "unknown"


def environment() -> dict[str, str]:
    """Versions of the toolkit, Python and the numerical libraries, for results files."""
    out = {"lora-asymmetry": toolkit_version(), "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    Writes a temporary file in the same folder, fsyncs it and renames it over ``path``; on any
    failure the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plain(value: Any) -> Any:
    """A JSON/CSV-friendly copy: numpy scalars to Python, arrays and tuples to lists, dict keys to str."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, np.ndarray)):
        return [plain(v) for v in value]
    return value
