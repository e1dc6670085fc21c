r"""What figures 4 and 5 (``bounds_vs_n_linear``, ``bounds_vs_n_mlp``) share: the computation of
each grid point and the plotting and caption helpers. Not a figure (no ``NAME``, no ``make``; not
in ``figures.registry.FIGURES``): the two figure modules import it, and neither imports the other.

Each grid point ``(variant, n)`` of those figures pairs three bounds with the measured gap of the
loss and algorithm each is about (docs/THEORY.md §2; Zhu et al., "Asymmetry in Low-Rank Adapters
of Foundation Models", ICML 2024, Section 4.2):

* ``channel_point``: per-trial losses of ``W`` and of ``W + N`` (``synthetic.channel``), the
  storage bits of Lemma 4.5 (docs/THEORY.md §2.2) and the Gaussian-channel MI
  ``I(W + N; S) <= ½ log det(I + Cov(W)/τ²)`` (``bounds.gaussian_channel_mi``, §2.5);
* ``supersample_point``: the supersample gap (``bounds.supersample_gap``) and the CMI bounds of
  ``CMI_BOUNDS`` with their estimator floors (``bounds.cmi.selector_blind_floor``, §2.4) on the
  arrays of one ``synthetic.Supersample``;
* ``assemble``: one variant's arrays over ``n``, with the Xu–Raginsky map ``sqrt(2 σ² I / n)``
  (Lemma 4.4, §2.1) applied to the bits and the channel MI, and the vacuous, resolved and
  violated flags (``figures.checks``, §2.7).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

import bounds
from bounds.cmi import selector_blind_floor
from figures.parallel import Unit
from figures.checks import BOOTSTRAP, T_INTERVAL, array_checks, caption_sentence, resolved_flags, warned
from synthetic.channel import perturbed_trial_losses
from synthetic.montecarlo import mean_interval
from synthetic.supersample import Supersample
from theory.variants import VARIANTS

#: The CMI bounds of ``bounds.cmi``, by the key they get in the data.
CMI_BOUNDS = {"ld_cmi": bounds.ld_cmi_bound, "ecmi": bounds.ecmi_bound, "binary_kl": bounds.binary_kl_bound,
              "fast_rate": bounds.fast_rate_bound}
#: Pairs (bound, the measured gap it is about) checked for violations: bound high < gap low.
PAIRS = (("lemma45", "gap"), ("channel", "perturbed_gap"), *((k, "cmi_gap") for k in CMI_BOUNDS))
GAP_INTERVAL = {"gap": T_INTERVAL, "perturbed_gap": T_INTERVAL, "cmi_gap": BOOTSTRAP}  #: the interval of each gap
SIGMA = 0.5  #: sub-Gaussian parameter of a loss in [0, 1] (the clipped loss in units of c, or the 0-1 loss)
#: How the CMI bounds estimate their MI: one plug-in from the pairs of all evaluated points,
#: without the Miller–Madow correction (biased up, never an exact 0 with a collapsed interval).
CMI_ESTIMATOR = {"pool_points": True, "correction": "none"}


def grid_units(name: str, config, seed: int, channel_unit, cmi_unit) -> list[Unit]:
    """Per (variant, n) of ``config.ns``: a unit of ``channel_unit`` and one of ``cmi_unit``, each
    called as ``(config, variant, n, seed)`` (figures 4 and 5's cache entries; ``figures.parallel``)."""
    out = []
    for variant in VARIANTS:
        for n in config.ns:
            params = {"config": asdict(config), "variant": variant, "n": n, "seed": seed}
            out += [Unit(f"{name}-channel", params, channel_unit, (config, variant, n, seed)),
                    Unit(f"{name}-cmi", params, cmi_unit, (config, variant, n, seed))]
    return out


def point_rng(seed: int, *key: int) -> np.random.Generator:
    """The bootstrap generator of one grid point: ``default_rng(SeedSequence([seed, *key]))``.

    Its own stream per grid point and role, so a cached point does not shift another's draws
    (docs/THEORY.md §2.6).

    Parameters
    ----------
    seed : int, the figure's seed; *key : int, the point and role, e.g. ``(variant index, n, 0)``.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def channel_point(
    task, variant: str, rank: int, n: int, trials: int, *, tau: float, loss: str, scale: float,
    q_bits: int, n_boot: int, seed: int, rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    r"""The Lemma 4.5 and Gaussian-channel half of one grid point.

    Runs ``synthetic.channel.perturbed_trial_losses`` (the trained ``W`` of each trial, and ``W + N``
    with ``N ~ N(0, τ² I)``) and estimates ``I(W + N; S) <= ½ log det(I + Cov(W)/τ²)`` across the
    trials with ``bounds.gaussian_channel_mi`` (docs/THEORY.md §2.5) when ``trials > p``, the
    number of trained parameters; otherwise the MI is NaN.

    Parameters
    ----------
    task, variant, rank, n, trials, tau, loss, q_bits, seed
        As in ``perturbed_trial_losses`` (``loss`` is ``"clipped"`` or ``"zero_one"``).
    scale : float
        Losses are divided by it (the clip ``c``, or 1).
    n_boot : int
        Bootstrap replicates of the MI.
    rng : numpy.random.Generator
        Source of the MI's bootstrap (``point_rng``).

    Returns
    -------
    dict of ndarray
        ``train``/``test`` and ``train_perturbed``/``test_perturbed`` (trials,) per-trial losses in
        units of ``scale``; ``storage_bits`` (Lemma 4.5's ``q N + 32`` per tensor), ``params`` ``p``;
        ``mi_nats`` (value, low, high) in nats; ``channel_may_be_low`` 1.0 when the estimate warned
        it may lie below the truth (``bounds.EstimateMayBeLowWarning``: too few trials for its
        interval to cover), else 0.0.
    """
    out = perturbed_trial_losses(task, variant, rank, n, trials, tau=tau, loss=loss, q_bits=q_bits, seed=seed)
    p = out["params"].shape[1]
    mi = np.full(3, np.nan)
    may_be_low = False
    if trials > p:
        est, may_be_low = warned(bounds.EstimateMayBeLowWarning,
                                 lambda: bounds.gaussian_channel_mi(out["params"], tau, rng, n_boot=n_boot))
        mi = np.array([est.value, est.low, est.high])
    return {
        "train": out["train_loss_unperturbed"] / scale, "test": out["test_loss_unperturbed"] / scale,
        "train_perturbed": out["train_loss"] / scale, "test_perturbed": out["test_loss"] / scale,
        "storage_bits": np.array(float(out["storage_bits"][0])), "params": np.array(float(p)), "mi_nats": mi,
        "channel_may_be_low": np.array(float(may_be_low)),
    }


def supersample_point(ss: Supersample, n_boot: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The CMI half of one grid point: the measured gap and every CMI bound of one supersample.

    The gap is ``bounds.supersample_gap``, the mean of test minus training loss over all runs
    (Steinke & Zakynthinou 2020); each bound of ``CMI_BOUNDS`` is estimated with ``CMI_ESTIMATOR``
    and read beside its estimator's floor, the 95th percentile of the same estimate for selectors
    redrawn independently of the losses (``bounds.cmi.selector_blind_floor``; docs/THEORY.md §2.4).

    Parameters
    ----------
    ss : synthetic.Supersample
        The recorded losses and selectors.
    n_boot : int
        Bootstrap replicates of every interval.
    rng : numpy.random.Generator
        Source of the bootstraps and the null tables, drawn in this order: gap, then per bound
        its estimate and its floor.

    Returns
    -------
    dict of ndarray
        ``cmi_gap`` and each bound key: (value, low, high) in loss units; ``<key>_vacuous`` 1.0 when
        the bound is at the trivial level ``1 - R^``; ``<key>_floor`` the floor in loss units.
    """
    gap = bounds.supersample_gap(ss.losses, ss.selectors, rng, n_boot=n_boot)
    out = {"cmi_gap": np.array([gap.value, gap.low, gap.high])}
    for key, bound in CMI_BOUNDS.items():
        res = bound(ss.losses, ss.selectors, rng, n_boot=n_boot, **CMI_ESTIMATOR)
        out[key] = np.array([res.value, res.low, res.high])
        out[f"{key}_vacuous"] = np.array(float(res.vacuous))
        floor = selector_blind_floor(ss.losses, ss.selectors, rng, bound=bound, **CMI_ESTIMATOR)  # 95th percentile
        out[f"{key}_floor"] = np.array(floor)
    return out


def assemble(ns: tuple[int, ...], channel: list[dict], cmi: list[dict]) -> dict[str, np.ndarray]:
    r"""One variant's arrays over ``ns``: each gap and bound with its low/high, the CMI floors, and flags.

    Gaps: the mean test minus training loss of ``W`` (``gap``) and of ``W + N``
    (``perturbed_gap``) with 95 % Student-t intervals (``synthetic.montecarlo.mean_interval``), and
    the supersample gap (``cmi_gap``). Bounds: Lemma 4.5 ``sqrt(2 σ² · storage_bits · ln 2 / n)``
    and the channel ``sqrt(2 σ² I(W + N; S) / n)`` through the Xu–Raginsky map
    (``bounds.xu_raginsky``; Lemma 4.4, docs/THEORY.md §2.1–§2.2, §2.5) with ``σ = SIGMA``, and the
    CMI bounds as estimated. Flags (docs/THEORY.md §2.7): ``<bound>_vacuous`` (at or above 1, or as
    the CMI estimate says), ``<bound>_resolved`` (``figures.checks.resolved_flags``; a channel
    estimate that may be low is unresolved) and ``<bound>_violated`` (bound high < gap low, per
    ``PAIRS``).

    Parameters
    ----------
    ns : tuple of int, the training-set sizes.
    channel, cmi : list of dict, ``channel_point`` and ``supersample_point`` per ``n``.

    Returns
    -------
    dict of ndarray
        (len(ns),) arrays by key.
    """
    rows: dict[str, list[float]] = {}

    def put(key: str, triple) -> None:
        for suffix, value in zip(("", "_low", "_high"), triple):
            rows.setdefault(key + suffix, []).append(float(value))

    for n, ch, ss in zip(ns, channel, cmi):
        put("gap", np.take(mean_interval(ch["test"] - ch["train"]), [0, 2, 3]))  # mean, 95 % t interval
        put("perturbed_gap", np.take(mean_interval(ch["test_perturbed"] - ch["train_perturbed"]), [0, 2, 3]))
        lemma = bounds.xu_raginsky(float(ch["storage_bits"]) * math.log(2.0), SIGMA, n)
        put("lemma45", (lemma, lemma, lemma))
        mi = ch["mi_nats"]
        put("channel", [bounds.xu_raginsky(m, SIGMA, n) if np.isfinite(m) else np.nan for m in mi])
        put("channel_mi_nats", mi)
        for key in ("test", "test_perturbed"):
            rows.setdefault(f"{key}_loss", []).append(float(ch[key].mean()))
        for key in ("params", "storage_bits", "channel_may_be_low"):
            rows.setdefault(key, []).append(float(ch[key]))
        for key in ("cmi_gap", *CMI_BOUNDS):
            put(key, ss[key])
        for key in CMI_BOUNDS:
            for flag in ("vacuous", "floor"):
                rows.setdefault(f"{key}_{flag}", []).append(float(ss[f"{key}_{flag}"]))
    out = {k: np.array(v) for k, v in rows.items()}
    for key in ("lemma45", "channel"):
        out[f"{key}_vacuous"] = (out[key] >= 1.0).astype(float)
    for k in ("channel", *CMI_BOUNDS):
        out[f"{k}_resolved"] = resolved_flags(out[k], out[f"{k}_low"], out[f"{k}_high"], out.get(f"{k}_floor"))
    out["channel_resolved"] = out["channel_resolved"] * (1.0 - out["channel_may_be_low"])  # may be low: unresolved
    for bound, gap in PAIRS:
        out[f"{bound}_violated"] = (out[f"{bound}_high"] < out[f"{gap}_low"]).astype(float)
    return out



# --- plotting and captions ------------------------------------------------------------------

CMI_LABEL = {"ld_cmi": "ld-CMI", "ecmi": "e-CMI", "binary_kl": "binary-kl CMI", "fast_rate": "fast-rate CMI"}


BOUND_NAME = {"lemma45": "Lemma 4.5", "channel": "Gaussian channel", **CMI_LABEL}


def pair_checks(data: dict, losses: dict[str, str]) -> list[dict]:
    """A record per (variant, n, bound in ``PAIRS``) against its gap, whose loss ``losses`` names.

    Each record is ``figures.checks.bound_check``'s: the bound held when ``bound_high >= gap_low``
    (docs/THEORY.md §2.7).

    Parameters
    ----------
    data : dict
        ``compute``'s output.
    losses : dict of str
        The loss of each gap key (``gap``, ``perturbed_gap``, ``cmi_gap``), as the records name it.

    Returns
    -------
    list of dict
        ``figures.checks.array_checks``' records.
    """
    return array_checks(data, VARIANTS, PAIRS, BOUND_NAME, losses, GAP_INTERVAL)


def summary(data: dict, checks: list[dict]) -> str:
    """The caption's findings: at the largest n, per variant, each gap beside its bound.

    Per variant the gap of the quantized model beside Lemma 4.5, that of ``W + N`` beside the
    channel, and the supersample gap beside the tightest CMI bound, unresolved estimates marked
    (docs/THEORY.md §2.7); then where the channel estimate may be low, the largest increase of test
    loss the channel caused, the range of the ld-CMI estimator's floor (§2.4), and
    ``figures.checks.caption_sentence`` of ``checks``.

    Parameters
    ----------
    data : dict, ``compute``'s output; checks : list of dict, the figure's ``bound_checks``.

    Returns
    -------
    str
    """
    i = -1

    def value(d: dict, key: str) -> str:
        return f"{d[key][i]:.2g}" + ("" if d[f"{key}_resolved"][i] > 0 else " (unresolved)")

    parts = []
    for v in VARIANTS:
        d = data[v]
        cmi = min(CMI_BOUNDS, key=lambda k: d[k][i])
        channel = value(d, "channel") if np.isfinite(d["channel"][i]) else "not estimated (trials <= p)"
        parts.append(
            f"{v} {d['gap'][i]:.2g} vs Lemma 4.5 {d['lemma45'][i]:.2g}, W + N {d['perturbed_gap'][i]:.2g} vs "
            f"channel {channel}, supersample {d['cmi_gap'][i]:.2g} vs {CMI_LABEL[cmi]} {value(d, cmi)}"
        )
    cost = max((data[v]["test_perturbed_loss"] - data[v]["test_loss"]).max() for v in VARIANTS)
    low = [f"{v} n = {int(n)}" for v in VARIANTS for n, flag in zip(data["n"], data[v]["channel_may_be_low"]) if flag]
    if low:
        parts.append("the channel estimate may be low (too few trials for its interval to cover; counted as "
                     "unresolved) at " + ", ".join(low))
    floors = sorted({f"{data[v]['ld_cmi_floor'][i]:.2g}" for v in VARIANTS}, key=float)
    return (
        f"At n = {int(data['n'][i])} the measured gaps and bounds are: " + "; ".join(parts)
        + f"; the channel raised the test loss by at most {cost:.2g}; the ld-CMI estimator's floor there (its "
        f"95th percentile for selectors redrawn independently of the losses, whose CMI is 0) is "
        f"{'-'.join(floors[::max(len(floors) - 1, 1)])}; hollow markers are estimates not above their floor or "
        "smaller than their interval's width. " + caption_sentence(checks)
    )

