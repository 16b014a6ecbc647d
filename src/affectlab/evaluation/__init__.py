"""Evaluation protocols and the cross-validation runner (see docs/leaderboard.md)."""
from affectlab.evaluation.aggregate import aggregate_metrics, cv_markdown, cv_record
from affectlab.evaluation.crossval import CrossValidation
from affectlab.evaluation.protocols import PROTOCOL_FOLDS, num_folds, protocol_name

__all__ = ["CrossValidation", "PROTOCOL_FOLDS", "aggregate_metrics", "cv_markdown", "cv_record",
           "num_folds", "protocol_name"]
