"""The graph-API constants in _cudnn.py against the installed cudnn_graph.h (skipped where no header is found).

A wrong attribute number would make cuDNN refuse a descriptor (or read the wrong field), so every number the
binding uses is checked by name against the header it was taken from.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import pytest

from keydnn.infrastructure.backends.cuda import _cudnn

pytestmark = pytest.mark.cuda
HEADERS = ["/usr/include/x86_64-linux-gnu/cudnn_graph*.h", "/usr/include/cudnn_graph*.h",
           "/usr/local/cuda*/include/cudnn_graph*.h"]
PREFIXES = ("BACKEND_", "TYPE_", "ATTR_", "HEUR_MODE_", "NUMERICAL_NOTE_", "DATA_")
# Node attributes the binding reaches as offsets from each node's ALPHA.
NODE_ATTRIBUTES = {
    "ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA": ("BETA", "CONV_DESC", "W", "X", "Y"),
    "ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA": ("BETA", "CONV_DESC", "W", "DX", "DY"),
    "ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA": ("BETA", "CONV_DESC", "DW", "X", "DY"),
}


def header_enums(text: str) -> dict[str, int]:
    """NAME -> value for every enumerator of every ``typedef enum {...}`` (implicit values counted on)."""
    values: dict[str, int] = {}
    for body in re.findall(r"typedef\s+enum\s*\w*\s*\{(.*?)\}", text, re.S):
        body = re.sub(r"/\*.*?\*/|//[^\n]*", "", body, flags=re.S)
        nxt: int | None = 0
        for item in (i.strip() for i in body.split(",")):
            # NAME, NAME = value, or NAME MACRO = value (deprecation attributes sit between name and '=').
            m = re.match(r"(\w+)(?:\s+\w+)*\s*(?:=\s*(.+))?$", item, re.S)
            if not m:
                continue
            name, expr = m.groups()
            if expr is not None:
                expr = expr.strip()
                nxt = values.get(expr, int(expr, 0) if re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)", expr) else None)
            if nxt is not None:  # after an expression we cannot read, names are unknown until the next number
                values[name] = nxt
                nxt += 1
    return values


@pytest.fixture(scope="module")
def enums() -> dict[str, int]:
    paths = sorted(p for pattern in HEADERS for p in glob.glob(pattern))
    if not paths:
        pytest.skip("no cudnn_graph.h on this machine")
    return header_enums("\n".join(Path(p).read_text(errors="replace") for p in paths))


def test_constants_match_the_header(enums):
    ours = {name: value for name, value in vars(_cudnn).items()
            if name.startswith(PREFIXES) and isinstance(value, int)}
    assert len(ours) > 40
    wrong = {name: (value, enums.get("CUDNN_" + name)) for name, value in ours.items()
             if enums.get("CUDNN_" + name) != value}
    assert not wrong, f"(ours, header's): {wrong}"


def test_node_attribute_offsets_match_the_header(enums):
    for alpha, names in NODE_ATTRIBUTES.items():
        stem = alpha.removesuffix("ALPHA")
        for offset, name in enumerate(names, start=1):
            assert enums["CUDNN_" + stem + name] == getattr(_cudnn, alpha) + offset, stem + name


def test_header_parser_counts_implicit_values():
    text = ("typedef enum { A = 3, B, C = 10, D } t; typedef enum { E, F = E, G DEPRECATED = 0x10, H } u;"
            "typedef enum { I = (1 << 2), J, K = 7 } v;")
    assert header_enums(text) == {"A": 3, "B": 4, "C": 10, "D": 11, "E": 0, "F": 0, "G": 16, "H": 17, "K": 7}
