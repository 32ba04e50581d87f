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
};

}  // namespace tcp

#endif  // TCPGO_CPP_TCPCLIENT_H
