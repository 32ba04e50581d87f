/*
 * test_tls_features.c -- the TLS features of issue 11 through the C API:
 * PEM starts, the self-signed server certificate, certificate callbacks on
 * both sides, tcp_*_tls_info / tcp_*_tls_str, TLS options (max version,
 * cipher suites, ALPN, server name, system CAs, key log, resumption), SNI
 * certificates, reload, STARTTLS on both sides, bad arguments, and
 * interop with the openssl command line tools. The SNI, reload and interop
 * tests make their certificates with the openssl CLI and are skipped
 * without it (.ci/run installs it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* Two self-signed server certificates for the SNI and reload tests
 * (ECDSA P-256, serverAuth): "a.example" and "*.b.example". Made by the
 * openssl CLI when a test first needs them (need_sni_certs), so that no
 * private key is kept in the tree. */
static char A_PEM[4096], A_KEY[4096], B_PEM[4096], B_KEY[4096];

static int run_tool(char *const argv[], const char *input, char *out, size_t cap);
static int have_openssl(void);
static char *read_file(const char *path);
static void write_file(const char *path, const char *text);

/* Make one self-signed certificate for name into pem/key. */
static void make_sni_cert(const char *dir, const char *tag, const char *name, char *pem,
                          char *key) {
  char cnf[FX_PATH + 16], cert_path[FX_PATH + 16], key_path[FX_PATH + 16], text[512], out[4096];
  char *argv[] = {"openssl", "req", "-x509", "-config", cnf, "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-nodes", "-keyout", key_path, "-out", cert_path,
                  "-days", "3650", NULL};
  char *got;
  snprintf(cnf, sizeof cnf, "%s/%s.cnf", dir, tag);
  snprintf(cert_path, sizeof cert_path, "%s/%s.pem", dir, tag);
  snprintf(key_path, sizeof key_path, "%s/%s.key", dir, tag);
  snprintf(text, sizeof text,
           "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n"
           "[dn]\nO = tcpgo sni test\nCN = %s\n"
           "[ext]\nsubjectAltName = DNS:%s\nextendedKeyUsage = serverAuth\n"
           "keyUsage = critical, digitalSignature\nbasicConstraints = critical, CA:FALSE\n",
           name, name);
  write_file(cnf, text);
  REQUIRE_EQ(run_tool(argv, NULL, out, sizeof out), 0);
  got = read_file(cert_path);
  REQUIRE(strlen(got) < sizeof A_PEM);
  strcpy(pem, got);
  free(got);
  got = read_file(key_path);
  REQUIRE(strlen(got) < sizeof A_KEY);
  strcpy(key, got);
  free(got);
}

/* 1 when A_* and B_* are made; 0 (after saying so) without openssl. */
static int need_sni_certs(void) {
  char dir[FX_PATH];
  if (A_PEM[0]) return 1;
  if (!have_openssl()) return 0;
  fx_tempdir(dir, sizeof dir);
  make_sni_cert(dir, "a", "a.example", A_PEM, A_KEY);
  make_sni_cert(dir, "b", "*.b.example", B_PEM, B_KEY);
  return 1;
}

#define CA_SUBJECT "CN=tcpgo test CA,O=tcpgo"
#define SERVER_SUBJECT "CN=tcpgo server,OU=test,O=tcpgo"
#define CLIENT_SUBJECT "CN=tcpgo client,OU=test,O=tcpgo"
#define A_SUBJECT "CN=a.example,O=tcpgo sni test"
#define B_SUBJECT "CN=*.b.example,O=tcpgo sni test"

/* ---- helpers ------------------------------------------------------------ */

/* A file's contents, NUL-terminated (free it). */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  REQUIRE(f != NULL);
  REQUIRE(fseek(f, 0, SEEK_END) == 0);
  n = ftell(f);
  REQUIRE(n >= 0);
  rewind(f);
  buf = malloc((size_t)n + 1);
  REQUIRE(buf != NULL);
  REQUIRE(fread(buf, 1, (size_t)n, f) == (size_t)n);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  REQUIRE(f != NULL);
  REQUIRE(fwrite(text, 1, strlen(text), f) == strlen(text));
  REQUIRE(fclose(f) == 0);
}

/* The PEM files of the main test PKI, in memory. */
typedef struct pems {
  char *ca, *server_cert, *server_key, *client_cert, *client_key;
} pems;

static pems load_pems(const pki *p) {
  pems m;
  m.ca = read_file(p->ca);
  m.server_cert = read_file(p->server_cert);
  m.server_key = read_file(p->server_key);
  m.client_cert = read_file(p->client_cert);
  m.client_key = read_file(p->client_key);
  return m;
}

static void free_pems(pems *m) {
  free(m->ca);
  free(m->server_cert);
  free(m->server_key);
  free(m->client_cert);
  free(m->client_key);
}

/* One text field of a server's / client's connection (static buffer per
 * call site is not needed: the caller passes one). */
static int srv_str(tcp_server *s, int id, int what, char *buf, size_t n) {
  buf[0] = '\0';
  return tcp_server_tls_str(s, id, what, buf, n);
}

static int cli_str(tcp_client *c, int what, char *buf, size_t n) {
  buf[0] = '\0';
  return tcp_client_tls_str(c, what, buf, n);
}

/* ---- server recorder ------------------------------------------------------ */

#define MAX_EV 32
#define MSG_MAX 256

typedef struct tsrv {
  monitor m;
  tcp_server *s;
  int established, closed, messages, errors, errors_id0, last_error_code;
  char last_error[256];
  int est_ids[MAX_EV];             /* established ids, in order (repeats) */
  tcp_tls_info est_info[MAX_EV];   /* tcp_server_tls_info in established */
  int est_info_rc[MAX_EV];
  int msg_ids[MAX_EV];
  char msgs[MAX_EV][MSG_MAX];
  /* behaviour */
  int echo;                  /* send each message back */
  int close_after_echo;      /* ... then close the connection */
  const char *starttls_word; /* upgrade on this message ... */
  const char *starttls_reply; /* ... with this reply (NULL: none) */
  int starttls_rc, starttls_calls;
  int smtp;                  /* speak the plain phase of SMTP */
  /* certificate callback */
  int cert_verdict;          /* what it returns */
  int cert_calls, cert_id, cert_result, cert_ip_rc, cert_pem_is_begin;
  size_t cert_pem_len, cert_chain_len;
  char cert_subject[256], cert_issuer[256], cert_error[256], cert_sn[128], cert_ip[64];
} tsrv;

static int count_est(tsrv *t, int id) {
  int i, n = 0;
  for (i = 0; i < t->established && i < MAX_EV; i++) n += t->est_ids[i] == id;
  return n;
}

static void tsrv_established(void *ud, int id) {
  tsrv *t = ud;
  tcp_tls_info info;
  int rc, first;
  memset(&info, 0, sizeof info);
  rc = tcp_server_tls_info(t->s, id, &info, sizeof info);
  monitor_lock(&t->m);
  if (t->established < MAX_EV) {
    t->est_ids[t->established] = id;
    t->est_info[t->established] = info;
    t->est_info_rc[t->established] = rc;
  }
  t->established++;
  first = count_est(t, id) == 1;
  monitor_broadcast(&t->m);
  monitor_unlock(&t->m);
  if (t->smtp && first) tcp_server_send_line(t->s, id, "220 tcpgo ESMTP");
}

static void tsrv_message(void *ud, int id, const char *data, size_t len) {
  tsrv *t = ud;
  char text[MSG_MAX];
  size_t n = len < MSG_MAX - 1 ? len : MSG_MAX - 1;
  memcpy(text, data, n);
  text[n] = '\0';
  monitor_lock(&t->m);
  if (t->messages < MAX_EV) {
    t->msg_ids[t->messages] = id;
    memcpy(t->msgs[t->messages], text, n + 1);
  }
  monitor_unlock(&t->m);
  if (t->starttls_word && strcmp(text, t->starttls_word) == 0) {
    int rc = tcp_server_starttls(t->s, id, t->starttls_reply,
                                 t->starttls_reply ? strlen(t->starttls_reply) : 0);
    LOCKED(&t->m, { t->starttls_rc = rc; t->starttls_calls++; });
  } else if (t->smtp && strncmp(text, "EHLO ", 5) == 0) {
    tcp_server_send_line(t->s, id, "250-tcpgo greets you");
    tcp_server_send_line(t->s, id, "250 STARTTLS");
  } else if (t->echo) {
    char reply[MSG_MAX + 8];
    snprintf(reply, sizeof reply, "echo %s", text);
    tcp_server_send_line(t->s, id, reply);
    if (t->close_after_echo) tcp_server_close_client(t->s, id);
  }
  LOCKED(&t->m, { t->messages++; monitor_broadcast(&t->m); });
}

static void tsrv_closed(void *ud, int id) {
  tsrv *t = ud;
  (void)id;
  LOCKED(&t->m, { t->closed++; monitor_broadcast(&t->m); });
}

static void tsrv_error(void *ud, int id, int code, const char *msg) {
  tsrv *t = ud;
  LOCKED(&t->m, {
    t->errors++;
    if (id == 0) t->errors_id0++;
    t->last_error_code = code;
    snprintf(t->last_error, sizeof t->last_error, "%s", msg);
    monitor_broadcast(&t->m);
  });
}

static int tsrv_cert(void *ud, const tcp_cert_info *info) {
  tsrv *t = ud;
  char ip[64] = "";
  int iprc = tcp_server_client_ip(t->s, info->client_id, ip, sizeof ip);
  int verdict;
  monitor_lock(&t->m);
  t->cert_calls++;
  t->cert_id = info->client_id;
  t->cert_result = info->result;
  t->cert_ip_rc = iprc;
  snprintf(t->cert_ip, sizeof t->cert_ip, "%s", ip);
  t->cert_pem_len = strlen(info->cert_pem);
  t->cert_chain_len = strlen(info->chain_pem);
  t->cert_pem_is_begin = strncmp(info->cert_pem, "-----BEGIN CERTIFICATE-----", 27) == 0;
  snprintf(t->cert_subject, sizeof t->cert_subject, "%s", info->subject);
  snprintf(t->cert_issuer, sizeof t->cert_issuer, "%s", info->issuer);
  snprintf(t->cert_error, sizeof t->cert_error, "%s", info->error);
  snprintf(t->cert_sn, sizeof t->cert_sn, "%s", info->server_name);
  verdict = t->cert_verdict;
  monitor_broadcast(&t->m);
  monitor_unlock(&t->m);
  return verdict;
}

/* A server recorder around s (fragmented, '\n', unless the caller made
 * another). */
static tsrv *tsrv_new(tcp_server *s) {
  tsrv *t = calloc(1, sizeof *t);
  REQUIRE(t != NULL);
  REQUIRE(s != NULL);
  monitor_init(&t->m);
  t->s = s;
  tcp_server_set_on_established(s, tsrv_established, t);
  tcp_server_set_on_message(s, tsrv_message, t);
  tcp_server_set_on_closed(s, tsrv_closed, t);
  tcp_server_set_on_error(s, tsrv_error, t);
  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  return t;
}

static void tsrv_with_cert_cb(tsrv *t, int verdict) {
  t->cert_verdict = verdict;
  tcp_server_set_on_cert(t->s, tsrv_cert, t);
}

static void tsrv_free(tsrv *t) {
  tcp_server_free(t->s);
  monitor_destroy(&t->m);
  free(t);
}

/* The port of a started server; rc must be TCP_START_OK. */
static int started(tsrv *t, int rc) {
  char err[256] = "";
  if (rc != TCP_START_OK) {
    tcp_server_last_error(t->s, err, sizeof err);
    fprintf(stderr, "    server start failed: %d (%s): %s\n", rc, tcp_strerror(rc), err);
  }
  REQUIRE_EQ(rc, TCP_START_OK);
  return tcp_server_port(t->s);
}

