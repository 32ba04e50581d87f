// TLS behaviour of tcp::TlsServer / tcp::TlsClient with certificates made
// the way v2 users make them (make_v2_certs.sh): X.509 v1 leaves, CN only,
// every subject CN=localhost, RSA-2048 and P-256 -- trust by CA signature
// alone, client certificates required, v2's start codes in v2's order.
#include <algorithm>

#include "transport.h"

using namespace testutil;
using namespace std::chrono_literals;

namespace {

const char *const kMissing = "/nonexistent/tcpgo/missing.pem";

struct KeyType {
  std::string dir;    // "rsa" or "ec"
  std::string other;  // the other one (for a key that does not match)
};

void PrintTo(const KeyType &k, std::ostream *os) { *os << k.dir; }

class TlsTest : public ::testing::TestWithParam<KeyType> {
 protected:
  std::string f(const std::string &name) const { return cert(GetParam().dir + "/" + name); }
  std::string ca() const { return f("ca.pem"); }

  // A running mutual-TLS server with recorded events.
  void startServer(const std::string &serverCert = "", const std::string &serverKey = "") {
    record(server, sev, /*echo=*/true);
    port = startLoopback(server, ca(), serverCert.empty() ? f("server.pem") : serverCert,
                         serverKey.empty() ? f("server.key") : serverKey);
    ASSERT_GT(port, 0);
  }

  // A client whose certificate the server must refuse: start() returns 0
  // (TLS 1.3: the client's side of the handshake completed) or 60; the
  // server never lists it, never fires established, reports a handshake
  // error for client id 0 and closes the connection.
  void expectServerRefuses(const char *clientCert, const char *clientKey) {
    Monitor<ClientEvents> cev;
    tcp::TlsClient client{'\n'};
    record(client, cev);
    const size_t errorsBefore = sev.snapshot().errors.size();
    int rc = client.start("127.0.0.1", port, ca().c_str(), clientCert, clientKey);
    EXPECT_TRUE(rc == tcp::CLIENT_START_OK || rc == tcp::CLIENT_ERROR_START_CONNECT_INIT) << rc;
    ASSERT_TRUE(sev.waitFor([&](auto &e) {
      return std::count(e.errors.begin(), e.errors.end(),
                         std::make_pair(0, int(TCP_ERR_HANDSHAKE))) > 0 &&
             e.errors.size() > errorsBefore;
    }));
    if (rc == tcp::CLIENT_START_OK) {
      ASSERT_TRUE(cev.waitFor([](auto &e) { return e.closed == 1; }));
    }
    EXPECT_FALSE(client.isRunning());
    EXPECT_FALSE(client.sendMsg(std::string("refused")));
    EXPECT_TRUE(server.getAllClientIds().empty());
    EXPECT_TRUE(sev.snapshot().established.empty());
    client.stop();
  }

  // The client refuses the server's certificate: start() returns 60.
  void expectClientRefuses(const std::string &serverCert, const std::string &serverKey) {
    startServer(serverCert, serverKey);
    tcp::TlsClient client{'\n'};
    int rc = client.start("127.0.0.1", port, ca().c_str(), f("client.pem").c_str(),
                          f("client.key").c_str());
    EXPECT_EQ(rc, tcp::CLIENT_ERROR_START_CONNECT_INIT);
    EXPECT_FALSE(client.isRunning());
    EXPECT_TRUE(server.getAllClientIds().empty());
    EXPECT_TRUE(sev.snapshot().established.empty());
    server.stop();
  }

  Monitor<ServerEvents> sev;  // declared first: outlives the server's workers
  tcp::TlsServer server{'\n'};
  int port = -1;
};

INSTANTIATE_TEST_SUITE_P(KeyTypes, TlsTest,
                         ::testing::Values(KeyType{"rsa", "ec"}, KeyType{"ec", "rsa"}),
                         [](const auto &i) { return i.param.dir; });

}  // namespace

