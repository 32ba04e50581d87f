/*
 * tcpgo.h -- the C interface of tcpgo, a TCP and TLS client/server engine.
 *
 * tcpgo is written in Go and shipped as one shared library, libtcpserver.so
 * (the names libtcpclient.so, libtlsserver.so and libtlsclient.so are links to
 * the same file). Link with -ltcpserver. TLS is Go's crypto/tls: no OpenSSL is
 * needed at build or run time.
 *
 * ---------------------------------------------------------------------------
 * CONVENTIONS (they hold for every function below unless it says otherwise)
 * ---------------------------------------------------------------------------
 *
 * Naming.  Every symbol starts with tcp_ / TCP_ / TCPGO_, except the three
 *   names kept from nilshenrich/TCP_ServerClient v2: tls_server_start,
 *   tls_client_start and get_subj_part.
 *
 * Handles.  tcp_server and tcp_client are opaque. Create them with
 *   tcp_server_new*() / tcp_client_new*() and release them with
 *   tcp_server_free() / tcp_client_free(). A handle is not a pointer into Go
 *   memory; it is a token that the library maps to its own object. Passing a
 *   NULL handle is safe: functions return TCP_ERR_INVALID_ARG (0 for those
 *   that return 1/0 or a count, nothing for void ones, and the text "invalid
 *   server handle" / "invalid client handle" for *_last_error). NULL for a
 *   required pointer argument gives TCP_ERR_INVALID_ARG too, except where a
 *   function documents a start code for it. A freed handle is detected:
 *   handles are addresses in a region the library reserves (and that faults
 *   when dereferenced), handed out in increasing order and not reused
 *   before 2^26 newer handles were made, so a call on a freed handle
 *   returns TCP_ERR_INVALID_ARG (0 / nothing, as for NULL) and never acts
 *   on a newer object.
 *
 * Threads.  Every function may be called from any thread, concurrently, and
 *   from inside a callback of the same or another handle -- except
 *   tcp_server_free() and tcp_client_free(), which must not be called from a
 *   callback of the handle being freed. Functions that wait (stop, free,
 *   flush, start) wait at most for a documented timeout or for callbacks.
 *
 * Callbacks.  Callbacks run on threads owned by the library, never on the
 *   thread that called start(). For one connection the events come one at a
 *   time and in order: established, then messages, then closed exactly once.
 *   Different connections are served in parallel, so callbacks of different
 *   connections may run at the same time on different threads -- at most
 *   TCP_OPT_CALLBACK_THREADS (default 64) of one handle at once, and 4096
 *   in the process: each running callback holds an OS thread, and this
 *   bound keeps slow callbacks from exhausting threads. Events of other
 *   connections wait meanwhile (those connections are not read, so their
 *   peers are slowed by TCP), and threads left idle after a burst are
 *   ended about a second later. A callback must not block for long: while
 *   it runs, that connection reads nothing; and a callback that waits for
 *   another connection's callback can deadlock once every slot is taken.
 *   A callback must not unwind (no longjmp, no C++ exception) into the
 *   library: catch everything in the callback.
 *
 * Pointers passed to callbacks (message data, error text) are valid only
 *   for the duration of the call; copy what you need to keep.
 * Pointers passed to the library (data to send, paths, host names) are read
 *   before the call returns; the library keeps no reference to them.
 * Strings returned by the library come in one of two ways:
 *   - static strings (tcp_strerror, tcp_version): never free them;
 *   - copies into a caller-provided buffer (buf, buflen): the function
 *     returns the full length of the string without the terminating NUL,
 *     writes at most buflen-1 bytes plus a NUL, and so the result was
 *     truncated exactly when the return value is >= buflen (as snprintf).
 *
 * Errors.  Functions that can fail return an int: 0 (or a count, or a
 *   length) on success and a negative TCP_ERR_* code on failure; start
 *   functions return the positive start codes of TCP_ServerClient v2.
 *   tcp_strerror() turns any code into text, and
 *   tcp_server_last_error() / tcp_client_last_error() give the detailed
 *   reason of the last failure on that handle (a path, an OS error...).
 *
 * Signals.  The library installs no handler for SIGINT, SIGTERM, SIGHUP,
 *   SIGCHLD or any other signal a host uses. The Go runtime inside it, when
 *   the library loads, installs handlers for:
 *   - SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP: faults on its own threads;
 *     on a host thread they are passed on to the host's previous handler.
 *   - SIGPIPE: a write to a reset connection on a library thread is turned
 *     into an error (EPIPE). Writes that run on the caller's thread (a send
 *     with nothing queued) use MSG_NOSIGNAL, so a host thread never gets
 *     SIGPIPE from tcpgo.
 *   - SIGURG: the runtime's goroutine preemption, sent only to library
 *     threads; a host thread never receives it from tcpgo.
 *   What a host must do: install its own handlers for the fault signals
 *   with SA_ONSTACK (and chain to the previous one); never set SIGPIPE to
 *   SIG_DFL after the library loaded (SIG_IGN, or a handler of its own, is
 *   fine; SIG_DFL before loading is fine too); leave SIGURG alone (a host
 *   handler for it disables preemption; nothing breaks, but tight loops in
 *   the library could then delay stop). After fork() the library is
 *   unusable in the child (the Go runtime does not survive fork); exec()
 *   first.
 *
 * Descriptor limit.  The Go runtime raises RLIMIT_NOFILE's soft limit to the
 *   hard limit when it starts; tcpgo puts the host's value back before any
 *   of its functions returns, so loading it changes nothing for the host or
 *   its children. A server for more than ~1000 connections raises the
 *   limit itself, e.g. with tcp_raise_fd_limit().
 *
 * Memory.  The Go runtime collects its heap when it has grown by the live
 *   size (GOGC=100). Under many hostile peers that doubles what the
 *   connections need, so the library keeps the runtime's soft memory limit
 *   at what is live plus max(64 MiB, half of it), re-read four times a
 *   second: ordinary servers see no change, a loaded one collects sooner.
 *   Memory a quiet process no longer uses goes back to the operating system
 *   within seconds. A host that sets GOMEMLIMIT or GOGC in the environment
 *   before loading the library keeps its own choice (the library then sets
 *   no limit).
 *
 * Output.  The library prints nothing unless asked: see tcp_set_log().
 *
 * Defaults for untrusted peers (every value is an option, see below):
 *
 *   what                         default        option
 *   message length (fragmented)  16 MiB         max_len of *_new_fragmented
 *   send queue per connection    4 MiB          TCP_OPT_SEND_QUEUE_LIMIT
 *   server memory budget         64 MiB         TCP_OPT_MEMORY_BUDGET
 *   (receive buffers of partial messages + send queues + event queue)
 *   event queue (poll mode)      16 MiB         TCP_OPT_EVENT_QUEUE_LIMIT
 *   connections at once          10000          TCP_OPT_MAX_CONNECTIONS
 *   TLS handshake / PROXY header 10 s           TCP_OPT_CONNECT_TIMEOUT_MS
 *   idle / message / write       none           TCP_OPT_*_TIMEOUT_MS
 *   keep-alive                   on, 15 s, 15 s, 9 probes
 *   callbacks running at once    64             TCP_OPT_CALLBACK_THREADS
 *   linger at stop / close       1 s            TCP_OPT_LINGER_MS
 *
 *   A connection holds no receive buffer while no message is partly
 *   received (plain TCP); buffers grow only as a message's bytes arrive and
 *   are released when it is complete. Large buffers are returned to the
 *   operating system within seconds of their connection ending.
 */
#ifndef TCPGO_H
#define TCPGO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------- */

#define TCPGO_VERSION_MAJOR 0
#define TCPGO_VERSION_MINOR 1
#define TCPGO_VERSION_PATCH 0
/* "MAJOR.MINOR.PATCH" */
#define TCPGO_VERSION "0.1.0"
/* MAJOR*10000 + MINOR*100 + PATCH, comparable with tcp_version_number(). */
#define TCPGO_VERSION_NUMBER \
  (TCPGO_VERSION_MAJOR * 10000 + TCPGO_VERSION_MINOR * 100 + TCPGO_VERSION_PATCH)

/* The version of the library actually loaded, as "MAJOR.MINOR.PATCH".
 * Static string; never free it. Compare with TCPGO_VERSION to detect a
 * header/library mismatch. */
const char *tcp_version(void);

/* The loaded library's version as MAJOR*10000 + MINOR*100 + PATCH. */
int tcp_version_number(void);

/* ---------------------------------------------------------------------------
 * Result codes
 * ------------------------------------------------------------------------- */

/* Start codes: the values returned by the start functions. They are exactly
 * the codes of nilshenrich/TCP_ServerClient v2 (SERVER_ERROR_START_* and
 * CLIENT_ERROR_START_*). */
enum tcp_start_code {
  TCP_START_OK = 0,
  TCP_START_WRONG_PORT = 10,      /* port outside 0..65535 (client: 1..65535) */
  TCP_START_SET_CONTEXT = 20,     /* TLS configuration could not be built */
  TCP_START_WRONG_CA_PATH = 30,   /* CA file missing or unreadable */
  TCP_START_WRONG_CERT_PATH = 31, /* certificate file missing or unreadable */
  TCP_START_WRONG_KEY_PATH = 32,  /* key file missing or unreadable */
  TCP_START_WRONG_CA = 33,        /* CA file holds no valid PEM certificate */
  TCP_START_WRONG_CERT = 34,      /* certificate file holds no valid PEM cert */
  TCP_START_WRONG_KEY = 35,       /* key invalid, or does not match the cert */
  TCP_START_CREATE_SOCKET = 40,   /* socket() failed */
  TCP_START_SET_SOCKET_OPT = 41,  /* setsockopt() failed */
  TCP_START_BIND_PORT = 42,       /* bind() failed: port in use, no rights */
  TCP_START_LISTEN = 43,          /* listen() failed, or the bind address
                                     is not an IP address or known name */
  TCP_START_CONNECT = 50,         /* client: refused, unreachable, timed out,
                                     host name not resolved */
  TCP_START_CONNECT_INIT = 60     /* client: TLS handshake failed */
};

/* Negative codes returned by all other functions (and by start functions
 * for misuse). */
enum tcp_error_code {
  TCP_OK = 0,
  TCP_ERR_ALREADY_RUNNING = -1,  /* start() on a running handle */
  TCP_ERR_INVALID_ARG = -2,      /* NULL handle or pointer, bad option value */
  TCP_ERR_NO_CLIENT = -3,        /* no connected client with that id */
  TCP_ERR_NO_FIELD = -4,         /* certificate has no such subject field,
                                    or the peer sent no certificate */
  TCP_ERR_NOT_RUNNING = -5,      /* the handle is not (or no longer) running */
  TCP_ERR_INTERNAL = -6,         /* a bug in tcpgo; the last error says more */
  TCP_ERR_MESSAGE_TOO_LONG = -7, /* a message exceeds the maximum length */
  TCP_ERR_IO = -8,               /* read or write failed (peer reset...) */
  TCP_ERR_HANDSHAKE = -9,        /* a peer's TLS handshake failed or its
                                    certificate was rejected */
  TCP_ERR_BUFFER_TOO_SMALL = -10,/* tcp_*_poll: next event does not fit */
  TCP_ERR_UNKNOWN_OPTION = -11,  /* option id not known to this version */
  TCP_ERR_TIMEOUT = -12,         /* idle or handshake timeout expired */
  TCP_ERR_CONTAINS_DELIMITER = -13, /* message to send holds the delimiter */
  TCP_ERR_QUEUE_FULL = -14,      /* send queue of the connection is full */
  TCP_ERR_FILE = -15,            /* a file could not be read or written */
  TCP_ERR_MEMORY_BUDGET = -16,   /* the server-wide memory budget
                                    (TCP_OPT_MEMORY_BUDGET) is used up */
  TCP_ERR_REFUSED = -17,         /* a connection was refused: accept
                                    callback, allow/block list, or
                                    TCP_OPT_MAX_CONNECTIONS */
  TCP_ERR_PROXY = -18,           /* PROXY protocol header missing, malformed,
                                    or from an address not trusted */
  TCP_ERR_ACCEPT = -19           /* accept() failed (out of descriptors...);
                                    the library retries with a back-off */
};

