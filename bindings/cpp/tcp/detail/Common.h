// tcp/detail/Common.h -- internal helpers of tcpgo's C++ classes.
//
// Not part of the public API: include <tcp/TcpServer.h>, <tcp/TlsServer.h>,
// <tcp/TcpClient.h> or <tcp/TlsClient.h> instead.
#ifndef TCPGO_CPP_DETAIL_COMMON_H
#define TCPGO_CPP_DETAIL_COMMON_H

#if __cplusplus < 201703L
#error "tcpgo's C++ classes need C++17 (-std=c++17 or later)"
#endif

// The C ABI. Installed as <prefix>/include/tcpgo.h next to <prefix>/include/tcp/,
// so "../tcpgo.h" finds it even when only <prefix>/include/tcp is on the
// include path (as v2 users with #include "TcpServer.h" have it).
#if __has_include("../../tcpgo.h")
#include "../../tcpgo.h"
#else
#include <tcpgo.h>
#endif

// What the headers of nilshenrich/TCP_ServerClient v2 pulled in; programs
// written for v2 rely on these transitively.
#include <atomic>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
// Used by tcpgo itself.
#include <any>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <new>
#include <optional>
#include <stdexcept>
#include <ostream>
#include <string_view>
#include <unordered_map>
#include <utility>

// tcpgo's additions: framings and TLS types.
#include "../Framing.h"
#include "../TlsTypes.h"

// OpenSSL's SSL type, declared exactly as <openssl/types.h> does, so that v2's
// TlsServer::getSubjPartFromClientCert(int, const SSL *, int) keeps its
// signature and programs that also include OpenSSL compile (a repeated
// typedef of the same type is valid C++). tcpgo never dereferences it.
struct ssl_st;
typedef struct ssl_st SSL;

// OpenSSL's subject-field NIDs for getSubjPartFromClientCert, for programs
// that do not include OpenSSL. The replacement lists are token-for-token those
// of <openssl/obj_mac.h>, so including OpenSSL after this header is a valid
// identical redefinition, and including it before skips these.
#ifndef NID_commonName
#define NID_commonName          13
#endif
#ifndef NID_countryName
#define NID_countryName         14
#endif
#ifndef NID_localityName
#define NID_localityName                15
#endif
#ifndef NID_stateOrProvinceName
#define NID_stateOrProvinceName         16
#endif
#ifndef NID_organizationName
#define NID_organizationName            17
#endif
#ifndef NID_organizationalUnitName
#define NID_organizationalUnitName              18
#endif
#ifndef NID_pkcs9_emailAddress
#define NID_pkcs9_emailAddress          48
#endif
#ifndef NID_serialNumber
#define NID_serialNumber                105
#endif

