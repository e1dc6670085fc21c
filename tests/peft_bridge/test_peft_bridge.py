"""peft_bridge on PEFT models: the frozen factor, the closed forms it must reach, trained-parameter
counts, and saved adapters (load_adapter, adapter_similarity)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from torch import nn

import bounds
import synthetic
import theory
from tests.tolerances import tol

peft = pytest.importorskip("peft")
pytest.importorskip("safetensors")
import peft_bridge  # noqa: E402  (after the skip: needs the [peft] extra)

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

#: Relative slack of a factor trained by full-batch gradient descent against its closed form.
CONVERGED_RTOL = 1e-4


def _peft_mlp(widths: tuple[int, ...], targets: list[str], rank: int, alpha: float, *, seed: int,
              bias: bool = False) -> nn.Module:
    """A float64 tanh MLP (Linear layers "0", "2", "4", …) with PEFT LoRA on ``targets``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for k, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [nn.Linear(d_in, d_out, bias=bias)] + ([nn.Tanh()] if k < len(widths) - 2 else [])
    lora = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets)
    return peft.get_peft_model(nn.Sequential(*layers).double(), lora)


def _regression_data(d_in: int, d_out: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs with a power-law covariance and targets of a random linear map plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in)) * np.arange(1, d_in + 1) ** -0.5
    y = x @ rng.standard_normal((d_out, d_in)).T + 0.1 * rng.standard_normal((n, d_out))
    return torch.from_numpy(x), torch.from_numpy(y)


def _factors(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor, float]:
    module = next(iter(peft_bridge.lora_modules(model).values()))
    return module.lora_A["default"].weight, module.lora_B["default"].weight, module.scaling["default"]


def _gradient_descent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> None:
    """``steps`` full-batch steps of plain gradient descent on ``mean ‖model(x) − y‖²``."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        loss = ((model(x) - y) ** 2).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("side", ["A", "B"])
def test_frozen_factor_training_reaches_lemma_4_1_and_4_2(side):
    """Lemmas 4.1/4.2 on samples: with A (B) frozen, full-batch gradient descent on the squared loss
    converges to the least-squares factor of ``synthetic.fit_b_only`` (``fit_a_only``) for the same
    frozen factor, divided by PEFT's scaling s = α/r; the frozen factor is bit-identical after."""
    d_in, d_out, rank, n = 12, 8, 3, 200
    model = _peft_mlp((d_in, d_out), ["0"], rank, alpha=6.0, seed=0, bias=True)
    peft_bridge.freeze_factor(model, side, seed=1)
    a, b, s = _factors(model)
    frozen_before = (a if side == "A" else b).detach().clone()
    x, y = _regression_data(d_in, d_out, n, seed=2)
    with torch.no_grad():
        resid = (y - model(x)).numpy()  # the update starts at zero: model(x) = W0 x + b0
    sigma = x.numpy().T @ x.numpy() / n
    if side == "A":  # Hessian in B: 2 s² (A Σ̂ Aᵀ) ⊗ I
        curvature = 2 * s**2 * np.linalg.eigvalsh(a.detach().numpy() @ sigma @ a.detach().numpy().T)[-1]
        closed = synthetic.fit_b_only(x.numpy()[None], resid[None], a.detach().numpy()[None])[0]
    else:  # Hessian in A: 2 s² (BᵀB) ⊗ Σ̂, BᵀB = I
        curvature = 2 * s**2 * np.linalg.eigvalsh(sigma)[-1]
        closed = synthetic.fit_a_only(x.numpy()[None], resid[None], b.detach().numpy()[None])[0]
    _gradient_descent(model, x, y, lr=1.0 / curvature, steps=3000)
    trained = (b if side == "A" else a).detach().numpy() * s
    assert_allclose(trained, closed, rtol=CONVERGED_RTOL, atol=CONVERGED_RTOL * np.abs(closed).max())
    assert torch.equal(a if side == "A" else b, frozen_before)


@pytest.mark.parametrize("variant", ["lora", "b_only", "a_only"])
def test_trainable_count_is_lemma_4_5_count(variant):
    """Section 4.2.1: the entries left trainable are N = bounds.trainable_params(variant, layer_shapes, r),
    over LoRA modules of different shapes (and the whole model trains nothing else)."""
    model = _peft_mlp((6, 9, 5, 4), ["0", "2", "4"], rank=3, alpha=3.0, seed=0)
    if variant != "lora":
        peft_bridge.freeze_factor(model, "A" if variant == "b_only" else "B", seed=0)
    shapes = peft_bridge.layer_shapes(model)
    assert shapes == [(9, 6), (5, 9), (4, 5)]
    expected = bounds.trainable_params(variant, shapes, 3)
    assert peft_bridge.trainable_lora_params(model) == expected
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


