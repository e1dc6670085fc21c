r"""The fused training kernel of full-batch MLP adapters: compiled on first use, torch as the fallback.

``kernel.c`` computes the gradients of ``synthetic.mlp.backprop.AdapterNet`` (forward, output
gradient and backward; the formulas are in that module) and ``FlatAdam``'s update, but for each
trial in blocks of 8 rows: a block's activations and gradients stay in the L1 cache, and the
products run on vectors of the processor's width (16 floats with AVX-512, 8 with AVX or AVX2, 4
otherwise) accumulated in registers, whereas each eager torch call of a step reads and writes a
whole ``(T, n, width)`` tensor. Each thread trains its range of trials
from the first step to the last in one call (the trials are independent and Adam is
elementwise), so a step costs no Python and no thread synchronisation. torch has no fused kernel
for this: ``torch.compile`` keeps the batched products as separate library calls, and measured
slower than the hand-ordered eager calls on the reference MLP.

Numbers (README, Performance): on the benchmark's reference MLP the kernel's training takes 0.5
to 0.7 of the eager torch path's time, interleaved with it on 1 and 2 threads. For a fully trained
layer (``full``) torch's matrix library is faster, and ``train_adapters`` keeps torch there.

The C source is compiled once per machine and processor with the C compiler (``$CC``, else the
one Python was built with) into a cache folder (``$LORA_ASYM_CACHE``, else
``~/.cache/lora-asym``), under a name hashed from the source, the flags and the processor, and
loaded with ``ctypes``. Without a compiler (a warning says so), or with ``LORA_ASYM_KERNEL=0``
in the environment, ``available()`` is False and training uses the torch path, which computes
the same numbers to float32 rounding (``tests/synthetic/mlp/test_mlp_kernel.py``).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import subprocess
import sysconfig
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from synthetic.mlp.backprop import AdapterNet, FlatAdam

SOURCE = Path(__file__).with_name("kernel.c")
#: Compiler flags. No reassociation or ``-ffast-math``: each sum is accumulated in a fixed order
#: and a diverging run yields the same NaN as torch. ``_march()`` is added (``-march=native``, or
#: ``$LORA_ASYM_MARCH``), and dropped if refused.
FLAGS = ("-O3", "-fno-math-errno", "-fno-trapping-math", "-funroll-loops", "-shared", "-fPIC")
MAX_LAYERS = 16  # as in kernel.c
_KINDS = {"base": 0, "full": 1, "merged": 2, "factor": 3}
_ACTIVATIONS = {"tanh": 0, "relu": 1}
_TASK_KINDS = {"regression": 0, "classification": 1}


class _Layer(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int32), ("d_in", ctypes.c_int32), ("d_out", ctypes.c_int32),
                ("rank", ctypes.c_int32)] + [(name, ctypes.c_void_p) for name in
                                             ("w", "a", "b", "base", "feats", "ga", "gb", "gw",
                                              "ma", "mb", "mw", "va", "vb", "vw")]


class _Net(ctypes.Structure):
    _fields_ = [("n_layers", ctypes.c_int32), ("m", ctypes.c_int32), ("activation", ctypes.c_int32),
                ("kind", ctypes.c_int32), ("scaling", ctypes.c_float), ("x", ctypes.c_void_p),
                ("y", ctypes.c_void_p), ("label", ctypes.c_void_p), ("layer", _Layer * MAX_LAYERS)]


class _Adam(ctypes.Structure):
    _fields_ = [("steps", ctypes.c_int32), ("lr", ctypes.c_float), ("beta1", ctypes.c_float),
                ("beta2", ctypes.c_float), ("eps", ctypes.c_float)]


def cache_dir() -> Path:
    """Where the compiled kernel is kept: ``$LORA_ASYM_CACHE``, else ``~/.cache/lora-asym``.

    Infrastructure: the cache folder of README, "Performance", "The fused kernel" (compiled once
    per source and processor).
    """
    return Path(os.environ.get("LORA_ASYM_CACHE") or Path.home() / ".cache" / "lora-asym")


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def _march() -> list[str]:
    """The ``-march`` flag of the build: ``-march=$LORA_ASYM_MARCH`` when set (``haswell`` builds the
    AVX2 code another machine would run, on this one), else ``-march=native``."""
    return [f"-march={os.environ.get('LORA_ASYM_MARCH') or 'native'}"]


def _processor() -> str:
    """The processor's model and instruction-set flags (the build uses ``_march()``)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    wanted = [ln for ln in lines if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(dict.fromkeys(wanted)) or f"{platform.machine()} {platform.processor()}"