namespace tcp {

// Called when a worker (or a forward-stream generator) throws. clientId is 0
// for client objects; worker names the worker: "established", "message",
// "closed", "error" or "forward stream". The default handler prints one
// line to std::cerr. A handler that throws is reported to std::cerr too.
using ExceptionHandler =
    std::function<void(const int clientId, const std::string &worker,
                       std::exception_ptr error)>;

// The version of the loaded library ("MAJOR.MINOR.PATCH"); compare with
// TCPGO_VERSION, the version of the headers.
inline std::string libraryVersion() { return ::tcp_version(); }

/// Why a connection closed (tcpgo.h's enum tcp_close_reason), passed to the
/// workers set with setWorkOnClosedWithReason().
enum class CloseReason : int {
  Peer = TCP_CLOSE_PEER,                      ///< the peer closed (EOF); what was queued was written first
  Reset = TCP_CLOSE_RESET,                    ///< read or write failed (reset, broken pipe...)
  IdleTimeout = TCP_CLOSE_IDLE_TIMEOUT,       ///< nothing received for the idle timeout
  MessageTimeout = TCP_CLOSE_MESSAGE_TIMEOUT, ///< a message started but did not finish in time
  WriteTimeout = TCP_CLOSE_WRITE_TIMEOUT,     ///< the peer took no queued data in time
  Stopped = TCP_CLOSE_STOPPED,                ///< stop() or shutdown() of the server or client
  Local = TCP_CLOSE_LOCAL,                    ///< closeClient()
  MessageTooLong = TCP_CLOSE_MESSAGE_TOO_LONG,///< the peer sent a message over the maximum length
  Tls = TCP_CLOSE_TLS,                        ///< TLS failure after the handshake
  MemoryBudget = TCP_CLOSE_MEMORY_BUDGET,     ///< the connection needed more than its share of the budget
  Internal = TCP_CLOSE_INTERNAL               ///< a bug in tcpgo
};

/// A short English text for a close reason ("peer closed", ...).
inline const char *toString(const CloseReason reason) noexcept {
  return ::tcp_close_reason_str(static_cast<int>(reason));
}
inline std::ostream &operator<<(std::ostream &os, const CloseReason reason) {
  return os << toString(reason);
}

/// What sendMsgEx() did: Ok, or why the message was not queued (the
/// TCP_ERR_* codes of tcp_server_send_ex / tcp_client_send_ex).
enum class SendResult : int {
  Ok = TCP_OK,                                   ///< queued for sending
  NoClient = TCP_ERR_NO_CLIENT,                  ///< unknown client id, or the connection is closing
  NotRunning = TCP_ERR_NOT_RUNNING,              ///< stopped (a client: also while reconnecting)
  QueueFull = TCP_ERR_QUEUE_FULL,                ///< the connection's send queue is full: wait for the ready worker
  MemoryBudget = TCP_ERR_MEMORY_BUDGET,          ///< the server's memory budget is used up: wait for the ready worker
  MessageTooLong = TCP_ERR_MESSAGE_TOO_LONG,     ///< fragmented mode: longer than the maximum length
  ContainsDelimiter = TCP_ERR_CONTAINS_DELIMITER,///< fragmented mode: the message holds the delimiter
  InvalidArg = TCP_ERR_INVALID_ARG,              ///< null data with a length, or an absurd length
  File = TCP_ERR_FILE                            ///< sendFile: the file cannot be opened or is not a regular file
};

/// A short English text for a send result (tcp_strerror).
inline const char *toString(const SendResult result) noexcept {
  return ::tcp_strerror(static_cast<int>(result));
}
inline std::ostream &operator<<(std::ostream &os, const SendResult result) {
  return os << toString(result);
}

/// Error detail of the calling thread's last call into tcpgo (tcp_errcode,
/// tcp_errno, tcp_errmsg): 0 / 0 / "" after a success. Other threads never
/// change it, so it is safe to read right after a failed call even while
/// other threads use the same object. Read it before the next call that
/// can fail. lastErrorCode() is the start code or TCP_ERR_* of the call
/// (for calls that return bool, the code behind false).
inline int lastErrorCode() noexcept { return ::tcp_errcode(); }
/// The OS error number (errno value: ECONNREFUSED, EADDRINUSE...) behind the
/// calling thread's last failure, or 0.
inline int lastErrno() noexcept { return ::tcp_errno(); }
/// The reason of the calling thread's last failure as text ("" after a
/// success).
inline std::string lastErrorMessage();

/// Counters of a server since it was created, across restarts (tcpgo.h's
/// tcp_server_stats). Cheap: read them as often as you like.
struct ServerStats {
  std::uint64_t active = 0;           ///< connections now, including TLS handshakes
  std::uint64_t established = 0;      ///< connections that became established
  std::uint64_t accepted = 0;         ///< connections accepted by the kernel
  std::uint64_t refused = 0;          ///< by the connection-request worker or the allowed/blocked lists
  std::uint64_t refusedLimit = 0;     ///< over setMaxConnections()
  std::uint64_t handshakeFailed = 0;  ///< TLS or PROXY header failures
  std::uint64_t timedOut = 0;         ///< idle, message, write and handshake timeouts
  std::uint64_t closedForLimits = 0;  ///< message too long, memory budget
  std::uint64_t acceptErrors = 0;     ///< accept() failures (out of descriptors...)
  std::uint64_t bytesIn = 0;          ///< payload bytes received, all connections
  std::uint64_t bytesOut = 0;         ///< payload bytes sent, all connections
  std::uint64_t msgsIn = 0;           ///< messages received (continuous mode: reads)
  std::uint64_t msgsOut = 0;          ///< messages sent (continuous mode: sends)
  std::uint64_t memoryUsed = 0;       ///< bytes now charged to the memory budget
};

/// Counters of one connection (tcpgo.h's tcp_conn_stats).
struct ConnectionStats {
  std::uint64_t bytesIn = 0;   ///< payload bytes received
  std::uint64_t bytesOut = 0;  ///< payload bytes sent
  std::uint64_t msgsIn = 0;    ///< messages received (continuous mode: reads)
  std::uint64_t msgsOut = 0;   ///< messages sent
  std::chrono::system_clock::time_point connectedAt{};  ///< when it was accepted / connected
  std::uint64_t queued = 0;    ///< bytes queued and not yet handed to the kernel
};

namespace detail {

// A worker slot: set from any thread, called from library threads. The
// callable lives in a shared_ptr so that a call in progress keeps it alive
// while another thread replaces it, and so that it is never copied per call
// (a stateful lambda keeps its state).
template <class Sig>
class Slot {
 public:
  using Fn = std::function<Sig>;
  void set(Fn fn) {
    std::shared_ptr<const Fn> next;
    if (fn) next = std::make_shared<const Fn>(std::move(fn));
    {
      std::lock_guard<std::mutex> lock(m_);
      cur_.swap(next);
    }
    // the previous callable (now in next) is destroyed outside the lock
  }
  std::shared_ptr<const Fn> get() const {
    std::lock_guard<std::mutex> lock(m_);
    return cur_;
  }

