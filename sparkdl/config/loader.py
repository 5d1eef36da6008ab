"""Build frozen, typed config objects from layered YAML and ``--set`` overrides.

Layers, lowest first: the dataclass defaults, each YAML file in the order given, then
``section.key=value`` overrides. Every key is checked against the dataclass fields: an unknown
key raises :class:`ConfigError` naming the closest valid key, and a bad value names the key, the
value and what is allowed.

YAML 1.1 reads unquoted ``no``, ``on``, ``1.50`` or ``2026-01-01`` as a boolean, number or date.
Where a key expects text (label values, column names, paths, Spark conf values), the value is
taken as it was written in the file or override, so ``label_values: [no, yes]`` means the
strings ``'no'`` and ``'yes'``; a boolean that reaches such a key from anywhere else is refused
with a request to quote it.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from sparkdl.config.yamltext import Scalar, TextKeepingLoader, key_text, plain
from sparkdl.errors import BadInputError

T = TypeVar("T")


class ConfigError(BadInputError):
    """A config file, key or value is invalid; the message says which and how to fix it."""


def closest_key(key: str, valid: Iterable[str]) -> str | None:
    """Return the valid key most similar to ``key``, or None when nothing is close.

    Parameters
    ----------
    key : str
        The key as the user wrote it.
    valid : iterable of str
        The keys that are allowed at that place.

    Returns
    -------
    str or None
        The best match by :func:`difflib.get_close_matches` (cutoff 0.6).

    Examples
    --------
    >>> closest_key("num_wokers", ["num_workers", "start_timeout_s"])
    'num_workers'
    """
    matches = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_key_error(path: str, key: str, valid: Sequence[str], source: str) -> ConfigError:
    full = f"{path}.{key}" if path else key
    hint = closest_key(key, valid)
    message = f"unknown config key '{full}' in {source}"
    if hint:
        message += f"; did you mean '{f'{path}.{hint}' if path else hint}'?"
    else:
        message += "."
    return ConfigError(f"{message} Valid keys here: {', '.join(sorted(valid))}.")


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (dict, Mapping):
        return "a mapping"
    if origin in (tuple, list):
        return f"a list of {_describe(get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, source: str, construct: bool = True) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in its canonical form.

    With ``construct=False`` sections are checked key by key but not built, so rules that span
    several keys wait until every layer has been merged.
    """
    origin = get_origin(tp)
    if tp is str and isinstance(value, Scalar):
        return value.text  # text where text is expected: as the user wrote it
    written = value
    value = value.value if isinstance(value, Scalar) else value
    bad = ConfigError(
        f"config key '{key}' in {source} has value {plain(value)!r} ({type(value).__name__}); "
        f"allowed: {_describe(tp)}."
    )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            fix = getattr(tp, "SCALAR_FIX", "")  # a section's own hint for a one-word value
            raise ConfigError(
                f"config key '{key}' in {source} must be a section (a mapping of keys), "
                f"got {value!r}.{f' {fix}' if fix else ''}"
            )
        return _build(tp, value, key, source, construct=construct)
    if origin is Literal:
        if value in get_args(tp):
            return value
        if isinstance(written, Scalar) and written.text in get_args(tp):
            return written.text
        hint = closest_key(str(value), [str(a) for a in get_args(tp)])
        if hint is not None:
            raise ConfigError(f"{bad} Did you mean {hint!r}?")
        raise bad
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(written, arg, key, source, construct)
            except ConfigError:
                continue
        raise bad
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise bad
        key_t, val_t = get_args(tp)
        return types.MappingProxyType(
            {
                _coerce(k, key_t, f"{key}.{key_text(k)}", source): _coerce(
                    v, val_t, f"{key}.{key_text(k)}", source
                )
                for k, v in value.items()
            }
        )
    if origin in (tuple, list):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise bad
        (item_t, *_rest) = get_args(tp)
        return tuple(_coerce(v, item_t, f"{key}[{i}]", source) for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        # YAML turns `8g` into a string but `1024` into an int; Spark conf values are strings.
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, bool):
            # Not from YAML text (that keeps what was written): the original is unknown.
            raise ConfigError(
                f"config key '{key}' in {source} has the boolean {value!r} where text is "
                "expected; YAML reads unquoted yes/no/on/off/true/false as booleans, so write "
                f"the value in quotes (for example '{str(value).lower()}')."
            )
        raise bad
    if tp is Any:
        return plain(value)
    raise TypeError(f"unsupported config annotation {tp!r} for key '{key}'")


