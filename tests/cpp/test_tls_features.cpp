// tcpgo's TLS additions (issue 11) through the C++ classes: PEM starts,
// the self-signed server certificate, certificate workers on both sides
// (exceptions refuse), per-connection TlsInfo, versions, suites, ALPN,
// server name and the full check of TlsClient::setFullVerification, system
// CAs, key log, resumption, SNI certificates, reload, STARTTLS on
// TcpServer / TcpClient, and interop with the openssl s_client / s_server
// tools (ALPN, SNI, resumption, STARTTLS smtp).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "helpers.h"

extern char **environ;

using namespace testutil;
using namespace std::chrono_literals;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A test PKI made by tcp_generate_certs (ECDSA P-256, with SANs).
struct Pki {
  std::string dir;
  std::string ca, serverCert, serverKey, clientCert, clientKey;  // paths
  std::string caPem, serverPem, serverKeyPem, clientPem, clientKeyPem;

  bool make(const std::string &hosts) {
    char tmpl[] = "/tmp/tcpgo-cpp-tlsf-XXXXXX";
    if (!::mkdtemp(tmpl)) return false;
    dir = tmpl;
    if (::tcp_generate_certs(dir.c_str(), hosts.empty() ? nullptr : hosts.c_str()) != 0)
      return false;
    ca = dir + "/ca.pem";
    serverCert = dir + "/server.pem";
    serverKey = dir + "/server.key";
    clientCert = dir + "/client.pem";
    clientKey = dir + "/client.key";
    caPem = readFile(ca);
    serverPem = readFile(serverCert);
    serverKeyPem = readFile(serverKey);
    clientPem = readFile(clientCert);
    clientKeyPem = readFile(clientKey);
    return !caPem.empty() && !serverKeyPem.empty();
  }
  void remove() const {
    if (dir.empty()) return;
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  }
};

Pki g_main;  // localhost, 127.0.0.1, ::1
Pki g_a;     // a.example only, another CA

constexpr const char *kServerSubject = "CN=tcpgo server,OU=test,O=tcpgo";
constexpr const char *kClientSubject = "CN=tcpgo client,OU=test,O=tcpgo";

class TlsFeatures : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(g_main.make(""));
    ASSERT_TRUE(g_a.make("a.example"));
  }
  static void TearDownTestSuite() {
    g_main.remove();
    g_a.remove();
  }
};

// A TLS echo server for '\n'-ended messages on 127.0.0.1, port 0.
// The monitors come first: members are destroyed in reverse order, and the
// server's destructor still runs closed workers that write to them.
struct EchoServer {
  Monitor<ServerEvents> ev;
  tcp::TlsServer server{'\n'};
  EchoServer() {
    record(server, ev, /*echo=*/true);
    server.setBindAddress("127.0.0.1");
  }
  int port() const { return server.getPort(); }
  int waitEstablished(size_t n = 1) {
    if (!ev.waitFor([n](auto &e) { return e.established.size() >= n; })) return -1;
    return ev.snapshot().established[n - 1];
  }
};

struct Client {
  Monitor<ClientEvents> ev;
  tcp::TlsClient client{'\n'};
  Client() { record(client, ev); }
  bool roundTrip(const std::string &msg) {
    const size_t before = ev.snapshot().messages.size();
    if (!client.sendMsg(msg)) return false;
    if (!ev.waitFor([before](auto &e) { return e.messages.size() > before; })) return false;
    return ev.snapshot().messages[before] == msg;
  }
};

bool contains(const std::string &hay, const std::string &needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

// ---- certificates from memory, self-signed ----

TEST_F(TlsFeatures, PemStartMutualAndTlsInfo) {
  EchoServer s;
  ASSERT_EQ(s.server.startPem(0, g_main.caPem, g_main.serverPem, g_main.serverKeyPem),
            tcp::SERVER_START_OK)
      << s.server.getLastError();
  Client c;
  ASSERT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem, g_main.clientPem,
                              g_main.clientKeyPem),
            tcp::CLIENT_START_OK)
      << c.client.getLastError();
  const int id = s.waitEstablished();
  ASSERT_TRUE(c.roundTrip("hello"));

  auto si = s.server.getTlsInfo(id);
  ASSERT_TRUE(si.has_value());
  EXPECT_EQ(si->version, TCP_TLS_1_3);
  EXPECT_EQ(si->versionName, "TLS 1.3");
  EXPECT_FALSE(si->cipherName.empty());
  EXPECT_NE(si->cipherSuite, 0);
  EXPECT_TRUE(si->hasPeerCert);
  EXPECT_EQ(si->verifyResult, tcp::CertResult::Ok);
  EXPECT_EQ(si->peerSubject, kClientSubject);
  EXPECT_EQ(si->peerCertPem, g_main.clientPem);
  EXPECT_FALSE(si->upgraded);

  auto ci = c.client.getTlsInfo();
  ASSERT_TRUE(ci.has_value());
  EXPECT_EQ(ci->version, TCP_TLS_1_3);
  EXPECT_EQ(ci->peerSubject, kServerSubject);
  EXPECT_EQ(ci->peerIssuer, "CN=tcpgo test CA,O=tcpgo");
  EXPECT_TRUE(contains(ci->peerChainPem, "BEGIN CERTIFICATE"));
  EXPECT_EQ(ci->cipherSuite, si->cipherSuite);

  EXPECT_FALSE(s.server.getTlsInfo(999999).has_value());
  tcp::TlsClient idle;
  EXPECT_FALSE(idle.getTlsInfo().has_value());
}

