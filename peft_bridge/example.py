r"""Worked example: the asymmetry of LoRA on a small transformer, through PEFT.

``python -m peft_bridge.example --out DIR`` (under a minute on one CPU thread, no download):

1. Pretrain a 2-layer BERT (hidden size 64, built from a ``BertConfig``) on a source sequence
   task (``peft_bridge.example_task``); put LoRA (rank 4) on the query and value projections.
2. Predict, per module, whether ``b_only`` or ``a_only`` wins: ``f(Σ, r)`` against ``f(G, r)``
   from the module's input second moment and output metric (``predict_asymmetry``;
   docs/THEORY.md §1b). Measure it: train each variant on that module alone on a target task.
3. Train ``lora``, ``b_only`` and ``a_only`` on all four modules, save the adapters to
   ``DIR/adapters`` and compare them across seeds and tasks (``adapter_similarity``; Zhu et al.,
   "Asymmetry in Low-Rank Adapters of Foundation Models", ICML 2024, Figure 1).
4. Lemma 4.5 of the paper for the adapted shapes, next to the measured train-test gap of the 0-1
   loss (σ = 1/2), with the trained factors rounded to bf16 (``q = 16`` bits, a grid fixed in
   advance).

Prints the tables and writes ``DIR/peft_example.png``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from torch import nn

from bounds.mi import lora_mi_bound
from bounds.params import trainable_params
from peft_bridge.adapters import adapter_similarity
from peft_bridge.example_task import (
    ExampleConfig, adapt, evaluate, geometry_batches, lora_model, pretrain, round_factors, task_data,
)
from peft_bridge.geometry import predict_asymmetry
from peft_bridge.layers import layer_shapes

#: Sub-Gaussian parameter of the 0-1 loss (Hoeffding: range 1).
SIGMA_01 = 0.5
#: Runs whose adapters are saved and compared: (variant, task, seed).
SAVED_RUNS = (("lora", 1, 0), ("lora", 1, 1), ("lora", 2, 0), ("b_only", 1, 0), ("b_only", 2, 0), ("a_only", 1, 0))
#: The pairs of saved runs compared, with their labels.
PAIRS = (("lora: same task, other seed", ("lora", 1, 0), ("lora", 1, 1)),
         ("lora: other task, same seed", ("lora", 1, 0), ("lora", 2, 0)),
         ("lora: other task, other seed", ("lora", 1, 1), ("lora", 2, 0)),
         ("b_only: other task, same frozen A", ("b_only", 1, 0), ("b_only", 2, 0)))


def _short(name: str) -> str:
    """``name`` without the ``bert.encoder.`` prefix, for the tables and plots."""
    return name.removeprefix("bert.encoder.")


def _per_module(base: nn.Module, config: ExampleConfig, data: dict, modules: list[str]) -> dict[str, dict[str, list[float]]]:
    """Test losses of ``b_only`` and ``a_only`` on each module alone (task 1), one per seed of
    ``config.seed … config.seed + module_seeds − 1``."""
    seeds = range(config.seed, config.seed + config.module_seeds)
    return {name: {variant: [evaluate(adapt(base, config, variant, data["train"], seed=seed, targets=(name,)),
                                      data["test"])["loss"] for seed in seeds]
                   for variant in ("b_only", "a_only")}
            for name in modules}


def _advantage(losses: dict[str, list[float]]) -> tuple[float, float]:
    """Mean over seeds of ``L_a_only − L_b_only`` (positive: b_only wins) and its standard error (0 for one seed)."""
    diffs = np.array(losses["a_only"]) - np.array(losses["b_only"])
    return float(diffs.mean()), float(diffs.std(ddof=1) / np.sqrt(diffs.size)) if diffs.size > 1 else 0.0


def _all_modules(base: nn.Module, config: ExampleConfig, tasks: dict, folder: Path) -> tuple[dict, dict]:
    """Train the ``SAVED_RUNS`` on all modules; save them; errors of the task-1 runs (bf16 factors)."""
    scores, paths = {}, {}
    for variant, task, seed in SAVED_RUNS:
        model = adapt(base, config, variant, tasks[task]["train"], seed=config.seed + seed)
        paths[(variant, task, seed)] = path = folder / f"{variant}_task{task}_seed{seed}"
        model.save_pretrained(str(path))
        if task == 1 and seed == 0:
            round_factors(model)
            test, train = evaluate(model, tasks[1]["test"]), evaluate(model, tasks[1]["train"])
            scores[variant] = {"loss": test["loss"], "test_error": test["error"], "train_error": train["error"]}
    return scores, paths


def _similarities(paths: dict) -> dict[str, dict[str, float]]:
    """Mean over modules of the CCA similarity of A and of B, for each pair of ``PAIRS``."""
    out = {}
    for label, first, second in PAIRS:
        out[label] = {side: float(sum(values.values()) / len(values)) for side in "AB"
                      for values in [adapter_similarity(paths[first], paths[second], side)]}
    return out


def run(config: ExampleConfig, out_dir: Path) -> dict:
    r"""Every number of the example (module docstring); adapters saved under ``out_dir/adapters``.

    1. Pretrain the base model on task 0 (``example_task.pretrain``) and put LoRA on
       ``config.targets``; estimate each module's ``Σ`` and ``G`` on ``geometry_batches`` and predict
       the winner from eq. (5), ``f(Σ, r)`` against ``f(G, r)``
       (:func:`peft_bridge.predict_asymmetry`; docs/THEORY.md §1b.3–§1b.5, derived, not in Zhu et
       al., ICML 2024).
    2. Measure it: ``b_only`` and ``a_only`` on each module alone, on task 1, one run per seed
       ``config.seed … config.seed + module_seeds − 1``; the advantage is the mean over seeds of
       ``L_a_only − L_b_only`` (test cross-entropy, nats).
    3. Train the ``SAVED_RUNS`` on all modules and save them; the task-1, seed-0 runs are rounded
       to bf16 (:func:`~peft_bridge.example_task.round_factors`) and scored (test loss, test and
       train 0-1 error). Compare the ``PAIRS`` of saved adapters with the mean over modules of
       the CCA similarity of Figure 1 of the paper (:func:`peft_bridge.adapter_similarity`;
       docs/THEORY.md §3).
    4. Lemma 4.5 of the paper (docs/THEORY.md §2.2) for each scored variant, with the shapes of
       the adapted layers, ``q = config.q_bits``, ``σ = 1/2`` (the 0-1 loss) and
       ``n = config.n_train``:

       .. math:: |\mathrm{gen}| \le \sqrt{2 \sigma^2 q N \ln 2 / n}.

    Parameters
    ----------
    config : ExampleConfig
        Sizes, schedule and seed.
    out_dir : pathlib.Path
        An existing folder; the adapters are saved under ``out_dir/adapters``.

    Returns
    -------
    dict
        ``config``; ``shapes`` (the ``(d_out, d_in)`` of each module); ``pretrained`` (test loss
        and error of the base model on task 1); ``predictions`` ({module: AsymmetryPrediction});
        ``measured`` ({module: {variant: [test loss per seed]}}); ``scores`` ({variant: loss,
        test_error, train_error}); ``bound`` ({variant: params ``N``, bound}); ``similarity``
        ({pair label: {"A": mean, "B": mean}}); ``paths`` ({(variant, task, seed): folder});
        ``seconds`` (wall time of the run).
    """
    start = time.perf_counter()
    base = pretrain(config)
    tasks = {task: task_data(config, task) for task in (1, 2)}
    probe = lora_model(base, config, config.targets)
    shapes = layer_shapes(probe)
    predictions = predict_asymmetry(probe, geometry_batches(config), "cross_entropy", config.rank,
                                    seed=config.seed, draws=config.draws, label_samples=config.label_samples)
    measured = _per_module(base, config, tasks[1], list(predictions))
    scores, paths = _all_modules(base, config, tasks, out_dir / "adapters")
    bound = {v: {"params": trainable_params(v, shapes, config.rank),
                 "bound": lora_mi_bound(v, shapes, config.rank, config.q_bits, SIGMA_01, config.n_train)}
             for v in scores}
    return {"config": config, "shapes": shapes, "pretrained": evaluate(base, tasks[1]["test"]),
            "predictions": predictions, "measured": measured, "scores": scores, "bound": bound,
            "similarity": _similarities(paths), "paths": paths, "seconds": time.perf_counter() - start}


def report(results: dict) -> str:
    """The example's three tables, as text: prediction vs measurement, Lemma 4.5, similarity.

    Per module: ``f(Σ, r)``, ``f(G, r)`` (eq. (5), docs/THEORY.md §1b.3) and the predicted
    winner, the mean test losses of ``b_only`` and ``a_only`` on that module alone, and the
    advantage ``L_a_only − L_b_only`` ± its standard error over seeds (0 with one seed); the
    measured winner is ``b_only`` where the advantage is positive, and a closing line counts the
    modules where prediction and measurement agree, and those where they agree by more than one
    standard error. Then, per scored variant, ``N``, test loss, test and train 0-1 error, their gap
    and Lemma 4.5's bound (Zhu et al., ICML 2024; docs/THEORY.md §2.2), flagged "(vacuous)" at 1 or
    more. Then the mean CCA similarity of ``A`` and ``B`` for each compared pair (Figure 1 of the
    paper; docs/THEORY.md §3) with ``r/d``, ``d`` the smallest dimension of any adapted layer.

    Parameters
    ----------
    results : dict
        What :func:`run` returns.

    Returns
    -------
    str
        The tables, lines joined by newlines.
    """
    config, pre = results["config"], results["pretrained"]
    width = max(len(_short(n)) for n in results["predictions"]) + 2
    lines = [f"LoRA rank {config.rank} on {' and '.join(config.targets)} of a {config.layers}-layer BERT "
             f"(hidden {config.hidden}), {config.classes}-class sequence task; pretrained model on target "
             f"task 1: test loss {pre['loss']:.3f}, error {pre['error']:.3f}", "",
             "Per module: predicted from Σ and G at the pretrained weights; measured with the adapter on that "
             f"module alone (test loss on task 1, mean over {config.module_seeds} seeds; a_only - b_only > 0: "
             "b_only wins)",
             f"{'module':<{width}}f(Σ,r)  f(G,r)  predicted  b_only loss  a_only loss  a_only - b_only  measured"]
    agree = clear = 0
    for name, pred in results["predictions"].items():
        loss = results["measured"][name]
        adv, err = _advantage(loss)
        winner = "b_only" if adv > 0 else "a_only"
        agree += winner == pred.prefers
        clear += winner == pred.prefers and abs(adv) > err
        lines.append(f"{_short(name):<{width}}{pred.b_only_fraction:6.3f}  {pred.a_only_fraction:6.3f}  "
                     f"{pred.prefers:<9}  {np.mean(loss['b_only']):11.3f}  {np.mean(loss['a_only']):11.3f}  "
                     f"{adv:+7.3f} ± {err:.3f}  {winner}")
    lines += [f"predicted = measured on {agree} of {len(results['predictions'])} modules ({clear} of them beyond "
              f"1 s.e. over {config.module_seeds} seeds)", "",
              f"All modules, task 1 (factors rounded to bf16): Lemma 4.5 with q = {config.q_bits} bits, "
              f"σ = {SIGMA_01} (0-1 loss), n = {config.n_train}",
              "variant   N      test loss  test error  train error  gap      bound"]
    for variant, score in results["scores"].items():
        b = results["bound"][variant]
        flag = "  (vacuous)" if b["bound"] >= 1 else ""
        lines.append(f"{variant:<8}  {b['params']:<5}  {score['loss']:9.3f}  {score['test_error']:10.3f}  "
                     f"{score['train_error']:11.3f}  {score['test_error'] - score['train_error']:+.3f}   "
                     f"{b['bound']:.3f}{flag}")
    d = min(min(shape) for shape in results["shapes"])
    lines += ["", f"Similarity of saved adapters (mean over modules; independent random subspaces: "
                  f"r/d = {config.rank / d:.3f})", f"{'pair':<36}A      B"]
    lines += [f"{label:<36}{sim['A']:.3f}  {sim['B']:.3f}" for label, sim in results["similarity"].items()]
    return "\n".join(lines)


def plot_predicted(results: dict, ax=None):
    """Bars of f(Σ, r) (b_only) and f(G, r) (a_only) per module; returns the axes.

    The predicted fractions of a random-orientation shift's loss removed by each variant, eq. (5)
    of docs/THEORY.md §1b.3 (derived; not in Zhu et al., ICML 2024), from ``results["predictions"]``.

    Parameters
    ----------
    results : dict
        What :func:`run` returns.
    ax : matplotlib.axes.Axes, optional
        Where to draw; the current axes when None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    names = [_short(n) for n in results["predictions"]]
    x = range(len(names))
    preds = list(results["predictions"].values())
    ax.bar([i - 0.2 for i in x], [p.b_only_fraction for p in preds], 0.4, label="b_only: f(Σ, r)")
    ax.bar([i + 0.2 for i in x], [p.a_only_fraction for p in preds], 0.4, label="a_only: f(G, r)")
    ax.set_xticks(list(x), [n.replace(".attention.self.", "\n") for n in names], fontsize=8)
    ax.set_ylabel("predicted fraction of a shift removed")
    ax.set_title("predicted (eq. (5))")
    ax.legend(fontsize=8)
    return ax


