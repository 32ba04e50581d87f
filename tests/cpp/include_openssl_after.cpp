// OpenSSL included after: its NID macros redefine ours identically.
#include <tcp/TlsServer.h>
#include <tcp/TlsClient.h>

#include <openssl/obj_mac.h>
#include <openssl/ssl.h>

namespace include_openssl_after {
static_assert(NID_organizationalUnitName == 18);
std::string subject(tcp::TlsServer &s, int id, const SSL *ssl) {
  return s.getSubjPartFromClientCert(id, ssl, NID_organizationalUnitName);
}
}  // namespace include_openssl_after
