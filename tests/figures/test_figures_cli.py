"""The figures and the lora-asym command line: smoke tests and clear errors."""

import json
import math

import numpy as np
import pytest

import bounds
import synthetic
from figures import bound_ratios, bounds_vs_n_common, cli, rank_doubling, registry
from figures.checks import NO_BOUND_NOTE
from theory.variants import VARIANTS
from synthetic.linear.engine import LOSSES as LINEAR_LOSSES
from synthetic.mlp.train import LOSSES as MLP_LOSSES
from synthetic.montecarlo import measure_gap
from synthetic.provenance import toolkit_version
from synthetic.sweep import GRID_KEYS

#: The keys of every bound-check record (figures.checks.bound_check).
CHECK_KEYS = {
    "where", "bound", "bound_value", "bound_low", "bound_high", "loss", "gap", "gap_low", "gap_high",
    "gap_interval", "held", "vacuous", "resolved", "informative",
}
#: Bits of the float32 scale stored with each quantized tensor.
SCALE_BITS = 32


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``tiny(name)``: the paths written by figure ``name`` at its tiny configuration, made once per module."""
    made: dict = {}

    def make(name):
        if name not in made:
            module = registry.load(name)
            made[name] = module.make(tmp_path_factory.mktemp(name), seed=0, config=module.Config.tiny())
        return made[name]

    return make


@pytest.mark.parametrize("name", registry.FIGURES)
def test_every_figure_writes_png_pdf_data_and_caption(name, tiny):
    """make(out_dir, config=tiny) writes the image in two formats, its numbers and a caption."""
    paths = tiny(name)
    for ext in ("png", "pdf", "json", "txt"):
        assert paths[ext].exists() and paths[ext].stat().st_size > 0
    data = json.loads(paths["json"].read_text())
    assert data["seed"] == 0 and "config" in data
    assert data["caption"].strip() == paths["txt"].read_text().strip()


@pytest.mark.parametrize("name", registry.FIGURES)
def test_every_figure_records_whether_each_bound_held(name, tiny):
    """The JSON has a top-level bound_checks list of complete records, ``held = bound_high >= gap_low``;
    a figure that compares no bound with a gap writes an empty list and says so."""
    data = json.loads(tiny(name)["json"].read_text())
    checks = data["bound_checks"]
    if not hasattr(registry.load(name), "bound_checks"):
        assert checks == [] and data["bound_checks_note"] == NO_BOUND_NOTE
        return
    assert checks and "bound_checks_note" not in data
    for check in checks:
        assert set(check) == CHECK_KEYS
        assert check["where"] and check["loss"] and check["gap_interval"]
        assert check["bound_low"] <= check["bound_high"]
        assert check["gap_low"] <= check["gap"] <= check["gap_high"]
        assert check["held"] is (check["bound_high"] >= check["gap_low"])
        assert check["vacuous"] in (True, False, None) and check["resolved"] in (True, False, None)
        assert check["informative"] is (check["held"] and check["vacuous"] is False and check["resolved"] is not False)
    held, informative = sum(c["held"] for c in checks), sum(c["informative"] for c in checks)
    if held == len(checks):
        said = f"Every bound held against the measured gap of its loss ({held} of {held} checks"
        assert said in data["caption"]
        count = f"all {held} informative" if informative == held else f"{informative} of them informative"
        assert count in data["caption"]
    else:
        assert "VIOLATION" in data["caption"]
    if any(c["held"] and c["vacuous"] for c in checks):
        assert "vacuous (at or above the loss's range): " in data["caption"]
    if any(c["held"] and c["vacuous"] is False and c["resolved"] is False for c in checks):
        assert "unresolved estimates" in data["caption"]


@pytest.mark.parametrize("name", ["bounds_vs_n_linear", "bounds_vs_n_mlp"])
def test_bounds_vs_n_checks_pair_each_bound_with_its_own_gap(name, tiny):
    """Figures 4 and 5: each check holds a bound of PAIRS and the gap it is paired with, and agrees
    with the figure's ``<bound>_violated`` array; every estimated bound is checked."""
    data = json.loads(tiny(name)["json"].read_text())
    key_of = {v: k for k, v in bounds_vs_n_common.BOUND_NAME.items()}
    gap_of = dict(bounds_vs_n_common.PAIRS)
    ns = data["data"]["n"]
    for check in data["bound_checks"]:
        d, i = data["data"][check["where"]["variant"]], ns.index(check["where"]["n"])
        bound, gap = key_of[check["bound"]], gap_of[key_of[check["bound"]]]
        assert (check["bound_value"], check["bound_high"]) == (d[bound][i], d[f"{bound}_high"][i])
        assert (check["gap"], check["gap_low"]) == (d[gap][i], d[f"{gap}_low"][i])
        assert check["held"] is not bool(d[f"{bound}_violated"][i])
        if bound == "lemma45":
            assert check["resolved"] is None  # a closed form
        else:  # an estimate: at least twice its half-width, for CMI above its estimator's floor, and for
            # the channel not flagged as possibly low (too few trials for its interval to cover)
            floor = d.get(f"{bound}_floor", [0.0] * len(ns))[i]
            may_be_low = bound == "channel" and bool(d["channel_may_be_low"][i])
            expected = (check["bound_value"] > floor and check["bound_value"] >= check["bound_high"] - check["bound_low"]
                        and not may_be_low)
            assert check["resolved"] is expected is bool(d[f"{bound}_resolved"][i])
    estimated = sum(
        np.isfinite(np.array(data["data"][v][k], dtype=float)).sum()
        for v in VARIANTS for k, _ in bounds_vs_n_common.PAIRS
    )
    assert len(data["bound_checks"]) == estimated