/* A short English description of any start or error code. Unknown codes
 * give "unknown error code". Static string; never free it. */
const char *tcp_strerror(int code);

/* Why a connection closed: the reason argument of tcp_closed_ex_fn and
 * tcp_client_closed_ex_fn, and the code field of a TCP_EVENT_CLOSED record. */
enum tcp_close_reason {
  TCP_CLOSE_PEER = 1,            /* the peer closed (EOF); what was queued
                                    for it was written first */
  TCP_CLOSE_RESET = 2,           /* read or write failed (reset, broken
                                    pipe, network error) */
  TCP_CLOSE_IDLE_TIMEOUT = 3,    /* nothing received for the idle timeout */
  TCP_CLOSE_MESSAGE_TIMEOUT = 4, /* a message started but did not finish
                                    within TCP_OPT_MESSAGE_TIMEOUT_MS */
  TCP_CLOSE_WRITE_TIMEOUT = 5,   /* queued data not taken by the peer within
                                    TCP_OPT_WRITE_TIMEOUT_MS */
  TCP_CLOSE_STOPPED = 6,         /* the server or client was stopped */
  TCP_CLOSE_LOCAL = 7,           /* tcp_server_close_client() */
  TCP_CLOSE_MESSAGE_TOO_LONG = 8,/* the peer sent a message over max_len */
  TCP_CLOSE_TLS = 9,             /* TLS failure after the handshake */
  TCP_CLOSE_MEMORY_BUDGET = 10,  /* the connection needed more than its share
                                    of TCP_OPT_MEMORY_BUDGET */
  TCP_CLOSE_INTERNAL = 11        /* a bug in tcpgo or a panic in a callback */
};

/* A short English description of a tcp_close_reason ("peer closed", ...).
 * Unknown values give "unknown close reason". Static string. */
const char *tcp_close_reason_str(int reason);

/* ---------------------------------------------------------------------------
 * Error detail per calling thread
 *
 * Every function of this header that can fail records, for the calling
 * thread only, the result of the call: its code, the OS error number behind
 * it (ECONNREFUSED, EADDRINUSE, EADDRNOTAVAIL, EMFILE, ETIMEDOUT...) and a
 * readable reason. A call that succeeds clears the record. Other threads'
 * calls never change it, so, unlike tcp_server_last_error(), it is safe to
 * read after a failure while other threads use the same handle. Functions
 * that cannot fail (tcp_version, tcp_strerror, the getters of this section,
 * tcp_*_is_running, tcp_*_set_on_*) leave it unchanged.
 * ------------------------------------------------------------------------- */

/* The code of this thread's last call: 0 when it succeeded, else the start
 * code or TCP_ERR_* it returned (for the functions that return 1/0, such as
 * tcp_send_msg, the code behind the 0). */
int tcp_errcode(void);

/* The OS error number (errno value) behind this thread's last failure, or 0
 * when it had none (a bad argument, a certificate that does not parse). */
int tcp_errno(void);

/* The reason of this thread's last failure as text (a path, an OS error...),
 * "" after a success; copied into buf (see CONVENTIONS). */
int tcp_errmsg(char *buf, size_t buflen);

/* ---------------------------------------------------------------------------
 * Options
 *
 * Options are set on a handle that is not running (between new() and
 * start(), or after stop()); setting one on a running handle returns
 * TCP_ERR_ALREADY_RUNNING. Unknown ids return TCP_ERR_UNKNOWN_OPTION, so a
 * program can probe what the loaded library supports. Millisecond options
 * take 0..INT_MAX (about 24.8 days), byte counts 0..2^40; values outside
 * their range give TCP_ERR_INVALID_ARG and change nothing. On/off options
 * take 0 or any other value for on. An option that does
 * not apply to the kind of handle (TCP_OPT_BIND_ADDRESS on a client,
 * TCP_OPT_VERIFY_MODE on a server) is accepted and has no effect.
 * ------------------------------------------------------------------------- */
enum tcp_option {
  /* Integer options (tcp_*_set_option). */

  /* Lowest TLS version accepted: 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3,
   * the default). Server and client. */
  TCP_OPT_TLS_MIN_VERSION = 1,
  /* Client certificate policy of a TLS server started with a CA:
   * 1 (default) require and verify, 0 verify if the client sends one. */
  TCP_OPT_REQUIRE_CLIENT_CERT = 2,
  /* TLS client verification: TCP_VERIFY_FULL (default) checks the chain
   * against the CA and the host name or IP (or TCP_OPT_TLS_SERVER_NAME)
   * against the certificate's subjectAltName; TCP_VERIFY_CA checks only
   * that the certificate is signed by the given CA (what TCP_ServerClient
   * v2 does), and sends no SNI. Both check the certificate's purpose as
   * OpenSSL's ssl_server purpose does: an extended key usage without
   * serverAuth, or a key usage without digitalSignature, keyEncipherment
   * or keyAgreement, is refused ("unsuitable certificate purpose"); certificates with no
   * such extensions (X.509 v1, CN-only) are accepted. A server checks
   * client certificates the same way for clientAuth. */
  TCP_OPT_VERIFY_MODE = 3,
  /* Milliseconds a client's connect() plus TLS handshake may take
   * (default 10000). Server: milliseconds an accepted connection may take
   * to complete its TLS handshake (default 10000). 0 = no limit. */
  TCP_OPT_CONNECT_TIMEOUT_MS = 4,
  /* 1 (default) disables Nagle's algorithm (TCP_NODELAY). */
  TCP_OPT_NODELAY = 5,
  /* Bytes queued for sending on one connection before tcp_send_msg
   * refuses more (TCP_ERR_QUEUE_FULL, return 0). A single message larger
   * than the limit is accepted when nothing is queued. Default 4 MiB;
   * 0 = no limit (the memory budget still applies). */
  TCP_OPT_SEND_QUEUE_LIMIT = 6,
  /* 1 = deliver events through tcp_*_poll() instead of callbacks (the
   * callbacks are then never called). Default 0. */
  TCP_OPT_EVENT_QUEUE = 7,
  /* With TCP_OPT_EVENT_QUEUE: bytes of message data queued before the
   * library stops reading from the connections (back-pressure).
   * Default 16 MiB. */
  TCP_OPT_EVENT_QUEUE_LIMIT = 8,
  /* Server: 1 sets SO_REUSEPORT on the listener (default 0; with 0 a
   * second server on a port in use fails with TCP_START_BIND_PORT). */
  TCP_OPT_REUSEPORT = 9,
  /* Milliseconds that tcp_server_stop, tcp_server_close_client and
   * tcp_client_stop first wait for data already queued on a connection to
   * be written (handed to the kernel) before closing it, so that "send,
   * then stop" delivers. The wait ends as soon as the queues are empty or
   * the peer is gone. Default 1000; 0 closes at once and discards what is
   * queued. Server and client. */
  TCP_OPT_LINGER_MS = 10,

  /* --- Connection control (server unless noted) --------------------- */

  /* Maximum number of connections at once, counting those still in their
   * TLS handshake. One more is closed at once, never reaches established,
   * is counted (tcp_server_stats.refused_limit) and reported to the error
   * callback with client_id 0 and TCP_ERR_REFUSED. A connection's place is
   * free once its closed callback returned. Default 10000; 0 = no
   * limit. A process here may hold 20,000 descriptors; raise the soft
   * limit with tcp_raise_fd_limit() for more than ~1000 connections. */
  TCP_OPT_MAX_CONNECTIONS = 11,
  /* Milliseconds without any byte received after which a connection is
   * closed (reason TCP_CLOSE_IDLE_TIMEOUT). Default 0 = never. Changeable
   * per connection with tcp_server_set_idle_timeout(). Server and client. */
  TCP_OPT_IDLE_TIMEOUT_MS = 12,
  /* Milliseconds a message may take from its first byte to its end
   * (fragmented mode): slow-drip peers are closed with reason
   * TCP_CLOSE_MESSAGE_TIMEOUT. Default 0 = no limit. Server and client. */
  TCP_OPT_MESSAGE_TIMEOUT_MS = 13,
  /* Milliseconds queued data may wait for the peer to take any of it
   * before the connection is closed (reason TCP_CLOSE_WRITE_TIMEOUT).
   * Default 0 = no limit. Also bounds the drain after a peer's EOF (see
   * TCP_OPT_CLOSE_ON_EOF). Server and client. */
  TCP_OPT_WRITE_TIMEOUT_MS = 14,
  /* 1 enables TCP keep-alive probes (default 1, with the values below). */
  TCP_OPT_KEEPALIVE = 15,
  /* Keep-alive: idle milliseconds before the first probe (default 15000),
   * milliseconds between probes (default 15000) and unanswered probes
   * before the connection is dropped (default 9). Server and client.
   * Rounded up to whole seconds and capped at Linux's maxima (32767 s,
   * 32767 s, 127 probes). */
  TCP_OPT_KEEPALIVE_IDLE_MS = 16,
  TCP_OPT_KEEPALIVE_INTERVAL_MS = 17,
  TCP_OPT_KEEPALIVE_COUNT = 18,
  /* Listen backlog: connections the kernel completes before the server
   * accepts them. Default 0 = the system's maximum (net.core.somaxconn). */
  TCP_OPT_BACKLOG = 19,
  /* With an IPv6 bind address ("::" or ""): 1 = IPv6 only, 0 (default) =
   * IPv4 and IPv6 on one socket. */
  TCP_OPT_IPV6_ONLY = 20,
  /* Bytes the server may hold for all its connections together: receive
   * buffers of partial messages, send queues, and the event queue. A
   * connection that needs more while the budget is used up and it holds
   * more than its share (budget / connections) is closed with reason
   * TCP_CLOSE_MEMORY_BUDGET; a send that would pass the budget is refused
   * with TCP_ERR_MEMORY_BUDGET. Default 64 MiB; 0 = no budget. */
  TCP_OPT_MEMORY_BUDGET = 21,
  /* Bytes: after a send was refused (queue full or budget), the ready
   * callback (tcp_server_set_on_ready) runs once the connection's queue
   * drained to this many bytes or fewer. Default 65536. Server and client. */
  TCP_OPT_SEND_LOW_WATER = 22,
  /* How many callbacks of this handle may run at the same time (each one
   * holds an OS thread while it runs). Events of other connections wait
   * -- and those connections are not read meanwhile -- until one returns.
   * Default 64, 1..4096. Besides, the whole process never runs more than
   * 4096 callbacks at once. When no callback has run for a second, the
   * threads beyond the process's start-up count + GOMAXPROCS + 4 are
   * ended. A callback that itself causes a callback of the same handle on
   * its thread -- restarting a TLS client that has a certificate callback,
   * from its closed callback -- needs a second slot: with 1 that would wait
   * forever, so keep at least 2 there. Server and client. */
  TCP_OPT_CALLBACK_THREADS = 23,
  /* Client: 1 reconnects automatically after the connection was lost (not
   * after tcp_client_stop), with exponential back-off between
   * TCP_OPT_RECONNECT_MIN_MS (default 100) and TCP_OPT_RECONNECT_MAX_MS
   * (default 30000) and +-20 % jitter; each attempt is reported to the
   * connect callback (tcp_client_set_on_connect). Default 0. */
  TCP_OPT_RECONNECT = 24,
  TCP_OPT_RECONNECT_MIN_MS = 25,
  TCP_OPT_RECONNECT_MAX_MS = 26,
  /* What a peer's EOF (it will send no more) does. 0 (default): reading
   * ends, data queued for the peer (including replies sent from the
   * callbacks of its last messages) is still written -- bounded by
   * TCP_OPT_WRITE_TIMEOUT_MS, else by TCP_OPT_LINGER_MS of inactivity --
   * then the connection closes with reason TCP_CLOSE_PEER (or, when the
   * bound cut the writing short and data was dropped,
   * TCP_CLOSE_WRITE_TIMEOUT after an error callback with TCP_ERR_TIMEOUT).
   * 1: close at once, discarding what is queued. Server and client. */
  TCP_OPT_CLOSE_ON_EOF = 27,
  /* Server: PROXY protocol (HAProxy's, v1 and v2) from the addresses of
   * TCP_OPT_PROXY_TRUSTED. 0 (default) = off; 1 = a connection from a
   * trusted address must start with a PROXY header, a connection from any
   * other address is served directly (and refused if a PROXY header from
   * it has already arrived when it is accepted -- use 2 where only proxies
   * may connect); 2 = every connection must come from a trusted address
   * with a header. A violation (untrusted source, malformed, truncated or
   * missing header) closes the connection before any callback, counted in
   * tcp_server_stats.handshake_failed and reported to the error callback
   * with client_id 0 and TCP_ERR_PROXY. The header counts against the
   * handshake timeout (TCP_OPT_CONNECT_TIMEOUT_MS). The address the header
   * carries is the client's address everywhere: the lists, the accept
   * callback, tcp_server_client_ip/port. A LOCAL header (a proxy's health
   * check) keeps the connection's own address. */
  TCP_OPT_PROXY_PROTOCOL = 28,

