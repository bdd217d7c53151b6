"""Start and stop livekit-agents workers (tests/agents/*.py) under .venv-agents for the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def agents_python() -> str:
    return os.environ.get("PARLEY_AGENTS_PYTHON") or str(ROOT / ".venv-agents" / "bin" / "python")


@dataclass
class AgentWorker:
    """``python <script> start`` as its own process group (job processes die with it)."""

    script: str
    url: str
    api_key: str
    api_secret: str
    log_dir: Path
    name: str
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def job_log(self) -> Path:
        return self.log_dir / f"{self.name}.jobs.jsonl"

    @property
    def output(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> AgentWorker:
        from parley.devprocs.processes import free_port

        env = dict(os.environ)
        env.update(
            {
                "LIVEKIT_URL": self.url,
                "LIVEKIT_API_KEY": self.api_key,
                "LIVEKIT_API_SECRET": self.api_secret,
                "PROBE_PORT": str(free_port()),
                "ECHO_PORT": str(free_port()),
                "PROBE_JOB_LOG": str(self.job_log),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        out = self.output.open("ab")
        self.proc = subprocess.Popen(
            [agents_python(), str(HERE / self.script), "start"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its job processes, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.kill()

    def registered(self) -> bool:
        return self.output.exists() and "registered worker" in self.output.read_text(errors="replace")

    def events(self, kind: str = "job") -> list[dict[str, Any]]:
        if not self.job_log.exists():
            return []
        lines = [json.loads(line) for line in self.job_log.read_text().splitlines() if line.strip()]
        return [line for line in lines if line["event"] == kind]

    def tail(self, chars: int = 4000) -> str:
        return self.output.read_text(errors="replace")[-chars:] if self.output.exists() else "(no output)"
