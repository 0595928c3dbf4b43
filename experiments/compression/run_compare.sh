#!/usr/bin/env bash
# The issue-3 runtime check: `hypertok compare` of one 128k HyperTok (concept mode, built by
# run_sweep.py) against every baseline on RusLit dev.txt, with the trained baselines already in
# the cache (run_sweep.py trains them). Writes compare128k/ (results.json records the run's
# "seconds"); prints the table and the wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUSLIT=../shared/corpora/ruslit
DIR=$(python -c 'import json; print(json.load(open("experiments/compression/points/hypertok-concept-128000.json"))["dir"])')
start=$(date +%s.%N)
hypertok compare --tokenizer "$DIR" --text "$RUSLIT/dev.txt" --train "$RUSLIT/train.txt" \
  --out experiments/compression/compare128k
end=$(date +%s.%N)
python -c "print(f'wall-clock: {$end - $start:.1f} s')"
