// Behaviour every server and client shows, over plain TCP and over mutual
// TLS with v2-style certificates (RSA-2048 and P-256, X.509 v1, CN only):
// both message modes, ids, stop, restart, sizes, limits, many clients.
#include <algorithm>
#include <set>
#include <sstream>

#include "transport.h"

using namespace testutil;
using namespace std::chrono_literals;

class TransportTest : public ::testing::TestWithParam<Transport> {};

INSTANTIATE_TEST_SUITE_P(All, TransportTest, ::testing::Values(kTcp, kTlsRsa, kTlsEc),
                         transportName);

// Fragmented echo; the id is the same in the workers, in getAllClientIds()
// and for sendMsg; established comes first, closed last.
TEST_P(TransportTest, FragmentedEchoAndClientIds) {
  Monitor<ServerEvents> sev;
  Monitor<ClientEvents> cev;
  auto server = makeServer(GetParam(), '\n');
  record(*server, sev, /*echo=*/true);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  EXPECT_TRUE(server->isRunning());

  auto client = makeClient(GetParam(), '\n');
  record(*client, cev);
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  EXPECT_TRUE(client->isRunning());

  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 1; }));
  const int id = sev.snapshot().established[0];
  EXPECT_GT(id, 0);
  EXPECT_EQ(server->getAllClientIds(), std::vector<int>{id});

  ASSERT_TRUE(client->sendMsg(std::string("hello")));
  ASSERT_TRUE(client->sendMsg(std::string("world")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 2; }));
  EXPECT_EQ(cev.snapshot().messages, (std::vector<std::string>{"hello", "world"}));
  auto msgs = sev.snapshot().messages;
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0], std::make_pair(id, std::string("hello")));
  EXPECT_EQ(msgs[1], std::make_pair(id, std::string("world")));

  // server-initiated message to the id the workers saw
  ASSERT_TRUE(server->sendMsg(id, std::string("from server")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 3; }));
  EXPECT_EQ(cev.snapshot().messages[2], "from server");

  client->stop();
  EXPECT_FALSE(client->isRunning());
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(sev.snapshot().closed[0], id);
  EXPECT_TRUE(server->getAllClientIds().empty());
  EXPECT_TRUE(sev.snapshot().errors.empty());
  server->stop();
  EXPECT_FALSE(server->isRunning());
}

// Continuous mode: the forward stream is created (by the user's generator)
// before the established worker, receives the client's bytes, and is
// deleted after the closed worker.
TEST_P(TransportTest, ContinuousForwardStreamLifecycle) {
  Monitor<std::vector<std::string>> order;
  auto note = [&order](std::string what) {
    order.update([&](auto &v) { v.push_back(std::move(what)); });
  };
  auto shared = std::make_shared<CollectingStream::Shared>();
  // declared after what its workers use, so destroyed (stopped) before it
  auto server = makeServer(GetParam());
  // the stream notes its deletion in `order` too
  struct Tracked : CollectingStream {
    Tracked(std::shared_ptr<Shared> sh, std::function<void()> onDelete)
        : CollectingStream(std::move(sh)), onDelete_(std::move(onDelete)) {}
    ~Tracked() override { onDelete_(); }
    std::function<void()> onDelete_;
  };
  server->setCreateForwardStream([&](const int id) -> std::ostream * {
    note("create " + std::to_string(id));
    return new Tracked(shared, [note, id] { note("delete " + std::to_string(id)); });
  });
  server->setWorkOnEstablished([&](const int id) { note("established " + std::to_string(id)); });
  server->setWorkOnClosed([&](const int id) { note("closed " + std::to_string(id)); });
  server->setWorkOnMessage([&](const int, const std::string) { note("message worker"); });
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);

  std::ostringstream sink;
  auto client = makeClient(GetParam(), sink);
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  const std::string data = std::string("no delimiters here\nbut newlines\0 and NULs are fine", 50);
  ASSERT_TRUE(client->sendMsg(data));
  ASSERT_TRUE(client->sendMsg(std::string_view("|more")));
  const std::string want = data + "|more";
  ASSERT_TRUE(shared->text.waitFor([&](auto &t) { return t.size() >= want.size(); }));
  EXPECT_EQ(shared->text.snapshot(), want);
  EXPECT_EQ(shared->destroyed.snapshot(), 0);

  client->stop();
  ASSERT_TRUE(shared->destroyed.waitFor([](int n) { return n == 1; }));
  auto ids = order.snapshot();
  ASSERT_EQ(ids.size(), 4u) << ::testing::PrintToString(ids);
  const std::string id = ids[0].substr(7);
  EXPECT_EQ(ids, (std::vector<std::string>{"create " + id, "established " + id, "closed " + id,
                                           "delete " + id}));
  server->stop();
}

