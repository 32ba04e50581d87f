/*
 * test_delivery.c -- getting queued data out: TCP_OPT_LINGER_MS (send, then
 * stop / close_client / client_stop delivers; the wait is bounded),
 * tcp_server_flush / tcp_client_flush, tcp_server_send_batch, and
 * tcp_server_stop called from inside callbacks followed by tcp_server_free
 * from the main thread.
 *
 * A peer that "never reads" is a raw socket with a tiny SO_RCVBUF set
 * before connecting (or before listen, for a listener that never accepts),
 * so that kernel buffers cannot swallow the 32 MiB queued to it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

/* ---- helpers -------------------------------------------------------------- */

enum { CHUNK = 64 * 1024, BIG_CHUNKS = 512 }; /* 512 x 64 KiB = 32 MiB */

static void tiny_rcvbuf(int fd) {
  int small = 4096;
  CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
}

/* A connection to 127.0.0.1:port that will never read: a tiny receive
 * buffer (set before connect, so the window stays small). */
static int raw_connect_nonreading(int port) {
  struct sockaddr_in a = loopback_addr(port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  tiny_rcvbuf(fd);
  REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  return fd;
}

/* A loopback listener that never accepts (the kernel completes the
 * handshake from its backlog) and whose connections never read. */
static int raw_listener_nonreading(int *port) {
  struct sockaddr_in a = loopback_addr(0);
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  tiny_rcvbuf(fd); /* inherited by the connections it queues */
  REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  REQUIRE(listen(fd, 4) == 0);
  REQUIRE(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
  *port = ntohs(a.sin_port);
  return fd;
}

/* Queue 32 MiB for client id; returns how many chunks were accepted. */
/* The defaults bound what one connection may queue (4 MiB) and what the
 * server holds in all (64 MiB); these tests queue more on purpose. */
static void unbounded_queues_server(tcp_server *s) {
  REQUIRE_EQ(tcp_server_set_option(s, TCP_OPT_SEND_QUEUE_LIMIT, 0), 0);
  REQUIRE_EQ(tcp_server_set_option(s, TCP_OPT_MEMORY_BUDGET, 0), 0);
}

static int queue_big(tcp_server *s, int id, const char *chunk) {
  int i, queued = 0;
  for (i = 0; i < BIG_CHUNKS; i++) queued += tcp_send_msg(s, id, chunk, CHUNK);
  return queued;
}

/* ---- send, then stop: delivered --------------------------------------------- */

/* Each round a new client queues a 64 KiB message and "last words N" and
 * stops at once: with the default linger both must arrive. */
static void client_stop_rounds(int linger_ms, int must_deliver) {
  enum { ROUNDS = 100 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  char *filler = malloc(CHUNK);
  char text[32], seen[ROUNDS];
  int round, port, i, n;

  REQUIRE(filler != NULL);
  memset(filler, 'f', CHUNK);
  memset(seen, 0, sizeof seen);
  port = start_tcp(r->s);
  for (round = 0; round < ROUNDS; round++) {
    client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
    if (linger_ms >= 0)
      REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_LINGER_MS, linger_ms), 0);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_SEND_QUEUE_LIMIT, 0), 0);
    connect_tcp(cr, port);
    n = snprintf(text, sizeof text, "last words %d", round);
    CHECK_EQ(tcp_client_send(cr->c, filler, CHUNK), 1);
    CHECK_EQ(tcp_client_send(cr->c, text, (size_t)n), 1);
    tcp_client_stop(cr->c);
    client_rec_mark_stopped(cr);
    CHECK_EQ(cr->closed, 1); /* stop returned after the closed callback */
    client_rec_free(cr);
  }

  if (must_deliver) {
    /* Every connection: the filler, then its last words, then closed. */
    CHECK_WAIT(&r->m, r->established == ROUNDS && r->closed == ROUNDS);
    monitor_lock(&r->m);
    CHECK_EQ(r->messages, 2 * ROUNDS);
    for (i = 0; i < r->nconns; i++) {
      const msg_list *l = &r->conns[i].msgs;
      int k = -1;
      if (l->n != 2 || l->items[0].len != CHUNK ||
          sscanf(l->items[1].data, "last words %d", &k) != 1 || k < 0 ||
          k >= ROUNDS || seen[k]) {
        h_fail(__FILE__, __LINE__,
               "connection %d: %zu messages, want the filler then a new "
               "\"last words N\" (got \"%.20s\")",
               r->conns[i].id, l->n, l->n >= 2 ? l->items[1].data : "");
        continue;
      }
      snprintf(text, sizeof text, "last words %d", k);
      CHECK(msg_is(l, 1, text));
      seen[k] = 1;
    }
    monitor_unlock(&r->m);
  }
  /* Linger 0: nothing is promised about the data, only that every
   * connection the server saw ends properly (checked by server_rec_free). */
  server_rec_free(r);
  free(filler);
}

TEST(client_send_then_stop_delivers) { client_stop_rounds(-1, 1); }
TEST(client_send_then_stop_linger_0) { client_stop_rounds(0, 0); }

/* 100 numbered messages and "goodbye", then close_client: the client gets
 * all of them, in order, before its closed callback (the recorder flags a
 * message after closed). */
