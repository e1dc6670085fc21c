"""The benchmark runs from the checkout and is not installed as a top-level ``bench`` package."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

from figures import cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_distribution_installs_no_top_level_bench():
    """The installed toolkit's top-level packages are the layout's and peft_bridge, not ``bench``, a generic
    name that would shadow a user's module (or be shadowed by it)."""
    top = set(distribution("lora-asymmetry").read_text("top_level.txt").split())
    assert "bench" not in top
    assert {"theory", "synthetic", "bounds", "figures"} <= top


def test_lora_asym_bench_loads_the_checkouts_bench_from_anywhere(tmp_path):
    """From another folder (where ``import bench`` finds nothing), ``lora-asym bench --help`` still works: the
    CLI loads ``bench/`` from the checkout beside ``figures/``."""
    code = "import importlib.util, sys; from figures.cli import main; " \
           "assert importlib.util.find_spec('bench') is None or 'bench' in sys.modules; sys.exit(main(['bench', '--help']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--only" in result.stdout
    assert Path(sys.modules["figures.cli"].__file__).resolve().parents[1] == ROOT


def test_without_a_checkout_bench_is_one_line_and_status_2(monkeypatch, capsys):
    """Installed without the checkout's bench/ folder, ``lora-asym bench`` says where to run it, in one line,
    with exit status 2; every other subcommand still works."""
    monkeypatch.setattr(cli, "_bench_module", lambda: None)
    with pytest.raises(SystemExit) as info:
        cli.main(["bench"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkout" in err
    assert cli.main(["list"]) == 0
