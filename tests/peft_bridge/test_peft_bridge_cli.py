"""`lora-asym adapters` (similarity, bound) and the worked example `python -m peft_bridge.example`."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest
import torch

import bounds
from figures import cli

peft = pytest.importorskip("peft")
pytest.importorskip("transformers")
import peft_bridge  # noqa: E402  (after the skip: needs the [peft] extra)
from peft_bridge import example  # noqa: E402
from tests.peft_bridge.test_peft_bridge import make_bad_adapter  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


def _main(*argv: str) -> tuple[int, str, str]:
    """Run ``lora-asym`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(list(argv))
        except SystemExit as exc:  # argparse refused the arguments
            status = exc.code
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Two saved b_only adapters on a 10-8-6 MLP (modules "0" and "2", rank 3) with the same frozen A."""
    paths = []
    for k in range(2):
        torch.manual_seed(k)
        mlp = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Tanh(), torch.nn.Linear(8, 6))
        model = peft.get_peft_model(mlp, peft.LoraConfig(r=3, lora_alpha=3, target_modules=["0", "2"]))
        peft_bridge.freeze_factor(model, "A", seed=0)
        with torch.no_grad():
            for module in peft_bridge.lora_modules(model).values():
                module.lora_B["default"].weight.normal_()
        path = tmp_path_factory.mktemp(f"adapter{k}")
        model.save_pretrained(str(path))
        paths.append(str(path))
    return paths


def test_similarity_prints_one_row_per_module(adapters):
    """`adapters similarity` prints adapter_similarity for A and B of each module, r/d beside, and the mean."""
    status, out, err = _main("adapters", "similarity", *adapters)
    assert status == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    for side, column in (("A", 0), ("B", 2)):
        for name, value in peft_bridge.adapter_similarity(*adapters, side).items():
            assert float(rows[name][column]) == pytest.approx(value, abs=5e-4)
    assert rows["0"][1] == f"{3 / 10:.3f}" and rows["0"][3] == f"{3 / 8:.3f}"
    assert rows["mean"][0] == "1.000"
    status, out, _ = _main("adapters", "similarity", *adapters, "--side", "B")
    assert status == 0 and out.splitlines()[1].split() == ["module", "B", "r/d"]


def test_bound_prints_lemma_4_5_for_the_saved_shapes(adapters):
    """`adapters bound` prints N and bounds.lora_mi_bound for the adapter's (d_out, d_in) and rank, per variant."""
    status, out, err = _main("adapters", "bound", adapters[0], "--n", "1000", "--q-bits", "8", "--sigma", "0.5",
                             "--variant", "b_only", "lora")
    assert status == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert list(rows) == ["b_only", "lora"]
    for variant, (params, _, bound) in rows.items():
        assert int(params) == bounds.trainable_params(variant, [(8, 10), (6, 8)], 3)
        assert float(bound) == pytest.approx(bounds.lora_mi_bound(variant, [(8, 10), (6, 8)], 3, 8, 0.5, 1000),
                                             rel=1e-3)


@pytest.mark.parametrize(("argv", "fragment"), [
    (["similarity", "{good}", "{missing}"], "does not exist"),
    (["similarity", "{bad json}", "{good}"], "is not readable JSON"),
    (["bound", "{no config}", "--n", "10", "--q-bits", "8", "--sigma", "1"], "has no adapter_config.json"),
    (["bound", "{garbage}", "--n", "10", "--q-bits", "8", "--sigma", "1"], "not a readable safetensors file"),
    (["bound", "{good}", "--n", "0", "--q-bits", "8", "--sigma", "1"], "n must be >= 1"),
    (["bound", "{good}", "--n", "10", "--q-bits", "8", "--sigma", "-1"], "sigma must be > 0"),
    (["bound", "{good}", "--n", "x", "--q-bits", "8", "--sigma", "1"], "--n: invalid int value"),
    (["bound", "{good}", "--q-bits", "8", "--sigma", "1"], "the following arguments are required: --n"),
    (["bound", "{good}", "--n", "10", "--q-bits", "8", "--sigma", "1", "--variant", "c_only"], "--variant"),
    (["similarity", "{good}", "{good}", "--side", "C"], "--side"),
])
def test_errors_are_one_line_and_status_2(adapters, tmp_path, argv, fragment):
    """A missing or malformed adapter folder or a bad flag: exit status 2, one line on stderr naming it,
    nothing on stdout."""
    folders = {"good": adapters[0], "missing": str(tmp_path / "missing")}
    for kind in ("bad json", "no config", "garbage"):
        folders[kind] = make_bad_adapter(tmp_path, kind)
    status, out, err = _main("adapters", *(a.format(**folders) if a.startswith("{") else a for a in argv))
    assert status == cli.EXIT_USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], err
    assert out == ""


def test_console_exit_status_and_help():
    """Through the interpreter, as the console script runs it: status 2 for a missing folder; --help of
    `adapters` and its subcommands gives an example."""
    result = subprocess.run([sys.executable, "-m", "figures.cli", "adapters", "bound", "/no/such/adapter", "--n", "1",
                             "--q-bits", "1", "--sigma", "1"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    for argv in (["adapters"], ["adapters", "similarity"], ["adapters", "bound"]):
        status, out, _ = _main(*argv, "--help")
        assert status == 0 and "Example: lora-asym adapters" in out


def test_worked_example_smoke(tmp_path):
    """`python -m peft_bridge.example --tiny` prints its three tables, saves six adapters and writes the PNG."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert example.main(["--out", str(tmp_path), "--tiny"]) == 0
    text = out.getvalue()
    for fragment in ("f(Σ,r)  f(G,r)  predicted", "predicted = measured on", "Lemma 4.5",
                     "b_only: other task, same frozen A"):
        assert fragment in text
    same_frozen = [line for line in text.splitlines() if line.startswith("b_only: other task, same frozen A")]
    assert same_frozen[0].split()[-2] == "1.000"
    assert (tmp_path / "peft_example.png").stat().st_size > 0
    assert len(list((tmp_path / "adapters").iterdir())) == len(example.SAVED_RUNS)
