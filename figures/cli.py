"""The ``lora-asym`` command line: regenerate the theory figures, list them; ``lora-asym --version``.

Errors in the arguments or the output folder print one line and exit with status 2. After each
figure, ``figures`` prints its bound checks (``figures.checks``): one ``VIOLATION`` line per bound
below its measured gap beyond both intervals, else ``bounds held: k of k checks (j informative)``; a violation
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

from tqdm.auto import tqdm

from figures import parallel, registry
from figures.checks import report_lines
from synthetic.provenance import toolkit_version

EXIT_USAGE = 2
#: Exit status when the reader of standard output goes away (``lora-asym list | head -3``): 128 +
#: SIGPIPE, what a shell reports for ``ls`` in ``ls | head``; nothing is printed.
EXIT_BROKEN_PIPE = 141


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
    if args.scheduler is not None and args.backend != "dask":
        _fail(f"--scheduler needs --backend dask, got --backend {args.backend}")
    out = _writable_dir(args.out)
    mode = "full" if args.full else "quick"
    modules = {name: registry.load(name) for name in names}
    configs = {name: m.Config.full() if args.full else m.Config.quick() for name, m in modules.items()}
    # The heaviest figures come last in the registry: submitting them first keeps every worker busy.
    plans = [(name, modules[name].units(configs[name], args.seed)) for name in reversed(names)]
    backend = parallel.Backend("serial" if args.jobs == 1 and args.backend == "processes" else args.backend,
                               args.jobs, args.scheduler, args.timeout)
    start = time.perf_counter()

    def draw(name: str, seconds: float) -> None:
        paths = modules[name].make(out, quick=not args.full, seed=args.seed, config=configs[name])
        lines = [f"{name} ({mode}, seed {args.seed}): {paths['png']} [{seconds:.1f} s of work; "
                 f"done at {time.perf_counter() - start:.1f} s]"]
        lines += report_lines(name, json.loads(Path(paths["json"]).read_text()).get("bound_checks", []))
        for line in lines:
            tqdm.write(line, file=sys.stdout)

    try:
        parallel.make_figures(plans, out / ".cache", draw, backend=backend, force=args.force)
    except ValueError as exc:  # an unreachable scheduler, or workers that run other code
        _fail(str(exc))
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


def _number(text: str, kind: type, low: float, what: str) -> float:
    """``text`` as a ``kind`` (int or float) of at least ``low`` and finite; else argparse's error, which
    names the flag and says ``must be WHAT, got TEXT``."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not low <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def _seed(text: str) -> int:
    return _number(text, int, 0, "a non-negative integer")


def _positive(text: str) -> int:
    return _number(text, int, 1, "a positive integer")


def _positive_real(text: str) -> float:
    value = _number(text, float, 0.0, "a positive number of seconds")
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the system reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


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
    fig.add_argument("--jobs", type=_positive, default=_cores(), metavar="N",
                     help=f"units of work run at once: worker processes, or Dask workers of a local cluster "
                          f"(default: the number of cores, {_cores()}); 1 runs them in this process")
    fig.add_argument("--backend", choices=parallel.BACKENDS, default="processes",
                     help="where units run: serial (this process), processes (--jobs local processes) or dask "
                          "(a cluster at --scheduler, else a local one of --jobs workers) (default: processes)")
    fig.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786 "
                                                            "(with --backend dask)")
    fig.add_argument("--timeout", type=_positive_real, default=10.0, metavar="SECONDS",
                     help="seconds to wait for --scheduler to answer (default: 10)")
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
    the subcommand; an interrupt exits with status 130, a usage error with 2, and a closed
    standard output (the reader of a pipe stopped early) quietly with 141, as ``ls | head`` does.

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
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # --help, --version or a usage error: what argparse printed must reach the reader
            sys.stdout.flush()
            raise
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe fails here, not in the flush at exit
        return status
    except KeyboardInterrupt:
        print("lora-asym: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """Standard output's reader has closed it: point stdout at the null device, so that the flush
    at exit cannot fail again and print a traceback, and return ``EXIT_BROKEN_PIPE``."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor (replaced in-process)
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())
