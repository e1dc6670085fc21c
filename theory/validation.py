"""Input checks shared by the public functions of ``theory``, ``bounds`` and ``synthetic``.

Every public function of the toolkit validates its arguments here, once, at the boundary, so
that a user sees a ``ValueError`` that names the argument and its value instead of a NumPy
traceback from deep inside a solver; the unchecked cores it then calls trust their inputs.
Each check returns the value it accepts, converted (a float64 array, an ``int``, a ``float``),
so that the caller computes with exactly what was checked.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from collections.abc import Callable
from numbers import Integral, Real
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from theory.tolerances import COND_WARN, RANK_RTOL, IllConditionedWarning, numerical_rank  # noqa: F401 - re-exported

Array = npt.NDArray[np.float64]
F = TypeVar("F", bound=Callable[..., object])

#: Relative tolerance (to the largest entry in magnitude) for the symmetry of a covariance matrix.
SYMMETRY_RTOL = 1e-8
#: Relative tolerance (to the largest entry in magnitude) for negative eigenvalues of a PSD matrix.
PSD_RTOL = 1e-8


#: Largest magnitude accepted for an entry of an array argument or for a real argument. The
#: toolkit multiplies pairs of its inputs (squares in eq. (1), Gram matrices ``A Σ Aᵀ`` and ``Xᵀ X``,
#: ``σ²``, ``ridge · I``): a product of two numbers within the limit is at most ``1e300``, below the
#: largest float64 (``1.8e308``) with a factor of about ``1e8`` to spare for sums of such products;
#: at 1e160 a single square overflows. Quantities of third order (``Tr[Δ Σ Δᵀ]``) can still
#: overflow: the public functions that form them check their results (:func:`checked_finite`).
MAX_ABS = 1e150
#: Largest integer accepted for a count, size or seed: float64 represents every integer up to 2**53.
MAX_COUNT = 2**53
#: Largest single allocation a public function makes before it refuses with ``ValueError``: a third
#: of a 24 GiB workstation, leaving room for the copies a solver makes.
MAX_BYTES = 8 * 2**30
#: The reason quoted when an input exceeds ``MAX_ABS``.
MAX_ABS_REASON = "products of such entries overflow float64"
#: The smallest positive normal float64: the scale of a zero matrix, so that relative tests stay defined.
_TINY = float(np.finfo(np.float64).tiny)


def _describe(value: object) -> str:
    """A one-line description of ``value`` for an error message: never the entries of an array or tensor."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, Integral) and not isinstance(value, bool) and abs(int(value)).bit_length() > 64:
        return f"an integer of about 2**{abs(int(value)).bit_length() - 1}"  # repr of a huge int is slow or refused
    text = repr(value)
    if "\n" in text:
        text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _from_torch(value: object) -> object:
    """A torch tensor as a NumPy array, float64 unless complex (detached, on the CPU); other values unchanged.

    Covers the dtypes NumPy lacks (bfloat16) and tensors that require grad, which ``np.asarray``
    refuses. torch is never imported here: a tensor exists only if torch has been imported."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.Tensor):
        return value
    if value.is_complex() or value.dtype == torch.bool:  # refused by the caller, which names it
        return value.detach().cpu().numpy()
    return value.detach().to(torch.float64).cpu().numpy()


def _float_array(value: object, name: str, what: str) -> Array:
    """``value`` as a float64 array without losing information (no complex parts, no strings)."""
    if type(value) is np.ndarray and value.dtype == np.float64:  # already what the conversion returns
        return value
    value = _from_torch(value)
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # e.g. a ragged nested list
        raise ValueError(f"{name} must be a real {what}, got {_describe(value)}") from exc
    if raw.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got complex entries ({_describe(value)})")
    if raw.dtype.kind == "b":  # as bool scalars are refused (as_real, as_int), so are bool arrays
        raise ValueError(f"{name} must be real numbers, got booleans ({_describe(value)})")
    if raw.dtype.kind in "biuf":
        return raw.astype(np.float64, copy=False)
    if raw.dtype.kind == "O":
        try:
            return raw.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a real {what}, got {_describe(value)}") from exc
    raise ValueError(f"{name} must be a real {what}, got {_describe(value)} of dtype {raw.dtype}")


def as_array(
    value: object, name: str, shape: tuple[int | None, ...] | None = None, *, max_abs: float | None = MAX_ABS
) -> Array:
    """Return a finite float64 array with ``len(shape)`` non-empty axes matching ``shape``.

    ``None`` in ``shape`` accepts any (non-zero) length on that axis; ``shape=None`` any number of
    axes, at least one. Entries must satisfy ``|x| <= max_abs`` (``None``: no limit). Raises
    ``ValueError`` naming ``name`` otherwise (ragged, complex or non-numeric input included).

    Parameters
    ----------
    value : array_like or torch.Tensor (read as float64); name : str, the argument's name;
    shape : tuple of (int or None), optional; max_abs : float or None, optional.

    Returns
    -------
    float64 ndarray, the input itself when it already is one.
    """
    arr = _float_array(value, name, "array")
    if shape is None:
        if arr.ndim == 0:
            raise ValueError(f"{name} must have at least 1 axis, got {_describe(value)}")
        shape = (None,) * arr.ndim
    if arr.ndim != len(shape):
        axes = "1 axis" if len(shape) == 1 else f"{len(shape)} axes"
        raise ValueError(f"{name} must have {axes}, got shape {arr.shape}")
    for axis, (want, got) in enumerate(zip(shape, arr.shape)):
        if got == 0 or (want is not None and want != got):
            expect = "non-zero length" if want is None else f"length {want}"
            raise ValueError(f"{name} has shape {arr.shape}; axis {axis} must have {expect}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr if max_abs is None else check_magnitude(arr, name, max_abs)


def as_matrix(
    value: object, name: str, shape: tuple[int | None, int | None] | None = None, *, max_abs: float | None = MAX_ABS
) -> Array:
    """Return ``value`` as a finite, non-empty float64 2-D array with ``|entries| <= max_abs``.

    Otherwise ``ValueError`` naming ``name``: not 2-D, empty, an axis of another length than
    ``shape`` asks for (``None``: any), NaN or infinite entries (counted), or an entry beyond
    ``max_abs`` (``None``: no limit).

    Parameters
    ----------
    value : array_like or torch.Tensor (read as float64); name : str, the argument's name;
    shape : (int or None, int or None), optional; max_abs : float or None, optional.

    Returns
    -------
    float64 ndarray (rows, cols), the input itself when it already is one.
    """
    arr = _float_array(value, name, "matrix")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got an array of shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise ValueError(f"{name} has shape {arr.shape}; axis {axis} must have length {want} "
                                 f"to fit the other arguments")
    top, bottom = float(arr.max()), float(arr.min())  # a NaN reaches both, +inf the first, -inf the second
    if not (math.isfinite(top) and math.isfinite(bottom)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite entries")
    if max_abs is not None and max(top, -bottom) > max_abs:
        check_magnitude(arr, name, max_abs)  # raises, naming the largest magnitude
    return arr


def check_magnitude(arr: Array, name: str, limit: float = MAX_ABS, reason: str = MAX_ABS_REASON) -> Array:
    """Return the finite array ``arr`` if ``max |arr| <= limit``, else raise ``ValueError``.

    The message names ``name``, the largest magnitude, the limit and ``reason``, e.g. "delta has
    entries up to 1e+200 in magnitude; the limit is 1e+150 (products of such entries overflow float64)".

    Parameters
    ----------
    arr : finite float64 ndarray; name : str; limit : float, optional; reason : str, optional.

    Returns
    -------
    ndarray, ``arr`` itself.
    """
    peak = max(float(arr.max()), -float(arr.min())) if arr.size else 0.0  # no |arr| temporary
    if peak > limit:
        raise ValueError(f"{name} has entries up to {peak:.3g} in magnitude; the limit is {limit:.3g} ({reason})")
    return arr


def as_covariance(value: object, name: str = "sigma", dim: int | None = None) -> Array:
    """Return a symmetric positive semi-definite (d, d) matrix (a ``Σ`` or ``G`` of docs/THEORY.md §1.1, §1b.1).

    Asymmetry up to ``SYMMETRY_RTOL`` and negative eigenvalues down to ``−PSD_RTOL`` times the
    largest entry (round-off in a computed covariance) are accepted: the result is the symmetric
    part, projected onto the PSD cone (negative eigenvalues set to 0) when it has any, so that
    every quadratic form of it, and every loss built from it, is non-negative.

    Parameters
    ----------
    value : (d, d) array_like, as for ``as_matrix``; name : str, optional; dim : int, optional.

    Returns
    -------
    (d, d) ndarray of float64, a new array: ``(value + valueᵀ) / 2``, projected if needed.
    """
    arr = as_matrix(value, name, (dim, dim))
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be square, got shape {arr.shape}")
    scale = max(float(arr.max()), -float(arr.min()), _TINY)  # max |arr|, without an |arr| temporary
    asym = float((arr - arr.T).max())  # the difference is antisymmetric: its largest entry is its largest |entry|
    if asym > SYMMETRY_RTOL * scale:
        raise ValueError(f"{name} must be symmetric; max |{name} - {name}^T| = {asym:.3g}")
    sym = (arr + arr.T) / 2
    eig_min = float(np.linalg.eigvalsh(sym)[0])
    if eig_min < -PSD_RTOL * scale:
        raise ValueError(f"{name} must be positive semi-definite; its smallest eigenvalue is {eig_min:.3g}")
    if eig_min < 0:  # within the tolerance: project onto the PSD cone, so no loss can come out negative
        evals, evecs = np.linalg.eigh(sym)
        sym = (evecs * np.clip(evals, 0.0, None)) @ evecs.T
        sym = (sym + sym.T) / 2
    return sym


def as_rank(value: object, d_in: int, d_out: int, name: str = "rank") -> int:
    """Return a LoRA rank ``1 <= r <= min(d_in, d_out)`` (docs/THEORY.md §0), or raise ``ValueError``.

    Parameters
    ----------
    value : int; d_in, d_out : int, the layer's dimensions; name : str, optional.

    Returns
    -------
    int
    """
    r = as_int(value, name, minimum=1)
    if r > min(d_in, d_out):
        raise ValueError(f"{name} {r} exceeds min(d_in, d_out) = {min(d_in, d_out)}")
    return r


def as_int(value: object, name: str, minimum: int | None = None, maximum: int | None = MAX_COUNT) -> int:
    """Return ``value`` as an int (bools rejected) in ``[minimum, maximum]``, or raise ``ValueError``.

    ``maximum`` defaults to ``MAX_COUNT`` (2**53): every count, size and seed of the toolkit enters
    float64 arithmetic, where larger integers are not exact. The check compares integers only and
    never builds a number larger than its input.

    Parameters
    ----------
    value : int; name : str; minimum, maximum : int or None, optional, inclusive bounds.

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {_describe(value)}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_describe(out)}")
    if maximum is not None and out > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_describe(out)}")
    return out


