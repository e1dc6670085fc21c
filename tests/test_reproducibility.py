"""What README.md, "Reproducibility", promises about equal numbers, and the same promises under
other BLAS kernels and thread counts.

1. The same call with the same settings gives bit-identical numbers.
2. By construction, trial ``t``'s numbers do not depend on the other trials computed with it: the
   linear engine calls LAPACK and BLAS once per trial matrix and chooses each trial's least-squares
   route on its own; the MLP engine computes everything outside the fused kernel trial by trial
   (``synthetic.mlp.backprop.trial_slices``) and the kernel trains each trial alone.
3. The torch training path of the MLP engine (``full``, minibatches, no compiler) runs batched
   products over the chunk: its trials agree with a chunk of one to float32 rounding (``tol``).

The last test reruns this file, and the fused kernel's tests against torch
(``tests/synthetic/mlp/test_mlp_kernel.py``, whose vectors are 8 floats wide when the kernel is
built for AVX2), in a subprocess under each setting of ``KERNEL_SETTINGS``, so that this machine
checks what a CPU with other kernels would compute. Figure JSON across
backends and job counts: ``tests/figures/test_parallel_figures.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import synthetic.linear.engine as linear_engine
import synthetic.mlp.engine as mlp_engine
from synthetic.linear.engine import LinearTask, linear_trial_losses
from synthetic.linear.lstsq import lstsq_batched
from synthetic.mlp.engine import MLPTask, mlp_trial_losses
from tests.tolerances import tol
from theory.variants import VARIANTS

#: Set in the subprocesses of ``test_the_guarantees_hold_under_other_kernels`` (no recursion).
NESTED = "LORA_ASYM_REPRO_NESTED"
#: BLAS and compiler settings another machine would run: OpenBLAS's kernels for older x86 cores
#: (``OPENBLAS_CORETYPE``), MKL limited to AVX2 or AVX (torch's matrix library), the fused
#: kernel built for that core (``LORA_ASYM_MARCH``), and 1 or 2 threads.
KERNEL_SETTINGS = {
    "haswell-1-thread": ({"OPENBLAS_CORETYPE": "Haswell", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                          "LORA_ASYM_MARCH": "haswell"}, 1),
    "haswell-2-threads": ({"OPENBLAS_CORETYPE": "Haswell", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                           "LORA_ASYM_MARCH": "haswell"}, 2),
    "sandybridge-1-thread": ({"OPENBLAS_CORETYPE": "Sandybridge", "MKL_ENABLE_INSTRUCTIONS": "AVX",
                              "LORA_ASYM_MARCH": "sandybridge"}, 1),
}

LINEAR = replace(LinearTask.quick(), d_in=6, d_out=5, delta_rank=3, n_test=300)
MLP = MLPTask(widths=(6, 8, 8, 3), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2,
              test_size=300, steps=15, lr=1e-2)
MLP_REGRESSION = MLPTask(widths=(5, 7, 4), adapted_layers=(0, 1), perturbed_layers=(0,), perturbation_rank=2,
                         kind="regression", test_size=300, steps=15, lr=1e-2)


def _assert_same(first: dict, second: dict, rows: slice = slice(None)) -> None:
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key][rows], second[key], err_msg=key)


@pytest.mark.parametrize("sampler", ["data", "sufficient"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_linear_trials_do_not_depend_on_the_chunk(monkeypatch, variant, sampler):
    """Linear engine: the same call twice, a chunk of one trial, and a run of fewer trials give
    trial ``t`` the same bits; another seed gives other numbers."""
    n = 7 if sampler == "sufficient" else 9  # n = d_in + 1: some trials' systems are ill-conditioned
    kw = {"loss": "population", "seed": 11, "return_params": True, "sampler": sampler}
    if sampler == "data":
        kw.update(loss="clipped", q_bits=6)
    first = linear_trial_losses(LINEAR, variant, 2, n, 9, **kw)
    _assert_same(first, linear_trial_losses(LINEAR, variant, 2, n, 9, **kw))
    _assert_same(first, linear_trial_losses(LINEAR, variant, 2, n, 4, **kw), slice(0, 4))
    monkeypatch.setattr(linear_engine, "CHUNK_FLOATS", 1)  # one trial per chunk
    _assert_same(first, linear_trial_losses(LINEAR, variant, 2, n, 9, **kw))
    assert not np.array_equal(first["train_loss"], linear_trial_losses(LINEAR, variant, 2, n, 9,
                                                                       **{**kw, "seed": 12})["train_loss"])


@pytest.mark.parametrize("ridge", [0.0, 0.1])
def test_least_squares_route_is_chosen_per_trial(ridge):
    """A rank-deficient trial (SVD route) solved beside well-conditioned ones (normal equations)
    leaves their solutions bit-identical to solving each alone."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 12, 4))
    x[2, :, 3] = x[2, :, 0]  # trial 2: a repeated column
    y = rng.standard_normal((5, 12, 2))
    together = lstsq_batched(x, y, ridge=ridge)
    for t in range(5):
        np.testing.assert_array_equal(together[t], lstsq_batched(x[t : t + 1], y[t : t + 1], ridge=ridge)[0])


