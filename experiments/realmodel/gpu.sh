#!/usr/bin/env bash
# Issue 21's experiment on one GPU machine (the device tool), in back-to-back calls of one batch:
#
#   bash experiments/realmodel/gpu.sh chunk c1     # calls 1-5: one GGUF chunk each (.data/realmodel/cN carried)
#   bash experiments/realmodel/gpu.sh start c6     # call 6: data, code and wheels (c6 carried); joins the GGUF,
#                                                  # checks its sha256, launches every lane in the background
#                                                  # (STOP_AFTER seconds of training; EXTEND=1/0/auto; LANES;
#                                                  # INIT: the rows' init, mean by default; DISTILL=32k: a lane
#                                                  # ht32k-distill, replace with the base as teacher;
#                                                  # RECIPES="32k=match 32k=stage1": lanes ht32k-match, ...,
#                                                  # replace trained another way, run.py's RECIPES;
#                                                  # SKIP="base speed": leave those lanes out, their JSON then
#                                                  # comes from an earlier lease's logs: run.py --logs)
#   bash experiments/realmodel/gpu.sh wait 540     # waits (at most SECONDS) for the report, copies results to $OUT
#
# `bash experiments/realmodel/make_carry.sh` makes what the calls carry, on the CPU machine first: c1..c5
# the GGUF (253 MB; a call carries 64 MiB), c6 code.tar (the committed tree, `git archive HEAD`: the run
# never reads a half-edited working tree), the training and dev texts as .xz, the HyperTok tokenizers as
# toks.tar.xz, the RuBLiMP pairs and the wheels the image lacks (gguf, liger-kernel).
set -u
R=/tmp/rm                 # what the calls carried, joined
W=/tmp/rmwork             # the experiment's work folder (models, packed data, lane JSON)
L=$W/logs
OUT=${OUT:-/tmp/out}
SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
STOP_AFTER=${STOP_AFTER:-480}  # seconds from launch by which every lane ends its training (its cosine decay fitted to it)
# (PRESET=short STOP_AFTER=240 where failed starts have eaten into the lease)

case "${1:-}" in
  chunk)
    mkdir -p $R && cp .data/realmodel/$2/* $R/ && ls -la $R | tail -n +2
    ;;
  start)
    mkdir -p $R $W $L && cp .data/realmodel/$2/* $R/
    cat $R/gguf.part0 $R/gguf.part1 $R/gguf.part2 $R/gguf.part3 $R/gguf.part4 > $R/gemma.gguf
    echo "$SHA  $R/gemma.gguf" | sha256sum -c - || exit 1
    rm -f $R/gguf.part*
    mkdir -p $R/code $R/toks && tar -xf $R/code.tar -C $R/code && tar -xJf $R/toks.tar.xz -C $R/toks || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $R/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$R/code PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    # EXTEND=auto (the default): the extend lane where the card holds four lanes (an H200's 141 GB; its 326k-row
    # head and the control's 262k take about 25 GB each), not on an 80 GB H100
    if [ "${EXTEND:-auto}" = auto ]; then
      EXTEND=; [ "$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)" -gt 100000 ] && EXTEND=1
    fi
    [ "${EXTEND:-}" = 0 ] && EXTEND=
    echo "extend lane: ${EXTEND:-no}"
    python3 -c "import torch,transformers,peft;print(torch.__version__,transformers.__version__,peft.__version__)"
    # Liger's fused loss where it runs here, else the chunked loss (--loss auto picks liger when importable)
    python3 -c "
import torch; from hypertok.loss import fused_cross_entropy
h = torch.randn(64, 32, device='cuda', requires_grad=True); head = torch.nn.Linear(32, 1000, bias=False).cuda()
l, n = fused_cross_entropy(h, torch.randint(0, 1000, (64,), device='cuda'), head); l.backward(); print('liger ok', float(l))
" || { echo "liger unusable: the chunked loss"; rm -rf /tmp/site/liger_kernel*; }
    A="--gguf $R/gemma.gguf --hypertok 64k=$R/toks/tok64k 32k=$R/toks/tok32k
       ${EXTEND:+--extend 64k} ${DISTILL:+--distill $DISTILL} ${RECIPES:+--recipes $RECIPES}
       --train $R/ru-modern-train-0001.txt.xz $R/ru-modern-train-0002.txt.xz $R/ru-modern-train-0003.txt.xz $R/ruslit-train.txt.xz
       --dev ruslit=$R/ruslit-dev.txt.xz modern=$R/ru-modern-dev.txt.xz --pairs $R/dev.tsv
       --work $W --results $W/results --preset ${PRESET:-lease} ${INIT:+--init $INIT}"
    A=$(echo $A)  # one line: it goes inside the driver's bash -c "...", where a newline would end the command
    # EXTEND=1 / DISTILL=KEY / RECIPES: those lanes too; LANES=none: the base alone
    LANES=${LANES:-"control ht64k-replace ht32k-replace ${EXTEND:+ht64k-extend} ${DISTILL:+ht$DISTILL-distill}
                    $(for r in ${RECIPES:-}; do echo ht${r%%=*}-${r#*=}; done)"}
    LANES=$(echo $LANES)  # one line, as A above
    [ "$LANES" = none ] && LANES=""
    SKIP=$(echo ${SKIP:-})  # base / speed: lanes whose JSON an earlier lease wrote (the base's figures repeat exactly)
    cd $R/code
    setsid nohup bash -c "
      python3 experiments/realmodel/run.py $A --lane import > $L/import.log 2>&1 || exit 1
      STOP=\$(( \$(date +%s) + $STOP_AFTER ))
      case \" $SKIP \" in *\" base \"*) ;; *) python3 experiments/realmodel/run.py $A --lane base > $L/base.log 2>&1 & ;; esac
      for v in $LANES; do python3 experiments/realmodel/run.py $A --lane \$v --stop-by \$STOP > $L/\$v.log 2>&1 & done
      wait
      case \" $SKIP \" in *\" speed \"*) ;; *) python3 experiments/realmodel/run.py $A --lane speed > $L/speed.log 2>&1 ;; esac
      python3 experiments/realmodel/run.py $A --lane report > $L/report.log 2>&1
      touch $L/all.done" < /dev/null > $L/driver.log 2>&1 &
    sleep 60; tail -n 3 $L/*.log
    ;;
  wait)
    end=$(( $(date +%s) + ${2:-540} ))
    while [ ! -f $L/all.done ] && [ $(date +%s) -lt $end ]; do
      sleep 30; echo "--- $(date +%T)"; for f in $L/*.log; do echo "$(basename $f): $(grep -v 'Loading\|Warning\|warn' $f | tail -n 1 | cut -c1-200)"; done
      nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
      pgrep -f realmodel/run.py > /dev/null || [ -f $L/all.done ] || { echo "no lane is running"; cat $L/driver.log; break; }
    done
    mkdir -p $OUT
    tar -czf $OUT/logs.tar.gz -C $W logs lanes 2>/dev/null
    cp $W/results/* $OUT/ 2>/dev/null
    ls -la $OUT
    ;;
  *)
    sed -n 2,12p "$0"; exit 2
    ;;
esac
