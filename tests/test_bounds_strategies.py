"""The bounds section of tests/strategies.py generates what it promises (STYLE.md rule 8)."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from tests.strategies import layer_lists, lora_settings, mi_vectors, symbol_arrays


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
