"""Gradient-descent mode (synthetic.linear.gd) against the closed-form fits on the same data."""

import numpy as np
import pytest

from synthetic.linear.gd import GDConfig, gd_fit, gd_vs_closed_form
from synthetic.linear.engine import LinearTask

#: Relative optimisation error allowed after GDConfig.quick() (1500 Adam steps, cosine decay).
GD_RTOL = 1e-5

TASK = LinearTask(d_in=6, d_out=5, spectrum="powerlaw:1", delta_rank=3, delta_singular_values=(3.0, 2.0, 1.0), noise_var=0.25)


@pytest.mark.parametrize("variant", ["b_only", "a_only", "full", "lora"])
def test_adam_reaches_the_closed_form_when_n_exceeds_d_in(variant):
    """With n > d_in the convex variants (b_only, a_only, full) have a unique least-squares
    solution and Adam from LoRA's start (B = 0) reaches it. lora is not convex, but reduced-rank
    regression has no spurious local minima (Baldi and Hornik 1989) and Adam from B = 0,
    A Haar reaches the closed form here too."""
    out = gd_vs_closed_form(TASK, variant, 2, 40, 4, seed=0, config=GDConfig.quick())
    assert np.all(out["relative_distance"] <= GD_RTOL)
    assert np.allclose(out["gd_test_loss"], out["cf_test_loss"], rtol=GD_RTOL)


@pytest.mark.parametrize("variant", ["full", "lora"])
def test_closed_form_is_the_minimum_norm_fit_when_n_is_below_d_in(variant):
    """With n < d_in the training minimisers form an affine family; the closed form is its
    minimum-norm member, which Adam (not confined to the row space of X) does not find: the
    training losses agree, ‖M_cf‖ <= ‖M_gd‖, and the population losses differ."""
    out = gd_vs_closed_form(TASK, variant, 2, 4, 4, seed=0, config=GDConfig.quick())
    assert np.all(out["cf_train_loss"] <= out["gd_train_loss"] + GD_RTOL * (1 + out["gd_train_loss"]))
    assert np.all(out["cf_norm"] <= out["gd_norm"])
    assert np.all(out["relative_distance"] > GD_RTOL)
    assert np.all(out["gd_test_loss"] != out["cf_test_loss"])


def test_gd_fit_keeps_the_frozen_factor_and_starts_from_zero():
    """gd_fit returns only the trained tensor; one Adam step from B = 0 moves every entry."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 10, 3)), rng.standard_normal((2, 10, 4))
    a = rng.standard_normal((2, 1, 3))
    out = gd_fit(x, y, "b_only", {"b": np.zeros((2, 4, 1))}, a, config=GDConfig(steps=1, lr=0.1))
    assert set(out) == {"b"} and out["b"].shape == (2, 4, 1)
    assert np.all(np.abs(out["b"]) > 0)  # Adam's first step is lr · sign(gradient)


def test_invalid_gd_arguments_raise_naming_them():
    """Bad configs, variants and ranks raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="steps must be >= 1"):
        GDConfig(steps=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        GDConfig(lr=0.0)
    with pytest.raises(ValueError, match="config must be a GDConfig"):
        gd_fit(np.ones((1, 2, 2)), np.ones((1, 2, 2)), "full", {"m": np.zeros((1, 2, 2))}, None, config={"steps": 3})
    with pytest.raises(ValueError, match="start must be a dict with the keys"):
        gd_fit(np.ones((1, 2, 2)), np.ones((1, 2, 2)), "lora", {"m": np.zeros((1, 2, 2))}, None, config=GDConfig())
    with pytest.raises(ValueError, match="frozen is None; b_only needs"):
        gd_fit(np.ones((1, 2, 2)), np.ones((1, 2, 2)), "b_only", {"b": np.zeros((1, 2, 1))}, None, config=GDConfig())
    with pytest.raises(ValueError, match="start\\['b'\\] has shape"):
        gd_fit(np.ones((1, 2, 2)), np.ones((1, 2, 3)), "b_only", {"b": np.zeros((1, 2, 1))}, np.ones((1, 1, 2)),
               config=GDConfig())
    with pytest.raises(ValueError, match="variant 'ba'"):
        gd_vs_closed_form(TASK, "ba", 2, 10, 2, seed=0, config=GDConfig.quick())
    with pytest.raises(ValueError, match="rank 6 exceeds min"):
        gd_vs_closed_form(TASK, "lora", 6, 10, 2, seed=0, config=GDConfig.quick())
