// tcp/TcpClient.h -- tcp::TcpClient, a plain TCP client (tcpgo).
//
// Source-compatible with nilshenrich/TCP_ServerClient v2's TcpClient; built
// on tcpgo's C ABI (tcpgo.h). Link with -ltcpserver (or v2's -ltcpclient).
#ifndef TCPGO_CPP_TCPCLIENT_H
#define TCPGO_CPP_TCPCLIENT_H

#include "ClientDefines.h"
#include "detail/ClientBase.h"

namespace tcp {

class TcpClient : public detail::ClientBase {
 public:
  // Continuous mode: received bytes are written (and flushed) to os. Only
  // the reference is stored; os may be constructed later, but must outlive
  // the connection.
  TcpClient(std::ostream &os = std::cout) : ClientBase(os) {}

  // Fragmented mode (see TcpServer): whole messages go to the message
  // worker.
  TcpClient(const char delimiter,
            const size_t messageMaxLen = std::numeric_limits<size_t>::max() - 1)
      : ClientBase(delimiter, messageMaxLen) {}

  /// tcpgo extension: any framing (tcp::Framing). Messages -- with
  /// Framing::Continuous the bytes as they arrive -- go to the message
  /// worker. Throws std::invalid_argument when the framing's arguments are
  /// bad.
  explicit TcpClient(const Framing &framing) : ClientBase(framing) {}

  TcpClient(TcpClient &&) noexcept = default;
  TcpClient &operator=(TcpClient &&) noexcept = default;
  ~TcpClient() override { stop(); }

  // Connects to serverIp (an IPv4 or IPv6 address or a host name) and
  // serverPort, and returns when connected: CLIENT_START_OK,
  // CLIENT_ERROR_START_WRONG_PORT or CLIENT_ERROR_START_CONNECT; -1 when
  // already running. The TLS paths are ignored (v2's signature).
  int start(const std::string &serverIp, const int serverPort,
            const char *const /*pathToCaCert*/ = nullptr,
            const char *const /*pathToCert*/ = nullptr,
            const char *const /*pathToPrivKey*/ = nullptr) {
    int rc = precheck(serverPort);
    if (rc != CLIENT_START_OK) return rc;
    return ::tcp_client_start(s_->handle, serverIp.c_str(), serverPort);
  }

  /// tcpgo extension: explicit TLS (STARTTLS). Upgrades the plain
  /// connection, verifying the server as TlsClient does -- by default
  /// TCP_VERIFY_FULL against the host given to start() or setServerName()
  /// -- with ca / cert / key as file paths, or PEM text with isPem ("" =
  /// none; ca "" = the system's CAs). From another thread it waits for the
  /// handshake and returns 0, CLIENT_ERROR_START_CONNECT_INIT, a start code
  /// 30..35, TCP_ERR_TIMEOUT or TCP_ERR_NOT_RUNNING. From a worker of this
  /// client (typically the message worker that got the server's "go
  /// ahead") it returns 0 at once, the handshake follows the worker's
  /// return, and its result goes to the worker of setWorkOnTlsUpgrade
  /// (CLIENT_START_OK, or CLIENT_ERROR_START_CONNECT_INIT followed by the
  /// error and closed workers).
  int startTls(const std::string &ca, const std::string &cert = std::string(),
               const std::string &key = std::string(), const bool isPem = false) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    return ::tcp_client_starttls(s_->handle, detail::nullIfEmpty(ca), detail::nullIfEmpty(cert),
                                 detail::nullIfEmpty(key), isPem ? 1 : 0);
  }

  /// tcpgo extension: hears the end of a startTls() called from a worker:
  /// result CLIENT_START_OK or CLIENT_ERROR_START_CONNECT_INIT. When not
  /// set, the reconnect worker gets it as attempt 0.
  void setWorkOnTlsUpgrade(std::function<void(const int result)> worker) {
    if (s_) s_->tlsUpgrade.set(std::move(worker));
  }
};

}  // namespace tcp

#endif  // TCPGO_CPP_TCPCLIENT_H
