#!/usr/bin/env bash
# The issue-10 experiment on one GPU machine (device tool, carrying .data/adapt and .whl; see README.md).
#
#   bash experiments/adapt/gpu.sh probe        # 7B-shape stages (bench7b.py) + a short proxy run, in the foreground
#   bash experiments/adapt/gpu.sh start        # the whole experiment in the background (setsid), returns at once
#   bash experiments/adapt/gpu.sh start100     # the 100M-token curves (preset proxy100) + bench_loss.py + ship7b.py
#   bash experiments/adapt/gpu.sh start150     # 150M pretraining, Liger's loss, 80M-token curves (preset proxy150),
#                                              # extend and BPE-extend at 4M
#   bash experiments/adapt/gpu.sh start150b    # start150's long lanes again with seed 1 (another base) and the paired
#                                              # generation timing, then the 7B settings sweep ($SWEEP) once they are done
#   bash experiments/adapt/gpu.sh final7b      # bench7b.py's three stages with the sweep's fastest setting
#   bash experiments/adapt/gpu.sh clifast      # `hypertok adapt --no-grad-ckpt --micro-batch 4 --compile` on a small base
#   bash experiments/adapt/gpu.sh vram         # hypertok vram --mode train per loss, beside them
#   bash experiments/adapt/gpu.sh wait SECONDS [STEP] # waits (at most SECONDS) for it (or for STEP.done, e.g. sweep),
#                                              # prints progress, copies results to $OUT
#
# A call of the device tool lasts 10 minutes at most, and a machine is held 30: `start` then
# `wait 560` back to back keeps one machine busy with one experiment.
set -u
D=.data/adapt
W=/tmp/adapt10
# the 7B-shape settings (bench7b.py --sweep): checkpointing or not, micro-batch rows, loss, torch.compile
SWEEP="ckpt/mb8/chunked ckpt/mb8/liger nockpt/mb4/liger nockpt/mb2/liger nockpt/mb8/liger nockpt/mb2/liger/compile"
L=$W/logs
OUT=${OUT:-/tmp/out}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true

