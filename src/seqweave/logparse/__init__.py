"""Log parsing: raw log lines -> event templates, as log-analysis tools expect them.

``formats`` (Loghub log formats, malformed lines reported by line), ``templates``
(slots, matching, parameters, event ids), ``cache`` (the template cache in front of a
model), ``parsers`` (the seq2seq parser and the template-copy baseline; Drain is in
``seqweave.baselines.drain``), ``output`` (Loghub's structured and templates CSVs),
``knowledge`` (concept-instance pairs over parsed logs, naming instances their own
message leaves unnamed). Only the light modules are imported here; ``parsers`` and
``output`` on use.
"""

from seqweave.logparse.cache import TemplateCache
from seqweave.logparse.formats import LogFormat, LogLine, log_format, read_log
from seqweave.logparse.templates import event_id, parameters, slot_spans

__all__ = [
    "LogFormat",
    "LogLine",
    "TemplateCache",
    "event_id",
    "log_format",
    "parameters",
    "read_log",
    "slot_spans",
]
