"""``make evidence``: a method's default against its declared controls, over seeds, through the runner."""
from affectlab.evidence.arms import Arm, Evidence

__all__ = ["Arm", "Evidence"]
