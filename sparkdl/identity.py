"""Tell this project's ``sparkdl`` from the foreign Databricks package of the same name."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import sparkdl

logger = logging.getLogger(__name__)

PROJECT_DISTRIBUTION = "sparkdl-pipeline"
FOREIGN_DISTRIBUTION = "sparkdl"


@dataclass(frozen=True)
class PackageIdentity:
    """Where ``import sparkdl`` resolves and what else on the path claims that name."""

    module_file: str
    is_this_project: bool
    shadowed_copies: tuple[str, ...]
    foreign_distribution: str | None


def _sparkdl_dirs_on_path() -> list[str]:
    found = []
    for entry in sys.path:
        candidate = Path(entry or ".") / "sparkdl" / "__init__.py"
        if candidate.is_file():
            found.append(str(candidate.parent.resolve()))
    return list(dict.fromkeys(found))


def inspect_identity(module: ModuleType | None = None) -> PackageIdentity:
    """Report whether ``import sparkdl`` is this project and what else is named sparkdl.

    Parameters
    ----------
    module : module, optional
        The imported ``sparkdl`` module (defaults to the one this code belongs to).

    Returns
    -------
    PackageIdentity
        The resolved file, whether it carries this project's marker, other ``sparkdl`` folders
        on ``sys.path`` and the version of a foreign ``sparkdl`` distribution, if installed.

    Examples
    --------
    >>> inspect_identity().is_this_project
    True
    """
    mod = module or sparkdl
    here = str(Path(mod.__file__ or "").resolve().parent)
    others = tuple(d for d in _sparkdl_dirs_on_path() if d != here)
    try:
        foreign: str | None = importlib.metadata.version(FOREIGN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        foreign = None
    return PackageIdentity(
        module_file=str(mod.__file__),
        is_this_project=getattr(mod, "__project__", None) == PROJECT_DISTRIBUTION,
        shadowed_copies=others,
        foreign_distribution=foreign,
    )


def require_this_project() -> None:
    """Raise RuntimeError when a foreign ``sparkdl`` would shadow this project's package.

    Examples
    --------
    >>> require_this_project()
    """
    ident = inspect_identity()
    if not ident.is_this_project:
        raise RuntimeError(
            f"'import sparkdl' resolves to {ident.module_file}, which is not {PROJECT_DISTRIBUTION} "
            "(probably Databricks' preinstalled sparkdl). Put this project first on the path: "
            f"pip install {PROJECT_DISTRIBUTION} into a fresh environment, or "
            f"'pip uninstall {FOREIGN_DISTRIBUTION}' where you may."
        )
    if ident.foreign_distribution or ident.shadowed_copies:
        logger.warning(
            "another 'sparkdl' is installed (%s%s); this run uses %s. Executors with a different "
            "sys.path may import the other one: ship this project's wheel or packed environment.",
            f"distribution {FOREIGN_DISTRIBUTION}=={ident.foreign_distribution}"
            if ident.foreign_distribution
            else "",
            ", ".join(ident.shadowed_copies),
            ident.module_file,
        )


__all__ = ["PackageIdentity", "inspect_identity", "require_this_project"]
