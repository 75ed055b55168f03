"""Developer sessions: `nox -s build_native tests` builds the native libraries and runs the test suite."""

from __future__ import annotations

import nox

nox.options.sessions = ["build_native", "tests"]
nox.options.reuse_existing_virtualenvs = True

# A CPU build of torch is the parity oracle; tests that need it skip when it cannot be installed.
TORCH = "torch==2.13.0"


@nox.session(venv_backend="none")
def build_native(session: nox.Session) -> None:
    """Compile native/cpu (g++ + OpenMP) and, where nvcc exists, native/cuda into keydnn/_native/."""
    session.run("python", "native/build.py", *session.posargs)


def _install(session: nox.Session) -> None:
    session.install("-e", ".[test,progress]")
    session.run("python", "-m", "pip", "install", "-q", TORCH, success_codes=[0, 1])


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (CUDA tests skip without a GPU), in parallel with pytest-xdist."""
    _install(session)
    session.run("python", "-m", "keydnn", "info")
    # xdist already uses every core; BLAS threads on top would oversubscribe them (10x slower small GEMMs).
    session.run("pytest", "-n", "auto", "-q", *session.posargs, env={"OPENBLAS_NUM_THREADS": "1"})


@nox.session
def tests_cuda(session: nox.Session) -> None:
    """Only the CUDA tests, failing (not skipping) when no GPU or CUDA library is usable."""
    _install(session)
    session.run("pytest", "-m", "cuda", "-q", *session.posargs, env={"KEYDNN_REQUIRE_CUDA": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.4")
    session.run("ruff", "check", "keydnn", "tests", "native", "scripts", "examples", "noxfile.py")


@nox.session
def digits(session: nox.Session) -> None:
    """Train the MLP example on scikit-learn's digits with a progress bar."""
    session.install("-e", ".[progress]", "scikit-learn")
    session.run("python", "examples/train_digits.py", *session.posargs)


# ---- asv: regression benchmarks, the planted-regression canary, the offline dashboard (asv_bench/tasks.py) ----
def _asv(session: nox.Session) -> None:
    session.install("asv==0.6.6", "numpy")
    session.run("python", "native/build.py", "--cpu-only")


@nox.session
def bench(session: nox.Session) -> None:
    """asv CPU results of the committed HEAD into asv_bench/results/<machine>/ (posargs: --machine NAME, asv args)."""
    _asv(session)
    session.run("python", "asv_bench/tasks.py", "bench", *session.posargs)


@nox.session
def bench_canary(session: nox.Session) -> None:
    """KEYDNN_BENCH_SLOWDOWN=conv2d_forward:1.25: asv must flag exactly that benchmark, and nothing in a null run."""
    _asv(session)
    session.run("python", "asv_bench/tasks.py", "canary", *session.posargs)


@nox.session
def dashboard(session: nox.Session) -> None:
    """asv publish over every machine's committed results, made to work offline (vendored JavaScript)."""
    session.install("asv==0.6.6")
    session.run("python", "asv_bench/tasks.py", "dashboard", *session.posargs)
