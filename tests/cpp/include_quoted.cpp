// v2 users also include the headers by bare name, with <prefix>/include/tcp
// on the include path. Compiled with only that directory (plus tcpgo.h's).
#include "TcpServer.h"
#include "TlsServer.h"
#include "TcpClient.h"
#include "TlsClient.h"
#include "ServerDefines.h"
#include "ClientDefines.h"

namespace include_quoted {
tcp::TcpServer *server = nullptr;
int code = tcp::SERVER_ERROR_START_SERVER + tcp::CLIENT_ERROR_START_CONNECT_INIT;
}  // namespace include_quoted
