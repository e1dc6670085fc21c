"""Gradient descent in torch (float64) on the population loss reaches the closed-form optima.

An independent route to Lemmas 4.1 and 4.2: autograd differentiates eq. (1) and plain gradient
descent minimises it; the result must match eqs. (2) and (3).
"""

import numpy as np
import pytest
import torch

import theory
from tests.strategies import covariance_from, spectrum

STEPS = 4000
#: Relative distance to the closed-form loss accepted after STEPS of gradient descent.
GD_SLACK = 1e-8


def _population_loss_t(delta, m, sigma, noise_var):
    resid = delta - m
    return delta.shape[0] * noise_var + torch.einsum("ij,jk,ik->", resid, sigma, resid)


def _descend(param, loss_fn, lipschitz):
    """Plain gradient descent with step 1/L on a convex quadratic."""
    for _ in range(STEPS):
        loss = loss_fn(param)
        (grad,) = torch.autograd.grad(loss, param)
        with torch.no_grad():
            param -= grad / lipschitz
    with torch.no_grad():
        return float(loss_fn(param))


def _problem(kind):
    rng = np.random.default_rng(3)
    d_out, d_in, r = 5, 6, 2
    sigma = covariance_from(spectrum(kind, d_in, alpha=1.0, k=3), rng)
    delta = rng.standard_normal((d_out, d_in))
    a = theory.haar_stiefel(d_in, r, rng).T
    b = theory.haar_stiefel(d_out, r, rng)
    return delta, sigma, a, b, 0.25


@pytest.mark.parametrize("kind", ["isotropic", "powerlaw", "lowrank"])
def test_gd_on_b_reaches_lemma_4_1(kind):
    """Lemma 4.1: min_B L(BA) for frozen A, found by GD from B = 0, equals eq. (2)."""
    delta, sigma, a, _, s2 = _problem(kind)
    dt, st, at = (torch.tensor(x, dtype=torch.float64) for x in (delta, sigma, a))
    lipschitz = 2 * float(np.linalg.eigvalsh(a @ sigma @ a.T)[-1])
    b = torch.zeros(delta.shape[0], a.shape[0], dtype=torch.float64, requires_grad=True)
    reached = _descend(b, lambda b: _population_loss_t(dt, b @ at, st, s2), lipschitz)
    closed = theory.loss_b_only(delta, a, sigma, s2)
    assert abs(reached - closed) <= GD_SLACK * closed


@pytest.mark.parametrize("kind", ["isotropic", "powerlaw", "lowrank"])
def test_gd_on_a_reaches_lemma_4_2(kind):
    """Lemma 4.2: min_A L(BA) for frozen B, found by GD from A = 0, equals eq. (3)."""
    delta, sigma, _, b, s2 = _problem(kind)
    dt, st, bt = (torch.tensor(x, dtype=torch.float64) for x in (delta, sigma, b))
    lipschitz = 2 * float(np.linalg.eigvalsh(sigma)[-1] * np.linalg.eigvalsh(b.T @ b)[-1])
    a = torch.zeros(b.shape[1], delta.shape[1], dtype=torch.float64, requires_grad=True)
    reached = _descend(a, lambda a: _population_loss_t(dt, bt @ a, st, s2), lipschitz)
    closed = theory.loss_a_only(delta, b, sigma, s2)
    assert abs(reached - closed) <= GD_SLACK * closed
