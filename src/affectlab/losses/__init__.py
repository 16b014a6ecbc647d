"""affectlab.losses — see docs/CONTRACTS.md."""
