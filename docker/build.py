"""Build (and optionally test) KeyDNN's container images with docker, else podman, else buildah.

    python docker/build.py cpu  [--test]    -> keydnn:<version>-cpu     (and keydnn:cpu)
    python docker/build.py cuda [--test]    -> keydnn:<version>-cuda13  (and keydnn:cuda)

Called by ``nox -s docker_cpu`` / ``nox -s docker_cuda``, ``.ci/run`` and the CI workflow. Where no engine
works and apt-get does (a Debian CI machine, as root), it installs buildah/podman/runc. Where the base
image cannot be pulled (no registry), it makes one with debootstrap, caches the root file system as a
tarball and tags it under the public name, so the Dockerfiles build unchanged. Every such step is printed.
``--test`` runs the image: the CPU image's default command (the test suite); for the CUDA image, which
needs a GPU for its default command, ``--test`` loads every library of the image without one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "docker"
CACHE = Path(os.environ.get("KEYDNN_DOCKER_CACHE", Path.home() / ".cache" / "keydnn-docker"))
# Debian suite and packages of the locally made base: what python:3.13-slim-trixie provides.
SUITE = "trixie"
BASE_PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"
TAG_SUFFIX = {"cpu": "cpu", "cuda": "cuda13"}
SHORT_TAG = {"cpu": "keydnn:cpu", "cuda": "keydnn:cuda"}


def say(msg: str) -> None:
    print(f"[docker/build.py] {msg}", flush=True)


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=check, **kw)


def quiet(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def dockerfile_default_base(kind: str) -> str:
    text = (HERE / kind / "Dockerfile").read_text()
    return re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.M).group(1)


def containers_env() -> dict[str, str]:
    """podman/buildah settings that work without systemd or CAP_SYS_RESOURCE (runc, cgroupfs, low ulimits)."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(HERE / "containers.conf"))
    return env