/* ---- client recorder -------------------------------------------------------- */

typedef struct tcli {
  monitor m;
  tcp_client *c;
  int messages, closed, errors, last_error_code;
  char msgs[MAX_EV][MSG_MAX];
  int connects, connect_attempt[MAX_EV], connect_result[MAX_EV];
  tcp_tls_info connect_info;
  int connect_info_rc;
  /* STARTTLS from the message callback */
  const char *starttls_on; /* this message triggers it */
  const char *st_ca;
  int st_is_pem;
  int starttls_rc, starttls_calls;
  /* certificate callback */
  const char *pin;         /* accept exactly this certificate (PEM), if set */
  int cert_verdict;        /* else return this */
  int cert_calls, cert_id, cert_result;
  char cert_sn[128], cert_subject[256], cert_error[256];
} tcli;

static void tcli_message(void *ud, const char *data, size_t len) {
  tcli *t = ud;
  char text[MSG_MAX];
  size_t n = len < MSG_MAX - 1 ? len : MSG_MAX - 1;
  memcpy(text, data, n);
  text[n] = '\0';
  if (t->starttls_on && strcmp(text, t->starttls_on) == 0) {
    int rc = tcp_client_starttls(t->c, t->st_ca, NULL, NULL, t->st_is_pem);
    LOCKED(&t->m, { t->starttls_rc = rc; t->starttls_calls++; });
  }
  LOCKED(&t->m, {
    if (t->messages < MAX_EV) memcpy(t->msgs[t->messages], text, n + 1);
    t->messages++;
    monitor_broadcast(&t->m);
  });
}

static void tcli_closed(void *ud) {
  tcli *t = ud;
  LOCKED(&t->m, { t->closed++; monitor_broadcast(&t->m); });
}

static void tcli_error(void *ud, int code, const char *msg) {
  tcli *t = ud;
  (void)msg;
  LOCKED(&t->m, { t->errors++; t->last_error_code = code; monitor_broadcast(&t->m); });
}

static void tcli_connect(void *ud, int attempt, int result) {
  tcli *t = ud;
  tcp_tls_info info;
  int rc;
  memset(&info, 0, sizeof info);
  rc = tcp_client_tls_info(t->c, &info, sizeof info);
  LOCKED(&t->m, {
    if (t->connects < MAX_EV) {
      t->connect_attempt[t->connects] = attempt;
      t->connect_result[t->connects] = result;
    }
    t->connects++;
    t->connect_info = info;
    t->connect_info_rc = rc;
    monitor_broadcast(&t->m);
  });
}

static int tcli_cert(void *ud, const tcp_cert_info *info) {
  tcli *t = ud;
  int verdict;
  monitor_lock(&t->m);
  t->cert_calls++;
  t->cert_id = info->client_id;
  t->cert_result = info->result;
  snprintf(t->cert_sn, sizeof t->cert_sn, "%s", info->server_name);
  snprintf(t->cert_subject, sizeof t->cert_subject, "%s", info->subject);
  snprintf(t->cert_error, sizeof t->cert_error, "%s", info->error);
  verdict = t->pin ? strcmp(info->cert_pem, t->pin) == 0 : t->cert_verdict;
  monitor_broadcast(&t->m);
  monitor_unlock(&t->m);
  return verdict;
}

static tcli *tcli_new(tcp_client *c) {
  tcli *t = calloc(1, sizeof *t);
  REQUIRE(t != NULL);
  REQUIRE(c != NULL);
  monitor_init(&t->m);
  t->c = c;
  tcp_client_set_on_message(c, tcli_message, t);
  tcp_client_set_on_closed(c, tcli_closed, t);
  tcp_client_set_on_error(c, tcli_error, t);
  tcp_client_set_on_connect(c, tcli_connect, t);
  return t;
}

static void tcli_with_cert_cb(tcli *t, int verdict, const char *pin) {
  t->cert_verdict = verdict;
  t->pin = pin;
  tcp_client_set_on_cert(t->c, tcli_cert, t);
}

static void tcli_free(tcli *t) {
  tcp_client_free(t->c);
  monitor_destroy(&t->m);
  free(t);
}

static void client_ok(tcli *t, int rc) {
  char err[256] = "";
  if (rc != TCP_START_OK) {
    tcp_client_last_error(t->c, err, sizeof err);
    fprintf(stderr, "    client start failed: %d (%s): %s\n", rc, tcp_strerror(rc), err);
  }
  REQUIRE_EQ(rc, TCP_START_OK);
}

/* Send a line and wait for the n-th message back. */
static void round_trip(tcli *t, const char *line, int n) {
  CHECK_EQ(tcp_client_send_line(t->c, line), 0);
  CHECK_WAIT(&t->m, t->messages >= n);
}

static tsrv *echo_server(void) {
  tsrv *t = tsrv_new(tcp_server_new_fragmented('\n', 0));
  t->echo = 1;
  return t;
}

static tcli *line_client(void) { return tcli_new(tcp_client_new_fragmented('\n', 0)); }

/* ---- PEM starts and the server's certificate --------------------------------- */

TEST(tlsf_pem_start_mutual) {
  pems m = load_pems(&fx()->main);
  tsrv *s = echo_server();
  tcli *c = line_client();
  char buf[512];
  int port = started(s, tls_server_start_pem(s->s, 0, m.ca, m.server_cert, m.server_key));

  client_ok(c, tls_client_start_pem(c->c, "127.0.0.1", port, m.ca, m.client_cert, m.client_key));
  round_trip(c, "hello pem", 1);
  LOCKED(&c->m, CHECK_STR(c->msgs[0], "echo hello pem"));
  LOCKED(&s->m, {
    CHECK_EQ(s->est_info_rc[0], 0);
    CHECK_EQ(s->est_info[0].has_peer_cert, 1);
    CHECK_EQ(s->est_info[0].verify_result, TCP_CERT_OK);
  });
  CHECK_GT(srv_str(s->s, s->est_ids[0], TCP_TLS_PEER_SUBJECT, buf, sizeof buf), 0);
  CHECK_STR(buf, CLIENT_SUBJECT);
  CHECK_GT(cli_str(c->c, TCP_TLS_PEER_SUBJECT, buf, sizeof buf), 0);
  CHECK_STR(buf, SERVER_SUBJECT);
  /* The certificate the server serves is the PEM it was given. */
  CHECK_EQ(tcp_server_tls_certificate(s->s, NULL, 0), (int)strlen(m.server_cert));
  tcli_free(c);
  tsrv_free(s);
  free_pems(&m);
}

/* Content codes of PEM starts: CA 33, certificate 34, key 35; one of
 * certificate and key without the other too. */
TEST(tlsf_pem_start_codes) {
  pems m = load_pems(&fx()->main);
  struct {
    const char *ca, *cert, *key;
    int want;
  } cases[] = {
      {"junk", m.server_cert, m.server_key, TCP_START_WRONG_CA},
      {NULL, "junk", m.server_key, TCP_START_WRONG_CERT},
      {NULL, m.server_cert, "junk", TCP_START_WRONG_KEY},
      {NULL, m.server_cert, m.client_key, TCP_START_WRONG_KEY},
      {NULL, m.server_cert, NULL, TCP_START_WRONG_KEY},
      {NULL, NULL, m.server_key, TCP_START_WRONG_CERT},
      {m.ca, "", "", TCP_START_WRONG_CERT},
  };
  size_t i;
  tcp_client *c = tcp_client_new();
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tcp_server *s = tcp_server_new();
    int rc = tls_server_start_pem(s, 0, cases[i].ca, cases[i].cert, cases[i].key);
    if (rc != cases[i].want) h_fail(__FILE__, __LINE__, "case %zu: %d, want %d", i, rc, cases[i].want);
    CHECK_EQ(tcp_errcode(), cases[i].want);
    CHECK_EQ(tcp_server_is_running(s), 0);
    CHECK_SERVER_ERROR_TEXT(s);
    tcp_server_free(s);
  }
  /* The client's own material is checked before connecting. */
  CHECK_EQ(tls_client_start_pem(c, "127.0.0.1", 1, "junk", NULL, NULL), TCP_START_WRONG_CA);
  CHECK_EQ(tls_client_start_pem(c, "127.0.0.1", 1, m.ca, m.client_cert, NULL), TCP_START_WRONG_KEY);
  CHECK_EQ(tls_client_start_pem(c, "127.0.0.1", 1, m.ca, "junk", m.client_key), TCP_START_WRONG_CERT);
  CHECK_EQ(tls_client_start_pem(c, NULL, 1, m.ca, NULL, NULL), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tls_client_start_pem(c, "127.0.0.1", 0, m.ca, NULL, NULL), TCP_START_WRONG_PORT);
  tcp_client_free(c);
  free_pems(&m);
}

/* A TLS server given no certificate makes a self-signed one; a client that
 * takes tcp_server_tls_certificate's output as its CA trusts it. */
TEST(tlsf_self_signed_trusted_by_pem) {
  tsrv *s = echo_server();
  tcli *c = line_client(), *c2 = line_client();
  char small[10], *pem, buf[256];
  int n, port;

  CHECK_EQ(tcp_server_tls_certificate(s->s, NULL, 0), TCP_ERR_NO_FIELD);
  port = started(s, tls_server_start_pem(s->s, 0, NULL, NULL, NULL));
  n = tcp_server_tls_certificate(s->s, NULL, 0);
  REQUIRE_GT(n, 100);
  /* snprintf-style: the full length whatever the buffer, truncated with a NUL. */
  memset(small, 'x', sizeof small);
  CHECK_EQ(tcp_server_tls_certificate(s->s, small, sizeof small), n);
  CHECK_EQ(strlen(small), sizeof small - 1);
  CHECK(strncmp(small, "-----BEGIN", 9) == 0);
  pem = malloc((size_t)n + 1);
  REQUIRE(pem != NULL);
  CHECK_EQ(tcp_server_tls_certificate(s->s, pem, (size_t)n + 1), n);
  CHECK_EQ(strlen(pem), (size_t)n);
  CHECK(strstr(pem, "-----END CERTIFICATE-----") != NULL);

  /* The test CA does not vouch for it ... */
  CHECK_EQ(tls_client_start_pem(c2->c, "127.0.0.1", port, NULL, NULL, NULL), TCP_START_CONNECT_INIT);
  CHECK_EQ(tls_client_start(c2->c, "127.0.0.1", port, fx()->main.ca, NULL, NULL), TCP_START_CONNECT_INIT);
  /* ... its own PEM does, for 127.0.0.1 and localhost. */
  client_ok(c, tls_client_start_pem(c->c, "127.0.0.1", port, pem, NULL, NULL));
  round_trip(c, "self", 1);
  CHECK_GT(cli_str(c->c, TCP_TLS_PEER_SUBJECT, buf, sizeof buf), 0);
  CHECK(strstr(buf, "O=tcpgo self-signed") != NULL);
  tcp_client_stop(c->c);
  client_ok(c, tls_client_start_pem(c->c, "localhost", port, pem, NULL, NULL));
  round_trip(c, "self again", 2);
  tcli_free(c);
  tcli_free(c2);
  tsrv_free(s);
  free(pem);
}

/* ---- certificate callbacks ---------------------------------------------------- */

/* The server's callback sees a client certificate from an unknown CA and
 * accepts it although the built-in check rejects it. */
