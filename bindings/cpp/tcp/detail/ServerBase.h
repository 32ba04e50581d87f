// tcp/detail/ServerBase.h -- what tcp::TcpServer and tcp::TlsServer share.
//
// Not part of the public API: include <tcp/TcpServer.h> or <tcp/TlsServer.h>.
#ifndef TCPGO_CPP_DETAIL_SERVERBASE_H
#define TCPGO_CPP_DETAIL_SERVERBASE_H

#include <stdexcept>

#include "../ServerDefines.h"
#include "Common.h"

namespace tcp {
namespace detail {

// The message workers of a server, as one snapshot (see WorkerSet). The
// first one set of view, viewEx, ex, str -- in the order viewEx, view, ex,
// str -- runs.
struct ServerMessageWorkers {
  std::shared_ptr<const std::function<void(const int, const std::string)>> str;
  std::shared_ptr<const std::function<void(const int, const std::string, const bool)>> ex;
  std::shared_ptr<const std::function<void(const int, std::string_view)>> view;
  std::shared_ptr<const std::function<void(const int, std::string_view, const bool)>> viewEx;
};

// What the C++ layer keeps per established connection: the forward stream
// (continuous mode), the user's state (clientData) and the message workers
// it last used. Created before the established worker, destroyed after the
// closed worker; its address is the connection's conn_data in the library,
// so the message and closed trampolines find it without a lock.
struct Connection {
  std::unique_ptr<std::ostream> stream;
  std::any data;
  WorkerCache<ServerMessageWorkers> messageWorkers;
};

// Everything the library's callbacks touch lives here, on the heap, so that
// the server object itself can be moved while the library holds user_data.
struct ServerState {
  tcp_server *handle = nullptr;
  bool continuous = true;

  Slot<void(const int)> established;
  WorkerSet<ServerMessageWorkers> message;
  Slot<bool(const CertificateInfo &)> certificate;
  Slot<void(const int)> closed;
  Slot<void(const int, const CloseReason)> closedWithReason;
  Slot<void(const int)> ready;
  Slot<bool(const std::string &, const int, const int)> connectionRequest;
  Slot<std::ostream *(const int)> createStream;
  Slot<void(const int, const int, const std::string &)> error;
  Slot<void(const int, const std::string &, std::exception_ptr)> exception;

  // Owns the Connection objects; looked up by id for clientData() and when
  // the library could not store the conn_data pointer.
  std::mutex connsMutex;
  std::unordered_map<int, std::unique_ptr<Connection>> conns;
  // Keeps the accept slot and its registration in the library in step.
  std::mutex acceptMutex;

  ServerState(bool fragmented, char delimiter, size_t maxLen) : continuous(!fragmented) {
    handle = fragmented ? ::tcp_server_new_fragmented(delimiter, maxLen)
                        : ::tcp_server_new();
    if (!handle) throw std::bad_alloc();
    init();
  }
  explicit ServerState(const Framing &framing)
      : continuous(framing.kind() == Framing::Kind::Continuous) {
    handle = framing.newServer();
    if (!handle) {
      if (::tcp_errcode() == TCP_ERR_INVALID_ARG)
        throw std::invalid_argument("tcp: bad framing: " + lastErrorMessage());
      throw std::bad_alloc();
    }
    init();
  }
  void init() {
    ::tcp_server_set_option(handle, TCP_OPT_SEND_QUEUE_LIMIT, kDefaultSendQueueLimit);
    ::tcp_server_set_on_established(handle, &ServerState::onEstablished, this);
    ::tcp_server_set_on_message_ex(handle, &ServerState::onMessage, this);
    ::tcp_server_set_on_closed_ex(handle, &ServerState::onClosed, this);
    ::tcp_server_set_on_error(handle, &ServerState::onError, this);
    ::tcp_server_set_on_ready(handle, &ServerState::onReady, this);
  }
  // Stops the server (every closed callback runs) and releases the handle;
  // no callback runs after tcp_server_free returns.
  ~ServerState() { ::tcp_server_free(handle); }
  ServerState(const ServerState &) = delete;
  ServerState &operator=(const ServerState &) = delete;

  Connection *addConnection(int id) {
    auto owned = std::make_unique<Connection>();
    Connection *c = owned.get();
    {
      std::lock_guard<std::mutex> lock(connsMutex);
      conns[id] = std::move(owned);
    }
    // fast path for the later callbacks; if it fails they look up by id
    ::tcp_server_set_conn_data(handle, id, c);
    return c;
  }

  Connection *findConnection(int id) {
    std::lock_guard<std::mutex> lock(connsMutex);
    auto it = conns.find(id);
    return it == conns.end() ? nullptr : it->second.get();
  }