@pytest.mark.parametrize("task", [MLP, MLP_REGRESSION], ids=["classification", "regression"])
@pytest.mark.parametrize("variant", ["lora", "b_only", "a_only"])
def test_mlp_trials_do_not_depend_on_the_chunk(monkeypatch, task, variant):
    """MLP engine, fused kernel: the same call twice, chunks of two trials, and fewer trials give
    trial ``t`` the same bits."""
    loss = "cross_entropy" if task.kind == "classification" else "squared"
    kw = {"loss": loss, "seed": 7, "q_bits": 8, "return_params": True}
    first = mlp_trial_losses(task, variant, 2, 16, 5, **kw)
    _assert_same(first, mlp_trial_losses(task, variant, 2, 16, 5, **kw))
    _assert_same(first, mlp_trial_losses(task, variant, 2, 16, 3, **kw), slice(0, 3))
    monkeypatch.setattr(mlp_engine, "MAX_TRIAL_CHUNK", 2)
    _assert_same(first, mlp_trial_losses(task, variant, 2, 16, 5, **kw))


def test_mlp_torch_path_agrees_across_chunks_to_float32_rounding(monkeypatch):
    """``full`` trains in torch over the stacked trials: the same call gives the same bits, and a
    chunk of one trial agrees to float32 rounding, not bit for bit."""
    kw = {"loss": "cross_entropy", "seed": 5, "return_params": True}
    first = mlp_trial_losses(MLP, "full", None, 16, 4, **kw)
    _assert_same(first, mlp_trial_losses(MLP, "full", None, 16, 4, **kw))
    monkeypatch.setattr(mlp_engine, "MAX_TRIAL_CHUNK", 1)
    alone = mlp_trial_losses(MLP, "full", None, 16, 4, **kw)
    for key in ("params", "train_loss", "test_loss"):
        np.testing.assert_allclose(alone[key], first[key], **tol(np.float32), err_msg=key)


@pytest.mark.skipif(os.environ.get(NESTED) == "1", reason="already inside a run under other kernels")
@pytest.mark.parametrize("setting", sorted(KERNEL_SETTINGS))
def test_the_guarantees_hold_under_other_kernels(setting):
    """Every test above, and the fused kernel's tests, pass in a fresh process under ``setting``'s
    BLAS kernels, fused-kernel build and thread count (what another CPU computes)."""
    env_vars, threads = KERNEL_SETTINGS[setting]
    env = {**os.environ, **env_vars, NESTED: "1", "OPENBLAS_NUM_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "LORA_ASYM_TEST_THREADS": str(threads)}
    root = Path(__file__).resolve().parents[1]
    files = [str(Path(__file__).relative_to(root)), "tests/synthetic/mlp/test_mlp_kernel.py"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files], cwd=root,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"under {setting}:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