// Continuous mode, server to client: the bytes go to the client's ostream.
TEST_P(TransportTest, ContinuousClientStream) {
  Monitor<ServerEvents> sev;
  auto server = makeServer(GetParam());
  record(*server, sev);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  auto shared = std::make_shared<CollectingStream::Shared>();
  CollectingStream out(shared);
  auto client = makeClient(GetParam(), out);
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 1; }));
  const int id = sev.snapshot().established[0];
  const std::string big = pattern(3 * 1024 * 1024 + 17);
  ASSERT_TRUE(server->sendMsg(id, std::string("start|")));
  ASSERT_TRUE(server->sendMsg(id, big));
  ASSERT_TRUE(server->sendMsg(id, "|end"));
  const std::string want = "start|" + big + "|end";
  ASSERT_TRUE(shared->text.waitFor([&](auto &t) { return t.size() >= want.size(); }));
  EXPECT_TRUE(shared->text.snapshot() == want);
  client->stop();
  server->stop();
}

// Messages of any size: 20 MiB, more than the C ABI's default maximum, with
// v2's default maximum length in both directions.
TEST_P(TransportTest, FragmentedHugeMessages) {
  Monitor<ServerEvents> sev;
  Monitor<ClientEvents> cev;
  auto server = makeServer(GetParam(), '\n');
  record(*server, sev, /*echo=*/true);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  auto client = makeClient(GetParam(), '\n');
  record(*client, cev);
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  const std::string big = pattern(20 * 1024 * 1024 + 3);
  ASSERT_TRUE(client->sendMsg(big));
  ASSERT_TRUE(client->sendMsg(std::string("small")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 2; }, 60s));
  auto got = cev.snapshot().messages;
  EXPECT_EQ(got[0].size(), big.size());
  EXPECT_TRUE(got[0] == big);
  EXPECT_EQ(got[1], "small");
  EXPECT_TRUE(sev.snapshot().errors.empty());
  client->stop();
  server->stop();
}

// The delimiter '\0' works (v2 programs use it); '\n' is then ordinary data.
TEST_P(TransportTest, NulDelimiter) {
  Monitor<ServerEvents> sev;
  Monitor<ClientEvents> cev;
  auto server = makeServer(GetParam(), '\0');
  record(*server, sev, /*echo=*/true);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  auto client = makeClient(GetParam(), '\0');
  record(*client, cev);
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(client->sendMsg("line one\nline two"));
  ASSERT_TRUE(client->sendMsg(""));  // an empty message is a message too
  ASSERT_TRUE(client->sendMsg("x"));
  EXPECT_FALSE(client->sendMsg(std::string("with\0nul", 8)));  // holds the delimiter
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 3; }));
  EXPECT_EQ(cev.snapshot().messages, (std::vector<std::string>{"line one\nline two", "", "x"}));
  client->stop();
  server->stop();
}