TEST_F(TlsFeatures, PemStartCodes) {
  tcp::TlsServer s{'\n'};
  s.setBindAddress("127.0.0.1");
  EXPECT_EQ(s.startPem(0, "junk", g_main.serverPem, g_main.serverKeyPem), tcp::SERVER_ERROR_START_WRONG_CA);
  EXPECT_EQ(s.startPem(0, "", "junk", g_main.serverKeyPem), tcp::SERVER_ERROR_START_WRONG_CERT);
  EXPECT_EQ(s.startPem(0, "", g_main.serverPem, g_a.serverKeyPem), tcp::SERVER_ERROR_START_WRONG_KEY);
  EXPECT_EQ(s.startPem(0, "", g_main.serverPem, ""), tcp::SERVER_ERROR_START_WRONG_KEY);
  EXPECT_EQ(s.startPem(70000, "", "", ""), tcp::SERVER_ERROR_START_WRONG_PORT);
  EXPECT_FALSE(s.isRunning());
  tcp::TlsClient c{'\n'};
  EXPECT_EQ(c.startPem("127.0.0.1", 1, "junk"), tcp::CLIENT_ERROR_START_WRONG_CA);
  EXPECT_EQ(c.startPem("127.0.0.1", 1, g_main.caPem, g_main.clientPem, ""), tcp::CLIENT_ERROR_START_WRONG_KEY);
}

// A server given no certificate makes one; clients trust it through
// getCertificatePem(), also with the full check (127.0.0.1 is in it).
TEST_F(TlsFeatures, SelfSignedServerAndItsCertificate) {
  EchoServer s;
  EXPECT_EQ(s.server.getCertificatePem(), "");
  ASSERT_EQ(s.server.startSelfSigned(0), tcp::SERVER_START_OK) << s.server.getLastError();
  const std::string pem = s.server.getCertificatePem();
  ASSERT_TRUE(contains(pem, "-----BEGIN CERTIFICATE-----")) << pem;

  Client v2;
  ASSERT_EQ(v2.client.startPem("127.0.0.1", s.port(), pem), tcp::CLIENT_START_OK)
      << v2.client.getLastError();
  EXPECT_TRUE(v2.roundTrip("plain check"));
  Client full;
  ASSERT_EQ(full.client.setFullVerification(), 0);
  ASSERT_EQ(full.client.startPem("127.0.0.1", s.port(), pem), tcp::CLIENT_START_OK)
      << full.client.getLastError();
  EXPECT_TRUE(full.roundTrip("full check"));
  auto info = full.client.getTlsInfo();
  ASSERT_TRUE(info.has_value());
  ASSERT_FALSE(info->peerCertPem.empty());
  EXPECT_TRUE(contains(pem, info->peerCertPem));
  // another CA does not trust it
  Client other;
  EXPECT_EQ(other.client.startPem("127.0.0.1", s.port(), g_main.caPem),
            tcp::CLIENT_ERROR_START_CONNECT_INIT);
}

// ---- certificate workers ----

// The server's worker accepts a client certificate the built-in check
// rejected (unknown CA) and sees what it is.
TEST_F(TlsFeatures, ServerWorkerAcceptsRejectedCertificate) {
  EchoServer s;
  Monitor<std::vector<tcp::CertificateInfo>> seen;
  s.server.setWorkOnCertificate([&](const tcp::CertificateInfo &i) {
    seen.update([&](auto &v) { v.push_back(i); });
    return i.result == tcp::CertResult::UnknownCa && i.pem == g_a.clientPem;
  });
  ASSERT_EQ(s.server.startPem(0, g_main.caPem, g_main.serverPem, g_main.serverKeyPem), 0);
  Client c;
  ASSERT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem, g_a.clientPem, g_a.clientKeyPem),
            tcp::CLIENT_START_OK);
  const int id = s.waitEstablished();
  ASSERT_TRUE(c.roundTrip("let in"));
  auto v = seen.snapshot();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].result, tcp::CertResult::UnknownCa);
  EXPECT_FALSE(v[0].error.empty());
  EXPECT_EQ(v[0].subject, kClientSubject);
  EXPECT_EQ(v[0].issuer, "CN=tcpgo test CA,O=tcpgo");
  EXPECT_TRUE(contains(v[0].chainPem, v[0].pem));
  EXPECT_GT(v[0].clientId, 0);
  EXPECT_EQ(v[0].clientId, id);
  auto info = s.server.getTlsInfo(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->verifyResult, tcp::CertResult::UnknownCa);
}

