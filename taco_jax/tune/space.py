"""The search space: config keys with distributions, read from YAML and validated before any trial runs.

A space file maps dotted config keys to distributions:

    optim.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
    model.encoder_dropout: {type: float, low: 0.1, high: 0.5, step: 0.1}
    model.n_frames_per_step: {type: int, low: 2, high: 3}
    data.batch_size: {type: categorical, choices: [8, 16]}
    control.ga_weight.enabled:
      type: categorical
      choices: [false, true]
      when:                # keys sampled only in trials that drew this choice
        true:
          control.ga_weight.max_loss_ratio: {type: float, low: 0.05, high: 0.5, log: true}

`type` is `float` (`low`, `high`, optional `log` or `step`), `int` (`low`, `high`, optional `log` or `step`) or
`categorical` (`choices`: scalars or lists). Every bound and choice is applied to the base config before a trial
runs, so an unknown key, a value of the wrong type or one the config refuses is an error naming the key and the
space file's line (`SpaceError`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from taco_jax.errors import UserError

__all__ = ["Param", "SearchSpace", "SpaceError", "load_space"]

_TYPES = ("float", "int", "categorical")
_KEYS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"}, "categorical": {"choices"}}


class SpaceError(UserError):
    """A search-space file that cannot be used: names the file, line and key."""


@dataclass(frozen=True)
class Param:
    """One tuned config key. `when`: choice -> the params sampled only after that choice (categorical only)."""

    key: str
    kind: str  # "float" | "int" | "categorical"
    line: int  # 1-based line of the key in the space file
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    when: tuple[tuple[Any, tuple[Param, ...]], ...] = ()  # (choice, the params it enables)

    def enabled_by(self, value: Any) -> tuple[Param, ...]:
        """The params sampled after this key drew `value`."""
        return next((group for choice, group in self.when if _same(choice, value)), ())

    def boundary_values(self) -> list:
        """The values validated against the config: both bounds, or every choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def suggest(self, trial) -> Any:
        """Draws this key's value from an Optuna trial (lists among the choices travel as their JSON text)."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, log=self.log, step=self.step or 1)
        labels = [_label(c) for c in self.choices]
        drawn = trial.suggest_categorical(self.key, labels)
        return self.choices[labels.index(drawn)]


@dataclass(frozen=True)
class SearchSpace:
    path: str
    params: tuple[Param, ...]

    def suggest(self, trial) -> dict[str, Any]:
        """{config key: value} drawn for `trial`, conditional keys included where their choice was drawn."""
        drawn: dict[str, Any] = {}
        pending = list(self.params)
        while pending:
            p = pending.pop(0)
            value = p.suggest(trial)
            drawn[p.key] = value
            pending.extend(p.enabled_by(value))
        return drawn

    def all_params(self) -> list[Param]:
        out, pending = [], list(self.params)
        while pending:
            p = pending.pop(0)
            out.append(p)
            pending.extend(q for _, group in p.when for q in group)
        return out

    def validate(self, check: Callable[[list[str]], None]) -> None:
        """Applies every bound and choice (with the choices that enable it) through `check(overrides)`, which
        raises on a value the config refuses; re-raised as SpaceError naming the key and line."""
        self._validate(self.params, [], check)

    def _validate(self, params: Sequence[Param], enabling: list[str], check) -> None:
        for p in params:
            for value in p.boundary_values():
                try:
                    check([*enabling, override(p.key, value)])
                except UserError as e:
                    raise SpaceError(f"{self.path}:{p.line}: {p.key} = {value!r} is refused by the config: {e}") from e
            for choice, group in p.when:
                self._validate(group, [*enabling, override(p.key, choice)], check)


def override(key: str, value: Any) -> str:
    """A `--set` override; JSON is valid YAML for numbers, booleans, strings and lists."""
    return f"{key}={json.dumps(value)}"


def _label(choice: Any) -> Any:
    return json.dumps(choice) if isinstance(choice, list | dict) else choice


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same type (YAML's `true` is not the choice `1`)."""
    return type(a) is type(b) and a == b


