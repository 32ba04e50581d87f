// tcpgo's additions on the wire (issue 11) through the C++ classes:
// tcp::Framing (length prefixes of every size and byte order, the
// tutorials' preset, multi-byte end of line, CR/LF/CRLF lines with
// overlong parts, fixed records changed per connection) and sending
// (sendFile with progress, sendv, sendLine), server and client. A raw
// socket peer checks the exact bytes, fed byte by byte where framing
// across read boundaries matters.
#include <fcntl.h>
#include <sys/time.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "transport.h"

using namespace testutil;
using namespace std::chrono_literals;

namespace {

// A plain blocking socket peer with bounded reads (10 s receive timeout).
class Raw {
 public:
  explicit Raw(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Raw() {
    if (fd_ >= 0) ::close(fd_);
  }
  Raw(const Raw &) = delete;
  Raw &operator=(const Raw &) = delete;

  bool ok() const { return fd_ >= 0; }

  bool send(std::string_view b) {
    while (!b.empty()) {
      ssize_t n = ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      b.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // One send per byte, with TCP_NODELAY on the server side this gives the
  // decoder arbitrary read boundaries.
  bool sendBytewise(std::string_view b) {
    for (char c : b)
      if (!send(std::string_view(&c, 1))) return false;
    return true;
  }
  // Exactly n bytes, or fewer on timeout / EOF.
  std::string recvExactly(size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
      ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (r <= 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }
  // True when the peer closed (EOF or reset) within the timeout.
  bool closedByPeer() {
    char c;
    ssize_t r = ::recv(fd_, &c, 1, 0);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

 private:
  int fd_ = -1;
};

struct Part {
  int id;
  std::string data;
  bool complete;
  bool operator==(const Part &o) const {
    return id == o.id && data == o.data && complete == o.complete;
  }
};
std::ostream &operator<<(std::ostream &os, const Part &p) {
  return os << "{" << p.id << ", \"" << p.data << "\", " << (p.complete ? "complete" : "part")
            << "}";
}

struct WireEvents {
  std::vector<int> established;
  std::vector<Part> parts;
  std::vector<std::pair<int, tcp::CloseReason>> closed;
  std::vector<int> errors;
  std::vector<std::string> exceptions;
};

// Records every worker of a server, messages with their complete flag.
template <class Server>
void recordWire(Server &s, Monitor<WireEvents> &ev) {
  s.setWorkOnEstablished([&ev](const int id) { ev.update([&](auto &e) { e.established.push_back(id); }); });
  s.setWorkOnMessageEx([&ev](const int id, const std::string msg, const bool complete) {
    ev.update([&](auto &e) { e.parts.push_back(Part{id, msg, complete}); });
  });
  s.setWorkOnClosedWithReason([&ev](const int id, const tcp::CloseReason r) {
    ev.update([&](auto &e) { e.closed.emplace_back(id, r); });
  });
  s.setWorkOnError([&ev](const int, const int code, const std::string &) {
    ev.update([&](auto &e) { e.errors.push_back(code); });
  });
  s.setExceptionHandler([&ev](const int, const std::string &worker, std::exception_ptr) {
    ev.update([&](auto &e) { e.exceptions.push_back(worker); });
  });
}

std::vector<std::string> datas(const std::vector<Part> &parts) {
  std::vector<std::string> out;
  for (const auto &p : parts) out.push_back(p.data);
  return out;
}

// The length prefix of n in `bytes` bytes of the given order.
std::string prefix(uint64_t n, int bytes, tcp::ByteOrder order) {
  std::string p(static_cast<size_t>(bytes), '\0');
  for (int i = 0; i < bytes; i++) {
    char b = static_cast<char>((n >> (8 * i)) & 0xFF);
    size_t at = order == tcp::ByteOrder::LittleEndian ? static_cast<size_t>(i)
                                                      : static_cast<size_t>(bytes - 1 - i);
    p[at] = b;
  }
  return p;
}

int waitEstablished(Monitor<WireEvents> &ev, size_t n = 1) {
  if (!ev.waitFor([n](auto &e) { return e.established.size() >= n; })) return -1;
  return ev.snapshot().established[n - 1];
}

// A temporary file with content, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string &content) {
    char tmpl[] = "/tmp/tcpgo-cpp-wire-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd >= 0) {
      path_ = tmpl;
      size_t off = 0;
      while (off < content.size()) {
        ssize_t n = ::write(fd, content.data() + off, content.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(fd);
    }
  }
  ~TempFile() {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

// ---- framings ----

struct PrefixCase {
  int bytes;
  tcp::ByteOrder order;
};
class LengthPrefixTest : public ::testing::TestWithParam<PrefixCase> {};
INSTANTIATE_TEST_SUITE_P(
    All, LengthPrefixTest,
    ::testing::Values(PrefixCase{1, tcp::ByteOrder::BigEndian}, PrefixCase{2, tcp::ByteOrder::BigEndian},
                      PrefixCase{2, tcp::ByteOrder::LittleEndian}, PrefixCase{4, tcp::ByteOrder::BigEndian},
                      PrefixCase{4, tcp::ByteOrder::LittleEndian}, PrefixCase{8, tcp::ByteOrder::BigEndian},
                      PrefixCase{8, tcp::ByteOrder::LittleEndian}),
    [](const auto &i) {
      return std::to_string(i.param.bytes) +
             (i.param.order == tcp::ByteOrder::BigEndian ? "BigEndian" : "LittleEndian");
    });

// Messages framed by the peer byte by byte arrive whole; what the server
// sends carries the prefix in the chosen size and order.
TEST_P(LengthPrefixTest, BothDirectionsOnTheWire) {
  const auto c = GetParam();
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::LengthPrefixed(c.bytes, c.order, 200)};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  ASSERT_TRUE(raw.ok());
  const int id = waitEstablished(ev);
  ASSERT_GT(id, 0);

  const std::string big(200, 'q');
  ASSERT_TRUE(raw.sendBytewise(prefix(5, c.bytes, c.order) + "hello" + prefix(0, c.bytes, c.order) +
                               prefix(200, c.bytes, c.order) + big));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 3; }));
  EXPECT_EQ(ev.snapshot().parts,
            (std::vector<Part>{{id, "hello", true}, {id, "", true}, {id, big, true}}));

  ASSERT_TRUE(server.sendMsg(id, std::string("abc")));
  const std::string want = prefix(3, c.bytes, c.order) + "abc";
  EXPECT_EQ(raw.recvExactly(want.size()), want);
  EXPECT_EQ(server.sendMsgEx(id, std::string(201, 'x')), tcp::SendResult::MessageTooLong);
}

// Framing::Tutorial() is the 4-byte little-endian prefix of the TLS
// tutorials.
TEST(Framing, TutorialPresetIsFourBytesLittleEndian) {
  const auto f = tcp::Framing::Tutorial();
  EXPECT_EQ(f.kind(), tcp::Framing::Kind::LengthPrefixed);
  EXPECT_EQ(f.prefixBytes(), 4);
  EXPECT_EQ(f.byteOrder(), tcp::ByteOrder::LittleEndian);

  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::Tutorial()};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  const int id = waitEstablished(ev);
  ASSERT_GT(id, 0);
  ASSERT_TRUE(raw.send(std::string("\x05\x00\x00\x00hello", 9)));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 1; }));
  EXPECT_EQ(ev.snapshot().parts[0].data, "hello");
  ASSERT_TRUE(server.sendMsg(id, std::string("abc")));
  EXPECT_EQ(raw.recvExactly(7), std::string("\x03\x00\x00\x00" "abc", 7));
}

