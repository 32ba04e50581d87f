/*
 * test_cert_purpose.c -- certificate purpose, as OpenSSL checks it (issue 8
 * item 4): a certificate whose extended key usage or key usage does not
 * allow its role is refused in every verify mode, while certificates
 * without those extensions (what TCP_ServerClient v2 users make with the
 * openssl CLI) stay accepted. The certificates are made by the openssl CLI,
 * and each verdict is first checked against `openssl verify -purpose`.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* Makes, in $1, ca.pem (openssl req -x509) and, signed by it, NAME.pem /
 * NAME.key (P-256) for: clientauth (EKU clientAuth only), serverauth (EKU
 * serverAuth), certsign (KeyUsage keyCertSign only), v1server and v1client
 * (X.509 v1, no extension at all). The first two name IP 127.0.0.1. */
static const char make_certs_sh[] =
    "set -e; cd \"$1\"\n"
    "req() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    " -keyout $1.key -out $1.csr -subj /CN=$1; }\n"
    "sign() { n=$1; shift; req $n\n"
    "  if [ $# -gt 0 ]; then printf '%s\\n' \"$@\" > $n.cnf; set -- -extfile $n.cnf; fi\n"
    "  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
    " -out $n.pem \"$@\"; }\n"
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    " -keyout ca.key -out ca.pem -days 2 -subj /CN=purpose-ca\n"
    "sign clientauth subjectAltName=IP:127.0.0.1 extendedKeyUsage=clientAuth\n"
    "sign serverauth subjectAltName=IP:127.0.0.1 extendedKeyUsage=serverAuth"
    " keyUsage=digitalSignature\n"
    "sign certsign keyUsage=keyCertSign\n"
    "sign v1server\n"
    "sign v1client\n";

/* Run argv (found on PATH) with stdout and stderr to /dev/null: its exit
 * status, or -1. posix_spawn, not fork: the Go runtime does not survive
 * fork. */
static int run_quiet(char *const argv[]) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int st, rc;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct purpose_pki {
  char dir[FX_PATH];
} purpose_pki;

/* dir/name.ext */
static const char *pp(const purpose_pki *p, const char *name, const char *ext) {
  static char buf[4][FX_PATH + 64];
  static int next;
  char *out = buf[next++ % 4];
  snprintf(out, sizeof buf[0], "%s/%s.%s", p->dir, name, ext);
  return out;
}

/* Makes the certificates; 0 (after saying so) when openssl is missing or
 * fails. */
static int make_pki(purpose_pki *p) {
  char *version[] = {"openssl", "version", NULL};
  char *make[] = {"sh", "-c", (char *)make_certs_sh, "make_certs", p->dir, NULL};
  fx_tempdir(p->dir, sizeof p->dir);
  if (run_quiet(version) != 0) {
    printf("    skipped: no openssl CLI on PATH\n");
    return 0;
  }
  REQUIRE_EQ(run_quiet(make), 0);
  return 1;
}

/* 1 when `openssl verify -purpose purpose` accepts name.pem. */
static int openssl_accepts(const purpose_pki *p, const char *purpose, const char *name) {
  char ca[FX_PATH + 64], cert[FX_PATH + 64];
  char *argv[] = {"openssl", "verify", "-purpose", (char *)purpose, "-CAfile", ca, cert, NULL};
  snprintf(ca, sizeof ca, "%s", pp(p, "ca", "pem"));
  snprintf(cert, sizeof cert, "%s", pp(p, name, "pem"));
  return run_quiet(argv) == 0;
}

/* A TLS server on 127.0.0.1 with name's certificate; ca: client CA or NULL. */
static int start_with(tcp_server *s, const purpose_pki *p, const char *ca, const char *name) {
  char cert[FX_PATH + 64], key[FX_PATH + 64], err[256] = "";
  int rc;
  snprintf(cert, sizeof cert, "%s", pp(p, name, "pem"));
  snprintf(key, sizeof key, "%s", pp(p, name, "key"));
  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  rc = tls_server_start(s, 0, ca, cert, key);
  if (rc != TCP_START_OK) {
    tcp_server_last_error(s, err, sizeof err);
    fprintf(stderr, "    server start failed: %d: %s\n", rc, err);
  }
  REQUIRE_EQ(rc, TCP_START_OK);
  return tcp_server_port(s);
}

/* The tcp_generate_certs client.pem case: a clientAuth-only certificate
 * cannot act as a server, whatever the verify mode. */
