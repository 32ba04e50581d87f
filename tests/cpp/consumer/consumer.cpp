// A tiny program built out of tree against an installed tcpgo: a server and
// a client on loopback exchange one message. Exit status 0 on success.
#include <tcpgo.h>
#include <tcp/TcpClient.h>
#include <tcp/TcpServer.h>

#include <chrono>
#include <condition_variable>
#include <cstring>

int main() {
  if (std::strcmp(tcp_version(), TCPGO_VERSION) != 0) {
    std::cerr << "header " << TCPGO_VERSION << " but library " << tcp_version() << "\n";
    return 1;
  }
  tcp::TcpServer server{'\n'};
  server.setWorkOnMessage([&](const int id, const std::string msg) { server.sendMsg(id, "echo " + msg); });
  server.setBindAddress("127.0.0.1");
  if (server.startOnFreePort() != tcp::SERVER_START_OK) return 2;

  std::mutex m;
  std::condition_variable cv;
  std::string reply;
  tcp::TcpClient client{'\n'};
  client.setWorkOnMessage([&](const std::string msg) {
    std::lock_guard<std::mutex> lock(m);
    reply = msg;
    cv.notify_all();
  });
  if (client.start("127.0.0.1", server.getPort()) != tcp::CLIENT_START_OK) return 3;
  client.sendMsg("hello");
  std::unique_lock<std::mutex> lock(m);
  if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return !reply.empty(); })) return 4;
  std::cout << "consumer: " << reply << " (tcpgo " << tcp::libraryVersion() << ")" << std::endl;
  return reply == "echo hello" ? 0 : 5;
}
