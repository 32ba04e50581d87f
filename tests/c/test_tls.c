/*
 * test_tls.c -- mutual TLS: echo in both modes, every file-related start
 * code on both sides, certificates from an unknown CA in both directions,
 * client-certificate policy, subject look-ups, host verification, TLS 1.2,
 * handshake timeouts.
 */
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define CLIENT_CN "tcpgo client"

extern char **environ;

/* Echo three messages over mutual TLS. delim < 0: continuous mode. */
static void mutual_tls_echo(int delim) {
  static const char *const msgs[] = {"first", "second\tline", "third"};
  server_rec *r = server_rec_new(delim < 0 ? tcp_server_new()
                                           : tcp_server_new_fragmented((char)delim, 0));
  client_rec *cr = client_rec_new(delim < 0 ? tcp_client_new()
                                            : tcp_client_new_fragmented((char)delim, 0),
                                  NULL);
  size_t i;

  r->echo = 1;
  r->lookup_cn = 1;
  connect_mtls(cr, start_mtls(r->s, &fx()->main), &fx()->main);
  CHECK_WAIT(&r->m, r->established == 1);
  /* get_subj_part worked from inside the established callback. */
  LOCKED(&r->m, {
    CHECK_EQ(r->conns[0].cn_len, (int)strlen(CLIENT_CN));
    CHECK_STR(r->conns[0].cn, CLIENT_CN);
  });

  if (delim < 0) {
    static const char text[] = "a continuous TLS stream";
    CHECK_EQ(tcp_client_send(cr->c, text, sizeof text - 1), 1);
    CHECK_WAIT(cr->m, msgs_concat_is(&cr->msgs, text, sizeof text - 1));
  } else {
    for (i = 0; i < 3; i++) CHECK_EQ(tcp_client_send(cr->c, msgs[i], strlen(msgs[i])), 1);
    CHECK_WAIT(cr->m, cr->messages == 3);
    LOCKED(cr->m, for (i = 0; i < 3; i++) CHECK(msg_is(&cr->msgs, i, msgs[i])));
  }
  client_rec_free(cr);
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r);
}

TEST(tls_mutual_echo_continuous) { mutual_tls_echo(-1); }
TEST(tls_mutual_echo_fragmented) { mutual_tls_echo('\n'); }
TEST(tls_mutual_echo_nul_delimiter) { mutual_tls_echo('\0'); }

static void expect_server_start(const char *ca, const char *cert,
                                const char *key, int want, int line) {
  tcp_server *s = tcp_server_new();
  int rc;
  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  rc = tls_server_start(s, 0, ca, cert, key);
  if (rc != want)
    h_fail(__FILE__, line, "tls_server_start gave %d (%s), want %d", rc,
           tcp_strerror(rc), want);
  if (want != TCP_START_OK) {
    check_error_text(s, NULL, __FILE__, line);
    if (tcp_server_is_running(s)) h_fail(__FILE__, line, "running after failed start");
  }
  tcp_server_free(s);
}

TEST(tls_server_start_codes) {
  const fixtures *f = fx();
  const pki *m = &f->main;
  /* Paths first (30, 31, 32), then contents (33, 34, 35). */
  expect_server_start(f->missing, f->missing, f->missing, TCP_START_WRONG_CA_PATH, __LINE__);
  expect_server_start(m->ca, f->missing, f->missing, TCP_START_WRONG_CERT_PATH, __LINE__);
  expect_server_start(m->ca, m->server_cert, f->missing, TCP_START_WRONG_KEY_PATH, __LINE__);
  expect_server_start(f->garbage, f->missing, m->server_key, TCP_START_WRONG_CERT_PATH, __LINE__);
  expect_server_start(f->garbage, m->server_cert, m->server_key, TCP_START_WRONG_CA, __LINE__);
  expect_server_start(f->empty, m->server_cert, m->server_key, TCP_START_WRONG_CA, __LINE__);
  expect_server_start(m->ca_key, m->server_cert, m->server_key, TCP_START_WRONG_CA, __LINE__);
  expect_server_start(m->ca, f->garbage, m->server_key, TCP_START_WRONG_CERT, __LINE__);
  expect_server_start(m->ca, m->server_key, m->server_key, TCP_START_WRONG_CERT, __LINE__);
  expect_server_start(m->ca, m->server_cert, f->garbage, TCP_START_WRONG_KEY, __LINE__);
  /* The client's key with the server's certificate. */
  expect_server_start(m->ca, m->server_cert, m->client_key, TCP_START_WRONG_KEY, __LINE__);
  expect_server_start(NULL, m->server_cert, m->client_key, TCP_START_WRONG_KEY, __LINE__);
  expect_server_start(m->ca, m->server_cert, m->server_key, TCP_START_OK, __LINE__);
  expect_server_start(NULL, m->server_cert, m->server_key, TCP_START_OK, __LINE__);
}