 private:
  mutable std::mutex m_;
  std::shared_ptr<const Fn> cur_;
};

// The message workers of a server or client (W: a struct of shared_ptrs to
// the callables, one per kind of message worker), read on every message.
// Setting one builds a new immutable snapshot and bumps the generation;
// the message trampoline keeps the snapshot it last used per connection
// (WorkerCache) and looks at the set only when the generation changed, so
// the hot path is one atomic load -- no lock, no reference count, no
// shared cache line written per message. A snapshot stays alive while a
// connection still holds it: replaced callables are destroyed when every
// connection has taken the new snapshot (at its next message) or closed,
// or with the server.
template <class W>
class WorkerSet {
 public:
  WorkerSet() : cur_(std::make_shared<const W>()) {}
  // Applies f to a copy of the current snapshot (copies the shared_ptrs,
  // never the callables) and publishes it.
  template <class F>
  void update(F &&f) {
    auto next = std::make_shared<W>();
    std::shared_ptr<const W> old;
    {
      std::lock_guard<std::mutex> lock(m_);
      *next = *cur_;
      f(*next);
      old = std::move(cur_);
      cur_ = std::move(next);
      gen_.fetch_add(1, std::memory_order_release);
    }
    // old (perhaps the last reference to a callable) goes outside the lock
  }
  std::shared_ptr<const W> get() const {
    std::lock_guard<std::mutex> lock(m_);
    return cur_;
  }
  unsigned generation() const noexcept { return gen_.load(std::memory_order_acquire); }

