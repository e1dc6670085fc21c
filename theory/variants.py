r"""The paper's vocabulary, defined once: tuning variants, initialisations, parameter counts, bit widths.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 2 and
Section 4.2 (docs/THEORY.md §0 and §2): a LoRA adapter replaces ``W0`` by ``W0 + B A`` with
``A`` (r, d_in) and ``B`` (d_out, r), and the paper compares four ways of tuning it:

- ``full``: the whole update ``M`` (d_out, d_in) is trained;
- ``lora``: both factors are trained;
- ``b_only``: ``B`` is trained, ``A`` frozen at its random initialisation;
- ``a_only``: ``A`` is trained, ``B`` frozen at a random draw.

Every package imports these names from here, and every check of them raises the same message.
"""

from __future__ import annotations

from theory.validation import as_int

#: The tuning variants, in the paper's order (Table 1 and Section 4.2: full, LoRA, B only, A only).
VARIANTS = ("full", "lora", "b_only", "a_only")
#: The factor each one-sided variant freezes (the other is trained).
FROZEN_FACTOR = {"b_only": "a", "a_only": "b"}
#: Initialisations of a random factor: Haar-orthonormal rows (the paper's), PEFT's
#: Kaiming-uniform, i.i.d. Gaussian, and the top singular vectors of ``W0`` (docs/THEORY.md §1).
INITS = ("haar", "kaiming_uniform", "gaussian", "w0_top_singular")
#: Bit widths of a quantized parameter (Lemma 4.5 counts ``q`` bits per trained parameter): a
#: symmetric grid needs a sign bit and one magnitude bit; float32 is the widest stored value.
MIN_Q_BITS, MAX_Q_BITS = 2, 32


def check_variant(variant: object, name: str = "variant") -> str:
    """Return ``variant`` if it is one of ``VARIANTS`` (docs/THEORY.md §0), else raise ``ValueError`` naming it.

    Parameters
    ----------
    variant : str, one of "full", "lora", "b_only", "a_only"; name : str, optional, the argument's name.

    Returns
    -------
    str, ``variant`` itself.
    """
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"{name} {variant!r} is not one of {', '.join(map(repr, VARIANTS))}")
    return variant


def check_init(init: object, name: str = "init") -> str:
    """Return ``init`` if it is one of ``INITS`` (docs/THEORY.md §0, "Frozen factors"), else raise ``ValueError``.

    Parameters
    ----------
    init : str, one of "haar", "kaiming_uniform", "gaussian", "w0_top_singular"; name : str, optional.

    Returns
    -------
    str, ``init`` itself.
    """
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"{name} {init!r} is not one of {', '.join(map(repr, INITS))}")
    return init


def check_q_bits(q_bits: object, name: str = "q_bits") -> int | None:
    """``q_bits`` as an int in ``[MIN_Q_BITS, MAX_Q_BITS]``; None (no quantization) passes through.

    The ``q`` bits per trained parameter of Lemma 4.5 (docs/THEORY.md §2.2 and §6); ``ValueError``
    naming ``name`` outside the range.

    Parameters
    ----------
    q_bits : int or None; name : str, optional, the argument's name.

    Returns
    -------
    int or None
    """
    if q_bits is None:
        return None
    q_bits = as_int(q_bits, name, minimum=MIN_Q_BITS, maximum=None)  # a huge value is "> 32" too
    if q_bits > MAX_Q_BITS:
        raise ValueError(f"{name} must be <= {MAX_Q_BITS}, got {q_bits}")
    return q_bits


def param_count(variant: str, rank: int, d_in: int, d_out: int) -> int:
    r"""``N``, the trained parameters of one ``(d_out, d_in)`` layer (Lemma 4.5; docs/THEORY.md §2.1).

    .. math::

        N_\mathrm{full} = d_\mathrm{in} d_\mathrm{out},\quad
        N_\mathrm{lora} = r (d_\mathrm{in} + d_\mathrm{out}),\quad
        N_\mathrm{b\_only} = r\, d_\mathrm{out},\quad
        N_\mathrm{a\_only} = r\, d_\mathrm{in}.

    A frozen factor is not counted: it is drawn independently of the training data (Section
    4.2.1). An unchecked core shared by the public functions of ``synthetic`` and ``bounds``,
    which check its arguments first (``check_variant``, ``as_rank``); ``rank`` is unused by ``full``.

    Parameters
    ----------
    variant : str, one of ``VARIANTS``; rank : int; d_in, d_out : int, the layer's dimensions.

    Returns
    -------
    int
    """
    if variant == "full":
        return d_in * d_out
    per_rank = {"lora": d_in + d_out, "b_only": d_out, "a_only": d_in}[variant]
    return rank * per_rank
