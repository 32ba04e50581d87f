/*
 * test_batch.c -- the batch message callbacks (tcp_server_set_on_messages,
 * tcp_client_set_on_messages) and tcp_*_send_msgs: exact bytes and order
 * over many messages per read, batching, TCP_MSG_PARTIAL, conn_data, the
 * precedence over the other message callbacks (also when switched while
 * running), stop / close from inside a batch, replies from inside it with
 * tcp_send_msg, tcp_server_send_msgs and tcp_server_send_batch, TLS on
 * both sides, and the errors of tcp_*_send_msgs (including the thread's
 * error record, which the per-message sends clear on the C side).
 *
 * A batch recorder (brec) keeps every message as "data\n" (or "data+" for
 * a part flagged TCP_MSG_PARTIAL) in one log, so that a test compares the
 * whole stream at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

/* ---- the batch recorder ------------------------------------------------- */

enum reply {
  REPLY_NONE = 0,
  REPLY_SEND_MSG,   /* tcp_send_msg per message */
  REPLY_SEND_MSGS,  /* tcp_server_send_msgs with the received array */
  REPLY_SEND_BATCH, /* tcp_server_send_batch, records built here */
  REPLY_STOP,       /* tcp_server_stop / tcp_client_stop in the first batch */
  REPLY_CLOSE       /* tcp_server_close_client in the first batch */
};

typedef struct brec {
  monitor m;
  tcp_server *s;
  tcp_client *c;
  int reply;
  int check_conn_data; /* compare conn_data with tcp_server_conn_data */
  /* what came */
  char *log;
  size_t len, cap;
  size_t msgs, calls, max_count, partial;
  size_t ex_msgs, plain_msgs; /* through the other message callbacks */
  int in_cb, overlaps;
  int reply_failures;
  int conn_data_mismatch, conn_data_null;
  int stop_returned, close_rc, after_stop;
} brec;

static brec *brec_new(void) {
  brec *b = calloc(1, sizeof *b);
  REQUIRE(b != NULL);
  monitor_init(&b->m);
  b->close_rc = 1;
  return b;
}

static void brec_free(brec *b) {
  monitor_destroy(&b->m);
  free(b->log);
  free(b);
}

/* Monitor held. */
static void log_add(brec *b, const char *data, size_t len, int flags) {
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len + 1) cap *= 2;
    b->log = realloc(b->log, cap);
    REQUIRE(b->log != NULL);
    b->cap = cap;
  }
  memcpy(b->log + b->len, data, len);
  b->len += len;
  b->log[b->len++] = (flags & TCP_MSG_PARTIAL) ? '+' : '\n';
}

static int log_is(brec *b, const char *want, size_t wlen) {
  int ok;
  monitor_lock(&b->m);
  ok = b->len == wlen && memcmp(b->log, want, wlen) == 0;
  if (!ok) {
    size_t i = 0;
    while (i < b->len && i < wlen && b->log[i] == want[i]) i++;
    fprintf(stderr, "    log differs at byte %zu (have %zu bytes, want %zu)\n", i,
            b->len, wlen);
  }
  monitor_unlock(&b->m);
  return ok;
}

/* Records a batch (monitor held); returns the reply mode. */
static int batch_enter(brec *b, const tcp_msg *msgs, size_t count) {
  size_t i;
  if (b->in_cb) b->overlaps++;
  b->in_cb = 1;
  if (b->stop_returned || b->close_rc == 0) b->after_stop++;
  b->calls++;
  if (count > b->max_count) b->max_count = count;
  for (i = 0; i < count; i++) {
    if (msgs[i].data == NULL) b->reply_failures += 1000;
    if (msgs[i].flags & TCP_MSG_PARTIAL) b->partial++;
    log_add(b, msgs[i].data, msgs[i].len, msgs[i].flags);
  }
  b->msgs += count;
  return b->reply;
}