  std::unique_ptr<Connection> takeConnection(int id) {
    std::lock_guard<std::mutex> lock(connsMutex);
    auto it = conns.find(id);
    if (it == conns.end()) return nullptr;
    std::unique_ptr<Connection> c = std::move(it->second);
    conns.erase(it);
    return c;
  }

  Connection *connectionOf(int id, void *connData) {
    return connData ? static_cast<Connection *>(connData) : findConnection(id);
  }

  // --- trampolines: called by the library, never let anything unwind ---

  static void onEstablished(void *ud, int id) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    Connection *c = nullptr;
    guarded(s->exception, id, "established", [&] { c = s->addConnection(id); });
    if (c && s->continuous) {
      if (auto gen = s->createStream.get()) {
        guarded(s->exception, id, "forward stream", [&] { c->stream.reset((*gen)(id)); });
      }
    }
    if (auto f = s->established.get()) {
      guarded(s->exception, id, "established", [&] { (*f)(id); });
    }
  }

  // The hot path: one generation check, then one call of the worker; the
  // view workers get the library's buffer itself.
  static void onMessage(void *ud, int id, void *connData, const char *data, size_t len,
                        int flags) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    Connection *c = s->connectionOf(id, connData);
    if (s->continuous && c && c->stream) {
      guarded(s->exception, id, "forward stream", [&] {
        c->stream->write(data, static_cast<std::streamsize>(len));
        c->stream->flush();
      });
      return;
    }
    std::shared_ptr<const ServerMessageWorkers> held;  // only without a Connection
    const ServerMessageWorkers *w;
    if (c) {
      w = c->messageWorkers.workers(s->message);
    } else {
      held = s->message.get();
      w = held.get();
    }
    const bool complete = (flags & TCP_MSG_PARTIAL) == 0;
    if (w->viewEx) {
      guarded(s->exception, id, "message",
              [&] { (*w->viewEx)(id, std::string_view(data, len), complete); });
    } else if (w->view) {
      guarded(s->exception, id, "message", [&] { (*w->view)(id, std::string_view(data, len)); });
    } else if (w->ex) {
      guarded(s->exception, id, "message", [&] { (*w->ex)(id, std::string(data, len), complete); });
    } else if (w->str) {
      guarded(s->exception, id, "message", [&] { (*w->str)(id, std::string(data, len)); });
    }
  }

  static int onCertificate(void *ud, const tcp_cert_info *info) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    return runCertificateCheck(s->certificate, s->exception, info);
  }

  static void onClosed(void *ud, int id, void * /*connData*/, int reason) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    if (auto f = s->closedWithReason.get()) {
      guarded(s->exception, id, "closed", [&] { (*f)(id, static_cast<CloseReason>(reason)); });
    } else if (auto g = s->closed.get()) {
      guarded(s->exception, id, "closed", [&] { (*g)(id); });
    }
    // the stream and the user's state go after the closed worker saw them
    guarded(s->exception, id, "forward stream", [&] {
      std::unique_ptr<Connection> c = s->takeConnection(id);
      c.reset();
    });
  }

  static void onError(void *ud, int id, int code, const char *message) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    if (auto f = s->error.get()) {
      guarded(s->exception, id, "error",
              [&] { (*f)(id, code, std::string(message ? message : "")); });
    }
  }

  static void onReady(void *ud, int id, void * /*connData*/) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    if (auto f = s->ready.get()) guarded(s->exception, id, "ready", [&] { (*f)(id); });
  }

  // A worker that throws refuses the connection (fail closed).
  static int onAccept(void *ud, const char *ip, int port, int localPort) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    auto f = s->connectionRequest.get();
    if (!f) return 1;
    int verdict = 0;
    guarded(s->exception, 0, "connection request", [&] {
      verdict = (*f)(std::string(ip ? ip : ""), port, localPort) ? 1 : 0;
    });
    return verdict;
  }
};

// The part of the server API that does not depend on TCP or TLS.
class ServerBase : public ConnectionOptions<ServerBase>, public TlsOptions<ServerBase> {
 public:
  ServerBase(const ServerBase &) = delete;
  ServerBase &operator=(const ServerBase &) = delete;
  // Move-only: the moved-from object is empty (start returns
  // TCP_ERR_INVALID_ARG, every query fails). Moving a running server is
  // allowed; the connections move with it.
  ServerBase(ServerBase &&) noexcept = default;
  ServerBase &operator=(ServerBase &&) noexcept = default;
  // Stops the server (all closed workers run) and releases it. Must not run
  // inside a worker of this server.
  virtual ~ServerBase() = default;