// A worker that says no, or throws, refuses a good certificate; the
// exception reaches the exception handler and never the library.
TEST_F(TlsFeatures, ServerWorkerRefusesAndThrowingRefuses) {
  for (bool throwing : {false, true}) {
    SCOPED_TRACE(throwing ? "throwing" : "false");
    EchoServer s;
    Monitor<std::vector<std::string>> exc;
    s.server.setExceptionHandler([&](const int, const std::string &worker, std::exception_ptr) {
      exc.update([&](auto &v) { v.push_back(worker); });
    });
    s.server.setWorkOnCertificate([throwing](const tcp::CertificateInfo &) -> bool {
      if (throwing) throw std::runtime_error("no");
      return false;
    });
    ASSERT_EQ(s.server.startPem(0, g_main.caPem, g_main.serverPem, g_main.serverKeyPem), 0);
    Client c;
    c.client.setTlsMaxVersion(TCP_TLS_1_2);  // the refusal then fails the client's start
    EXPECT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem, g_main.clientPem,
                                g_main.clientKeyPem),
              tcp::CLIENT_ERROR_START_CONNECT_INIT);
    ASSERT_TRUE(s.ev.waitFor([](auto &e) { return !e.errors.empty(); }));
    EXPECT_EQ(s.ev.snapshot().errors[0], std::make_pair(0, static_cast<int>(TCP_ERR_HANDSHAKE)));
    EXPECT_TRUE(s.ev.snapshot().established.empty());
    if (throwing) {
      ASSERT_TRUE(exc.waitFor([](auto &v) { return !v.empty(); }));
      EXPECT_EQ(exc.snapshot()[0], "certificate");
    }
    // removing the worker: the built-in verdict lets it in again
    s.server.setWorkOnCertificate(nullptr);
    Client ok;
    ASSERT_EQ(ok.client.startPem("127.0.0.1", s.port(), g_main.caPem, g_main.clientPem,
                                 g_main.clientKeyPem),
              tcp::CLIENT_START_OK);
    EXPECT_TRUE(ok.roundTrip("after"));
  }
}

// Without a CA, a worker set before the start makes the server ask for a
// certificate and judge it itself.
TEST_F(TlsFeatures, ServerWorkerWithoutCa) {
  EchoServer s;
  s.server.setWorkOnCertificate(
      [](const tcp::CertificateInfo &i) { return i.subject == kClientSubject; });
  ASSERT_EQ(s.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);
  Client c;
  ASSERT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem, g_main.clientPem,
                              g_main.clientKeyPem),
            tcp::CLIENT_START_OK);
  const int id = s.waitEstablished();
  ASSERT_TRUE(c.roundTrip("judged"));
  auto info = s.server.getTlsInfo(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->hasPeerCert);
  EXPECT_EQ(info->peerSubject, kClientSubject);
}

// The client's worker pins a server certificate no CA of it trusts, and
// can refuse one that the check accepts.
TEST_F(TlsFeatures, ClientWorkerPinsAndRefuses) {
  EchoServer s;
  ASSERT_EQ(s.server.startSelfSigned(0), 0);
  const std::string pinned = s.server.getCertificatePem();
  Client c;
  c.client.setWorkOnCertificate([&](const tcp::CertificateInfo &i) {
    return i.result == tcp::CertResult::UnknownCa && !i.pem.empty() && contains(pinned, i.pem) &&
           i.clientId == 0;
  });
  ASSERT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem), tcp::CLIENT_START_OK)
      << c.client.getLastError();
  EXPECT_TRUE(c.roundTrip("pinned"));
  c.client.stop();

  Client refuse;
  refuse.client.setWorkOnCertificate([](const tcp::CertificateInfo &) -> bool {
    throw std::logic_error("refuse by throwing");
  });
  refuse.client.setExceptionHandler([](const int, const std::string &, std::exception_ptr) {});
  EchoServer good;
  ASSERT_EQ(good.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);
  EXPECT_EQ(refuse.client.startPem("127.0.0.1", good.port(), g_main.caPem),
            tcp::CLIENT_ERROR_START_CONNECT_INIT);
}

