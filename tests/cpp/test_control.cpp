// Connection control, flow control and lifecycle of the tcp:: classes (the
// issue-9 additions; half-close from issue 8): admission, limits, timeouts
// with close reasons, queue-full and ready, pause/resume, graceful shutdown,
// reconnect, per-connection state, statistics. Peers that misbehave are raw
// sockets; every wait is event-driven with a deadline.
#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <any>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "helpers.h"

using namespace testutil;
using namespace std::chrono_literals;

namespace {

// A plain socket peer on loopback that does exactly what a test tells it.
class RawPeer {
 public:
  // rcvbuf > 0 shrinks the receive buffer before connecting, so that a peer
  // that does not read makes the server's queue fill quickly.
  explicit RawPeer(int port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawPeer() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawPeer(const RawPeer &) = delete;
  RawPeer &operator=(const RawPeer &) = delete;

  bool ok() const { return fd_ >= 0; }

  int localPort() const {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) != 0) return -1;
    return ntohs(a.sin_port);
  }

  bool sendAll(const std::string &s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  void shutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // Reads until the peer closes (EOF or reset: returns true) or until
  // `limit` bytes arrived or the deadline passed (returns false).
  bool read(std::string &out, std::chrono::milliseconds timeout = kWait,
            size_t limit = std::numeric_limits<size_t>::max()) {
    auto end = Clock::now() + timeout;
    char buf[65536];
    while (out.size() < limit) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      size_t want = std::min(sizeof buf, limit - out.size());
      ssize_t n = ::recv(fd_, buf, want, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return true;  // EOF, or reset
      out.append(buf, static_cast<size_t>(n));
    }
    return false;
  }

  // Waits until the server closes this connection (EOF or reset).
  bool closedByServer(std::chrono::milliseconds timeout = kWait) {
    std::string ignored;
    return read(ignored, timeout);
  }

 private:
  int fd_ = -1;
};

// What the workers of a server saw, including close reasons.
struct Seen {
  std::vector<int> established;
  std::vector<std::pair<int, tcp::CloseReason>> closed;
  std::vector<std::pair<int, std::string>> messages;
  std::vector<std::pair<int, int>> errors;  // (client id, code)
  std::vector<int> ready;
};

template <class Server>
void watch(Server &s, Monitor<Seen> &seen, bool echo = false) {
  s.setWorkOnEstablished(
      [&seen](const int id) { seen.update([&](Seen &e) { e.established.push_back(id); }); });
  s.setWorkOnClosedWithReason([&seen](const int id, const tcp::CloseReason r) {
    seen.update([&](Seen &e) { e.closed.emplace_back(id, r); });
  });
  s.setWorkOnMessage([&seen, &s, echo](const int id, const std::string msg) {
    if (echo) s.sendMsg(id, msg);
    seen.update([&](Seen &e) { e.messages.emplace_back(id, msg); });
  });
  s.setWorkOnError([&seen](const int id, const int code, const std::string &) {
    seen.update([&](Seen &e) { e.errors.emplace_back(id, code); });
  });
  s.setWorkOnReady([&seen](const int id) { seen.update([&](Seen &e) { e.ready.push_back(id); }); });
}

bool hasError(const Seen &e, int id, int code) {
  return std::find(e.errors.begin(), e.errors.end(), std::make_pair(id, code)) != e.errors.end();
}

// Byte i of a numbered stream, so that a reader can check order and loss.
char streamByte(size_t i) { return static_cast<char>('a' + (i / 997 + i) % 26); }
std::string streamChunk(size_t offset, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = streamByte(offset + i);
  return s;
}
bool isStream(const std::string &s) {
  for (size_t i = 0; i < s.size(); i++)
    if (s[i] != streamByte(i)) return false;
  return true;
}

// The one client of a server, once established.
int onlyClient(Monitor<Seen> &seen) {
  if (!seen.waitFor([](Seen &e) { return e.established.size() == 1; })) return -1;
  return seen.read([](Seen &e) { return e.established[0]; });
}

}  // namespace

// ---------------------------------------------------------------- admission

