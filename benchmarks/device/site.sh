# Sourced by full_run.sh and live_512.sh on the GPU machine: unpacks the carried packages (.whl/site-b.tar.xz) to
# /tmp/site once per machine and puts them on the paths.
export PYTHONUNBUFFERED=1
t0=$(date +%s)
if [ ! -f /tmp/site/.ok ]; then
  mkdir -p /tmp/site && tar -xJf .whl/site-b.tar.xz -C /tmp/site || exit 3
  touch /tmp/site/.ok
fi
export PYTHONPATH=$PWD:/tmp/site PATH=/tmp/site/bin:$PATH
