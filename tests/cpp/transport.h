// Runs the same test over plain TCP and mutual TLS (RSA and P-256 v1
// certificates): a parameter names the transport, and these factories make
// and start matching servers and clients behind their common base classes.
#ifndef TCPGO_TESTS_CPP_TRANSPORT_H
#define TCPGO_TESTS_CPP_TRANSPORT_H

#include <memory>
#include <string>

#include "helpers.h"

namespace testutil {

struct Transport {
  std::string name;  // for test names
  bool tls;
  std::string dir;  // certificate set: "rsa" or "ec"
};

inline void PrintTo(const Transport &t, std::ostream *os) { *os << t.name; }

inline std::string transportName(const ::testing::TestParamInfo<Transport> &i) {
  return i.param.name;
}

inline const Transport kTcp{"Tcp", false, ""};
inline const Transport kTlsRsa{"TlsRsa", true, "rsa"};
inline const Transport kTlsEc{"TlsEc", true, "ec"};

using ServerPtr = std::unique_ptr<tcp::detail::ServerBase>;
using ClientPtr = std::unique_ptr<tcp::detail::ClientBase>;

// Continuous-mode server.
inline ServerPtr makeServer(const Transport &t) {
  if (t.tls) return std::make_unique<tcp::TlsServer>();
  return std::make_unique<tcp::TcpServer>();
}
// Fragmented-mode server.
inline ServerPtr makeServer(const Transport &t, char delimiter,
                            size_t maxLen = std::numeric_limits<size_t>::max() - 1) {
  if (t.tls) return std::make_unique<tcp::TlsServer>(delimiter, maxLen);
  return std::make_unique<tcp::TcpServer>(delimiter, maxLen);
}

// Starts on 127.0.0.1 and a free port; returns the port (or -1).
inline int startServer(const Transport &t, tcp::detail::ServerBase &s) {
  if (t.tls)
    return startLoopback(static_cast<tcp::TlsServer &>(s), cert(t.dir + "/ca.pem"),
                         cert(t.dir + "/server.pem"), cert(t.dir + "/server.key"));
  return startLoopback(static_cast<tcp::TcpServer &>(s));
}

// v2's start(port, ca, cert, key) on a given port.
inline int startServerV2(const Transport &t, tcp::detail::ServerBase &s, int port) {
  if (t.tls)
    return static_cast<tcp::TlsServer &>(s).start(port, cert(t.dir + "/ca.pem").c_str(),
                                                   cert(t.dir + "/server.pem").c_str(),
                                                   cert(t.dir + "/server.key").c_str());
  return static_cast<tcp::TcpServer &>(s).start(port);
}

inline ClientPtr makeClient(const Transport &t, std::ostream &os) {
  if (t.tls) return std::make_unique<tcp::TlsClient>(os);
  return std::make_unique<tcp::TcpClient>(os);
}
inline ClientPtr makeClient(const Transport &t, char delimiter,
                            size_t maxLen = std::numeric_limits<size_t>::max() - 1) {
  if (t.tls) return std::make_unique<tcp::TlsClient>(delimiter, maxLen);
  return std::make_unique<tcp::TcpClient>(delimiter, maxLen);
}

inline int startClient(const Transport &t, tcp::detail::ClientBase &c, int port,
                       const std::string &host = "127.0.0.1") {
  if (t.tls)
    return static_cast<tcp::TlsClient &>(c).start(host, port, cert(t.dir + "/ca.pem").c_str(),
                                                  cert(t.dir + "/client.pem").c_str(),
                                                  cert(t.dir + "/client.key").c_str());
  return static_cast<tcp::TcpClient &>(c).start(host, port);
}

}  // namespace testutil

#endif
