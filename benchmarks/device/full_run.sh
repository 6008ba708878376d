#!/bin/bash
# The full preset through the notebooks on the GPU machine, under a time limit, resumable (issue 20).
#
# On the GPU machine (the device tool), from the repo root, with the packages its image lacks carried in
# .whl/site-b.tar.xz (jupytext, papermill, ipykernel, librosa, mediapipe + protobuf<5, pysptk, pocketsphinx,
# espeakng-loader, imageio-ffmpeg, tornado, ... installed with `pip install --target` for Python 3.12 and packed
# with `tar -cJ`, less pocketsphinx's word language model en-us.lm.bin, which talklib never loads;
# ../shared/tools/device-wheelhouse.sh fetches the wheels):
#
#   bash benchmarks/device/full_run.sh run1 520 --preset full --out runs/full     # first call
#   bash benchmarks/device/full_run.sh run2 540 --out runs/full --resume          # next call, same warm machine
#
# TAG names the files it leaves in $OUT; SECONDS is the limit after which `reproduce` gets SIGINT (it marks the
# notebook and run.json "interrupted"; --resume continues from there). It copies run.json, report.md, the console,
# nvidia-smi samples, metrics + logs and the executed notebooks to $OUT. Results: benchmarks/RESULTS.md,
# "The full preset on one GPU".
tag=$1; secs=$2; shift 2
source "$(dirname "$0")/site.sh"
python3 -m ipykernel install --user --name talklib >/dev/null
echo "install took $(( $(date +%s) - t0 )) s"
if [ "$tag" = run1 ]; then
python3 - <<'PY'
import time; t = time.time()
import torch, numpy, pandas, google.protobuf, mediapipe, librosa, papermill, pysptk, pocketsphinx, espeakng_loader, imageio_ffmpeg, talklib, talklib.pipeline
print("torch", torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0))
print("numpy", numpy.__version__, "pandas", pandas.__version__, "protobuf", google.protobuf.__version__,
      "mediapipe", mediapipe.__version__, "librosa", librosa.__version__, "papermill", papermill.__version__)
from mediapipe.python.solutions import face_mesh
m = face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True)
print("facemesh", m.process(numpy.zeros((64, 64, 3), numpy.uint8)).multi_face_landmarks)
print("ffmpeg", imageio_ffmpeg.get_ffmpeg_exe())
print("smoke", round(time.time() - t, 1), "s")
PY
nvidia-smi -L
fi
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 20 > $OUT/smi_$tag.csv 2>&1 &
date -u
set -o pipefail
timeout -s INT -k 30 $secs python3 -m talklib reproduce "$@" 2>&1 | tee $OUT/console_$tag.log
echo "reproduce rc=$?"
date -u
R=runs/full
cp $R/run.json $OUT/run_$tag.json; cp $R/report.md $OUT/report_$tag.md
tar -czf $OUT/metrics_$tag.tar.gz -C $R metrics logs 2>/dev/null
tar -cJf $OUT/nbs_$tag.tar.xz -C $R --exclude=notebooks/.src notebooks 2>/dev/null
if [ "$(stat -c %s $OUT/nbs_$tag.tar.xz)" -gt 15000000 ]; then
  rm $OUT/nbs_$tag.tar.xz; f=$(ls -t $R/notebooks/*.ipynb | head -1); xz -c "$f" > $OUT/last_$tag.ipynb.xz
fi
ls -la $OUT; du -sh $R/* data/*/* 2>/dev/null; df -h . | tail -1
