"""Layered, validated configuration.

Merge order (fixed): ``experiments/base.yaml`` → ``method/<m>.yaml`` → ``data/<d>.yaml`` →
the method's ``data_overrides`` → ``trainer/<t>.yaml`` → experiment file → command-line
``key=value``. Every section is checked against a dataclass schema in OmegaConf struct mode,
so a misspelt key fails before any work starts and the error lists the valid keys.

Selectors on the command line are upper case: ``METHOD=tcae DATA=bp4d TRAINER=cpu EXP=file``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from affectlab.schema import ConfigError, merge_into, validated  # noqa: F401 (re-exported)

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
SELECTORS = ("METHOD", "DATA", "TRAINER", "EXP")
#: config keys that only a selector sets (``method.name=x`` on the command line would be overwritten)
SELECTED_KEYS = {"method.name": "METHOD", "data.name": "DATA", "trainer.preset": "TRAINER", "experiment": "EXP"}


@dataclass
class TrainerConfig:
    """Schema of ``cfg.trainer``; presets live in ``experiments/trainer/*.yaml``."""

    preset: str = "cpu"
    accelerator: str = "cpu"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    sync_batchnorm: bool = False
    max_epochs: int = 10
    max_steps: int = -1
    accumulate_grad_batches: int = 1
    gradient_clip_val: Optional[float] = None
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    limit_test_batches: Any = 1.0
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10
    #: stop a stage when its monitored metric has not improved for this many validations
    early_stopping_patience: Optional[int] = None
    #: learning-rate rule tied to the effective batch: none | linear | sqrt
    lr_scaling: str = "none"
    lr_base_batch_size: int = 256
    #: convert the modules to channels_last memory format: true | false | auto (on CPU for the methods
    #: whose networks measured faster that way, ``MethodSpec.channels_last_cpu``; off on GPU, where the
    #: gpu presets set true)
    channels_last: Any = "auto"
    #: torch's intra-op CPU threads for the run: auto (torch's default: the cores, or OMP_NUM_THREADS) | n.
    #: A CPU run whose data workers share the cores can be faster with fewer (IAL's default: 1)
    threads: Any = "auto"
    #: float32 matmuls and cuDNN convolutions on GPUs with TF32: high (TF32, fast) | highest (IEEE float32
    #: in both, as the official code of the paper presets ran) | medium (bf16 matmuls, TF32 convolutions)
    matmul_precision: str = "high"
    enable_progress_bar: bool = True
    #: run (one bar over every stage of the run, with its ETA) | epoch (Lightning's bar per epoch)
    progress_bar: str = "run"


#: ``Trainer(precision=...)`` values Lightning accepts (lightning.fabric.connector)
PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64", "32", "16", "bf16",
              "transformer-engine", "transformer-engine-float16")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")
LR_SCALING = ("none", "linear", "sqrt")
PROGRESS_BARS = ("run", "epoch")


def check_trainer(t: DictConfig) -> None:
    """Refuse ``cfg.trainer`` values that Lightning would only reject mid-run, naming the key."""
    def bad(key: str, expected: str) -> ConfigError:
        return ConfigError(f"bad value for 'trainer.{key}': {t[key]!r}; expected {expected}")

    if str(t.precision) not in PRECISIONS:
        raise bad("precision", "one of " + ", ".join(PRECISIONS))
    if t.accelerator not in ACCELERATORS:
        raise bad("accelerator", "one of " + ", ".join(ACCELERATORS))
    if t.lr_scaling not in LR_SCALING:
        raise bad("lr_scaling", "one of " + ", ".join(LR_SCALING))
    if t.channels_last not in (True, False, "auto"):
        raise bad("channels_last", "true, false or auto")
    if t.threads != "auto" and not (isinstance(t.threads, int) and not isinstance(t.threads, bool) and t.threads >= 1):
        raise bad("threads", "auto or a whole number >= 1")
    if t.progress_bar not in PROGRESS_BARS:
        raise bad("progress_bar", "one of " + ", ".join(PROGRESS_BARS))
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        value = t[key]
        ok_int = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        ok_fraction = isinstance(value, float) and 0.0 <= value <= 1.0
        if not (ok_int or ok_fraction):
            raise bad(key, "a fraction in [0.0, 1.0] or a whole number of batches >= 0")
    for key, low in (("max_epochs", -1), ("max_steps", -1), ("accumulate_grad_batches", 1),
                     ("check_val_every_n_epoch", 1), ("log_every_n_steps", 1), ("num_nodes", 1),
                     ("lr_base_batch_size", 1)):
        if t[key] < low:
            raise bad(key, f"an integer >= {low}")
    for key in ("max_epochs", "max_steps"):
        if t[key] == 0:   # Lightning would train nothing and the run would test an untrained model
            raise bad(key, "-1 (no limit) or an integer >= 1")


def check_optimiser_numbers(section: Any, prefix: str = "method") -> None:
    """Refuse learning rates <= 0 and negative weight decays or momenta anywhere in ``cfg.method`` (keys
    named ``lr``/``*_lr``, ``weight_decay``/``*_weight_decay``, ``momentum``), which torch's optimisers would
    only reject after the data are loaded and the run directory is made."""
    for key, value in section.items():
        path = f"{prefix}.{key}"
        if isinstance(value, DictConfig):
            check_optimiser_numbers(value, path)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if (key == "lr" or key.endswith("_lr")) and not value > 0:
            raise ConfigError(f"bad value for '{path}': {value!r}; expected a learning rate > 0")
        if (key in ("weight_decay", "momentum") or key.endswith("_weight_decay")) and value < 0:
            raise ConfigError(f"bad value for '{path}': {value!r}; expected a value >= 0")


@dataclass
class WandbConfig:
    """Weights & Biases logging (``logger.wandb``): offline without credentials, never required."""

    enabled: bool = True
    project: str = "affectlab"
    entity: Optional[str] = None
    #: auto (online when credentials exist, else offline) | online | offline | disabled
    mode: str = "auto"
    tags: list[str] = field(default_factory=list)
    group: Optional[str] = None


@dataclass
class LoggerConfig:
    """Loggers of every run (``logger``): CSV always, wandb when enabled."""

    csv: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class LeaderboardConfig:
    """Where a finished run's record goes (``leaderboard``): SQLite under ``results/`` or a shared URL."""

    enabled: bool = True
    #: SQLAlchemy URL of a shared board; None → sqlite under ``results/``
    url: Optional[str] = None
    tags: list[str] = field(default_factory=list)


@dataclass
class RootConfig:
    """Top level of the merged config (base → method → data → trainer → experiment → command line);
    ``method`` and ``data`` are validated against the registered method's and dataset's own schemas."""

    seed: int = 0
    deterministic: bool = False
    run_root: str = "runs"
    run_name: Optional[str] = None
    #: null | auto (newest valid checkpoint of the same experiment) | path to a run directory
    resume: Optional[str] = None
    experiment: Optional[str] = None
    sweep_id: Optional[str] = None
    method: Any = None
    data: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    leaderboard: LeaderboardConfig = field(default_factory=LeaderboardConfig)


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def available(kind: str) -> list[str]:
    """Names of the YAML files in ``experiments/<kind>/`` (method, data, trainer, exp)."""
    return sorted(p.stem for p in (EXPERIMENTS_DIR / kind).glob("*.yaml"))


def split_overrides(args: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Separate ``METHOD=…``-style selectors from ``a.b=c`` dotlist overrides."""
    selectors: dict[str, str] = {}
    dotlist: list[str] = []
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"expected key=value, got {arg!r}")
        key, value = arg.split("=", 1)
        if key in SELECTORS:
            selectors[key] = value
        elif key.isupper():
            raise ConfigError(f"unknown selector {key!r}; selectors are {', '.join(SELECTORS)}")
        elif key.upper() in SELECTORS:
            raise ConfigError(f"selectors are upper case: write {key.upper()}={value} instead of {arg}")
        elif key in SELECTED_KEYS:
            raise ConfigError(f"{key} is set by the selector: write {SELECTED_KEYS[key]}={value} instead of {arg}")
        else:
            dotlist.append(f"{key}={_normalise_value(value)}")
    return selectors, dotlist


def _normalise_value(value: str) -> str:
    # wandb's agent renders None as the string 'None'; OmegaConf only knows null.
    return "null" if value == "None" else value


def _experiment_path(exp: str) -> Path:
    path = Path(exp)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = EXPERIMENTS_DIR / "exp" / f"{exp}.yaml"
    if candidate.is_file():
        return candidate
    raise ConfigError(
        f"experiment {exp!r} not found (looked for {path} and {candidate}); "
        f"available: {', '.join(available('exp'))}"
    )


def parse_dotlist(dotlist: Sequence[str]) -> DictConfig:
    """``key=value`` overrides as a config; a value YAML cannot read (``data.subjects=[1``) is a ConfigError."""
    try:
        return OmegaConf.from_dotlist(list(dotlist))
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        detail = " ".join(str(err).split())
        raise ConfigError(f"command line: cannot parse overrides {' '.join(dotlist)}: {detail}") from None


def compose(overrides: Iterable[str] = (), **selectors: Optional[str]) -> DictConfig:
    """Compose and validate a run config from selectors and ``key=value`` overrides.

    ``compose(["METHOD=tcae", "data.fold=2"])`` and ``compose(["data.fold=2"], method="tcae")``
    are the same call; keyword selectors win over ones in ``overrides``.
    """
    from affectlab.methods import METHODS
    from data_modules import DATAMODULES
    from data_modules.base import check_data_bounds

    cli_selectors, dotlist = split_overrides(overrides)
    chosen = {k: v for k, v in cli_selectors.items()}
    chosen.update({k.upper(): v for k, v in selectors.items() if v})

    base = load_yaml(EXPERIMENTS_DIR / "base.yaml")
    exp_path = _experiment_path(chosen["EXP"]) if chosen.get("EXP") else None
    exp = load_yaml(exp_path) if exp_path else {}
    for section, value in exp.items():
        if section in ("method", "data", "trainer", "logger", "leaderboard") and not isinstance(value, dict):
            raise ConfigError(f"{exp_path}: section {section!r} must be a mapping of keys (e.g. {section}: "
                              f"{{name: …}}), got {value!r}; select with METHOD=/DATA=/TRAINER= on the command line")

    method_name = chosen.get("METHOD") or (exp.get("method") or {}).get("name") or base["method"]["name"]
    spec = METHODS.get(method_name)
    data_name = chosen.get("DATA") or (exp.get("data") or {}).get("name") or spec.default_data
    dm_cls = DATAMODULES.get(data_name)
    if spec.task not in dm_cls.tasks:
        raise ConfigError(
            f"method {method_name!r} ({spec.task}) cannot run on dataset {data_name!r} "
            f"(tasks: {', '.join(dm_cls.tasks)}). Valid datasets for {method_name}: "
            f"{', '.join(valid_datasets(spec)) or '(none)'}"
        )
    trainer_name = chosen.get("TRAINER") or (exp.get("trainer") or {}).get("preset") or _default_trainer()
    trainer_file = EXPERIMENTS_DIR / "trainer" / f"{trainer_name}.yaml"
    if not trainer_file.is_file():
        raise ConfigError(
            f"unknown trainer preset {trainer_name!r}. Valid presets: {', '.join(available('trainer'))}"
        )

    schema = OmegaConf.structured(RootConfig)
    schema.method = OmegaConf.structured(spec.Config)
    schema.data = OmegaConf.structured(dm_cls.Config)
    OmegaConf.set_struct(schema, True)

    layers: list[tuple[str, Any]] = [("experiments/base.yaml", base)]
    method_file = EXPERIMENTS_DIR / "method" / f"{method_name}.yaml"
    if method_file.is_file():
        layers.append((str(method_file.relative_to(EXPERIMENTS_DIR.parent)), load_yaml(method_file)))
    data_file = EXPERIMENTS_DIR / "data" / f"{data_name}.yaml"
    if data_file.is_file():
        layers.append((str(data_file.relative_to(EXPERIMENTS_DIR.parent)), {"data": load_yaml(data_file)}))
    if spec.data_overrides:
        layers.append((f"method {method_name} data_overrides", {"data": dict(spec.data_overrides)}))
    layers.append((str(trainer_file.relative_to(EXPERIMENTS_DIR.parent)), {"trainer": load_yaml(trainer_file)}))
    if exp:
        layers.append((str(exp_path), exp))
    if dotlist:
        layers.append(("command line", parse_dotlist(dotlist)))

    cfg = schema
    for source, layer in layers:
        cfg = merge_into(cfg, layer, source)
    cfg.method.name = method_name
    cfg.data.name = data_name
    cfg.trainer.preset = trainer_name
    cfg.experiment = _experiment_label(exp_path) if exp_path else None
    _check_missing(cfg)
    check_trainer(cfg.trainer)
    if not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"bad value for 'seed': {cfg.seed}; expected an integer in [0, 2**32 - 1] (numpy's seed range)")
    check_data_bounds(cfg.data)
    check_optimiser_numbers(cfg.method)
    return cfg


def _experiment_label(path: Path) -> str:
    """``exp/<name>.yaml`` for a file of this checkout's ``experiments/`` (so the recorded config
    reads the same in every clone), else the path as given."""
    try:
        return str(path.resolve().relative_to(EXPERIMENTS_DIR.resolve()))
    except ValueError:
        return str(path)


def valid_datasets(spec: type) -> list[str]:
    """Registered datasets that offer the task of the method ``spec`` (its valid ``DATA=`` values)."""
    from data_modules import DATAMODULES

    return [name for name in DATAMODULES.names() if spec.task in DATAMODULES.get(name).tasks]


def _default_trainer() -> str:
    try:
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def _check_missing(cfg: DictConfig) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"config values still missing (set them with key=value): {', '.join(missing)}")


#: keys that say where files sit or how a run is logged, not what it does (dotted for nested keys);
#: ``experiment`` is the file the values came from, and those values are hashed themselves
HASH_IGNORED = ("resume", "run_name", "run_root", "experiment", "logger", "leaderboard", "data.cache_dir")


def config_hash(cfg: DictConfig, ignore: Iterable[str] = HASH_IGNORED) -> str:
    """Stable hash of what the run does: the same in every clone or location of the checkout
    (bookkeeping and location keys, ``HASH_IGNORED``, excluded)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in ignore:
        *parents, leaf = key.split(".")
        node = container
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    text = yaml.safe_dump(container, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(text: str) -> str:
    return _SAFE.sub("-", text).strip("-") or "x"
