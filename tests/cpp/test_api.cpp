// The v2 API surface: start codes, types, constructors, worker binding
// styles (std::bind with member functions, lambdas, free functions), ports,
// clients, moves.
#include <fstream>
#include <sstream>
#include <type_traits>

#include "transport.h"

using namespace testutil;
using namespace std::chrono_literals;

// ---- ServerDefines.h / ClientDefines.h -------------------------------------

static_assert(tcp::SERVER_START_OK == 0);
static_assert(tcp::SERVER_ERROR_START_WRONG_PORT == 10);
static_assert(tcp::SERVER_ERROR_START_SET_CONTEXT == 20);
static_assert(tcp::SERVER_ERROR_START_WRONG_CA_PATH == 30);
static_assert(tcp::SERVER_ERROR_START_WRONG_CERT_PATH == 31);
static_assert(tcp::SERVER_ERROR_START_WRONG_KEY_PATH == 32);
static_assert(tcp::SERVER_ERROR_START_WRONG_CA == 33);
static_assert(tcp::SERVER_ERROR_START_WRONG_CERT == 34);
static_assert(tcp::SERVER_ERROR_START_WRONG_KEY == 35);
static_assert(tcp::SERVER_ERROR_START_CREATE_SOCKET == 40);
static_assert(tcp::SERVER_ERROR_START_SET_SOCKET_OPT == 41);
static_assert(tcp::SERVER_ERROR_START_BIND_PORT == 42);
static_assert(tcp::SERVER_ERROR_START_SERVER == 43);
static_assert(tcp::CLIENT_START_OK == 0);
static_assert(tcp::CLIENT_ERROR_START_WRONG_PORT == 10);
static_assert(tcp::CLIENT_ERROR_START_SET_CONTEXT == 20);
static_assert(tcp::CLIENT_ERROR_START_WRONG_CA_PATH == 30);
static_assert(tcp::CLIENT_ERROR_START_WRONG_CERT_PATH == 31);
static_assert(tcp::CLIENT_ERROR_START_WRONG_KEY_PATH == 32);
static_assert(tcp::CLIENT_ERROR_START_WRONG_CA == 33);
static_assert(tcp::CLIENT_ERROR_START_WRONG_CERT == 34);
static_assert(tcp::CLIENT_ERROR_START_WRONG_KEY == 35);
static_assert(tcp::CLIENT_ERROR_START_CREATE_SOCKET == 40);
static_assert(tcp::CLIENT_ERROR_START_SET_SOCKET_OPT == 41);
static_assert(tcp::CLIENT_ERROR_START_CONNECT == 50);
static_assert(tcp::CLIENT_ERROR_START_CONNECT_INIT == 60);
// the same numbers as the C ABI
static_assert(int(tcp::SERVER_ERROR_START_SERVER) == int(TCP_START_LISTEN));
static_assert(int(tcp::CLIENT_ERROR_START_CONNECT_INIT) == int(TCP_START_CONNECT_INIT));
static_assert(TCP_ERR_ALREADY_RUNNING == -1);
// unscoped, usable as int (switch, comparison, arithmetic)
static_assert(std::is_convertible_v<decltype(tcp::SERVER_START_OK), int>);
static_assert(tcp::SERVER_ERROR_START_WRONG_PORT + 1 == 11);

// NIDs: OpenSSL's values.
static_assert(NID_commonName == 13 && NID_countryName == 14 && NID_localityName == 15 &&
              NID_stateOrProvinceName == 16 && NID_organizationName == 17 &&
              NID_organizationalUnitName == 18);
static_assert(NID_commonName == TCP_NID_COMMON_NAME);
// SSL is OpenSSL's struct ssl_st
static_assert(std::is_same_v<SSL, struct ssl_st>);

// ---- class shapes ------------------------------------------------------------

template <class T>
constexpr bool moveOnly = !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T> &&
                          std::is_nothrow_move_constructible_v<T> &&
                          std::is_nothrow_move_assignable_v<T>;
static_assert(moveOnly<tcp::TcpServer> && moveOnly<tcp::TlsServer>);
static_assert(moveOnly<tcp::TcpClient> && moveOnly<tcp::TlsClient>);
static_assert(std::has_virtual_destructor_v<tcp::TcpServer>);

