"""Checks a KeyDNN shared library before it is dlopen'ed, so a damaged file is a clean load error, not a crash.

A truncated library (an interrupted build or copy) can pass dlopen and then kill the process with SIGBUS
when a page past the end of the file is first touched. Two checks run before loading:

- the ELF structure: every loadable segment and the section headers must lie inside the file (catches a
  truncated file without any manifest);
- the build manifest: ``build_info.json`` beside the library records the size and sha256 that
  ``native/build.py`` produced; a library that differs was truncated, corrupted or replaced.

``problem(path, key)`` returns what is wrong, or None when the library may be loaded.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

REBUILD = "rebuild it with `nox -s build_native` or `python native/build.py`"
_PT_LOAD = 1


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def elf_problem(path: Path) -> str | None:
    """What makes ``path`` an incomplete ELF file (a segment or the section headers past its end), or None."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF":
            return f"is not an ELF shared library ({size} bytes)"
        if ident[4] != 2:  # ELFCLASS64; KeyDNN builds only 64-bit libraries
            return "is not a 64-bit ELF library"
        order = "<" if ident[5] == 1 else ">"
        phoff, shoff = struct.unpack_from(order + "QQ", ident, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", ident, 54)
        ends = {"the program headers": phoff + phentsize * phnum, "the section headers": shoff + shentsize * shnum}
        for what, end in ends.items():
            if end > size:
                return f"is truncated: {what} end at byte {end}, the file has {size}"
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(order + "IIQQQQ", table, i * phentsize)
        if p_type == _PT_LOAD and p_offset + p_filesz > size:
            return f"is truncated: segment {i} ends at byte {p_offset + p_filesz}, the file has {size}"
    return None


def manifest_problem(path: Path, key: str) -> str | None:
    """A mismatch between ``path`` and the size/sha256 that build_info.json records under ``key``, or None
    (also None when no manifest or no record exists: a library built by hand is checked by its ELF only)."""
    manifest = path.parent / "build_info.json"
    try:
        entry = json.loads(manifest.read_text()).get(key, {})
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(entry, dict) or entry.get("path") != path.name:
        return None
    size = path.stat().st_size
    if "size" in entry and entry["size"] != size:
        return f"is {size} bytes, but {manifest.name} records {entry['size']} (truncated or replaced)"
    if "sha256" in entry and entry["sha256"] != sha256(path):
        return f"does not match the sha256 in {manifest.name} (corrupted or replaced)"
    return None


def problem(path: Path, key: str) -> str | None:
    """Why the library at ``path`` must not be loaded (a sentence naming it and the fix), or None."""
    try:
        reason = elf_problem(path) or manifest_problem(path, key)
    except OSError as exc:
        reason = f"cannot be read ({exc})"
    return f"{path} {reason}; {REBUILD}" if reason else None