  /* --- TLS (see "TLS settings and information") ---------------------- */

  /* Highest TLS version: 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3, the
   * default). Must not be below TCP_OPT_TLS_MIN_VERSION (the start then
   * fails with TCP_START_SET_CONTEXT). Server and client. */
  TCP_OPT_TLS_MAX_VERSION = 29,
  /* 1 (default): a client keeps its sessions (per handle, per server name)
   * and resumes them on the next connection; a server issues session
   * tickets. 0: neither. Server and client. */
  TCP_OPT_TLS_RESUMPTION = 30,
  /* Client: 1 trusts the system's CAs besides the CA given to the start
   * (with a NULL CA the system's CAs are used anyway). Default 0. */
  TCP_OPT_TLS_SYSTEM_CAS = 31,

  /* String options (tcp_*_set_option_str). */

  /* Server: the local address to listen on, e.g. "127.0.0.1" or "::1".
   * Default "" = every interface (IPv4 and IPv6). Client: the local
   * address to connect from (default "" = chosen by the system). */
  TCP_OPT_BIND_ADDRESS = 100,
  /* Server: comma-separated addresses and CIDR ranges of the proxies
   * trusted to send a PROXY header, e.g. "127.0.0.1, 10.0.0.0/8, ::1". */
  TCP_OPT_PROXY_TRUSTED = 101,
  /* TLS 1.2 cipher suites in order of preference, comma-separated, by
   * IANA name (e.g. "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"); "" (the
   * default) = Go's secure defaults. TLS 1.3 suites cannot be chosen. An
   * unknown or insecure name: TCP_ERR_INVALID_ARG. Server and client. */
  TCP_OPT_TLS_CIPHER_SUITES = 102,
  /* ALPN protocols, comma-separated, preferred first (e.g. "h2,http/1.1").
   * Client: offered; server: accepted -- a client offering none of them is
   * refused in the handshake. "" (default) = no ALPN. Server and client. */
  TCP_OPT_TLS_ALPN = 103,
  /* Client: the name the server's certificate must match (TCP_VERIFY_FULL)
   * and that is sent as SNI, when it differs from the host dialled -- e.g.
   * connecting to "10.0.0.5" with the name "db.example". "" (default) = the
   * host dialled (an IP address is then matched against IP SANs and no
   * SNI is sent). */
  TCP_OPT_TLS_SERVER_NAME = 104,
  /* A file to which the secrets of every handshake are appended in the NSS
   * key log format (SSLKEYLOGFILE), so that Wireshark can decrypt a
   * capture. For debugging only: anyone who reads it can decrypt the
   * traffic. Opened at start; "" (default) = none. Server and client. */
  TCP_OPT_TLS_KEYLOG_FILE = 105
};

/* Values of TCP_OPT_PROXY_PROTOCOL. */
enum tcp_proxy_mode { TCP_PROXY_OFF = 0, TCP_PROXY_TRUSTED = 1,
                      TCP_PROXY_REQUIRED = 2 };

/* Values of TCP_OPT_VERIFY_MODE. */
enum tcp_verify_mode { TCP_VERIFY_FULL = 0, TCP_VERIFY_CA = 1 };

/* Values of TCP_OPT_TLS_MIN_VERSION. */
#define TCP_TLS_1_2 0x0303
#define TCP_TLS_1_3 0x0304

/* Default maximum message length of fragmented mode (used when 0 is given
 * as max_len): 16 MiB. Any larger max_len up to SIZE_MAX is accepted;
 * values above 32 GiB are treated as 32 GiB, which is "no limit" in
 * practice. */
#define TCP_DEFAULT_MAX_MESSAGE ((size_t)16 * 1024 * 1024)

/* Subject fields for get_subj_part() and tcp_client_server_subj_part().
 * The values are OpenSSL's NIDs, so NID_commonName and friends from
 * <openssl/obj_mac.h> can be passed unchanged. */
enum tcp_subject_nid {
  TCP_NID_COMMON_NAME = 13,
  TCP_NID_COUNTRY_NAME = 14,
  TCP_NID_LOCALITY_NAME = 15,
  TCP_NID_STATE_OR_PROVINCE_NAME = 16,
  TCP_NID_ORGANIZATION_NAME = 17,
  TCP_NID_ORGANIZATIONAL_UNIT_NAME = 18,
  TCP_NID_EMAIL_ADDRESS = 48,
  TCP_NID_SERIAL_NUMBER = 105
};

/* ---------------------------------------------------------------------------
 * Callbacks
 *
 * user_data is the pointer given when the callback was set; the library
 * never dereferences it. See CONVENTIONS for threads and ordering.
 * ------------------------------------------------------------------------- */

/* A client connected (for TLS: its handshake and certificate check
 * succeeded). Runs before any message of that client. */
typedef void (*tcp_established_fn)(void *user_data, int client_id);

/* Bytes from a client. Fragmented mode: one whole message without its
 * delimiter (len may be 0). Continuous mode: the next bytes of the stream,
 * cut wherever the network cut them. data is valid only during the call;
 * it is not NUL-terminated. */
typedef void (*tcp_message_fn)(void *user_data, int client_id,
                                const char *data, size_t len);

/* A connection ended, for whatever reason (peer closed, error, stop).
 * Called exactly once per established client, after its last message. */
typedef void (*tcp_closed_fn)(void *user_data, int client_id);

/* Something went wrong that the program should know about: code is a
 * TCP_ERR_* value (TCP_ERR_MESSAGE_TOO_LONG, TCP_ERR_HANDSHAKE, TCP_ERR_IO,
 * TCP_ERR_TIMEOUT), message a readable reason valid during the call.
 * client_id is 0 for a connection that never became established (a failed
 * TLS handshake). For an established client the error comes before its
 * closed event. */
typedef void (*tcp_error_fn)(void *user_data, int client_id, int code,
                              const char *message);

/* Client side: bytes from the server (same rules as tcp_message_fn). */
typedef void (*tcp_client_message_fn)(void *user_data, const char *data,
                                       size_t len);

/* Client side: the connection ended (server closed it, network error, or
 * tcp_client_stop). Called exactly once per connection: once per
 * successful start, and once more per successful reconnection. */
typedef void (*tcp_client_closed_fn)(void *user_data);

/* Client side: an error the program should know about (see tcp_error_fn). */
typedef void (*tcp_client_error_fn)(void *user_data, int code,
                                     const char *message);

/* Extended callbacks. They carry what the v2-style ones above cannot: the
 * connection's own pointer (conn_data, see tcp_server_set_conn_data; NULL
 * until set) and why a connection closed. When both the plain and the
 * extended callback of an event are set, only the extended one runs. */

/* Bytes from a client, with its conn_data (see tcp_message_fn). flags is
 * 0 or TCP_MSG_PARTIAL: this is a part of a message that exceeded its
 * framing's maximum and that the framing is set to deliver in parts (the
 * last part comes without the flag). */
typedef void (*tcp_message_ex_fn)(void *user_data, int client_id,
                                   void *conn_data, const char *data,
                                   size_t len, int flags);

/* flags of tcp_message_ex_fn. */
#define TCP_MSG_PARTIAL 1

/* A connection ended; reason is a tcp_close_reason. conn_data is the
 * connection's pointer: free what it owns here, this is the last call that
 * sees it. */
typedef void (*tcp_closed_ex_fn)(void *user_data, int client_id,
                                  void *conn_data, int reason);

/* The send queue of client_id drained to TCP_OPT_SEND_LOW_WATER after a
 * send to it was refused (TCP_ERR_QUEUE_FULL or TCP_ERR_MEMORY_BUDGET):
 * sending may go on. Runs once per refusal episode, in the connection's
 * event order (never after its closed callback). */
typedef void (*tcp_ready_fn)(void *user_data, int client_id,
                              void *conn_data);

/* A connection is being accepted: ip and port are the peer's (for a PROXY
 * protocol connection, those the header carries), local_port the server's.
 * Runs before any TLS handshake, on a library thread, for every connection
 * that passed the allow/block lists and the connection limit. Return
 * nonzero to accept, 0 to refuse: the connection is closed at once, never
 * reaches established, and is counted in tcp_server_stats.refused.
 * Runs also in event-queue mode (it is a call, not an event). Keep it
 * short: connections wait for it in turn. ip is valid during the call. */
typedef int (*tcp_accept_fn)(void *user_data, const char *ip, int port,
                             int local_port);

/* Client side: the connection ended; reason is a tcp_close_reason. */
typedef void (*tcp_client_closed_ex_fn)(void *user_data, int reason);

/* Client side: bytes from the server, with flags 0 or TCP_MSG_PARTIAL
 * (see tcp_message_ex_fn). */
typedef void (*tcp_client_message_ex_fn)(void *user_data, const char *data,
                                         size_t len, int flags);

