r"""Figure 8: b_only at rank 2r against lora at rank r, at equal trained-parameter count.

For square layers, Lemma 4.5 of Zhu et al. (ICML 2024) gives ``b_only`` at rank ``2r`` exactly
the bound of ``lora`` at rank ``r`` (both train ``2 r d`` parameters), and the paper reports
that ``b_only`` at ``2r`` often matches or beats ``lora`` at ``r`` on real tasks. Here both are
trained on the MLP classification task of ``synthetic.MLPTask`` (0-1 loss, parameters quantized
to ``q_bits``), with ``a_only`` at ``2r`` for comparison: test error, generalization gap
(Monte Carlo over training sets, ±2 s.e.) and the Lemma 4.5 bound of the quantized model,
``sqrt(2 σ² ln2 · storage_bits / n)`` with every stored bit (``q N + 32`` per trained tensor)
and ``σ = 1/2`` for the 0-1 loss in ``[0, 1]`` (Lemma 4.4, Xu & Raginsky 2017). Each bound is
checked against the measured 0-1 gap of its own arm (``bound_checks``: held when the bound is
at least the gap's lower end, mean − 2 s.e.); it is vacuous at or above 1.
"""

from __future__ import annotations

import sys

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bounds import subgaussian_sigma, xu_raginsky
from figures.cache import memo
from figures.checks import TWO_SE, bound_check, caption_sentence
from figures.output import render
from synthetic.mlp import MLPTask
from synthetic.montecarlo import measure_gap

NAME = "rank_doubling"
DESCRIPTION = "b_only at rank 2r vs lora at rank r (equal parameter count): test error, gap and bound."
ARMS = (("lora", 1), ("b_only", 2), ("a_only", 2))  # (variant, rank multiplier)


@dataclass(frozen=True)
class Config:
    """MLP classification, base ranks, samples, trials, quantization."""

    ranks: tuple[int, ...] = (1, 2, 4)
    n: int = 1024
    trials: int = 12
    q_bits: int = 8
    steps: int = 300

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Seconds-sized, for smoke tests."""
        return cls(ranks=(1, 2), n=64, trials=3, steps=5)

    @classmethod
    def full(cls) -> "Config":
        return cls(ranks=(1, 2, 4, 8), n=2048, trials=32, steps=1000)


def arm(config: Config, variant: str, rank: int, seed: int) -> dict[str, np.ndarray]:
    """Per-trial train/test 0-1 loss and storage bits of one (variant, rank)."""
    task = replace(MLPTask.quick(), steps=config.steps)
    result = measure_gap(task, variant, rank, config.n, config.trials, loss="zero_one", q_bits=config.q_bits, seed=seed)
    return {
        "train": np.array([r["train_loss"] for r in result.records]),
        "test": np.array([r["test_loss"] for r in result.records]),
        "storage_bits": np.array([r["storage_bits"] for r in result.records]),
    }


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Per arm: test error, gap (means and s.e.), the stored bits and the Lemma 4.5 bound on the
    0-1 loss, each (len(ranks),)."""
    out: dict = {"ranks": np.array(config.ranks)}
    jobs = [(v, m, r) for v, m in ARMS for r in config.ranks]
    sigma = subgaussian_sigma(0.0, 1.0)
    rows: dict[str, list[float]] = {}
    for variant, mult, r in tqdm(jobs, desc=f"{NAME}: training MLP adapters", leave=False):
        params = {"config": asdict(config), "variant": variant, "rank": mult * r, "seed": seed}
        res = memo(cache_dir, NAME, params, lambda: arm(config, variant, mult * r, seed), force=force)
        gap = res["test"] - res["train"]
        key = f"{variant}@{mult}r"
        values = {
            "test": res["test"].mean(), "test_se": res["test"].std(ddof=1) / math.sqrt(res["test"].size),
            "gap": gap.mean(), "gap_se": gap.std(ddof=1) / math.sqrt(gap.size),
            "bound": xu_raginsky(float(res["storage_bits"][0]) * math.log(2), sigma, config.n),
            "storage_bits": float(res["storage_bits"][0]),
        }
        for name, value in values.items():
            rows.setdefault(f"{key}/{name}", []).append(float(value))
    for key, values in rows.items():
        arm_key, name = key.split("/")
        out.setdefault(arm_key, {})[name] = np.array(values)
    return out


