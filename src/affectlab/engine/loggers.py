"""CSV logging always; wandb when enabled, offline when no credentials, never fatal."""
from __future__ import annotations

import contextlib
import logging
import netrc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("affectlab")


def has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(cfg: DictConfig) -> str:
    """``auto`` → online with credentials, offline without; ``WANDB_MODE`` in the environment wins."""
    if not cfg.logger.wandb.enabled:
        return "disabled"
    env = os.environ.get("WANDB_MODE")
    if env:
        return env
    mode = cfg.logger.wandb.mode
    if mode == "auto":
        mode = "online" if has_wandb_credentials() else "offline"
    return mode


def sweep_agent_run_id() -> str | None:
    """The run id a wandb sweep agent gave this trial (it sets ``WANDB_SWEEP_ID`` and ``WANDB_RUN_ID``)."""
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
        return os.environ["WANDB_RUN_ID"]
    return None


@contextlib.contextmanager
def _without_sweep_env() -> Iterator[None]:
    """Hide the agent's sweep variables so a stage that is not the trial's own run is not filed
    under the sweep (wandb.init reads them from the environment)."""
    saved = {k: os.environ.pop(k) for k in ("WANDB_SWEEP_ID", "WANDB_RUN_ID") if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def build_loggers(cfg: DictConfig, run_dir: Path, stage: str, wandb_id: str | None,
                  attempt: int = 0, sweep_run: bool = False) -> tuple[list[Logger], str | None]:
    """Loggers for one stage; returns them and the wandb run id (None when wandb is off).

    A resumed attempt writes ``logs/<stage>/resume-<n>/metrics.csv`` beside the first one.
    Under a wandb sweep agent, the stage with ``sweep_run=True`` (the evaluated one, which logs the
    sweep metric) logs into the agent's own run; the other stages get runs of their own outside the
    sweep, so the agent sees exactly one run per trial."""
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(CSVLogger(save_dir=str(run_dir / "logs"), name=stage,
                                 version=f"resume-{attempt}" if attempt else ""))
    mode = resolve_wandb_mode(cfg)
    if mode == "disabled":
        return loggers, None
    os.environ["WANDB_MODE"] = mode  # the logger's own offline flag alone once went online (PL#12502)
    try:
        from lightning.pytorch.loggers import WandbLogger

        wandb_cfg = cfg.logger.wandb
        agent_id = sweep_agent_run_id()
        run_id = wandb_id or os.urandom(4).hex()
        full_id = f"{run_id}-{stage}"
        if agent_id and sweep_run:
            run_id = full_id = agent_id
        kwargs: dict[str, Any] = dict(
            project=wandb_cfg.project,
            entity=wandb_cfg.entity,
            name=f"{run_dir.name}-{stage}",
            id=full_id,
            save_dir=str(run_dir),
            group=wandb_cfg.group or f"{cfg.method.name}/{cfg.data.name}",
            job_type=stage,
            tags=list(wandb_cfg.tags),
            config=OmegaConf.to_container(cfg, resolve=True),
            offline=mode == "offline",
            settings={"quiet": True},  # no banner, sync hints or history/summary block on every run
        )
        if mode == "online":
            kwargs["resume"] = "allow"  # offline runs cannot be resumed (wandb 0.31)
        logger = WandbLogger(**kwargs)
        init = getattr(logger, "_wandb_init", None)
        if isinstance(init, dict) and "anonymous" in init and init["anonymous"] is None:
            del init["anonymous"]  # Lightning passes anonymous=None, which wandb 0.31 warns about
        with contextlib.nullcontext() if sweep_run or not agent_id else _without_sweep_env():
            _ = logger.experiment  # start it now so a failure degrades here, not mid-training
        loggers.append(logger)
        return loggers, run_id
    except Exception as err:  # noqa: BLE001 - wandb must never kill training
        warnings.warn(f"wandb logging disabled ({type(err).__name__}: {err}); continuing with CSV only")
        return loggers, None


def wandb_loggers(loggers: list[Logger]) -> list[Logger]:
    return [lg for lg in loggers if type(lg).__name__ == "WandbLogger"]


def log_image(loggers: list[Logger], key: str, path: str | Path, caption: str | None = None) -> None:
    """Hand the PNG at ``path`` to every wandb logger (CSV loggers keep it as a run artefact only)."""
    extra = {} if caption is None else {"caption": [caption]}  # Lightning wants one list entry per image
    for logger in wandb_loggers(loggers):
        logger.log_image(key=key, images=[str(path)], **extra)


def finish_wandb(loggers: list[Logger]) -> None:
    for logger in wandb_loggers(loggers):
        logger.experiment.finish()


def wandb_url(loggers: list[Logger]) -> str | None:
    for logger in loggers:
        experiment = getattr(logger, "_experiment", None)
        if experiment is None or getattr(experiment, "offline", False):  # an offline run has no URL (wandb warns)
            continue
        url = getattr(experiment, "url", None)
        if url:
            return url
    return None
