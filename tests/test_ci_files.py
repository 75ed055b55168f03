"""The container and CI files: the workflow copy GitHub reads, the sessions it calls, the image entrypoints run
outside a container, the asv history branch, and the commands docker/build.py composes."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "ci" / "workflow.yml"
GITHUB_COPY = ROOT / ".github" / "workflows" / "ci.yml"


def _nox_sessions() -> set[str]:
    text = (ROOT / "noxfile.py").read_text()
    return set(re.findall(r"@nox\.session[^\n]*\n(?:@[^\n]*\n)*def (\w+)\(", text))


def _called_sessions() -> list[str]:
    text = WORKFLOW.read_text() + (ROOT / ".ci" / "run").read_text()
    return sorted({name for args in re.findall(r"\bnox -s ([\w -]+)", text) for name in args.split()})


def test_github_copy_of_the_workflow_is_identical():
    assert GITHUB_COPY.read_bytes() == WORKFLOW.read_bytes(), "run: cp ci/workflow.yml .github/workflows/ci.yml"


@pytest.mark.parametrize("session", _called_sessions())
def test_every_session_the_workflow_and_ci_call_exists(session):
    assert session in _nox_sessions(), f"nox -s {session} is called by CI but not defined in noxfile.py"


def test_workflow_has_the_promised_jobs():
    jobs = set(re.findall(r"^  ([\w-]+):\n", WORKFLOW.read_text().split("\njobs:\n", 1)[1], re.M))
    assert {"lint", "tests-cpu", "bench", "report-cpu", "image-cpu", "image-cuda", "gpu", "publish"} <= jobs


def test_dockerfile_copies_name_existing_files():
    for dockerfile in (ROOT / "docker" / "cpu" / "Dockerfile", ROOT / "docker" / "cuda" / "Dockerfile"):
        for src in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", dockerfile.read_text(), re.M):
            assert (ROOT / src).exists(), f"{dockerfile.relative_to(ROOT)} copies missing {src}"


def test_cuda_image_targets_sm80_to_sm90_plus_ptx():
    flags = (ROOT / "docker" / "cuda" / "cuda-arch.txt").read_text().split()
    codes = {f.rsplit("code=", 1)[1] for f in flags}
    assert codes == {"sm_80", "sm_86", "sm_89", "sm_90", "compute_90"}


def _run_entrypoint(kind: str, args: list[str], out: Path) -> subprocess.CompletedProcess:
    # KEYDNN_REPORT_ARGS=--help: the report's own run is the report's tests' business, not this one's.
    env = {"KEYDNN_REPORT_ARGS": "--help", "PATH": "/usr/bin:/bin", "KEYDNN_APP_DIR": str(ROOT),
           "KEYDNN_PYTHON": sys.executable, "KEYDNN_REPORT_DIR": str(out), "PYTHONPATH": str(ROOT), "HOME": str(out)}
    return subprocess.run(["sh", str(ROOT / "docker" / kind / "entrypoint.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_cpu_entrypoint_prints_info_then_runs_the_command(tmp_path):
    res = _run_entrypoint("cpu", ["echo", "command ran"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "native_cpu:" in res.stdout and res.stdout.rstrip().endswith("command ran")


def test_cuda_entrypoint_fails_rather_than_skips_without_a_gpu(tmp_path):
    from keydnn.infrastructure.backends import cuda
    if cuda.is_available():
        pytest.skip("a GPU is usable here: the entrypoint's CUDA run is the lead's GPU command")
    res = _run_entrypoint("cuda", ["cuda", "-x", "tests/cuda"], tmp_path / "out")
    assert res.returncode != 0
    assert "cuda wheel nvidia-cublas: pinned" in res.stdout
    info = json.loads((tmp_path / "out" / "keydnn-info.json").read_text())
    assert info["cuda"]["available"] is False
    junit = (tmp_path / "out" / "cuda-tests.junit.xml").read_text()
    assert re.search(r'failures="[1-9]', junit) or re.search(r'errors="[1-9]', junit)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_asv_history_branch_gains_a_point_per_run(tmp_path):
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "--quiet", "--bare", str(remote))
    repo = tmp_path / "repo"
    (repo / "ci").mkdir(parents=True)
    shutil.copy(ROOT / "ci" / "asv_history.sh", repo / "ci")
    _git(repo, "init", "--quiet", "-b", "main")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty", "-m", "c")
    _git(repo, "remote", "add", "origin", str(remote))
    env_git = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    results = repo / "asv_bench" / "results" / "ci"

    def step(cmd: str) -> str:
        return subprocess.run(["bash", "ci/asv_history.sh", cmd], cwd=repo, env=env_git, check=True,
                              capture_output=True, text=True).stdout

    assert "starting a new history" in step("pull")
    results.mkdir(parents=True)
    (results / "run1.json").write_text("{}")
    step("push")
    shutil.rmtree(repo / "asv_bench")  # the next CI run starts from a clean checkout
    assert "1 result files" in step("pull")
    (results / "run2.json").write_text("{}")
    step("push")
    files = _git(remote, "ls-tree", "-r", "--name-only", "asv-results").split()
    assert files == ["ci/run1.json", "ci/run2.json"]


def _build_module():
    spec = importlib.util.spec_from_file_location("docker_build", ROOT / "docker" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_daemonless_build_command_uses_chroot_no_pull_and_the_tags():
    build = _build_module()
    cmd = build.build_command("buildah", "cuda", ["keydnn:9-cuda13", "keydnn:cuda"], None)
    assert cmd[:2] == ["buildah", "bud"] and "--pull=never" in cmd and cmd[cmd.index("--isolation") + 1] == "chroot"
    assert cmd[cmd.index("-f") + 1].endswith("docker/cuda/Dockerfile") and cmd[-1] == str(ROOT)
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "-t"] == ["keydnn:9-cuda13", "keydnn:cuda"]
    docker = build.build_command("docker", "cpu", ["keydnn:9-cpu"], "debian:trixie")
    assert docker[:2] == ["docker", "build"] and "BASE_IMAGE=debian:trixie" in docker


def test_the_tags_carry_the_package_version():
    build = _build_module()
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert build.version() == version
    assert build.dockerfile_default_base("cpu") == build.dockerfile_default_base("cuda")


def test_cuda_arch_all_gives_the_image_flags():
    """The CUDA image builds with --cuda-arch all; docker/cuda/cuda-arch.txt (what its smoke test checks the
    library against) must be exactly the flags that gives."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("keydnn_native_build", ROOT / "native" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    archs, ptx, _ = build.resolve_arch("all", [], [], "")
    assert build.gencode_flags(archs, ptx) == (ROOT / "docker" / "cuda" / "cuda-arch.txt").read_text().split()
