"""Ray Serve deployment: the same engine and routes in every replica, on one machine or many.

Ray Serve starts replicas as Ray actors wherever the cluster has room, routes
HTTP requests across them and restarts failed ones; each replica is a whole
seqweave server (continuous batching included). Use it from Python or with
``seqweave serve --ray --replicas N`` (set ``RAY_ADDRESS`` to join a cluster).

>>> from ray import serve                                          # doctest: +SKIP
>>> serve.run(application(ServeConfig("runs/gec/best"), replicas=2))  # doctest: +SKIP
"""

from __future__ import annotations

from seqweave.serve import ServeConfig, build
from seqweave.serve.auth import warn_if_exposed


def _replica_app(config: ServeConfig):
    """Evaluated in each replica: its own model, engine and routes (and the config's API
    keys, which travel with it: a replica on another machine needs no environment of its own)."""
    app, _ = build(config, load_now=True)
    return app


def application(config: ServeConfig, replicas: int = 1, cpus_per_replica: float = 1.0):
    """A Ray Serve application of ``replicas`` seqweave servers."""
    from ray import serve

    def replica_app():  # a plain function: Ray calls it to build each replica's app
        return _replica_app(config)

    ingress = serve.ingress(replica_app)()
    deployment = serve.deployment(
        name="seqweave",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica},
    )(ingress)
    return deployment.bind()


def run(config: ServeConfig, replicas: int, cpus_per_replica: float = 1.0) -> None:
    """Start (or join, with RAY_ADDRESS) a Ray cluster and serve until interrupted."""
    import ray
    from ray import serve

    warn_if_exposed(config.host, config.api_keys)
    ray.init(ignore_reinit_error=True)
    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(application(config, replicas, cpus_per_replica), blocking=True)
