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
import dataclasses
import enum
import inspect
import logging
import queue
import struct
import threading
import time
import weakref
from typing import (Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, TypeVar, Union)

from . import _lib
from .errors import Error, ErrorCode, NotRunningError, PeerError, SendError, StartError
from .framing import Framing

logger = logging.getLogger("tcpgo")

# Event kinds and the packed record header of tcp_*_poll (native byte order).
EV_ESTABLISHED = 1
EV_MESSAGE = 2
EV_CLOSED = 3
EV_ERROR = 4
EV_READY = 5  # the send queue drained after a refused send
EV_CONNECT = 6  # client: a reconnection attempt ended (client_id = attempt, code = start code)
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
OPT_MAX_CONNECTIONS = 11
OPT_IDLE_TIMEOUT_MS = 12
OPT_MESSAGE_TIMEOUT_MS = 13
OPT_WRITE_TIMEOUT_MS = 14
OPT_KEEPALIVE = 15
OPT_KEEPALIVE_IDLE_MS = 16
OPT_KEEPALIVE_INTERVAL_MS = 17
OPT_KEEPALIVE_COUNT = 18
OPT_BACKLOG = 19
OPT_IPV6_ONLY = 20
OPT_MEMORY_BUDGET = 21
OPT_SEND_LOW_WATER = 22
OPT_CALLBACK_THREADS = 23
OPT_RECONNECT = 24
OPT_RECONNECT_MIN_MS = 25
OPT_RECONNECT_MAX_MS = 26
OPT_CLOSE_ON_EOF = 27
OPT_PROXY_PROTOCOL = 28
OPT_TLS_MAX_VERSION = 29
OPT_TLS_RESUMPTION = 30
OPT_TLS_SYSTEM_CAS = 31
OPT_BIND_ADDRESS = 100
OPT_PROXY_TRUSTED = 101
OPT_TLS_CIPHER_SUITES = 102
OPT_TLS_ALPN = 103
OPT_TLS_SERVER_NAME = 104
OPT_TLS_KEYLOG_FILE = 105

#: TCP_MSG_PARTIAL in a message event's code: a part of an overlong message.
MSG_PARTIAL = 1

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


class CloseReason(enum.IntEnum):
    """Why a connection closed (``enum tcp_close_reason``).

    Available as ``conn.close_reason`` / ``client.close_reason`` and passed to
    ``on_closed`` handlers that take it (see :class:`tcpgo.TcpServer`).
    """

    PEER = 1  #: the peer closed (EOF); what was queued for it was written first
    RESET = 2  #: read or write failed (reset, broken pipe, network error)
    IDLE_TIMEOUT = 3  #: nothing received for the idle timeout
    MESSAGE_TIMEOUT = 4  #: a message started but did not finish within message_timeout
    WRITE_TIMEOUT = 5  #: queued data not taken by the peer within write_timeout
    STOPPED = 6  #: the server or client was stopped
    LOCAL = 7  #: closed by ``close_client()`` / ``Connection.close()``
    MESSAGE_TOO_LONG = 8  #: the peer sent a message over max_len
    TLS = 9  #: TLS failure after the handshake
    MEMORY_BUDGET = 10  #: the connection needed more than its share of memory_budget
    INTERNAL = 11  #: a bug in tcpgo

    @property
    def description(self) -> str:
        """The library's short English description ("peer closed", ...)."""
        return close_reason_text(int(self))


def close_reason(code: int) -> Optional[CloseReason]:
    """The CloseReason of a closed event's code; None when the library gave none
    (a library older than the close reasons) or one this package does not know."""
    try:
        return CloseReason(code)
    except ValueError:
        return None


def close_reason_text(code: int) -> str:
    fn = getattr(_lib.lib(), "tcp_close_reason_str", None)
    if fn is None:
        try:
            return CloseReason(code).name.lower().replace("_", " ")
        except ValueError:
            return "unknown close reason"
    s = fn(code)
    return s.decode("utf-8", "replace") if s else ""


