"""CCA similarity of factors (docs/THEORY.md §3, the paper's Figure 1 and Appendix A)."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import theory
from tests.strategies import seeds
from tests.tolerances import tol


@given(st.integers(2, 10), st.integers(1, 4), st.integers(1, 4), seeds)
def test_similarity_in_unit_interval_and_symmetric(d, r1, r2, seed):
    """0 <= ρ(M1, M2) = ρ(M2, M1) <= 1."""
    rng = np.random.default_rng(seed)
    m1, m2 = rng.standard_normal((d, min(r1, d))), rng.standard_normal((d, min(r2, d)))
    rho = theory.cca_similarity(m1, m2, "col")
    assert 0.0 <= rho <= 1.0
    assert_allclose(rho, theory.cca_similarity(m2, m1, "col"), **tol())


@given(st.integers(2, 10), st.integers(1, 4), seeds)
def test_invariant_to_reparametrisation(d, r, seed):
    """BA = (BC)(C⁻¹A): the column space of B and row space of A, hence ρ, do not change."""
    rng = np.random.default_rng(seed)
    r = min(r, d)
    b, a = rng.standard_normal((d, r)), rng.standard_normal((r, d + 1))
    c = rng.standard_normal((r, r)) + 3 * np.eye(r)
    assert_allclose(theory.cca_similarity(b, b @ c, "col"), 1.0, **tol())
    assert_allclose(theory.cca_similarity(a, np.linalg.solve(c, a), "row"), 1.0, **tol())


def test_orthogonal_spaces_have_zero_similarity():
    """Orthogonal column spaces give ρ = 0; a random pair in high dimension gives about r/d."""
    e = np.eye(6)
    assert theory.cca_similarity(e[:, :2], e[:, 2:4], "col") == 0.0
    q = theory.haar_stiefel(200, 4, np.random.default_rng(0), draws=2)
    assert theory.cca_similarity(q[0], q[1], "col") < 0.1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_torch_tensors_of_any_float_dtype_and_requiring_grad(dtype):
    """ρ of torch tensors (bf16 and fp16 included, requiring grad or not) is ρ of their values in float64."""
    gen = torch.Generator().manual_seed(0)
    b1, b2 = (torch.randn(9, 3, generator=gen).to(dtype) for _ in range(2))
    a1 = b1.T.clone().requires_grad_(True)
    expected = theory.cca_similarity(b1.double().numpy(), b2.double().numpy(), "col")
    assert_allclose(theory.cca_similarity(b1, b2.requires_grad_(True), "col"), expected, **tol())
    assert_allclose(theory.cca_similarity(a1, b2.T, "row"), expected, **tol())


@pytest.mark.parametrize(
    ("m1", "fragment"),
    [
        (lambda: torch.full((300, 4), float("nan"), dtype=torch.bfloat16), "m1 contains 1200 NaN or infinite entries"),
        (lambda: torch.ones(300, 4, 2, requires_grad=True), "m1 must be a 2-D matrix, got an array of shape (300, 4, 2)"),
        (lambda: torch.ones(300, 4, dtype=torch.complex64), "m1 must be real"),
        (lambda: torch.ones(299, 4, dtype=torch.float16), "got shapes (299, 4) and (300, 4)"),
    ],
)
def test_tensor_errors_are_one_short_line(m1, fragment):
    """A bad tensor is refused with a one-line ValueError that names it and never prints its entries."""
    with pytest.raises(ValueError) as info:
        theory.cca_similarity(m1(), torch.ones(300, 4), "col")
    message = str(info.value)
    assert fragment in message and "\n" not in message and "tensor(" not in message and len(message) < 160