TEST(tls_client_start_codes) {
  const fixtures *f = fx();
  const pki *m = &f->main;
  struct {
    const char *ca, *cert, *key;
    int want;
  } cases[] = {
      {f->missing, NULL, NULL, TCP_START_WRONG_CA_PATH},
      {f->missing, f->missing, f->missing, TCP_START_WRONG_CA_PATH},
      {m->ca, f->missing, m->client_key, TCP_START_WRONG_CERT_PATH},
      {m->ca, m->client_cert, f->missing, TCP_START_WRONG_KEY_PATH},
      {f->garbage, m->client_cert, m->client_key, TCP_START_WRONG_CA},
      {f->empty, NULL, NULL, TCP_START_WRONG_CA},
      {m->ca, f->garbage, m->client_key, TCP_START_WRONG_CERT},
      {m->ca, m->client_cert, f->garbage, TCP_START_WRONG_KEY},
      {m->ca, m->client_cert, m->server_key, TCP_START_WRONG_KEY},
  };
  tcp_server *s = tcp_server_new();
  tcp_client *c = tcp_client_new();
  int port = start_mtls(s, m);
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = tls_client_start(c, "127.0.0.1", port, cases[i].ca, cases[i].cert,
                              cases[i].key);
    if (rc != cases[i].want)
      h_fail(__FILE__, __LINE__, "case %zu: tls_client_start gave %d (%s), want %d",
             i, rc, tcp_strerror(rc), cases[i].want);
    CHECK_CLIENT_ERROR_TEXT(c);
    CHECK_EQ(tcp_client_is_running(c), 0);
  }
  tcp_client_free(c);
  tcp_server_free(s);
}

TEST(tls_client_rejects_unknown_ca) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  int port = start_mtls(r->s, &fx()->main);

  /* The client trusts another CA than the one that signed the server. */
  CHECK_EQ(tls_client_start(cr->c, "127.0.0.1", port, fx()->other.ca,
                            fx()->main.client_cert, fx()->main.client_key),
           TCP_START_CONNECT_INIT);
  CHECK_CLIENT_ERROR_TEXT(cr->c);
  CHECK_EQ(tcp_client_is_running(cr->c), 0);

  /* The server saw a failed handshake: error with id 0, nobody listed. */
  CHECK_WAIT(&r->m, r->errors_id0 >= 1);
  LOCKED(&r->m, {
    CHECK_EQ(r->last_error_code, TCP_ERR_HANDSHAKE);
    CHECK_EQ(r->established, 0);
  });
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), 0);

  client_rec_free(cr);
  server_rec_free(r);
}

/* A client the server must refuse: never established, never listed,
 * reported with id 0; the server keeps serving good clients. */
