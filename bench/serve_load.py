"""Load test of ``seqweave serve`` with wrk, IAD against greedy on the same server.

    .venv/bin/python bench/serve_load.py [--seconds 30] [--soak-minutes 5]
        [--before REV --rounds 3] [--beam-clients 2]

Converts ``../shared/models/gec-bart-general`` (import-hf), starts one server on
127.0.0.1, and drives it with wrk (Debian package ``wrk``) at concurrency 1, 8,
32 and 64, each for a fixed time, once with ``"decoder": "greedy"`` and once with
``"decoder": "iad"`` in the request bodies (sources: JFLEG dev). Then a soak at
concurrency 32 samples the server's resident memory. Reports throughput,
p50/p95/p99 latency and every answer that is not a 200 or a documented overload
(429/503): that count must be 0. Writes bench/results/serve_load.json.

``--before REV`` starts a second server from git revision REV's ``src`` (extracted with
``git archive``) beside this tree's, and every run is made on both, interleaved, for
``--rounds`` rounds; the table gives the medians. ``--beam-clients N`` then measures
greedy requests (wrk at ``--probe-concurrency``) alone and while N clients keep beam
requests (``beam_size`` 4) in flight, on each server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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


def import_model(src: Path, target: Path) -> Path:
    """``MODEL`` converted by the ``import-hf`` of the tree at ``src``: an older tree may not
    read the config keys a newer one writes, so every version gets its own copy."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "seqweave", "import-hf", MODEL, str(target)]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return target


def start_server(model: Path, src: Path, port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "seqweave", "serve", "--model", str(model), "--port"]
    command += [str(port), "--max-batch", "32", "--max-queue", "512", "--max-new-tokens", "255"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    with log.open("w") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)


def wait_ready(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    tail = "\n".join(log.read_text().splitlines()[-10:])
    sys.exit(f"no server at {url}; the end of its log ({log}):\n{tail}")


def source_tree(revision: str, work: Path) -> Path:
    """This repository's ``src`` at ``revision``, extracted into ``work``."""
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    return work / "src"


def beam_load(url: str, clients: int, stop: threading.Event) -> list[threading.Thread]:
    """``clients`` threads, each sending beam requests one after another until ``stop``."""
    with open(DATA) as data:
        sources = [json.loads(line)["source"] for line in data]

    def client(offset: int) -> None:
        with httpx.Client(timeout=300) as http:
            n = offset
            while not stop.is_set():
                body = {"inputs": sources[n % len(sources)], "decoder": "beam", "beam_size": 4}
                http.post(url + "/v1/generate", json={**body, "max_new_tokens": 128})
                n += clients

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def beam_probe(urls: dict[str, str], greedy: Path, args) -> list[dict]:
    """Greedy latency alone and while beam requests are in flight, per server, interleaved."""
    rows = []
    for round_ in range(args.rounds):
        for version, url in urls.items():
            for clients in (0, args.beam_clients):
                stop = threading.Event()
                threads = beam_load(url, clients, stop)
                time.sleep(1.0 if clients else 0.0)  # let the beam requests start
                result = run_wrk(url, greedy, args.probe_concurrency, args.seconds)
                stop.set()
                for thread in threads:
                    thread.join()
                result.update(version=version, beam_clients=clients, round=round_)
                rows.append(result)
                print(json.dumps(result), flush=True)
    return rows


def medians(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """One row per combination of ``keys``: the median of each measure over the rounds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, group in groups.items():
        row = dict(zip(keys, key, strict=True), rounds=len(group))
        row["throughput_rps"] = statistics.median(r["throughput_rps"] for r in group)
        answered = [r for r in group if r["ok"]]  # a run with no answer has no latency
        for measure in ("p50_ms", "p95_ms", "p99_ms"):
            row[measure] = statistics.median(r[measure] for r in answered) if answered else None
        for count in ("ok", "overload", "other", "socket_errors", "timeouts"):
            row[count] = sum(r[count] for r in group)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--soak-minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--before", help="a git revision to compare with, run side by side")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--beam-clients", type=int, default=0)
    parser.add_argument("--probe-concurrency", type=int, default=1)
    parser.add_argument("--out", default="bench/results/serve_load.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    os.chdir(ROOT)
    work = Path(tempfile.mkdtemp(prefix="seqweave-load-"))
    trees = {"after" if args.before else "this": ROOT / "src"}
    if args.before:
        trees = {"before": source_tree(args.before, work), **trees}
    models = {v: import_model(src, work / f"model-{v}") for v, src in trees.items()}
    ports = {version: free_port() for version in trees}
    logs = {version: work / f"server-{version}.log" for version in trees}
    servers = {v: start_server(models[v], src, ports[v], logs[v]) for v, src in trees.items()}
    urls = {version: f"http://127.0.0.1:{port}" for version, port in ports.items()}
    exit_codes, soak, probe = {}, None, []
    try:
        for version, url in urls.items():
            wait_ready(url, servers[version], logs[version])
        files = {d: bodies(d, work / f"{d}.jsonl", args.max_new_tokens) for d in ("greedy", "iad")}
        for url in urls.values():  # warm up
            for decoder in files:
                run_wrk(url, files[decoder], 4, 3)
        rows = []
        for round_ in range(args.rounds):
            for connections in [int(c) for c in args.concurrency.split(",")]:
                for decoder, path in files.items():
                    for version, url in urls.items():
                        result = run_wrk(url, path, connections, args.seconds)
                        result.update(
                            decoder=decoder, concurrency=connections, version=version, round=round_
                        )
                        rows.append(result)
                        print(json.dumps(result), flush=True)
        if args.beam_clients:
            probe = beam_probe(urls, files["greedy"], args)
        last = list(servers)[-1]
        if args.soak_minutes:
            soak = soak_test(urls[last], files["iad"], servers[last].pid, args.soak_minutes)
        for version, server in servers.items():
            server.send_signal(signal.SIGTERM)
            exit_codes[version] = server.wait(timeout=120)
    finally:
        for server in servers.values():
            if server.poll() is None:
                server.kill()
    summary = {
        "model": MODEL,
        "data": DATA,
        "seconds_per_run": args.seconds,
        "max_new_tokens": args.max_new_tokens,
        "before": args.before,
        "rounds": args.rounds,
        "runs": rows,
        "medians": medians(rows, ("version", "decoder", "concurrency")),
        "beam_probe": probe,
        "beam_probe_medians": medians(probe, ("version", "beam_clients")) if probe else [],
        "soak": soak,
        "server_exit_codes": exit_codes,
        "machine": f"{os.cpu_count()} cores",
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(table(summary["medians"]))
    for row in summary["beam_probe_medians"]:
        print(json.dumps(row))
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
        f"{'version':7} {'decoder':7} {'conc':>4} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'ok':>6} {'429/503':>7} {'other':>5}"
    ]
    for r in rows:
        p50, p95, p99 = (r[k] or 0.0 for k in ("p50_ms", "p95_ms", "p99_ms"))
        lines.append(
            f"{r['version']:7} {r['decoder']:7} {r['concurrency']:>4} {r['throughput_rps']:>7.2f} "
            f"{p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {r['ok']:>6} "
            f"{r['overload']:>7} {r['other'] + r['socket_errors'] + r['timeouts']:>5}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