// A prefix announcing more than the maximum closes the connection as soon
// as the prefix is read: the body is never sent here.
TEST(Framing, LengthOverMaximumClosesOnThePrefix) {
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::LengthPrefixed(4, tcp::ByteOrder::BigEndian, 16)};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  ASSERT_GT(waitEstablished(ev), 0);
  ASSERT_TRUE(raw.send(prefix(1u << 30, 4, tcp::ByteOrder::BigEndian)));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(ev.snapshot().closed[0].second, tcp::CloseReason::MessageTooLong);
  EXPECT_EQ(ev.snapshot().errors, std::vector<int>{TCP_ERR_MESSAGE_TOO_LONG});
  EXPECT_TRUE(ev.snapshot().parts.empty());
  EXPECT_TRUE(raw.closedByPeer());
}

// A multi-byte end of line holding NUL bytes, split across reads.
TEST(Framing, MultiByteEolWithNulBytes) {
  const std::string eol("\0\0", 2);
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::Eol(eol)};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  const int id = waitEstablished(ev);
  ASSERT_GT(id, 0);
  // "ab" EOL, "c\0d" EOL (a lone NUL is data), "" EOL
  ASSERT_TRUE(raw.sendBytewise(std::string("ab\0\0c\0d\0\0\0\0", 11)));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 3; }));
  EXPECT_EQ(datas(ev.snapshot().parts),
            (std::vector<std::string>{"ab", std::string("c\0d", 3), ""}));

  ASSERT_TRUE(server.sendMsg(id, std::string("xy")));
  EXPECT_EQ(raw.recvExactly(4), std::string("xy\0\0", 4));
  EXPECT_EQ(server.sendMsgEx(id, std::string("a\0\0b", 4)), tcp::SendResult::ContainsDelimiter);
}