static void expect_rejected_client(const char *cert, const char *key) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *bad = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  client_rec *good = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  int port, rc;

  r->echo = 1;
  port = start_mtls(r->s, &fx()->main);
  client_rec_started(bad); /* may succeed with TLS 1.3, see the header */
  rc = tls_client_start(bad->c, "127.0.0.1", port, fx()->main.ca, cert, key);
  if (rc == TCP_START_OK) {
    /* TLS 1.3: the rejection arrives after start; closed follows. */
    CHECK_WAIT(bad->m, bad->closed == 1);
  } else {
    CHECK_EQ(rc, TCP_START_CONNECT_INIT);
    LOCKED(bad->m, bad->starts--);
  }
  CHECK_EQ(tcp_client_is_running(bad->c), 0);

  CHECK_WAIT(&r->m, r->errors_id0 >= 1);
  LOCKED(&r->m, {
    CHECK_EQ(r->last_error_code, TCP_ERR_HANDSHAKE);
    CHECK_EQ(r->last_error_id, 0);
    CHECK_EQ(r->established, 0);
  });
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), 0);

  connect_mtls(good, port, &fx()->main);
  CHECK_EQ(tcp_client_send(good->c, "ok?", 3), 1);
  CHECK_WAIT(good->m, good->messages == 1);
  LOCKED(&r->m, CHECK_EQ(r->established, 1));

  client_rec_free(bad);
  client_rec_free(good);
  server_rec_free(r);
}

TEST(tls_server_rejects_unknown_client_ca) {
  expect_rejected_client(fx()->other.client_cert, fx()->other.client_key);
}

TEST(tls_server_rejects_client_without_cert) {
  expect_rejected_client(NULL, NULL);
}

/* Connect a TLS client (optionally with the main client certificate) and
 * return the CN the server sees, as get_subj_part's return value. */
static int cn_seen_by(tcp_server *s, const char *ca, int with_cert) {
  server_rec *r = server_rec_new(s);
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  int port, n;
  char buf[64];

  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  REQUIRE_EQ(tls_server_start(s, 0, ca, fx()->main.server_cert, fx()->main.server_key), 0);
  port = tcp_server_port(s);
  client_rec_started(cr);
  REQUIRE_EQ(tls_client_start(cr->c, "127.0.0.1", port, fx()->main.ca,
                              with_cert ? fx()->main.client_cert : NULL,
                              with_cert ? fx()->main.client_key : NULL),
             TCP_START_OK);
  CHECK_WAIT(&r->m, r->established == 1);
  n = get_subj_part(s, server_rec_id(r, 0), TCP_NID_COMMON_NAME, buf, sizeof buf);
  client_rec_free(cr);
  server_rec_free(r);
  return n;
}

TEST(tls_optional_client_cert) {
  tcp_server *s = tcp_server_new();
  REQUIRE_EQ(tcp_server_set_option(s, TCP_OPT_REQUIRE_CLIENT_CERT, 0), 0);
  CHECK_EQ(cn_seen_by(s, fx()->main.ca, 0), TCP_ERR_NO_FIELD);
  s = tcp_server_new();
  REQUIRE_EQ(tcp_server_set_option(s, TCP_OPT_REQUIRE_CLIENT_CERT, 0), 0);
  CHECK_EQ(cn_seen_by(s, fx()->main.ca, 1), (int)strlen(CLIENT_CN));
}

TEST(tls_server_without_ca) {
  /* No CA: clients are not asked for a certificate. */
  CHECK_EQ(cn_seen_by(tcp_server_new(), NULL, 0), TCP_ERR_NO_FIELD);
  CHECK_EQ(cn_seen_by(tcp_server_new(), NULL, 1), TCP_ERR_NO_FIELD);
}

