#!/usr/bin/env bash
# Issue 4: GPU memory and speed of Mistral-7B (v0.3 shape, random bf16 weights) with Mistral v3
# and with HyperTok 32k / 128k, extending and replacing the vocabulary, on 8K-256K characters of
# ruslit dev.txt, plus the prefix that is 60 000 Mistral tokens (the original claim's context).
#
# Usage (on a CUDA machine, from the repository root):
#   bash experiments/vram/run.sh                    # writes experiments/vram/results/
# Inputs (override with environment variables):
#   TEXT   the ruslit dev.txt               (default ../shared/corpora/ruslit/dev.txt)
#   TOK32  HyperTok 32k concept directory   (built here from train.txt if missing)
#   TOK128 HyperTok 128k concept directory  (built here from train.txt if missing)
#   OUT    output folder                    (default experiments/vram/results)
#   LOSSES train-mode losses                (default full,chunked; add liger where liger-kernel is installed)
# Without CUDA it still runs and writes the analytic figures (measured fields absent).
set -euo pipefail
SHARED=${SHARED:-../shared/corpora/ruslit}
TEXT=${TEXT:-$SHARED/dev.txt}
TOK32=${TOK32:-.data/tok32k}
TOK128=${TOK128:-.data/tok128k}
OUT=${OUT:-experiments/vram/results}
MODE=${MODE:-both}       # inference | train | both
LOSSES=${LOSSES:-full,chunked}
BUDGET=${BUDGET:-420}   # seconds of GPU measurement before later points are skipped (recorded as such)
for spec in "$TOK32:32000" "$TOK128:128000"; do
  dir=${spec%:*}; size=${spec##*:}
  if [ ! -f "$dir/config.json" ]; then
    python -m hypertok.cli build --corpus "$SHARED/train.txt" --vocab-size "$size" --mode concept --out "$dir"
  fi
done
python -m hypertok.cli vram --model mistral-7b \
  --tokenizer mistral-v3 "$TOK32:extend" "$TOK32:replace" "$TOK128:extend" "$TOK128:replace" \
  --text "$TEXT" --chars 8k,32k,64k,128k,256k --at-tokens 60000 \
  --mode "$MODE" --train-chars 8k,32k,64k --losses "$LOSSES" --decode-tokens 128 --repeats 3 \
  --time-budget "$BUDGET" --quiet --out "$OUT"
