// tcp/detail/ClientBase.h -- what tcp::TcpClient and tcp::TlsClient share.
//
// Not part of the public API: include <tcp/TcpClient.h> or <tcp/TlsClient.h>.
#ifndef TCPGO_CPP_DETAIL_CLIENTBASE_H
#define TCPGO_CPP_DETAIL_CLIENTBASE_H

#include "../ClientDefines.h"
#include "Common.h"

namespace tcp {
namespace detail {

// The message workers of a client, as one snapshot (see WorkerSet and
// ServerMessageWorkers): viewEx, view, ex, str -- the first one set runs.
struct ClientMessageWorkers {
  std::shared_ptr<const std::function<void(const std::string)>> str;
  std::shared_ptr<const std::function<void(const std::string, const bool)>> ex;
  std::shared_ptr<const std::function<void(std::string_view)>> view;
  std::shared_ptr<const std::function<void(std::string_view, const bool)>> viewEx;
};

// What the library's callbacks touch; on the heap so the client can move.
struct ClientState {
  tcp_client *handle = nullptr;
  bool continuous = true;
  std::ostream *out = nullptr;
  std::mutex certMutex;  // the certificate slot and its registration in step  // continuous mode; only the address is kept

  WorkerSet<ClientMessageWorkers> message;
  // the snapshot the message trampoline last used (it runs one at a time)
  WorkerCache<ClientMessageWorkers> messageCache;
  Slot<void()> closed;
  Slot<void(const CloseReason)> closedWithReason;
  Slot<void()> ready;
  Slot<void(const int, const int)> reconnect;
  Slot<void(const int)> tlsUpgrade;
  Slot<bool(const CertificateInfo &)> certificate;
  Slot<void(const int, const std::string &)> error;
  Slot<void(const int, const std::string &, std::exception_ptr)> exception;

  ClientState(std::ostream *os, bool fragmented, char delimiter, size_t maxLen)
      : continuous(!fragmented), out(os) {
    handle = fragmented ? ::tcp_client_new_fragmented(delimiter, maxLen)
                        : ::tcp_client_new();
    if (!handle) throw std::bad_alloc();
    init();
  }
  // A framing chosen with tcp::Framing: every framing, continuous included,
  // delivers to the message worker (there is no stream).
  explicit ClientState(const Framing &framing) : continuous(false) {
    handle = framing.newClient();
    if (!handle) {
      if (::tcp_errcode() == TCP_ERR_INVALID_ARG)
        throw std::invalid_argument("tcp: bad framing: " + lastErrorMessage());
      throw std::bad_alloc();
    }
    init();
  }
  void init() {
    ::tcp_client_set_option(handle, TCP_OPT_SEND_QUEUE_LIMIT, kDefaultSendQueueLimit);
    ::tcp_client_set_on_message_ex(handle, &ClientState::onMessage, this);
    ::tcp_client_set_on_closed_ex(handle, &ClientState::onClosed, this);
    ::tcp_client_set_on_error(handle, &ClientState::onError, this);
    ::tcp_client_set_on_ready(handle, &ClientState::onReady, this);
    ::tcp_client_set_on_connect(handle, &ClientState::onConnect, this);
  }
  ~ClientState() { ::tcp_client_free(handle); }
  ClientState(const ClientState &) = delete;
  ClientState &operator=(const ClientState &) = delete;

  static void onMessage(void *ud, const char *data, size_t len, int flags) noexcept {
    auto *s = static_cast<ClientState *>(ud);
    if (s->continuous) {
      if (s->out) {
        guarded(s->exception, 0, "forward stream", [&] {
          s->out->write(data, static_cast<std::streamsize>(len));
          s->out->flush();
        });
      }
      return;
    }
    const ClientMessageWorkers *w = s->messageCache.workers(s->message);
    const bool complete = (flags & TCP_MSG_PARTIAL) == 0;
    if (w->viewEx) {
      guarded(s->exception, 0, "message",
              [&] { (*w->viewEx)(std::string_view(data, len), complete); });
    } else if (w->view) {
      guarded(s->exception, 0, "message", [&] { (*w->view)(std::string_view(data, len)); });
    } else if (w->ex) {
      guarded(s->exception, 0, "message", [&] { (*w->ex)(std::string(data, len), complete); });
    } else if (w->str) {
      guarded(s->exception, 0, "message", [&] { (*w->str)(std::string(data, len)); });
    }
  }