TEST(close_client_delivers_goodbye) {
  enum { ROUNDS = 20, N = 100 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  char text[32];
  int round, port, id, i, n;

  port = start_tcp(r->s);
  for (round = 0; round < ROUNDS; round++) {
    client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
    connect_tcp(cr, port);
    REQUIRE_WAIT(&r->m, r->established == round + 1);
    id = server_rec_id(r, round);
    for (i = 0; i < N; i++) {
      n = snprintf(text, sizeof text, "message %03d", i);
      CHECK_EQ(tcp_send_msg(r->s, id, text, (size_t)n), 1);
    }
    CHECK_EQ(tcp_send_msg(r->s, id, "goodbye", 7), 1);
    CHECK_EQ(tcp_server_close_client(r->s, id), 0);

    CHECK_WAIT(cr->m, cr->closed == 1);
    LOCKED(cr->m, {
      CHECK_EQ(cr->messages, N + 1);
      for (i = 0; i < N; i++) {
        snprintf(text, sizeof text, "message %03d", i);
        CHECK(msg_is(&cr->msgs, i, text));
      }
      CHECK(msg_is(&cr->msgs, N, "goodbye"));
    });
    CHECK_WAIT(&r->m, CONN(r, id)->closed == 1);
    client_rec_free(cr);
  }
  server_rec_free(r);
}

/* A 64 KiB message and "goodbye N" to every client, then tcp_server_stop:
 * each client gets both before its closed callback. */
TEST(server_stop_delivers_to_each_client) {
  enum { ROUNDS = 10, N = 5 };
  char *filler = malloc(CHUNK);
  char text[32];
  int round, i, n, port;

  REQUIRE(filler != NULL);
  memset(filler, 'g', CHUNK);
  for (round = 0; round < ROUNDS; round++) {
    server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
    client_rec *cr[N];
    port = start_tcp(r->s);
    for (i = 0; i < N; i++) {
      cr[i] = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
      connect_tcp(cr[i], port);
    }
    REQUIRE_WAIT(&r->m, r->established == N);
    for (i = 0; i < N; i++) {
      int id = server_id_of(r, cr[i]->c);
      REQUIRE_GT(id, 0);
      n = snprintf(text, sizeof text, "goodbye %d", i);
      CHECK_EQ(tcp_send_msg(r->s, id, filler, CHUNK), 1);
      CHECK_EQ(tcp_send_msg(r->s, id, text, (size_t)n), 1);
    }
    tcp_server_stop(r->s);
    server_rec_mark_stopped(r);
    CHECK_EQ(r->closed, N);
    for (i = 0; i < N; i++) {
      snprintf(text, sizeof text, "goodbye %d", i);
      CHECK_WAIT(cr[i]->m, cr[i]->closed == 1);
      LOCKED(cr[i]->m, {
        CHECK_EQ(cr[i]->messages, 2);
        CHECK(cr[i]->msgs.n >= 1 && cr[i]->msgs.items[0].len == CHUNK);
        CHECK(msg_is(&cr[i]->msgs, 1, text));
      });
      client_rec_free(cr[i]);
    }
    server_rec_free(r);
  }
  free(filler);
}

/* ---- the linger is bounded --------------------------------------------------- */

TEST(linger_bounded_server_stop_and_close_client) {
  server_rec *r = server_rec_new(tcp_server_new());
  char *chunk = calloc(1, CHUNK);
  int fd1, fd2, id1, id2, port;
  long long t0, dt;

  REQUIRE(chunk != NULL);
  r->discard = 1;
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_LINGER_MS, 200), 0);
  unbounded_queues_server(r->s);
  port = start_tcp(r->s);
  fd1 = raw_connect_nonreading(port);
  REQUIRE_WAIT(&r->m, r->established == 1);
  id1 = server_rec_id(r, 0);
  fd2 = raw_connect_nonreading(port);
  REQUIRE_WAIT(&r->m, r->established == 2);
  id2 = server_rec_id(r, 1);
  CHECK_EQ(queue_big(r->s, id1, chunk), BIG_CHUNKS);
  CHECK_EQ(queue_big(r->s, id2, chunk), BIG_CHUNKS);

  /* The peers never read: each call waits the whole linger, no more. */
  t0 = now_ms();
  CHECK_EQ(tcp_server_close_client(r->s, id1), 0);
  dt = now_ms() - t0;
  CHECK_GT(dt, 150);
  CHECK_LT(dt, 2000);
  CHECK_WAIT(&r->m, CONN(r, id1)->closed == 1);

  t0 = now_ms();
  tcp_server_stop(r->s);
  dt = now_ms() - t0;
  server_rec_mark_stopped(r);
  CHECK_GT(dt, 150);
  CHECK_LT(dt, 2000);
  CHECK_EQ(tcp_server_is_running(r->s), 0);
  LOCKED(&r->m, CHECK_EQ(CONN(r, id2)->closed, 1));

  close(fd1);
  close(fd2);
  server_rec_free(r);
  free(chunk);
}