  // ---- v2 API ----

  // Stops the server: closes the listener, gives data still queued up to
  // the linger time (default 1 s, see setLinger) to be written, closes every
  // connection, runs the closed worker for each client and returns when no
  // worker of this server runs any more. Idempotent; safe on a server never
  // started. Called from a worker it does not wait: it closes everything
  // and returns, and the closed workers follow (the calling connection's
  // right after the calling worker returns); a later stop() or the
  // destructor waits for them.
  void stop() {
    if (s_) ::tcp_server_stop(s_->handle);
  }

  // Sends msg to the client. Fragmented mode appends the delimiter and
  // refuses (returns false) a message that contains it or is longer than
  // the maximum length. False also for an unknown client or a stopped
  // server. True means queued for sending; never blocks on the network.
  bool sendMsg(const int clientId, const std::string &msg) {
    return send(clientId, msg.data(), msg.size());
  }

  // The worker for received messages (fragmented mode: one whole message
  // without the delimiter; continuous mode: see setCreateForwardStream).
  void setWorkOnMessage(std::function<void(const int, const std::string)> worker) {
    if (s_) setMessageWorker(&ServerMessageWorkers::str, std::move(worker));
  }

  // Continuous mode: called (on a library thread) when a client connects,
  // before the established worker. The stream must be created with new;
  // the client's bytes are written to it (and flushed) as they arrive, and
  // it is deleted after that client's closed worker ran. A nullptr means
  // "no stream for this client": its bytes then go to the message worker.
  void setCreateForwardStream(std::function<std::ostream *(const int)> generator) {
    if (s_) s_->createStream.set(std::move(generator));
  }

  // Called when a client connected (for TLS: after its certificate was
  // accepted), before any of its messages.
  void setWorkOnEstablished(std::function<void(const int)> worker) {
    if (s_) s_->established.set(std::move(worker));
  }

  // Called exactly once per established client, after its last message.
  void setWorkOnClosed(std::function<void(const int)> worker) {
    if (s_) s_->closed.set(std::move(worker));
  }

  // The ids of the connected clients (empty when stopped).
  std::vector<int> getAllClientIds() const {
    std::vector<int> ids;
    if (!s_) return ids;
    size_t cap = 16;
    for (;;) {
      ids.resize(cap);
      int n = ::tcp_server_client_ids(s_->handle, ids.data(), ids.size());
      if (n < 0) n = 0;
      if (static_cast<size_t>(n) <= ids.size()) {
        ids.resize(static_cast<size_t>(n));
        return ids;
      }
      cap = static_cast<size_t>(n) + 16;
    }
  }

  // The client's IP address ("127.0.0.1", "::1"), or "Failed Read!" when no
  // client has this id (as v2).
  std::string getClientIp(const int clientId) const {
    if (!s_) return "Failed Read!";
    int code = 0;
    std::string ip = fetchString(
        [&](char *buf, size_t len) {
          return ::tcp_server_client_ip(s_->handle, clientId, buf, len);
        },
        &code);
    return code < 0 ? std::string("Failed Read!") : ip;
  }

  bool isRunning() const { return s_ && ::tcp_server_is_running(s_->handle) == 1; }

  // ---- tcpgo extensions ----

  // Send without building a std::string.
  bool sendMsg(const int clientId, std::string_view msg) {
    return send(clientId, msg.data(), msg.size());
  }
  bool sendMsg(const int clientId, const char *msg) {
    return msg && send(clientId, msg, std::char_traits<char>::length(msg));
  }
  bool sendMsg(const int clientId, const void *data, size_t len) {
    return (data || len == 0) && send(clientId, data, len);
  }

  // Queues msg for every connected client; returns how many got it.
  int broadcast(std::string_view msg) {
    return s_ ? ::tcp_server_broadcast(s_->handle, msg.data(), msg.size()) : 0;
  }

  // Closes one client's connection after its queued data was written (up
  // to the linger time); its closed worker follows.
  bool closeClient(const int clientId) {
    return s_ && ::tcp_server_close_client(s_->handle, clientId) == 0;
  }

  // Waits up to timeoutMs until everything queued for clientId (0: for
  // every client) was written. True when nothing is left; false on timeout,
  // for an unknown client, or when the connection closed first.
  bool flush(const int clientId = 0, const int timeoutMs = 5000) {
    return s_ && ::tcp_server_flush(s_->handle, clientId, timeoutMs) == 0;
  }

  // Milliseconds stop() and closeClient() give queued data to be written
  // before closing (default 1000; 0 discards it). Set before start().
  int setLinger(const int milliseconds) { return setOption(TCP_OPT_LINGER_MS, milliseconds); }