// Lines end at CR, LF or CRLF -- also a CRLF split between reads -- and
// sending appends CRLF.
TEST(Framing, LinesAcceptCrLfAndCrlf) {
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::Lines()};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  const int id = waitEstablished(ev);
  ASSERT_GT(id, 0);
  ASSERT_TRUE(raw.send("one\rtwo\nthree\r"));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 3; }));
  ASSERT_TRUE(raw.send("\nfour\r\n"));  // the LF ends "three", not an empty line
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() >= 4; }));
  EXPECT_EQ(datas(ev.snapshot().parts),
            (std::vector<std::string>{"one", "two", "three", "four"}));

  ASSERT_TRUE(server.sendMsg(id, std::string("hi")));
  EXPECT_EQ(raw.recvExactly(4), "hi\r\n");
  EXPECT_EQ(server.sendMsgEx(id, std::string("a\nb")), tcp::SendResult::ContainsDelimiter);
}

// An overlong line with Overlong::Parts arrives in parts of maxLen flagged
// incomplete, its last part complete; the v2 message worker is not used
// while the Ex worker is set.
TEST(Framing, OverlongLineInPartsWithCompleteFlag) {
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::Lines(4, tcp::Overlong::Parts)};
  recordWire(server, ev);
  int v2Calls = 0;
  server.setWorkOnMessage([&v2Calls](const int, const std::string) { v2Calls++; });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  const int id = waitEstablished(ev);
  ASSERT_GT(id, 0);
  ASSERT_TRUE(raw.sendBytewise("abcdefghij\nok\n"));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 4; }));
  EXPECT_EQ(ev.snapshot().parts, (std::vector<Part>{{id, "abcd", false},
                                                    {id, "efgh", false},
                                                    {id, "ij", true},
                                                    {id, "ok", true}}));
  EXPECT_EQ(v2Calls, 0);
  EXPECT_TRUE(ev.snapshot().closed.empty());
}

// The same parts reach a client's Ex worker, which runs instead of the v2
// message worker.
TEST(Framing, ClientOverlongLineInPartsWithCompleteFlag) {
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::Continuous()};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Monitor<WireEvents> cev;
  tcp::TcpClient client{tcp::Framing::Lines(4, tcp::Overlong::Parts)};
  int v2Calls = 0;
  client.setWorkOnMessage([&v2Calls](const std::string) { v2Calls++; });
  client.setWorkOnMessageEx([&cev](const std::string msg, const bool complete) {
    cev.update([&](auto &e) { e.parts.push_back(Part{0, msg, complete}); });
  });
  ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
  const int id = waitEstablished(ev);
  ASSERT_GT(id, 0);
  ASSERT_TRUE(server.sendMsg(id, std::string("abcdefghij\nok\n")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.parts.size() == 4; }));
  EXPECT_EQ(cev.snapshot().parts, (std::vector<Part>{{0, "abcd", false},
                                                     {0, "efgh", false},
                                                     {0, "ij", true},
                                                     {0, "ok", true}}));
  EXPECT_EQ(v2Calls, 0);
}

