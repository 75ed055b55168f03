"""Host-side effects of a captured step. A CUDA graph replays device work only, so code whose host state
changes with every step (an optimizer's step count, a fault check's ticket) registers here what each replay
must redo. Device-neutral: the CUDA graph (backends/cuda/graphs.py) opens a recording, the optimizer and
kernels add to it, and the graph runs the hooks before each replay.
"""

from __future__ import annotations

from collections.abc import Callable

ReplayHook = Callable[[int], None]  # called with the replay's index (0 for the first replay)

_recording: list[list[ReplayHook]] = []  # the hook list of the graph being captured (at most one)


def capturing() -> bool:
    """Whether a graph is being captured now (the work being issued will not run until it is replayed)."""
    return bool(_recording)


def on_replay(hook: ReplayHook) -> None:
    """Run ``hook(replay_index)`` before every replay of the graph being captured."""
    _recording[-1].append(hook)


def collect(fn: Callable[[], object]) -> list[ReplayHook]:
    """Run ``fn`` and return the hooks it registered, taken out of the recording (for the caller to run
    them itself, with an index of its own: the optimizer passes steps-since-capture)."""
    hooks = _recording[-1]
    start = len(hooks)
    fn()
    added = hooks[start:]
    del hooks[start:]
    return added


def begin(hooks: list[ReplayHook]) -> None:
    if _recording:
        raise RuntimeError("a graph capture is already in progress")
    _recording.append(hooks)


def end() -> None:
    _recording.clear()
