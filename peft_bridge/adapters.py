r"""Saved PEFT LoRA adapters: their factors, and the similarity of two adapters (Figure 1).

A saved adapter is the folder ``PeftModel.save_pretrained`` writes: ``adapter_config.json`` and
``adapter_model.safetensors``, whose tensors ``<module>.lora_A.weight`` (r, d_in) and
``<module>.lora_B.weight`` (d_out, r) are the factors of the update ``s B A`` of each LoRA module
(docs/THEORY.md §0). Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML
2024), Figure 1, compare such factors across seeds and tasks with the CCA similarity of their
row spaces (``A``) or column spaces (``B``), docs/THEORY.md §3. Only ``safetensors`` is needed
here (imported on first use), not PEFT.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import torch

from peft_bridge.layers import FROZEN_VARIANT, module_name
from theory.similarity import cca_similarity
from theory.validation import Array

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
#: The dtypes a saved factor may have; it is returned as float64.
FACTOR_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_FACTOR_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<side>[AB])\.weight$")


def _natural_key(name: str) -> list[object]:
    """Sort key that puts ``layer.2`` before ``layer.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _folder(path: object) -> Path:
    """The adapter folder ``path``, or ``ValueError`` saying why it is not one."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be an adapter folder (a str or path), got {type(path).__name__}")
    folder = Path(path)
    if not folder.exists():
        raise ValueError(f"adapter folder {str(path)!r} does not exist")
    if not folder.is_dir():
        raise ValueError(f"adapter folder {str(path)!r} is not a folder")
    return folder


def _check_config(folder: Path) -> dict:
    """The parsed ``adapter_config.json`` of ``folder``, checked to describe a plain LoRA adapter."""
    file = folder / CONFIG_FILE
    if not file.is_file():
        raise ValueError(f"adapter folder {str(folder)!r} has no {CONFIG_FILE} (not a saved PEFT adapter)")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{CONFIG_FILE} in {str(folder)!r} is not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{CONFIG_FILE} in {str(folder)!r} must hold a JSON object, got {type(config).__name__}")
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"adapter in {str(folder)!r} is a {config['peft_type']!r} adapter, not LORA")
    for flag in ("use_dora", "lora_bias"):
        if config.get(flag):
            raise ValueError(f"adapter in {str(folder)!r} has {flag}=true: its update is not s B A")
    return config


def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``adapter_model.safetensors`` in ``folder``, or ``ValueError``."""
    file = folder / WEIGHTS_FILE
    if not file.is_file():
        hint = " (only safetensors is read: save with safe_serialization=True)" if (
            folder / "adapter_model.bin").exists() else ""
        raise ValueError(f"adapter folder {str(folder)!r} has no {WEIGHTS_FILE}{hint}")
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise ValueError("reading adapters needs safetensors: pip install -e '.[peft]'") from None
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{WEIGHTS_FILE} in {str(folder)!r} is not a readable safetensors file ({exc})") from None


def _as_factor(tensor: torch.Tensor, key: str, folder: Path) -> Array:
    """A saved factor as a finite float64 (rows, cols) array, or ``ValueError`` naming ``key``."""
    where = f"{key!r} in {str(folder)!r}"
    if tensor.dtype not in FACTOR_DTYPES:
        raise ValueError(f"{where} has dtype {tensor.dtype}; a LoRA factor is fp32, fp16, bf16 or fp64")
    if tensor.ndim != 2 or 0 in tensor.shape:
        raise ValueError(f"{where} has shape {tuple(tensor.shape)}; a LoRA factor is a non-empty matrix")
    out = tensor.detach().to(torch.float64).cpu().numpy()
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{where} has NaN or infinite entries")
    return out


