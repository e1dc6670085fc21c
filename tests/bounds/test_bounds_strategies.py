"""The public strategies of bounds.strategies generate what they promise."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from bounds.strategies import (
    layer_lists,
    loss_tables,
    lora_settings,
    metric_problems,
    mi_vectors,
    stiefel_factors,
    supersamples,
    symbol_arrays,
)
from bounds.supersample import MAX_LOSS_LEVELS


@given(layer_lists())
def test_layer_lists_are_positive_pairs(layers):
    """Non-empty lists of (d_out, d_in) pairs of positive ints."""
    assert len(layers) >= 1
    assert all(isinstance(d, int) and d >= 1 for layer in layers for d in layer)


@given(layer_lists(square=True))
def test_square_layer_lists_are_square(layers):
    """``square=True`` gives d_out == d_in for every layer."""
    assert all(d_out == d_in for d_out, d_in in layers)


@given(lora_settings())
def test_lora_settings_have_a_valid_rank(setting):
    """The rank fits every layer; q, sigma and n are in range."""
    assert setting["rank"] >= 1
    assert setting["rank"] <= min(min(layer) for layer in setting["layers"])
    assert setting["q_bits"] >= 1 and setting["sigma"] > 0 and setting["n"] >= 1


@given(mi_vectors())
def test_mi_vectors_are_nonnegative_and_finite(mis):
    """Per-sample MIs are a non-empty 1-D array of finite non-negative floats."""
    assert mis.ndim == 1 and mis.size >= 1
    assert np.all(np.isfinite(mis)) and np.all(mis >= 0)


@given(symbol_arrays())
def test_symbol_arrays_fit_sixteen_bits(symbols):
    """Quantized symbols are int64 within 16-bit two's complement."""
    assert symbols.dtype == np.int64 and symbols.size >= 1
    assert symbols.min() >= -(2**15) and symbols.max() <= 2**15 - 1


@given(metric_problems())
def test_metric_problems_carry_a_psd_metric_of_the_output_size(p):
    """metric_problems adds a symmetric PSD (d_out, d_out) output metric to a Section 4.1 problem."""
    g = p["metric"]
    assert g.shape == (p["d_out"], p["d_out"]) and np.array_equal(g, g.T)
    assert np.linalg.eigvalsh(g)[0] >= -1e-10 * np.abs(g).max()
    assert p["a"].shape == (p["rank"], p["d_in"]) and p["b"].shape == (p["d_out"], p["rank"])


@given(loss_tables())
def test_loss_tables_are_graded_losses_with_fair_selectors(table):
    """Losses (k_z, k_u, n, 2) in [0, 1] on at most MAX_LOSS_LEVELS grid values; 0/1 selectors (k_z, k_u, n)."""
    losses, selectors = table
    assert losses.ndim == 4 and losses.shape[0] >= 2 and losses.shape[-1] == 2
    assert losses.min() >= 0 and losses.max() <= 1
    assert np.unique(losses).size <= MAX_LOSS_LEVELS
    assert selectors.shape == losses.shape[:3] and set(np.unique(selectors)) <= {0, 1}


@given(supersamples())
def test_supersamples_are_valid_inputs_of_the_cmi_bounds(arrays):
    """Every drawn ``(losses, selectors)`` pair is accepted by a CMI bound, whose estimate is a finite
    non-negative number."""
    import bounds

    losses, selectors = arrays
    assert losses.dtype == np.float64 and selectors.dtype == np.int64
    result = bounds.ld_cmi_bound(losses, selectors, np.random.default_rng(0), n_boot=20)
    assert np.isfinite(result.value) and result.value >= 0


@given(stiefel_factors(9, 4))
def test_stiefel_factors_are_orthonormal(q):
    """stiefel_factors(d, r) has orthonormal columns."""
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-12)


def test_the_readme_example_property_tests_a_bound_against_its_gap():
    """The README's example (the code block under "Property-test a bound of your own") runs and passes."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("### Property-test a bound of your own"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    assert "measure_gap" in code and "bounds.strategies" in code
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
