r"""The record of a supersample experiment: its loss pairs and selector bits, checked once.

Steinke & Zakynthinou ("Reasoning about generalization via conditional mutual information",
COLT 2020) draw a supersample ``Z~`` of ``n x 2`` i.i.d. points and fair selector bits
``U in {0, 1}^n``; a learner trains on ``Z~_{i, U_i}``, and the unselected points are fresh test
points (docs/THEORY.md §2.4). An experiment over ``k_z`` supersamples with ``k_u`` selectors each
is two arrays: ``losses`` (k_z, k_u, n, 2), the pairs ``L~_i = (l(W, Z~_{i,0}), l(W, Z~_{i,1}))``,
and ``selectors`` (k_z, k_u, n). ``synthetic`` records them (``synthetic.run_supersample`` and the
batched learners) and ``bounds`` reads them (the CMI bounds and ``bounds.supersample_gap``); the
record lives here, in the package both build on, because neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.validation import as_array

#: Most distinct loss values a supersample may hold: the plug-in MI estimates of the CMI bounds
#: need a small alphabet (a loss discretized to ``L`` levels has ``L + 1`` values).
MAX_LOSS_LEVELS = 32


@dataclass(frozen=True)
class Supersample:
    """Recorded losses of a supersample experiment, for losses with values in ``[0, 1]``.

    The two arrays are what the CMI bounds take (``bounds.ld_cmi_bound(ss.losses, ss.selectors,
    rng)``), checked once, here, by whoever builds the record: ``synthetic``'s experiments when
    they record a run, ``bounds`` when it receives the two arrays (docs/THEORY.md §2.4).

    Attributes
    ----------
    losses : ndarray
        (k_z, k_u, n, 2) ``l(W, Z~_{i, j})`` of the model trained with selector ``(k_z, k_u)``:
        float64 in ``[0, 1]``, at most ``MAX_LOSS_LEVELS`` distinct values, ``k_z >= 2``.
    selectors : ndarray
        (k_z, k_u, n) int64 ``U_i in {0, 1}``: the training set takes ``Z~_{i, U_i}``.
    """

    losses: np.ndarray
    selectors: np.ndarray

    def __post_init__(self) -> None:
        losses = as_array(self.losses, "losses")
        if losses.ndim != 4 or losses.shape[-1] != 2:
            raise ValueError(f"losses must have shape (k_z, k_u, n, 2), got {losses.shape}")
        if losses.shape[0] < 2:
            raise ValueError(f"losses must hold k_z >= 2 supersamples, got k_z = {losses.shape[0]}")
        if losses.min() < 0.0 or losses.max() > 1.0:
            raise ValueError(
                f"losses must lie in [0, 1] for a CMI bound, got range [{losses.min():.6g}, {losses.max():.6g}]"
            )
        levels = np.unique(losses).size
        if levels > MAX_LOSS_LEVELS:
            raise ValueError(
                f"losses takes {levels} distinct values; at most {MAX_LOSS_LEVELS} are supported by the "
                f"plug-in MI estimate. Round the loss to a grid (e.g. np.ceil(loss * k) / k) and compare "
                f"the bound with the gap of that same rounded loss"
            )
        try:
            selectors = np.asarray(self.selectors)
        except (TypeError, ValueError) as exc:  # a ragged nested sequence
            raise ValueError(f"selectors must be an array of shape {losses.shape[:3]}, got {self.selectors!r}") from exc
        if selectors.shape != losses.shape[:3]:
            raise ValueError(f"selectors must have shape {losses.shape[:3]} to match losses, got {selectors.shape}")
        if not np.all((selectors == 0) | (selectors == 1)):
            raise ValueError("selectors must contain only 0 and 1")
        object.__setattr__(self, "losses", losses)
        object.__setattr__(self, "selectors", selectors.astype(np.int64))

    @property
    def k_z(self) -> int:
        """Number of supersamples."""
        return self.losses.shape[0]

    @property
    def n(self) -> int:
        """Recorded (evaluated) pairs per run."""
        return self.losses.shape[2]

    @property
    def draws(self) -> int:
        """Number of training runs, ``k_z * k_u``."""
        return self.losses.shape[0] * self.losses.shape[1]

    @property
    def train_losses(self) -> np.ndarray:  # (k_z, k_u, n)
        """``l(W, Z~_{i, U_i})``, the loss on each training point."""
        return np.take_along_axis(self.losses, self.selectors[..., None], axis=-1)[..., 0]

    @property
    def test_losses(self) -> np.ndarray:  # (k_z, k_u, n)
        """``l(W, Z~_{i, 1 - U_i})``, the loss on each unselected (fresh) point."""
        return np.take_along_axis(self.losses, 1 - self.selectors[..., None], axis=-1)[..., 0]
