"""Online sweeps: create the sweep on the wandb server and run an agent on this machine.

The agent starts each trial with the file's ``command`` (hyper-parameters as
``${args_no_hyphens}`` overrides, so every DDP rank composes the same config from argv).
"""
from __future__ import annotations

import os
from typing import Any, Callable


def wandb_online() -> bool:
    """True when wandb can reach a server: not offline/disabled and an API key is configured."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return False
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import wandb

        return bool(wandb.api.api_key)
    except Exception:  # noqa: BLE001 - any failure to find credentials means offline
        return False


def run_online(config: dict[str, Any], count: int | None, project: str | None = None,
               entity: str | None = None, announce: Callable[[str], None] | None = None) -> str:
    """Create the sweep on the server and run ``count`` trials with ``wandb.agent``; returns its id.
    ``announce`` is called with the id as soon as the sweep exists (before the first trial)."""
    import wandb

    sweep_id = wandb.sweep(config, project=project or config.get("project") or "affectlab",
                           entity=entity or config.get("entity"))
    if announce is not None:
        announce(sweep_id)
    wandb.agent(sweep_id, count=count, project=project or config.get("project") or "affectlab",
                entity=entity or config.get("entity"))
    return sweep_id
