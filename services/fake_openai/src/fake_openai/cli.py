"""`fake-openai`: run the fake OpenAI-compatible server from the command line."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from fake_openai.app import create_app
from fake_openai.knobs import Timing
from fake_openai.script import ScriptError
from fake_openai.script_file import load_script
from fake_openai.settings import FakeSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fake-openai",
        description="A scriptable fake OpenAI-compatible chat completions server.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--script", help="rules file (.json, .yaml or .yml)")
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="delay before the first token")
    parser.add_argument("--tps", type=float, default=0.0, help="tokens per second; 0 = unpaced")
    parser.add_argument("--chunk-tokens", type=int, default=1, help="tokens per delta")
    parser.add_argument("--chunk-chars", type=int, default=0, help="characters per delta (0 = off)")
    parser.add_argument(
        "--model", action="append", dest="models", help="model id to list (repeatable)"
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true", help="log every request (slower)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, load the script and serve until interrupted."""
    args = _parser().parse_args(argv)
    try:
        script = load_script(args.script) if args.script else None
        timing = Timing(
            ttft_ms=args.ttft_ms,
            tps=args.tps,
            chunk_tokens=args.chunk_tokens,
            chunk_chars=args.chunk_chars,
        )
        settings = FakeSettings(
            timing=timing, models=tuple(args.models) if args.models else ("fake-model",)
        )
    except (ScriptError, ValueError) as exc:
        sys.stderr.write(f"fake-openai: {exc}\n")
        raise SystemExit(2) from None
    uvicorn.run(
        create_app(script, settings=settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
