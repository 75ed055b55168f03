"""Every ```python block of README.md runs alone, as written, in a fresh interpreter.

A block that cannot run here is marked in the README itself by an HTML comment on the line just above its
fence, ``<!-- not-run: why -->``, and is reported as skipped with that reason (use it sparingly: for a
fragment that continues another block, or one that needs something a test machine lacks). A block that
mentions CUDA runs only where a CUDA device is usable and is skipped elsewhere (failed under
KEYDNN_REQUIRE_CUDA=1, as the other CUDA tests are).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)[^\n]*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.+?)\s*-->\s*$")
CUDA = re.compile(r"cuda", re.IGNORECASE)


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(line number of the opening fence, code, not-run reason or None) for each python block."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        close = re.compile(rf"^ {{0,3}}{re.escape(m['fence'][0])}{{{len(m['fence'])},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
        if m["lang"].lower() in ("python", "py", "python3"):
            previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = NOT_RUN.match(previous)
            blocks.append((i + 1, "\n".join(lines[i + 1:end]) + "\n", marker["reason"] if marker else None))
        i = end + 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def _cuda_usable() -> tuple[bool, str]:
    from keydnn.infrastructure.backends import cuda

    return cuda.is_available(), cuda.unavailable_reason()


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3, "README.md lost its python examples (or this test's fence parser broke)"


def test_the_parser_reads_fences_markers_and_languages():
    text = ("intro\n```python\na = 1\n```\n<!-- not-run: needs a dataset -->\n\n```py\nb = 2\n```\n"
            "```bash\nls\n```\n~~~python\n```\nc = 3\n~~~\n")
    assert python_blocks(text) == [(2, "a = 1\n", None), (7, "b = 2\n", "needs a dataset"),
                                   (13, "```\nc = 3\n", None)]


@pytest.mark.parametrize("line, code, reason", [pytest.param(*b, id=f"line{b[0]}") for b in BLOCKS])
def test_readme_block_runs_alone(line: int, code: str, reason: str | None, tmp_path: Path):
    if reason is not None:
        pytest.skip(f"README.md line {line} is marked not-run: {reason}")
    usable, why = _cuda_usable() if CUDA.search(code) else (True, "")
    if not usable and os.environ.get("KEYDNN_REQUIRE_CUDA") == "1":
        pytest.fail(f"KEYDNN_REQUIRE_CUDA=1 but CUDA is unavailable: {why}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    # In a scratch directory, so files a block writes (checkpoints) land there.
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    last = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
    if not usable and last.startswith("keydnn.domain.errors.DeviceNotSupportedError"):
        # Without a GPU a CUDA block still runs up to its first CUDA call, so a missing import shows here too.
        pytest.skip(f"README.md line {line} ran up to its first CUDA call; CUDA is unavailable here: {why}")
    assert res.returncode == 0, (f"README.md block at line {line} failed when run alone "
                                 f"(exit {res.returncode}):\n{code}\n--- stderr ---\n{res.stderr[-3000:]}")
