"""Evaluation metrics with affectlab's standard names (see docs/CONTRACTS.md)."""
from affectlab.metrics.au import AUDetectionMetrics, AUIntensityMetrics, icc_3_1
from affectlab.metrics.expression import ExpressionMetrics

__all__ = ["AUDetectionMetrics", "AUIntensityMetrics", "ExpressionMetrics", "icc_3_1"]
