// Workers that throw, workers that stop their own server or client.
#include <sstream>
#include <stdexcept>

#include "transport.h"

using namespace testutil;
using namespace std::chrono_literals;

namespace {
struct Caught {
  std::vector<std::tuple<int, std::string, std::string>> items;  // id, worker, what
};
tcp::ExceptionHandler recorder(Monitor<Caught> &m) {
  return [&m](const int id, const std::string &worker, std::exception_ptr e) {
    std::string what;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception &x) {
      what = x.what();
    } catch (int v) {
      what = "int " + std::to_string(v);
    } catch (...) {
      what = "?";
    }
    m.update([&](Caught &c) { c.items.emplace_back(id, worker, what); });
  };
}
}  // namespace

class RobustTest : public ::testing::TestWithParam<Transport> {};
INSTANTIATE_TEST_SUITE_P(All, RobustTest, ::testing::Values(kTcp, kTlsEc), transportName);

// Exceptions from every server worker are caught at the boundary, passed to
// the handler, and the server goes on serving.
TEST_P(RobustTest, ServerWorkerExceptions) {
  Monitor<Caught> caught;
  Monitor<std::vector<std::string>> echoed;
  auto s = makeServer(GetParam(), '\n');
  s->setExceptionHandler(recorder(caught));
  s->setWorkOnEstablished([](const int) { throw std::runtime_error("established failed"); });
  s->setWorkOnClosed([](const int) { throw 42; });
  s->setWorkOnMessage([&](const int id, const std::string m) {
    if (m == "throw") throw std::logic_error("message failed");
    s->sendMsg(id, m);
  });
  int port = startServer(GetParam(), *s);
  ASSERT_GT(port, 0);
  auto c = makeClient(GetParam(), '\n');
  c->setWorkOnMessage([&](const std::string m) { echoed.update([&](auto &v) { v.push_back(m); }); });
  ASSERT_EQ(startClient(GetParam(), *c, port), 0);
  ASSERT_TRUE(c->sendMsg(std::string("throw")));
  ASSERT_TRUE(c->sendMsg(std::string("after")));
  ASSERT_TRUE(echoed.waitFor([](auto &v) { return v.size() == 1; }));
  EXPECT_EQ(echoed.snapshot()[0], "after");
  c->stop();
  ASSERT_TRUE(caught.waitFor([](auto &k) { return k.items.size() == 3; }));
  auto items = caught.snapshot().items;
  const int id = std::get<0>(items[0]);
  EXPECT_GT(id, 0);
  EXPECT_EQ(items[0], std::make_tuple(id, std::string("established"), std::string("established failed")));
  EXPECT_EQ(items[1], std::make_tuple(id, std::string("message"), std::string("message failed")));
  EXPECT_EQ(items[2], std::make_tuple(id, std::string("closed"), std::string("int 42")));
  EXPECT_TRUE(s->isRunning());
  s->stop();
}

// Client workers too.
TEST_P(RobustTest, ClientWorkerExceptions) {
  Monitor<ServerEvents> ev;
  Monitor<Caught> caught;
  auto s = makeServer(GetParam(), '\n');
  record(*s, ev, true);
  int port = startServer(GetParam(), *s);
  ASSERT_GT(port, 0);
  auto c = makeClient(GetParam(), '\n');
  c->setExceptionHandler(recorder(caught));
  c->setWorkOnMessage([](const std::string m) { throw std::runtime_error("client " + m); });
  c->setWorkOnClosed([] { throw std::runtime_error("closed"); });
  ASSERT_EQ(startClient(GetParam(), *c, port), 0);
  ASSERT_TRUE(c->sendMsg(std::string("a")));
  ASSERT_TRUE(c->sendMsg(std::string("b")));
  ASSERT_TRUE(caught.waitFor([](auto &k) { return k.items.size() == 2; }));
  EXPECT_TRUE(c->isRunning());
  c->stop();
  ASSERT_TRUE(caught.waitFor([](auto &k) { return k.items.size() == 3; }));
  auto items = caught.snapshot().items;
  EXPECT_EQ(items[0], std::make_tuple(0, std::string("message"), std::string("client a")));
  EXPECT_EQ(items[1], std::make_tuple(0, std::string("message"), std::string("client b")));
  EXPECT_EQ(items[2], std::make_tuple(0, std::string("closed"), std::string("closed")));
  s->stop();
}

