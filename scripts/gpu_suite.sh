#!/usr/bin/env bash
# The GPU machine's entry point (no network, no nox there): build the native libraries, then run
#   tests     the whole suite with KEYDNN_REQUIRE_CUDA=1 (a missing GPU or library fails instead of skipping)
#   bench     the CUDA benchmarks against the machine's PyTorch, and the launch-cost probe
#   sanitize  compute-sanitizer memcheck over the CUDA tests and racecheck over their float32 half
# Usage: scripts/gpu_suite.sh OUTDIR [tests] [bench] [sanitize]
set -uo pipefail
out=${1:?usage: scripts/gpu_suite.sh OUTDIR [tests] [bench] [sanitize]}; shift
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KEYDNN_REQUIRE_CUDA=1
status=0
[ -f keydnn/_native/libkeydnn_cuda.so ] || python3 native/build.py > "$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
python3 -m keydnn info | tee "$out/info.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> "$out/info.txt" 2>&1
for step in "$@"; do
  case $step in
    tests)
      python3 -m pytest tests -q -n 8 -p no:cacheprovider 2>&1 | tee "$out/pytest.log" | tail -15
      [ "${PIPESTATUS[0]}" = 0 ] || status=1 ;;
    bench)
      python3 scripts/bench_cuda.py --out "$out/bench_cuda.md" || status=1
      python3 scripts/bench_cuda_overhead.py --out "$out/overhead.md" || status=1
      nvcc -O3 -std=c++17 -arch=sm_90 -I native/include scripts/bench_cuda_launch.cu native/cuda/status.cu \
        -o /tmp/bench_cuda_launch -lcuda && /tmp/bench_cuda_launch | tee "$out/launch.md" || status=1
      python3 scripts/bench_cuda_blas_conv.py --out "$out/bench_blas_conv.md" > "$out/bench_blas_conv.log" 2>&1 || status=1
      tail -12 "$out/bench_blas_conv.md" ;;
    sanitize)
      compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
        python3 -m pytest tests/cuda -q -x -p no:cacheprovider -k "not two_thousand" \
        > "$out/memcheck.log" 2>&1; echo "memcheck exit $?" | tee -a "$out/memcheck.log"
      tail -4 "$out/memcheck.log"
      compute-sanitizer --tool racecheck --error-exitcode 9 --print-limit 20 \
        python3 -m pytest tests/cuda -q -x -p no:cacheprovider -k "float32 and not two_thousand" \
        > "$out/racecheck.log" 2>&1; echo "racecheck exit $?" | tee -a "$out/racecheck.log"
      tail -4 "$out/racecheck.log" ;;
    *) echo "unknown step $step"; exit 2 ;;
  esac
done
exit $status
