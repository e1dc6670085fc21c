"""Where a result came from, and writing it so that no run leaves a half-written file.

Every results file records the toolkit version, the library versions and (by its caller) the
full configuration and seed; every file is written atomically.
"""

from __future__ import annotations

import ast

import json
import math
import os
import platform
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

LIBRARIES = ("numpy", "scipy", "torch", "sympy", "matplotlib")


def toolkit_version() -> str:
    """The installed version of lora-asymmetry ("unknown" when run from an uninstalled tree).

    Infrastructure: the version read from the package metadata
    (``importlib.metadata.version("lora-asymmetry")``). A user meets it in ``lora-asym --version``,
    in the ``toolkit`` field of a sweep's JSON file or CSV sidecar (README, "Sweeps on a cluster")
    and in the key of the figure cache, so that results of another version are not reused.
    """
    try:
        return version("lora-asymmetry")
    except PackageNotFoundError:
        return "unknown"


def environment() -> dict[str, str]:
    """Versions of the toolkit, Python and the numerical libraries, for results files.

    Infrastructure: the ``environment`` field of every results file (a figure's ``NAME.json``, a
    sweep's JSON file or sidecar, ``GapResult.to_json``; README, "Figures" and "Sweeps on a
    cluster").

    Returns
    -------
    dict of str to str
        Keys ``"lora-asymmetry"``, ``"python"`` and each name of ``LIBRARIES`` (numpy, scipy,
        torch, sympy, matplotlib); a library that is not installed is ``"not installed"``.
    """
    out = {"lora-asymmetry": toolkit_version(), "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _file_mode() -> int:
    """The mode ``open()`` would give a new file: ``0o666`` less the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


#: Mode of the files ``write_atomic`` writes (read once: changing the umask is process-wide).
FILE_MODE = _file_mode()


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    Infrastructure: every results file, figure and cache entry of the toolkit is written this way,
    so that an interrupted run never leaves a half-written file and a rerun resumes (README, "The
    command line": "written atomically").

    Writes a temporary file in the same folder, fsyncs it and renames it over ``path``; on any
    failure the temporary file is removed, ``path`` is untouched, and the ``OSError`` raised names
    ``path`` (never the hidden temporary file). The file gets the usual mode of a new file
    (``0o666`` less the umask), not the owner-only mode of a temporary file.

    Parameters
    ----------
    path : str or Path
        The file to (over)write; its folder must exist.
    data : bytes
        The whole new content.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror or exc}", str(path)) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_bytes(doc: Any) -> bytes:
    """``doc`` as strict JSON (UTF-8, indented): NaN and infinities become ``null``.

    Python's ``json`` writes bare ``NaN`` / ``Infinity``, which strict parsers (JavaScript's
    ``JSON.parse``, ``jq``) reject; a non-finite number in a results file is written as ``null``.
    The document first goes through :func:`plain`; the output is indented by one space. This is
    the format of every JSON file the toolkit writes (README, "Figures" and "Sweeps on a cluster":
    "strict JSON: NaN and infinities are written as ``null``").
    """
    return json.dumps(_strict(plain(doc)), indent=1, allow_nan=False).encode()


def _strict(value: Any) -> Any:
    """``value`` (already ``plain``) with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """A JSON/CSV-friendly copy: numpy scalars to Python, arrays and tuples to lists, dict keys to str.

    Infrastructure: applied recursively (into dicts, lists, tuples and arrays) to every row and
    configuration written by ``GapResult.to_csv`` / ``to_json`` and the sweep files; a 0-d array
    becomes its Python scalar, any other value is returned unchanged. Non-finite floats are kept
    here (``json_bytes`` turns them into ``null``).
    """
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, np.ndarray)):
        return [plain(v) for v in value]
    return value


def code_of(source: bytes) -> bytes:
    """The syntax tree of a Python source without its docstrings, as text (the source itself if it
    does not parse): what a cache key fingerprints, so that editing a docstring or a comment keeps
    the cache (``figures.cache.code_fingerprint``, ``peft_bridge.foundation.pretraining_key``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()
