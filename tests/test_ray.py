"""The Ray Serve deployment, on a local Ray instance: replicas answer like the plain server."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from seqweave.serve import ServeConfig
from tests.conftest import edit_task_pair
from tests.test_serve import free_port

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")


@pytest.mark.slow
def test_ray_serve_replicas_answer_like_offline_decoding(trained_dirs):
    from seqweave.serve.ray_deployment import application

    model_dir = str(trained_dirs["transformer"])
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(application(ServeConfig(model_dir), replicas=2, cpus_per_replica=0.5))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        rng = random.Random(3)
        texts = [edit_task_pair(rng)["source"] for _ in range(6)]
        import seqweave

        expected = seqweave.load(model_dir).generate(texts, max_new_tokens=40)
        for _ in range(4):  # several requests, spread over the replicas
            body = {"inputs": texts, "decoder": "iad", "max_new_tokens": 40}
            response = httpx.post(url + "/v1/generate", json=body, timeout=60)
            assert response.status_code == 200, response.text
            assert response.json()["outputs"] == expected
        bad = httpx.post(url + "/v1/generate", json={"inputs": ""}, timeout=60)
        assert bad.status_code == 422 and "error" in bad.json()
    finally:
        serve.shutdown()
        ray.shutdown()