// Overlong::Close (the default) closes instead.
TEST(Framing, OverlongEolLineCloses) {
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::Eol("\r\n", 4)};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  ASSERT_GT(waitEstablished(ev), 0);
  ASSERT_TRUE(raw.send("ok\r\nabcdefgh\r\n"));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.closed.size() == 1; }));
  EXPECT_EQ(datas(ev.snapshot().parts), std::vector<std::string>{"ok"});
  EXPECT_EQ(ev.snapshot().closed[0].second, tcp::CloseReason::MessageTooLong);
}

// Records of a fixed length, changed for one connection from its message
// worker (applies to the very next record) while another connection keeps
// its length.
TEST(Framing, RecordLengthChangesPerConnection) {
  std::atomic<int> changeFor{0};
  std::atomic<int> changeRc{1};
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::Records(3, 64)};
  recordWire(server, ev);
  server.setWorkOnMessageEx([&](const int id, const std::string msg, const bool complete) {
    if (id == changeFor.load() && msg == "HDR") changeRc = server.setRecordLength(id, 5);
    ev.update([&](auto &e) { e.parts.push_back(Part{id, msg, complete}); });
  });
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw a(port);
  const int idA = waitEstablished(ev, 1);
  Raw b(port);
  const int idB = waitEstablished(ev, 2);
  ASSERT_GT(idA, 0);
  ASSERT_GT(idB, 0);
  changeFor = idA;

  ASSERT_TRUE(a.send("HDR12345abcde"));  // sent at once: the change applies within one read
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 3; }));
  EXPECT_EQ(changeRc.load(), 0);
  ASSERT_TRUE(b.sendBytewise("HDRxyz"));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 5; }));

  std::vector<std::string> forA, forB;
  for (const auto &p : ev.snapshot().parts) (p.id == idA ? forA : forB).push_back(p.data);
  EXPECT_EQ(forA, (std::vector<std::string>{"HDR", "12345", "abcde"}));
  EXPECT_EQ(forB, (std::vector<std::string>{"HDR", "xyz"}));

  // from another thread; over the maximum and unknown clients are refused
  EXPECT_EQ(server.setRecordLength(idB, 2), 0);
  ASSERT_TRUE(b.send("mnop"));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 7; }));
  EXPECT_EQ(ev.snapshot().parts[5].data, "mn");
  EXPECT_EQ(ev.snapshot().parts[6].data, "op");
  EXPECT_EQ(server.setRecordLength(idB, 65), TCP_ERR_INVALID_ARG);
  EXPECT_EQ(server.setRecordLength(999999, 2), TCP_ERR_NO_CLIENT);

  // records are not framed when sent
  ASSERT_TRUE(server.sendMsg(idA, std::string("raw")));
  EXPECT_EQ(a.recvExactly(3), "raw");
}

// Clients take every framing too; a records client changes its length.
TEST(Framing, ClientsWithFramings) {
  {
    Monitor<WireEvents> ev;
    tcp::TcpServer server{tcp::Framing::LengthPrefixed(2, tcp::ByteOrder::LittleEndian)};
    recordWire(server, ev);
    const int port = startLoopback(server);
    ASSERT_GT(port, 0);
    Monitor<ClientEvents> cev;
    tcp::TcpClient client{tcp::Framing::LengthPrefixed(2, tcp::ByteOrder::LittleEndian)};
    record(client, cev);
    ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
    const int id = waitEstablished(ev);
    ASSERT_TRUE(client.sendMsg(std::string("ping")));
    ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 1; }));
    EXPECT_EQ(ev.snapshot().parts[0].data, "ping");
    ASSERT_TRUE(server.sendMsg(id, std::string("pong")));
    ASSERT_TRUE(server.sendMsg(id, std::string("")));
    ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 2; }));
    EXPECT_EQ(cev.snapshot().messages, (std::vector<std::string>{"pong", ""}));
    // a 2-byte prefix counts up to 65535 by default
    EXPECT_EQ(client.sendMsgEx(std::string(65536, 'x')), tcp::SendResult::MessageTooLong);
  }
  {
    Monitor<WireEvents> ev;
    tcp::TcpServer server{tcp::Framing::Continuous()};
    recordWire(server, ev);
    const int port = startLoopback(server);
    ASSERT_GT(port, 0);
    Monitor<ClientEvents> cev;
    tcp::TcpClient client{tcp::Framing::Records(2)};
    std::atomic<int> rc{1};
    client.setWorkOnMessage([&](const std::string msg) {
      if (msg == "AB") rc = client.setRecordLength(4);
      cev.update([&](auto &e) { e.messages.push_back(msg); });
    });
    ASSERT_EQ(client.start("127.0.0.1", port), tcp::CLIENT_START_OK);
    const int id = waitEstablished(ev);
    ASSERT_TRUE(server.sendMsg(id, std::string("AB1234")));
    ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 2; }));
    EXPECT_EQ(cev.snapshot().messages, (std::vector<std::string>{"AB", "1234"}));
    EXPECT_EQ(rc.load(), 0);
  }
}

