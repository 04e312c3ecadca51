"""Take the README's screenshot of the playground (``GET /`` of ``seqweave serve``).

Starts a server on a free loopback port in this process, opens the page in headless
Chromium (the system's, through Playwright), types the sentences, runs them with the chosen
decoder and saves a PNG of the page::

    python docs/playground_screenshot.py --model runs/gec-general --output docs/playground.png
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import threading
import time

import httpx
import uvicorn
from playwright.sync_api import sync_playwright

from seqweave.serve import ServeConfig, build

SENTENCES = (  # learner-style errors that the general GEC model corrects
    "A man are riding a bicycle down the street .",
    "This restaurant serve a cheap food in the city centre.",
    "There is many people in the market.",
    "A group of people is standing in front of an building .",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, decoder: str) -> tuple[uvicorn.Server, str]:
    port = free_port()
    app, _ = build(ServeConfig(model, port=port, decoder=decoder))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # polls the server's own readiness, not a fixed wait
        try:
            if httpx.get(url + "/health").status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a seqweave model directory")
    parser.add_argument("--decoder", default="iad")
    parser.add_argument("--output", default="docs/playground.png")
    parser.add_argument("--text", action="append", help="a sentence (repeat; default: three)")
    args = parser.parse_args()
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        print("no Chromium on PATH", file=sys.stderr)
        return 1
    server, url = start_server(args.model, args.decoder)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, headless=True)
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            texts = list(args.text or SENTENCES)
            httpx.post(url + "/v1/generate", json={"inputs": texts}, timeout=120)  # warm up
            page.goto(url + "/")
            page.fill("#text", "\n".join(texts))
            page.select_option("#decoder", args.decoder)
            page.click("#run")
            page.wait_for_selector(f".result:nth-child({len(texts)}) .stats")
            page.screenshot(path=args.output, full_page=True)
            browser.close()
    finally:
        server.should_exit = True
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