TEST(get_subj_part_fields) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  const int cn_len = (int)strlen(CLIENT_CN);
  char buf[64];
  int id;

  connect_mtls(cr, start_mtls(r->s, &fx()->main), &fx()->main);
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);

  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, sizeof buf), cn_len);
  CHECK_STR(buf, CLIENT_CN);
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_ORGANIZATION_NAME, buf, sizeof buf), 5);
  CHECK_STR(buf, "tcpgo");
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_ORGANIZATIONAL_UNIT_NAME, buf, sizeof buf), 4);
  CHECK_STR(buf, "test");

  /* Fields the certificate does not have. */
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COUNTRY_NAME, buf, sizeof buf), TCP_ERR_NO_FIELD);
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_EMAIL_ADDRESS, buf, sizeof buf), TCP_ERR_NO_FIELD);
  /* NIDs tcpgo does not know; ids it does not know. */
  CHECK_EQ(get_subj_part(r->s, id, 9999, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(get_subj_part(r->s, id, -1, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(get_subj_part(r->s, id + 1000, TCP_NID_COMMON_NAME, buf, sizeof buf),
           TCP_ERR_NO_CLIENT);
  CHECK_EQ(get_subj_part(r->s, 0, TCP_NID_COMMON_NAME, buf, sizeof buf), TCP_ERR_NO_CLIENT);

  /* Sizing and truncation, as snprintf. */
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, NULL, 0), cn_len);
  memset(buf, 'Z', sizeof buf);
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, 0), cn_len);
  CHECK_EQ(buf[0], 'Z'); /* buflen 0: nothing written */
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, 1), cn_len);
  CHECK_EQ(buf[0], '\0');
  memset(buf, 'Z', sizeof buf);
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, 6), cn_len);
  CHECK_STR(buf, "tcpgo");
  CHECK_EQ(buf[6], 'Z');
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, (size_t)cn_len), cn_len);
  CHECK_STR(buf, "tcpgo clien");
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, (size_t)cn_len + 1), cn_len);
  CHECK_STR(buf, CLIENT_CN);

  /* Other look-ups work over TLS too. */
  CHECK_EQ(tcp_server_client_ip(r->s, id, buf, sizeof buf), 9);
  CHECK_EQ(tcp_server_client_port(r->s, id), tcp_client_local_port(cr->c));

  /* Gone with the client. */
  tcp_client_stop(cr->c);
  CHECK_WAIT(&r->m, r->closed == 1);
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, sizeof buf), TCP_ERR_NO_CLIENT);

  client_rec_free(cr);
  server_rec_free(r);
}

/* Run a command (found on PATH); its exit status, or -1. posix_spawn, not
 * fork: the Go runtime does not survive fork. */
static int run_cmd(char *const argv[]) {
  pid_t pid;
  int st;
  if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) return -1;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* tcp_generate_certs cannot make a subject with a repeated field or
 * non-ASCII text, so openssl makes one, signed by the main test CA. */
