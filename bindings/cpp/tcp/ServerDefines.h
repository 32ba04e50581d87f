// tcp/ServerDefines.h -- start codes of tcp::TcpServer and tcp::TlsServer.
//
// The values of nilshenrich/TCP_ServerClient v2 (and of the C ABI's
// enum tcp_start_code). start() on a running server returns -1 (a plain int,
// TCP_ERR_ALREADY_RUNNING in tcpgo.h) and changes nothing.
#ifndef TCPGO_CPP_SERVERDEFINES_H
#define TCPGO_CPP_SERVERDEFINES_H

namespace tcp {

enum : int {
  SERVER_START_OK = 0,
  SERVER_ERROR_START_WRONG_PORT = 10,      // port outside 1..65535
  SERVER_ERROR_START_SET_CONTEXT = 20,     // TLS configuration could not be built
  SERVER_ERROR_START_WRONG_CA_PATH = 30,   // CA file missing or unreadable
  SERVER_ERROR_START_WRONG_CERT_PATH = 31, // certificate file missing or unreadable
  SERVER_ERROR_START_WRONG_KEY_PATH = 32,  // key file missing or unreadable
  SERVER_ERROR_START_WRONG_CA = 33,        // CA file holds no valid PEM certificate
  SERVER_ERROR_START_WRONG_CERT = 34,      // certificate file holds no valid PEM certificate
  SERVER_ERROR_START_WRONG_KEY = 35,       // key invalid or not matching the certificate
  SERVER_ERROR_START_CREATE_SOCKET = 40,   // socket() failed
  SERVER_ERROR_START_SET_SOCKET_OPT = 41,  // setsockopt() failed
  SERVER_ERROR_START_BIND_PORT = 42,       // bind() failed: port in use, no rights
  SERVER_ERROR_START_SERVER = 43           // listen() failed, or bad bind address
};

}  // namespace tcp

#endif  // TCPGO_CPP_SERVERDEFINES_H
