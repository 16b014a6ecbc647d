"""affectlab.models — see docs/CONTRACTS.md."""
