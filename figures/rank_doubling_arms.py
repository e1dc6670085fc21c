r"""The arms of Figure 8 (``figures.rank_doubling``), one (regime, variant, rank) each: not a figure.

An arm trains one tuning variant at one rank on one ``MLPTask`` regime over ``trials`` training
sets (``synthetic.measure_gap``, 0-1 loss, parameters quantized to ``q_bits``), beside the
Lemma 4.5 bound of the quantized model (Zhu et al., ICML 2024; docs/THEORY.md §2.2) and the
predictor ``f(Σ, 2r)``, ``f(G, 2r)`` of docs/THEORY.md §1b.5. Every function takes the figure's
``Config`` (``figures.rank_doubling.Config``) as ``config``.
"""

from __future__ import annotations

import math

import numpy as np

from bounds import lora_mi_bound, subgaussian_sigma
from synthetic import layer_geometry, measure_advantage, predict_asymmetry
from synthetic.mlp.engine import MLPTask
from synthetic.montecarlo import measure_gap
from theory import effective_rank

#: Bits stored per trained tensor besides its parameters: the float32 step of ``synthetic.quantize``.
SCALE_BITS = 32
ARMS = (("lora", 1), ("b_only", 2), ("a_only", 2))  # (variant, rank multiplier)
#: Regime (an ``MLPTask`` preset) -> how its adapted layer is read.
REGIMES = {
    "paper_regime": "wide read-out: 64 classes, two layers above the layer",
    "narrow_readout": "narrow read-out: a 10-class head right after the layer's tanh",
}
#: The control of the narrow read-out's reversal: ``MLPTask.narrow_readout`` with only its read-out
#: changed (the adapted layer, its inputs and its shift stay), by name -> ``MLPTask`` overrides.
READOUTS = {
    "10 classes": {},
    "64 classes": {"widths": (32, 64, 64, 64)},
    "64 regression outputs": {"widths": (32, 64, 64, 64), "kind": "regression"},
}


