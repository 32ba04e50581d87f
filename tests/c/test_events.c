/*
 * test_events.c -- the event-queue mode (TCP_OPT_EVENT_QUEUE = 1):
 * tcp_server_poll / tcp_client_poll, the packed record format,
 * TCP_ERR_BUFFER_TOO_SMALL, TCP_ERR_NOT_RUNNING, error records.
 */
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

typedef struct event {
  int32_t kind, client_id, code;
  uint32_t len;
  char data[256]; /* the payload's first bytes, NUL-terminated */
} event;

typedef struct evlog {
  event items[1024];
  int n;
  int max_batch; /* most events one poll returned */
} evlog;

/* Parse count records of buf[0..used) into log, checking the format. */
static void parse_records(const unsigned char *buf, size_t used, int count,
                          evlog *log) {
  size_t off = 0;
  int parsed = 0;
  while (off < used) {
    event e;
    if (used - off < TCP_EVENT_HEADER_SIZE) {
      h_fail(__FILE__, __LINE__, "record header cut at offset %zu of %zu", off, used);
      return;
    }
    memcpy(&e.kind, buf + off, 4);
    memcpy(&e.client_id, buf + off + 4, 4);
    memcpy(&e.code, buf + off + 8, 4);
    memcpy(&e.len, buf + off + 12, 4);
    off += TCP_EVENT_HEADER_SIZE;
    if (e.len > used - off) {
      h_fail(__FILE__, __LINE__, "payload of %u bytes overruns the %zu used", e.len, used);
      return;
    }
    memcpy(e.data, buf + off, e.len < sizeof e.data ? e.len : sizeof e.data - 1);
    e.data[e.len < sizeof e.data ? e.len : sizeof e.data - 1] = '\0';
    off += e.len;
    if (log->n < (int)(sizeof log->items / sizeof log->items[0])) log->items[log->n++] = e;
    parsed++;
  }
  if (parsed != count)
    h_fail(__FILE__, __LINE__, "poll said %d events, buffer held %d", count, parsed);
}

/* Poll s or c until log holds want events, the deadline passes, or poll
 * fails; returns the last poll result. */
static int drain(tcp_server *s, tcp_client *c, evlog *log, int want, int ms) {
  static unsigned char buf[256 * 1024];
  long long end = now_ms() + ms;
  int rc = 0;
  while (log->n < want && now_ms() < end) {
    size_t used = 0;
    rc = s ? tcp_server_poll(s, buf, sizeof buf, &used, 100)
           : tcp_client_poll(c, buf, sizeof buf, &used, 100);
    if (rc < 0) return rc;
    if (rc > log->max_batch) log->max_batch = rc;
    parse_records(buf, used, rc, log);
  }
  return rc;
}

static int is_event(const event *e, int kind, int id, int code, const char *text) {
  return e->kind == kind && e->client_id == id && e->code == code &&
         (!text || (e->len == strlen(text) && strcmp(e->data, text) == 0));
}

#define CHECK_EVENT(log, i, want_kind, want_id, want_code, want_text)        \
  do {                                                                        \
    const event *ev_ = &(log)->items[i];                                      \
    if ((log)->n <= (i) ||                                                    \
        !is_event(ev_, want_kind, want_id, want_code, want_text))             \
      h_fail(__FILE__, __LINE__,                                              \
             "event %d of %d: got kind %d id %d code %d \"%s\", "             \
             "want %d %d %d",                                                 \
             (i), (log)->n, ev_->kind, ev_->client_id, ev_->code, ev_->data,  \
             want_kind, want_id, want_code);                                  \
  } while (0)

static tcp_server *queued_server(char delim, size_t max_len) {
  tcp_server *s = tcp_server_new_fragmented(delim, max_len);
  REQUIRE_EQ(tcp_server_set_option(s, TCP_OPT_EVENT_QUEUE, 1), 0);
  return s;
}