 private:
  // read by every message of every connection: on a cache line of its own
  alignas(64) std::atomic<unsigned> gen_{1};
  alignas(64) mutable std::mutex m_;
  std::shared_ptr<const W> cur_;
};

// The snapshot one connection last used; touched only by that connection's
// message trampoline (the library runs them one at a time per connection).
template <class W>
struct WorkerCache {
  std::shared_ptr<const W> snapshot;
  unsigned gen = 0;  // WorkerSet generations start at 1
  const W *workers(const WorkerSet<W> &set) {
    const unsigned g = set.generation();
    if (g != gen || !snapshot) {  // (!snapshot: a generation that wrapped to 0)
      snapshot = set.get();
      gen = g;  // a later update than g makes the next call look again
    }
    return snapshot.get();
  }
};

// A worker slot in a snapshot: set (a non-empty function) or null.
template <class Sig>
std::shared_ptr<const std::function<Sig>> workerPtr(std::function<Sig> fn) {
  if (!fn) return nullptr;
  return std::make_shared<const std::function<Sig>>(std::move(fn));
}

// Last-resort report; never throws.
inline void printToStderr(const std::string &text) noexcept {
  try {
    std::cerr << text << std::endl;
  } catch (...) {
  }
}

inline std::string describe(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception &x) {
    try {
      return x.what();
    } catch (...) {
    }
  } catch (...) {
  }
  return "unknown exception";
}

inline void defaultExceptionReport(int clientId, const char *worker,
                                   std::exception_ptr e) noexcept {
  try {
    std::string text = "tcpgo: the ";
    text += worker;
    text += " worker";
    if (clientId > 0) text += " of client " + std::to_string(clientId);
    text += " threw: ";
    text += describe(e);
    printToStderr(text);
  } catch (...) {
  }
}

// Runs fn and turns every exception into a report: nothing unwinds into the
// library.
template <class F>
void guarded(const Slot<void(const int, const std::string &,
                             std::exception_ptr)> &handler,
             int clientId, const char *worker, F &&fn) noexcept {
  try {
    fn();
    return;
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    try {
      if (auto h = handler.get()) {
        (*h)(clientId, std::string(worker), e);
        return;
      }
    } catch (...) {
      printToStderr(std::string("tcpgo: the exception handler threw: ") +
                    describe(std::current_exception()));
    }
    defaultExceptionReport(clientId, worker, e);
  }
}

// An option value from a byte count: sizes above LLONG_MAX are passed as
// LLONG_MAX (the library range-checks them).
inline long long sizeOption(std::size_t bytes) noexcept {
  return bytes > static_cast<std::size_t>(LLONG_MAX) ? LLONG_MAX : static_cast<long long>(bytes);
}

inline ConnectionStats toConnectionStats(const tcp_conn_stats &c) noexcept {
  ConnectionStats r;
  r.bytesIn = c.bytes_in;
  r.bytesOut = c.bytes_out;
  r.msgsIn = c.msgs_in;
  r.msgsOut = c.msgs_out;
  r.connectedAt = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::milliseconds(c.connected_unix_ms)));
  r.queued = c.queued;
  return r;
}

// The per-connection send queue limit of the C++ classes. v2's sendMsg
// wrote before returning and never refused a healthy connection, so v2
// programs send large messages back to back; the C ABI's 4 MiB default would
// refuse the second one. A server's total stays bounded by its memory budget.
constexpr long long kDefaultSendQueueLimit = 64LL * 1024 * 1024;

// Joins list entries for tcp_server_set_allowed / _blocked.
inline std::string joinList(const std::vector<std::string> &entries) {
  std::string out;
  for (const auto &e : entries) {
    if (!out.empty()) out += ',';
    out += e;
  }
  return out;
}

// Settings that servers and clients share (CRTP: D is ServerBase or
// ClientBase, which provide setOption). All of them, like setOption, must
// be set while the object is stopped and return 0 or a negative TCP_ERR_*
// code (TCP_ERR_ALREADY_RUNNING while running, TCP_ERR_INVALID_ARG for a
// value out of range; tcp::lastErrorMessage() says more).
template <class D>
class ConnectionOptions {
 public:
  /// Closes a connection that received nothing for this many milliseconds
  /// (CloseReason::IdleTimeout). 0 (the default) = never. Paused
  /// connections do not time out. Servers can change it per client with
  /// setClientIdleTimeout().
  int setIdleTimeout(const int milliseconds) {
    return self().setOption(TCP_OPT_IDLE_TIMEOUT_MS, milliseconds);
  }

  /// Fragmented mode: milliseconds a message may take from its first byte
  /// to its delimiter; slow-drip peers are closed with
  /// CloseReason::MessageTimeout. 0 (the default) = no limit.
  int setMessageTimeout(const int milliseconds) {
    return self().setOption(TCP_OPT_MESSAGE_TIMEOUT_MS, milliseconds);
  }

