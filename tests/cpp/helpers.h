// Shared helpers of the C++ tests: event recorders that wait with timeouts
// (never sleeps as synchronisation), loopback servers, ports, certificates.
#ifndef TCPGO_TESTS_CPP_HELPERS_H
#define TCPGO_TESTS_CPP_HELPERS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <ostream>
#include <set>
#include <streambuf>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <tcp/TcpClient.h>
#include <tcp/TcpServer.h>
#include <tcp/TlsClient.h>
#include <tcp/TlsServer.h>

namespace testutil {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Upper bound of every wait; generous because the test machine is shared.
constexpr auto kWait = 10s;

// A monitor: state plus a condition variable, for waiting on what library
// threads do.
template <class T>
class Monitor {
 public:
  template <class F>
  void update(F &&f) {
    {
      std::lock_guard<std::mutex> l(m_);
      f(v_);
    }
    cv_.notify_all();
  }
  template <class P>
  bool waitFor(P &&pred, std::chrono::milliseconds timeout = kWait) {
    std::unique_lock<std::mutex> l(m_);
    return cv_.wait_for(l, timeout, [&] { return pred(v_); });
  }
  template <class F>
  auto read(F &&f) {
    std::lock_guard<std::mutex> l(m_);
    return f(v_);
  }
  T snapshot() {
    std::lock_guard<std::mutex> l(m_);
    return v_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  T v_{};
};

// What a server's workers saw.
struct ServerEvents {
  std::vector<int> established;
  std::vector<int> closed;
  std::vector<std::pair<int, std::string>> messages;
  std::vector<std::pair<int, int>> errors;  // (client id, code)
};

// Wires every worker of a server to a monitor; optionally echoes.
template <class Server>
void record(Server &server, Monitor<ServerEvents> &ev, bool echo = false) {
  server.setWorkOnEstablished(
      [&ev](const int id) { ev.update([&](ServerEvents &e) { e.established.push_back(id); }); });
  server.setWorkOnClosed(
      [&ev](const int id) { ev.update([&](ServerEvents &e) { e.closed.push_back(id); }); });
  server.setWorkOnMessage([&ev, &server, echo](const int id, const std::string msg) {
    if (echo) server.sendMsg(id, msg);
    ev.update([&](ServerEvents &e) { e.messages.emplace_back(id, msg); });
  });
  server.setWorkOnError([&ev](const int id, const int code, const std::string &) {
    ev.update([&](ServerEvents &e) { e.errors.emplace_back(id, code); });
  });
}

struct ClientEvents {
  std::vector<std::string> messages;
  int closed = 0;
  std::vector<int> errors;
};

template <class Client>
void record(Client &client, Monitor<ClientEvents> &ev) {
  client.setWorkOnMessage([&ev](const std::string msg) {
    ev.update([&](ClientEvents &e) { e.messages.push_back(msg); });
  });
  client.setWorkOnClosed([&ev] { ev.update([](ClientEvents &e) { e.closed++; }); });
  client.setWorkOnError([&ev](const int code, const std::string &) {
    ev.update([&](ClientEvents &e) { e.errors.push_back(code); });
  });
}

// Starts a plain server on 127.0.0.1 and a port the system picks (the tcpgo
// extensions setBindAddress + startOnFreePort). Returns the port, or -1.
inline int startLoopback(tcp::TcpServer &s) {
  if (s.setBindAddress("127.0.0.1") != 0) return -1;
  int rc = s.startOnFreePort();
  EXPECT_EQ(rc, tcp::SERVER_START_OK) << s.getLastError();
  return rc == 0 ? s.getPort() : -1;
}
inline int startLoopback(tcp::TlsServer &s, const std::string &ca, const std::string &cert,
                         const std::string &key) {
  if (s.setBindAddress("127.0.0.1") != 0) return -1;
  int rc = s.startOnFreePort(ca.c_str(), cert.c_str(), key.c_str());
  EXPECT_EQ(rc, tcp::SERVER_START_OK) << s.getLastError();
  return rc == 0 ? s.getPort() : -1;
}

// A port that was free a moment ago on 127.0.0.1 (for v2's start(port)).
// Another process may take it in between: callers retry on 42.
inline int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// v2-style start(port) on loopback with a fresh port; retries when another
// process took the port in between. Returns the port or -1.
template <class StartFn>
int startOnSomePort(StartFn &&start) {
  for (int i = 0; i < 20; i++) {
    int port = freePort();
    int rc = start(port);
    if (rc == 0) return port;
    if (rc != tcp::SERVER_ERROR_START_BIND_PORT) {
      ADD_FAILURE() << "start(" << port << ") returned " << rc;
      return -1;
    }
  }
  ADD_FAILURE() << "no free port";
  return -1;
}

// Does a plain connect() to 127.0.0.1:port succeed?
inline bool canConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Polls cond (for state the library exposes only by query, such as
// isRunning) until it holds or timeout passes. Sleeps 1 ms between looks;
// this is a bounded poll, not synchronisation by sleeping.
template <class F>
bool eventually(F &&cond, std::chrono::milliseconds timeout = kWait) {
  auto end = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// An ostream that collects what is written, lets a test wait for it, and
// records its own destruction (for forward streams).
class CollectingStream : public std::ostream {
 public:
  struct Shared {
    Monitor<std::string> text;
    Monitor<int> destroyed;
  };
  explicit CollectingStream(std::shared_ptr<Shared> sh)
      : std::ostream(nullptr), buf_(sh), sh_(std::move(sh)) {
    rdbuf(&buf_);
  }
  ~CollectingStream() override {
    sh_->destroyed.update([](int &n) { n++; });
  }

 private:
  class Buf : public std::streambuf {
   public:
    explicit Buf(std::shared_ptr<Shared> sh) : sh_(std::move(sh)) {}

   protected:
    std::streamsize xsputn(const char *s, std::streamsize n) override {
      sh_->text.update([&](std::string &t) { t.append(s, static_cast<size_t>(n)); });
      return n;
    }
    int_type overflow(int_type c) override {
      if (c != traits_type::eof()) {
        char ch = static_cast<char>(c);
        sh_->text.update([&](std::string &t) { t.push_back(ch); });
      }
      return traits_type::not_eof(c);
    }

   private:
    std::shared_ptr<Shared> sh_;
  };
  Buf buf_;
  std::shared_ptr<Shared> sh_;
};

// The certificate directory made by make_v2_certs.sh (see main.cpp).
const std::string &certDir();
inline std::string cert(const std::string &rel) { return certDir() + "/" + rel; }

// A big message of n bytes without the byte `avoid` (a delimiter).
inline std::string pattern(size_t n, char avoid = '\n') {
  std::string s(n, 'x');
  for (size_t i = 0; i < n; i++) {
    char c = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    s[i] = c == avoid ? 'z' : c;
  }
  return s;
}

}  // namespace testutil

#endif