// v2's signatures, exactly.
static_assert(std::is_same_v<decltype(std::declval<tcp::TcpServer &>().start(1)), int>);
static_assert(std::is_same_v<decltype(std::declval<tcp::TlsServer &>().start(
                                 1, "ca", "cert", "key")),
                             int>);
static_assert(std::is_same_v<decltype(std::declval<tcp::TcpServer &>().sendMsg(
                                 1, std::declval<const std::string &>())),
                             bool>);
static_assert(std::is_same_v<decltype(std::declval<const tcp::TcpServer &>().getAllClientIds()),
                             std::vector<int>>);
static_assert(std::is_same_v<decltype(std::declval<const tcp::TcpServer &>().getClientIp(1)),
                             std::string>);
static_assert(std::is_same_v<decltype(std::declval<const tcp::TlsServer &>()
                                          .getSubjPartFromClientCert(
                                              1, static_cast<const SSL *>(nullptr), 13)),
                             std::string>);
static_assert(std::is_same_v<decltype(std::declval<const tcp::TcpServer &>().isRunning()), bool>);
static_assert(std::is_same_v<decltype(std::declval<tcp::TcpClient &>().start(
                                 std::string("h"), 1)),
                             int>);
static_assert(std::is_same_v<decltype(std::declval<tcp::TlsClient &>().start(
                                 "h", 1, "ca", "cert", "key")),
                             int>);
static_assert(std::is_same_v<decltype(std::declval<tcp::TcpClient &>().sendMsg(
                                 std::declval<const std::string &>())),
                             bool>);
static_assert(std::is_same_v<decltype(&tcp::TcpServer::stop), void (tcp::detail::ServerBase::*)()>);
static_assert(std::is_same_v<decltype(&tcp::TcpServer::setWorkOnMessage),
                             void (tcp::detail::ServerBase::*)(
                                 std::function<void(const int, const std::string)>)>);
static_assert(std::is_same_v<decltype(&tcp::TcpServer::setCreateForwardStream),
                             void (tcp::detail::ServerBase::*)(
                                 std::function<std::ostream *(const int)>)>);
static_assert(std::is_same_v<decltype(&tcp::TcpClient::setWorkOnMessage),
                             void (tcp::detail::ClientBase::*)(
                                 std::function<void(const std::string)>)>);

// The constructors of v2's README.
TEST(Api, Constructors) {
  tcp::TcpServer s1;
  tcp::TcpServer s2{'|'};
  tcp::TcpServer s3{'|', 4096};
  tcp::TlsServer t1;
  tcp::TlsServer t2{'|'};
  tcp::TlsServer t3{'|', 4096};
  std::ofstream myStream("/dev/null");
  tcp::TcpClient c1;  // continuous, to std::cout
  tcp::TcpClient c2{myStream};
  tcp::TcpClient c3{'|'};
  tcp::TcpClient c4{'|', 4096};
  tcp::TlsClient d1;
  tcp::TlsClient d2{myStream};
  tcp::TlsClient d3{'|'};
  tcp::TlsClient d4{'|', 4096};
  for (auto *s : std::initializer_list<tcp::detail::ServerBase *>{&s1, &s2, &s3, &t1, &t2, &t3})
    EXPECT_FALSE(s->isRunning());
  for (auto *c : std::initializer_list<tcp::detail::ClientBase *>{&c1, &c2, &c3, &c4, &d1, &d2,
                                                                   &d3, &d4})
    EXPECT_FALSE(c->isRunning());
  EXPECT_EQ(tcp::libraryVersion(), TCPGO_VERSION);
}

// ---- worker binding styles (v2 README) -----------------------------------------