  static void onClosed(void *ud, int reason) noexcept {
    auto *s = static_cast<ClientState *>(ud);
    if (auto f = s->closedWithReason.get()) {
      guarded(s->exception, 0, "closed", [&] { (*f)(static_cast<CloseReason>(reason)); });
    } else if (auto g = s->closed.get()) {
      guarded(s->exception, 0, "closed", [&] { (*g)(); });
    }
  }

  static void onReady(void *ud) noexcept {
    auto *s = static_cast<ClientState *>(ud);
    if (auto f = s->ready.get()) guarded(s->exception, 0, "ready", [&] { (*f)(); });
  }

  static void onConnect(void *ud, int attempt, int result) noexcept {
    auto *s = static_cast<ClientState *>(ud);
    if (attempt == 0) {
      if (auto u = s->tlsUpgrade.get()) {
        guarded(s->exception, 0, "tls upgrade", [&] { (*u)(result); });
        return;
      }
    }
    if (auto f = s->reconnect.get()) {
      guarded(s->exception, 0, "reconnect", [&] { (*f)(attempt, result); });
    }
  }

  static int onCertificate(void *ud, const tcp_cert_info *info) noexcept {
    auto *s = static_cast<ClientState *>(ud);
    return runCertificateCheck(s->certificate, s->exception, info);
  }

  static void onError(void *ud, int code, const char *message) noexcept {
    auto *s = static_cast<ClientState *>(ud);
    if (auto f = s->error.get()) {
      guarded(s->exception, 0, "error",
              [&] { (*f)(code, std::string(message ? message : "")); });
    }
  }
};

class ClientBase : public ConnectionOptions<ClientBase>, public TlsOptions<ClientBase> {
 public:
  ClientBase(const ClientBase &) = delete;
  ClientBase &operator=(const ClientBase &) = delete;
  // Move-only; the moved-from object is empty.
  ClientBase(ClientBase &&) noexcept = default;
  ClientBase &operator=(ClientBase &&) noexcept = default;
  // Stops the client and releases it. Must not run inside its own worker.
  virtual ~ClientBase() = default;

  // ---- v2 API ----

  // Closes the connection, after giving queued data up to the linger time
  // (default 1 s, see setLinger) to be written. Idempotent; safe if never
  // started. When it returns no worker of this client runs any more (unless
  // called from a worker of this client: the closed worker then runs right
  // after the calling worker returns).
  void stop() {
    if (s_) ::tcp_client_stop(s_->handle);
  }

  // Sends msg to the server (fragmented mode: appends the delimiter and
  // refuses messages that contain it or exceed the maximum). False when not
  // connected -- also shortly after the server closed the connection.
  bool sendMsg(const std::string &msg) { return send(msg.data(), msg.size()); }

  // Fragmented mode: called with every whole message from the server.
  void setWorkOnMessage(std::function<void(const std::string)> worker) {
    if (s_) setMessageWorker(&ClientMessageWorkers::str, std::move(worker));
  }

  /// The message worker with the "complete" flag: false for a part of an
  /// overlong line that the framing delivers in parts (Framing::Eol /
  /// Framing::Lines with Overlong::Parts; the last part comes with true),
  /// true for every whole message. When set, it runs instead of the worker
  /// of setWorkOnMessage; an empty function goes back to that one.
  void setWorkOnMessageEx(std::function<void(const std::string msg, const bool complete)> worker) {
    if (s_) setMessageWorker(&ClientMessageWorkers::ex, std::move(worker));
  }

  /// tcpgo extension: the zero-copy message worker. msg is a view of the
  /// library's receive buffer -- no std::string is built, nothing is
  /// allocated per message --, valid only until the worker returns: copy
  /// what you keep (std::string(msg)); passing it to sendMsg during the call
  /// is fine. Runs as the worker of setWorkOnMessage does: on a library
  /// thread, one message at a time, in order. When set, it runs instead of
  /// the workers of setWorkOnMessage and setWorkOnMessageEx (they come back
  /// when this one is removed with an empty function). A client in
  /// continuous mode with an ostream writes to the stream instead.
  ///
  /// Every setWorkOnMessage* call: a worker that was replaced or removed is
  /// not destroyed when the call returns, but at the next message (or the
  /// connection's end), or with the client -- on a library thread. What it
  /// captures lives as long.
  void setWorkOnMessageView(std::function<void(std::string_view msg)> worker) {
    if (s_) setMessageWorker(&ClientMessageWorkers::view, std::move(worker));
  }

  /// tcpgo extension: the zero-copy worker with the "complete" flag (see
  /// setWorkOnMessageEx); runs instead of every other message worker.
  void setWorkOnMessageViewEx(std::function<void(std::string_view msg, const bool complete)> worker) {
    if (s_) setMessageWorker(&ClientMessageWorkers::viewEx, std::move(worker));
  }

