/*
 * test_server.c -- the plain TCP server: both message modes, start codes,
 * look-ups, refused sends, oversized messages, ordering, many clients,
 * stop (from a callback, with data in flight), broadcast, close_client.
 *
 * Every test's recorders also check the callback contract (established
 * first, closed exactly once, no overlap, nothing after stop); see util.c.
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

TEST(tcp_continuous_echo) {
  static const char text[] = "hello, continuous world";
  const size_t len = sizeof text - 1;
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  int port;

  r->echo = 1;
  port = start_tcp(r->s);
  CHECK_EQ(tcp_server_is_running(r->s), 1);
  connect_tcp(cr, port);
  CHECK_EQ(tcp_client_is_running(cr->c), 1);
  CHECK_EQ(tcp_client_send(cr->c, text, len), 1);

  /* Continuous mode adds nothing: the same bytes arrive on both sides. */
  CHECK_WAIT(&r->m, r->established == 1 && msgs_concat_is(&r->conns[0].msgs, text, len));
  CHECK_WAIT(cr->m, msgs_concat_is(&cr->msgs, text, len));

  tcp_client_stop(cr->c);
  client_rec_mark_stopped(cr);
  CHECK_WAIT(cr->m, cr->closed == 1);
  CHECK_EQ(tcp_client_is_running(cr->c), 0);
  CHECK_WAIT(&r->m, r->closed == 1);
  client_rec_free(cr);
  server_rec_free(r);
}

TEST(tcp_fragmented_echo) {
  static const char *const msgs[] = {"one", "two", "", "three four"};
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  size_t i;

  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  for (i = 0; i < 4; i++) CHECK_EQ(tcp_client_send(cr->c, msgs[i], strlen(msgs[i])), 1);

  /* Whole messages, delimiter stripped, empty message kept. */
  CHECK_WAIT(cr->m, cr->messages == 4);
  LOCKED(cr->m, for (i = 0; i < 4; i++) CHECK(msg_is(&cr->msgs, i, msgs[i])));
  CHECK_WAIT(&r->m, r->messages == 4);
  LOCKED(&r->m, for (i = 0; i < 4; i++) CHECK(msg_is(&r->conns[0].msgs, i, msgs[i])));

  client_rec_free(cr);
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r);
}

TEST(fragmented_nul_delimiter) {
  static const char m0[] = "line 1\nline 2";
  static const char m1[] = "tab\there\r\n";
  static const char m2[] = "\xff\x01\x7f";
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\0', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\0', 0), NULL);
  int id;

  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_EQ(tcp_client_send(cr->c, m0, sizeof m0 - 1), 1);
  CHECK_EQ(tcp_client_send(cr->c, m1, sizeof m1 - 1), 1);
  CHECK_EQ(tcp_client_send(cr->c, m2, sizeof m2 - 1), 1);
  CHECK_EQ(tcp_client_send(cr->c, "", 0), 1);
  /* A '\0' inside a message is now the delimiter: refused both ways. */
  CHECK_EQ(tcp_client_send(cr->c, "a\0b", 3), 0);
  CHECK_CLIENT_ERROR_TEXT(cr->c);

  CHECK_WAIT(cr->m, cr->messages == 4);
  LOCKED(cr->m, {
    CHECK(msg_is(&cr->msgs, 0, m0));
    CHECK(msg_is(&cr->msgs, 1, m1));
    CHECK(msg_is(&cr->msgs, 2, m2));
    CHECK(msg_is(&cr->msgs, 3, ""));
  });
  id = server_rec_id(r, 0);
  CHECK_EQ(tcp_send_msg(r->s, id, "x\0y", 3), 0);
  CHECK_SERVER_ERROR_TEXT(r->s);

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(server_wrong_port) {
  static const int ports[] = {-1, 65536, 70000, INT_MIN};
  tcp_server *s = tcp_server_new();
  size_t i;

  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  for (i = 0; i < sizeof ports / sizeof ports[0]; i++) {
    CHECK_EQ(tcp_server_start(s, ports[i]), TCP_START_WRONG_PORT);
    CHECK_SERVER_ERROR_TEXT(s);
    CHECK_EQ(tcp_server_is_running(s), 0);
    CHECK_EQ(tcp_server_port(s), TCP_ERR_NOT_RUNNING);
  }
  CHECK_EQ(tls_server_start(s, 70000, fx()->main.ca, fx()->main.server_cert,
                            fx()->main.server_key),
           TCP_START_WRONG_PORT);
  tcp_server_free(s);
}