/* Client side: the queue drained after a refused send (see tcp_ready_fn). */
typedef void (*tcp_client_ready_fn)(void *user_data);

/* Client side, with TCP_OPT_RECONNECT: one reconnection attempt ended.
 * attempt counts from 1 since the connection was lost; result is
 * TCP_START_OK (connected again: messages follow) or the start code of the
 * failure (the next attempt follows after the back-off). attempt 0 reports
 * the end of a STARTTLS upgrade requested from a callback
 * (tcp_client_starttls). */
typedef void (*tcp_client_connect_fn)(void *user_data, int attempt,
                                       int result);

/* ---------------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------------- */

typedef struct tcp_server tcp_server;

/* A new, stopped server in continuous mode: bytes are delivered as they
 * arrive and sent as given. Returns NULL only when out of memory.
 * Release with tcp_server_free(). */
tcp_server *tcp_server_new(void);

/* A new, stopped server in fragmented mode: every message sent gets the
 * one-byte delimiter appended; received bytes are split at the delimiter,
 * which is removed. Any byte value, '\0' included, may be the delimiter.
 * max_len is the maximum message length (without delimiter) in both
 * directions; 0 means TCP_DEFAULT_MAX_MESSAGE. A peer that sends a longer
 * message is disconnected: the messages before it are delivered, what was
 * queued for the peer (their replies included) is still written, bounded
 * by TCP_OPT_LINGER_MS of no progress, then the error callback gets
 * TCP_ERR_MESSAGE_TOO_LONG and closed runs with TCP_CLOSE_MESSAGE_TOO_LONG;
 * other clients are not affected. Memory per connection stays bounded by
 * max_len, and all connections together by TCP_OPT_MEMORY_BUDGET. */
tcp_server *tcp_server_new_fragmented(char delimiter, size_t max_len);

/* More framings. Each constructor below returns a new, stopped server (or,
 * with tcp_client_, client) whose messages are framed that way in both
 * directions, or NULL when an argument is bad (tcp_errcode() then returns
 * TCP_ERR_INVALID_ARG and tcp_errmsg() says which). max_len is the
 * maximum message length without framing, 0 = TCP_DEFAULT_MAX_MESSAGE. */

/* Byte order of a length prefix. */
enum tcp_byte_order { TCP_BIG_ENDIAN = 0, TCP_LITTLE_ENDIAN = 1 };

/* The length prefix of the TLS tutorials tcpgo was specified from: 4 bytes,
 * little-endian (x86 DWORD), counting the message only. */
#define TCP_TUTORIAL_PREFIX_BYTES 4
#define TCP_TUTORIAL_BYTE_ORDER TCP_LITTLE_ENDIAN

/* Length-prefixed messages: each message is preceded by its length (the
 * message only, not the prefix) as an unsigned integer of prefix_bytes (1,
 * 2, 4 or 8) bytes in byte_order. A received prefix over max_len closes
 * the connection as soon as the prefix is read, before any of the message
 * is buffered (TCP_ERR_MESSAGE_TOO_LONG); the receive buffer grows once, to
 * the announced length. max_len may not exceed what the prefix can count. */
tcp_server *tcp_server_new_length_prefixed(int prefix_bytes, int byte_order,
                                           size_t max_len);

/* What a line framing does with a received line longer than max_len. */
enum tcp_overlong {
  TCP_OVERLONG_CLOSE = 0, /* close with TCP_ERR_MESSAGE_TOO_LONG */
  TCP_OVERLONG_PARTS = 1  /* deliver it in parts of max_len bytes flagged
                             TCP_MSG_PARTIAL (tcp_message_ex_fn), the last
                             part without the flag */
};

/* Messages ended by an end-of-line sequence of eol_len (1..256) bytes of
 * any value, NUL included (e.g. "\r\n", or "\0\0"). Sending appends it
 * and refuses a message containing it (TCP_ERR_CONTAINS_DELIMITER). */
tcp_server *tcp_server_new_eol(const void *eol, size_t eol_len,
                               size_t max_len, int overlong);

/* Text lines: a received line ends at CR, LF or CRLF (a CRLF split
 * between two reads is still one end); sending appends send_eol (NULL =
 * "\r\n") and refuses a line holding CR or LF. A line is delivered as soon as
 * its CR arrives; an LF right after it (even in a later read) is dropped
 * as part of the same end. */
tcp_server *tcp_server_new_lines(const char *send_eol, size_t max_len,
                                 int overlong);

/* Fixed-length records of record_len bytes (0 = bytes as they arrive, in
 * pieces of at most max_len),
 * changeable per connection while it runs (tcp_server_set_record_length).
 * Sending is not framed: what you send is sent as given (as the
 * reference TCPServer component does). record_len may not exceed max_len. */
tcp_server *tcp_server_new_records(size_t record_len, size_t max_len);

/* Change the record length of one connection of a records server, from
 * any thread; from that connection's message callback it applies to the
 * very next record. From another thread it applies from the next bytes
 * that arrive (a record being delivered is not cut again). Bytes already
 * received are cut with the new length from the next record boundary. Returns 0, TCP_ERR_NO_CLIENT, or
 * TCP_ERR_INVALID_ARG (not a records framing, or over max_len). */
int tcp_server_set_record_length(tcp_server *s, int client_id,
                                 size_t record_len);

/* Stops the server if it is running (see tcp_server_stop) and releases
 * the handle. NULL is ignored. Must not be called from a callback of this
 * server. The handle must not be used afterwards. */
void tcp_server_free(tcp_server *s);

/* Set an integer or string option (see enum tcp_option). Returns 0,
 * TCP_ERR_UNKNOWN_OPTION, TCP_ERR_INVALID_ARG or TCP_ERR_ALREADY_RUNNING.
 * The string is copied. */
int tcp_server_set_option(tcp_server *s, int option, long long value);
int tcp_server_set_option_str(tcp_server *s, int option, const char *value);

/* Set (or with fn = NULL remove) a callback. May be called at any time;
 * a change takes effect for the events that follow. user_data is passed to
 * every call of that callback. */
void tcp_server_set_on_established(tcp_server *s, tcp_established_fn fn,
                                   void *user_data);
void tcp_server_set_on_message(tcp_server *s, tcp_message_fn fn,
                               void *user_data);
void tcp_server_set_on_closed(tcp_server *s, tcp_closed_fn fn,
                              void *user_data);
void tcp_server_set_on_error(tcp_server *s, tcp_error_fn fn, void *user_data);

/* Start a plain TCP server on port (1..65535, or 0 for a port chosen by
 * the system: read it with tcp_server_port). Returns when the socket is
 * listening, with TCP_START_OK or a start code (40..43); a running server
 * returns TCP_ERR_ALREADY_RUNNING and is unchanged. The detailed reason of
 * a failure is available from tcp_server_last_error. */
int tcp_server_start(tcp_server *s, int port);

/* Start a TLS server. cert and key are PEM file paths of the server's
 * certificate (optionally followed by its chain) and private key (PKCS#1,
 * PKCS#8 or SEC1; RSA, ECDSA or Ed25519). ca, when not NULL, is a PEM file
 * of the CA certificates that client certificates must be signed by:
 * the server then requires a client certificate and verifies it (mutual
 * TLS; see TCP_OPT_REQUIRE_CLIENT_CERT), including its purpose (a
 * certificate whose extended key usage lacks clientAuth, or whose key
 * usage lacks both digitalSignature and keyAgreement, is refused, as
 * OpenSSL does; one without
 * those extensions is accepted). With ca NULL, clients are not
 * asked for a certificate. TLS 1.3 only unless TCP_OPT_TLS_MIN_VERSION
 * allows TLS 1.2. Files are checked in the order CA path (30), cert path
 * (31), key path (32), CA content (33), cert content (34), key content or
 * key/cert mismatch (35), then the socket (40..43). The files are read
 * once, during this call. A client whose handshake fails never appears as
 * established or in tcp_server_client_ids; the error callback reports it
 * with client_id 0. A NULL cert gives TCP_START_WRONG_CERT_PATH and a NULL
 * key TCP_START_WRONG_KEY_PATH, as a missing file would. */
int tls_server_start(tcp_server *s, int port, const char *ca,
                     const char *cert, const char *key);

/* The port the server listens on (useful after starting on port 0), or
 * TCP_ERR_NOT_RUNNING. */
int tcp_server_port(const tcp_server *s);

/* 1 if the server is running, else 0. */
int tcp_server_is_running(const tcp_server *s);

/* Stop the server: close the listener, give queued data up to
 * TCP_OPT_LINGER_MS to be written, close every connection, run the closed
 * callback once for each connected client, and return when no callback of
 * this server runs any more. Idempotent; safe on a server that never
 * started. tcp_server_is_running turns 0 at once.
 *
 * Called from inside a callback of this server it does not deadlock and
 * does not wait for callbacks (only, up to TCP_OPT_LINGER_MS, for queued
 * data to be written): it closes everything and returns; the closed callbacks
 * follow on their connections' threads (the caller's own right after the
 * current callback returns). Waiting there could deadlock two callbacks
 * stopping at once. A later tcp_server_stop or tcp_server_free from
 * outside the callbacks waits for every remaining callback, so the pattern
 * "stop in a callback, then free in main" is safe. A callback that stops a
 * different server waits for that server's callbacks: do not build cycles.
 * The server can be started again after stop. */
void tcp_server_stop(tcp_server *s);

/* Queue len bytes for client_id; the library copies them before returning.
 * Fragmented mode appends the delimiter. Returns 1 when queued, 0 when
 * not: unknown client id, server not running, message containing the
 * delimiter or longer than max_len (fragmented mode), or a full send
 * queue, or the memory budget used up; tcp_errcode() (this thread) and
 * tcp_server_last_error say which -- or use tcp_server_send_ex, which
 * returns the code. Messages to one client are sent in the order of the
 * calls that queued them. Returning 1 means accepted for sending: it is
 * written even when the peer half-closes (EOF) meanwhile; only a
 * connection that breaks (reset, timeout, stop after the linger) loses
 * what was queued (its closed callback runs). Never blocks on the network:
 * with nothing queued the bytes the kernel takes are written at once on
 * the calling thread, the rest by a library thread -- except while a
 * message callback of that client runs: what is sent to it meanwhile (the
 * replies to one read) goes out in one write when the callback returns. */
int tcp_send_msg(tcp_server *s, int client_id, const void *data, size_t len);

/* Wait up to timeout_ms until everything queued for client_id (0: for
 * every client) was written. Returns 0 when nothing is left, TCP_ERR_TIMEOUT,
 * TCP_ERR_NO_CLIENT (also when the connection closed before its data was
 * written) or TCP_ERR_NOT_RUNNING. Writing happens on library threads, so
 * this works from a callback too, but it holds up that connection's events
 * meanwhile. */
int tcp_server_flush(tcp_server *s, int client_id, int timeout_ms);

/* Queue many messages with one call (for hosts where a call costs much, as
 * Python). buf holds count records in the event-queue format (see
 * "Event queue" below): per record a TCP_EVENT_HEADER_SIZE header whose
 * client_id and len fields are used (kind and code are ignored, write 0),
 * then len bytes of message. Each message is queued as by tcp_send_msg, in
 * order. Returns the number queued; a refused message is skipped and the
 * last error says why. TCP_ERR_INVALID_ARG when buf ends inside a record
 * (the records before it are queued). */
