"""Where KeyDNN looks for cuBLAS/cuDNN: an explicit override first, then the copies the interpreter's wheels
ship (so that KeyDNN and PyTorch share one copy of each soname in a process), then the dynamic loader's own
path, then the system directories."""

from __future__ import annotations

from pathlib import Path

from keydnn.infrastructure.backends.cuda import _libsearch


def _lib(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"")
    return folder / name


def test_wheel_copy_comes_before_the_loaders_path_and_system_dirs(tmp_path, monkeypatch):
    wheel = _lib(tmp_path / "site" / "nvidia" / "cudnn" / "lib", "libcudnn.so.9")
    system = _lib(tmp_path / "usr" / "lib", "libcudnn.so.9")
    monkeypatch.setattr(_libsearch, "_site_lib_dirs", lambda: [wheel.parent])
    monkeypatch.setattr(_libsearch, "library_dirs", lambda: [system.parent])
    monkeypatch.delenv("KEYDNN_CUDNN", raising=False)
    got = _libsearch.candidates("KEYDNN_CUDNN", ["libcudnn.so.9"])
    assert got == [str(wheel), "libcudnn.so.9", str(system)]


def test_override_comes_first_and_missing_wheel_dirs_are_skipped(tmp_path, monkeypatch):
    mine = _lib(tmp_path / "mine", "libcublas.so.13")
    monkeypatch.setattr(_libsearch, "_site_lib_dirs", lambda: [tmp_path / "absent"])
    monkeypatch.setattr(_libsearch, "library_dirs", lambda: [])
    monkeypatch.setenv("KEYDNN_CUBLAS", str(mine.parent))
    assert _libsearch.candidates("KEYDNN_CUBLAS", ["libcublas.so.13"]) == [str(mine), "libcublas.so.13"]


def test_site_dirs_name_torch_and_nvidia_wheel_lib_folders():
    for d in _libsearch._site_lib_dirs():
        assert d.name == "lib" and (d.parent.name == "torch" or d.parent.parent.name == "nvidia")
