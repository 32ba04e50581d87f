// main() of the C++ tests: finds or makes the v2-style test certificates.
//
// Under ctest the certificates are made once by the fixture test
// cpp_certs_setup and passed in TCPGO_TEST_CERTS. Run by hand, the binary
// makes its own in a temporary directory and removes them at exit.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "helpers.h"

#ifndef TCPGO_CERT_SCRIPT
#error "TCPGO_CERT_SCRIPT must name tests/cpp/make_v2_certs.sh"
#endif

namespace {
std::string g_certDir;
bool g_ownDir = false;

class CertEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (const char *d = std::getenv("TCPGO_TEST_CERTS"); d && *d) {
      g_certDir = d;
      return;
    }
    char tmpl[] = "/tmp/tcpgo-cpp-certs-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      std::abort();
    }
    g_certDir = tmpl;
    g_ownDir = true;
    std::string cmd = std::string("sh '") + TCPGO_CERT_SCRIPT + "' '" + g_certDir + "' >/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "could not make certificates with %s\n", TCPGO_CERT_SCRIPT);
      std::abort();
    }
  }
  void TearDown() override {
    if (g_ownDir) {
      std::string cmd = "rm -rf '" + g_certDir + "'";
      if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", g_certDir.c_str());
    }
  }
};
}  // namespace

const std::string &testutil::certDir() { return g_certDir; }

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new CertEnvironment);
  return RUN_ALL_TESTS();
}
