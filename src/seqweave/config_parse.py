"""Reading configuration: TOML in, ``--set`` overrides, JSON out, and the old flat keys.

Every value can be overridden on the command line as ``--set train.lr=1e-3``;
the string is parsed by the field's type. An unknown section or key is an error
that lists the valid ones, so a typo fails at start-up instead of being silently
ignored. Keys that moved to their own section (``train.claps_weight`` is now
``objectives.claps.weight``) keep working in TOML files, in overrides and in a
saved ``config.json``: ``LEGACY_KEYS`` says where each went.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from seqweave.config import ExperimentConfig, TrainConfig
from seqweave.errors import ConfigError

T = TypeVar("T")

# section -> old key -> its path now (the objectives' settings left [train] for their own
# sections; see seqweave.objectives.settings)
LEGACY_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "action_weight": ("objectives", "actions", "weight"),
        "length_weight": ("objectives", "length", "weight"),
        "noise_mask_rate": ("objectives", "denoising", "mask_rate"),
        "noise_replace_rate": ("objectives", "denoising", "replace_rate"),
        "e2s2_denoise_weight": ("objectives", "e2s2", "denoise_weight"),
        "e2s2_contrastive_weight": ("objectives", "e2s2", "contrastive_weight"),
        "e2s2_temperature": ("objectives", "e2s2", "temperature"),
        "seqpe_contrastive_weight": ("objectives", "seqpe", "contrastive_weight"),
        "seqpe_distill_weight": ("objectives", "seqpe", "distill_weight"),
        "seqpe_max_position": ("objectives", "seqpe", "max_position"),
        "claps_weight": ("objectives", "claps", "weight"),
        "claps_temperature": ("objectives", "claps", "temperature"),
        "claps_imposter_eps": ("objectives", "claps", "imposter_eps"),
        "claps_distant_eta": ("objectives", "claps", "distant_eta"),
        "claps_kl_bound": ("objectives", "claps", "kl_bound"),
    },
}
SECTION_NAMES: dict[type, str] = {TrainConfig: "train"}  # sections that lost keys


def upgrade_legacy_keys(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of an experiment's plain values (a TOML file, a saved ``config.json``) with
    the old flat keys moved to where they live now.

    Raises:
        ConfigError: an old key and its new one are both set, to different values.
    """
    values = copy.deepcopy(values)
    for section, moved in LEGACY_KEYS.items():
        old = values.get(section)
        if not isinstance(old, dict):
            continue
        for key in [k for k in old if k in moved]:
            *parents, name = moved[key]
            target = values
            for part in parents:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    break  # not a table: from_dict says so
            else:
                new = ".".join(moved[key])
                if name in target and target[name] != old[key]:
                    raise ConfigError(
                        f"{section}.{key} (old name) and {new} are both set, to "
                        f"{old[key]!r} and {target[name]!r}: keep only {new}"
                    )
                target[name] = old.pop(key)
    return values


def _moved_key(cls: type, key: str) -> str:
    """' (now NEW)' for an old key of section class ``cls``, else ''."""
    path = LEGACY_KEYS.get(SECTION_NAMES.get(cls, ""), {}).get(key)
    return f" (now {'.'.join(path)})" if path else ""


def from_dict(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build a config dataclass from plain values, checking keys and types."""
    if cls is ExperimentConfig:
        values = upgrade_legacy_keys(values)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            valid = ", ".join(sorted(names))
            moved = _moved_key(cls, key)
            raise ConfigError(f"unknown key {where + key!r}{moved}; valid keys: {valid}")
        kwargs[key] = _coerce(value, hints[key], f"{where}{key}")
    return cls(**kwargs)


def _coerce(value: Any, kind: Any, name: str) -> Any:
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table, got {type(value).__name__}")
        return from_dict(kind, value, f"{name}.")
    origin = typing.get_origin(kind)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        args = typing.get_args(kind)
        item = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, item, name) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{name} must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, name) for v, a in zip(value, args, strict=True))
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        return _coerce(value, _non_none(kind), name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and not (
        isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}")
    return value


def _non_none(kind: Any) -> Any:
    """The one non-None member of an optional type, e.g. bool for ``bool | None``."""
    (member,) = [a for a in typing.get_args(kind) if a is not type(None)]
    return member


def parse_override(text: str) -> tuple[list[str], str]:
    """Split ``section.key=value`` into its key path and raw value."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), raw.strip()


def _parse_value(raw: str, kind: Any, name: str) -> Any:
    """Parse an override string by the type of the field it sets."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null"):
            return None
        return _parse_value(raw, _non_none(kind), name)
    if kind is bool:
        lowered = raw.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{name} must be true or false, got {raw!r}")
        return lowered in ("true", "1", "yes")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if typing.get_origin(kind) is tuple:
        parts = [p.strip() for p in raw.strip("[]()").split(",") if p.strip()]
        args = typing.get_args(kind)
        item_kinds = [args[0]] * len(parts) if args[-1] is Ellipsis else list(args)
        if len(item_kinds) != len(parts):
            raise ConfigError(f"{name} must have {len(item_kinds)} comma-separated items")
        return tuple(_parse_value(p, k, name) for p, k in zip(parts, item_kinds, strict=True))
    return _unquote(raw)


def _unquote(raw: str) -> str:
    """``"text"`` or ``'text'`` -> text, as a shell user would expect from --set."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def apply_overrides(config: T, overrides: list[str]) -> T:
    """Return a copy of ``config`` with ``section.key=value`` overrides applied."""
    for text in overrides:
        path, raw = parse_override(text)
        if isinstance(config, ExperimentConfig) and len(path) == 2:
            path = list(LEGACY_KEYS.get(path[0], {}).get(path[1], path))
        config = _replace_path(config, path, raw, ".".join(path))
    return config


def _replace_path(config: Any, path: list[str], raw: str, full: str) -> Any:
    hints = typing.get_type_hints(type(config))
    key = path[0]
    if key not in hints:
        valid = ", ".join(sorted(hints))
        moved = _moved_key(type(config), key)
        raise ConfigError(f"unknown key {full!r}{moved}: {key!r} is not one of {valid}")
    if len(path) == 1:
        if dataclasses.is_dataclass(hints[key]):
            raise ConfigError(f"{full!r} is a section; set one of its keys, e.g. {full}.KEY=...")
        return dataclasses.replace(config, **{key: _parse_value(raw, hints[key], full)})
    child = getattr(config, key)
    if not dataclasses.is_dataclass(child):
        raise ConfigError(f"{key!r} in {full!r} is not a section")
    return dataclasses.replace(config, **{key: _replace_path(child, path[1:], raw, full)})


def load_config(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Read an experiment TOML file and apply command-line overrides."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    config = from_dict(ExperimentConfig, values)
    return apply_overrides(config, list(overrides))


def to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-ready values of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))