TEST(tlsf_cert_cb_server_accepts_rejected) {
  const pki *m = &fx()->main, *o = &fx()->other;
  tsrv *s = echo_server();
  tcli *c = line_client();
  tcp_tls_info info;
  char buf[512];
  int port, id;

  tsrv_with_cert_cb(s, 1);
  port = started(s, tls_server_start(s->s, 0, m->ca, m->server_cert, m->server_key));
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, o->client_cert, o->client_key));
  round_trip(c, "accepted anyway", 1);
  LOCKED(&s->m, {
    CHECK_EQ(s->cert_calls, 1);
    CHECK_EQ(s->cert_result, TCP_CERT_UNKNOWN_CA);
    CHECK_STR(s->cert_subject, CLIENT_SUBJECT);
    CHECK_STR(s->cert_issuer, CA_SUBJECT);
    CHECK(s->cert_error[0] != '\0');
    CHECK_EQ(s->cert_pem_is_begin, 1);
    CHECK_GT(s->cert_pem_len, 100);
    CHECK_GE(s->cert_chain_len, s->cert_pem_len);
    CHECK_GT(s->cert_id, 0);
    CHECK_EQ(s->cert_id, s->est_ids[0]); /* the id it then gets */
    /* The connection's address is known during the callback. */
    CHECK_EQ(s->cert_ip_rc, 9);
    CHECK_STR(s->cert_ip, "127.0.0.1");
  });
  id = s->est_ids[0];
  CHECK_EQ(tcp_server_tls_info(s->s, id, &info, sizeof info), 0);
  CHECK_EQ(info.verify_result, TCP_CERT_UNKNOWN_CA);
  CHECK_EQ(info.has_peer_cert, 1);
  CHECK_GT(srv_str(s->s, id, TCP_TLS_VERIFY_ERROR, buf, sizeof buf), 0);
  /* get_subj_part reads the accepted certificate. */
  CHECK_EQ(get_subj_part(s->s, id, TCP_NID_COMMON_NAME, buf, sizeof buf), 12);
  CHECK_STR(buf, "tcpgo client");

  /* Without the callback the same client is refused. */
  tcp_server_set_on_cert(s->s, NULL, NULL);
  tcli_free(c);
  c = line_client();
  tls_client_start(c->c, "127.0.0.1", port, m->ca, o->client_cert, o->client_key);
  CHECK_WAIT(&s->m, s->errors_id0 == 1);
  LOCKED(&s->m, { CHECK_EQ(s->established, 1); CHECK_EQ(s->cert_calls, 1); });
  tcli_free(c);
  tsrv_free(s);
}

/* The server's callback refuses a good certificate: never established,
 * error with client_id 0 and TCP_ERR_HANDSHAKE. */
TEST(tlsf_cert_cb_server_refuses_good) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  tcli *c = line_client();
  int port, rc;

  tsrv_with_cert_cb(s, 0);
  port = started(s, tls_server_start(s->s, 0, m->ca, m->server_cert, m->server_key));
  rc = tls_client_start(c->c, "127.0.0.1", port, m->ca, m->client_cert, m->client_key);
  /* TLS 1.3: the client may finish its side before the server refuses. */
  CHECK(rc == TCP_START_OK || rc == TCP_START_CONNECT_INIT);
  CHECK_WAIT(&s->m, s->errors_id0 == 1);
  if (rc == TCP_START_OK) CHECK_WAIT(&c->m, c->closed == 1);
  LOCKED(&s->m, {
    CHECK_EQ(s->cert_calls, 1);
    CHECK_EQ(s->cert_result, TCP_CERT_OK);
    CHECK_STR(s->cert_error, "");
    CHECK_EQ(s->last_error_code, TCP_ERR_HANDSHAKE);
    CHECK(strstr(s->last_error, "certificate callback") != NULL);
    CHECK_EQ(s->established, 0);
  });
  tcli_free(c);
  tsrv_free(s);
}

/* A server without CA but with a callback asks for a certificate (optional)
 * so that the callback can judge it. */
TEST(tlsf_cert_cb_server_without_ca) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  tcli *c = line_client();
  int port;

  tsrv_with_cert_cb(s, 1);
  port = started(s, tls_server_start(s->s, 0, NULL, m->server_cert, m->server_key));
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, m->client_cert, m->client_key));
  round_trip(c, "with", 1);
  LOCKED(&s->m, {
    CHECK_EQ(s->cert_calls, 1);
    CHECK_EQ(s->cert_result, TCP_CERT_UNKNOWN_CA); /* no CA to check with */
    CHECK_STR(s->cert_subject, CLIENT_SUBJECT);
  });
  tcp_client_stop(c->c);
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, NULL, NULL));
  round_trip(c, "without", 2);
  LOCKED(&s->m, {
    CHECK_EQ(s->cert_calls, 2);
    CHECK_EQ(s->cert_result, TCP_CERT_NO_CERT);
    CHECK_STR(s->cert_subject, "");
    CHECK_EQ(s->cert_pem_len, 0);
  });
  tcli_free(c);
  tsrv_free(s);
}

/* The client's callback pins a self-signed server that no CA vouches for,
 * and refuses a server the built-in check accepts. */
TEST(tlsf_cert_cb_client_pin_and_refuse) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server(), *good = echo_server();
  tcli *c = line_client(), *c2 = line_client();
  char *pem;
  int n, port, gport;

  port = started(s, tls_server_start_pem(s->s, 0, NULL, NULL, NULL));
  n = tcp_server_tls_certificate(s->s, NULL, 0);
  REQUIRE_GT(n, 0);
  pem = malloc((size_t)n + 1);
  REQUIRE(pem != NULL);
  tcp_server_tls_certificate(s->s, pem, (size_t)n + 1);

  tcli_with_cert_cb(c, 0, pem);
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, NULL, NULL));
  round_trip(c, "pinned", 1);
  LOCKED(&c->m, {
    CHECK_EQ(c->cert_calls, 1);
    CHECK_EQ(c->cert_id, 0);
    CHECK_EQ(c->cert_result, TCP_CERT_UNKNOWN_CA);
    CHECK_STR(c->cert_sn, "127.0.0.1");
    CHECK(c->cert_error[0] != '\0');
  });

  gport = started(good, tls_server_start(good->s, 0, NULL, m->server_cert, m->server_key));
  tcli_with_cert_cb(c2, 0, NULL);
  CHECK_EQ(tls_client_start(c2->c, "127.0.0.1", gport, m->ca, NULL, NULL), TCP_START_CONNECT_INIT);
  CHECK_EQ(tcp_client_is_running(c2->c), 0);
  LOCKED(&c2->m, { CHECK_EQ(c2->cert_calls, 1); CHECK_EQ(c2->cert_result, TCP_CERT_OK); });
  CHECK_WAIT(&good->m, good->errors_id0 == 1);
  /* Removed, the built-in verdict decides again. */
  tcp_client_set_on_cert(c2->c, NULL, NULL);
  client_ok(c2, tls_client_start(c2->c, "127.0.0.1", gport, m->ca, NULL, NULL));
  LOCKED(&c2->m, CHECK_EQ(c2->cert_calls, 1));
  tcli_free(c);
  tcli_free(c2);
  tsrv_free(s);
  tsrv_free(good);
  free(pem);
}

/* ---- per-connection information ------------------------------------------------- */