def check_memory(floats: int, name: str, value: object, what: str) -> None:
    """Raise ``ValueError`` before an allocation of ``floats`` float64 numbers beyond ``MAX_BYTES``.

    The message names the argument that sets the size, its value, what would be allocated and the
    memory it needs, e.g. "n = 1000000000000 needs 29.1 TiB for the training sets of a chunk of
    trials; the limit is 8 GiB (theory.validation.MAX_BYTES)".

    Parameters
    ----------
    floats : int; name, value : the argument that sets the size; what : str, what is allocated.
    """
    need = 8 * int(floats)
    if need > MAX_BYTES:
        raise ValueError(f"{name} = {_describe(value)} needs {_bytes(need)} for {what}; the limit is "
                         f"{_bytes(MAX_BYTES)} (theory.validation.MAX_BYTES)")


def _bytes(count: int) -> str:
    """``count`` bytes in the largest binary unit that keeps the number at least 1."""
    value, unit = float(count), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.3g} {unit}"


def as_real(value: object, name: str, *, minimum: float | None = None, positive: bool = False,
            maximum: float | None = None, max_abs: float | None = MAX_ABS) -> float:
    """Return ``value`` as a finite float within the stated range, or raise ``ValueError``.

    Besides the range, ``|value| <= max_abs`` (``MAX_ABS`` by default, ``None``: no limit): the
    reals of the toolkit scale arrays (``noise_var``, ``sigma``, ``ridge``, ``clip``, ``lr``) or
    are squared. Counts (``n``, ``steps``) are integers, checked by ``as_int`` without a limit.

    Parameters
    ----------
    value : real number (bools rejected); name : str; minimum, maximum : float or None, optional,
    inclusive bounds; positive : bool, optional (``value > 0``); max_abs : float or None, optional.

    Returns
    -------
    float
    """
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a real number, got {_describe(value)}")
    try:
        out = float(value)
    except OverflowError:  # an int beyond the float64 range
        raise ValueError(f"{name} is {_describe(value)}, beyond float64's range; the limit is "
                         f"{max_abs if max_abs is not None else 1.8e308:.3g}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    if positive and out <= 0:
        raise ValueError(f"{name} must be > 0, got {out}")
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    if maximum is not None and out > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {out}")
    if max_abs is not None and abs(out) > max_abs:
        raise ValueError(f"{name} is {out:.3g}; the limit is {max_abs:.3g} in magnitude "
                         f"(products of such numbers overflow float64)")
    return out


def checked_finite(*inputs: str) -> Callable[[F], F]:
    """Decorate a public function whose result can overflow float64 for inputs within ``MAX_ABS``.

    ``MAX_ABS`` keeps every product of two inputs finite; a result of third order or more
    (``Tr[Δ Σ Δᵀ]`` is cubic in the entries) can still overflow. The decorated function runs with
    NumPy's overflow and invalid-value warnings silenced (``numpy.errstate``) and its result (a
    float, an array, or a tuple or dataclass of them) is checked: if any part is inf or NaN,
    ``ValueError`` names the function and ``inputs`` instead of returning it. Only public
    functions are decorated; the cores they call run inside their caller's check.

    Parameters
    ----------
    *inputs : str, the arguments whose scale sets the result's, quoted by the error.

    Returns
    -------
    callable, the decorator.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def checked(*args: object, **kwargs: object) -> object:
            with np.errstate(over="ignore", invalid="ignore"):
                result = fn(*args, **kwargs)
            if not _all_finite(result):
                raise ValueError(
                    f"{fn.__name__} overflows float64 for these {', '.join(inputs)}: each is within "
                    f"{MAX_ABS:.0e} in magnitude but their products are not; scale them down"
                )
            return result

        return checked  # type: ignore[return-value]

    return decorate


def _all_finite(result: object) -> bool:
    """Whether every float in ``result`` (number, array, tuple, list or dataclass of them) is finite."""
    if type(result) is float:  # the result of most public functions: no NumPy call needed
        return math.isfinite(result)
    if isinstance(result, (tuple, list)):
        return all(_all_finite(part) for part in result)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return all(_all_finite(getattr(result, field.name)) for field in dataclasses.fields(result))
    if isinstance(result, (float, np.floating, np.ndarray)):
        return bool(np.all(np.isfinite(result)))
    return True


def as_generator(value: object, name: str = "rng") -> np.random.Generator:
    """Require a ``numpy.random.Generator``; seeds are chosen by entry points only.

    Parameters
    ----------
    value : numpy.random.Generator; name : str, optional.

    Returns
    -------
    numpy.random.Generator, ``value`` itself.
    """
    if not isinstance(value, np.random.Generator):
        raise ValueError(f"{name} must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
                         f"got {_describe(value)}")
    return value