// ---- verification: v2's default and the documented full check ----

TEST_F(TlsFeatures, FullVerificationAndServerName) {
  EchoServer s;  // a certificate for a.example only
  ASSERT_EQ(s.server.startPem(0, "", g_a.serverPem, g_a.serverKeyPem), 0);
  // v2's behaviour: signed by the CA is enough, the name is not checked
  Client v2;
  ASSERT_EQ(v2.client.startPem("127.0.0.1", s.port(), g_a.caPem), tcp::CLIENT_START_OK);
  EXPECT_TRUE(v2.roundTrip("v2"));
  // the full check refuses a certificate not made for 127.0.0.1
  Client full;
  ASSERT_EQ(full.client.setFullVerification(), 0);
  EXPECT_EQ(full.client.startPem("127.0.0.1", s.port(), g_a.caPem),
            tcp::CLIENT_ERROR_START_CONNECT_INIT);
  // ... and accepts it for the name it was made for, sent as SNI
  Client named;
  ASSERT_EQ(named.client.setFullVerification("a.example"), 0);
  ASSERT_EQ(named.client.startPem("127.0.0.1", s.port(), g_a.caPem), tcp::CLIENT_START_OK)
      << named.client.getLastError();
  EXPECT_TRUE(named.roundTrip("named"));
  const int id = s.waitEstablished(2);
  auto info = s.server.getTlsInfo(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->serverName, "a.example");
  // the client's worker sees the full check's verdict
  Client seen;
  seen.client.setFullVerification();
  Monitor<int> result;
  result.update([](int &r) { r = -1; });
  seen.client.setWorkOnCertificate([&](const tcp::CertificateInfo &i) {
    result.update([&](int &r) { r = static_cast<int>(i.result); });
    return false;
  });
  EXPECT_EQ(seen.client.startPem("127.0.0.1", s.port(), g_a.caPem), tcp::CLIENT_ERROR_START_CONNECT_INIT);
  EXPECT_EQ(result.snapshot(), static_cast<int>(tcp::CertResult::NameMismatch));
}

// ---- options ----

TEST_F(TlsFeatures, VersionsAndCipherSuites) {
  EchoServer s;
  ASSERT_EQ(s.server.setTlsMaxVersion(TCP_TLS_1_2), 0);
  ASSERT_EQ(s.server.setTlsCipherSuites({"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}), 0);
  EXPECT_EQ(s.server.setTlsCipherSuites({"TLS_NO_SUCH_SUITE"}), TCP_ERR_INVALID_ARG);
  ASSERT_EQ(s.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);
  Client c;
  ASSERT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem), tcp::CLIENT_START_OK);
  auto info = c.client.getTlsInfo();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->version, TCP_TLS_1_2);
  EXPECT_EQ(info->versionName, "TLS 1.2");
  EXPECT_EQ(info->cipherName, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
  EXPECT_EQ(info->cipherSuite, 0xC02C);
  // a client that insists on TLS 1.3 cannot talk to it
  Client new13;
  ASSERT_EQ(new13.client.setTlsMinVersion(TCP_TLS_1_3), 0);
  EXPECT_EQ(new13.client.startPem("127.0.0.1", s.port(), g_main.caPem),
            tcp::CLIENT_ERROR_START_CONNECT_INIT);
}

TEST_F(TlsFeatures, Alpn) {
  EchoServer s;
  ASSERT_EQ(s.server.setAlpn({"x-test", "h2"}), 0);
  ASSERT_EQ(s.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);
  Client c;
  ASSERT_EQ(c.client.setAlpn({"h2", "x-test"}), 0);
  ASSERT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem), tcp::CLIENT_START_OK);
  const int id = s.waitEstablished();
  ASSERT_TRUE(c.roundTrip("alpn"));
  EXPECT_EQ(c.client.getTlsInfo()->alpn, "x-test");  // the server's preference
  EXPECT_EQ(s.server.getTlsInfo(id)->alpn, "x-test");
  Client wrong;
  ASSERT_EQ(wrong.client.setAlpn({"nope"}), 0);
  EXPECT_EQ(wrong.client.startPem("127.0.0.1", s.port(), g_main.caPem),
            tcp::CLIENT_ERROR_START_CONNECT_INIT);
}

