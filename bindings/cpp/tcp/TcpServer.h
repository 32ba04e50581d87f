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
};

}  // namespace tcp

#endif  // TCPGO_CPP_TCPSERVER_H