// getSubjPartFromClientCert with OpenSSL NIDs, by id with tlsSocket nullptr.
TEST_P(TlsTest, ClientCertificateSubject) {
  startServer();
  tcp::TlsClient client{'\n'};
  ASSERT_EQ(client.start("127.0.0.1", port, ca().c_str(), f("client.pem").c_str(),
                         f("client.key").c_str()),
            tcp::CLIENT_START_OK);
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 1; }));
  const int id = sev.snapshot().established[0];
  EXPECT_EQ(server.getSubjPartFromClientCert(id, nullptr, NID_commonName), "localhost");
  EXPECT_EQ(server.getSubjPartFromClientCert(id, nullptr, NID_organizationalUnitName), "client");
  EXPECT_EQ(server.getSubjPartFromClientCert(id, nullptr, NID_organizationName), "Example Org");
  EXPECT_EQ(server.getSubjPartFromClientCert(id, nullptr, NID_localityName), "Stuttgart");
  EXPECT_EQ(server.getSubjPartFromClientCert(id, nullptr, NID_stateOrProvinceName),
            "Baden-Wuerttemberg");
  EXPECT_EQ(server.getSubjPartFromClientCert(id, nullptr, NID_countryName), "DE");
  EXPECT_EQ(server.getSubjPartFromClientCert(id, nullptr, NID_pkcs9_emailAddress), "");
  EXPECT_EQ(server.getSubjPartFromClientCert(id, NID_organizationalUnitName), "client");
  EXPECT_EQ(server.getSubjPartFromClientCert(id + 1000, nullptr, NID_commonName), "");
  const SSL *notNull = reinterpret_cast<const SSL *>(&id);
  EXPECT_EQ(server.getSubjPartFromClientCert(id, notNull, NID_commonName), "");
  // the same from the client's side (tcpgo extension)
  EXPECT_EQ(client.getSubjPartFromServerCert(NID_organizationalUnitName), "server");
  EXPECT_EQ(client.getSubjPartFromServerCert(NID_commonName), "localhost");
  // and the certificate subject is what the workers can use at once
  ASSERT_TRUE(client.sendMsg(std::string("ping")));
  client.stop();
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(server.getSubjPartFromClientCert(id, nullptr, NID_commonName), "");
  server.stop();
}

// The subject can be read inside the established worker.
TEST_P(TlsTest, SubjectInsideEstablishedWorker) {
  Monitor<std::string> ou;
  server.setWorkOnEstablished([&](const int id) {
    std::string v = server.getSubjPartFromClientCert(id, nullptr, NID_organizationalUnitName);
    ou.update([&](std::string &s) { s = v; });
  });
  port = startLoopback(server, ca(), f("server.pem"), f("server.key"));
  ASSERT_GT(port, 0);
  tcp::TlsClient client{'\n'};
  ASSERT_EQ(client.start("127.0.0.1", port, ca().c_str(), f("client.pem").c_str(),
                         f("client.key").c_str()),
            tcp::CLIENT_START_OK);
  ASSERT_TRUE(ou.waitFor([](auto &s) { return !s.empty(); }));
  EXPECT_EQ(ou.snapshot(), "client");
  client.stop();
  server.stop();
}

// The host name is not checked (v2): "localhost" and "127.0.0.1" both work
// against certificates without subjectAltName.
TEST_P(TlsTest, NoHostNameCheck) {
  startServer();
  for (const char *host : {"127.0.0.1", "localhost"}) {
    Monitor<ClientEvents> cev;
    tcp::TlsClient client{'\n'};
    record(client, cev);
    ASSERT_EQ(client.start(host, port, ca().c_str(), f("client.pem").c_str(),
                           f("client.key").c_str()),
              tcp::CLIENT_START_OK)
        << host << ": " << client.getLastError();
    ASSERT_TRUE(client.sendMsg(std::string(host)));
    ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
    client.stop();
  }
  server.stop();
}

// TCP_VERIFY_FULL (the C API's default) checks the host name against the
// subjectAltName, which v2-style certificates do not have.
TEST_P(TlsTest, VerifyFullRejectsCnOnlyCertificate) {
  startServer();
  tcp::TlsClient client{'\n'};
  ASSERT_EQ(client.setVerifyMode(TCP_VERIFY_FULL), 0);
  EXPECT_EQ(client.start("localhost", port, ca().c_str(), f("client.pem").c_str(),
                         f("client.key").c_str()),
            tcp::CLIENT_ERROR_START_CONNECT_INIT);
  EXPECT_TRUE(server.getAllClientIds().empty());
  ASSERT_EQ(client.setVerifyMode(TCP_VERIFY_CA), 0);
  EXPECT_EQ(client.start("localhost", port, ca().c_str(), f("client.pem").c_str(),
                         f("client.key").c_str()),
            tcp::CLIENT_START_OK);
  client.stop();
  server.stop();
}