  // The client's TCP port, or -1 for an unknown id.
  int getClientPort(const int clientId) const {
    if (!s_) return -1;
    int p = ::tcp_server_client_port(s_->handle, clientId);
    return p < 0 ? -1 : p;
  }

  // The port the server listens on, or -1 when it is not running.
  int getPort() const {
    if (!s_) return -1;
    int p = ::tcp_server_port(s_->handle);
    return p < 0 ? -1 : p;
  }

  // The local address to listen on ("127.0.0.1", "::1"; "" = every
  // interface, the default). Set before start(). Returns 0 or a negative
  // TCP_ERR_* code (TCP_ERR_ALREADY_RUNNING while running).
  int setBindAddress(const std::string &address) {
    return setOption(TCP_OPT_BIND_ADDRESS, address);
  }

  // Library errors the program may want to see: code is a TCP_ERR_* value
  // (TCP_ERR_MESSAGE_TOO_LONG, TCP_ERR_HANDSHAKE, TCP_ERR_IO,
  // TCP_ERR_TIMEOUT), clientId 0 for a connection that never became
  // established (a failed TLS handshake).
  void setWorkOnError(std::function<void(const int clientId, const int code,
                                         const std::string &message)> worker) {
    if (s_) s_->error.set(std::move(worker));
  }

  // Who hears about exceptions thrown by workers (default: std::cerr).
  void setExceptionHandler(ExceptionHandler handler) {
    if (s_) s_->exception.set(std::move(handler));
  }

  // Any option of the C ABI (enum tcp_option in tcpgo.h), set while the
  // server is stopped. Returns 0 or a negative TCP_ERR_* code.
  int setOption(int option, long long value) {
    return s_ ? ::tcp_server_set_option(s_->handle, option, value) : TCP_ERR_INVALID_ARG;
  }
  int setOption(int option, const std::string &value) {
    return s_ ? ::tcp_server_set_option_str(s_->handle, option, value.c_str())
              : TCP_ERR_INVALID_ARG;
  }

  // The detailed reason of the last failure (a start, a refused send...).
  std::string getLastError() const {
    if (!s_) return std::string();
    return fetchString([&](char *buf, size_t len) {
      return ::tcp_server_last_error(s_->handle, buf, len);
    });
  }

  // The C handle, for the functions of tcpgo.h. Owned by this object. The
  // classes keep their own per-connection pointer in the library
  // (tcp_server_set_conn_data) and their own callbacks: do not replace them
  // through the handle.
  tcp_server *nativeHandle() const { return s_ ? s_->handle : nullptr; }

  // ---- tcpgo extensions: connection control, flow control, lifecycle ----
  //
  // The settings below (and those of ConnectionOptions: setIdleTimeout,
  // setMessageTimeout, setWriteTimeout, setKeepAlive, setSendQueueLimit,
  // setSendLowWater, setCallbackThreads, setCloseOnEof, setNoDelay) are set
  // while the server is stopped and return 0 or a negative TCP_ERR_* code
  // (TCP_ERR_ALREADY_RUNNING while running, TCP_ERR_INVALID_ARG out of
  // range; tcp::lastErrorMessage() says more).

  /// Maximum number of connections at once, counting TLS handshakes in
  /// progress (default 10000; 0 = no limit). One more is closed at once,
  /// never reaches the established worker, is counted
  /// (ServerStats::refusedLimit) and reported to the error worker with
  /// clientId 0 and TCP_ERR_REFUSED.
  int setMaxConnections(const int maxConnections) {
    return setOption(TCP_OPT_MAX_CONNECTIONS, maxConnections);
  }

  /// Listen backlog (default 0 = the system's maximum).
  int setBacklog(const int backlog) { return setOption(TCP_OPT_BACKLOG, backlog); }

  /// With an IPv6 or empty bind address: true = IPv6 only, false (the
  /// default) = IPv4 and IPv6 on one socket.
  int setIpv6Only(const bool ipv6Only) { return setOption(TCP_OPT_IPV6_ONLY, ipv6Only ? 1 : 0); }

  /// Bytes the server may hold for all its connections together (partial
  /// messages, send queues). A connection that needs more than its share
  /// while the budget is used up is closed (CloseReason::MemoryBudget); a
  /// send that would pass it is refused (SendResult::MemoryBudget). Default
  /// 64 MiB; 0 = no budget.
  int setMemoryBudget(const std::size_t bytes) {
    return setOption(TCP_OPT_MEMORY_BUDGET, sizeOption(bytes));
  }

