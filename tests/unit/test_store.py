"""The store layer: output locations as URIs, the ranks' pyarrow store, and checkpoints, the
model and TensorBoard events published through it (a mounted path, and an object store that
cannot rename folders: fsspec's in-memory file system standing in for S3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tensorflow as tf

from sparkdl.errors import BadInputError, InfraError
from sparkdl.store.arrow import ArrowStore
from sparkdl.store.uri import parse_location
from sparkdl.train.checkpoint import (
    FILES,
    FencedError,
    claim_fence,
    fetch_checkpoint,
    latest_checkpoint,
    publish_folder,
    restore_checkpoint,
    sync_folder,
    write_checkpoint,
)


@pytest.mark.parametrize(
    ("value", "scheme", "uri", "posix"),
    [
        ("runs/a", "", "/base/runs/a", "/base/runs/a"),
        ("/mnt/shared/a/", "", "/mnt/shared/a", "/mnt/shared/a"),
        ("file:/mnt/a", "file", "file:///mnt/a", "/mnt/a"),
        ("file:///mnt/a", "file", "file:///mnt/a", "/mnt/a"),
        ("dbfs:/runs/a", "dbfs", "dbfs:/runs/a", "/dbfs/runs/a"),
        ("hdfs://nn:8020/runs/a", "hdfs", "hdfs://nn:8020/runs/a", None),
        ("s3a://bucket/runs/a/", "s3a", "s3a://bucket/runs/a", None),
        (
            "abfss://c@acct.dfs.core.windows.net/a",
            "abfss",
            "abfss://c@acct.dfs.core.windows.net/a",
            None,
        ),
    ],
)
def test_locations(value: str, scheme: str, uri: str, posix: str | None) -> None:
    loc = parse_location(value, cwd="/base")
    assert (loc.scheme, loc.uri, loc.posix) == (scheme, uri, posix)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("ftp://host/x", r"train.output='ftp://host/x': no file system for scheme 'ftp'"),
        ("s3a:/bucket", r"needs an authority, like s3a://host-or-bucket/path"),
        ("  ", r"train.output is empty"),
    ],
)
def test_bad_locations_name_the_key_and_the_fix(value: str, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        parse_location(value, key="train.output")


def test_a_scheme_whose_file_system_is_missing_names_what_to_install() -> None:
    # this machine has no libhdfs/JVM for pyarrow, and no adlfs: both real failures
    with pytest.raises(BadInputError, match=r"hdfs://nn:8020/x .* needs libhdfs"):
        ArrowStore("hdfs://nn:8020/x").exists()
    with pytest.raises(BadInputError, match=r"pip install adlfs"):
        ArrowStore("abfss://c@acct.dfs.core.windows.net/x").exists()


def test_mounted_store_writes_atomically_lists_moves_and_deletes(tmp_path: Path) -> None:
    store = ArrowStore(str(tmp_path / "out"))
    store.write_bytes("a/b.json", b"1")
    store.write_bytes("a/b.json", b"2")
    assert store.read_bytes("a/b.json") == b"2"
    assert store.list_names("a") == ["b.json"]  # no temporary sibling left behind
    store.move("a", "c")
    assert not store.exists("a") and store.exists("c/b.json")
    store.delete("c")
    assert store.list_names() == [] and store.list_names("missing") == []
    with pytest.raises(FileNotFoundError):
        store.read_bytes("nothing")


def test_a_store_that_cannot_be_written_fails_with_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    store = ArrowStore(str(tmp_path / "file" / "out"))
    with pytest.raises(InfraError, match=r"cannot write .*file/out/x.json"):
        store.write_bytes("x.json", b"{}")


def _ckpt(value: float) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(v=tf.Variable([value, value]))


def test_checkpoints_on_an_object_store_resume_on_another_node(
    object_store: str, tmp_path: Path
) -> None:
    root = f"{object_store}/checkpoints"
    old = claim_fence(root, attempt=0)
    for epoch in range(2):
        write_checkpoint(_ckpt(epoch + 1.0), root=root, epoch=epoch, history=[], fence=old)
    store = ArrowStore(root)
    # no folder renames on an object store: one folder per launch, the pointer names it
    folder = f"epoch-0001-{old.launch_id[:8]}"
    assert [n for n in store.list_names() if n.startswith("epoch-")] == [folder]
    new = claim_fence(root, attempt=1)
    with pytest.raises(FencedError, match="names attempt 1"):
        write_checkpoint(_ckpt(9.0), root=root, epoch=2, history=[], fence=old)
    info = latest_checkpoint(root)
    assert info is not None and info.epoch == 1 and info.path == f"{root}/{folder}/ckpt"
    # "another node": a staging folder of its own, filled from the store only
    local = fetch_checkpoint(info, staging=str(tmp_path))
    restored = tf.Variable([0.0, 0.0])
    assert restore_checkpoint(tf.train.Checkpoint(v=restored), path=local, required=True)
    assert restored.numpy().tolist() == [2.0, 2.0]
    data = next(n for n in info.files if n.startswith("ckpt.data"))
    store.write_bytes(f"{folder}/{data}", b"\x00" * 8)
    with pytest.raises(BadInputError, match="does not match the checksums"):
        fetch_checkpoint(info, staging=str(tmp_path))
    write_checkpoint(_ckpt(3.0), root=root, epoch=2, history=[{"epoch": 2}], fence=new)
    assert latest_checkpoint(root).epoch == 2


def test_model_and_events_on_an_object_store(object_store: str, tmp_path: Path) -> None:
    fence = claim_fence(f"{object_store}/checkpoints", attempt=0)

    def save(path: str) -> None:
        Path(path, "variables").mkdir(parents=True)
        Path(path, "saved_model.pb").write_bytes(b"pb")
        Path(path, "variables", "v.index").write_bytes(b"ix")

    publish_folder(save, target=f"{object_store}/model", fence=fence)
    model = ArrowStore(f"{object_store}/model")
    listing = json.loads(model.read_bytes(FILES))["files"]
    assert sorted(listing) == ["saved_model.pb", "variables/v.index"]
    assert model.read_bytes("variables/v.index") == b"ix"
    events = tmp_path / "tb" / "train"
    events.mkdir(parents=True)
    (events / "events.out").write_bytes(b"e1")
    assert sync_folder(str(tmp_path / "tb"), target=f"{object_store}/tensorboard", fence=fence) == 1
    assert ArrowStore(f"{object_store}/tensorboard").read_bytes("train/events.out") == b"e1"
    claim_fence(f"{object_store}/checkpoints", attempt=1)
    with pytest.raises(FencedError):
        publish_folder(save, target=f"{object_store}/model", fence=fence)
    with pytest.raises(FencedError):
        sync_folder(str(tmp_path / "tb"), target=f"{object_store}/tensorboard", fence=fence)


def test_model_card_round_trip_and_refusals(tmp_path: Path, object_store: str) -> None:
    from sparkdl.train.card import CARD, ModelCard, local_model, read_card, write_card

    card = ModelCard(
        featurizer="/d/v1/featurizer",
        dataset_version="v1",
        feature_dim=3,
        label_values=["no", "yes"],
    )
    write_card(tmp_path, card)
    assert read_card(str(tmp_path)) == card
    assert json.loads((tmp_path / CARD).read_text())["format"] == "sparkdl-model/1"
    # a card written before the format field existed reads the same
    (tmp_path / CARD).write_text(
        json.dumps({k: v for k, v in json.loads(card.to_json()).items() if k != "format"})
    )
    assert read_card(str(tmp_path)) == card
    (tmp_path / CARD).write_text(
        json.dumps({**json.loads(card.to_json()), "format": "sparkdl-model/9"})
    )
    with pytest.raises(
        BadInputError, match=r"format 'sparkdl-model/9'; this sparkdl reads 'sparkdl-model/1'"
    ):
        read_card(str(tmp_path))
    with pytest.raises(BadInputError, match=r"has no sparkdl_model.json"):
        read_card(str(tmp_path / "elsewhere"))
    # a model published on an object store is copied to the node before TensorFlow reads it
    fence = claim_fence(f"{object_store}/checkpoints", attempt=0)

    def save(path: str) -> None:
        Path(path).mkdir()
        Path(path, "saved_model.pb").write_bytes(b"pb")
        write_card(path, card)

    publish_folder(save, target=f"{object_store}/model", fence=fence)
    assert read_card(f"{object_store}/model") == card
    local = Path(local_model(f"{object_store}/model", cache=str(tmp_path)))
    assert (local / "saved_model.pb").read_bytes() == b"pb" and str(local).startswith(str(tmp_path))
    assert local_model(str(tmp_path)) == str(tmp_path)  # a mounted model is read in place