// Bad framing arguments throw from the constructor.
TEST(Framing, BadArgumentsThrow) {
  EXPECT_THROW(tcp::TcpServer{tcp::Framing::LengthPrefixed(3)}, std::invalid_argument);
  EXPECT_THROW(tcp::TcpClient{tcp::Framing::Eol("")}, std::invalid_argument);
  EXPECT_THROW(tcp::TlsServer{tcp::Framing::Records(10, 5)}, std::invalid_argument);
  EXPECT_THROW(tcp::TlsClient{tcp::Framing::LengthPrefixed(1, tcp::ByteOrder::BigEndian, 256)},
               std::invalid_argument);
  EXPECT_NO_THROW(tcp::TcpServer{tcp::Framing::LengthPrefixed(1)});
}

// The same framing over TLS, client and server.
TEST(Framing, TutorialFramingOverMutualTls) {
  Monitor<WireEvents> ev;
  tcp::TlsServer server{tcp::Framing::Tutorial()};
  recordWire(server, ev);
  const int port = startLoopback(server, cert("ec/ca.pem"), cert("ec/server.pem"),
                                 cert("ec/server.key"));
  ASSERT_GT(port, 0);
  Monitor<ClientEvents> cev;
  tcp::TlsClient client{tcp::Framing::Tutorial()};
  record(client, cev);
  ASSERT_EQ(client.start("127.0.0.1", port, cert("ec/ca.pem").c_str(), cert("ec/client.pem").c_str(),
                         cert("ec/client.key").c_str()),
            tcp::CLIENT_START_OK);
  const int id = waitEstablished(ev);
  ASSERT_TRUE(client.sendMsg(std::string("a\nb\0c", 5)));
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 1; }));
  EXPECT_EQ(ev.snapshot().parts[0].data, std::string("a\nb\0c", 5));
  ASSERT_TRUE(server.sendMsg(id, std::string("ok")));
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(cev.snapshot().messages[0], "ok");
}

// ---- sending ----

struct ProgressLog {
  std::vector<std::tuple<long long, long long, int>> calls;
  bool done = false;
};

// sendFile over plain TCP (the kernel's sendfile path): exactly the bytes
// of the range, progress ending with status 0 and sent == total.
TEST(Send, FileWithProgressPlainTcp) {
  const std::string content = pattern(3 * 1024 * 1024 + 17);
  TempFile f(content);
  ASSERT_FALSE(f.path().empty());
  Monitor<WireEvents> ev;
  tcp::TcpServer server;
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  const int id = waitEstablished(ev);
  ASSERT_GT(id, 0);

  Monitor<ProgressLog> prog;
  ASSERT_EQ(server.sendFile(id, f.path(), 0, -1,
                            [&prog](long long sent, long long total, int status) {
                              prog.update([&](auto &p) {
                                p.calls.emplace_back(sent, total, status);
                                if (status != 1) p.done = true;
                              });
                            }),
            tcp::SendResult::Ok);
  EXPECT_EQ(raw.recvExactly(content.size()), content);
  ASSERT_TRUE(prog.waitFor([](auto &p) { return p.done; }));
  auto calls = prog.snapshot().calls;
  ASSERT_GE(calls.size(), 2u);  // at least one report on the way, then done
  const auto total = static_cast<long long>(content.size());
  EXPECT_EQ(calls.back(), std::make_tuple(total, total, 0));
  for (size_t i = 0; i + 1 < calls.size(); i++) {
    EXPECT_EQ(std::get<2>(calls[i]), 1);
    EXPECT_EQ(std::get<1>(calls[i]), total);
    if (i > 0) {
      EXPECT_GE(std::get<0>(calls[i]), std::get<0>(calls[i - 1]));
    }
  }

  // a range, without progress
  ASSERT_EQ(server.sendFile(id, f.path(), 100, 50), tcp::SendResult::Ok);
  EXPECT_EQ(raw.recvExactly(50), content.substr(100, 50));
}

