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

  /// tcpgo extension: any framing (see tcp::Framing and
  /// TcpServer(const Framing &)).
  explicit TlsServer(const Framing &framing) : ServerBase(framing) { init(); }

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

  // ---- tcpgo extensions: certificates from memory, self-signed, SNI,
  // reload. (Certificate worker, getTlsInfo and the TLS options --
  // setTlsMaxVersion, setTlsCipherSuites, setAlpn, setTlsKeyLogFile,
  // setTlsResumption -- are shared with TcpServer, see ServerBase.) ----

  /// Starts with PEM text in memory instead of files. caPem: the CAs client
  /// certificates must be signed by ("" = ask for no client certificate,
  /// unless a certificate worker is set -- unlike start(), no CA is needed
  /// whatever setRequireClientCert says). certPem (optionally followed by
  /// its chain) and keyPem: the server's pair; both "" = a self-signed
  /// certificate (see startSelfSigned). port 0 = a port the system picks
  /// (getPort()). Returns SERVER_START_OK or a start code (33..35 for bad
  /// PEM, 40..43 for the socket); -1 when running.
  int startPem(const int port, const std::string &caPem, const std::string &certPem,
               const std::string &keyPem) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    if (isRunning()) return TCP_ERR_ALREADY_RUNNING;
    if (port < 0 || port > 65535) return SERVER_ERROR_START_WRONG_PORT;
    return ::tls_server_start_pem(s_->handle, port, detail::nullIfEmpty(caPem),
                                  detail::nullIfEmpty(certPem), detail::nullIfEmpty(keyPem));
  }

  /// Starts with a self-signed ECDSA P-256 certificate made now, valid for
  /// a year for "localhost", 127.0.0.1 and ::1 (or for the bind address
  /// when bound to another one), as the tutorials' servers do. Clients
  /// trust it with getCertificatePem() as their CA, or with a certificate
  /// worker that pins it. caPem as startPem's.
  int startSelfSigned(const int port, const std::string &caPem = std::string()) {
    return startPem(port, caPem, std::string(), std::string());
  }

  /// The server's default certificate (with its chain) in PEM: the one of
  /// the last start or reloadCertificate -- e.g. the self-signed one. ""
  /// before the first start.
  std::string getCertificatePem() const {
    if (!s_) return std::string();
    return detail::fetchString([&](char *buf, size_t len) {
      return ::tcp_server_tls_certificate(s_->handle, buf, len);
    });
  }

  /// SNI: serve cert/key (file paths, or PEM text with isPem) to clients
  /// that ask for host -- a name, or "*.example.com" for the names one
  /// label below example.com. The pair of the start serves every other
  /// name. Replaces an earlier pair for the same host. Any time, before or
  /// after start(); kept across restarts. Returns 0, a start code
  /// 31/32/34/35 for the pair, or TCP_ERR_INVALID_ARG for a bad host.
  int addCertificate(const std::string &host, const std::string &cert, const std::string &key,
                     const bool isPem = false) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    return ::tcp_server_add_cert(s_->handle, host.c_str(), cert.c_str(), key.c_str(),
                                 isPem ? 1 : 0);
  }

  /// Replaces the default certificate and key of the running server without
  /// a restart: new handshakes use the new pair, connections already up
  /// keep theirs. File paths, or PEM text with isPem; both "" = a new
  /// self-signed certificate. Nothing changes on failure. Returns 0, a start
  /// code 31..35, or TCP_ERR_NOT_RUNNING.
  int reloadCertificate(const std::string &cert, const std::string &key,
                        const bool isPem = false) {
    if (!s_) return TCP_ERR_INVALID_ARG;
    return ::tcp_server_reload_cert(s_->handle, detail::nullIfEmpty(cert),
                                    detail::nullIfEmpty(key), isPem ? 1 : 0);
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