TEST(tlsf_info_both_ends) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  tcli *c = line_client();
  tcp_tls_info si, ci, small;
  char buf[4096], tiny[4];
  int port, id, n;

  REQUIRE_EQ(tcp_server_set_option_str(s->s, TCP_OPT_TLS_ALPN, "x-one, h2"), 0);
  REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_ALPN, "h2,x-one"), 0);
  REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_SERVER_NAME, "localhost"), 0);
  port = started(s, tls_server_start(s->s, 0, m->ca, m->server_cert, m->server_key));
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, m->client_cert, m->client_key));
  round_trip(c, "info", 1);
  id = s->est_ids[0];

  CHECK_EQ(tcp_server_tls_info(s->s, id, &si, sizeof si), 0);
  CHECK_EQ(tcp_client_tls_info(c->c, &ci, sizeof ci), 0);
  CHECK_EQ(si.version, TCP_TLS_1_3);
  CHECK_EQ(ci.version, TCP_TLS_1_3);
  CHECK_EQ(si.cipher_suite, ci.cipher_suite);
  CHECK_GT(si.cipher_suite, 0x1300);
  CHECK_LT(si.cipher_suite, 0x1306);
  CHECK_EQ(si.upgraded, 0);
  CHECK_EQ(si.resumed, 0);
  CHECK_EQ(si.verify_result, TCP_CERT_OK);
  CHECK_EQ(ci.verify_result, TCP_CERT_OK);
  CHECK_EQ(si.has_peer_cert, 1);
  CHECK_EQ(ci.has_peer_cert, 1);
  /* A shorter struct (an older caller) gets its fields only. */
  memset(&small, 0x7f, sizeof small);
  CHECK_EQ(tcp_client_tls_info(c->c, &small, 2 * sizeof(int)), 0);
  CHECK_EQ(small.version, TCP_TLS_1_3);
  CHECK_EQ(small.resumed, 0x7f7f7f7f);

  CHECK_EQ(srv_str(s->s, id, TCP_TLS_VERSION_NAME, buf, sizeof buf), 7);
  CHECK_STR(buf, "TLS 1.3");
  CHECK_GT(srv_str(s->s, id, TCP_TLS_CIPHER_NAME, buf, sizeof buf), 4);
  CHECK(strncmp(buf, "TLS_AES_", 8) == 0 || strncmp(buf, "TLS_CHACHA20", 12) == 0);
  CHECK_EQ(srv_str(s->s, id, TCP_TLS_ALPN, buf, sizeof buf), 5);
  CHECK_STR(buf, "x-one"); /* the server's preference */
  CHECK_EQ(cli_str(c->c, TCP_TLS_ALPN, buf, sizeof buf), 5);
  CHECK_STR(buf, "x-one");
  CHECK_EQ(srv_str(s->s, id, TCP_TLS_SERVER_NAME, buf, sizeof buf), 9);
  CHECK_STR(buf, "localhost");
  CHECK_EQ(srv_str(s->s, id, TCP_TLS_PEER_SUBJECT, buf, sizeof buf), (int)strlen(CLIENT_SUBJECT));
  CHECK_STR(buf, CLIENT_SUBJECT);
  CHECK_EQ(srv_str(s->s, id, TCP_TLS_PEER_ISSUER, buf, sizeof buf), (int)strlen(CA_SUBJECT));
  CHECK_STR(buf, CA_SUBJECT);
  CHECK_EQ(cli_str(c->c, TCP_TLS_PEER_SUBJECT, buf, sizeof buf), (int)strlen(SERVER_SUBJECT));
  CHECK_STR(buf, SERVER_SUBJECT);
  CHECK_EQ(cli_str(c->c, TCP_TLS_PEER_ISSUER, buf, sizeof buf), (int)strlen(CA_SUBJECT));
  CHECK_EQ(srv_str(s->s, id, TCP_TLS_VERIFY_ERROR, buf, sizeof buf), 0);
  CHECK_STR(buf, "");
  {
    char *want = read_file(m->client_cert), *want_s = read_file(m->server_cert);
    CHECK_EQ(srv_str(s->s, id, TCP_TLS_PEER_CERT_PEM, buf, sizeof buf), (int)strlen(want));
    CHECK_STR(buf, want);
    CHECK_EQ(srv_str(s->s, id, TCP_TLS_PEER_CHAIN_PEM, buf, sizeof buf), (int)strlen(want));
    CHECK_EQ(cli_str(c->c, TCP_TLS_PEER_CERT_PEM, buf, sizeof buf), (int)strlen(want_s));
    CHECK_STR(buf, want_s);
    /* snprintf-style: length 0 gives the size; a short buffer is cut. */
    n = tcp_client_tls_str(c->c, TCP_TLS_PEER_CERT_PEM, NULL, 0);
    CHECK_EQ(n, (int)strlen(want_s));
    memset(tiny, 'x', sizeof tiny);
    CHECK_EQ(tcp_client_tls_str(c->c, TCP_TLS_PEER_CERT_PEM, tiny, sizeof tiny), n);
    CHECK_STR(tiny, "---");
    free(want);
    free(want_s);
  }

  /* Errors. */
  CHECK_EQ(tcp_server_tls_str(s->s, id, 0, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_errcode(), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_tls_str(s->s, id, 10, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_tls_str(c->c, 42, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_tls_str(s->s, id + 100, TCP_TLS_ALPN, buf, sizeof buf), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_tls_info(s->s, id + 100, &si, sizeof si), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_tls_info(s->s, id, NULL, sizeof si), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_tls_info(c->c, NULL, sizeof ci), TCP_ERR_INVALID_ARG);
  tcli_free(c);
  tsrv_free(s);
}

/* Without a client certificate the peer fields are TCP_ERR_NO_FIELD; a
 * plain connection has no TLS information; a client never started is not
 * running. */
TEST(tlsf_info_no_cert_and_plain) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server(), *plain = echo_server();
  tcli *c = line_client(), *pc = line_client(), *never = line_client();
  tcp_tls_info info;
  char buf[256];
  int id;

  client_ok(c, tls_client_start(c->c, "127.0.0.1",
                                started(s, tls_server_start(s->s, 0, NULL, m->server_cert, m->server_key)),
                                m->ca, NULL, NULL));
  round_trip(c, "x", 1);
  id = s->est_ids[0];
  CHECK_EQ(tcp_server_tls_info(s->s, id, &info, sizeof info), 0);
  CHECK_EQ(info.has_peer_cert, 0);
  CHECK_EQ(info.verify_result, TCP_CERT_NO_CERT);
  CHECK_EQ(tcp_server_tls_str(s->s, id, TCP_TLS_PEER_SUBJECT, buf, sizeof buf), TCP_ERR_NO_FIELD);
  CHECK_EQ(tcp_server_tls_str(s->s, id, TCP_TLS_PEER_CERT_PEM, buf, sizeof buf), TCP_ERR_NO_FIELD);
  CHECK_EQ(srv_str(s->s, id, TCP_TLS_SERVER_NAME, buf, sizeof buf), 0); /* an IP: no SNI */
  CHECK_EQ(srv_str(s->s, id, TCP_TLS_ALPN, buf, sizeof buf), 0);

  client_ok(pc, tcp_client_start(pc->c, "127.0.0.1", started(plain, tcp_server_start(plain->s, 0))));
  round_trip(pc, "plain", 1);
  CHECK_EQ(tcp_server_tls_info(plain->s, plain->est_ids[0], &info, sizeof info), TCP_ERR_NO_FIELD);
  CHECK_EQ(tcp_server_tls_str(plain->s, plain->est_ids[0], TCP_TLS_VERSION_NAME, buf, sizeof buf), TCP_ERR_NO_FIELD);
  CHECK_EQ(tcp_client_tls_info(pc->c, &info, sizeof info), TCP_ERR_NO_FIELD);
  CHECK_EQ(tcp_client_tls_info(never->c, &info, sizeof info), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_client_tls_str(never->c, TCP_TLS_VERSION_NAME, buf, sizeof buf), TCP_ERR_NOT_RUNNING);

  /* After the stop: the server's connections are gone; the client's last
   * connection stays readable (as tcp_client_server_subj_part). */
  tcp_client_stop(c->c);
  CHECK_EQ(tcp_client_tls_info(c->c, &info, sizeof info), 0);
  tcp_server_stop(s->s);
  CHECK_EQ(tcp_server_tls_info(s->s, id, &info, sizeof info), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_tls_str(s->s, id, TCP_TLS_ALPN, buf, sizeof buf), TCP_ERR_NO_CLIENT);
  tcli_free(c);
  tcli_free(pc);
  tcli_free(never);
  tsrv_free(s);
  tsrv_free(plain);
}

/* ---- options --------------------------------------------------------------------- */

TEST(tlsf_max_version_1_2) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  tcli *c = line_client(), *c13 = line_client();
  tcp_server *bad = tcp_server_new();
  tcp_tls_info info;
  char buf[64];
  int port;

  CHECK_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_MAX_VERSION, 0x0302), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_MAX_VERSION, 0x0305), TCP_ERR_INVALID_ARG);
  REQUIRE_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  REQUIRE_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_MAX_VERSION, TCP_TLS_1_2), 0);
  port = started(s, tls_server_start(s->s, 0, NULL, m->server_cert, m->server_key));
  /* A TLS 1.3-only client cannot talk to it ... */
  CHECK_EQ(tls_client_start(c13->c, "127.0.0.1", port, m->ca, NULL, NULL), TCP_START_CONNECT_INIT);
  /* ... one that allows 1.2 gets 1.2. */
  REQUIRE_EQ(tcp_client_set_option(c->c, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, NULL, NULL));
  round_trip(c, "v1.2", 1);
  CHECK_EQ(tcp_client_tls_info(c->c, &info, sizeof info), 0);
  CHECK_EQ(info.version, TCP_TLS_1_2);
  CHECK_EQ(cli_str(c->c, TCP_TLS_VERSION_NAME, buf, sizeof buf), 7);
  CHECK_STR(buf, "TLS 1.2");
  LOCKED(&s->m, CHECK_EQ(s->est_info[0].version, TCP_TLS_1_2));

  /* A maximum below the minimum (1.3 by default): the start fails. */
  REQUIRE_EQ(tcp_server_set_option(bad, TCP_OPT_TLS_MAX_VERSION, TCP_TLS_1_2), 0);
  CHECK_EQ(tls_server_start(bad, 0, NULL, m->server_cert, m->server_key), TCP_START_SET_CONTEXT);
  CHECK_EQ(tls_client_start(c13->c, "127.0.0.1", port, m->ca, NULL, NULL), TCP_START_CONNECT_INIT);
  REQUIRE_EQ(tcp_client_set_option(c13->c, TCP_OPT_TLS_MAX_VERSION, TCP_TLS_1_2), 0);
  CHECK_EQ(tls_client_start(c13->c, "127.0.0.1", port, m->ca, NULL, NULL), TCP_START_SET_CONTEXT);
  tcp_server_free(bad);
  tcli_free(c);
  tcli_free(c13);
  tsrv_free(s);
}

TEST(tlsf_cipher_suites) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  tcli *c = line_client(), *c2 = line_client();
  tcp_tls_info info;
  char buf[128];
  int port;

  CHECK_EQ(tcp_server_set_option_str(s->s, TCP_OPT_TLS_CIPHER_SUITES, "TLS_NO_SUCH_SUITE"), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_errcode(), TCP_ERR_INVALID_ARG);
  CHECK(strstr(errmsg_text(), "TLS_NO_SUCH_SUITE") != NULL);
  CHECK_EQ(tcp_server_set_option_str(s->s, TCP_OPT_TLS_CIPHER_SUITES, "TLS_AES_128_GCM_SHA256"), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_CIPHER_SUITES, "nonsense"), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_CIPHER_SUITES, ""), 0);
  REQUIRE_EQ(tcp_server_set_option_str(s->s, TCP_OPT_TLS_CIPHER_SUITES,
                                       "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"), 0);
  REQUIRE_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  REQUIRE_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_MAX_VERSION, TCP_TLS_1_2), 0);
  port = started(s, tls_server_start(s->s, 0, NULL, m->server_cert, m->server_key));

  REQUIRE_EQ(tcp_client_set_option(c->c, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, NULL, NULL));
  CHECK_EQ(tcp_client_tls_info(c->c, &info, sizeof info), 0);
  CHECK_EQ(info.cipher_suite, 0xcca9);
  CHECK_GT(cli_str(c->c, TCP_TLS_CIPHER_NAME, buf, sizeof buf), 0);
  CHECK_STR(buf, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");

  /* A client that offers only another suite cannot agree with it. */
  REQUIRE_EQ(tcp_client_set_option(c2->c, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  REQUIRE_EQ(tcp_client_set_option_str(c2->c, TCP_OPT_TLS_CIPHER_SUITES,
                                       "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"), 0);
  CHECK_EQ(tls_client_start(c2->c, "127.0.0.1", port, m->ca, NULL, NULL), TCP_START_CONNECT_INIT);
  tcli_free(c);
  tcli_free(c2);
  tsrv_free(s);
}

TEST(tlsf_alpn_match_and_mismatch) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  tcli *c = line_client(), *c2 = line_client();
  char buf[64];
  int port;

  REQUIRE_EQ(tcp_server_set_option_str(s->s, TCP_OPT_TLS_ALPN, "x-a,x-b"), 0);
  port = started(s, tls_server_start(s->s, 0, NULL, m->server_cert, m->server_key));
  REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_ALPN, "x-c, x-b"), 0);
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, NULL, NULL));
  round_trip(c, "alpn", 1);
  CHECK_EQ(cli_str(c->c, TCP_TLS_ALPN, buf, sizeof buf), 3);
  CHECK_STR(buf, "x-b");
  CHECK_EQ(srv_str(s->s, s->est_ids[0], TCP_TLS_ALPN, buf, sizeof buf), 3);
  CHECK_STR(buf, "x-b");

  REQUIRE_EQ(tcp_client_set_option_str(c2->c, TCP_OPT_TLS_ALPN, "x-c"), 0);
  CHECK_EQ(tls_client_start(c2->c, "127.0.0.1", port, m->ca, NULL, NULL), TCP_START_CONNECT_INIT);
  CHECK_WAIT(&s->m, s->errors_id0 == 1);
  LOCKED(&s->m, CHECK_EQ(s->last_error_code, TCP_ERR_HANDSHAKE));
  tcli_free(c);
  tcli_free(c2);
  tsrv_free(s);
}

/* A certificate for a name, reached by IP: fails unless the name to verify
 * is given; the server then sees it as SNI. */
TEST(tlsf_server_name_differs_from_address) {
  char dir[FX_PATH], ca[FX_PATH + 16], cert[FX_PATH + 16], key[FX_PATH + 16], buf[64];
  tsrv *s = echo_server();
  tcli *c = line_client();
  int port;

  fx_tempdir(dir, sizeof dir);
  REQUIRE_EQ(tcp_generate_certs(dir, "db.example"), 0);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/server.pem", dir);
  snprintf(key, sizeof key, "%s/server.key", dir);
  port = started(s, tls_server_start(s->s, 0, NULL, cert, key));
  CHECK_EQ(tls_client_start(c->c, "127.0.0.1", port, ca, NULL, NULL), TCP_START_CONNECT_INIT);
  CHECK_CLIENT_ERROR_TEXT(c->c);
  REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_SERVER_NAME, "db.example"), 0);
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, ca, NULL, NULL));
  round_trip(c, "named", 1);
  CHECK_EQ(srv_str(s->s, s->est_ids[0], TCP_TLS_SERVER_NAME, buf, sizeof buf), 10);
  CHECK_STR(buf, "db.example");
  tcli_free(c);
  tsrv_free(s);
}

/* TCP_OPT_TLS_SYSTEM_CAS: accepted on both kinds of handle, and a client
 * with it still trusts the CA it was given. */
