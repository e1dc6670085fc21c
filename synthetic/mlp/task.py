r"""Small-MLP teacher tasks (docs/THEORY.md §5): the pretrained teacher, its shifted target, their data.

The pretrained model is a random MLP without biases, the *teacher base*, with tanh (default) or
ReLU hidden activations; its layer ``l`` has weight ``W0_l ~ N(0, g^2 / d_in)`` with gain
``g = TEACHER_GAIN`` (tanh keeps the classes balanced, which ReLU's positive mean does not), and
the last layer is further multiplied by ``logit_scale``. A sharp teacher (large logits) matters
for classification: the labels are the target's argmax, and with low-margin logits the
cross-entropy minimiser within the adapted family trades 0-1 accuracy for margin, so that
fine-tuning can raise the test error above the pretrained model's even on a large sample; with
``logit_scale = 4`` the target is close to the cross-entropy minimiser and training behaves as
fine-tuning should. The target task is the same network with a low-rank perturbation of chosen
layers,

.. math:: W_{t,l} = W0_l + \Delta_l, \qquad \Delta_l = \rho \, \|W0_l\|_F \, U_l V_l^T / \sqrt{k},

with ``U_l``, ``V_l`` Haar on ``St(d_out, k)``, ``St(d_in, k)``: rank ``k`` and relative size
``\|\Delta_l\|_F / \|W0_l\|_F = \rho``. Labels are the target's argmax (classification, each
label replaced by a uniform random class with probability ``label_noise``) or its outputs plus
``N(0, noise_std^2)`` noise (regression). This is the small-MLP analogue of the linear setting
of Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4;
the paper has no MLP experiment of this kind, so nothing here reproduces a number from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from synthetic.mlp.train import ACTIVATIONS, KINDS
from synthetic.streams import TARGET_KEY, TEACHER_KEY, keyed_rng, trial_streams  # noqa: F401 - trial_streams re-exported
from theory.random import haar_stiefel
from theory.variants import check_init, check_variant
from theory.validation import Array, as_generator, as_int, as_rank, as_real, check_memory

#: Gain of the teacher's Gaussian weights, ``W0_l ~ N(0, TEACHER_GAIN^2 / d_in)``.
TEACHER_GAIN = 1.5

#: Largest float32; training and evaluation run in float32 (``network_outputs``).
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Largest value of the scale fields ``perturbation_scale``, ``logit_scale``, ``noise_std`` and
#: ``alpha`` (of order 1 in use, ``alpha`` of order the rank). The float32 targets, outputs and
#: LoRA update grow in proportion to each, the squared loss and Adam's second moment with its
#: square: ``(1e6)^2 = 1e12``, far below the largest float32 (3.4e38). That leaves room for a
#: second field at the limit (``perturbation_scale * logit_scale`` on a perturbed last layer:
#: ``(1e12)^2 = 1e24``) and a factor of about 1e14 for sums over samples and outputs. Several
#: fields near the limit at once on a deep ReLU teacher can still overflow; training then
#: reports that it diverged.
MAX_SCALE = 1e6
#: Adam's first moment decay in training (``synthetic.mlp.backprop.FlatAdam``): its first step is
#: ``lr / (1 - ADAM_BETA1)``, which must be a float32.
ADAM_BETA1 = 0.9


def _layer_tuple(value: object, name: str, n_layers: int) -> tuple[int, ...]:
    try:
        items = tuple(value)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"{name} must be a tuple of layer indices, got {value!r}") from exc
    if not items:
        raise ValueError(f"{name} must name at least one layer, got {value!r}")
    out = tuple(sorted(as_int(i, name, minimum=0) for i in items))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has repeated layers: {value!r}")
    if out[-1] >= n_layers:
        raise ValueError(f"{name} {value!r} has layer {out[-1]}, but the MLP has layers 0..{n_layers - 1}")
    return out


def _parse_input_dist(spec: object) -> float:
    """Power-law exponent of the input spectrum: 0 for ``"isotropic"``, alpha for ``"powerlaw:alpha"``."""
    if spec == "isotropic":
        return 0.0
    if isinstance(spec, str) and spec.startswith("powerlaw:"):
        try:
            alpha = float(spec.split(":", 1)[1])
        except ValueError:
            alpha = float("nan")
        if np.isfinite(alpha) and alpha >= 0:
            return alpha
    raise ValueError(f"input_dist must be 'isotropic' or 'powerlaw:<alpha >= 0>', got {spec!r}")


def _at_most(value: float, name: str, limit: float, reason: str) -> None:
    """Raise ``ValueError`` naming ``name`` if the (already validated) real ``value`` exceeds ``limit``."""
    if value > limit:
        raise ValueError(f"{name} is {value:.3g}; the limit is {limit:.3g} ({reason})")


@dataclass(frozen=True)
class MLPTask:
    r"""A teacher MLP, its low-rank-perturbed target task, and how LoRA is trained on it.

    The task of docs/THEORY.md §5 ("MLP teacher tasks"; module docstring), the small-network
    analogue of Section 4.1 of Zhu et al. (ICML 2024).

    Attributes
    ----------
    widths : layer widths ``(d_0, ..., d_L)``; layer ``l`` maps ``d_l -> d_{l+1}``.
    adapted_layers : indices of the layers that get an adapter (or are fully trained).
    perturbed_layers : indices of the layers the target task perturbs.
    teacher_seed : seed of the pretrained weights ``W0``.
    task_seed : seed of the perturbation ``Delta`` (one target task per seed).
    perturbation_rank : rank ``k`` of each ``Delta_l``.
    perturbation_scale : ``rho = ||Delta_l||_F / ||W0_l||_F`` (dimensionless, >= 0).
    kind : ``"classification"`` (argmax labels) or ``"regression"`` (outputs plus noise).
    activation : hidden-layer activation of the teacher and of the adapted network, ``"tanh"``
        or ``"relu"``.
    logit_scale : multiplier of the teacher's last layer (sharper logits; labels unchanged).
    label_noise : probability that a label is replaced by a uniform random class.
    noise_std : standard deviation of the regression output noise.
    input_dist : ``"isotropic"`` (x ~ N(0, I)) or ``"powerlaw:alpha"`` (independent coordinates
        with variances proportional to ``j^{-alpha}``, scaled so that ``Tr Sigma = d_0``).
    test_size : fresh samples per trial on which the test (population) loss is estimated.
    steps, lr : Adam steps and step size.
    batch_size : minibatch size, or None for full-batch training.
    alpha : LoRA scaling numerator; the update is ``(alpha / r) B A``; None means alpha = r.
    init : initialisation of the random factor (``theory.variants.INITS``).
    clip : cap ``c`` of the clipped squared loss ``min(l, c)`` (regression).

    The scale fields are limited to ``MAX_SCALE``, ``lr`` and ``clip`` to what float32 holds
    (``ADAM_BETA1``, ``FLOAT32_MAX``): a larger value is a ``ValueError`` naming the field.
    """

    widths: tuple[int, ...] = (32, 64, 64, 10)
    adapted_layers: tuple[int, ...] = (1,)
    perturbed_layers: tuple[int, ...] = (1,)
    teacher_seed: int = 0
    task_seed: int = 0
    perturbation_rank: int = 4
    perturbation_scale: float = 0.5
    logit_scale: float = 4.0
    kind: str = "classification"
    activation: str = "tanh"
    label_noise: float = 0.0
    noise_std: float = 0.1
    input_dist: str = "isotropic"
    test_size: int = 20_000
    steps: int = 300
    lr: float = 3e-3
    batch_size: int | None = None
    alpha: float | None = None
    init: str = "haar"
    clip: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.widths, (Sequence, np.ndarray)) or isinstance(self.widths, (str, bytes)):
            # A set or a generator has no order (or no repeatable one): the layers' order would be lost.
            raise ValueError(f"widths must be an ordered sequence of layer widths (a tuple or list), got "
                             f"{type(self.widths).__name__} {self.widths!r}"[:200])
        widths = tuple(self.widths)
        if len(widths) < 2:
            raise ValueError(f"widths must have at least 2 entries, got {self.widths!r}")
        object.__setattr__(self, "widths", tuple(as_int(w, "widths", minimum=1) for w in widths))
        check_memory(sum(a * b for a, b in zip(self.widths[:-1], self.widths[1:])), "widths", self.widths,
                     "the network's weight matrices")
        n_layers = len(widths) - 1
        for name in ("adapted_layers", "perturbed_layers"):
            object.__setattr__(self, name, _layer_tuple(getattr(self, name), name, n_layers))
        as_int(self.teacher_seed, "teacher_seed", minimum=0)
        as_int(self.task_seed, "task_seed", minimum=0)
        for l in self.perturbed_layers:
            as_rank(self.perturbation_rank, self.widths[l], self.widths[l + 1], "perturbation_rank")
        scales = {"perturbation_scale": as_real(self.perturbation_scale, "perturbation_scale", minimum=0.0),
                  "logit_scale": as_real(self.logit_scale, "logit_scale", positive=True)}
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        as_real(self.label_noise, "label_noise", minimum=0.0, maximum=1.0)
        scales["noise_std"] = as_real(self.noise_std, "noise_std", minimum=0.0)
        _parse_input_dist(self.input_dist)
        as_int(self.test_size, "test_size", minimum=1)
        as_int(self.steps, "steps", minimum=1)
        lr = as_real(self.lr, "lr", positive=True)
        if self.batch_size is not None:
            as_int(self.batch_size, "batch_size", minimum=1)
        if self.alpha is not None:
            scales["alpha"] = as_real(self.alpha, "alpha", positive=True)
        check_init(self.init)
        clip = as_real(self.clip, "clip", positive=True)
        for name, value in scales.items():
            _at_most(value, name, MAX_SCALE, "it scales the float32 targets, outputs or update, and the "
                     "squared loss with its square")
        if lr / (1.0 - ADAM_BETA1) > FLOAT32_MAX:
            raise ValueError(f"lr is {lr:.3g}; Adam's first step lr / (1 - {ADAM_BETA1}) = "
                             f"{lr / (1.0 - ADAM_BETA1):.3g} exceeds the largest float32, {FLOAT32_MAX:.3g}")
        _at_most(clip, "clip", FLOAT32_MAX, "the loss is clipped in float32, where a larger clip is inf")

    @classmethod
    def quick(cls, **overrides: object) -> MLPTask:
        """docs/THEORY.md §5's default: 32 -> 64 -> 64 -> 10, adapt and perturb layer 1, 300 full-batch steps."""
        return cls(**{"test_size": 10_000, "steps": 300, **overrides})  # type: ignore[arg-type]

    @classmethod
    def full(cls, **overrides: object) -> MLPTask:
        """The docs/THEORY.md §5 network; perturb and adapt layers 0 and 1, 2000 steps, 50k test samples."""
        base = {"adapted_layers": (0, 1), "perturbed_layers": (0, 1), "test_size": 50_000, "steps": 2000}
        return cls(**{**base, **overrides})  # type: ignore[arg-type]

    @classmethod
    def paper_regime(cls, **overrides: object) -> MLPTask:
        r"""64 -> 64 -> 64 -> 64, adapt and perturb the square layer 0; the regime of the paper's asymmetry.

        docs/THEORY.md §1b.3: ``b_only`` removes the fraction ``f(Σ, r)`` of a random-orientation
        shift's loss, ``a_only`` the fraction ``f(G, r)``. Here (training as in ``quick``):

        1. the adapted layer's inputs have a decaying spectrum of low effective rank
           (``Σ_j ∝ j^{-2}``, ``"powerlaw:2"``: effective rank 2.45 of 64);
        2. the layer is read by a wide map (two layers above it, 64 classes), so ``G`` is spread;
        3. the shift has random orientation and full rank 64, above every rank compared.

        The layer is square, so ``b_only`` at rank ``2r`` trains as many parameters as ``lora`` at
        rank ``r`` and Lemma 4.5 gives them the same bound (Zhu et al., ICML 2024, Section 4.2.1).
        """
        base = {"widths": (64, 64, 64, 64), "adapted_layers": (0,), "perturbed_layers": (0,),
                "input_dist": "powerlaw:2", "perturbation_rank": 64, "test_size": 10_000, "steps": 300}
        return cls(**{**base, **overrides})  # type: ignore[arg-type]

    @classmethod
    def narrow_readout(cls, **overrides: object) -> MLPTask:
        r"""The ``quick`` configuration, named as the counterexample to the paper's regime.

        docs/THEORY.md §1b.5: the adapted 64x64 layer 1 is read through a narrow read-out (a
        10-class head right after the layer's tanh), so ``G`` is concentrated on few directions
        and ``f(G, r) > f(Σ, r)``: ``a_only`` is predicted to win. (``G`` is full rank, the tanh
        sitting between the layer and the head, but concentrated.) The network's inputs are isotropic,
        not the layer's (tanh features of layer 0); its shift has rank 4, as ``lora`` at rank 4.
        """
        return cls.quick(**overrides)

    @property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        """(d_out, d_in) of every layer: ``(widths[l + 1], widths[l])`` (docs/THEORY.md §5)."""
        return tuple((self.widths[l + 1], self.widths[l]) for l in range(len(self.widths) - 1))

    def scaling(self, rank: int) -> float:
        """LoRA scaling ``alpha / rank`` (1 when ``alpha`` is None): the ``α/r`` of docs/THEORY.md §5."""
        return 1.0 if self.alpha is None else float(self.alpha) / rank

    def base_weights(self) -> tuple[Array, ...]:
        """Pretrained weights ``W0_l`` (d_out, d_in), one per layer: docs/THEORY.md §5, "Teacher"."""
        return _teacher(self.widths, self.teacher_seed, float(self.logit_scale))

    def target_weights(self) -> tuple[Array, ...]:
        """Target weights ``W0_l + Delta_l`` (module docstring; docs/THEORY.md §5, "Target task")."""
        return _target(self.widths, self.teacher_seed, float(self.logit_scale), self.task_seed,
                       self.perturbed_layers, self.perturbation_rank, float(self.perturbation_scale))