def regime_task(config, regime: str) -> MLPTask:
    """The ``MLPTask`` preset named ``regime`` with the configured number of Adam steps (docs/THEORY.md §1b.5, §5).

    Parameters
    ----------
    config : Config; regime : str, a key of ``REGIMES``.

    Returns
    -------
    MLPTask
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {tuple(REGIMES)}, got {regime!r}")
    return getattr(MLPTask, regime)(steps=config.steps)


def setting(task: MLPTask) -> str:
    """The architecture, adapted layer, inputs and shift of a one-adapted-layer task, in words (docs/THEORY.md §5).

    Parameters
    ----------
    task : MLPTask

    Returns
    -------
    str
    """
    (layer,) = task.adapted_layers
    d_out, d_in = task.layer_shapes[layer]
    inputs = "isotropic network inputs" if task.input_dist == "isotropic" else \
        f"network inputs with Σ_j ∝ j^-{task.input_dist.split(':', 1)[1]}"
    if layer > 0:
        inputs += f" (the adapted layer reads the {task.activation} features of layer {layer - 1})"
    return (f"{'-'.join(map(str, task.widths))} {task.activation} classifier, adapted and perturbed layer {layer} "
            f"({d_out}x{d_in}), {inputs}, shift of rank {task.perturbation_rank}")


def arm(config, regime: str, variant: str, rank: int, seed: int) -> dict[str, np.ndarray]:
    """Per-trial train/test 0-1 loss and storage bits of one (regime, variant, rank).

    ``synthetic.measure_gap`` with the 0-1 loss and ``q_bits`` quantization (docs/THEORY.md §7.4).

    Parameters
    ----------
    config : Config; regime : str; variant : str; rank : int; seed : int.

    Returns
    -------
    dict of ndarray, ``train``, ``test`` and ``storage_bits``, each (trials,).
    """
    task = regime_task(config, regime)
    result = measure_gap(task, variant, rank, config.n, config.trials, loss="zero_one", q_bits=config.q_bits, seed=seed)
    return {
        "train": np.array([r["train_loss"] for r in result.records]),
        "test": np.array([r["test_loss"] for r in result.records]),
        "storage_bits": np.array([r["storage_bits"] for r in result.records]),
    }


def prediction(config, regime: str, seed: int) -> dict[str, np.ndarray]:
    """``f(Σ, 2r)`` and ``f(G, 2r)`` (docs/THEORY.md §1b, eq. (5)) at the largest base rank ``r``.

    Parameters
    ----------
    config : Config; regime : str; seed : int.

    Returns
    -------
    dict of 0-d ndarray, ``rank``, ``b_only_fraction``, ``b_only_stderr``, ``a_only_fraction``, ``a_only_stderr``.
    """
    rank = 2 * max(config.ranks)
    p = predict_asymmetry(regime_task(config, regime), rank, samples=config.predictor_samples,
                          draws=config.predictor_draws, seed=seed)
    return {"rank": np.array(rank), "b_only_fraction": np.array(p.b_only_fraction),
            "b_only_stderr": np.array(p.b_only_stderr), "a_only_fraction": np.array(p.a_only_fraction),
            "a_only_stderr": np.array(p.a_only_stderr)}


def summarize(res: dict[str, np.ndarray], bound: float) -> dict:
    """Means and standard errors of one arm's test error and gap, its stored bits, its ``bound`` and the
    per-trial test errors (``test_trials``; trial ``t`` of every arm has the same training set).

    Standard errors ``std / sqrt(trials)`` over training sets (docs/THEORY.md §7.4).

    Parameters
    ----------
    res : dict of ndarray, ``arm``'s output; bound : float, its Lemma 4.5 bound.

    Returns
    -------
    dict
    """
    gap, test = res["test"] - res["train"], res["test"]
    return {
        "test": test.mean(), "test_se": test.std(ddof=1) / math.sqrt(test.size),
        "gap": gap.mean(), "gap_se": gap.std(ddof=1) / math.sqrt(gap.size),
        "bound": bound, "storage_bits": float(res["storage_bits"][0]), "test_trials": res["test"],
    }


def lemma45(config, regime: str, variant: str, rank: int) -> float:
    """Lemma 4.5 of the quantized arm on the 0-1 loss (σ = 1/2): ``bounds.lora_mi_bound`` counting the
    float32 step stored per trained tensor besides the ``q N`` bits (``scale_bits=32``; docs/THEORY.md §2.2).

    Parameters
    ----------
    config : Config; regime : str; variant : str; rank : int.

    Returns
    -------
    float, the bound in 0-1 loss units.
    """
    task = regime_task(config, regime)
    layers = [task.layer_shapes[l] for l in task.adapted_layers]
    return lora_mi_bound(variant, layers, rank, config.q_bits, subgaussian_sigma(0.0, 1.0), config.n,
                         scale_bits=SCALE_BITS)


def readout_control(config, readout: str, seed: int) -> dict[str, np.ndarray]:
    """One read-out of the control: the rule's fractions and the measured advantage at ``control_rank``.

    ``MLPTask.narrow_readout`` with the overrides ``READOUTS[readout]``: ``f(Σ, r)``, ``f(G, r)``
    (``synthetic.predict_asymmetry``, docs/THEORY.md §1b.5), the measured advantage
    ``(L_a_only − L_b_only) / (L_pretrained − L_full)`` of ``synthetic.measure_advantage`` (§1b.6),
    and the effective rank ``(Tr Σ)² / Tr Σ²`` of the adapted layer's input second moment ``Σ``
    (``synthetic.layer_geometry``), which widening the read-out leaves as it is.

    Parameters
    ----------
    config : Config; readout : str, a key of ``READOUTS``; seed : int.

    Returns
    -------
    dict of 0-d ndarray, ``b_only_fraction``, ``a_only_fraction``, ``predicted``, ``predicted_se``,
    ``measured``, ``measured_se``, ``input_erank``, ``width``.
    """
    task = MLPTask.narrow_readout(steps=config.steps, **READOUTS[readout])
    (layer,) = task.adapted_layers
    pred = predict_asymmetry(task, config.control_rank, samples=config.predictor_samples,
                             draws=config.predictor_draws, seed=seed)
    meas = measure_advantage(task, config.control_rank, config.control_n, config.control_trials, seed=seed)
    sigma, _ = layer_geometry(task, layer, samples=config.predictor_samples, seed=seed)
    return {"b_only_fraction": np.array(pred.b_only_fraction), "a_only_fraction": np.array(pred.a_only_fraction),
            "predicted": np.array(pred.advantage), "predicted_se": np.array(pred.advantage_stderr),
            "measured": np.array(meas.advantage), "measured_se": np.array(meas.advantage_stderr),
            "input_erank": np.array(effective_rank(sigma)), "width": np.array(task.widths[layer])}
