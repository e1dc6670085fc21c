"""The figures and the lora-asym command line: smoke tests and clear errors."""

import json
import subprocess
import sys

import pytest

from figures import cli, registry


@pytest.mark.parametrize("name", registry.FIGURES)
def test_every_figure_writes_png_pdf_data_and_caption(name, tmp_path):
    """make(out_dir, config=tiny) writes the image in two formats, its numbers and a caption."""
    module = registry.load(name)
    paths = module.make(tmp_path, seed=0, config=module.Config.tiny())
    for ext in ("png", "pdf", "json", "txt"):
        assert paths[ext].exists() and paths[ext].stat().st_size > 0
    data = json.loads(paths["json"].read_text())
    assert data["seed"] == 0 and "config" in data
    assert data["caption"].strip() == paths["txt"].read_text().strip()


def test_same_seed_same_numbers(tmp_path):
    """The data behind a figure depend only on the configuration and the seed."""
    module = registry.load("asymmetry_vs_rank")
    one = module.make(tmp_path / "1", seed=3, config=module.Config.tiny())
    two = module.make(tmp_path / "2", seed=3, config=module.Config.tiny())
    assert json.loads(one["json"].read_text())["data"] == json.loads(two["json"].read_text())["data"]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "figures.cli", *args], capture_output=True, text=True)


def test_list_names_every_figure():
    """`lora-asym list` prints one line per figure."""
    result = _run("list")
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(registry.FIGURES)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["figures", "--only", "no_such_figure"], "unknown figure 'no_such_figure'"),
        (["figures", "--seed", "-4"], "--seed: must be a non-negative integer, got -4"),
        (["figures", "--seed", "x"], "--seed: must be a non-negative integer, got 'x'"),
        (["figures", "--quick", "--full"], "not allowed with argument"),
        (["figures", "--out", "/proc/lora-asym-cannot-write-here"], "is not a writable folder"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_error_line_and_status_2(args, fragment):
    """A bad flag, name or folder: exit status 2, one line on stderr, no traceback."""
    result = _run(*args)
    assert result.returncode == cli.EXIT_USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_help_of_every_command_gives_an_example():
    """--help on the program and each subcommand says what it does, with an example."""
    for args in ([], ["figures"], ["list"]):
        result = _run(*args, "--help")
        assert result.returncode == 0 and "Example: lora-asym" in result.stdout


def test_demo_prints_the_asymmetry_and_the_bound_ratio():
    """`lora-asym demo` prints the table: b_only wins on low-rank Σ, reverses on the counterexample, √2."""
    result = _run("demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("Σ of rank 4") and line.endswith("b_only") for line in lines)
    assert any(line.startswith("Δ on low-variance inputs") and "reverses" in line for line in lines)
    assert any(line.startswith("64 x 64") and line.split()[-1] == "1.414" for line in lines)
