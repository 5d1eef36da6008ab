"""scripts/executor-python.sh: the packed environment is unpacked once per node and stack.

Each test lays out a node's standalone worker dir (``work/app-<id>/<n>`` per executor) with the
launcher and a small packed environment whose ``bin/python`` says where it runs, as
scripts/submit.sh ships them with ``--files``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[2] / "scripts" / "executor-python.sh"
HASH = "0123456789abcdef"
FAKE_PYTHON = b'#!/bin/sh\necho "python $0 $*"\n'


def _pack(path: Path) -> Path:
    """A tar.gz holding ``bin/python`` (executable) and a library file."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data, mode in (
            ("bin/python", FAKE_PYTHON, 0o755),
            ("lib/site.txt", b"x" * 4096, 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return path


def _executor(root: Path, app: str, n: int = 0, *, stack: str = HASH) -> Path:
    """An executor's working dir under ``root`` with what submit.sh ships into it."""
    cwd = root / app / str(n)
    cwd.mkdir(parents=True)
    shutil.copy(LAUNCHER, cwd / f"sparkdl-python-{stack}")
    _pack(cwd / f"sparkdl-env-{stack}.pack")
    return cwd


def _launch(cwd: Path, *args: str, stack: str = HASH, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [f"./sparkdl-python-{stack}", *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(cwd: Path, *args: str, stack: str = HASH, **env: str) -> subprocess.CompletedProcess[str]:
    proc = _launch(cwd, *args, stack=stack, **env)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_first_executor_of_a_node_unpacks_into_the_worker_dir_and_later_ones_reuse_it(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    first = _executor(work, "app-20261202170000-0000")
    done = _run(first, "-m", "pyspark.daemon")
    cached = work / ".sparkdl-env" / f"sparkdl-env-{HASH}"
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"python {cached}/bin/python -m pyspark.daemon"
    assert f"unpacked the environment into {cached} in " in done.stderr
    assert not (first / f"sparkdl-env-{HASH}.pack").exists()  # the executor's copy is gone
    assert (cached / "lib" / "site.txt").read_bytes() == b"x" * 4096
    # another application's executor on the node: no unpacking, its copy deleted too
    second = _executor(work, "app-20261202170100-0001", 2)
    again = _run(second, "-c", "pass")
    assert again.returncode == 0 and "unpacked" not in again.stderr, again.stderr
    assert again.stdout.strip() == f"python {cached}/bin/python -c pass"
    assert not (second / f"sparkdl-env-{HASH}.pack").exists()
    assert sorted(p.name for p in cached.parent.iterdir() if not p.name.endswith(".lock")) == [
        f"sparkdl-env-{HASH}"
    ]


@pytest.mark.skipif(shutil.which("flock") is None, reason="needs flock(1) (util-linux)")
def test_executors_starting_together_unpack_once(tmp_path: Path) -> None:
    work = tmp_path / "work"
    dirs = [_executor(work, f"app-20261202170000-000{i}") for i in range(4)]
    procs = [_launch(d) for d in dirs]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert sum("unpacked the environment" in err for _, err in results) == 1, results
    assert not list((work / ".sparkdl-env").glob("*.tmp.*"))


def test_outside_a_standalone_worker_it_unpacks_in_the_working_dir_or_the_named_cache(
    tmp_path: Path,
) -> None:
    pod = _executor(tmp_path, "opt", 0)  # e.g. a container's working dir: no app-<id> parent
    done = _run(pod)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"python {pod.resolve()}/sparkdl-env-{HASH}/bin/python"
    named = _executor(tmp_path / "work", "app-1", 0)
    cache = tmp_path / "cache"
    done = _run(named, SPARKDL_ENV_CACHE=str(cache))
    assert done.stdout.strip() == f"python {cache}/sparkdl-env-{HASH}/bin/python", done.stderr


@pytest.mark.skipif(shutil.which("flock") is None, reason="needs flock(1) (util-linux)")
def test_a_new_stack_removes_the_old_environments_no_worker_holds_or_used_lately(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    cache = work / ".sparkdl-env"
    stale, held, recent = "a" * 16, "b" * 16, "c" * 16
    for stack in (stale, held, recent):
        assert _run(_executor(work, f"app-{stack}", stack=stack), stack=stack).returncode == 0
    day_ago = time.time() - 2 * 86400
    for stack in (stale, held):
        os.utime(cache / f"sparkdl-env-{stack}" / ".sparkdl-used", (day_ago, day_ago))
    # a worker of the held stack still runs (it holds the environment's shared lock)
    holder = subprocess.Popen(
        ["flock", "-s", str(cache / f"sparkdl-env-{held}.use.lock"), "sleep", "60"]
    )
    try:
        time.sleep(0.3)
        done = _run(_executor(work, "app-new"))
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 0, done.stderr
    assert f"removed {cache}/sparkdl-env-{stale} (no worker used it in 1440 minutes)" in done.stderr
    left = sorted(p.name for p in cache.iterdir() if p.is_dir())
    assert left == [f"sparkdl-env-{s}" for s in sorted((HASH, held, recent))]


def test_a_misnamed_launcher_or_a_missing_archive_is_an_error_that_says_what_to_do(
    tmp_path: Path,
) -> None:
    cwd = _executor(tmp_path / "work", "app-1")
    (cwd / "python-wrapper").write_bytes(LAUNCHER.read_bytes())
    (cwd / "python-wrapper").chmod(0o755)
    wrong = subprocess.run(
        ["./python-wrapper"], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert wrong.returncode == 2
    assert "must be named sparkdl-python-<stack hash> (scripts/submit.sh names it)" in wrong.stderr
    (cwd / f"sparkdl-env-{HASH}.pack").unlink()
    missing = _run(cwd)
    assert missing.returncode == 2
    assert f"{cwd.resolve()}/sparkdl-env-{HASH}.pack is missing" in missing.stderr
    assert "resubmit with scripts/submit.sh, which ships it with --files" in missing.stderr