  /// true sets SO_REUSEPORT on the listener (default false), e.g. for a
  /// rolling restart together with stopListening().
  int setReusePort(const bool reuse) { return setOption(TCP_OPT_REUSEPORT, reuse ? 1 : 0); }

  /// PROXY protocol (HAProxy v1/v2) from the proxies in trusted (addresses
  /// and CIDR ranges): mode TCP_PROXY_OFF (default), TCP_PROXY_TRUSTED (a
  /// header is required from trusted addresses, forbidden from others) or
  /// TCP_PROXY_REQUIRED (every connection comes from a trusted proxy with a
  /// header). getClientIp() and the connection-request worker then see the
  /// address the header carries.
  int setProxyProtocol(const int mode, const std::vector<std::string> &trusted) {
    int rc = setOption(TCP_OPT_PROXY_TRUSTED, joinList(trusted));
    return rc == 0 ? setOption(TCP_OPT_PROXY_PROTOCOL, mode) : rc;
  }

  /// Admission: called for every new connection before any TLS handshake
  /// and before the established worker, with the peer's address and port
  /// and the server's local port, after the allowed/blocked lists and the
  /// connection limit let it through. Return true to accept; false closes
  /// it at once (it never reaches the established worker and is counted in
  /// ServerStats::refused). A worker that throws refuses the connection
  /// (the exception goes to the exception handler as worker "connection
  /// request", clientId 0). Runs on a library thread; connections wait for
  /// it in turn, so keep it short. An empty function removes it (accept
  /// everything). May be set at any time.
  void setWorkOnConnectionRequest(
      std::function<bool(const std::string &ip, const int port, const int localPort)> worker) {
    if (!s_) return;
    std::lock_guard<std::mutex> lock(s_->acceptMutex);
    const bool on = static_cast<bool>(worker);
    s_->connectionRequest.set(std::move(worker));
    ::tcp_server_set_on_accept(s_->handle, on ? &ServerState::onAccept : nullptr, s_.get());
  }

  /// Replaces the allowed list: IPv4/IPv6 addresses and CIDR ranges
  /// ({"10.0.0.0/8", "192.168.1.7", "::1"}). When it is not empty, a
  /// connection from any other address is refused before any TLS handshake
  /// (ServerStats::refused; error worker with clientId 0 and
  /// TCP_ERR_REFUSED). IPv4-mapped IPv6 addresses match IPv4 entries. An
  /// empty vector empties the list. Changeable while running; applies to
  /// connections accepted afterwards. Returns 0, or TCP_ERR_INVALID_ARG for
  /// an entry that does not parse (the list is then unchanged;
  /// tcp::lastErrorMessage() names the entry).
  int setAllowedClients(const std::vector<std::string> &entries) {
    return s_ ? ::tcp_server_set_allowed(s_->handle, joinList(entries).c_str())
              : TCP_ERR_INVALID_ARG;
  }

  /// Replaces the blocked list (same format and rules as
  /// setAllowedClients): connections from these addresses are refused.
  int setBlockedClients(const std::vector<std::string> &entries) {
    return s_ ? ::tcp_server_set_blocked(s_->handle, joinList(entries).c_str())
              : TCP_ERR_INVALID_ARG;
  }

  /// The closed worker with the reason (CloseReason::Peer, IdleTimeout,
  /// Stopped...). Called exactly once per established client, after its
  /// last message, with its clientData still readable. When set, it runs
  /// instead of the worker of setWorkOnClosed (so v2 code that sets only
  /// that one keeps working); an empty function goes back to it.
  void setWorkOnClosedWithReason(
      std::function<void(const int clientId, const CloseReason reason)> worker) {
    if (s_) s_->closedWithReason.set(std::move(worker));
  }

  /// Queues msg for the client like sendMsg, but says why not: Ok,
  /// NoClient, NotRunning, QueueFull, MemoryBudget, MessageTooLong,
  /// ContainsDelimiter or InvalidArg. After QueueFull or MemoryBudget the
  /// ready worker (setWorkOnReady) runs once the queue drained. Never
  /// blocks. tcp::lastErrorMessage() has the detail of a failure.
  SendResult sendMsgEx(const int clientId, std::string_view msg) {
    return sendEx(clientId, msg.data(), msg.size());
  }
  SendResult sendMsgEx(const int clientId, const void *data, const size_t len) {
    if (!data && len > 0) return SendResult::InvalidArg;
    return sendEx(clientId, data, len);
  }

  /// Called when a client's send queue drained to the low-water mark
  /// (setSendLowWater) after a send to it was refused (QueueFull or
  /// MemoryBudget): sending may go on. Once per refusal, in the client's
  /// event order, never after its closed worker.
  void setWorkOnReady(std::function<void(const int clientId)> worker) {
    if (s_) s_->ready.set(std::move(worker));
  }