// A connection the connection-request worker refuses is closed at once and
// never reaches the established worker; the worker saw the peer's address
// and port and the server's port. Accepting again lets clients in.
TEST(ControlTest, RefusedByWorkerNeverEstablished) {
  Monitor<Seen> seen;
  Monitor<std::vector<std::tuple<std::string, int, int>>> requests;
  std::atomic<bool> allow{false};
  tcp::TcpServer server{'\n'};
  watch(server, seen, /*echo=*/true);
  server.setWorkOnConnectionRequest([&](const std::string &ip, const int port, const int localPort) {
    requests.update([&](auto &v) { v.emplace_back(ip, port, localPort); });
    return allow.load();
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);

  RawPeer refused(port);
  ASSERT_TRUE(refused.ok());
  EXPECT_TRUE(refused.closedByServer());
  ASSERT_TRUE(requests.waitFor([](auto &v) { return v.size() == 1; }));
  EXPECT_EQ(requests.snapshot()[0], std::make_tuple(std::string("127.0.0.1"), refused.localPort(), port));

  allow = true;
  Monitor<ClientEvents> cev;
  tcp::TcpClient client{'\n'};
  record(client, cev);
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(client.sendMsg(std::string("hi")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  // the refused peer never appeared: the only established client is this one
  EXPECT_EQ(seen.snapshot().established.size(), 1u);
  EXPECT_EQ(server.getAllClientIds().size(), 1u);
  const tcp::ServerStats st = server.getStats();
  EXPECT_EQ(st.refused, 1u);
  EXPECT_EQ(st.established, 1u);
  EXPECT_EQ(st.accepted, 2u);
}

// A connection-request worker that throws refuses (fail closed) and the
// exception reaches the handler.
TEST(ControlTest, ThrowingConnectionRequestRefuses) {
  Monitor<Seen> seen;
  Monitor<std::vector<std::string>> caught;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  server.setExceptionHandler([&](const int id, const std::string &worker, std::exception_ptr) {
    caught.update([&](auto &v) { v.push_back(worker + ":" + std::to_string(id)); });
  });
  server.setWorkOnConnectionRequest(
      [](const std::string &, const int, const int) -> bool { throw std::runtime_error("no"); });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer peer(port);
  ASSERT_TRUE(peer.ok());
  EXPECT_TRUE(peer.closedByServer());
  ASSERT_TRUE(caught.waitFor([](auto &v) { return v.size() == 1; }));
  EXPECT_EQ(caught.snapshot()[0], "connection request:0");
  EXPECT_EQ(server.getStats().refused, 1u);
  EXPECT_TRUE(seen.snapshot().established.empty());

  // removing the worker accepts again
  server.setWorkOnConnectionRequest(nullptr);
  RawPeer accepted(port);
  EXPECT_GT(onlyClient(seen), 0);
}

// Allowed and blocked lists: refused peers are reported with client id 0 and
// TCP_ERR_REFUSED, never established; the lists change while running; a bad
// entry is rejected and named.
TEST(ControlTest, AllowedAndBlockedLists) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  ASSERT_EQ(server.setAllowedClients({"10.0.0.0/8", "fd00::/8"}), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);

  {
    RawPeer notAllowed(port);
    EXPECT_TRUE(notAllowed.closedByServer());
  }
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return hasError(e, 0, TCP_ERR_REFUSED); }));

  ASSERT_EQ(server.setAllowedClients({"127.0.0.0/8"}), 0);
  RawPeer allowed(port);
  const int id = onlyClient(seen);
  EXPECT_GT(id, 0);

  ASSERT_EQ(server.setBlockedClients({"::1", "127.0.0.1"}), 0);
  {
    RawPeer blocked(port);
    EXPECT_TRUE(blocked.closedByServer());
  }
  ASSERT_TRUE(seen.waitFor([](Seen &e) {
    return std::count(e.errors.begin(), e.errors.end(), std::make_pair(0, int{TCP_ERR_REFUSED})) == 2;
  }));

  EXPECT_EQ(server.setBlockedClients({"127.0.0.1", "not-an-address"}), TCP_ERR_INVALID_ARG);
  EXPECT_EQ(tcp::lastErrorCode(), TCP_ERR_INVALID_ARG);
  EXPECT_NE(tcp::lastErrorMessage().find("not-an-address"), std::string::npos)
      << tcp::lastErrorMessage();
  // the failed call left the list unchanged: 127.0.0.1 is still blocked
  {
    RawPeer stillBlocked(port);
    EXPECT_TRUE(stillBlocked.closedByServer());
  }
  ASSERT_EQ(server.setBlockedClients({}), 0);
  ASSERT_EQ(server.setAllowedClients({}), 0);
  RawPeer again(port);
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.established.size() == 2; }));
  EXPECT_EQ(server.getStats().refused, 3u);
}