// Without a handler, the exception is printed to stderr and nothing else
// happens.
TEST(Robust, DefaultHandlerPrintsToStderr) {
  Monitor<int> seen;
  tcp::TcpServer s{'\n'};
  s.setWorkOnMessage([&](const int, const std::string m) {
    if (m == "throw") throw std::runtime_error("boom from worker");
    seen.update([](int &n) { n++; });
  });
  ASSERT_GT(startLoopback(s), 0);
  tcp::TcpClient c{'\n'};
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(c.sendMsg(std::string("throw")));
  ASSERT_TRUE(c.sendMsg(std::string("next")));  // same connection: runs after the report
  const bool ok = seen.waitFor([](int n) { return n == 1; });
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(ok);
  EXPECT_NE(err.find("boom from worker"), std::string::npos) << err;
  EXPECT_NE(err.find("message worker"), std::string::npos) << err;
}

// A handler that throws itself is reported to stderr; nothing unwinds.
TEST(Robust, ThrowingHandler) {
  Monitor<int> seen;
  tcp::TcpServer s{'\n'};
  s.setExceptionHandler([](const int, const std::string &, std::exception_ptr) {
    throw std::runtime_error("handler failed too");
  });
  s.setWorkOnMessage([&](const int, const std::string m) {
    if (m == "throw") throw std::runtime_error("first");
    seen.update([](int &n) { n++; });
  });
  ASSERT_GT(startLoopback(s), 0);
  tcp::TcpClient c{'\n'};
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(c.sendMsg(std::string("throw")));
  ASSERT_TRUE(c.sendMsg(std::string("next")));
  const bool ok = seen.waitFor([](int n) { return n == 1; });
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(ok);
  EXPECT_NE(err.find("handler failed too"), std::string::npos) << err;
}

// A forward-stream generator that throws: reported; the bytes then go to the
// message worker; the stream of other clients is unaffected.
TEST(Robust, ThrowingStreamGenerator) {
  Monitor<Caught> caught;
  Monitor<std::string> got;
  tcp::TcpServer s;
  s.setExceptionHandler(recorder(caught));
  s.setCreateForwardStream([](const int) -> std::ostream * { throw std::runtime_error("no stream"); });
  s.setWorkOnMessage([&](const int, const std::string m) { got.update([&](auto &t) { t += m; }); });
  ASSERT_GT(startLoopback(s), 0);
  std::ostringstream unused;
  tcp::TcpClient c{unused};
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(c.sendMsg(std::string("bytes")));
  ASSERT_TRUE(got.waitFor([](auto &t) { return t == "bytes"; }));
  ASSERT_EQ(caught.snapshot().items.size(), 1u);
  EXPECT_EQ(std::get<1>(caught.snapshot().items[0]), "forward stream");
}

// stop() called from a worker returns (no deadlock); every connection is
// closed and every closed worker runs.
TEST_P(RobustTest, StopFromMessageWorker) {
  Monitor<ServerEvents> ev;
  Monitor<int> stopReturned;
  auto s = makeServer(GetParam(), '\n');
  record(*s, ev);
  s->setWorkOnMessage([&](const int, const std::string m) {
    if (m == "stop") {
      s->stop();
      stopReturned.update([](int &n) { n++; });
    }
  });
  int port = startServer(GetParam(), *s);
  ASSERT_GT(port, 0);
  std::vector<ClientPtr> clients;
  for (int i = 0; i < 3; i++) {
    clients.push_back(makeClient(GetParam(), '\n'));
    ASSERT_EQ(startClient(GetParam(), *clients.back(), port), 0);
  }
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 3; }));
  ASSERT_TRUE(clients[1]->sendMsg(std::string("stop")));
  ASSERT_TRUE(stopReturned.waitFor([](int n) { return n == 1; }));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 3; }));
  EXPECT_FALSE(s->isRunning());
  EXPECT_TRUE(s->getAllClientIds().empty());
  EXPECT_FALSE(canConnect(port));
  for (auto &c : clients) EXPECT_TRUE(eventually([&] { return !c->isRunning(); }));
  // and it can be started again
  port = startServer(GetParam(), *s);
  ASSERT_GT(port, 0);
  s->stop();
}

