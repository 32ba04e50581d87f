/*
 * test_api.c -- the parts of the API that need no connection: version,
 * tcp_strerror, options, NULL handles, tcp_generate_certs, and
 * tcp_set_max_cpus (with one echo at a single CPU).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

TEST(version_matches_header) {
  char text[32];
  snprintf(text, sizeof text, "%d.%d.%d", TCPGO_VERSION_MAJOR,
           TCPGO_VERSION_MINOR, TCPGO_VERSION_PATCH);
  CHECK_STR(text, TCPGO_VERSION);
  CHECK_EQ(TCPGO_VERSION_NUMBER, TCPGO_VERSION_MAJOR * 10000 +
                                     TCPGO_VERSION_MINOR * 100 +
                                     TCPGO_VERSION_PATCH);
  CHECK_STR(tcp_version(), TCPGO_VERSION);
  CHECK_EQ(tcp_version_number(), TCPGO_VERSION_NUMBER);
  /* A static string: the same pointer every time. */
  CHECK(tcp_version() == tcp_version());
}

TEST(strerror_every_code) {
  static const int codes[] = {
      TCP_START_OK, TCP_START_WRONG_PORT, TCP_START_SET_CONTEXT,
      TCP_START_WRONG_CA_PATH, TCP_START_WRONG_CERT_PATH,
      TCP_START_WRONG_KEY_PATH, TCP_START_WRONG_CA, TCP_START_WRONG_CERT,
      TCP_START_WRONG_KEY, TCP_START_CREATE_SOCKET, TCP_START_SET_SOCKET_OPT,
      TCP_START_BIND_PORT, TCP_START_LISTEN, TCP_START_CONNECT,
      TCP_START_CONNECT_INIT, TCP_ERR_ALREADY_RUNNING, TCP_ERR_INVALID_ARG,
      TCP_ERR_NO_CLIENT, TCP_ERR_NO_FIELD, TCP_ERR_NOT_RUNNING,
      TCP_ERR_INTERNAL, TCP_ERR_MESSAGE_TOO_LONG, TCP_ERR_IO,
      TCP_ERR_HANDSHAKE, TCP_ERR_BUFFER_TOO_SMALL, TCP_ERR_UNKNOWN_OPTION,
      TCP_ERR_TIMEOUT, TCP_ERR_CONTAINS_DELIMITER, TCP_ERR_QUEUE_FULL,
      TCP_ERR_FILE, TCP_ERR_MEMORY_BUDGET, TCP_ERR_REFUSED, TCP_ERR_PROXY,
      TCP_ERR_ACCEPT};
  static const int unknown[] = {1, 11, 44, 61, 99, -20, -100, 1 << 30, -(1 << 30)};
  size_t i;

  for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *t = tcp_strerror(codes[i]);
    if (!t || !*t || strcmp(t, "unknown error code") == 0)
      h_fail(__FILE__, __LINE__, "tcp_strerror(%d) = \"%s\"", codes[i],
             t ? t : "(null)");
  }
  for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
    CHECK_STR(tcp_strerror(unknown[i]), "unknown error code");
}

TEST(server_options) {
  tcp_server *s = tcp_server_new();
  char buf[8] = "x";
  REQUIRE(s != NULL);

  /* A fresh handle has no last error. */
  CHECK_EQ(tcp_server_last_error(s, buf, sizeof buf), 0);
  CHECK_STR(buf, "");

  /* Unknown ids, through both setters. */
  CHECK_EQ(tcp_server_set_option(s, 0, 1), TCP_ERR_UNKNOWN_OPTION);
  CHECK_EQ(tcp_server_set_option(s, 9999, 1), TCP_ERR_UNKNOWN_OPTION);
  CHECK_EQ(tcp_server_set_option_str(s, 9999, "x"), TCP_ERR_UNKNOWN_OPTION);
  /* An id of the other kind is refused too (which code is not specified). */
  CHECK_LT(tcp_server_set_option(s, TCP_OPT_BIND_ADDRESS, 1), 0);
  CHECK_LT(tcp_server_set_option_str(s, TCP_OPT_NODELAY, "1"), 0);

  /* Every documented server option with a valid value. */
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_3), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_REQUIRE_CLIENT_CERT, 0), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_REQUIRE_CLIENT_CERT, 1), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_CONNECT_TIMEOUT_MS, 5000), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_CONNECT_TIMEOUT_MS, 0), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_NODELAY, 0), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_NODELAY, 1), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_SEND_QUEUE_LIMIT, 0), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_SEND_QUEUE_LIMIT, 1 << 20), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_EVENT_QUEUE, 0), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_EVENT_QUEUE_LIMIT, 1 << 20), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_REUSEPORT, 0), 0);
  CHECK_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, ""), 0);

  /* Bad values. */
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_TLS_MIN_VERSION, 0x0301), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, NULL), TCP_ERR_INVALID_ARG);

  /* Running: refused, and the server is unchanged. */
  start_tcp(s);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_NODELAY, 1), TCP_ERR_ALREADY_RUNNING);
  CHECK_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"),
           TCP_ERR_ALREADY_RUNNING);
  CHECK_EQ(tcp_server_is_running(s), 1);

  /* Stopped again: accepted. */
  tcp_server_stop(s);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_NODELAY, 1), 0);
  CHECK_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  tcp_server_free(s);
}

