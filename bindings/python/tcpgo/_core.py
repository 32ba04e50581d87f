"""Machinery shared by servers and clients (internal).

Events reach Python through the library's event queue (``TCP_OPT_EVENT_QUEUE``):
one dispatcher thread per running server or client calls ``tcp_*_poll`` with
a short timeout, receives many packed event records at once, and calls the
user's handlers in order. No C-to-Python callback is ever made, so nothing
can call into a half-finalised interpreter, and the per-message cost is a
few hundred nanoseconds of Python instead of a ctypes callback.
"""

from __future__ import annotations

import atexit
import ctypes
import enum
import logging
import struct
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, TypeVar, Union

from . import _lib
from .errors import Error, ErrorCode, NotRunningError, PeerError, SendError, StartError

logger = logging.getLogger("tcpgo")

# Event kinds and the packed record header of tcp_*_poll (native byte order).
EV_ESTABLISHED = 1
EV_MESSAGE = 2
EV_CLOSED = 3
EV_ERROR = 4
HEADER = struct.Struct("=iiiI")
HEADER_SIZE = HEADER.size  # 16 == TCP_EVENT_HEADER_SIZE
assert HEADER_SIZE == 16

# Options (enum tcp_option).
OPT_TLS_MIN_VERSION = 1
OPT_REQUIRE_CLIENT_CERT = 2
OPT_VERIFY_MODE = 3
OPT_CONNECT_TIMEOUT_MS = 4
OPT_NODELAY = 5
OPT_SEND_QUEUE_LIMIT = 6
OPT_EVENT_QUEUE = 7
OPT_EVENT_QUEUE_LIMIT = 8
OPT_REUSEPORT = 9
OPT_LINGER_MS = 10
OPT_BIND_ADDRESS = 100

POLL_TIMEOUT_MS = 50
INITIAL_POLL_BUFFER = 256 * 1024

Data = Union[bytes, bytearray, memoryview, str]
F = TypeVar("F", bound=Callable[..., Any])


class Nid(enum.IntEnum):
    """Certificate subject fields, by OpenSSL NID (``TCP_NID_*``)."""

    COMMON_NAME = 13
    COUNTRY_NAME = 14
    LOCALITY_NAME = 15
    STATE_OR_PROVINCE_NAME = 16
    ORGANIZATION_NAME = 17
    ORGANIZATIONAL_UNIT_NAME = 18
    EMAIL_ADDRESS = 48
    SERIAL_NUMBER = 105


#: Short names used as keys by ``peer_subject()`` / ``server_subject()``.
SUBJECT_SHORT_NAMES: Dict[Nid, str] = {
    Nid.COMMON_NAME: "CN",
    Nid.COUNTRY_NAME: "C",
    Nid.LOCALITY_NAME: "L",
    Nid.STATE_OR_PROVINCE_NAME: "ST",
    Nid.ORGANIZATION_NAME: "O",
    Nid.ORGANIZATIONAL_UNIT_NAME: "OU",
    Nid.EMAIL_ADDRESS: "emailAddress",
    Nid.SERIAL_NUMBER: "serialNumber",
}

_FIELD_ALIASES: Dict[str, Nid] = {}
for _nid, _short in SUBJECT_SHORT_NAMES.items():
    _FIELD_ALIASES[_short.lower()] = _nid
    _FIELD_ALIASES[_nid.name.lower().replace("_", "")] = _nid
_FIELD_ALIASES.update({"commonname": Nid.COMMON_NAME, "country": Nid.COUNTRY_NAME,
                       "locality": Nid.LOCALITY_NAME, "state": Nid.STATE_OR_PROVINCE_NAME,
                       "stateorprovince": Nid.STATE_OR_PROVINCE_NAME,
                       "organization": Nid.ORGANIZATION_NAME,
                       "organizationalunit": Nid.ORGANIZATIONAL_UNIT_NAME,
                       "email": Nid.EMAIL_ADDRESS, "serial": Nid.SERIAL_NUMBER})


