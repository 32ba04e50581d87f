"""How messages are cut on the wire: the ``framing=`` argument of servers and clients.

A framing is chosen when a server or client is created and applies in both
directions: what is received is cut into messages, what is sent is framed so
that a peer using the same framing gets the same messages back.

================================  ===========================================
framing                           messages are
================================  ===========================================
``None`` (default)                bytes as they arrive (no framing), unless a
                                  one-byte ``delimiter=`` is given
:class:`LengthPrefixed`           preceded by their length (1, 2, 4 or 8 bytes,
                                  big- or little-endian);
                                  :meth:`LengthPrefixed.tutorial` is the TLS
                                  tutorials' 4-byte little-endian prefix
:class:`Delimiter`                ended by a sequence of 1..256 bytes (NUL
                                  bytes allowed), e.g. ``b"\\r\\n"``
:class:`Lines`                    text lines ended by CR, LF or CRLF
:class:`Records`                  fixed-length records (changeable per
                                  connection while it runs)
================================  ===========================================

:class:`Delimiter` and :class:`Lines` can deliver a line longer than
``max_len`` in parts (``overlong="split"``): every part but the last arrives
as a :class:`MessagePart` (a :class:`bytes` subclass), so handlers tell them
apart with ``isinstance(data, tcpgo.MessagePart)``; the last part is plain
``bytes``. With ``overlong="close"`` (the default) such a line closes the
connection (:attr:`tcpgo.CloseReason.MESSAGE_TOO_LONG`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

__all__ = ["Framing", "LengthPrefixed", "Delimiter", "Lines", "Records", "MessagePart",
           "DEFAULT_MAX_LEN"]

#: The library's default maximum message length (``TCP_DEFAULT_MAX_MESSAGE``).
DEFAULT_MAX_LEN = 16 * 1024 * 1024

_OVERLONG = {"close": 0, "split": 1}


class MessagePart(bytes):
    """A part of a message longer than the framing's ``max_len``, delivered
    in parts because the framing was created with ``overlong="split"``
    (``TCP_MSG_PARTIAL``). More parts follow; the last part of the message
    arrives as plain :class:`bytes`::

        line = bytearray()

        @server.on_message
        def got(conn, data: bytes) -> None:
            line.extend(data)
            if not isinstance(data, tcpgo.MessagePart):   # the line is complete
                handle(bytes(line)); line.clear()
    """

    __slots__ = ()

    @property
    def partial(self) -> bool:
        """Always True (plain ``bytes`` are complete messages)."""
        return True


def _check_max_len(max_len: Any) -> int:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
        raise ValueError(f"max_len must be a non-negative int (0 = the default), got {max_len!r}")
    return max_len


def _overlong(value: str) -> int:
    try:
        return _OVERLONG[value]
    except (KeyError, TypeError):
        raise ValueError(f"overlong must be 'close' or 'split', got {value!r}") from None


def _as_sequence(value: Union[bytes, bytearray, memoryview, str], what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")


class Framing:
    """Base of the framings (see :mod:`tcpgo.framing`). Instances are
    immutable descriptions; one may be shared by many servers and clients."""

    __slots__ = ("_max_len",)

    #: True when received messages may come in parts (:class:`MessagePart`).
    can_split = False

    def __init__(self, max_len: int) -> None:
        self._max_len = _check_max_len(max_len)

    @property
    def max_len(self) -> int:
        """The maximum message length as given (0 = the library's default)."""
        return self._max_len

    @property
    def effective_max_len(self) -> int:
        """The maximum message length in force (0 replaced by the default)."""
        return self._max_len or DEFAULT_MAX_LEN

    # -- internal: the library's constructors ----------------------------
    def _new(self, lib: Any, kind: str) -> Any:
        """Call ``tcp_<kind>_new_<framing>`` (kind "server" or "client")."""
        raise NotImplementedError

    def _send_check(self) -> Optional[Callable[[bytes], None]]:
        """A function raising ValueError for a message this framing cannot
        send (checked for batched sends, which cannot raise later); None if
        every message can be sent."""
        return None

    def _eq_key(self) -> tuple:
        return (type(self), self._max_len)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Framing) and self._eq_key() == other._eq_key()

    def __hash__(self) -> int:
        return hash(self._eq_key())