TEST(linger_0_server_stop_does_not_wait) {
  server_rec *r = server_rec_new(tcp_server_new());
  char *chunk = calloc(1, CHUNK);
  int fd, id;
  long long t0, dt;

  REQUIRE(chunk != NULL);
  r->discard = 1;
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_LINGER_MS, 0), 0);
  unbounded_queues_server(r->s);
  fd = raw_connect_nonreading(start_tcp(r->s));
  REQUIRE_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(queue_big(r->s, id, chunk), BIG_CHUNKS);

  t0 = now_ms();
  tcp_server_stop(r->s);
  dt = now_ms() - t0;
  server_rec_mark_stopped(r);
  CHECK_LT(dt, 500); /* far below the default 1000 */
  LOCKED(&r->m, CHECK_EQ(r->closed, 1));

  close(fd);
  server_rec_free(r);
  free(chunk);
}

/* A client connected to a listener that never accepts nor reads, with
 * chunks x 64 KiB queued. */
static client_rec *client_to_nonreader(int *lfd, int linger_ms, int chunks) {
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  char *chunk = calloc(1, CHUNK);
  int port, i, queued = 0;

  REQUIRE(chunk != NULL);
  *lfd = raw_listener_nonreading(&port);
  if (linger_ms >= 0)
    REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_LINGER_MS, linger_ms), 0);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_SEND_QUEUE_LIMIT, 0), 0);
  connect_tcp(cr, port);
  for (i = 0; i < chunks; i++) queued += tcp_client_send(cr->c, chunk, CHUNK);
  CHECK_EQ(queued, chunks);
  free(chunk);
  return cr;
}

/* Client side: stop waits the linger and no more. */
TEST(linger_bounded_client_stop) {
  int lfd;
  client_rec *cr = client_to_nonreader(&lfd, 200, BIG_CHUNKS);
  long long t0, dt;

  t0 = now_ms();
  tcp_client_stop(cr->c);
  dt = now_ms() - t0;
  client_rec_mark_stopped(cr);
  CHECK_GT(dt, 150);
  CHECK_LT(dt, 2000);
  CHECK_EQ(cr->closed, 1);

  close(lfd);
  client_rec_free(cr);
}

/* tcp_client_flush to a server that never reads: TCP_ERR_TIMEOUT, after
 * about the time given (16 MiB is far more than the socket buffers hold). */
TEST(client_flush_timeout) {
  int lfd;
  client_rec *cr = client_to_nonreader(&lfd, 0, BIG_CHUNKS / 2);
  long long t0, dt;

  CHECK_EQ(tcp_client_flush(cr->c, 0), TCP_ERR_TIMEOUT);
  t0 = now_ms();
  CHECK_EQ(tcp_client_flush(cr->c, 100), TCP_ERR_TIMEOUT);
  dt = now_ms() - t0;
  CHECK_GT(dt, 80);
  CHECK_LT(dt, 2000);
  CHECK_EQ(tcp_client_is_running(cr->c), 1);

  tcp_client_stop(cr->c); /* linger 0: at once */
  client_rec_mark_stopped(cr);
  CHECK_EQ(tcp_client_flush(cr->c, 100), TCP_ERR_NOT_RUNNING);
  close(lfd);
  client_rec_free(cr);
}

/* ---- flush ---------------------------------------------------------------------- */

/* Whether client i got exactly n messages "c<i> m<k>" in order (monitor
 * held). */
static int got_numbered(const client_rec *cr, int i, int n) {
  char want[32];
  int k;
  if (cr->messages != n) return 0;
  for (k = 0; k < n; k++) {
    snprintf(want, sizeof want, "c%d m%03d", i, k);
    if (!msg_is(&cr->msgs, k, want)) return 0;
  }
  return 1;
}

/* Once flush returned 0 the data is in the kernel: even a stop with linger
 * 0 (which discards what is still queued) then delivers it. */
TEST(server_flush_writes_before_returning) {
  enum { N = 200 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr[2];
  char text[32];
  int ids[2], i, k, n, port;

  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_LINGER_MS, 0), 0);
  port = start_tcp(r->s);
  for (i = 0; i < 2; i++) {
    cr[i] = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
    connect_tcp(cr[i], port);
  }
  REQUIRE_WAIT(&r->m, r->established == 2);
  for (i = 0; i < 2; i++) REQUIRE_GT(ids[i] = server_id_of(r, cr[i]->c), 0);

  /* Nothing queued: at once. */
  CHECK_EQ(tcp_server_flush(r->s, ids[0], 0), 0);
  CHECK_EQ(tcp_server_flush(r->s, 0, 0), 0);

  /* One client. */
  for (k = 0; k < N; k++) {
    n = snprintf(text, sizeof text, "c0 m%03d", k);
    CHECK_EQ(tcp_send_msg(r->s, ids[0], text, (size_t)n), 1);
  }
  CHECK_EQ(tcp_server_flush(r->s, ids[0], 5000), 0);
  CHECK_WAIT(cr[0]->m, got_numbered(cr[0], 0, N));

  /* Every client (id 0), then stop with linger 0. */
  for (k = 0; k < N; k++)
    for (i = 0; i < 2; i++) {
      n = snprintf(text, sizeof text, "c%d m%03d", i, i == 0 ? N + k : k);
      CHECK_EQ(tcp_send_msg(r->s, ids[i], text, (size_t)n), 1);
    }
  CHECK_EQ(tcp_server_flush(r->s, 0, 5000), 0);
  tcp_server_stop(r->s);
  server_rec_mark_stopped(r);
  for (i = 0; i < 2; i++) {
    CHECK_WAIT(cr[i]->m, cr[i]->closed == 1);
    LOCKED(cr[i]->m, CHECK(got_numbered(cr[i], i, i == 0 ? 2 * N : N)));
    client_rec_free(cr[i]);
  }
  server_rec_free(r);
}

