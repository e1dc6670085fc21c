"""The machine's measured fp32 matmul peak: the denominator of every "fraction of peak"."""

from __future__ import annotations

import time

import torch

from theory.validation import as_int


def matmul_peak_gflops(size: int = 2048, repeats: int = 8) -> float:
    r"""Best fp32 GFLOP/s of ``torch.matmul`` on two ``size x size`` matrices, in this process.

    .. math:: \text{peak} = \frac{2\, \text{size}^3}{\min_k t_k} \cdot 10^{-9}\ \text{GFLOP/s},

    one product costing ``2 size^3`` FLOPs (one multiply and one add per term), ``t_k`` the
    ``time.perf_counter`` wall time of the ``k``-th of ``repeats`` products into a preallocated
    output, after one untimed warm-up product; the inputs are standard normal from a
    ``torch.Generator`` seeded with 0. It estimates what the CPU sustains with torch's current
    thread setting (``torch.get_num_threads()``), which the caller sets to match the engines it
    compares. ``python -m bench`` measures it before and after the MLP timings and divides by
    the larger; the README (section "Performance") reports the result as "% of peak".

    Parameters
    ----------
    size : int >= 16
        Side of the square matrices.
    repeats : int >= 1
        Timed products.

    Returns
    -------
    float
        GFLOP/s of the fastest product.
    """
    size = as_int(size, "size", minimum=16)
    repeats = as_int(repeats, "repeats", minimum=1)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen)
    b = torch.randn(size, size, generator=gen)
    out = torch.empty(size, size)
    torch.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9