  /// Bytes queued for the client and not yet handed to the kernel, or a
  /// negative TCP_ERR_* code (TCP_ERR_NO_CLIENT).
  long long queued(const int clientId) const {
    return s_ ? ::tcp_server_queued(s_->handle, clientId) : static_cast<long long>(TCP_ERR_INVALID_ARG);
  }

  /// Stops reading from the client: no message worker runs for it (not even
  /// for bytes already received) until resumeClient(); the peer is slowed
  /// down by TCP flow control and nothing is lost. Its idle timeout does not
  /// run meanwhile. Idempotent; works from any worker. False for an unknown
  /// client.
  bool pauseClient(const int clientId) {
    return s_ && ::tcp_server_pause(s_->handle, clientId) == 0;
  }
  /// Restarts reading from a paused client; the messages held back follow
  /// in order. False for an unknown client.
  bool resumeClient(const int clientId) {
    return s_ && ::tcp_server_resume(s_->handle, clientId) == 0;
  }

  /// The idle timeout of one client in milliseconds (0 = none), replacing
  /// setIdleTimeout() for it; e.g. from the established worker. False for an
  /// unknown client or a value out of range.
  bool setClientIdleTimeout(const int clientId, const int milliseconds) {
    return s_ && ::tcp_server_set_idle_timeout(s_->handle, clientId, milliseconds) == 0;
  }

  /// The client's own state, created empty before its established worker
  /// and destroyed after its closed worker returned. Meant for the client's
  /// workers (they run one at a time, so they need no lock for it); another
  /// thread must synchronise with them itself and must not keep the pointer
  /// past the closed worker. nullptr for an unknown client.
  std::any *clientData(const int clientId) {
    if (!s_) return nullptr;
    Connection *c = s_->findConnection(clientId);
    return c ? &c->data : nullptr;
  }
  const std::any *clientData(const int clientId) const {
    if (!s_) return nullptr;
    Connection *c = s_->findConnection(clientId);
    return c ? &c->data : nullptr;
  }

  /// The client's state as a T: nullptr for an unknown client or when the
  /// state holds no T (see clientData above).
  template <class T>
  T *clientData(const int clientId) {
    return std::any_cast<T>(clientData(clientId));
  }
  template <class T>
  const T *clientData(const int clientId) const {
    return std::any_cast<T>(clientData(clientId));
  }

  /// Replaces the client's state with a T made from args and returns it
  /// (typically in the established worker: server.emplaceClientData<Session>(id, ...)).
  /// Throws std::out_of_range for an unknown client.
  template <class T, class... Args>
  T &emplaceClientData(const int clientId, Args &&...args) {
    std::any *a = clientData(clientId);
    if (!a) throw std::out_of_range("tcp: no client " + std::to_string(clientId));
    return a->emplace<T>(std::forward<Args>(args)...);
  }

  /// Replaces the client's state; false for an unknown client.
  bool setClientData(const int clientId, std::any value) {
    std::any *a = clientData(clientId);
    if (!a) return false;
    *a = std::move(value);
    return true;
  }

  /// Closes the listening socket but keeps serving the established clients
  /// (e.g. a rolling restart: a new process takes the port with
  /// setReusePort(true)). isRunning() stays true until stop(). False when
  /// not running.
  bool stopListening() { return s_ && ::tcp_server_stop_listening(s_->handle) == 0; }

  /// Graceful stop: stops listening, gives every client up to timeoutMs in
  /// all to receive what is queued for it (workers may still send
  /// meanwhile), then stops as stop() does (CloseReason::Stopped). True
  /// when every queue was written in time; false when some data was dropped
  /// or the server was not running. Same threading rules as stop().
  bool shutdown(const int timeoutMs) {
    return s_ && ::tcp_server_shutdown(s_->handle, timeoutMs) == 0;
  }

  /// The server's counters since it was created (all zero for a moved-from
  /// object).
  ServerStats getStats() const {
    ServerStats r;
    tcp_server_stats c{};
    if (!s_ || ::tcp_server_get_stats(s_->handle, &c, sizeof c) != 0) return r;
    r.active = c.active;
    r.established = c.established;
    r.accepted = c.accepted;
    r.refused = c.refused;
    r.refusedLimit = c.refused_limit;
    r.handshakeFailed = c.handshake_failed;
    r.timedOut = c.timed_out;
    r.closedForLimits = c.closed_for_limits;
    r.acceptErrors = c.accept_errors;
    r.bytesIn = c.bytes_in;
    r.bytesOut = c.bytes_out;
    r.msgsIn = c.msgs_in;
    r.msgsOut = c.msgs_out;
    r.memoryUsed = c.memory_used;
    return r;
  }