typedef struct flush_ctx {
  tcp_server *s;
  int id, timeout_ms, rc;
  long long ms;
} flush_ctx;

static void *flush_in_thread(void *arg) {
  flush_ctx *f = arg;
  long long t0 = now_ms();
  f->rc = tcp_server_flush(f->s, f->id, f->timeout_ms);
  f->ms = now_ms() - t0;
  return NULL;
}

TEST(server_flush_errors) {
  server_rec *r = server_rec_new(tcp_server_new());
  tcp_server *never = tcp_server_new();
  char *chunk = calloc(1, CHUNK);
  flush_ctx f;
  pthread_t tid;
  int fd, id;
  long long t0, dt;

  REQUIRE(chunk != NULL);
  r->discard = 1;
  /* Never started. */
  CHECK_EQ(tcp_server_flush(never, 0, 100), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_server_flush(never, 1, 100), TCP_ERR_NOT_RUNNING);
  tcp_server_free(never);

  unbounded_queues_server(r->s);
  fd = raw_connect_nonreading(start_tcp(r->s));
  REQUIRE_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);

  CHECK_EQ(tcp_server_flush(r->s, id + 1000, 100), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_flush(r->s, -1, 100), TCP_ERR_NO_CLIENT);
  CHECK_SERVER_ERROR_TEXT(r->s);

  /* The peer never reads: a time-out, after about the time given. */
  CHECK_EQ(queue_big(r->s, id, chunk), BIG_CHUNKS);
  CHECK_EQ(tcp_server_flush(r->s, id, 0), TCP_ERR_TIMEOUT);
  t0 = now_ms();
  CHECK_EQ(tcp_server_flush(r->s, id, 100), TCP_ERR_TIMEOUT);
  dt = now_ms() - t0;
  CHECK_GT(dt, 80);
  CHECK_LT(dt, 2000);
  t0 = now_ms();
  CHECK_EQ(tcp_server_flush(r->s, 0, 100), TCP_ERR_TIMEOUT);
  dt = now_ms() - t0;
  CHECK_GT(dt, 80);
  CHECK_LT(dt, 2000);

  /* The connection breaks while a flush waits: TCP_ERR_NO_CLIENT, long
   * before the timeout. */
  f.s = r->s;
  f.id = id;
  f.timeout_ms = 10000;
  f.rc = 1;
  f.ms = -1;
  REQUIRE(pthread_create(&tid, NULL, flush_in_thread, &f) == 0);
  raw_reset(fd);
  pthread_join(tid, NULL);
  CHECK_EQ(f.rc, TCP_ERR_NO_CLIENT);
  CHECK_LT(f.ms, 5000);
  CHECK_WAIT(&r->m, r->closed == 1);

  /* Stopped. */
  tcp_server_stop(r->s);
  server_rec_mark_stopped(r);
  CHECK_EQ(tcp_server_flush(r->s, 0, 100), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_server_flush(r->s, id, 100), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_server_flush(NULL, 0, 100), TCP_ERR_INVALID_ARG);

  server_rec_free(r);
  free(chunk);
}

/* flush from inside a message callback: it works there too. */
typedef struct cb_flush {
  monitor m;
  tcp_server *s;
  char *reply;
  int calls, send_rc, flush_rc;
} cb_flush;

static void flushing_message(void *ud, int id, const char *data, size_t len) {
  cb_flush *f = ud;
  int send_rc, flush_rc;
  (void)data;
  (void)len;
  send_rc = tcp_send_msg(f->s, id, f->reply, 4 * CHUNK);
  flush_rc = tcp_server_flush(f->s, id, 5000);
  monitor_lock(&f->m);
  f->calls++;
  f->send_rc = send_rc;
  f->flush_rc = flush_rc;
  monitor_broadcast(&f->m);
  monitor_unlock(&f->m);
}

TEST(server_flush_from_callback) {
  cb_flush f;
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);

  memset(&f, 0, sizeof f);
  monitor_init(&f.m);
  f.reply = malloc(4 * CHUNK);
  REQUIRE(f.reply != NULL);
  memset(f.reply, 'r', 4 * CHUNK);
  f.s = tcp_server_new();
  tcp_server_set_on_message(f.s, flushing_message, &f);
  cr->msgs.keep = 0;
  connect_tcp(cr, start_tcp(f.s));
  CHECK_EQ(tcp_client_send(cr->c, "x", 1), 1);
  CHECK_WAIT(&f.m, f.calls == 1);
  LOCKED(&f.m, {
    CHECK_EQ(f.send_rc, 1);
    CHECK_EQ(f.flush_rc, 0);
  });
  CHECK_WAIT(cr->m, cr->msgs.bytes == 4 * CHUNK);

  client_rec_free(cr);
  tcp_server_free(f.s);
  monitor_destroy(&f.m);
  free(f.reply);
}