def test_bound_ratios_checks_lemma45_against_the_clipped_gap_in_its_units(tiny):
    """Figure 6: each check's gap is the mean clipped-loss gap of that variant and shape, measured
    again here in the loss's units, and its bound is sqrt(2 (c/2)² ln2 (q N + 32 T) / n), with the
    clip c, every stored bit and T trained tensors."""
    config = bound_ratios.Config.tiny()
    checks = json.loads(tiny("bound_ratios")["json"].read_text())["bound_checks"]
    assert len(checks) == len(config.d_outs) * len(bound_ratios.VARIANTS)
    for check in checks:
        v, d_out = check["where"]["variant"], check["where"]["d_out"]
        clip = config.clip_per_output * d_out
        assert "clipped squared loss" in check["loss"] and f"c = {clip:g}" in check["loss"]
        again = measure_gap(bound_ratios.task(config, d_out), v, config.rank, config.n, config.trials,
                            loss="clipped", q_bits=config.q_bits, seed=0)
        assert check["gap"] == pytest.approx(again.summary.mean_gap, rel=1e-12)
        n_params = bounds.trainable_params(v, [(d_out, config.d_in)], config.rank)
        bits = config.q_bits * n_params + SCALE_BITS * (2 if v == "lora" else 1)
        expected = clip / 2 * math.sqrt(2 * math.log(2) * bits / config.n)
        assert check["bound_value"] == pytest.approx(expected, rel=1e-12)
        assert check["vacuous"] is (check["bound_value"] >= clip)
        assert check["resolved"] is None  # a closed form


def test_rank_doubling_checks_lemma45_against_the_zero_one_gap(tiny):
    """Figure 8: in each regime, each check's gap is the arm's mean 0-1 gap (measured again here for one
    arm per regime) with ±2 s.e., and its bound is sqrt(2 (1/2)² ln2 (q N + 32 T) / n) for the 0-1 loss
    in [0, 1], N counted on that regime's adapted layer."""
    config = rank_doubling.Config.tiny()
    data = json.loads(tiny("rank_doubling")["json"].read_text())
    assert len(data["bound_checks"]) == len(config.regimes) * len(config.ranks) * len(rank_doubling.ARMS)
    for check in data["bound_checks"]:
        task = rank_doubling.regime_task(config, check["where"]["regime"])
        layer = task.layer_shapes[task.adapted_layers[0]]
        v, rank = check["where"]["variant"], check["where"]["rank"]
        assert check["loss"].startswith("0-1 loss") and -1.0 <= check["gap"] <= 1.0
        bits = config.q_bits * bounds.trainable_params(v, [layer], rank) + SCALE_BITS * (2 if v == "lora" else 1)
        expected = 0.5 * math.sqrt(2 * math.log(2) * bits / config.n)
        assert check["bound_value"] == pytest.approx(expected, rel=1e-12)
        assert check["vacuous"] is (check["bound_value"] >= 1.0)
        assert check["resolved"] is None  # a closed form
    for regime in config.regimes:
        first = next(c for c in data["bound_checks"] if c["where"]["regime"] == regime)
        again = measure_gap(rank_doubling.regime_task(config, regime), first["where"]["variant"],
                            first["where"]["rank"], config.n, config.trials, loss="zero_one", q_bits=config.q_bits,
                            seed=0)
        assert first["gap"] == pytest.approx(again.summary.mean_gap, rel=1e-12)
        assert first["gap_low"] == pytest.approx(first["gap"] - 2 * again.summary.stderr_gap, abs=1e-12)