@pytest.mark.parametrize("side", ["A", "B"])
def test_frozen_factor_is_haar_orthonormal_and_seeded(side):
    """The frozen factor is the paper's (A Aᵀ = I or BᵀB = I, theory.haar_stiefel from the seed), the
    trained one is zero, so the update s B A starts at zero as with PEFT's default init."""
    model = _peft_mlp((7, 5), ["0"], rank=2, alpha=2.0, seed=0)
    peft_bridge.freeze_factor(model, side, seed=4)
    a, b, _ = _factors(model)
    frozen, trained = (a, b) if side == "A" else (b, a)
    q = theory.haar_stiefel(7 if side == "A" else 5, 2, np.random.default_rng(4))
    assert_allclose(frozen.detach().numpy(), q.T if side == "A" else q, **tol())
    gram = frozen @ frozen.T if side == "A" else frozen.T @ frozen
    assert_allclose(gram.detach().numpy(), np.eye(2), **tol())
    assert not frozen.requires_grad and trained.requires_grad and not trained.detach().any()
    other = _peft_mlp((7, 5), ["0"], rank=2, alpha=2.0, seed=1)
    peft_bridge.freeze_factor(other, side, seed=4)
    assert torch.equal(_factors(other)[0 if side == "A" else 1], frozen)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"side": "C", "seed": 0}, "side must be one of"),
    ({"side": "A", "seed": 0, "init": "kaiming"}, "init must be one of"),
    ({"side": "A", "seed": -1}, "seed must be >= 0"),
    ({"side": "A", "seed": 0, "adapter": "other"}, "adapter 'other'"),
])
def test_freeze_factor_refuses_bad_arguments(kwargs, fragment):
    """An unknown side, init, a negative seed or a missing adapter: ValueError naming it."""
    model = _peft_mlp((4, 3), ["0"], rank=1, alpha=1.0, seed=0)
    with pytest.raises(ValueError, match=fragment):
        peft_bridge.freeze_factor(model, **kwargs)


def test_model_without_lora_is_refused():
    """A plain torch model has no LoRA modules: ValueError says to wrap it with PEFT."""
    with pytest.raises(ValueError, match="no LoRA modules"):
        peft_bridge.layer_shapes(nn.Sequential(nn.Linear(3, 2)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_save_load_round_trip(tmp_path, dtype):
    """save_pretrained → load_adapter returns every module's (A, B) exactly, as float64, in module order
    and with the names of lora_modules, for fp32, bf16 and fp16 adapters."""
    model = _peft_mlp((6, 9, 5), ["0", "2"], rank=2, alpha=2.0, seed=0)
    peft_bridge.freeze_factor(model, "A", seed=0)
    with torch.no_grad():
        for module in peft_bridge.lora_modules(model).values():
            module.lora_B["default"].weight.normal_()
    model.to(dtype).save_pretrained(str(tmp_path))
    loaded = peft_bridge.load_adapter(tmp_path)
    modules = peft_bridge.lora_modules(model)
    assert list(loaded) == list(modules) == ["0", "2"]
    for name, (a, b) in loaded.items():
        assert a.dtype == b.dtype == np.float64
        assert_array_equal(a, modules[name].lora_A["default"].weight.to(torch.float64).detach().numpy())
        assert_array_equal(b, modules[name].lora_B["default"].weight.to(torch.float64).detach().numpy())


def _saved(tmp_path, name: str, side: str, freeze_seed: int, b_seed: int) -> str:
    """A saved adapter with the factor ``side`` frozen from ``freeze_seed`` and the other drawn from ``b_seed``."""
    model = _peft_mlp((10, 8, 6), ["0", "2"], rank=3, alpha=3.0, seed=0)
    peft_bridge.freeze_factor(model, side, seed=freeze_seed)
    gen = torch.Generator().manual_seed(b_seed)
    with torch.no_grad():
        for module in peft_bridge.lora_modules(model).values():
            trained = module.lora_B["default"] if side == "A" else module.lora_A["default"]
            trained.weight.copy_(torch.randn(trained.weight.shape, generator=gen, dtype=torch.float64))
    model.save_pretrained(str(tmp_path / name))
    return str(tmp_path / name)


def test_similarity_is_one_for_identical_frozen_factors_and_in_unit_interval(tmp_path):
    """Figure 1's measurement: identical frozen factors give ρ = 1; trained and independently frozen
    factors give ρ in [0, 1]; the result pairs modules by name."""
    first = _saved(tmp_path, "one", "A", freeze_seed=0, b_seed=1)
    same_a = _saved(tmp_path, "two", "A", freeze_seed=0, b_seed=2)
    other_a = _saved(tmp_path, "three", "A", freeze_seed=5, b_seed=1)
    assert_allclose(list(peft_bridge.adapter_similarity(first, same_a, "A").values()), 1.0, **tol())
    for pair, side in ((same_a, "B"), (other_a, "A"), (other_a, "B")):
        values = peft_bridge.adapter_similarity(first, pair, side)
        assert list(values) == ["0", "2"]
        assert all(0.0 <= v <= 1.0 for v in values.values())
    assert max(peft_bridge.adapter_similarity(first, other_a, "A").values()) < 1.0


def _write_adapter(folder, tensors: dict, config: object = None) -> str:
    from safetensors.torch import save_file

    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2} if config is None else config))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return str(folder)


