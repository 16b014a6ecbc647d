"""Layered config: merge order, strict validation, selectors and error messages."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from affectlab.config import ConfigError, compose, config_hash, split_overrides
from affectlab.registry import UnknownNameError


def test_defaults_compose_with_method_default_dataset():
    cfg = compose(["METHOD=baseline"])
    assert cfg.method.name == "baseline"
    assert cfg.data.name == "bp4d"  # the method's declared default
    assert cfg.trainer.preset == "cpu"


def test_merge_order_command_line_wins_over_method_yaml_and_base():
    assert compose(["METHOD=baseline"]).trainer.max_epochs == 6  # method yaml beats the schema default (10)
    cfg = compose(["METHOD=baseline", "trainer.max_epochs=2", "seed=7"])
    assert cfg.trainer.max_epochs == 2 and cfg.seed == 7


def test_experiment_file_sits_between_trainer_and_command_line(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("trainer:\n  max_epochs: 3\n  accelerator: cpu\nseed: 5\n")
    cfg = compose([f"EXP={exp}", "METHOD=baseline", "TRAINER=ddp_cpu"])
    assert cfg.trainer.max_epochs == 3 and cfg.trainer.devices == 2 and cfg.seed == 5
    assert compose([f"EXP={exp}", "METHOD=baseline", "seed=9"]).seed == 9


def test_misspelt_key_fails_listing_valid_keys():
    with pytest.raises(ConfigError) as err:
        compose(["METHOD=baseline", "trainer.max_epoch=3"])
    msg = str(err.value)
    assert "trainer.max_epoch" in msg and "max_epochs" in msg and "accumulate_grad_batches" in msg


def test_misspelt_top_level_key_lists_sections():
    with pytest.raises(ConfigError) as err:
        compose(["METHOD=baseline", "sed=1"])
    assert "sed" in str(err.value) and "seed" in str(err.value) and "trainer" in str(err.value)


def test_wrong_type_names_key_and_expectation():
    with pytest.raises(ConfigError) as err:
        compose(["METHOD=baseline", "trainer.max_epochs=many"])
    assert "trainer.max_epochs" in str(err.value) and "int" in str(err.value).lower()


def test_misspelt_key_in_a_file_names_the_file(tmp_path):
    exp = tmp_path / "bad.yaml"
    exp.write_text("method:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError) as err:
        compose([f"EXP={exp}", "METHOD=baseline"])
    assert str(exp) in str(err.value) and "lr" in str(err.value)


def test_unknown_method_dataset_and_preset_list_valid_names():
    with pytest.raises(UnknownNameError, match="baseline"):
        compose(["METHOD=baseline_"])
    with pytest.raises(UnknownNameError, match="toyau"):  # lists every dataset
        compose(["METHOD=baseline", "DATA=toy"])
    with pytest.raises(ConfigError, match="ddp_cpu"):
        compose(["METHOD=baseline", "TRAINER=tpu"])


def test_sweep_style_none_maps_to_null_and_selectors_split():
    selectors, dotlist = split_overrides(["METHOD=baseline", "method.checkpoint=None"])
    assert selectors == {"METHOD": "baseline"} and dotlist == ["method.checkpoint=null"]
    assert compose(["METHOD=baseline", "method.checkpoint=None"]).method.checkpoint is None


def test_config_hash_ignores_bookkeeping_but_not_hyperparameters():
    a = compose(["METHOD=baseline"])
    assert config_hash(a) == config_hash(compose(["METHOD=baseline", "resume=auto", "run_name=x"]))
    assert config_hash(a) != config_hash(compose(["METHOD=baseline", "method.lr=0.01"]))
    assert OmegaConf.is_config(a)


def test_config_hash_does_not_depend_on_where_the_checkout_lives(tmp_path, monkeypatch):
    """Issue #18 item 5: `EXP=ial_paper` in two clones (or a moved checkout) is the same experiment."""
    import shutil

    import affectlab.config as config

    here = compose(["METHOD=ial", "EXP=ial_paper"])
    clone = tmp_path / "elsewhere" / "experiments"
    shutil.copytree(config.EXPERIMENTS_DIR, clone)
    monkeypatch.setattr(config, "EXPERIMENTS_DIR", clone)
    there = compose(["METHOD=ial", "EXP=ial_paper"])
    assert config_hash(here) == config_hash(there)
    assert here.experiment == there.experiment == "exp/ial_paper.yaml"  # recorded relative to experiments/
    # where runs and caches go is bookkeeping too; what the run does is not
    moved = compose(["METHOD=ial", "EXP=ial_paper", f"run_root={tmp_path}/runs", f"data.cache_dir={tmp_path}/c"])
    assert config_hash(moved) == config_hash(here)
    assert config_hash(compose(["METHOD=ial", "EXP=ial_paper", "data.fold=2"])) != config_hash(here)


def test_datamodules_methods_and_models_never_import_the_config_composer():
    """Issue #19: `affectlab.config` imports the method and datamodule registries to compose a run;
    those packages validate through the leaf `affectlab.schema`, so the import graph has no cycle
    (checked on the source, lazy imports inside functions included)."""
    import ast
    from pathlib import Path

    from affectlab import config, schema

    repo = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in (repo / "data_modules", repo / "src/affectlab/methods", repo / "src/affectlab/models"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module] if isinstance(node, ast.ImportFrom) else \
                    [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if "affectlab.config" in names:
                    offenders.append(f"{path.relative_to(repo)}:{node.lineno}")
    assert offenders == []
    assert not any(name.startswith("affectlab") for name in _top_level_imports(Path(schema.__file__)))
    assert config.ConfigError is schema.ConfigError  # one class: `except ConfigError` works from either


def _top_level_imports(path):
    import ast

    tree = ast.parse(path.read_text())
    return [n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)] + \
        [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]


def test_config_errors_turns_a_builders_value_error_into_a_config_error_naming_the_section():
    from affectlab.schema import config_errors

    with pytest.raises(ConfigError, match=r"^method\.model: grid must be >= 0 \(see data\.x\)$"):
        with config_errors("method.model", hint=" (see data.x)"):
            raise ValueError("grid must be >= 0")
    with pytest.raises(ConfigError, match="^already explained$"):  # not prefixed twice
        with config_errors("method"):
            raise ConfigError("already explained")
    with pytest.raises(TypeError):  # not a config value: a bug, left as the traceback it is
        with config_errors("method"):
            raise TypeError("bug")
    with config_errors("method"):
        value = 3
    assert value == 3