// Admission runs before the TLS handshake: a refused TLS client costs no
// handshake (none is counted as failed) and never becomes established.
TEST(ControlTest, TlsRefusedBeforeHandshake) {
  Monitor<Seen> seen;
  Monitor<int> requests;
  tcp::TlsServer server{'\n'};
  watch(server, seen);
  server.setWorkOnConnectionRequest([&](const std::string &, const int, const int) {
    requests.update([](int &n) { n++; });
    return false;
  });
  const int port =
      startLoopback(server, cert("rsa/ca.pem"), cert("rsa/server.pem"), cert("rsa/server.key"));
  ASSERT_GT(port, 0);
  tcp::TlsClient client{'\n'};
  const int rc = client.start("127.0.0.1", port, cert("rsa/ca.pem").c_str(),
                              cert("rsa/client.pem").c_str(), cert("rsa/client.key").c_str());
  EXPECT_TRUE(rc == tcp::CLIENT_ERROR_START_CONNECT_INIT || rc == tcp::CLIENT_ERROR_START_CONNECT)
      << rc;
  ASSERT_TRUE(requests.waitFor([](int n) { return n == 1; }));
  const tcp::ServerStats st = server.getStats();
  EXPECT_EQ(st.refused, 1u);
  EXPECT_EQ(st.handshakeFailed, 0u);
  EXPECT_EQ(st.established, 0u);
  EXPECT_TRUE(seen.snapshot().established.empty());
}

// With setMaxConnections(2) the third connection is refused at once
// (error with client id 0, TCP_ERR_REFUSED; counted as refusedLimit); once
// one leaves, a new one is accepted.
TEST(ControlTest, ConnectionAfterLimitRefused) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  ASSERT_EQ(server.setMaxConnections(2), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  EXPECT_EQ(server.setMaxConnections(3), TCP_ERR_ALREADY_RUNNING);

  auto first = std::make_unique<RawPeer>(port);
  RawPeer second(port);
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.established.size() == 2; }));
  {
    RawPeer third(port);
    ASSERT_TRUE(third.ok());
    EXPECT_TRUE(third.closedByServer());
  }
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return hasError(e, 0, TCP_ERR_REFUSED); }));
  EXPECT_EQ(seen.snapshot().established.size(), 2u);
  EXPECT_EQ(server.getStats().refusedLimit, 1u);
  EXPECT_EQ(server.getStats().active, 2u);

  first.reset();  // a place frees up
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(seen.snapshot().closed[0].second, tcp::CloseReason::Peer);
  // the library frees the place only after the closed worker returned
  ASSERT_TRUE(eventually([&] { return server.getStats().active == 1; }));
  RawPeer fourth(port);
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.established.size() == 3; }));
  EXPECT_EQ(server.getStats().refusedLimit, 1u);
}

// ----------------------------------------------------------------- timeouts

// A silent peer is closed after the idle timeout, and the reason says so.
TEST(ControlTest, IdlePeerClosedAfterTimeout) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  ASSERT_EQ(server.setIdleTimeout(300), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer idle(port);
  const int id = onlyClient(seen);
  ASSERT_GT(id, 0);
  const auto t0 = Clock::now();
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.closed.size() == 1; }));
  EXPECT_GE(Clock::now() - t0, 250ms);
  EXPECT_EQ(seen.snapshot().closed[0], std::make_pair(id, tcp::CloseReason::IdleTimeout));
  EXPECT_TRUE(idle.closedByServer());
  EXPECT_GE(server.getStats().timedOut, 1u);
}

// setClientIdleTimeout applies to one client only.
TEST(ControlTest, PerClientIdleTimeout) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer shortLived(port);
  const int shortId = onlyClient(seen);
  ASSERT_GT(shortId, 0);
  RawPeer longLived(port);
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.established.size() == 2; }));
  const int longId = seen.snapshot().established[1];
  ASSERT_TRUE(server.setClientIdleTimeout(shortId, 200));
  EXPECT_FALSE(server.setClientIdleTimeout(99999, 200));
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(seen.snapshot().closed[0], std::make_pair(shortId, tcp::CloseReason::IdleTimeout));
  EXPECT_EQ(server.getAllClientIds(), std::vector<int>{longId});
}

// A message that starts but does not finish in time closes the connection.
TEST(ControlTest, SlowDripClosedByMessageTimeout) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  ASSERT_EQ(server.setMessageTimeout(300), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer drip(port);
  const int id = onlyClient(seen);
  ASSERT_TRUE(drip.sendAll("complete\nunfinished"));
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(seen.snapshot().closed[0], std::make_pair(id, tcp::CloseReason::MessageTimeout));
  EXPECT_EQ(seen.snapshot().messages, (std::vector<std::pair<int, std::string>>{{id, "complete"}}));
}

