// Interoperability with OpenSSL peers, as v2 programs (which use OpenSSL)
// are: TLS 1.2 and TLS 1.3 clients against tcp::TlsServer, and TLS 1.2 and
// 1.3 servers for tcp::TlsClient. v2 accepts TLS 1.2 and 1.3; so do the
// tcp:: classes. Built only when OpenSSL's development files are present.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <csignal>

#include "transport.h"

using namespace testutil;
using namespace std::chrono_literals;

namespace {

struct CtxDeleter {
  void operator()(SSL_CTX *c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL *s) const { SSL_free(s); }
};
using Ctx = std::unique_ptr<SSL_CTX, CtxDeleter>;
using Ssl = std::unique_ptr<SSL, SslDeleter>;

std::string sslErrors() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    out += buf;
    out += "; ";
  }
  return out;
}

// An OpenSSL context like v2's: peer verification against the CA file,
// own certificate and key, one protocol version.
Ctx makeCtx(bool server, int version, const std::string &dir) {
  Ctx ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return ctx;
  SSL_CTX_set_min_proto_version(ctx.get(), version);
  SSL_CTX_set_max_proto_version(ctx.get(), version);
  const std::string me = server ? "server" : "client";
  if (SSL_CTX_use_certificate_file(ctx.get(), cert(dir + "/" + me + ".pem").c_str(),
                                   SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), cert(dir + "/" + me + ".key").c_str(),
                                  SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx.get(), cert(dir + "/ca.pem").c_str(), nullptr) != 1) {
    ADD_FAILURE() << "OpenSSL context: " << sslErrors();
    return Ctx();
  }
  SSL_CTX_set_verify(ctx.get(),
                     server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER,
                     nullptr);
  return ctx;
}

void setTimeouts(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Reads up to '\n' (bounded by the socket timeouts).
std::string readLine(SSL *ssl) {
  std::string line;
  char c;
  while (SSL_read(ssl, &c, 1) == 1) {
    if (c == '\n') return line;
    line.push_back(c);
  }
  return "<read failed: " + sslErrors() + ">";
}

struct Version {
  std::string name;
  int version;
  std::string dir;
};

void PrintTo(const Version &v, std::ostream *os) { *os << v.name; }

class OpenSslInterop : public ::testing::TestWithParam<Version> {
 protected:
  void SetUp() override { std::signal(SIGPIPE, SIG_IGN); }  // OpenSSL writes on our threads
};

INSTANTIATE_TEST_SUITE_P(Versions, OpenSslInterop,
                         ::testing::Values(Version{"Tls12Rsa", TLS1_2_VERSION, "rsa"},
                                           Version{"Tls12Ec", TLS1_2_VERSION, "ec"},
                                           Version{"Tls13Rsa", TLS1_3_VERSION, "rsa"},
                                           Version{"Tls13Ec", TLS1_3_VERSION, "ec"}),
                         [](const auto &i) { return i.param.name; });

}  // namespace

// An OpenSSL client (like v2's TlsClient) against tcp::TlsServer.
TEST_P(OpenSslInterop, OpenSslClientToTlsServer) {
  Monitor<ServerEvents> ev;
  const auto &v = GetParam();
  tcp::TlsServer server{'\n'};
  record(server, ev, /*echo=*/true);
  const int port = startLoopback(server, cert(v.dir + "/ca.pem"), cert(v.dir + "/server.pem"),
                                 cert(v.dir + "/server.key"));
  ASSERT_GT(port, 0);

  Ctx ctx = makeCtx(false, v.version, v.dir);
  ASSERT_TRUE(ctx);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  setTimeouts(fd);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  Ssl ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  ASSERT_EQ(SSL_connect(ssl.get()), 1) << sslErrors();
  EXPECT_EQ(SSL_version(ssl.get()), v.version);
  ASSERT_EQ(SSL_write(ssl.get(), "hello over openssl\n", 19), 19);
  EXPECT_EQ(readLine(ssl.get()), "hello over openssl");
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 1; }));
  EXPECT_EQ(server.getSubjPartFromClientCert(ev.snapshot().established[0], nullptr,
                                             NID_organizationalUnitName),
            "client");
  SSL_shutdown(ssl.get());
  ::close(fd);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  server.stop();
}

// tcp::TlsClient against an OpenSSL server (like v2's TlsServer) that
// requires a client certificate.
TEST_P(OpenSslInterop, TlsClientToOpenSslServer) {
  Monitor<std::string> serverSaw;
  Monitor<ClientEvents> cev;
  const auto &v = GetParam();
  Ctx ctx = makeCtx(true, v.version, v.dir);
  ASSERT_TRUE(ctx);
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr *>(&a), &len), 0);
  const int port = ntohs(a.sin_port);

  std::thread server([&] {
    int fd = ::accept(lfd, nullptr, nullptr);
    if (fd < 0) return;
    setTimeouts(fd);
    Ssl ssl(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd);
    std::string saw;
    if (SSL_accept(ssl.get()) == 1) {
      saw = readLine(ssl.get());
      X509 *peer = SSL_get1_peer_certificate(ssl.get());
      saw += peer ? " (with client certificate)" : " (no client certificate)";
      X509_free(peer);
      SSL_write(ssl.get(), "pong\n", 5);
      char c;
      SSL_read(ssl.get(), &c, 1);  // until the client closes
    } else {
      saw = "handshake failed: " + sslErrors();
    }
    serverSaw.update([&](std::string &s) { s = saw; });
    ::close(fd);
  });

  tcp::TlsClient client{'\n'};
  record(client, cev);
  ASSERT_EQ(client.start("127.0.0.1", port, cert(v.dir + "/ca.pem").c_str(),
                         cert(v.dir + "/client.pem").c_str(), cert(v.dir + "/client.key").c_str()),
            tcp::CLIENT_START_OK)
      << client.getLastError();
  EXPECT_EQ(client.getSubjPartFromServerCert(NID_organizationalUnitName), "server");
  ASSERT_TRUE(client.sendMsg(std::string("ping")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(cev.snapshot().messages[0], "pong");
  client.stop();
  server.join();
  ::close(lfd);
  EXPECT_EQ(serverSaw.snapshot(), "ping (with client certificate)");
}