TEST(client_flush) {
  enum { N = 200 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  char text[32];
  int k, n, id;

  /* Never connected. */
  CHECK_EQ(tcp_client_flush(cr->c, 100), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_client_flush(NULL, 100), TCP_ERR_INVALID_ARG);

  connect_tcp(cr, start_tcp(r->s));
  CHECK_EQ(tcp_client_flush(cr->c, 0), 0); /* nothing queued */
  for (k = 0; k < N; k++) {
    n = snprintf(text, sizeof text, "c0 m%03d", k);
    CHECK_EQ(tcp_client_send(cr->c, text, (size_t)n), 1);
  }
  CHECK_EQ(tcp_client_flush(cr->c, 5000), 0);
  CHECK_WAIT(&r->m, r->messages == N);
  LOCKED(&r->m, {
    for (k = 0; k < N; k++) {
      snprintf(text, sizeof text, "c0 m%03d", k);
      CHECK(msg_is(&r->conns[0].msgs, k, text));
    }
  });

  /* The server ended the connection. */
  REQUIRE_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(tcp_server_close_client(r->s, id), 0);
  CHECK_WAIT(cr->m, cr->closed == 1);
  CHECK_EQ(tcp_client_flush(cr->c, 100), TCP_ERR_NOT_RUNNING);

  /* Stopped after a new connection. */
  connect_tcp(cr, tcp_server_port(r->s));
  tcp_client_stop(cr->c);
  client_rec_mark_stopped(cr);
  CHECK_EQ(tcp_client_flush(cr->c, 100), TCP_ERR_NOT_RUNNING);

  client_rec_free(cr);
  server_rec_free(r);
}

/* ---- send_batch --------------------------------------------------------------------- */

typedef struct batch {
  unsigned char *buf;
  size_t len, cap;
  size_t count;
} batch;

/* Append one record: int32 kind 0, int32 client_id, int32 code 0, uint32 len,
 * then the data; native byte order, no padding. */
static void batch_add(batch *b, int id, const void *data, size_t len) {
  int32_t kind = 0, cid = id, code = 0;
  uint32_t n = (uint32_t)len;
  if (b->len + TCP_EVENT_HEADER_SIZE + len > b->cap) {
    b->cap = (b->len + TCP_EVENT_HEADER_SIZE + len) * 2;
    b->buf = realloc(b->buf, b->cap);
    REQUIRE(b->buf != NULL);
  }
  memcpy(b->buf + b->len, &kind, 4);
  memcpy(b->buf + b->len + 4, &cid, 4);
  memcpy(b->buf + b->len + 8, &code, 4);
  memcpy(b->buf + b->len + 12, &n, 4);
  if (len) memcpy(b->buf + b->len + TCP_EVENT_HEADER_SIZE, data, len);
  b->len += TCP_EVENT_HEADER_SIZE + len;
  b->count++;
}

static void batch_add_str(batch *b, int id, const char *text) {
  batch_add(b, id, text, strlen(text));
}

static void batch_reset(batch *b) {
  b->len = 0;
  b->count = 0;
}

/* A fragmented server and two fragmented clients a and b, connected. */
typedef struct pair {
  server_rec *r;
  client_rec *cr[2];
  int id[2];
} pair;

static void pair_start(pair *p, size_t max_len) {
  int i, port;
  p->r = server_rec_new(tcp_server_new_fragmented('\n', max_len));
  port = start_tcp(p->r->s);
  for (i = 0; i < 2; i++) {
    p->cr[i] = client_rec_new(tcp_client_new_fragmented('\n', max_len), NULL);
    connect_tcp(p->cr[i], port);
  }
  REQUIRE_WAIT(&p->r->m, p->r->established == 2);
  for (i = 0; i < 2; i++) REQUIRE_GT(p->id[i] = server_id_of(p->r, p->cr[i]->c), 0);
}

static void pair_free(pair *p) {
  client_rec_free(p->cr[0]);
  client_rec_free(p->cr[1]);
  server_rec_free(p->r);
}

/* Client i got exactly these messages, in order (waits for the count). */
#define CHECK_GOT(p, i, ...)                                                  \
  do {                                                                        \
    static const char *const want_[] = {__VA_ARGS__};                         \
    const int nwant_ = (int)(sizeof want_ / sizeof want_[0]);                 \
    int k_;                                                                   \
    CHECK_WAIT((p)->cr[i]->m, (p)->cr[i]->messages >= nwant_);                \
    LOCKED((p)->cr[i]->m, {                                                   \
      CHECK_EQ((p)->cr[i]->messages, nwant_);                                 \
      for (k_ = 0; k_ < nwant_; k_++)                                         \
        if (!msg_is(&(p)->cr[i]->msgs, k_, want_[k_]))                        \
          h_fail(__FILE__, __LINE__, "client %d message %d is not \"%s\"",    \
                 (i), k_, want_[k_]);                                         \
    });                                                                       \
  } while (0)

TEST(send_batch_two_clients_in_order) {
  enum { N = 50 };
  pair p;
  batch b = {0};
  char text[32];
  int i, k;

  pair_start(&p, 0);
  /* Interleaved a0 b0 a1 b1 ..., odd lengths so records sit unaligned. */
  for (k = 0; k < N; k++)
    for (i = 0; i < 2; i++) {
      snprintf(text, sizeof text, "c%d m%03d%s", i, k, k % 2 ? "" : "+");
      batch_add_str(&b, p.id[i], text);
    }
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, b.len, b.count), 2 * N);
  for (i = 0; i < 2; i++) {
    CHECK_WAIT(p.cr[i]->m, p.cr[i]->messages == N);
    LOCKED(p.cr[i]->m, {
      for (k = 0; k < N; k++) {
        snprintf(text, sizeof text, "c%d m%03d%s", i, k, k % 2 ? "" : "+");
        CHECK(msg_is(&p.cr[i]->msgs, k, text));
      }
    });
  }

  /* An empty message is a message; count 0 queues nothing. */
  batch_reset(&b);
  batch_add(&b, p.id[0], "", 0);
  batch_add_str(&b, p.id[0], "after empty");
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, b.len, b.count), 2);
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, b.len, 0), 0);
  CHECK_WAIT(p.cr[0]->m, p.cr[0]->messages == N + 2);
  LOCKED(p.cr[0]->m, {
    CHECK(msg_is(&p.cr[0]->msgs, N, ""));
    CHECK(msg_is(&p.cr[0]->msgs, N + 1, "after empty"));
  });

  /* Kind and code are ignored. */
  batch_reset(&b);
  batch_add_str(&b, p.id[1], "kind ignored");
  b.buf[0] = 7;
  b.buf[8] = 9;
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, b.len, b.count), 1);
  CHECK_WAIT(p.cr[1]->m, p.cr[1]->messages == N + 1);
  LOCKED(p.cr[1]->m, CHECK(msg_is(&p.cr[1]->msgs, N, "kind ignored")));

  pair_free(&p);
  free(b.buf);
}

