"""Files and scatter-gather sends (internal machinery of ``send_file`` and
``sendv``; the public type is :class:`FileTransfer`)."""

from __future__ import annotations

import concurrent.futures
import ctypes
import itertools
import os
import threading
from typing import Any, Callable, Dict, Generator, Optional, Sequence, Tuple, Union

from . import _lib
from .errors import ErrorCode, SendError

__all__ = ["FileTransfer", "ProgressHandler"]

#: ``progress(sent, total)``: bytes of the file written so far, of ``total``.
ProgressHandler = Callable[[int, int], Any]

Buffer = Union[bytes, bytearray, memoryview, str]


class FileTransfer:
    """A file queued with ``send_file()``: it is written when its turn in the
    connection's send queue comes, by the library (``sendfile(2)`` for plain
    TCP). Use it like a :class:`concurrent.futures.Future`:
    :meth:`result` waits and returns the bytes sent (or raises
    :class:`tcpgo.SendError` when the file was not sent whole, e.g. the
    connection closed); in asyncio code ``await transfer`` does the same.

    ``progress(sent, total)``, when given to ``send_file``, is called about
    every MiB and once at the end with ``sent == total``. With the synchronous
    classes it runs on a library thread (keep it short, do not block); with
    :mod:`tcpgo.aio` on the event loop. An exception in it is logged.
    """

    def __init__(self, path: str, total: int, progress: Optional[ProgressHandler],
                 call: Optional[Callable[..., Any]] = None) -> None:
        self.path = path
        #: Bytes of the file to send.
        self.total = total
        #: Bytes written so far (updated about every MiB).
        self.sent = 0
        self._progress = progress
        self._call = call  # runs the progress handler elsewhere (aio: the loop)
        self._future: "concurrent.futures.Future[int]" = concurrent.futures.Future()

    def done(self) -> bool:
        """True once the file was written whole or the send failed."""
        return self._future.done()

    def result(self, timeout: Optional[float] = None) -> int:
        """Wait up to ``timeout`` seconds (None: no limit) and return the bytes
        sent; raises :class:`tcpgo.SendError` when the file was not sent
        whole, :class:`TimeoutError` when not finished in time."""
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"{self.path}: not sent within {timeout:g} s") from None

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """The :class:`tcpgo.SendError` of a failed transfer, else None (waits like :meth:`result`)."""
        try:
            return self._future.exception(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"{self.path}: not sent within {timeout:g} s") from None

    def add_done_callback(self, fn: Callable[["FileTransfer"], Any]) -> None:
        """Call ``fn(transfer)`` when it is done (on the library thread that
        finished it, or at once if already done)."""
        self._future.add_done_callback(lambda _f: fn(self))

    def __await__(self) -> Generator[Any, None, int]:
        import asyncio

        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        state = "done" if self.done() else f"{self.sent}/{self.total}"
        return f"<FileTransfer {self.path!r} {state}>"

    # -- library thread ----------------------------------------------------
    def _report(self, sent: int, total: int, status: int) -> None:
        if status == 1:
            self.sent = sent
            self._notify(sent, self.total)
            return
        if status == 0:
            last, self.sent = self.sent, self.total
            if last != self.total or self.total == 0:
                self._notify(self.total, self.total)
            self._future.set_result(self.total)
            return
        from ._core import send_error, strerror

        self._future.set_exception(send_error(
            status, f"{self.path}: not sent whole ({self.sent} of {self.total} bytes written): "
                    f"{strerror(status)}", strerror(status)))

    def _notify(self, sent: int, total: int) -> None:
        h = self._progress
        if h is None:
            return
        if self._call is not None:
            self._call(self._run_progress, h, sent, total)
        else:
            self._run_progress(h, sent, total)

    def _run_progress(self, h: ProgressHandler, sent: int, total: int) -> None:
        try:
            h(sent, total)
        except BaseException:
            from ._core import logger

            logger.exception("exception in the progress handler of %r", self)


# One ctypes callback for every transfer of the process; user_data is a key.
_transfers: Dict[int, FileTransfer] = {}
_transfers_lock = threading.Lock()
_keys = itertools.count(1)


