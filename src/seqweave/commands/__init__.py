"""Subcommands of the ``seqweave`` command line; each has ``add_arguments`` and ``run``."""
