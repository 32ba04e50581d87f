// tcp/TcpServer.h -- tcp::TcpServer, a plain TCP server (tcpgo).
//
// Source-compatible with nilshenrich/TCP_ServerClient v2's TcpServer; built
// on tcpgo's C ABI (tcpgo.h). Link with -ltcpserver.
#ifndef TCPGO_CPP_TCPSERVER_H
#define TCPGO_CPP_TCPSERVER_H

#include "ServerDefines.h"
#include "detail/ServerBase.h"

namespace tcp {

class TcpServer : public detail::ServerBase {
 public:
  // Continuous mode: bytes are delivered as they arrive (see
  // setCreateForwardStream) and sent as given.
  TcpServer() : ServerBase() {}

  // Fragmented mode: every sent message gets the delimiter appended, and
  // received bytes are split at it. messageMaxLen limits messages (without
  // delimiter) in both directions; the default means "no limit" (0 means the
  // library's default, 16 MiB). A peer that sends a longer message is
  // disconnected (v2 dropped the message).
  TcpServer(const char delimiter,
            const size_t messageMaxLen = std::numeric_limits<size_t>::max() - 1)
      : ServerBase(delimiter, messageMaxLen) {}

  /// tcpgo extension: any framing (tcp::Framing): length-prefixed, end of
  /// line, text lines, fixed records, or v2's two. Throws
  /// std::invalid_argument when the framing's arguments are bad (e.g. a
  /// 3-byte prefix, an empty end of line, a record longer than maxLen).
  explicit TcpServer(const Framing &framing) : ServerBase(framing) {}

  TcpServer(TcpServer &&) noexcept = default;
  TcpServer &operator=(TcpServer &&) noexcept = default;
  ~TcpServer() override { stop(); }  // closed workers run while *this is whole

  // Starts listening on port (1..65535) and returns when the socket accepts
  // connections: SERVER_START_OK, SERVER_ERROR_START_WRONG_PORT, or 40..43
  // (42: port in use). -1 when already running. The TLS paths are ignored
  // (v2's signature). By default the server listens on every interface;
  // see setBindAddress.
  int start(const int port, const char *const /*pathToCaCert*/ = nullptr,
            const char *const /*pathToCert*/ = nullptr,
            const char *const /*pathToPrivKey*/ = nullptr) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    if (isRunning()) return TCP_ERR_ALREADY_RUNNING;
    if (port < 1 || port > 65535) return SERVER_ERROR_START_WRONG_PORT;
    return ::tcp_server_start(s_->handle, port);
  }

  // tcpgo extension: starts on a port the system picks (port 0, which
  // start() rejects as v2 does); read it with getPort().
  int startOnFreePort() {
    if (!s_) return TCP_ERR_INVALID_ARG;
    return ::tcp_server_start(s_->handle, 0);
  }

  // ---- tcpgo extension: explicit TLS (STARTTLS, StartSSL) ----

  /// The TLS material for upgrades with startTls(): ca (client certificates
  /// must be signed by it; "" = ask for none), cert and key (the server's
  /// pair; both "" = a self-signed certificate, see
  /// TlsServer::getCertificatePem), as file paths, or PEM text with isPem.
  /// Before or after start(). Returns 0 or a start code 30..35.
  int setStartTls(const std::string &ca, const std::string &cert, const std::string &key,
                  const bool isPem = false) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    return ::tcp_server_set_starttls(s_->handle, detail::nullIfEmpty(ca),
                                     detail::nullIfEmpty(cert), detail::nullIfEmpty(key),
                                     isPem ? 1 : 0);
  }

  /// Upgrades the client's plain connection to TLS: reply (may be empty) is
  /// sent in plain text first -- the protocol's "go ahead", e.g. "220 Ready
  /// to start TLS" -- framed like any message, then the server waits for the
  /// client's handshake. From the message worker of the request, the
  /// messages already read in the same batch are delivered first and the
  /// bytes after them go to the handshake. Returns at once: 0,
  /// TCP_ERR_NO_CLIENT, or TCP_ERR_INVALID_ARG (already TLS, or no
  /// setStartTls material). When the handshake is done the established
  /// worker runs again for the same id (getTlsInfo(id)->upgraded is true);
  /// when it fails, the error worker (TCP_ERR_HANDSHAKE) and the closed
  /// worker follow. What is sent after this call goes out encrypted.
  int startTls(const int clientId, std::string_view reply = {}) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    return ::tcp_server_starttls(s_->handle, clientId, reply.empty() ? nullptr : reply.data(),
                                 reply.size());
  }
};

}  // namespace tcp

#endif  // TCPGO_CPP_TCPSERVER_H