@lru_cache(maxsize=64)
def _teacher(widths: tuple[int, ...], teacher_seed: int, logit_scale: float) -> tuple[Array, ...]:
    rng = keyed_rng(teacher_seed, TEACHER_KEY)
    out = []
    for l, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
        w = rng.standard_normal((d_out, d_in)) * TEACHER_GAIN / np.sqrt(d_in)
        if l == len(widths) - 2:
            w = w * logit_scale
        w.flags.writeable = False
        out.append(w)
    return tuple(out)


@lru_cache(maxsize=64)
def _target(widths: tuple[int, ...], teacher_seed: int, logit_scale: float, task_seed: int,
            layers: tuple[int, ...], k: int, rho: float) -> tuple[Array, ...]:
    base = _teacher(widths, teacher_seed, logit_scale)
    rng = keyed_rng(task_seed, TARGET_KEY)
    out = list(base)
    for l in layers:
        d_out, d_in = base[l].shape
        u, v = haar_stiefel(d_out, k, rng), haar_stiefel(d_in, k, rng)
        w = base[l] + rho * np.linalg.norm(base[l]) * (u @ v.T) / np.sqrt(k)
        w.flags.writeable = False
        out[l] = w
    return tuple(out)


def network_outputs(weights: tuple[Array, ...], x: Array, activation: str = "tanh") -> Array:  # (..., d_0) -> (..., d_L)
    """Outputs of the bias-free MLP with the given weights and hidden ``activation``.

    Computed in float32, the precision every model of the toolkit is trained and evaluated in
    (float64 products with these widths cost about ten times as much on a CPU), and returned as
    float64. No activation on the last layer: logits or regression values (docs/THEORY.md §5).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    with torch.no_grad():
        h = torch.from_numpy(np.asarray(x, dtype=np.float32))
        for l, w in enumerate(weights):
            h = h @ torch.from_numpy(np.asarray(w, dtype=np.float32)).T
            if l < len(weights) - 1:
                h = h.tanh_() if activation == "tanh" else h.relu_()
    return h.numpy().astype(np.float64)


def sample_data(task: MLPTask, n: int, rng: np.random.Generator, *,
                target: tuple[Array, ...] | None = None) -> tuple[Array, np.ndarray]:
    """Draw ``n`` samples ``(x, y)`` of the target task: x (n, d_0); y (n,) int64 or (n, d_L).

    ``target`` overrides the target weights (default ``task.target_weights()``). The data of
    docs/THEORY.md §5, "Data": inputs, then label noise, from ``rng`` in that order.
    """
    n = as_int(n, "n", minimum=1)
    rng = as_generator(rng)
    x = np.empty((n, task.widths[0]))
    draws = _draw(task, rng, x)
    return x, _label(task, x, draws, task.target_weights() if target is None else target)


def sample_trials(task: MLPTask, n: int, rngs: Sequence[np.random.Generator], *,
                  target: tuple[Array, ...] | None = None) -> tuple[Array, np.ndarray]:
    """``sample_data`` for every generator of ``rngs``, stacked: x (T, n, d_0); y (T, n) or (T, n, d_L).

    Trial ``t`` gets exactly what ``sample_data(task, n, rngs[t], target=target)`` would give,
    called for ``t = 0, 1, ...`` in turn. When the generators are distinct objects, their
    random numbers are drawn on ``torch.get_num_threads()`` threads (NumPy releases the GIL
    while it fills an array): on two cores, about 40 % less time than drawing them trial after
    trial (2,048 samples of the benchmark's reference task). The labels, which need the target
    network, are then computed trial by trial. A generator that appears twice is drawn from
    in order, on one thread. Infrastructure for the data of docs/THEORY.md §5, one trial each.
    """
    n = as_int(n, "n", minimum=1)
    try:
        rngs = [as_generator(r, "rngs") for r in rngs]
    except TypeError as exc:
        raise ValueError(f"rngs must be a sequence of numpy Generators, got {type(rngs).__name__}") from exc
    return _sample_trials(task, n, rngs, task.target_weights() if target is None else target)


def _sample_trials(task: MLPTask, n: int, rngs: list[np.random.Generator],
                   target: tuple[Array, ...]) -> tuple[Array, np.ndarray]:
    """:func:`sample_trials` on checked arguments (``rngs`` a list of Generators)."""
    shape = (len(rngs), n) if task.kind == "classification" else (len(rngs), n, task.widths[-1])
    x = np.empty((len(rngs), n, task.widths[0]))
    y = np.empty(shape, dtype=np.int64 if task.kind == "classification" else np.float64)
    distinct = len({id(r) for r in rngs}) == len(rngs)
    workers = min(len(rngs), torch.get_num_threads()) if distinct else 1
    if workers <= 1:
        draws = [_draw(task, rng, x[t]) for t, rng in enumerate(rngs)]
    else:
        with ThreadPoolExecutor(workers) as pool:
            draws = list(pool.map(lambda t: _draw(task, rngs[t], x[t]), range(len(rngs))))
    for t, d in enumerate(draws):
        y[t] = _label(task, x[t], d, target)
    return x, y


def _draw(task: MLPTask, rng: np.random.Generator, x: Array) -> tuple[Array, ...]:
    """Fill ``x`` (n, d_0) with inputs; return the rest of a sample's random numbers, in stream order.

    Regression: the (n, d_L) standard normal output noise. Classification: the (n,) uniforms
    that decide which labels are replaced, and the (n,) replacement classes.
    """
    n, d0 = x.shape
    rng.standard_normal(out=x)
    exponent = _parse_input_dist(task.input_dist)
    if exponent != 0:  # isotropic inputs need no scaling (the scale would be exactly 1)
        var = np.arange(1, d0 + 1, dtype=np.float64) ** -exponent
        x *= np.sqrt(var * d0 / var.sum())
    d_out = task.widths[-1]
    if task.kind == "regression":
        return (rng.standard_normal((n, d_out)),)
    return rng.random(n), rng.integers(0, d_out, size=n)


def _label(task: MLPTask, x: Array, draws: tuple[Array, ...], target: tuple[Array, ...]) -> np.ndarray:
    """Targets of the inputs ``x`` (n, d_0) from the target network and the draws of ``_draw``."""
    out = network_outputs(target, x, task.activation)
    if task.kind == "regression":
        return out + task.noise_std * draws[0]
    uniform, replacement = draws
    labels = np.where(uniform < task.label_noise, replacement, out.argmax(axis=1))
    return labels.astype(np.int64)


def check_mlp_call(task: object, variant: object, rank: object) -> int:
    """Validate an MLP (task, variant, rank); return the rank (1 for ``full``, where it is unused).

    Infrastructure: ``ValueError`` naming the argument (README, "Use it from Python"); ``rank``
    must fit ``min(d_in, d_out)`` of every adapted layer, as LoRA's rank does (docs/THEORY.md §0).
    """
    if not isinstance(task, MLPTask):
        raise ValueError(f"task must be an MLPTask, got {type(task).__name__}")
    check_variant(variant)
    if variant == "full" and rank is None:
        return 1
    rank = as_int(rank, "rank", minimum=1)
    if variant != "full":
        for l in task.adapted_layers:
            d_out, d_in = task.layer_shapes[l]
            try:
                as_rank(rank, d_in, d_out)
            except ValueError as exc:
                raise ValueError(f"{exc} of adapted layer {l}") from None
    return rank