TEST(get_subj_part_multi_valued_utf8) {
  char dir[FX_PATH], key[FX_PATH + 16], csr[FX_PATH + 16], cert[FX_PATH + 16];
  char subj[] = "/C=DE/O=tcpgo/OU=first/OU=second/CN=J\xc3\xb6rg \xe2\x9c\x93";
  char *req[] = {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-utf8", "-subj", subj,
                 "-keyout", key, "-out", csr, NULL};
  char *sign[] = {"openssl", "x509", "-req", "-in", csr, "-CA", (char *)fx()->main.ca,
                  "-CAkey", (char *)fx()->main.ca_key, "-set_serial", "4242",
                  "-days", "1", "-out", cert, NULL};
  server_rec *r;
  client_rec *cr;
  char buf[64];
  int id, devnull, saved;

  fx_tempdir(dir, sizeof dir);
  snprintf(key, sizeof key, "%s/utf8.key", dir);
  snprintf(csr, sizeof csr, "%s/utf8.csr", dir);
  snprintf(cert, sizeof cert, "%s/utf8.pem", dir);
  /* openssl chatters on stderr. */
  saved = dup(2);
  devnull = open("/dev/null", O_WRONLY);
  dup2(devnull, 2);
  id = run_cmd(req) == 0 && run_cmd(sign) == 0;
  dup2(saved, 2);
  close(saved);
  close(devnull);
  if (!id) {
    fprintf(stderr, "    (skipped: openssl could not make the certificate)\n");
    return;
  }

  r = server_rec_new(tcp_server_new());
  cr = client_rec_new(tcp_client_new(), NULL);
  connect_tcp_tls_cert(cr, start_mtls(r->s, &fx()->main), cert, key);
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);

  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, sizeof buf),
           (int)strlen("J\xc3\xb6rg \xe2\x9c\x93"));
  CHECK_STR(buf, "J\xc3\xb6rg \xe2\x9c\x93"); /* UTF-8, as sent */
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_ORGANIZATIONAL_UNIT_NAME, buf, sizeof buf), 5);
  CHECK_STR(buf, "first"); /* the first of two values */
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COUNTRY_NAME, buf, sizeof buf), 2);
  CHECK_STR(buf, "DE");

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(get_subj_part_plain_tcp) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  char buf[64];
  int id;

  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, buf, sizeof buf), TCP_ERR_NO_FIELD);
  CHECK_EQ(get_subj_part(r->s, id, TCP_NID_COMMON_NAME, NULL, 0), TCP_ERR_NO_FIELD);
  CHECK_EQ(get_subj_part(r->s, id + 1000, TCP_NID_COMMON_NAME, buf, sizeof buf),
           TCP_ERR_NO_CLIENT);
  /* And on the client side of a plain connection. */
  CHECK_EQ(tcp_client_server_subj_part(cr->c, TCP_NID_COMMON_NAME, buf, sizeof buf),
           TCP_ERR_NO_FIELD);

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(client_server_subj_part) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  char buf[128], small[4];
  int n;

  connect_mtls(cr, start_mtls(r->s, &fx()->main), &fx()->main);
  /* The header does not fix the generated server certificate's subject;
   * it has some CN, which must follow the buffer rules. */
  n = tcp_client_server_subj_part(cr->c, TCP_NID_COMMON_NAME, NULL, 0);
  CHECK_GT(n, 0);
  CHECK_EQ(tcp_client_server_subj_part(cr->c, TCP_NID_COMMON_NAME, buf, sizeof buf), n);
  CHECK_EQ(strlen(buf), (size_t)n);
  CHECK_EQ(tcp_client_server_subj_part(cr->c, TCP_NID_COMMON_NAME, small, sizeof small), n);
  CHECK_EQ(strlen(small), (size_t)(n < 3 ? n : 3));
  CHECK(strncmp(small, buf, strlen(small)) == 0);
  CHECK_EQ(tcp_client_server_subj_part(cr->c, TCP_NID_EMAIL_ADDRESS, buf, sizeof buf),
           TCP_ERR_NO_FIELD);
  CHECK_EQ(tcp_client_server_subj_part(cr->c, 9999, buf, sizeof buf), TCP_ERR_INVALID_ARG);

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(tls_verify_host) {
  const pki *san = &fx()->san; /* server cert valid for 127.0.0.2 only */
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  client_rec *byname = client_rec_new(tcp_client_new(), NULL);
  tcp_server *s2 = tcp_server_new();
  int port = start_mtls(r->s, san);

  /* Full verification (default) checks the address. */
  CHECK_EQ(tls_client_start(cr->c, "127.0.0.1", port, san->ca, san->client_cert,
                            san->client_key),
           TCP_START_CONNECT_INIT);
  CHECK_CLIENT_ERROR_TEXT(cr->c);
  /* CA-only verification accepts it. */
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_VERIFY_MODE, TCP_VERIFY_CA), 0);
  connect_mtls(cr, port, san);
  CHECK_EQ(tcp_client_send(cr->c, "x", 1), 1);
  CHECK_WAIT(&r->m, r->messages == 1);

  /* A host name in the default subjectAltName ("localhost") verifies. */
  connect_mtls(byname, start_mtls(s2, &fx()->main), &fx()->main);
  tcp_client_stop(byname->c);
  client_rec_started(byname);
  CHECK_EQ(tls_client_start(byname->c, "localhost", tcp_server_port(s2), fx()->main.ca,
                            fx()->main.client_cert, fx()->main.client_key),
           TCP_START_OK);

  client_rec_free(byname);
  tcp_server_free(s2);
  client_rec_free(cr);
  server_rec_free(r);
}

TEST(tls_1_2_allowed) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  r->echo = 1;
  connect_mtls(cr, start_mtls(r->s, &fx()->main), &fx()->main);
  CHECK_EQ(tcp_client_send(cr->c, "twelve", 6), 1);
  CHECK_WAIT(cr->m, cr->messages == 1);
  client_rec_free(cr);
  server_rec_free(r);
}