class LengthPrefixed(Framing):
    """Messages preceded by their length: an unsigned integer of ``size``
    bytes (1, 2, 4 or 8) in ``byteorder`` ("big" or "little", as
    :meth:`int.to_bytes`), counting the message only. A received length over
    ``max_len`` closes the connection before anything is allocated for it.
    ``max_len`` 0 means 16 MiB, or what the prefix can count if less.

    >>> tcpgo.LengthPrefixed(size=2, byteorder="little", max_len=1000)  # doctest: +SKIP
    """

    __slots__ = ("_size", "_byteorder")

    def __init__(self, size: int = 4, byteorder: str = "big", max_len: int = 0) -> None:
        super().__init__(max_len)
        if size not in (1, 2, 4, 8) or isinstance(size, bool):
            raise ValueError(f"size must be 1, 2, 4 or 8 bytes, got {size!r}")
        if byteorder not in ("big", "little"):
            raise ValueError(f"byteorder must be 'big' or 'little', got {byteorder!r}")
        capacity = (1 << (8 * size)) - 1
        if max_len > capacity:
            raise ValueError(f"max_len {max_len} does not fit a {size}-byte length prefix "
                             f"(at most {capacity})")
        self._size = size
        self._byteorder = byteorder

    @classmethod
    def tutorial(cls, max_len: int = 0) -> "LengthPrefixed":
        """The framing of the TLS tutorials tcpgo was specified from: a 4-byte
        little-endian (x86 DWORD) length in front of each message."""
        return cls(4, "little", max_len)

    @property
    def size(self) -> int:
        """Bytes of the length prefix."""
        return self._size

    @property
    def byteorder(self) -> str:
        """"big" or "little"."""
        return self._byteorder

    @property
    def effective_max_len(self) -> int:
        return self._max_len or min(DEFAULT_MAX_LEN, (1 << (8 * self._size)) - 1)

    def encode(self, message: bytes) -> bytes:
        """``message`` with its prefix, as the library sends it (for peers
        written without tcpgo, and tests)."""
        return len(message).to_bytes(self._size, self._byteorder) + bytes(message)  # type: ignore[arg-type]

    def _new(self, lib: Any, kind: str) -> Any:
        return getattr(lib, f"tcp_{kind}_new_length_prefixed")(
            self._size, 0 if self._byteorder == "big" else 1, self._max_len)

    def _send_check(self) -> Optional[Callable[[bytes], None]]:
        limit = self.effective_max_len

        def check(data: bytes) -> None:
            if len(data) > limit:
                raise ValueError(f"message of {len(data)} bytes exceeds max_len {limit}")
        return check

    def _eq_key(self) -> tuple:
        return super()._eq_key() + (self._size, self._byteorder)

    def __repr__(self) -> str:
        return (f"LengthPrefixed(size={self._size}, byteorder={self._byteorder!r}, "
                f"max_len={self._max_len})")


class Delimiter(Framing):
    """Messages ended by ``sequence`` (1..256 bytes of any value, NUL
    included; a str is encoded as UTF-8), which :meth:`send` appends and the
    receiver removes. A message holding the sequence cannot be sent
    (:class:`ValueError`). ``max_len`` bounds a message without its end (0 =
    16 MiB); ``overlong`` says what a longer received one does: ``"close"``
    the connection, or ``"split"`` it into :class:`MessagePart` parts.

    >>> tcpgo.Delimiter(b"\\r\\n\\0")   # doctest: +SKIP
    """

    __slots__ = ("_sequence", "_overlong")

    def __init__(self, sequence: Union[bytes, str], max_len: int = 0, *,
                 overlong: str = "close") -> None:
        super().__init__(max_len)
        seq = _as_sequence(sequence, "the delimiter")
        if not 1 <= len(seq) <= 256:
            raise ValueError(f"a delimiter has 1 to 256 bytes, got {len(seq)}")
        self._sequence = seq
        self._overlong = overlong
        _overlong(overlong)

    @property
    def sequence(self) -> bytes:
        """The bytes that end a message."""
        return self._sequence

    @property
    def overlong(self) -> str:
        """"close" or "split"."""
        return self._overlong

    @property
    def can_split(self) -> bool:  # type: ignore[override]
        return self._overlong == "split"

    def _new(self, lib: Any, kind: str) -> Any:
        seq = self._sequence
        return getattr(lib, f"tcp_{kind}_new_eol")(seq, len(seq), self._max_len,
                                                   _overlong(self._overlong))

    def _send_check(self) -> Optional[Callable[[bytes], None]]:
        seq, limit, split = self._sequence, self.effective_max_len, self.can_split

        def check(data: bytes) -> None:
            if not split and len(data) > limit:
                raise ValueError(f"message of {len(data)} bytes exceeds max_len {limit}")
            if (data + seq).find(seq) != len(data):  # the receiver would end it early
                raise ValueError(f"message contains the delimiter {seq!r}")
        return check

    def _eq_key(self) -> tuple:
        return super()._eq_key() + (self._sequence, self._overlong)

    def __repr__(self) -> str:
        return (f"Delimiter({self._sequence!r}, max_len={self._max_len}, "
                f"overlong={self._overlong!r})")


