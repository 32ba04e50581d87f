// cpp_echo_server -- the C++ side of tcpgo's echo benchmark.
//
// The message echo written the way a user of the C++ classes writes it:
// tcp::TcpServer / tcp::TlsServer in fragmented mode with '\n', a message
// worker that answers with sendMsg, which appends the delimiter again. By
// default the worker is the zero-copy one (setWorkOnMessageView: client id
// and a std::string_view of the library's buffer); with -v2 it is v2's
// (setWorkOnMessage: the message copied into a std::string).
//
//   cpp_echo_server [-v2] [-addr 127.0.0.1] [-tls -cert CERT -key KEY -ca CA]
//
// With -tls the server requires client certificates signed by CA (mutual
// TLS, as tcp::TlsServer always does). The first line on stdout is
// "PORT n". The server runs until stdin reaches end of file or
// SIGTERM/SIGINT arrives, then prints a one-line summary on stderr.
#include <tcp/TcpServer.h>
#include <tcp/TlsServer.h>

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace {

volatile sig_atomic_t stopRequested = 0;
void onSignal(int) { stopRequested = 1; }

std::atomic<long> refusedSends{0};

// Waits until stdin reaches end of file (or fails) or a signal asked to stop.
void waitForStop() {
  bool stdinOpen = true;
  while (!stopRequested) {
    if (!stdinOpen) {
      poll(nullptr, 0, 200);
      continue;
    }
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int n = poll(&p, 1, 200);
    if (n < 0) {
      if (errno != EINTR) stdinOpen = false;
      continue;
    }
    if (n == 0) continue;
    if (p.revents & POLLNVAL) {
      stdinOpen = false;
      continue;
    }
    char buf[256];
    ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
    if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) return;
  }
}

template <class Server, class Start>
int serve(Server &server, const std::string &addr, bool v2, Start start) {
  server.setBindAddress(addr);
  if (v2) {
    server.setWorkOnMessage([&server](const int clientId, const std::string msg) {
      if (!server.sendMsg(clientId, msg)) refusedSends.fetch_add(1, std::memory_order_relaxed);
    });
  } else {
    server.setWorkOnMessageView([&server](const int clientId, std::string_view msg) {
      if (!server.sendMsg(clientId, msg)) refusedSends.fetch_add(1, std::memory_order_relaxed);
    });
  }
  int rc = start(server);
  if (rc != tcp::SERVER_START_OK) {
    std::fprintf(stderr, "cpp_echo_server: start failed with %d: %s\n", rc,
                 server.getLastError().c_str());
    return 1;
  }
  std::printf("PORT %d\n", server.getPort());
  std::fflush(stdout);
  waitForStop();
  server.stop();
  std::fprintf(stderr, "cpp_echo_server: stopped; %ld refused sends\n", refusedSends.load());
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: cpp_echo_server [-v2] [-addr A] [-tls -cert CERT -key KEY -ca CA]\n");
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  std::string addr = "127.0.0.1", ca, cert, key;
  bool useTls = false, v2 = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-tls") {
      useTls = true;
      continue;
    }
    if (a == "-v2") {
      v2 = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "-addr")
      addr = v;
    else if (a == "-ca")
      ca = v;
    else if (a == "-cert")
      cert = v;
    else if (a == "-key")
      key = v;
    else
      return usage();
  }
  if (useTls && (ca.empty() || cert.empty() || key.empty())) return usage();

  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = onSignal;
  sa.sa_flags = SA_ONSTACK;  // signals may land on a Go thread
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  if (useTls) {
    tcp::TlsServer server('\n');
    return serve(server, addr, v2, [&](tcp::TlsServer &s) {
      return s.startOnFreePort(ca.c_str(), cert.c_str(), key.c_str());
    });
  }
  tcp::TcpServer server('\n');
  return serve(server, addr, v2, [](tcp::TcpServer &s) { return s.startOnFreePort(); });
}