def _build(target: Path) -> None:
    """Compile ``SOURCE`` into the shared library ``target`` (atomically: a temporary file, renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        for extra in (_march(), []):
            cmd = [*_compiler(), *FLAGS, *extra, str(SOURCE), "-o", tmp, "-lm"]
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if result.returncode == 0:
                os.replace(tmp, target)
                return
        raise OSError(f"compiling {SOURCE.name} failed: {result.stderr.strip()[:500]}")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@functools.cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get("LORA_ASYM_KERNEL", "1") == "0":
        return None
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(_compiler() + list(FLAGS) + _march()).encode(),
                                     _processor().encode()])).hexdigest()[:16]
    target = cache_dir() / f"mlp_kernel-{key}.so"
    try:
        if not target.exists():
            _build(target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as exc:
        warnings.warn(f"the fused MLP kernel is unavailable ({exc}); training uses the eager torch "
                      "gradients, which are slower", UserWarning, stacklevel=3)
        return None
    lib.mlp_scratch_floats.argtypes = [ctypes.POINTER(_Net)]
    lib.mlp_scratch_floats.restype = ctypes.c_int64
    lib.mlp_gradients.argtypes = [ctypes.POINTER(_Net), ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p]
    lib.mlp_gradients.restype = None
    lib.mlp_train.argtypes = [ctypes.POINTER(_Net), ctypes.POINTER(_Adam), ctypes.c_int32, ctypes.c_int32,
                              ctypes.c_void_p]
    lib.mlp_train.restype = None
    lib.mlp_tanh.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.mlp_tanh.restype = None
    return lib


def available() -> bool:
    """Whether the fused kernel can be used here (compiled, or compiled now, and not disabled).

    Infrastructure: False with ``LORA_ASYM_KERNEL=0`` or when compiling fails (a ``UserWarning``
    says why); training then runs in torch (README, "Performance", "The fused kernel").
    """
    return _library() is not None


def _pointer(t: torch.Tensor | None, dtype: torch.dtype = torch.float32) -> int | None:
    if t is None:
        return None
    if t.dtype != dtype or not t.is_contiguous():
        raise ValueError(f"the fused kernel needs contiguous {dtype} tensors, got {t.dtype} of shape {tuple(t.shape)}")
    return t.data_ptr()


class FusedTrainer:
    r"""Full-batch training of ``T`` adapted networks by the fused kernel.

    Built from an ``AdapterNet`` (its fixed input ``h0``, base pre-activation and frozen
    features, computed once) whose trained tensors and gradients are those of ``adam``, and the
    training targets. ``gradients()`` writes the gradient of every trial's mean training loss
    into ``adam.grads``, as ``AdapterNet.backward(_output_gradient(AdapterNet.forward(), target,
    kind))`` does; ``train(steps)`` runs ``steps`` Adam steps, as ``steps`` times
    ``gradients(); adam.step()`` would. Training runs each thread's trials from the first step
    to the last in one call of the kernel: the trials are independent and Adam is elementwise.
    Infrastructure: the fast path of the training of docs/THEORY.md §5, equal to the torch path
    to float32 accuracy (README, "Performance", "The fused kernel"). ``RuntimeError`` when the
    kernel is unavailable; the tensors must be contiguous float32 (labels int64).

    Parameters
    ----------
    net : the ``AdapterNet`` of the trials, built on ``adam.params`` and ``adam.grads``
    adam : the optimizer whose buffers hold the trained tensors, gradients and moments
    target : (T, n, d_L) float32 targets, or (T, n) int64 labels
    kind : ``"regression"`` or ``"classification"``
    """

    def __init__(self, net: AdapterNet, adam: FlatAdam, target: torch.Tensor, *, kind: str) -> None:
        lib = _library()
        if lib is None:
            raise RuntimeError("the fused MLP kernel is unavailable; check available() first")
        layers = net.layer_tensors()
        if not 1 <= len(layers) <= MAX_LAYERS:
            raise ValueError(f"the fused kernel takes 1 to {MAX_LAYERS} layers, got {len(layers)}")
        if kind not in _TASK_KINDS:
            raise ValueError(f"kind must be one of {tuple(_TASK_KINDS)}, got {kind!r}")
        self._lib, self._adam = lib, adam
        x = net.h0
        self.T, n = x.shape[0], x.shape[1]
        c = _Net(n_layers=len(layers), m=n, activation=_ACTIVATIONS[net.act], kind=_TASK_KINDS[kind],
                 scaling=net.s, x=_pointer(x))
        target = target.contiguous()
        if kind == "classification":
            c.label = _pointer(target, torch.int64)
        else:
            c.y = _pointer(target)
        keep: list[torch.Tensor] = [x, target]
        moments = {id(adam.grads[k]): adam.moments[k] for k in adam.grads}
        for slot, (layer_kind, weight, params, grads) in zip(c.layer, layers):
            d_out, d_in = weight.shape
            a = params.get("A")
            slot.kind, slot.d_in, slot.d_out = _KINDS[layer_kind], d_in, d_out
            slot.rank = 0 if a is None else a.shape[1]
            w = params.get("W", weight if layer_kind in ("base", "merged") else None)
            tensors = {"w": w, "a": None if "feats" in params else a, "b": params.get("B"),
                       "base": params.get("base"), "feats": params.get("feats")}
            for k in ("A", "B", "W"):
                if k in grads:
                    first, second = moments[id(grads[k])]
                    tensors.update({f"g{k.lower()}": grads[k], f"m{k.lower()}": first, f"v{k.lower()}": second})
            for name, t in tensors.items():
                if t is not None and not t.is_contiguous():  # frozen; trained tensors are views of adam's buffers
                    t = t.contiguous()
                setattr(slot, name, _pointer(t))
                if t is not None:
                    keep.append(t)
        self._net, self._keep = c, keep  # the kernel reads the tensors through raw pointers
        workers = max(1, min(self.T, torch.get_num_threads()))
        bounds = [self.T * i // workers for i in range(workers + 1)]
        self._ranges = [(bounds[i], bounds[i + 1]) for i in range(workers)]
        floats = lib.mlp_scratch_floats(ctypes.byref(c))
        # 16 floats more, so that the scratch can start on a 64-byte boundary (kernel.c pads to it)
        self._scratch = [torch.empty(floats + 16, dtype=torch.float32) for _ in self._ranges]

    def _aligned(self, i: int) -> int:
        address = self._scratch[i].data_ptr()
        return address + (-address) % 64

    def _each_range(self, call: Callable[[int, int, int], None]) -> None:
        """``call(t0, t1, scratch)`` for every trial range, on one thread per range."""
        jobs = [(t0, t1, self._aligned(i)) for i, (t0, t1) in enumerate(self._ranges)]
        if len(jobs) == 1:
            call(*jobs[0])
            return
        with ThreadPoolExecutor(len(jobs)) as pool:
            list(pool.map(lambda job: call(*job), jobs))

    def gradients(self) -> None:
        """Write the gradients at the current parameters into ``adam.grads``.

        Those of ``synthetic.mlp.backprop`` (gradient of each trial's mean training loss,
        docs/THEORY.md §5), computed by the kernel in blocks of rows, one thread per range of trials.
        """
        self._each_range(lambda t0, t1, scratch: self._lib.mlp_gradients(ctypes.byref(self._net), t0, t1, scratch))

    def train(self, steps: int) -> None:
        """Run ``steps`` Adam steps on every trial (the optimizer's step count advances by ``steps``).

        The updates of ``FlatAdam.step`` after ``gradients()`` (the training of docs/THEORY.md §5),
        in the kernel; the optimizer must not have stepped yet (``ValueError`` otherwise).
        """
        if self._adam.t != 0:
            raise ValueError(f"train starts from Adam's first step; the optimizer has taken {self._adam.t}")
        beta1, beta2 = self._adam.betas
        h = _Adam(steps=int(steps), lr=self._adam.lr, beta1=beta1, beta2=beta2, eps=self._adam.eps)
        self._each_range(lambda t0, t1, scratch: self._lib.mlp_train(ctypes.byref(self._net), ctypes.byref(h),
                                                                      t0, t1, scratch))
        self._adam.t += int(steps)