static void batch_leave(brec *b) {
  monitor_lock(&b->m);
  b->in_cb = 0;
  monitor_broadcast(&b->m);
  monitor_unlock(&b->m);
}

/* The replies of a server batch, without the monitor held. */
static int reply_batch(tcp_server *s, int id, const tcp_msg *msgs,
                       size_t count) {
  size_t i, size = 0, off = 0;
  char *buf;
  int n;
  for (i = 0; i < count; i++) size += TCP_EVENT_HEADER_SIZE + msgs[i].len;
  buf = malloc(size ? size : 1);
  if (buf == NULL) return 0;
  for (i = 0; i < count; i++) {
    int32_t hdr[3] = {0, id, 0};
    uint32_t len = (uint32_t)msgs[i].len;
    memcpy(buf + off, hdr, sizeof hdr);
    memcpy(buf + off + 12, &len, 4);
    memcpy(buf + off + TCP_EVENT_HEADER_SIZE, msgs[i].data, msgs[i].len);
    off += TCP_EVENT_HEADER_SIZE + msgs[i].len;
  }
  n = tcp_server_send_batch(s, buf, size, count);
  free(buf);
  return n == (int)count;
}

static void srv_batch(void *ud, int id, void *conn_data, const tcp_msg *msgs,
                      size_t count) {
  brec *b = ud;
  int reply, ok = 1, stopped = 0;
  size_t i;
  monitor_lock(&b->m);
  reply = batch_enter(b, msgs, count);
  monitor_unlock(&b->m);

  if (b->check_conn_data) {
    void *want = tcp_server_conn_data(b->s, id);
    monitor_lock(&b->m);
    if (conn_data == NULL) b->conn_data_null++;
    if (conn_data != want) b->conn_data_mismatch++;
    monitor_unlock(&b->m);
  }
  switch (reply) {
  case REPLY_SEND_MSG:
    for (i = 0; i < count; i++) ok &= tcp_send_msg(b->s, id, msgs[i].data, msgs[i].len);
    break;
  case REPLY_SEND_MSGS:
    ok = tcp_server_send_msgs(b->s, id, msgs, count) == (int)count;
    break;
  case REPLY_SEND_BATCH:
    ok = reply_batch(b->s, id, msgs, count);
    break;
  case REPLY_STOP:
    tcp_server_stop(b->s);
    stopped = 1;
    break;
  case REPLY_CLOSE: {
    int rc = tcp_server_close_client(b->s, id);
    LOCKED(&b->m, b->close_rc = rc);
    break;
  }
  }
  monitor_lock(&b->m);
  if (!ok) b->reply_failures++;
  if (stopped) {
    b->stop_returned = 1;
    b->reply = REPLY_NONE;
  }
  monitor_unlock(&b->m);
  batch_leave(b);
}

static void cli_batch(void *ud, const tcp_msg *msgs, size_t count) {
  brec *b = ud;
  int reply;
  monitor_lock(&b->m);
  reply = batch_enter(b, msgs, count);
  monitor_unlock(&b->m);
  if (reply == REPLY_STOP) {
    tcp_client_stop(b->c);
    LOCKED(&b->m, b->stop_returned = 1);
  } else if (reply == REPLY_SEND_MSGS) {
    if (tcp_client_send_msgs(b->c, msgs, count) != (int)count)
      LOCKED(&b->m, b->reply_failures++);
  }
  batch_leave(b);
}

/* The other message callbacks, logging into the same brec. */
static void srv_ex(void *ud, int id, void *cd, const char *data, size_t len,
                   int flags) {
  brec *b = ud;
  (void)id;
  (void)cd;
  monitor_lock(&b->m);
  b->ex_msgs++;
  b->msgs++;
  log_add(b, data, len, flags);
  monitor_broadcast(&b->m);
  monitor_unlock(&b->m);
}