// A peer that takes nothing of what is queued is closed by the write
// timeout.
TEST(ControlTest, NonReaderClosedByWriteTimeout) {
  Monitor<Seen> seen;
  tcp::TcpServer server;
  watch(server, seen);
  ASSERT_EQ(server.setWriteTimeout(300), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer stuck(port, 4096);
  const int id = onlyClient(seen);
  ASSERT_GT(id, 0);
  const std::string chunk = streamChunk(0, 1 << 20);
  // (on a slow machine the timeout may close it while this loop still runs)
  ASSERT_EQ(server.sendMsgEx(id, chunk), tcp::SendResult::Ok);
  for (int i = 0; i < 15 && server.sendMsgEx(id, chunk) == tcp::SendResult::Ok; i++) {
  }
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(seen.snapshot().closed[0], std::make_pair(id, tcp::CloseReason::WriteTimeout));
}

// ------------------------------------------------------------- flow control

// A peer that does not read makes sendMsgEx report QueueFull; once the peer
// reads, the ready worker runs once, sending works again, and every byte
// that was accepted arrives in order.
TEST(ControlTest, QueueFullThenReadyAfterDrain) {
  Monitor<Seen> seen;
  tcp::TcpServer server;
  watch(server, seen);
  ASSERT_EQ(server.setSendQueueLimit(64 * 1024), 0);
  ASSERT_EQ(server.setSendLowWater(16 * 1024), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer slow(port, 4096);
  const int id = onlyClient(seen);
  ASSERT_GT(id, 0);

  const size_t chunk = 16 * 1024;
  size_t accepted = 0;
  tcp::SendResult last = tcp::SendResult::Ok;
  const auto end = Clock::now() + kWait;
  while (Clock::now() < end && accepted < (256u << 20)) {
    last = server.sendMsgEx(id, streamChunk(accepted, chunk));
    if (last != tcp::SendResult::Ok) break;
    accepted += chunk;
  }
  ASSERT_EQ(last, tcp::SendResult::QueueFull) << "after " << accepted << " bytes";
  EXPECT_GT(server.queued(id), 0);
  // v2's sendMsg says false, and this thread's error record says why (the
  // writer may still have moved a little into the kernel meanwhile)
  for (int i = 0; i < 1000 && server.sendMsg(id, streamChunk(accepted, chunk)); i++) accepted += chunk;
  EXPECT_EQ(tcp::lastErrorCode(), TCP_ERR_QUEUE_FULL);
  EXPECT_TRUE(seen.snapshot().ready.empty());

  std::string got;
  EXPECT_FALSE(slow.read(got, kWait, accepted));  // false: not closed
  EXPECT_EQ(got.size(), accepted);
  EXPECT_TRUE(isStream(got));
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.ready.size() == 1; }));
  EXPECT_EQ(seen.snapshot().ready[0], id);
  EXPECT_EQ(server.sendMsgEx(id, streamChunk(accepted, chunk)), tcp::SendResult::Ok);
  got.clear();
  EXPECT_FALSE(slow.read(got, kWait, chunk));
  EXPECT_TRUE(got == streamChunk(accepted, chunk));
  EXPECT_EQ(seen.snapshot().ready.size(), 1u);
}

// The same on a client: a server that pauses reading from it fills the
// client's queue; after resume the client's ready worker runs.
TEST(ControlTest, ClientQueueFullThenReady) {
  Monitor<Seen> seen;
  Monitor<std::string> received;
  tcp::TcpServer server;
  watch(server, seen);
  server.setWorkOnMessage([&](const int, const std::string m) {
    received.update([&](std::string &s) { s += m; });
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Monitor<int> ready;
  std::ostringstream sink;
  tcp::TcpClient client{sink};
  ASSERT_EQ(client.setSendQueueLimit(64 * 1024), 0);
  ASSERT_EQ(client.setSendLowWater(16 * 1024), 0);
  client.setWorkOnReady([&] { ready.update([](int &n) { n++; }); });
  EXPECT_EQ(client.sendMsgEx(std::string_view("early")), tcp::SendResult::NotRunning);
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  const int id = onlyClient(seen);
  ASSERT_TRUE(server.pauseClient(id));

  const size_t chunk = 16 * 1024;
  size_t accepted = 0;
  tcp::SendResult last = tcp::SendResult::Ok;
  const auto end = Clock::now() + kWait;
  while (Clock::now() < end && accepted < (256u << 20)) {
    last = client.sendMsgEx(streamChunk(accepted, chunk));
    if (last != tcp::SendResult::Ok) break;
    accepted += chunk;
  }
  ASSERT_EQ(last, tcp::SendResult::QueueFull) << "after " << accepted << " bytes";
  EXPECT_GT(client.queued(), 0);
  EXPECT_EQ(ready.snapshot(), 0);
  ASSERT_TRUE(server.resumeClient(id));
  ASSERT_TRUE(ready.waitFor([](int n) { return n == 1; }));
  ASSERT_TRUE(received.waitFor([&](std::string &s) { return s.size() == accepted; }));
  EXPECT_TRUE(isStream(received.snapshot()));
}

// Pausing a client (here from its own message worker) stops delivery even
// of messages already received; resuming delivers every one, in order.
TEST(ControlTest, PauseStopsDeliveryResumeLosesNothing) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  server.setWorkOnMessage([&](const int id, const std::string m) {
    if (m == "0") server.pauseClient(id);
    seen.update([&](Seen &e) { e.messages.emplace_back(id, m); });
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  EXPECT_FALSE(server.pauseClient(12345));

  RawPeer client(port);
  const int id = onlyClient(seen);
  std::string batch;  // one write: the server receives them together
  for (int i = 0; i < 200; i++) batch += std::to_string(i) + "\n";
  ASSERT_TRUE(client.sendAll(batch));
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return !e.messages.empty(); }));
  // paused: nothing more arrives (a bounded wait for an event that must not come)
  EXPECT_FALSE(seen.waitFor([](Seen &e) { return e.messages.size() > 1; }, 300ms));
  ASSERT_TRUE(server.pauseClient(id));  // idempotent
  ASSERT_TRUE(server.resumeClient(id));
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.messages.size() == 200; }));
  auto msgs = seen.snapshot().messages;
  for (int i = 0; i < 200; i++) EXPECT_EQ(msgs[static_cast<size_t>(i)].second, std::to_string(i));
}