def test_rank_doubling_records_the_predictor_call_of_each_regime(tiny):
    """Figure 8: each regime's data hold predict_asymmetry at rank 2 max(ranks) (docs/THEORY.md §1b) with the
    tiny configuration's samples and draws, its call, and the caption and titles quote it."""
    config = rank_doubling.Config.tiny()
    data = json.loads(tiny("rank_doubling")["json"].read_text())
    rank = 2 * max(config.ranks)
    for regime in config.regimes:
        pred = data["data"][regime]["prediction"]
        again = synthetic.predict_asymmetry(rank_doubling.regime_task(config, regime), rank,
                                            samples=config.predictor_samples, draws=config.predictor_draws, seed=0)
        assert pred["rank"] == rank
        assert pred["b_only_fraction"] == pytest.approx(again.b_only_fraction, rel=1e-12)
        assert pred["a_only_fraction"] == pytest.approx(again.a_only_fraction, rel=1e-12)
        assert pred["prefers"] == again.prefers
        assert f"predicts {again.prefers}" in data["caption"]
        assert regime in data["caption"]


def test_same_seed_same_numbers(tmp_path):
    """The data behind a figure depend only on the configuration and the seed."""
    module = registry.load("asymmetry_vs_rank")
    one = module.make(tmp_path / "1", seed=3, config=module.Config.tiny())
    two = module.make(tmp_path / "2", seed=3, config=module.Config.tiny())
    assert json.loads(one["json"].read_text())["data"] == json.loads(two["json"].read_text())["data"]


def _run(capsys, *args) -> tuple[int, str, str]:
    """``lora-asym ARGS`` in this process: (exit status, stdout, stderr). The console entry point in
    a real process is tested in ``test_cli_pipe.py``."""
    try:
        status = cli.main(list(args))
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_names_every_figure(capsys):
    """`lora-asym list` prints one line per figure."""
    status, out, _ = _run(capsys, "list")
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()] == list(registry.FIGURES)


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
def test_bad_arguments_give_one_error_line_and_status_2(capsys, args, fragment):
    """A bad flag, name or folder: exit status 2, one line on stderr, no traceback."""
    status, _, err = _run(capsys, *args)
    assert status == cli.EXIT_USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]


def test_help_of_every_command_gives_an_example(capsys):
    """--help on the program and each subcommand says what it does, with an example."""
    for args in ([], ["figures"], ["list"]):
        status, out, _ = _run(capsys, *args, "--help")
        assert status == 0 and "Example: lora-asym" in out


def test_version_prints_the_toolkit_version(capsys):
    """`lora-asym --version` prints `lora-asym VERSION` (the installed toolkit's) and exits 0."""
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"lora-asym {toolkit_version()}\n"


def _sweep_parser():
    subparsers = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return subparsers.choices["sweep"]


def test_sweep_help_lists_every_grid_key_and_every_choice():
    """`lora-asym sweep --help` ends with every grid-file key, its meaning and an example value, and the
    example file; the help of every choice-valued flag lists its choices (``--loss`` every loss of
    both task families, ``--variants`` every variant)."""
    parser = _sweep_parser()
    help_text = parser.format_help()
    epilog = help_text[help_text.index("Grid file (--grid FILE)"):]
    for key, (_, meaning, example) in GRID_KEYS.items():
        assert f"  {key} " in epilog and meaning in epilog and f"e.g. {example}" in epilog, key
    assert "docs/sweep_grid_example.json" in epilog and "Example: lora-asym sweep" in epilog
    listed = {"--loss": (*LINEAR_LOSSES, *MLP_LOSSES["classification"], *MLP_LOSSES["regression"]),
              "--variants": VARIANTS}
    for action in parser._actions:
        choices = action.choices or listed.get(action.option_strings[0] if action.option_strings else "")
        for choice in choices or ():
            assert choice in action.help, (action.option_strings, choice)


def test_demo_prints_the_asymmetry_and_the_bound_ratio(capsys):
    """`lora-asym demo` prints the table: b_only wins on low-rank Σ, reverses on the counterexample, √2."""
    status, out, err = _run(capsys, "demo")
    assert status == 0, err
    lines = out.splitlines()
    assert any(line.startswith("Σ of rank 4") and line.endswith("b_only") for line in lines)
    assert any(line.startswith("Δ on low-variance inputs") and "reverses" in line for line in lines)
    assert any(line.startswith("64 x 64") and line.split()[-1] == "1.414" for line in lines)
