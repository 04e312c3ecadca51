"""Readers for the files each field's users already have, turned into the usual examples.

``event_log``: CSV event logs (process mining) -> traces -> prefix/suffix JSON Lines;
``xes``: XES event logs -> the same traces, through pm4py (the ``[events]`` extra);
``fasta``: FASTA and FASTQ records (name, description, sequence, quality) and their writers.
"""