TEST(send_batch_skips_unknown_client) {
  pair p;
  batch b = {0};

  pair_start(&p, 0);
  batch_add_str(&b, p.id[0], "x1");
  batch_add_str(&b, p.id[0] + p.id[1] + 1000, "nobody");
  batch_add_str(&b, p.id[1], "y1");
  batch_add_str(&b, p.id[0], "x2");
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, b.len, b.count), 3);
  CHECK_SERVER_ERROR_TEXT(p.r->s);
  CHECK_GOT(&p, 0, "x1", "x2");
  CHECK_GOT(&p, 1, "y1");

  /* Only unknown ids: nothing queued. */
  batch_reset(&b);
  batch_add_str(&b, 99999, "a");
  batch_add_str(&b, -5, "b");
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, b.len, b.count), 0);
  CHECK_SERVER_ERROR_TEXT(p.r->s);

  /* A stopped server queues nothing. */
  batch_reset(&b);
  batch_add_str(&b, p.id[0], "late");
  tcp_server_stop(p.r->s);
  server_rec_mark_stopped(p.r);
  CHECK_LT(tcp_server_send_batch(p.r->s, b.buf, b.len, b.count), 1);
  pair_free(&p);
  free(b.buf);
}

/* The header: "TCP_ERR_INVALID_ARG when buf ends inside a record (the
 * records before it are queued)". */
TEST(send_batch_truncated_buffer) {
  pair p;
  batch b = {0};
  size_t whole;

  pair_start(&p, 0);
  /* Cut inside the header of the third record. */
  batch_add_str(&b, p.id[0], "p1");
  batch_add_str(&b, p.id[1], "q1");
  whole = b.len;
  batch_add_str(&b, p.id[0], "never");
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, whole + 8, 3), TCP_ERR_INVALID_ARG);
  CHECK_SERVER_ERROR_TEXT(p.r->s);

  /* Cut inside the data of the third record. */
  batch_reset(&b);
  batch_add_str(&b, p.id[0], "p2");
  batch_add_str(&b, p.id[1], "q2");
  batch_add_str(&b, p.id[0], "never either");
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, b.len - 3, 3), TCP_ERR_INVALID_ARG);

  /* Cut in the first record: nothing queued. */
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, 10, 1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_send_batch(p.r->s, NULL, 16, 1), TCP_ERR_INVALID_ARG);

  /* The records before each cut were queued, and nothing after them. */
  CHECK_GOT(&p, 0, "p1", "p2");
  CHECK_GOT(&p, 1, "q1", "q2");
  CHECK_EQ(tcp_send_msg(p.r->s, p.id[0], "end", 3), 1);
  CHECK_GOT(&p, 0, "p1", "p2", "end");
  pair_free(&p);
  free(b.buf);
}

/* Fragmented mode: the delimiter is appended; a message holding it (or
 * longer than max_len) is refused and skipped. */
TEST(send_batch_fragmented_refusals) {
  pair p;
  batch b = {0};

  pair_start(&p, 8);
  batch_add_str(&b, p.id[0], "ok1");
  batch_add_str(&b, p.id[0], "bad\nmsg");
  batch_add_str(&b, p.id[1], "ok2");
  batch_add_str(&b, p.id[0], "123456789"); /* max_len + 1 */
  batch_add_str(&b, p.id[0], "12345678");  /* exactly max_len */
  batch_add_str(&b, p.id[1], "\n");
  batch_add_str(&b, p.id[1], "ok3");
  CHECK_EQ(tcp_server_send_batch(p.r->s, b.buf, b.len, b.count), 4);
  CHECK_SERVER_ERROR_TEXT(p.r->s);
  CHECK_GOT(&p, 0, "ok1", "12345678");
  CHECK_GOT(&p, 1, "ok2", "ok3");
  pair_free(&p);
  free(b.buf);
}

