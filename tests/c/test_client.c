/*
 * test_client.c -- the client: start codes, calls on a stopped client,
 * being closed by the server, stop from its own callback, restart,
 * oversized messages from the server, stop and free while receiving.
 */
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

TEST(client_wrong_port) {
  static const int ports[] = {0, -1, 65536, 70000, INT_MAX};
  tcp_client *c = tcp_client_new();
  size_t i;
  for (i = 0; i < sizeof ports / sizeof ports[0]; i++) {
    CHECK_EQ(tcp_client_start(c, "127.0.0.1", ports[i]), TCP_START_WRONG_PORT);
    CHECK_CLIENT_ERROR_TEXT(c);
    CHECK_EQ(tcp_client_is_running(c), 0);
  }
  CHECK_EQ(tls_client_start(c, "127.0.0.1", 0, fx()->main.ca, NULL, NULL),
           TCP_START_WRONG_PORT);
  tcp_client_free(c);
}

TEST(client_connect_refused) {
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  int fd, port = closed_port(&fd);

  CHECK_EQ(tcp_client_start(cr->c, "127.0.0.1", port), TCP_START_CONNECT);
  CHECK_CLIENT_ERROR_TEXT(cr->c);
  CHECK_EQ(tcp_client_is_running(cr->c), 0);
  CHECK_EQ(tls_client_start(cr->c, "127.0.0.1", port, fx()->main.ca,
                            fx()->main.client_cert, fx()->main.client_key),
           TCP_START_CONNECT);
  close(fd);
  client_rec_free(cr); /* no start succeeded: no closed callback either */
}

TEST(client_unresolvable_host) {
  tcp_client *c = tcp_client_new();
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_CONNECT_TIMEOUT_MS, 5000), 0);
  CHECK_EQ(tcp_client_start(c, "nonexistent.invalid", 80), TCP_START_CONNECT);
  CHECK_CLIENT_ERROR_TEXT(c);
  CHECK_EQ(tcp_client_is_running(c), 0);
  tcp_client_free(c);
}

TEST(client_start_twice) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  int port = start_tcp(r->s);

  connect_tcp(cr, port);
  CHECK_EQ(tcp_client_start(cr->c, "127.0.0.1", port), TCP_ERR_ALREADY_RUNNING);
  CHECK_EQ(tls_client_start(cr->c, "127.0.0.1", port, fx()->main.ca, NULL, NULL),
           TCP_ERR_ALREADY_RUNNING);
  /* Still connected, still usable. */
  CHECK_EQ(tcp_client_is_running(cr->c), 1);
  CHECK_EQ(tcp_client_send(cr->c, "abc", 3), 1);
  CHECK_WAIT(&r->m, r->established == 1 && r->conns[0].msgs.bytes == 3);
  CHECK_EQ(r->established, 1);

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(client_calls_when_not_running) {
  tcp_client *c = tcp_client_new_fragmented('\n', 0);
  char buf[16];
  CHECK_EQ(tcp_client_is_running(c), 0);
  CHECK_EQ(tcp_client_local_port(c), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_client_send(c, "x", 1), 0);
  CHECK_CLIENT_ERROR_TEXT(c);
  CHECK_LT(tcp_client_server_subj_part(c, TCP_NID_COMMON_NAME, buf, sizeof buf), 0);
  tcp_client_stop(c); /* safe if never started */
  tcp_client_stop(c);
  tcp_client_free(c);
}

TEST(client_closed_by_server) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);

  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  CHECK_EQ(tcp_server_close_client(r->s, server_rec_id(r, 0)), 0);
  CHECK_WAIT(cr->m, cr->closed == 1);
  CHECK_EQ(tcp_client_is_running(cr->c), 0);
  CHECK_EQ(tcp_client_send(cr->c, "x", 1), 0);
  CHECK_EQ(tcp_client_local_port(cr->c), TCP_ERR_NOT_RUNNING);
  tcp_client_stop(cr->c); /* after the server closed: no second closed */

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(client_stop_from_callback) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);

  r->echo = 1;
  cr->stop_on_message = 1;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_EQ(tcp_client_send(cr->c, "bye", 3), 1);
  /* stop() inside on_message returns; closed follows once, after it. */
  CHECK_WAIT(cr->m, cr->stop_returned == 1);
  CHECK_WAIT(cr->m, cr->closed == 1);
  CHECK_EQ(tcp_client_is_running(cr->c), 0);
  CHECK_WAIT(&r->m, r->closed == 1);

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(client_restart) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  int port, round;

  r->echo = 1;
  port = start_tcp(r->s);
  for (round = 1; round <= 3; round++) {
    connect_tcp(cr, port);
    CHECK_EQ(tcp_client_send(cr->c, "hi", 2), 1);
    CHECK_WAIT(cr->m, cr->messages == round);
    tcp_client_stop(cr->c);
    /* Exactly once per successful start. */
    CHECK_WAIT(cr->m, cr->closed == round);
  }
  CHECK_WAIT(&r->m, r->closed == 3);
  client_rec_free(cr);
  server_rec_free(r);
}

TEST(client_oversized_from_server) {
  char big[100];
  server_rec *r = server_rec_new(tcp_server_new()); /* continuous */
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 8), NULL);

  /* 100 bytes without a delimiter; the client allows 8. */
  memset(big, 'o', sizeof big);
  r->greeting = big;
  r->greeting_len = sizeof big;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(cr->m, cr->closed == 1);
  CHECK_EQ(cr->errors, 1);
  CHECK_EQ(cr->last_error_code, TCP_ERR_MESSAGE_TOO_LONG);
  CHECK_EQ(cr->messages, 0);
  CHECK_EQ(tcp_client_is_running(cr->c), 0);
  CHECK_WAIT(&r->m, r->closed == 1);

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(client_stop_while_receiving) {
  enum { CHUNK = 64 * 1024, CHUNKS = 256 };
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  char *chunk = calloc(1, CHUNK);
  int i, id;

  REQUIRE(chunk != NULL);
  cr->msgs.keep = 0;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  for (i = 0; i < CHUNKS; i++) tcp_send_msg(r->s, id, chunk, CHUNK);
  CHECK_WAIT(cr->m, cr->msgs.bytes >= 1024 * 1024);

  tcp_client_stop(cr->c);
  client_rec_mark_stopped(cr); /* no client callback may follow */
  LOCKED(cr->m, CHECK_EQ(cr->closed, 1));
  CHECK_WAIT(&r->m, r->closed == 1);

  client_rec_free(cr);
  server_rec_free(r);
  free(chunk);
}

TEST(client_free_while_connected) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  client_rec_free(cr); /* tcp_client_free stops: closed ran once (checked) */
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r);
}

const test_case client_tests[] = {
    TEST_ENTRY(client_wrong_port),
    TEST_ENTRY(client_connect_refused),
    TEST_ENTRY(client_unresolvable_host),
    TEST_ENTRY(client_start_twice),
    TEST_ENTRY(client_calls_when_not_running),
    TEST_ENTRY(client_closed_by_server),
    TEST_ENTRY(client_stop_from_callback),
    TEST_ENTRY(client_restart),
    TEST_ENTRY(client_oversized_from_server),
    TEST_ENTRY(client_stop_while_receiving),
    TEST_ENTRY(client_free_while_connected),
    TEST_END,
};
