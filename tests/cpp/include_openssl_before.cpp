// OpenSSL included first: our SSL typedef and NIDs must not clash.
#include <openssl/obj_mac.h>
#include <openssl/ssl.h>

#include <tcp/TlsServer.h>
#include <tcp/TlsClient.h>

namespace include_openssl_before {
static_assert(NID_commonName == 13);
std::string subject(tcp::TlsServer &s, int id, const SSL *ssl) {
  return s.getSubjPartFromClientCert(id, ssl, NID_localityName);
}
}  // namespace include_openssl_before