namespace {
Monitor<std::vector<std::string>> g_calls;
void freeEstablished(int clientId) {
  g_calls.update([&](auto &v) { v.push_back("free " + std::to_string(clientId)); });
}

// 2. member function of this instance, bound in the constructor
class ExampleClass {
 public:
  ExampleClass() {
    tcpServer.setWorkOnEstablished(
        ::std::bind(&ExampleClass::classMember, this, ::std::placeholders::_1));
    tcpServer.setWorkOnMessage(::std::bind(&ExampleClass::onMessage, this,
                                           ::std::placeholders::_1, ::std::placeholders::_2));
  }
  virtual ~ExampleClass() {}
  int start() { return startLoopback(tcpServer); }
  int port() const { return tcpServer.getPort(); }
  Monitor<std::vector<std::string>> seen;

 private:
  tcp::TcpServer tcpServer{'\n'};
  void classMember(const int clientId) {
    seen.update([&](auto &v) { v.push_back("member " + std::to_string(clientId)); });
  }
  void onMessage(const int clientId, const std::string msg) {
    tcpServer.sendMsg(clientId, "re: " + msg);
  }
};

// 3. member function of a foreign class (bound by value, as in v2's README)
class Foreign {
 public:
  void classMember(const int clientId) {
    g_calls.update([&](auto &v) { v.push_back("foreign " + std::to_string(clientId)); });
  }
};
}  // namespace

TEST(Api, WorkerBindingStyles) {
  Monitor<int> lambdaCalls;
  g_calls.update([](auto &v) { v.clear(); });
  ExampleClass example;
  ASSERT_GT(example.start(), 0);

  tcp::TcpServer free_{'\n'};
  free_.setWorkOnEstablished(&freeEstablished);
  ASSERT_GT(startLoopback(free_), 0);

  Foreign exampleClass;
  tcp::TcpServer foreign{'\n'};
  foreign.setWorkOnEstablished(
      ::std::bind(&Foreign::classMember, exampleClass, ::std::placeholders::_1));
  ASSERT_GT(startLoopback(foreign), 0);

  tcp::TcpServer lambda{'\n'};
  lambda.setWorkOnEstablished([&](const int) { lambdaCalls.update([](int &n) { n++; }); });
  ASSERT_GT(startLoopback(lambda), 0);

  // a client with a member-function message worker
  struct Receiver {
    Monitor<std::vector<std::string>> got;
    void onMessage(const std::string msg) {
      got.update([&](auto &v) { v.push_back(msg); });
    }
  } receiver;
  tcp::TcpClient c{'\n'};
  c.setWorkOnMessage(std::bind(&Receiver::onMessage, &receiver, std::placeholders::_1));
  ASSERT_EQ(c.start("127.0.0.1", example.port()), tcp::CLIENT_START_OK);
  ASSERT_TRUE(c.sendMsg(std::string("bound")));
  ASSERT_TRUE(receiver.got.waitFor([](auto &v) { return v.size() == 1; }));
  EXPECT_EQ(receiver.got.snapshot()[0], "re: bound");
  EXPECT_TRUE(example.seen.waitFor([](auto &v) { return v.size() == 1; }));

  tcp::TcpClient a{'\n'}, b{'\n'}, d{'\n'};
  ASSERT_EQ(a.start("127.0.0.1", free_.getPort()), 0);
  ASSERT_EQ(b.start("127.0.0.1", foreign.getPort()), 0);
  ASSERT_EQ(d.start("127.0.0.1", lambda.getPort()), 0);
  EXPECT_TRUE(g_calls.waitFor([](auto &v) { return v.size() == 2; }));
  EXPECT_TRUE(lambdaCalls.waitFor([](int n) { return n == 1; }));
}

// A stateful worker keeps its state: it is not copied per call.
TEST(Api, StatefulWorkerNotCopied) {
  Monitor<int> last;
  tcp::TcpServer s{'\n'};
  s.setWorkOnMessage([count = 0, &last](const int, const std::string) mutable {
    ++count;
    last.update([&](int &v) { v = count; });
  });
  ASSERT_GT(startLoopback(s), 0);
  tcp::TcpClient c{'\n'};
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  for (int i = 0; i < 5; i++) ASSERT_TRUE(c.sendMsg(std::string("m")));
  EXPECT_TRUE(last.waitFor([](int v) { return v == 5; }));
}