TEST(event_queue_server) {
  /* Callbacks are set too: with the queue they must never run. */
  server_rec *r = server_rec_new(queued_server('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  evlog *log = calloc(1, sizeof *log);
  unsigned char buf[64];
  size_t used = 0;
  int id;

  connect_tcp(cr, start_tcp(r->s));
  CHECK_EQ(tcp_client_send(cr->c, "a", 1), 1);
  CHECK_EQ(tcp_client_send(cr->c, "bc", 2), 1);
  CHECK_EQ(tcp_client_send(cr->c, "", 0), 1);
  drain(r->s, NULL, log, 4, WAIT_MS);
  REQUIRE_EQ(log->n, 4);
  id = log->items[0].client_id;
  CHECK_GT(id, 0);
  CHECK_EVENT(log, 0, TCP_EVENT_ESTABLISHED, id, 0, NULL);
  CHECK(strncmp(log->items[0].data, "127.0.0.1 ", 10) == 0); /* "ip port" */
  CHECK_EVENT(log, 1, TCP_EVENT_MESSAGE, id, 0, "a");
  CHECK_EVENT(log, 2, TCP_EVENT_MESSAGE, id, 0, "bc");
  CHECK_EVENT(log, 3, TCP_EVENT_MESSAGE, id, 0, "");

  /* The poller answers through the usual calls. */
  CHECK_EQ(tcp_send_msg(r->s, id, "reply", 5), 1);
  CHECK_WAIT(cr->m, cr->messages == 1);
  CHECK_EQ(tcp_server_client_ids(r->s, NULL, 0), 1);

  tcp_client_stop(cr->c);
  drain(r->s, NULL, log, 5, WAIT_MS);
  CHECK_EVENT(log, 4, TCP_EVENT_CLOSED, id, TCP_CLOSE_PEER, "");

  tcp_server_stop(r->s);
  CHECK_EQ(tcp_server_poll(r->s, buf, sizeof buf, &used, 0), TCP_ERR_NOT_RUNNING);
  LOCKED(&r->m, CHECK(r->established + r->messages + r->closed + r->errors == 0));

  client_rec_free(cr);
  server_rec_free(r);
  free(log);
}

TEST(event_queue_client) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  tcp_client *c = tcp_client_new_fragmented('\n', 0);
  client_rec *cr = client_rec_new(c, NULL); /* must stay silent */
  evlog *log = calloc(1, sizeof *log);
  unsigned char buf[64];
  size_t used = 0;

  r->echo = 1;
  REQUIRE_EQ(tcp_client_set_option(c, TCP_OPT_EVENT_QUEUE, 1), 0);
  REQUIRE_EQ(tcp_client_start(c, "127.0.0.1", start_tcp(r->s)), TCP_START_OK);
  CHECK_EQ(tcp_client_send(c, "ping", 4), 1);
  drain(NULL, c, log, 1, WAIT_MS);
  CHECK_EVENT(log, 0, TCP_EVENT_MESSAGE, 0, 0, "ping");

  /* The server closes: a closed record, then "not running" once stopped
   * and drained. */
  CHECK_WAIT(&r->m, r->established == 1);
  CHECK_EQ(tcp_server_close_client(r->s, server_rec_id(r, 0)), 0);
  drain(NULL, c, log, 2, WAIT_MS);
  CHECK_EVENT(log, 1, TCP_EVENT_CLOSED, 0, TCP_CLOSE_PEER, "");
  tcp_client_stop(c);
  CHECK_EQ(tcp_client_poll(c, buf, sizeof buf, &used, 0), TCP_ERR_NOT_RUNNING);
  LOCKED(cr->m, CHECK(cr->messages + cr->closed + cr->errors == 0));

  client_rec_free(cr);
  server_rec_free(r);
  free(log);
}

/* Poll with a fixed buffer size until something (or an error) comes. */
static int poll_sized(tcp_server *s, void *buf, size_t buflen, size_t *used) {
  long long end = now_ms() + WAIT_MS;
  int rc = 0;
  while (rc == 0 && now_ms() < end) rc = tcp_server_poll(s, buf, buflen, used, 100);
  return rc;
}

TEST(event_queue_buffer_too_small) {
  tcp_server *s = queued_server('\n', 0);
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  unsigned char buf[TCP_EVENT_HEADER_SIZE + 100];
  char payload[100];
  size_t used = 0;
  int32_t kind;
  uint32_t len;

  connect_tcp(cr, start_tcp(s));
  memset(payload, 'p', sizeof payload);
  CHECK_EQ(tcp_client_send(cr->c, payload, sizeof payload), 1);

  /* ESTABLISHED needs a header and the peer's "ip port". */
  CHECK_EQ(poll_sized(s, buf, 8, &used), TCP_ERR_BUFFER_TOO_SMALL);
  {
    size_t need = used;
    CHECK_GT(need, TCP_EVENT_HEADER_SIZE + 10); /* "127.0.0.1 " and a port */
    CHECK_EQ(poll_sized(s, buf, need - 1, &used), TCP_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ(poll_sized(s, buf, need, &used), 1);
    CHECK_EQ(used, need);
  }
  memcpy(&kind, buf, 4);
  CHECK_EQ(kind, TCP_EVENT_ESTABLISHED);

  /* The 100-byte message needs header + 100; nothing is lost meanwhile. */
  CHECK_EQ(poll_sized(s, buf, 50, &used), TCP_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ(used, sizeof buf);
  CHECK_EQ(poll_sized(s, buf, sizeof buf, &used), 1);
  CHECK_EQ(used, sizeof buf);
  memcpy(&kind, buf, 4);
  memcpy(&len, buf + 12, 4);
  CHECK_EQ(kind, TCP_EVENT_MESSAGE);
  CHECK_EQ(len, sizeof payload);
  CHECK(memcmp(buf + TCP_EVENT_HEADER_SIZE, payload, sizeof payload) == 0);

  client_rec_free(cr);
  tcp_server_free(s);
}

TEST(event_queue_error_record) {
  tcp_server *s = queued_server('\n', 8);
  client_rec *cr = client_rec_new(tcp_client_new(), NULL); /* continuous */
  evlog *log = calloc(1, sizeof *log);
  char big[100];
  int id;

  connect_tcp(cr, start_tcp(s));
  memset(big, 'x', sizeof big);
  CHECK_EQ(tcp_client_send(cr->c, big, sizeof big), 1);
  drain(s, NULL, log, 3, WAIT_MS);
  REQUIRE_EQ(log->n, 3);
  id = log->items[0].client_id;
  CHECK_EVENT(log, 0, TCP_EVENT_ESTABLISHED, id, 0, NULL);
  CHECK_EVENT(log, 1, TCP_EVENT_ERROR, id, TCP_ERR_MESSAGE_TOO_LONG, NULL);
  CHECK_GT(log->items[1].len, 0); /* the error text */
  CHECK_EVENT(log, 2, TCP_EVENT_CLOSED, id, TCP_CLOSE_MESSAGE_TOO_LONG, NULL);
  CHECK_WAIT(cr->m, cr->closed == 1);

  client_rec_free(cr);
  tcp_server_free(s);
  free(log);
}

TEST(event_queue_order_and_batching) {
  enum { N = 500 };
  tcp_server *s = queued_server('\n', 0);
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  evlog *log = calloc(1, sizeof *log);
  char text[32];
  int i, n, id;

  connect_tcp(cr, start_tcp(s));
  for (i = 0; i < N; i++) {
    n = snprintf(text, sizeof text, "event %03d", i);
    CHECK_EQ(tcp_client_send(cr->c, text, (size_t)n), 1);
  }
  drain(s, NULL, log, N + 1, 10000);
  REQUIRE_EQ(log->n, N + 1);
  id = log->items[0].client_id;
  CHECK_EVENT(log, 0, TCP_EVENT_ESTABLISHED, id, 0, NULL);
  for (i = 0; i < N; i++) {
    snprintf(text, sizeof text, "event %03d", i);
    CHECK_EVENT(log, i + 1, TCP_EVENT_MESSAGE, id, 0, text);
  }
  /* Queued events are handed over together, not one per call. */
  CHECK_GT(log->max_batch, 1);

  client_rec_free(cr);
  tcp_server_free(s);
  free(log);
}

TEST(event_queue_stop_then_not_running) {
  tcp_server *s = queued_server('\n', 0);
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  evlog *log = calloc(1, sizeof *log);
  unsigned char buf[64];
  size_t used = 0;

  connect_tcp(cr, start_tcp(s));
  drain(s, NULL, log, 1, WAIT_MS);
  tcp_server_stop(s);
  /* The closed record of the stop is still handed over, then the end. */
  drain(s, NULL, log, 2, WAIT_MS);
  CHECK_EQ(log->n, 2);
  CHECK_EVENT(log, 1, TCP_EVENT_CLOSED, log->items[0].client_id, TCP_CLOSE_STOPPED, NULL);
  CHECK_EQ(tcp_server_poll(s, buf, sizeof buf, &used, 0), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_server_poll(s, buf, sizeof buf, &used, 100), TCP_ERR_NOT_RUNNING);
  CHECK_WAIT(cr->m, cr->closed == 1);

  client_rec_free(cr);
  tcp_server_free(s);
  free(log);
}

TEST(event_queue_misuse_and_timeouts) {
  tcp_server *plain = tcp_server_new();
  tcp_client *plainc = tcp_client_new();
  tcp_server *s = queued_server('\n', 0);
  unsigned char buf[64];
  size_t used = 99;
  long long t0;

  /* Not in event-queue mode. */
  CHECK_EQ(tcp_server_poll(plain, buf, sizeof buf, &used, 0), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_poll(plainc, buf, sizeof buf, &used, 0), TCP_ERR_INVALID_ARG);

  /* In event-queue mode but not started: "not running", not "misuse". */
  CHECK_EQ(tcp_server_poll(s, buf, sizeof buf, &used, 0), TCP_ERR_NOT_RUNNING);

  start_tcp(s);
  /* Nothing to take: 0 at once for 0 and negative timeouts... */
  t0 = now_ms();
  CHECK_EQ(tcp_server_poll(s, buf, sizeof buf, &used, 0), 0);
  CHECK_EQ(used, 0);
  CHECK_EQ(tcp_server_poll(s, buf, sizeof buf, &used, -5), 0);
  CHECK_LT(now_ms() - t0, 1000);
  /* ... and after about the timeout otherwise. */
  t0 = now_ms();
  CHECK_EQ(tcp_server_poll(s, buf, sizeof buf, &used, 300), 0);
  CHECK_GE(now_ms() - t0, 250);
  CHECK_LT(now_ms() - t0, 3000);

  tcp_server_free(s);
  tcp_client_free(plainc);
  tcp_server_free(plain);
}

TEST(event_queue_backpressure_loses_nothing) {
  enum { N = 2000, SIZE = 1000 };
  tcp_server *s = queued_server('\n', 0);
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  static unsigned char buf[4096];
  char text[SIZE + 1];
  long long end;
  int got = 0, bad = 0, i;

  /* A 16 KiB queue for 2 MB of messages: the library must stop reading,
   * not drop events, while the poller is slow (small buffer). */
  REQUIRE_EQ(tcp_server_set_option(s, TCP_OPT_EVENT_QUEUE_LIMIT, 16 * 1024), 0);
  connect_tcp(cr, start_tcp(s));
  for (i = 0; i < N; i++) {
    memset(text, 'a' + i % 26, SIZE);
    snprintf(text, sizeof text, "%05d", i);
    text[5] = '-';
    CHECK_EQ(tcp_client_send(cr->c, text, SIZE), 1);
  }
  end = now_ms() + 15000;
  while (got < N && now_ms() < end) {
    size_t used = 0, off = 0;
    int rc = tcp_server_poll(s, buf, sizeof buf, &used, 100);
    REQUIRE(rc >= 0);
    for (i = 0; i < rc; i++) {
      int32_t kind;
      uint32_t len;
      memcpy(&kind, buf + off, 4);
      memcpy(&len, buf + off + 12, 4);
      if (kind == TCP_EVENT_MESSAGE) {
        char want[16];
        snprintf(want, sizeof want, "%05d-", got);
        if (len != SIZE || memcmp(buf + off + TCP_EVENT_HEADER_SIZE, want, 6) != 0 ||
            buf[off + TCP_EVENT_HEADER_SIZE + SIZE - 1] != 'a' + got % 26)
          bad++;
        got++;
      }
      off += TCP_EVENT_HEADER_SIZE + len;
    }
  }
  CHECK_EQ(got, N);
  CHECK_EQ(bad, 0);
  client_rec_free(cr);
  tcp_server_free(s);
}

/* Wait until fd is readable (1), or ms passed (0). */
static int readable_within(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* Poll with timeout 0 until a poll returns 0 events (re-arming the fd). */
static void take_all(tcp_server *s, evlog *log) {
  static unsigned char buf[64 * 1024];
  int rc;
  do {
    size_t used = 0;
    rc = tcp_server_poll(s, buf, sizeof buf, &used, 0);
    if (rc > 0) parse_records(buf, used, rc, log);
  } while (rc > 0);
  CHECK_EQ(rc, 0);
}

/* tcp_server_event_fd: readable when events arrive; read it, poll with
 * timeout 0 until 0, and it is quiet until the next event; readable at
 * the end too. */
TEST(event_queue_fd_for_host_loops) {
  tcp_server *plain = tcp_server_new();
  server_rec *r = server_rec_new(queued_server('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  evlog *log = calloc(1, sizeof *log);
  unsigned char buf[64];
  uint64_t count;
  size_t used = 0;
  int fd, id;

  CHECK_EQ(tcp_server_event_fd(NULL), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_event_fd(plain), TCP_ERR_INVALID_ARG); /* no event queue */
  CHECK_EQ(tcp_server_event_fd(r->s), TCP_ERR_NOT_RUNNING);  /* not started */
  connect_tcp(cr, start_tcp(r->s));
  fd = tcp_server_event_fd(r->s);
  REQUIRE(fd >= 0);
  CHECK_EQ(tcp_server_event_fd(r->s), fd); /* the same one until the next start */
  CHECK(readable_within(fd, WAIT_MS));      /* established is waiting */
  CHECK_EQ(read(fd, &count, sizeof count), (ssize_t)sizeof count);
  take_all(r->s, log);
  REQUIRE_EQ(log->n, 1);
  id = log->items[0].client_id;
  CHECK_EVENT(log, 0, TCP_EVENT_ESTABLISHED, id, 0, NULL);
  CHECK(!readable_within(fd, 50)); /* quiet: nothing new (bounded look) */

  CHECK_EQ(tcp_client_send(cr->c, "ping", 4), 1);
  CHECK(readable_within(fd, WAIT_MS));
  CHECK_EQ(read(fd, &count, sizeof count), (ssize_t)sizeof count);
  take_all(r->s, log);
  REQUIRE_EQ(log->n, 2);
  CHECK_EVENT(log, 1, TCP_EVENT_MESSAGE, id, 0, "ping");

  tcp_client_stop(cr->c);
  tcp_server_stop(r->s);
  CHECK(readable_within(fd, WAIT_MS)); /* the end is an event too */
  while (tcp_server_poll(r->s, buf, sizeof buf, &used, 0) > 0) {
  }
  CHECK_EQ(tcp_server_poll(r->s, buf, sizeof buf, &used, 0), TCP_ERR_NOT_RUNNING);

  client_rec_free(cr);
  server_rec_free(r);
  tcp_server_free(plain);
  free(log);
}

const test_case event_tests[] = {
    TEST_ENTRY(event_queue_server),
    TEST_ENTRY(event_queue_fd_for_host_loops),
    TEST_ENTRY(event_queue_client),
    TEST_ENTRY(event_queue_buffer_too_small),
    TEST_ENTRY(event_queue_error_record),
    TEST_ENTRY(event_queue_order_and_batching),
    TEST_ENTRY(event_queue_backpressure_loses_nothing),
    TEST_ENTRY(event_queue_stop_then_not_running),
    TEST_ENTRY(event_queue_misuse_and_timeouts),
    TEST_END,
};