TEST(server_port_in_use) {
  tcp_server *a = tcp_server_new(), *b = tcp_server_new();
  int port = start_tcp(a);

  REQUIRE_EQ(tcp_server_set_option_str(b, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  CHECK_EQ(tcp_server_start(b, port), TCP_START_BIND_PORT);
  CHECK_SERVER_ERROR_TEXT(b);
  CHECK_EQ(tcp_server_is_running(b), 0);
  CHECK_EQ(tcp_server_port(b), TCP_ERR_NOT_RUNNING);
  /* The first server is untouched. */
  CHECK_EQ(tcp_server_is_running(a), 1);
  CHECK_EQ(tcp_server_port(a), port);
  tcp_server_free(b);
  tcp_server_free(a);
}

TEST(server_reuseport_shares_port) {
  tcp_server *a = tcp_server_new(), *b = tcp_server_new();
  int port;
  REQUIRE_EQ(tcp_server_set_option(a, TCP_OPT_REUSEPORT, 1), 0);
  REQUIRE_EQ(tcp_server_set_option(b, TCP_OPT_REUSEPORT, 1), 0);
  port = start_tcp(a);
  REQUIRE_EQ(tcp_server_set_option_str(b, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  CHECK_EQ(tcp_server_start(b, port), TCP_START_OK);
  CHECK_EQ(tcp_server_port(b), port);
  tcp_server_free(b);
  tcp_server_free(a);
}

TEST(server_start_twice) {
  tcp_server *s = tcp_server_new();
  int port = start_tcp(s);
  CHECK_EQ(tcp_server_start(s, 0), TCP_ERR_ALREADY_RUNNING);
  CHECK_EQ(tls_server_start(s, 0, fx()->main.ca, fx()->main.server_cert,
                            fx()->main.server_key),
           TCP_ERR_ALREADY_RUNNING);
  CHECK_EQ(tcp_server_is_running(s), 1);
  CHECK_EQ(tcp_server_port(s), port);
  tcp_server_free(s);
}

TEST(server_bad_bind_address) {
  tcp_server *s = tcp_server_new();
  int rc = tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "not an address");
  /* Refused when set, or when starting (43: "bad bind address"). */
  if (rc == 0) {
    CHECK_EQ(tcp_server_start(s, 0), TCP_START_LISTEN);
    CHECK_SERVER_ERROR_TEXT(s);
    CHECK_EQ(tcp_server_is_running(s), 0);
  } else {
    CHECK_EQ(rc, TCP_ERR_INVALID_ARG);
  }
  tcp_server_free(s);
}

TEST(server_restart_never_reuses_ids) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  int first, second;

  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  first = server_rec_id(r, 0);
  CHECK_GT(first, 0);

  tcp_server_stop(r->s);
  CHECK_EQ(tcp_server_is_running(r->s), 0);
  CHECK_EQ(r->closed, 1); /* stop returns after the closed callbacks */
  CHECK_WAIT(cr->m, cr->closed == 1);
  CHECK_EQ(tcp_client_is_running(cr->c), 0);

  /* Started again on a new port; the same client handle reconnects. */
  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 2);
  second = server_rec_id(r, 1);
  CHECK_GT(second, 0);
  CHECK_NE(second, first);

  client_rec_free(cr);
  server_rec_free(r);
}

static int contains(const int *ids, int n, int id) {
  int i;
  for (i = 0; i < n; i++)
    if (ids[i] == id) return 1;
  return 0;
}

TEST(server_client_ids) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr[4];
  int ids[3], got[8], two[2], port, i;

  port = start_tcp(r->s);
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), 0);
  for (i = 0; i < 3; i++) {
    cr[i] = client_rec_new(tcp_client_new(), NULL);
    connect_tcp(cr[i], port);
  }
  CHECK_WAIT(&r->m, r->established == 3);
  /* Established callbacks of different clients may come in any order. */
  for (i = 0; i < 3; i++) ids[i] = server_id_of(r, cr[i]->c);
  CHECK(ids[0] > 0 && ids[1] > 0 && ids[2] > 0);
  CHECK(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);

  /* The count, even when it exceeds max. */
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), 3);
  CHECK_EQ(tcp_server_client_ids(r->s, two, 2), 3);
  CHECK(contains(ids, 3, two[0]) && contains(ids, 3, two[1]) && two[0] != two[1]);
  CHECK_EQ(tcp_server_client_ids(r->s, got, 8), 3);
  for (i = 0; i < 3; i++) CHECK(contains(got, 3, ids[i]));

  /* A client that left is no longer listed. */
  client_rec_free(cr[1]);
  CHECK_WAIT(&r->m, CONN(r, ids[1])->closed == 1);
  CHECK_EQ(tcp_server_client_ids(r->s, got, 8), 2);
  CHECK(!contains(got, 2, ids[1]));

  /* A new client gets a new id. */
  cr[3] = client_rec_new(tcp_client_new(), NULL);
  connect_tcp(cr[3], port);
  CHECK_WAIT(&r->m, r->established == 4);
  i = server_rec_id(r, 3);
  CHECK(i > 0 && !contains(ids, 3, i));

  client_rec_free(cr[0]);
  client_rec_free(cr[2]);
  client_rec_free(cr[3]);
  server_rec_free(r);
}