// A message of exactly the maximum length is allowed both ways; one byte
// more is refused by sendMsg. A peer that sends a longer message anyway is
// disconnected with TCP_ERR_MESSAGE_TOO_LONG (v2 dropped the message and
// kept the connection: documented difference); other clients go on.
TEST_P(TransportTest, MaximumMessageLength) {
  Monitor<ServerEvents> sev;
  Monitor<ClientEvents> gev;
  Monitor<ClientEvents> bev;
  const size_t max = 1000;
  auto server = makeServer(GetParam(), '\n', max);
  record(*server, sev, /*echo=*/true);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);

  auto good = makeClient(GetParam(), '\n', max);
  record(*good, gev);
  ASSERT_EQ(startClient(GetParam(), *good, port), tcp::CLIENT_START_OK);
  const std::string exact = pattern(max);
  EXPECT_TRUE(good->sendMsg(exact));
  EXPECT_FALSE(good->sendMsg(pattern(max + 1)));
  ASSERT_TRUE(gev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_TRUE(gev.snapshot().messages[0] == exact);
  ASSERT_EQ(sev.snapshot().established.size(), 1u);
  const int goodId = sev.snapshot().established[0];
  EXPECT_FALSE(server->sendMsg(goodId, pattern(max + 1)));
  EXPECT_TRUE(server->sendMsg(goodId, exact));

  // a client with a larger maximum sends too much
  auto bad = makeClient(GetParam(), '\n', 10 * max);
  record(*bad, bev);
  ASSERT_EQ(startClient(GetParam(), *bad, port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 2; }));
  const int badId = sev.snapshot().established[1];
  ASSERT_TRUE(bad->sendMsg(pattern(max + 1)));
  ASSERT_TRUE(sev.waitFor([&](auto &e) {
    return std::count(e.closed.begin(), e.closed.end(), badId) == 1;
  }));
  auto e = sev.snapshot();
  EXPECT_NE(std::find(e.errors.begin(), e.errors.end(), std::make_pair(badId, int(TCP_ERR_MESSAGE_TOO_LONG))),
            e.errors.end());
  ASSERT_TRUE(bev.waitFor([](auto &c) { return c.closed == 1; }));
  EXPECT_FALSE(bad->isRunning());
  // the other client is not affected
  EXPECT_EQ(server->getAllClientIds(), std::vector<int>{goodId});
  EXPECT_TRUE(good->sendMsg("still here"));
  ASSERT_TRUE(gev.waitFor([](auto &c) { return c.messages.size() == 3; }));
  EXPECT_EQ(gev.snapshot().messages[2], "still here");
  good->stop();
  server->stop();
}

// sendMsg refuses what it cannot send.
TEST_P(TransportTest, SendRefusals) {
  Monitor<ServerEvents> sev;
  auto server = makeServer(GetParam(), '|');
  record(*server, sev);
  EXPECT_FALSE(server->sendMsg(1, std::string("not running")));
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  auto client = makeClient(GetParam(), '|');
  EXPECT_FALSE(client->sendMsg(std::string("not connected")));
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 1; }));
  const int id = sev.snapshot().established[0];
  EXPECT_FALSE(server->sendMsg(id, std::string("a|b")));
  EXPECT_FALSE(client->sendMsg(std::string("a|b")));
  EXPECT_FALSE(server->sendMsg(id + 1000, std::string("unknown id")));
  EXPECT_FALSE(server->sendMsg(id, static_cast<const char *>(nullptr)));
  EXPECT_TRUE(server->sendMsg(id, "ok"));
  server->stop();
  EXPECT_FALSE(server->sendMsg(id, std::string("stopped")));
  client->stop();
  EXPECT_FALSE(client->sendMsg(std::string("stopped")));
}

// When stop() returns: every client is disconnected, every closed worker
// ran, getAllClientIds() is empty, sendMsg fails, the port refuses
// connections. The clients notice within milliseconds.
TEST_P(TransportTest, StopDisconnectsEverything) {
  Monitor<ServerEvents> sev;
  auto server = makeServer(GetParam(), '\n');
  record(*server, sev);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  std::vector<std::unique_ptr<Monitor<ClientEvents>>> cevs;  // outlives the clients
  std::vector<ClientPtr> clients;
  for (int i = 0; i < 3; i++) {
    clients.push_back(makeClient(GetParam(), '\n'));
    cevs.push_back(std::make_unique<Monitor<ClientEvents>>());
    record(*clients.back(), *cevs.back());
    ASSERT_EQ(startClient(GetParam(), *clients.back(), port), tcp::CLIENT_START_OK);
  }
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 3; }));
  auto ids = server->getAllClientIds();
  ASSERT_EQ(ids.size(), 3u);

  server->stop();
  auto e = sev.snapshot();
  EXPECT_EQ(std::multiset<int>(e.closed.begin(), e.closed.end()),
            std::multiset<int>(ids.begin(), ids.end()));
  EXPECT_TRUE(server->getAllClientIds().empty());
  EXPECT_FALSE(server->isRunning());
  for (int id : ids) EXPECT_FALSE(server->sendMsg(id, std::string("gone")));
  EXPECT_FALSE(canConnect(port));

  const auto t0 = Clock::now();
  for (size_t i = 0; i < clients.size(); i++) {
    ASSERT_TRUE(cevs[i]->waitFor([](auto &c) { return c.closed == 1; }));
    EXPECT_FALSE(clients[i]->isRunning());
    EXPECT_FALSE(clients[i]->sendMsg(std::string("server gone")));
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_LT(ms, 1000) << "clients noticed the stop after " << ms << " ms";

  server->stop();  // idempotent
  for (auto &c : clients) c->stop();
  EXPECT_EQ(sev.snapshot().closed.size(), 3u);  // still exactly once each
}

