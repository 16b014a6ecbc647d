"""The Makefile forwards config overrides written without ARGS= (refusing them where nothing reads them) and
leaves upper-case NAME=value words to the commands' environment."""
from __future__ import annotations

import subprocess

from tests.foundation.helpers import REPO, make_dry


def command_line(dry: subprocess.CompletedProcess) -> str:
    (line,) = [line for line in dry.stdout.splitlines() if " -m affectlab " in line]
    return line


def test_config_overrides_without_args_reach_the_command():
    dry = make_dry("train", "METHOD=baseline", "method.lr=0.1", "seed=3", "ARGS=data.fold=2")
    assert dry.returncode == 0, dry.stderr
    cmd = command_line(dry)
    assert "affectlab train METHOD=baseline" in cmd
    assert "'method.lr=0.1'" in cmd and "'seed=3'" in cmd and cmd.endswith("data.fold=2")
    # SEED (the synthetic seed of make synth) is the run's seed for the commands that train
    assert "seed=2" in make_dry("evidence", "METHOD=tcae", "SEED=2").stdout
    assert "seed=" not in make_dry("train", "METHOD=tcae").stdout


def test_a_forwarded_override_with_spaces_arrives_as_one_value():
    dry = make_dry("config", "METHOD=baseline", "DATA=toyau", "method.lr=0.5", "run_name=two words")
    # the shell line make runs, with the program replaced by one that prints each argument it receives
    cmd = command_line(dry).replace(".venv/bin/python -m affectlab", "printf '<%s>\\n'", 1)
    out = subprocess.run(["bash", "-c", cmd], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.splitlines() == ["<config>", "<METHOD=baseline>", "<DATA=toyau>", "<method.lr=0.5>",
                                       "<run_name=two words>"], out.stdout


def test_targets_that_compose_no_config_refuse_overrides_instead_of_dropping_them():
    dry = make_dry("synth", "method.lr=0.1")
    assert dry.returncode != 0
    assert "make synth takes no config overrides (method.lr)" in dry.stderr
    assert make_dry("synth").returncode == 0


def test_upper_case_names_reach_the_environment_of_every_command():
    # OMP_NUM_THREADS=1-style names stay environment variables (make exports them), never overrides
    assert "OMP_NUM_THREADS" not in command_line(make_dry("train", "METHOD=baseline", "OMP_NUM_THREADS=1"))
    run = make_dry("config", "METHOD=baseline", "DATA=toyau", "AFFECTLAB_LOG=nonsense", dry=False)
    assert run.returncode != 0 and "AFFECTLAB_LOG='nonsense' is no log level" in run.stderr, run.stderr
    assert make_dry("synth", "OMP_NUM_THREADS=1").returncode == 0