// sendFile over TLS with a length prefix: the file is one message; the
// client sends one back.
TEST(Send, FileAsOneMessageOverTls) {
  const std::string content = pattern(300000);
  TempFile f(content);
  Monitor<WireEvents> ev;
  tcp::TlsServer server{tcp::Framing::LengthPrefixed(4, tcp::ByteOrder::BigEndian)};
  recordWire(server, ev);
  const int port = startLoopback(server, cert("rsa/ca.pem"), cert("rsa/server.pem"),
                                 cert("rsa/server.key"));
  ASSERT_GT(port, 0);
  Monitor<ClientEvents> cev;
  tcp::TlsClient client{tcp::Framing::LengthPrefixed(4, tcp::ByteOrder::BigEndian)};
  record(client, cev);
  ASSERT_EQ(client.start("127.0.0.1", port, cert("rsa/ca.pem").c_str(),
                         cert("rsa/client.pem").c_str(), cert("rsa/client.key").c_str()),
            tcp::CLIENT_START_OK);
  const int id = waitEstablished(ev);
  Monitor<int> status;
  status.update([](int &s) { s = 1; });
  ASSERT_EQ(server.sendFile(id, f.path(), 0, -1,
                            [&status](long long, long long, int st) {
                              if (st != 1) status.update([st](int &s) { s = st; });
                            }),
            tcp::SendResult::Ok);
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(cev.snapshot().messages[0], content);
  ASSERT_TRUE(status.waitFor([](int s) { return s != 1; }));
  EXPECT_EQ(status.snapshot(), 0);

  ASSERT_EQ(client.sendFile(f.path(), 10, 1000), tcp::SendResult::Ok);
  ASSERT_TRUE(ev.waitFor([](auto &e) { return e.parts.size() == 1; }));
  EXPECT_EQ(ev.snapshot().parts[0].data, content.substr(10, 1000));
}

// sendFile's refusals: no progress call for any of them.
TEST(Send, FileRefusals) {
  TempFile f("0123456789");
  Monitor<WireEvents> ev;
  tcp::TcpServer server{'\n'};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  const int id = waitEstablished(ev);
  int calls = 0;
  auto count = [&calls](long long, long long, int) { calls++; };
  // a delimiter framing refuses files (a file may hold the delimiter)
  EXPECT_EQ(server.sendFile(id, f.path(), 0, -1, count), tcp::SendResult::InvalidArg);
  tcp::TcpServer plain;
  recordWire(plain, ev);
  const int port2 = startLoopback(plain);
  Raw raw2(port2);
  const int id2 = waitEstablished(ev, 2);
  EXPECT_EQ(plain.sendFile(id2, "/nonexistent/tcpgo", 0, -1, count), tcp::SendResult::File);
  EXPECT_EQ(plain.sendFile(id2, f.path(), 11, -1, count), tcp::SendResult::InvalidArg);
  EXPECT_EQ(plain.sendFile(id2, f.path(), 5, 6, count), tcp::SendResult::InvalidArg);
  EXPECT_EQ(plain.sendFile(999999, f.path(), 0, -1, count), tcp::SendResult::NoClient);
  tcp::TcpClient idle;
  EXPECT_EQ(idle.sendFile(f.path()), tcp::SendResult::NotRunning);
  EXPECT_EQ(calls, 0);
}