// Workers can be replaced (and removed) while the server runs.
TEST(Api, ReplaceWorkersWhileRunning) {
  Monitor<std::vector<std::string>> seen;
  Monitor<int> closed;
  tcp::TcpServer s{'\n'};
  s.setWorkOnMessage([&](const int, const std::string m) {
    seen.update([&](auto &v) { v.push_back("first " + m); });
  });
  ASSERT_GT(startLoopback(s), 0);
  tcp::TcpClient c{'\n'};
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(c.sendMsg(std::string("1")));
  ASSERT_TRUE(seen.waitFor([](auto &v) { return v.size() == 1; }));
  s.setWorkOnMessage([&](const int, const std::string m) {
    seen.update([&](auto &v) { v.push_back("second " + m); });
  });
  ASSERT_TRUE(c.sendMsg(std::string("2")));
  ASSERT_TRUE(seen.waitFor([](auto &v) { return v.size() == 2; }));
  EXPECT_EQ(seen.snapshot()[1], "second 2");
  // removed: a message that arrives now is dropped. The closed worker runs
  // after the connection's last message, so once it ran nothing more comes.
  s.setWorkOnClosed([&](const int) { closed.update([](int &n) { n++; }); });
  s.setWorkOnMessage(nullptr);
  ASSERT_TRUE(c.sendMsg(std::string("3")));
  tcp::TcpClient c2{'\n'};
  for (int id : s.getAllClientIds()) s.closeClient(id);
  ASSERT_TRUE(closed.waitFor([](int n) { return n == 1; }));
  EXPECT_EQ(seen.snapshot().size(), 2u);
  s.setWorkOnMessage([&](const int, const std::string m) {
    seen.update([&](auto &v) { v.push_back("third " + m); });
  });
  ASSERT_EQ(c2.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(c2.sendMsg(std::string("4")));
  ASSERT_TRUE(seen.waitFor([](auto &v) { return v.size() == 3; }));
  EXPECT_EQ(seen.snapshot()[2], "third 4");
}

// Swapping a worker from another thread while messages flow is safe.
TEST(Api, ReplaceWorkerConcurrently) {
  Monitor<int> count;
  tcp::TcpServer s{'\n'};
  auto worker = [&](const int, const std::string) { count.update([](int &n) { n++; }); };
  s.setWorkOnMessage(worker);
  ASSERT_GT(startLoopback(s), 0);
  tcp::TcpClient c{'\n'};
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  std::atomic<bool> done{false};
  std::thread swapper([&] {
    while (!done) s.setWorkOnMessage(worker);
  });
  for (int i = 0; i < 2000; i++) ASSERT_TRUE(c.sendMsg(std::string("x")));
  EXPECT_TRUE(count.waitFor([](int n) { return n == 2000; }));
  done = true;
  swapper.join();
}

// ---- ports and connections ---------------------------------------------------

// Port outside 1..65535 gives 10, before anything else.
TEST(Api, WrongPort) {
  tcp::TcpServer s;
  EXPECT_EQ(s.start(0), tcp::SERVER_ERROR_START_WRONG_PORT);
  EXPECT_EQ(s.start(-1), tcp::SERVER_ERROR_START_WRONG_PORT);
  EXPECT_EQ(s.start(65536), tcp::SERVER_ERROR_START_WRONG_PORT);
  EXPECT_FALSE(s.isRunning());
  tcp::TlsServer t;
  EXPECT_EQ(t.start(0, "/missing/ca", "/missing/cert", "/missing/key"),
            tcp::SERVER_ERROR_START_WRONG_PORT);
  EXPECT_EQ(t.start(70000), tcp::SERVER_ERROR_START_WRONG_PORT);
  tcp::TcpClient c;
  EXPECT_EQ(c.start("127.0.0.1", 0), tcp::CLIENT_ERROR_START_WRONG_PORT);
  EXPECT_EQ(c.start("127.0.0.1", 65536), tcp::CLIENT_ERROR_START_WRONG_PORT);
  EXPECT_EQ(c.start("127.0.0.1", -5), tcp::CLIENT_ERROR_START_WRONG_PORT);
  tcp::TlsClient d;
  EXPECT_EQ(d.start("127.0.0.1", 0, "/missing/ca", "/missing/cert", "/missing/key"),
            tcp::CLIENT_ERROR_START_WRONG_PORT);
}

// v2's start(port) listens on the given port (here with the tcpgo
// extension setBindAddress to stay on loopback).
TEST(Api, V2StartOnGivenPort) {
  tcp::TcpServer s{'\n'};
  ASSERT_EQ(s.setBindAddress("127.0.0.1"), 0);
  const int port = startOnSomePort([&](int p) { return s.start(p); });
  ASSERT_GT(port, 0);
  EXPECT_EQ(s.getPort(), port);
  EXPECT_EQ(s.setBindAddress("::1"), TCP_ERR_ALREADY_RUNNING);
  tcp::TcpClient c{'\n'};
  EXPECT_EQ(c.start("127.0.0.1", port), 0);
  EXPECT_EQ(c.start(std::string("127.0.0.1"), port), -1);
}

TEST(Api, ClientConnectFailures) {
  tcp::TcpClient c{'\n'};
  EXPECT_EQ(c.start("127.0.0.1", freePort()), tcp::CLIENT_ERROR_START_CONNECT);
  EXPECT_FALSE(c.isRunning());
  ASSERT_EQ(c.setConnectTimeout(3000), 0);
  EXPECT_EQ(c.start("name.that.does.not.exist.invalid", 80), tcp::CLIENT_ERROR_START_CONNECT);
  EXPECT_FALSE(c.isRunning());
  EXPECT_FALSE(c.getLastError().empty());
}

// IPv6 loopback, with the bind address extension.
TEST(Api, Ipv6Loopback) {
  Monitor<ServerEvents> ev;
  tcp::TcpServer s{'\n'};
  record(s, ev, true);
  ASSERT_EQ(s.setBindAddress("::1"), 0);
  int rc = s.startOnFreePort();
  if (rc != 0) GTEST_SKIP() << "no IPv6 loopback: " << s.getLastError();
  tcp::TcpClient c{'\n'};
  ASSERT_EQ(c.start("::1", s.getPort()), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 1; }));
  EXPECT_EQ(s.getClientIp(ev.snapshot().established[0]), "::1");
}

