r"""Trained-parameter counts of the four tuning variants (Section 4.2.1 of Zhu et al.).

A layer ``W = W0 + B A`` with ``B`` (d_out, r) and ``A`` (r, d_in) trains

=========  ======================
variant    parameters per layer
=========  ======================
``full``   ``d_in * d_out``
``lora``   ``r * (d_in + d_out)``
``b_only`` ``r * d_out``
``a_only`` ``r * d_in``
=========  ======================

Source: Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024),
Section 4.2.1 and Lemma 4.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theory.validation import as_int
from theory.variants import VARIANTS, check_variant, param_count  # noqa: F401 - VARIANTS re-exported


def as_layers(layers: object) -> tuple[tuple[int, int], ...]:
    """Return ``layers`` as a non-empty tuple of ``(d_out, d_in)`` pairs of positive integers.

    The layer shapes of Lemma 4.5 (Zhu et al., ICML 2024, Section 4.2.1; docs/THEORY.md §2.2):
    a weight ``W`` of shape (d_out, d_in) per adapted layer.

    Parameters
    ----------
    layers : object
        A sequence (or array) of ``(d_out, d_in)`` pairs.

    Returns
    -------
    tuple of (int, int)
    """
    if isinstance(layers, np.ndarray):
        layers = layers.tolist()
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise ValueError(f"layers must be a sequence of (d_out, d_in) pairs, got {layers!r}")
    if len(layers) == 0:
        raise ValueError("layers must name at least one (d_out, d_in) layer, got an empty sequence")
    out = []
    for k, layer in enumerate(layers):
        if isinstance(layer, (str, bytes)) or not isinstance(layer, Sequence) or len(layer) != 2:
            raise ValueError(f"layers[{k}] must be a (d_out, d_in) pair, got {layer!r}")
        d_out = as_int(layer[0], f"layers[{k}] d_out", minimum=1)
        d_in = as_int(layer[1], f"layers[{k}] d_in", minimum=1)
        out.append((d_out, d_in))
    return tuple(out)


def trainable_params(variant: str, layers: Sequence[tuple[int, int]], rank: int | None) -> int:
    r"""Number ``N`` of trained parameters of a tuning variant over a set of adapted layers.

    .. math::

        N_\mathrm{full} = \sum_\ell d_\mathrm{in} d_\mathrm{out},\quad
        N_\mathrm{lora} = r \sum_\ell (d_\mathrm{in} + d_\mathrm{out}),\quad
        N_\mathrm{b\_only} = r \sum_\ell d_\mathrm{out},\quad
        N_\mathrm{a\_only} = r \sum_\ell d_\mathrm{in}.

    Frozen factors are not counted: they are drawn independently of the training data
    (Zhu et al., ICML 2024, Section 4.2.1; Lemma 4.5).

    Parameters
    ----------
    variant : {"full", "lora", "b_only", "a_only"}
    layers : sequence of (d_out, d_in)
        The adapted layers, one ``(d_out, d_in)`` pair each.
    rank : int or None
        LoRA rank ``r``, ``1 <= r <= min(d_in, d_out)`` for every layer. Unused by ``full``
        (pass ``None`` or any valid rank).

    Returns
    -------
    int
        ``N`` (a count, no unit).
    """
    variant = check_variant(variant)
    layers = as_layers(layers)
    if rank is None:
        if variant != "full":
            raise ValueError(f"rank is required for variant {variant!r}, got None")
    else:
        rank = as_int(rank, "rank", minimum=1)
        for k, (d_out, d_in) in enumerate(layers):
            if rank > min(d_in, d_out):
                raise ValueError(
                    f"rank {rank} exceeds min(d_in, d_out) = {min(d_in, d_out)} "
                    f"of layers[{k}] = (d_out={d_out}, d_in={d_in})"
                )
    return sum(param_count(variant, rank, d_in, d_out) for d_out, d_in in layers)


def trained_tensors(variant: str, layers: Sequence[tuple[int, int]]) -> int:
    r"""Number of trained tensors of a tuning variant: two per layer for ``lora`` (A and B), one otherwise.

    A quantizer whose step is chosen from the trained values stores one scale per tensor
    (``synthetic.quantize``: a float32), which Lemma 4.5's ``q N`` does not count; see
    :func:`~bounds.mi.lora_mi_nats`'s ``scale_bits``.

    Parameters
    ----------
    variant : {"full", "lora", "b_only", "a_only"}
    layers : sequence of (d_out, d_in)

    Returns
    -------
    int
        ``2 * len(layers)`` for ``lora``, ``len(layers)`` otherwise (docs/THEORY.md §2.2, §6).
    """
    variant = check_variant(variant)
    return (2 if variant == "lora" else 1) * len(as_layers(layers))
