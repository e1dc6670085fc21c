"""Sweep results on disk: tidy rows with their provenance, written atomically (issue 7).

``lora-asym sweep --out PATH`` writes through ``write_rows``; see its docstring for the two formats.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any

from synthetic.provenance import environment, json_bytes, plain, toolkit_version, write_atomic


def meta_path(path: str | Path) -> Path:
    """The provenance sidecar of a CSV results file: ``PATH.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def write_rows(rows: list[dict[str, Any]], path: str | Path, *, config: dict[str, Any]) -> Path:
    """Write tidy rows and their provenance, each file atomically; returns the path.

    Provenance: ``toolkit`` (name and version), ``environment``
    (``synthetic.provenance.environment()``: Python and library versions) and ``config`` (the
    grid and the backend settings that made the rows); each row holds its point's full task, its
    seed (``seed``, from ``derive_seed``) and the base seed (``base_seed``).

    - JSON (any suffix but ``.csv``): one document ``{"toolkit", "environment", "config", "rows"}``.
    - CSV (``.csv``): the rows alone, a header line then one line per point, so that
      ``csv.DictReader`` and ``pandas.read_csv`` read it without options; the provenance goes to
      the sidecar ``PATH.meta.json`` (``meta_path``), with ``rows_file`` and ``columns`` in place
      of the rows. The sidecar is written first: a CSV on disk always has its sidecar.

    Every file goes through ``synthetic.provenance.write_atomic`` (temporary file, fsync, rename).
    """
    path = Path(path)
    rows = plain(rows)
    head = {"toolkit": {"name": "lora-asymmetry", "version": toolkit_version()}, "environment": environment(),
            "config": plain(config)}
    if path.suffix != ".csv":
        return write_atomic(path, json_bytes({**head, "rows": rows}))
    columns = list(rows[0]) if rows else []
    meta = {**head, "rows_file": path.name, "columns": columns}
    write_atomic(meta_path(path), json_bytes(meta))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, buffer.getvalue().encode())


def check_out(out: str, flag: str = "--out", file_name: str = "a file name ending in .csv or .json") -> None:
    """``flag`` (``--out``) must name a file in an existing, writable folder (checked before any
    computation by creating a temporary file there); ``file_name`` says what to give instead of a folder."""
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"{flag} {out!r} is a folder; give {file_name}")
    parent = path.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {out!r}: folder {str(parent)!r} does not exist")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ValueError(f"{flag} {out!r}: cannot write in folder {str(parent)!r} ({exc.strerror or exc})") from None
