#!/usr/bin/env bash
# The full-size runs of four recipes at once on one GPU (the figures their READMEs give
# for one NVIDIA H200): OTSeq2Set, CLAPS, code-switching restore and E2S2, each with 3
# seeds. Each recipe gets a share of the CPU cores as worker processes and a time limit,
# and writes its results JSON and its log to RESULTS (default runs/gpu).
#
#     bash recipes/gpu.sh [RESULTS]
#
# Needs a CUDA build of torch, scipy and sacrebleu, and ../shared/data beside the
# repository, as every recipe does. Run from the repository root.
set -uo pipefail
results=${1:-runs/gpu}
limit=${RECIPE_SECONDS:-480}
mkdir -p "$results"
export PYTHONPATH=src PYTHONUNBUFFERED=1
recipe() {  # name, then the recipe's arguments
    local name=$1
    shift
    timeout "$limit" python "recipes/$name/run.py" --device cuda "$@" \
        --out "$results/$name.json" >"$results/$name.log" 2>&1
    echo "$name: exit $?"
}
recipe otseq2set --jobs 5 --seeds 1,2,3 &
recipe claps --jobs 4 --seeds 1,2,3 &
recipe code_switch --jobs 4 --seeds 3 &
recipe e2s2 --jobs 3 --seeds 1,2,3 &
wait
