// tcp/TlsServer.h -- tcp::TlsServer, a TLS server with client certificates
// (tcpgo).
//
// Source-compatible with nilshenrich/TCP_ServerClient v2's TlsServer; built
// on tcpgo's C ABI (tcpgo.h). Link with -ltcpserver; TLS is the library's
// own (Go's crypto/tls), no OpenSSL is needed.
#ifndef TCPGO_CPP_TLSSERVER_H
#define TCPGO_CPP_TLSSERVER_H

#include "ServerDefines.h"
#include "detail/ServerBase.h"

namespace tcp {

class TlsServer : public detail::ServerBase {
 public:
  // Continuous mode (see TcpServer).
  TlsServer() : ServerBase() { init(); }

  // Fragmented mode (see TcpServer).
  TlsServer(const char delimiter,
            const size_t messageMaxLen = std::numeric_limits<size_t>::max() - 1)
      : ServerBase(delimiter, messageMaxLen) {
    init();
  }

  TlsServer(TlsServer &&) noexcept = default;
  TlsServer &operator=(TlsServer &&) noexcept = default;
  ~TlsServer() override { stop(); }

  // Starts a TLS server on port (1..65535). pathToCaCert: PEM file of the CA
  // that client certificates must be signed by (clients without one are
  // refused and never appear as established); pathToCert / pathToPrivKey:
  // the server's certificate (optionally followed by its chain) and key.
  // TLS 1.2 and 1.3 are accepted. Checks, in this order: running (-1), port
  // (10), CA path (30), certificate path (31), key path (32), CA content
  // (33), certificate content (34), key content or mismatch (35), socket
  // (40..43). Returns when the socket accepts connections.
  int start(const int port, const char *const pathToCaCert = nullptr,
            const char *const pathToCert = nullptr,
            const char *const pathToPrivKey = nullptr) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    if (isRunning()) return TCP_ERR_ALREADY_RUNNING;
    if (port < 1 || port > 65535) return SERVER_ERROR_START_WRONG_PORT;
    return startTls(port, pathToCaCert, pathToCert, pathToPrivKey);
  }

  // tcpgo extension: start on a port the system picks; see getPort().
  int startOnFreePort(const char *const pathToCaCert, const char *const pathToCert,
                      const char *const pathToPrivKey) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    if (isRunning()) return TCP_ERR_ALREADY_RUNNING;
    return startTls(0, pathToCaCert, pathToCert, pathToPrivKey);
  }

  // One subject field of the client's certificate: subjPart is an OpenSSL
  // NID (NID_commonName, NID_organizationalUnitName...). The client is
  // identified by clientId; tlsSocket must be nullptr (tcpgo has no OpenSSL
  // SSL objects; any other value gives ""). Returns "" when the client is
  // unknown or its certificate has no such field.
  std::string getSubjPartFromClientCert(const int clientId, const SSL *tlsSocket,
                                        const int subjPart) const {
    if (!s_ || tlsSocket != nullptr) return std::string();
    return detail::fetchString([&](char *buf, size_t len) {
      return ::get_subj_part(s_->handle, clientId, subjPart, buf, len);
    });
  }

  // tcpgo extension: the same without the SSL pointer.
  std::string getSubjPartFromClientCert(const int clientId, const int subjPart) const {
    return getSubjPartFromClientCert(clientId, nullptr, subjPart);
  }

  // tcpgo extension: true (the default, as v2) requires a client
  // certificate signed by the CA; false verifies one if the client sends
  // it, and allows start() without a CA (server-only TLS). Set before
  // start(); returns 0 or a negative TCP_ERR_* code.
  int setRequireClientCert(const bool require) {
    int rc = setOption(TCP_OPT_REQUIRE_CLIENT_CERT, require ? 1 : 0);
    if (rc == 0) requireClientCert_ = require;
    return rc;
  }

  // tcpgo extension: lowest TLS version accepted, TCP_TLS_1_2 (the default
  // of these classes, as v2) or TCP_TLS_1_3.
  int setTlsMinVersion(const int version) {
    return setOption(TCP_OPT_TLS_MIN_VERSION, version);
  }

  // tcpgo extension: milliseconds an accepted connection may take to
  // complete its TLS handshake (default 10000; 0 = no limit).
  int setHandshakeTimeout(const int milliseconds) {
    return setOption(TCP_OPT_CONNECT_TIMEOUT_MS, milliseconds);
  }

 private:
  void init() { setOption(TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2); }

  int startTls(int port, const char *ca, const char *cert, const char *key) {
    if (requireClientCert_ && ca == nullptr) return SERVER_ERROR_START_WRONG_CA_PATH;
    return ::tls_server_start(s_->handle, port, ca, cert, key);
  }

  bool requireClientCert_ = true;
};

}  // namespace tcp

#endif  // TCPGO_CPP_TLSSERVER_H
