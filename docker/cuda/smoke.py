"""What the CUDA image can prove without a GPU: the kernels were built for the promised architectures and
every library it ships (KeyDNN's CUDA library, cudart, cuBLAS, cuDNN) loads. Run by ``docker/build.py cuda --test``."""

from __future__ import annotations

import ctypes
import glob
import json
import os
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent.parent
WHEELS = os.environ.get("KEYDNN_CUDA_WHEELS", "/opt/cuda-wheels")


def main() -> int:
    info = json.loads((APP / "keydnn" / "_native" / "build_info.json").read_text())
    cuda = info.get("cuda", {})
    if not cuda.get("built"):
        sys.exit(f"libkeydnn_cuda was not built: {cuda}")
    wanted = (APP / "docker" / "cuda" / "cuda-arch.txt").read_text().split()
    missing = [flag for flag in wanted if flag not in cuda["flags"]]
    if missing:
        sys.exit(f"libkeydnn_cuda built without {missing}")
    libs = {}
    for name, pattern in [("cudart", "nvidia/cu13/lib/libcudart.so.13"), ("cublas", "nvidia/cu13/lib/libcublas.so.*"),
                          ("cudnn", "nvidia/cudnn/lib/libcudnn.so.*")]:
        found = sorted(glob.glob(f"{WHEELS}/{pattern}"))
        if not found:
            sys.exit(f"{name}: nothing matches {WHEELS}/{pattern}")
        libs[name] = found[0]
    libs["keydnn_cuda"] = str(APP / "keydnn" / "_native" / "libkeydnn_cuda.so")
    for name, path in libs.items():  # in this order: cudart first, as KeyDNN's own loader does
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        print(f"loaded without a GPU: {name:12s} {path}")
    print(f"libkeydnn_cuda flags: {' '.join(cuda['flags'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