TEST_F(TlsFeatures, KeyLogFileAndSystemCas) {
  const std::string log = g_main.dir + "/keylog.txt";
  EchoServer s;
  ASSERT_EQ(s.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);
  Client c;
  ASSERT_EQ(c.client.setTlsKeyLogFile(log), 0);
  ASSERT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem), tcp::CLIENT_START_OK);
  ASSERT_TRUE(c.roundTrip("logged"));
  c.client.stop();
  const std::string text = readFile(log);
  EXPECT_TRUE(contains(text, "CLIENT_HANDSHAKE_TRAFFIC_SECRET ")) << text;
  EXPECT_TRUE(contains(text, "CLIENT_TRAFFIC_SECRET_0 ")) << text;
  std::remove(log.c_str());

  // the system's CAs do not know our test CA; with ours besides them, fine
  Client sys;
  ASSERT_EQ(sys.client.setSystemCas(true), 0);
  EXPECT_EQ(sys.client.startPem("127.0.0.1", s.port(), ""), tcp::CLIENT_ERROR_START_CONNECT_INIT);
  ASSERT_EQ(sys.client.startPem("127.0.0.1", s.port(), g_main.caPem), tcp::CLIENT_START_OK);
}

// A client resumes its session on the next connection unless told not to.
TEST_F(TlsFeatures, Resumption) {
  EchoServer s;
  ASSERT_EQ(s.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);
  for (bool enabled : {true, false}) {
    SCOPED_TRACE(enabled ? "on" : "off");
    Client c;
    ASSERT_EQ(c.client.setTlsResumption(enabled), 0);
    for (int i = 0; i < 2; i++) {
      ASSERT_EQ(c.client.startPem("127.0.0.1", s.port(), g_main.caPem), tcp::CLIENT_START_OK);
      ASSERT_TRUE(c.roundTrip("r" + std::to_string(i)));  // the ticket comes before the echo
      auto info = c.client.getTlsInfo();
      ASSERT_TRUE(info.has_value());
      EXPECT_EQ(info->resumed, enabled && i == 1);
      c.client.stop();
    }
  }
}

// ---- SNI certificates and reload ----

TEST_F(TlsFeatures, SniCertificates) {
  EchoServer s;
  ASSERT_EQ(s.server.addCertificate("a.example", g_a.serverPem, g_a.serverKeyPem, true), 0);
  EXPECT_EQ(s.server.addCertificate("b.example", "/nonexistent.pem", g_a.serverKey),
            tcp::SERVER_ERROR_START_WRONG_CERT_PATH);
  ASSERT_EQ(s.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);
  ASSERT_EQ(s.server.addCertificate("*.b.example", g_a.serverCert, g_a.serverKey), 0);  // files
  Client named;
  named.client.setFullVerification("a.example");
  ASSERT_EQ(named.client.startPem("127.0.0.1", s.port(), g_a.caPem), tcp::CLIENT_START_OK)
      << named.client.getLastError();
  EXPECT_EQ(named.client.getTlsInfo()->peerCertPem, g_a.serverPem);
  Client wild;  // the wildcard entry serves the a.example certificate: a name mismatch, let in
  wild.client.setFullVerification("x.b.example");
  wild.client.setWorkOnCertificate(
      [](const tcp::CertificateInfo &i) { return i.result == tcp::CertResult::NameMismatch; });
  ASSERT_EQ(wild.client.startPem("127.0.0.1", s.port(), g_a.caPem), tcp::CLIENT_START_OK);
  EXPECT_EQ(wild.client.getTlsInfo()->peerCertPem, g_a.serverPem);
  Client plain;
  ASSERT_EQ(plain.client.startPem("127.0.0.1", s.port(), g_main.caPem), tcp::CLIENT_START_OK);
  EXPECT_EQ(plain.client.getTlsInfo()->peerCertPem, g_main.serverPem);
}

TEST_F(TlsFeatures, ReloadCertificate) {
  EchoServer s;
  EXPECT_EQ(s.server.reloadCertificate(g_a.serverCert, g_a.serverKey), TCP_ERR_NOT_RUNNING);
  ASSERT_EQ(s.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);
  Client before;
  ASSERT_EQ(before.client.startPem("127.0.0.1", s.port(), g_main.caPem), tcp::CLIENT_START_OK);
  ASSERT_EQ(s.server.reloadCertificate(g_a.serverCert, g_a.serverKey), 0);
  EXPECT_EQ(s.server.getCertificatePem(), g_a.serverPem);
  Client after;
  ASSERT_EQ(after.client.startPem("127.0.0.1", s.port(), g_a.caPem), tcp::CLIENT_START_OK);
  EXPECT_EQ(after.client.getTlsInfo()->peerCertPem, g_a.serverPem);
  EXPECT_TRUE(before.roundTrip("still up"));  // connections already up keep theirs
  // a bad pair changes nothing; both empty = a new self-signed one
  EXPECT_EQ(s.server.reloadCertificate(g_main.serverPem, g_a.serverKeyPem, true),
            tcp::SERVER_ERROR_START_WRONG_KEY);
  EXPECT_EQ(s.server.getCertificatePem(), g_a.serverPem);
  ASSERT_EQ(s.server.reloadCertificate("", ""), 0);
  const std::string self = s.server.getCertificatePem();
  EXPECT_NE(self, g_a.serverPem);
  Client selfc;
  ASSERT_EQ(selfc.client.startPem("127.0.0.1", s.port(), self), tcp::CLIENT_START_OK);
}