// A client can pause reading from the server too.
TEST(ControlTest, ClientPauseAndResume) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Monitor<ClientEvents> cev;
  tcp::TcpClient client{'\n'};
  record(client, cev);
  EXPECT_FALSE(client.pause());  // not connected
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  const int id = onlyClient(seen);
  ASSERT_TRUE(client.pause());
  for (int i = 0; i < 50; i++) ASSERT_TRUE(server.sendMsg(id, std::to_string(i)));
  ASSERT_TRUE(server.flush(id));
  EXPECT_FALSE(cev.waitFor([](auto &e) { return !e.messages.empty(); }, 300ms));
  ASSERT_TRUE(client.resume());
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 50; }));
  auto msgs = cev.snapshot().messages;
  for (int i = 0; i < 50; i++) EXPECT_EQ(msgs[static_cast<size_t>(i)], std::to_string(i));
}

// sendMsgEx says why a message was not queued, and the per-thread error
// record follows the v2 sendMsg too.
TEST(ControlTest, SendResultCodes) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n', 10};
  watch(server, seen);
  EXPECT_EQ(server.sendMsgEx(1, std::string_view("x")), tcp::SendResult::NotRunning);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer peer(port);
  const int id = onlyClient(seen);
  EXPECT_EQ(server.sendMsgEx(id + 1000, std::string_view("x")), tcp::SendResult::NoClient);
  EXPECT_EQ(server.sendMsgEx(id, std::string_view("a\nb")), tcp::SendResult::ContainsDelimiter);
  EXPECT_EQ(server.sendMsgEx(id, std::string_view("01234567890")), tcp::SendResult::MessageTooLong);
  EXPECT_EQ(server.sendMsgEx(id, nullptr, 3), tcp::SendResult::InvalidArg);
  EXPECT_EQ(server.queued(id + 1000), TCP_ERR_NO_CLIENT);

  EXPECT_FALSE(server.sendMsg(id + 1000, std::string("x")));
  EXPECT_EQ(tcp::lastErrorCode(), TCP_ERR_NO_CLIENT);
  EXPECT_FALSE(tcp::lastErrorMessage().empty());
  // another thread's calls do not touch this thread's record
  std::thread([&] { EXPECT_TRUE(server.sendMsg(id, std::string("ok"))); }).join();
  EXPECT_EQ(tcp::lastErrorCode(), TCP_ERR_NO_CLIENT);
  // a success clears it
  EXPECT_EQ(server.sendMsgEx(id, std::string_view("fine")), tcp::SendResult::Ok);
  EXPECT_EQ(tcp::lastErrorCode(), 0);
  EXPECT_EQ(tcp::lastErrorMessage(), "");
  std::string got;
  peer.read(got, kWait, 8);
  EXPECT_EQ(got, "ok\nfine\n");
  EXPECT_STREQ(tcp::toString(tcp::SendResult::QueueFull), tcp_strerror(TCP_ERR_QUEUE_FULL));
  EXPECT_STREQ(tcp::toString(tcp::CloseReason::IdleTimeout),
               tcp_close_reason_str(TCP_CLOSE_IDLE_TIMEOUT));
}

// ------------------------------------------------------------- lifecycle

