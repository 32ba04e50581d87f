// tcp/detail/ServerBase.h -- what tcp::TcpServer and tcp::TlsServer share.
//
// Not part of the public API: include <tcp/TcpServer.h> or <tcp/TlsServer.h>.
#ifndef TCPGO_CPP_DETAIL_SERVERBASE_H
#define TCPGO_CPP_DETAIL_SERVERBASE_H

#include "../ServerDefines.h"
#include "Common.h"

namespace tcp {
namespace detail {

// Everything the library's callbacks touch lives here, on the heap, so that
// the server object itself can be moved while the library holds user_data.
struct ServerState {
  tcp_server *handle = nullptr;
  bool continuous = true;

  Slot<void(const int)> established;
  Slot<void(const int, const std::string)> message;
  Slot<void(const int)> closed;
  Slot<std::ostream *(const int)> createStream;
  Slot<void(const int, const int, const std::string &)> error;
  Slot<void(const int, const std::string &, std::exception_ptr)> exception;

  std::mutex streamsMutex;
  std::map<int, std::unique_ptr<std::ostream>> streams;

  ServerState(bool fragmented, char delimiter, size_t maxLen) : continuous(!fragmented) {
    handle = fragmented ? ::tcp_server_new_fragmented(delimiter, maxLen)
                        : ::tcp_server_new();
    if (!handle) throw std::bad_alloc();
    ::tcp_server_set_on_established(handle, &ServerState::onEstablished, this);
    ::tcp_server_set_on_message(handle, &ServerState::onMessage, this);
    ::tcp_server_set_on_closed(handle, &ServerState::onClosed, this);
    ::tcp_server_set_on_error(handle, &ServerState::onError, this);
  }
  // Stops the server (every closed callback runs) and releases the handle;
  // no callback runs after tcp_server_free returns.
  ~ServerState() { ::tcp_server_free(handle); }
  ServerState(const ServerState &) = delete;
  ServerState &operator=(const ServerState &) = delete;

  std::ostream *streamOf(int id) {
    std::lock_guard<std::mutex> lock(streamsMutex);
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : it->second.get();
  }

  // --- trampolines: called by the library, never let anything unwind ---

  static void onEstablished(void *ud, int id) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    if (s->continuous) {
      if (auto gen = s->createStream.get()) {
        guarded(s->exception, id, "forward stream", [&] {
          std::unique_ptr<std::ostream> os((*gen)(id));
          if (os) {
            std::lock_guard<std::mutex> lock(s->streamsMutex);
            s->streams[id] = std::move(os);
          }
        });
      }
    }
    if (auto f = s->established.get()) {
      guarded(s->exception, id, "established", [&] { (*f)(id); });
    }
  }

  static void onMessage(void *ud, int id, const char *data, size_t len) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    if (s->continuous) {
      std::ostream *os = nullptr;
      guarded(s->exception, id, "forward stream", [&] { os = s->streamOf(id); });
      if (os) {
        guarded(s->exception, id, "forward stream", [&] {
          os->write(data, static_cast<std::streamsize>(len));
          os->flush();
        });
        return;
      }
    }
    if (auto f = s->message.get()) {
      guarded(s->exception, id, "message", [&] { (*f)(id, std::string(data, len)); });
    }
  }

  static void onClosed(void *ud, int id) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    if (auto f = s->closed.get()) {
      guarded(s->exception, id, "closed", [&] { (*f)(id); });
    }
    if (s->continuous) {
      guarded(s->exception, id, "forward stream", [&] {
        std::unique_ptr<std::ostream> os;
        {
          std::lock_guard<std::mutex> lock(s->streamsMutex);
          auto it = s->streams.find(id);
          if (it != s->streams.end()) {
            os = std::move(it->second);
            s->streams.erase(it);
          }
        }
        // os (and the stream) is deleted here, outside the lock
      });
    }
  }

  static void onError(void *ud, int id, int code, const char *message) noexcept {
    auto *s = static_cast<ServerState *>(ud);
    if (auto f = s->error.get()) {
      guarded(s->exception, id, "error",
              [&] { (*f)(id, code, std::string(message ? message : "")); });
    }
  }
};

// The part of the server API that does not depend on TCP or TLS.
class ServerBase {
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
    if (s_) s_->message.set(std::move(worker));
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

  // The C handle, for the functions of tcpgo.h. Owned by this object.
  tcp_server *nativeHandle() const { return s_ ? s_->handle : nullptr; }

 protected:
  ServerBase() : s_(new ServerState(false, '\0', 0)) {}
  ServerBase(char delimiter, size_t messageMaxLen)
      : s_(new ServerState(true, delimiter, messageMaxLen)) {}

  bool send(int clientId, const void *data, size_t len) {
    return s_ && ::tcp_send_msg(s_->handle, clientId, data, len) == 1;
  }

  std::unique_ptr<ServerState> s_;
};

}  // namespace detail
}  // namespace tcp

#endif  // TCPGO_CPP_DETAIL_SERVERBASE_H
