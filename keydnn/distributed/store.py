"""Rendezvous and the host transport between ranks: rank 0 listens on MASTER_ADDR:MASTER_PORT, every other
rank connects to it (a star). Messages are pickled Python objects (stdlib ``multiprocessing.connection``).

Every receive has a timeout, and a peer that exits closes its connection, so a failing rank makes the others
raise DistributedError instead of hanging.
"""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from keydnn.domain.errors import DistributedError

DEFAULT_TIMEOUT = 300.0


class Store:
    """The connections of one rank: rank 0 holds one per other rank, the others one to rank 0."""

    def __init__(self, rank: int, world_size: int, addr: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise DistributedError(f"init_process_group: rank {rank} outside world of size {world_size}")
        self.rank, self.world_size, self.timeout = rank, world_size, float(timeout)
        self.peers: dict[int, Connection] = {}
        authkey = os.environ.get("KEYDNN_DIST_AUTHKEY", f"keydnn-{port}").encode()
        if world_size == 1:
            return
        if rank == 0:
            self._accept(addr, port, authkey)
        else:
            self._connect(addr, port, authkey)

    def _accept(self, addr: str, port: int, authkey: bytes) -> None:
        with Listener((addr, port), authkey=authkey, backlog=self.world_size) as listener:
            deadline = time.monotonic() + self.timeout
            sock = getattr(getattr(listener, "_listener", None), "_socket", None)
            if sock is not None:  # accept() must not wait forever (CPython's SocketListener holds the socket)
                sock.settimeout(self.timeout)
            while len(self.peers) < self.world_size - 1:
                if time.monotonic() > deadline:
                    raise DistributedError(f"rank 0: only ranks {sorted(self.peers)} joined within "
                                           f"{self.timeout:.0f} s (world size {self.world_size})")
                try:
                    conn = listener.accept()
                except OSError as exc:
                    raise DistributedError(f"rank 0: waiting for ranks to join: {exc}") from None
                self.peers[int(conn.recv())] = conn

    def _connect(self, addr: str, port: int, authkey: bytes) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn = Client((addr, port), authkey=authkey)
                break
            except (ConnectionRefusedError, FileNotFoundError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise DistributedError(f"rank {self.rank}: cannot reach rank 0 at {addr}:{port} "
                                           f"within {self.timeout:.0f} s ({exc})") from None
                time.sleep(0.05)
        conn.send(self.rank)
        self.peers[0] = conn

    # ---- point to point -------------------------------------------------------------------------------
    def send(self, peer: int, obj: Any) -> None:
        try:
            self.peers[peer].send(obj)
        except (OSError, EOFError) as exc:
            raise DistributedError(f"rank {self.rank}: rank {peer} is gone ({exc})") from None

    def recv(self, peer: int) -> Any:
        conn = self.peers[peer]
        try:
            if not conn.poll(self.timeout):
                raise DistributedError(f"rank {self.rank}: no message from rank {peer} within "
                                       f"{self.timeout:.0f} s (a rank is stuck or diverged)")
            msg = conn.recv()
        except (OSError, EOFError):
            raise DistributedError(f"rank {self.rank}: rank {peer} exited or closed its connection") from None
        if isinstance(msg, _Failure):
            raise DistributedError(f"rank {self.rank}: rank {msg.rank} failed: {msg.reason}")
        return msg

    # ---- through rank 0 -------------------------------------------------------------------------------
    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` in rank order, on rank 0 (None elsewhere)."""
        if self.rank != 0:
            self.send(0, obj)
            return None
        return [obj] + [self.recv(r) for r in range(1, self.world_size)]

    def bcast(self, obj: Any = None) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.rank == 0:
            for r in range(1, self.world_size):
                self.send(r, obj)
            return obj
        return self.recv(0)

    def fail(self, reason: str) -> None:
        """Tell the peers this rank is failing, so they raise at once instead of at their timeout."""
        for peer in list(self.peers):
            try:
                self.peers[peer].send(_Failure(self.rank, reason))
            except (OSError, EOFError):
                pass

    def close(self) -> None:
        for conn in self.peers.values():
            conn.close()
        self.peers.clear()


class _Failure:
    def __init__(self, rank: int, reason: str) -> None:
        self.rank, self.reason = rank, reason
