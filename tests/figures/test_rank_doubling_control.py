"""Figure 8's read-out control (``figures.rank_doubling_arms.readout_control``): only the read-out
changes, so the inputs' fraction f(Σ, r) and effective rank do not; a win is called beyond 2 s.e. only."""

from __future__ import annotations

import pytest

from figures import rank_doubling
from figures.rank_doubling_arms import READOUTS, readout_control


@pytest.mark.parametrize(("advantage", "stderr", "call"), [
    (0.3, 0.1, "b_only wins"), (-0.3, 0.1, "a_only wins"), (0.19, 0.1, "no winner at 2 s.e."),
    (-0.19, 0.1, "no winner at 2 s.e."),
])
def test_a_win_is_called_beyond_two_standard_errors_only(advantage, stderr, call):
    """``winner``: b_only or a_only wins when the advantage is beyond 2 s.e. of zero, else no winner."""
    assert rank_doubling.winner(advantage, stderr) == call


def test_widening_the_read_out_leaves_the_layer_inputs_alone():
    """Every read-out of the control adapts the same 64-wide layer on the same inputs: f(Σ, r) and the
    inputs' effective rank agree to rounding (the networks above the layer differ, and with them the
    order of some sums); f(G, r) moves (the 10-class head concentrates G most)."""
    config = rank_doubling.Config.tiny()
    out = {name: readout_control(config, name, 0) for name in READOUTS}
    ten = out["10 classes"]
    for c in out.values():
        assert c["b_only_fraction"] == pytest.approx(ten["b_only_fraction"], rel=1e-12)
        assert c["input_erank"] == pytest.approx(ten["input_erank"], rel=1e-12)
    assert {int(c["width"]) for c in out.values()} == {64}
    assert out["10 classes"]["a_only_fraction"] > out["64 regression outputs"]["a_only_fraction"]
