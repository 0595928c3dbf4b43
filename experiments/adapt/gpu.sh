#!/usr/bin/env bash
# One GPU call for the issue-5 experiment (device tool, carry .data/adapt). Extra args go to run.py.
#   bash experiments/adapt/gpu.sh --preset small
set -o pipefail
D=.data/adapt
python3 -c "import peft" 2>/dev/null || { python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $D/whl/*.whl && export PYTHONPATH=/tmp/site; }
mkdir -p /tmp/data
for f in train dev; do xz -dc $D/$f.txt.xz > /tmp/data/$f.txt || { echo "cannot decompress $D/$f.txt.xz"; exit 1; }; done
ls -la /tmp/data
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch,transformers,peft;print(torch.__version__,transformers.__version__,peft.__version__)"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
python3 experiments/adapt/run.py --sp $D/mistral_v3.model --train /tmp/data/train.txt --dev /tmp/data/dev.txt \
  --hypertok $D/tok32k --bpe $D/bpe32k --work /tmp/work --results "${OUT:-/tmp/out}" --no-progress "$@"