  /// One client's counters, or nothing for an unknown client.
  std::optional<ConnectionStats> getClientStats(const int clientId) const {
    tcp_conn_stats c{};
    if (!s_ || ::tcp_server_conn_stats(s_->handle, clientId, &c, sizeof c) != 0)
      return std::nullopt;
    return toConnectionStats(c);
  }

  // ---- tcpgo extensions: framings and sending ----

  /// The message worker with the "complete" flag: false for a part of an
  /// overlong line that the framing delivers in parts
  /// (Framing::Eol / Framing::Lines with Overlong::Parts; the last part of
  /// such a line comes with true), true for every whole message. When set,
  /// it runs instead of the worker of setWorkOnMessage; an empty function
  /// goes back to that one. Continuous mode: bytes without a forward stream
  /// come here too, always with true.
  void setWorkOnMessageEx(
      std::function<void(const int clientId, const std::string msg, const bool complete)> worker) {
    if (s_) setMessageWorker(&ServerMessageWorkers::ex, std::move(worker));
  }

  /// tcpgo extension: the zero-copy message worker. msg is a view of the
  /// library's receive buffer -- no std::string is built, nothing is
  /// allocated per message --, valid only until the worker returns: copy
  /// what you keep (std::string(msg)). Passing it to sendMsg / sendMsgEx
  /// during the call is fine (they copy it into the send queue). Runs as
  /// the worker of setWorkOnMessage does: on a library thread, one worker
  /// at a time per client and in the client's order, different clients in
  /// parallel; messages are framed the same way (an overlong line with
  /// Overlong::Parts arrives in parts here, without the flag: see
  /// setWorkOnMessageViewEx). When set, it runs instead of the workers of
  /// setWorkOnMessage and setWorkOnMessageEx (they stay set and come back
  /// when this one is removed with an empty function). Continuous mode:
  /// bytes without a forward stream come here too.
  ///
  /// Every setWorkOnMessage* call: a worker that was replaced or removed is
  /// not destroyed when the call returns, but once every client has had a
  /// message after the change (or closed), or with the server -- on a
  /// library thread. What it captures lives as long.
  void setWorkOnMessageView(std::function<void(const int clientId, std::string_view msg)> worker) {
    if (s_) setMessageWorker(&ServerMessageWorkers::view, std::move(worker));
  }

  /// tcpgo extension: the zero-copy message worker with the "complete" flag
  /// of setWorkOnMessageEx (false for a part of an overlong line). The view
  /// is valid only during the call, as for setWorkOnMessageView. When set,
  /// it runs instead of every other message worker (setWorkOnMessageView,
  /// setWorkOnMessageEx, setWorkOnMessage); an empty function removes it.
  void setWorkOnMessageViewEx(
      std::function<void(const int clientId, std::string_view msg, const bool complete)> worker) {
    if (s_) setMessageWorker(&ServerMessageWorkers::viewEx, std::move(worker));
  }

  /// Framing::Records: changes the record length of one connection while
  /// it runs (ChangeRecordLength). From that connection's message worker it
  /// applies to the very next record; from another thread from the next
  /// bytes that arrive. 0 = bytes as they arrive. Returns 0,
  /// TCP_ERR_NO_CLIENT, or TCP_ERR_INVALID_ARG (not a records framing, or
  /// over the framing's maximum length).
  int setRecordLength(const int clientId, const std::size_t recordLength) {
    return s_ ? ::tcp_server_set_record_length(s_->handle, clientId, recordLength)
              : TCP_ERR_INVALID_ARG;
  }

  /// Queues length bytes of the file at path from offset (length -1: to its
  /// end) for the client as one message, after what is already queued.
  /// Plain TCP sends it with the kernel's zero-copy sendfile(2); TLS reads
  /// and encrypts it in chunks. The file is opened now (SendResult::File
  /// for a wrong path) and read when its turn comes: it must not change
  /// meanwhile. Framing: continuous and records send it as it is,
  /// length-prefixed puts the prefix in front, the delimiter and line
  /// framings refuse files (InvalidArg: a file may hold the delimiter).
  /// progress (may be empty) hears how far it got (see tcp::FileProgress);
  /// it is called only when the result is Ok.
  SendResult sendFile(const int clientId, const std::string &path, const long long offset = 0,
                      const long long length = -1, FileProgress progress = nullptr) {
    if (!s_) return SendResult::InvalidArg;
    if (!progress) {
      return static_cast<SendResult>(::tcp_server_send_file(s_->handle, clientId, path.c_str(),
                                                            offset, length, nullptr, nullptr));
    }
    auto *p = new ProgressCall<ServerState>{s_.get(), std::move(progress)};
    int rc = ::tcp_server_send_file(s_->handle, clientId, path.c_str(), offset, length,
                                    &ProgressCall<ServerState>::call, p);
    if (rc != 0) delete p;  // the library never calls it after a failure
    return static_cast<SendResult>(rc);
  }

