"""Every stage is configured one way: a dataclass whose fields are the stage's settings, read from a YAML recipe
(`--config RECIPE.yaml`) with `--field value` overrides on the command line, like trl's and alignment-handbook's
scripts. `parse_recipe` is that parser (trl's `TrlParser`, which rejects keys a recipe has that no field has).

One spelling of "no value" everywhere (`NONE`): `none` on the command line or in a recipe
(YAML's `null` too) makes an optional field None; repo references are `ID` or `ID@REV` (`dialoghub.hub.client`).
A stage config may nest dataclasses (`generation: GenerationSettings`): their fields become flags of their own,
except a name the stage itself has, which the stage sets (the stage's `seed` is its sampler's).

A recipe's speed settings default to `auto`, resolved here from the CPU that runs them, never assumed: machines of one
kind differ in CPU model. bfloat16 halves the bytes and, on a CPU with bf16 matrix instructions (Intel AMX, or
AVX512-BF16 as on AMD Zen 4), runs matmuls 2-3x faster than float32. Without them (AVX2 only) torch emulates it,
about 5x slower than float32. So `dtype: auto` means bfloat16 only where the hardware computes it
(`resolve_dtype`); `benchmarks/train_bench.py` and the leaderboard print what was chosen and why (`describe_cpu`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
NONE = "none"
"""How a config or a command line says "no value" for an optional field or repo reference (any case)."""


def optional_reference(value: str | None) -> str | None:
    """None for an absent value or reference (None, "" or "none"), else the value unchanged."""
    return None if value is None or value.strip().lower() in ("", NONE) else value


def configure_logging(level: int = logging.WARNING, *info_loggers: str) -> None:
    """How every entry point logs (at `level`, and INFO for `info_loggers`), set by the entry point itself so that a
    stage run by the pipeline logs as it does when run by hand."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for name in info_loggers:
        logging.getLogger(name).setLevel(logging.INFO)


def _is_optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    )


