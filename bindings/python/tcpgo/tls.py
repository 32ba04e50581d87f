"""TLS settings and information: certificate callbacks (:class:`CertInfo`),
the negotiated parameters of a connection (:class:`TlsInfo`), and PEM given
from memory or from files."""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import os
import re
import weakref
from typing import Any, Callable, Iterable, Optional, Tuple, Union

from . import _lib
from .errors import ErrorCode, StartCode, start_error

__all__ = ["CertResult", "CertInfo", "TlsInfo", "CertSource", "CertHandler"]

#: A certificate, key or CA: a path (str or os.PathLike), or PEM text in
#: memory -- bytes, or a str that contains "-----BEGIN".
CertSource = Union[str, bytes, bytearray, "os.PathLike[str]"]


class CertResult(enum.IntEnum):
    """The built-in verdict on a peer's certificate (``enum tcp_cert_result``)."""

    OK = 0  #: chain (and, on a client, name) verified
    NO_CERT = 1  #: the peer sent no certificate
    UNKNOWN_CA = 2  #: no chain to a trusted CA
    EXPIRED = 3  #: expired or not yet valid
    NAME_MISMATCH = 4  #: valid, but not for the server name
    PURPOSE = 5  #: not fit for its role (extended key usage, key usage)
    INVALID = 6  #: signature, constraints, malformed...


def cert_result(code: int) -> "CertResult | int":
    try:
        return CertResult(code)
    except ValueError:
        return code


_PEM_BLOCK = re.compile(r"-----BEGIN [^-]+-----.*?-----END [^-]+-----\n?", re.S)


def pem_blocks(text: str) -> Tuple[str, ...]:
    """The PEM blocks of ``text``, each with its END line and a newline."""
    return tuple(b if b.endswith("\n") else b + "\n" for b in _PEM_BLOCK.findall(text))


@dataclasses.dataclass(frozen=True)
class CertInfo:
    """What a certificate callback (``on_cert``) sees about a peer's certificate.

    On a server it is the client's certificate, during the handshake (before
    ``on_established``); on a client the server's, after the built-in check
    of ``verify``. Return True to accept it -- also one the built-in check
    rejected (a self-signed certificate you pinned) -- or False to refuse.
    """

    client_id: int  #: server: the connection's id (not yet established); client: 0
    result: "CertResult | int"  #: the built-in verdict
    error: str  #: why the built-in check failed; "" if it passed
    pem: str  #: the peer's leaf certificate in PEM; "" if it sent none
    chain: Tuple[str, ...]  #: every certificate the peer sent (PEM), leaf first
    subject: str  #: the leaf's subject, RFC 2253 ("CN=a,O=b")
    issuer: str  #: the leaf's issuer, RFC 2253
    server_name: str  #: server: the SNI the client asked for; client: the name verified

    @property
    def ok(self) -> bool:
        """True when the built-in check accepted the certificate."""
        return self.result == CertResult.OK


#: ``on_cert(info) -> bool``
CertHandler = Callable[[CertInfo], Any]


def _s(p: Optional[bytes]) -> str:
    return p.decode("utf-8", "replace") if p else ""


def cert_info_of(c: Any) -> CertInfo:
    return CertInfo(int(c.client_id), cert_result(int(c.result)), _s(c.error), _s(c.cert_pem),
                    pem_blocks(_s(c.chain_pem)), _s(c.subject), _s(c.issuer),
                    _s(c.server_name))


class CertCall:
    """The ctypes callback behind ``on_cert``: called on library threads during
    handshakes. Holds its owner weakly; refuses once the interpreter is
    exiting; an exception in the handler is logged and refuses the
    certificate (it never unwinds into the library)."""

    def __init__(self, owner: Any) -> None:
        self._owner = weakref.ref(owner)

    def __call__(self, _user: Any, info: Any) -> int:
        try:
            from . import _core

            if _core.is_exiting():
                return 0
            owner = self._owner()
            h = None if owner is None else owner._on_cert
            if h is None or not info:
                return 0
            return 1 if h(cert_info_of(info.contents)) else 0
        except BaseException:
            try:
                from ._core import logger

                logger.exception("exception in on_cert handler; certificate refused")
            except BaseException:
                pass
            return 0


