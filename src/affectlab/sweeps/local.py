"""Offline sweeps: wandb's own search engine (the ``sweeps`` package) driven locally.

The same sweep file works with ``wandb agent`` online. Here ``sweeps.next_run`` proposes each
trial from the finished ones (so Bayesian search learns from them), the trial is the file's
``command`` with the macros expanded as the agent expands them, run as a subprocess with offline
wandb, and its metric is read back from the run directory it prints as its last stdout line
(history from Lightning's ``metrics.csv``, else ``results.json``). A crashed trial is recorded as
failed and the sweep goes on. This process imports neither torch nor CUDA.
"""
from __future__ import annotations

import csv
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


def plain(value: Any) -> Any:
    """Builtin Python value of an engine suggestion (numpy scalars → float/int/bool, recursively)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def render_value(value: Any) -> str:
    """Text of one ``key=value`` override that OmegaConf parses back to ``value``."""
    value = plain(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def expand_command(template: Sequence[str], params: dict[str, Any], program: str | None = None,
                   env: dict[str, str] | None = None, json_file: Path | None = None) -> list[str]:
    """Expand wandb's command macros (``${args_no_hyphens}`` etc.) into an argv list.

    ``${interpreter}`` becomes this process's Python (wandb's agent uses the literal ``python``).
    """
    env = {**os.environ, **(env or {})}
    items = [(k, plain(v)) for k, v in params.items()]
    argv: list[str] = []
    for token in template:
        if token == "${env}":
            if os.name == "posix" and Path("/usr/bin/env").exists():
                argv.append("/usr/bin/env")
        elif token == "${interpreter}":
            argv.append(sys.executable)
        elif token == "${program}":
            if not program:
                raise ValueError("the sweep command uses ${program} but the file sets no 'program'")
            argv.append(program)
        elif token == "${args}":
            argv += [f"--{k}={render_value(v)}" for k, v in items]
        elif token == "${args_no_hyphens}":
            argv += [f"{k}={render_value(v)}" for k, v in items]
        elif token == "${args_no_equals}":
            for k, v in items:
                argv += [f"--{k}", render_value(v)]
        elif token == "${args_no_boolean_flags}":
            argv += [f"--{k}" for k, v in items if v is True]
            argv += [f"--{k}={render_value(v)}" for k, v in items if not isinstance(v, bool)]
        elif token == "${args_json}":
            argv.append(json.dumps(dict(items)))
        elif token == "${args_json_file}":
            if json_file is None:
                raise ValueError("${args_json_file} needs a file path")
            json_file.write_text(json.dumps(dict(items)))
            argv.append(str(json_file))
        else:
            while "${envvar:" in token:
                start = token.index("${envvar:")
                end = token.index("}", start)
                name = token[start + 9:end]
                if name not in env:
                    raise ValueError(f"the sweep command needs environment variable {name}, which is not set")
                token = token[:start] + env[name] + token[end + 1:]
            argv.append(token)
    return argv


def load_sweep_file(path: str | Path) -> dict[str, Any]:
    """Read a sweep YAML and validate it with ``sweeps.SweepConfig`` (wandb's JSON schema)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a sweep file is a mapping (program/command, method, metric, parameters)")
    validate_sweep(config, str(path))
    return config


def validate_sweep(config: dict[str, Any], where: str = "sweep") -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import jsonschema
        from sweeps import SweepConfig

        try:
            SweepConfig(config)
        except jsonschema.ValidationError as err:
            raise ValueError(f"{where}: not a valid wandb sweep: {err.message}") from None


def check_trial_config(config: dict[str, Any], where: str = "sweep") -> None:
    """Compose the config of an ``affectlab train`` trial once, each parameter at one of its values, so a
    misspelt parameter key or a bad fixed override fails before the first trial instead of in every one."""
    from affectlab.config import compose
    from affectlab.schema import ConfigError

    command = [str(t) for t in config.get("command") or DEFAULT_COMMAND]
    if "train" not in command or "${args_no_hyphens}" not in command:
        return  # not an affectlab train command: nothing to compose
    fixed = [t for t in command if "=" in t and "${" not in t]
    values = []
    for key, spec in (config.get("parameters") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        value = spec["values"][0] if spec.get("values") else spec.get("value", spec.get("min"))
        values.append(f"{key}={'null' if value is None else value}")
    try:
        compose([*fixed, *values])
    except ConfigError as err:
        raise ConfigError(f"{where}: a trial's config does not compose ({err})") from None


def with_overrides(config: dict[str, Any], overrides: Sequence[str], where: str = "sweep") -> dict[str, Any]:
    """A copy of ``config`` whose trial command also passes ``overrides`` (``KEY=VALUE``, as for
    ``affectlab train``); the command's own keys and the swept parameters cannot be overridden."""
    if not overrides:
        return config
    command = list(config.get("command") or DEFAULT_COMMAND)
    if "${args_no_hyphens}" not in command:
        raise ValueError(f"{where}: KEY=VALUE overrides need a command that passes ${{args_no_hyphens}} "
                         f"(an `affectlab train` command); this one is {command}")
    fixed = {token.split("=", 1)[0] for token in command if "=" in token and not token.startswith("$")}
    for item in overrides:
        key = item.split("=", 1)[0]
        if "=" not in item or not key or key.startswith("-"):
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        if key in (config.get("parameters") or {}):
            raise ValueError(f"{item}: {key!r} is a swept parameter of {where}; remove it from the overrides")
        if key in fixed:
            raise ValueError(f"{item}: the command of {where} already sets {key!r}")
    at = command.index("${args_no_hyphens}")
    return {**config, "command": command[:at] + list(overrides) + command[at:]}


def read_history(run_dir: Path, metric: str) -> list[dict[str, float]]:
    """Values of ``metric`` logged by a run, one dict per logged step, from its CSV logs."""
    history: list[dict[str, float]] = []
    for path in sorted(run_dir.rglob("metrics.csv")):
        with path.open() as fh:
            for row in csv.DictReader(fh):
                text = row.get(metric)
                if text not in (None, ""):
                    history.append({metric: float(text)})
    return history


def read_summary(run_dir: Path, metric: str) -> tuple[float | None, list[dict[str, float]]]:
    """Final value of ``metric`` (last logged; ``test/x`` falls back to results.json's ``x``)."""
    history = read_history(run_dir, metric)
    if history:
        return history[-1][metric], history
    results = run_dir / "results.json"
    if results.is_file():
        metrics = json.loads(results.read_text()).get("metrics", {})
        name = metric.split("/", 1)[1] if metric.startswith("test/") else metric
        if name in metrics:
            return float(metrics[name]), [{metric: float(metrics[name])}]
    return None, history


def _last_line(path: Path) -> str:
    """Last non-empty line of a trial's log (its error message when it failed)."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


@dataclass
class Trial:
    """One trial of an offline sweep: its parameters, state, reported metric history and run folder."""

    name: str
    params: dict[str, Any]
    state: str = "running"
    metric: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    run_dir: str | None = None
    returncode: int | None = None
    log: str | None = None
    message: str = ""
    wall_time_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class LocalSweep:
    """A sweep run on this machine with the ``sweeps`` engine; state in ``<root>/<sweep_id>/sweep.json``."""

    def __init__(self, config: dict[str, Any], root: str | Path = "runs/sweeps", sweep_id: str | None = None,
                 leaderboard_url: str | None = None, record: bool = True, echo: bool = False,
                 poll_s: float = 2.0, progress: Callable[[str], None] | None = None) -> None:
        validate_sweep(config)
        check_trial_config(config)
        if leaderboard_url:  # a typo fails before the first trial trains
            from affectlab.leaderboard.store import check_url

            check_url(leaderboard_url)
        self.config = config
        self.sweep_id = sweep_id or f"local-{secrets.token_hex(4)}"
        self.dir = Path(root) / self.sweep_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.leaderboard_url = leaderboard_url
        self.record = record
        self.echo = echo
        self.poll_s = poll_s
        #: called with one line per trial start and end (``affectlab sweep`` prints them)
        self.progress = progress
        self.trials: list[Trial] = []
        state = self.dir / "sweep.json"
        if state.is_file():  # resume an interrupted sweep
            saved = json.loads(state.read_text())
            if "command" in saved.get("config", {}):  # keeps the KEY=VALUE overrides the sweep started with
                self.config = {**config, "command": saved["config"]["command"]}
            self.trials = [Trial(**t) for t in saved["trials"]]
            for trial in self.trials:
                if trial.state == "running":
                    trial.state, trial.message = "failed", "interrupted (sweep process ended)"

    @property
    def metric_name(self) -> str | None:
        return (self.config.get("metric") or {}).get("name")

    def _sweep_runs(self, extra: Sequence[Trial] = ()) -> list:
        from sweeps import RunState, SweepRun

        states = {"finished": RunState.finished, "failed": RunState.failed, "running": RunState.running,
                  "stopped": RunState.finished}
        runs = []
        for trial in [*self.trials, *extra]:
            summary = {self.metric_name: trial.metric} if self.metric_name and trial.metric is not None else {}
            runs.append(SweepRun(name=trial.name, state=states[trial.state], summary_metrics=summary,
                                 history=list(trial.history), config={k: {"value": v} for k, v in trial.params.items()}))
        return runs

    def suggest(self) -> dict[str, Any] | None:
        """Next trial's parameters (builtin types), or None when the search space is exhausted."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sweeps import next_run

            proposal = next_run(self.config, self._sweep_runs(), validate=True)
        if proposal is None:
            return None
        return {k: plain(v["value"]) for k, v in proposal.config.items()}

    def _save(self) -> None:
        state = {"sweep_id": self.sweep_id, "config": self.config, "trials": [t.as_dict() for t in self.trials]}
        tmp = self.dir / "sweep.json.tmp"
        tmp.write_text(json.dumps(state, indent=1, default=str))
        tmp.replace(self.dir / "sweep.json")

    def run_trial(self, params: dict[str, Any]) -> Trial:
        name = f"trial-{len(self.trials) + 1:03d}"
        trial = Trial(name=name, params=params)
        self.trials.append(trial)
        self._save()
        env = {"WANDB_SWEEP_ID": self.sweep_id, "AFFECTLAB_SWEEP_ID": self.sweep_id, "WANDB_RUN_GROUP": self.sweep_id}
        if os.environ.get("WANDB_MODE") != "disabled":
            env["WANDB_MODE"] = "offline"
        if self.leaderboard_url:
            env["AFFECTLAB_LEADERBOARD_URL"] = self.leaderboard_url
        argv = expand_command(self.config.get("command") or DEFAULT_COMMAND, params,
                              program=self.config.get("program"), env=env,
                              json_file=self.dir / f"{name}.params.json")
        log_path = self.dir / f"{name}.log"
        trial.log = str(log_path)
        start = time.monotonic()
        with log_path.open("w") as log:
            log.write("$ " + shlex.join(argv) + "\n")
            log.flush()
            try:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True,
                                        env={**os.environ, **env})
            except OSError as err:
                trial.state, trial.message = "failed", f"cannot start {argv[0]}: {err}"
                return self._finish(trial, start)
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                log.write(line)
                lines.append(line.strip())
                if self.echo:
                    sys.stdout.write(line)
            trial.returncode = proc.wait()
        last = next((line for line in reversed(lines) if line), "")
        if trial.returncode != 0:
            reason = _last_line(log_path)
            trial.state, trial.message = "failed", (f"exited with code {trial.returncode}"
                                                    + (f" ({reason})" if reason else "") + f"; see {log_path}")
        elif not last or not Path(last).is_dir():
            trial.state, trial.message = "failed", f"last stdout line {last!r} is not a run directory"
        else:
            trial.run_dir = last
            trial.metric, trial.history = read_summary(Path(last), self.metric_name) if self.metric_name else (None, [])
            if self.metric_name and trial.metric is None:
                trial.state, trial.message = "failed", f"metric {self.metric_name!r} not found in {last}"
            else:
                trial.state = "finished"
        return self._finish(trial, start)

    def _finish(self, trial: Trial, start: float) -> Trial:
        trial.wall_time_s = round(time.monotonic() - start, 3)
        self._save()
        if self.record:
            from affectlab.leaderboard import open_store

            store = open_store(self.leaderboard_url)
            try:
                store.add_trial(self.sweep_id, trial.as_dict())
            finally:
                store.close()
        return trial

    def run(self, count: int | None = None) -> list[Trial]:
        """Run up to ``count`` new trials (None: until a grid is exhausted or ``run_cap`` is reached)."""
        cap = self.config.get("run_cap")
        if count is None and cap is None and self.config.get("method") != "grid":
            raise ValueError("a random or bayes sweep needs --count N (or run_cap in the sweep file)")
        total = count if count is not None else (cap - len(self.trials) if cap is not None else None)
        done: list[Trial] = []
        while count is None or len(done) < count:
            if cap is not None and len(self.trials) >= cap:
                break
            params = self.suggest()
            if params is None:
                break
            step = f"[{len(done) + 1}/{total if total is not None else '?'}]"
            self._report(f"{step} trial-{len(self.trials) + 1:03d} started {params}")
            trial = self.run_trial(params)
            metric = f" {self.metric_name}={trial.metric}" if trial.metric is not None else ""
            self._report(f"{step} {trial.name} {trial.state} in {trial.wall_time_s:.0f} s{metric} {trial.message}".rstrip())
            done.append(trial)
        return done

    def _report(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def best(self) -> Trial | None:
        goal = (self.config.get("metric") or {}).get("goal", "minimize")
        scored = [t for t in self.trials if t.state == "finished" and t.metric is not None]
        if not scored:
            return None
        return (max if goal == "maximize" else min)(scored, key=lambda t: t.metric)
