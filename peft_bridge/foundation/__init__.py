"""The paper's foundation-model findings on a transformer pretrained here, offline (docs/THEORY.md §8):
a synthetic language, a Llama-style decoder pretrained on it, a six-task downstream suite, batched
fine-tuning of every variant, and the analyses behind ``figures.foundation_variants`` and
``figures.foundation_rule``. Needs the ``[peft]`` extra."""

from peft_bridge.foundation.analysis import (
    agreement,
    directional_fractions,
    factor_similarity,
    finding_counts,
    rule_points,
    variant_table,
)
from peft_bridge.foundation.corpus import Corpus, CorpusConfig, Sample, bayes_loss, log_likelihoods, make_corpus, sample
from peft_bridge.foundation.experiment import (
    ARMS,
    RULE_MODULES,
    TARGET_SETS,
    FoundationConfig,
    arms,
    model_cache_dir,
    pretrained,
    pretraining_summary,
    rule_runs,
    table_modules,
    variant_runs,
)
from peft_bridge.foundation.finetune import Run, RunResult, Schedule, fine_tune, pretrained_scores
from peft_bridge.foundation.model import ModelConfig, Pretrained, TaskModel, build_decoder, pretrain
from peft_bridge.foundation.tasks import KINDS, TASKS, TaskData, task_data, task_model

__all__ = [
    "ARMS", "KINDS", "RULE_MODULES", "TARGET_SETS", "TASKS",
    "Corpus", "CorpusConfig", "FoundationConfig", "ModelConfig", "Pretrained", "Run", "RunResult", "Sample",
    "Schedule", "TaskData", "TaskModel",
    "agreement", "arms", "bayes_loss", "build_decoder", "directional_fractions", "factor_similarity",
    "fine_tune", "finding_counts", "log_likelihoods", "make_corpus", "model_cache_dir", "pretrain", "pretrained",
    "pretrained_scores", "pretraining_summary", "rule_points", "rule_runs", "sample", "table_modules", "task_data",
    "task_model", "variant_runs", "variant_table",
]
