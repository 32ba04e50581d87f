"""Finding, loading and describing ``libtcpserver.so`` (internal).

The library is *located* when :mod:`tcpgo` is imported (so a missing library
is an :class:`ImportError` right away) but *loaded* only on first use: the Go
runtime starts its threads when the library is loaded and does not survive
``fork()``, so a program may import :mod:`tcpgo` and then fork (for example
with :mod:`multiprocessing`) as long as the parent has not used it yet.

Search order:

1. the ``TCPGO_LIBRARY`` environment variable (a path; nothing else is tried);
2. a copy beside the package (``tcpgo/libtcpserver.so*``);
3. the path recorded by ``make install`` in ``tcpgo/_install.py``;
4. the directories of ``LD_LIBRARY_PATH`` and the system's library path
   (``ldconfig`` cache, ``/usr/local/lib``, ``/usr/lib``...);
5. ``build/lib`` of the source checkout the package lives in.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import os
import threading
from ctypes import POINTER, c_char, c_char_p, c_int, c_longlong, c_size_t, c_void_p
from pathlib import Path
from typing import Any, List, Optional

from .errors import ForkError

SONAME = "libtcpserver.so.0"
LIBNAME = "libtcpserver.so"

_HERE = Path(__file__).resolve().parent

_located: Optional[str] = None
_tried: List[str] = []
_lib: Optional[ctypes.CDLL] = None
_load_pid: int = 0
_forked: bool = False
_load_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _forked
    if _lib is not None:
        _forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _candidates() -> List[str]:
    cands: List[str] = []
    # 2. beside the package (wheels carry it as SONAME: a name that
    #    pkgutil/help() do not mistake for an extension module)
    for name in (SONAME, LIBNAME):
        cands.append(str(_HERE / name))
    # 3. recorded at install time
    try:
        from . import _install  # type: ignore[attr-defined]

        path = getattr(_install, "LIBRARY", None)
        if path:
            cands.append(str(path))
    except ImportError:
        pass
    # 4. LD_LIBRARY_PATH and the usual system directories
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += ["/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64",
             "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib"]
    for d in dirs:
        for name in (SONAME, LIBNAME):
            cands.append(os.path.join(d, name))
    # 5. a source checkout: bindings/python/tcpgo -> repo root
    root = _HERE.parent.parent.parent
    if (root / "include" / "tcpgo.h").is_file():
        cands.append(str(root / "build" / "lib" / LIBNAME))
    return cands


def locate() -> str:
    """Return the path of the library to load, or raise ImportError."""
    global _located
    if _located is not None:
        return _located
    env = os.environ.get("TCPGO_LIBRARY")
    if env:
        if os.path.isfile(env):
            _located = env
            return env
        raise ImportError(
            f"tcpgo: TCPGO_LIBRARY={env!r} does not name an existing file. "
            "Point it at libtcpserver.so (run `make` in the tcpgo checkout to build "
            "build/lib/libtcpserver.so), or unset it to use the installed library.")
    tried = []
    for c in _candidates():
        tried.append(c)
        if os.path.isfile(c):
            _located = c
            return c
    found = ctypes.util.find_library("tcpserver")
    if found:
        _located = found
        return found
    _tried[:] = tried
    raise ImportError(
        "tcpgo: cannot find the tcpgo C library (libtcpserver.so). In the tcpgo source "
        "tree run `make` to build it, then `make install` (library and Python package) or "
        "`pip install ./bindings/python` (which bundles the built library), or set "
        "TCPGO_LIBRARY=/path/to/libtcpserver.so. "
        "Looked in: " + ", ".join(dict.fromkeys(os.path.dirname(t) for t in tried)))


#: tcp_accept_fn: int (*)(void *user_data, const char *ip, int port, int local_port)
ACCEPT_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_int, c_int)
#: tcp_file_progress_fn: void (*)(void *user_data, int client_id, long long sent,
#: long long total, int status)
PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_longlong, c_longlong, c_int)
#: tcp_log_fn: void (*)(void *user_data, int level, const char *msg)
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)


class CIovec(ctypes.Structure):
    """struct tcp_iovec"""

    _fields_ = [("base", c_void_p), ("len", c_size_t)]


class CCertInfo(ctypes.Structure):
    """struct tcp_cert_info (what a certificate callback sees)"""

    _fields_ = [("client_id", c_int), ("result", c_int), ("error", c_char_p),
                ("cert_pem", c_char_p), ("chain_pem", c_char_p), ("subject", c_char_p),
                ("issuer", c_char_p), ("server_name", c_char_p)]


class CTlsInfo(ctypes.Structure):
    """struct tcp_tls_info"""

    _fields_ = [("version", c_int), ("cipher_suite", c_int), ("resumed", c_int),
                ("upgraded", c_int), ("verify_result", c_int), ("has_peer_cert", c_int)]


#: tcp_cert_check_fn: int (*)(void *user_data, const tcp_cert_info *info)
CERT_FN = ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(CCertInfo))


def _declare(lib: ctypes.CDLL) -> None:
    vp, i, sz, cp = c_void_p, c_int, c_size_t, c_char_p
    sigs: dict = {
        "tcp_version": (cp, []),
        "tcp_version_number": (i, []),
        "tcp_strerror": (cp, [i]),
        # server
        "tcp_server_new": (vp, []),
        "tcp_server_new_fragmented": (vp, [c_char, sz]),
        "tcp_server_free": (None, [vp]),
        "tcp_server_set_option": (i, [vp, i, c_longlong]),
        "tcp_server_set_option_str": (i, [vp, i, cp]),
        "tcp_server_start": (i, [vp, i]),
        "tls_server_start": (i, [vp, i, cp, cp, cp]),
        "tcp_server_port": (i, [vp]),
        "tcp_server_is_running": (i, [vp]),
        "tcp_server_stop": (None, [vp]),
        "tcp_send_msg": (i, [vp, i, cp, sz]),
        "tcp_server_broadcast": (i, [vp, cp, sz]),
        "tcp_server_close_client": (i, [vp, i]),
        "tcp_server_client_ids": (i, [vp, POINTER(c_int), sz]),
        "tcp_server_client_ip": (i, [vp, i, cp, sz]),
        "tcp_server_client_port": (i, [vp, i]),
        "get_subj_part": (i, [vp, i, i, cp, sz]),
        "tcp_server_last_error": (i, [vp, cp, sz]),
        "tcp_server_poll": (i, [vp, cp, sz, POINTER(c_size_t), i]),
        # client
        "tcp_client_new": (vp, []),
        "tcp_client_new_fragmented": (vp, [c_char, sz]),
        "tcp_client_free": (None, [vp]),
        "tcp_client_set_option": (i, [vp, i, c_longlong]),
        "tcp_client_set_option_str": (i, [vp, i, cp]),
        "tcp_client_start": (i, [vp, cp, i]),
        "tls_client_start": (i, [vp, cp, i, cp, cp, cp]),
        "tcp_client_is_running": (i, [vp]),
        "tcp_client_stop": (None, [vp]),
        "tcp_client_send": (i, [vp, cp, sz]),
        "tcp_client_server_subj_part": (i, [vp, i, cp, sz]),
        "tcp_client_local_port": (i, [vp]),
        "tcp_client_last_error": (i, [vp, cp, sz]),
        "tcp_client_poll": (i, [vp, cp, sz, POINTER(c_size_t), i]),
        # certificates
        "tcp_generate_certs": (i, [cp, cp]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    # Added to the header after 0.1.0's first build: used when present.
    optional: dict = {
        "tcp_client_flush": (i, [vp, i]),
        "tcp_server_flush": (i, [vp, i, i]),
        "tcp_server_send_batch": (i, [vp, cp, sz, sz]),
        # connection control, flow control, close reasons, per-thread errors
        "tcp_errcode": (i, []),
        "tcp_errno": (i, []),
        "tcp_errmsg": (i, [cp, sz]),
        "tcp_close_reason_str": (cp, [i]),
        "tcp_raise_fd_limit": (c_longlong, []),
        "tcp_server_set_on_accept": (None, [vp, ACCEPT_FN, vp]),
        "tcp_server_set_allowed": (i, [vp, cp]),
        "tcp_server_set_blocked": (i, [vp, cp]),
        "tcp_server_send_ex": (i, [vp, i, cp, sz]),
        "tcp_server_queued": (c_longlong, [vp, i]),
        "tcp_server_pause": (i, [vp, i]),
        "tcp_server_resume": (i, [vp, i]),
        "tcp_server_set_idle_timeout": (i, [vp, i, i]),
        "tcp_server_stop_listening": (i, [vp]),
        "tcp_server_shutdown": (i, [vp, i]),
        "tcp_server_get_stats": (i, [vp, vp, sz]),
        "tcp_server_conn_stats": (i, [vp, i, vp, sz]),
        "tcp_client_send_ex": (i, [vp, cp, sz]),
        "tcp_client_queued": (c_longlong, [vp]),
        "tcp_client_pause": (i, [vp]),
        "tcp_client_resume": (i, [vp]),
        "tcp_client_conn_stats": (i, [vp, vp, sz]),
        "tcp_server_proxy_tlv": (i, [vp, i, i, cp, sz]),
        # framings (issue 11)
        "tcp_server_new_length_prefixed": (vp, [i, i, sz]),
        "tcp_server_new_eol": (vp, [cp, sz, sz, i]),
        "tcp_server_new_lines": (vp, [cp, sz, i]),
        "tcp_server_new_records": (vp, [sz, sz]),
        "tcp_server_set_record_length": (i, [vp, i, sz]),
        "tcp_client_new_length_prefixed": (vp, [i, i, sz]),
        "tcp_client_new_eol": (vp, [cp, sz, sz, i]),
        "tcp_client_new_lines": (vp, [cp, sz, i]),
        "tcp_client_new_records": (vp, [sz, sz]),
        "tcp_client_set_record_length": (i, [vp, sz]),
        # an eventfd for a host event loop (tcpgo.aio's loop.add_reader)
        "tcp_server_event_fd": (i, [vp]),
        "tcp_client_event_fd": (i, [vp]),
        # sending
        "tcp_server_send_file": (i, [vp, i, cp, c_longlong, c_longlong, PROGRESS_FN, vp]),
        "tcp_server_sendv": (i, [vp, i, POINTER(CIovec), i]),
        "tcp_server_send_line": (i, [vp, i, cp]),
        "tcp_client_send_file": (i, [vp, cp, c_longlong, c_longlong, PROGRESS_FN, vp]),
        "tcp_client_sendv": (i, [vp, POINTER(CIovec), i]),
        "tcp_client_send_line": (i, [vp, cp]),
        # batches (tcp_msg arrays are passed by address: see client.send_many)
        "tcp_client_send_msgs": (i, [vp, vp, sz]),
        # logging
        "tcp_set_log": (None, [LOG_FN, vp, i]),
        # TLS settings and information
        "tls_server_start_pem": (i, [vp, i, cp, cp, cp]),
        "tls_client_start_pem": (i, [vp, cp, i, cp, cp, cp]),
        "tcp_server_tls_certificate": (i, [vp, cp, sz]),
        "tcp_server_set_on_cert": (None, [vp, CERT_FN, vp]),
        "tcp_client_set_on_cert": (None, [vp, CERT_FN, vp]),
        "tcp_server_tls_info": (i, [vp, i, POINTER(CTlsInfo), sz]),
        "tcp_client_tls_info": (i, [vp, POINTER(CTlsInfo), sz]),
        "tcp_server_tls_str": (i, [vp, i, i, cp, sz]),
        "tcp_client_tls_str": (i, [vp, i, cp, sz]),
        "tcp_server_add_cert": (i, [vp, cp, cp, cp, i]),
        "tcp_server_reload_cert": (i, [vp, cp, cp, i]),
        "tcp_server_set_starttls": (i, [vp, cp, cp, cp, i]),
        "tcp_server_starttls": (i, [vp, i, cp, sz]),
        "tcp_client_starttls": (i, [vp, cp, cp, cp, i]),
    }
    for name, (res, args) in optional.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            continue
        fn.restype = res
        fn.argtypes = args
    _check_failures(lib)


class Failure(int):
    """The result of a failed start call, carrying the calling thread's OS
    error number (``tcp_errno()``, 0 for none) read right after the call on
    the thread that made it -- so it survives being handed to another thread."""

    errno: int = 0


def _check_failures(lib: ctypes.CDLL) -> None:
    """Read the OS error number (tcp_errno) right after a start call fails,
    on its thread; a library without tcp_errno is left as it is."""
    try:
        errno_fn = lib.tcp_errno
    except AttributeError:
        return
    errno_fn.restype, errno_fn.argtypes = c_int, []

    def start_checked(result: int, func: Any, args: Any) -> int:
        if result == 0:
            return result
        failed = Failure(result)
        failed.errno = errno_fn()
        return failed

    for name in ("tcp_server_start", "tls_server_start", "tcp_client_start", "tls_client_start",
                 "tls_server_start_pem", "tls_client_start_pem", "tcp_client_starttls"):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.errcheck = start_checked


def thread_error() -> "tuple[int, int, str]":
    """(code, errno, reason) of this thread's last library call that can fail
    (``tcp_errcode``, ``tcp_errno``, ``tcp_errmsg``); (0, 0, "") when the
    library predates them. Call it right after the failing call."""
    L = lib()
    if not hasattr(L, "tcp_errno"):
        return 0, 0, ""
    code, err = L.tcp_errcode(), L.tcp_errno()
    return code, err, read_string(L.tcp_errmsg)[1]


def has(name: str) -> bool:
    """True when the loaded library exports the (optional) function ``name``."""
    try:
        getattr(lib(), name)
        return True
    except AttributeError:
        return False


def lib() -> Any:
    """The loaded library (loading it on first use).

    Raises :class:`tcpgo.ForkError` in a child process forked after the
    library was loaded.
    """
    L = _lib
    if L is not None and not _forked:
        return L
    return _load()


def _load() -> ctypes.CDLL:
    global _lib, _load_pid
    with _load_lock:
        if _lib is not None:
            check_fork()
            return _lib
        path = locate()
        try:
            L = ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(f"tcpgo: cannot load {path}: {e}") from e
        try:
            _declare(L)
        except AttributeError as e:
            raise ImportError(f"tcpgo: {path} lacks a function tcpgo needs ({e}); "
                              "is it an older libtcpserver.so?") from e
        _load_pid = os.getpid()
        _lib = L
        _forward_log(L)
        return L


# Library log levels (enum tcp_log_level) -> logging levels.
_LOG_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}
_log_fn: Any = None  # the ctypes callback, alive while the library may call it


def _log_line(_user: Any, level: int, msg: Optional[bytes]) -> None:
    """tcp_log_fn: a library log line to the "tcpgo" logger (any library thread)."""
    try:
        if _exiting:
            return
        lvl = _LOG_LEVELS.get(level, logging.INFO)
        log = logging.getLogger("tcpgo")
        if log.isEnabledFor(lvl):
            log.log(lvl, "%s", msg.decode("utf-8", "replace") if msg else "")
    except BaseException:  # never unwind into the library
        pass


_exiting = False


def _stop_log() -> None:
    global _exiting
    _exiting = True
    L = _lib
    if L is not None and _log_fn is not None and not forked():
        try:
            L.tcp_set_log(LOG_FN(0), None, 0)
        except Exception:  # pragma: no cover
            pass


def _forward_log(L: Any) -> None:
    """Send the library's log lines (tcp_set_log) to the logger "tcpgo", at
    every level: the logger's own level decides what is kept. Not when the
    environment variable TCPGO_LOG is set: the library then prints to stderr
    itself, as documented in tcpgo.h."""
    global _log_fn
    if os.environ.get("TCPGO_LOG") or not hasattr(L, "tcp_set_log"):
        return
    _log_fn = LOG_FN(_log_line)
    L.tcp_set_log(_log_fn, None, 4)
    atexit.register(_stop_log)


def check_fork() -> None:
    """Raise ForkError if this process is a fork of the one that loaded the library."""
    global _forked
    if _lib is None:
        return
    if _forked or os.getpid() != _load_pid:
        _forked = True
        raise ForkError(
            "tcpgo cannot be used in a process forked after the library was loaded "
            f"(loaded in pid {_load_pid}, this is pid {os.getpid()}): the Go runtime does "
            "not survive fork(). Use the 'spawn' or 'forkserver' multiprocessing start "
            "method, or import and use tcpgo only in the child.")


def is_loaded() -> bool:
    return _lib is not None


def forked() -> bool:
    """True in a child forked after the library was loaded (no library call allowed)."""
    return _lib is not None and (_forked or os.getpid() != _load_pid)


def loaded_path() -> Optional[str]:
    return _located if _lib is not None else None


def read_string(fn: Any, *args: Any) -> "tuple[int, str]":
    """Call a (…, buf, buflen) function of the library, growing the buffer.

    Returns (code, text): code is the function's result (negative on error,
    when text is "").
    """
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        n = fn(*args, buf, size)
        if n < 0:
            return n, ""
        if n < size:
            return n, buf.raw[:n].decode("utf-8", "replace")
        size = n + 1