  // True while connected (false once the server closed the connection).
  bool isRunning() const { return s_ && ::tcp_client_is_running(s_->handle) == 1; }

  // ---- tcpgo extensions ----

  bool sendMsg(std::string_view msg) { return send(msg.data(), msg.size()); }
  bool sendMsg(const char *msg) {
    return msg && send(msg, std::char_traits<char>::length(msg));
  }
  bool sendMsg(const void *data, size_t len) { return (data || len == 0) && send(data, len); }

  // Called once per successful start when the connection ends (the server
  // closed it, a network error, or stop()).
  void setWorkOnClosed(std::function<void()> worker) {
    if (s_) s_->closed.set(std::move(worker));
  }

  // Library errors (TCP_ERR_MESSAGE_TOO_LONG, TCP_ERR_IO...), before closed.
  void setWorkOnError(std::function<void(const int code, const std::string &message)> worker) {
    if (s_) s_->error.set(std::move(worker));
  }

  // Who hears about exceptions thrown by workers (default: std::cerr);
  // clientId is always 0.
  void setExceptionHandler(ExceptionHandler handler) {
    if (s_) s_->exception.set(std::move(handler));
  }

  // Milliseconds connect() plus the TLS handshake may take (default 10000).
  int setConnectTimeout(const int milliseconds) {
    return setOption(TCP_OPT_CONNECT_TIMEOUT_MS, milliseconds);
  }

  // Waits up to timeoutMs until everything queued was written; false on
  // timeout or when the connection is down.
  bool flush(const int timeoutMs = 5000) {
    return s_ && ::tcp_client_flush(s_->handle, timeoutMs) == 0;
  }

  // Milliseconds stop() gives queued data to be written before closing
  // (default 1000; 0 discards it).
  int setLinger(const int milliseconds) { return setOption(TCP_OPT_LINGER_MS, milliseconds); }

  // The local port of the connection, or -1 when not connected.
  int getLocalPort() const {
    if (!s_) return -1;
    int p = ::tcp_client_local_port(s_->handle);
    return p < 0 ? -1 : p;
  }

  int setOption(int option, long long value) {
    return s_ ? ::tcp_client_set_option(s_->handle, option, value) : TCP_ERR_INVALID_ARG;
  }
  int setOption(int option, const std::string &value) {
    return s_ ? ::tcp_client_set_option_str(s_->handle, option, value.c_str())
              : TCP_ERR_INVALID_ARG;
  }

  std::string getLastError() const {
    if (!s_) return std::string();
    return fetchString([&](char *buf, size_t len) {
      return ::tcp_client_last_error(s_->handle, buf, len);
    });
  }

  // The C handle, for the functions of tcpgo.h. Owned by this object; do
  // not replace the callbacks through it.
  tcp_client *nativeHandle() const { return s_ ? s_->handle : nullptr; }

  // ---- tcpgo extensions: reconnect, flow control, introspection ----
  //
  // Settings (these and those of ConnectionOptions: setIdleTimeout,
  // setMessageTimeout, setWriteTimeout, setKeepAlive, setSendQueueLimit,
  // setSendLowWater, setCallbackThreads, setCloseOnEof, setNoDelay) are set
  // while the client is stopped and return 0 or a negative TCP_ERR_* code.

  /// true: after the connection was lost (not after stop()), reconnect
  /// automatically with exponential back-off and +-20 % jitter (see
  /// setReconnectDelay); each attempt is reported to the reconnect worker.
  /// The closed worker runs once per lost connection, before the attempts;
  /// isRunning() is false and sendMsg fails until one succeeds. Default
  /// false.
  int setReconnect(const bool enable) { return setOption(TCP_OPT_RECONNECT, enable ? 1 : 0); }

  /// The back-off between reconnection attempts starts at minMs (default
  /// 100) and doubles up to maxMs (default 30000).
  int setReconnectDelay(const int minMs, const int maxMs) {
    int rc = setOption(TCP_OPT_RECONNECT_MIN_MS, minMs);
    return rc == 0 ? setOption(TCP_OPT_RECONNECT_MAX_MS, maxMs) : rc;
  }

  /// With setReconnect(true): called when a reconnection attempt ended.
  /// attempt counts from 1 since the connection was lost; result is
  /// CLIENT_START_OK (connected again: messages follow, sendMsg works) or
  /// the start code of the failure (CLIENT_ERROR_START_CONNECT...; the next
  /// attempt follows after the back-off). stop() ends the attempts.
  void setWorkOnReconnect(std::function<void(const int attempt, const int result)> worker) {
    if (s_) s_->reconnect.set(std::move(worker));
  }

