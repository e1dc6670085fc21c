"""Benchmarks: the toolkit's batched engines against per-run loops, the matmul peak, scaling, and
the Gaussian-channel estimator."""

from bench.channel import BoundsBenchConfig, time_bounds
from bench.cli import add_arguments, main, run_args
from bench.compare import LinearBenchConfig, MLPBenchConfig, gap_check, time_linear, time_mlp
from bench.peak import matmul_peak_gflops

__all__ = [
    "BoundsBenchConfig",
    "LinearBenchConfig",
    "MLPBenchConfig",
    "add_arguments",
    "gap_check",
    "main",
    "matmul_peak_gflops",
    "run_args",
    "time_bounds",
    "time_linear",
    "time_mlp",
]
