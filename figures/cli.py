"""The ``lora-asym`` command line: regenerate the theory figures, list them; ``lora-asym --version``.

Errors in the arguments or the output folder print one line and exit with status 2. After each
figure, ``figures`` prints its bound checks (``figures.checks``): one ``VIOLATION`` line per bound
below its measured gap beyond both intervals, else ``bounds held: k of k checks``; a violation
is a finding, not an error, and the exit status stays 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

from figures import registry
from figures.checks import report_lines
from synthetic.provenance import toolkit_version

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _fail(message: str) -> NoReturn:
    print(f"lora-asym: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _writable_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
            pass
    except OSError as exc:
        _fail(f"--out {path!r} is not a writable folder ({exc.strerror or exc})")
    return out


def _cmd_figures(args: argparse.Namespace) -> int:
    names = args.only or list(registry.FIGURES)
    unknown = [n for n in names if n not in registry.FIGURES]
    if unknown:
        _fail(f"unknown figure {unknown[0]!r}; run `lora-asym list` (known: {', '.join(registry.FIGURES)})")
    out = _writable_dir(args.out)
    mode = "full" if args.full else "quick"
    for name in names:
        start = time.perf_counter()
        paths = registry.load(name).make(out, quick=not args.full, seed=args.seed, force=args.force)
        print(f"{name} ({mode}, seed {args.seed}): {paths['png']} [{time.perf_counter() - start:.1f} s]")
        checks = json.loads(Path(paths["json"]).read_text()).get("bound_checks", [])
        for line in report_lines(name, checks):
            print(line)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    width = max(map(len, registry.FIGURES))
    for name in registry.FIGURES:
        print(f"{name:<{width}}  {registry.load(name).DESCRIPTION}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from figures.demo import render

    print(render(args.seed))
    return 0


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def _sweep_module():
    from synthetic import sweep

    return sweep


def _bench_module():
    """The benchmark package ``bench/`` of the checkout this toolkit runs from, or None outside one.

    ``bench`` is not installed with the toolkit (a top-level package of that generic name would
    shadow a user's, or be shadowed): it is loaded from the folder beside ``figures/``.
    """
    root = Path(__file__).resolve().parents[1] / "bench"
    loaded = sys.modules.get("bench")
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve().parent == root:
        return loaded
    init = root / "__init__.py"
    if not init.is_file():
        return None
    spec = importlib.util.spec_from_file_location("bench", init, submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module
    spec.loader.exec_module(module)
    return module


def _no_bench(args: argparse.Namespace) -> int:
    _fail("lora-asym bench runs from a checkout of the repository (its bench/ folder is not installed); "
          "run it there, or `python -m bench` in the checkout")


def _adapters_module():
    from peft_bridge import cli as adapters_cli

    return adapters_cli


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lora-asym`` and its subcommands: ``figures``, ``list``, ``demo``,
    ``sweep``, ``bench`` and ``adapters`` (README.md, "The command line").

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _Parser(
        prog="lora-asym",
        description="Verify, measure and teach 'Asymmetry in Low-Rank Adapters of Foundation Models'.",
        epilog="Example: lora-asym figures --quick --out figures/out",
    )
    parser.add_argument("--version", action="version", version=f"lora-asym {toolkit_version()}",
                        help="print the version (lora-asym VERSION) and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_figure_commands(sub)
    _add_tool_commands(sub)
    return parser


def _add_figure_commands(sub) -> None:
    """The ``figures``, ``list`` and ``demo`` subcommands."""
    fig = sub.add_parser(
        "figures",
        help="regenerate the theory figures (PNG, PDF, data JSON, caption)",
        description="Regenerate the theory figures into --out: PNG, PDF, the numbers (JSON) and a caption.",
        epilog=(
            "After each figure that compares bounds with measured gaps, one line per bound that fell below "
            "the measured gap of its loss beyond both intervals ('VIOLATION <figure>: ...'), or 'bounds held: "
            "k of k checks (j informative)', informative meaning below the loss's range and resolved; every check is in NAME.json under bound_checks. A violation is a finding, not an "
            "error: the exit status stays 0. "
            "Example: lora-asym figures --quick --only asymmetry_vs_rank --out figures/out --seed 0"
        ),
    )
    speed = fig.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="small grids, seconds (default)")
    speed.add_argument("--full", action="store_true", help="paper quality: more draws, finer grids")
    fig.add_argument("--only", nargs="+", metavar="NAME", help="figures to make (see `lora-asym list`)")
    fig.add_argument("--out", default="figures/out", help="output folder (default: figures/out)")
    fig.add_argument("--seed", type=_seed, default=0, help="seed of every random draw (default: 0)")
    fig.add_argument("--force", action="store_true", help="recompute even what is cached under OUT/.cache")
    fig.set_defaults(func=_cmd_figures)

    lst = sub.add_parser(
        "list",
        help="list the figures with one-line descriptions",
        description="List the figures that `lora-asym figures` makes.",
        epilog="Example: lora-asym list",
    )
    lst.set_defaults(func=_cmd_list)

    demo = sub.add_parser(
        "demo",
        help="print a small table showing the asymmetry and the bound ratio (seconds)",
        description="A classroom demonstration: the asymmetry on linear regression and the Lemma 4.5 bound ratio.",
        epilog="Example: lora-asym demo --seed 1",
    )
    demo.add_argument("--seed", type=_seed, default=0, help="seed of the Monte Carlo draws (default: 0)")
    demo.set_defaults(func=_cmd_demo)



def _add_tool_commands(sub) -> None:
    """The ``sweep``, ``bench`` and ``adapters`` subcommands (their flags live with their modules)."""
    sweep = sub.add_parser(
        "sweep",
        help="Monte Carlo gaps over a grid of configurations, on serial, process or Dask backends",
        description="Measure generalization gaps over a grid (variants x ranks x n); identical numbers on every backend.",
    )
    _sweep_module().add_arguments(sweep)  # its flags, and the epilog: the grid-file keys and an example
    sweep.set_defaults(func=lambda args: _sweep_module().main(args))

    bench = sub.add_parser(
        "bench",
        help="benchmark the batched engines against a per-run PyTorch loop (minutes)",
        description="Benchmark the batched Monte Carlo engines against per-run loops, side by side in one process.",
        epilog="Example: lora-asym bench --json bench.json",
    )
    module = _bench_module()
    if module is None:
        bench.set_defaults(func=_no_bench)
    else:
        module.add_arguments(bench)
        bench.set_defaults(func=module.run_args)

    adapters = sub.add_parser("adapters", help="compare saved PEFT LoRA adapters (Figure 1) and bound them (Lemma 4.5)")
    _adapters_module().add_arguments(adapters)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lora-asym`` console script (README.md, "The command line").

    Sets ``MPLBACKEND=Agg`` and one BLAS/OpenMP thread unless already set, parses ``argv`` and runs
    the subcommand; an interrupt exits with status 130, a usage error with 2.

    Parameters
    ----------
    argv : list of str, optional, the arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    int, the exit status.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    # The toolkit's linear algebra is many small matrices: one BLAS thread per process is faster
    # than several competing ones on a loaded machine. Set before numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torch: spinning threads on small ops stall on a loaded machine
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("lora-asym: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
