"""Sweep results on disk: tidy rows with their provenance, written atomically.

``lora-asym sweep --out PATH`` writes through ``write_rows``; see its docstring for the two formats.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from synthetic.provenance import environment, json_bytes, plain, toolkit_version, write_atomic

#: The suffixes of a results file: one JSON document, or CSV rows beside a JSON sidecar.
SUFFIXES = (".json", ".csv")


def meta_path(path: str | Path) -> Path:
    """The provenance sidecar of a CSV results file: the file's name plus ``.meta.json``.

    Infrastructure: ``rows.csv`` -> ``rows.csv.meta.json``, where ``lora-asym sweep --out rows.csv``
    puts the toolkit and library versions and the configuration (README, "Sweeps on a cluster").
    """
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def _suffix(path: Path) -> str:
    """The format of ``path``: ``.json`` or ``.csv`` (any case), else ``ValueError`` naming it."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        got = repr(path.suffix) if path.suffix else "no suffix"
        raise ValueError(f"path {str(path)!r} must end in .json or .csv (got {got})")
    return suffix


def write_rows(rows: list[dict[str, Any]], path: str | Path, *, config: dict[str, Any],
               libraries: Sequence[str] = ()) -> Path:
    """Write tidy rows and their provenance, each file atomically; returns the path.

    Infrastructure: the files of ``lora-asym sweep --out PATH`` (README, "Sweeps on a cluster").
    Provenance: ``toolkit`` (name and version), ``environment``
    (``synthetic.provenance.environment()``: Python and library versions, plus the version of each
    of ``libraries``, e.g. ``("dask", "distributed")`` for rows a Dask cluster computed) and
    ``config`` (the grid and the backend settings that made the rows); each row holds its point's
    full task, its seed (``seed``, from ``derive_seed``) and the base seed (``base_seed``).

    - JSON (``rows.json``): one document ``{"toolkit", "environment", "config", "rows"}``.
    - CSV (``rows.csv``): the rows alone, a header line then one line per point, so that
      ``csv.DictReader`` and ``pandas.read_csv`` read it without options; the provenance goes to
      the sidecar ``rows.csv.meta.json`` (``meta_path``: the file's name plus ``.meta.json``), with
      ``rows_file`` and ``columns`` in place of the rows. The sidecar is written first: a CSV on
      disk always has its sidecar.

    Any other suffix is a ``ValueError`` naming ``path``. Every file goes through
    ``synthetic.provenance.write_atomic`` (temporary file, fsync, rename).

    Parameters
    ----------
    rows : list of dict
        One row per point (``synthetic.sweep.run_point``); the CSV columns are the first row's keys.
    path : str or Path
        ``*.json`` or ``*.csv`` (any case).
    config : dict
        The grid and backend settings, stored under ``config``.
    libraries : sequence of str
        Further distributions whose versions go into ``environment``.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    suffix = _suffix(path)
    rows = plain(rows)
    env = environment()
    for name in libraries:
        try:
            env[name] = version(name)
        except PackageNotFoundError:
            env[name] = "not installed"
    head = {"toolkit": {"name": "lora-asymmetry", "version": toolkit_version()}, "environment": env,
            "config": plain(config)}
    if suffix == ".json":
        return write_atomic(path, json_bytes({**head, "rows": rows}))
    columns = list(rows[0]) if rows else []
    meta = {**head, "rows_file": path.name, "columns": columns}
    write_atomic(meta_path(path), json_bytes(meta))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, buffer.getvalue().encode())


def check_out(out: str, flag: str = "--out", file_name: str = "a file name ending in .csv or .json",
              suffixes: Sequence[str] | None = None) -> None:
    """Check that an output path names a file in an existing, writable folder; raise ``ValueError`` if not.

    Infrastructure: a command-line ``flag`` (``--out``) is checked before any computation, by
    creating a temporary file in the folder, so that a long run never ends unable to write its
    results; the error is one line naming ``flag`` (README, "Sweeps on a cluster": "a bad grid or
    flag gives one error line and exit status 2"). ``file_name`` says what to give instead of a
    folder. With ``suffixes`` (e.g. ``SUFFIXES``) the name must end in one of them (any case).
    """
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"{flag} {out!r} is a folder; give {file_name}")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        got = repr(path.suffix) if path.suffix else "no suffix"
        raise ValueError(f"{flag} {out!r} must end in {' or '.join(suffixes)} (got {got})")
    parent = path.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {out!r}: folder {str(parent)!r} does not exist")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ValueError(f"{flag} {out!r}: cannot write in folder {str(parent)!r} ({exc.strerror or exc})") from None