TEST(server_client_ip_and_port) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  char buf[32];
  int id;

  CHECK_EQ(tcp_client_local_port(cr->c), TCP_ERR_NOT_RUNNING);
  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);

  CHECK_EQ(tcp_server_client_ip(r->s, id, buf, sizeof buf), 9);
  CHECK_STR(buf, "127.0.0.1");
  CHECK_EQ(tcp_server_client_ip(r->s, id, NULL, 0), 9);
  /* Truncation as snprintf: at most buflen-1 bytes and a NUL, never more. */
  memset(buf, 'Z', sizeof buf);
  CHECK_EQ(tcp_server_client_ip(r->s, id, buf, 4), 9);
  CHECK_STR(buf, "127");
  CHECK_EQ(buf[4], 'Z');
  CHECK_EQ(tcp_server_client_ip(r->s, id, buf, 9), 9);
  CHECK_STR(buf, "127.0.0.");
  CHECK_EQ(tcp_server_client_ip(r->s, id, buf, 10), 9);
  CHECK_STR(buf, "127.0.0.1");

  CHECK_GT(tcp_client_local_port(cr->c), 0);
  CHECK_EQ(tcp_server_client_port(r->s, id), tcp_client_local_port(cr->c));

  CHECK_EQ(tcp_server_client_ip(r->s, id + 1000, buf, sizeof buf), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_client_ip(r->s, 0, buf, sizeof buf), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_client_ip(r->s, -1, buf, sizeof buf), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_client_port(r->s, id + 1000), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_client_port(r->s, 0), TCP_ERR_NO_CLIENT);
  CHECK_SERVER_ERROR_TEXT(r->s);

  /* Gone after the client left. */
  tcp_client_stop(cr->c);
  CHECK_WAIT(&r->m, r->closed == 1);
  CHECK_EQ(tcp_server_client_ip(r->s, id, buf, sizeof buf), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_client_port(r->s, id), TCP_ERR_NO_CLIENT);

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(send_refusals_and_exact_max) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 8));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 8), NULL);
  int id;

  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);

  /* Server side. */
  CHECK_EQ(tcp_send_msg(r->s, id + 1000, "x", 1), 0);
  CHECK_SERVER_ERROR_TEXT(r->s);
  CHECK_EQ(tcp_send_msg(r->s, id, "ab\ncd", 5), 0);
  CHECK_SERVER_ERROR_TEXT(r->s);
  CHECK_EQ(tcp_send_msg(r->s, id, "123456789", 9), 0);
  CHECK_SERVER_ERROR_TEXT(r->s);
  CHECK_EQ(tcp_send_msg(r->s, id, "12345678", 8), 1); /* exactly max_len */
  CHECK_EQ(tcp_send_msg(r->s, id, "", 0), 1);
  CHECK_WAIT(cr->m, cr->messages == 2);
  LOCKED(cr->m, CHECK(msg_is(&cr->msgs, 0, "12345678") && msg_is(&cr->msgs, 1, "")));

  /* Client side. */
  CHECK_EQ(tcp_client_send(cr->c, "123456789", 9), 0);
  CHECK_CLIENT_ERROR_TEXT(cr->c);
  CHECK_EQ(tcp_client_send(cr->c, "a\nb", 3), 0);
  CHECK_EQ(tcp_client_send(cr->c, "abcdefgh", 8), 1);
  CHECK_WAIT(&r->m, r->messages == 1);
  LOCKED(&r->m, CHECK(msg_is(&r->conns[0].msgs, 0, "abcdefgh")));

  /* Nothing is sent once stopped. */
  tcp_server_stop(r->s);
  server_rec_mark_stopped(r);
  CHECK_EQ(tcp_send_msg(r->s, id, "x", 1), 0);
  CHECK_SERVER_ERROR_TEXT(r->s);
  CHECK_EQ(tcp_server_broadcast(r->s, "x", 1), 0);
  CHECK_WAIT(cr->m, cr->closed == 1);
  CHECK_EQ(tcp_client_send(cr->c, "x", 1), 0);
  CHECK_CLIENT_ERROR_TEXT(cr->c);

  client_rec_free(cr);
  server_rec_free(r);
}