def _on_progress(user: Optional[int], _client_id: int, sent: int, total: int, status: int) -> None:
    try:
        with _transfers_lock:
            t = _transfers.get(user or 0)
            if t is not None and status != 1:
                del _transfers[user or 0]
        if t is not None:
            t._report(sent, total, status)
    except BaseException:  # never unwind into the library
        pass


_progress_fn: Any = None


def _progress_callback() -> Any:
    global _progress_fn
    if _progress_fn is None:
        _progress_fn = _lib.PROGRESS_FN(_on_progress)
    return _progress_fn


def file_size_to_send(path: "Union[str, os.PathLike[str]]", offset: int,
                      length: Optional[int]) -> Tuple[bytes, int, int]:
    """(encoded path, offset, length for the library) with Python's checks:
    ValueError for bad numbers, FileNotFoundError & co from os.stat."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative int, got {offset!r}")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int)
                               or length < 0):
        raise ValueError(f"length must be a non-negative int or None, got {length!r}")
    p = os.fspath(path)
    size = os.stat(p).st_size
    if offset > size:
        raise ValueError(f"offset {offset} is past the end of {p} ({size} bytes)")
    total = size - offset if length is None else length
    if offset + total > size:
        raise ValueError(f"{total} bytes from offset {offset} pass the end of {p} ({size} bytes)")
    return os.fsencode(p), offset, total


def start_file(send: Callable[[bytes, int, int, Any, Any], int], path: Any, offset: int,
               length: Optional[int], progress: Optional[ProgressHandler],
               call: Optional[Callable[..., Any]], fail: Callable[[int, str], BaseException]
               ) -> FileTransfer:
    """Register a transfer and call ``send(path, offset, length, fn, key)``
    (the library's send_file with its handle and id bound); ``fail(rc,
    path)`` builds the exception for a refusal."""
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable: progress(sent, total)")
    bpath, offset, total = file_size_to_send(path, offset, length)
    t = FileTransfer(os.fsdecode(bpath), total, progress, call)
    key = next(_keys)
    with _transfers_lock:
        _transfers[key] = t
    try:
        rc = send(bpath, offset, total, _progress_callback(), key)
    except BaseException:
        with _transfers_lock:
            _transfers.pop(key, None)
        raise
    if rc != 0:
        with _transfers_lock:
            _transfers.pop(key, None)
        raise fail(rc, t.path)
    return t


def iovec_array(buffers: Sequence[Buffer]) -> Tuple[Any, int, list]:
    """(tcp_iovec array, count, objects to keep alive during the call)."""
    from ._core import as_bytes

    if isinstance(buffers, (bytes, bytearray, memoryview, str)):
        raise TypeError("sendv takes a sequence of buffers; use send() for one")
    items = [as_bytes(b) if not isinstance(b, bytes) else b for b in buffers]
    arr = (_lib.CIovec * max(1, len(items)))()
    keep = []
    for i, b in enumerate(items):
        cb = ctypes.c_char_p(b)
        keep.append(cb)
        arr[i].base = ctypes.cast(cb, ctypes.c_void_p)
        arr[i].len = len(b)
    return arr, len(items), keep


def line_bytes(line: Buffer) -> bytes:
    """A line for send_line: str as UTF-8; NUL cannot be sent (C string)."""
    from ._core import as_bytes

    b = as_bytes(line)
    if b"\0" in b:
        raise ValueError("a line sent with send_line cannot hold NUL bytes; use send()")
    return b


#: Refusals that are the caller's mistake (as send() raises ValueError for them).
_VALUE_ERRORS = frozenset((int(ErrorCode.CONTAINS_DELIMITER), int(ErrorCode.MESSAGE_TOO_LONG),
                           int(ErrorCode.INVALID_ARG)))


def refusal(rc: int, what: str, reason: str) -> Exception:
    """The exception for a send_file/sendv/send_line the library refused:
    ValueError for what the framing cannot carry, else SendError (.code)."""
    from ._core import send_error, strerror

    reason = reason or strerror(rc)
    if rc in _VALUE_ERRORS:
        return ValueError(f"{what}: {reason}")
    return send_error(rc, f"{what}: {reason}", reason)
