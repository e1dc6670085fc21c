"""Classes of bad input the fuzz tables did not reach: sizes without limit, unordered or boolean
arrays taken as data, arguments of the wrong kind. Each case is refused at the public boundary with a
``ValueError`` naming the argument, before any large allocation and in well under a second."""

from __future__ import annotations

import time

import numpy as np
import pytest

import bounds
import synthetic
import theory

HUGE = (10**20, 2**60, 10**400)  # beyond MAX_COUNT; 10**400 is also beyond float64's range
RNG = np.random.default_rng(0)
SIGMA3 = np.diag([1.0, 0.5, 0.25])


def _size_cases(big):
    """(callable, name the message must start with) for one huge integer ``big``."""
    return [
        (lambda: bounds.xu_raginsky(0.3, 0.5, big), "n"),
        (lambda: bounds.lora_mi_bound("b_only", [(big, 8)], 2, 8, 0.5, 100), "layers"),
        (lambda: bounds.lora_mi_nats("lora", [(8, 8)], 2, big), "q_bits"),
        (lambda: bounds.occam_bound(0.1, 20.0, big, 0.05), "n"),
        (lambda: bounds.individual_sample_bound(0.2, 0.5, big), "n"),
        (lambda: bounds.code_length_bits(np.array([0, 1, -1]), q_bits=big), "q_bits"),
        (lambda: theory.haar_stiefel(big, 1, RNG), "d"),
        (lambda: theory.haar_stiefel(3, 1, RNG, draws=big), "draws"),
        (lambda: theory.captured_fraction(SIGMA3, 1, draws=big, rng=RNG), "draws"),
        (lambda: theory.expected_loss_b_only(np.eye(3), SIGMA3, 1, 0.0, draws=big, rng=RNG), "draws"),
        (lambda: synthetic.LinearTask(d_in=big), "d_in"),
        (lambda: synthetic.MLPTask(widths=(4, big, 3)), "widths"),
    ] + ([(lambda: bounds.occam_bound(0.1, big, 50, 0.05), "code_bits")] if big > 1.8e308 else [])


@pytest.mark.parametrize("big", HUGE, ids=["1e20", "2^60", "1e400"])
def test_huge_counts_are_refused_quickly_naming_the_argument(big):
    """No OverflowError, MemoryError or hang: a ValueError that names the argument, in under a second."""
    for call, name in _size_cases(big):
        start = time.perf_counter()
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value).startswith(name), str(info.value)
        assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(("call", "name", "fragment"), [
    (lambda: theory.haar_stiefel(2 * 10**9, 8, RNG), "d", "GiB"),
    (lambda: theory.haar_stiefel(64, 8, RNG, draws=10**8), "draws", "GiB"),
    (lambda: synthetic.LinearTask(d_in=200_000, d_out=4), "d_in", "GiB"),
    (lambda: synthetic.MLPTask(widths=(4, 100_000, 100_000, 3)), "widths", "GiB"),
    (lambda: synthetic.measure_gap(synthetic.LinearTask(d_in=4, d_out=4, n_test=8), "b_only", 2, n=10**10,
                                   trials=2, loss="population", seed=0), "n", "GiB"),
    (lambda: synthetic.mlp_trial_losses(synthetic.MLPTask(widths=(4, 6, 3), adapted_layers=(0,), perturbed_layers=(0,),
                                                          perturbation_rank=2, test_size=8),
                                        "lora", 2, 10**9, 2, loss="zero_one", seed=0), "n", "GiB"),
])
def test_allocations_beyond_the_limit_name_the_memory_they_need(call, name, fragment):
    """Sizes within MAX_COUNT whose arrays exceed MAX_BYTES are refused before allocating, and the message
    says how much memory they would need."""
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{name} = ") and fragment in message and "MAX_BYTES" in message, message


def test_an_unordered_collection_of_widths_is_refused():
    """widths is an ordered list of layer sizes: a set (whose order is lost) or a generator is refused."""
    for widths in ({4, 6, 3}, frozenset({4, 6, 3}), (w for w in (4, 6, 3)), "463"):
        with pytest.raises(ValueError, match="^widths must be an ordered sequence"):
            synthetic.MLPTask(widths=widths)
    assert synthetic.MLPTask(widths=[4, 6, 3], adapted_layers={1}, perturbed_layers=[1],
                             perturbation_rank=2).widths == (4, 6, 3)


@pytest.mark.parametrize("call", [
    lambda m: theory.population_loss(m, np.zeros((2, 2)), np.eye(2), 0.1),
    lambda m: theory.loss_lora(np.ones((2, 2)), m, 1, 0.1),
    lambda m: theory.cca_similarity(m, np.eye(2), "col"),
    lambda m: bounds.gaussian_channel_mi(m, 1.0, np.random.default_rng(0)),
    lambda m: synthetic.quantize(m, 4),
])
def test_boolean_arrays_are_refused_like_boolean_scalars(call):
    """A boolean matrix is not silently read as 0.0 / 1.0 numbers (bool scalars are refused too)."""
    with pytest.raises(ValueError, match="booleans"):
        call(np.eye(2, dtype=bool))


def test_a_side_that_is_not_a_string_is_refused():
    """cca_similarity's side is one of two names: an array or list holding one is refused, not compared
    elementwise."""
    for side in (np.array(["col"]), ["row"], None, 1):
        with pytest.raises(ValueError, match="^side must be one of"):
            theory.cca_similarity(np.eye(3), np.eye(3), side)


def test_a_failed_write_names_the_path_the_user_gave(tmp_path):
    """Every writer reports the path it was asked to write, never its hidden temporary file, and leaves
    no temporary file behind."""
    task = synthetic.LinearTask(d_in=4, d_out=4, n_test=8)
    result = synthetic.measure_gap(task, "b_only", 2, n=8, trials=2, loss="population", seed=0)
    missing = tmp_path / "no_such_folder" / "rows.csv"
    for write in (result.to_csv, result.to_json):
        with pytest.raises(OSError) as info:
            write(missing)
        assert str(missing) in str(info.value) and ".tmp" not in str(info.value), str(info.value)
    assert not list(tmp_path.rglob("*.tmp"))


def test_results_files_get_the_usual_mode_and_strict_json(tmp_path):
    """Results files are readable as any new file is (0o666 less the umask, not the 0o600 of a temporary
    file), and non-finite numbers are written as JSON null, which strict parsers accept."""
    import json
    import os

    from synthetic.provenance import json_bytes, write_atomic

    umask = os.umask(0o022)
    os.umask(umask)
    path = write_atomic(tmp_path / "x.json", json_bytes({"gap": float("nan"), "a": [1.0, float("inf")],
                                                         "b": np.array([np.nan, 2.0])}))
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}")) == {
        "gap": None, "a": [1.0, None], "b": [None, 2.0]}