def _mapping_of(annotation: Any) -> type | None:
    """The value type of a `dict[str, X]` field (optional or not), else None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) is dict:
            return typing.get_args(candidate)[1]
    return None


def mapping(text: str, value_type: type = str) -> dict:
    """`a=1,b=2` -> {"a": 1, "b": 2}, how a mapping field is written on the command line."""
    pairs = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        if not separator or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE[,NAME=VALUE...]")
        try:
            pairs[key.strip()] = value_type(value.strip())
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: {error}") from error
    return pairs


def _nested(config_class: type) -> dict[str, type]:
    hints = typing.get_type_hints(config_class)
    return {
        item.name: hints[item.name]
        for item in dataclasses.fields(config_class)
        if isinstance(hints[item.name], type) and dataclasses.is_dataclass(hints[item.name])
    }


def _flags_class(config_class: type, skip: set[str], defaults: Any = None) -> type:
    """A dataclass of `config_class`'s own flag fields with resolved types, for `HfArgumentParser` (a mapping is
    read as text); `defaults` (an instance) replaces the declared defaults."""
    hints = typing.get_type_hints(config_class)
    specs = []
    for item in dataclasses.fields(config_class):
        if item.name in skip or not item.init:
            continue
        if defaults is not None:
            spec = dataclasses.field(default=getattr(defaults, item.name), metadata=item.metadata)
        elif item.default_factory is not dataclasses.MISSING:
            spec = dataclasses.field(default_factory=item.default_factory, metadata=item.metadata)
        else:
            spec = dataclasses.field(default=item.default, metadata=item.metadata)
        hint = hints[item.name]
        if _mapping_of(hint) is not None:
            hint = str | None if _is_optional(hint) else str
        specs.append((item.name, hint, spec))
    return dataclasses.make_dataclass(config_class.__name__, specs)


def _readers(parser: argparse.ArgumentParser, classes: Sequence[type]) -> None:
    """Mappings read `a=1,b=2`; optional fields read `none` as None, from the command line and a recipe alike."""
    hints = {name: hint for config_class in classes for name, hint in typing.get_type_hints(config_class).items()}
    for action in parser._actions:
        hint = hints.get(action.dest)
        if hint is None or action.type is None:
            continue
        if (value_type := _mapping_of(hint)) is not None:
            action.type = lambda text, value_type=value_type: mapping(text, value_type)
        if _is_optional(hint):
            action.type = lambda text, read=action.type: None if optional_reference(text) is None else read(text)


def trainer_parser(*dataclass_types: type, description: str | None = None):
    """trl's `TrlParser` over a trainer stage's dataclasses (script arguments, trainer config, `ModelConfig`, ...), as
    alignment-handbook's scripts build it: `--config RECIPE.yaml` plus `--field value` overrides."""
    from trl import TrlParser  # lazy: trl imports torch, and --help of a light entry point should not wait for it

    return TrlParser(dataclass_types, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


def recipe_parser(config_class: type, *, prog: str | None = None, description: str | None = None):
    """The `TrlParser` of `config_class` (nested dataclasses flattened), and the flag classes it parses into."""
    nested = _nested(config_class)
    own = {item.name for item in dataclasses.fields(config_class)} - set(nested)
    default_config = config_class() if nested else None
    flag_classes = [_flags_class(config_class, set(nested))] + [
        _flags_class(nested_class, own, getattr(default_config, name)) for name, nested_class in nested.items()
    ]
    parser = trainer_parser(*flag_classes, description=description)
    parser.prog = prog or parser.prog
    _readers(parser, [config_class, *nested.values()])
    return parser, nested


def parse_recipe(
    config_class: type,
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    description: str | None = None,
):
    """An instance of `config_class` from `--config RECIPE.yaml` (optional) and `--field value` overrides.

    A recipe key or flag that is no field is an error (a `ValueError` for the recipe, argparse's exit for a flag)."""
    parser, nested = recipe_parser(config_class, prog=prog, description=description)
    own_flags, *nested_flags = parser.parse_args_and_config(list(argv) if argv is not None else None)
    values = dataclasses.asdict(own_flags)
    for (name, nested_class), flags in zip(nested.items(), nested_flags, strict=True):
        values[name] = nested_class(**dataclasses.asdict(flags))
    return config_class(**values)


AUTO = "auto"
FLOAT32, BFLOAT16 = "float32", "bfloat16"


@dataclass(frozen=True)
class CpuFeatures:
    capability: str  # torch.backends.cpu.get_cpu_capability(): DEFAULT, AVX2, AVX512, ...
    amx: bool
    avx512_bf16: bool
    cores: int  # the cores this process may run on

    @property
    def native_bf16(self) -> bool:
        return self.amx or self.avx512_bf16


def cpu_features() -> CpuFeatures:
    import torch

    return CpuFeatures(
        capability=torch.backends.cpu.get_cpu_capability(),
        amx=bool(torch.cpu._is_amx_tile_supported()),
        avx512_bf16=bool(torch.cpu._is_avx512_bf16_supported()),
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


def fast_cpu_dtype(features: CpuFeatures | None = None) -> str:
    """bfloat16 where the CPU has bf16 matrix instructions, float32 elsewhere."""
    features = features or cpu_features()
    return BFLOAT16 if features.native_bf16 else FLOAT32


def resolve_dtype(dtype: str | None, device: str = "cpu", features: CpuFeatures | None = None) -> str | None:
    """An explicit dtype is kept; "auto" (or None) becomes `fast_cpu_dtype` on CPU and stays "auto" (as stored)
    elsewhere, where the checkpoint's own dtype is the right default."""
    if dtype not in (None, AUTO):
        return dtype
    return fast_cpu_dtype(features) if device == "cpu" else AUTO


def default_threads(features: CpuFeatures | None = None) -> int:
    """One thread per core this process may use: more only oversubscribe."""
    return (features or cpu_features()).cores


def describe_cpu(features: CpuFeatures | None = None) -> str:
    features = features or cpu_features()
    flags = [name for name, on in (("amx", features.amx), ("avx512_bf16", features.avx512_bf16)) if on]
    return (
        f"CPU {features.capability} ({', '.join(flags) or 'no bf16 matrix instructions'}), {features.cores} cores: "
        f"{fast_cpu_dtype(features)} by default"
    )