// The destructor stops a running server: closed workers run, the port
// closes, connected clients notice.
TEST(Api, DestructorStops) {
  Monitor<ServerEvents> ev;
  Monitor<ClientEvents> cev;
  tcp::TcpClient c{'\n'};
  record(c, cev);
  int port;
  {
    tcp::TcpServer s{'\n'};
    record(s, ev);
    port = startLoopback(s);
    ASSERT_GT(port, 0);
    ASSERT_EQ(c.start("127.0.0.1", port), 0);
    ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 1; }));
  }
  EXPECT_EQ(ev.snapshot().closed.size(), 1u);
  EXPECT_FALSE(canConnect(port));
  EXPECT_TRUE(cev.waitFor([](auto &e) { return e.closed == 1; }));
}

// Moving a running server or client keeps the connections and workers.
TEST(Api, MoveRunningObjects) {
  Monitor<ServerEvents> ev;
  tcp::TcpServer a{'\n'};
  a.setWorkOnMessage([&](const int id, const std::string m) {
    ev.update([&](auto &e) { e.messages.emplace_back(id, m); });
  });
  ASSERT_GT(startLoopback(a), 0);
  const int port = a.getPort();
  tcp::TcpServer b = std::move(a);
  EXPECT_FALSE(a.isRunning());  // moved-from: empty
  EXPECT_EQ(a.start(port), TCP_ERR_INVALID_ARG);
  EXPECT_TRUE(a.getAllClientIds().empty());
  EXPECT_TRUE(b.isRunning());
  tcp::TcpClient c1{'\n'};
  ASSERT_EQ(c1.start("127.0.0.1", port), 0);
  tcp::TcpClient c2 = std::move(c1);
  EXPECT_FALSE(c1.isRunning());
  EXPECT_FALSE(c1.sendMsg(std::string("x")));
  ASSERT_TRUE(c2.sendMsg(std::string("moved")));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(ev.snapshot().messages[0].second, "moved");
  tcp::TcpServer other;
  other = std::move(b);  // move assignment releases other's old server
  EXPECT_TRUE(other.isRunning());
  other.stop();
}

