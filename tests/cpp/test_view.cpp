// The zero-copy message workers (setWorkOnMessageView / setWorkOnMessageViewEx)
// of servers and clients, TCP and TLS: exact content, order, precedence over
// the string workers, replacement while running, parts of overlong lines;
// and sendv's stack and heap paths.
#include <string_view>

#include "helpers.h"

using namespace testutil;

namespace {

// What a view worker saw: copies of the views (they are valid only during
// the call) with the complete flag and who delivered them.
struct Seen {
  std::string msg;
  bool complete = true;
  std::string by;  // "view", "viewEx", "str", "ex"
  bool operator==(const Seen &o) const {
    return msg == o.msg && complete == o.complete && by == o.by;
  }
};
std::ostream &operator<<(std::ostream &os, const Seen &s) {
  return os << "{" << s.by << ", " << s.msg.size() << " bytes, " << s.complete << "}";
}

struct Events {
  std::vector<int> established;
  std::vector<Seen> seen;
  std::vector<std::string> workerExceptions;
};

// The messages a test sends: different lengths and contents, no '\n'.
std::vector<std::string> sample(size_t n) {
  std::vector<std::string> v;
  for (size_t i = 0; i < n; i++) {
    std::string m = "m" + std::to_string(i) + ":";
    m += pattern(i * 37 % 300);
    v.push_back(m);
  }
  return v;
}

template <class Server>
void recordServer(Server &s, Monitor<Events> &ev) {
  s.setWorkOnEstablished(
      [&ev](const int id) { ev.update([&](Events &e) { e.established.push_back(id); }); });
}

int waitEstablished(Monitor<Events> &ev, size_t n = 1) {
  if (!ev.waitFor([n](const Events &e) { return e.established.size() >= n; })) return -1;
  return ev.read([n](const Events &e) { return e.established[n - 1]; });
}

std::vector<std::string> messagesOf(const std::vector<Seen> &seen) {
  std::vector<std::string> v;
  for (const auto &s : seen) v.push_back(s.msg);
  return v;
}

// A server echo through the view worker and a client receiving through its
// view worker: every message arrives exactly, in order, through views only.
template <class Server, class Client, class StartServer, class StartClient>
void echoThroughViews(Server &server, Client &client, StartServer startServer,
                      StartClient startClient) {
  Monitor<Events> sev, cev;
  recordServer(server, sev);
  std::atomic<int> serverStringCalls{0}, clientStringCalls{0};
  server.setWorkOnMessage(
      [&serverStringCalls](const int, const std::string) { serverStringCalls++; });
  server.setWorkOnMessageView([&server, &sev](const int id, std::string_view msg) {
    EXPECT_TRUE(server.sendMsg(id, msg));  // the view goes straight back out
    sev.update([&](Events &e) { e.seen.push_back(Seen{std::string(msg), true, "view"}); });
  });
  const int port = startServer(server);
  ASSERT_GT(port, 0);

  client.setWorkOnMessage([&clientStringCalls](const std::string) { clientStringCalls++; });
  client.setWorkOnMessageView([&cev](std::string_view msg) {
    cev.update([&](Events &e) { e.seen.push_back(Seen{std::string(msg), true, "view"}); });
  });
  ASSERT_EQ(startClient(client, port), tcp::CLIENT_START_OK) << client.getLastError();
  ASSERT_GT(waitEstablished(sev), 0);

  const auto msgs = sample(300);
  for (const auto &m : msgs) ASSERT_TRUE(client.sendMsg(m));
  ASSERT_TRUE(cev.waitFor([&](const Events &e) { return e.seen.size() >= msgs.size(); }));
  EXPECT_EQ(messagesOf(sev.snapshot().seen), msgs);
  EXPECT_EQ(messagesOf(cev.snapshot().seen), msgs);
  EXPECT_EQ(serverStringCalls.load(), 0);
  EXPECT_EQ(clientStringCalls.load(), 0);
  client.stop();
  server.stop();
}

}  // namespace