// stopListening refuses new connections and keeps serving the old ones.
TEST(ControlTest, StopListeningKeepsClients) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen, /*echo=*/true);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Monitor<ClientEvents> cev;
  tcp::TcpClient client{'\n'};
  record(client, cev);
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  ASSERT_GT(onlyClient(seen), 0);
  ASSERT_TRUE(server.stopListening());
  EXPECT_FALSE(canConnect(port));
  EXPECT_TRUE(server.isRunning());
  ASSERT_TRUE(client.sendMsg(std::string("still here")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  server.stop();
  EXPECT_FALSE(server.stopListening());
}

// shutdown() delivers what is queued for a slow reader before closing
// (reason Stopped), and refuses new connections meanwhile.
TEST(ControlTest, GracefulShutdownDeliversQueued) {
  Monitor<Seen> seen;
  tcp::TcpServer server;
  watch(server, seen);
  // with no linger a plain stop() would drop the queue: only shutdown's
  // drain delivers it
  ASSERT_EQ(server.setLinger(0), 0);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer reader(port, 4096);
  const int id = onlyClient(seen);
  const size_t total = 8u << 20;
  for (size_t off = 0; off < total; off += 1u << 20)
    ASSERT_EQ(server.sendMsgEx(id, streamChunk(off, 1u << 20)), tcp::SendResult::Ok);
  ASSERT_GT(server.queued(id), 0);

  auto done = std::async(std::launch::async, [&] { return server.shutdown(20000); });
  // the listener closes first; only then does the peer start reading
  ASSERT_TRUE(eventually([&] { return !canConnect(port); }));
  std::string got;
  EXPECT_TRUE(reader.read(got, 20s));  // true: EOF after the data
  EXPECT_EQ(got.size(), total);
  EXPECT_TRUE(isStream(got));
  ASSERT_EQ(done.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(done.get());
  EXPECT_FALSE(server.isRunning());
  // (the probes of canConnect were connections too; they closed as peers)
  auto closed = seen.snapshot().closed;
  EXPECT_EQ(std::count(closed.begin(), closed.end(), std::make_pair(id, tcp::CloseReason::Stopped)), 1);
}

// shutdown() is bounded: with a peer that never reads it gives up after its
// deadline and says that data was dropped.
TEST(ControlTest, ShutdownDeadlineWithNonReader) {
  Monitor<Seen> seen;
  tcp::TcpServer server;
  watch(server, seen);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer stuck(port, 4096);
  const int id = onlyClient(seen);
  for (int i = 0; i < 8; i++) ASSERT_EQ(server.sendMsgEx(id, streamChunk(0, 1u << 20)), tcp::SendResult::Ok);
  const auto t0 = Clock::now();
  EXPECT_FALSE(server.shutdown(300));
  EXPECT_LT(Clock::now() - t0, 5s);
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(seen.snapshot().closed[0].second, tcp::CloseReason::Stopped);
  EXPECT_FALSE(server.shutdown(300));  // not running
}

// A client with setReconnect(true) survives a restart of its server: the
// reconnect worker reports the attempts, and messages flow again.
TEST(ControlTest, ReconnectingClientSurvivesServerRestart) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen, /*echo=*/true);
  int port = startLoopback(server);
  ASSERT_GT(port, 0);

  Monitor<ClientEvents> cev;
  Monitor<std::vector<std::pair<int, int>>> attempts;
  Monitor<std::vector<tcp::CloseReason>> closes;
  tcp::TcpClient client{'\n'};
  record(client, cev);
  client.setWorkOnClosedWithReason(
      [&](const tcp::CloseReason r) { closes.update([&](auto &v) { v.push_back(r); }); });
  client.setWorkOnReconnect([&](const int attempt, const int result) {
    attempts.update([&](auto &v) { v.emplace_back(attempt, result); });
  });
  ASSERT_EQ(client.setReconnect(true), 0);
  ASSERT_EQ(client.setReconnectDelay(20, 100), 0);
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(client.sendMsg(std::string("before")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));

  server.stop();
  ASSERT_TRUE(closes.waitFor([](auto &v) { return !v.empty(); }));
  EXPECT_EQ(closes.snapshot()[0], tcp::CloseReason::Peer);
  // at least one attempt fails while no server listens
  ASSERT_TRUE(attempts.waitFor([](auto &v) { return !v.empty(); }));
  EXPECT_EQ(attempts.snapshot()[0], std::make_pair(1, int{tcp::CLIENT_ERROR_START_CONNECT}));
  EXPECT_EQ(client.sendMsgEx(std::string_view("lost")), tcp::SendResult::NotRunning);

  // the same port again (v2's start(port))
  int rc = -1;
  ASSERT_TRUE(eventually([&] { return (rc = server.start(port)) == tcp::SERVER_START_OK; }))
      << "restart on " << port << ": " << rc;
  ASSERT_TRUE(attempts.waitFor([](auto &v) { return !v.empty() && v.back().second == 0; }));
  ASSERT_TRUE(eventually([&] { return client.isRunning(); }));
  ASSERT_TRUE(client.sendMsg(std::string("after")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 2; }));
  EXPECT_EQ(cev.snapshot().messages[1], "after");
  // attempts count up from 1 without gaps
  auto a = attempts.snapshot();
  for (size_t i = 0; i < a.size(); i++) EXPECT_EQ(a[i].first, static_cast<int>(i) + 1);
  client.stop();
  EXPECT_FALSE(client.isRunning());
  // one closed event per connection: the lost one, then the stopped one
  EXPECT_EQ(closes.snapshot(), (std::vector<tcp::CloseReason>{tcp::CloseReason::Peer,
                                                              tcp::CloseReason::Stopped}));
}