TEST(oversized_message_closes_only_that_client) {
  char big[1000];
  char edge[16 + 1 + 17 + 1];
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 16));
  client_rec *a = client_rec_new(tcp_client_new(), NULL); /* continuous */
  client_rec *b = client_rec_new(tcp_client_new_fragmented('\n', 16), NULL);
  client_rec *e = client_rec_new(tcp_client_new(), NULL);
  int port, ida, idb, ide;

  r->echo = 1;
  port = start_tcp(r->s);
  connect_tcp(a, port);
  CHECK_WAIT(&r->m, r->established == 1);
  ida = server_rec_id(r, 0);
  connect_tcp(b, port);
  CHECK_WAIT(&r->m, r->established == 2);
  idb = server_rec_id(r, 1);

  /* 1000 bytes and no delimiter: the server must give up after max_len
   * rather than buffer without bound. */
  memset(big, 'x', sizeof big);
  CHECK_EQ(tcp_client_send(a->c, big, sizeof big), 1);
  CHECK_WAIT(&r->m, CONN(r, ida)->closed == 1);
  LOCKED(&r->m, {
    CHECK_EQ(CONN(r, ida)->errors, 1);
    CHECK_EQ(CONN(r, ida)->last_error, TCP_ERR_MESSAGE_TOO_LONG);
    CHECK_EQ(CONN(r, ida)->msgs.n, 0);
  });
  CHECK_WAIT(a->m, a->closed == 1);

  /* The other client is still served. */
  CHECK_EQ(tcp_client_send(b->c, "still here", 10), 1);
  CHECK_WAIT(b->m, b->messages == 1);
  LOCKED(b->m, CHECK(msg_is(&b->msgs, 0, "still here")));
  LOCKED(&r->m, CHECK_EQ(CONN(r, idb)->closed, 0));

  /* Exactly max_len passes; one byte more does not. */
  memset(edge, 'y', sizeof edge);
  edge[16] = '\n';
  edge[sizeof edge - 1] = '\n';
  connect_tcp(e, port);
  CHECK_WAIT(&r->m, r->established == 3);
  ide = server_rec_id(r, 2);
  CHECK_EQ(tcp_client_send(e->c, edge, sizeof edge), 1);
  CHECK_WAIT(&r->m, CONN(r, ide)->closed == 1);
  LOCKED(&r->m, {
    CHECK_EQ(CONN(r, ide)->msgs.n, 1);
    CHECK_EQ(CONN(r, ide)->last_error, TCP_ERR_MESSAGE_TOO_LONG);
  });

  client_rec_free(a);
  client_rec_free(b);
  client_rec_free(e);
  server_rec_free(r);
}

#define N_ORDERED 1000

static int numbered_in_order(const msg_list *l) {
  char want[32];
  size_t i;
  for (i = 0; i < l->n; i++) {
    snprintf(want, sizeof want, "message %04zu", i);
    if (!msg_is(l, i, want)) return 0;
  }
  return 1;
}

TEST(thousand_messages_in_order) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  char text[32];
  int i, n;

  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  for (i = 0; i < N_ORDERED; i++) {
    n = snprintf(text, sizeof text, "message %04d", i);
    REQUIRE_EQ(tcp_client_send(cr->c, text, (size_t)n), 1);
  }
  CHECK_WAIT(&r->m, r->messages == N_ORDERED);
  LOCKED(&r->m, CHECK(numbered_in_order(&r->conns[0].msgs)));
  CHECK_WAIT(cr->m, cr->messages == N_ORDERED);
  LOCKED(cr->m, CHECK(numbered_in_order(&cr->msgs)));
  CHECK_EQ(r->echo_failures, 0);

  client_rec_free(cr);
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r); /* checks: established first, closed exactly once */
}

#define N_MANY 200
#define N_THREADS 4

typedef struct many_ctx {
  client_rec **clients;
  int first, count, port;
} many_ctx;

static void *connect_and_send(void *arg) {
  many_ctx *ctx = arg;
  char text[32];
  int i, n;
  for (i = ctx->first; i < ctx->first + ctx->count; i++) {
    connect_tcp(ctx->clients[i], ctx->port);
    n = snprintf(text, sizeof text, "client %d", i);
    CHECK_EQ(tcp_client_send(ctx->clients[i]->c, text, (size_t)n), 1);
  }
  return NULL;
}

/* Monitor held. */
static int all_echoed(client_rec **c, int n) {
  char want[32];
  int i;
  for (i = 0; i < n; i++) {
    snprintf(want, sizeof want, "client %d", i);
    if (c[i]->messages < 1 || !msg_is(&c[i]->msgs, 0, want)) return 0;
  }
  return 1;
}

static int all_closed(client_rec **c, int n) {
  int i;
  for (i = 0; i < n; i++)
    if (c[i]->closed != 1) return 0;
  return 1;
}