A, B = torch.ones(2, 5), torch.ones(4, 2)
BAD_ADAPTERS = {
    "missing": (None, "does not exist"),
    "no config": ("no_config", "has no adapter_config.json"),
    "bad json": ("bad_json", "is not readable JSON"),
    "json list": ("json_list", "must hold a JSON object"),
    "not lora": ({"m.lora_A.weight": A, "m.lora_B.weight": B}, "not LORA"),
    "no weights": ("no_weights", "has no adapter_model.safetensors"),
    "garbage": ("garbage", "is not a readable safetensors file"),
    "no factors": ({"m.weight": A}, "holds no LoRA factors"),
    "unpaired": ({"m.lora_A.weight": A}, "has no lora_B factor"),
    "ranks": ({"m.lora_A.weight": A, "m.lora_B.weight": torch.ones(4, 3)}, "the rank r must agree"),
    "int dtype": ({"m.lora_A.weight": A.to(torch.int32), "m.lora_B.weight": B}, "has dtype torch.int32"),
    "3-D": ({"m.lora_A.weight": torch.ones(2, 5, 1), "m.lora_B.weight": B}, "non-empty matrix"),
    "nan": ({"m.lora_A.weight": A * float("nan"), "m.lora_B.weight": B}, "NaN or infinite"),
    "dora": ({"m.lora_A.weight": A, "m.lora_B.weight": B, "m.lora_magnitude_vector": torch.ones(4)},
             "other than lora_A/lora_B"),
}


def make_bad_adapter(tmp_path, kind: str) -> str:
    """The folder of one malformed adapter of ``BAD_ADAPTERS``."""
    spec, _ = BAD_ADAPTERS[kind]
    folder = tmp_path / kind.replace(" ", "_")
    if spec is None:
        return str(folder)
    if isinstance(spec, dict):
        return _write_adapter(folder, spec, {"peft_type": "IA3"} if kind == "not lora" else None)
    folder.mkdir()
    if spec != "no_config":
        text = {"bad_json": "{r: 2", "json_list": "[1, 2]"}.get(spec, '{"peft_type": "LORA"}')
        (folder / "adapter_config.json").write_text(text)
    if spec in ("no_config", "garbage"):
        (folder / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    return str(folder)


@pytest.mark.parametrize("kind", BAD_ADAPTERS)
def test_load_adapter_refuses_a_missing_or_malformed_folder(tmp_path, kind):
    """A missing folder, config or weights file, unreadable JSON or safetensors, or factors that do not
    form (r, d_in), (d_out, r) float pairs: one-line ValueError naming what is wrong."""
    with pytest.raises(ValueError, match=BAD_ADAPTERS[kind][1]) as info:
        peft_bridge.load_adapter(make_bad_adapter(tmp_path, kind))
    assert "\n" not in str(info.value)


def test_a_side_or_init_of_the_wrong_type_is_refused_naming_it():
    """freeze_factor and adapter_similarity refuse a side or init that is not a name (a list, an array, None)
    with a ValueError naming the argument, not a TypeError from a dictionary lookup."""
    import peft_bridge

    for side in (["A"], np.array(["A"]), None):
        with pytest.raises(ValueError, match="^side must be one of"):
            peft_bridge.freeze_factor(torch.nn.Linear(3, 3), side, seed=0)
        with pytest.raises(ValueError, match="^side must be one of"):
            peft_bridge.adapter_similarity("x", "y", side)
    with pytest.raises(ValueError, match="^init must be one of"):
        peft_bridge.freeze_factor(torch.nn.Linear(3, 3), "A", init=["haar"], seed=0)