TEST(client_options) {
  tcp_server *s = tcp_server_new();
  tcp_client *c = tcp_client_new();
  int port;
  REQUIRE(c != NULL);

  CHECK_EQ(tcp_client_set_option(c, 0, 1), TCP_ERR_UNKNOWN_OPTION);
  CHECK_EQ(tcp_client_set_option(c, 9999, 1), TCP_ERR_UNKNOWN_OPTION);
  CHECK_EQ(tcp_client_set_option_str(c, 9999, "x"), TCP_ERR_UNKNOWN_OPTION);

  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_2), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_TLS_MIN_VERSION, TCP_TLS_1_3), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_VERIFY_MODE, TCP_VERIFY_CA), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_VERIFY_MODE, TCP_VERIFY_FULL), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_CONNECT_TIMEOUT_MS, 3000), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_NODELAY, 1), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_SEND_QUEUE_LIMIT, 1 << 20), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_EVENT_QUEUE, 0), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_EVENT_QUEUE_LIMIT, 1 << 20), 0);

  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_VERIFY_MODE, 7), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_TLS_MIN_VERSION, 0x0200), TCP_ERR_INVALID_ARG);

  port = start_tcp(s);
  REQUIRE_EQ(tcp_client_start(c, "127.0.0.1", port), TCP_START_OK);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_NODELAY, 1), TCP_ERR_ALREADY_RUNNING);
  tcp_client_stop(c);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_NODELAY, 1), 0);

  tcp_client_free(c);
  tcp_server_free(s);
}

static void nop_established(void *ud, int id) { (void)ud; (void)id; }

/* last_error on a NULL handle: an error code, or a text saying what is
 * wrong (the header leaves it open); never garbage. */
static void check_null_last_error(int rc, const char *buf) {
  if (rc > 0)
    CHECK_EQ(strlen(buf), (size_t)rc);
  else
    CHECK(rc == 0 || rc == TCP_ERR_INVALID_ARG);
}

