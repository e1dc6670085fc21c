"""``lora-asym`` in a pipe whose reader stops early exits quietly, as ``ls | head`` does."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from figures import cli


class _ClosedPipe(io.StringIO):
    """A standard output whose reader has gone: every write and flush raises ``BrokenPipeError``."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("argv", [
    ["list"],
    ["--help"],
    ["figures", "--help"],
    ["demo", "--help"],
    ["sweep", "--variants", "b_only", "--ranks", "1", "--n", "8", "--trials", "2"],
    ["bench", "--help"],
    ["adapters", "--help"],
    ["adapters", "similarity", "--help"],
], ids=lambda argv: " ".join(argv))
def test_every_subcommand_exits_quietly_when_its_reader_is_gone(monkeypatch, capsys, argv):
    """Output into a closed pipe: status ``EXIT_BROKEN_PIPE`` (141), nothing on stderr."""
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(argv) == cli.EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


def test_figures_exits_quietly_when_its_reader_is_gone(monkeypatch, capsys, tmp_path):
    """``figures`` prints a line per figure: into a closed pipe it stops quietly (the files of the
    figure it finished are whole)."""
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    argv = ["figures", "--only", "asymmetry_gap", "--out", str(tmp_path), "--jobs", "1"]
    assert cli.main(argv) == cli.EXIT_BROKEN_PIPE
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Error" not in err
    assert (tmp_path / "asymmetry_gap.json").read_text().startswith("{")


def test_list_into_head_prints_no_traceback():
    """The console entry point itself, in a real pipe closed after the first line: no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "figures.cli", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert err == b"" and proc.returncode in (0, cli.EXIT_BROKEN_PIPE)