TEST(tlsf_system_cas_option) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  tcli *c = line_client();
  int port;

  CHECK_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_SYSTEM_CAS, 1), 0);
  port = started(s, tls_server_start(s->s, 0, NULL, m->server_cert, m->server_key));
  CHECK_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_SYSTEM_CAS, 1), TCP_ERR_ALREADY_RUNNING);
  REQUIRE_EQ(tcp_client_set_option(c->c, TCP_OPT_TLS_SYSTEM_CAS, 1), 0);
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, NULL, NULL));
  round_trip(c, "system", 1);
  tcp_client_stop(c->c);
  /* The system's CAs alone do not know the test CA. */
  CHECK_EQ(tls_client_start(c->c, "127.0.0.1", port, NULL, NULL, NULL), TCP_START_CONNECT_INIT);
  tcli_free(c);
  tsrv_free(s);
}

/* Every line of the key log is "LABEL <64 hex digits> <hex>" (NSS). */
static int keylog_ok(const char *text, int *lines) {
  const char *p = text;
  *lines = 0;
  while (*p) {
    const char *sp = strchr(p, ' '), *nl = strchr(p, '\n');
    size_t i;
    if (!sp || !nl || sp > nl || sp == p) return 0;
    for (i = 1; i <= 64; i++)
      if (!strchr("0123456789abcdef", sp[i]) || sp[i] == '\0') return 0;
    if (sp[65] != ' ' || sp + 66 >= nl) return 0;
    (*lines)++;
    p = nl + 1;
  }
  return *lines > 0;
}

TEST(tlsf_keylog_file) {
  const pki *m = &fx()->main;
  char dir[FX_PATH], path[FX_PATH + 16], bad[FX_PATH + 32];
  tsrv *s = echo_server();
  tcli *c = line_client(), *c2 = line_client();
  char *text;
  int lines, port;

  fx_tempdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/keys.log", dir);
  snprintf(bad, sizeof bad, "%s/no/such/dir/keys.log", dir);
  port = started(s, tls_server_start(s->s, 0, NULL, m->server_cert, m->server_key));
  REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_KEYLOG_FILE, path), 0);
  client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, NULL, NULL));
  round_trip(c, "logged", 1);
  text = read_file(path);
  CHECK(keylog_ok(text, &lines));
  CHECK_GE(lines, 4); /* TLS 1.3: handshake and traffic secrets of both sides */
  CHECK(strstr(text, "CLIENT_HANDSHAKE_TRAFFIC_SECRET ") != NULL);
  CHECK(strstr(text, "SERVER_TRAFFIC_SECRET_0 ") != NULL);
  free(text);
  /* A file that cannot be opened fails the start. */
  REQUIRE_EQ(tcp_client_set_option_str(c2->c, TCP_OPT_TLS_KEYLOG_FILE, bad), 0);
  CHECK_EQ(tls_client_start(c2->c, "127.0.0.1", port, m->ca, NULL, NULL), TCP_START_SET_CONTEXT);
  tcli_free(c);
  tcli_free(c2);
  tsrv_free(s);
}

/* The client resumes its session on the second connection; with
 * TCP_OPT_TLS_RESUMPTION 0 on either side, it does not. */
static void resumption_case(int client_opt, int server_opt, int want) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  tcli *c = line_client();
  tcp_tls_info info;
  int port, i;

  if (server_opt >= 0) REQUIRE_EQ(tcp_server_set_option(s->s, TCP_OPT_TLS_RESUMPTION, server_opt), 0);
  if (client_opt >= 0) REQUIRE_EQ(tcp_client_set_option(c->c, TCP_OPT_TLS_RESUMPTION, client_opt), 0);
  port = started(s, tls_server_start(s->s, 0, m->ca, m->server_cert, m->server_key));
  for (i = 0; i < 2; i++) {
    client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, m->client_cert, m->client_key));
    round_trip(c, "resume?", i + 1); /* the reply comes after the ticket */
    CHECK_EQ(tcp_client_tls_info(c->c, &info, sizeof info), 0);
    CHECK_EQ(info.resumed, i == 1 ? want : 0);
    CHECK_EQ(info.has_peer_cert, 1); /* also on a resumed session */
    CHECK_WAIT(&s->m, s->established == i + 1);
    LOCKED(&s->m, CHECK_EQ(s->est_info[i].resumed, i == 1 ? want : 0));
    tcp_client_stop(c->c);
  }
  tcli_free(c);
  tsrv_free(s);
}

TEST(tlsf_resumption_default) { resumption_case(-1, -1, 1); }
TEST(tlsf_resumption_client_off) { resumption_case(0, -1, 0); }
TEST(tlsf_resumption_server_off) { resumption_case(-1, 0, 0); }

/* ---- SNI certificates and reload ----------------------------------------------- */

/* The subject of the certificate a client asking for name gets. */
static void expect_served_mode(int port, const char *name, const char *ca_pem, const char *subject,
                               int mode, int line) {
  tcli *c = line_client();
  char buf[256];
  int rc;
  REQUIRE_EQ(tcp_client_set_option(c->c, TCP_OPT_VERIFY_MODE, mode), 0);
  REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_SERVER_NAME, name), 0);
  rc = tls_client_start_pem(c->c, "127.0.0.1", port, ca_pem, NULL, NULL);
  if (rc != TCP_START_OK) {
    h_fail(__FILE__, line, "start for %s: %d", name, rc);
  } else {
    cli_str(c->c, TCP_TLS_PEER_SUBJECT, buf, sizeof buf);
    if (strcmp(buf, subject) != 0)
      h_fail(__FILE__, line, "for %s got \"%s\", want \"%s\"", name, buf, subject);
  }
  tcli_free(c);
}

static void expect_served(int port, const char *name, const char *ca_pem, const char *subject, int line) {
  expect_served_mode(port, name, ca_pem, subject, TCP_VERIFY_FULL, line);
}