def install_cert_handler(ep: Any, handler: Optional[CertHandler], set_name: str) -> None:
    """Set (or with None remove) ``ep``'s certificate callback."""
    import inspect

    from ._core import need

    if handler is not None and (not callable(handler)
                                or inspect.iscoroutinefunction(handler)):
        raise TypeError("on_cert needs a plain function (it runs on a library thread "
                        "during the handshake)")
    fn = need(set_name)
    ep._on_cert = handler
    h = ep._handle()
    if handler is None:
        fn(h, _lib.CERT_FN(0), None)
        return
    if ep._cert_call is None:
        ep._cert_call = _lib.CERT_FN(CertCall(ep))
        ep._keep.append(ep._cert_call)  # alive until the handle is freed
    fn(h, ep._cert_call, None)


@dataclasses.dataclass(frozen=True)
class TlsInfo:
    """The negotiated parameters of a connection's TLS session."""

    version: str  #: "TLS 1.3", "TLS 1.2"
    version_number: int  #: 0x0304, 0x0303
    cipher: str  #: IANA name, e.g. "TLS_AES_128_GCM_SHA256"
    cipher_id: int  #: IANA id, e.g. 0x1301
    alpn: Optional[str]  #: the negotiated ALPN protocol, None if none
    server_name: Optional[str]  #: the SNI the client sent, None if none
    resumed: bool  #: the session was resumed (ticket / PSK)
    upgraded: bool  #: TLS came by STARTTLS, not from the start
    verify_result: "CertResult | int"  #: the built-in verdict on the peer's certificate
    verify_error: str  #: why the built-in check failed; "" if it passed
    peer_cert: Optional[str]  #: the peer's leaf certificate in PEM, None if it sent none
    peer_chain: Tuple[str, ...]  #: every certificate the peer sent (PEM), leaf first
    peer_subject: Optional[str]  #: RFC 2253 subject of the peer's certificate
    peer_issuer: Optional[str]  #: RFC 2253 issuer of the peer's certificate


# enum tcp_tls_field
F_VERSION_NAME, F_CIPHER_NAME, F_ALPN, F_SERVER_NAME = 1, 2, 3, 4
F_PEER_CERT_PEM, F_PEER_CHAIN_PEM, F_PEER_SUBJECT, F_PEER_ISSUER, F_VERIFY_ERROR = 5, 6, 7, 8, 9


def read_tls_info(info_fn: Any, str_fn: Any, args: Tuple[Any, ...]) -> Tuple[int, Optional[TlsInfo]]:
    """(0, TlsInfo), (0, None) for a plain connection, or (code, None)."""
    c = _lib.CTlsInfo()
    rc = info_fn(*args, ctypes.byref(c), ctypes.sizeof(c))
    if rc == ErrorCode.NO_FIELD:
        return 0, None
    if rc != 0:
        return rc, None

    def text(what: int) -> Optional[str]:
        n, t = _lib.read_string(str_fn, *args, what)
        return t if n >= 0 else None

    chain = text(F_PEER_CHAIN_PEM)
    return 0, TlsInfo(
        version=text(F_VERSION_NAME) or "", version_number=int(c.version),
        cipher=text(F_CIPHER_NAME) or "", cipher_id=int(c.cipher_suite),
        alpn=text(F_ALPN) or None, server_name=text(F_SERVER_NAME) or None,
        resumed=bool(c.resumed), upgraded=bool(c.upgraded),
        verify_result=cert_result(int(c.verify_result)), verify_error=text(F_VERIFY_ERROR) or "",
        peer_cert=(text(F_PEER_CERT_PEM) or None) if c.has_peer_cert else None,
        peer_chain=pem_blocks(chain) if c.has_peer_cert and chain else (),
        peer_subject=text(F_PEER_SUBJECT) if c.has_peer_cert else None,
        peer_issuer=text(F_PEER_ISSUER) if c.has_peer_cert else None)


