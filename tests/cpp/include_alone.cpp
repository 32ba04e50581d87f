// One class header alone brings what v2's headers brought: programs written
// for v2 use these names without including them. Compiled, not run: once per
// header, with TCPGO_ALONE set to TcpServer, TlsServer, TcpClient or
// TlsClient by tests.cmake.
#define TCPGO_STR2(x) #x
#define TCPGO_STR(x) TCPGO_STR2(x)
#define TCPGO_CAT2(a, b) a##b
#define TCPGO_CAT(a, b) TCPGO_CAT2(a, b)
#include TCPGO_STR(tcp/TCPGO_ALONE.h)

namespace TCPGO_CAT(include_, TCPGO_ALONE) {
std::map<int, std::string> aMap;
std::vector<int> aVector;
std::mutex aMutex;
std::atomic<int> anAtomic{0};
std::function<void(const int)> aFunction;
std::unique_ptr<int> aPointer = std::make_unique<int>(1);
std::shared_ptr<int> aShared;
size_t aLimit = std::numeric_limits<size_t>::max();
void useThread() {
  std::thread t([] { std::cout << "thread" << std::endl; });
  t.join();
  std::lock_guard<std::mutex> lock(aMutex);
}
#ifdef TCPGO_ALONE_SERVER
int startCode() { return tcp::SERVER_START_OK; }
#else
int startCode() { return tcp::CLIENT_START_OK; }
#endif
#ifdef TCPGO_ALONE_TLS_SERVER
int nid() { return NID_organizationalUnitName + NID_commonName; }
const SSL *noSsl = nullptr;
#endif
}  // namespace TCPGO_CAT(include_, TCPGO_ALONE)
