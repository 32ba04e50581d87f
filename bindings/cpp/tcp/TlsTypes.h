// tcp/TlsTypes.h -- what tcpgo's C++ classes report about TLS (tcpgo
// extension): certificate checks and the negotiated parameters of a
// connection.
//
// Included by every class header; may also be included alone.
#ifndef TCPGO_CPP_TLSTYPES_H
#define TCPGO_CPP_TLSTYPES_H

#include <functional>
#include <string>

#if __has_include("../tcpgo.h")
#include "../tcpgo.h"
#else
#include <tcpgo.h>
#endif

namespace tcp {

/// The library's own verdict on a peer's certificate (tcpgo.h's enum
/// tcp_cert_result).
enum class CertResult : int {
  Ok = TCP_CERT_OK,                      ///< chain (and, on a client with full verification, name) verified
  NoCert = TCP_CERT_NO_CERT,             ///< the peer sent no certificate
  UnknownCa = TCP_CERT_UNKNOWN_CA,       ///< no chain to a trusted CA (e.g. self-signed)
  Expired = TCP_CERT_EXPIRED,            ///< expired or not yet valid
  NameMismatch = TCP_CERT_NAME_MISMATCH, ///< valid, but not for the server name
  Purpose = TCP_CERT_PURPOSE,            ///< not fit for its role (extended key usage, key usage)
  Invalid = TCP_CERT_INVALID             ///< bad signature, constraints, malformed...
};

/// What a certificate worker (setWorkOnCertificate) sees of the peer's
/// certificate during the handshake. Strings are "" when absent.
struct CertificateInfo {
  /// Server: the id the connection will have (not yet established; usable
  /// with getClientIp / getClientPort). Client: 0.
  int clientId = 0;
  CertResult result = CertResult::Ok;  ///< the built-in verdict
  std::string error;       ///< why the built-in check failed; "" when Ok
  std::string pem;         ///< the peer's leaf certificate in PEM
  std::string chainPem;    ///< every certificate the peer sent, leaf first
  std::string subject;     ///< leaf subject, RFC 2253 ("CN=a,O=b")
  std::string issuer;      ///< leaf issuer, RFC 2253
  /// Server: the name the client asked for (SNI); client: the name verified.
  std::string serverName;
};

/// Decides whether a handshake goes on: true accepts the peer's
/// certificate -- also one the built-in check rejected (e.g. a pinned
/// self-signed one) --, false refuses it and fails the handshake. A worker
/// that throws refuses (the exception goes to the exception handler as
/// worker "certificate").
using CertificateCheck = std::function<bool(const CertificateInfo &info)>;

/// The negotiated parameters of a connection's TLS session
/// (TcpServer/TlsServer::getTlsInfo, TcpClient/TlsClient::getTlsInfo).
struct TlsInfo {
  int version = 0;            ///< TCP_TLS_1_2 (0x0303) or TCP_TLS_1_3 (0x0304)
  int cipherSuite = 0;        ///< IANA id, e.g. 0x1301
  bool resumed = false;       ///< the session was resumed (ticket / PSK)
  bool upgraded = false;      ///< upgraded by STARTTLS (false: TLS from the start)
  CertResult verifyResult = CertResult::Ok;  ///< built-in verdict on the peer's certificate
  bool hasPeerCert = false;   ///< the peer sent a certificate
  std::string versionName;    ///< "TLS 1.3"
  std::string cipherName;     ///< "TLS_AES_128_GCM_SHA256"
  std::string alpn;           ///< the negotiated ALPN protocol; "" = none
  std::string serverName;     ///< the SNI the client sent; "" = none
  std::string peerCertPem;    ///< the peer's leaf certificate; "" = none
  std::string peerChainPem;   ///< every certificate the peer sent
  std::string peerSubject;    ///< RFC 2253; "" = no certificate
  std::string peerIssuer;     ///< RFC 2253
  std::string verifyError;    ///< why the built-in check failed; "" = Ok
};

}  // namespace tcp

#endif  // TCPGO_CPP_TLSTYPES_H