TEST(two_hundred_clients) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *clients[N_MANY];
  many_ctx ctx[N_THREADS];
  pthread_t tid[N_THREADS];
  monitor shared;
  int i, port;

  monitor_init(&shared);
  r->echo = 1;
  port = start_tcp(r->s);
  for (i = 0; i < N_MANY; i++)
    clients[i] = client_rec_new(tcp_client_new_fragmented('\n', 0), &shared);
  /* Connect from several threads at once. */
  for (i = 0; i < N_THREADS; i++) {
    ctx[i].clients = clients;
    ctx[i].first = i * (N_MANY / N_THREADS);
    ctx[i].count = N_MANY / N_THREADS;
    ctx[i].port = port;
    REQUIRE(pthread_create(&tid[i], NULL, connect_and_send, &ctx[i]) == 0);
  }
  for (i = 0; i < N_THREADS; i++) pthread_join(tid[i], NULL);
  /* The threads that started the clients are gone; their ids may now be
   * reused by library threads. */
  monitor_lock(&shared);
  for (i = 0; i < N_MANY; i++) clients[i]->owner_gone = 1;
  monitor_unlock(&shared);

  CHECK_WAIT_MS(&shared, all_echoed(clients, N_MANY), 20000);
  CHECK_WAIT(&r->m, r->established == N_MANY);
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), N_MANY);

  /* Stopping the server closes every client. */
  tcp_server_stop(r->s);
  server_rec_mark_stopped(r);
  CHECK_EQ(r->closed, N_MANY);
  CHECK_WAIT_MS(&shared, all_closed(clients, N_MANY), 10000);

  for (i = 0; i < N_MANY; i++) client_rec_free(clients[i]);
  server_rec_free(r);
  monitor_destroy(&shared);
}

TEST(stop_from_callback) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr[3];
  int i, port;

  r->stop_on_message = 1;
  port = start_tcp(r->s);
  for (i = 0; i < 3; i++) {
    cr[i] = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
    connect_tcp(cr[i], port);
  }
  CHECK_WAIT(&r->m, r->established == 3);
  CHECK_EQ(tcp_client_send(cr[0]->c, "stop", 4), 1);

  /* stop() inside on_message returned (no deadlock), then the calling
   * connection's closed ran after that callback (util.c flags overlap). */
  CHECK_WAIT(&r->m, r->stop_returned == 1);
  CHECK_WAIT(&r->m, r->closed == 3);
  CHECK_EQ(tcp_server_is_running(r->s), 0);
  for (i = 0; i < 3; i++) CHECK_WAIT(cr[i]->m, cr[i]->closed == 1);
  tcp_server_stop(r->s); /* idempotent */

  /* And it can start again. */
  r->stop_on_message = 0;
  client_rec_free(cr[1]);
  cr[1] = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  connect_tcp(cr[1], start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 4);

  for (i = 0; i < 3; i++) client_rec_free(cr[i]);
  server_rec_free(r);
}

TEST(stop_with_messages_in_flight) {
  enum { CHUNK = 64 * 1024, CHUNKS = 512 }; /* 32 MiB queued each way */
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  char *chunk = malloc(CHUNK);
  int i, id, queued = 0;

  REQUIRE(chunk != NULL);
  memset(chunk, 'd', CHUNK);
  r->discard = 1;
  cr->msgs.keep = 0;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);

  /* Queue far more than the network holds, both ways, then stop while it
   * is moving. */
  for (i = 0; i < CHUNKS; i++) {
    queued += tcp_send_msg(r->s, id, chunk, CHUNK);
    tcp_client_send(cr->c, chunk, CHUNK);
  }
  CHECK_GT(queued, 0);
  CHECK_WAIT(cr->m, cr->msgs.bytes >= 1024 * 1024);
  CHECK_WAIT(&r->m, r->conns[0].msgs.bytes >= 1024 * 1024);

  tcp_server_stop(r->s);
  server_rec_mark_stopped(r); /* any later server callback is a violation */
  CHECK_EQ(tcp_server_is_running(r->s), 0);
  LOCKED(&r->m, CHECK_EQ(r->closed, 1));
  CHECK_EQ(tcp_send_msg(r->s, id, chunk, CHUNK), 0);
  CHECK_WAIT(cr->m, cr->closed == 1);

  client_rec_free(cr);
  server_rec_free(r);
  free(chunk);
}

/* Clients leaving while the server stops: stop must still wait for every
 * closed callback (a race: looped to catch it). */
TEST(stop_while_clients_leave) {
  enum { ROUNDS = 100, N = 3 };
  int round, i;
  for (round = 0; round < ROUNDS; round++) {
    server_rec *r = server_rec_new(tcp_server_new());
    client_rec *cr[N];
    int port = start_tcp(r->s);
    for (i = 0; i < N; i++) {
      cr[i] = client_rec_new(tcp_client_new(), NULL);
      connect_tcp(cr[i], port);
    }
    CHECK_WAIT(&r->m, r->established == N);
    for (i = 0; i < N; i++) client_rec_free(cr[i]);
    server_rec_free(r); /* checks closed ran for all N before free returned */
  }
}

/* A connection that is already ending (its error callback is running)
 * when stop is called: stop must still wait for that callback and for its
 * closed callback. The error callback blocks until released, which holds
 * that window open deterministically. */