int tcp_server_send_batch(tcp_server *s, const void *buf, size_t len,
                          size_t count);

/* Progress of a file sent with tcp_server_send_file / tcp_client_send_file
 * (client_id 0 for a client): status 1 = sent of total bytes are written
 * (reported about every MiB), then once status 0 = all written, or a
 * negative TCP_ERR_* when the file was not sent whole (the connection
 * closed, the file shrank...). Runs on a library thread, in order for one
 * file, possibly while other callbacks of that connection run. */
typedef void (*tcp_file_progress_fn)(void *user_data, int client_id,
                                     long long sent, long long total,
                                     int status);

/* Queue length bytes of the file at path from offset (length -1: to its
 * end) for client_id as one message, after what is already queued. With
 * plain TCP the kernel copies the file to the socket (sendfile(2)); with
 * TLS it is read and encrypted in chunks. The file is opened during the
 * call (a wrong path is TCP_ERR_FILE at once) and read when its turn
 * comes; it must not change meanwhile. Framing: continuous and records
 * send the file as it is, length-prefixed puts the prefix in front; the
 * delimiter framings refuse files (TCP_ERR_INVALID_ARG: a file may hold the
 * delimiter). progress may be NULL. Returns 0, TCP_ERR_FILE,
 * TCP_ERR_INVALID_ARG (offset or length outside the file),
 * TCP_ERR_MESSAGE_TOO_LONG, TCP_ERR_NO_CLIENT or TCP_ERR_NOT_RUNNING. */
int tcp_server_send_file(tcp_server *s, int client_id, const char *path,
                         long long offset, long long length,
                         tcp_file_progress_fn progress, void *user_data);

/* One buffer of a scatter-gather send. */
typedef struct tcp_iovec {
  const void *base;
  size_t len;
} tcp_iovec;

/* Queue iovcnt buffers as ONE message (framed once), as tcp_server_send_ex
 * does for one buffer. Returns 0 or a TCP_ERR_*. */
int tcp_server_sendv(tcp_server *s, int client_id, const tcp_iovec *iov,
                     int iovcnt);

/* Queue a NUL-terminated line: framings that end messages themselves
 * (delimiter, end-of-line, lines, length prefix) send it as one message;
 * continuous and records append CRLF. Returns 0 or a TCP_ERR_*. */
int tcp_server_send_line(tcp_server *s, int client_id, const char *line);

/* Queue the same message for every connected client. Returns the number of
 * clients it was queued for. */
int tcp_server_broadcast(tcp_server *s, const void *data, size_t len);

/* Close one client's connection, after up to TCP_OPT_LINGER_MS for its
 * queued data to be written (its closed callback follows). Returns 0 or
 * TCP_ERR_NO_CLIENT. */
int tcp_server_close_client(tcp_server *s, int client_id);

/* The ids of the connected (established) clients. Client ids are > 0 and
 * never reused while the server object lives, across restarts too.
 * Writes at most max ids into ids (which may be NULL when max is 0) and
 * returns the number of clients connected, which may exceed max. */
int tcp_server_client_ids(const tcp_server *s, int *ids, size_t max);

/* The client's IP address as text ("127.0.0.1", "::1"), copied into buf
 * (see CONVENTIONS). Returns the length, or TCP_ERR_NO_CLIENT. */
int tcp_server_client_ip(const tcp_server *s, int client_id, char *buf,
                         size_t buflen);

/* The client's TCP port, or TCP_ERR_NO_CLIENT. */
int tcp_server_client_port(const tcp_server *s, int client_id);

/* One subject field of the client's verified TLS certificate: nid is an
 * OpenSSL NID (TCP_NID_*). Copies the field's value (UTF-8) into buf and
 * returns its length (see CONVENTIONS; a first call with buflen 0 gives
 * the size). For a multi-valued field the first value is returned.
 * Returns TCP_ERR_NO_CLIENT for an unknown id, TCP_ERR_NO_FIELD when the
 * certificate has no such field or the client sent no certificate (always
 * so for plain TCP), TCP_ERR_INVALID_ARG for a NID tcpgo does not know. */
int get_subj_part(tcp_server *s, int client_id, int nid, char *buf,
                  size_t buflen);

/* The detailed reason of the last failure of a call on this server (a
 * start, a refused send, a look-up), copied into buf; "" when none.
 * Returns the length. Per handle, not per thread: with several threads
 * failing at once, it holds one of the reasons. tcp_errmsg() is the
 * per-thread equivalent. */
int tcp_server_last_error(const tcp_server *s, char *buf, size_t buflen);

/* ---------------------------------------------------------------------------
 * Server: connection control, flow control, introspection
 * ------------------------------------------------------------------------- */

/* Set (fn = NULL: remove; the accept callback too) the extended
 * callbacks; see their types. */
void tcp_server_set_on_message_ex(tcp_server *s, tcp_message_ex_fn fn,
                                  void *user_data);
void tcp_server_set_on_closed_ex(tcp_server *s, tcp_closed_ex_fn fn,
                                 void *user_data);
void tcp_server_set_on_ready(tcp_server *s, tcp_ready_fn fn, void *user_data);
void tcp_server_set_on_accept(tcp_server *s, tcp_accept_fn fn,
                              void *user_data);

/* Replace the allowed or the blocked list: comma- or space-separated IPv4
 * and IPv6 addresses and CIDR ranges ("10.0.0.0/8, 192.168.1.7, ::1,
 * fd00::/8"); NULL or "" empties the list. Changeable while running; the
 * lists apply to connections accepted afterwards. A connection is refused
 * when its address is on the blocked list, or when the allowed list is not
 * empty and does not hold it (closed at once, before any TLS handshake;
 * counted in tcp_server_stats.refused; error callback with client_id 0 and
 * TCP_ERR_REFUSED). IPv4-mapped IPv6 addresses match IPv4 entries.
 * Returns 0, or TCP_ERR_INVALID_ARG for an entry that does not parse (the
 * list is then unchanged; tcp_errmsg names the entry). */
int tcp_server_set_allowed(tcp_server *s, const char *list);
int tcp_server_set_blocked(tcp_server *s, const char *list);

/* Queue bytes for client_id like tcp_send_msg, but return why not:
 * 0, TCP_ERR_NO_CLIENT (unknown id, or the connection is closing),
 * TCP_ERR_NOT_RUNNING, TCP_ERR_QUEUE_FULL, TCP_ERR_MEMORY_BUDGET,
 * TCP_ERR_MESSAGE_TOO_LONG, TCP_ERR_CONTAINS_DELIMITER or
 * TCP_ERR_INVALID_ARG (NULL data with len > 0, len absurdly large). After
 * TCP_ERR_QUEUE_FULL or TCP_ERR_MEMORY_BUDGET the ready callback tells when
 * to try again. Never blocks. */
int tcp_server_send_ex(tcp_server *s, int client_id, const void *data,
                       size_t len);

/* Bytes queued for client_id and not yet handed to the kernel, or a
 * negative TCP_ERR_* (TCP_ERR_NO_CLIENT...). */
long long tcp_server_queued(const tcp_server *s, int client_id);

/* Stop (pause) or restart (resume) reading from client_id. While paused no
 * message callback runs for it and nothing is read, so the peer is slowed
 * by TCP flow control; nothing is lost. A message already partly received
 * is still read to its end (and delivered after resume). Returns 0 or
 * TCP_ERR_NO_CLIENT. Idempotent. The idle timeout does not run while
 * paused. */
int tcp_server_pause(tcp_server *s, int client_id);
int tcp_server_resume(tcp_server *s, int client_id);

/* Idle timeout of one connection in milliseconds (0 = none), replacing
 * TCP_OPT_IDLE_TIMEOUT_MS for it. Returns 0, TCP_ERR_NO_CLIENT or
 * TCP_ERR_INVALID_ARG (negative or over INT_MAX). */
int tcp_server_set_idle_timeout(tcp_server *s, int client_id, int ms);

/* The connection's own pointer: set it (typically in the established
 * callback) and it is passed to the extended callbacks of that connection;
 * the library never dereferences it. Returns 0 or TCP_ERR_NO_CLIENT. */
int tcp_server_set_conn_data(tcp_server *s, int client_id, void *conn_data);

/* The connection's pointer, or NULL (unknown id, or never set). */
void *tcp_server_conn_data(const tcp_server *s, int client_id);

/* Close the listening socket but keep serving the connections already
 * established (for a rolling restart: a new process can take the port with
 * TCP_OPT_REUSEPORT). Connections whose TCP handshake the kernel completed
 * but that were still waiting in the listen queue are accepted first and
 * served like the others (closing the socket would reset them); only one
 * completing in the instant of the close can still be reset -- see
 * net.ipv4.tcp_migrate_req in the README. tcp_server_is_running stays 1
 * until stop. Returns 0 (also when it no longer listens) or
 * TCP_ERR_NOT_RUNNING. */
int tcp_server_stop_listening(tcp_server *s);

/* Graceful stop: stop listening, give every connection up to timeout_ms in
 * all to write what is queued (new sends are still accepted meanwhile
 * from callbacks), then stop as tcp_server_stop does (closed reason
 * TCP_CLOSE_STOPPED). Returns 0 when every queue was written in time,
 * TCP_ERR_TIMEOUT when some data was dropped, TCP_ERR_NOT_RUNNING. Same
 * threading rules as tcp_server_stop. */
int tcp_server_shutdown(tcp_server *s, int timeout_ms);

/* The value of a TLV of client_id's PROXY protocol v2 header (type as in
 * the specification: 0x01 ALPN, 0x02 AUTHORITY, 0x20 SSL, 0x30 NETNS...),
 * copied into buf as raw bytes (not NUL-terminated; the return value is
 * the full length, as CONVENTIONS says for strings). Returns
 * TCP_ERR_NO_FIELD when the header had no such TLV (or there was no
 * header), TCP_ERR_NO_CLIENT for an unknown id. When the proxy terminated
 * TLS and verified the client's certificate (PP2_TYPE_SSL with
 * PP2_CLIENT_CERT_CONN and verify = 0), get_subj_part(..., 
 * TCP_NID_COMMON_NAME, ...) answers with the CN it sent (PP2_SUBTYPE_SSL_CN):
 * authorisation by CN keeps working behind the proxy. */
int tcp_server_proxy_tlv(const tcp_server *s, int client_id, int type,
                         void *buf, size_t buflen);

/* Counters of a server since it was created (across restarts), cheap
 * enough to leave on. Future versions append fields: pass sizeof. */
typedef struct tcp_server_stats {
  unsigned long long active;        /* connections now, incl. handshakes */
  unsigned long long established;   /* connections that became established */
  unsigned long long accepted;      /* connections accepted by the kernel */
  unsigned long long refused;       /* by the accept callback or the lists */
  unsigned long long refused_limit; /* over TCP_OPT_MAX_CONNECTIONS */
  unsigned long long handshake_failed; /* TLS or PROXY header failures */
  unsigned long long timed_out;     /* idle, message, write, handshake */
  unsigned long long closed_for_limits; /* message too long, memory budget */
  unsigned long long accept_errors; /* accept() failures (EMFILE...) */
  unsigned long long bytes_in;  /* bytes delivered to message callbacks
                                   (framing removed), all connections */
  unsigned long long bytes_out; /* bytes written to the sockets (framing
                                   included), all connections */
  unsigned long long msgs_in, msgs_out;   /* messages (continuous: reads and
                                             sends) */
  unsigned long long memory_used;   /* bytes now charged to the budget */
} tcp_server_stats;