class ProxyMode(enum.IntEnum):
    """Values of the ``proxy_protocol`` server option (``enum tcp_proxy_mode``)."""

    OFF = 0  #: no PROXY protocol
    TRUSTED = 1  #: connections from ``proxy_trusted`` addresses must start with a header
    REQUIRED = 2  #: every connection must come from a trusted address, with a header


class _CServerStats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_ulonglong) for name in (
        "active", "established", "accepted", "refused", "refused_limit", "handshake_failed",
        "timed_out", "closed_for_limits", "accept_errors", "bytes_in", "bytes_out",
        "msgs_in", "msgs_out", "memory_used")]


class _CConnStats(ctypes.Structure):
    _fields_ = [("bytes_in", ctypes.c_ulonglong), ("bytes_out", ctypes.c_ulonglong),
                ("msgs_in", ctypes.c_ulonglong), ("msgs_out", ctypes.c_ulonglong),
                ("connected_unix_ms", ctypes.c_longlong), ("queued", ctypes.c_ulonglong)]


@dataclasses.dataclass(frozen=True)
class ServerStats:
    """Counters of a server since it was created, across restarts (``tcp_server_stats``)."""

    active: int  #: connections now, including those in their TLS handshake
    established: int  #: connections that became established
    accepted: int  #: connections accepted by the kernel
    refused: int  #: refused by on_accept or the allowed/blocked lists
    refused_limit: int  #: refused because max_connections was reached
    handshake_failed: int  #: TLS or PROXY header failures
    timed_out: int  #: closed by an idle, message, write or handshake timeout
    closed_for_limits: int  #: closed for a too-long message or the memory budget
    accept_errors: int  #: accept() failures (out of descriptors...)
    bytes_in: int  #: payload bytes received, all connections
    bytes_out: int  #: payload bytes sent, all connections
    msgs_in: int  #: messages received (continuous mode: reads)
    msgs_out: int  #: messages sent (continuous mode: sends)
    memory_used: int  #: bytes now charged to the memory budget


@dataclasses.dataclass(frozen=True)
class ConnStats:
    """Counters of one connection (``tcp_conn_stats``)."""

    bytes_in: int  #: payload bytes received
    bytes_out: int  #: payload bytes sent
    msgs_in: int  #: messages received (continuous mode: reads)
    msgs_out: int  #: messages sent
    connected_at: float  #: when it was accepted / connected, as Unix time in seconds
    queued: int  #: bytes queued and not yet written


def server_stats_of(c: _CServerStats) -> ServerStats:
    return ServerStats(**{name: int(getattr(c, name)) for name, _ in _CServerStats._fields_})


def conn_stats_of(c: _CConnStats) -> ConnStats:
    return ConnStats(int(c.bytes_in), int(c.bytes_out), int(c.msgs_in), int(c.msgs_out),
                     c.connected_unix_ms / 1000.0, int(c.queued))


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


# Codes newer than the ErrorCode enum of some tcpgo versions (tcp_error_code).
ERR_MEMORY_BUDGET = -16
ERR_REFUSED = -17
#: Send results that mean "try again after the ready event" (back-pressure).
BACKPRESSURE_CODES = frozenset((int(ErrorCode.QUEUE_FULL), ERR_MEMORY_BUDGET))


def need(name: str) -> Any:
    """The library function ``name``; :class:`tcpgo.Error` when the loaded
    library is older than the feature that needs it."""
    fn = getattr(_lib.lib(), name, None)
    if fn is None:
        raise Error(f"the loaded libtcpserver ({_lib.loaded_path()}) has no {name}(): it is "
                    "older than this tcpgo package; rebuild it (`make`) or point "
                    "TCPGO_LIBRARY at a current one")
    return fn


def thread_error_text() -> str:
    """The reason of this thread's last failed library call ("" if unknown)."""
    fn = getattr(_lib.lib(), "tcp_errmsg", None)
    return "" if fn is None else _lib.read_string(fn)[1]


def thread_error_code() -> int:
    """The code of this thread's last library call (0 if unknown or success)."""
    fn = getattr(_lib.lib(), "tcp_errcode", None)
    return 0 if fn is None else int(fn())


