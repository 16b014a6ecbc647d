"""Known-benign console noise of Lightning, wandb and pydantic, silenced by its exact message.

Everything else (a new deprecation, a real data-loader or precision warning) still reaches the user.
"""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Iterator

import torch.nn as nn

#: warning message patterns (regex, matched at the start) that say nothing about the user's run
BENIGN_WARNINGS = (
    # Lightning 2.x's own pytree helper under torch >= 2.6: internal to Lightning
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # our batches are dicts whose first tensor is the image/video batch, which is the size Lightning takes
    r"Trying to infer the `batch_size` from an ambiguous collection",
    # pydantic v1→v2 config-key rename inside wandb's settings
    r".*Valid config keys have changed in V2",
)
#: Lightning info lines printed at every Trainer construction
BENIGN_INFO_PREFIXES = ("GPU available:", "TPU available:", "HPU available:", "💡 Tip:", "`Trainer(limit_")
#: Lightning's warning when a submodule is in eval mode as fitting starts
EVAL_MODE_WARNING = r"Found \d+ module\(s\) in eval mode at the start of training"
_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropBenignInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(BENIGN_INFO_PREFIXES)


def silence_benign_noise() -> None:
    """Install the filters (idempotent); call before building Trainers or loggers."""
    for pattern in BENIGN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropBenignInfo) for f in logger.filters):
            logger.addFilter(_DropBenignInfo())


@contextmanager
def frozen_eval_modules_expected(module: nn.Module) -> Iterator[None]:
    """Fit ``module`` without Lightning's eval-mode warning when it is expected: a frozen encoder kept in
    eval mode on purpose (its BatchNorm statistics stay pretraining's) holds no trainable parameter. A
    submodule in eval mode that holds a trainable parameter still warns."""
    frozen_only = all(not any(p.requires_grad for p in m.parameters()) for m in module.modules() if not m.training)
    with warnings.catch_warnings():
        if frozen_only:
            warnings.filterwarnings("ignore", message=EVAL_MODE_WARNING)
        yield