TEST(MessageView, TcpServerAndClientEchoExactInOrder) {
  tcp::TcpServer server('\n');
  tcp::TcpClient client('\n');
  echoThroughViews(
      server, client, [](tcp::TcpServer &s) { return startLoopback(s); },
      [](tcp::TcpClient &c, int port) { return c.start("127.0.0.1", port); });
}

TEST(MessageView, TlsServerAndClientEchoExactInOrder) {
  tcp::TlsServer server('\n');
  tcp::TlsClient client('\n');
  echoThroughViews(
      server, client,
      [](tcp::TlsServer &s) {
        return startLoopback(s, cert("rsa/ca.pem"), cert("rsa/server.pem"),
                             cert("rsa/server.key"));
      },
      [](tcp::TlsClient &c, int port) {
        return c.start("127.0.0.1", port, cert("rsa/ca.pem").c_str(),
                       cert("rsa/client.pem").c_str(), cert("rsa/client.key").c_str());
      });
}

// Any byte, NUL included, and a large message arrive exactly (length-prefixed
// framing, both directions, through views).
TEST(MessageView, BinaryAndLargeMessagesExact) {
  const auto framing = tcp::Framing::LengthPrefixed(4, tcp::ByteOrder::BigEndian, 4 << 20);
  tcp::TcpServer server{framing};
  Monitor<Events> sev, cev;
  recordServer(server, sev);
  server.setWorkOnMessageView([&server](const int id, std::string_view msg) {
    server.sendMsg(id, msg.data(), msg.size());
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client{framing};
  client.setWorkOnMessageView([&cev](std::string_view msg) {
    cev.update([&](Events &e) { e.seen.push_back(Seen{std::string(msg), true, "view"}); });
  });
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  std::string binary;
  for (int i = 0; i < 512; i++) binary.push_back(static_cast<char>(i & 0xff));
  const std::vector<std::string> msgs = {binary, std::string(), std::string("\0", 1),
                                         pattern(3 << 20, '\0') + std::string("\0\n\r", 3)};
  for (const auto &m : msgs) ASSERT_TRUE(client.sendMsg(m));
  ASSERT_TRUE(cev.waitFor([&](const Events &e) { return e.seen.size() >= msgs.size(); }));
  EXPECT_TRUE(messagesOf(cev.snapshot().seen) == msgs);
}

// The view worker runs instead of the string workers (setWorkOnMessage and
// setWorkOnMessageEx) while set, whatever the order they were set in; removed
// (empty function), the string workers run again; the Ex view worker runs
// instead of everything.
TEST(MessageView, ServerViewWorkerReplacesStringWorkersAndBack) {
  tcp::TcpServer server('\n');
  Monitor<Events> ev;
  recordServer(server, ev);
  auto note = [&ev](std::string_view m, bool complete, const char *by) {
    ev.update([&](Events &e) { e.seen.push_back(Seen{std::string(m), complete, by}); });
  };
  server.setWorkOnMessageView([&](const int, std::string_view m) { note(m, true, "view"); });
  server.setWorkOnMessage([&](const int, const std::string m) { note(m, true, "str"); });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client('\n');
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  ASSERT_GT(waitEstablished(ev), 0);

  // each step: change the workers, send one message, wait for it (the
  // connection's cached workers must follow every change)
  auto step = [&](const std::string &m) {
    const size_t before = ev.read([](const Events &e) { return e.seen.size(); });
    ASSERT_TRUE(client.sendMsg(m));
    ASSERT_TRUE(ev.waitFor([&](const Events &e) { return e.seen.size() > before; }));
  };
  step("a");
  server.setWorkOnMessageEx(
      [&](const int, const std::string m, const bool c) { note(m, c, "ex"); });
  step("b");
  server.setWorkOnMessageView(nullptr);
  step("c");
  server.setWorkOnMessageEx(nullptr);
  step("d");
  server.setWorkOnMessageViewEx(
      [&](const int, std::string_view m, const bool c) { note(m, c, "viewEx"); });
  server.setWorkOnMessageView([&](const int, std::string_view m) { note(m, true, "view"); });
  step("e");
  server.setWorkOnMessageViewEx(nullptr);
  step("f");
  // a replacement of the view worker itself
  server.setWorkOnMessageView([&](const int, std::string_view m) { note(m, true, "view2"); });
  step("g");
  EXPECT_EQ(ev.snapshot().seen, (std::vector<Seen>{{"a", true, "view"},
                                                   {"b", true, "view"},
                                                   {"c", true, "ex"},
                                                   {"d", true, "str"},
                                                   {"e", true, "viewEx"},
                                                   {"f", true, "view"},
                                                   {"g", true, "view2"}}));
}

TEST(MessageView, ClientViewWorkerReplacesStringWorkersAndBack) {
  tcp::TcpServer server('\n');
  Monitor<Events> sev, ev;
  recordServer(server, sev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client('\n');
  auto note = [&ev](std::string_view m, bool complete, const char *by) {
    ev.update([&](Events &e) { e.seen.push_back(Seen{std::string(m), complete, by}); });
  };
  client.setWorkOnMessage([&](const std::string m) { note(m, true, "str"); });
  client.setWorkOnMessageView([&](std::string_view m) { note(m, true, "view"); });
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  const int id = waitEstablished(sev);
  ASSERT_GT(id, 0);
  auto step = [&](const std::string &m) {
    const size_t before = ev.read([](const Events &e) { return e.seen.size(); });
    ASSERT_TRUE(server.sendMsg(id, m));
    ASSERT_TRUE(ev.waitFor([&](const Events &e) { return e.seen.size() > before; }));
  };
  step("a");
  client.setWorkOnMessageEx([&](const std::string m, const bool c) { note(m, c, "ex"); });
  step("b");
  client.setWorkOnMessageView({});
  step("c");
  client.setWorkOnMessageEx({});
  step("d");
  client.setWorkOnMessageViewEx([&](std::string_view m, const bool c) { note(m, c, "viewEx"); });
  step("e");
  EXPECT_EQ(ev.snapshot().seen, (std::vector<Seen>{{"a", true, "view"},
                                                   {"b", true, "view"},
                                                   {"c", true, "ex"},
                                                   {"d", true, "str"},
                                                   {"e", true, "viewEx"}}));
}

// Parts of an overlong line (Overlong::Parts) reach the Ex view worker with
// the complete flag, and the plain view worker as messages of their own.
TEST(MessageView, ServerOverlongLineInParts) {
  tcp::TcpServer server{tcp::Framing::Lines(4, tcp::Overlong::Parts)};
  Monitor<Events> ev;
  recordServer(server, ev);
  server.setWorkOnMessageViewEx([&](const int, std::string_view m, const bool complete) {
    ev.update([&](Events &e) { e.seen.push_back(Seen{std::string(m), complete, "viewEx"}); });
  });
  server.setWorkOnMessageView([&](const int, std::string_view m) {
    ev.update([&](Events &e) { e.seen.push_back(Seen{std::string(m), true, "view"}); });
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client{tcp::Framing::Continuous()};
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  ASSERT_GT(waitEstablished(ev), 0);
  ASSERT_TRUE(client.sendMsg(std::string("abcdefghij\r\nok\n")));
  ASSERT_TRUE(ev.waitFor([](const Events &e) { return e.seen.size() >= 4; }));
  server.setWorkOnMessageViewEx(nullptr);
  ASSERT_TRUE(client.sendMsg(std::string("ABCDEFGHIJ\n")));
  ASSERT_TRUE(ev.waitFor([](const Events &e) { return e.seen.size() >= 7; }));
  EXPECT_EQ(ev.snapshot().seen, (std::vector<Seen>{{"abcd", false, "viewEx"},
                                                   {"efgh", false, "viewEx"},
                                                   {"ij", true, "viewEx"},
                                                   {"ok", true, "viewEx"},
                                                   {"ABCD", true, "view"},
                                                   {"EFGH", true, "view"},
                                                   {"IJ", true, "view"}}));
}

TEST(MessageView, ClientOverlongLineInParts) {
  tcp::TcpServer server{tcp::Framing::Continuous()};
  Monitor<Events> sev, ev;
  recordServer(server, sev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client{tcp::Framing::Lines(4, tcp::Overlong::Parts)};
  client.setWorkOnMessageViewEx([&](std::string_view m, const bool complete) {
    ev.update([&](Events &e) { e.seen.push_back(Seen{std::string(m), complete, "viewEx"}); });
  });
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  const int id = waitEstablished(sev);
  ASSERT_GT(id, 0);
  ASSERT_TRUE(server.sendMsg(id, std::string("abcdefghij\nok\n")));
  ASSERT_TRUE(ev.waitFor([](const Events &e) { return e.seen.size() >= 4; }));
  EXPECT_EQ(ev.snapshot().seen, (std::vector<Seen>{{"abcd", false, "viewEx"},
                                                   {"efgh", false, "viewEx"},
                                                   {"ij", true, "viewEx"},
                                                   {"ok", true, "viewEx"}}));
}

// Continuous mode without a forward stream: the bytes reach the view worker
// in order (however the reads cut them).
TEST(MessageView, ContinuousServerBytesWithoutStream) {
  tcp::TcpServer server;
  Monitor<std::string> got;
  server.setWorkOnMessageView([&](const int, std::string_view m) {
    got.update([&](std::string &s) { s.append(m.data(), m.size()); });
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client{tcp::Framing::Continuous()};
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  std::string all;
  for (int i = 0; i < 200; i++) {
    std::string chunk = std::to_string(i) + pattern(static_cast<size_t>(i * 13 % 997), '\0');
    all += chunk;
    ASSERT_TRUE(client.sendMsg(chunk));
  }
  ASSERT_TRUE(got.waitFor([&](const std::string &s) { return s.size() >= all.size(); }));
  EXPECT_TRUE(got.snapshot() == all);
}

// Several clients at once: each client's messages arrive in its own order
// (workers of different clients run in parallel, each with its own cached
// workers), while the worker is replaced during the traffic.
TEST(MessageView, ManyClientsOrderPerClientWhileReplacing) {
  tcp::TcpServer server('\n');
  Monitor<Events> ev;
  recordServer(server, ev);
  Monitor<std::map<int, std::vector<std::string>>> byClient;
  // Each worker tags what it records, so that the test sees which one ran.
  auto tagged = [&](char tag) {
    return [&, tag](const int id, std::string_view m) {
      byClient.update([&](auto &b) { b[id].push_back(tag + std::string(m)); });
    };
  };
  server.setWorkOnMessageView(tagged('A'));
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  constexpr int kClients = 8, kMsgs = 400;
  std::vector<std::unique_ptr<tcp::TcpClient>> clients;
  for (int i = 0; i < kClients; i++) {
    clients.push_back(std::make_unique<tcp::TcpClient>('\n'));
    ASSERT_EQ(clients.back()->start("127.0.0.1", port), tcp::CLIENT_START_OK);
  }
  ASSERT_GT(waitEstablished(ev, kClients), 0);
  std::vector<std::thread> senders;
  for (int i = 0; i < kClients; i++) {
    senders.emplace_back([&, i] {
      for (int k = 0; k < kMsgs; k++) clients[static_cast<size_t>(i)]->sendMsg(std::to_string(k));
    });
  }
  for (int r = 0; r < 50; r++) server.setWorkOnMessageView(tagged(r % 2 ? 'A' : 'B'));
  for (auto &t : senders) t.join();
  auto total = [&](size_t want) {
    return byClient.waitFor([&](const auto &b) {
      size_t n = 0;
      for (const auto &kv : b) n += kv.second.size();
      return n >= want;
    });
  };
  ASSERT_TRUE(total(static_cast<size_t>(kClients * kMsgs)));
  // A worker set after the traffic is the one every later message meets.
  server.setWorkOnMessageView(tagged('C'));
  for (auto &c : clients) c->sendMsg("last");
  ASSERT_TRUE(total(static_cast<size_t>(kClients * (kMsgs + 1))));
  auto b = byClient.snapshot();
  ASSERT_EQ(b.size(), static_cast<size_t>(kClients));
  for (const auto &kv : b) {
    ASSERT_EQ(kv.second.size(), static_cast<size_t>(kMsgs + 1));
    for (int k = 0; k < kMsgs; k++) {
      const std::string &got = kv.second[static_cast<size_t>(k)];
      ASSERT_TRUE(got[0] == 'A' || got[0] == 'B') << got;
      ASSERT_EQ(got.substr(1), std::to_string(k));
    }
    ASSERT_EQ(kv.second.back(), "Clast");
  }
}

// A view worker that throws goes to the exception handler as worker
// "message"; the connection and the next messages carry on.
TEST(MessageView, ThrowingViewWorkerIsReported) {
  tcp::TcpServer server('\n');
  Monitor<Events> ev;
  recordServer(server, ev);
  server.setExceptionHandler([&](const int, const std::string &worker, std::exception_ptr) {
    ev.update([&](Events &e) { e.workerExceptions.push_back(worker); });
  });
  server.setWorkOnMessageView([&](const int, std::string_view m) {
    if (m == "throw") throw std::runtime_error("boom");
    ev.update([&](Events &e) { e.seen.push_back(Seen{std::string(m), true, "view"}); });
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client('\n');
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  ASSERT_TRUE(client.sendMsg(std::string("throw")));
  ASSERT_TRUE(client.sendMsg(std::string("after")));
  ASSERT_TRUE(ev.waitFor([](const Events &e) { return !e.seen.empty(); }));
  auto e = ev.snapshot();
  EXPECT_EQ(e.workerExceptions, std::vector<std::string>{"message"});
  EXPECT_EQ(e.seen, (std::vector<Seen>{{"after", true, "view"}}));
}

// sendv with few parts (on the stack) and many (on the heap) sends one
// message made of all of them, on servers and clients.
TEST(MessageView, SendvFewAndManyParts) {
  const auto framing = tcp::Framing::LengthPrefixed(4, tcp::ByteOrder::BigEndian);
  tcp::TcpServer server{framing};
  Monitor<Events> sev, cev;
  recordServer(server, sev);
  server.setWorkOnMessageView([&](const int, std::string_view m) {
    sev.update([&](Events &e) { e.seen.push_back(Seen{std::string(m), true, "view"}); });
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  tcp::TcpClient client{framing};
  client.setWorkOnMessageView([&](std::string_view m) {
    cev.update([&](Events &e) { e.seen.push_back(Seen{std::string(m), true, "view"}); });
  });
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  const int id = waitEstablished(sev);
  ASSERT_GT(id, 0);
  std::vector<std::string> store;
  for (int i = 0; i < 40; i++) store.push_back("<" + std::to_string(i) + ">");
  std::vector<std::string> expected;
  for (size_t n : {size_t{0}, size_t{1}, size_t{16}, size_t{17}, size_t{40}}) {
    std::vector<std::string_view> parts(store.begin(), store.begin() + static_cast<long>(n));
    std::string joined;
    for (auto p : parts) joined += p;
    expected.push_back(joined);
    ASSERT_EQ(client.sendv(parts), tcp::SendResult::Ok);
    ASSERT_EQ(server.sendv(id, parts), tcp::SendResult::Ok);
  }
  ASSERT_EQ(client.sendv({"x", "y", "z"}), tcp::SendResult::Ok);
  ASSERT_EQ(server.sendv(id, {"x", "y", "z"}), tcp::SendResult::Ok);
  expected.push_back("xyz");
  ASSERT_TRUE(sev.waitFor([&](const Events &e) { return e.seen.size() >= expected.size(); }));
  ASSERT_TRUE(cev.waitFor([&](const Events &e) { return e.seen.size() >= expected.size(); }));
  EXPECT_EQ(messagesOf(sev.snapshot().seen), expected);
  EXPECT_EQ(messagesOf(cev.snapshot().seen), expected);
}
