"""The figure cache: keyed by configuration, atomic, reused unless forced, never trusts a corrupt entry."""

from pathlib import Path

import numpy as np
import pytest

from figures.cache import CorruptCacheWarning, cache_key, memo
from synthetic.provenance import write_atomic


def _counting(value):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.array([value, 2.0 * value])}

    return compute, calls


def test_second_call_reuses_the_entry(tmp_path):
    """The same kind and parameters load from disk instead of recomputing."""
    compute, calls = _counting(1.0)
    first = memo(tmp_path, "k", {"a": 1}, compute)
    second = memo(tmp_path, "k", {"a": 1}, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["x"], second["x"])


def test_other_parameters_or_force_recompute(tmp_path):
    """A different configuration is a different key; force=True recomputes and overwrites."""
    compute, calls = _counting(1.0)
    memo(tmp_path, "k", {"a": 1}, compute)
    memo(tmp_path, "k", {"a": 2}, compute)
    memo(tmp_path, "k", {"a": 1}, compute, force=True)
    assert len(calls) == 3
    assert cache_key("k", {"a": 1}) != cache_key("k", {"a": 2})
    assert cache_key("k", {"a": 1, "b": 2}) == cache_key("k", {"b": 2, "a": 1})


def test_corrupt_entry_is_reported_and_recomputed(tmp_path):
    """A truncated entry raises a CorruptCacheWarning and is replaced by a fresh computation."""
    compute, calls = _counting(3.0)
    memo(tmp_path, "k", {"a": 1}, compute)
    (entry,) = tmp_path.glob("k-*.npz")
    entry.write_bytes(entry.read_bytes()[:20])
    with pytest.warns(CorruptCacheWarning, match="corrupt"):
        out = memo(tmp_path, "k", {"a": 1}, compute)
    assert len(calls) == 2
    np.testing.assert_array_equal(out["x"], [3.0, 6.0])
    np.load(entry, allow_pickle=False).close()  # the rewritten entry parses


def test_pickled_entries_are_refused(tmp_path):
    """Entries load with allow_pickle=False: an object array is treated as corrupt, not executed."""
    compute, calls = _counting(1.0)
    memo(tmp_path, "k", {"a": 1}, compute)
    (entry,) = tmp_path.glob("k-*.npz")
    np.savez(entry, x=np.array([{"evil": 1}], dtype=object))
    with pytest.warns(CorruptCacheWarning):
        memo(tmp_path, "k", {"a": 1}, compute)
    assert len(calls) == 2


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """If the write fails midway, the old file is intact and no temporary file is left behind."""
    target = tmp_path / "f.json"
    target.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("synthetic.provenance.os.replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_an_edit_to_the_toolkit_source_makes_entries_stale(tmp_path, monkeypatch):
    """The key holds a fingerprint of the toolkit's code: the same configuration after an edit of any
    module's code (here a copy of the tree with one figure's compute function changed) is a different
    key, so a changed computation is never answered from the cache; an unchanged tree, or an edit of
    docstrings, comments and blank lines only, gives the same key."""
    import shutil

    from figures import cache

    root = tmp_path / "tree"
    for package in cache.SOURCE_PACKAGES:
        shutil.copytree(Path(cache.__file__).resolve().parents[1] / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__", "out"))
    fake = root / "figures" / "cache.py"
    monkeypatch.setattr(cache, "__file__", str(fake))
    cache.code_fingerprint.cache_clear()
    before = cache.cache_key("k", {"a": 1})
    cache.code_fingerprint.cache_clear()
    assert cache.cache_key("k", {"a": 1}) == before
    target = root / "figures" / "asymmetry_map.py"
    source = target.read_text()
    target.write_text(source.replace('"""', '"""Reworded. ', 1).replace("def compute(", "# a comment\n\ndef compute(", 1))
    cache.code_fingerprint.cache_clear()
    assert cache.cache_key("k", {"a": 1}) == before
    target.write_text(source.replace("    return {\n", "    config = config  # changed code\n    return {\n", 1))
    cache.code_fingerprint.cache_clear()
    assert cache.cache_key("k", {"a": 1}) != before
    cache.code_fingerprint.cache_clear()