def _check_bounds(field: dataclasses.Field, value: Any, key: str, source: str) -> None:
    meta = field.metadata
    if value is None:
        return
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ConfigError(f"config key '{key}' in {source} has value {value!r}; allowed: >= {lo}.")
    if hi is not None and value > hi:
        raise ConfigError(f"config key '{key}' in {source} has value {value!r}; allowed: <= {hi}.")


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _build(
    cls: type[T], data: Mapping[str, Any], path: str, source: str, *, construct: bool = True
) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = key_text(raw_key)
        if key not in fields:
            raise _unknown_key_error(path, key, list(fields), source)
        full = f"{path}.{key}" if path else key
        default = _field_default(fields[key])
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            # A section's own default (it may differ from its class's defaults) is the lowest
            # layer under what the files and overrides give for it.
            value = _merge(to_dict(default), value)
        coerced = _coerce(value, hints[key], full, source, construct)
        _check_bounds(fields[key], coerced, full, source)
        kwargs[key] = coerced
    if not construct:
        return None  # type: ignore[return-value]
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config section '{path or '<root>'}' in {source}: {exc}") from exc


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_yaml(path: str | Path, loader: type[yaml.SafeLoader]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"config file {str(p)!r} does not exist; pass an existing YAML file, "
            f"for example conf/local.yaml."
        )
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"config file {str(p)!r} must hold a mapping of sections at the top level, "
            f"got {type(data).__name__}."
        )
    return dict(data)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML config file into a dict; a missing or malformed file is a ConfigError.

    Parameters
    ----------
    path : str or Path
        The file to read.

    Returns
    -------
    dict
        The file's top-level mapping (empty for an empty file).

    Examples
    --------
    >>> read_yaml("conf/local.yaml")["spark"]["profile"]  # doctest: +SKIP
    'local'
    """
    return _read_yaml(path, yaml.SafeLoader)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``section.key=value`` into its key path and a YAML-parsed value.

    Parameters
    ----------
    text : str
        One override as given to ``--set``.

    Returns
    -------
    (list of str, object)
        The dotted key split into parts, and the value parsed as YAML (so ``4`` is an int,
        ``true`` a bool and ``[a, b]`` a list).

    Examples
    --------
    >>> parse_override("launch.num_workers=4")
    (['launch', 'num_workers'], 4)
    """
    return _split_override(text, yaml.SafeLoader)


def _split_override(text: str, loader: type[yaml.SafeLoader]) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"override {text!r} is not of the form section.key=value, "
            f"for example --set launch.num_workers=4."
        )
    try:
        value = yaml.load(raw, Loader=loader) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value {raw!r} is not valid YAML: {exc}") from exc
    return key.split("."), value


def _nest(parts: list[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(parts):
        out = {part: out}
    return out


def load_config(
    cls: type[T],
    *,
    files: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
) -> T:
    """Load a frozen config of type ``cls``: defaults < each file in order < overrides.

    Parameters
    ----------
    cls : type
        A frozen dataclass whose fields are sections (dataclasses) or plain values.
    files : sequence of path
        YAML files, later ones overriding earlier ones key by key.
    overrides : sequence of str
        ``section.key=value`` strings, applied last.

    Returns
    -------
    cls
        The validated, immutable config.

    Raises
    ------
    ConfigError
        For a missing file, an unknown key (naming the closest valid key) or a bad value.

    Examples
    --------
    >>> from sparkdl.config import SparkdlConfig
    >>> cfg = load_config(SparkdlConfig, overrides=["launch.num_workers=3"])
    >>> cfg.launch.num_workers
    3
    """
    merged: dict[str, Any] = {}
    sources: list[str] = []
    for f in files:
        data = _read_yaml(f, TextKeepingLoader)
        # Check each layer's keys and values on their own so an error names its source.
        _build(cls, data, "", str(f), construct=False)
        merged = _merge(merged, data)
        sources.append(str(f))
    for text in overrides:
        parts, value = _split_override(text, TextKeepingLoader)
        layer = _nest(parts, value)
        _build(cls, layer, "", f"--set {text}", construct=False)
        merged = _merge(merged, layer)
        sources.append(f"--set {text}")
    # Rules that span keys (profile vs master, ...) are checked once, on the merged result.
    return _build(cls, merged, "", " + ".join(sources) or "defaults")


def to_dict(cfg: Any) -> Any:
    """Turn a config object back into plain dicts, lists and scalars (for logs and manifests).

    Examples
    --------
    >>> from sparkdl.config import SparkdlConfig
    >>> to_dict(SparkdlConfig())["launch"]["num_workers"]
    2
    """
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, tuple | list):
        return [to_dict(v) for v in cfg]
    return cfg


__all__ = [
    "ConfigError",
    "closest_key",
    "load_config",
    "parse_override",
    "read_yaml",
    "to_dict",
]


def load_section(cls: type[T], data: Mapping[str, Any], *, source: str = "a manifest") -> T:
    """Build and validate one config section from a plain mapping (such as a manifest's copy).

    Examples
    --------
    >>> from sparkdl.config.data import ColumnsConfig
    >>> load_section(ColumnsConfig, {"numeric": ["x0"], "label": "y"}).label
    'y'
    """
    return _build(cls, data, "", source)
