"""Where recordings go: the request's S3, the worker's default S3, else its local directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from livekit.protocol import egress as lk

from parley.egress_worker.config import EgressWorkerSection, S3Defaults
from parley.egress_worker.errors import StorageError, UnsupportedRequest
from parley.egress_worker.storage import LocalStorage, S3Storage, storage_for

pytestmark = pytest.mark.unit


def test_the_requests_own_s3_wins(tmp_path: Path) -> None:
    section = EgressWorkerSection(local_dir=str(tmp_path), s3=S3Defaults(bucket="default"))
    output = lk.DirectFileOutput(
        s3=lk.S3Upload(access_key="a", secret="s", bucket="mine", endpoint="http://minio:9000", region="eu")
    )
    storage = storage_for(output, section)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.region) == ("mine", "eu")
    assert storage.location("x/y.ogg") == "http://minio:9000/mine/x/y.ogg"


def test_the_workers_default_s3_then_the_local_directory(tmp_path: Path) -> None:
    with_s3 = EgressWorkerSection(s3=S3Defaults(bucket="default", region="us-west-2"))
    storage = storage_for(lk.DirectFileOutput(), with_s3)
    assert isinstance(storage, S3Storage)
    assert storage.location("k.ogg") == "https://default.s3.us-west-2.amazonaws.com/k.ogg"
    local = storage_for(lk.DirectFileOutput(), EgressWorkerSection(local_dir=str(tmp_path)))
    assert local == LocalStorage(tmp_path)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (lk.DirectFileOutput(gcp=lk.GCPUpload(bucket="b")), "gcp upload is not yet supported"),
        (
            lk.DirectFileOutput(azure=lk.AzureBlobUpload(account_name="a")),
            "azure upload is not yet supported",
        ),
        (
            lk.DirectFileOutput(s3=lk.S3Upload(access_key="a")),
            "request has missing or invalid field: s3.bucket",
        ),
    ],
)
def test_storage_it_cannot_use_is_refused(output: lk.DirectFileOutput, message: str) -> None:
    with pytest.raises(UnsupportedRequest, match=message):
        storage_for(output, EgressWorkerSection())


async def test_local_storage_moves_the_file_under_its_root(tmp_path: Path) -> None:
    work = tmp_path / "work.ogg"
    work.write_bytes(b"OggS")
    root = tmp_path / "recordings"
    location = await LocalStorage(root).upload(work, "room/a.ogg")
    assert location == str((root / "room/a.ogg").resolve())
    assert (root / "room/a.ogg").read_bytes() == b"OggS" and not work.exists()


async def test_local_storage_refuses_a_path_that_leaves_its_root(tmp_path: Path) -> None:
    work = tmp_path / "work.ogg"
    work.write_bytes(b"x")
    with pytest.raises(StorageError, match="leaves the recordings directory"):
        await LocalStorage(tmp_path / "recordings").upload(work, "../../etc/x.ogg")
    assert work.exists()
