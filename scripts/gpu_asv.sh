#!/usr/bin/env bash
# asv results for the H200 dashboard line, on the GPU machine (no network, no asv there).
# Carried in (both git-ignored, made on the development machine):
#   .whl/            asv 0.6.6 and its dependencies as CPython 3.12 wheels:
#                    pip download --only-binary=:all: --python-version 3.12 --implementation cp \
#                      --platform manylinux2014_x86_64 -d .whl asv==0.6.6
#   .gl/keydnn.bundle  git bundle create .gl/keydnn.bundle main
# Usage: scripts/gpu_asv.sh OUTDIR [COMMIT...]   (default: the last two commits of main in the bundle)
# Leaves OUTDIR/asv_bench/results/h200/ (machine.json + one file per commit) to commit beside results/<cpu>/.
# The benchmarks are this checkout's asv_bench/benchmarks; each commit is built (CPU + CUDA) in a clone of
# the bundle and imported from there. Only the cuda rows (and import time) run: the CPU rows are the
# development machine's. KEYDNN_ASV_BENCH (a regex over "benchmark(params)") picks the benchmarks; the default
# is the families the committed CPU history covers, so the two machines' lines sit on the same graphs.
set -euo pipefail
out=${1:?usage: scripts/gpu_asv.sh OUTDIR [COMMIT...]}; shift
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"; out=$(cd "$out" && pwd)
work=$(mktemp -d)
# sys.executable as is, not its realpath: a virtualenv's python is a link to the system one, and resolving it
# loses the virtualenv's site-packages (numpy, torch).
py=$(python3 -c 'import sys; print(sys.executable)')

python3 -m pip install -q --no-index --find-links "$root/.whl" --target "$work/asvlib" asv==0.6.6
export PYTHONPATH=$work/asvlib PYTHONUNBUFFERED=1
git clone -q "$root/.gl/keydnn.bundle" "$work/repo"
git -C "$work/repo" branch -f main origin/main 2>/dev/null || true
commits=("$@")
[ ${#commits[@]} -gt 0 ] || mapfile -t commits < <(git -C "$work/repo" rev-list -2 origin/main)

python3 "$root/asv_bench/write_machine.py" h200
python3 - "$root" "$work" "$out" <<'EOF'
import json, sys
from pathlib import Path
root, work, out = map(Path, sys.argv[1:])
sys.path.insert(0, str(work / "asvlib"))
from asv import util
conf = util.load_json(str(root / "asv_bench" / "asv.conf.json"), api_version=1, js_comments=True)
conf.update(version=1, repo=str(work / "repo"), benchmark_dir=str(root / "asv_bench" / "benchmarks"),
            results_dir=str(out / "asv_bench" / "results"), html_dir=str(work / "html"), env_dir=str(work / "env"))
(work / "asv.conf.json").write_text(json.dumps(conf, indent=2))
EOF

default='^(bench_conv\.conv2d|bench_elementwise\.(add|exp|mul|relu)|bench_linalg\.(linear|matmul)|bench_loss\.softmax_cross_entropy|bench_norm\.batch_norm|bench_pool\.max_pool2d|bench_reduce\.sum|bench_workloads\.[A-Za-z0-9]+)\..*\(.*'cuda'.*\)$'
select=${KEYDNN_ASV_BENCH:-$default}
status=0
for c in "${commits[@]}"; do
  sha=$(git -C "$work/repo" rev-parse "$c")
  echo "== $sha"
  git -C "$work/repo" checkout -q "$sha"
  (cd "$work/repo" && python3 native/build.py --cuda-arch 90) \
    > "$out/build_${sha:0:8}.log" 2>&1 || { tail -20 "$out/build_${sha:0:8}.log"; status=1; continue; }
  if ! ASV_PYTHONPATH="$work/repo:$work/asvlib" python3 -m asv run --config "$work/asv.conf.json" \
      -E "existing:$py" --set-commit-hash "$sha" --machine h200 --show-stderr \
      -b "$select" -b "timeraw_import_keydnn" > "$out/asv_${sha:0:8}.log" 2>&1; then
    status=1
  fi
  grep -E "^\[|failed" "$out/asv_${sha:0:8}.log" | tail -40 || true
done
ls -l "$out/asv_bench/results/h200/"
exit $status