  /// Milliseconds queued data may wait for the peer to take any of it before
  /// the connection is closed (CloseReason::WriteTimeout); also bounds the
  /// drain after a peer's EOF (see setCloseOnEof). 0 (the default) = no
  /// limit.
  int setWriteTimeout(const int milliseconds) {
    return self().setOption(TCP_OPT_WRITE_TIMEOUT_MS, milliseconds);
  }

  /// TCP keep-alive probes on (the default) or off.
  int setKeepAlive(const bool enable) {
    return self().setOption(TCP_OPT_KEEPALIVE, enable ? 1 : 0);
  }

  /// TCP keep-alive on, with idleMs before the first probe (default 15000),
  /// intervalMs between probes (default 15000) and count unanswered probes
  /// before the connection is dropped (default 9). The kernel counts whole
  /// seconds: idleMs and intervalMs below 1000 are refused
  /// (TCP_ERR_INVALID_ARG).
  int setKeepAlive(const int idleMs, const int intervalMs, const int count) {
    int rc = self().setOption(TCP_OPT_KEEPALIVE, 1);
    if (rc == 0) rc = self().setOption(TCP_OPT_KEEPALIVE_IDLE_MS, idleMs);
    if (rc == 0) rc = self().setOption(TCP_OPT_KEEPALIVE_INTERVAL_MS, intervalMs);
    if (rc == 0) rc = self().setOption(TCP_OPT_KEEPALIVE_COUNT, count);
    return rc;
  }

  /// Bytes queued for sending on one connection before sendMsg() returns
  /// false and sendMsgEx() SendResult::QueueFull (default of these classes
  /// 64 MiB, so that v2 programs' back-to-back large messages pass; the C
  /// ABI's default is 4 MiB; 0 = no limit, a server's memory budget still
  /// applies). A single message larger than
  /// the limit is accepted when nothing is queued.
  int setSendQueueLimit(const std::size_t bytes) {
    return self().setOption(TCP_OPT_SEND_QUEUE_LIMIT, sizeOption(bytes));
  }

  /// After a refused send, the ready worker runs once the queue drained to
  /// this many bytes or fewer (default 65536).
  int setSendLowWater(const std::size_t bytes) {
    return self().setOption(TCP_OPT_SEND_LOW_WATER, sizeOption(bytes));
  }

  /// How many workers of this object may run at the same time (each one
  /// holds a thread while it runs; default 64, 1..4096). Events of other
  /// connections wait meanwhile.
  int setCallbackThreads(const int threads) {
    return self().setOption(TCP_OPT_CALLBACK_THREADS, threads);
  }

  /// What the peer's EOF (it will send no more) does: false (the default)
  /// ends reading but still writes what is queued for the peer, including
  /// replies to its last messages, then closes (CloseReason::Peer); true
  /// closes at once and discards what is queued.
  int setCloseOnEof(const bool closeAtOnce) {
    return self().setOption(TCP_OPT_CLOSE_ON_EOF, closeAtOnce ? 1 : 0);
  }

  /// true (the default) disables Nagle's algorithm (TCP_NODELAY).
  int setNoDelay(const bool noDelay) {
    return self().setOption(TCP_OPT_NODELAY, noDelay ? 1 : 0);
  }

 protected:
  ConnectionOptions() = default;
  ConnectionOptions(const ConnectionOptions &) = default;
  ConnectionOptions(ConnectionOptions &&) noexcept = default;
  ConnectionOptions &operator=(const ConnectionOptions &) = default;
  ConnectionOptions &operator=(ConnectionOptions &&) noexcept = default;
  ~ConnectionOptions() = default;

 private:
  D &self() { return static_cast<D &>(*this); }
};

// Calls f(buf, buflen) -- a C function following the ABI's buffer
// convention -- with a buffer large enough for the whole string. A negative
// result is returned in *code with an empty string.
template <class F>
std::string fetchString(F &&f, int *code = nullptr) {
  char small[128];
  int n = f(small, sizeof small);
  if (code) *code = n < 0 ? n : 0;
  if (n < 0) return std::string();
  if (static_cast<size_t>(n) < sizeof small) return std::string(small, static_cast<size_t>(n));
  for (int tries = 0; tries < 4; tries++) {
    std::string s(static_cast<size_t>(n) + 1, '\0');
    int m = f(&s[0], s.size());
    if (m < 0) {
      if (code) *code = m;
      return std::string();
    }
    if (static_cast<size_t>(m) < s.size()) {
      s.resize(static_cast<size_t>(m));
      return s;
    }
    n = m;  // grew in between; try again
  }
  return std::string();
}

