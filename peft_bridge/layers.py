r"""The LoRA modules of a PEFT model: their shapes, and freezing one factor as the paper does.

PEFT (``peft.LoraConfig`` / ``peft.get_peft_model``) adapts a linear layer ``W0`` as

.. math:: z = W_0 h + s\, B A h, \qquad A \in \mathbb R^{r \times d_{in}} \text{ (lora\_A)},\quad
          B \in \mathbb R^{d_{out} \times r} \text{ (lora\_B)},\quad s = \alpha / r

(``s = α/√r`` with ``use_rslora``; PEFT's ``LoraLayer.scaling``). Its default init is
``A ~ U(−1/√d_in, 1/√d_in)`` entrywise (``kaiming_uniform_(a=√5)``) and ``B = 0``, both trained:
the ``lora`` variant. :func:`freeze_factor` turns it into ``b_only`` or ``a_only`` (Zhu et al.,
"Asymmetry in Low-Rank Adapters of Foundation Models", ICML 2024, Section 4; docs/THEORY.md §0).

A *LoRA module* is a ``peft.tuners.lora.LoraLayer`` whose factors for the adapter are
``nn.Linear`` (PEFT's LoRA on ``nn.Linear`` and on transformers' ``Conv1D``). Its name is its
``named_modules`` name without PEFT's wrapper prefix ``base_model.model.``, the name it has in a
saved adapter (:func:`peft_bridge.load_adapter`). PEFT is imported only when a model is inspected.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from theory.random import haar_stiefel
from theory.validation import as_int

#: Which factor to freeze, and the tuning variant that results (docs/THEORY.md §0).
FROZEN_VARIANT = {"A": "b_only", "B": "a_only"}
#: The inits of a frozen factor: Haar on the Stiefel manifold (the paper's).
INITS = ("haar",)
#: The prefix PEFT's ``PeftModel`` puts before the wrapped model's module names.
PEFT_PREFIX = "base_model.model."


def module_name(name: str) -> str:
    """``name`` (of ``named_modules`` or a saved tensor) without PEFT's ``base_model.model.`` prefix.

    PEFT's naming: ``peft.PeftModel`` holds the wrapped model as
    ``base_model.model``, so its module names, and the tensor keys that
    ``PeftModel.save_pretrained`` writes, start with ``PEFT_PREFIX``; a model adapted with
    ``peft.inject_adapter_in_model`` has no prefix, and its names pass unchanged. The result is
    the name under which :func:`lora_modules`, :func:`peft_bridge.load_adapter` and the
    similarity tables list a module.

    Parameters
    ----------
    name : str
        A module name or a saved tensor's key.

    Returns
    -------
    str
        ``name`` with one leading ``"base_model.model."`` removed, if it had one.
    """
    return name[len(PEFT_PREFIX):] if name.startswith(PEFT_PREFIX) else name


def lora_modules(model: nn.Module, adapter: str = "default") -> dict[str, nn.Module]:
    """The LoRA modules of ``model`` for ``adapter``, by name, in module order.

    A LoRA module is an instance of PEFT's ``peft.tuners.lora.LoraLayer`` whose
    ``lora_A[adapter]`` and ``lora_B[adapter]`` are ``nn.Linear``, so that the module adds
    ``s B A h`` to its base layer's output (the update of Hu et al., "LoRA: Low-Rank Adaptation
    of Large Language Models", ICLR 2022; the ``W0 + BA`` of Zhu et al., ICML 2024;
    docs/THEORY.md §0).
    Modules are listed in ``model.named_modules()`` order, named by :func:`module_name`.

    Parameters
    ----------
    model : torch.nn.Module holding PEFT LoRA layers (a ``peft.PeftModel``, or a model that
        ``peft.inject_adapter_in_model`` adapted).
    adapter : str, the adapter's name (PEFT's default: ``"default"``).

    Returns
    -------
    dict {name: LoraLayer}; ``ValueError`` when there is none, when a LoRA layer lacks
    ``adapter``, or adapts something other than a linear map (embeddings, convolutions), or
    carries DoRA magnitudes or a LoRA bias (then ``B A`` is not the whole update).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module with PEFT LoRA layers, got {type(model).__name__}")
    if not isinstance(adapter, str):
        raise ValueError(f"adapter must be the name of a LoRA adapter (a str), got {adapter!r}")
    from peft.tuners.lora import LoraLayer

    found = {}
    for name, module in model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        name = module_name(name)
        if adapter not in module.lora_A:
            raise ValueError(f"adapter {adapter!r} is not on LoRA module {name!r} (it has {sorted(module.lora_A)})")
        a, b = module.lora_A[adapter], module.lora_B[adapter]
        if not (isinstance(a, nn.Linear) and isinstance(b, nn.Linear)):
            raise ValueError(f"LoRA module {name!r} adapts a {type(module.get_base_layer()).__name__}; "
                             f"only LoRA on linear layers is supported")
        if b.bias is not None or adapter in getattr(module, "lora_magnitude_vector", {}):
            raise ValueError(f"LoRA module {name!r} has a LoRA bias or DoRA magnitudes: its update is not "
                             f"s B A, which the paper's variants assume (use lora_bias=False, use_dora=False)")
        found[name] = module
    if not found:
        raise ValueError(f"model ({type(model).__name__}) has no LoRA modules: wrap it with "
                         f"peft.get_peft_model(model, peft.LoraConfig(...)) first")
    return found