def field_nid(field: Union[str, int]) -> int:
    """Turn a subject field name ("CN", "commonName", "O"...) or NID into a NID."""
    if isinstance(field, bool):
        raise TypeError("subject field must be a name or a NID, not bool")
    if isinstance(field, int):
        return int(field)
    if isinstance(field, str):
        key = field.replace("_", "").replace("-", "").replace(" ", "").lower()
        try:
            return int(_FIELD_ALIASES[key])
        except KeyError:
            raise ValueError(f"unknown certificate subject field {field!r}; use one of "
                             f"{', '.join(SUBJECT_SHORT_NAMES.values())} or a tcpgo.Nid") from None
    raise TypeError(f"subject field must be a name or a NID, not {type(field).__name__}")


def as_bytes(data: Data) -> bytes:
    """bytes as they are; str encoded as UTF-8; other buffers copied."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be bytes, bytearray, memoryview or str, not {type(data).__name__}")


def parse_delimiter(delimiter: Union[bytes, str, int, None]) -> Optional[bytes]:
    if delimiter is None:
        return None
    if isinstance(delimiter, bool):
        raise TypeError("delimiter must be one byte, a one-character str, an int or None")
    if isinstance(delimiter, int):
        if not 0 <= delimiter <= 255:
            raise ValueError(f"delimiter {delimiter} is not a byte value (0..255)")
        return bytes([delimiter])
    if isinstance(delimiter, str):
        b = delimiter.encode("utf-8")
    elif isinstance(delimiter, (bytes, bytearray)):
        b = bytes(delimiter)
    else:
        raise TypeError("delimiter must be one byte, a one-character str, an int or None")
    if len(b) != 1:
        raise ValueError(f"delimiter must be exactly one byte, got {delimiter!r}")
    return b


def check_port(port: Any, *, client: bool) -> int:
    from .errors import InvalidPortError, StartCode

    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    low = 1 if client else 0
    if not low <= port <= 65535:
        raise InvalidPortError(StartCode.WRONG_PORT,
                               f"invalid port {port}: must be in {low}..65535")
    return port


def check_limit(name: str, value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def seconds_to_ms(seconds: Optional[float]) -> int:
    if seconds is None:
        return 0
    if seconds < 0:
        raise ValueError("timeout must be >= 0 seconds (0 = no limit)")
    ms = int(round(seconds * 1000))
    return max(ms, 1) if seconds > 0 else 0


def option_error(rc: int, option: int, value: Any, reason: str) -> Exception:
    if rc == ErrorCode.ALREADY_RUNNING:
        return StartError(rc, f"option {option} cannot be changed while running")
    if rc == ErrorCode.UNKNOWN_OPTION:
        return StartError(rc, f"the loaded libtcpserver does not know option {option}; "
                              "is it older than this tcpgo package?")
    return ValueError(f"bad value {value!r} for option {option}" + (f": {reason}" if reason else ""))


def subject_dict(part: Callable[[Nid], Optional[str]]) -> Dict[str, str]:
    """Every known subject field for which ``part(nid)`` is not None, keyed by short name."""
    out: Dict[str, str] = {}
    for nid, short in SUBJECT_SHORT_NAMES.items():
        v = part(nid)
        if v is not None:
            out[short] = v
    return out


def parse_events(data: bytes, n: int) -> List[Tuple[int, int, int, bytes]]:
    """Split n packed records into (kind, client_id, code, payload) tuples."""
    out = []
    off = 0
    unpack = HEADER.unpack_from
    for _ in range(n):
        kind, cid, code, ln = unpack(data, off)
        off += HEADER_SIZE
        out.append((kind, cid, code, data[off:off + ln]))
        off += ln
    return out


# ---------------------------------------------------------------------------
# Process-wide state: running endpoints, interpreter exit.
# ---------------------------------------------------------------------------

_running: Set["Endpoint"] = set()
_running_lock = threading.Lock()
_exiting = False


def _running_endpoints() -> List["Endpoint"]:
    """A snapshot of the running endpoints; none in a forked child."""
    if _lib.forked():
        return []
    with _running_lock:
        return list(_running)


def stop_all() -> None:
    """Stop every running tcpgo server and client of this process.

    Called automatically at interpreter exit (then without running any more
    handlers). Does nothing in a forked child.
    """
    for ep in _running_endpoints():
        try:
            ep.stop()
        except Exception:  # pragma: no cover - best effort
            logger.debug("stop_all: %r", ep, exc_info=True)


def _at_exit() -> None:
    global _exiting
    _exiting = True  # dispatchers drop the events still queued
    for ep in _running_endpoints():
        try:
            ep._stop_at_exit()
        except Exception:  # pragma: no cover
            pass


atexit.register(_at_exit)


def _free_handle(free_name: str, handle: ctypes.c_void_p) -> None:
    """weakref.finalize callback: release a C handle (never in a forked child)."""
    if not handle or _lib.forked() or not _lib.is_loaded():
        return
    try:
        getattr(_lib.lib(), free_name)(handle)
    except Exception:  # pragma: no cover
        pass


def is_exiting() -> bool:
    return _exiting


class Endpoint:
    """Base of servers and clients: the handle, its options, the dispatcher
    thread, and what servers and clients do alike (closing, send failures...)."""

    _kind = "endpoint"
    # The subclass's library functions (tcp_server_*, tcp_client_*).
    _new_name = ""  # "<_new_name>_fragmented" creates a handle in fragmented mode
    _free_name = ""
    _set_option_name = ""
    _is_running_name = ""
    _flush_name = ""
    _poll_name = ""
    _last_error_name = ""
    _stop_name = ""

    # Certificate files of the TLS subclasses, named in start errors (None for TCP).
    _ca: Optional[str] = None
    _cert: Optional[str] = None
    _key: Optional[str] = None

    def __init__(self) -> None:
        self._h: Optional[ctypes.c_void_p] = None
        self._lock = threading.RLock()
        self._thread: Optional[threading.Thread] = None
        self._done = threading.Event()
        self._done.set()
        self._on_error: Optional[Callable[..., Any]] = None

    # -- construction (from the subclasses' __init__) ------------------------
    def _set_framing(self, delimiter: Union[bytes, str, int, None], max_len: int) -> None:
        """Check and keep the delimiter (None: continuous mode) and max_len."""
        self._delimiter = parse_delimiter(delimiter)
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
            raise ValueError(f"max_len must be a non-negative int, got {max_len!r}")
        self._max_len = max_len or 16 * 1024 * 1024

    def _create_handle(self, max_len: int, nodelay: bool) -> None:
        """Create the library handle (freed by a finalizer) in event-queue mode.

        ``max_len`` is passed to the library as given (0: its default)."""
        L = _lib.lib()
        if self._delimiter is None:
            ptr = getattr(L, self._new_name)()
        else:
            ptr = getattr(L, self._new_name + "_fragmented")(self._delimiter, max_len)
        if not ptr:
            raise MemoryError(f"{self._new_name} failed")
        self._h = ctypes.c_void_p(ptr)
        self._finalizer = weakref.finalize(self, _free_handle, self._free_name, self._h)
        self._finalizer.atexit = False
        self._set_option(OPT_EVENT_QUEUE, 1)
        self._set_option(OPT_NODELAY, 1 if nodelay else 0)

    def _set_queue_options(self, send_queue_limit: Optional[int],
                           event_queue_limit: Optional[int], linger: Optional[float]) -> None:
        if check_limit("send_queue_limit", send_queue_limit) is not None:
            self._set_option(OPT_SEND_QUEUE_LIMIT, send_queue_limit)  # type: ignore[arg-type]
        if check_limit("event_queue_limit", event_queue_limit) is not None:
            self._set_option(OPT_EVENT_QUEUE_LIMIT, event_queue_limit)  # type: ignore[arg-type]
        if linger is not None:
            self._set_option(OPT_LINGER_MS, seconds_to_ms(linger))

    def _set_option(self, option: int, value: int) -> None:
        rc = getattr(_lib.lib(), self._set_option_name)(self._handle(), option, value)
        if rc != 0:
            raise option_error(rc, option, value, self._last_error())

    # -- handlers ----------------------------------------------------------
    def _call_handler(self, event: str, h: Optional[Callable[..., Any]], *args: Any) -> None:
        """Run ``h(*args)`` if a handler is set; if it raises, on_error gets the
        same args (so only for handlers that take no message data)."""
        if h is not None:
            try:
                h(*args)
            except BaseException as e:
                self._handler_failed(event, e, *args)

    def _handler_failed(self, event: str, exc: BaseException, *args: Any) -> None:
        """A user handler raised: log it and pass it to on_error (never re-raise)."""
        logger.error("tcpgo: exception in %s handler of %r", event, self, exc_info=exc)
        h = self._on_error
        if h is not None and event != "on_error":
            try:
                h(*args, exc)
            except BaseException as e2:  # as for every handler: never kill the dispatcher
                logger.error("tcpgo: exception in on_error handler of %r", self, exc_info=e2)

    def _peer_error(self, code: int, text: str, client_id: int, *args: Any) -> None:
        err = PeerError(code, text, client_id)
        logger.info("tcpgo: %r: %s (%s, client %d)", self, text, err.code, client_id)
        h = self._on_error
        if h is not None:
            try:
                h(*args, err)
            except BaseException as e:  # as for every handler: never kill the dispatcher
                self._handler_failed("on_error", e)

    # -- library access ----------------------------------------------------
    def _handle(self) -> ctypes.c_void_p:
        h = self._h
        if h is None:
            raise Error(f"{type(self).__name__} is closed")
        return h

    def _last_error(self) -> str:
        h = self._h
        if h is None:
            return ""
        return _lib.read_string(getattr(_lib.lib(), self._last_error_name), h)[1]

    def _what(self) -> str:
        return type(self).__name__

    # -- state and life cycle ----------------------------------------------
    def _is_running(self) -> bool:
        h = self._h
        return h is not None and bool(getattr(_lib.lib(), self._is_running_name)(h))

    def _is_running_safe(self) -> bool:
        """_is_running() for __repr__, which must not raise."""
        try:
            return self._is_running()
        except Exception:
            return False

    def _stop_and_join(self) -> None:
        """Stop the handle, then wait for the dispatcher (unless called from it)."""
        h = self._h
        if h is None:
            return
        getattr(_lib.lib(), self._stop_name)(h)
        self._join_dispatcher()

    def close(self) -> None:
        """Stop (see :meth:`stop`) and release the library handle; the object
        cannot be used afterwards."""
        if self._h is None:
            return
        if _lib.forked():
            self._h = None
            return
        self.stop()
        with self._lock:
            if self._thread is not None and self._thread is threading.current_thread():
                # Called from a handler: the dispatcher still drains the handle;
                # it will be freed by the finalizer once unreferenced.
                self._h = None
                return
            self._finalizer()
            self._h = None

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _flush(self, timeout: Optional[float], *args: int) -> bool:
        """Call the library's flush function (False if it has none) with
        ``args`` and the timeout in ms; True when everything was written."""
        L = _lib.lib()
        if not _lib.has(self._flush_name):
            return False
        ms = 0 if timeout is None else max(0, int(timeout * 1000))
        return getattr(L, self._flush_name)(self._handle(), *args, ms) == 0

    # -- sending -------------------------------------------------------------
    def _check_content(self, data: bytes) -> None:
        """In fragmented mode, refuse a message holding the delimiter or longer than max_len."""
        d = self._delimiter
        if d is not None:
            if d in data:
                raise ValueError(f"message contains the delimiter {d!r}")
            if len(data) > self._max_len:
                raise ValueError(f"message of {len(data)} bytes exceeds max_len {self._max_len}")

    def _send_failure_reason(self, data: bytes) -> str:
        """After the library refused ``data``: raise for the causes servers and
        clients share (fork, bad message, closed), else return the library's
        reason ("" if it gave none)."""
        _lib.check_fork()
        self._check_content(data)
        if self._h is None:
            raise SendError(f"{self._what()} is closed")
        return self._last_error()

    # -- dispatcher --------------------------------------------------------
    def _start_dispatcher(self, name: str) -> None:
        """Called with self._lock held, right after a successful start."""
        t = self._thread
        if t is not None and t.is_alive():
            if t is threading.current_thread():
                return  # restarted from inside a handler: this thread goes on polling
            t.join()
        self._done.clear()
        with _running_lock:
            _running.add(self)
        t = threading.Thread(target=self._run, args=(self._h,), name=name, daemon=True)
        self._thread = t
        t.start()

    def _run(self, h: ctypes.c_void_p) -> None:
        L = _lib.lib()
        poll = getattr(L, self._poll_name)
        size = INITIAL_POLL_BUFFER
        buf = ctypes.create_string_buffer(size)
        used = ctypes.c_size_t(0)
        pused = ctypes.byref(used)
        string_at = ctypes.string_at
        deliver = self._deliver
        try:
            while True:
                n = poll(h, buf, size, pused, POLL_TIMEOUT_MS)
                if n > 0:
                    if _exiting:
                        continue  # interpreter shutting down: drop events
                    deliver(string_at(buf, used.value), n)
                elif n == 0:
                    continue
                elif n == ErrorCode.BUFFER_TOO_SMALL:
                    size = max(used.value, size * 2)
                    buf = ctypes.create_string_buffer(size)
                elif n == ErrorCode.NOT_RUNNING:
                    break
                else:
                    logger.error("tcpgo: %s returned %d (%s); dispatcher of %r stops",
                                 self._poll_name, n, _strerror(n), self)
                    break
        except BaseException:  # pragma: no cover - a bug in tcpgo itself
            logger.exception("tcpgo: dispatcher of %r failed", self)
        finally:
            self._dispatcher_done()

    def _dispatcher_done(self) -> None:
        with _running_lock:
            _running.discard(self)
        self._done.set()

    def _deliver(self, data: bytes, n: int) -> None:  # overridden
        raise NotImplementedError

    def _join_dispatcher(self) -> None:
        t = self._thread
        if t is None or t is threading.current_thread():
            return
        while t.is_alive():  # short slices keep Ctrl-C responsive
            t.join(0.2)

    def _stop_at_exit(self) -> None:
        h = self._h
        if h is None:
            return
        getattr(_lib.lib(), self._stop_name)(h)
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)

    def stop(self) -> None:  # overridden
        raise NotImplementedError

    def _wait_stopped(self, timeout: Optional[float]) -> bool:
        """Wait for the dispatcher to finish; interruptible by Ctrl-C."""
        if timeout is None:
            while not self._done.wait(0.25):
                pass
            return True
        return self._done.wait(timeout)


def _strerror(code: int) -> str:
    try:
        s = _lib.lib().tcp_strerror(code)
        return s.decode("utf-8", "replace") if s else str(code)
    except Exception:
        return str(code)


def strerror(code: int) -> str:
    """The library's short English description of a start or error code.

    >>> import tcpgo
    >>> tcpgo.strerror(tcpgo.StartCode.BIND_PORT)  # doctest: +SKIP
    'bind() failed: port in use, no rights'
    """
    check_code = int(code)
    return _strerror(check_code)


def require_running(ep: Endpoint, running: bool) -> None:
    if not running:
        raise NotRunningError(f"{type(ep).__name__} is not running")
