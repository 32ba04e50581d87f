// tcp/ClientDefines.h -- start codes of tcp::TcpClient and tcp::TlsClient.
//
// The values of nilshenrich/TCP_ServerClient v2 (and of the C ABI's
// enum tcp_start_code). start() on a running client returns -1 (a plain int,
// TCP_ERR_ALREADY_RUNNING in tcpgo.h) and changes nothing.
#ifndef TCPGO_CPP_CLIENTDEFINES_H
#define TCPGO_CPP_CLIENTDEFINES_H

namespace tcp {

enum : int {
  CLIENT_START_OK = 0,
  CLIENT_ERROR_START_WRONG_PORT = 10,      // port outside 1..65535
  CLIENT_ERROR_START_SET_CONTEXT = 20,     // TLS configuration could not be built
  CLIENT_ERROR_START_WRONG_CA_PATH = 30,   // CA file missing or unreadable
  CLIENT_ERROR_START_WRONG_CERT_PATH = 31, // certificate file missing or unreadable
  CLIENT_ERROR_START_WRONG_KEY_PATH = 32,  // key file missing or unreadable
  CLIENT_ERROR_START_WRONG_CA = 33,        // CA file holds no valid PEM certificate
  CLIENT_ERROR_START_WRONG_CERT = 34,      // certificate file holds no valid PEM certificate
  CLIENT_ERROR_START_WRONG_KEY = 35,       // key invalid or not matching the certificate
  CLIENT_ERROR_START_CREATE_SOCKET = 40,   // socket() failed
  CLIENT_ERROR_START_SET_SOCKET_OPT = 41,  // setsockopt() failed
  CLIENT_ERROR_START_CONNECT = 50,         // refused, unreachable, timed out, name not resolved
  CLIENT_ERROR_START_CONNECT_INIT = 60     // TLS handshake failed (server certificate rejected...)
};

}  // namespace tcp

#endif  // TCPGO_CPP_CLIENTDEFINES_H