def install_engines() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit("no container engine found (docker daemon, podman or buildah) and cannot apt-get one")
    say("no usable container engine: installing buildah, podman, runc and debootstrap with apt-get")
    run(["apt-get", "update", "-qq"])
    run(["apt-get", "install", "-y", "-qq", "buildah", "podman", "runc", "debootstrap"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def pick_engine(wanted: str, setup: bool) -> str:
    """docker if its daemon answers, else podman, else buildah; installs podman+buildah when allowed."""
    if wanted != "auto":
        return wanted
    for _ in range(2):
        if shutil.which("docker") and quiet(["docker", "info"]):
            return "docker"
        if shutil.which("docker"):
            say("docker client found but no daemon answers: trying podman, then buildah")
        for name in ("podman", "buildah"):
            if shutil.which(name) and quiet([name, "info"]):
                return name
        if not setup:
            break
        install_engines()
    raise SystemExit("no working container engine (try --engine, or run without --no-setup as root)")


def image_exists(engine: str, ref: str) -> bool:
    if engine == "docker":
        return quiet(["docker", "image", "inspect", ref])
    if engine == "podman":
        return quiet(["podman", "image", "exists", ref])
    return quiet(["buildah", "inspect", "--type", "image", ref])


def apt_mirror() -> str:
    """The Debian mirror apt already uses (so debootstrap reaches what this machine reaches)."""
    for src in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if src.is_file() and not src.name.endswith(".disabled-by-farm"):
            m = re.search(r"(?:URIs:|^deb)\s+(\S+/debian)/?\s", src.read_text(), re.M)
            if m:
                return m.group(1)
    return "http://deb.debian.org/debian"


def make_base(engine: str, ref: str, setup: bool) -> None:
    """Tag a debootstrapped Debian (python3 + venv + pip) as ``ref``; the rootfs tarball is cached."""
    tarball = CACHE / f"debian-{SUITE}-minbase-python3.tar"
    if not tarball.exists():
        if shutil.which("debootstrap") is None:
            if not setup:
                raise SystemExit(f"base image {ref} missing and debootstrap not installed")
            run(["apt-get", "install", "-y", "-qq", "debootstrap"])
        rootfs = CACHE / f"rootfs-{SUITE}"
        shutil.rmtree(rootfs, ignore_errors=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        mirror = apt_mirror()
        say(f"making a Debian {SUITE} base with debootstrap from {mirror} (cached as {tarball})")
        run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", SUITE, str(rootfs), mirror],
            stdout=subprocess.DEVNULL)
        run(["chroot", str(rootfs), "apt-get", "clean"])
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        run(["tar", "-C", str(rootfs), "-cf", f"{tarball}.part", "."])
        os.replace(f"{tarball}.part", tarball)
        shutil.rmtree(rootfs)
    else:
        say(f"using the cached base root file system {tarball}")
    local = f"localhost/debian-base:{SUITE}"
    tool = "podman" if engine in ("podman", "buildah") and shutil.which("podman") else engine
    if tool == "docker":
        run(["docker", "import", "--change", 'CMD ["/bin/bash"]', str(tarball), local])
        run(["docker", "tag", local, ref])
        return
    if tool == "buildah":
        raise SystemExit("importing a root file system needs podman or docker (apt-get install podman)")
    run(["podman", "import", "--change", 'CMD ["/bin/bash"]', str(tarball), local], env=containers_env())
    run(["podman", "tag", local, ref], env=containers_env())
    say(f"tagged the local Debian {SUITE} base as {ref} (no registry was reachable)")


def ensure_base(engine: str, ref: str, setup: bool) -> None:
    if image_exists(engine, ref):
        say(f"base image {ref} is in local storage")
        return
    pull = [engine, "pull", "-q", ref] if engine != "buildah" else ["buildah", "pull", "-q", ref]
    if run(pull, check=False, env=containers_env(), capture_output=True).returncode == 0:
        say(f"pulled {ref}")
        return
    say(f"could not pull {ref} (no registry reachable?)")
    make_base(engine, ref, setup)


def ca_bundle() -> str | None:
    for cand in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), os.environ.get("REQUESTS_CA_BUNDLE"),
                 "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if cand and Path(cand).is_file():
            return cand
    return None


def build_command(engine: str, kind: str, tags: list[str], base: str | None) -> list[str]:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:  # no git (inside an image, a source tarball)
        rev = ""
    args = ["-f", str(HERE / kind / "Dockerfile"), "--build-arg", f"VERSION={version()}",
            "--build-arg", f"REVISION={rev or 'unknown'}"]
    for tag in tags:
        args += ["-t", tag]
    if base:
        args += ["--build-arg", f"BASE_IMAGE={base}"]
    cert = ca_bundle()
    if cert:  # pip in the build trusts what the host trusts (the image's own bundle may lack a proxy's CA)
        args += ["--secret", f"id=pipcert,src={cert}"]
    if engine == "docker":
        return ["docker", "build", *args, str(ROOT)]
    # chroot isolation: no user namespaces or cgroup delegation needed; docker format keeps SHELL (pipefail).
    daemonless = ["--isolation", "chroot", "--pull=never", "--layers", "--format", "docker"]
    return [engine, "build" if engine == "podman" else "bud", *daemonless, *args, str(ROOT)]


def test_image(engine: str, kind: str, tag: str) -> None:
    if engine == "buildah":
        raise SystemExit("--test needs docker or podman to run the image (apt-get install podman)")
    cmd = [engine, "run", "--rm", "--network=none", tag]
    if kind == "cuda":
        cmd += ["python", "docker/cuda/smoke.py"]
    env = containers_env() if engine == "podman" else None
    run(cmd, env=env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["cpu", "cuda"])
    ap.add_argument("--engine", choices=["auto", "docker", "podman", "buildah"], default="auto")
    ap.add_argument("--base-image", help="override the Dockerfile's BASE_IMAGE (used as given, never made)")
    ap.add_argument("--no-setup", action="store_true", help="install nothing; fail when an engine or base is missing")
    ap.add_argument("--test", action="store_true", help="run the image after building it")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    engine = pick_engine(args.engine, setup=not args.no_setup)
    say(f"engine: {engine}")
    if args.base_image is None:
        ensure_base(engine, dockerfile_default_base(args.kind), setup=not args.no_setup)
    tags = [f"keydnn:{version()}-{TAG_SUFFIX[args.kind]}", SHORT_TAG[args.kind]]
    env = containers_env() if engine != "docker" else {**os.environ, "DOCKER_BUILDKIT": "1"}
    t1 = time.monotonic()
    run(build_command(engine, args.kind, tags, args.base_image), env=env)
    t2 = time.monotonic()
    say(f"built {' '.join(tags)} in {t2 - t1:.0f} s (setup {t1 - t0:.0f} s)")
    if args.test:
        test_image(engine, args.kind, tags[0])
        say(f"tested {tags[0]} in {time.monotonic() - t2:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
