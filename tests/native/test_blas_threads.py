"""NumPy's OpenBLAS on libkeydnn_cpu's OpenMP team: the callback serves every threaded BLAS call, gives the
same results, runs all of a call's jobs at once (also when the team comes out smaller than asked), survives
concurrent callers and forks, and the wait policy the OpenMP runtime starts with follows the pool setup."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from keydnn.domain.errors import NativeLibraryError

native_cpu = pytest.importorskip("keydnn.infrastructure.backends.native_cpu")
try:
    native_cpu.overrides()
except NativeLibraryError:
    pytest.skip("native CPU library not built (python native/build.py)", allow_module_level=True)

from keydnn.infrastructure.backends.native_cpu import _lib, _openblas_lib  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
served = pytest.mark.skipif(not _openblas_lib.installed(),
                            reason="NumPy's BLAS is not an OpenBLAS with the threads callback (>= 0.3.27)")
JOB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)


def _threaded_matmul(n: int = 384) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    return a @ b, np.einsum("ij,jk->ik", a, b)  # einsum without optimize= does not call BLAS


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120)


@served
def test_threaded_matmul_runs_on_the_openmp_team_with_the_same_result():
    # In a child with two BLAS threads: the test session itself runs with OPENBLAS_NUM_THREADS=1 (no BLAS jobs).
    code = (
        "import numpy as np\n"
        "from keydnn.infrastructure.backends.native_cpu import _lib\n"
        "lib = _lib.load(); before = lib.keydnn_cpu_blas_calls()\n"
        "rng = np.random.default_rng(0); a, b = rng.standard_normal((384, 384)), rng.standard_normal((384, 384))\n"
        "got, want = a @ b, np.einsum('ij,jk->ik', a, b)\n"
        "assert lib.keydnn_cpu_blas_calls() > before, 'BLAS ran no job on the OpenMP team'\n"
        "np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)\n"
        "assert all(n >= 1 for n in _lib.info()['blas_on_openmp_team'].values())\n"
        "print('ok')\n")
    proc = _python(code, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


@served
def test_concurrent_matmuls_from_python_threads_are_all_right():
    rng = np.random.default_rng(1)
    mats = [rng.standard_normal((256, 256)) for _ in range(8)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda m: m @ m.T, mats))
    for m, r in zip(mats, results, strict=True):
        np.testing.assert_allclose(r, np.einsum("ij,kj->ik", m, m), rtol=1e-10, atol=1e-10)


def _child_counts(queue) -> None:
    lib = _lib.load()
    before = lib.keydnn_cpu_blas_calls()
    got, want = _threaded_matmul()
    queue.put((bool(np.allclose(got, want)), lib.keydnn_cpu_blas_calls() - before, _openblas_lib.installed()))


@served
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_openblas_own_pool_back():
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_counts, args=(queue,))
    proc.start()
    ok, calls, installed = queue.get(timeout=60)
    proc.join(timeout=60)
    assert ok and calls == 0 and installed == []


def _all_at_once_job(numjobs: int, seen: list[int]):
    """A job that waits until every job of the call has started (OpenBLAS's level-3 pattern)."""
    arrived = [0]
    lock = threading.Lock()

    def job(thread_num, data, arg):
        with lock:
            arrived[0] += 1
            seen.append(thread_num)
        deadline = time.monotonic() + 20
        while arrived[0] < numjobs and time.monotonic() < deadline:
            time.sleep(0.001)
    return JOB(job), arrived


@pytest.mark.parametrize("numjobs", [1, 2, 3, 5])
def test_every_job_runs_once_and_all_jobs_run_together(numjobs):
    seen: list[int] = []
    job, arrived = _all_at_once_job(numjobs, seen)
    data = (ctypes.c_double * numjobs)()
    _lib.load().keydnn_cpu_blas_threads(1, job, numjobs, ctypes.sizeof(ctypes.c_double), data, 7)
    assert sorted(seen) == list(range(numjobs)) and arrived[0] == numjobs


def test_a_team_smaller_than_the_jobs_gets_threads_for_the_rest():
    code = ("import ctypes, threading, time\n"
            "from keydnn.infrastructure.backends.native_cpu import _lib\n"
            "JOB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)\n"
            "n, arrived, lock = 4, [0], threading.Lock()\n"
            "def job(t, d, a):\n"
            "    with lock: arrived[0] += 1\n"
            "    end = time.monotonic() + 20\n"
            "    while arrived[0] < n and time.monotonic() < end: time.sleep(0.001)\n"
            "cb = JOB(job)\n"
            "_lib.load().keydnn_cpu_blas_threads(1, cb, n, 8, (ctypes.c_double * n)(), 0)\n"
            "print(arrived[0])\n")
    out = _python(code, OMP_THREAD_LIMIT="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "4"


def test_the_openmp_runtime_starts_with_the_policy_the_pool_setup_needs():
    code = "from keydnn.infrastructure.backends.native_cpu import _lib; _lib.load()"
    one_pool = _python(code, OMP_DISPLAY_ENV="verbose")
    two_pools = _python(code, OMP_DISPLAY_ENV="verbose", KEYDNN_BLAS_THREADS="openblas")
    assert "GOMP_SPINCOUNT = '0'" in two_pools.stderr  # passive: sleeping workers, OpenBLAS keeps its pool
    if _openblas_lib.installed():
        assert "GOMP_SPINCOUNT = '300000'" in one_pool.stderr  # libgomp's default, as PyTorch gets alone
    assert "OMP_WAIT_POLICY" not in os.environ


def test_opting_out_keeps_openblas_own_pool():
    code = ("import numpy as np\nfrom keydnn.infrastructure.backends.native_cpu import _lib, _openblas_lib\n"
            "lib = _lib.load(); a = np.ones((384, 384)); a @ a\n"
            "print(lib.keydnn_cpu_blas_calls(), len(_openblas_lib.installed()))")
    out = _python(code, KEYDNN_BLAS_THREADS="openblas")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["0", "0"]