static void srv_plain(void *ud, int id, const char *data, size_t len) {
  brec *b = ud;
  (void)id;
  monitor_lock(&b->m);
  b->plain_msgs++;
  b->msgs++;
  log_add(b, data, len, 0);
  monitor_broadcast(&b->m);
  monitor_unlock(&b->m);
}

/* "m<first>-xxxx\n" ... for n messages, with a filler making lengths vary;
 * returns a malloc'd string, its length in *len. */
static char *lines(int first, int n, size_t *len) {
  size_t cap = (size_t)n * 64 + 1, off = 0;
  char *s = malloc(cap);
  int i;
  REQUIRE(s != NULL);
  for (i = first; i < first + n; i++)
    off += (size_t)snprintf(s + off, cap - off, "m%d-%.*s\n", i, i % 37,
                            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF");
  *len = off;
  return s;
}

/* Read exactly want bytes from fd and compare. */
static void expect_bytes(int fd, const char *want, size_t wlen) {
  char *got = malloc(wlen + 1);
  int end = 0;
  size_t n;
  REQUIRE(got != NULL);
  n = raw_read(fd, got, wlen, WAIT_MS, &end);
  CHECK_EQ(n, wlen);
  CHECK(n == wlen && memcmp(got, want, wlen) == 0);
  free(got);
}

/* ---- server, plain TCP -------------------------------------------------- */

/* 3000 lines in one write: every one in order through the batch callback,
 * in fewer calls than messages; the plain callback of the recorder and an
 * extended one never run; replies with the given mode come back whole. */
static void server_batches(int reply) {
  enum { N = 3000 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  brec *b = brec_new();
  size_t len;
  char *text = lines(0, N, &len);
  int fd, port;

  b->s = r->s;
  b->reply = reply;
  tcp_server_set_on_messages(r->s, srv_batch, b);
  tcp_server_set_on_message_ex(r->s, srv_ex, b);
  port = start_tcp(r->s);
  fd = raw_connect(port);
  REQUIRE_EQ(raw_send_all(fd, text, len), 0);
  REQUIRE_WAIT(&b->m, b->msgs == N && !b->in_cb);
  CHECK(log_is(b, text, len));
  LOCKED(&b->m, {
    CHECK_LT(b->calls, N);
    CHECK_EQ(b->ex_msgs, 0);
    CHECK_EQ(b->overlaps, 0);
    CHECK_EQ(b->reply_failures, 0);
  });
  LOCKED(&r->m, CHECK_EQ(r->messages, 0));
  if (reply != REPLY_NONE) expect_bytes(fd, text, len);
  fprintf(stderr, "    %d messages in %zu batches (largest %zu)\n", N, b->calls,
          b->max_count);
  close(fd);
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r);
  brec_free(b);
  free(text);
}

TEST(batch_server_order_and_batching) { server_batches(REPLY_NONE); }
TEST(batch_server_reply_send_msg) { server_batches(REPLY_SEND_MSG); }
TEST(batch_server_reply_send_msgs) { server_batches(REPLY_SEND_MSGS); }
TEST(batch_server_reply_send_batch) { server_batches(REPLY_SEND_BATCH); }

/* Continuous mode: the bytes as they arrive, glued back = what was sent. */
TEST(batch_server_continuous) {
  enum { SIZE = 200000 };
  server_rec *r = server_rec_new(tcp_server_new());
  brec *b = brec_new();
  char *data = malloc(SIZE);
  int fd, i;
  size_t total = 0, j, k = 0;
  REQUIRE(data != NULL);
  for (i = 0; i < SIZE; i++) data[i] = (char)('a' + i % 26);
  b->s = r->s;
  b->reply = REPLY_SEND_MSGS;
  tcp_server_set_on_messages(r->s, srv_batch, b);
  fd = raw_connect(start_tcp(r->s));
  REQUIRE_EQ(raw_send_all(fd, data, SIZE), 0);
  /* The log holds each chunk plus a '\n': count bytes without them. */
  REQUIRE_WAIT(&b->m, b->len - b->msgs == SIZE && !b->in_cb);
  monitor_lock(&b->m);
  for (j = 0; j < b->len; j++)
    if (b->log[j] != '\n') {
      if (k < SIZE && b->log[j] != data[k]) break;
      k++;
    }
  total = k;
  monitor_unlock(&b->m);
  CHECK_EQ(total, SIZE);
  expect_bytes(fd, data, SIZE);
  close(fd);
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r);
  brec_free(b);
  free(data);
}