def send_error(code: Optional[int], message: str, reason: str = "") -> SendError:
    """A SendError carrying the library's code (``.code``)."""
    try:
        return SendError(message, reason, code=code)  # type: ignore[call-arg]
    except TypeError:  # an errors.py from before SendError.code
        err = SendError(message, reason)
        err.code = code  # type: ignore[attr-defined]
        return err


def seconds_option(name: str, seconds: Any) -> int:
    """A duration in seconds (int or float, 0 = none) as whole milliseconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if seconds < 0:
        raise ValueError(f"{name} must be >= 0 seconds (0 = no limit), got {seconds!r}")
    return seconds_to_ms(seconds)


def count_option(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def bool_option(name: str, value: Any) -> int:
    if not isinstance(value, (bool, int)):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return 1 if value else 0


def proxy_mode_option(name: str, value: Any) -> int:
    if isinstance(value, str):
        try:
            return int(ProxyMode[value.strip().upper()])
        except KeyError:
            raise ValueError(f"{name} must be 'off', 'trusted' or 'required', "
                             f"got {value!r}") from None
    if isinstance(value, bool):
        return int(ProxyMode.TRUSTED if value else ProxyMode.OFF)
    return int(ProxyMode(value))


def address_list(name: str, entries: Union[str, Iterable[str], None]) -> Tuple[str, ...]:
    """Addresses/CIDR ranges given as "a, b c" or an iterable of str, as a tuple."""
    if entries is None:
        return ()
    if isinstance(entries, str):
        items = entries.replace(",", " ").split()
    else:
        items = []
        for e in entries:
            if not isinstance(e, str):
                raise TypeError(f"{name} entries must be str, not {type(e).__name__}")
            items.extend(e.replace(",", " ").split())
    return tuple(items)


#: Options shared by servers and clients: keyword -> (option id, converter).
OptionTable = Dict[str, Tuple[int, Callable[[str, Any], int]]]
COMMON_OPTIONS: OptionTable = {
    "idle_timeout": (OPT_IDLE_TIMEOUT_MS, seconds_option),
    "message_timeout": (OPT_MESSAGE_TIMEOUT_MS, seconds_option),
    "write_timeout": (OPT_WRITE_TIMEOUT_MS, seconds_option),
    "keepalive": (OPT_KEEPALIVE, bool_option),
    "keepalive_idle": (OPT_KEEPALIVE_IDLE_MS, seconds_option),
    "keepalive_interval": (OPT_KEEPALIVE_INTERVAL_MS, seconds_option),
    "keepalive_count": (OPT_KEEPALIVE_COUNT, count_option),
    "send_low_water": (OPT_SEND_LOW_WATER, count_option),
    "callback_threads": (OPT_CALLBACK_THREADS, count_option),
    "close_on_eof": (OPT_CLOSE_ON_EOF, bool_option),
}


def accepts_positional(fn: Callable[..., Any], n: int) -> bool:
    """True when ``fn`` declares at least ``n`` positional parameters by name
    (so a handler ``def gone(conn, reason)`` gets the reason while
    ``def gone(conn)`` and ``lambda *a: ...`` keep their old calls)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    named = [p for p in params
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(named) >= n


class ArityCache:
    """Remembers, per handler object, whether it takes one more argument."""

    __slots__ = ("fn", "extra", "n")

    def __init__(self, n: int) -> None:
        self.fn: Any = None
        self.extra = False
        self.n = n

    def wants_extra(self, fn: Callable[..., Any]) -> bool:
        if fn is not self.fn:
            self.extra = accepts_positional(fn, self.n)
            self.fn = fn
        return self.extra


class Writable:
    """Back-pressure state of one connection: after a send was refused
    (queue full, memory budget) it is not writable until the library's ready
    event (or the close). A generation count makes a ready event that
    overtakes the refusal's bookkeeping wake the writer instead of being lost;
    a spurious wake-up only costs a retry."""

    _ready_gen = 0
    _blocked_gen = -1

    @property
    def writable(self) -> bool:
        """False after a send was refused for back-pressure, until the ready event."""
        return self._blocked_gen != self._ready_gen

    def _send_gen(self) -> int:
        return self._ready_gen

    def _refused(self, gen: int) -> None:
        self._blocked_gen = gen

    def _wake(self) -> None:
        self._ready_gen += 1


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


def _free_handle(free_name: str, handle: ctypes.c_void_p, keep: List[Any]) -> None:
    """weakref.finalize callback: release a C handle (never in a forked child).

    ``keep`` holds what the library may still call (ctypes callbacks) until
    the handle is freed."""
    if not handle or _lib.forked() or not _lib.is_loaded():
        return
    try:
        getattr(_lib.lib(), free_name)(handle)
    except Exception:  # pragma: no cover
        pass


def is_exiting() -> bool:
    return _exiting


#: How long the dispatcher leaves the poll token to a thread that took it for
#: a direct receive (see _PollToken) before it polls again itself.
DIRECT_LINGER = 0.002
DIRECT_POLL_BUFFER = 64 * 1024

_OWNER_FREE, _OWNER_DISPATCHER, _OWNER_CALLER = 0, 1, 2
_NOTHING = object()  # _poll_direct: no event yet
_HANDED = object()  # _poll_direct: wait on the queue (the dispatcher delivers)


class _PollToken:
    """Who polls a handle (tcpgo.h: one thread at a time, and a batch is
    handled before the next poll).

    Normally the dispatcher thread. A thread waiting in a client's ``recv()``
    (``request()``) may take the token and poll itself: its reply then needs
    no hand-off between threads (the dispatcher's wake-up plus the queue's,
    about two thirds of a round trip's cost). Message events it takes go
    straight to the receive queue, in order; a batch with any other event is
    handed to the dispatcher, which delivers it before anyone polls again, so
    handlers still run on the dispatcher thread and in order. After a caller
    released the token, the dispatcher waits DIRECT_LINGER before it polls
    again, so that a request loop keeps it; events arriving in that window
    wait at most that long.
    """

    __slots__ = ("cond", "owner", "want", "last", "used", "handoff", "closed", "dwait")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.owner = _OWNER_FREE
        self.want = 0  # callers waiting for the token
        self.last = 0.0  # time.monotonic() of a caller's last use
        self.used = False  # a caller took it since the dispatcher started
        self.handoff: Optional[Tuple[bytes, int]] = None  # a caller's batch for the dispatcher
        self.closed = True  # no dispatcher: no direct polling
        self.dwait = False  # the dispatcher waits for a caller to release the token

    def dispatcher_take(self) -> Optional[Tuple[bytes, int]]:
        """Block until the dispatcher may poll; returns a batch a caller
        handed over (deliver it, then release) or None (poll, then release)."""
        cond = self.cond
        with cond:
            while True:
                b = self.handoff
                if b is not None:
                    self.handoff = None
                    self.owner = _OWNER_DISPATCHER
                    return b
                if self.owner == _OWNER_FREE and not self.want:
                    if not self.used:
                        self.owner = _OWNER_DISPATCHER
                        return None
                    left = self.last + DIRECT_LINGER - time.monotonic()
                    if left <= 0:
                        self.owner = _OWNER_DISPATCHER
                        return None
                    cond.wait(left)
                else:
                    self.dwait = True
                    try:
                        cond.wait(0.25)
                    finally:
                        self.dwait = False

    def release(self) -> None:
        with self.cond:
            if self.owner == _OWNER_CALLER:
                self.last = time.monotonic()
            self.owner = _OWNER_FREE
            # The dispatcher lingering after a caller's use is not woken: it
            # looks again when its linger ends.
            if self.want or self.dwait:
                self.cond.notify_all()

    def caller_take(self, timeout: float) -> bool:
        """Take the token for a direct poll; False when not within timeout
        (the caller then looks at its queue again) or while no dispatcher runs."""
        cond = self.cond
        with cond:
            if self.closed:
                return False
            self.used = True
            if self.owner == _OWNER_FREE and self.handoff is None:
                self.owner = _OWNER_CALLER
                return True
            self.want += 1
            try:
                cond.wait(timeout)
            finally:
                self.want -= 1
            if self.owner == _OWNER_FREE and self.handoff is None and not self.closed:
                self.owner = _OWNER_CALLER
                return True
            return False

    def hand_to_dispatcher(self, batch: Tuple[bytes, int]) -> None:
        """A caller holding the token passes a batch (and the token) on."""
        with self.cond:
            self.last = time.monotonic()
            self.handoff = batch
            self.owner = _OWNER_DISPATCHER
            self.cond.notify_all()

    def open(self) -> None:
        with self.cond:
            self.closed = False
            self.used = False
            self.handoff = None
            self.owner = _OWNER_FREE

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_no_caller(self, timeout: float) -> None:
        """Wait until no caller is inside a poll (before the handle is freed)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.owner == _OWNER_CALLER:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)


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
        # ctypes callbacks given to the library: alive until the handle is freed
        self._keep: List[Any] = []
        # Woken by the dispatcher on ready and closed events (wait_writable).
        self._ready_cond = threading.Condition()
        # Set by stop(): a reconnecting client's dispatcher polls until then.
        self._stopping = False
        # Who polls the handle: the dispatcher, or a thread receiving directly.
        self._pt = _PollToken()
        self._direct_buf: Any = None
        # Set by tcpgo.aio: polls the handle on an event loop (watching the
        # library's event fd) instead of a dispatcher thread; see _start_dispatcher.
        self._loop_poller: Any = None

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
        framing = getattr(self, "_framing", None)
        if framing is not None:
            need(self._new_name + "_records")  # a library that knows the framings
            ptr = framing._new(L, self._new_name.split("_")[1])
            if not ptr:
                raise ValueError(f"{framing!r} not accepted by the library: "
                                 + (thread_error_text() or "invalid argument"))
        elif self._delimiter is None:
            ptr = getattr(L, self._new_name)()
        else:
            ptr = getattr(L, self._new_name + "_fragmented")(self._delimiter, max_len)
        if not ptr:
            raise MemoryError(f"{self._new_name} failed")
        self._h = ctypes.c_void_p(ptr)
        self._finalizer = weakref.finalize(self, _free_handle, self._free_name, self._h,
                                           self._keep)
        self._finalizer.atexit = False
        self._set_option(OPT_EVENT_QUEUE, 1)
        self._set_option(OPT_NODELAY, 1 if nodelay else 0)

    def _choose_framing(self, delimiter: Union[bytes, str, int, None], max_len: int,
                        framing: Optional[Framing]) -> None:
        """v2's framing (``delimiter``/``max_len``) or a :mod:`tcpgo.framing` object."""
        self._framing: Optional[Framing] = None
        self._send_check: Optional[Callable[[bytes], None]] = None
        if framing is None:
            self._set_framing(delimiter, max_len)
            return
        if not isinstance(framing, Framing):
            raise TypeError("framing must be a tcpgo framing (tcpgo.LengthPrefixed, "
                            f"tcpgo.Delimiter, tcpgo.Lines, tcpgo.Records), not "
                            f"{type(framing).__name__}")
        if delimiter is not None or max_len:
            raise ValueError("give either framing= or delimiter/max_len, not both "
                             "(the framing has its own max_len)")
        self._framing = framing
        self._delimiter = None
        self._max_len = framing.effective_max_len
        self._send_check = framing._send_check()

    def _framing_name(self) -> str:
        f = self._framing
        if f is not None:
            return repr(f)
        return "continuous" if self._delimiter is None else f"delimiter={self._delimiter!r}"

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

    def _set_option_str(self, option: int, value: str) -> None:
        rc = getattr(_lib.lib(), self._set_option_name + "_str")(self._handle(), option,
                                                                 value.encode("utf-8"))
        if rc != 0:
            raise option_error(rc, option, value, self._last_error())

    def _apply_options(self, table: OptionTable, values: Dict[str, Any]) -> None:
        """Set every option of ``values`` (keyword -> value) that is not None."""
        for name, value in values.items():
            if value is None:
                continue
            option, convert = table[name]
            try:
                self._set_option(option, convert(name, value))
            except ValueError as e:
                raise ValueError(f"{name}={value!r}: {e}") from None

    # -- flow control ----------------------------------------------------------
    def _notify_ready(self) -> None:
        """Wake threads in wait_writable() (dispatcher thread, after a ready or
        closed event changed a Writable)."""
        with self._ready_cond:
            self._ready_cond.notify_all()

    def _wait_writable(self, w: Writable, alive: Callable[[], bool],
                       timeout: Optional[float]) -> bool:
        """Block until ``w`` is writable or ``alive()`` is False; False on timeout.
        Not from the dispatcher thread, which delivers the ready event."""
        if self._thread is not None and self._thread is threading.current_thread():
            raise RuntimeError("wait_writable() cannot be called from a handler (the ready "
                               "event it waits for is delivered by the same thread); "
                               "use on_ready instead")
        with self._ready_cond:
            return self._ready_cond.wait_for(lambda: w.writable or not alive(), timeout)

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
        logger.error("exception in %s handler of %r", event, self, exc_info=exc)
        h = self._on_error
        if h is not None and event != "on_error":
            try:
                h(*args, exc)
            except BaseException as e2:  # as for every handler: never kill the dispatcher
                logger.error("exception in on_error handler of %r", self, exc_info=e2)

    def _peer_error(self, code: int, text: str, client_id: int, *args: Any) -> None:
        err = PeerError(code, text, client_id)
        logger.info("%r: %s (%s, client %d)", self, text, err.code, client_id)
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
        self._stopping = True
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
        lp = self._loop_poller
        if lp is not None and lp.defer_free(self):
            # Called on the loop that polls (a handler): the poller drains the
            # handle to its end, then frees it.
            self._h = None
            return
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
        check = getattr(self, "_send_check", None)
        if check is not None:
            check(data)

    def _send_failure_reason(self, data: bytes) -> str:
        """After the library refused ``data``: raise for the causes servers and
        clients share (fork, bad message, closed), else return the library's
        reason ("" if it gave none)."""
        _lib.check_fork()
        self._check_content(data)
        if self._h is None:
            raise SendError(f"{self._what()} is closed", code=ErrorCode.INVALID_ARG)
        return thread_error_text() or self._last_error()

    # -- dispatcher --------------------------------------------------------
    def _start_dispatcher(self, name: str) -> None:
        """Called with self._lock held, right after a successful start."""
        self._stopping = False
        lp = self._loop_poller
        if lp is not None:
            # tcpgo.aio: the loop polls (no thread, no direct receive).
            self._done.clear()
            with _running_lock:
                _running.add(self)
            lp.started(self._h)
            return
        t = self._thread
        if t is not None and t.is_alive():
            if t is threading.current_thread():
                return  # restarted from inside a handler: this thread goes on polling
            t.join()
        self._done.clear()
        with _running_lock:
            _running.add(self)
        self._pt.open()
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
        pt = self._pt
        take, release = pt.dispatcher_take, pt.release
        try:
            while True:
                handed = take()
                try:
                    if handed is not None:  # a direct receiver's batch: deliver it first
                        if not _exiting:
                            deliver(*handed)
                        continue
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
                        if self._stopping or not self._polls_while_down() or _exiting:
                            break
                        # A reconnecting client is between connections: its next
                        # connection's events come through the same handle.
                        self._done.wait(POLL_TIMEOUT_MS / 1000)
                    else:
                        logger.error("%s returned %d (%s); dispatcher of %r stops",
                                     self._poll_name, n, _strerror(n), self)
                        break
                finally:
                    release()
        except BaseException:  # pragma: no cover - a bug in tcpgo itself
            logger.exception("dispatcher of %r failed", self)
        finally:
            pt.close()
            self._dispatcher_done()

    def _recv_direct(self, q: "queue.SimpleQueue[Any]", timeout: Optional[float]) -> Any:
        """The next item of ``q`` (a client's receive queue), polling the handle
        on this thread while the dispatcher lets it (see _PollToken); raises
        queue.Empty after ``timeout`` seconds (None: wait without end, in slices
        that keep Ctrl-C responsive). Only when no on_message handler takes the
        messages and the events are the class's own to deliver."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        pt = self._pt
        while True:
            if not q.empty():
                try:
                    return q.get_nowait()
                except queue.Empty:  # another receiver took it
                    pass
            left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            if left <= 0:
                raise queue.Empty
            h = self._h
            if (h is None or _exiting or getattr(self, "_on_message", None) is not None
                    or getattr(self, "_on_messages", None) is not None
                    or "_deliver" in self.__dict__ or self._loop_poller is not None
                    or self._thread is threading.current_thread()):
                return q.get(timeout=left)
            if not pt.caller_take(left):
                continue
            got: Any = _NOTHING
            try:
                if q.empty():
                    got = self._poll_direct(h, q, left)
            finally:
                if pt.owner == _OWNER_CALLER:
                    pt.release()
            if got is _HANDED:  # stopped, reconnecting, or handed to the dispatcher
                try:
                    return q.get(timeout=left)
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
            elif got is not _NOTHING:
                return got

    def _poll_direct(self, h: ctypes.c_void_p, q: "queue.SimpleQueue[Any]", left: float) -> Any:
        """One poll with the token held and ``q`` empty: the first message of
        a batch of messages only (the others go to ``q``, in order); _NOTHING
        when nothing came; _HANDED when the caller should wait on its queue
        instead (the batch went to the dispatcher, or the handle is not
        running)."""
        b = self._direct_buf
        if b is None:
            used = ctypes.c_size_t(0)
            b = self._direct_buf = [ctypes.create_string_buffer(DIRECT_POLL_BUFFER),
                                    DIRECT_POLL_BUFFER, used, ctypes.byref(used),
                                    getattr(_lib.lib(), self._poll_name)]
        buf, size, used, pused, poll = b
        n = poll(h, buf, size, pused, max(1, int(left * 1000)))
        if n > 0:
            data = ctypes.string_at(buf, used.value)
            # Only messages, and nobody to hand them to: they are this caller's.
            if (getattr(self, "_on_message", None) is None
                    and getattr(self, "_on_messages", None) is None):
                unpack = HEADER.unpack_from
                # A part of an overlong message (code TCP_MSG_PARTIAL) must
                # become a MessagePart: the dispatcher's path does that.
                kind, _cid, code, ln = unpack(data, 0)
                if n == 1 and kind == EV_MESSAGE and not code:
                    return data[HEADER_SIZE:HEADER_SIZE + ln]
                off, items = 0, []
                for _ in range(n):
                    kind, _cid, code, ln = unpack(data, off)
                    if kind != EV_MESSAGE or code:
                        break
                    off += HEADER_SIZE
                    items.append(data[off:off + ln])
                    off += ln
                else:
                    put = q.put
                    for m in items[1:]:
                        put(m)
                    return items[0]
            self._pt.hand_to_dispatcher((data, n))
            return _HANDED
        if n == 0:
            return _NOTHING
        if n == ErrorCode.BUFFER_TOO_SMALL:
            size = max(used.value, size * 2)
            b[0], b[1] = ctypes.create_string_buffer(size), size
            return _NOTHING
        return _HANDED  # not running (stopped, or between reconnections): the dispatcher decides

    def _dispatcher_done(self) -> None:
        with _running_lock:
            _running.discard(self)
        self._done.set()

    def _deliver(self, data: bytes, n: int) -> None:  # overridden
        raise NotImplementedError

    def _polls_while_down(self) -> bool:
        """True when the dispatcher must keep polling after the handle reported
        it is not running (a client that reconnects by itself)."""
        return False

    def _join_dispatcher(self) -> None:
        t = self._thread
        if t is None or t is threading.current_thread():
            return
        while t.is_alive():  # short slices keep Ctrl-C responsive
            t.join(0.2)
        self._pt.wait_no_caller(1.0)  # a direct receiver's poll ends once stopped

    def _stop_at_exit(self) -> None:
        h = self._h
        if h is None:
            return
        self._stopping = True
        self._before_exit_stop(h)
        getattr(_lib.lib(), self._stop_name)(h)
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)

    def _before_exit_stop(self, h: ctypes.c_void_p) -> None:
        """At interpreter exit, before the handle is stopped: unhook what the
        library could call into Python (overridden)."""

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
