#!/usr/bin/env bash
# The GPU figures of bench/README.md: HF vs seqweave on JFLEG, and GAD on Multi30k.
# Needs a CUDA build of torch, transformers, and the models that bench/multi30k.py and
# recipes/gad/run.py train (runs/multi30k/best, runs/gad/drafter/best).
set -euo pipefail
seqweave bench --hf-model ../shared/models/gec-bart-general --data ../shared/data/jfleg/dev.jsonl \
    --limit 100 --batch-sizes 1,32 --repeats 3 --max-new-tokens 255 --device cuda \
    --output bench/results/jfleg-general-gpu.json
seqweave bench --model runs/multi30k/best --draft-model runs/gad/drafter/best \
    --data ../shared/data/multi30k-en-de/test2016.jsonl --limit 200 --batch-sizes 1,32 \
    --repeats 3 --device cuda --draft-tokens-per-pass 512 \
    --output bench/results/multi30k-gad-gpu.json