// Client certificates the server must refuse.
TEST_P(TlsTest, ServerRefusesClientFromUnknownCa) {
  startServer();
  expectServerRefuses(cert("unknown/client.pem").c_str(), cert("unknown/client.key").c_str());
  server.stop();
}
TEST_P(TlsTest, ServerRefusesSelfSignedClient) {
  startServer();
  expectServerRefuses(cert("self/client.pem").c_str(), cert("self/client.key").c_str());
  server.stop();
}
TEST_P(TlsTest, ServerRefusesClientWithoutIntermediate) {
  startServer();
  const std::string d = "inter-" + GetParam().dir;
  expectServerRefuses(cert(d + "/client.pem").c_str(), cert(d + "/client.key").c_str());
  server.stop();
}
TEST_P(TlsTest, ServerRefusesClientWithoutCertificate) {
  startServer();
  expectServerRefuses(nullptr, nullptr);
  server.stop();
}
// ... and a good client after the refused ones works.
TEST_P(TlsTest, GoodClientAfterRefusedOnes) {
  Monitor<ClientEvents> cev;
  startServer();
  expectServerRefuses(cert("unknown/client.pem").c_str(), cert("unknown/client.key").c_str());
  tcp::TlsClient client{'\n'};
  record(client, cev);
  ASSERT_EQ(client.start("127.0.0.1", port, ca().c_str(), f("client.pem").c_str(),
                         f("client.key").c_str()),
            tcp::CLIENT_START_OK);
  ASSERT_TRUE(client.sendMsg(std::string("hi")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(server.getAllClientIds().size(), 1u);
  client.stop();
  server.stop();
}

// A peer that sends the intermediate along with its certificate (chain in
// the certificate file) is accepted, on both sides.
TEST_P(TlsTest, IntermediateSentAlongIsAccepted) {
  Monitor<ClientEvents> cev;
  const std::string d = "inter-" + GetParam().dir;
  char tmpl[] = "/tmp/tcpgo-cpp-chain-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  for (const char *who : {"client", "server"}) {
    std::string cmd = "cat '" + cert(d + "/" + who + ".pem") + "' '" + cert(d + "/ca.pem") +
                      "' > '" + dir + "/" + who + "-chain.pem'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  startServer(dir + "/server-chain.pem", cert(d + "/server.key"));
  tcp::TlsClient client{'\n'};
  record(client, cev);
  ASSERT_EQ(client.start("127.0.0.1", port, ca().c_str(), (dir + "/client-chain.pem").c_str(),
                         cert(d + "/client.key").c_str()),
            tcp::CLIENT_START_OK)
      << client.getLastError();
  ASSERT_TRUE(client.sendMsg(std::string("chained")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  client.stop();
  server.stop();
  EXPECT_EQ(std::system(("rm -rf '" + dir + "'").c_str()), 0);
}

// Server certificates the client must refuse (start returns 60). A server
// whose own certificate is not from the CA still starts.
TEST_P(TlsTest, ClientRefusesServerFromUnknownCa) {
  expectClientRefuses(cert("unknown/server.pem"), cert("unknown/server.key"));
}
TEST_P(TlsTest, ClientRefusesSelfSignedServer) {
  expectClientRefuses(cert("self/server.pem"), cert("self/server.key"));
}
TEST_P(TlsTest, ClientRefusesServerWithoutIntermediate) {
  const std::string d = "inter-" + GetParam().dir;
  expectClientRefuses(cert(d + "/server.pem"), cert(d + "/server.key"));
}

// Server start codes, in v2's order: port, paths (30, 31, 32), then
// contents (33, 34, 35).
TEST_P(TlsTest, ServerStartCodes) {
  const std::string C = ca(), S = f("server.pem"), K = f("server.key");
  const std::string B = cert("bad/notpem.txt"), E = cert("bad/empty.pem");
  const std::string otherKey = cert(GetParam().other + "/server.key");
  struct Case {
    int port;
    const char *ca, *cert, *key;
    int want;
  };
  const char *M = kMissing;
  const std::vector<Case> cases = {
      {0, M, M, M, tcp::SERVER_ERROR_START_WRONG_PORT},
      {-1, C.c_str(), S.c_str(), K.c_str(), tcp::SERVER_ERROR_START_WRONG_PORT},
      {65536, M, M, M, tcp::SERVER_ERROR_START_WRONG_PORT},
      {1, M, M, M, tcp::SERVER_ERROR_START_WRONG_CA_PATH},
      {1, M, S.c_str(), K.c_str(), tcp::SERVER_ERROR_START_WRONG_CA_PATH},
      {1, B.c_str(), M, M, tcp::SERVER_ERROR_START_WRONG_CERT_PATH},  // paths first
      {1, C.c_str(), M, K.c_str(), tcp::SERVER_ERROR_START_WRONG_CERT_PATH},
      {1, B.c_str(), B.c_str(), M, tcp::SERVER_ERROR_START_WRONG_KEY_PATH},
      {1, C.c_str(), S.c_str(), M, tcp::SERVER_ERROR_START_WRONG_KEY_PATH},
      {1, B.c_str(), B.c_str(), B.c_str(), tcp::SERVER_ERROR_START_WRONG_CA},
      {1, E.c_str(), S.c_str(), K.c_str(), tcp::SERVER_ERROR_START_WRONG_CA},
      {1, K.c_str(), S.c_str(), K.c_str(), tcp::SERVER_ERROR_START_WRONG_CA},  // a key is no cert
      {1, C.c_str(), B.c_str(), B.c_str(), tcp::SERVER_ERROR_START_WRONG_CERT},
      {1, C.c_str(), E.c_str(), K.c_str(), tcp::SERVER_ERROR_START_WRONG_CERT},
      {1, C.c_str(), S.c_str(), B.c_str(), tcp::SERVER_ERROR_START_WRONG_KEY},
      {1, C.c_str(), S.c_str(), otherKey.c_str(), tcp::SERVER_ERROR_START_WRONG_KEY},
      {1, C.c_str(), S.c_str(), S.c_str(), tcp::SERVER_ERROR_START_WRONG_KEY},
      {1, nullptr, S.c_str(), K.c_str(), tcp::SERVER_ERROR_START_WRONG_CA_PATH},
      {1, C.c_str(), nullptr, K.c_str(), tcp::SERVER_ERROR_START_WRONG_CERT_PATH},
      {1, C.c_str(), S.c_str(), nullptr, tcp::SERVER_ERROR_START_WRONG_KEY_PATH},
  };
  for (const auto &c : cases) {
    tcp::TlsServer s;
    ASSERT_EQ(s.setBindAddress("127.0.0.1"), 0);
    // port 1 would need root, but every case with port 1 fails before the socket
    EXPECT_EQ(s.start(c.port, c.ca, c.cert, c.key), c.want)
        << "port " << c.port << " ca " << (c.ca ? c.ca : "null") << " cert "
        << (c.cert ? c.cert : "null") << " key " << (c.key ? c.key : "null") << ": "
        << s.getLastError();
    EXPECT_FALSE(s.isRunning());
  }
}

// A server whose own certificate is self-signed (not from the CA) starts.
TEST_P(TlsTest, ServerWithSelfSignedCertificateStarts) {
  tcp::TlsServer s;
  EXPECT_GT(startLoopback(s, ca(), cert("self/server.pem"), cert("self/server.key")), 0);
  s.stop();
}

// Client start codes for its own files, in v2's order, then 50.
TEST_P(TlsTest, ClientStartCodes) {
  startServer();
  const std::string C = ca(), S = f("client.pem"), K = f("client.key");
  const std::string B = cert("bad/notpem.txt"), E = cert("bad/empty.pem");
  const std::string otherKey = cert(GetParam().other + "/client.key");
  const char *M = kMissing;
  struct Case {
    const char *ca, *cert, *key;
    int want;
  };
  const std::vector<Case> cases = {
      {M, M, M, tcp::CLIENT_ERROR_START_WRONG_CA_PATH},
      {B.c_str(), M, M, tcp::CLIENT_ERROR_START_WRONG_CERT_PATH},
      {C.c_str(), S.c_str(), M, tcp::CLIENT_ERROR_START_WRONG_KEY_PATH},
      {B.c_str(), B.c_str(), B.c_str(), tcp::CLIENT_ERROR_START_WRONG_CA},
      {E.c_str(), S.c_str(), K.c_str(), tcp::CLIENT_ERROR_START_WRONG_CA},
      {C.c_str(), B.c_str(), K.c_str(), tcp::CLIENT_ERROR_START_WRONG_CERT},
      {C.c_str(), S.c_str(), B.c_str(), tcp::CLIENT_ERROR_START_WRONG_KEY},
      {C.c_str(), S.c_str(), otherKey.c_str(), tcp::CLIENT_ERROR_START_WRONG_KEY},
  };
  for (const auto &c : cases) {
    tcp::TlsClient client{'\n'};
    EXPECT_EQ(client.start("127.0.0.1", port, c.ca, c.cert, c.key), c.want)
        << "ca " << c.ca << " cert " << c.cert << " key " << c.key << ": "
        << client.getLastError();
    EXPECT_FALSE(client.isRunning());
  }
  tcp::TlsClient client{'\n'};
  EXPECT_EQ(client.start("127.0.0.1", 0, C.c_str(), S.c_str(), K.c_str()),
            tcp::CLIENT_ERROR_START_WRONG_PORT);
  EXPECT_EQ(client.start("127.0.0.1", 65536, C.c_str(), S.c_str(), K.c_str()),
            tcp::CLIENT_ERROR_START_WRONG_PORT);
  const int closedPort = freePort();
  EXPECT_EQ(client.start("127.0.0.1", closedPort, C.c_str(), S.c_str(), K.c_str()),
            tcp::CLIENT_ERROR_START_CONNECT);
  EXPECT_TRUE(sev.snapshot().established.empty());
  server.stop();
}

// tcpgo extension: a TLS server that does not ask for client certificates
// (setRequireClientCert(false), then no CA is needed). By default a missing
// CA is refused with 30 (v2 always requires client certificates).
TEST_P(TlsTest, OptionalClientCertificate) {
  Monitor<ServerEvents> ev;
  tcp::TlsServer s{'\n'};
  ASSERT_EQ(s.setBindAddress("127.0.0.1"), 0);
  EXPECT_EQ(s.startOnFreePort(nullptr, f("server.pem").c_str(), f("server.key").c_str()),
            tcp::SERVER_ERROR_START_WRONG_CA_PATH);
  ASSERT_EQ(s.setRequireClientCert(false), 0);
  ASSERT_EQ(s.startOnFreePort(nullptr, f("server.pem").c_str(), f("server.key").c_str()),
            tcp::SERVER_START_OK)
      << s.getLastError();
  record(s, ev, true);
  tcp::TlsClient client{'\n'};
  ASSERT_EQ(client.start("127.0.0.1", s.getPort(), ca().c_str()), tcp::CLIENT_START_OK)
      << client.getLastError();
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 1; }));
  EXPECT_EQ(s.getSubjPartFromClientCert(ev.snapshot().established[0], nullptr, NID_commonName),
            "");
  client.stop();
  s.stop();
}

// Mixed key types: an RSA server and an EC client from different CAs work
// when each trusts the other's CA (CA files may hold several certificates).
TEST(TlsMixed, CaBundleWithBothCas) {
  Monitor<ServerEvents> ev;
  Monitor<ClientEvents> cev;
  const std::string bundle = certDir() + "/bundle.pem";
  {
    std::string cmd = "cat '" + cert("rsa/ca.pem") + "' '" + cert("ec/ca.pem") + "' > '" +
                      bundle + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  tcp::TlsServer s{'\n'};
  record(s, ev, true);
  ASSERT_GT(startLoopback(s, bundle, cert("rsa/server.pem"), cert("rsa/server.key")), 0);
  tcp::TlsClient c{'\n'};
  record(c, cev);
  ASSERT_EQ(c.start("127.0.0.1", s.getPort(), bundle.c_str(), cert("ec/client.pem").c_str(),
                    cert("ec/client.key").c_str()),
            tcp::CLIENT_START_OK);
  ASSERT_TRUE(c.sendMsg(std::string("mixed")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  c.stop();
  s.stop();
}