def layer_shapes(model: nn.Module, adapter: str = "default") -> list[tuple[int, int]]:
    r"""``[(d_out, d_in), …]`` of the adapted layers of ``model``, in module order.

    The layers' shapes as :func:`bounds.trainable_params` and :func:`bounds.lora_mi_bound` take
    them (Lemma 4.5 of Zhu et al., ICML 2024): ``d_in`` from ``lora_A`` (r, d_in) and ``d_out``
    from ``lora_B`` (d_out, r).

    Parameters
    ----------
    model : torch.nn.Module with PEFT LoRA layers; adapter : str.

    Returns
    -------
    list of (d_out, d_in) pairs, one per LoRA module of :func:`lora_modules`.
    """
    return [(m.lora_B[adapter].out_features, m.lora_A[adapter].in_features)
            for m in lora_modules(model, adapter).values()]


def trainable_lora_params(model: nn.Module, adapter: str = "default") -> int:
    r"""Number of entries of the LoRA factors of ``adapter`` that require a gradient.

    The sum, over the LoRA modules of :func:`lora_modules`, of ``numel`` of every parameter of
    ``lora_A[adapter]`` and ``lora_B[adapter]`` with ``requires_grad``. It equals the count ``N``
    of Lemma 4.5 and Section 4.2.1 of Zhu et al., ICML 2024 (docs/THEORY.md §0 and §2.2),
    ``bounds.trainable_params(variant, layer_shapes(model), rank)``, for ``lora`` under PEFT's
    default (both factors trainable) and for ``b_only`` / ``a_only`` after :func:`freeze_factor`
    (tested):

    .. math:: N_{b\_only} = r \sum_\ell d_{out,\ell}, \qquad N_{a\_only} = r \sum_\ell d_{in,\ell},
              \qquad N_{lora} = r \sum_\ell (d_{in,\ell} + d_{out,\ell}).

    Other trainable parameters of the model (PEFT's ``modules_to_save``, a classifier head) are
    not counted.

    Parameters
    ----------
    model : torch.nn.Module with PEFT LoRA layers (:func:`lora_modules`).
    adapter : str, the adapter's name.

    Returns
    -------
    int
        The number of trainable LoRA-factor entries.
    """
    total = 0
    for module in lora_modules(model, adapter).values():
        for factor in (module.lora_A[adapter], module.lora_B[adapter]):
            total += sum(p.numel() for p in factor.parameters() if p.requires_grad)
    return total