  /// The local address to connect from ("127.0.0.1", "::1"; default "" =
  /// chosen by the system).
  int setLocalAddress(const std::string &address) {
    return setOption(TCP_OPT_BIND_ADDRESS, address);
  }

  /// The closed worker with the reason (CloseReason::Peer, Reset,
  /// IdleTimeout, Stopped...). When set, it runs instead of the worker of
  /// setWorkOnClosed; an empty function goes back to that one.
  void setWorkOnClosedWithReason(std::function<void(const CloseReason reason)> worker) {
    if (s_) s_->closedWithReason.set(std::move(worker));
  }

  /// Queues msg for the server like sendMsg, but says why not (Ok,
  /// NotRunning -- also while reconnecting --, QueueFull, MemoryBudget,
  /// MessageTooLong, ContainsDelimiter, InvalidArg). After QueueFull the
  /// ready worker runs once the queue drained. Never blocks.
  SendResult sendMsgEx(std::string_view msg) { return sendEx(msg.data(), msg.size()); }
  SendResult sendMsgEx(const void *data, const size_t len) {
    if (!data && len > 0) return SendResult::InvalidArg;
    return sendEx(data, len);
  }

  /// Called when the send queue drained to the low-water mark
  /// (setSendLowWater) after a send was refused: sending may go on. Once per
  /// refusal, never after the closed worker.
  void setWorkOnReady(std::function<void()> worker) {
    if (s_) s_->ready.set(std::move(worker));
  }

  /// Bytes queued and not yet handed to the kernel, or TCP_ERR_NOT_RUNNING.
  long long queued() const {
    return s_ ? ::tcp_client_queued(s_->handle) : static_cast<long long>(TCP_ERR_INVALID_ARG);
  }

  /// Stops reading from the server: no message worker runs (not even for
  /// bytes already received) until resume(); the server is slowed down by
  /// TCP flow control and nothing is lost. False when not connected.
  bool pause() { return s_ && ::tcp_client_pause(s_->handle) == 0; }
  /// Restarts reading; the messages held back follow in order.
  bool resume() { return s_ && ::tcp_client_resume(s_->handle) == 0; }

  /// Counters of the current (or last) connection; nothing before the first
  /// connection.
  std::optional<ConnectionStats> getStats() const {
    tcp_conn_stats c{};
    if (!s_ || ::tcp_client_conn_stats(s_->handle, &c, sizeof c) != 0) return std::nullopt;
    return toConnectionStats(c);
  }

  // ---- tcpgo extensions: framings and sending ----

  /// Framing::Records: changes the record length while connected (from the
  /// message worker: for the very next record). 0 = bytes as they arrive.
  /// Returns 0 or TCP_ERR_INVALID_ARG (not a records framing, or over the
  /// framing's maximum length).
  int setRecordLength(const std::size_t recordLength) {
    return s_ ? ::tcp_client_set_record_length(s_->handle, recordLength) : TCP_ERR_INVALID_ARG;
  }

  /// Queues a file for the server as one message (see
  /// ServerBase::sendFile; NotRunning while disconnected). progress gets
  /// clientId-less calls (see tcp::FileProgress), only when the result is
  /// Ok.
  SendResult sendFile(const std::string &path, const long long offset = 0,
                      const long long length = -1, FileProgress progress = nullptr) {
    if (!s_) return SendResult::InvalidArg;
    if (!progress) {
      return static_cast<SendResult>(
          ::tcp_client_send_file(s_->handle, path.c_str(), offset, length, nullptr, nullptr));
    }
    auto *p = new ProgressCall<ClientState>{s_.get(), std::move(progress)};
    int rc = ::tcp_client_send_file(s_->handle, path.c_str(), offset, length,
                                    &ProgressCall<ClientState>::call, p);
    if (rc != 0) delete p;
    return static_cast<SendResult>(rc);
  }

  /// Queues several buffers as ONE message (framed once).
  SendResult sendv(std::initializer_list<std::string_view> parts) {
    return sendv(parts.begin(), parts.size());
  }
  SendResult sendv(const std::vector<std::string_view> &parts) {
    return sendv(parts.data(), parts.size());
  }

  /// Queues a line (see ServerBase::sendLine).
  SendResult sendLine(const std::string &line) {
    if (!s_) return SendResult::InvalidArg;
    return static_cast<SendResult>(::tcp_client_send_line(s_->handle, line.c_str()));
  }

  // ---- tcpgo extensions: TLS (also STARTTLS on a TcpClient) ----