// A server and a client that were never started can be stopped (twice).
TEST_P(TransportTest, StopNeverStarted) {
  auto server = makeServer(GetParam());
  server->stop();
  server->stop();
  EXPECT_FALSE(server->isRunning());
  EXPECT_TRUE(server->getAllClientIds().empty());
  std::ostringstream os;
  auto client = makeClient(GetParam(), os);
  client->stop();
  client->stop();
  EXPECT_FALSE(client->isRunning());
}

// The server drops a client that stopped within milliseconds.
TEST_P(TransportTest, ClientStopNoticedByServer) {
  Monitor<ServerEvents> sev;
  auto server = makeServer(GetParam(), '\n');
  record(*server, sev);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  auto client = makeClient(GetParam(), '\n');
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 1; }));
  const auto t0 = Clock::now();
  client->stop();
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_LT(ms, 1000);
  EXPECT_TRUE(server->getAllClientIds().empty());
  server->stop();
}

// start() on a running server or client returns -1 and changes nothing;
// both can be started again after stop(); ids are not reused.
TEST_P(TransportTest, StartTwiceAndRestart) {
  Monitor<ServerEvents> sev;
  Monitor<ClientEvents> cev;
  auto server = makeServer(GetParam(), '\n');
  record(*server, sev, true);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  EXPECT_EQ(startServerV2(GetParam(), *server, port), -1);
  EXPECT_EQ(startServerV2(GetParam(), *server, 0), -1);  // running is checked before the port
  EXPECT_TRUE(server->isRunning());
  EXPECT_EQ(server->getPort(), port);

  auto client = makeClient(GetParam(), '\n');
  record(*client, cev);
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  EXPECT_EQ(startClient(GetParam(), *client, port), -1);
  EXPECT_EQ(startClient(GetParam(), *client, 0), -1);
  EXPECT_TRUE(client->isRunning());
  ASSERT_TRUE(client->sendMsg(std::string("one")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));

  client->stop();
  server->stop();
  const int firstId = sev.snapshot().established.at(0);
  port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(client->sendMsg(std::string("two")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 2; }));
  EXPECT_EQ(cev.snapshot().messages[1], "two");
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 2; }));
  EXPECT_NE(sev.snapshot().established[1], firstId);
  EXPECT_EQ(cev.snapshot().closed, 1);
  client->stop();
  server->stop();
}

// v2's start(port): a second server on a port in use gets 42.
TEST_P(TransportTest, PortInUse) {
  auto first = makeServer(GetParam());
  ASSERT_EQ(first->setBindAddress("127.0.0.1"), 0);
  const int port = startOnSomePort([&](int p) { return startServerV2(GetParam(), *first, p); });
  ASSERT_GT(port, 0);
  EXPECT_EQ(first->getPort(), port);
  auto second = makeServer(GetParam());
  ASSERT_EQ(second->setBindAddress("127.0.0.1"), 0);
  EXPECT_EQ(startServerV2(GetParam(), *second, port), tcp::SERVER_ERROR_START_BIND_PORT);
  EXPECT_FALSE(second->isRunning());
  first->stop();
}

// getClientIp / getClientPort; unknown ids give "Failed Read!" and -1.
TEST_P(TransportTest, ClientAddress) {
  Monitor<ServerEvents> sev;
  auto server = makeServer(GetParam(), '\n');
  record(*server, sev);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  auto client = makeClient(GetParam(), '\n');
  ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == 1; }));
  const int id = sev.snapshot().established[0];
  EXPECT_EQ(server->getClientIp(id), "127.0.0.1");
  EXPECT_EQ(server->getClientPort(id), client->getLocalPort());
  EXPECT_GT(client->getLocalPort(), 0);
  EXPECT_EQ(server->getClientIp(id + 1000), "Failed Read!");
  EXPECT_EQ(server->getClientPort(id + 1000), -1);
  client->stop();
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(server->getClientIp(id), "Failed Read!");
  EXPECT_EQ(client->getLocalPort(), -1);
  server->stop();
}