typedef struct blocker {
  monitor m;
  tcp_server *s;
  int in_error, release, closed, stop_returned, closed_when_stop_returned;
} blocker;

static void blocking_error(void *ud, int id, int code, const char *message) {
  blocker *b = ud;
  struct timespec dl;
  (void)id;
  (void)code;
  (void)message;
  deadline_in(&dl, 10000);
  monitor_lock(&b->m);
  b->in_error = 1;
  monitor_broadcast(&b->m);
  while (!b->release && monitor_wait(&b->m, &dl) == 0) {
  }
  monitor_unlock(&b->m);
}

static void counting_closed(void *ud, int id) {
  blocker *b = ud;
  (void)id;
  LOCKED(&b->m, (b->closed++, monitor_broadcast(&b->m)));
}

static void *stop_in_thread(void *arg) {
  blocker *b = arg;
  tcp_server_stop(b->s);
  monitor_lock(&b->m);
  b->stop_returned = 1;
  b->closed_when_stop_returned = b->closed;
  monitor_broadcast(&b->m);
  monitor_unlock(&b->m);
  return NULL;
}

TEST(stop_waits_for_a_running_callback) {
  blocker b;
  client_rec *cr = client_rec_new(tcp_client_new(), NULL); /* continuous */
  char big[100];
  pthread_t tid;
  int early;

  memset(&b, 0, sizeof b);
  monitor_init(&b.m);
  b.s = tcp_server_new_fragmented('\n', 8);
  tcp_server_set_on_error(b.s, blocking_error, &b);
  tcp_server_set_on_closed(b.s, counting_closed, &b);
  connect_tcp(cr, start_tcp(b.s));

  /* Too long: the server ends this connection and reports it. */
  memset(big, 'x', sizeof big);
  CHECK_EQ(tcp_client_send(cr->c, big, sizeof big), 1);
  REQUIRE_WAIT(&b.m, b.in_error);

  REQUIRE(pthread_create(&tid, NULL, stop_in_thread, &b) == 0);
  /* Stop must not return while the error callback runs. (A bounded wait
   * for something that must not happen.) */
  WAIT_UNTIL(early, &b.m, b.stop_returned, 300);
  CHECK(!early);
  LOCKED(&b.m, (b.release = 1, monitor_broadcast(&b.m)));
  CHECK_WAIT(&b.m, b.stop_returned);
  pthread_join(tid, NULL);
  /* ... and it returns only after that client's closed callback. */
  CHECK_EQ(b.closed_when_stop_returned, 1);
  CHECK_WAIT(&b.m, b.closed == 1); /* keep b alive for a late callback */

  client_rec_free(cr);
  tcp_server_free(b.s);
  monitor_destroy(&b.m);
}

TEST(broadcast) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr[3];
  int i, port;

  port = start_tcp(r->s);
  CHECK_EQ(tcp_server_broadcast(r->s, "nobody", 6), 0);
  for (i = 0; i < 3; i++) {
    cr[i] = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
    connect_tcp(cr[i], port);
  }
  CHECK_WAIT(&r->m, r->established == 3);
  CHECK_EQ(tcp_server_broadcast(r->s, "news", 4), 3);
  for (i = 0; i < 3; i++) {
    CHECK_WAIT(cr[i]->m, cr[i]->messages == 1);
    LOCKED(cr[i]->m, CHECK(msg_is(&cr[i]->msgs, 0, "news")));
  }
  CHECK_EQ(tcp_server_broadcast(r->s, "a\nb", 3), 0);

  tcp_client_stop(cr[2]->c);
  CHECK_WAIT(&r->m, r->closed == 1);
  CHECK_EQ(tcp_server_broadcast(r->s, "more", 4), 2);
  for (i = 0; i < 2; i++) CHECK_WAIT(cr[i]->m, cr[i]->messages == 2);

  tcp_server_stop(r->s);
  CHECK_EQ(tcp_server_broadcast(r->s, "late", 4), 0);
  for (i = 0; i < 3; i++) client_rec_free(cr[i]);
  server_rec_free(r);
}

TEST(close_client) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *a = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  client_rec *b = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  int port, ida;

  r->echo = 1;
  port = start_tcp(r->s);
  connect_tcp(a, port);
  CHECK_WAIT(&r->m, r->established == 1);
  ida = server_rec_id(r, 0);
  connect_tcp(b, port);
  CHECK_WAIT(&r->m, r->established == 2);

  CHECK_EQ(tcp_server_close_client(r->s, ida), 0);
  CHECK_WAIT(&r->m, CONN(r, ida)->closed == 1);
  CHECK_WAIT(a->m, a->closed == 1);
  CHECK_EQ(tcp_client_is_running(a->c), 0);
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), 1);
  CHECK_EQ(tcp_server_close_client(r->s, ida), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_close_client(r->s, 99999), TCP_ERR_NO_CLIENT);

  CHECK_EQ(tcp_client_send(b->c, "ping", 4), 1);
  CHECK_WAIT(b->m, b->messages == 1);

  client_rec_free(a);
  client_rec_free(b);
  server_rec_free(r);
}