TEST(tls_server_handshake_timeout) {
  server_rec *r = server_rec_new(tcp_server_new());
  struct pollfd p;
  char byte;
  int fd;

  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_CONNECT_TIMEOUT_MS, 300), 0);
  /* A peer that connects and never says a word. */
  fd = raw_connect(start_mtls(r->s, &fx()->main));
  CHECK_WAIT(&r->m, r->errors_id0 >= 1);
  LOCKED(&r->m, {
    CHECK(r->last_error_code == TCP_ERR_TIMEOUT || r->last_error_code == TCP_ERR_HANDSHAKE);
    CHECK_EQ(r->established, 0);
  });
  /* ... and the server hung up on it. */
  p.fd = fd;
  p.events = POLLIN;
  CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
  CHECK(recv(fd, &byte, 1, 0) <= 0);
  close(fd);
  server_rec_free(r);
}

TEST(tls_client_handshake_timeout) {
  tcp_client *c = tcp_client_new();
  int lfd, port = closed_port(&lfd);
  long long t0;
  int rc;

  /* A listener that accepts in the kernel but never answers the TLS
   * hello. */
  REQUIRE(listen(lfd, 4) == 0);
  REQUIRE_EQ(tcp_client_set_option(c, TCP_OPT_CONNECT_TIMEOUT_MS, 300), 0);
  t0 = now_ms();
  rc = tls_client_start(c, "127.0.0.1", port, fx()->main.ca, fx()->main.client_cert,
                        fx()->main.client_key);
  CHECK(rc == TCP_START_CONNECT || rc == TCP_START_CONNECT_INIT);
  CHECK_LT(now_ms() - t0, 3000);
  CHECK_CLIENT_ERROR_TEXT(c);
  CHECK_EQ(tcp_client_is_running(c), 0);
  tcp_client_free(c);
  close(lfd);
}

TEST(tls_large_message) {
  enum { SIZE = 4 * 1024 * 1024 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  char *big = malloc(SIZE);
  int i;

  REQUIRE(big != NULL);
  for (i = 0; i < SIZE; i++) big[i] = (char)('a' + i % 26);
  r->echo = 1;
  connect_mtls(cr, start_mtls(r->s, &fx()->main), &fx()->main);
  /* Many TLS records, one message, under the 16 MiB default maximum. */
  CHECK_EQ(tcp_client_send(cr->c, big, SIZE), 1);
  CHECK_WAIT_MS(cr->m, cr->messages == 1, 15000);
  LOCKED(cr->m, CHECK(msg_is_bytes(&cr->msgs, 0, big, SIZE)));
  client_rec_free(cr);
  server_rec_free(r);
  free(big);
}

const test_case tls_tests[] = {
    TEST_ENTRY(tls_mutual_echo_continuous),
    TEST_ENTRY(tls_mutual_echo_fragmented),
    TEST_ENTRY(tls_mutual_echo_nul_delimiter),
    TEST_ENTRY(tls_large_message),
    TEST_ENTRY(tls_server_start_codes),
    TEST_ENTRY(tls_client_start_codes),
    TEST_ENTRY(tls_client_rejects_unknown_ca),
    TEST_ENTRY(tls_server_rejects_unknown_client_ca),
    TEST_ENTRY(tls_server_rejects_client_without_cert),
    TEST_ENTRY(tls_optional_client_cert),
    TEST_ENTRY(tls_server_without_ca),
    TEST_ENTRY(get_subj_part_fields),
    TEST_ENTRY(get_subj_part_multi_valued_utf8),
    TEST_ENTRY(get_subj_part_plain_tcp),
    TEST_ENTRY(client_server_subj_part),
    TEST_ENTRY(tls_verify_host),
    TEST_ENTRY(tls_1_2_allowed),
    TEST_ENTRY(tls_server_handshake_timeout),
    TEST_ENTRY(tls_client_handshake_timeout),
    TEST_END,
};