// ---- tcpgo additions: sending, TLS ----

/// Progress of a file sent with sendFile(): sent of total bytes are written
/// (status 1, about every MiB), then once status 0 (all written) or a
/// negative TCP_ERR_* code (the file was not sent whole: the connection
/// closed, the file shrank...). Runs on a library thread.
using FileProgress = std::function<void(long long sent, long long total, int status)>;

// The heap object behind one sendFile's progress callback; the library
// calls it until the final status, which deletes it.
template <class State>
struct ProgressCall {
  State *state;
  FileProgress fn;
  static void call(void *ud, int clientId, long long sent, long long total, int status) noexcept {
    auto *p = static_cast<ProgressCall *>(ud);
    guarded(p->state->exception, clientId, "file progress", [&] { p->fn(sent, total, status); });
    if (status != 1) delete p;
  }
};

// Calls send(iov, count) with the parts as tcp_iovecs: on the stack for up
// to 16 parts (no allocation per sendv), on the heap beyond. n <= INT_MAX.
template <class Send>
auto withIovecs(const std::string_view *parts, size_t n, Send &&send) {
  constexpr size_t kStackParts = 16;
  if (n <= kStackParts) {
    tcp_iovec iov[kStackParts];
    for (size_t i = 0; i < n; i++) iov[i] = tcp_iovec{parts[i].data(), parts[i].size()};
    return send(static_cast<const tcp_iovec *>(iov), static_cast<int>(n));
  }
  std::vector<tcp_iovec> iov(n);
  for (size_t i = 0; i < n; i++) iov[i] = tcp_iovec{parts[i].data(), parts[i].size()};
  return send(static_cast<const tcp_iovec *>(iov.data()), static_cast<int>(n));
}

// A string argument that may be absent: "" is passed to C as NULL.
inline const char *nullIfEmpty(const std::string &s) noexcept {
  return s.empty() ? nullptr : s.c_str();
}

inline CertificateInfo toCertificateInfo(const tcp_cert_info *i) {
  CertificateInfo r;
  if (!i) return r;
  auto str = [](const char *p) { return std::string(p ? p : ""); };
  r.clientId = i->client_id;
  r.result = static_cast<CertResult>(i->result);
  r.error = str(i->error);
  r.pem = str(i->cert_pem);
  r.chainPem = str(i->chain_pem);
  r.subject = str(i->subject);
  r.issuer = str(i->issuer);
  r.serverName = str(i->server_name);
  return r;
}

// Runs a certificate worker: any exception is reported and refuses.
inline int runCertificateCheck(
    const Slot<bool(const CertificateInfo &)> &slot,
    const Slot<void(const int, const std::string &, std::exception_ptr)> &handler,
    const tcp_cert_info *info) noexcept {
  auto f = slot.get();
  if (!f) return 0;  // removed in between: fail closed
  int verdict = 0;
  const int id = info ? info->client_id : 0;
  guarded(handler, id, "certificate", [&] { verdict = (*f)(toCertificateInfo(info)) ? 1 : 0; });
  return verdict;
}