TEST(send_batch_continuous) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  static const char want[] = "abc\ndefgh-ijk";
  batch b = {0};
  int id;

  connect_tcp(cr, start_tcp(r->s));
  REQUIRE_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  batch_add_str(&b, id, "abc\n");
  batch_add_str(&b, id, "defgh");
  batch_add_str(&b, id, "-ijk");
  CHECK_EQ(tcp_server_send_batch(r->s, b.buf, b.len, b.count), 3);
  CHECK_WAIT(cr->m, msgs_concat_is(&cr->msgs, want, sizeof want - 1));
  client_rec_free(cr);
  server_rec_free(r);
  free(b.buf);
}

/* ---- stop from callbacks, then free from main ------------------------------------- */

/* Callbacks that call tcp_server_stop (from on_message or on_closed) and
 * count what runs when; main frees the server while some of them are still
 * inside a callback (held there until main is about to free), then checks
 * that free waited for all of them and that none runs afterwards. */
enum { STOP_IN_MESSAGE = 1, STOP_IN_CLOSED = 2 };

static monitor g_stop_m; /* shared by every round's context */
static int g_late;        /* callbacks entered after free returned */
static char g_late_text[128];

typedef struct stop_ctx {
  tcp_server *s;
  int mode, hold;
  int active;           /* callbacks running now */
  int established, closed, messages;
  int stops_returned;   /* tcp_server_stop calls made in callbacks, returned */
  int freeing, freed;
  int ids[8], nids, closed_of[8];
  int bad;              /* order breaches: closed twice, unknown id... */
} stop_ctx;

static void ctx_enter(stop_ctx *x, const char *what, int id) {
  monitor_lock(&g_stop_m);
  if (x->freed && g_late++ == 0)
    snprintf(g_late_text, sizeof g_late_text,
             "%s for client %d after tcp_server_free returned", what, id);
  x->active++;
  monitor_unlock(&g_stop_m);
}

/* With g_stop_m held. */
static int ctx_index(stop_ctx *x, int id) {
  int i;
  for (i = 0; i < x->nids; i++)
    if (x->ids[i] == id) return i;
  return -1;
}

static void ctx_stop_and_leave(stop_ctx *x, int stop) {
  struct timespec dl;
  if (stop) tcp_server_stop(x->s);
  monitor_lock(&g_stop_m);
  if (stop) {
    x->stops_returned++;
    monitor_broadcast(&g_stop_m);
    /* Stay inside until main is about to free (bounded). */
    deadline_in(&dl, 2000);
    while (x->hold && !x->freeing && monitor_wait(&g_stop_m, &dl) == 0) {
    }
  }
  x->active--;
  monitor_broadcast(&g_stop_m);
  monitor_unlock(&g_stop_m);
}

static void stop_on_established(void *ud, int id) {
  stop_ctx *x = ud;
  ctx_enter(x, "established", id);
  monitor_lock(&g_stop_m);
  if (ctx_index(x, id) >= 0 || x->nids >= 8) x->bad++;
  else x->ids[x->nids++] = id;
  x->established++;
  monitor_unlock(&g_stop_m);
  ctx_stop_and_leave(x, 0);
}

static void stop_on_message(void *ud, int id, const char *data, size_t len) {
  stop_ctx *x = ud;
  int i;
  (void)data;
  (void)len;
  ctx_enter(x, "message", id);
  monitor_lock(&g_stop_m);
  i = ctx_index(x, id);
  if (i < 0 || x->closed_of[i]) x->bad++;
  x->messages++;
  monitor_unlock(&g_stop_m);
  ctx_stop_and_leave(x, x->mode == STOP_IN_MESSAGE);
}

static void stop_on_closed(void *ud, int id) {
  stop_ctx *x = ud;
  int i;
  ctx_enter(x, "closed", id);
  monitor_lock(&g_stop_m);
  i = ctx_index(x, id);
  if (i < 0 || x->closed_of[i]++) x->bad++;
  x->closed++;
  monitor_unlock(&g_stop_m);
  ctx_stop_and_leave(x, x->mode == STOP_IN_CLOSED);
}

static void stop_on_error(void *ud, int id, int code, const char *message) {
  stop_ctx *x = ud;
  (void)code;
  (void)message;
  ctx_enter(x, "error", id);
  ctx_stop_and_leave(x, 0);
}