/* Fill *out with as many fields as out_size bytes hold (pass sizeof *out;
 * a program built against an older, shorter struct gets its fields).
 * Counters of live connections are summed at the call, so they may lag
 * what a peer already received by the bytes of writes in progress.
 * Returns 0 or TCP_ERR_INVALID_ARG. */
int tcp_server_get_stats(const tcp_server *s, tcp_server_stats *out,
                         size_t out_size);

/* Counters of one connection. Future versions append fields. */
typedef struct tcp_conn_stats {
  unsigned long long bytes_in, bytes_out; /* as in tcp_server_stats */
  unsigned long long msgs_in, msgs_out;
  long long connected_unix_ms;    /* when it was accepted / connected */
  unsigned long long queued;      /* bytes queued and not yet written */
} tcp_conn_stats;

/* Fill *out for client_id. Returns 0, TCP_ERR_NO_CLIENT or
 * TCP_ERR_INVALID_ARG. */
int tcp_server_conn_stats(const tcp_server *s, int client_id,
                          tcp_conn_stats *out, size_t out_size);

/* ---------------------------------------------------------------------------
 * Client
 * ------------------------------------------------------------------------- */

typedef struct tcp_client tcp_client;

/* A new, stopped client in continuous mode. Release with tcp_client_free. */
tcp_client *tcp_client_new(void);

/* A new, stopped client in fragmented mode (see tcp_server_new_fragmented).
 * A server that sends a message longer than max_len is disconnected with
 * TCP_ERR_MESSAGE_TOO_LONG. */
tcp_client *tcp_client_new_fragmented(char delimiter, size_t max_len);

/* Clients with the framings of the servers above (same arguments). */
tcp_client *tcp_client_new_length_prefixed(int prefix_bytes, int byte_order,
                                           size_t max_len);
tcp_client *tcp_client_new_eol(const void *eol, size_t eol_len,
                               size_t max_len, int overlong);
tcp_client *tcp_client_new_lines(const char *send_eol, size_t max_len,
                                 int overlong);
tcp_client *tcp_client_new_records(size_t record_len, size_t max_len);
int tcp_client_set_record_length(tcp_client *c, size_t record_len);

/* Stops the client if running and releases the handle. NULL is ignored.
 * Must not be called from a callback of this client. */
void tcp_client_free(tcp_client *c);

int tcp_client_set_option(tcp_client *c, int option, long long value);
int tcp_client_set_option_str(tcp_client *c, int option, const char *value);

void tcp_client_set_on_message(tcp_client *c, tcp_client_message_fn fn,
                               void *user_data);
void tcp_client_set_on_closed(tcp_client *c, tcp_client_closed_fn fn,
                              void *user_data);
void tcp_client_set_on_error(tcp_client *c, tcp_client_error_fn fn,
                             void *user_data);

/* Connect to host (a name, an IPv4 or an IPv6 address) and port
 * (1..65535). Returns when connected, with TCP_START_OK, or with
 * TCP_START_WRONG_PORT or TCP_START_CONNECT (refused, unreachable, name not
 * resolved, or TCP_OPT_CONNECT_TIMEOUT_MS expired). A running client returns
 * TCP_ERR_ALREADY_RUNNING, a NULL host TCP_ERR_INVALID_ARG. The previous
 * connection's closed callback may still be running when a restarted
 * client connects. */
int tcp_client_start(tcp_client *c, const char *host, int port);

/* Connect with TLS. ca: PEM file of the CA(s) the server's certificate must
 * chain to (NULL = the system's CAs). cert and key: the client's own
 * certificate and key for mutual TLS (both NULL for none). By default
 * (TCP_VERIFY_FULL) the server's certificate must also match host; with
 * TCP_VERIFY_CA only the signature by the CA is checked. Returns when the
 * handshake is done: TCP_START_OK, 10, 20, 30..35 for the client's own
 * files, 50 for the connection, 60 when the handshake failed (the server's
 * certificate was rejected, the server refused the client, or the
 * handshake did not finish within TCP_OPT_CONNECT_TIMEOUT_MS; a server
 * certificate whose purpose is not serverAuth is rejected in every
 * TCP_OPT_VERIFY_MODE). With TLS
 * 1.3 a server rejects a client certificate only after the client's side
 * of the handshake completed: start then returns TCP_START_OK and the
 * closed callback follows shortly. A server that refuses the connection
 * before its handshake (accept callback, lists, limit) resets it: start
 * then returns 50 or 60, depending on when the reset arrives. */
int tls_client_start(tcp_client *c, const char *host, int port,
                     const char *ca, const char *cert, const char *key);

/* 1 while connected, else 0 (also after the server closed the
 * connection, and while TCP_OPT_RECONNECT is reconnecting). */
int tcp_client_is_running(const tcp_client *c);

/* Close the connection, after up to TCP_OPT_LINGER_MS for queued data to
 * be written; the closed callback runs once (if it has not yet) and no
 * callback of this client runs after stop returns -- unless stop is called
 * from inside one, in which case the closed callback runs right after that
 * callback returns. Idempotent; safe if never started. */
void tcp_client_stop(tcp_client *c);

/* Queue bytes for the server (see tcp_send_msg). Returns 1 or 0. */
int tcp_client_send(tcp_client *c, const void *data, size_t len);

/* Wait up to timeout_ms until everything queued was written: 0,
 * TCP_ERR_TIMEOUT, or TCP_ERR_NOT_RUNNING (the connection is not up; what
 * was queued is lost). */
int tcp_client_flush(tcp_client *c, int timeout_ms);

/* One subject field of the server's certificate (TLS only), as
 * get_subj_part; it stays readable after the connection ended, until the
 * next start. TCP_ERR_NOT_RUNNING if the client never connected. */
int tcp_client_server_subj_part(const tcp_client *c, int nid, char *buf,
                                size_t buflen);

/* The local port of the connection, or TCP_ERR_NOT_RUNNING. */
int tcp_client_local_port(const tcp_client *c);

/* The detailed reason of the last failure on this client. */
int tcp_client_last_error(const tcp_client *c, char *buf, size_t buflen);

/* Client: the same flow control and introspection as the server's. The
 * extended message callback runs instead of the plain one when both are
 * set. */
void tcp_client_set_on_message_ex(tcp_client *c, tcp_client_message_ex_fn fn,
                                  void *user_data);
void tcp_client_set_on_closed_ex(tcp_client *c, tcp_client_closed_ex_fn fn,
                                 void *user_data);
void tcp_client_set_on_ready(tcp_client *c, tcp_client_ready_fn fn,
                             void *user_data);
void tcp_client_set_on_connect(tcp_client *c, tcp_client_connect_fn fn,
                               void *user_data);

/* Queue bytes for the server; 0 or a TCP_ERR_* as tcp_server_send_ex
 * (TCP_ERR_NOT_RUNNING while disconnected, also while reconnecting). */
int tcp_client_send_ex(tcp_client *c, const void *data, size_t len);

/* Bytes queued and not yet written, or TCP_ERR_NOT_RUNNING. */
long long tcp_client_queued(const tcp_client *c);

/* The client's tcp_server_send_file, tcp_server_sendv and
 * tcp_server_send_line (TCP_ERR_NOT_RUNNING while disconnected). */
int tcp_client_send_file(tcp_client *c, const char *path, long long offset,
                         long long length, tcp_file_progress_fn progress,
                         void *user_data);
int tcp_client_sendv(tcp_client *c, const tcp_iovec *iov, int iovcnt);
int tcp_client_send_line(tcp_client *c, const char *line);

/* Pause / resume reading from the server (see tcp_server_pause).
 * 0 or TCP_ERR_NOT_RUNNING. */
int tcp_client_pause(tcp_client *c);
int tcp_client_resume(tcp_client *c);

/* Send a PROXY protocol header first on every connection of this client
 * (before TLS), for chains that expect one: version 1 (text) or 2
 * (binary), src and dst the addresses to announce as "ip:port" ("[ipv6]:port"
 * for IPv6). version 0 sends none (the default). Returns 0 or
 * TCP_ERR_INVALID_ARG; TCP_ERR_ALREADY_RUNNING while running. */
int tcp_client_set_proxy_header(tcp_client *c, int version, const char *src,
                                const char *dst);

/* Counters of the current (or last) connection. 0 or TCP_ERR_NOT_RUNNING
 * before the first connection. */
int tcp_client_conn_stats(const tcp_client *c, tcp_conn_stats *out,
                          size_t out_size);

/* ---------------------------------------------------------------------------
 * Batches: the messages of one read in one callback, many sends in one call
 *
 * Every call between the program and the library crosses from C into Go or
 * back, and a crossing costs far more than a C function call. A program
 * that handles many small messages can take all the messages of one read
 * in one callback and queue all its replies to a connection with one call:
 * two crossings per read instead of two per message.
 *
 * Version: added during 0.1.0 (the version number did not change; not in
 * TCP_ServerClient v2). TCPGO_HAVE_MESSAGE_BATCHES is defined by a header
 * that declares them; a program that must also run against an older
 * library tests the functions at run time (#pragma weak, as
 * bench/c_echo_server.c does).
 * ------------------------------------------------------------------------- */

#define TCPGO_HAVE_MESSAGE_BATCHES 1

/* One message. In a batch callback: data points into the library's buffer
 * (valid only during the call, not NUL-terminated, never NULL -- also when
 * len is 0), flags is 0 or TCP_MSG_PARTIAL (see tcp_message_ex_fn). Given
 * to tcp_*_send_msgs: the message to queue (flags is ignored, so a
 * received array can be sent back as it is). */
typedef struct tcp_msg {
  const char *data;
  size_t len;
  int flags;
} tcp_msg;

/* Messages from a client: msgs[0..count-1] (count >= 1), in the order they
 * arrived, each a message as tcp_message_ex_fn would get it (a whole
 * message in the fragmented framings, the next bytes of the stream in
 * continuous mode, a flagged part of an overlong message). A batch holds
 * what the library decoded from one read of the connection -- from one
 * message up to however many whole messages the read brought; do not rely
 * on the cut. The array and every data pointer are the library's and valid
 * only until the callback returns: copy what you keep.
 *
 * Threads and order: as every callback (see CONVENTIONS): one callback of
 * a connection at a time, after established and before closed; a batch
 * holds one callback slot (TCP_OPT_CALLBACK_THREADS) for its whole call.
 * While it runs that connection reads nothing.
 *
 * From inside the callback a program may call any function (but not free
 * this handle): what it sends to this client meanwhile -- with
 * tcp_send_msg, tcp_server_send_ex or, one call for all the replies,
 * tcp_server_send_msgs -- goes out in one write when the callback returns.
 * tcp_server_pause takes effect after the call (every message of the
 * batch is already read and stays valid). After tcp_server_close_client
 * or tcp_server_stop from inside, the call goes on with its array intact
 * and no later batch of that connection follows; the closed callback
 * comes after this callback returns.
 *
 * Precedence: a message is delivered to exactly one message callback. With
 * a batch callback set, every message goes to it -- a message the library
 * hands over on its own (a framing that does not decode in place, or one
 * read when the callback was set or removed meanwhile) comes as a batch of
 * one; otherwise the extended callback (tcp_message_ex_fn) runs if set,
 * else the plain one (tcp_message_fn). Setting or removing a callback
 * takes effect from the next message; messages are never lost or repeated
 * in the switch. With TCP_OPT_EVENT_QUEUE no message callback runs (the
 * messages are records of the queue). */