def load_adapter(path: str | os.PathLike) -> dict[str, tuple[Array, Array]]:
    r"""The factors ``(A, B)`` of every LoRA module of a saved PEFT adapter, as float64 arrays.

    The format is the one PEFT's ``PeftModel.save_pretrained`` writes (with its default
    ``safe_serialization=True``): the tensor ``<module>.lora_A.weight`` is ``A`` (r, d_in) and
    ``<module>.lora_B.weight`` is ``B`` (d_out, r), the factors of the update

    .. math:: W = W_0 + s\, B A, \qquad s = \text{lora\_alpha} / r

    (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022; PEFT's
    ``LoraLayer.scaling``; docs/THEORY.md §0). Reads ``adapter_model.safetensors`` (fp32, fp16,
    bf16 or fp64 tensors) and checks ``adapter_config.json`` (``peft_type`` LORA, no DoRA, no LoRA
    bias). ``s`` (``lora_alpha / √r`` with ``use_rslora``) is not applied here. Tensors without
    ``.lora_`` in their key (PEFT's ``modules_to_save``) are ignored.

    Parameters
    ----------
    path : str or os.PathLike, the folder ``PeftModel.save_pretrained`` wrote.

    Returns
    -------
    dict {module name: (A, B)}, ``A`` (r, d_in) and ``B`` (d_out, r) float64, module names
    without PEFT's ``base_model.model.`` prefix, in natural order (``layer.2`` before
    ``layer.10``). ``ValueError`` for a missing folder or file, unreadable JSON or safetensors, a
    factor without its partner, ranks that disagree, a non-float, non-finite or non-2-D factor, or
    a LoRA tensor other than the ``lora_A`` / ``lora_B`` weights (embedding or convolution LoRA, a
    LoRA bias, DoRA).
    """
    folder = _folder(path)
    _check_config(folder)
    factors: dict[str, dict[str, Array]] = {}
    for key, tensor in _read_tensors(folder).items():
        match = _FACTOR_KEY.match(key)
        if match is None:
            if ".lora_" in key:
                raise ValueError(f"{key!r} in {str(folder)!r} is a LoRA tensor other than lora_A/lora_B weights "
                                 f"(embedding or convolution LoRA, a LoRA bias, DoRA): not supported")
            continue
        name = module_name(match["module"])
        factors.setdefault(name, {})[match["side"]] = _as_factor(tensor, key, folder)
    if not factors:
        raise ValueError(f"{WEIGHTS_FILE} in {str(folder)!r} holds no LoRA factors (*.lora_A.weight, *.lora_B.weight)")
    out = {}
    for name in sorted(factors, key=_natural_key):
        pair = factors[name]
        missing = [side for side in "AB" if side not in pair]
        if missing:
            raise ValueError(f"LoRA module {name!r} in {str(folder)!r} has no lora_{missing[0]} factor")
        a, b = pair["A"], pair["B"]
        if a.shape[0] != b.shape[1]:
            raise ValueError(f"LoRA module {name!r} in {str(folder)!r}: lora_A has shape {a.shape} and lora_B "
                             f"{b.shape}; the rank r must agree (A is (r, d_in), B is (d_out, r))")
        out[name] = (a, b)
    return out


def adapter_similarity(path1: str | os.PathLike, path2: str | os.PathLike, side: str) -> dict[str, float]:
    r"""CCA similarity of the ``A`` (or ``B``) factors of two saved adapters, module by module.

    For each LoRA module ``m`` present in both adapters,

    .. math:: \rho_m = \frac{\|U_1^T U_2\|_F^2}{\min(r_1, r_2)} \in [0, 1],

    with ``U_1``, ``U_2`` orthonormal bases of the row spaces of ``A_1``, ``A_2`` (``side="A"``) or
    of the column spaces of ``B_1``, ``B_2`` (``side="B"``): ``theory.cca_similarity``, the
    measurement of Zhu et al. (ICML 2024), Figure 1 and Appendix A; docs/THEORY.md §3. It is 1 for
    identical (frozen) factors and about ``r/d`` for independent random subspaces of ``R^d``.

    Parameters
    ----------
    path1, path2 : adapter folders (:func:`load_adapter`), with the same LoRA modules.
    side : {"A", "B"}

    Returns
    -------
    dict {module name: similarity in [0, 1]}, in the order of :func:`load_adapter`.
    ``ValueError`` when the module names differ, a module's shapes do not match, or a factor
    is zero (an ``a_only`` adapter's ``A`` before training, for example).
    """
    if not isinstance(side, str) or side not in FROZEN_VARIANT:
        raise ValueError(f"side must be one of {tuple(FROZEN_VARIANT)}, got {side!r}")
    first, second = load_adapter(path1), load_adapter(path2)
    only = sorted(set(first) ^ set(second), key=_natural_key)
    if only:
        where = str(path1) if only[0] in first else str(path2)
        raise ValueError(f"the adapters adapt different modules: {only[0]!r} is only in {where!r} "
                         f"({len(only)} unmatched)")
    index, cca_side = (0, "row") if side == "A" else (1, "col")
    out = {}
    for name, factors in first.items():
        try:
            out[name] = cca_similarity(factors[index], second[name][index], cca_side)
        except ValueError as exc:
            raise ValueError(f"LoRA module {name!r}, factor {side}: {exc}") from None
    return out
