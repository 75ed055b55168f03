"""The process's default group (set by ``init_process_group``)."""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import DistributedError

_default: Any = None


def group(op: str) -> Any:
    if _default is None:
        raise DistributedError(f"{op}: no process group; call keydnn.distributed.init_process_group() first "
                               "(and start the script with python -m keydnn.distributed.run --nproc N)")
    return _default


def set_group(g: Any) -> None:
    global _default
    _default = g
