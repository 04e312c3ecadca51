"""Load test of ``seqweave serve`` with wrk, IAD against greedy on the same server.

    .venv/bin/python bench/serve_load.py [--seconds 30] [--soak-minutes 5]

Converts ``../shared/models/gec-bart-general`` (import-hf), starts one server on
127.0.0.1, and drives it with wrk (Debian package ``wrk``) at concurrency 1, 8,
32 and 64, each for a fixed time, once with ``"decoder": "greedy"`` and once with
``"decoder": "iad"`` in the request bodies (sources: JFLEG dev). Then a soak at
concurrency 32 samples the server's resident memory. Reports throughput,
p50/p95/p99 latency and every answer that is not a 200 or a documented overload
(429/503): that count must be 0. Writes bench/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MODEL = "../shared/models/gec-bart-general"
DATA = "../shared/data/jfleg/dev.jsonl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bodies(decoder: str, path: Path, max_new_tokens: int) -> Path:
    with path.open("w") as out, open(DATA) as data:
        for line in data:
            source = json.loads(line)["source"]
            body = {"inputs": source, "decoder": decoder, "max_new_tokens": max_new_tokens}
            out.write(json.dumps(body) + "\n")
    return path


def run_wrk(url: str, body_file: Path, connections: int, seconds: int) -> dict:
    command = [
        "wrk",
        "-t",
        str(min(connections, 2)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "60s",
        "-s",
        str(ROOT / "bench" / "serve_load.lua"),
        url,
        "--",
        str(body_file),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(text for text in out.splitlines() if text.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["throughput_rps"] = result["ok"] / result["seconds"]
    return result


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--soak-minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    os.chdir(ROOT)
    work = Path(tempfile.mkdtemp(prefix="seqweave-load-"))
    subprocess.run(
        [sys.executable, "-m", "seqweave", "import-hf", MODEL, str(work / "model")],
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seqweave",
            "serve",
            "--model",
            str(work / "model"),
            "--port",
            str(port),
            "--max-batch",
            "32",
            "--max-queue",
            "512",
            "--max-new-tokens",
            "255",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        files = {d: bodies(d, work / f"{d}.jsonl", args.max_new_tokens) for d in ("greedy", "iad")}
        for decoder in files:  # warm up
            run_wrk(url, files[decoder], 4, 3)
        rows = []
        for connections in [int(c) for c in args.concurrency.split(",")]:
            for decoder, path in files.items():
                result = run_wrk(url, path, connections, args.seconds)
                result.update(decoder=decoder, concurrency=connections)
                rows.append(result)
                print(json.dumps(result), flush=True)
        soak = (
            soak_test(url, files["iad"], server.pid, args.soak_minutes)
            if args.soak_minutes
            else None
        )
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    summary = {
        "model": MODEL,
        "data": DATA,
        "seconds_per_run": args.seconds,
        "max_new_tokens": args.max_new_tokens,
        "runs": rows,
        "soak": soak,
        "server_exit_code": exit_code,
        "machine": f"{os.cpu_count()} cores",
    }
    out = ROOT / "bench" / "results" / "serve_load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(table(rows))
    print(f"wrote {out}")


def soak_test(url: str, body_file: Path, pid: int, minutes: float) -> dict:
    """Concurrency 32 for ``minutes``, in one-minute wrk runs, sampling RSS after each."""
    samples, results = [], []
    for _ in range(max(1, round(minutes))):
        results.append(run_wrk(url, body_file, 32, 60))
        samples.append(rss_mib(pid))
    growth = (samples[-1] - samples[0]) / samples[0] if samples[0] else 0.0
    return {
        "rss_mib_after_each_minute": samples,
        "growth_first_to_last": growth,
        "requests": sum(r["requests"] for r in results),
        "not_ok_or_overload": sum(r["other"] + r["socket_errors"] + r["timeouts"] for r in results),
    }


def table(rows: list[dict]) -> str:
    lines = [
        f"{'decoder':7} {'conc':>4} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'ok':>6} {'429/503':>7} {'other':>5}"
    ]
    for r in rows:
        lines.append(
            f"{r['decoder']:7} {r['concurrency']:>4} {r['throughput_rps']:>7.2f} "
            f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['ok']:>6} "
            f"{r['overload']:>7} {r['other'] + r['socket_errors'] + r['timeouts']:>5}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
