// tcp/TlsClient.h -- tcp::TlsClient, a TLS client with a client certificate
// (tcpgo).
//
// Source-compatible with nilshenrich/TCP_ServerClient v2's TlsClient; built
// on tcpgo's C ABI (tcpgo.h). Link with -ltcpserver (or v2's -ltlsclient);
// no OpenSSL is needed.
#ifndef TCPGO_CPP_TLSCLIENT_H
#define TCPGO_CPP_TLSCLIENT_H

#include "ClientDefines.h"
#include "detail/ClientBase.h"

namespace tcp {

class TlsClient : public detail::ClientBase {
 public:
  // Continuous mode (see TcpClient).
  TlsClient(std::ostream &os = std::cout) : ClientBase(os) { init(); }

  // Fragmented mode (see TcpClient).
  TlsClient(const char delimiter,
            const size_t messageMaxLen = std::numeric_limits<size_t>::max() - 1)
      : ClientBase(delimiter, messageMaxLen) {
    init();
  }

  /// tcpgo extension: any framing (see tcp::Framing and
  /// TcpClient(const Framing &)).
  explicit TlsClient(const Framing &framing) : ClientBase(framing) { init(); }

  TlsClient(TlsClient &&) noexcept = default;
  TlsClient &operator=(TlsClient &&) noexcept = default;
  ~TlsClient() override { stop(); }

  // Connects with TLS and returns when the handshake is done.
  // pathToCaCert: the CA the server's certificate must be signed by (as v2,
  // only the signature is checked, not the host name: see
  // setFullVerification);
  // pathToCert / pathToPrivKey: the client's certificate and key. Returns
  // CLIENT_START_OK, 10 (port), 30..35 (own files, in v2's order), 50
  // (connection), 60 (handshake failed: e.g. the server's certificate is not
  // signed by the CA); -1 when already running. With TLS 1.3 a server that
  // rejects the client's certificate does so after the client's side of the
  // handshake completed: start() returns CLIENT_START_OK and the connection
  // is closed right after (isRunning() turns false, sendMsg fails).
  int start(const std::string &serverIp, const int serverPort,
            const char *const pathToCaCert = nullptr,
            const char *const pathToCert = nullptr,
            const char *const pathToPrivKey = nullptr) {
    int rc = precheck(serverPort);
    if (rc != CLIENT_START_OK) return rc;
    return ::tls_client_start(s_->handle, serverIp.c_str(), serverPort, pathToCaCert,
                              pathToCert, pathToPrivKey);
  }

  // tcpgo extension: one subject field of the server's certificate
  // (NID_commonName...), "" when not connected or absent.
  std::string getSubjPartFromServerCert(const int subjPart) const {
    if (!s_) return std::string();
    return detail::fetchString([&](char *buf, size_t len) {
      return ::tcp_client_server_subj_part(s_->handle, subjPart, buf, len);
    });
  }

  // tcpgo extension: setVerifyMode(TCP_VERIFY_CA / TCP_VERIFY_FULL),
  // setServerName and setSystemCas are in ClientBase; TCP_VERIFY_CA is
  // this class's default (v2's behaviour).

  /// tcpgo extension: the full check of tcpgo's C and Python clients.
  /// TlsClient keeps v2's behaviour by default -- the server's certificate
  /// must be signed by the CA, but its host name is NOT checked, so any
  /// certificate of that CA is accepted. This turns on TCP_VERIFY_FULL: the
  /// certificate must also be valid for serverName -- or, when serverName
  /// is "", for the host given to start() (an IP address is matched against
  /// the certificate's IP SANs) -- and serverName is sent as SNI. Set
  /// before start(); returns 0 or a negative TCP_ERR_* code.
  int setFullVerification(const std::string &serverName = std::string()) {
    int rc = setOption(TCP_OPT_VERIFY_MODE, TCP_VERIFY_FULL);
    return rc == 0 ? setServerName(serverName) : rc;
  }

  /// tcpgo extension: connects with PEM text in memory instead of files:
  /// caPem ("" = the system's CAs), certPem / keyPem (the client's pair;
  /// "" = none). Returns as start().
  int startPem(const std::string &serverIp, const int serverPort, const std::string &caPem,
               const std::string &certPem = std::string(),
               const std::string &keyPem = std::string()) {
    int rc = precheck(serverPort);
    if (rc != CLIENT_START_OK) return rc;
    return ::tls_client_start_pem(s_->handle, serverIp.c_str(), serverPort,
                                  detail::nullIfEmpty(caPem), detail::nullIfEmpty(certPem),
                                  detail::nullIfEmpty(keyPem));
  }

  // tcpgo extension: lowest TLS version accepted, TCP_TLS_1_2 (default of
  // this class) or TCP_TLS_1_3.
  int setTlsMinVersion(const int version) {
    return setOption(TCP_OPT_TLS_MIN_VERSION, version);
  }

 private:
  void init() {
    setOption(TCP_OPT_VERIFY_MODE, TCP_VERIFY_CA);
    setOption(TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2);
  }
};

}  // namespace tcp

#endif  // TCPGO_CPP_TLSCLIENT_H