def bound_checks(config: Config, data: dict) -> list[dict]:
    """Per (arm, base rank): Lemma 4.5 against the measured 0-1 gap of that arm (mean ± 2 s.e.)."""
    checks = []
    for variant, mult in ARMS:
        d = data[f"{variant}@{mult}r"]
        for i, r in enumerate(data["ranks"]):
            half = 2 * d["gap_se"][i]
            checks.append(bound_check(
                {"variant": variant, "rank": mult * int(r), "base_rank": int(r), "n": config.n}, "Lemma 4.5",
                d["bound"][i], loss="0-1 loss of the quantized network", gap=d["gap"][i],
                gap_low=d["gap"][i] - half, gap_high=d["gap"][i] + half, gap_interval=TWO_SE,
                vacuous=d["bound"][i] >= 1.0,
            ))
    return checks


def plot(data: dict, axes=None):
    """Three panels: test error, gap (±2 s.e.) and bound, against the base rank r."""
    import matplotlib.pyplot as plt

    from figures.style import VARIANT_STYLE

    if axes is None:
        _, axes = plt.subplots(1, 3)
    x = data["ranks"]
    for variant, mult in ARMS:
        d = data[f"{variant}@{mult}r"]
        style = {k: VARIANT_STYLE[variant][k] for k in ("color", "marker")}
        label = f"{variant} at rank {mult}r" if mult > 1 else f"{variant} at rank r"
        axes[0].errorbar(x, d["test"], yerr=2 * d["test_se"], capsize=3, label=label, **style)
        axes[1].errorbar(x, d["gap"], yerr=2 * d["gap_se"], capsize=3, label=label, **style)
        axes[2].plot(x, d["bound"], label=label, **style)
    for ax, title in zip(axes, ("test 0-1 error", "generalization gap", "Lemma 4.5 bound (q·N + scale bits)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(r) for r in x])
        ax.set_xlabel("base rank r")
        ax.set_title(title)
    axes[0].legend(loc="best")
    return axes


def caption(config: Config, data: dict) -> str:
    """The setting, then the measured comparison at the largest base rank."""
    r = int(data["ranks"][-1])
    lo, bo = data["lora@1r"], data["b_only@2r"]
    return (
        f"MLP classification (32-64-64-10, adapted 64x64 layer), n = {config.n}, {config.trials} training sets per "
        f"point, {config.steps} Adam steps, parameters quantized to {config.q_bits} bits; 0-1 loss. At r = {r}: "
        f"lora at rank {r} has test error {lo['test'][-1]:.3f} ± {2 * lo['test_se'][-1]:.3f} and gap {lo['gap'][-1]:.3f}, "
        f"b_only at rank {2 * r} has {bo['test'][-1]:.3f} ± {2 * bo['test_se'][-1]:.3f} and gap {bo['gap'][-1]:.3f}; "
        f"their bounds are {lo['bound'][-1]:.3f} and {bo['bound'][-1]:.3f}. Each arm's measured 0-1 gap is checked "
        f"against its Lemma 4.5 bound (every stored bit, σ = 1/2). " + caption_sentence(bound_checks(config, data))
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for this figure."""
    return dict(ncols=3, figsize=(13, 4))


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` on the axes made with ``SUBPLOTS``."""
    plot(data, axes)


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save the figure, its data and caption.

    ``config`` overrides the ``quick``/``full`` preset (the tests use ``Config.tiny()``).
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
