r"""Gradient-descent mode: train the variants as LoRA is trained in practice, and compare.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), train with
Adam from LoRA's usual start: ``B = 0`` and ``A`` random (here Haar), so the adapted model
starts at ``W0``. This module trains the same objective as the closed forms of
``synthetic.linear.fit`` on the same training sets and frozen factors, in torch float64, batched over
trials (parameters carry a leading trial axis; Adam is elementwise, so trials do not
interact), and reports both.

Starts: ``b_only`` — ``B = 0``, A frozen; ``a_only`` — ``A = 0``, B frozen (the model starts
at ``W0`` too); ``lora`` — ``B = 0``, ``A`` from ``task.init`` (Haar by default; with
``frozen="per_trial"`` the same draw that ``b_only`` freezes in that trial), both trained;
``full`` — ``M = 0``. ``b_only``, ``a_only`` and ``full`` are convex least-squares problems, so
Adam with a decaying step reaches the closed form (``full``: the minimum-norm solution when
started at 0 and ``n >= d_in``; for ``n < d_in`` plain gradient descent from 0 stays in the row
space of X and still finds it, Adam need not). ``lora`` is not
convex; every local minimum of reduced-rank regression is global (Baldi and Hornik, "Neural
networks and principal component analysis", 1989), but a run of finitely many steps from
``B = 0`` can stall near the saddle points in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from synthetic.linear.engine import _frozen_factors, _population_losses, _sample_training_sets
from synthetic.linear.fit import _frozen_factor, fit_variant, update_from
from theory.variants import check_variant
from synthetic.linear.task import LinearTask, check_linear_call
from synthetic.streams import STREAM_FROZEN, stream_rng
from theory.validation import Array, as_array, as_int, as_real, check_memory


@dataclass(frozen=True)
class GDConfig:
    """Adam with a cosine-decayed step size, full batch.

    The training of docs/THEORY.md §7.1 (``gd_fit``): Adam (Kingma & Ba, "Adam: a method for
    stochastic optimization", ICLR 2015) from LoRA's start ``B = 0`` (Hu et al., ICLR 2022); the
    cosine schedule is a convention of the toolkit.

    Attributes
    ----------
    steps : int
        Adam steps.
    lr : float
        Peak step size; decays as ``lr · (1 + cos(π t / steps)) / 2``.
    betas : tuple of float
        Adam's moment decays.
    threads : int
        torch intra-op threads while training (the previous setting is restored afterwards);
        the small batched problems here run fastest, and without contention, on one.
    """

    steps: int = 3000
    lr: float = 0.02
    betas: tuple[float, float] = (0.9, 0.999)
    threads: int = 1

    def __post_init__(self) -> None:
        as_int(self.steps, "steps", minimum=1)
        as_real(self.lr, "lr", positive=True)
        if isinstance(self.betas, (str, bytes)) or not hasattr(self.betas, "__len__") or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair of decay rates in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(self.betas))
        for i, beta in enumerate(self.betas):
            as_real(beta, f"betas[{i}]", minimum=0.0, maximum=1.0 - 1e-12)
        as_int(self.threads, "threads", minimum=1)

    @classmethod
    def quick(cls) -> GDConfig:
        """Enough steps for the tiny problems of the test suite: 1,500 steps, the other defaults.

        The preset of docs/THEORY.md §7.1's gradient-descent comparison at small sizes.
        """
        return cls(steps=1500)

    @classmethod
    def full(cls) -> GDConfig:
        """A long run, for d = 64 problems: 10,000 steps, the other defaults.

        The preset of docs/THEORY.md §7.1's gradient-descent comparison at the ``full`` task's size.
        """
        return cls(steps=10_000)


def gd_fit(
    x: Array,
    y: Array,
    variant: str,
    start: dict[str, Array],
    frozen: Array | None,
    *,
    config: GDConfig,
    ridge: float = 0.0,
) -> dict[str, Array]:
    r"""Minimise ``‖Y − X Mᵀ‖²/n + λ·penalty`` with Adam from ``start``, batched over trials.

    ``M`` is ``B A`` with A (``b_only``) or B (``a_only``) frozen, ``B A`` (``lora``) or ``M``
    (``full``); the penalty is that of ``synthetic.linear.fit`` (``‖trained‖²``, ``‖BA‖²`` for lora).
    The objective of the exact fits, trained as LoRA is (docs/THEORY.md §7.1; Zhu et al., ICML
    2024, Section 4.1); ``ValueError`` if the trained tensors are not finite (diverged).

    Parameters
    ----------
    x : (T, n, d_in); y : (T, n, d_out)
    variant : {"b_only", "a_only", "lora", "full"}
    start : dict
        Starting values of the trained tensors: ``b`` (T, d_out, r) and/or ``a`` (T, r, d_in),
        or ``m`` (T, d_out, d_in).
    frozen : (T, r, d_in) for ``b_only``, (T, d_out, r) for ``a_only``, else None.
    config : GDConfig
    ridge : float, ``λ >= 0``.

    Returns
    -------
    dict
        The trained tensors, by the names of ``start``, as float64 numpy arrays.
    """
    variant = check_variant(variant)
    if not isinstance(config, GDConfig):
        raise ValueError(f"config must be a GDConfig, got {type(config).__name__}")
    ridge = as_real(ridge, "ridge", minimum=0.0)
    x_ = as_array(x, "x", (None, None, None))
    trials, n, d_in = x_.shape
    y_ = as_array(y, "y", (trials, n, None))
    d_out = y_.shape[2]
    names = {"b_only": ("b",), "a_only": ("a",), "lora": ("a", "b"), "full": ("m",)}[variant]
    if not isinstance(start, dict) or sorted(start) != sorted(names):
        raise ValueError(f"start must be a dict with the keys {names} for {variant}, got {start!r}")
    if variant in ("b_only", "a_only") and frozen is None:
        raise ValueError(f"frozen is None; {variant} needs its frozen factor")
    rank = None
    if variant == "b_only":
        frozen = as_array(frozen, "frozen", (trials, None, d_in))
        rank = frozen.shape[1]
    elif variant == "a_only":
        frozen = as_array(frozen, "frozen", (trials, d_out, None))
        rank = frozen.shape[2]
    elif variant == "lora":
        rank = as_array(start["a"], "start['a']", (trials, None, d_in)).shape[1]
    shapes = {"a": (trials, rank, d_in), "b": (trials, d_out, rank), "m": (trials, d_out, d_in)}
    start = {k: as_array(v, f"start[{k!r}]", shapes[k]) for k, v in start.items()}
    return _gd_fit(x_, y_, variant, start, frozen, config, ridge)


def _gd_fit(x: Array, y: Array, variant: str, start: dict[str, Array], frozen: Array | None,
            config: GDConfig, ridge: float) -> dict[str, Array]:
    """:func:`gd_fit` on checked arguments: Adam with a cosine schedule, all trials in one batch."""
    n = x.shape[1]
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    ft = None if variant in ("lora", "full") else torch.as_tensor(frozen)
    params = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}

    def update() -> torch.Tensor:
        if variant == "b_only":
            return params["b"] @ ft
        if variant == "a_only":
            return ft @ params["a"]
        if variant == "lora":
            return params["b"] @ params["a"]
        return params["m"]

    opt = torch.optim.Adam(list(params.values()), lr=config.lr, betas=config.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, config.steps) / config.steps))
    )
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        for _ in range(config.steps):
            opt.zero_grad()
            m = update()
            per_trial = ((yt - xt @ m.transpose(1, 2)) ** 2).sum(dim=(1, 2)) / n
            if ridge > 0:
                penalised = [m] if variant == "lora" else list(params.values())
                per_trial = per_trial + ridge * sum((p**2).sum(dim=(1, 2)) for p in penalised)
            per_trial.sum().backward()
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(previous_threads)
    trained = {k: v.detach().numpy().copy() for k, v in params.items()}
    if not all(np.all(np.isfinite(v)) for v in trained.values()):
        raise ValueError(
            f"gd_fit diverged: the trained {', '.join(trained)} are not finite with config.lr={config.lr:g}, "
            f"ridge={ridge:g} and x, y up to {np.max(np.abs(x)):.3g}, {np.max(np.abs(y)):.3g} in magnitude; "
            f"lower config.lr or scale x and y down"
        )
    return trained


def gd_vs_closed_form(
    task: LinearTask,
    variant: str,
    rank: int | None,
    n: int,
    trials: int,
    *,
    seed: int,
    config: GDConfig,
) -> dict[str, np.ndarray]:
    r"""Train ``variant`` by Adam and in closed form on the same data; compare the two.

    Training sets and frozen factors are those of ``synthetic.linear.linear_trial_losses`` with
    the same ``seed``; ``lora`` starts from ``B = 0`` and an ``A`` drawn from ``task.init`` (Haar
    by default) on the trial's per-trial frozen-factor stream: the ``A`` that ``b_only`` freezes
    in that trial when ``task.frozen == "per_trial"`` (not the shared draw of ``"shared"``).
    Every other variant starts at 0. Source: docs/THEORY.md §7.1 (reduced-rank regression has no
    spurious local minima, Baldi & Hornik 1989, but finite runs can stall at saddles).

    Parameters
    ----------
    task : LinearTask; variant : one of ``VARIANTS``.
    rank : int, ``1 <= rank <= min(d_in, d_out)``; may be None for ``full``.
    n : int ``>= 1``; trials : int ``>= 1``; seed : int ``>= 0``; config : GDConfig.

    Returns
    -------
    dict of (trials,) arrays
        ``gd_train_loss``, ``gd_test_loss``, ``cf_train_loss``, ``cf_test_loss`` (squared loss,
        population test loss eq. (1)), ``relative_distance`` ``‖M_gd − M_cf‖_F / ‖M_cf‖_F``
        (the absolute distance where ``M_cf = 0``), and the norms ``gd_norm``, ``cf_norm``
        (``‖M‖_F``).
    """
    task, variant, rank = check_linear_call(task, variant, rank)
    n = as_int(n, "n", minimum=1)
    trials = as_int(trials, "trials", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    if not isinstance(config, GDConfig):
        raise ValueError(f"config must be a GDConfig, got {type(config).__name__}")
    check_memory(trials * n * (task.d_in + task.d_out), "n", n, f"{trials} training sets of n samples")
    ids = np.arange(trials)
    x, y = _sample_training_sets(task, n, ids, seed)
    frozen = _frozen_factors(task, variant, rank, ids, seed)
    closed = fit_variant(variant, rank, x, y, frozen, ridge=task.ridge)
    start = {k: np.zeros_like(v) for k, v in closed.items()}
    if variant == "lora":
        start["a"] = np.stack([
            _frozen_factor(task.init, "a", task.d_in, task.d_out, rank, stream_rng(seed, STREAM_FROZEN, int(t)), task.w0)
            for t in ids
        ])
    trained = _gd_fit(x, y, variant, start, frozen, config, task.ridge)
    m_cf = update_from(variant, closed, frozen)
    m_gd = update_from(variant, trained, frozen)

    def train_loss(m: Array) -> Array:
        return np.sum((y - x @ np.swapaxes(m, 1, 2)) ** 2, axis=(1, 2)) / n

    norm = np.linalg.norm(m_cf, axis=(1, 2))
    dist = np.linalg.norm(m_gd - m_cf, axis=(1, 2))
    return {
        "gd_train_loss": train_loss(m_gd),
        "gd_test_loss": _population_losses(task, m_gd),
        "cf_train_loss": train_loss(m_cf),
        "cf_test_loss": _population_losses(task, m_cf),
        "relative_distance": np.divide(dist, norm, out=dist.copy(), where=norm > 0),
        "gd_norm": np.linalg.norm(m_gd, axis=(1, 2)),
        "cf_norm": norm,
    }
