"""wandb sweeps, online (server + agent) or offline (the ``sweeps`` engine run locally)."""
from affectlab.sweeps.local import (LocalSweep, Trial, expand_command, load_sweep_file, plain, render_value,
                                    with_overrides)
from affectlab.sweeps.online import run_online, wandb_online

__all__ = ["LocalSweep", "Trial", "expand_command", "load_sweep_file", "plain", "render_value",
           "run_online", "wandb_online", "with_overrides"]
