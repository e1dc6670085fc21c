"""``lora-asym adapters``: compare saved PEFT LoRA adapters (Figure 1) and bound them (Lemma 4.5).

``lora-asym adapters similarity DIR1 DIR2 [--side A|B]`` prints the CCA similarity of each LoRA
module's factors (Zhu et al., ICML 2024, Figure 1; docs/THEORY.md §3); ``lora-asym adapters
bound DIR --n N --q-bits Q --sigma S [--variant ...]`` prints Lemma 4.5 (docs/THEORY.md §2.2)
for the adapted layers' shapes. A missing or malformed adapter folder, or a bad value, prints
one line on stderr and exits with status 2. Only ``safetensors`` (the ``[peft]`` extra) is
needed, not PEFT.
"""

from __future__ import annotations

import argparse
import sys

from theory.variants import VARIANTS

EXIT_USAGE = 2
SIDES = ("A", "B")


def _error(message: str) -> int:
    """Print ``message`` as one ``lora-asym: error:`` line on stderr; return ``EXIT_USAGE``."""
    print(f"lora-asym: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


def _cmd_similarity(args: argparse.Namespace) -> int:
    """``adapters similarity``: per-module ``adapter_similarity`` beside ``r/d``, then the mean."""
    from peft_bridge.adapters import adapter_similarity, load_adapter

    sides = [args.side] if args.side else list(SIDES)
    try:
        shapes = {name: (b.shape[0], a.shape[1], a.shape[0]) for name, (a, b) in load_adapter(args.dir1).items()}
        values = {side: adapter_similarity(args.dir1, args.dir2, side) for side in sides}
    except ValueError as exc:
        return _error(str(exc))
    width = max(len("module"), *map(len, shapes)) + 2
    print(f"CCA similarity of {args.dir1} and {args.dir2}: 1 = the same subspace; independent random "
          f"subspaces score r/d on average (d = d_in for A, d_out for B)")
    print(f"{'module':<{width}}" + "".join(f"{side:>7}{'r/d':>7}" for side in sides))
    for name, (d_out, d_in, rank) in shapes.items():
        cells = "".join(f"{values[side][name]:7.3f}{rank / (d_in if side == 'A' else d_out):7.3f}" for side in sides)
        print(f"{name:<{width}}{cells}")
    means = "".join(f"{sum(values[side].values()) / len(shapes):7.3f}{'':7}" for side in sides)
    print(f"{'mean':<{width}}{means}".rstrip())
    return 0


def _cmd_bound(args: argparse.Namespace) -> int:
    """``adapters bound``: per variant ``N``, ``q N ln 2`` nats and Lemma 4.5's bound on ``|gen|``."""
    from bounds.mi import lora_mi_bound, lora_mi_nats
    from bounds.params import trainable_params
    from peft_bridge.adapters import load_adapter

    try:
        factors = load_adapter(args.dir)
        shapes = [(b.shape[0], a.shape[1]) for a, b in factors.values()]
        ranks = sorted({a.shape[0] for a, _ in factors.values()})
        if len(ranks) > 1:
            raise ValueError(f"the adapter in {args.dir!r} has modules of ranks {ranks}; Lemma 4.5 here takes one rank")
        rows = [(v, trainable_params(v, shapes, ranks[0]), lora_mi_nats(v, shapes, ranks[0], args.q_bits),
                 lora_mi_bound(v, shapes, ranks[0], args.q_bits, args.sigma, args.n)) for v in args.variant]
    except ValueError as exc:
        return _error(str(exc))
    kinds = sorted({f"{d_out}x{d_in}" for d_out, d_in in shapes})
    print(f"Lemma 4.5 for {args.dir}: {len(shapes)} adapted layers (d_out x d_in: {', '.join(kinds)}), rank "
          f"{ranks[0]}; q = {args.q_bits} bits per trained parameter, sigma = {args.sigma:g}, n = {args.n}")
    print(f"{'variant':<8}{'N trained':>11}{'I(W;S) <= nats':>17}{'|gen| <=':>11}")
    for variant, params, nats, bound in rows:
        print(f"{variant:<8}{params:>11}{nats:>17.1f}{bound:>11.4g}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    r"""Add the ``similarity`` and ``bound`` subcommands to the ``adapters`` parser.

    ``similarity DIR1 DIR2 [--side A|B]`` prints, per LoRA module, the CCA similarity
    ``ρ = ‖U_1ᵀU_2‖_F² / min(r_1, r_2)`` of the two adapters' ``A`` row spaces and ``B`` column
    spaces (:func:`peft_bridge.adapter_similarity`; Zhu et al., ICML 2024, Figure 1;
    docs/THEORY.md §3) beside ``r/d``, the mean for independent random subspaces, and the mean
    over modules. ``bound DIR --n N --q-bits Q --sigma S [--variant ...]`` prints, per variant,
    the trained-parameter count ``N`` for the adapter's shapes and rank, ``I(W; S) <= q N ln 2``
    nats and Lemma 4.5 of the paper (docs/THEORY.md §2.2),

    .. math:: |\mathrm{gen}| \le \sqrt{2 \sigma^2 q N \ln 2 / n}

    (``bounds.lora_mi_nats``, ``bounds.lora_mi_bound``), for an adapter whose modules share one
    rank. Each subcommand stores its handler as ``func`` (``_cmd_similarity``, ``_cmd_bound``),
    which returns the exit status: 0, or 2 after one error line.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``adapters`` parser of ``lora-asym``; modified in place.
    """
    parser.description = "Compare saved PEFT LoRA adapters (Figure 1) and bound them (Lemma 4.5)."
    parser.epilog = "Example: lora-asym adapters similarity out/adapters/lora_task1_seed0 out/adapters/lora_task1_seed1"
    sub = parser.add_subparsers(dest="adapters_command", required=True)
    sim = sub.add_parser(
        "similarity", help="per-module CCA similarity of the A and B factors of two saved adapters",
        description="Per-module CCA similarity of the factors of two saved PEFT LoRA adapters (Figure 1).",
        epilog="Example: lora-asym adapters similarity run1/ run2/ --side B",
    )
    sim.add_argument("dir1", help="folder of a saved adapter (adapter_config.json, adapter_model.safetensors)")
    sim.add_argument("dir2", help="folder of another saved adapter with the same LoRA modules")
    sim.add_argument("--side", choices=SIDES, help="only the A (row space) or B (column space) factors")
    sim.set_defaults(func=_cmd_similarity)
    bound = sub.add_parser(
        "bound", help="Lemma 4.5 for the shapes of a saved adapter",
        description="Lemma 4.5 (Xu-Raginsky with q N ln 2 nats) for the layers a saved adapter adapts.",
        epilog="Example: lora-asym adapters bound run1/ --n 16384 --q-bits 16 --sigma 0.5 --variant b_only lora",
    )
    bound.add_argument("dir", help="folder of a saved adapter")
    bound.add_argument("--n", type=int, required=True, help="number of training samples")
    bound.add_argument("--q-bits", type=int, required=True, help="bits per stored trained parameter")
    bound.add_argument("--sigma", type=float, required=True, help="sub-Gaussian parameter of the loss (0.5: 0-1 loss)")
    bound.add_argument("--variant", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                       help="tuning variants to bound (default: all)")
    bound.set_defaults(func=_cmd_bound)