// ---- STARTTLS ----

// A line protocol: "STARTTLS" is answered with "220 go ahead" and the
// upgrade; the client upgrades from its message worker (result through
// setWorkOnTlsUpgrade) or from the main thread.
TEST_F(TlsFeatures, StartTlsServerAndClient) {
  std::atomic<int> upgradeRc{1};
  Monitor<ServerEvents> sev;
  tcp::TcpServer server{tcp::Framing::Lines(1024)};
  record(server, sev);
  server.setWorkOnMessage([&](const int id, const std::string msg) {
    if (msg == "STARTTLS") {
      upgradeRc = server.startTls(id, "220 go ahead");
    } else {
      server.sendMsg(id, "echo " + msg);
    }
    sev.update([&](auto &e) { e.messages.emplace_back(id, msg); });
  });
  EXPECT_NE(server.startTls(1, "x"), 0);  // not running, no material
  ASSERT_EQ(server.setStartTls("", g_main.serverPem, g_main.serverKeyPem, true), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);

  // from the client's worker
  {
    Monitor<std::vector<int>> upgrades;
    std::atomic<int> clientRc{1};
    Monitor<ClientEvents> cev;
    tcp::TcpClient client{tcp::Framing::Lines(1024)};
    record(client, cev);
    client.setWorkOnMessage([&](const std::string msg) {
      if (msg == "220 go ahead") clientRc = client.startTls(g_main.caPem, "", "", true);
      cev.update([&](auto &e) { e.messages.push_back(msg); });
    });
    client.setWorkOnTlsUpgrade([&](const int result) { upgrades.update([&](auto &v) { v.push_back(result); }); });
    ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
    ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 1; }));
    const int id = sev.snapshot().established[0];
    EXPECT_FALSE(server.getTlsInfo(id).has_value());  // plain so far
    EXPECT_EQ(client.sendLine("STARTTLS"), tcp::SendResult::Ok);
    ASSERT_TRUE(upgrades.waitFor([](auto &v) { return !v.empty(); }));
    EXPECT_EQ(upgrades.snapshot(), std::vector<int>{tcp::CLIENT_START_OK});
    EXPECT_EQ(clientRc.load(), 0);
    EXPECT_EQ(upgradeRc.load(), 0);
    // established again for the same id, now with TLS
    ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 2; }));
    EXPECT_EQ(sev.snapshot().established[1], id);
    auto si = server.getTlsInfo(id);
    ASSERT_TRUE(si.has_value());
    EXPECT_TRUE(si->upgraded);
    auto ci = client.getTlsInfo();
    ASSERT_TRUE(ci.has_value());
    EXPECT_TRUE(ci->upgraded);
    EXPECT_EQ(ci->peerSubject, kServerSubject);
    EXPECT_TRUE(client.sendMsg(std::string("secret")));
    ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 2; }));
    EXPECT_EQ(cev.snapshot().messages[1], "echo secret");
    // a second upgrade is refused
    EXPECT_EQ(server.startTls(id, ""), TCP_ERR_INVALID_ARG);
  }

  // from the main thread, after the go-ahead arrived
  {
    Monitor<ClientEvents> cev;
    tcp::TcpClient client{tcp::Framing::Lines(1024)};
    record(client, cev);
    ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
    EXPECT_EQ(client.sendLine("STARTTLS"), tcp::SendResult::Ok);
    ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
    EXPECT_EQ(cev.snapshot().messages[0], "220 go ahead");
    ASSERT_EQ(client.startTls(g_main.ca), 0) << client.getLastError();
    EXPECT_TRUE(client.getTlsInfo()->upgraded);
    EXPECT_TRUE(client.sendMsg(std::string("after")));
    ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 2; }));
    EXPECT_EQ(cev.snapshot().messages[1], "echo after");
  }
  // a client that does not trust the server's certificate fails the upgrade
  {
    Monitor<ClientEvents> cev;
    tcp::TcpClient client{tcp::Framing::Lines(1024)};
    record(client, cev);
    ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
    EXPECT_EQ(client.sendLine("STARTTLS"), tcp::SendResult::Ok);
    ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
    EXPECT_EQ(client.startTls(g_a.ca), tcp::CLIENT_ERROR_START_CONNECT_INIT);
  }
  tcp::TcpServer noMaterial{'\n'};
  EXPECT_NE(noMaterial.startTls(1, "x"), 0);
}

