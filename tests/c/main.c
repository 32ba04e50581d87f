/* main.c -- the list of test suites of tcpgo_c_tests. */
#include "harness.h"
#include "util.h"

extern const test_case api_tests[];
extern const test_case server_tests[];
extern const test_case client_tests[];
extern const test_case tls_tests[];
extern const test_case event_tests[];
extern const test_case signal_tests[];
extern const test_case delivery_tests[];
extern const test_case fault_tests[];
extern const test_case control_tests[];
extern const test_case framing_tests[];
extern const test_case cert_purpose_tests[];
extern const test_case tls_feature_tests[];
extern const test_case batch_tests[];

static const test_case *const suites[] = {
    api_tests, server_tests, client_tests, tls_tests, event_tests, signal_tests,
    delivery_tests, fault_tests, control_tests, framing_tests, cert_purpose_tests,
    tls_feature_tests, batch_tests, NULL};

/* Certificates are made once per run, in the runner, and shared by every
 * test process through the environment. */
static int setup(void) {
  raise_fd_limit(4096); /* 200 clients plus their server ends */
  return fixtures_create();
}

int main(int argc, char **argv) {
  static const h_hooks hooks = {setup, fixtures_remove};
  return h_run(argc, argv, suites, &hooks);
}
