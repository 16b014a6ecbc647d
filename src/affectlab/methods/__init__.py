"""Method registry. Every module in this package is imported so its ``@METHODS.register`` runs."""
from affectlab.methods.base import METHODS, MethodConfig, MethodSpec, RunContext, Stage
from affectlab.registry import import_submodules

import_submodules(__name__)

__all__ = ["METHODS", "MethodConfig", "MethodSpec", "RunContext", "Stage"]