// The listener accepts (and completes handshakes) as soon as start()
// returns, and a client's start() returns only when the server lists it
// within a few milliseconds.
TEST_P(TransportTest, ReadyWhenStartReturns) {
  Monitor<ServerEvents> sev;
  auto server = makeServer(GetParam(), '\n');
  record(*server, sev, true);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  for (int round = 0; round < 5; round++) {
    Monitor<ClientEvents> cev;
    auto client = makeClient(GetParam(), '\n');
    record(*client, cev);
    ASSERT_EQ(startClient(GetParam(), *client, port), tcp::CLIENT_START_OK);
    const auto t0 = Clock::now();
    ASSERT_TRUE(eventually([&] { return server->getAllClientIds().size() == 1; }, 2s));
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    EXPECT_LT(us, 500000) << "listed after " << us << " us";
    // a message sent at once is not lost
    ASSERT_TRUE(client->sendMsg(std::string("immediately")));
    ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
    client->stop();
    ASSERT_TRUE(sev.waitFor([&](auto &e) { return e.closed.size() == size_t(round + 1); }));
  }
  server->stop();
}

// 100 clients at once: all listed with distinct ids, all served.
TEST_P(TransportTest, HundredClients) {
  Monitor<ServerEvents> sev;
  Monitor<std::map<int, std::vector<std::string>>> got;
  constexpr int kClients = 100;
  auto server = makeServer(GetParam(), '\n');
  record(*server, sev, /*echo=*/true);
  int port = startServer(GetParam(), *server);
  ASSERT_GT(port, 0);
  std::vector<ClientPtr> clients;
  for (int i = 0; i < kClients; i++) {
    clients.push_back(makeClient(GetParam(), '\n'));
    clients.back()->setWorkOnMessage([&got, i](const std::string m) {
      got.update([&](auto &g) { g[i].push_back(m); });
    });
    ASSERT_EQ(startClient(GetParam(), *clients.back(), port), tcp::CLIENT_START_OK) << i;
  }
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.established.size() == kClients; }, 30s));
  auto ids = server->getAllClientIds();
  EXPECT_EQ(ids.size(), size_t(kClients));
  EXPECT_EQ(std::set<int>(ids.begin(), ids.end()).size(), size_t(kClients));
  auto est = sev.snapshot().established;
  EXPECT_EQ(std::set<int>(ids.begin(), ids.end()), std::set<int>(est.begin(), est.end()));

  for (int i = 0; i < kClients; i++) {
    ASSERT_TRUE(clients[i]->sendMsg("client " + std::to_string(i)));
    ASSERT_TRUE(clients[i]->sendMsg(std::string("second")));
  }
  ASSERT_TRUE(got.waitFor([](auto &g) {
    if (g.size() != kClients) return false;
    for (auto &kv : g)
      if (kv.second.size() != 2) return false;
    return true;
  }, 30s));
  for (auto &kv : got.snapshot()) {
    EXPECT_EQ(kv.second[0], "client " + std::to_string(kv.first));
    EXPECT_EQ(kv.second[1], "second");
  }
  // a message from the server to each id reaches exactly one client
  for (int id : ids) ASSERT_TRUE(server->sendMsg(id, "id " + std::to_string(id)));
  ASSERT_TRUE(got.waitFor([](auto &g) {
    for (auto &kv : g)
      if (kv.second.size() != 3) return false;
    return true;
  }, 30s));
  std::set<std::string> third;
  for (auto &kv : got.snapshot()) third.insert(kv.second[2]);
  EXPECT_EQ(third.size(), size_t(kClients));

  server->stop();
  EXPECT_EQ(sev.snapshot().closed.size(), size_t(kClients));
  for (auto &c : clients)
    EXPECT_TRUE(eventually([&] { return !c->isRunning(); }, 5s));
}