# -- PEM or path ----------------------------------------------------------------
def is_pem(value: Any) -> bool:
    """True for PEM text in memory: bytes, or a str holding "-----BEGIN"."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    return isinstance(value, str) and "-----BEGIN" in value


def check_source(name: str, value: Any) -> None:
    if value is None or is_pem(value) or isinstance(value, (str, os.PathLike)):
        return
    raise TypeError(f"{name} must be a path or PEM text (str/bytes), not {type(value).__name__}")


def shown(value: Any) -> Optional[str]:
    """What error messages call a source: its path, or "(PEM in memory)"."""
    if value is None:
        return None
    return "(PEM in memory)" if is_pem(value) else os.fspath(value)


def pem_bytes(value: Any) -> bytes:
    b = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if b"\0" in b:
        raise ValueError("PEM text cannot hold NUL bytes")
    return b


# Which start code a missing file of each role gives (as the library's own start).
_PATH_CODES = {"ca": StartCode.WRONG_CA_PATH, "cert": StartCode.WRONG_CERT_PATH,
               "key": StartCode.WRONG_KEY_PATH}


def as_pem(role: str, value: Any, what: str) -> Optional[bytes]:
    """PEM bytes of a source (reading a path); a StartError as the library
    would give for a file it cannot read."""
    if value is None:
        return None
    if is_pem(value):
        return pem_bytes(value)
    path = os.fspath(value)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise start_error(_PATH_CODES[role], f"{path}: {e.strerror or e}", what=what,
                          **{role: path}) from None


def as_path(value: Any) -> Optional[bytes]:
    return None if value is None else os.fsencode(os.fspath(value))


def pair_args(cert: Any, key: Any) -> Tuple[Optional[bytes], Optional[bytes], int]:
    """(cert, key, is_pem) for the functions that take both forms."""
    if cert is None and key is None:
        return None, None, 0
    if cert is None or key is None:
        raise ValueError("give both cert and key, or neither")
    check_source("cert", cert)
    check_source("key", key)
    if is_pem(cert) or is_pem(key):
        return (as_pem("cert", cert, "tcpgo") or b""), (as_pem("key", key, "tcpgo") or b""), 1
    return as_path(cert), as_path(key), 0


def triple_args(ca: Any, cert: Any, key: Any) -> Tuple[Optional[bytes], Optional[bytes],
                                                         Optional[bytes], int]:
    """(ca, cert, key, is_pem): paths as they are, or everything as PEM when any is."""
    for n, v in (("ca", ca), ("cert", cert), ("key", key)):
        check_source(n, v)
    if any(is_pem(v) for v in (ca, cert, key)):
        return (as_pem("ca", ca, "tcpgo"), as_pem("cert", cert, "tcpgo"),
                as_pem("key", key, "tcpgo"), 1)
    return as_path(ca), as_path(cert), as_path(key), 0


# -- options ----------------------------------------------------------------------
def names_option(name: str, value: Union[str, Iterable[str], None]) -> Optional[str]:
    """A list option (ALPN protocols, cipher suites) as the library's comma-separated str."""
    if value is None:
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    else:
        items = []
        for v in value:
            if not isinstance(v, str):
                raise TypeError(f"{name} entries must be str, not {type(v).__name__}")
            if "," in v:
                raise ValueError(f"{name} entry {v!r} holds a comma")
            items.append(v.strip())
    return ",".join(items)


def apply_tls_options(ep: Any, *, min_tls_version: Any = None, max_tls_version: Any = None,
                      cipher_suites: Any = None, alpn: Any = None, key_log_file: Any = None,
                      resumption: Optional[bool] = None, server_name: Optional[str] = None,
                      system_cas: Optional[bool] = None) -> None:
    """Set the TLS options that are not None on ``ep`` (an Endpoint)."""
    from . import _core
    from .server import tls_version_value

    if min_tls_version is not None:
        ep._set_option(_core.OPT_TLS_MIN_VERSION, tls_version_value(min_tls_version))
    if max_tls_version is not None:
        ep._set_option(_core.OPT_TLS_MAX_VERSION, tls_version_value(max_tls_version))
    if resumption is not None:
        ep._set_option(_core.OPT_TLS_RESUMPTION, 1 if resumption else 0)
    if system_cas is not None:
        ep._set_option(_core.OPT_TLS_SYSTEM_CAS, 1 if system_cas else 0)
    for opt, name, value in ((_core.OPT_TLS_CIPHER_SUITES, "cipher_suites", cipher_suites),
                             (_core.OPT_TLS_ALPN, "alpn", alpn)):
        s = names_option(name, value)
        if s is not None:
            try:
                ep._set_option_str(opt, s)
            except ValueError as e:
                raise ValueError(f"{name}={value!r}: {e}") from None
    if server_name is not None:
        if not isinstance(server_name, str):
            raise TypeError("server_name must be a str")
        ep._set_option_str(_core.OPT_TLS_SERVER_NAME, server_name)
    if key_log_file is not None:
        ep._set_option_str(_core.OPT_TLS_KEYLOG_FILE, os.fspath(key_log_file))