setup() {
  # the tokenizer folders travel packed (the device tool carries 64 MiB): tar -cJf toks.tar.xz tok32k tok64k tok128k bpe32k
  [ -d $D/tok32k ] || [ ! -f $D/toks.tar.xz ] || tar -xJf $D/toks.tar.xz -C $D || exit 1
  [ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  mkdir -p $W/text /tmp/mistral  # hypertok vram's mistral-v3 without mistral-common: the same file, its name
  cp $D/mistral_v3.model /tmp/mistral/mistral_instruct_tokenizer_240323.model.v3
  for f in $D/text/*.xz; do
    t=$W/text/$(basename "$f" .xz)
    [ -f "$t" ] || xz -dc -T0 "$f" > "$t" || { echo "cannot decompress $f"; exit 1; }
  done
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch,transformers,peft;print(torch.__version__,transformers.__version__,peft.__version__)"
}

args() {  # the run.py arguments of every lane
  echo --sp $D/mistral_v3.model --train $W/text/ruslit-train.txt $W/text/modern-train-000{1,2,3,4,5}.txt \
    --dev ruslit=$W/text/ruslit-dev.txt modern=$W/text/modern-dev.txt --hypertok $D/tok32k --bpe $D/bpe32k \
    --work $W/work-$1 --results $W/results-$1 --preset $1 ${LOSS:+--loss $LOSS} ${SEED:+--seed $SEED} ${RUNARGS:-}
}

launch() {  # launch PRESET ONLY "LANE ..." [AFTER]: pretraining, data preparation (of the --only variants, or
  # all) and the lanes in the background (setsid: they outlive the device call), then the speed lane once
  # every lane is done, then the shell command AFTER; progress goes to $L/*.log, each step ends in $L/STEP.done
  local preset=$1 only=$2 lanes=$3 after=${4:-} done_all=""
  mkdir -p $L
  setsid nohup python3 experiments/adapt/run.py $(args $preset) --lane pretrain > $L/pretrain.log 2>&1 < /dev/null &
  setsid nohup python3 experiments/adapt/run.py $(args $preset) --lane prep ${only:+--only $only} > $L/prep.log 2>&1 \
    < /dev/null &
  for lane in $lanes; do
    setsid nohup bash -c "python3 experiments/adapt/run.py $(args $preset) --lane $lane > $L/$lane.log 2>&1; touch $L/$lane.done" \
      < /dev/null > /dev/null 2>&1 &
    done_all="$done_all [ -f $L/$lane.done ] &&"
  done
  setsid nohup bash -c "until $done_all true; do sleep 5; done;
    python3 experiments/adapt/run.py $(args $preset) --lane speed > $L/speed.log 2>&1; touch $L/all.done; $after" \
    < /dev/null > /dev/null 2>&1 &
}

case "${1:-}" in
  probe)
    setup
    python3 experiments/adapt/bench7b.py --sp $D/mistral_v3.model --tokenizer $D/tok32k \
      --text $W/text/modern-dev.txt --strategy extend --out $OUT/results7b.json 2>&1 | grep -v Loading
    A="--sp $D/mistral_v3.model --train $W/text/modern-train-0001.txt --dev ruslit=$W/text/ruslit-dev.txt \
       modern=$W/text/modern-dev.txt --hypertok $D/tok32k --bpe $D/bpe32k --work $W/work-probe \
       --results $OUT/probe --preset probe"
    python3 experiments/adapt/run.py $A --lane prep &
    python3 experiments/adapt/run.py $A --lane pretrain && wait &&
      python3 experiments/adapt/run.py $A --lane a --only ht-replace-mean,ht-replace-mean-distill,ht-extend-all,control &&
      python3 experiments/adapt/run.py $A --lane speed 2>&1 | grep -v "Loading\|Writing"
    ;;
  start)
    setup
    launch proxy "" "a b c"
    sleep 20; tail -3 $L/*.log
    ;;
  start100)  # issue 10's second lease: the 100M-token curves (preset proxy100), with issue 11's 7B folder check
    setup
    launch proxy100 ht-replace-mean-long,control-long "long-ht long-control"
    setsid nohup bash -c "python3 experiments/adapt/bench_loss.py --out $W/loss.json > $L/loss.log 2>&1;
      python3 experiments/adapt/ship7b.py --sp $D/mistral_v3.model --tokenizer $D/tok64k --text $W/text/modern-dev.txt \
        --work /tmp/ship7b --out $W/ship7b.json > $L/ship7b.log 2>&1; rm -rf /tmp/ship7b" < /dev/null > /dev/null 2>&1 &
    sleep 20; tail -3 $L/*.log
    ;;
  start150)  # issue 10's third lease: 150M pretraining tokens, Liger's loss, 80M-token curves, extend at 4M, vram
    setup
    launch proxy150 ht-replace-mean-long,control-long,control,ht-extend-mean,bpe-extend-mean "long-ht long-control short"
    sleep 45; tail -n 3 $L/*.log
    ;;
  start150b)  # issue 10's fourth lease: a second base (seed 1) through the 80M-token lanes, the generation speed
    # of base, control and HyperTok timed in interleaved rounds; then the 7B-shape settings sweep (sweep7b's)
    setup
    export SEED=1 RUNARGS="--gen-repeats 5"
    launch proxy150 ht-replace-mean-long,control-long "long-ht long-control" \
      "python3 experiments/adapt/bench7b.py --sp $D/mistral_v3.model --tokenizer $D/tok32k --text $W/text/modern-dev.txt \
         --strategy extend --sweep $SWEEP --out $W/sweep7b.json > $L/sweep7b.log 2>&1; touch $L/sweep.done"
    sleep 45; tail -n 3 $L/*.log
    ;;
  sweep7b)  # the 7B-shape settings sweep ($SWEEP) alone, in the foreground
    setup
    python3 experiments/adapt/bench7b.py --sp $D/mistral_v3.model --tokenizer $D/tok32k --text $W/text/modern-dev.txt \
      --strategy extend --sweep $SWEEP --out $OUT/sweep7b.json 2>&1 | grep -v "Loading\|warn"
    ;;
  final7b)  # every stage of the recipe at the 7B shape with the sweep's fastest setting (no checkpointing,
    # micro-batches of 2 rows, Liger's loss where it runs, torch.compile)
    setup
    python3 experiments/adapt/bench7b.py --sp $D/mistral_v3.model --tokenizer $D/tok32k --text $W/text/modern-dev.txt \
      --strategy extend --loss liger --no-grad-ckpt --micro-batch 2 --compile --out $OUT/results7b-final.json 2>&1 \
      | grep -v "Loading\|warn"
    ;;
  clifast)  # the `hypertok adapt` command itself on the GPU with the 7B sweep's fast flags (a small random
    # base from hypertok.adapt.tiny: a check that the command runs so, not a speed or quality figure), then `hypertok eval` of it
    setup
    python3 -m hypertok.adapt.tiny --out /tmp/tinybase --tokenizer-model $D/mistral_v3.model --hidden-size 512 --layers 4
    python3 -c "import sys; open(sys.argv[2], 'w').write(open(sys.argv[1]).read(10_000_000))" \
      $W/text/modern-train-0001.txt $W/clifast.txt
    python3 -m hypertok.cli adapt --base /tmp/tinybase --tokenizer $D/tok32k --strategy replace --train $W/clifast.txt \
      --eval $W/text/ruslit-dev.txt --eval-chars 200000 --out /tmp/clifast --steps 200 --batch-size 16 --seq-len 1024 \
      --micro-batch 4 --no-grad-ckpt --compile --eval-every 100 2>&1 | grep -v "Loading\|Writing\|warn" | tr '\r' '\n' | tail -4
    head -1 /tmp/clifast/train_log.jsonl; tail -1 /tmp/clifast/train_log.jsonl
    python3 -m hypertok.cli eval --base /tmp/tinybase --adapter /tmp/clifast --text $W/text/ruslit-dev.txt \
      --max-chars 200000 --gen-tokens 32 --repeats 1 2>&1 | grep -v "Loading\|Writing\|warn" | tail -6
    cp /tmp/clifast/train_log.jsonl $OUT/clifast-train_log.jsonl
    ;;
  vram)  # started beside start150's runs (a later call, once they train):
    # train-step memory of the 7B shape at 32k (Mistral v3) and 128k (HyperTok replace), per loss; it shares the
    # GPU with the pretraining, so only its memory figures are clean (the note says so)
    setsid nohup bash -c "HYPERTOK_MISTRAL_DATA=/tmp/mistral python3 -m hypertok.cli vram --model mistral-7b --tokenizer mistral-v3 $D/tok128k:replace \
      --text $W/text/modern-dev.txt --mode train --chars 16k --train-chars 16k,64k --at-tokens 8k \
      --losses full,chunked,liger --repeats 2 --quiet --out $W/vram-train > $L/vram.log 2>&1" < /dev/null > /dev/null 2>&1 &
    sleep 5; tail -3 $L/vram.log
    ;;
  wait)
    end=$((SECONDS + ${2:-540}))  # a third word waits for that step instead: gpu.sh wait 300 sweep
    while [ $SECONDS -lt $end ] && [ ! -f $L/${3:-all}.done ]; do sleep 10; done
    for f in $L/*.log; do echo "== $f"; grep -v "Loading\|Writing" "$f" | tail -8; done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
    for d in $W/work-*; do  # each preset's lane results, curves and logs
      p=${d#$W/work-}
      mkdir -p $OUT/$p/logs
      cp $d/lane-*.json $d/pretrain.json $W/results-$p/* $OUT/$p/ 2>/dev/null
      for f in $d/adapters/*/train_log*.jsonl; do [ -f "$f" ] && cp "$f" $OUT/$p/logs/$(basename $(dirname $f))-$(basename $f); done
      cat $L/*.log > $OUT/$p/run.log 2>/dev/null
    done
    cp $W/loss.json $W/ship7b.json $W/sweep7b.json $OUT/ 2>/dev/null
    [ -d $W/vram-train ] && cp -r $W/vram-train $OUT/
    [ -f $L/all.done ] && echo ALL DONE
    ;;
  *) echo "usage: gpu.sh probe | start | start100 | start150 | start150b | sweep7b | final7b | clifast | vram | wait SECONDS"; exit 2 ;;
esac
