#!/usr/bin/env bash
# The seed README's five CPU-vs-CUDA benchmarks with the seed's flags and default shapes, run on the GPU
# machine; writes one markdown file per script and OUTDIR/seed_scripts.md, which puts them after the seed's
# RTX 3050 numbers (the file the README cites is this one, copied to reports/gpu/seed_scripts_h200.md).
# Usage: scripts/seed_benchmarks.sh OUTDIR
set -uo pipefail
out=${1:?usage: scripts/seed_benchmarks.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
[ -f keydnn/_native/libkeydnn_cuda.so ] || $py native/build.py > "$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
status=0
run() {  # name, then the script's flags
  local name=$1; shift
  echo "== $name $*"
  $py "scripts/bench_${name}_cpu_vs_cuda.py" --dtype float32 --sanity "$@" --out "$out/$name.md" || status=1
}
run linear_backward
run pool2d
run conv2d
run conv2d_transpose
run tensor_ops
cp "$out/tensor_ops.md" "$out/tensor_ops_async.md"
run tensor_ops --sync_each_iter
mv "$out/tensor_ops.md" "$out/tensor_ops_sync.md"
{
  echo "# The seed's CPU-vs-CUDA benchmark scripts"
  echo
  echo "Produced by \`scripts/seed_benchmarks.sh\` at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown) on $(date -u +%Y-%m-%d)."
  echo "For comparison, the seed README's numbers (i5-12450H, RTX 3050 laptop GPU, Windows 11, CUDA 12.4; float32):"
  echo "Linear backward 1024x1024->1024 with bias 26.93 ms CPU / 3.79 ms CUDA; MaxPool2d 8x32x64x64 forward"
  echo "6.49 ms / 278.15 us, AvgPool2d 2.69 ms / 181.55 us; add on 512x512 723.8 us / 126.4 us (not synchronised);"
  echo "Conv2d 8x64x112x112->128 3x3 forward 1.024 s / 64.51 ms. KeyDNN's CPU column below runs its native"
  echo "C++/OpenMP kernels where it has them (convolution, pooling) and NumPy elsewhere."
  for f in linear_backward pool2d conv2d conv2d_transpose tensor_ops_async tensor_ops_sync; do
    echo; cat "$out/$f.md"
  done
} > "$out/seed_scripts.md"
echo "wrote $out/seed_scripts.md (exit $status)"
exit $status