def load_space(path: str | Path) -> SearchSpace:
    """Reads and checks a space file (shape, types and ranges; the config check is `SearchSpace.validate`)."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise SpaceError(f"{path}: not valid YAML: {e}") from None
    if root is None or not isinstance(root, yaml.MappingNode) or not root.value:
        raise SpaceError(f"{path}: expected a mapping of config keys to distributions")
    return SearchSpace(path, _params(root, path, seen=set()))


def _params(node: yaml.MappingNode, path: str, seen: set[str]) -> tuple[Param, ...]:
    params = []
    for key_node, value_node in node.value:
        key, line = str(_scalar(key_node)), key_node.start_mark.line + 1
        if key in seen:
            raise SpaceError(f"{path}:{line}: {key} is tuned twice")
        seen.add(key)
        params.append(_param(key, line, value_node, path, seen))
    return tuple(params)


def _param(key: str, line: int, node, path: str, seen: set[str]) -> Param:
    where = f"{path}:{line}: {key}"
    if not isinstance(node, yaml.MappingNode):
        raise SpaceError(f"{where}: expected a distribution such as {{type: float, low: 0.1, high: 1.0}}")
    fields = {str(_scalar(k)): v for k, v in node.value}
    kind = _scalar(fields.pop("type")) if "type" in fields else None
    if kind not in _TYPES:
        raise SpaceError(f"{where}: type {kind!r} is not one of {', '.join(_TYPES)}")
    when_node = fields.pop("when", None)
    unknown = set(fields) - _KEYS[kind]
    if unknown:
        allowed = sorted(_KEYS[kind])
        raise SpaceError(f"{where}: unknown field(s) {sorted(unknown)} for type {kind} (allowed: {allowed})")
    values = {k: _construct(v) for k, v in fields.items()}
    if kind == "categorical":
        choices = values.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: choices must be a non-empty list")
        if any(_same(a, b) for i, a in enumerate(choices) for b in choices[i + 1 :]):
            raise SpaceError(f"{where}: choices repeat a value")
        when = _when(when_node, choices, where, path, seen)
        return Param(key, kind, line, choices=tuple(choices), when=when)
    if when_node is not None:
        raise SpaceError(f"{where}: `when` belongs to categorical keys")
    low, high, log, step = _range(values, kind, where)
    return Param(key, kind, line, low=low, high=high, log=log, step=step)


def _range(values: dict, kind: str, where: str) -> tuple:
    number = float if kind == "float" else int
    for name in ("low", "high"):
        v = values.get(name)
        if v is None or isinstance(v, bool) or not isinstance(v, int | float) or (kind == "int" and v != int(v)):
            raise SpaceError(f"{where}: {name} must be {'a number' if kind == 'float' else 'an integer'}, got {v!r}")
        if not math.isfinite(v):
            raise SpaceError(f"{where}: {name} must be finite, got {v!r}")
    low, high = number(values["low"]), number(values["high"])
    log, step = values.get("log", False), values.get("step")
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log must be true or false, got {log!r}")
    if low >= high:
        raise SpaceError(f"{where}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise SpaceError(f"{where}: a log distribution needs low > 0, got {low}")
    if step is not None:
        if log:
            raise SpaceError(f"{where}: step and log cannot be combined")
        if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0 or step > high - low:
            raise SpaceError(f"{where}: step must be a positive number no larger than high - low, got {step!r}")
        step = number(step)
    return low, high, log, step


def _when(node, choices: list, where: str, path: str, seen: set[str]) -> tuple:
    if node is None:
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise SpaceError(f"{where}: `when` must map choices to keys")
    when = []
    for choice_node, group in node.value:
        choice, line = _construct(choice_node), choice_node.start_mark.line + 1
        if not any(_same(choice, c) for c in choices):
            raise SpaceError(f"{path}:{line}: {choice!r} is not among the choices of the key")
        if not isinstance(group, yaml.MappingNode):
            raise SpaceError(f"{path}:{line}: expected the keys this choice enables")
        when.append((choice, _params(group, path, seen)))
    return tuple(when)


def _construct(node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _scalar(node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return None
    return _construct(node)
