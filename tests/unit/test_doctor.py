"""The doctor's individual checks and its report."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkdl.doctor import (
    Check,
    check_java,
    check_python,
    check_versions,
    format_checks,
    java_version,
)
from sparkdl.stack import KNOWN_GOOD, Pin


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


@pytest.mark.parametrize(
    ("line", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "11.0.2" 2019-01-15', 11),
    ],
)
def test_java_version_parsing(tmp_path: Path, line: str, major: int) -> None:
    home = _fake_java(tmp_path, line)
    assert java_version(str(home / "bin" / "java"))[1] == major


def test_old_java_fails_with_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, 'openjdk version "11.0.2"')))
    check = check_java()
    assert check.status == "fail"
    assert "version 11" in check.detail
    assert "JDK 17" in check.fix


def test_missing_java_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert check_java().status == "fail"


def test_this_environment_matches_the_stack() -> None:
    checks = check_versions()
    assert {c.name for c in checks} >= {"horovod", "pyspark", "petastorm", "pyarrow", "numpy"}
    bad = [c for c in checks if c.status != "ok"]
    assert not bad, bad
    assert check_python().status == "ok"


def test_pin_matching() -> None:
    assert Pin("x", "3.5.", "").matches("3.5.9")
    assert not Pin("x", "3.5.", "").matches("3.50.1")
    assert Pin("x", "14.0.2", "").matches("14.0.2")
    assert not Pin("x", "14.0.2", "").matches("14.0.20")
    assert any(p.distribution == "horovod" and p.prefix == "0.28.1" for p in KNOWN_GOOD)


def test_report_shows_fix_only_for_problems() -> None:
    text = format_checks(
        [
            Check("java", "fail", "version 11", "install JDK 17"),
            Check("numpy", "ok", "1.26.4", "unused"),
        ]
    )
    assert "FAIL  java" in text and "fix: install JDK 17" in text
    assert "unused" not in text
    assert text.endswith("1 problem(s) found")
    assert format_checks([Check("numpy", "ok", "1.26.4")]).endswith("stack is healthy")