/* Parts of overlong lines come flagged, in order with whole ones. */
TEST(batch_partial_flags) {
  static const char in[] = "ab\r\nxxxxxxxxxxxxxxxxxxxx\r\nend\r\n";
  static const char want[] = "ab\nxxxxxxxx+xxxxxxxx+xxxx\nend\n";
  server_rec *r = server_rec_new(tcp_server_new_eol("\r\n", 2, 8, TCP_OVERLONG_PARTS));
  brec *b = brec_new();
  int fd;
  b->s = r->s;
  tcp_server_set_on_messages(r->s, srv_batch, b);
  fd = raw_connect(start_tcp(r->s));
  REQUIRE_EQ(raw_send_all(fd, in, sizeof in - 1), 0);
  REQUIRE_WAIT(&b->m, b->msgs == 5);
  CHECK(log_is(b, want, sizeof want - 1));
  LOCKED(&b->m, CHECK_EQ(b->partial, 2));
  close(fd);
  CHECK_WAIT(&r->m, r->closed == 1);
  server_rec_free(r);
  brec_free(b);
}

/* conn_data set in established reaches every batch of that connection. */
TEST(batch_conn_data) {
  enum { CONNS = 4, N = 500 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  server_ext *x = server_ext_new(r, 0);
  brec *b = brec_new();
  size_t len;
  char *text = lines(0, N, &len);
  int fd[CONNS], i, port;
  x->set_conn_data = 1;
  b->s = r->s;
  b->check_conn_data = 1;
  tcp_server_set_on_messages(r->s, srv_batch, b);
  port = start_tcp(r->s);
  for (i = 0; i < CONNS; i++) fd[i] = raw_connect(port);
  for (i = 0; i < CONNS; i++) REQUIRE_EQ(raw_send_all(fd[i], text, len), 0);
  REQUIRE_WAIT(&b->m, b->msgs == CONNS * N && !b->in_cb);
  LOCKED(&b->m, {
    CHECK_EQ(b->conn_data_null, 0);
    CHECK_EQ(b->conn_data_mismatch, 0);
  });
  for (i = 0; i < CONNS; i++) close(fd[i]);
  CHECK_WAIT(&r->m, r->closed == CONNS);
  server_rec_free(r);
  server_ext_free(x);
  brec_free(b);
  free(text);
}

/* Batch over extended over plain; switching while connected loses and
 * repeats nothing, and each phase goes to the callback it should. */
TEST(batch_precedence_and_switching) {
  enum { N = 400 };
  tcp_server *s = tcp_server_new_fragmented('\n', 0);
  brec *b = brec_new();
  size_t len[4], all = 0;
  char *text[4], *want;
  int fd, phase;
  size_t ex_before = 0, plain_before = 0, calls_before = 0;
  REQUIRE(s != NULL);
  b->s = s;
  tcp_server_set_on_message(s, srv_plain, b);
  tcp_server_set_on_message_ex(s, srv_ex, b);
  tcp_server_set_on_messages(s, srv_batch, b);
  fd = raw_connect(start_tcp(s));
  for (phase = 0; phase < 4; phase++) {
    text[phase] = lines(phase * N, N, &len[phase]);
    switch (phase) {
    case 1: tcp_server_set_on_messages(s, NULL, NULL); break;  /* -> ex */
    case 2: tcp_server_set_on_message_ex(s, NULL, NULL); break; /* -> plain */
    case 3: tcp_server_set_on_messages(s, srv_batch, b); break; /* -> batch */
    }
    LOCKED(&b->m, {
      ex_before = b->ex_msgs;
      plain_before = b->plain_msgs;
      calls_before = b->calls;
    });
    REQUIRE_EQ(raw_send_all(fd, text[phase], len[phase]), 0);
    REQUIRE_WAIT(&b->m, b->msgs == (size_t)(phase + 1) * N && !b->in_cb);
    LOCKED(&b->m, {
      CHECK_EQ(b->ex_msgs - ex_before, phase == 1 ? N : 0);
      CHECK_EQ(b->plain_msgs - plain_before, phase == 2 ? N : 0);
      if (phase == 0 || phase == 3) CHECK_GT(b->calls, calls_before);
      else CHECK_EQ(b->calls, calls_before);
    });
  }
  for (phase = 0; phase < 4; phase++) all += len[phase];
  want = malloc(all);
  REQUIRE(want != NULL);
  all = 0;
  for (phase = 0; phase < 4; phase++) {
    memcpy(want + all, text[phase], len[phase]);
    all += len[phase];
    free(text[phase]);
  }
  CHECK(log_is(b, want, all));
  close(fd);
  tcp_server_free(s);
  brec_free(b);
  free(want);
}

/* tcp_server_stop from inside a batch: it returns there, closed follows,
 * no batch comes after. */
TEST(batch_stop_inside) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  brec *b = brec_new();
  size_t len;
  char *text = lines(0, 2000, &len);
  int fd;
  b->s = r->s;
  b->reply = REPLY_STOP;
  tcp_server_set_on_messages(r->s, srv_batch, b);
  fd = raw_connect(start_tcp(r->s));
  REQUIRE_EQ(raw_send_all(fd, text, len), 0);
  REQUIRE_WAIT(&b->m, b->stop_returned && !b->in_cb);
  CHECK_WAIT(&r->m, r->closed == 1);
  CHECK_EQ(raw_wait_closed(fd, WAIT_MS, NULL) != 0, 1);
  server_rec_mark_stopped(r);
  LOCKED(&b->m, {
    CHECK_EQ(b->calls, 1);
    CHECK_EQ(b->after_stop, 0);
  });
  CHECK_EQ(tcp_server_is_running(r->s), 0);
  close(fd);
  server_rec_free(r);
  brec_free(b);
  free(text);
}