class Lines(Framing):
    """Text lines: a received line ends at CR, LF or CRLF (removed); sending
    appends ``send_eol`` ("\\r\\n", "\\n" or "\\r") and refuses a line
    holding CR or LF. ``max_len`` and ``overlong`` as for :class:`Delimiter`.

    >>> tcpgo.Lines(1024, overlong="split")   # doctest: +SKIP
    """

    __slots__ = ("_overlong", "_send_eol")

    def __init__(self, max_len: int = 0, *, overlong: str = "close",
                 send_eol: Union[bytes, str] = b"\r\n") -> None:
        super().__init__(max_len)
        eol = _as_sequence(send_eol, "send_eol")
        if eol not in (b"\r\n", b"\n", b"\r"):
            raise ValueError(f"send_eol must be CRLF, LF or CR, got {send_eol!r}")
        _overlong(overlong)
        self._overlong = overlong
        self._send_eol = eol

    @property
    def overlong(self) -> str:
        return self._overlong

    @property
    def send_eol(self) -> bytes:
        return self._send_eol

    @property
    def can_split(self) -> bool:  # type: ignore[override]
        return self._overlong == "split"

    def _new(self, lib: Any, kind: str) -> Any:
        return getattr(lib, f"tcp_{kind}_new_lines")(self._send_eol, self._max_len,
                                                     _overlong(self._overlong))

    def _send_check(self) -> Optional[Callable[[bytes], None]]:
        limit, split = self.effective_max_len, self.can_split

        def check(data: bytes) -> None:
            if not split and len(data) > limit:
                raise ValueError(f"line of {len(data)} bytes exceeds max_len {limit}")
            if b"\r" in data or b"\n" in data:
                raise ValueError("a line cannot hold CR or LF")
        return check

    def _eq_key(self) -> tuple:
        return super()._eq_key() + (self._overlong, self._send_eol)

    def __repr__(self) -> str:
        return (f"Lines(max_len={self._max_len}, overlong={self._overlong!r}, "
                f"send_eol={self._send_eol!r})")


class Records(Framing):
    """Fixed-length records of ``length`` bytes (0 = bytes as they arrive, in
    pieces of at most ``max_len``). Each connection may change its length
    while it runs (``conn.set_record_length(n)``, ``client.set_record_length(n)``).
    Sending is not framed: what you send goes out as given.

    Python handlers run after the library has cut what it had received, so
    a new length applies to the bytes the library reads after the call:
    records already received keep the old length. A protocol whose peer
    sends the next record only after an answer (request/response) is exact.
    """

    __slots__ = ("_length",)

    def __init__(self, length: int, max_len: int = 0) -> None:
        super().__init__(max_len)
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"record length must be a non-negative int, got {length!r}")
        if max_len and length > max_len:
            raise ValueError(f"record length {length} exceeds max_len {max_len}")
        self._length = length

    @property
    def length(self) -> int:
        """The record length connections start with."""
        return self._length

    @property
    def effective_max_len(self) -> int:
        return self._max_len or max(DEFAULT_MAX_LEN, self._length)

    def _new(self, lib: Any, kind: str) -> Any:
        return getattr(lib, f"tcp_{kind}_new_records")(self._length, self._max_len)

    def _eq_key(self) -> tuple:
        return super()._eq_key() + (self._length,)

    def __repr__(self) -> str:
        return f"Records({self._length}, max_len={self._max_len})"