// Issue 8, item 1: a peer that sends its requests and then half-closes
// (shutdown(SHUT_WR)) gets every reply before the server closes.
TEST(ControlTest, HalfClosedPeerGetsEveryReply) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  server.setWorkOnMessage([&](const int id, const std::string m) { server.sendMsg(id, "echo " + m); });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  RawPeer peer(port);
  std::string requests;
  for (int i = 0; i < 500; i++) requests += "req-" + std::to_string(i) + "\n";
  ASSERT_TRUE(peer.sendAll(requests));
  peer.shutdownWrite();
  std::string got;
  EXPECT_TRUE(peer.read(got));  // true: the server closed after the replies
  std::string want;
  for (int i = 0; i < 500; i++) want += "echo req-" + std::to_string(i) + "\n";
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(seen.snapshot().closed[0].second, tcp::CloseReason::Peer);
}

// --------------------------------------------------- state and statistics

namespace {
struct Session {
  explicit Session(Monitor<int> &d) : destroyed(d) {}
  ~Session() { destroyed.update([](int &n) { n++; }); }
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;
  Monitor<int> &destroyed;
  int messages = 0;
};
}  // namespace

// The per-connection state lives from before the established worker until
// after the closed worker, and each client has its own.
TEST(ControlTest, ClientDataFromEstablishedToClosed) {
  Monitor<int> destroyed;
  Monitor<std::vector<int>> countsAtClose;
  tcp::TcpServer server{'\n'};
  server.setWorkOnEstablished([&](const int id) {
    EXPECT_NE(server.clientData(id), nullptr);
    EXPECT_FALSE(server.clientData(id)->has_value());
    server.emplaceClientData<std::shared_ptr<Session>>(id, std::make_shared<Session>(destroyed));
  });
  server.setWorkOnMessage([&](const int id, const std::string) {
    auto *s = server.clientData<std::shared_ptr<Session>>(id);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(server.clientData<int>(id), nullptr);  // wrong type
    (*s)->messages++;
    server.sendMsg(id, std::to_string((*s)->messages));
  });
  server.setWorkOnClosedWithReason([&](const int id, const tcp::CloseReason) {
    auto *s = server.clientData<std::shared_ptr<Session>>(id);
    const int n = s ? (*s)->messages : -1;
    countsAtClose.update([&](auto &v) { v.push_back(n); });
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  EXPECT_EQ(server.clientData(4242), nullptr);
  EXPECT_FALSE(server.setClientData(4242, 1));
  EXPECT_THROW(server.emplaceClientData<int>(4242, 1), std::out_of_range);

  Monitor<ClientEvents> ca, cb;
  tcp::TcpClient a{'\n'}, b{'\n'};
  record(a, ca);
  record(b, cb);
  ASSERT_EQ(a.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  ASSERT_EQ(b.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  for (int i = 0; i < 3; i++) ASSERT_TRUE(a.sendMsg(std::string("m")));
  ASSERT_TRUE(b.sendMsg(std::string("m")));
  ASSERT_TRUE(ca.waitFor([](auto &e) { return e.messages.size() == 3; }));
  ASSERT_TRUE(cb.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(ca.snapshot().messages, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(cb.snapshot().messages, (std::vector<std::string>{"1"}));
  EXPECT_EQ(destroyed.snapshot(), 0);
  a.stop();
  ASSERT_TRUE(destroyed.waitFor([](int n) { return n == 1; }));
  EXPECT_EQ(countsAtClose.snapshot(), (std::vector<int>{3}));
  server.stop();
  EXPECT_EQ(destroyed.snapshot(), 2);
  EXPECT_EQ(countsAtClose.snapshot(), (std::vector<int>{3, 1}));
}

// Counters per server and per connection, on both ends; the client's local
// address; a plain closed worker still runs when no reason worker is set.
TEST(ControlTest, StatisticsAndLocalAddress) {
  Monitor<Seen> seen;
  Monitor<std::vector<int>> plainClosed;
  tcp::TcpServer server{'\n'};
  watch(server, seen, /*echo=*/true);
  server.setWorkOnClosedWithReason(nullptr);  // back to the v2 worker
  server.setWorkOnClosed([&](const int id) { plainClosed.update([&](auto &v) { v.push_back(id); }); });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client{'\n'};
  Monitor<ClientEvents> cev;
  record(client, cev);
  EXPECT_FALSE(client.getStats().has_value());
  ASSERT_EQ(client.setLocalAddress("127.0.0.1"), 0);
  const auto before = std::chrono::system_clock::now() - 2s;
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  const int id = onlyClient(seen);
  EXPECT_EQ(server.getClientIp(id), "127.0.0.1");
  for (int i = 0; i < 3; i++) ASSERT_TRUE(client.sendMsg(std::string("abc")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 3; }));

  auto cs = server.getClientStats(id);
  ASSERT_TRUE(cs.has_value());
  EXPECT_EQ(cs->msgsIn, 3u);
  EXPECT_EQ(cs->msgsOut, 3u);
  EXPECT_GE(cs->bytesIn, 9u);
  EXPECT_GE(cs->connectedAt, before);
  EXPECT_LE(cs->connectedAt, std::chrono::system_clock::now() + 2s);
  EXPECT_FALSE(server.getClientStats(id + 1000).has_value());
  const tcp::ServerStats st = server.getStats();
  EXPECT_EQ(st.active, 1u);
  EXPECT_EQ(st.msgsIn, 3u);
  EXPECT_EQ(st.msgsOut, 3u);
  auto own = client.getStats();
  ASSERT_TRUE(own.has_value());
  EXPECT_EQ(own->msgsOut, 3u);
  EXPECT_EQ(own->msgsIn, 3u);

  client.stop();
  ASSERT_TRUE(plainClosed.waitFor([](auto &v) { return v.size() == 1; }));
  EXPECT_TRUE(seen.snapshot().closed.empty());
  // the counter may drop just after the closed worker returned
  EXPECT_TRUE(eventually([&] { return server.getStats().active == 0; }));
}

// The setters take effect only while stopped, and values out of range are
// refused with TCP_ERR_INVALID_ARG.
TEST(ControlTest, SettersValidate) {
  tcp::TcpServer server{'\n'};
  EXPECT_EQ(server.setKeepAlive(1000, 2000, 3), 0);
  EXPECT_EQ(server.setKeepAlive(false), 0);
  EXPECT_EQ(server.setBacklog(64), 0);
  EXPECT_EQ(server.setIpv6Only(false), 0);
  EXPECT_EQ(server.setMemoryBudget(32u << 20), 0);
  EXPECT_EQ(server.setCloseOnEof(false), 0);
  EXPECT_EQ(server.setCallbackThreads(8), 0);
  EXPECT_EQ(server.setCallbackThreads(0), TCP_ERR_INVALID_ARG);
  EXPECT_EQ(server.setIdleTimeout(-1), TCP_ERR_INVALID_ARG);
  EXPECT_EQ(tcp::lastErrorCode(), TCP_ERR_INVALID_ARG);
  EXPECT_EQ(server.setProxyProtocol(TCP_PROXY_TRUSTED, {"127.0.0.1", "10.0.0.0/8"}), 0);
  EXPECT_EQ(server.setProxyProtocol(TCP_PROXY_OFF, {}), 0);
  ASSERT_GT(startLoopback(server), 0);
  EXPECT_EQ(server.setIdleTimeout(100), TCP_ERR_ALREADY_RUNNING);
  EXPECT_EQ(server.setMemoryBudget(1u << 20), TCP_ERR_ALREADY_RUNNING);

  tcp::TcpClient client{'\n'};
  EXPECT_EQ(client.setKeepAlive(2000, 1000, 5), 0);
  EXPECT_EQ(client.setReconnectDelay(10, 1000), 0);
  EXPECT_EQ(client.setWriteTimeout(1000), 0);
  EXPECT_EQ(client.setMessageTimeout(1000), 0);
  EXPECT_EQ(client.setIdleTimeout(1000), 0);
  EXPECT_EQ(client.queued(), TCP_ERR_NOT_RUNNING);
}

// A client closes a silent connection after its idle timeout too.
TEST(ControlTest, ClientIdleTimeout) {
  Monitor<Seen> seen;
  tcp::TcpServer server{'\n'};
  watch(server, seen);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Monitor<std::vector<tcp::CloseReason>> closes;
  tcp::TcpClient client{'\n'};
  client.setWorkOnClosedWithReason(
      [&](const tcp::CloseReason r) { closes.update([&](auto &v) { v.push_back(r); }); });
  ASSERT_EQ(client.setIdleTimeout(200), 0);
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(closes.waitFor([](auto &v) { return v.size() == 1; }));
  EXPECT_EQ(closes.snapshot()[0], tcp::CloseReason::IdleTimeout);
  ASSERT_TRUE(seen.waitFor([](Seen &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(seen.snapshot().closed[0].second, tcp::CloseReason::Peer);
}