/* tcp_server_close_client from inside a batch: 0, the peer sees the end,
 * no later batch of that connection. */
TEST(batch_close_client_inside) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  brec *b = brec_new();
  size_t len;
  char *text = lines(0, 2000, &len);
  int fd;
  b->s = r->s;
  b->reply = REPLY_CLOSE;
  tcp_server_set_on_messages(r->s, srv_batch, b);
  fd = raw_connect(start_tcp(r->s));
  REQUIRE_EQ(raw_send_all(fd, text, len), 0);
  CHECK_WAIT(&r->m, r->closed == 1);
  CHECK_EQ(raw_wait_closed(fd, WAIT_MS, NULL) != 0, 1);
  LOCKED(&b->m, {
    CHECK_EQ(b->close_rc, 0);
    CHECK_EQ(b->calls, 1);
    CHECK_EQ(b->after_stop, 0);
  });
  close(fd);
  server_rec_free(r);
  brec_free(b);
  free(text);
}

/* ---- clients, TCP and TLS ----------------------------------------------- */

/* A client sends N lines with tcp_client_send_msgs (in arrays of 100); the
 * server's batch callback echoes them (mode); the client's batch callback
 * receives them in order. */
static void client_round_trip(int tls, int reply) {
  enum { N = 3000, ARR = 100 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  brec *sb = brec_new(), *cb = brec_new();
  tcp_msg arr[ARR];
  size_t len, off = 0, k = 0;
  char *text = lines(0, N, &len);
  int port, i;

  sb->s = r->s;
  sb->reply = reply;
  cb->c = cr->c;
  tcp_server_set_on_messages(r->s, srv_batch, sb);
  tcp_client_set_on_messages(cr->c, cli_batch, cb);
  port = tls ? start_mtls(r->s, &fx()->main) : start_tcp(r->s);
  if (tls) connect_mtls(cr, port, &fx()->main);
  else connect_tcp(cr, port);
  /* Split text back into its lines (without the '\n', which the framing
   * appends) and send them in arrays. */
  for (i = 0; i < N; i++) {
    const char *nl = memchr(text + off, '\n', len - off);
    REQUIRE(nl != NULL);
    arr[k].data = text + off;
    arr[k].len = (size_t)(nl - (text + off));
    arr[k].flags = 0;
    k++;
    off = (size_t)(nl - text) + 1;
    if (k == ARR || i == N - 1) {
      CHECK_EQ(tcp_client_send_msgs(cr->c, arr, k), (int)k);
      k = 0;
    }
  }
  REQUIRE_WAIT(&sb->m, sb->msgs == N && !sb->in_cb);
  REQUIRE_WAIT(&cb->m, cb->msgs == N && !cb->in_cb);
  CHECK(log_is(sb, text, len));
  CHECK(log_is(cb, text, len));
  LOCKED(&sb->m, CHECK_EQ(sb->reply_failures, 0));
  LOCKED(&cb->m, CHECK_LT(cb->calls, N));
  LOCKED(cr->m, CHECK_EQ(cr->messages, 0)); /* the plain callback: never */
  LOCKED(&r->m, CHECK_EQ(r->messages, 0));
  tcp_client_stop(cr->c);
  client_rec_mark_stopped(cr);
  CHECK_WAIT(&r->m, r->closed == 1);
  client_rec_free(cr);
  server_rec_free(r);
  brec_free(sb);
  brec_free(cb);
  free(text);
}

TEST(batch_client_tcp) { client_round_trip(0, REPLY_SEND_MSGS); }
TEST(batch_client_tls) { client_round_trip(1, REPLY_SEND_MSG); }
TEST(batch_client_tls_send_batch) { client_round_trip(1, REPLY_SEND_BATCH); }

/* tcp_client_stop from inside the client's batch callback. */
TEST(batch_client_stop_inside) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  brec *cb = brec_new();
  int id, i;
  cb->c = cr->c;
  cb->reply = REPLY_STOP;
  tcp_client_set_on_messages(cr->c, cli_batch, cb);
  connect_tcp(cr, start_tcp(r->s));
  REQUIRE_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  /* The first is queued; the rest may meet a connection already closing
   * (the client stops at its first batch). */
  CHECK_EQ(tcp_send_msg(r->s, id, "hello", 5), 1);
  for (i = 1; i < 100; i++) (void)tcp_send_msg(r->s, id, "hello", 5);
  REQUIRE_WAIT(&cb->m, cb->stop_returned && !cb->in_cb);
  CHECK_WAIT(cr->m, cr->closed == 1);
  client_rec_mark_stopped(cr);
  LOCKED(&cb->m, CHECK_EQ(cb->calls, 1));
  CHECK_EQ(tcp_client_is_running(cr->c), 0);
  CHECK_WAIT(&r->m, r->closed == 1);
  client_rec_free(cr);
  server_rec_free(r);
  brec_free(cb);
}