TEST(free_running_server) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *a = client_rec_new(tcp_client_new(), NULL);
  client_rec *b = client_rec_new(tcp_client_new(), NULL);
  int port = start_tcp(r->s);

  connect_tcp(a, port);
  connect_tcp(b, port);
  CHECK_WAIT(&r->m, r->established == 2);
  server_rec_free(r); /* tcp_server_free on a running server */
  CHECK_WAIT(a->m, a->closed == 1);
  CHECK_WAIT(b->m, b->closed == 1);
  client_rec_free(a);
  client_rec_free(b);
}

TEST(send_queue_limit) {
  enum { CHUNK = 64 * 1024, MAX_CHUNKS = 4096 };
  server_rec *r = server_rec_new(tcp_server_new());
  char *chunk = calloc(1, CHUNK);
  int fd, id, i, rcvbuf = 4096;

  REQUIRE(chunk != NULL);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_SEND_QUEUE_LIMIT, 256 * 1024), 0);
  fd = raw_connect(start_tcp(r->s));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);

  /* The peer reads nothing: sends are refused once the queue is full,
   * without blocking. */
  for (i = 0; i < MAX_CHUNKS; i++)
    if (tcp_send_msg(r->s, id, chunk, CHUNK) == 0) break;
  CHECK_LT(i, MAX_CHUNKS);
  CHECK_SERVER_ERROR_TEXT(r->s);

  raw_reset(fd);
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r);
  free(chunk);
}

TEST(fragmented_high_byte_delimiter) {
  /* char may be signed: '\xff' must still mean the byte 0xff. */
  static const char m0[] = "caf\xc3\xa9 \xfe";
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\xff', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\xff', 0), NULL);

  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_EQ(tcp_client_send(cr->c, m0, sizeof m0 - 1), 1);
  CHECK_EQ(tcp_client_send(cr->c, "two", 3), 1);
  CHECK_EQ(tcp_client_send(cr->c, "x\xffy", 3), 0);
  CHECK_WAIT(cr->m, cr->messages == 2);
  LOCKED(cr->m, CHECK(msg_is(&cr->msgs, 0, m0) && msg_is(&cr->msgs, 1, "two")));
  client_rec_free(cr);
  server_rec_free(r);
}

TEST(continuous_stream_integrity) {
  enum { SIZE = 4 * 1024 * 1024, PIECE = 100000 };
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  unsigned char *data = malloc(SIZE);
  size_t off;
  int i;

  REQUIRE(data != NULL);
  for (i = 0; i < SIZE; i++) data[i] = (unsigned char)((i * 7 + i / 251) & 0xff);
  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  /* Odd-sized pieces; the network cuts them wherever it likes. */
  for (off = 0; off < SIZE; off += PIECE)
    REQUIRE_EQ(tcp_client_send(cr->c, data + off, SIZE - off < PIECE ? SIZE - off : PIECE), 1);
  CHECK_WAIT_MS(cr->m, cr->msgs.bytes == SIZE, 15000);
  LOCKED(cr->m, CHECK(msgs_concat_is(&cr->msgs, data, SIZE)));
  client_rec_free(cr);
  server_rec_free(r);
  free(data);
}

#define N_SENDERS 4
#define N_PER_SENDER 250

typedef struct sender_ctx {
  tcp_server *s;
  int id, index;
  int refused;
} sender_ctx;

static void *send_tagged(void *arg) {
  sender_ctx *ctx = arg;
  char text[64];
  int i, n;
  for (i = 0; i < N_PER_SENDER; i++) {
    /* Long enough that interleaved writes would show. */
    n = snprintf(text, sizeof text, "sender %d message %03d ..........................", ctx->index, i);
    if (tcp_send_msg(ctx->s, ctx->id, text, (size_t)n) != 1) ctx->refused++;
  }
  return NULL;
}

/* Monitor held: every message whole, and each sender's in its order. */
static int tagged_in_order(const msg_list *l) {
  int next[N_SENDERS] = {0};
  size_t i;
  for (i = 0; i < l->n; i++) {
    char want[64];
    int sender, seq;
    if (sscanf(l->items[i].data, "sender %d message %d", &sender, &seq) != 2 ||
        sender < 0 || sender >= N_SENDERS || seq != next[sender])
      return 0;
    snprintf(want, sizeof want, "sender %d message %03d ..........................", sender, seq);
    if (!msg_is(l, i, want)) return 0;
    next[sender]++;
  }
  return 1;
}

