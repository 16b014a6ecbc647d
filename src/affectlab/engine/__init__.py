"""affectlab.engine — see docs/CONTRACTS.md."""