typedef void (*tcp_messages_fn)(void *user_data, int client_id,
                                void *conn_data, const tcp_msg *msgs,
                                size_t count);

/* Client side: messages from the server (see tcp_messages_fn). */
typedef void (*tcp_client_messages_fn)(void *user_data, const tcp_msg *msgs,
                                       size_t count);

/* Set (fn = NULL: remove) the batch message callback; see tcp_messages_fn
 * for its precedence over the other message callbacks. Any time, from any
 * thread, also while running. NULL or freed handle: nothing happens. */
void tcp_server_set_on_messages(tcp_server *s, tcp_messages_fn fn,
                                void *user_data);
void tcp_client_set_on_messages(tcp_client *c, tcp_client_messages_fn fn,
                                void *user_data);

/* Queue msgs[0..count-1] for client_id, each as one message exactly as
 * tcp_server_send_ex would (framed, copied before the call returns, in
 * order after what is queued), with one call into the library. Stops at
 * the first message refused. Returns the number queued, from 0 to count;
 * when it is less than count, msgs[return value] was refused and the rest
 * was not tried: tcp_errcode() (this thread) and tcp_server_last_error say
 * why (the codes of tcp_server_send_ex: TCP_ERR_NO_CLIENT,
 * TCP_ERR_NOT_RUNNING, TCP_ERR_QUEUE_FULL, TCP_ERR_MEMORY_BUDGET,
 * TCP_ERR_MESSAGE_TOO_LONG, TCP_ERR_CONTAINS_DELIMITER, TCP_ERR_INVALID_ARG
 * for NULL data with len > 0). Returns TCP_ERR_INVALID_ARG, queuing
 * nothing, for a NULL or freed handle, for msgs NULL with count > 0 and
 * for count > INT_MAX. count 0 returns 0. The flags of each tcp_msg are
 * ignored. Never blocks; any thread, also from callbacks (see
 * tcp_messages_fn for replies from the batch callback). For messages to
 * many clients at once, see tcp_server_send_batch. */
int tcp_server_send_msgs(tcp_server *s, int client_id, const tcp_msg *msgs,
                         size_t count);

/* The client's tcp_server_send_msgs: queue msgs for the server, in order,
 * up to the first refused; returns the number queued (TCP_ERR_NOT_RUNNING
 * in tcp_errcode() while disconnected), or TCP_ERR_INVALID_ARG as above. */
int tcp_client_send_msgs(tcp_client *c, const tcp_msg *msgs, size_t count);

/* ---------------------------------------------------------------------------
 * Event queue (TCP_OPT_EVENT_QUEUE = 1)
 *
 * For hosts where a callback per event is expensive (Python), the library
 * can queue events and hand over many at once. Events are written to buf as
 * packed records in native byte order, one after another, no padding:
 *
 *   int32_t  kind       TCP_EVENT_*
 *   int32_t  client_id  0 for client handles and for server-wide errors
 *   int32_t  code       TCP_ERR_* for TCP_EVENT_ERROR, else 0
 *   uint32_t len        bytes of payload that follow
 *   payload             message bytes, or the error text (not terminated)
 *
 * The per-connection order is the same as with callbacks.
 * ------------------------------------------------------------------------- */

enum tcp_event_kind {
  TCP_EVENT_ESTABLISHED = 1,
  TCP_EVENT_MESSAGE = 2,
  TCP_EVENT_CLOSED = 3,
  TCP_EVENT_ERROR = 4,
  TCP_EVENT_READY = 5,   /* see tcp_ready_fn */
  TCP_EVENT_CONNECT = 6  /* client: a reconnection attempt ended; client_id
                            is the attempt number, code its start code */
};
/* A TCP_EVENT_ESTABLISHED record's payload is the peer's address as text,
 * "ip port" (e.g. "127.0.0.1 40112"), so a poller need not look it up --
 * the connection may be gone when it handles the record. A
 * TCP_EVENT_CLOSED record carries the tcp_close_reason in its code field; a
 * TCP_EVENT_MESSAGE record has TCP_MSG_PARTIAL in its code for a part of an
 * overlong message. Between a client's reconnection attempts, poll times
 * out (returns 0); TCP_ERR_NOT_RUNNING comes only after tcp_client_stop or
 * a loss without TCP_OPT_RECONNECT.
 *
 * Replies and the half-close: when a peer half-closes (EOF), the library
 * waits -- bounded as TCP_OPT_CLOSE_ON_EOF says -- until the poller has
 * handled the events of that moment (it has called poll again after the
 * one that took them; a poller sends a batch's replies before polling
 * again), then writes what was queued and closes. So replies a poller
 * sends to a half-closed peer are delivered too.
 *
 * Replies and batching: while a poller handles the records one poll took,
 * what it sends to those connections is held and written when it polls
 * again (at most 2 ms later): one write per connection and batch instead
 * of one per message. */

/* Size of a record header. */
#define TCP_EVENT_HEADER_SIZE 16

/* Wait up to timeout_ms (0 = do not wait, < 0 is treated as 0) for events
 * and copy as many whole records as fit into buf. Returns the number of
 * events written (0 on timeout) and sets *used to the bytes written.
 * Returns TCP_ERR_BUFFER_TOO_SMALL, with *used set to the size needed,
 * when the next record alone does not fit. Returns TCP_ERR_NOT_RUNNING
 * before the first start and once the handle is stopped (a client: once its
 * connection ended) and every event was taken, and TCP_ERR_INVALID_ARG when
 * the handle does not use the event queue.
 * One thread should poll a handle; the call blocks only up to timeout_ms,
 * so a host can react to signals between calls. */
int tcp_server_poll(tcp_server *s, void *buf, size_t buflen, size_t *used,
                    int timeout_ms);
int tcp_client_poll(tcp_client *c, void *buf, size_t buflen, size_t *used,
                    int timeout_ms);

/* A descriptor that becomes readable when events arrive, for a host event
 * loop (epoll, libuv, asyncio's add_reader) instead of a thread blocking in
 * tcp_*_poll: when it is readable, read its 8 bytes (an eventfd counter)
 * and call poll with timeout 0 until it returns 0 events -- that return
 * re-arms the descriptor; new events then make it readable again. It is
 * also readable once the handle stopped (poll then reports
 * TCP_ERR_NOT_RUNNING). Returns the descriptor, TCP_ERR_INVALID_ARG
 * without TCP_OPT_EVENT_QUEUE, TCP_ERR_NOT_RUNNING before the first start,
 * or TCP_ERR_INTERNAL. The library owns it: never close it; it stays valid
 * until the next start of the handle (which makes a new one -- take it out
 * of your loop before restarting and ask again) or until free. Linux. */
int tcp_server_event_fd(tcp_server *s);
int tcp_client_event_fd(tcp_client *c);

/* ---------------------------------------------------------------------------
 * TLS settings and information
 *
 * Beyond tls_server_start / tls_client_start (PEM files): certificates from
 * memory, a self-signed server certificate, certificate callbacks, the
 * negotiated parameters of a connection, several certificates chosen by
 * SNI, reloading without a restart, and explicit TLS (STARTTLS). Versions,
 * suites, ALPN, the server name, resumption and a key log are options
 * (TCP_OPT_TLS_*). Verification is the same in C, C++ and Python:
 * TCP_VERIFY_FULL checks chain, purpose and name; TCP_VERIFY_CA chain and
 * purpose (what nilshenrich v2 does).
 * ------------------------------------------------------------------------- */

/* Start a TLS server with PEM text in memory instead of files. ca_pem: CA
 * certificates for client certificates (NULL = do not ask for one, unless a
 * certificate callback is set). cert_pem (optionally followed by its chain)
 * and key_pem: the server's pair -- or both NULL: the server makes a
 * self-signed ECDSA P-256 certificate, valid for a year for "localhost",
 * 127.0.0.1 and ::1 (or for TCP_OPT_BIND_ADDRESS when bound to one other
 * address); read it with tcp_server_tls_certificate so that clients can
 * trust it. The strings are NUL-terminated and copied during the call.
 * Returns as tls_server_start, with the content codes 33..35 (one of cert
 * and key without the other: 34 or 35). */
int tls_server_start_pem(tcp_server *s, int port, const char *ca_pem,
                         const char *cert_pem, const char *key_pem);

/* Connect with TLS using PEM text in memory: as tls_client_start, with
 * ca_pem NULL meaning the system's CAs, cert_pem/key_pem NULL meaning no
 * client certificate. Copied during the call. */
int tls_client_start_pem(tcp_client *c, const char *host, int port,
                         const char *ca_pem, const char *cert_pem,
                         const char *key_pem);

/* The server's default certificate (with its chain) in PEM: the one of the
 * last TLS start, reload or STARTTLS material -- e.g. the self-signed one
 * of tls_server_start_pem(s, port, NULL, NULL, NULL). Copies it into buf
 * (NUL-terminated, truncated to buflen - 1) and returns its full length
 * without the NUL, as snprintf does: call with buflen 0 to learn the size.
 * TCP_ERR_NO_FIELD when the server has no certificate yet. */
int tcp_server_tls_certificate(const tcp_server *s, char *buf, size_t buflen);

/* The built-in verdict on a peer's certificate (tcp_cert_info.result and
 * tcp_tls_info.verify_result). */
enum tcp_cert_result {
  TCP_CERT_OK = 0,            /* chain (and, on a client, name) verified */
  TCP_CERT_NO_CERT = 1,       /* the peer sent no certificate */
  TCP_CERT_UNKNOWN_CA = 2,    /* no chain to a trusted CA */
  TCP_CERT_EXPIRED = 3,       /* expired or not yet valid */
  TCP_CERT_NAME_MISMATCH = 4, /* valid, but not for the server name */
  TCP_CERT_PURPOSE = 5,       /* not fit for its role (EKU, key usage) */
  TCP_CERT_INVALID = 6        /* signature, constraints, malformed... */
};

/* What a certificate callback sees. Every pointer is valid only during the
 * call (copy what you keep); strings are NUL-terminated, "" when absent. */
typedef struct tcp_cert_info {
  int client_id;            /* server: the connection's id (not yet
                               established; usable with the tcp_server_*
                               look-ups of address and port); client: 0 */
  int result;               /* tcp_cert_result: the built-in verdict */
  const char *error;        /* why the built-in check failed; "" if OK */
  const char *cert_pem;     /* the peer's leaf certificate; "" if none */
  const char *chain_pem;    /* every certificate the peer sent, leaf first */
  const char *subject;      /* leaf subject, RFC 2253 ("CN=a,O=b") */
  const char *issuer;       /* leaf issuer, RFC 2253 */
  const char *server_name;  /* server: the SNI the client asked for;
                               client: the name verified */
} tcp_cert_info;

/* Decides whether a handshake goes on (SSLClientAuthentication and its
 * client-side twin): return 1 to accept the certificate -- also one the
 * built-in check rejected (e.g. a self-signed server you pinned) -- or 0 to
 * refuse it, which fails the handshake (server: error callback with
 * TCP_ERR_HANDSHAKE and client_id 0, never established; client: the start
 * returns TCP_START_CONNECT_INIT). Without a callback the built-in verdict
 * decides. Runs during the handshake on the connection's library thread,
 * before established; it must not block for long (the handshake timeout
 * runs) and must not call stop/free of the same handle. */
