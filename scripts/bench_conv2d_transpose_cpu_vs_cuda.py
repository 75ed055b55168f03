"""Conv2dTranspose forward on Tensors already on the device, CPU vs CUDA (cuDNN).

    python scripts/bench_conv2d_transpose_cpu_vs_cuda.py --dtype float32 --sanity [--N 8 --Cin 64 --Cout 128
        --H 56 --W 56 --Kh 3 --Kw 3 --stride 1 [1] --padding 1 [1] --outpad 0 [0] --bias|--no-bias --warmup 10
        --repeats 50 --seed 0 --device 0 --out FILE]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a clone without an install

from keydnn.bench.cpu_vs_cuda import add_conv_flags, conv_run, parser  # noqa: E402


def main(argv: list[str] | None = None) -> str:

    ap = parser(__doc__.splitlines()[0], warmup=10, repeats=50)
    add_conv_flags(ap, hw=56, transpose=True)
    return conv_run(ap.parse_args(argv), transpose=True)


if __name__ == "__main__":
    main()
