"""Pipeline stage name -> the function that runs it: one table that the CLI and the dependency tests share.

The `luskit` CLI module imports every stage (lazily, per command), so the code a stage depends on is the import
closure of its *entry module* (the module holding its main()), not of luskit/cli.py. tests/luskit/test_dvc_deps.py
walks that closure from ENTRIES and checks that dvc.yaml's deps cover it; the CLI calls entry() so the two cannot
point at different functions.
"""

from __future__ import annotations

import importlib
from typing import Callable

# dvc.yaml stage name -> "module:function" (the stage's main(params_path, ...) -> exit code).
ENTRIES: dict[str, str] = {
    "ingest": "curation.ingest:main",
    "deidentify": "curation.deid.stage:main",
    "clips": "curation.clip_stage:main",
    "labels": "labeling.labels_stage:main",
    "split": "training.splits.stage:main",
    "train": "training.train.stage:main",
    "evaluate": "training.evaluation.stage:main",
    "review-queue": "labeling.queue:main",
}

# Params keys a stage reads that change how a run goes, never what it computes: dvc.yaml lists none of them, so
# changing one reruns nothing. (train.models and train.folds are the train stage's matrix: they say which
# train@<model>-<fold> stages exist, and a single run does not depend on them.)
RUNTIME = frozenset({
    "ingest.workers", "deidentify.workers", "clips.workers",
    "train.workers", "train.threads", "train.preload", "train.preload_max_mb", "train.resume_every",
    "train.eval_batch_size", "train.quiet",
})
MATRIX = frozenset({"train.models", "train.folds"})


def entry_module(stage: str) -> str:
    """The dotted module holding `stage`'s main(), e.g. "curation.ingest"."""
    return ENTRIES[stage].split(":")[0]


def entry(stage: str) -> Callable[..., int]:
    """Import and return `stage`'s main() (imports happen here, so `luskit --help` stays light)."""
    from luskit import config

    config.stage_label = stage  # names this process's params reads (LUSKIT_PARAMS_READS)
    module, function = ENTRIES[stage].split(":")
    return getattr(importlib.import_module(module), function)