  /// The certificate worker: sees the server's certificate during the
  /// handshake, after the built-in check (setVerifyMode), and decides:
  /// true accepts -- also a certificate the check rejected, e.g. a pinned
  /// self-signed one --, false refuses (start() then returns
  /// CLIENT_ERROR_START_CONNECT_INIT). A worker that throws refuses. Runs on
  /// a library thread; must not block long nor stop the client. An empty
  /// function removes it.
  void setWorkOnCertificate(CertificateCheck worker) {
    if (!s_) return;
    std::lock_guard<std::mutex> lock(certMutex());
    const bool on = static_cast<bool>(worker);
    s_->certificate.set(std::move(worker));
    ::tcp_client_set_on_cert(s_->handle, on ? &ClientState::onCertificate : nullptr, s_.get());
  }

  /// The negotiated TLS parameters of the connection (version, suite,
  /// ALPN, resumed, the server's certificate...), or nothing when not
  /// connected or not TLS.
  std::optional<TlsInfo> getTlsInfo() const {
    if (!s_) return std::nullopt;
    tcp_client *h = s_->handle;
    return readTlsInfo([&](tcp_tls_info *i, size_t n) { return ::tcp_client_tls_info(h, i, n); },
                       [&](int what, char *buf, size_t len) {
                         return ::tcp_client_tls_str(h, what, buf, len);
                       });
  }

  /// How the server's certificate is verified: TCP_VERIFY_CA (the default of
  /// TlsClient, as v2: the certificate must be signed by the CA; no
  /// host-name check, no SNI) or TCP_VERIFY_FULL (also checks the host name
  /// -- or setServerName's -- against the certificate's subjectAltName; the
  /// default of TcpClient's STARTTLS and of tcpgo's C and Python APIs).
  /// Both check the certificate's purpose.
  int setVerifyMode(const int mode) { return setOption(TCP_OPT_VERIFY_MODE, mode); }

  /// The name the server's certificate must match (with TCP_VERIFY_FULL)
  /// and that is sent as SNI, when it differs from the host dialled -- e.g.
  /// connecting to "10.0.0.5" with the name "db.example". "" (default) =
  /// the host dialled.
  int setServerName(const std::string &name) {
    return setOption(TCP_OPT_TLS_SERVER_NAME, name);
  }

  /// true: trust the system's CAs besides the CA given to start (default
  /// false; without a CA the system's CAs are used anyway).
  int setSystemCas(const bool enable) {
    return setOption(TCP_OPT_TLS_SYSTEM_CAS, enable ? 1 : 0);
  }

 protected:
  explicit ClientBase(std::ostream &os) : s_(new ClientState(&os, false, '\0', 0)) {}
  ClientBase(char delimiter, size_t messageMaxLen)
      : s_(new ClientState(nullptr, true, delimiter, messageMaxLen)) {}
  explicit ClientBase(const Framing &framing) : s_(new ClientState(framing)) {}

  SendResult sendv(const std::string_view *parts, size_t n) {
    if (!s_) return SendResult::InvalidArg;
    if (n > static_cast<size_t>(INT_MAX)) return SendResult::InvalidArg;
    return withIovecs(parts, n, [&](const tcp_iovec *iov, int count) {
      return static_cast<SendResult>(::tcp_client_sendv(s_->handle, iov, count));
    });
  }

  template <class Fn>
  void setMessageWorker(std::shared_ptr<const Fn> ClientMessageWorkers::*which, Fn worker) {
    auto p = workerPtr(std::move(worker));
    s_->message.update([&](ClientMessageWorkers &w) { w.*which = std::move(p); });
  }

  std::mutex &certMutex() { return s_->certMutex; }

  bool send(const void *data, size_t len) {
    return s_ && ::tcp_client_send(s_->handle, data, len) == 1;
  }

  SendResult sendEx(const void *data, size_t len) {
    if (!s_) return SendResult::InvalidArg;
    return static_cast<SendResult>(::tcp_client_send_ex(s_->handle, data, len));
  }

  // The checks v2 does before touching the network.
  int precheck(int port) const {
    if (!s_) return TCP_ERR_INVALID_ARG;
    if (isRunning()) return TCP_ERR_ALREADY_RUNNING;
    if (port < 1 || port > 65535) return CLIENT_ERROR_START_WRONG_PORT;
    return CLIENT_START_OK;
  }

  std::unique_ptr<ClientState> s_;
};

}  // namespace detail
}  // namespace tcp

#endif  // TCPGO_CPP_DETAIL_CLIENTBASE_H
