"""Throughput and latency of `llmlab serve` with dynamic batching on and off.

Starts the server as a subprocess on a free loopback port, once with batching
and once with `--no-batching`, and drives it with 1, 4, 16 and 32 concurrent
clients through the openai SDK. Each client sends its requests one after the
other (a closed loop) with greedy decoding and a fixed `max_tokens`. Prints,
per configuration, completion tokens per second over the wall time and the p50
and p95 request latency, then the batching speed-up at 16 clients.

    python benchmarks/bench_serve.py                 # random tiny Llama model
    python benchmarks/bench_serve.py --model chat    # the bundled chat model

The default model is random (its text is gibberish) but has the shape of a
small decoder; see `--d-model` and `--n-layers`. The client and the server
share the machine's cores, so figures are for the whole system.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 120


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default=None,
        help="Role or folder to serve (default: a random tiny model made here).",
    )
    parser.add_argument("--clients", default="1,4,16,32", help="Concurrency levels.")
    parser.add_argument(
        "--requests",
        type=int,
        default=64,
        help="Requests per concurrency level, split evenly over the clients.",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=32, help="max_tokens of every request."
    )
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument(
        "--num-threads",
        type=int,
        default=1,
        help="torch threads of the server (default 1, leaving a core to the clients).",
    )
    parser.add_argument("--d-model", type=int, default=256, help="Tiny model width.")
    parser.add_argument("--n-layers", type=int, default=4, help="Tiny model depth.")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.setdefault("LLMLAB_PROFILE", "offline")
    env.pop("LLMLAB_API_KEY", None)
    command = [
        sys.executable,
        "-m",
        "llmlab.serve",
        "--model",
        f"bench={model}",
        "--port",
        str(port),
        "--max-queue",
        "1024",
        *extra,
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited: {process.stderr.read().decode()[-2000:]}"
            )
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server not ready after {STARTUP_TIMEOUT_S} s")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def prompt(index: int) -> str:
    """Prompts of 2 to 40 words, so batches mix lengths and need padding."""
    return f"Request {index}: " + "tell me about batching " * (index % 10)


async def run_level(base_url: str, clients: int, total: int, max_tokens: int) -> dict:
    """Run `total` requests over `clients` closed-loop clients; return the figures."""
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key="unused", max_retries=0, timeout=600
    )
    latencies, tokens = [], []

    async def one_client(client_index: int) -> None:
        for i in range(total // clients):
            started = time.perf_counter()
            completion = await client.completions.create(
                model="bench",
                prompt=prompt(client_index * 1000 + i),
                max_tokens=max_tokens,
                temperature=0,
            )
            latencies.append(time.perf_counter() - started)
            tokens.append(completion.usage.completion_tokens)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one_client(c) for c in range(clients)))
    finally:
        await client.close()
    wall = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=20)
    return {
        "requests": len(latencies),
        "tokens_per_s": sum(tokens) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": quantiles[18] * 1000,
    }


def bench_mode(model: str, args, batching: bool, levels: list[int]) -> dict[int, dict]:
    port = free_port()
    extra = [
        "--max-batch-size",
        str(args.max_batch_size),
        "--batch-wait-ms",
        str(args.batch_wait_ms),
        "--max-tokens-cap",
        str(max(args.max_tokens, 16)),
        "--num-threads",
        str(args.num_threads),
    ]
    if not batching:
        extra.append("--no-batching")
    process = start_server(model, port, extra)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        asyncio.run(run_level(base_url, 2, 4, args.max_tokens))  # warm-up
        results = {}
        for clients in levels:
            total = max(args.requests // clients, 1) * clients
            results[clients] = asyncio.run(
                run_level(base_url, clients, total, args.max_tokens)
            )
            figures = results[clients]
            print(
                f"{'on' if batching else 'off':>8} {clients:>7} "
                f"{figures['requests']:>8} "
                f"{figures['tokens_per_s']:>9.0f} {figures['p50_ms']:>8.0f} "
                f"{figures['p95_ms']:>8.0f}",
                flush=True,
            )
    finally:
        stop_server(process)
    return results


def main() -> None:
    args = parse_args()
    levels = [int(level) for level in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            from llmlab.serve.tiny_model import save_random_chat_model

            model = str(
                save_random_chat_model(
                    Path(folder) / "tiny",
                    d_model=args.d_model,
                    n_layers=args.n_layers,
                    n_heads=args.d_model // 64,
                    seq_len=512,
                )
            )
            print(
                f"model: random Llama, d_model {args.d_model}, {args.n_layers} layers"
            )
        else:
            print(f"model: {model}")
        print(
            f"max_tokens {args.max_tokens}, greedy, {os.cpu_count()} CPU cores, "
            f"server torch threads {args.num_threads}, load average "
            f"{os.getloadavg()[0]:.1f} at start"
        )
        print(
            f"{'batching':>8} {'clients':>7} {'requests':>8} {'tokens/s':>9} "
            f"{'p50 ms':>8} {'p95 ms':>8}"
        )
        on = bench_mode(model, args, True, levels)
        off = bench_mode(model, args, False, levels)
    if 16 in on and 16 in off:
        speedup = on[16]["tokens_per_s"] / off[16]["tokens_per_s"]
        print(f"speed-up of batching at 16 clients: {speedup:.1f}x")


if __name__ == "__main__":
    main()