static void stop_in_callbacks_rounds(int mode) {
  enum { ROUNDS = 100, N = 3 };
  static stop_ctx ctx[ROUNDS]; /* kept alive for any late callback */
  int round, i, port, late, total_stops = 0;
  monitor cm;

  monitor_init(&g_stop_m);
  monitor_init(&cm);
  for (round = 0; round < ROUNDS; round++) {
    stop_ctx *x = &ctx[round];
    client_rec *cr[N];
    int ok;

    memset(x, 0, sizeof *x);
    x->mode = mode;
    x->hold = round % 2; /* half the rounds keep a callback inside */
    x->s = tcp_server_new();
    REQUIRE(x->s != NULL);
    tcp_server_set_on_established(x->s, stop_on_established, x);
    tcp_server_set_on_message(x->s, stop_on_message, x);
    tcp_server_set_on_closed(x->s, stop_on_closed, x);
    tcp_server_set_on_error(x->s, stop_on_error, x);
    port = start_tcp(x->s);
    for (i = 0; i < N; i++) {
      cr[i] = client_rec_new(tcp_client_new(), &cm);
      connect_tcp(cr[i], port);
    }
    REQUIRE_WAIT(&g_stop_m, x->established == N);

    if (mode == STOP_IN_MESSAGE) {
      /* All three at once: several callbacks stop concurrently. */
      /* Sends write at once when nothing is queued, so the first "stop"
       * may close the others' connections before their sends. */
      for (i = 0; i < N; i++) {
        int sent = tcp_client_send(cr[i]->c, "stop", 4);
        if (i == 0) CHECK_EQ(sent, 1);
      }
    } else {
      /* One client leaves; its closed callback stops the server, whose
       * other closed callbacks stop it again. */
      tcp_client_stop(cr[0]->c);
    }
    /* A stop from a callback returned (it must not wait for the others). */
    WAIT_UNTIL(ok, &g_stop_m, x->stops_returned >= 1, WAIT_MS);
    if (!ok) {
      h_fail(__FILE__, __LINE__, "round %d: no tcp_server_stop returned in a callback", round);
      h_abort();
    }
    LOCKED(&g_stop_m, (x->freeing = 1, monitor_broadcast(&g_stop_m)));
    tcp_server_free(x->s);

    monitor_lock(&g_stop_m);
    if (x->active != 0)
      h_fail(__FILE__, __LINE__,
             "round %d: %d callback(s) still running when tcp_server_free returned",
             round, x->active);
    if (x->closed != x->established)
      h_fail(__FILE__, __LINE__,
             "round %d: %d established but %d closed when tcp_server_free returned",
             round, x->established, x->closed);
    if (x->bad) h_fail(__FILE__, __LINE__, "round %d: %d order breach(es)", round, x->bad);
    x->freed = 1;
    total_stops += x->stops_returned;
    monitor_unlock(&g_stop_m);

    for (i = 0; i < N; i++) {
      CHECK_WAIT(&cm, cr[i]->closed == 1);
      client_rec_free(cr[i]);
    }
  }
  CHECK_GE(total_stops, ROUNDS);

  /* Nothing may run after free returned; a bounded wait (200 ms) for any
   * straggler -- something that must not happen. */
  WAIT_UNTIL(late, &g_stop_m, g_late > 0, 200);
  if (late) h_fail(__FILE__, __LINE__, "%d late callback(s): %s", g_late, g_late_text);
  monitor_destroy(&cm);
  /* g_stop_m and ctx stay: a callback after free would still find them. */
}

TEST(stop_in_message_callbacks_then_free) { stop_in_callbacks_rounds(STOP_IN_MESSAGE); }
TEST(stop_in_closed_callbacks_then_free) { stop_in_callbacks_rounds(STOP_IN_CLOSED); }

/* ---- the option ----------------------------------------------------------------------- */

TEST(linger_option) {
  tcp_server *s = tcp_server_new();
  tcp_client *c = tcp_client_new();
  int port;

  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_LINGER_MS, -1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_LINGER_MS, -1000000), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_LINGER_MS, 0), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_LINGER_MS, 1000), 0);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_LINGER_MS, 60000), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_LINGER_MS, -1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_LINGER_MS, 0), 0);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_LINGER_MS, 1000), 0);
  CHECK_EQ(tcp_server_set_option(NULL, TCP_OPT_LINGER_MS, 10), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_set_option(NULL, TCP_OPT_LINGER_MS, 10), TCP_ERR_INVALID_ARG);

  port = start_tcp(s);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_LINGER_MS, 10), TCP_ERR_ALREADY_RUNNING);
  REQUIRE_EQ(tcp_client_start(c, "127.0.0.1", port), TCP_START_OK);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_LINGER_MS, 10), TCP_ERR_ALREADY_RUNNING);

  tcp_client_stop(c);
  CHECK_EQ(tcp_client_set_option(c, TCP_OPT_LINGER_MS, 10), 0);
  tcp_server_stop(s);
  CHECK_EQ(tcp_server_set_option(s, TCP_OPT_LINGER_MS, 10), 0);
  tcp_client_free(c);
  tcp_server_free(s);
}

const test_case delivery_tests[] = {
    TEST_ENTRY(linger_option),
    TEST_ENTRY(client_send_then_stop_delivers),
    TEST_ENTRY(client_send_then_stop_linger_0),
    TEST_ENTRY(close_client_delivers_goodbye),
    TEST_ENTRY(server_stop_delivers_to_each_client),
    TEST_ENTRY(linger_bounded_server_stop_and_close_client),
    TEST_ENTRY(linger_0_server_stop_does_not_wait),
    TEST_ENTRY(linger_bounded_client_stop),
    TEST_ENTRY(server_flush_writes_before_returning),
    TEST_ENTRY(server_flush_errors),
    TEST_ENTRY(server_flush_from_callback),
    TEST_ENTRY(client_flush),
    TEST_ENTRY(client_flush_timeout),
    TEST_ENTRY(send_batch_two_clients_in_order),
    TEST_ENTRY(send_batch_skips_unknown_client),
    TEST_ENTRY(send_batch_truncated_buffer),
    TEST_ENTRY(send_batch_fragmented_refusals),
    TEST_ENTRY(send_batch_continuous),
    TEST_ENTRY(stop_in_message_callbacks_then_free),
    TEST_ENTRY(stop_in_closed_callbacks_then_free),
    TEST_END,
};
