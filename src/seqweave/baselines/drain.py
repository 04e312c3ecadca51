"""Drain (He et al. 2017) through the ``drain3`` package: the log-parsing baseline.

Drain files a message in a fixed-depth tree by its length and first words and joins the
cluster of the most similar template when the share of equal words reaches ``sim_th``;
the template's words that differ become ``<*>``. As in the Loghub benchmark, a message's
template is its cluster's template after the whole log is read (Drain refines a template
as messages arrive), and messages are masked first: numbers, hex values and IP
addresses (``DEFAULT_MASKS``, ours, in the spirit of drain3's example configuration),
plus the regular expressions the Loghub benchmark gives Drain per system
(``SYSTEM_MASKS``, with its per-system ``sim_th`` and depth in ``SYSTEM_SETTINGS``).
Every mask is written ``<*>``, so templates read as Loghub's. drain3's own persistence
(pickle/jsonpickle snapshots) is never used: the miner lives in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_MASKS = (
    r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.){3}\d{1,3}(:\d+)?((?=[^A-Za-z0-9])|$)",  # IPv4[:port]
    r"((?<=[^A-Za-z0-9])|^)0x[a-fA-F0-9]+((?=[^A-Za-z0-9])|$)",  # hex
    r"((?<=[^A-Za-z0-9])|^)[\-+]?\d+(\.\d+)?((?=[^A-Za-z0-9])|$)",  # a number on its own
)

# The Loghub benchmark's per-system preprocessing regexes for Drain (Zhu et al. 2019).
SYSTEM_MASKS: dict[str, tuple[str, ...]] = {
    "HDFS": (r"blk_-?\d+", r"(\d+\.){3}\d+(:\d+)?"),
    "Hadoop": (r"(\d+\.){3}\d+",),
    "Spark": (r"(\d+\.){3}\d+", r"\b[KGTM]?B\b", r"([\w-]+\.){2,}[\w-]+"),
    "Zookeeper": (r"(/|)(\d+\.){3}\d+(:\d+)?",),
    "BGL": (r"core\.\d+",),
    "HPC": (r"=\d+",),
    "Thunderbird": (r"(\d+\.){3}\d+",),
    "Windows": (r"0x.*?\s",),
    "Linux": (r"(\d+\.){3}\d+", r"\d{2}:\d{2}:\d{2}"),
    "Android": (
        r"(/[\w-]+)+",
        r"([\w-]+\.){2,}[\w-]+",
        r"\b(\-?\+?\d+)\b|\b0[Xx][a-fA-F\d]+\b|\b[a-fA-F\d]{4,}\b",
    ),
    "HealthApp": (),
    "Apache": (r"(\d+\.){3}\d+",),
    "Proxifier": (r"<\d+\ssec", r"([\w-]+\.)+[\w-]+(:\d+)?", r"\d{2}:\d{2}(:\d{2})*", r"[KGTM]B"),
    "OpenSSH": (r"(\d+\.){3}\d+", r"([\w-]+\.){2,}[\w-]+"),
    "OpenStack": (r"((\d+\.){3}\d+,?)+", r"/.+?\s", r"\d+"),
    "Mac": (r"([\w-]+\.){2,}[\w-]+",),
}

# (sim_th, depth) the Loghub benchmark sets per system; others get drain3's (0.4, 4).
SYSTEM_SETTINGS: dict[str, tuple[float, int]] = {
    "HDFS": (0.5, 4), "Hadoop": (0.5, 4), "Spark": (0.5, 4), "Zookeeper": (0.5, 4),
    "BGL": (0.5, 4), "HPC": (0.5, 4), "Thunderbird": (0.5, 4), "Windows": (0.7, 5),
    "Linux": (0.39, 6), "Android": (0.2, 6), "HealthApp": (0.2, 4), "Apache": (0.5, 4),
    "Proxifier": (0.6, 3), "OpenSSH": (0.6, 5), "OpenStack": (0.5, 5), "Mac": (0.7, 6),
}  # fmt: skip


class DrainParser:
    """Drain over a whole log: ``parse(messages)`` -> one template per message.

    ``system`` picks the benchmark's masks and settings for a Loghub system (unknown or
    None: the default masks and drain3's settings); ``masks`` adds regexes of one's own.
    """

    def __init__(
        self,
        system: str | None = None,
        masks: Sequence[str] = (),
        sim_th: float | None = None,
        depth: int | None = None,
    ) -> None:
        self.system = system
        self.masks = (*SYSTEM_MASKS.get(system or "", ()), *DEFAULT_MASKS, *masks)
        default_sim, default_depth = SYSTEM_SETTINGS.get(system or "", (0.4, 4))
        self.sim_th = default_sim if sim_th is None else sim_th
        self.depth = default_depth if depth is None else depth

    def _miner(self):
        from drain3 import TemplateMiner
        from drain3.masking import MaskingInstruction
        from drain3.template_miner_config import TemplateMinerConfig

        config = TemplateMinerConfig()
        config.drain_sim_th, config.drain_depth = self.sim_th, self.depth
        config.masking_instructions = [MaskingInstruction(m, "*") for m in self.masks]
        config.mask_prefix, config.mask_suffix = "<", ">"
        return TemplateMiner(persistence_handler=None, config=config)

    def parse(self, messages: Sequence[str]) -> list[str]:
        miner = self._miner()
        clusters = [miner.add_log_message(message)["cluster_id"] for message in messages]
        templates = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
        return [templates[cluster] for cluster in clusters]
