"""Which checkpoint a resumed stage continues from: ``last.ckpt``, or the one kept before it
(``last-previous.ckpt``) when ``last.ckpt`` cannot be read (truncated disk copy, full disk)."""
from __future__ import annotations

import warnings
from pathlib import Path

from affectlab.engine.io import read_json
from affectlab.schema import ConfigError

LAST = "last.ckpt"
#: the ``last.ckpt`` that the newest save replaced (``AtomicCheckpointIO`` keeps exactly one)
PREVIOUS = "last-previous.ckpt"


class UnreadableCheckpoint(ValueError):
    """A file that does not load as a Lightning checkpoint; the message says why."""


def stage_checkpoint(done: Path) -> Path:
    """The checkpoint a finished stage selected, named by its ``done.json``, looked up beside that file: a run
    folder that was moved or copied still uses its own checkpoints, never the ones at the path written then."""
    written = read_json(done).get("checkpoint")
    if not written:
        raise ConfigError(f"{done}: names no checkpoint; expected the done.json of a stage affectlab finished")
    here = done.parent / Path(written).name
    if not here.is_file():
        raise ConfigError(f"{done}: its checkpoint {Path(written).name} is missing from {done.parent} (written as "
                          f"{written}); a stage's checkpoints stay beside its done.json")
    return here


def read_checkpoint(path: Path) -> dict:
    """The Lightning checkpoint at ``path`` (on the CPU); :class:`UnreadableCheckpoint` when it is none."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any failure to load is the same verdict for the caller
        detail = str(err).splitlines()[0] if str(err) else ""
        raise UnreadableCheckpoint(f"not a checkpoint torch can read ({type(err).__name__}: {detail})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UnreadableCheckpoint("holds no 'state_dict' (not a Lightning checkpoint)")
    return checkpoint


def resume_checkpoint(stage_dir: Path, rank_zero: bool = True) -> Path | None:
    """The newest readable of ``last.ckpt`` and ``last-previous.ckpt`` (None: start the stage afresh).

    An unreadable one is renamed ``*.unreadable`` (by rank 0) so the next save cannot rotate it into
    the place of the valid previous checkpoint, and a warning says what was skipped.
    """
    skipped = []
    for name in (LAST, PREVIOUS):
        path = stage_dir / name
        if not path.exists():
            continue
        try:
            read_checkpoint(path)
        except UnreadableCheckpoint as reason:
            skipped.append(f"checkpoint {path} cannot be read ({reason}), kept as {path.name}.unreadable")
        else:
            if skipped:
                warnings.warn(f"{'; '.join(skipped)}; resuming from the previous checkpoint {path}")
            return path
        if rank_zero:
            try:
                path.replace(path.with_name(path.name + ".unreadable"))
            except OSError:  # another rank or a concurrent attempt moved it already
                pass
    if skipped:
        warnings.warn(f"{'; '.join(skipped)}; no readable checkpoint left, so the stage starts from its "
                      "beginning (same seed: same result as an uninterrupted run)")
    return None
