#!/bin/bash
# Live streaming at 512² on the GPU machine (issue 21): builds a 64 s full-preset training clip on the GPU, trains
# a 512² field on it for 3000 steps, then runs benchmarks/live_latency.py for 60 s at the default 80 ms
# look-ahead and at the checkpoint's own 212 ms. Packages as for full_run.sh (.whl/site-b.tar.xz).
#
#   bash benchmarks/device/live_512.sh    -> $OUT/live_gpu.json, $OUT/live_gpu_natural.json, $OUT/live_console.log
#
# Results: benchmarks/RESULTS.md, "Live" (benchmarks/live_512_h100*.json).
source "$(dirname "$0")/site.sh"
echo "install took $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; date -u
set -o pipefail
{
D=data/synthetic/gpu_live
[ -f $D/dataset.json ] || python3 -m talklib synth --preset full --train-clip --out $D --device cuda -p synth_train_seconds=64 2>&1 | tr '\r' '\n' | grep -v "it/s\|frame/s" 
date -u
python3 -m talklib train --data $D --conditions f_exp:12,f_illu --out runs/live512 --preset full --device cuda -p nerf_steps=3000 --resume 2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -5
date -u
python3 benchmarks/live_latency.py --checkpoint runs/live512 --seconds 60 --audio $D/aud.wav --device cuda --out $OUT/live_gpu.json
date -u
python3 benchmarks/live_latency.py --checkpoint runs/live512 --seconds 60 --audio $D/aud.wav --device cuda --lookahead 212 --out $OUT/live_gpu_natural.json
date -u
} 2>&1 | tee $OUT/live_console.log
