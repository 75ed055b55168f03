"""asv_bench/asv.conf.json against the asv 0.6.6 that reads it: asv accepts a misspelled key silently, so every
key must be one asv's own source reads (Config's defaults, the keys it getattr()s, or ``conf.<key>``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "asv_bench" / "asv.conf.json"

asv = pytest.importorskip("asv")


def _conf() -> dict:
    from asv import util
    return util.load_json(str(CONF), api_version=1, js_comments=True)


def keys_asv_reads() -> set[str]:
    """Config attributes asv 0.6.6 reads, collected from its installed source."""
    pkg = Path(asv.__file__).parent
    source = (pkg / "config.py").read_text()
    keys = {"version"}  # util.load_json checks the file's api version under this key
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == "Config":
            for item in ast.walk(node):
                if (isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name)
                        and item.value.id == "self" and isinstance(item.ctx, ast.Store)):
                    keys.add(item.attr)
    for path in pkg.rglob("*.py"):
        text = path.read_text()
        keys.update(re.findall(r"\bconf\.([a-z_]+)\b", text))
        keys.update(re.findall(r"getattr\(\s*(?:self\._)?conf,\s*['\"]([a-z_]+)['\"]", text))
    return keys


def test_asv_is_0_6_6():
    assert asv.__version__.startswith("0.6.6"), asv.__version__


def test_every_key_is_one_asv_reads():
    known = keys_asv_reads()
    assert {"repo", "branches", "build_command", "environment_type", "build_cache_size"} <= known
    unknown = sorted(set(_conf()) - known)
    assert not unknown, f"asv 0.6.6 ignores these asv.conf.json keys: {unknown}"


def test_a_misspelled_key_would_be_caught():
    assert "build_comand" not in keys_asv_reads() and "enviroment_type" not in keys_asv_reads()


def test_config_builds_cpu_only_wheels_from_main():
    conf = _conf()
    assert conf["repo"] == ".." and conf["branches"] == ["main"] and conf["environment_type"] == "virtualenv"
    assert conf["build_command"][0] == "python native/build.py --cpu-only"
    assert "pip wheel --no-deps --no-build-isolation -w {build_cache_dir} {build_dir}" in conf["build_command"][1]
    for key in ("env_dir", "html_dir"):  # generated: under the ignored .asv/ folder
        assert conf[key].startswith(".asv/"), conf[key]
    assert conf["results_dir"] == "results"  # committed
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".asv/" in ignored