/* ---- tcp_*_send_msgs: results and errors -------------------------------- */

TEST(send_msgs_errors) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  tcp_client *c = tcp_client_new_fragmented('\n', 0);
  tcp_server *freed = tcp_server_new();
  tcp_msg good[3] = {{"one", 3, 0}, {"two", 3, TCP_MSG_PARTIAL}, {"", 0, 0}};
  tcp_msg bad[3] = {{"ok", 2, 0}, {"a\nb", 3, 0}, {"never", 5, 0}};
  tcp_msg null_data[2] = {{"ok", 2, 0}, {NULL, 4, 0}};
  char got[64];
  int fd, id, end = 0;

  REQUIRE(c != NULL && freed != NULL);
  tcp_server_free(freed);
  CHECK_EQ(tcp_server_send_msgs(NULL, 1, good, 3), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_errcode(), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_send_msgs(freed, 1, good, 3), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_send_msgs(NULL, good, 3), TCP_ERR_INVALID_ARG);
  tcp_server_set_on_messages(freed, srv_batch, NULL); /* ignored */
  tcp_server_set_on_messages(NULL, srv_batch, NULL);
  tcp_client_set_on_messages(NULL, cli_batch, NULL);
  CHECK_EQ(tcp_server_send_msgs(r->s, 1, good, 0), 0);
  CHECK_EQ(tcp_server_send_msgs(r->s, 1, good, 3), 0); /* not running */
  CHECK_EQ(tcp_errcode(), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_client_send_msgs(c, good, 3), 0);
  CHECK_EQ(tcp_errcode(), TCP_ERR_NOT_RUNNING);

  fd = raw_connect(start_tcp(r->s));
  REQUIRE_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(tcp_server_send_msgs(r->s, id, NULL, 2), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_send_msgs(r->s, id + 1000, good, 3), 0);
  CHECK_EQ(tcp_errcode(), TCP_ERR_NO_CLIENT);
  /* A success clears this thread's record (done on the C side now). */
  CHECK_EQ(tcp_send_msg(r->s, id, "x", 1), 1);
  CHECK_EQ(tcp_errcode(), 0);
  CHECK_EQ(errmsg_text()[0], '\0');
  CHECK_EQ(tcp_server_send_msgs(r->s, id, bad, 3), 1); /* stops at "a\nb" */
  CHECK_EQ(tcp_errcode(), TCP_ERR_CONTAINS_DELIMITER);
  CHECK_SERVER_ERROR_TEXT(r->s);
  CHECK_EQ(tcp_server_send_ex(r->s, id, "y", 1), 0);
  CHECK_EQ(tcp_errcode(), 0);
  CHECK_EQ(tcp_server_send_msgs(r->s, id, null_data, 2), 1);
  CHECK_EQ(tcp_errcode(), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_send_msgs(r->s, id, good, 3), 3); /* flags ignored */
  CHECK_EQ(tcp_errcode(), 0);
  /* x, ok (bad[0]), y, ok (null_data[0]), one, two, "" */
  {
    static const char want[] = "x\nok\ny\nok\none\ntwo\n\n";
    size_t n = raw_read(fd, got, sizeof want - 1, WAIT_MS, &end);
    CHECK_EQ(n, sizeof want - 1);
    CHECK(n == sizeof want - 1 && memcmp(got, want, n) == 0);
  }
  close(fd);
  CHECK_WAIT(&r->m, r->closed == 1);
  tcp_client_free(c);
  server_rec_free(r);
}

const test_case batch_tests[] = {
    TEST_ENTRY(batch_server_order_and_batching),
    TEST_ENTRY(batch_server_reply_send_msg),
    TEST_ENTRY(batch_server_reply_send_msgs),
    TEST_ENTRY(batch_server_reply_send_batch),
    TEST_ENTRY(batch_server_continuous),
    TEST_ENTRY(batch_partial_flags),
    TEST_ENTRY(batch_conn_data),
    TEST_ENTRY(batch_precedence_and_switching),
    TEST_ENTRY(batch_stop_inside),
    TEST_ENTRY(batch_close_client_inside),
    TEST_ENTRY(batch_client_tcp),
    TEST_ENTRY(batch_client_tls),
    TEST_ENTRY(batch_client_tls_send_batch),
    TEST_ENTRY(batch_client_stop_inside),
    TEST_ENTRY(send_msgs_errors),
    TEST_END};