// A client constructed with a stream that is constructed after it (a member
// declared later) only stores the reference.
TEST(Api, ClientStreamConstructedLater) {
  Monitor<ServerEvents> ev;
  struct Holder {
    tcp::TcpClient client{out};  // `out` is not constructed yet
    CollectingStream out;
    explicit Holder(std::shared_ptr<CollectingStream::Shared> sh) : out(std::move(sh)) {}
    ~Holder() { client.stop(); }  // `out` is destroyed before `client`
  };
  auto shared = std::make_shared<CollectingStream::Shared>();
  Holder h(shared);
  tcp::TcpServer s;
  record(s, ev);
  ASSERT_GT(startLoopback(s), 0);
  ASSERT_EQ(h.client.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 1; }));
  ASSERT_TRUE(s.sendMsg(ev.snapshot().established[0], "to the late stream"));
  EXPECT_TRUE(shared->text.waitFor([](auto &t) { return t == "to the late stream"; }));
  h.client.stop();
}

// Continuous server without a stream generator, or a generator returning
// nullptr: the bytes go to the message worker (tcpgo extension).
TEST(Api, ContinuousWithoutStreamUsesMessageWorker) {
  Monitor<std::string> got;
  tcp::TcpServer s;
  s.setCreateForwardStream([](const int) -> std::ostream * { return nullptr; });
  s.setWorkOnMessage([&](const int, const std::string m) {
    got.update([&](std::string &t) { t += m; });
  });
  ASSERT_GT(startLoopback(s), 0);
  std::ostringstream unused;
  tcp::TcpClient c{unused};
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(c.sendMsg(std::string("raw bytes")));
  EXPECT_TRUE(got.waitFor([](auto &t) { return t == "raw bytes"; }));
}

// Each client gets its own forward stream (v2 README: files per client).
TEST(Api, ForwardStreamPerClientToFiles) {
  Monitor<ServerEvents> ev;
  char dirTmpl[] = "/tmp/tcpgo-cpp-fwd-XXXXXX";
  ASSERT_NE(mkdtemp(dirTmpl), nullptr);
  const std::string dir = dirTmpl;
  tcp::TcpServer s;
  record(s, ev);
  s.setCreateForwardStream([&](const int clientId) -> std::ostream * {
    return new std::ofstream{dir + "/FileForClient_" + std::to_string(clientId)};
  });
  ASSERT_GT(startLoopback(s), 0);
  std::ostringstream unused;
  tcp::TcpClient a{unused}, b{unused};
  ASSERT_EQ(a.start("127.0.0.1", s.getPort()), 0);
  ASSERT_EQ(b.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 2; }));
  ASSERT_TRUE(a.sendMsg(std::string("from a")));
  ASSERT_TRUE(b.sendMsg(std::string("from b")));
  // v2 style: send, then stop at once; stop() lets the queued data out first
  a.stop();
  b.stop();
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 2; }));
  s.stop();  // streams are deleted (files closed) after the closed workers
  std::set<std::string> contents;
  for (int id : ev.snapshot().established) {
    std::ifstream in(dir + "/FileForClient_" + std::to_string(id));
    std::stringstream ss;
    ss << in.rdbuf();
    contents.insert(ss.str());
  }
  EXPECT_EQ(contents, (std::set<std::string>{"from a", "from b"}));
  EXPECT_EQ(std::system(("rm -rf '" + dir + "'").c_str()), 0);
}

