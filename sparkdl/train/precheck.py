"""Checks of the train config that the driver makes before any rank starts.

Also :func:`matrix_shape`, the matrix PowerSGD sees in a weight (the ranks use it too).

A ``train.model.function`` that names no importable function fails the same way on every rank
and every attempt; the driver finds that out in milliseconds, without importing TensorFlow.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparkdl.config.train import TrainConfig
from sparkdl.errors import BadInputError


def check_model_function(function: str) -> None:
    """Refuse a ``module:function`` whose module cannot be found or that defines no such name.

    The module is located, not imported (its parent packages are), and its source is parsed:
    a name it may define dynamically (``from x import *``, a module ``__getattr__``) passes.

    Raises
    ------
    BadInputError
        Naming ``train.model.function``, what is missing, and the fix.

    Examples
    --------
    >>> check_model_function("json:dumps")
    >>> check_model_function("json:no_such_builder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sparkdl.errors.BadInputError: train.model.function='json:no_such_builder': module json ...
    """
    module_name, _, func_name = function.partition(":")
    fix = (
        "it must name an importable function 'package.module:function' (on the driver and on "
        "every executor: install the package, or ship it with spark-submit --py-files)"
    )
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise BadInputError(
            f"train.model.function={function!r}: module {module_name} cannot be found ({exc}); "
            f"{fix}"
        ) from exc
    if spec is None:
        raise BadInputError(
            f"train.model.function={function!r}: no module named {module_name!r}; {fix}"
        )
    source = _source(spec)
    if source is None:  # an extension or a frozen module: only importing it would tell
        return
    try:
        tree = ast.parse(source, filename=spec.origin or module_name)
    except SyntaxError as exc:
        raise BadInputError(
            f"train.model.function={function!r}: module {module_name} ({spec.origin}) has a "
            f"syntax error at line {exc.lineno}: {exc.msg}; fix the module"
        ) from exc
    name = func_name.split(".")[0]
    if not _may_define(tree.body, name):
        raise BadInputError(
            f"train.model.function={function!r}: module {module_name} ({spec.origin}) defines "
            f"no {name!r}; {fix}"
        )


def _source(spec: importlib.machinery.ModuleSpec) -> str | None:
    """The module's Python source, read from its file (or its loader), if it has one."""
    if spec.origin and spec.has_location and spec.origin.endswith(".py"):
        try:
            return Path(spec.origin).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    try:
        return spec.loader.get_source(spec.name) if hasattr(spec.loader, "get_source") else None
    except ImportError:
        return None


def _may_define(body: list[ast.stmt], name: str) -> bool:
    """Whether module-level statements ``body`` define ``name``, or may define any name."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name in (name, "__getattr__"):
                return True
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if alias.name == "*" or bound == name:
                    return True
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(name in _names(t) or "__getattr__" in _names(t) for t in targets):
                return True
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            blocks = [getattr(node, f, []) for f in ("body", "orelse", "finalbody")]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            if any(_may_define(b, name) for b in blocks):
                return True
    return False


def _names(target: ast.expr) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def matrix_shape(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """The matrix PowerSGD compresses a weight of ``shape`` as, or None (it is sent dense).

    Examples
    --------
    >>> matrix_shape((3, 3, 16, 32)), matrix_shape((64,)), matrix_shape((1, 10))
    ((144, 32), None, None)
    """
    if len(shape) < 2:
        return None
    rows, cols = math.prod(shape[:-1]), shape[-1]
    return (int(rows), int(cols)) if min(rows, cols) > 1 else None


def check_mode_applies(
    cfg: TrainConfig, *, input_dim: int, num_classes: int, fn: Callable[..., Any] | None = None
) -> None:
    """Refuse ``train.compression=powersgd`` for a model with no matrix-shaped weights.

    The model is built here, as the ranks build it (this imports TensorFlow on the driver, only
    with ``powersgd``).

    Raises
    ------
    BadInputError
        Naming the keys, the model's weight shapes and the allowed values.

    Examples
    --------
    >>> from sparkdl.config.train import ModelConfig
    >>> check_mode_applies(TrainConfig(compression="powersgd"), input_dim=8, num_classes=2)
    >>> check_mode_applies(
    ...     TrainConfig(compression="powersgd", model=ModelConfig(depth=0)),
    ...     input_dim=1, num_classes=1,
    ... )  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sparkdl.errors.BadInputError: train.compression=powersgd needs a weight of at least 2 x 2 ...
    """
    if cfg.compression != "powersgd":
        return
    from sparkdl.train.models import build_model

    model = build_model(cfg.model, input_dim=input_dim, num_classes=num_classes, seed=0, fn=fn)
    shapes = [tuple(int(d) for d in w.shape) for w in model.trainable_weights]
    if not any(matrix_shape(s) for s in shapes):
        raise BadInputError(
            f"train.compression=powersgd needs a weight of at least 2 x 2 (as a matrix); "
            f"train.model ({cfg.model.kind}) has weights of shapes {shapes}. Allowed "
            "train.compression values for this model: none, fp16, topk"
        )