TEST(concurrent_senders_keep_messages_whole) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  sender_ctx ctx[N_SENDERS];
  pthread_t tid[N_SENDERS];
  int i, id;

  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  for (i = 0; i < N_SENDERS; i++) {
    ctx[i].s = r->s;
    ctx[i].id = id;
    ctx[i].index = i;
    ctx[i].refused = 0;
    REQUIRE(pthread_create(&tid[i], NULL, send_tagged, &ctx[i]) == 0);
  }
  for (i = 0; i < N_SENDERS; i++) {
    pthread_join(tid[i], NULL);
    CHECK_EQ(ctx[i].refused, 0);
  }
  CHECK_WAIT(cr->m, cr->messages == N_SENDERS * N_PER_SENDER);
  LOCKED(cr->m, CHECK(tagged_in_order(&cr->msgs)));
  client_rec_free(cr);
  server_rec_free(r);
}

TEST(close_client_from_callback) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *a = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  client_rec *b = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  int port, ida;

  r->close_on_message = 1;
  port = start_tcp(r->s);
  connect_tcp(a, port);
  CHECK_WAIT(&r->m, r->established == 1);
  ida = server_rec_id(r, 0);
  connect_tcp(b, port);
  CHECK_WAIT(&r->m, r->established == 2);

  /* The callback hangs up on its own client; closed follows it. */
  CHECK_EQ(tcp_client_send(a->c, "quit", 4), 1);
  CHECK_WAIT(&r->m, CONN(r, ida)->closed == 1);
  CHECK_WAIT(a->m, a->closed == 1);
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), 1);
  CHECK_EQ(tcp_server_is_running(r->s), 1);

  client_rec_free(a);
  client_rec_free(b);
  server_rec_free(r);
}

TEST(many_servers_independent) {
  enum { N = 5 };
  server_rec *r[N];
  client_rec *cr[N];
  char text[16];
  int i, n;

  for (i = 0; i < N; i++) {
    r[i] = server_rec_new(tcp_server_new_fragmented('\n', 0));
    r[i]->echo = 1;
    cr[i] = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
    connect_tcp(cr[i], start_tcp(r[i]->s));
  }
  for (i = 0; i < N; i++) {
    n = snprintf(text, sizeof text, "server %d", i);
    CHECK_EQ(tcp_client_send(cr[i]->c, text, (size_t)n), 1);
  }
  for (i = 0; i < N; i++) {
    snprintf(text, sizeof text, "server %d", i);
    CHECK_WAIT(cr[i]->m, cr[i]->messages == 1);
    LOCKED(cr[i]->m, CHECK(msg_is(&cr[i]->msgs, 0, text)));
    LOCKED(&r[i]->m, CHECK_EQ(r[i]->established, 1));
  }
  /* Stopping one leaves the others alone. */
  tcp_server_stop(r[0]->s);
  CHECK_WAIT(cr[0]->m, cr[0]->closed == 1);
  CHECK_EQ(tcp_client_send(cr[1]->c, "still", 5), 1);
  CHECK_WAIT(cr[1]->m, cr[1]->messages == 2);
  for (i = 0; i < N; i++) {
    client_rec_free(cr[i]);
    server_rec_free(r[i]);
  }
}

const test_case server_tests[] = {
    TEST_ENTRY(tcp_continuous_echo),
    TEST_ENTRY(tcp_fragmented_echo),
    TEST_ENTRY(fragmented_nul_delimiter),
    TEST_ENTRY(fragmented_high_byte_delimiter),
    TEST_ENTRY(continuous_stream_integrity),
    TEST_ENTRY(server_wrong_port),
    TEST_ENTRY(server_port_in_use),
    TEST_ENTRY(server_reuseport_shares_port),
    TEST_ENTRY(server_start_twice),
    TEST_ENTRY(server_bad_bind_address),
    TEST_ENTRY(server_restart_never_reuses_ids),
    TEST_ENTRY(server_client_ids),
    TEST_ENTRY(server_client_ip_and_port),
    TEST_ENTRY(send_refusals_and_exact_max),
    TEST_ENTRY(oversized_message_closes_only_that_client),
    TEST_ENTRY(thousand_messages_in_order),
    TEST_ENTRY(concurrent_senders_keep_messages_whole),
    TEST_ENTRY_TIMEOUT(two_hundred_clients, 45),
    TEST_ENTRY(stop_from_callback),
    TEST_ENTRY(stop_with_messages_in_flight),
    TEST_ENTRY(stop_while_clients_leave),
    TEST_ENTRY(stop_waits_for_a_running_callback),
    TEST_ENTRY(broadcast),
    TEST_ENTRY(close_client),
    TEST_ENTRY(close_client_from_callback),
    TEST_ENTRY(many_servers_independent),
    TEST_ENTRY(free_running_server),
    TEST_ENTRY(send_queue_limit),
    TEST_END,
};