// A progress worker that throws is reported; the file still goes out.
TEST(Send, ThrowingProgressIsReported) {
  TempFile f("payload");
  Monitor<WireEvents> ev;
  tcp::TcpServer server;
  recordWire(server, ev);
  const int port = startLoopback(server);
  Raw raw(port);
  const int id = waitEstablished(ev);
  ASSERT_EQ(server.sendFile(id, f.path(), 0, -1,
                            [](long long, long long, int) { throw std::runtime_error("boom"); }),
            tcp::SendResult::Ok);
  EXPECT_EQ(raw.recvExactly(7), "payload");
  ASSERT_TRUE(ev.waitFor([](auto &e) { return !e.exceptions.empty(); }));
  EXPECT_EQ(ev.snapshot().exceptions[0], "file progress");
}

// sendv frames several buffers once, as one message.
TEST(Send, SendvIsOneMessage) {
  Monitor<WireEvents> ev;
  tcp::TcpServer server{tcp::Framing::LengthPrefixed(4, tcp::ByteOrder::BigEndian)};
  recordWire(server, ev);
  const int port = startLoopback(server);
  ASSERT_GT(port, 0);
  Raw raw(port);
  const int id = waitEstablished(ev);
  const std::string body(1000, 'b');
  EXPECT_EQ(server.sendv(id, {"head:", body, std::string_view("\0tail", 5)}), tcp::SendResult::Ok);
  const std::string want = prefix(1010, 4, tcp::ByteOrder::BigEndian) + "head:" + body +
                           std::string("\0tail", 5);
  EXPECT_EQ(raw.recvExactly(want.size()), want);
  std::vector<std::string_view> none;
  EXPECT_EQ(server.sendv(id, none), tcp::SendResult::Ok);  // an empty message
  EXPECT_EQ(raw.recvExactly(4), prefix(0, 4, tcp::ByteOrder::BigEndian));

  // the client's twin against a delimiter server: one message, one delimiter
  Monitor<ServerEvents> sev;
  tcp::TcpServer lines{'\n'};
  record(lines, sev);
  const int port2 = startLoopback(lines);
  tcp::TcpClient client{'\n'};
  ASSERT_EQ(client.start("127.0.0.1", port2), tcp::CLIENT_START_OK);
  EXPECT_EQ(client.sendv({"a", "b", "c"}), tcp::SendResult::Ok);
  EXPECT_EQ(client.sendv({"x", "\n"}), tcp::SendResult::ContainsDelimiter);
  ASSERT_TRUE(sev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(sev.snapshot().messages[0].second, "abc");
}

// sendLine: one message in the framings that end messages, CRLF appended
// in continuous mode.
TEST(Send, SendLine) {
  Monitor<WireEvents> ev;
  tcp::TcpServer server;  // continuous
  recordWire(server, ev);
  const int port = startLoopback(server);
  Raw raw(port);
  const int id = waitEstablished(ev);
  EXPECT_EQ(server.sendLine(id, "HELO"), tcp::SendResult::Ok);
  EXPECT_EQ(raw.recvExactly(6), "HELO\r\n");

  Monitor<WireEvents> ev2;
  tcp::TcpServer lines{tcp::Framing::Lines(0, tcp::Overlong::Close, "\n")};
  recordWire(lines, ev2);
  const int port2 = startLoopback(lines);
  Monitor<ClientEvents> cev;
  tcp::TcpClient client{tcp::Framing::Lines()};
  record(client, cev);
  ASSERT_EQ(client.start("127.0.0.1", port2), tcp::CLIENT_START_OK);
  const int id2 = waitEstablished(ev2);
  EXPECT_EQ(client.sendLine("from client"), tcp::SendResult::Ok);
  ASSERT_TRUE(ev2.waitFor([](auto &e) { return e.parts.size() == 1; }));
  EXPECT_EQ(ev2.snapshot().parts[0].data, "from client");
  EXPECT_EQ(lines.sendLine(id2, "back"), tcp::SendResult::Ok);
  ASSERT_TRUE(cev.waitFor([](auto &e) { return e.messages.size() == 1; }));
  EXPECT_EQ(cev.snapshot().messages[0], "back");
  EXPECT_EQ(lines.sendLine(id2, "two\nlines"), tcp::SendResult::ContainsDelimiter);
}
