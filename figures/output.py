"""Writing a figure's files: PNG and PDF, the numbers behind it (JSON) and its caption."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    Writes a temporary file in the same folder, fsyncs it and renames it over ``path``.
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def save_figure(fig, out_dir: Path, name: str, data: dict, caption: str) -> dict[str, Path]:
    """Save ``name``.png/.pdf, ``name``.json (config, seed, arrays) and ``name``.txt (caption)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("png", "pdf", "json", "txt")}
    for ext in ("png", "pdf"):
        tmp = out_dir / f".{name}.tmp.{ext}"
        fig.savefig(tmp)
        os.replace(tmp, paths[ext])
    payload = {"figure": name, "toolkit_version": _version(), "caption": caption, **_jsonable(data)}
    write_atomic(paths["json"], json.dumps(payload, indent=1).encode())
    write_atomic(paths["txt"], (caption.strip() + "\n").encode())
    return paths


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lora-asymmetry")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"