def freeze_factor(model: nn.Module, side: str, *, init: str = "haar", seed: int,
                  adapter: str = "default") -> nn.Module:
    r"""Freeze one LoRA factor of every LoRA module at a Haar draw; zero and train the other.

    ``side="A"`` gives ``b_only`` (Zhu et al., ICML 2024, Section 4: freeze ``A = Qᵀ``, train
    ``B``): ``lora_A = Qᵀ`` with ``Q`` Haar on ``St(d_in, r)`` (orthonormal rows), frozen;
    ``lora_B = 0``, trained. ``side="B"`` gives ``a_only``: ``lora_B = U`` with ``U`` Haar on
    ``St(d_out, r)`` (orthonormal columns), frozen; ``lora_A = 0``, trained. Either way the
    update ``s B A`` starts at zero, as with PEFT's default init, and the trained entries number
    ``bounds.trainable_params(variant, layer_shapes(model), r)`` (tested).

    **Scale.** The frozen factor is exactly the paper's, singular values all 1 (``A Aᵀ = I_r``,
    ``BᵀB = I_r``), on both sides, so that neither variant gets a larger effective step than the
    other (PEFT's default has no frozen-``B`` scale to copy: its ``B`` starts at 0). PEFT's
    default ``A`` has i.i.d. ``U(−1/√d_in, 1/√d_in)`` entries, variance ``1/(3 d_in)``, so
    ``A Aᵀ ≈ I_r/3`` for ``d_in ≫ r``: the Haar ``A`` is PEFT's ``A`` made exactly orthonormal and
    √3 larger. With ``s = α/r`` unchanged, a step on ``B`` moves the update ``s B A`` 3 times as
    far as with PEFT's ``A`` under plain SGD, √3 times under Adam (whose step ignores the
    gradient's scale): divide the learning rate by 3 or √3 to keep PEFT's dynamics. The closed
    forms (Lemmas 4.1, 4.2) see the frozen factor only through its row (column) space; the
    trained factor tends to ``B*/s`` (``A*/s``), ``B*`` the optimum for the stored ``A`` (tested).

    Draws: ``numpy.random.default_rng(seed)``, one ``theory.haar_stiefel`` draw per module in
    module order, cast to the factor's dtype and device. PEFT's ``set_adapter`` and
    ``enable_adapters`` make both factors trainable again, and so does leaving the
    ``PeftModel.disable_adapter()`` context (inside it nothing is trainable).

    Parameters
    ----------
    model : torch.nn.Module with PEFT LoRA layers (:func:`lora_modules`); modified in place.
    side : {"A", "B"}, the factor to freeze.
    init : {"haar"}.
    seed : int >= 0.
    adapter : str, the adapter's name.

    Returns
    -------
    model, with the factors of every LoRA module set and ``requires_grad`` set as above.
    """
    if not isinstance(side, str) or side not in FROZEN_VARIANT:
        raise ValueError(f"side must be one of {tuple(FROZEN_VARIANT)} (freeze A: b_only; freeze B: a_only), "
                         f"got {side!r}")
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    seed = as_int(seed, "seed", minimum=0)
    factors = {name: (m.lora_A[adapter].weight, m.lora_B[adapter].weight)
               for name, m in lora_modules(model, adapter).items()}
    for name, (a, b) in factors.items():  # every module checked before any is set
        width = a.shape[1] if side == "A" else b.shape[0]
        if a.shape[0] > width:
            raise ValueError(f"rank {a.shape[0]} of LoRA module {name!r} exceeds its "
                             f"{'d_in' if side == 'A' else 'd_out'} = {width}: a Haar factor has at most that "
                             f"many orthonormal vectors")
    rng = np.random.default_rng(seed)
    for a, b in factors.values():
        _freeze_one(a, b, side, rng)
    return model


def _freeze_one(a: nn.Parameter, b: nn.Parameter, side: str, rng: np.random.Generator) -> None:
    """Set ``a`` (r, d_in) and ``b`` (d_out, r) as :func:`freeze_factor` says (widths checked)."""
    frozen, trained = (a, b) if side == "A" else (b, a)
    q = haar_stiefel(a.shape[1] if side == "A" else b.shape[0], a.shape[0], rng)  # (d, r)
    with torch.no_grad():
        frozen.copy_(torch.from_numpy(q.T if side == "A" else q).to(frozen.dtype))
        trained.zero_()
    frozen.requires_grad_(False)
    trained.requires_grad_(True)