/* Every function with a NULL handle: an error or 0, never a crash. */
TEST(null_handles_are_safe) {
  char buf[64];
  size_t used = 123;
  int ids[4];

  CHECK_EQ(tcp_server_set_option(NULL, TCP_OPT_NODELAY, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_option_str(NULL, TCP_OPT_BIND_ADDRESS, "127.0.0.1"),
           TCP_ERR_INVALID_ARG);
  tcp_server_set_on_established(NULL, nop_established, NULL);
  tcp_server_set_on_message(NULL, NULL, NULL);
  tcp_server_set_on_closed(NULL, NULL, NULL);
  tcp_server_set_on_error(NULL, NULL, NULL);
  CHECK_EQ(tcp_server_start(NULL, 0), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tls_server_start(NULL, 0, fx()->main.ca, fx()->main.server_cert,
                            fx()->main.server_key),
           TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_port(NULL), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_is_running(NULL), 0);
  tcp_server_stop(NULL);
  CHECK_EQ(tcp_send_msg(NULL, 1, "x", 1), 0);
  CHECK_EQ(tcp_server_broadcast(NULL, "x", 1), 0);
  CHECK_EQ(tcp_server_close_client(NULL, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_client_ids(NULL, ids, 4), 0);
  CHECK_EQ(tcp_server_client_ip(NULL, 1, buf, sizeof buf), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_client_port(NULL, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(get_subj_part(NULL, 1, TCP_NID_COMMON_NAME, buf, sizeof buf),
           TCP_ERR_INVALID_ARG);
  check_null_last_error(tcp_server_last_error(NULL, buf, sizeof buf), buf);
  CHECK_EQ(tcp_server_poll(NULL, buf, sizeof buf, &used, 0), TCP_ERR_INVALID_ARG);
  tcp_server_free(NULL);

  CHECK_EQ(tcp_client_set_option(NULL, TCP_OPT_NODELAY, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_set_option_str(NULL, TCP_OPT_BIND_ADDRESS, "x"),
           TCP_ERR_INVALID_ARG);
  tcp_client_set_on_message(NULL, NULL, NULL);
  tcp_client_set_on_closed(NULL, NULL, NULL);
  tcp_client_set_on_error(NULL, NULL, NULL);
  CHECK_EQ(tcp_client_start(NULL, "127.0.0.1", 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tls_client_start(NULL, "127.0.0.1", 1, NULL, NULL, NULL),
           TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_is_running(NULL), 0);
  tcp_client_stop(NULL);
  CHECK_EQ(tcp_client_send(NULL, "x", 1), 0);
  CHECK_EQ(tcp_client_server_subj_part(NULL, TCP_NID_COMMON_NAME, buf, sizeof buf),
           TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_local_port(NULL), TCP_ERR_INVALID_ARG);
  check_null_last_error(tcp_client_last_error(NULL, buf, sizeof buf), buf);
  CHECK_EQ(tcp_client_poll(NULL, buf, sizeof buf, &used, 0), TCP_ERR_INVALID_ARG);
  tcp_client_free(NULL);

  CHECK_EQ(tcp_generate_certs(NULL, NULL), TCP_ERR_INVALID_ARG);
}

/* NULL pointers other than the handle: TCP_ERR_INVALID_ARG (or 0 for the
 * send functions), as the conventions say -- except a TLS server's NULL
 * cert or key, which the header documents as the v2 path codes 31 / 32. */
TEST(null_pointers_are_safe) {
  tcp_server *s = tcp_server_new();
  tcp_client *c = tcp_client_new();
  int port;

  /* Loopback even if a start were wrongly accepted. */
  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  CHECK_EQ(tls_server_start(s, 0, NULL, NULL, fx()->main.server_key),
           TCP_START_WRONG_CERT_PATH);
  CHECK_EQ(tls_server_start(s, 0, NULL, fx()->main.server_cert, NULL),
           TCP_START_WRONG_KEY_PATH);
  CHECK_EQ(tcp_server_is_running(s), 0);
  CHECK_EQ(tcp_client_start(c, NULL, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tls_client_start(c, NULL, 1, fx()->main.ca, NULL, NULL),
           TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_is_running(c), 0);

  port = start_tcp(s);
  REQUIRE_EQ(tcp_client_start(c, "127.0.0.1", port), TCP_START_OK);
  CHECK_EQ(tcp_client_send(c, NULL, 3), 0);
  CHECK_EQ(tcp_send_msg(s, 1, NULL, 3), 0);
  CHECK_EQ(tcp_server_broadcast(s, NULL, 3), 0);

  tcp_client_free(c);
  tcp_server_free(s);
}

static int file_mode(const char *dir, const char *name) {
  char path[FX_PATH + 32];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (stat(path, &st) != 0) return -1;
  return (int)(st.st_mode & 0777);
}

TEST(generate_certs) {
  static const char *const files[] = {"ca.pem", "server.pem", "client.pem"};
  static const char *const keys[] = {"ca.key", "server.key", "client.key"};
  char dir[FX_PATH], missing[FX_PATH + 16];
  size_t i;

  fx_tempdir(dir, sizeof dir);
  CHECK_EQ(tcp_generate_certs(dir, "localhost,127.0.0.1"), 0);
  for (i = 0; i < 3; i++) {
    if (file_mode(dir, files[i]) < 0)
      h_fail(__FILE__, __LINE__, "%s was not written", files[i]);
    if (file_mode(dir, keys[i]) != 0600)
      h_fail(__FILE__, __LINE__, "%s has mode %o, want 600", keys[i],
             (unsigned)file_mode(dir, keys[i]));
  }
  /* Overwriting an existing PKI works too. */
  CHECK_EQ(tcp_generate_certs(dir, ""), 0);

  snprintf(missing, sizeof missing, "%s/absent", dir);
  CHECK_EQ(tcp_generate_certs(missing, NULL), TCP_ERR_FILE);
  CHECK_EQ(tcp_generate_certs(NULL, NULL), TCP_ERR_INVALID_ARG);
}

TEST(max_cpus) {
  static const char *const msgs[] = {"one", "two", "three"};
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  int initial = tcp_set_max_cpus(0), def, i;
  server_rec *r;
  client_rec *cr;

  CHECK(initial >= 1);
  CHECK_EQ(tcp_set_max_cpus(0), initial); /* asking changes nothing */

  /* Too many is refused with a reason, and changes nothing. */
  CHECK_EQ(tcp_set_max_cpus(1025), TCP_ERR_INVALID_ARG);
  CHECK(strstr(errmsg_text(), "1024") != NULL);
  CHECK_EQ(tcp_set_max_cpus(0), initial);

  /* One CPU: connections, callbacks and sends work as before. */
  CHECK_EQ(tcp_set_max_cpus(1), initial);
  CHECK_EQ(tcp_set_max_cpus(0), 1);
  r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  for (i = 0; i < 3; i++) CHECK_EQ(tcp_client_send(cr->c, msgs[i], strlen(msgs[i])), 1);
  CHECK_WAIT(cr->m, cr->messages == 3);
  LOCKED(cr->m, for (i = 0; i < 3; i++) CHECK(msg_is(&cr->msgs, i, msgs[i])));
  client_rec_free(cr);
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r);

  /* Back to the default: the CPUs this process may use. */
  CHECK_EQ(tcp_set_max_cpus(-1), 1);
  def = tcp_set_max_cpus(0);
  CHECK(def >= 1 && def <= online);

  CHECK_EQ(tcp_set_max_cpus(initial), def);
}

const test_case api_tests[] = {
    TEST_ENTRY(version_matches_header),
    TEST_ENTRY(strerror_every_code),
    TEST_ENTRY(server_options),
    TEST_ENTRY(client_options),
    TEST_ENTRY(null_handles_are_safe),
    TEST_ENTRY(null_pointers_are_safe),
    TEST_ENTRY(generate_certs),
    TEST_ENTRY(max_cpus),
    TEST_END,
};
