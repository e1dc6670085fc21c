"""A disk cache for the numbers behind the figures, keyed by the full configuration.

Each entry is one ``.npz`` file (loaded with ``allow_pickle=False``) holding flat float/int
arrays; its name is the SHA-256 of the canonical JSON of ``(kind, params, toolkit version, code)``,
where ``code`` is a fingerprint of the toolkit's source (``code_fingerprint``): an edited module
(a task preset, a training loop, a figure's compute function) makes every entry stale, so a
figure is never drawn from numbers an older version of the code computed.
Entries are written atomically (temporary file, fsync, rename), so a run killed at any point
leaves either a complete entry or none, and a rerun resumes from the entries already written.
An entry that does not load is reported, deleted and recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from synthetic.provenance import code_of, toolkit_version, write_atomic

Arrays = dict[str, np.ndarray]


class CorruptCacheWarning(UserWarning):
    """A cache entry did not load and is being recomputed."""


#: The packages whose source decides the figures' numbers.
SOURCE_PACKAGES = ("theory", "synthetic", "bounds", "figures", "peft_bridge")
#: Source files fingerprinted in those packages (the fused kernel is C).
SOURCE_SUFFIXES = (".py", ".c")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the toolkit's code: every ``.py`` and ``.c`` file of ``SOURCE_PACKAGES``, by
    relative path and content (read once per process; editable installs change it on every edit).

    A Python file counts by its syntax tree without docstrings (``synthetic.provenance.code_of``), so an edit of a
    docstring or a comment changes no number and leaves the fingerprint alone; any edit of the code
    changes it. Part of every cache key (:func:`cache_key`), so no figure is drawn from numbers older
    code computed (README.md, "The command line": results are cached under ``OUT/.cache``, keyed by
    the full configuration), and recorded in every figure's JSON.

    Returns
    -------
    str, the hexadecimal digest.
    """
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in SOURCE_SUFFIXES and path.is_file():
                code = code_of(path.read_bytes()) if path.suffix == ".py" else path.read_bytes()
                digest.update(str(path.relative_to(root)).encode() + b"\0" + code + b"\0")
    return digest.hexdigest()


def cache_key(kind: str, params: Mapping) -> str:
    """SHA-256 of the canonical JSON of the entry's kind, parameters, the toolkit version and its code.

    ``sha256(json.dumps({kind, params, version, code_fingerprint()}, sort_keys=True))``, first 32 hex
    digits: the name of a cache entry (README.md, "The command line").

    Parameters
    ----------
    kind : str; params : mapping, JSON-serialisable (other values by ``str``).

    Returns
    -------
    str
    """
    blob = json.dumps({"kind": kind, "params": params, "version": toolkit_version(), "code": code_fingerprint()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def entry_path(cache_dir: Path, kind: str, params: Mapping) -> Path:
    """The file of the entry for ``(kind, params)``: ``cache_dir/kind-<cache_key>.npz`` (README.md,
    "The command line")."""
    return Path(cache_dir) / f"{kind}-{cache_key(kind, params)}.npz"


def load_entry(path: Path) -> Arrays | None:
    """The arrays of the entry at ``path``, or None when there is none; an entry that does not
    load is reported (``CorruptCacheWarning``) and deleted, and None returned (module docstring)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        warnings.warn(f"cache entry {path} is corrupt ({exc}); recomputing", CorruptCacheWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None


def store_entry(path: Path, arrays: Mapping[str, np.ndarray]) -> Arrays:
    """Write ``arrays`` as the entry at ``path``, atomically (its folder is created); returns them
    as arrays (module docstring)."""
    result = {k: np.asarray(v) for k, v in arrays.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **result)
    write_atomic(path, buffer.getvalue())
    return result


def memo(
    cache_dir: Path | None,
    kind: str,
    params: Mapping,
    compute: Callable[[], Arrays],
    *,
    force: bool = False,
) -> Arrays:
    """Return ``compute()``'s arrays, from ``cache_dir`` when an entry for ``params`` exists.

    The entry ``kind-<cache_key>.npz`` is written atomically; one that does not load is reported
    (``CorruptCacheWarning``), deleted and recomputed (module docstring; README.md, "The command line").

    Parameters
    ----------
    cache_dir : folder of the entries; ``None`` disables caching.
    kind : what is computed (e.g. the figure and the grid point's role).
    params : JSON-serialisable description of everything the result depends on, seed included.
    compute : returns a dict of name -> array.
    force : recompute and overwrite even when an entry exists.

    Returns
    -------
    dict of ndarray
    """
    if cache_dir is None:
        return compute()
    path = entry_path(cache_dir, kind, params)
    cached = None if force else load_entry(path)
    return cached if cached is not None else store_entry(path, compute())
