"""Where finished recordings go: an S3-compatible bucket or a local directory.

The storage is the request's own (``DirectFileOutput.s3``), else the worker's default ``s3``, else
its ``local_dir``. Local recordings are written in place (``direct_path``); S3 ones in the work
directory, uploaded when they end. GCP, Azure and AliOSS are refused ("… is not yet supported"). Uploads run in a
thread (boto3 is blocking); ``location`` is what LiveKit reports: the absolute path for local files,
``<endpoint>/<bucket>/<key>`` with a custom endpoint, else the AWS virtual-host URL.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from livekit.protocol import egress as lk

from parley.egress_worker.config import EgressWorkerSection
from parley.egress_worker.errors import StorageError, UnsupportedRequest


class Storage(Protocol):
    def describe(self) -> str: ...

    def direct_path(self, key: str) -> Path | None:
        """Where to record ``key`` in place (local storage: the file is already stored while it is
        written, so a lost worker's part survives), None to record in the work directory and upload."""
        ...

    async def upload(self, local: Path, key: str) -> str:
        """Store ``local`` under ``key``; returns the location. Raises StorageError."""
        ...


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


@dataclass(frozen=True)
class LocalStorage:
    root: Path

    def describe(self) -> str:
        return f"local {self.root}"

    def _target(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if self.root.resolve() not in target.parents:
            raise StorageError(f"file path {key!r} leaves the recordings directory")
        return target

    def direct_path(self, key: str) -> Path | None:
        target = self._target(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc}") from exc
        return target

    async def upload(self, local: Path, key: str) -> str:
        target = self._target(key)
        if _same_file(local, target):
            return str(target)  # recorded in place
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(shutil.move, str(local), str(target))
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc}") from exc
        return str(target)


@dataclass(frozen=True)
class S3Storage:
    access_key: str
    secret: str
    bucket: str
    region: str = "us-east-1"
    endpoint: str = ""
    session_token: str = ""
    force_path_style: bool = False
    content_disposition: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    tagging: str = ""

    def describe(self) -> str:
        return f"s3 {self.endpoint or 'aws'}/{self.bucket}"

    def direct_path(self, key: str) -> Path | None:
        return None

    def location(self, key: str) -> str:
        if self.endpoint:
            return f"{self.endpoint.rstrip('/')}/{self.bucket}/{key}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{key}"

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint or None,
            aws_access_key_id=self.access_key or None,
            aws_secret_access_key=self.secret or None,
            aws_session_token=self.session_token or None,
            region_name=self.region or "us-east-1",
            config=Config(
                s3={"addressing_style": "path" if self.force_path_style or self.endpoint else "auto"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def _put(self, local: Path, key: str) -> None:
        """Upload, then remove the local copy (blocking: runs in a thread)."""
        extra: dict[str, Any] = {}
        if self.content_disposition:
            extra["ContentDisposition"] = self.content_disposition
        if self.metadata:
            extra["Metadata"] = dict(self.metadata)
        if self.tagging:
            extra["Tagging"] = self.tagging
        self._client().upload_file(str(local), self.bucket, key, ExtraArgs=extra or None)
        local.unlink(missing_ok=True)

    async def upload(self, local: Path, key: str) -> str:
        try:
            await asyncio.to_thread(self._put, local, key)
        except Exception as exc:  # botocore raises many kinds; all end the egress with the reason
            raise StorageError(f"upload to {self.describe()} failed: {exc}") from exc
        return self.location(key)


def storage_for(output: lk.DirectFileOutput, section: EgressWorkerSection) -> Storage:
    """The storage of one file output (see the module docstring). Raises UnsupportedRequest."""
    which = output.WhichOneof("output")
    if which in ("gcp", "azure", "aliOSS"):
        raise UnsupportedRequest(f"{which} upload is not yet supported")
    if which == "s3":
        s3 = output.s3
        if not s3.bucket:
            raise UnsupportedRequest("request has missing or invalid field: s3.bucket")
        return S3Storage(
            access_key=s3.access_key,
            secret=s3.secret,
            bucket=s3.bucket,
            region=s3.region or "us-east-1",
            endpoint=s3.endpoint,
            session_token=s3.session_token,
            force_path_style=s3.force_path_style,
            content_disposition=s3.content_disposition,
            metadata=tuple(sorted(s3.metadata.items())),
            tagging=s3.tagging,
        )
    if section.s3 is not None and section.s3.bucket:
        d = section.s3
        return S3Storage(
            access_key=d.access_key,
            secret=d.secret,
            bucket=d.bucket,
            region=d.region,
            endpoint=d.endpoint,
            force_path_style=d.force_path_style,
        )
    return LocalStorage(Path(section.local_dir).absolute())