TEST_P(RobustTest, StopFromEstablishedAndClosedWorkers) {
  Monitor<ServerEvents> ev;
  Monitor<ClientEvents> cev;
  auto s = makeServer(GetParam(), '\n');
  record(*s, ev);
  s->setWorkOnEstablished([&](const int id) {
    ev.update([&](auto &e) { e.established.push_back(id); });
    s->stop();
  });
  int port = startServer(GetParam(), *s);
  ASSERT_GT(port, 0);
  auto c = makeClient(GetParam(), '\n');
  record(*c, cev);
  EXPECT_EQ(startClient(GetParam(), *c, port), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  EXPECT_TRUE(eventually([&] { return !s->isRunning(); }));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.closed == 1; }));

  // closed worker stopping the server (when the first client leaves)
  s->setWorkOnEstablished([&](const int id) { ev.update([&](auto &e) { e.established.push_back(id); }); });
  s->setWorkOnClosed([&](const int id) {
    ev.update([&](auto &e) { e.closed.push_back(id); });
    s->stop();
  });
  port = startServer(GetParam(), *s);
  ASSERT_GT(port, 0);
  auto a = makeClient(GetParam(), '\n');
  auto b = makeClient(GetParam(), '\n');
  ASSERT_EQ(startClient(GetParam(), *a, port), 0);
  ASSERT_EQ(startClient(GetParam(), *b, port), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 3; }));
  a->stop();
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 3; }));
  EXPECT_TRUE(eventually([&] { return !s->isRunning(); }));
  EXPECT_TRUE(eventually([&] { return !b->isRunning(); }));
}

// A client may stop itself from its message worker.
TEST_P(RobustTest, ClientStopFromWorker) {
  Monitor<ServerEvents> ev;
  Monitor<ClientEvents> cev;
  auto s = makeServer(GetParam(), '\n');
  record(*s, ev, true);
  int port = startServer(GetParam(), *s);
  ASSERT_GT(port, 0);
  auto c = makeClient(GetParam(), '\n');
  record(*c, cev);
  c->setWorkOnMessage([&](const std::string) { c->stop(); });
  ASSERT_EQ(startClient(GetParam(), *c, port), 0);
  ASSERT_TRUE(c->sendMsg(std::string("bye")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.closed == 1; }));
  EXPECT_FALSE(c->isRunning());
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  // and can start again
  ASSERT_EQ(startClient(GetParam(), *c, port), 0);
  c->stop();
  s->stop();
}

// Server workers that call other methods of their server (send to others,
// list clients, look up addresses) do not deadlock.
TEST_P(RobustTest, WorkersCallServerMethods) {
  Monitor<ServerEvents> ev;
  Monitor<ClientEvents> bev;
  auto s = makeServer(GetParam(), '\n');
  record(*s, ev);
  s->setWorkOnMessage([&](const int id, const std::string m) {
    for (int other : s->getAllClientIds()) s->sendMsg(other, m + " from " + s->getClientIp(id));
  });
  s->setWorkOnClosed([&](const int id) {
    for (int other : s->getAllClientIds()) s->sendMsg(other, "left " + std::to_string(id));
    ev.update([&](auto &e) { e.closed.push_back(id); });
  });
  int port = startServer(GetParam(), *s);
  ASSERT_GT(port, 0);
  auto a = makeClient(GetParam(), '\n');
  auto b = makeClient(GetParam(), '\n');
  record(*b, bev);
  ASSERT_EQ(startClient(GetParam(), *a, port), 0);
  ASSERT_EQ(startClient(GetParam(), *b, port), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 2; }));
  ASSERT_TRUE(a->sendMsg(std::string("hi")));
  ASSERT_TRUE(bev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(bev.snapshot().messages[0], "hi from 127.0.0.1");
  a->stop();
  ASSERT_TRUE(bev.waitFor([](auto &e) { return e.messages.size() == 2; }));
  s->stop();
}
