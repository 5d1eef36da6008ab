"""The driver's store through Spark's Hadoop file system, and the output check before a job."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkdl.errors import BadInputError
from sparkdl.store.check import check_output
from sparkdl.store.hadoop import HadoopStore
from sparkdl.train.fence import claim_fence, fenced

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("through_hadoop", [True, False])
def test_driver_store_round_trip(spark, tmp_path: Path, through_hadoop: bool) -> None:
    store = HadoopStore(spark, f"file://{tmp_path}/out", through_hadoop=through_hadoop)
    store.write_bytes("a/m.json", b"1")
    store.write_bytes("a/m.json", b"22")  # replaced whole
    assert store.read_bytes("a/m.json") == b"22"
    assert store.exists("a") and not store.exists("b")
    assert [n for n in store.list_names("a") if not n.endswith(".crc")] == ["m.json"]
    with pytest.raises(FileNotFoundError):
        store.read_bytes("a/none.json")
    # the fence the driver claims through its store is the one the ranks' store checks
    fence = claim_fence(
        HadoopStore(spark, f"file://{tmp_path}/ck", through_hadoop=through_hadoop), attempt=0
    )
    with fenced(fence):
        pass
    store.delete("a")
    assert store.list_names() == []


def test_check_output_probes_and_cleans_up(spark, tmp_path: Path) -> None:
    loc = check_output(spark, str(tmp_path / "run"), key="kmeans.output")
    assert loc.uri == str(tmp_path / "run") and list((tmp_path / "run").iterdir()) == []
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(BadInputError, match=r"sgd.output=.*blocker/run cannot be written"):
        check_output(spark, str(tmp_path / "blocker" / "run"), key="sgd.output")