typedef int (*tcp_cert_check_fn)(void *user_data, const tcp_cert_info *info);

/* Set (fn NULL: remove) the certificate callback; any time, for the
 * handshakes that follow. Server: set it before the start when the server
 * has no CA -- clients are then asked for a certificate (optional) so that
 * the callback can judge it; with a CA the callback also sees clients whose
 * certificate the built-in check rejected or that sent none (unless
 * TCP_OPT_REQUIRE_CLIENT_CERT is 1 and none was sent). Client: sees the
 * server's certificate after the built-in check of TCP_OPT_VERIFY_MODE. */
void tcp_server_set_on_cert(tcp_server *s, tcp_cert_check_fn fn,
                            void *user_data);
void tcp_client_set_on_cert(tcp_client *c, tcp_cert_check_fn fn,
                            void *user_data);

/* The negotiated parameters of a connection's TLS session. */
typedef struct tcp_tls_info {
  int version;       /* 0x0303 = TLS 1.2, 0x0304 = TLS 1.3 */
  int cipher_suite;  /* IANA id, e.g. 0x1301 = TLS_AES_128_GCM_SHA256 */
  int resumed;       /* 1 if the session was resumed (ticket / PSK) */
  int upgraded;      /* 1 if upgraded by STARTTLS, 0 if TLS from the start */
  int verify_result; /* tcp_cert_result of the peer's certificate */
  int has_peer_cert; /* 1 if the peer sent a certificate */
} tcp_tls_info;

/* Fill *info (size = sizeof(tcp_tls_info), so that later versions can
 * grow the struct) for client_id's connection / the client's connection.
 * 0, TCP_ERR_NO_CLIENT (server: no such connection), TCP_ERR_NOT_RUNNING
 * (client: never connected; the last connection's session stays readable
 * after it ended, until the next start, as tcp_client_server_subj_part),
 * TCP_ERR_NO_FIELD (a plain connection, or its handshake not yet done) or
 * TCP_ERR_INVALID_ARG. Any thread; best called from established or
 * later. */
int tcp_server_tls_info(const tcp_server *s, int client_id,
                        tcp_tls_info *info, size_t size);
int tcp_client_tls_info(const tcp_client *c, tcp_tls_info *info,
                        size_t size);

/* Text fields of a connection's TLS session (what of tcp_*_tls_str). */
enum tcp_tls_field {
  TCP_TLS_VERSION_NAME = 1,  /* "TLS 1.3" */
  TCP_TLS_CIPHER_NAME = 2,   /* "TLS_AES_128_GCM_SHA256" */
  TCP_TLS_ALPN = 3,          /* the negotiated protocol; "" = none */
  TCP_TLS_SERVER_NAME = 4,   /* the SNI the client sent; "" = none */
  TCP_TLS_PEER_CERT_PEM = 5, /* the peer's leaf certificate */
  TCP_TLS_PEER_CHAIN_PEM = 6,/* every certificate the peer sent */
  TCP_TLS_PEER_SUBJECT = 7,  /* RFC 2253 */
  TCP_TLS_PEER_ISSUER = 8,   /* RFC 2253 */
  TCP_TLS_VERIFY_ERROR = 9   /* why the built-in check failed; "" = OK */
};

/* Copy one tcp_tls_field into buf (NUL-terminated, truncated to
 * buflen - 1) and return its full length without the NUL, as snprintf
 * does (buflen 0: only the length). The peer fields give TCP_ERR_NO_FIELD
 * when the peer sent no certificate; other errors as tcp_*_tls_info. */
int tcp_server_tls_str(const tcp_server *s, int client_id, int what,
                       char *buf, size_t buflen);
int tcp_client_tls_str(const tcp_client *c, int what, char *buf,
                       size_t buflen);

/* SNI: serve the certificate cert/key (file paths, or PEM text with
 * is_pem 1) to clients that ask for host -- a name, or "*.example.com" for
 * the names one label below example.com. The certificate of the start
 * serves every other name. Replaces an earlier one for the same host. Any
 * time, before or after the start; kept across restarts. 0 or a start code
 * 31/32/34/35 for the pair, TCP_ERR_INVALID_ARG for a bad host. */
int tcp_server_add_cert(tcp_server *s, const char *host, const char *cert,
                        const char *key, int is_pem);

/* Replace the default certificate of a running TLS server (or the STARTTLS
 * material's) without a restart: new handshakes use the new pair,
 * connections already up keep theirs. cert/key are file paths, or PEM text
 * with is_pem 1; both NULL: a new self-signed certificate. Nothing changes
 * on failure: 0, a start code 31..35, or TCP_ERR_NOT_RUNNING. */
int tcp_server_reload_cert(tcp_server *s, const char *cert, const char *key,
                           int is_pem);

/* Explicit TLS (STARTTLS, StartSSL): a plain connection upgraded on
 * request. A server first gets the material for upgrades with
 * tcp_server_set_starttls (before or after tcp_server_start; a plain
 * server): ca/cert/key as tls_server_start's (paths, or PEM with is_pem 1;
 * cert and key both NULL = self-signed). Returns 0 or a start code
 * 30..35. */
int tcp_server_set_starttls(tcp_server *s, const char *ca, const char *cert,
                            const char *key, int is_pem);

/* Upgrade client_id's plain connection to TLS. reply (may be NULL) is sent
 * in plain text first -- the protocol's "go ahead", e.g. "220 Ready to
 * start TLS" -- framed like any message; then the server waits for the
 * client's handshake. Called from the message callback of the request, the
 * messages already read in the same batch are delivered first, and bytes
 * after them go to the handshake. Returns at once (0, TCP_ERR_NO_CLIENT,
 * TCP_ERR_INVALID_ARG when the connection already uses TLS or no STARTTLS
 * material was set); when the handshake is done the established callback
 * runs again for the same client id (tcp_server_tls_info then reports
 * upgraded 1; with TCP_OPT_EVENT_QUEUE a second TCP_EVENT_ESTABLISHED
 * record); when it fails, error (TCP_ERR_HANDSHAKE) and closed follow.
 * Data sent after this call goes out encrypted. */
int tcp_server_starttls(tcp_server *s, int client_id, const void *reply,
                        size_t len);

/* Upgrade the client's plain connection to TLS, verifying the server as
 * tls_client_start does against the host of tcp_client_start (or
 * TCP_OPT_TLS_SERVER_NAME): ca/cert/key as tls_client_start's (paths, or
 * PEM with is_pem 1). From a callback of this client it returns 0 at once
 * and the handshake follows the callback's return: its end is reported to
 * the connect callback (tcp_client_set_on_connect) with attempt 0 and
 * TCP_START_OK, or TCP_START_CONNECT_INIT followed by error and closed;
 * from any other thread it waits for the handshake (up to
 * TCP_OPT_CONNECT_TIMEOUT_MS) and returns 0, TCP_START_CONNECT_INIT, a
 * start code 30..35, TCP_ERR_TIMEOUT or TCP_ERR_NOT_RUNNING -- the return
 * value is then the only report (no connect callback, no event record).
 * TCP_ERR_INVALID_ARG when the connection already uses TLS. */
int tcp_client_starttls(tcp_client *c, const char *ca, const char *cert,
                        const char *key, int is_pem);

/* ---------------------------------------------------------------------------
 * Certificates for tests and demos
 * ------------------------------------------------------------------------- */

/* Write a fresh test PKI into the existing directory dir: ca.pem,
 * ca.key, server.pem, server.key, client.pem, client.key (ECDSA P-256,
 * valid for one year; keys are written with mode 0600). The server
 * certificate's subjectAltName holds the comma-separated hosts (names
 * and/or IP addresses; NULL or "" means "localhost,127.0.0.1,::1"), the
 * client certificate has CN "tcpgo client", O "tcpgo", OU "test". For tests
 * and demos -- not a substitute for a real PKI. Returns 0, TCP_ERR_FILE
 * (directory missing or not writable) or TCP_ERR_INVALID_ARG. */
int tcp_generate_certs(const char *dir, const char *hosts);

/* ---------------------------------------------------------------------------
 * The process
 * ------------------------------------------------------------------------- */

/* Raise this process's soft limit of open descriptors (RLIMIT_NOFILE) to its
 * hard limit, for servers with more than ~1000 connections. Loading tcpgo
 * does not change the limit (the Go runtime raises it when it starts; the
 * library puts the host's value back before any call returns), so this is
 * an explicit choice; children started afterwards inherit the new limit.
 * Returns the new soft limit, or TCP_ERR_INTERNAL (tcp_errno says why). */
long long tcp_raise_fd_limit(void);

/* Set how many CPUs may run the library's code at the same time (the Go
 * runtime's GOMAXPROCS; threads blocked in system calls or in your
 * callbacks do not count). n > 0 sets it, n == 0 only asks, n < 0 goes back
 * to the default: the number of CPUs this process may use (its affinity
 * mask and cgroup quota), which is also the value at load unless the
 * environment variable GOMAXPROCS was set (that overrides the default at
 * load; n < 0 ignores it). Returns the value before the call, or
 * TCP_ERR_INVALID_ARG for n > 1024 (nothing changes).
 *
 * Any thread, any time, also inside a callback. It briefly pauses the
 * library's threads, so call it at start-up, not per message.
 *
 * When to lower it.  On a machine the host shares with other busy
 * processes -- a load generator, your own worker threads -- a server with
 * the default spends CPU on the runtime's idle threads looking for work and
 * waking each other. With 1 it works like a one-thread epoll loop: on the
 * 2-CPU machine of bench/README.md it cut the server's CPU per echoed
 * message by about a quarter (16 KiB messages: 12.9 -> 8.4 us). Callbacks
 * and sends work as before, and a callback that blocks does not stop the
 * other connections: the runtime moves them to another thread, after a
 * delay of 20 us to 10 ms (the same delay as in "When not to").
 * When not to.  A thread that waits inside tcp_*_poll() holds the only
 * slot while it sleeps, and the runtime takes the slot back only after a
 * delay (from 20 us up to 10 ms when the process was idle). A client doing
 * request/response through the poll interface (the Python client's
 * request() and recv(), tcpgo.aio) waits about 3x longer per round trip
 * with 1 than with the default. Keep at least 2 there. */
int tcp_set_max_cpus(int n);

/* Log levels of tcp_log_fn. */
enum tcp_log_level { TCP_LOG_ERROR = 1, TCP_LOG_WARN = 2, TCP_LOG_INFO = 3,
                     TCP_LOG_DEBUG = 4 };

/* Receives the library's log lines: internal errors (a panic caught at the
 * boundary, with its stack), accept failures, connections closed for
 * limits. level is a tcp_log_level, msg valid during the call. Runs on any
 * library thread, possibly concurrently; must not block. */
typedef void (*tcp_log_fn)(void *user_data, int level, const char *msg);

/* Send log lines up to max_level to fn (NULL: stop logging, the default).
 * Without a log function the library prints nothing -- except when the
 * environment variable TCPGO_LOG is set to a level (1..4, or error, warn,
 * info, debug) when the library loads: lines then go to stderr. */
void tcp_set_log(tcp_log_fn fn, void *user_data, int max_level);

#ifdef __cplusplus
}
#endif

#endif /* TCPGO_H */
