// The headers compile cleanly under strict warnings that users' builds
// often enable (-Wpedantic -Wshadow -Wconversion -Wold-style-cast ...), see
// tests.cmake. Compiled, not run.
#include <tcp/TcpClient.h>
#include <tcp/TcpServer.h>
#include <tcp/TlsClient.h>
#include <tcp/TlsServer.h>

namespace include_strict {
size_t use() {
  tcp::TlsServer s{'|', 4096};
  tcp::TlsClient c;
  s.sendMsg(1, "x");
  c.sendMsg("y");
  return s.getAllClientIds().size() + s.getSubjPartFromClientCert(1, nullptr, NID_commonName).size() +
         c.getSubjPartFromServerCert(NID_commonName).size() + s.getClientIp(1).size();
}
}  // namespace include_strict