TEST(cert_purpose_client_cert_as_server_refused) {
  static const int modes[] = {TCP_VERIFY_CA, TCP_VERIFY_FULL};
  purpose_pki p;
  server_rec *r;
  size_t i;
  int port;

  if (!make_pki(&p)) return;
  CHECK_EQ(openssl_accepts(&p, "sslserver", "clientauth"), 0);
  r = server_rec_new(tcp_server_new());
  port = start_with(r->s, &p, NULL, "clientauth");
  for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    client_rec *cr = client_rec_new(tcp_client_new(), NULL);
    char err[512] = "";
    REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_VERIFY_MODE, modes[i]), 0);
    CHECK_EQ(tls_client_start(cr->c, "127.0.0.1", port, pp(&p, "ca", "pem"), NULL, NULL),
             TCP_START_CONNECT_INIT);
    CHECK_EQ(tcp_client_is_running(cr->c), 0);
    tcp_client_last_error(cr->c, err, sizeof err);
    if (!strstr(err, "certificate purpose") || !strstr(err, "serverAuth needed"))
      h_fail(__FILE__, __LINE__, "verify mode %d: reason %s", modes[i], err);
    client_rec_free(cr);
  }
  /* The server saw the client abort each handshake. */
  CHECK_WAIT(&r->m, r->errors_id0 >= 2);
  LOCKED(&r->m, {
    CHECK_EQ(r->last_error_code, TCP_ERR_HANDSHAKE);
    CHECK_EQ(r->established, 0);
  });
  server_rec_free(r);
}

/* A mutual TLS server refuses a client certificate whose KeyUsage is
 * keyCertSign only, then serves a good client. */
TEST(cert_purpose_keycertsign_client_refused) {
  purpose_pki p;
  server_rec *r;
  client_rec *bad, *good;
  int port, rc;

  if (!make_pki(&p)) return;
  CHECK_EQ(openssl_accepts(&p, "sslclient", "certsign"), 0);
  r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  r->echo = 1;
  port = start_with(r->s, &p, pp(&p, "ca", "pem"), "serverauth");

  bad = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  client_rec_started(bad); /* may succeed with TLS 1.3, see the header */
  rc = tls_client_start(bad->c, "127.0.0.1", port, pp(&p, "ca", "pem"),
                        pp(&p, "certsign", "pem"), pp(&p, "certsign", "key"));
  if (rc == TCP_START_OK) {
    CHECK_WAIT(bad->m, bad->closed == 1); /* refused after the client's side */
  } else {
    CHECK_EQ(rc, TCP_START_CONNECT_INIT);
    LOCKED(bad->m, bad->starts--);
  }
  CHECK_WAIT(&r->m, r->errors_id0 >= 1);
  LOCKED(&r->m, {
    CHECK_EQ(r->last_error_code, TCP_ERR_HANDSHAKE);
    CHECK_EQ(r->last_error_id, 0);
    CHECK_EQ(r->established, 0);
    if (!strstr(r->last_error_text, "KeyUsage keyCertSign only"))
      h_fail(__FILE__, __LINE__, "server error: %s", r->last_error_text);
  });
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), 0);
  client_rec_free(bad);

  good = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  client_rec_started(good);
  REQUIRE_EQ(tls_client_start(good->c, "127.0.0.1", port, pp(&p, "ca", "pem"),
                              pp(&p, "v1client", "pem"), pp(&p, "v1client", "key")),
             TCP_START_OK);
  CHECK_EQ(tcp_client_send(good->c, "ok?", 3), 1);
  CHECK_WAIT(good->m, good->messages == 1);
  LOCKED(&r->m, CHECK_EQ(r->established, 1));
  client_rec_free(good);
  server_rec_free(r);
}

/* Certificates without EKU and KeyUsage (X.509 v1, as v2 users make them)
 * work both ways; so does an EKU serverAuth server certificate with full
 * verification. */
TEST(cert_purpose_no_eku_accepted) {
  static const struct {
    const char *server;
    int mode;
  } cases[] = {{"v1server", TCP_VERIFY_CA}, {"serverauth", TCP_VERIFY_FULL}};
  purpose_pki p;
  size_t i;

  if (!make_pki(&p)) return;
  CHECK(openssl_accepts(&p, "sslserver", "v1server"));
  CHECK(openssl_accepts(&p, "sslclient", "v1client"));
  CHECK(openssl_accepts(&p, "sslserver", "serverauth"));
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
    client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
    int port, rc;
    char err[512] = "";
    r->echo = 1;
    port = start_with(r->s, &p, pp(&p, "ca", "pem"), cases[i].server);
    REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_VERIFY_MODE, cases[i].mode), 0);
    client_rec_started(cr);
    rc = tls_client_start(cr->c, "127.0.0.1", port, pp(&p, "ca", "pem"),
                          pp(&p, "v1client", "pem"), pp(&p, "v1client", "key"));
    if (rc != TCP_START_OK) {
      tcp_client_last_error(cr->c, err, sizeof err);
      h_fail(__FILE__, __LINE__, "%s: start gave %d: %s", cases[i].server, rc, err);
      LOCKED(cr->m, cr->starts--);
    } else {
      CHECK_EQ(tcp_client_send(cr->c, "hello", 5), 1);
      CHECK_WAIT(cr->m, cr->messages == 1);
      LOCKED(&r->m, {
        CHECK_EQ(r->established, 1);
        CHECK_EQ(r->errors, 0);
      });
    }
    client_rec_free(cr);
    server_rec_free(r);
  }
}

const test_case cert_purpose_tests[] = {
    TEST_ENTRY(cert_purpose_client_cert_as_server_refused),
    TEST_ENTRY(cert_purpose_keycertsign_client_refused),
    TEST_ENTRY(cert_purpose_no_eku_accepted),
    TEST_END,
};
