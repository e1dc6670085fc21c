r"""The linear-regression task of Section 4.1: its matrices, input spectrum and random streams.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1
(docs/THEORY.md §1): ``x ~ N(0, Σ)`` (d_in), ``y = W_t x + b_t + ε`` with ``ε ~ N(0, s² I)``
(d_out), the bias fixed to ``b_t = 0``, and ``Δ = W_t − W0``.

Conventions. ``Σ`` is diagonal with descending eigenvalues (its eigenvectors are the standard
basis); the Haar and Gaussian inits are rotation invariant, so this loses no generality for
them (Kaiming-uniform is not exactly invariant).

Random streams. ``seed`` (an int, chosen by the entry point) seeds independent streams keyed
by (stream, trial) through ``numpy.random.SeedSequence(seed, spawn_key=...)`` (``stream_rng``).
The task's own matrices (``W0``, ``Δ``) come from ``task_seed``. The trials are sampled and
fitted by ``synthetic.linear``, which re-exports ``LinearTask`` and the streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from theory.variants import check_init, check_variant
from synthetic.streams import (  # noqa: F401 - the linear streams, re-exported with the task
    STREAM_FROZEN,
    STREAM_FROZEN_SHARED,
    STREAM_NOISE,
    STREAM_TASK,
    STREAM_TEST,
    STREAM_X,
    stream_rng,
)
from theory.random import haar_stiefel
from theory.validation import Array, as_int, as_rank, as_real, check_memory

FROZEN_MODES = ("per_trial", "shared")



def parse_spectrum(spectrum: object, d_in: int) -> Array:  # -> (d_in,)
    r"""Eigenvalues of ``Σ``, descending, from ``"isotropic"``, ``"powerlaw:α"`` or ``"lowrank:k"``.

    ``isotropic``: ``λ_i = 1``; ``powerlaw:α``: ``λ_i = i^{−α}`` (``α > 0``); ``lowrank:k``:
    ``λ_i = 1`` for ``i <= k`` and 0 after (``1 <= k <= d_in``). The input covariance of
    docs/THEORY.md §1.1: ``lowrank:k`` is the rank-``k`` ``Σ`` with equal eigenvalues of eq. (4)
    (Zhu et al., ICML 2024, Section 4.1.1; docs/THEORY.md §1.6), ``powerlaw:2`` that of the
    counterexample (§1.6), ``isotropic`` the ``Σ = σ² I`` of §1.5.

    Parameters
    ----------
    spectrum : str; d_in : int, the dimension of ``Σ``.

    Returns
    -------
    (d_in,) float64 eigenvalues; ``ValueError`` naming ``spectrum`` for any other string.
    """
    if not isinstance(spectrum, str):
        raise ValueError(f"spectrum must be a string, got {spectrum!r}")
    kind, _, arg = spectrum.partition(":")
    if kind == "isotropic" and not arg:
        return np.ones(d_in)
    try:
        if kind == "powerlaw" and arg:
            alpha = float(arg)
            if alpha > 0 and np.isfinite(alpha):
                return np.arange(1, d_in + 1, dtype=np.float64) ** -alpha
        if kind == "lowrank" and arg:
            k = int(arg)
            if 1 <= k <= d_in:
                return np.r_[np.ones(k), np.zeros(d_in - k)]
    except ValueError:
        pass
    raise ValueError(
        f"spectrum {spectrum!r} is not 'isotropic', 'powerlaw:<alpha > 0>' or "
        f"'lowrank:<k in 1..d_in={d_in}>'"
    )


@dataclass(frozen=True)
class LinearTask:
    r"""A Section 4.1 regression task and the recipe for fitting it.

    Attributes
    ----------
    d_in, d_out : int
        Layer widths.
    spectrum : str
        Input spectrum: ``"isotropic"``, ``"powerlaw:α"`` or ``"lowrank:k"`` (``parse_spectrum``).
    delta_rank : int
        Rank ``k`` of the shift ``Δ = U_Δ diag(σ_Δ) V_Δᵀ``.
    delta_singular_values : float or tuple of float
        ``σ_Δ``: one value for all, or ``delta_rank`` values, each ``>= 0``.
    alignment : float in [0, 1] or None
        Where ``Δ``'s row space ``V_Δ`` sits among ``Σ``'s eigenvectors (sorted by decreasing
        variance): the ``k`` consecutive eigenvectors starting at
        ``round((1 − alignment)(d_in − k))``, rotated by a Haar ``k × k`` matrix; 1 puts ``Δ`` on
        the highest-variance directions, 0 on the lowest (docs/THEORY.md §1.6's counterexample).
        ``None``: a Haar-random row space (a "random Δ"). ``U_Δ`` is always Haar.
    noise_var : float
        ``s² >= 0``, the output-noise variance per coordinate.
    w0_scale : float
        ``W0`` has i.i.d. ``N(0, w0_scale² / d_in)`` entries (only ``w0_top_singular`` uses it).
    init : str
        Init of the frozen factor (``theory.variants.INITS``).
    frozen : {"per_trial", "shared"}
        One frozen factor per trial (the paper's setting) or one shared by all trials (to
        estimate quantities conditionally on the frozen factor, docs/THEORY.md §2.5).
    ridge : float
        ``λ >= 0`` of the fits (``synthetic.linear.fit``).
    clip : float or None
        ``c > 0`` of the clipped loss ``min(ℓ, c)``; required by ``loss="clipped"``.
    n_test : int
        Size of the fresh sample that estimates the clipped test loss, per trial.
    task_seed : int
        Seed of the task's own random matrices (``W0``, ``U_Δ``, ``V_Δ``).
    """

    d_in: int = 16
    d_out: int = 16
    spectrum: str = "isotropic"
    delta_rank: int = 4
    delta_singular_values: float | tuple[float, ...] = 1.0
    alignment: float | None = None
    noise_var: float = 1.0
    w0_scale: float = 1.0
    init: str = "haar"
    frozen: str = "per_trial"
    ridge: float = 0.0
    clip: float | None = None
    n_test: int = 20_000
    task_seed: int = 0

    def __post_init__(self) -> None:
        d_in = as_int(self.d_in, "d_in", minimum=1)
        d_out = as_int(self.d_out, "d_out", minimum=1)
        # Σ (d_in, d_in), W0 and Δ (d_out, d_in) are allocated: check before the spectrum is built.
        check_memory(d_in * (d_in + 2 * d_out), "d_in", d_in, "the task's matrices")
        check_memory(d_out * d_in, "d_out", d_out, "the task's matrices")
        parse_spectrum(self.spectrum, d_in)
        k = as_rank(self.delta_rank, d_in, d_out, name="delta_rank")
        svals = self.delta_singular_values
        if isinstance(svals, tuple):
            if len(svals) != k:
                raise ValueError(
                    f"delta_singular_values has {len(svals)} entries; delta_rank = {k} needs {k}"
                )
            for i, value in enumerate(svals):
                as_real(value, f"delta_singular_values[{i}]", minimum=0.0)
        else:
            as_real(svals, "delta_singular_values", minimum=0.0)
        if self.alignment is not None:
            as_real(self.alignment, "alignment", minimum=0.0, maximum=1.0)
        as_real(self.noise_var, "noise_var", minimum=0.0)
        as_real(self.w0_scale, "w0_scale", minimum=0.0)
        check_init(self.init)
        if self.frozen not in FROZEN_MODES:
            raise ValueError(f"frozen {self.frozen!r} is not one of 'per_trial', 'shared'")
        as_real(self.ridge, "ridge", minimum=0.0)
        if self.clip is not None:
            as_real(self.clip, "clip", positive=True)
        as_int(self.n_test, "n_test", minimum=1)  # test sets are drawn in chunks: no allocation to check
        as_int(self.task_seed, "task_seed", minimum=0)

    @classmethod
    def quick(cls) -> LinearTask:
        """A classroom-sized task: d = 16, power-law spectrum, random Δ of rank 4.

        ``d_in = d_out = 16``, ``spectrum="powerlaw:1"``, ``delta_rank=4``, ``noise_var=0.25``,
        ``clip=8``: the task of docs/THEORY.md §1.1 with a decaying ``Σ`` (§1.6, "Large effective
        rank"), small enough for seconds.
        """
        return cls(
            d_in=16, d_out=16, spectrum="powerlaw:1", delta_rank=4, noise_var=0.25, clip=8.0
        )

    @classmethod
    def full(cls) -> LinearTask:
        """The reference task of the ``full`` preset: d = 64, ``Σ`` of rank 4, random Δ of rank 16.

        ``spectrum="lowrank:4"``, ``delta_singular_values=2``, ``noise_var=1``, ``clip=128``: for
        ``rank >= 4`` the setting of eq. (4) (Zhu et al., ICML 2024, Section 4.1.1;
        docs/THEORY.md §1.6), where the population-optimal ``b_only`` reaches the noise floor
        for almost every frozen ``A``.
        """
        return cls(
            d_in=64, d_out=64, spectrum="lowrank:4", delta_rank=16, delta_singular_values=2.0,
            noise_var=1.0, clip=128.0,
        )

    @classmethod
    def counterexample(cls, d: int = 64) -> LinearTask:
        r"""The counterexample of docs/THEORY.md §1.6: Δ (rank 4) on the lowest-variance directions of ``Σ``.

        ``Σ = diag(i^{−2})``; ``σ_Δ = d/2`` puts ``Tr[ΔΣΔᵀ]`` near 1 (``4 (d/2)² / d² = 1`` up to
        the spread of the four lowest eigenvalues). A random A barely sees those directions, so
        ``b_only`` loses to ``a_only``.
        """
        return cls(
            d_in=d, d_out=d, spectrum="powerlaw:2", delta_rank=4,
            delta_singular_values=d / 2.0, alignment=0.0, noise_var=0.01, clip=4.0,
        )

    # -- the task's matrices (deterministic functions of the fields) -------------------------

    @cached_property
    def sigma_eigenvalues(self) -> Array:  # (d_in,)
        """Eigenvalues of ``Σ``, descending (``Σ`` is diagonal); ``parse_spectrum`` of ``spectrum``.

        Read-only, shape ``(d_in,)``; the ``Σ`` of docs/THEORY.md §1.1.
        """
        return _readonly(parse_spectrum(self.spectrum, self.d_in))

    @cached_property
    def sigma(self) -> Array:  # (d_in, d_in)
        """The input covariance ``Σ = diag(sigma_eigenvalues)``, read-only, ``(d_in, d_in)``.

        The ``Σ`` of eq. (1) (docs/THEORY.md §1.1; Zhu et al., ICML 2024, Section 4.1).
        """
        return _readonly(np.diag(self.sigma_eigenvalues))

    @cached_property
    def w0(self) -> Array:  # (d_out, d_in)
        """The pretrained weight ``W0``, read-only, ``(d_out, d_in)``.

        I.i.d. ``N(0, w0_scale² / d_in)`` entries from ``task_seed`` (stream ``STREAM_TASK``).
        The fits see only ``y − W0 x`` (docs/THEORY.md §1.1), so ``W0`` matters only to the
        ``w0_top_singular`` init (docs/THEORY.md §0).
        """
        rng = stream_rng(self.task_seed, STREAM_TASK + 0)
        w0 = rng.standard_normal((self.d_out, self.d_in)) / np.sqrt(self.d_in)
        return _readonly(self.w0_scale * w0)

    @cached_property
    def delta(self) -> Array:  # (d_out, d_in)
        """The shift ``Δ = U_Δ diag(σ_Δ) V_Δᵀ`` (see ``alignment``), read-only, ``(d_out, d_in)``.

        ``Δ = W_t − W0``, the update the adapter must learn (docs/THEORY.md §1.1; Zhu et al.,
        ICML 2024, Section 4.1). ``U_Δ`` is Haar on ``St(d_out, k)``; ``V_Δ`` is Haar on
        ``St(d_in, k)`` (``alignment=None``) or ``k`` consecutive eigenvectors of ``Σ`` rotated by
        a Haar ``k × k`` matrix (docs/THEORY.md §1.6, "The counterexample"); all from ``task_seed``.
        """
        k = self.delta_rank
        u = haar_stiefel(self.d_out, k, stream_rng(self.task_seed, STREAM_TASK + 1))
        rng_v = stream_rng(self.task_seed, STREAM_TASK + 2)
        if self.alignment is None:
            v = haar_stiefel(self.d_in, k, rng_v)
        else:
            start = int(round((1.0 - self.alignment) * (self.d_in - k)))
            v = np.eye(self.d_in)[:, start : start + k] @ haar_stiefel(k, k, rng_v)
        svals = np.broadcast_to(np.asarray(self.delta_singular_values, dtype=np.float64), (k,))
        return _readonly((u * svals) @ v.T)


def _readonly(arr: Array) -> Array:
    arr.setflags(write=False)
    return arr


def as_linear_task(task: object) -> LinearTask:
    """Return ``task`` if it is a ``LinearTask``, else raise ``ValueError``.

    Infrastructure: the check at the door of every public function of ``synthetic.linear`` that
    takes a task, so that a wrong object is a one-line ``ValueError`` naming its type.
    """
    if not isinstance(task, LinearTask):
        raise ValueError(f"task must be a LinearTask, got {type(task).__name__}")
    return task


def check_linear_call(task: object, variant: object, rank: object) -> tuple[LinearTask, str, int | None]:
    """The (task, variant, rank) of a linear-task call, checked: a ``LinearTask``, a variant of
    ``theory.variants.VARIANTS`` and ``1 <= rank <= min(d_in, d_out)``; ``rank`` may be None for
    ``full`` (which has no rank). The linear twin of ``synthetic.mlp.task.check_mlp_call``."""
    task = as_linear_task(task)
    variant = check_variant(variant)
    if variant != "full" or rank is not None:
        rank = as_rank(rank, task.d_in, task.d_out)
    return task, variant, rank