  /// Queues several buffers as ONE message (framed once), without joining
  /// them first: sendv(id, {header, body}).
  SendResult sendv(const int clientId, std::initializer_list<std::string_view> parts) {
    return sendv(clientId, parts.begin(), parts.size());
  }
  SendResult sendv(const int clientId, const std::vector<std::string_view> &parts) {
    return sendv(clientId, parts.data(), parts.size());
  }

  /// Queues a line: the framings that end messages themselves (delimiter,
  /// end of line, lines, length prefix) send it as one message; continuous
  /// and records append CRLF. The line ends at its first NUL byte.
  SendResult sendLine(const int clientId, const std::string &line) {
    if (!s_) return SendResult::InvalidArg;
    return static_cast<SendResult>(::tcp_server_send_line(s_->handle, clientId, line.c_str()));
  }

  // ---- tcpgo extensions: TLS (also STARTTLS on a TcpServer) ----

  /// The certificate worker (SSLClientAuthentication): runs during each
  /// client's handshake, before established, and decides whether it goes
  /// on (see tcp::CertificateCheck and tcp::CertificateInfo). It sees
  /// clients whose certificate the built-in check rejected or that sent
  /// none (unless a client certificate is required and none was sent).
  /// Set it before start() when the server has no CA: clients are then
  /// asked for a certificate (optional) so that the worker can judge it.
  /// Runs on the connection's library thread; it must not block long (the
  /// handshake timeout runs) nor stop the server. An empty function removes
  /// it (the built-in verdict decides). A worker that throws refuses.
  void setWorkOnCertificate(CertificateCheck worker) {
    if (!s_) return;
    std::lock_guard<std::mutex> lock(s_->acceptMutex);
    const bool on = static_cast<bool>(worker);
    s_->certificate.set(std::move(worker));
    ::tcp_server_set_on_cert(s_->handle, on ? &ServerState::onCertificate : nullptr, s_.get());
  }

  /// The negotiated TLS parameters of a client's connection (version,
  /// suite, ALPN, SNI, the client's certificate...), or nothing for an
  /// unknown client, a plain connection, or a handshake not yet done. Best
  /// called from the established worker or later.
  std::optional<TlsInfo> getTlsInfo(const int clientId) const {
    if (!s_) return std::nullopt;
    tcp_server *h = s_->handle;
    return readTlsInfo(
        [&](tcp_tls_info *i, size_t n) { return ::tcp_server_tls_info(h, clientId, i, n); },
        [&](int what, char *buf, size_t len) {
          return ::tcp_server_tls_str(h, clientId, what, buf, len);
        });
  }

 protected:
  ServerBase() : s_(new ServerState(false, '\0', 0)) {}
  explicit ServerBase(const Framing &framing) : s_(new ServerState(framing)) {}
  ServerBase(char delimiter, size_t messageMaxLen)
      : s_(new ServerState(true, delimiter, messageMaxLen)) {}

  bool send(int clientId, const void *data, size_t len) {
    return s_ && ::tcp_send_msg(s_->handle, clientId, data, len) == 1;
  }

  SendResult sendEx(int clientId, const void *data, size_t len) {
    if (!s_) return SendResult::InvalidArg;
    return static_cast<SendResult>(::tcp_server_send_ex(s_->handle, clientId, data, len));
  }

  SendResult sendv(int clientId, const std::string_view *parts, size_t n) {
    if (!s_) return SendResult::InvalidArg;
    if (n > static_cast<size_t>(INT_MAX)) return SendResult::InvalidArg;
    return withIovecs(parts, n, [&](const tcp_iovec *iov, int count) {
      return static_cast<SendResult>(::tcp_server_sendv(s_->handle, clientId, iov, count));
    });
  }

  template <class Fn>
  void setMessageWorker(std::shared_ptr<const Fn> ServerMessageWorkers::*which, Fn worker) {
    auto p = workerPtr(std::move(worker));
    s_->message.update([&](ServerMessageWorkers &w) { w.*which = std::move(p); });
  }

  std::unique_ptr<ServerState> s_;
};

}  // namespace detail
}  // namespace tcp

#endif  // TCPGO_CPP_DETAIL_SERVERBASE_H