TEST(tlsf_sni_add_cert) {
  pems m;
  char dir[FX_PATH], bcert[FX_PATH + 16], bkey[FX_PATH + 16];
  tsrv *s;
  int port;

  if (!need_sni_certs()) return;
  m = load_pems(&fx()->main);
  s = echo_server();
  fx_tempdir(dir, sizeof dir);
  snprintf(bcert, sizeof bcert, "%s/b.pem", dir);
  snprintf(bkey, sizeof bkey, "%s/b.key", dir);
  write_file(bcert, B_PEM);
  write_file(bkey, B_KEY);
  /* Before the start, from PEM; after it, from files. */
  CHECK_EQ(tcp_server_add_cert(s->s, "A.Example", A_PEM, A_KEY, 1), 0);
  port = started(s, tls_server_start_pem(s->s, 0, NULL, m.server_cert, m.server_key));
  CHECK_EQ(tcp_server_add_cert(s->s, "*.b.example", bcert, bkey, 0), 0);

  expect_served(port, "a.example", A_PEM, A_SUBJECT, __LINE__);
  expect_served(port, "x.b.example", B_PEM, B_SUBJECT, __LINE__);
  expect_served(port, "localhost", m.ca, SERVER_SUBJECT, __LINE__);
  /* One label only: the default certificate (not valid for the name, so
   * checked for the chain only). */
  expect_served_mode(port, "y.x.b.example", m.ca, SERVER_SUBJECT, TCP_VERIFY_CA, __LINE__);

  /* Replaced for the same host. */
  CHECK_EQ(tcp_server_add_cert(s->s, "a.example", B_PEM, B_KEY, 1), 0);
  {
    tcli *c = line_client();
    REQUIRE_EQ(tcp_client_set_option(c->c, TCP_OPT_VERIFY_MODE, TCP_VERIFY_CA), 0);
    REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_SERVER_NAME, "a.example"), 0);
    client_ok(c, tls_client_start_pem(c->c, "127.0.0.1", port, B_PEM, NULL, NULL));
    tcli_free(c);
  }

  /* Bad hosts and pairs. */
  CHECK_EQ(tcp_server_add_cert(s->s, "", A_PEM, A_KEY, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_add_cert(s->s, NULL, A_PEM, A_KEY, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_add_cert(s->s, "a*b.example", A_PEM, A_KEY, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_add_cert(s->s, "*.", A_PEM, A_KEY, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_add_cert(s->s, "a.example/x", A_PEM, A_KEY, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_add_cert(s->s, "c.example", A_PEM, B_KEY, 1), TCP_START_WRONG_KEY);
  CHECK_EQ(tcp_server_add_cert(s->s, "c.example", "junk", A_KEY, 1), TCP_START_WRONG_CERT);
  CHECK_EQ(tcp_server_add_cert(s->s, "c.example", A_PEM, NULL, 1), TCP_START_WRONG_KEY);
  CHECK_EQ(tcp_server_add_cert(s->s, "c.example", NULL, NULL, 1), TCP_START_WRONG_CERT);
  CHECK_EQ(tcp_server_add_cert(s->s, "c.example", fx()->missing, bkey, 0), TCP_START_WRONG_CERT_PATH);
  CHECK_EQ(tcp_server_add_cert(s->s, "c.example", bcert, fx()->missing, 0), TCP_START_WRONG_KEY_PATH);
  CHECK_EQ(tcp_errcode(), TCP_START_WRONG_KEY_PATH);
  tsrv_free(s);
  free_pems(&m);
}

TEST(tlsf_reload_cert) {
  tsrv *s;
  tcli *old;
  tcp_server *stopped;
  char *before, *after, buf[256];
  int port, n;

  if (!need_sni_certs()) return;
  s = echo_server();
  old = line_client();
  stopped = tcp_server_new();
  port = started(s, tls_server_start_pem(s->s, 0, NULL, A_PEM, A_KEY));
  REQUIRE_EQ(tcp_client_set_option_str(old->c, TCP_OPT_TLS_SERVER_NAME, "a.example"), 0);
  client_ok(old, tls_client_start_pem(old->c, "127.0.0.1", port, A_PEM, NULL, NULL));
  round_trip(old, "before", 1);

  CHECK_EQ(tcp_server_reload_cert(s->s, B_PEM, B_KEY, 1), 0);
  n = tcp_server_tls_certificate(s->s, NULL, 0);
  CHECK_EQ(n, (int)strlen(B_PEM));
  expect_served(port, "x.b.example", B_PEM, B_SUBJECT, __LINE__);
  /* The connection made before keeps its session. */
  round_trip(old, "still", 2);
  CHECK_EQ(cli_str(old->c, TCP_TLS_PEER_SUBJECT, buf, sizeof buf), (int)strlen(A_SUBJECT));
  CHECK_STR(buf, A_SUBJECT);

  /* A failed reload changes nothing. */
  CHECK_EQ(tcp_server_reload_cert(s->s, A_PEM, B_KEY, 1), TCP_START_WRONG_KEY);
  CHECK_EQ(tcp_server_reload_cert(s->s, A_PEM, NULL, 1), TCP_START_WRONG_KEY);
  CHECK_EQ(tcp_server_reload_cert(s->s, fx()->missing, fx()->missing, 0), TCP_START_WRONG_CERT_PATH);
  CHECK_EQ(tcp_server_tls_certificate(s->s, NULL, 0), (int)strlen(B_PEM));
  /* Both NULL: a new self-signed certificate. */
  CHECK_EQ(tcp_server_reload_cert(s->s, NULL, NULL, 0), 0);
  before = malloc(4096);
  after = malloc(4096);
  REQUIRE(before && after);
  tcp_server_tls_certificate(s->s, before, 4096);
  CHECK(strcmp(before, B_PEM) != 0);
  CHECK_EQ(tcp_server_reload_cert(s->s, NULL, NULL, 1), 0);
  tcp_server_tls_certificate(s->s, after, 4096);
  CHECK(strcmp(before, after) != 0);
  expect_served(port, "localhost", after, "CN=localhost,O=tcpgo self-signed", __LINE__);

  /* Not running. */
  CHECK_EQ(tcp_server_reload_cert(stopped, A_PEM, A_KEY, 1), TCP_ERR_NOT_RUNNING);
  tcp_server_stop(s->s);
  CHECK_EQ(tcp_server_reload_cert(s->s, A_PEM, A_KEY, 1), TCP_ERR_NOT_RUNNING);
  tcp_server_free(stopped);
  free(before);
  free(after);
  tcli_free(old);
  tsrv_free(s);
}

/* ---- STARTTLS ------------------------------------------------------------------- */

/* A plain line server with STARTTLS material (the main PKI's server pair,
 * from files) that upgrades on "STARTTLS" with the reply "GO". */
static tsrv *starttls_server(int *port) {
  const pki *m = &fx()->main;
  tsrv *s = echo_server();
  s->starttls_word = "STARTTLS";
  s->starttls_reply = "GO";
  REQUIRE_EQ(tcp_server_set_starttls(s->s, NULL, m->server_cert, m->server_key, 0), 0);
  *port = started(s, tcp_server_start(s->s, 0));
  return s;
}

/* The server upgrades with a reply; the client upgrades from its message
 * callback on that reply; established runs again; data afterwards goes
 * through TLS. */
TEST(tlsf_starttls_from_callbacks) {
  tsrv *s;
  tcli *c = line_client();
  tcp_tls_info info;
  char buf[256];
  int port, id;

  s = starttls_server(&port);
  c->starttls_on = "GO";
  c->st_ca = fx()->main.ca;
  client_ok(c, tcp_client_start(c->c, "127.0.0.1", port));
  round_trip(c, "plain hello", 1);
  LOCKED(&c->m, CHECK_STR(c->msgs[0], "echo plain hello"));
  CHECK_EQ(tcp_client_tls_info(c->c, &info, sizeof info), TCP_ERR_NO_FIELD);
  id = s->est_ids[0];
  CHECK_EQ(tcp_server_tls_info(s->s, id, &info, sizeof info), TCP_ERR_NO_FIELD);

  CHECK_EQ(tcp_client_send_line(c->c, "STARTTLS"), 0);
  /* The client's upgrade ends in its connect callback with attempt 0. */
  REQUIRE_WAIT(&c->m, c->connects == 1);
  LOCKED(&c->m, {
    CHECK_EQ(c->starttls_calls, 1);
    CHECK_EQ(c->starttls_rc, 0);
    CHECK_EQ(c->connect_attempt[0], 0);
    CHECK_EQ(c->connect_result[0], TCP_START_OK);
    CHECK_EQ(c->connect_info_rc, 0);
    CHECK_EQ(c->connect_info.upgraded, 1);
    CHECK_STR(c->msgs[1], "GO");
  });
  /* The server's established ran again for the same id, upgraded. */
  REQUIRE_WAIT(&s->m, s->established == 2);
  LOCKED(&s->m, {
    CHECK_EQ(s->starttls_rc, 0);
    CHECK_EQ(s->est_ids[1], id);
    CHECK_EQ(s->est_info_rc[0], TCP_ERR_NO_FIELD);
    CHECK_EQ(s->est_info_rc[1], 0);
    CHECK_EQ(s->est_info[1].upgraded, 1);
    CHECK_EQ(s->est_info[1].version, TCP_TLS_1_3);
  });
  round_trip(c, "secret", 3);
  LOCKED(&c->m, CHECK_STR(c->msgs[2], "echo secret"));
  CHECK_EQ(tcp_client_tls_info(c->c, &info, sizeof info), 0);
  CHECK_EQ(info.upgraded, 1);
  CHECK_EQ(info.verify_result, TCP_CERT_OK);
  CHECK_EQ(cli_str(c->c, TCP_TLS_PEER_SUBJECT, buf, sizeof buf), (int)strlen(SERVER_SUBJECT));
  CHECK_EQ(tcp_server_tls_info(s->s, id, &info, sizeof info), 0);
  CHECK_EQ(info.upgraded, 1);
  /* Already TLS: another upgrade is refused on both sides. */
  CHECK_EQ(tcp_server_starttls(s->s, id, NULL, 0), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_starttls(c->c, fx()->main.ca, NULL, NULL, 0), TCP_ERR_INVALID_ARG);
  tcli_free(c);
  CHECK_WAIT(&s->m, s->closed == 1);
  LOCKED(&s->m, CHECK_EQ(s->errors, 0));
  tsrv_free(s);
}

/* The client upgrades from the main thread once the reply arrived: the call
 * waits for the handshake; the connect callback is not involved. PEM CA. */
TEST(tlsf_starttls_client_main_thread) {
  pems m = load_pems(&fx()->main);
  tsrv *s;
  tcli *c = line_client();
  tcp_tls_info info;
  int port;

  s = starttls_server(&port);
  client_ok(c, tcp_client_start(c->c, "127.0.0.1", port));
  CHECK_EQ(tcp_client_send_line(c->c, "STARTTLS"), 0);
  REQUIRE_WAIT(&c->m, c->messages == 1);
  CHECK_EQ(tcp_client_starttls(c->c, m.ca, NULL, NULL, 1), 0);
  CHECK_EQ(tcp_client_tls_info(c->c, &info, sizeof info), 0);
  CHECK_EQ(info.upgraded, 1);
  round_trip(c, "after", 2);
  LOCKED(&c->m, { CHECK_STR(c->msgs[1], "echo after"); CHECK_EQ(c->connects, 0); });
  CHECK_WAIT(&s->m, s->established == 2);
  tcli_free(c);
  tsrv_free(s);
  free_pems(&m);
}

/* A server certificate the client does not trust: from a callback, the
 * connect callback gets attempt 0 with TCP_START_CONNECT_INIT, then error
 * and closed; the server reports TCP_ERR_HANDSHAKE and closed. */
TEST(tlsf_starttls_client_rejects) {
  tsrv *s;
  tcli *c = line_client();
  int port;

  s = starttls_server(&port);
  c->starttls_on = "GO";
  c->st_ca = fx()->other.ca;
  client_ok(c, tcp_client_start(c->c, "127.0.0.1", port));
  CHECK_EQ(tcp_client_send_line(c->c, "STARTTLS"), 0);
  REQUIRE_WAIT(&c->m, c->closed == 1);
  LOCKED(&c->m, {
    CHECK_EQ(c->starttls_rc, 0);
    CHECK_EQ(c->connects, 1);
    CHECK_EQ(c->connect_attempt[0], 0);
    CHECK_EQ(c->connect_result[0], TCP_START_CONNECT_INIT);
    CHECK_EQ(c->errors, 1);
  });
  CHECK_WAIT(&s->m, s->closed == 1);
  LOCKED(&s->m, { CHECK_EQ(s->established, 1); CHECK_EQ(s->errors, 1); CHECK_EQ(s->last_error_code, TCP_ERR_HANDSHAKE); });

  /* From the main thread the call returns the start code. */
  tcli_free(c);
  c = line_client();
  client_ok(c, tcp_client_start(c->c, "127.0.0.1", port));
  CHECK_EQ(tcp_client_send_line(c->c, "STARTTLS"), 0);
  REQUIRE_WAIT(&c->m, c->messages == 1);
  CHECK_EQ(tcp_client_starttls(c->c, fx()->other.ca, NULL, NULL, 0), TCP_START_CONNECT_INIT);
  CHECK_CLIENT_ERROR_TEXT(c->c);
  CHECK_WAIT(&c->m, c->closed == 1);
  LOCKED(&c->m, CHECK_EQ(c->connects, 0));
  tcli_free(c);
  tsrv_free(s);
}

TEST(tlsf_starttls_misuse) {
  const pki *m = &fx()->main;
  pems pm = load_pems(m);
  tsrv *s = echo_server(), *tls = echo_server();
  tcli *c = line_client(), *tc = line_client();
  int port, id;

  /* Material: bad files give their start codes. */
  CHECK_EQ(tcp_server_set_starttls(s->s, fx()->missing, m->server_cert, m->server_key, 0), TCP_START_WRONG_CA_PATH);
  CHECK_EQ(tcp_server_set_starttls(s->s, NULL, fx()->missing, m->server_key, 0), TCP_START_WRONG_CERT_PATH);
  CHECK_EQ(tcp_server_set_starttls(s->s, NULL, m->server_cert, fx()->garbage, 0), TCP_START_WRONG_KEY);
  CHECK_EQ(tcp_server_set_starttls(s->s, "junk", pm.server_cert, pm.server_key, 1), TCP_START_WRONG_CA);
  CHECK_EQ(tcp_server_set_starttls(s->s, NULL, pm.server_cert, NULL, 1), TCP_START_WRONG_KEY);
  /* No material: the upgrade is refused. */
  port = started(s, tcp_server_start(s->s, 0));
  client_ok(c, tcp_client_start(c->c, "127.0.0.1", port));
  round_trip(c, "x", 1);
  id = s->est_ids[0];
  CHECK_EQ(tcp_server_starttls(s->s, id, "GO", 2), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_starttls(s->s, id + 1000, "GO", 2), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_starttls(s->s, id, NULL, 5), TCP_ERR_INVALID_ARG);
  /* Set while running (self-signed): now it upgrades. */
  CHECK_EQ(tcp_server_set_starttls(s->s, NULL, NULL, NULL, 1), 0);
  CHECK_GT(tcp_server_tls_certificate(s->s, NULL, 0), 0);
  /* A TLS server's connections already use TLS. */
  port = started(tls, tls_server_start(tls->s, 0, NULL, m->server_cert, m->server_key));
  client_ok(tc, tls_client_start(tc->c, "127.0.0.1", port, m->ca, NULL, NULL));
  round_trip(tc, "y", 1);
  CHECK_EQ(tcp_server_starttls(tls->s, tls->est_ids[0], NULL, 0), TCP_ERR_INVALID_ARG);
  /* A client's own material is checked first. */
  CHECK_EQ(tcp_client_starttls(c->c, fx()->missing, NULL, NULL, 0), TCP_START_WRONG_CA_PATH);
  CHECK_EQ(tcp_client_starttls(c->c, NULL, pm.client_cert, NULL, 1), TCP_START_WRONG_KEY);
  /* After stop. */
  tcp_client_stop(c->c);
  CHECK_EQ(tcp_client_starttls(c->c, m->ca, NULL, NULL, 0), TCP_ERR_NOT_RUNNING);
  tcp_server_stop(s->s);
  CHECK_EQ(tcp_server_starttls(s->s, id, NULL, 0), TCP_ERR_NO_CLIENT);
  tcli_free(c);
  tcli_free(tc);
  tsrv_free(s);
  tsrv_free(tls);
  free_pems(&pm);
}

/* With TCP_OPT_EVENT_QUEUE on both sides (as the Python binding uses it):
 * the server's upgrade gives a second TCP_EVENT_ESTABLISHED record for the
 * same id; the client's upgrade from the polling thread returns its result
 * and queues no record. */
typedef struct eq_side {
  int established[8]; /* per record: the ids */
  int n_established;
  int starttls_id, starttls_rc;
  char last_msg[MSG_MAX];
  int messages;
} eq_side;

/* Poll once (up to 50 ms) and handle the records; s != NULL: a server
 * that upgrades on "STARTTLS" and echoes everything else. */
static void eq_pump(tcp_server *s, tcp_client *c, eq_side *e) {
  static unsigned char buf[65536];
  size_t used = 0, off = 0;
  int n = s ? tcp_server_poll(s, buf, sizeof buf, &used, 50) : tcp_client_poll(c, buf, sizeof buf, &used, 50);
  REQUIRE(n >= 0);
  while (n-- > 0) {
    int kind, id;
    unsigned len;
    char text[MSG_MAX];
    memcpy(&kind, buf + off, 4);
    memcpy(&id, buf + off + 4, 4);
    memcpy(&len, buf + off + 12, 4);
    snprintf(text, sizeof text, "%.*s", (int)len, (const char *)buf + off + TCP_EVENT_HEADER_SIZE);
    off += TCP_EVENT_HEADER_SIZE + len;
    if (kind == TCP_EVENT_ESTABLISHED && e->n_established < 8) e->established[e->n_established++] = id;
    if (kind != TCP_EVENT_MESSAGE) continue;
    e->messages++;
    snprintf(e->last_msg, sizeof e->last_msg, "%s", text);
    if (s && strcmp(text, "STARTTLS") == 0) {
      e->starttls_id = id;
      e->starttls_rc = tcp_server_starttls(s, id, "GO", 2);
    } else if (s) {
      char reply[MSG_MAX + 8];
      snprintf(reply, sizeof reply, "echo %s", text);
      CHECK_EQ(tcp_server_send_line(s, id, reply), 0);
    }
  }
}

#define EQ_PUMP_UNTIL(s, c, e, cond)                                          \
  do {                                                                        \
    long long dl_ = now_ms() + WAIT_MS;                                       \
    while (!(cond) && now_ms() < dl_) eq_pump((s), (c), (e));                 \
    if (!(cond)) h_fail(__FILE__, __LINE__, "timed out waiting for %s", #cond); \
  } while (0)

TEST(tlsf_starttls_event_queue) {
  const pki *m = &fx()->main;
  tcp_server *s = tcp_server_new_fragmented('\n', 0);
  tcp_client *c = tcp_client_new_fragmented('\n', 0);
  eq_side se, ce;
  tcp_tls_info info;

  memset(&se, 0, sizeof se);
  memset(&ce, 0, sizeof ce);
  REQUIRE_EQ(tcp_server_set_option(s, TCP_OPT_EVENT_QUEUE, 1), 0);
  REQUIRE_EQ(tcp_client_set_option(c, TCP_OPT_EVENT_QUEUE, 1), 0);
  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  REQUIRE_EQ(tcp_server_set_starttls(s, NULL, m->server_cert, m->server_key, 0), 0);
  REQUIRE_EQ(tcp_server_start(s, 0), 0);
  REQUIRE_EQ(tcp_client_start(c, "127.0.0.1", tcp_server_port(s)), 0);
  EQ_PUMP_UNTIL(s, NULL, &se, se.n_established == 1);
  CHECK_EQ(tcp_client_send_line(c, "STARTTLS"), 0);
  EQ_PUMP_UNTIL(s, NULL, &se, se.starttls_id != 0);
  CHECK_EQ(se.starttls_rc, 0);
  CHECK_EQ(se.starttls_id, se.established[0]);
  EQ_PUMP_UNTIL(NULL, c, &ce, ce.messages == 1);
  CHECK_STR(ce.last_msg, "GO");
  CHECK_EQ(tcp_client_starttls(c, m->ca, NULL, NULL, 0), 0);
  CHECK_EQ(tcp_client_tls_info(c, &info, sizeof info), 0);
  CHECK_EQ(info.upgraded, 1);
  EQ_PUMP_UNTIL(s, NULL, &se, se.n_established == 2);
  CHECK_EQ(se.established[1], se.established[0]);
  CHECK_EQ(tcp_server_tls_info(s, se.established[0], &info, sizeof info), 0);
  CHECK_EQ(info.upgraded, 1);
  CHECK_EQ(tcp_client_send_line(c, "after"), 0);
  EQ_PUMP_UNTIL(s, NULL, &se, se.messages == 2);
  EQ_PUMP_UNTIL(NULL, c, &ce, ce.messages == 2);
  CHECK_STR(ce.last_msg, "echo after");
  CHECK_EQ(ce.n_established, 0);
  tcp_client_free(c);
  tcp_server_free(s);
}

/* ---- bad arguments -------------------------------------------------------------- */

static int cert_never(void *ud, const tcp_cert_info *info) {
  (void)ud;
  (void)info;
  return 0;
}

TEST(tlsf_bad_args) {
  tcp_server *s = tcp_server_new();
  tcp_client *c = tcp_client_new();
  tcp_tls_info info;
  char buf[64];

  CHECK_EQ(tls_server_start_pem(NULL, 0, NULL, NULL, NULL), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tls_client_start_pem(NULL, "127.0.0.1", 1, NULL, NULL, NULL), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_tls_certificate(NULL, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_tls_info(NULL, 1, &info, sizeof info), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_tls_info(NULL, &info, sizeof info), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_tls_str(NULL, 1, TCP_TLS_ALPN, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_tls_str(NULL, TCP_TLS_ALPN, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_add_cert(NULL, "a.example", "cert", "key", 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_reload_cert(NULL, "cert", "key", 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_starttls(NULL, NULL, NULL, NULL, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_starttls(NULL, 1, NULL, 0), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_starttls(NULL, NULL, NULL, NULL, 0), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_errcode(), TCP_ERR_INVALID_ARG);
  tcp_server_set_on_cert(NULL, cert_never, NULL); /* ignored */
  tcp_client_set_on_cert(NULL, cert_never, NULL);
  /* A freed handle. */
  {
    tcp_server *gone = tcp_server_new();
    tcp_server_free(gone);
    CHECK_EQ(tcp_server_reload_cert(gone, NULL, NULL, 0), TCP_ERR_INVALID_ARG);
    tcp_server_set_on_cert(gone, cert_never, NULL);
  }
  /* Not started yet. */
  CHECK_EQ(tcp_server_tls_info(s, 1, &info, sizeof info), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_client_starttls(c, NULL, NULL, NULL, 0), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_server_starttls(s, 1, NULL, 0), TCP_ERR_NO_CLIENT);
  /* Options: ids, values, types. */
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_TLS_RESUMPTION, 0), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_TLS_RESUMPTION, 7), 0);
  CHECK_EQ(tcp_client_set_option(c, 32, 1), TCP_ERR_UNKNOWN_OPTION);
  CHECK_EQ(tcp_client_set_option_str(c, 106, "x"), TCP_ERR_UNKNOWN_OPTION);
  CHECK_EQ(tcp_client_set_option_str(c, TCP_OPT_TLS_ALPN, NULL), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_set_option_str(c, TCP_OPT_TLS_SERVER_NAME, NULL), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_option_str(s, TCP_OPT_TLS_KEYLOG_FILE, NULL), TCP_ERR_INVALID_ARG);
  {
    char longp[300];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    CHECK_EQ(tcp_client_set_option_str(c, TCP_OPT_TLS_ALPN, longp), TCP_ERR_INVALID_ARG);
  }
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_TLS_SYSTEM_CAS, 1), 0);
  CHECK_EQ(tcp_client_set_option_str(c, TCP_OPT_TLS_ALPN, "h2"), 0);
  CHECK_EQ(tcp_client_set_option_str(c, TCP_OPT_TLS_SERVER_NAME, ""), 0);
  CHECK_EQ(tcp_client_set_option_str(c, TCP_OPT_TLS_KEYLOG_FILE, ""), 0);
  /* Running: TLS options are refused like every option. */
  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  REQUIRE_EQ(tls_server_start_pem(s, 0, NULL, NULL, NULL), 0);
  CHECK_EQ(tls_server_start_pem(s, 0, NULL, NULL, NULL), TCP_ERR_ALREADY_RUNNING);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_TLS_MAX_VERSION, TCP_TLS_1_3), TCP_ERR_ALREADY_RUNNING);
  CHECK_EQ(tcp_server_set_option_str(s, TCP_OPT_TLS_ALPN, "h2"), TCP_ERR_ALREADY_RUNNING);
  tcp_server_free(s);
  tcp_client_free(c);
}

/* ---- interop with the openssl command line tools ------------------------------ */

#define OPENSSL_TIMEOUT_MS 15000

/* Spawn argv with stdin and stdout+stderr on pipes; returns the pid (or -1)
 * and the parent's ends. */
static pid_t spawn_piped(char *const argv[], int *to_child, int *from_child) {
  posix_spawn_file_actions_t fa;
  int in[2], out[2], rc;
  pid_t pid;
  struct sigaction ign;
  /* A write to a child that exited must not kill the test (SIG_IGN is
   * allowed after the library loaded; SIG_DFL is not). */
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, NULL);
  REQUIRE(pipe(in) == 0);
  REQUIRE(pipe(out) == 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    return -1;
  }
  *to_child = in[1];
  *from_child = out[0];
  return pid;
}

/* One read from fd into out (NUL-terminated) within the deadline; 0 at
 * EOF, timeout, error or a full buffer. */
static int read_some(int fd, char *out, size_t cap, size_t *used, long long deadline) {
  struct pollfd p = {fd, POLLIN, 0};
  long long left = deadline - now_ms();
  ssize_t n;
  if (left <= 0 || poll(&p, 1, (int)left) <= 0 || *used + 1 >= cap) return 0;
  n = read(fd, out + *used, cap - 1 - *used);
  if (n <= 0) return 0;
  *used += (size_t)n;
  out[*used] = '\0';
  return 1;
}

/* Read until EOF (1) or the deadline (0). */
static int read_to_eof(int fd, char *out, size_t cap, size_t *used, long long deadline) {
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    long long left = deadline - now_ms();
    ssize_t n;
    if (left <= 0 || poll(&p, 1, (int)left) <= 0) return 0;
    if (*used + 1 >= cap) { /* keep reading, keep the start */
      char sink[4096];
      n = read(fd, sink, sizeof sink);
    } else {
      n = read(fd, out + *used, cap - 1 - *used);
      if (n > 0) {
        *used += (size_t)n;
        out[*used] = '\0';
      }
    }
    if (n <= 0) return n == 0;
  }
}

/* Run argv with input on its stdin; its output goes to out. 0 when it ended
 * in time, -1 when it had to be killed, -2 when it could not start. */
static int run_tool(char *const argv[], const char *input, char *out, size_t cap) {
  int to, from, st, done;
  size_t used = 0;
  pid_t pid = spawn_piped(argv, &to, &from);
  out[0] = '\0';
  if (pid < 0) return -2;
  if (input) (void)!write(to, input, strlen(input));
  close(to);
  done = read_to_eof(from, out, cap, &used, now_ms() + OPENSSL_TIMEOUT_MS);
  if (!done) kill(pid, SIGKILL);
  close(from);
  waitpid(pid, &st, 0);
  return done ? 0 : -1;
}

static int have_openssl(void) {
  char *argv[] = {"openssl", "version", NULL};
  char out[256];
  if (run_tool(argv, NULL, out, sizeof out) == 0 && strncmp(out, "OpenSSL", 7) == 0) return 1;
  printf("    skipped: no openssl CLI on PATH\n");
  return 0;
}

/* openssl s_client to 127.0.0.1:port with the extra arguments (NULL-ended),
 * sending input; -ign_eof: it reads until the server closes. */
static void s_client(int port, const char *input, char *out, size_t cap, ...) {
  char *argv[32], addr[32];
  int n = 0, rc;
  va_list ap;
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  argv[n++] = "openssl";
  argv[n++] = "s_client";
  argv[n++] = "-connect";
  argv[n++] = addr;
  argv[n++] = "-ign_eof";
  va_start(ap, cap);
  while (n < 31 && (argv[n] = va_arg(ap, char *)) != NULL) n++;
  va_end(ap);
  argv[n] = NULL;
  rc = run_tool(argv, input, out, cap);
  if (rc != 0) h_fail(__FILE__, __LINE__, "openssl s_client did not finish (%d):\n%s", rc, out);
}

#define OUT_CAP 65536

/* openssl s_client against our server: ALPN (the server's preference) and
 * SNI (the certificate of the name asked for). */
TEST(tlsf_openssl_client_alpn_sni) {
  const pki *m = &fx()->main;
  char dir[FX_PATH], apem[FX_PATH + 16], *out = malloc(OUT_CAP), buf[64];
  tsrv *s;
  int port, id;

  REQUIRE(out != NULL);
  if (!need_sni_certs()) {
    free(out);
    return;
  }
  fx_tempdir(dir, sizeof dir);
  snprintf(apem, sizeof apem, "%s/a.pem", dir);
  write_file(apem, A_PEM);
  s = echo_server();
  s->close_after_echo = 1;
  REQUIRE_EQ(tcp_server_set_option_str(s->s, TCP_OPT_TLS_ALPN, "x-test,h2"), 0);
  REQUIRE_EQ(tcp_server_add_cert(s->s, "a.example", A_PEM, A_KEY, 1), 0);
  port = started(s, tls_server_start(s->s, 0, NULL, m->server_cert, m->server_key));

  s_client(port, "ping\n", out, OUT_CAP, "-alpn", "h2,x-test", "-servername", "a.example",
           "-CAfile", apem, "-verify_return_error", "-verify_hostname", "a.example", (char *)NULL);
  CHECK(strstr(out, "Verification: OK") != NULL);
  CHECK(strstr(out, "ALPN protocol: x-test") != NULL);
  CHECK(strstr(out, "CN = a.example") != NULL);
  CHECK(strstr(out, "echo ping") != NULL);
  REQUIRE_WAIT(&s->m, s->closed == 1);
  id = s->est_ids[0];
  (void)id;
  LOCKED(&s->m, {
    CHECK_STR(s->msgs[0], "ping");
    CHECK_EQ(s->est_info_rc[0], 0);
  });

  /* Without a name: the default certificate; an ALPN the server does not
   * accept fails the handshake. */
  s_client(port, "ping\n", out, OUT_CAP, "-noservername", "-CAfile", m->ca, "-verify_return_error",
           (char *)NULL);
  CHECK(strstr(out, "CN = tcpgo server") != NULL);
  CHECK(strstr(out, "echo ping") != NULL);
  s_client(port, "ping\n", out, OUT_CAP, "-alpn", "nope", "-CAfile", m->ca, (char *)NULL);
  CHECK(strstr(out, "ALPN protocol") == NULL);
  CHECK(strstr(out, "no application protocol") != NULL);
  CHECK_WAIT(&s->m, s->errors_id0 == 1);
  LOCKED(&s->m, CHECK_EQ(s->established, 2));
  (void)buf;
  tsrv_free(s);
  free(out);
}

/* openssl s_client resumes its session with our server (-sess_out, -sess_in). */
TEST(tlsf_openssl_client_resumption) {
  const pki *m = &fx()->main;
  char dir[FX_PATH], sess[FX_PATH + 16], *out = malloc(OUT_CAP);
  tsrv *s;
  int port;

  REQUIRE(out != NULL);
  if (!have_openssl()) {
    free(out);
    return;
  }
  fx_tempdir(dir, sizeof dir);
  snprintf(sess, sizeof sess, "%s/session.pem", dir);
  s = echo_server();
  s->close_after_echo = 1;
  port = started(s, tls_server_start(s->s, 0, m->ca, m->server_cert, m->server_key));
  s_client(port, "one\n", out, OUT_CAP, "-CAfile", m->ca, "-cert", m->client_cert, "-key", m->client_key,
           "-verify_return_error", "-sess_out", sess, (char *)NULL);
  CHECK(strstr(out, "New, TLSv1.3") != NULL);
  s_client(port, "two\n", out, OUT_CAP, "-CAfile", m->ca, "-cert", m->client_cert, "-key", m->client_key,
           "-verify_return_error", "-sess_in", sess, (char *)NULL);
  CHECK(strstr(out, "Reused, TLSv1.3") != NULL);
  CHECK(strstr(out, "echo two") != NULL);
  REQUIRE_WAIT(&s->m, s->closed == 2);
  LOCKED(&s->m, {
    CHECK_EQ(s->est_info[0].resumed, 0);
    CHECK_EQ(s->est_info[1].resumed, 1);
    CHECK_EQ(s->est_info[1].has_peer_cert, 1);
  });
  tsrv_free(s);
  free(out);
}

/* openssl s_client -starttls smtp against a tiny SMTP-like server on the C
 * API (CR/LF lines): greeting, EHLO, STARTTLS with "220", then TLS. */
TEST(tlsf_openssl_client_starttls_smtp) {
  const pki *m = &fx()->main;
  char *out = malloc(OUT_CAP);
  tsrv *s;
  int port, id;

  REQUIRE(out != NULL);
  if (!have_openssl()) {
    free(out);
    return;
  }
  s = tsrv_new(tcp_server_new_lines(NULL, 1024, TCP_OVERLONG_CLOSE));
  s->smtp = 1;
  s->echo = 1;
  s->close_after_echo = 1;
  s->starttls_word = "STARTTLS";
  s->starttls_reply = "220 2.0.0 Ready to start TLS";
  REQUIRE_EQ(tcp_server_set_starttls(s->s, NULL, m->server_cert, m->server_key, 0), 0);
  port = started(s, tcp_server_start(s->s, 0));
  s_client(port, "ping\n", out, OUT_CAP, "-starttls", "smtp", "-CAfile", m->ca, "-verify_return_error",
           "-verify_hostname", "localhost", (char *)NULL);
  CHECK(strstr(out, "Verification: OK") != NULL);
  CHECK(strstr(out, "New, TLSv1.3") != NULL);
  CHECK(strstr(out, "echo ping") != NULL);
  REQUIRE_WAIT(&s->m, s->closed == 1);
  LOCKED(&s->m, {
    id = s->est_ids[0];
    CHECK_EQ(s->established, 2);
    CHECK_EQ(s->est_ids[1], id);
    CHECK_EQ(s->est_info_rc[0], TCP_ERR_NO_FIELD);
    CHECK_EQ(s->est_info[1].upgraded, 1);
    CHECK_EQ(s->messages, 3);
    CHECK(strncmp(s->msgs[0], "EHLO ", 5) == 0);
    CHECK_STR(s->msgs[1], "STARTTLS");
    CHECK_STR(s->msgs[2], "ping");
    CHECK_EQ(s->starttls_rc, 0);
    CHECK_EQ(s->errors, 0);
  });
  tsrv_free(s);
  free(out);
}

/* Our client against openssl s_server: ALPN, SNI (-servername/-cert2) and
 * resumption. */
TEST(tlsf_openssl_server_alpn_sni_resumption) {
  const pki *m = &fx()->main;
  char dir[FX_PATH], apem[FX_PATH + 16], akey[FX_PATH + 16], out[8192], buf[256];
  char *argv[] = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", (char *)m->server_cert,
                  "-key", (char *)m->server_key, "-alpn", "x-test,h2", "-servername", "a.example",
                  "-cert2", apem, "-key2", akey, "-rev", NULL};
  tcli *c;
  tcp_tls_info info;
  size_t used = 0;
  int to, from, port = 0, st, i;
  pid_t pid;
  const char *p;

  if (!need_sni_certs()) return;
  fx_tempdir(dir, sizeof dir);
  snprintf(apem, sizeof apem, "%s/a.pem", dir);
  snprintf(akey, sizeof akey, "%s/a.key", dir);
  write_file(apem, A_PEM);
  write_file(akey, A_KEY);
  out[0] = '\0';
  pid = spawn_piped(argv, &to, &from);
  REQUIRE(pid > 0);
  {
    long long deadline = now_ms() + OPENSSL_TIMEOUT_MS;
    for (;;) {
      p = strstr(out, "ACCEPT 127.0.0.1:");
      if (p && strchr(p, '\n')) {
        port = atoi(p + strlen("ACCEPT 127.0.0.1:"));
        break;
      }
      if (!read_some(from, out, sizeof out, &used, deadline)) break;
    }
  }
  if (port <= 0) h_fail(__FILE__, __LINE__, "s_server did not start:\n%s", out);

  if (port > 0) {
    /* SNI: the name's certificate (s_server's -cert2 context has no ALPN). */
    c = line_client();
    REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_SERVER_NAME, "a.example"), 0);
    client_ok(c, tls_client_start_pem(c->c, "127.0.0.1", port, A_PEM, NULL, NULL));
    cli_str(c->c, TCP_TLS_PEER_SUBJECT, buf, sizeof buf);
    CHECK_STR(buf, A_SUBJECT);
    tcli_free(c);
    /* ALPN and resumption, without a name: the default certificate. */
    c = line_client();
    REQUIRE_EQ(tcp_client_set_option_str(c->c, TCP_OPT_TLS_ALPN, "x-other,h2"), 0);
    for (i = 0; i < 2; i++) {
      client_ok(c, tls_client_start(c->c, "127.0.0.1", port, m->ca, NULL, NULL));
      round_trip(c, "abc", i + 1); /* s_server -rev replies "cba"; the ticket comes first */
      LOCKED(&c->m, CHECK_STR(c->msgs[i], "cba"));
      CHECK_EQ(tcp_client_tls_info(c->c, &info, sizeof info), 0);
      CHECK_EQ(info.resumed, i);
      CHECK_EQ(cli_str(c->c, TCP_TLS_ALPN, buf, sizeof buf), 2);
      CHECK_STR(buf, "h2");
      cli_str(c->c, TCP_TLS_PEER_SUBJECT, buf, sizeof buf);
      CHECK_STR(buf, SERVER_SUBJECT);
      tcp_client_stop(c->c);
    }
    tcli_free(c);
  }
  close(to);
  kill(pid, SIGTERM);
  close(from);
  waitpid(pid, &st, 0);
}

