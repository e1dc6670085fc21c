r"""What a sweep is made of: its points, their seeds and checks, and the grid-file format.

A sweep point (``SweepPoint``) is one ``synthetic.montecarlo.measure_gap`` call (task, variant,
rank, n, trials, loss, q_bits, base seed). ``derive_seed`` gives its seed from its configuration,
and ``check_point`` checks its arguments and sizes as ``measure_gap`` will, without running it, so
that a sweep refuses a bad point before it runs any.

A grid (``Grid``) is the product variants x ranks x n of points on one task. A grid file, read by
``read_grid``, is a JSON object with the keys of ``GRID_KEYS``, each optional
(``docs/sweep_grid_example.json`` is an example)::

    {"task": "linear", "preset": "quick", "task_fields": {"d_in": 8, "d_out": 8},
     "variants": ["b_only", "a_only"], "ranks": [2, 4], "n": [64, 256], "trials": 100,
     "loss": "population", "q_bits": null, "seed": 0}
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthetic.linear.engine import LOSSES as LINEAR_LOSSES
from synthetic.linear.engine import LinearTask
from synthetic.mlp.train import LOSSES as MLP_LOSSES
from theory.validation import as_int, check_memory
from theory.variants import VARIANTS, check_q_bits, check_variant

#: Task families of a grid and the task class of each.
TASK_TYPES = {"linear": "LinearTask", "mlp": "MLPTask"}
#: Presets a grid's task starts from (``LinearTask.quick()``, ``MLPTask.full()``, ...).
PRESETS = ("quick", "full")
#: Bytes a ``measure_gap`` call holds per trial at its peak (losses and per-trial records; 1.7 KiB
#: measured on a linear task): a point's ``trials`` are refused beyond ``MAX_BYTES`` of them.
TRIAL_BYTES = 2048

#: The keys of a grid file: key -> (command-line flag, meaning, example JSON value).
GRID_KEYS: dict[str, tuple[str, str, str]] = {
    "task": ("--task", "task family: " + " or ".join(TASK_TYPES), '"linear"'),
    "preset": ("--preset", "preset the task starts from: " + " or ".join(PRESETS), '"quick"'),
    "task_fields": ("", "overrides of the task's fields (synthetic.LinearTask / synthetic.MLPTask)",
                    '{"d_in": 8, "d_out": 8}'),
    "variants": ("--variants", "tuned factors: " + ", ".join(VARIANTS), '["b_only", "a_only"]'),
    "ranks": ("--ranks", "adapter ranks, each 1 .. min(d_in, d_out)", "[2, 4]"),
    "n": ("--n", "training-set sizes, each >= 1", "[64, 256]"),
    "trials": ("--trials", "training sets per point, >= 2", "100"),
    "loss": ("--loss", "evaluated loss (null: the task's default; see --loss)", '"population"'),
    "q_bits": ("--q-bits", "quantize the trained parameters to 2 .. 32 bits, or null", "8"),
    "seed": ("--seed", "base seed, >= 0", "0"),
}


def grid_help() -> str:
    """The grid-file format, two lines per key (the epilog of ``lora-asym sweep --help``).

    Infrastructure: the documentation of the grid file a user meets in README, "Sweeps on a
    cluster"; built from ``GRID_KEYS`` (meaning, example value, flag).
    """
    lines = ["Grid file (--grid FILE): a JSON object; every key is optional and a flag given on the",
             "command line overrides it. The points are variants x ranks x n. The keys:", ""]
    width = max(map(len, GRID_KEYS))
    for key, (flag, meaning, example) in GRID_KEYS.items():
        lines.append(f"  {key:<{width}}  {meaning}")
        lines.append(f"  {'':<{width}}  e.g. {example}" + (f"   (flag {flag})" if flag else "   (no flag)"))
    lines += ["", "An example grid file: docs/sweep_grid_example.json."]
    return "\n".join(lines)


def _task_class(name: str):
    if name == "LinearTask":
        return LinearTask
    if name == "MLPTask":
        from synthetic.mlp.engine import MLPTask

        return MLPTask
    raise ValueError(f"task type must be 'LinearTask' or 'MLPTask', got {name!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


#: The JSON name of each type ``json.loads`` returns.
JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- points ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    """One ``measure_gap`` call of a sweep; ``seed`` is the base seed, an integer >= 0 (``derive_seed``
    makes the point's).

    The fields are the arguments of ``synthetic.montecarlo.measure_gap`` (docs/THEORY.md §7.4);
    infrastructure for README, "Sweeps on a cluster".
    """

    task: Any
    variant: str
    rank: int | None
    n: int
    trials: int
    loss: str
    q_bits: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        as_int(self.seed, "seed", minimum=0)

    def spec(self) -> dict[str, Any]:
        """A plain-JSON description from which any process rebuilds the point.

        Infrastructure: keys ``task_type``, ``task`` (the task's fields, tuples as lists),
        ``variant``, ``rank``, ``n``, ``trials``, ``loss``, ``q_bits`` and ``base_seed``; what a
        worker of any backend receives (``synthetic.sweep.run_point``, ``task_from_spec``).
        """
        fields_ = {f.name: _plain(getattr(self.task, f.name)) for f in dataclasses.fields(self.task)}
        return {"task_type": type(self.task).__name__, "task": fields_, "variant": self.variant,
                "rank": self.rank, "n": self.n, "trials": self.trials, "loss": self.loss,
                "q_bits": self.q_bits, "base_seed": self.seed}


def derive_seed(spec: dict[str, Any]) -> int:
    """The point's seed: a hash of (base seed, task type and fields, n, loss), as an int in [0, 2^32).

    The seed does not depend on the variant, rank, q_bits or trial count: points that differ in
    those see the same training sets (common random numbers, so differences between variants are
    measured with less noise), and more trials extend a point's trials rather than redrawing them.
    It never depends on the worker that runs the point, so every backend gives the same numbers.
    The base seed ``spec["base_seed"]`` must be an integer >= 0 (``ValueError`` naming ``seed``).
    Infrastructure: the per-point seed of README, "Sweeps on a cluster"; the SHA-256 of the
    canonical JSON of those fields and the base seed seed a ``numpy.random.SeedSequence``, and
    the result seeds every stream of the point's trials (docs/THEORY.md §7.4).
    """
    _check_spec(spec)
    as_int(spec["base_seed"], "seed", minimum=0)
    key = json.dumps([spec["base_seed"], spec["task_type"], spec["task"], spec["n"], spec["loss"]], sort_keys=True)
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return int(np.random.SeedSequence([int(spec["base_seed"]), digest]).generate_state(1)[0])


#: The keys of a point's spec (``SweepPoint.spec``) and the type of each (``base_seed``, checked by
#: ``derive_seed`` as the seed it is, is only required).
SPEC_KEYS = {"task_type": str, "task": dict, "variant": str, "n": int, "trials": int, "loss": str}


def _check_spec(spec: object) -> None:
    """Raise ``ValueError`` naming ``spec`` unless it is a dict with the keys of ``SweepPoint.spec()``."""
    if not isinstance(spec, dict):
        raise ValueError(f"spec must be a dict made by SweepPoint.spec(), got {type(spec).__name__}")
    for key, kind in SPEC_KEYS.items():
        if not isinstance(spec.get(key), kind) or isinstance(spec.get(key), bool):
            raise ValueError(f"spec[{key!r}] must be a {kind.__name__}, got {_shown(spec.get(key))}")
    if "base_seed" not in spec:
        raise ValueError("spec has no 'base_seed': make it with SweepPoint.spec()")


def task_from_spec(spec: dict[str, Any]) -> Any:
    """The task of a ``SweepPoint.spec()``, rebuilt from its type name and fields.

    Infrastructure: lists become tuples and keys that are not fields of the task class are
    ignored; ``ValueError`` for a spec that ``SweepPoint.spec()`` could not have made.
    """
    _check_spec(spec)
    cls = _task_class(spec["task_type"])
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in spec["task"]:
            v = spec["task"][f.name]
            values[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**values)


def _widths(task: Any, variant: str) -> list[tuple[int | None, tuple[int, int]]]:
    """The (layer, (d_out, d_in)) shapes a rank must fit: the adapted layers, or a linear task's one layer."""
    if isinstance(task, LinearTask):
        return [(None, (task.d_out, task.d_in))]
    return [] if variant == "full" else [(layer, task.layer_shapes[layer]) for layer in task.adapted_layers]


def check_point(point: SweepPoint) -> None:
    """Raise ``ValueError`` naming the argument if ``measure_gap`` would refuse ``point``; run nothing.

    Checks what the engines check (``synthetic.linear.linear_trial_losses``,
    ``synthetic.mlp.mlp_trial_losses``): the variant, the rank against every adapted layer, ``n >= 1``,
    ``trials >= 2``, the loss of the task, ``q_bits`` in [2, 32], and the memory of one training set
    and of the per-trial results (``TRIAL_BYTES`` a trial) against ``theory.validation.MAX_BYTES``;
    ``loss="clipped"`` needs the task's ``clip`` and an MLP's ``batch_size`` may not exceed ``n``.
    Infrastructure: README, "Sweeps on a cluster" ("every point is checked ... before any runs");
    the arguments are those of ``measure_gap`` (docs/THEORY.md §7.4).
    """
    task, variant = point.task, point.variant
    _task_class(type(task).__name__)
    check_variant(variant)
    if point.rank is not None or variant != "full":
        rank = as_int(point.rank, "rank", minimum=1, maximum=None)
        for layer, (d_out, d_in) in _widths(task, variant):
            if rank > min(d_in, d_out):
                where = "" if layer is None else f" of adapted layer {layer}"
                raise ValueError(f"rank {rank} exceeds min(d_in, d_out) = {min(d_in, d_out)}{where}")
        as_int(rank, "rank")
    n = as_int(point.n, "n", minimum=1)
    trials = as_int(point.trials, "trials", minimum=2)
    linear = isinstance(task, LinearTask)
    width = task.d_in + task.d_out if linear else sum(task.widths)
    check_memory(n * width, "n", n, "one training set of n samples")
    check_memory(trials * (TRIAL_BYTES // 8), "trials", trials, "the per-trial results of one point")
    losses = LINEAR_LOSSES if linear else MLP_LOSSES[task.kind]
    if point.loss not in losses:
        kind = "a LinearTask" if linear else f"a {task.kind} MLPTask"
        raise ValueError(f"loss {point.loss!r} is not one of {', '.join(map(repr, losses))} for {kind}")
    if point.loss == "clipped" and task.clip is None:
        raise ValueError("loss 'clipped' needs task_fields 'clip' (the level c of min(loss, c)), got None")
    check_q_bits(point.q_bits)
    if not linear and task.batch_size is not None and task.batch_size > n:
        raise ValueError(f"batch_size {task.batch_size} exceeds n = {n}")


def check_points(points: list[SweepPoint]) -> None:
    """``check_point`` on every point, before any runs; the ``ValueError`` names the failing point.

    ``points`` must be a list or tuple of ``SweepPoint`` (``ValueError`` naming ``points`` otherwise).
    Infrastructure: README, "Sweeps on a cluster" (one error line, exit status 2, before any runs).
    """
    if not isinstance(points, (list, tuple)):
        raise ValueError(f"points must be a list of SweepPoint, got {type(points).__name__}")
    for i, point in enumerate(points):
        if not isinstance(point, SweepPoint):
            raise ValueError(f"points[{i}] must be a SweepPoint, got {type(point).__name__}")
        try:
            check_point(point)
        except ValueError as exc:
            raise ValueError(f"{exc} (points[{i}] of {len(points)}: variant {_shown(point.variant)}, "
                             f"rank {_shown(point.rank)}, n {_shown(point.n)})") from None


# --- grids -----------------------------------------------------------------------------------


def _name(value: object, key: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(map(repr, choices))}, got {_shown(value)}")
    return value


def _items(value: object, key: str, kind: type) -> tuple:
    """A list key (``variants``, ``ranks``, ``n``) as a tuple; one value stands for a list of one."""
    if isinstance(value, kind) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{key} must be a non-empty list, got {_shown(value)}")
    for i, item in enumerate(value):
        if kind is int:
            as_int(item, f"{key}[{i}]", maximum=None)  # the range: check_point, with the point
        elif not isinstance(item, kind):
            raise ValueError(f"{key}[{i}] must be a string, got {_shown(item)}")
    return tuple(value)


@dataclass(frozen=True)
class Grid:
    """A product grid of sweep points; the keys and their meaning are ``GRID_KEYS``.

    Every field is checked for its type on construction (``ValueError`` naming the key); the
    values' ranges are checked with each point (``check_point``). Lists may be given as lists or
    tuples; a single variant, rank or n stands for a list of one. Infrastructure: the grid of
    ``lora-asym sweep`` and of a ``--grid`` file (README, "Sweeps on a cluster").
    """

    task: str = "linear"
    preset: str = "quick"
    task_fields: dict[str, Any] = field(default_factory=dict)
    variants: tuple[str, ...] = ("b_only", "a_only")
    ranks: tuple[int, ...] = (2, 4)
    n: tuple[int, ...] = (64,)
    trials: int = 100
    loss: str | None = None
    q_bits: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _name(self.task, "task", tuple(TASK_TYPES))
        _name(self.preset, "preset", PRESETS)
        if not isinstance(self.task_fields, Mapping):
            raise ValueError(f"task_fields must be an object of task fields, e.g. {{\"d_in\": 8}}, "
                             f"got {_shown(self.task_fields)}")
        for name in self.task_fields:
            if not isinstance(name, str):
                raise ValueError(f"task_fields keys must be field names (strings), got {_shown(name)}")
        object.__setattr__(self, "task_fields", dict(self.task_fields))
        object.__setattr__(self, "variants", _items(self.variants, "variants", str))
        object.__setattr__(self, "ranks", _items(self.ranks, "ranks", int))
        object.__setattr__(self, "n", _items(self.n, "n", int))
        as_int(self.trials, "trials", maximum=None)
        if self.loss is not None and not isinstance(self.loss, str):
            raise ValueError(f"loss must be a string or null, got {_shown(self.loss)}")
        if self.q_bits is not None:
            as_int(self.q_bits, "q_bits", maximum=None)
        as_int(self.seed, "seed", minimum=0)

    def build_task(self) -> Any:
        """The grid's task: the preset with ``task_fields`` over it (``ValueError`` naming the field).

        ``LinearTask.quick()`` / ``full()`` or ``MLPTask.quick()`` / ``full()`` (docs/THEORY.md §7
        and §5), with ``dataclasses.replace``; JSON lists become tuples.
        """
        cls = _task_class(TASK_TYPES[self.task])
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(self.task_fields) - set(names))
        if unknown:
            raise ValueError(f"task_fields has unknown field {unknown[0]!r} for {cls.__name__}; "
                             f"its fields are: {', '.join(names)}")
        fields_ = {k: tuple(v) if isinstance(v, list) else v for k, v in self.task_fields.items()}
        try:
            return dataclasses.replace(getattr(cls, self.preset)(), **fields_)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"task_fields: {exc}") from None

    def points(self) -> list[SweepPoint]:
        """The points of the grid, variants x ranks x n, in that nesting order.

        A ``loss`` of None becomes the task's default: ``population`` (eq. (1), docs/THEORY.md §1.1)
        for a linear task, ``squared`` for an MLP regression, ``zero_one`` for an MLP
        classification (docs/THEORY.md §5, "Losses").
        """
        task = self.build_task()
        default = "population" if self.task == "linear" else ("squared" if task.kind == "regression" else "zero_one")
        return [SweepPoint(task, v, r, n, self.trials, self.loss or default, self.q_bits, self.seed)
                for v, r, n in itertools.product(self.variants, self.ranks, self.n)]


def read_grid(path: str | Path, name: str = "grid file") -> dict[str, Any]:
    """The keys of the grid file at ``path``: a UTF-8 JSON object with keys of ``GRID_KEYS``.

    Raises ``ValueError`` with one line that starts with ``name`` (``"--grid"`` on the command line)
    and the path when the file cannot be read, is not UTF-8, is not JSON, is not a JSON object or has
    a key that is not a grid key (the message lists them). ``Grid(**read_grid(path))`` checks the values.
    Infrastructure: ``lora-asym sweep --grid FILE`` (README, "Sweeps on a cluster").
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name} must be a path (a str or pathlib.Path), got {type(path).__name__}")
    where = f"{name} {str(path)!r}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where} is not UTF-8 JSON: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                         "is not UTF-8") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not UTF-8 JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; nesting too deep
        raise ValueError(f"{where} is not UTF-8 JSON this reader accepts: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{where} must hold a JSON object of grid keys ({', '.join(GRID_KEYS)}), "
                         f"got a JSON {JSON_TYPES.get(type(values), 'value')}")
    unknown = [k for k in values if k not in GRID_KEYS]
    if unknown:
        raise ValueError(f"{where} has unknown key {unknown[0]!r}; the keys are: {', '.join(GRID_KEYS)}")
    return values