// ---- interop with the openssl command line tools ----

namespace {

bool haveOpenSsl() { return std::system("openssl version >/dev/null 2>&1") == 0; }

// A child process with stdin and stdout+stderr on pipes.
class Tool {
 public:
  explicit Tool(const std::vector<std::string> &args) {
    std::vector<char *> argv;
    for (const auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    int in[2], out[2];
    if (::pipe(in) != 0) return;
    if (::pipe(out) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    int rc = ::posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
      pid_ = -1;
      ::close(in[1]);
      ::close(out[0]);
      return;
    }
    to_ = in[1];
    from_ = out[0];
  }
  ~Tool() {
    closeInput();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
    if (from_ >= 0) ::close(from_);
  }
  Tool(const Tool &) = delete;
  Tool &operator=(const Tool &) = delete;

  bool ok() const { return pid_ > 0; }
  void write(const std::string &s) {
    if (to_ >= 0) (void)!::write(to_, s.data(), s.size());
  }
  void closeInput() {
    if (to_ >= 0) ::close(to_);
    to_ = -1;
  }
  // Reads until pred(output) holds, EOF, or the timeout; returns pred's value.
  template <class P>
  bool readUntil(P &&pred, std::chrono::milliseconds timeout = 15s) {
    const auto end = Clock::now() + timeout;
    while (!pred(out_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      ssize_t n = ::read(from_, buf, sizeof buf);
      if (n <= 0) return pred(out_);
      out_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  bool readToEof(std::chrono::milliseconds timeout = 15s) {
    bool eof = false;
    const auto end = Clock::now() + timeout;
    while (!eof) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      ssize_t n = ::read(from_, buf, sizeof buf);
      if (n <= 0) eof = true;
      else out_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  const std::string &output() const { return out_; }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string out_;
};

// openssl s_client to 127.0.0.1:port; sends input, reads until it exits.
std::string sClient(int port, const std::string &input, std::vector<std::string> extra) {
  std::vector<std::string> args{"openssl", "s_client", "-connect",
                                "127.0.0.1:" + std::to_string(port), "-ign_eof"};
  args.insert(args.end(), extra.begin(), extra.end());
  Tool t(args);
  if (!t.ok()) return "<could not start openssl>";
  t.write(input);
  t.closeInput();
  if (!t.readToEof()) ADD_FAILURE() << "openssl s_client did not finish:\n" << t.output();
  return t.output();
}

}  // namespace

// openssl s_client against TlsServer: ALPN (the server's preference), SNI
// (the certificate of the name asked for), resumption (-sess_out/-sess_in).
TEST_F(TlsFeatures, OpenSslClientAlpnSniResumption) {
  if (!haveOpenSsl()) GTEST_SKIP() << "no openssl on PATH";
  EchoServer s;
  s.server.setWorkOnMessage([&s](const int id, const std::string msg) {
    s.server.sendMsg(id, "echo " + msg);
    s.server.closeClient(id);
  });
  ASSERT_EQ(s.server.setAlpn({"x-test", "h2"}), 0);
  ASSERT_EQ(s.server.addCertificate("a.example", g_a.serverPem, g_a.serverKeyPem, true), 0);
  ASSERT_EQ(s.server.startPem(0, "", g_main.serverPem, g_main.serverKeyPem), 0);

  std::string out = sClient(s.port(), "ping\n",
                            {"-alpn", "h2,x-test", "-servername", "a.example", "-CAfile", g_a.ca,
                             "-verify_return_error", "-verify_hostname", "a.example"});
  EXPECT_TRUE(contains(out, "Verification: OK")) << out;
  EXPECT_TRUE(contains(out, "ALPN protocol: x-test")) << out;
  EXPECT_TRUE(contains(out, "echo ping")) << out;

  const std::string sess = g_main.dir + "/session.pem";
  out = sClient(s.port(), "one\n", {"-noservername", "-alpn", "h2", "-CAfile", g_main.ca,
                                    "-verify_return_error", "-sess_out", sess});
  EXPECT_TRUE(contains(out, "New, TLSv1.3")) << out;
  EXPECT_TRUE(contains(out, "ALPN protocol: h2")) << out;
  EXPECT_TRUE(contains(out, "CN = tcpgo server")) << out;
  out = sClient(s.port(), "two\n", {"-noservername", "-alpn", "h2", "-CAfile", g_main.ca,
                                    "-verify_return_error", "-sess_in", sess});
  EXPECT_TRUE(contains(out, "Reused, TLSv1.3")) << out;
  EXPECT_TRUE(contains(out, "echo two")) << out;
  std::remove(sess.c_str());

  out = sClient(s.port(), "ping\n", {"-alpn", "nope", "-CAfile", g_main.ca});
  EXPECT_FALSE(contains(out, "ALPN protocol")) << out;
  EXPECT_FALSE(contains(out, "echo ping")) << out;
}

// TlsClient against openssl s_server: SNI picks -cert2 for -servername,
// ALPN is negotiated, the session is resumed.
TEST_F(TlsFeatures, OpenSslServerAlpnSniResumption) {
  if (!haveOpenSsl()) GTEST_SKIP() << "no openssl on PATH";
  Tool srv({"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", g_main.serverCert, "-key",
            g_main.serverKey, "-alpn", "x-test,h2", "-servername", "a.example", "-cert2",
            g_a.serverCert, "-key2", g_a.serverKey, "-rev"});
  ASSERT_TRUE(srv.ok());
  const std::string mark = "ACCEPT 127.0.0.1:";
  ASSERT_TRUE(srv.readUntil([&](const std::string &o) {
    auto p = o.find(mark);
    return p != std::string::npos && o.find('\n', p) != std::string::npos;
  })) << srv.output();
  const int port = std::atoi(srv.output().c_str() + srv.output().find(mark) + mark.size());
  ASSERT_GT(port, 0);

  {  // SNI: full check of the name's certificate
    Client c;
    c.client.setFullVerification("a.example");
    ASSERT_EQ(c.client.startPem("127.0.0.1", port, g_a.caPem), tcp::CLIENT_START_OK)
        << c.client.getLastError();
    EXPECT_EQ(c.client.getTlsInfo()->peerCertPem, g_a.serverPem);
  }
  Client c;  // ALPN and resumption, default certificate
  ASSERT_EQ(c.client.setAlpn({"x-other", "h2"}), 0);
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(c.client.startPem("127.0.0.1", port, g_main.caPem), tcp::CLIENT_START_OK)
        << c.client.getLastError();
    ASSERT_TRUE(c.client.sendMsg(std::string("abc")));
    ASSERT_TRUE(c.ev.waitFor([i](auto &e) { return e.messages.size() == static_cast<size_t>(i + 1); }));
    EXPECT_EQ(c.ev.snapshot().messages[static_cast<size_t>(i)], "cba");  // -rev
    auto info = c.client.getTlsInfo();
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->alpn, "h2");
    EXPECT_EQ(info->resumed, i == 1);
    EXPECT_EQ(info->peerSubject, kServerSubject);
    c.client.stop();
  }
}

// openssl s_client -starttls smtp against a TcpServer speaking just enough
// SMTP over Framing::Lines, upgraded with startTls.
TEST_F(TlsFeatures, OpenSslClientStartTlsSmtp) {
  if (!haveOpenSsl()) GTEST_SKIP() << "no openssl on PATH";
  Monitor<ServerEvents> sev;
  tcp::TcpServer server{tcp::Framing::Lines(1024)};
  record(server, sev);
  server.setWorkOnEstablished([&](const int id) {
    const bool upgraded = server.getTlsInfo(id).has_value();
    if (!upgraded) server.sendLine(id, "220 tcpgo ESMTP");
    sev.update([&](auto &e) { e.established.push_back(id); });
  });
  server.setWorkOnMessage([&](const int id, const std::string msg) {
    if (msg.rfind("EHLO", 0) == 0) {
      server.sendLine(id, "250-tcpgo");
      server.sendLine(id, "250 STARTTLS");
    } else if (msg == "STARTTLS") {
      server.startTls(id, "220 2.0.0 Ready to start TLS");
    } else {
      server.sendLine(id, "echo " + msg);
      server.closeClient(id);
    }
    sev.update([&](auto &e) { e.messages.emplace_back(id, msg); });
  });
  ASSERT_EQ(server.setStartTls("", g_main.serverCert, g_main.serverKey), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  std::string out = sClient(port, "ping\n", {"-starttls", "smtp", "-CAfile", g_main.ca,
                                             "-verify_return_error", "-verify_hostname", "localhost"});
  EXPECT_TRUE(contains(out, "Verification: OK")) << out;
  EXPECT_TRUE(contains(out, "echo ping")) << out;
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 2 && e.closed.size() == 1; }));
  auto e = sev.snapshot();
  EXPECT_EQ(e.established[0], e.established[1]);
  ASSERT_EQ(e.messages.size(), 3u);
  EXPECT_EQ(e.messages[1].second, "STARTTLS");
  EXPECT_EQ(e.messages[2].second, "ping");
}