const test_case tls_feature_tests[] = {
    TEST_ENTRY(tlsf_pem_start_mutual),
    TEST_ENTRY(tlsf_pem_start_codes),
    TEST_ENTRY(tlsf_self_signed_trusted_by_pem),
    TEST_ENTRY(tlsf_cert_cb_server_accepts_rejected),
    TEST_ENTRY(tlsf_cert_cb_server_refuses_good),
    TEST_ENTRY(tlsf_cert_cb_server_without_ca),
    TEST_ENTRY(tlsf_cert_cb_client_pin_and_refuse),
    TEST_ENTRY(tlsf_info_both_ends),
    TEST_ENTRY(tlsf_info_no_cert_and_plain),
    TEST_ENTRY(tlsf_max_version_1_2),
    TEST_ENTRY(tlsf_cipher_suites),
    TEST_ENTRY(tlsf_alpn_match_and_mismatch),
    TEST_ENTRY(tlsf_server_name_differs_from_address),
    TEST_ENTRY(tlsf_system_cas_option),
    TEST_ENTRY(tlsf_keylog_file),
    TEST_ENTRY(tlsf_resumption_default),
    TEST_ENTRY(tlsf_resumption_client_off),
    TEST_ENTRY(tlsf_resumption_server_off),
    TEST_ENTRY(tlsf_sni_add_cert),
    TEST_ENTRY(tlsf_reload_cert),
    TEST_ENTRY(tlsf_starttls_from_callbacks),
    TEST_ENTRY(tlsf_starttls_client_main_thread),
    TEST_ENTRY(tlsf_starttls_client_rejects),
    TEST_ENTRY(tlsf_starttls_misuse),
    TEST_ENTRY(tlsf_starttls_event_queue),
    TEST_ENTRY(tlsf_bad_args),
    TEST_ENTRY_TIMEOUT(tlsf_openssl_client_alpn_sni, 60),
    TEST_ENTRY_TIMEOUT(tlsf_openssl_client_resumption, 60),
    TEST_ENTRY_TIMEOUT(tlsf_openssl_client_starttls_smtp, 60),
    TEST_ENTRY_TIMEOUT(tlsf_openssl_server_alpn_sni_resumption, 60),
    TEST_END};