// tcpgo extensions on the server: broadcast, closeClient, string_view and
// byte-buffer sends.
TEST(Api, ServerExtensions) {
  Monitor<ServerEvents> ev;
  Monitor<ClientEvents> aev, bev;
  tcp::TcpServer s{'\n'};
  record(s, ev);
  ASSERT_GT(startLoopback(s), 0);
  tcp::TcpClient a{'\n'}, b{'\n'};
  record(a, aev);
  record(b, bev);
  ASSERT_EQ(a.start("127.0.0.1", s.getPort()), 0);
  ASSERT_EQ(b.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 2; }));
  EXPECT_EQ(s.broadcast("to all"), 2);
  ASSERT_TRUE(aev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  ASSERT_TRUE(bev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  const int ida = ev.snapshot().established[0];
  const char bytes[] = {'a', 'b', 'c'};
  EXPECT_TRUE(s.sendMsg(ida, bytes, sizeof bytes));
  EXPECT_TRUE(s.sendMsg(ida, std::string_view("view")));
  EXPECT_TRUE(a.sendMsg(bytes, sizeof bytes));
  EXPECT_TRUE(a.sendMsg(std::string_view("view")));
  EXPECT_TRUE(s.closeClient(ida));
  EXPECT_FALSE(s.closeClient(ida + 1000));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(s.getAllClientIds().size(), 1u);
  EXPECT_NE(s.nativeHandle(), nullptr);
  EXPECT_EQ(s.setOption(12345, 1), TCP_ERR_UNKNOWN_OPTION);
}

// 43: the socket could not listen -- here because the bind address (a tcpgo
// extension) is not an address.
TEST(Api, BadBindAddress) {
  tcp::TcpServer s;
  ASSERT_EQ(s.setBindAddress("not an address"), 0);
  EXPECT_EQ(s.startOnFreePort(), tcp::SERVER_ERROR_START_SERVER);
  EXPECT_EQ(s.start(freePort()), tcp::SERVER_ERROR_START_SERVER);
  EXPECT_FALSE(s.isRunning());
  EXPECT_FALSE(s.getLastError().empty());
}

// v2's sendMsg wrote to the socket before it returned, so v2 programs end
// with `sendMsg(last); stop();` and the peer gets `last`. tcpgo queues
// sends; stop() gives the queue up to the linger time (1 s) to be written.
TEST(Api, SendThenStopDelivers) {
  Monitor<ServerEvents> ev;
  Monitor<ClientEvents> cev;
  tcp::TcpServer s{'\n'};
  record(s, ev);
  ASSERT_GT(startLoopback(s), 0);
  constexpr int kRounds = 20;
  for (int i = 0; i < kRounds; i++) {
    tcp::TcpClient c{'\n'};
    ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
    ASSERT_TRUE(c.sendMsg("last words " + std::to_string(i)));
    c.stop();
  }
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == kRounds; }));
  EXPECT_EQ(ev.snapshot().messages.size(), size_t(kRounds)) << "client side";

  // the server side: send, then stop
  tcp::TcpClient c{'\n'};
  record(c, cev);
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == kRounds + 1; }));
  ASSERT_TRUE(s.sendMsg(ev.snapshot().established.back(), std::string("goodbye")));
  s.stop();
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.closed == 1; }));
  EXPECT_EQ(cev.snapshot().messages, std::vector<std::string>{"goodbye"}) << "server side";
}

// flush() waits until what was queued is written; setLinger(0) makes stop()
// discard the queue at once.
TEST(Api, FlushAndLinger) {
  Monitor<ServerEvents> ev;
  Monitor<ClientEvents> cev;
  tcp::TcpServer s{'\n'};
  record(s, ev);
  ASSERT_GT(startLoopback(s), 0);
  tcp::TcpClient c{'\n'};
  record(c, cev);
  ASSERT_EQ(c.start("127.0.0.1", s.getPort()), 0);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.established.size() == 1; }));
  const int id = ev.snapshot().established[0];
  const std::string big = pattern(4 * 1024 * 1024);
  ASSERT_TRUE(s.sendMsg(id, big));
  EXPECT_TRUE(s.flush(id, 10000));
  EXPECT_TRUE(s.flush(0, 10000));
  EXPECT_FALSE(s.flush(id + 1000, 100));
  ASSERT_TRUE(c.sendMsg(big));
  EXPECT_TRUE(c.flush(10000));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(c.setLinger(0), TCP_ERR_ALREADY_RUNNING);  // options only while stopped
  c.stop();
  EXPECT_FALSE(c.flush(100));
  EXPECT_EQ(c.setLinger(0), 0);
  EXPECT_EQ(s.setLinger(0), TCP_ERR_ALREADY_RUNNING);
  s.stop();
  EXPECT_EQ(s.setLinger(250), 0);
}