def plot_measured(results: dict, ax=None):
    """Reduction of the test loss from the pretrained model, per module and variant; returns the axes.

    Bars of ``L_pretrained − mean_seeds L_variant`` (test cross-entropy on task 1, nats) for
    ``b_only`` and ``a_only`` with the adapter on one module alone: the measurement that
    :func:`plot_predicted` predicts (docs/THEORY.md §1b.5).

    Parameters
    ----------
    results : dict
        What :func:`run` returns.
    ax : matplotlib.axes.Axes, optional
        Where to draw; the current axes when None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    base = results["pretrained"]["loss"]
    names = [_short(n) for n in results["measured"]]
    x = range(len(names))
    for shift, variant in ((-0.2, "b_only"), (0.2, "a_only")):
        ax.bar([i + shift for i in x], [base - np.mean(m[variant]) for m in results["measured"].values()], 0.4,
               label=variant)
    ax.set_xticks(list(x), [n.replace(".attention.self.", "\n") for n in names], fontsize=8)
    ax.set_ylabel("test loss removed (nats)")
    ax.set_title(f"measured (one module adapted, mean of {results['config'].module_seeds} seeds)")
    ax.legend(fontsize=8)
    return ax


def plot_similarity(results: dict, ax=None):
    """Mean CCA similarity of A and B for each compared pair of adapters; returns the axes.

    Horizontal bars of ``results["similarity"]``, the mean over modules of
    ``ρ = ‖U_1ᵀU_2‖_F² / min(r_1, r_2)`` (Zhu et al., ICML 2024, Figure 1; docs/THEORY.md §3),
    with a dashed line at ``r/d`` (``d`` the smallest dimension of any adapted layer), the mean for
    independent random subspaces.

    Parameters
    ----------
    results : dict
        What :func:`run` returns.
    ax : matplotlib.axes.Axes, optional
        Where to draw; the current axes when None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    labels = list(results["similarity"])
    y = range(len(labels))
    for shift, side in ((-0.2, "A"), (0.2, "B")):
        ax.barh([i + shift for i in y], [results["similarity"][p][side] for p in labels], 0.4, label=side)
    config = results["config"]
    ax.axvline(config.rank / min(min(s) for s in results["shapes"]), color="k", ls="--", lw=1, label="r/d")
    ax.set_yticks(list(y), [label.replace(": ", ":\n") for label in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("CCA similarity")
    ax.set_title("saved adapters (Figure 1)")
    ax.legend(fontsize=8)
    return ax


def save_figure(results: dict, path: Path) -> Path:
    """The three panels in one PNG at ``path`` (a bare ``Figure``: no pyplot state, any backend).

    :func:`plot_predicted`, :func:`plot_measured` and :func:`plot_similarity` side by side,
    15 × 4.2 inches at 120 dpi: the figure shown in the README, section "Real adapters: PEFT".

    Parameters
    ----------
    results : dict
        What :func:`run` returns.
    path : pathlib.Path
        The PNG to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    plot_predicted(results, axes[0])
    plot_measured(results, axes[1])
    plot_similarity(results, axes[2])
    fig.savefig(path, dpi=120)
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m peft_bridge.example``: run, print the tables, write the figure.

    Flags: ``--out DIR`` (required; created if missing), ``--seed N`` (default 0) and ``--tiny``
    (``ExampleConfig.tiny``, a smoke test; otherwise ``ExampleConfig.default``). Torch runs on
    ``$OMP_NUM_THREADS`` threads (1 when unset). Prints :func:`report`, then the figure's path
    (``DIR/peft_example.png``), the adapters' folder and the wall time; the README, section
    "Real adapters: PEFT", shows this output.

    Parameters
    ----------
    argv : list of str, optional
        The arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        The exit status, 0 (argparse exits with 2 on a bad flag).
    """
    parser = argparse.ArgumentParser(prog="python -m peft_bridge.example", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for peft_example.png and the saved adapters")
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw (default: 0)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (seconds; a smoke test, not the example)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    config = (ExampleConfig.tiny if args.tiny else ExampleConfig.default)(seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        results = run(config, out)
    print(report(results))
    print(f"\nfigure: {save_figure(results, out / 'peft_example.png')}; adapters: {out / 'adapters'}; "
          f"{results['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