// Fills a TlsInfo from tcp_*_tls_info and tcp_*_tls_str; info(ptr, size)
// and str(what, buf, len) call the C functions.
template <class InfoFn, class StrFn>
std::optional<TlsInfo> readTlsInfo(InfoFn &&info, StrFn &&str) {
  tcp_tls_info c{};
  if (info(&c, sizeof c) != 0) return std::nullopt;
  TlsInfo r;
  r.version = c.version;
  r.cipherSuite = c.cipher_suite;
  r.resumed = c.resumed != 0;
  r.upgraded = c.upgraded != 0;
  r.verifyResult = static_cast<CertResult>(c.verify_result);
  r.hasPeerCert = c.has_peer_cert != 0;
  auto field = [&](int what) {
    return fetchString([&](char *buf, size_t len) { return str(what, buf, len); });
  };
  r.versionName = field(TCP_TLS_VERSION_NAME);
  r.cipherName = field(TCP_TLS_CIPHER_NAME);
  r.alpn = field(TCP_TLS_ALPN);
  r.serverName = field(TCP_TLS_SERVER_NAME);
  if (r.hasPeerCert) {
    r.peerCertPem = field(TCP_TLS_PEER_CERT_PEM);
    r.peerChainPem = field(TCP_TLS_PEER_CHAIN_PEM);
    r.peerSubject = field(TCP_TLS_PEER_SUBJECT);
    r.peerIssuer = field(TCP_TLS_PEER_ISSUER);
  }
  r.verifyError = field(TCP_TLS_VERIFY_ERROR);
  return r;
}

// TLS settings that servers and clients share (CRTP as ConnectionOptions).
// They apply to TLS from the start (TlsServer, TlsClient) and to STARTTLS
// upgrades (TcpServer, TcpClient). Set while stopped; 0 or a negative
// TCP_ERR_* code.
template <class D>
class TlsOptions {
 public:
  /// Lowest TLS version accepted: TCP_TLS_1_2 or TCP_TLS_1_3. Default:
  /// TLS 1.2 for TlsServer / TlsClient (as v2), TLS 1.3 for the STARTTLS
  /// upgrades of TcpServer / TcpClient (the C API's default).
  int setTlsMinVersion(const int version) {
    return self().setOption(TCP_OPT_TLS_MIN_VERSION, version);
  }

  /// Highest TLS version: TCP_TLS_1_2 or TCP_TLS_1_3 (the default). Below
  /// the minimum, the start fails (SERVER_ERROR_START_SET_CONTEXT).
  int setTlsMaxVersion(const int version) {
    return self().setOption(TCP_OPT_TLS_MAX_VERSION, version);
  }

  /// TLS 1.2 cipher suites in order of preference, by IANA name
  /// ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"); empty = Go's secure
  /// defaults. TLS 1.3 suites cannot be chosen. An unknown or insecure
  /// name: TCP_ERR_INVALID_ARG.
  int setTlsCipherSuites(const std::vector<std::string> &suites) {
    return self().setOption(TCP_OPT_TLS_CIPHER_SUITES, joinList(suites));
  }

  /// ALPN protocols, preferred first ({"h2", "http/1.1"}). A client offers
  /// them; a server accepts only them (a client that offers none of them
  /// fails the handshake). Empty (the default) = no ALPN. The result:
  /// getTlsInfo().alpn.
  int setAlpn(const std::vector<std::string> &protocols) {
    return self().setOption(TCP_OPT_TLS_ALPN, joinList(protocols));
  }

  /// Appends the secrets of every handshake to path in the NSS key-log
  /// format (SSLKEYLOGFILE) so that Wireshark can decrypt a capture. For
  /// debugging only: whoever reads the file can decrypt the traffic. ""
  /// (the default) = none.
  int setTlsKeyLogFile(const std::string &path) {
    return self().setOption(TCP_OPT_TLS_KEYLOG_FILE, path);
  }

  /// true (the default): a client keeps its sessions and resumes them on
  /// the next connection (getTlsInfo().resumed); a server issues session
  /// tickets. false: neither.
  int setTlsResumption(const bool enable) {
    return self().setOption(TCP_OPT_TLS_RESUMPTION, enable ? 1 : 0);
  }

 protected:
  TlsOptions() = default;
  TlsOptions(const TlsOptions &) = default;
  TlsOptions(TlsOptions &&) noexcept = default;
  TlsOptions &operator=(const TlsOptions &) = default;
  TlsOptions &operator=(TlsOptions &&) noexcept = default;
  ~TlsOptions() = default;

 private:
  D &self() { return static_cast<D &>(*this); }
};

}  // namespace detail

inline std::string lastErrorMessage() {
  return detail::fetchString([](char *buf, size_t len) { return ::tcp_errmsg(buf, len); });
}

}  // namespace tcp

#endif  // TCPGO_CPP_DETAIL_COMMON_H
