"""Typed records in JSON files: frozen dataclasses to and from plain JSON values, checked on read.

The files that pass between stages (a dataset's ``manifest.json``, a pipeline run's
``state.json``) are frozen dataclasses in memory and plain JSON on disk. Each file carries a
``format`` string ``<name>/<number>``; its reader checks it first (:func:`check_format`), then
builds the record with :func:`from_plain`, which checks every field against its type hint.

Compatibility rule, the same for every record:

- a field the record declares without a default must be present and of its type, or the read
  fails with :class:`~sparkdl.errors.BadInputError` naming the file, the field and the fix;
- a field with a default may be absent (a file written before the field existed);
- a field the record does not declare is ignored and logged at INFO. A newer sparkdl may add
  fields without a new format number, so older readers keep working; a change that an older
  reader would misread (a field renamed, retyped or given a new meaning) takes a new number.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Point:
...     x: int
...     tags: tuple[str, ...] = ()
>>> from_plain(Point, {"x": 1, "tags": ["a"]}, source="p.json", fix="write it again")
Point(x=1, tags=('a',))
>>> to_plain(Point(x=1, tags=("a",)))
{'x': 1, 'tags': ['a']}
"""

from __future__ import annotations

import dataclasses
import logging
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from sparkdl.errors import BadInputError

logger = logging.getLogger(__name__)

T = TypeVar("T")
_FORMAT = re.compile(r"(?P<name>.+)/(?P<number>\d+)")


def to_plain(record: Any) -> Any:
    """Turn a record (dataclasses, mappings, tuples) into plain JSON values.

    Examples
    --------
    >>> to_plain({"a": (1, 2)})
    {'a': [1, 2]}
    """
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_plain(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, Mapping):
        return {str(k): to_plain(v) for k, v in record.items()}
    if isinstance(record, tuple | list):
        return [to_plain(v) for v in record]
    return record


def check_format(found: Any, *, supported: tuple[str, ...], source: str, fix: str) -> str:
    """Return ``found`` when this sparkdl reads that format; refuse it otherwise.

    Raises
    ------
    BadInputError
        Naming the file, the format found, the formats supported and ``fix``.

    Examples
    --------
    >>> check_format("x/1", supported=("x/1",), source="f.json", fix="redo it")
    'x/1'
    >>> check_format("x/9", supported=("x/1",), source="f.json", fix="redo it")
    Traceback (most recent call last):
    ...
    sparkdl.errors.BadInputError: f.json has format 'x/9', written by a newer sparkdl; ...
    """
    if found in supported:
        return str(found)
    why = "an unknown format"
    match = _FORMAT.fullmatch(found) if isinstance(found, str) else None
    for known in supported:
        ours = _FORMAT.fullmatch(known)
        if match and ours and match["name"] == ours["name"]:
            newer = int(match["number"]) > int(ours["number"])
            why = "written by a newer sparkdl" if newer else "written by an older sparkdl"
    import sparkdl

    raise BadInputError(
        f"{source} has format {found!r}, {why}; sparkdl {sparkdl.__version__} reads "
        f"{', '.join(repr(s) for s in supported)}. {fix}"
    )


def from_plain(cls: type[T], data: Any, *, source: str, fix: str) -> T:
    """Build record ``cls`` from plain JSON values, checking each field against its type hint.

    Supported hints: ``str``, ``int``, ``float`` (an int is taken), ``bool``, ``Any``,
    ``X | None``, ``tuple[X, ...]``, ``dict[str, X]`` and nested dataclasses.

    Raises
    ------
    BadInputError
        A missing field, or a value not of its field's type, naming ``source``, the field's
        path (``splits.train.rows``) and ``fix``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Rows:
    ...     valid: int
    >>> from_plain(Rows, {"valid": "7"}, source="m.json", fix="prepare it again")
    Traceback (most recent call last):
    ...
    sparkdl.errors.BadInputError: m.json: field 'valid' is '7' (str), expected int; ...
    """
    ignored: list[str] = []
    record = _build(cls, data, "", source=source, fix=fix, ignored=ignored)
    if ignored:
        logger.info(
            "%s has fields this sparkdl does not know, ignored (written by a newer sparkdl?): %s",
            source,
            ", ".join(ignored),
        )
    return record


def _build(tp: Any, value: Any, where: str, *, source: str, fix: str, ignored: list[str]) -> Any:
    """Check and convert one value against type hint ``tp`` (recursively)."""

    def bad(expected: str) -> BadInputError:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return BadInputError(
            f"{source}: field {where or '(top level)'!r} is {shown} ({type(value).__name__}), "
            f"expected {expected}; the file is damaged or not one sparkdl wrote. {fix}"
        )

    if tp is Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _build(inner, value, where, source=source, fix=fix, ignored=ignored)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise bad(f"an object ({tp.__name__})")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            at = f"{where}.{f.name}" if where else f.name
            if f.name in value:
                kwargs[f.name] = _build(
                    hints[f.name], value[f.name], at, source=source, fix=fix, ignored=ignored
                )
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise BadInputError(
                    f"{source}: field {at!r} is missing; the file is damaged or not one sparkdl "
                    f"wrote. {fix}"
                )
        known = {f.name for f in dataclasses.fields(tp)}
        ignored += [f"{where}.{k}" if where else str(k) for k in value if k not in known]
        return tp(**kwargs)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise bad("a list")
        items = [
            _build(args[0], v, f"{where}[{i}]", source=source, fix=fix, ignored=ignored)
            for i, v in enumerate(value)
        ]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise bad("an object")
        return {
            k: _build(args[1], v, f"{where}.{k}", source=source, fix=fix, ignored=ignored)
            for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad("a number")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad("int")
    if tp in (str, bool):
        if isinstance(value, tp):
            return value
        raise bad(tp.__name__)
    raise TypeError(f"from_plain cannot read type hint {tp!r} (at {where!r})")
