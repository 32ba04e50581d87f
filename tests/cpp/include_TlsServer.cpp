// <tcp/TlsServer.h> alone brings what v2's headers brought: programs written for v2
// use these names without including them. Compiled, not run.
#include <tcp/TlsServer.h>

namespace include_TlsServer {
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
int startCode() { return tcp::SERVER_START_OK; }
}  // namespace include_TlsServer
int nid() { return NID_organizationalUnitName + NID_commonName; }
const SSL *noSsl = nullptr;
