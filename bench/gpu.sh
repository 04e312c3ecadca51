#!/usr/bin/env bash
# The GPU figures of bench/README.md: HF vs seqweave on JFLEG, GAD on Multi30k, and the
# Marian-size GEC model. Needs a CUDA build of torch, transformers, ctranslate2, and the
# models that bench/multi30k.py and recipes/gad/run.py train (runs/multi30k/best,
# runs/gad/drafter/best).
set -euo pipefail
seqweave bench --hf-model ../shared/models/gec-bart-general --data ../shared/data/jfleg/dev.jsonl \
    --limit 100 --batch-sizes 1,32 --repeats 3 --max-new-tokens 255 --device cuda \
    --output bench/results/jfleg-general-gpu.json
seqweave bench --model runs/multi30k/best --draft-model runs/gad/drafter/best \
    --data ../shared/data/multi30k-en-de/test2016.jsonl --limit 200 --batch-sizes 1,32 \
    --repeats 3 --device cuda --draft-tokens-per-pass 512 \
    --output bench/results/multi30k-gad-gpu.json
# A Marian-size model (bench/README.md): grown from gec-bart-anchor and fine-tuned here on
# the GPU for 3 minutes (the CPU model had 25; not the same weights), then benched with the
# anchor beside it on the same held-out sources.
python bench/grow_marian.py --device cuda --minutes 3 --lr 5e-5 --out runs/marian_size_gpu \
    --results bench/results/marian_size-gpu.json
seqweave bench --hf-model runs/marian_size_gpu/hf --data runs/marian_size_gpu/data/held_out.jsonl \
    --limit 100 --batch-sizes 1,32 --repeats 3 --device cuda \
    --output bench/results/marian-size-gpu.json
seqweave bench --hf-model ../shared/models/gec-bart-anchor \
    --data runs/marian_size_gpu/data/held_out.jsonl --limit 100 --batch-sizes 1,32 --repeats 3 \
    --device cuda --output bench/results/gec-anchor-heldout-gpu.json
