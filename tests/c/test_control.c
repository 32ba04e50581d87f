/*
 * test_control.c -- issue 9 through the C header: admission (accept
 * callback, allowed/blocked lists, connection limit), timeouts (idle,
 * message, write), flow control (send_ex, queued, ready, pause/resume),
 * lifecycle (shutdown, stop_listening), conn_data, close reasons, stats,
 * socket options, and the client's reconnect, flow control and bind
 * address.
 *
 * Peers are raw sockets where the test needs exact control (a source
 * address, a peer that sends nothing or never reads, a slow drip). A
 * "non-reading" peer has a tiny SO_RCVBUF so kernel buffers take little.
 */
#define _DEFAULT_SOURCE 1 /* TCP_KEEPIDLE & co. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* ---- helpers -------------------------------------------------------------- */

/* Pace a peer or sample a value; never used to wait for the library. */
static void nap_ms(int ms) { poll(NULL, 0, ms); }

static tcp_server_stats stats_of(const tcp_server *s) {
  tcp_server_stats st;
  memset(&st, 0xff, sizeof st);
  REQUIRE_EQ(tcp_server_get_stats(s, &st, sizeof st), 0);
  return st;
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The server's id of the raw peer fd (matched by port), waiting for it to
 * be established; 0 if it never is. */
static int id_of_fd(server_rec *r, int fd) {
  int i, id = 0, port = raw_local_port(fd);
  long long end = now_ms() + WAIT_MS;
  struct timespec dl;
  deadline_in(&dl, WAIT_MS);
  monitor_lock(&r->m);
  while (!id) {
    for (i = 0; i < r->nconns && !id; i++)
      if (!r->conns[i].closed && tcp_server_client_port(r->s, r->conns[i].id) == port)
        id = r->conns[i].id;
    if (id || now_ms() >= end || monitor_wait(&r->m, &dl) != 0) break;
  }
  if (!id) /* one last look after the final wake-up */
    for (i = 0; i < r->nconns && !id; i++)
      if (!r->conns[i].closed && tcp_server_client_port(r->s, r->conns[i].id) == port)
        id = r->conns[i].id;
  monitor_unlock(&r->m);
  if (!id) h_fail(__FILE__, __LINE__, "the peer on port %d was never established", port);
  return id;
}

/* closed_ex reason of id (monitor taken here); 0 while open. */
static int reason_of(server_ext *x, int id) {
  conn_ext *e;
  int reason;
  monitor_lock(&x->r->m);
  e = server_ext_find(x, id);
  reason = e ? e->reason : -1;
  monitor_unlock(&x->r->m);
  return reason;
}

#define CHECK_REASON(x, id, want)                                              \
  do {                                                                         \
    int r_ = reason_of((x), (id));                                             \
    if (r_ != (want))                                                          \
      h_fail(__FILE__, __LINE__, "client %d closed with reason %d (%s), want %s", \
             (id), r_, tcp_close_reason_str(r_), #want);                       \
  } while (0)

/* A raw connection to a refusing server: closed at once, before a byte
 * (EOF or reset), never established; counted with an error event (id 0,
 * TCP_ERR_REFUSED). *refusals counts the error events expected so far. */
static void expect_refused(server_rec *r, int fd, int *refusals) {
  size_t got = 0;
  int est;
  LOCKED(&r->m, est = r->established);
  CHECK_NE(raw_wait_closed(fd, WAIT_MS, &got), 0);
  CHECK_EQ(got, 0);
  close(fd);
  (*refusals)++;
  CHECK_WAIT(&r->m, r->errors_id0 == *refusals);
  monitor_lock(&r->m);
  CHECK_EQ(r->established, est);
  CHECK_EQ(r->last_error_id, 0);
  CHECK_EQ(r->last_error_code, TCP_ERR_REFUSED);
  monitor_unlock(&r->m);
}

/* A raw connection that must be established with the server seeing ip. */
static void expect_accepted(server_rec *r, int fd, const char *ip) {
  char seen[64] = "";
  int id = id_of_fd(r, fd);
  if (id) {
    tcp_server_client_ip(r->s, id, seen, sizeof seen);
    CHECK_STR(seen, ip);
  }
  close(fd);
  if (id) CHECK_WAIT(&r->m, CONN(r, id)->closed == 1);
}

/* Byte o of a test stream: varies within and across chunks, so a lost,
 * repeated or reordered chunk shows. */
static unsigned char pattern_at(size_t o) {
  return (unsigned char)((o / 16384) * 7 + o % 251);
}

static void fill_pattern(char *buf, size_t off, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) buf[i] = (char)pattern_at(off + i);
}

/* Read total bytes of the pattern from fd within ms; 1 when all arrived
 * intact. */
static int read_pattern(int fd, size_t total, int ms) {
  static char buf[65536];
  size_t off = 0, i;
  long long end = now_ms() + ms;
  while (off < total && now_ms() < end) {
    int fin;
    size_t want = total - off < sizeof buf ? total - off : sizeof buf;
    size_t n = raw_read(fd, buf, want, (int)(end - now_ms()), &fin);
    for (i = 0; i < n; i++)
      if ((unsigned char)buf[i] != pattern_at(off + i)) {
        h_fail(__FILE__, __LINE__, "stream byte %zu is wrong", off + i);
        return 0;
      }
    off += n;
    if (fin) break;
  }
  if (off != total) h_fail(__FILE__, __LINE__, "read %zu of %zu bytes", off, total);
  return off == total;
}

/* Fix the send buffer of the library's end of a connection: Linux grows
 * an unlocked one while a zero-window peer stalls, so the kernel would go
 * on taking what the library queued and "queue full" would not last. */
static void lock_sndbuf(int local_port, int peer_port) {
  int size = 16384, fd = find_conn_fd(local_port, peer_port);
  REQUIRE(fd >= 0);
  CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
}

/* connect() without REQUIRE: 0 or errno. */
static int try_connect(int port) {
  struct sockaddr_in a = loopback_addr(port);
  int rc, fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  rc = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

/* ---- admission ------------------------------------------------------------ */

/* The accept callback sees the peer's address and port and the local port
 * before any TLS byte (it runs for a raw peer that never sends a
 * ClientHello); refusing closes at once: never established, counted in
 * stats.refused, error event TCP_ERR_REFUSED with id 0, and a TLS client's
 * start fails without a handshake failure on the server. */
TEST(accept_callback_refuses_before_tls) {
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 1);
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  const pki *p = &fx()->main;
  tcp_server_stats st;
  int port, fd, peer_port, rc, refusals = 0;

  x->accept_verdict = 0;
  port = start_mtls(r->s, p);

  fd = raw_connect(port);
  peer_port = raw_local_port(fd);
  CHECK_WAIT(&r->m, x->accepts == 1);
  monitor_lock(&r->m);
  CHECK_STR(x->accept_ip, "127.0.0.1");
  CHECK_EQ(x->accept_port, peer_port);
  CHECK_EQ(x->accept_local_port, port);
  CHECK_EQ(x->accept_on_owner, 0);
  monitor_unlock(&r->m);
  expect_refused(r, fd, &refusals);

  /* The client sees a reset either while connecting (50) or in its
   * handshake (60), depending on timing; the server never handshakes. */
  rc = tls_client_start(cr->c, "127.0.0.1", port, p->ca, p->client_cert, p->client_key);
  if (rc != TCP_START_CONNECT_INIT && rc != TCP_START_CONNECT)
    h_fail(__FILE__, __LINE__, "refused TLS client: start returned %d, want 50 or 60", rc);
  CHECK_WAIT(&r->m, x->accepts == 2 && r->errors_id0 == 2);
  st = stats_of(r->s);
  CHECK_EQ(st.refused, 2);
  CHECK_EQ(st.handshake_failed, 0);
  CHECK_EQ(st.established, 0);

  /* Accepted: the callback's view matches the connection's. */
  LOCKED(&r->m, x->accept_verdict = 1);
  connect_mtls(cr, port, p);
  REQUIRE_WAIT(&r->m, r->established == 1);
  monitor_lock(&r->m);
  CHECK_EQ(x->accepts, 3);
  CHECK_EQ(x->accept_port, tcp_client_local_port(cr->c));
  CHECK_EQ(tcp_server_client_port(r->s, r->conns[0].id), x->accept_port);
  monitor_unlock(&r->m);
  st = stats_of(r->s);
  CHECK_EQ(st.refused, 2);
  CHECK_EQ(st.accepted, 3);
  CHECK_EQ(st.established, 1);
  client_rec_free(cr);
  server_rec_free(r);
  server_ext_free(x);
}

/* Allowed and blocked lists: addresses and CIDR ranges, comma or space
 * separated, replaced while running, blocked over allowed; a bad entry is
 * refused and leaves the list as it was. Peers come from 127.0.0.1 and
 * 127.0.0.2 (Linux routes all of 127/8 to lo). */
TEST(allow_and_block_lists_ipv4) {
  server_rec *r = server_rec_new(tcp_server_new());
  int port = start_tcp(r->s), refusals = 0;

  CHECK_EQ(tcp_server_set_blocked(r->s, "127.0.0.2"), 0);
  expect_refused(r, raw_connect_from("127.0.0.2", port), &refusals);
  expect_accepted(r, raw_connect_from("127.0.0.1", port), "127.0.0.1");

  CHECK_EQ(tcp_server_set_blocked(r->s, ""), 0);
  CHECK_EQ(tcp_server_set_allowed(r->s, "10.0.0.0/8, 127.0.0.0/31"), 0);
  expect_accepted(r, raw_connect_from("127.0.0.1", port), "127.0.0.1");
  expect_refused(r, raw_connect_from("127.0.0.2", port), &refusals);

  CHECK_EQ(tcp_server_set_allowed(r->s, "192.168.1.7 127.0.0.2"), 0);
  expect_accepted(r, raw_connect_from("127.0.0.2", port), "127.0.0.2");
  expect_refused(r, raw_connect_from("127.0.0.1", port), &refusals);

  /* Blocked wins over allowed. */
  CHECK_EQ(tcp_server_set_blocked(r->s, "127.0.0.0/24"), 0);
  expect_refused(r, raw_connect_from("127.0.0.2", port), &refusals);

  /* Bad entries: refused, named in tcp_errmsg, the list unchanged. */
  CHECK_EQ(tcp_server_set_blocked(r->s, "127.0.0.9, not-an-address"), TCP_ERR_INVALID_ARG);
  CHECK(strstr(errmsg_text(), "not-an-address") != NULL);
  CHECK_EQ(tcp_server_set_blocked(r->s, "10.0.0.0/33"), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_allowed(r->s, "::1/129"), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_allowed(r->s, "1.2.3"), TCP_ERR_INVALID_ARG);
  expect_refused(r, raw_connect_from("127.0.0.2", port), &refusals);

  /* NULL empties. */
  CHECK_EQ(tcp_server_set_blocked(r->s, NULL), 0);
  CHECK_EQ(tcp_server_set_allowed(r->s, NULL), 0);
  expect_accepted(r, raw_connect_from("127.0.0.1", port), "127.0.0.1");
  expect_accepted(r, raw_connect_from("127.0.0.2", port), "127.0.0.2");

  CHECK_EQ(stats_of(r->s).refused, refusals);
  CHECK_EQ(tcp_server_set_allowed(NULL, ""), TCP_ERR_INVALID_ARG);
  server_rec_free(r);
}

/* The same over IPv6 ([::1]); skipped when this machine has no ::1. */
TEST(allow_and_block_lists_ipv6) {
  server_rec *r;
  int port, refusals = 0;

  if (!have_ipv6_loopback()) {
    printf("    skipped: no ::1 here\n");
    return;
  }
  r = server_rec_new(tcp_server_new());
  REQUIRE_EQ(tcp_server_set_option_str(r->s, TCP_OPT_BIND_ADDRESS, "::1"), 0);
  REQUIRE_EQ(tcp_server_start(r->s, 0), TCP_START_OK);
  port = tcp_server_port(r->s);

  CHECK_EQ(tcp_server_set_blocked(r->s, "::1"), 0);
  expect_refused(r, raw_connect6(port), &refusals);
  CHECK_EQ(tcp_server_set_blocked(r->s, "fd00::/8, 127.0.0.1"), 0);
  expect_accepted(r, raw_connect6(port), "::1");
  CHECK_EQ(tcp_server_set_allowed(r->s, "127.0.0.1"), 0);
  expect_refused(r, raw_connect6(port), &refusals);
  CHECK_EQ(tcp_server_set_allowed(r->s, "::1/128"), 0);
  expect_accepted(r, raw_connect6(port), "::1");
  CHECK_EQ(stats_of(r->s).refused, refusals);
  server_rec_free(r);
}

/* TCP_OPT_MAX_CONNECTIONS = 3: the 4th is closed at once, never
 * established, counted in refused_limit (not in refused), not shown to
 * the accept callback; once one leaves, a new one is served. */
TEST(max_connections_refuses_the_next) {
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 1);
  tcp_server_stats st;
  int fds[3], i, port, refusals = 0;

  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_MAX_CONNECTIONS, 3), 0);
  port = start_tcp(r->s);
  for (i = 0; i < 3; i++) fds[i] = raw_connect(port);
  REQUIRE_WAIT(&r->m, r->established == 3);

  expect_refused(r, raw_connect(port), &refusals);
  st = stats_of(r->s);
  CHECK_EQ(st.refused_limit, 1);
  CHECK_EQ(st.refused, 0);
  CHECK_EQ(st.active, 3);
  LOCKED(&r->m, CHECK_EQ(x->accepts, 3));

  close(fds[0]);
  CHECK_WAIT(&r->m, r->closed == 1);
  {
    /* The slot may be given back just after the closed callback: poll the
     * counter (bounded; there is no event). */
    long long end = now_ms() + 2000;
    while (stats_of(r->s).active > 2 && now_ms() < end) nap_ms(5);
  }
  expect_accepted(r, raw_connect(port), "127.0.0.1");
  LOCKED(&r->m, CHECK_EQ(x->accepts, 4));
  close(fds[1]);
  close(fds[2]);
  server_rec_free(r);
  server_ext_free(x);
}

/* ---- timeouts ---------------------------------------------------------------- */

/* TCP_OPT_IDLE_TIMEOUT_MS: a silent peer is closed (reason IDLE_TIMEOUT,
 * stats.timed_out) after the timeout, not before; a peer that keeps
 * sending is not, until it stops. */
TEST(idle_timeout_closes_idle_peer) {
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  int port, quiet, busy, id_quiet, id_busy, early = 0;
  long long t0, end;

  r->discard = 1;
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_IDLE_TIMEOUT_MS, 300), 0);
  port = start_tcp(r->s);
  t0 = now_ms();
  quiet = raw_connect(port);
  busy = raw_connect(port);
  id_quiet = id_of_fd(r, quiet);
  id_busy = id_of_fd(r, busy);

  end = t0 + 1000;
  while (now_ms() < end) {
    CHECK_EQ(raw_send_all(busy, "k", 1), 0);
    if (now_ms() - t0 < 250 && reason_of(x, id_quiet) != 0) early = 1;
    nap_ms(100);
  }
  CHECK_EQ(early, 0);
  CHECK_REASON(x, id_quiet, TCP_CLOSE_IDLE_TIMEOUT);
  CHECK_EQ(reason_of(x, id_busy), 0);
  CHECK_NE(raw_wait_closed(quiet, WAIT_MS, NULL), 0);

  /* Silent from now on: it goes too. */
  CHECK_WAIT(&r->m, CONN(r, id_busy)->closed == 1);
  CHECK_REASON(x, id_busy, TCP_CLOSE_IDLE_TIMEOUT);
  CHECK_EQ(stats_of(r->s).timed_out, 2);
  close(quiet);
  close(busy);
  server_rec_free(r);
  server_ext_free(x);
}

/* tcp_server_set_idle_timeout replaces the server's default for one
 * connection: a short one closes first, 0 means never, the others keep
 * the default. */
TEST(idle_timeout_per_connection) {
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  int port, fa, fb, fc, a, b, c, b_closed;

  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_IDLE_TIMEOUT_MS, 3000), 0);
  port = start_tcp(r->s);
  fa = raw_connect(port);
  fb = raw_connect(port);
  fc = raw_connect(port);
  a = id_of_fd(r, fa);
  b = id_of_fd(r, fb);
  c = id_of_fd(r, fc);

  CHECK_EQ(tcp_server_set_idle_timeout(r->s, a, 150), 0);
  CHECK_EQ(tcp_server_set_idle_timeout(r->s, b, 0), 0);
  CHECK_EQ(tcp_server_set_idle_timeout(r->s, 987654, 100), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_set_idle_timeout(r->s, a, -1), TCP_ERR_INVALID_ARG);

  CHECK_WAIT(&r->m, CONN(r, a)->closed == 1);
  CHECK_REASON(x, a, TCP_CLOSE_IDLE_TIMEOUT);
  CHECK_EQ(reason_of(x, c), 0); /* 3000 ms not over yet (room for a loaded machine) */
  CHECK_WAIT(&r->m, CONN(r, c)->closed == 1);
  CHECK_REASON(x, c, TCP_CLOSE_IDLE_TIMEOUT);
  WAIT_UNTIL(b_closed, &r->m, CONN(r, b)->closed, 300);
  CHECK_EQ(b_closed, 0);
  close(fb);
  CHECK_WAIT(&r->m, CONN(r, b)->closed == 1);
  CHECK_REASON(x, b, TCP_CLOSE_PEER);
  close(fa);
  close(fc);
  server_rec_free(r);
  server_ext_free(x);
}

/* The client's TCP_OPT_IDLE_TIMEOUT_MS: a silent server is left with
 * reason IDLE_TIMEOUT. */
TEST(client_idle_timeout) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  client_ext *cx = client_ext_new(cr);

  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_IDLE_TIMEOUT_MS, 300), 0);
  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(cr->m, cr->closed == 1);
  LOCKED(cr->m, CHECK_EQ(cx->reason, TCP_CLOSE_IDLE_TIMEOUT));
  CHECK_EQ(tcp_client_is_running(cr->c), 0);
  CHECK_WAIT(&r->m, r->closed == 1);
  client_rec_free(cr);
  client_ext_free(cx);
  server_rec_free(r);
}

/* TCP_OPT_MESSAGE_TIMEOUT_MS: a peer dripping one byte per 100 ms never
 * idles but never finishes a message: closed with MESSAGE_TIMEOUT; a peer
 * sending whole messages at the same pace stays. */
TEST(message_timeout_closes_slow_drip) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  server_ext *x = server_ext_new(r, 0);
  int port, drip, good, id_drip, id_good, closed = 0;
  long long t0, end;

  r->discard = 1;
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_MESSAGE_TIMEOUT_MS, 400), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_IDLE_TIMEOUT_MS, 250), 0);
  port = start_tcp(r->s);
  drip = raw_connect(port);
  good = raw_connect(port);
  id_drip = id_of_fd(r, drip);
  id_good = id_of_fd(r, good);

  t0 = now_ms();
  end = t0 + 3000;
  while (!closed && now_ms() < end) {
    raw_send_all(drip, "x", 1); /* fails once closed: fine */
    CHECK_EQ(raw_send_all(good, "ok\n", 3), 0);
    nap_ms(100);
    LOCKED(&r->m, closed = CONN(r, id_drip)->closed);
  }
  CHECK_EQ(closed, 1);
  CHECK_GE(now_ms() - t0, 350);
  CHECK_REASON(x, id_drip, TCP_CLOSE_MESSAGE_TIMEOUT);
  CHECK_EQ(reason_of(x, id_good), 0);
  CHECK_EQ(stats_of(r->s).timed_out, 1);
  close(drip);
  close(good);
  server_rec_free(r);
  server_ext_free(x);
}

/* TCP_OPT_WRITE_TIMEOUT_MS: a peer that takes nothing of what is queued
 * is closed with WRITE_TIMEOUT. */
TEST(write_timeout_closes_stalled_peer) {
  enum { CHUNK = 256 * 1024 };
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  char *chunk = calloc(1, CHUNK);
  int i, fd, id;

  REQUIRE(chunk != NULL);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_WRITE_TIMEOUT_MS, 300), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_SEND_QUEUE_LIMIT, 0), 0);
  fd = raw_connect_small_rcvbuf(start_tcp(r->s));
  id = id_of_fd(r, fd);
  for (i = 0; i < 32; i++) CHECK_EQ(tcp_server_send_ex(r->s, id, chunk, CHUNK), 0);
  CHECK_WAIT(&r->m, CONN(r, id)->closed == 1);
  CHECK_REASON(x, id, TCP_CLOSE_WRITE_TIMEOUT);
  CHECK_EQ(stats_of(r->s).timed_out, 1);
  close(fd);
  server_rec_free(r);
  server_ext_free(x);
  free(chunk);
}

/* ---- flow control ---------------------------------------------------------------- */

/* A peer that does not read: send_ex reports TCP_ERR_QUEUE_FULL (the 1/0
 * send reports 0 with that code), queued says how much waits, and the
 * ready callback fires once -- after the peer starts reading. Nothing is
 * lost or reordered. */
TEST(queue_full_then_ready) {
  enum { CHUNK = 16384, LIMIT = 256 * 1024, LOW = 16384, MAXCHUNKS = 4096 };
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  char *chunk = malloc(CHUNK);
  tcp_conn_stats cs;
  long long q;
  int i, fd, id, port, rc = 0;

  REQUIRE(chunk != NULL);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_SEND_QUEUE_LIMIT, LIMIT), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_SEND_LOW_WATER, LOW), 0);
  port = start_tcp(r->s);
  fd = raw_connect_small_rcvbuf(port);
  id = id_of_fd(r, fd);
  lock_sndbuf(port, raw_local_port(fd));

  for (i = 0; i < MAXCHUNKS; i++) {
    fill_pattern(chunk, (size_t)i * CHUNK, CHUNK);
    rc = tcp_server_send_ex(r->s, id, chunk, CHUNK);
    if (rc != 0) break;
  }
  REQUIRE_EQ(rc, TCP_ERR_QUEUE_FULL);
  q = tcp_server_queued(r->s, id);
  CHECK_GT(q, 0);
  CHECK_LT(q, LIMIT + CHUNK + 1);
  memset(&cs, 0, sizeof cs);
  CHECK_EQ(tcp_server_conn_stats(r->s, id, &cs, sizeof cs), 0);
  CHECK_EQ(cs.queued, q);
  CHECK_EQ(tcp_send_msg(r->s, id, chunk, CHUNK), 0);
  CHECK_EQ(tcp_errcode(), TCP_ERR_QUEUE_FULL);
  CHECK_EQ(tcp_server_queued(r->s, 987654), TCP_ERR_NO_CLIENT);
  LOCKED(&r->m, CHECK_EQ(x->ready, 0));

  /* The peer reads: ready fires once, sending goes on. */
  CHECK(read_pattern(fd, (size_t)i * CHUNK, 20000));
  CHECK_WAIT(&r->m, x->ready == 1);
  fill_pattern(chunk, (size_t)i * CHUNK, CHUNK);
  CHECK_EQ(tcp_server_send_ex(r->s, id, chunk, CHUNK), 0);
  {
    char buf[CHUNK];
    int end;
    size_t k;
    CHECK_EQ(raw_read(fd, buf, CHUNK, WAIT_MS, &end), CHUNK);
    for (k = 0; k < CHUNK && buf[k] == chunk[k]; k++) {
    }
    CHECK_EQ(k, CHUNK);
  }
  monitor_lock(&r->m);
  CHECK_EQ(x->ready, 1);
  CHECK_EQ(server_ext_find(x, id)->ready, 1);
  monitor_unlock(&r->m);
  close(fd);
  server_rec_free(r);
  server_ext_free(x);
  free(chunk);
}

/* TCP_OPT_MEMORY_BUDGET: a peer sending a long partial message is closed
 * with MEMORY_BUDGET once it holds more than its share, while another
 * client keeps being served. */
TEST(memory_budget_closes_only_the_hog) {
  enum { BUDGET = 256 * 1024, CHUNK = 64 * 1024, MAXSEND = 8 * 1024 * 1024 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  server_ext *x = server_ext_new(r, 0);
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  char *chunk = malloc(CHUNK);
  struct timeval tv = {5, 0};
  tcp_server_stats st;
  size_t sent = 0;
  int port, hog, id_hog, id_good;

  REQUIRE(chunk != NULL);
  memset(chunk, 'x', CHUNK);
  r->echo = 1;
  r->discard = 1;
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_MEMORY_BUDGET, BUDGET), 0);
  port = start_tcp(r->s);
  connect_tcp(cr, port);
  CHECK_EQ(tcp_client_send(cr->c, "before", 6), 1);
  CHECK_WAIT(cr->m, cr->messages == 1);
  id_good = server_id_of(r, cr->c);

  hog = raw_connect(port);
  id_hog = id_of_fd(r, hog);
  /* A send timeout: a server that stops reading instead ends the loop. */
  CHECK(setsockopt(hog, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
  while (sent < MAXSEND && raw_send_all(hog, chunk, CHUNK) == 0) sent += CHUNK;

  CHECK_WAIT(&r->m, CONN(r, id_hog)->closed == 1);
  CHECK_REASON(x, id_hog, TCP_CLOSE_MEMORY_BUDGET);
  LOCKED(&r->m, CHECK_EQ(CONN(r, id_hog)->last_error, TCP_ERR_MEMORY_BUDGET));
  CHECK_EQ(tcp_client_send(cr->c, "after", 5), 1);
  CHECK_WAIT(cr->m, cr->messages == 2);
  LOCKED(cr->m, CHECK(msg_is(&cr->msgs, 1, "after")));
  CHECK_EQ(reason_of(x, id_good), 0);
  st = stats_of(r->s);
  CHECK_EQ(st.closed_for_limits, 1);
  CHECK_LT(st.memory_used, BUDGET);
  close(hog);
  client_rec_free(cr);
  server_rec_free(r);
  server_ext_free(x);
  free(chunk);
}

/* "A send that would pass the budget is refused with
 * TCP_ERR_MEMORY_BUDGET" (no queue limit here, only the budget), and the
 * ready callback follows once the peer reads. */
TEST(memory_budget_refuses_sends) {
  enum { BUDGET = 512 * 1024, CHUNK = 16384, MAXCHUNKS = 4096 };
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  char *chunk = malloc(CHUNK);
  int i, fd, id, port, rc = 0;

  REQUIRE(chunk != NULL);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_MEMORY_BUDGET, BUDGET), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_SEND_QUEUE_LIMIT, 0), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_SEND_LOW_WATER, CHUNK), 0);
  port = start_tcp(r->s);
  fd = raw_connect_small_rcvbuf(port);
  id = id_of_fd(r, fd);
  lock_sndbuf(port, raw_local_port(fd));
  for (i = 0; i < MAXCHUNKS; i++) {
    fill_pattern(chunk, (size_t)i * CHUNK, CHUNK);
    rc = tcp_server_send_ex(r->s, id, chunk, CHUNK);
    if (rc != 0) break;
  }
  CHECK_EQ(rc, TCP_ERR_MEMORY_BUDGET);
  CHECK_LT(tcp_server_queued(r->s, id), BUDGET + 1);
  CHECK_LT(stats_of(r->s).memory_used, BUDGET + 1);
  CHECK_EQ(reason_of(x, id), 0); /* refused, not closed */
  CHECK(read_pattern(fd, (size_t)i * CHUNK, 20000));
  CHECK_WAIT(&r->m, x->ready == 1);
  close(fd);
  server_rec_free(r);
  server_ext_free(x);
  free(chunk);
}

enum { PR_FIRST = 300, PR_SECOND = 2000, PR_LEN = 512 };

/* Message number i: "m<i>" padded with dots to PR_LEN. */
static size_t pr_message(char *buf, int i) {
  int n = snprintf(buf, PR_LEN + 1, "m%05d", i);
  memset(buf + n, '.', (size_t)(PR_LEN - n));
  return PR_LEN;
}

/* The messages of conns[0] are pr_message(0..n-1), in order. */
static int pr_in_order(server_rec *r, int n) {
  char want[PR_LEN + 1];
  const msg_list *l = &r->conns[0].msgs;
  int i;
  if ((int)l->n != n) return 0;
  for (i = 0; i < n; i++) {
    pr_message(want, i);
    if (!msg_is_bytes(l, (size_t)i, want, PR_LEN)) return 0;
  }
  return 1;
}

/* Pause from inside a message callback (as PauseData in DataIn): no
 * message callback while paused though the peer keeps sending; resume
 * delivers the rest in order. Then the same from the main thread while
 * messages flow: at most the one callback already under way completes. */
TEST(pause_stops_delivery_resume_delivers_all) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  server_ext *x = server_ext_new(r, 0);
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  char buf[PR_LEN + 1];
  int i, id, more, at_pause, after;

  x->pause_at = 5;
  connect_tcp(cr, start_tcp(r->s));
  REQUIRE_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  for (i = 0; i < PR_FIRST; i++) CHECK_EQ(tcp_client_send(cr->c, buf, pr_message(buf, i)), 1);

  CHECK_WAIT(&r->m, r->messages == 5 && server_ext_find(x, id)->paused);
  WAIT_UNTIL(more, &r->m, r->messages > 5, 500);
  CHECK_EQ(more, 0);
  CHECK_EQ(tcp_server_resume(r->s, id), 0);
  CHECK_EQ(tcp_server_resume(r->s, id), 0); /* idempotent */
  CHECK_WAIT(&r->m, r->messages == PR_FIRST);
  LOCKED(&r->m, CHECK(pr_in_order(r, PR_FIRST)));

  /* From the main thread, mid-stream. */
  LOCKED(&r->m, x->pause_at = 0);
  for (i = PR_FIRST; i < PR_FIRST + PR_SECOND; i++)
    CHECK_EQ(tcp_client_send(cr->c, buf, pr_message(buf, i)), 1);
  CHECK_WAIT(&r->m, r->messages >= PR_FIRST + 10);
  CHECK_EQ(tcp_server_pause(r->s, id), 0);
  CHECK_EQ(tcp_server_pause(r->s, id), 0);
  LOCKED(&r->m, at_pause = r->messages);
  nap_ms(500); /* a bounded look for callbacks that must not come */
  LOCKED(&r->m, after = r->messages);
  if (after > at_pause + 1)
    h_fail(__FILE__, __LINE__, "%d message callbacks after pause returned", after - at_pause);
  CHECK_EQ(tcp_server_resume(r->s, id), 0);
  CHECK_WAIT(&r->m, r->messages == PR_FIRST + PR_SECOND);
  LOCKED(&r->m, CHECK(pr_in_order(r, PR_FIRST + PR_SECOND)));

  CHECK_EQ(tcp_server_pause(r->s, 987654), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_resume(r->s, 987654), TCP_ERR_NO_CLIENT);
  client_rec_free(cr);
  server_rec_free(r);
  server_ext_free(x);
}

/* "The idle timeout does not run while paused." */
TEST(pause_holds_off_idle_timeout) {
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  int fd, id, closed;

  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_IDLE_TIMEOUT_MS, 200), 0);
  fd = raw_connect(start_tcp(r->s));
  id = id_of_fd(r, fd);
  CHECK_EQ(tcp_server_pause(r->s, id), 0);
  WAIT_UNTIL(closed, &r->m, CONN(r, id)->closed, 700);
  CHECK_EQ(closed, 0);
  CHECK_EQ(tcp_server_resume(r->s, id), 0);
  CHECK_WAIT(&r->m, CONN(r, id)->closed == 1);
  CHECK_REASON(x, id, TCP_CLOSE_IDLE_TIMEOUT);
  close(fd);
  server_rec_free(r);
  server_ext_free(x);
}

/* "While paused nothing is read, so the peer is slowed by TCP flow
 * control": a peer writing without blocking runs into a full window after
 * what kernel buffers hold (a few MiB on loopback), not after 48 MiB; on
 * resume every line it got out arrives. */
TEST(pause_applies_tcp_back_pressure) {
  enum { LINE = 1024, MAXBYTES = 48 * 1024 * 1024 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  char line[LINE];
  size_t sent = 0;
  int fd, id, flags, lines, full = 0;
  long long end;

  r->discard = 1;
  fd = raw_connect(start_tcp(r->s));
  id = id_of_fd(r, fd);
  CHECK_EQ(tcp_server_pause(r->s, id), 0);
  memset(line, 'p', LINE - 1);
  line[LINE - 1] = '\n';
  flags = fcntl(fd, F_GETFL);
  REQUIRE(fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
  end = now_ms() + 10000;
  while (sent < MAXBYTES && now_ms() < end) {
    ssize_t n = send(fd, line + sent % LINE, LINE - sent % LINE, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      struct pollfd p;
      p.fd = fd;
      p.events = POLLOUT;
      /* Writable again within 300 ms means the server still reads. */
      if (poll(&p, 1, 300) == 0) {
        full = 1;
        break;
      }
    } else {
      h_fail(__FILE__, __LINE__, "send: %s", strerror(errno));
      break;
    }
  }
  CHECK_EQ(full, 1);
  CHECK_LT(sent, MAXBYTES);
  LOCKED(&r->m, CHECK_EQ(r->messages, 0));
  REQUIRE(fcntl(fd, F_SETFL, flags) == 0);
  /* Finish the last line, then resume: every line arrives. */
  if (sent % LINE) REQUIRE_EQ(raw_send_all(fd, line + sent % LINE, LINE - sent % LINE), 0);
  lines = (int)((sent + LINE - 1) / LINE);
  CHECK_EQ(tcp_server_resume(r->s, id), 0);
  CHECK_WAIT(&r->m, r->messages == lines);
  close(fd);
  server_rec_free(r);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

typedef struct shutdown_call {
  tcp_server *s;
  int timeout_ms;
  int rc;
  long long took_ms;
} shutdown_call;

static void *call_shutdown(void *arg) {
  shutdown_call *c = arg;
  long long t0 = now_ms();
  c->rc = tcp_server_shutdown(c->s, c->timeout_ms);
  c->took_ms = now_ms() - t0;
  return NULL;
}

/* Wait (bounded) for the listener of port to be gone from this process. */
static int listener_gone(int port, int ms) {
  long long end = now_ms() + ms;
  while (find_listener_fd(port) >= 0) {
    if (now_ms() >= end) return 0;
    nap_ms(5);
  }
  return 1;
}

/* tcp_server_shutdown stops listening, then lets the queues drain: with
 * LINGER_MS 0 (so stop alone would discard) a slow reader still gets all
 * 4 MiB, then EOF; shutdown returns 0; reason STOPPED. */
TEST(shutdown_delivers_what_was_queued) {
  enum { CHUNK = 65536, CHUNKS = 64 };
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  char *chunk = malloc(CHUNK);
  shutdown_call call;
  pthread_t th;
  int i, fd, id, port, end;
  char one;

  REQUIRE(chunk != NULL);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_LINGER_MS, 0), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_SEND_QUEUE_LIMIT, 0), 0);
  port = start_tcp(r->s);
  fd = raw_connect_small_rcvbuf(port);
  id = id_of_fd(r, fd);
  for (i = 0; i < CHUNKS; i++) {
    fill_pattern(chunk, (size_t)i * CHUNK, CHUNK);
    CHECK_EQ(tcp_server_send_ex(r->s, id, chunk, CHUNK), 0);
  }
  CHECK_GT(tcp_server_queued(r->s, id), 0);

  call.s = r->s;
  call.timeout_ms = 10000;
  REQUIRE(pthread_create(&th, NULL, call_shutdown, &call) == 0);
  CHECK(listener_gone(port, WAIT_MS)); /* shutdown is under way */
  CHECK_EQ(try_connect(port), ECONNREFUSED);
  CHECK(read_pattern(fd, (size_t)CHUNKS * CHUNK, 15000));
  CHECK_EQ(raw_read(fd, &one, 1, WAIT_MS, &end), 0);
  CHECK_EQ(end, 1);
  pthread_join(th, NULL);
  server_rec_mark_stopped(r);
  CHECK_EQ(call.rc, 0);
  CHECK_EQ(tcp_server_is_running(r->s), 0);
  CHECK_REASON(x, id, TCP_CLOSE_STOPPED);
  CHECK_EQ(tcp_server_shutdown(r->s, 100), TCP_ERR_NOT_RUNNING);
  close(fd);
  server_rec_free(r);
  server_ext_free(x);
  free(chunk);
}

/* A peer that never reads: shutdown gives up after its timeout with
 * TCP_ERR_TIMEOUT. */
TEST(shutdown_times_out_on_non_reading_peer) {
  enum { CHUNK = 65536, CHUNKS = 128 };
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  char *chunk = calloc(1, CHUNK);
  shutdown_call call;
  int i, fd, id;

  REQUIRE(chunk != NULL);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_SEND_QUEUE_LIMIT, 0), 0);
  fd = raw_connect_small_rcvbuf(start_tcp(r->s));
  id = id_of_fd(r, fd);
  for (i = 0; i < CHUNKS; i++) CHECK_EQ(tcp_server_send_ex(r->s, id, chunk, CHUNK), 0);
  call.s = r->s;
  call.timeout_ms = 300;
  call_shutdown(&call);
  server_rec_mark_stopped(r);
  CHECK_EQ(call.rc, TCP_ERR_TIMEOUT);
  CHECK_GE(call.took_ms, 250);
  CHECK_LT(call.took_ms, 3000);
  CHECK_REASON(x, id, TCP_CLOSE_STOPPED);
  close(fd);
  server_rec_free(r);
  server_ext_free(x);
  free(chunk);
}

/* stop_listening: established connections keep being served, new ones
 * are refused by the kernel, is_running stays 1; a second server can take
 * the port (rolling restart). */
TEST(stop_listening_keeps_connections) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  server_rec *r2 = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  client_rec *cr2 = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  int port;

  r->echo = 1;
  r2->echo = 1;
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_REUSEPORT, 1), 0);
  REQUIRE_EQ(tcp_server_set_option(r2->s, TCP_OPT_REUSEPORT, 1), 0);
  port = start_tcp(r->s);
  connect_tcp(cr, port);
  CHECK_EQ(tcp_client_send(cr->c, "one", 3), 1);
  CHECK_WAIT(cr->m, cr->messages == 1);

  CHECK_EQ(tcp_server_stop_listening(r->s), 0);
  CHECK_EQ(try_connect(port), ECONNREFUSED);
  CHECK_EQ(tcp_server_is_running(r->s), 1);
  CHECK_EQ(tcp_client_send(cr->c, "two", 3), 1);
  CHECK_WAIT(cr->m, cr->messages == 2);

  /* The successor takes the port; the old connection stays with r. */
  REQUIRE_EQ(tcp_server_set_option_str(r2->s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  REQUIRE_EQ(tcp_server_start(r2->s, port), TCP_START_OK);
  connect_tcp(cr2, port);
  CHECK_WAIT(&r2->m, r2->established == 1);
  CHECK_EQ(tcp_client_send(cr->c, "three", 5), 1);
  CHECK_WAIT(cr->m, cr->messages == 3);
  LOCKED(&r->m, CHECK_EQ(r->established, 1));

  tcp_server_stop(r->s);
  server_rec_mark_stopped(r);
  CHECK_EQ(tcp_server_stop_listening(r->s), TCP_ERR_NOT_RUNNING);
  client_rec_free(cr);
  client_rec_free(cr2);
  server_rec_free(r);
  server_rec_free(r2);
}

/* The connection's pointer: set in established, passed to message_ex,
 * ready and closed_ex (server_ext checks every call), readable with
 * tcp_server_conn_data, replaceable later. */
TEST(conn_data_reaches_every_callback) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  server_ext *x = server_ext_new(r, 0);
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  int other, id;

  x->set_conn_data = 1;
  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_EQ(tcp_client_send(cr->c, "one", 3), 1);
  CHECK_WAIT(cr->m, cr->messages == 1);
  id = server_rec_id(r, 0);
  LOCKED(&r->m, CHECK(tcp_server_conn_data(r->s, id) == (void *)&x->conns[0]));
  CHECK(tcp_server_conn_data(r->s, 987654) == NULL);
  CHECK_EQ(tcp_server_set_conn_data(r->s, 987654, &other), TCP_ERR_NO_CLIENT);

  /* Replaced from the main thread while nothing is in flight. */
  LOCKED(&r->m, x->conns[0].data = &other);
  CHECK_EQ(tcp_server_set_conn_data(r->s, id, &other), 0);
  CHECK(tcp_server_conn_data(r->s, id) == (void *)&other);
  CHECK_EQ(tcp_client_send(cr->c, "two", 3), 1);
  CHECK_WAIT(cr->m, cr->messages == 2);
  tcp_client_stop(cr->c);
  client_rec_mark_stopped(cr);
  CHECK_WAIT(&r->m, r->closed == 1);
  CHECK_REASON(x, id, TCP_CLOSE_PEER);
  CHECK(tcp_server_conn_data(r->s, id) == NULL); /* gone with the connection */
  client_rec_free(cr);
  server_rec_free(r);
  server_ext_free(x); /* fails on any conn_data mismatch */
}

/* ---- introspection -------------------------------------------------------------------- */

/* Server and connection counters after known traffic, across a restart. */
TEST(stats_count_traffic) {
  enum { N = 10 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *c1 = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  client_rec *c2 = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  tcp_server_stats st, guard[2];
  tcp_conn_stats cs;
  long long w0 = wall_ms(), end;
  int i, id, port;

  r->echo = 1;
  port = start_tcp(r->s);
  connect_tcp(c1, port);
  connect_tcp(c2, port);
  for (i = 0; i < N; i++) {
    CHECK_EQ(tcp_client_send(c1->c, "0123456789", 10), 1);
    CHECK_EQ(tcp_client_send(c2->c, "0123456789", 10), 1);
  }
  CHECK_WAIT(c1->m, c1->messages == N);
  CHECK_WAIT(c2->m, c2->messages == N);
  /* A counter may be bumped just after the write that the peer already
   * read: poll it (bounded; there is no event). */
  end = now_ms() + 2000;
  while ((st = stats_of(r->s)).bytes_out < 2 * N * 10 && now_ms() < end) nap_ms(5);

  st = stats_of(r->s);
  CHECK_EQ(st.active, 2);
  CHECK_EQ(st.established, 2);
  CHECK_EQ(st.accepted, 2);
  CHECK_EQ(st.refused, 0);
  CHECK_EQ(st.msgs_in, 2 * N);
  CHECK_EQ(st.msgs_out, 2 * N);
  /* "Payload bytes": with or without the delimiters (not specified). */
  CHECK_GE(st.bytes_in, 2 * N * 10);
  CHECK_LT(st.bytes_in, 2 * N * 11 + 1);
  CHECK_GE(st.bytes_out, 2 * N * 10);
  CHECK_LT(st.bytes_out, 2 * N * 11 + 1);

  id = server_id_of(r, c1->c);
  memset(&cs, 0, sizeof cs);
  CHECK_EQ(tcp_server_conn_stats(r->s, id, &cs, sizeof cs), 0);
  CHECK_EQ(cs.msgs_in, N);
  CHECK_EQ(cs.msgs_out, N);
  CHECK_GE(cs.bytes_in, N * 10);
  CHECK_LT(cs.bytes_in, N * 11 + 1);
  CHECK_GE(cs.connected_unix_ms, w0 - 1000); /* clocks tick in steps */
  CHECK_LT(cs.connected_unix_ms, wall_ms() + 1);
  CHECK_EQ(cs.queued, 0);
  CHECK_EQ(tcp_server_conn_stats(r->s, 987654, &cs, sizeof cs), TCP_ERR_NO_CLIENT);
  CHECK_EQ(tcp_server_get_stats(r->s, NULL, sizeof st), TCP_ERR_INVALID_ARG);

  /* The client's view of the same connection. */
  memset(&cs, 0, sizeof cs);
  CHECK_EQ(tcp_client_conn_stats(c1->c, &cs, sizeof cs), 0);
  CHECK_EQ(cs.msgs_out, N);
  CHECK_EQ(cs.msgs_in, N);
  CHECK_GE(cs.bytes_out, N * 10);
  CHECK_GE(cs.connected_unix_ms, w0 - 1000);

  /* An older caller's smaller struct: nothing written past out_size. */
  memset(guard, 0xab, sizeof guard);
  if (tcp_server_get_stats(r->s, &guard[0], offsetof(tcp_server_stats, refused)) == 0) {
    const unsigned char *p = (const unsigned char *)&guard[0];
    size_t k;
    for (k = offsetof(tcp_server_stats, refused); k < sizeof guard && p[k] == 0xab; k++) {
    }
    CHECK_EQ(k, sizeof guard);
    CHECK_EQ(guard[0].established, 2);
  }

  tcp_client_stop(c1->c);
  client_rec_mark_stopped(c1);
  tcp_client_stop(c2->c);
  client_rec_mark_stopped(c2);
  CHECK_WAIT(&r->m, r->closed == 2);
  end = now_ms() + 2000; /* no event for the counter: poll it, bounded */
  while (stats_of(r->s).active != 0 && now_ms() < end) nap_ms(10);
  CHECK_EQ(stats_of(r->s).active, 0);

  /* Counted since the server was created, across restarts. */
  tcp_server_stop(r->s);
  REQUIRE_EQ(tcp_server_start(r->s, 0), TCP_START_OK);
  client_rec_free(c1);
  c1 = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  connect_tcp(c1, tcp_server_port(r->s));
  CHECK_WAIT(&r->m, r->established == 3);
  st = stats_of(r->s);
  CHECK_EQ(st.accepted, 3);
  CHECK_EQ(st.msgs_in, 2 * N);
  client_rec_free(c1);
  client_rec_free(c2);
  server_rec_free(r);
}

/* Each way a connection ends has its reason, and every reason its text. */
TEST(close_reasons) {
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 0);
  int port, f1, f2, f3, f4, i1, i2, i3, i4, k;

  port = start_tcp(r->s);
  f1 = raw_connect(port);
  f2 = raw_connect(port);
  f3 = raw_connect(port);
  f4 = raw_connect(port);
  i1 = id_of_fd(r, f1);
  i2 = id_of_fd(r, f2);
  i3 = id_of_fd(r, f3);
  i4 = id_of_fd(r, f4);

  close(f1);
  CHECK_WAIT(&r->m, CONN(r, i1)->closed == 1);
  CHECK_REASON(x, i1, TCP_CLOSE_PEER);
  CHECK_EQ(tcp_server_send_ex(r->s, i1, "x", 1), TCP_ERR_NO_CLIENT);
  raw_reset(f2);
  CHECK_WAIT(&r->m, CONN(r, i2)->closed == 1);
  CHECK_REASON(x, i2, TCP_CLOSE_RESET);
  CHECK_EQ(tcp_server_close_client(r->s, i3), 0);
  CHECK_WAIT(&r->m, CONN(r, i3)->closed == 1);
  CHECK_REASON(x, i3, TCP_CLOSE_LOCAL);
  tcp_server_stop(r->s);
  server_rec_mark_stopped(r);
  CHECK_REASON(x, i4, TCP_CLOSE_STOPPED);
  close(f3);
  close(f4);

  for (k = TCP_CLOSE_PEER; k <= TCP_CLOSE_INTERNAL; k++) {
    const char *t = tcp_close_reason_str(k);
    if (!t || !*t || strcmp(t, "unknown close reason") == 0)
      h_fail(__FILE__, __LINE__, "tcp_close_reason_str(%d) = \"%s\"", k, t ? t : "(null)");
  }
  CHECK_STR(tcp_close_reason_str(0), "unknown close reason");
  CHECK_STR(tcp_close_reason_str(12), "unknown close reason");
  CHECK_STR(tcp_close_reason_str(-1), "unknown close reason");
  server_rec_free(r);
  server_ext_free(x);
}

/* ---- socket options ------------------------------------------------------------------------ */

static int sockopt_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  if (getsockopt(fd, level, name, &v, &len) != 0) return -1;
  return v;
}

/* The listen backlog of port as `ss` shows it (Send-Q of a LISTEN
 * socket), or -1 when ss is not there. */
static int listen_backlog(int port) {
  char filter[64], out[512];
  char *argv[] = {"/usr/bin/ss", "-Hltn", filter, NULL};
  posix_spawn_file_actions_t fa;
  int p[2], st, recvq = -1, sendq = -1;
  ssize_t n, got = 0;
  pid_t pid;

  if (access(argv[0], X_OK) != 0) return -1;
  snprintf(filter, sizeof filter, "sport = :%d", port);
  REQUIRE(pipe(p) == 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_addclose(&fa, p[0]);
  REQUIRE(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  while ((n = read(p[0], out + got, sizeof out - 1 - (size_t)got)) > 0) got += n;
  close(p[0]);
  waitpid(pid, &st, 0);
  out[got > 0 ? got : 0] = '\0';
  if (sscanf(out, " LISTEN %d %d", &recvq, &sendq) != 2) return -1;
  return sendq;
}

/* Keep-alive, backlog and IPv6-only reach the sockets; bad values are
 * refused. */
TEST(socket_options_take_effect) {
  server_rec *r = server_rec_new(tcp_server_new());
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  server_rec *r0 = server_rec_new(tcp_server_new());
  int port, fd, sfd, cfd, backlog;
  static const int bad_neg[] = {TCP_OPT_KEEPALIVE_IDLE_MS, TCP_OPT_KEEPALIVE_INTERVAL_MS,
                                TCP_OPT_KEEPALIVE_COUNT, TCP_OPT_BACKLOG};
  size_t i;

  for (i = 0; i < sizeof bad_neg / sizeof bad_neg[0]; i++) {
    CHECK_EQ(tcp_server_set_option(r->s, bad_neg[i], -1), TCP_ERR_INVALID_ARG);
    CHECK_EQ(tcp_server_set_option(r->s, bad_neg[i], 1LL << 40), TCP_ERR_INVALID_ARG);
  }
  CHECK_EQ(tcp_client_set_option(cr->c, TCP_OPT_KEEPALIVE_COUNT, -1), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_option(r->s, TCP_OPT_PROXY_PROTOCOL, 3), TCP_ERR_INVALID_ARG);

  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_KEEPALIVE, 1), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_KEEPALIVE_IDLE_MS, 7000), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_KEEPALIVE_INTERVAL_MS, 3000), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_KEEPALIVE_COUNT, 4), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_BACKLOG, 7), 0);
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_IPV6_ONLY, 0), 0);
  port = start_tcp(r->s);
  CHECK_EQ(tcp_server_set_option(r->s, TCP_OPT_KEEPALIVE_COUNT, 5), TCP_ERR_ALREADY_RUNNING);

  fd = raw_connect(port);
  REQUIRE(id_of_fd(r, fd) > 0);
  sfd = find_conn_fd(port, raw_local_port(fd));
  REQUIRE(sfd >= 0);
  CHECK_EQ(sockopt_int(sfd, SOL_SOCKET, SO_KEEPALIVE), 1);
  CHECK_EQ(sockopt_int(sfd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
  CHECK_EQ(sockopt_int(sfd, IPPROTO_TCP, TCP_KEEPINTVL), 3);
  CHECK_EQ(sockopt_int(sfd, IPPROTO_TCP, TCP_KEEPCNT), 4);
  backlog = listen_backlog(port);
  if (backlog >= 0) CHECK_EQ(backlog, 7);
  close(fd);

  /* Client side, and keep-alive off on a server. */
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_KEEPALIVE_IDLE_MS, 5000), 0);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_KEEPALIVE_COUNT, 2), 0);
  REQUIRE_EQ(tcp_server_set_option(r0->s, TCP_OPT_KEEPALIVE, 0), 0);
  port = start_tcp(r0->s);
  connect_tcp(cr, port);
  REQUIRE_WAIT(&r0->m, r0->established == 1); /* its options are applied */
  cfd = find_conn_fd(tcp_client_local_port(cr->c), port);
  REQUIRE(cfd >= 0);
  CHECK_EQ(sockopt_int(cfd, SOL_SOCKET, SO_KEEPALIVE), 1);
  CHECK_EQ(sockopt_int(cfd, IPPROTO_TCP, TCP_KEEPIDLE), 5);
  CHECK_EQ(sockopt_int(cfd, IPPROTO_TCP, TCP_KEEPCNT), 2);
  sfd = find_conn_fd(port, tcp_client_local_port(cr->c));
  REQUIRE(sfd >= 0);
  CHECK_EQ(sockopt_int(sfd, SOL_SOCKET, SO_KEEPALIVE), 0);
  client_rec_free(cr);
  server_rec_free(r0);
  server_rec_free(r);
}

/* TCP_OPT_IPV6_ONLY on "::" (the only address where it matters): 1 keeps
 * IPv4 peers out, 0 (default) lets them in. Skipped without ::1. */
TEST(ipv6_only_option) {
  int mode;
  if (!have_ipv6_loopback()) {
    printf("    skipped: no ::1 here\n");
    return;
  }
  for (mode = 0; mode <= 1; mode++) {
    server_rec *r = server_rec_new(tcp_server_new());
    int port, lfd;
    REQUIRE_EQ(tcp_server_set_option_str(r->s, TCP_OPT_BIND_ADDRESS, "::"), 0);
    REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_IPV6_ONLY, mode), 0);
    REQUIRE_EQ(tcp_server_start(r->s, 0), TCP_START_OK);
    port = tcp_server_port(r->s);
    lfd = find_listener_fd(port);
    REQUIRE(lfd >= 0);
    CHECK_EQ(sockopt_int(lfd, IPPROTO_IPV6, IPV6_V6ONLY), mode);
    expect_accepted(r, raw_connect6(port), "::1");
    if (mode)
      CHECK_EQ(try_connect(port), ECONNREFUSED);
    else
      expect_accepted(r, raw_connect(port), "127.0.0.1");
    server_rec_free(r);
  }
}

/* ---- the client ------------------------------------------------------------------------------ */

/* TCP_OPT_BIND_ADDRESS on a client: the server (and its accept callback)
 * sees the chosen source address. */
TEST(client_bind_address) {
  server_rec *r = server_rec_new(tcp_server_new());
  server_ext *x = server_ext_new(r, 1);
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  char ip[64] = "";

  REQUIRE_EQ(tcp_client_set_option_str(cr->c, TCP_OPT_BIND_ADDRESS, "127.0.0.2"), 0);
  connect_tcp(cr, start_tcp(r->s));
  REQUIRE_WAIT(&r->m, r->established == 1);
  tcp_server_client_ip(r->s, server_rec_id(r, 0), ip, sizeof ip);
  CHECK_STR(ip, "127.0.0.2");
  LOCKED(&r->m, CHECK_STR(x->accept_ip, "127.0.0.2"));
  client_rec_free(cr);
  server_rec_free(r);
  server_ext_free(x);
}

/* TCP_OPT_RECONNECT: the server stops, the client reports failed attempts
 * (numbered from 1), the server starts again on the same port, the client
 * reports success and messages flow again. */
TEST(client_reconnects_after_server_restart) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  client_ext *cx = client_ext_new(cr);
  int port, i, n, reason;

  r->echo = 1;
  REQUIRE_EQ(tcp_server_set_option(r->s, TCP_OPT_REUSEPORT, 1), 0);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_RECONNECT, 1), 0);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_RECONNECT_MIN_MS, 50), 0);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_RECONNECT_MAX_MS, 200), 0);
  port = start_tcp(r->s);
  connect_tcp(cr, port);
  CHECK_EQ(tcp_client_send(cr->c, "one", 3), 1);
  CHECK_WAIT(cr->m, cr->messages == 1);

  tcp_server_stop(r->s);
  CHECK_WAIT(cr->m, cr->closed == 1);
  LOCKED(cr->m, reason = cx->reason);
  if (reason != TCP_CLOSE_PEER && reason != TCP_CLOSE_RESET)
    h_fail(__FILE__, __LINE__, "client closed with reason %d (%s), want PEER or RESET",
           reason, tcp_close_reason_str(reason));
  CHECK_WAIT(cr->m, cx->connects >= 2);
  CHECK_EQ(tcp_client_send_ex(cr->c, "x", 1), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_client_queued(cr->c), TCP_ERR_NOT_RUNNING);

  REQUIRE_EQ(tcp_server_start(r->s, port), TCP_START_OK);
  CHECK_WAIT(cr->m, cx->reconnected == 1);
  monitor_lock(cr->m);
  n = cx->connects < EXT_MAX_CONNECTS ? cx->connects : EXT_MAX_CONNECTS;
  for (i = 0; i < n; i++) {
    CHECK_EQ(cx->connect_attempt[i], i + 1);
    CHECK_EQ(cx->connect_result[i], i + 1 < cx->connects ? TCP_START_CONNECT : TCP_START_OK);
  }
  monitor_unlock(cr->m);
  CHECK_EQ(tcp_client_send(cr->c, "two", 3), 1);
  CHECK_WAIT(cr->m, cr->messages == 2);
  LOCKED(cr->m, CHECK(msg_is(&cr->msgs, 1, "two")));
  CHECK_EQ(tcp_client_is_running(cr->c), 1);

  /* Not after tcp_client_stop: no attempt follows (the server is up, so
   * one would succeed and show). */
  tcp_client_stop(cr->c);
  client_rec_mark_stopped(cr);
  CHECK_WAIT(&r->m, r->closed == 2);
  LOCKED(cr->m, n = cx->connects);
  nap_ms(400); /* a bounded look for attempts that must not come */
  LOCKED(cr->m, CHECK_EQ(cx->connects, n));
  LOCKED(&r->m, CHECK_EQ(r->established, 2));
  client_rec_free(cr); /* closed ran once per connection */
  client_ext_free(cx);
  server_rec_free(r);
}

/* Client pause/resume: while paused nothing from the server is delivered;
 * resume delivers it all in order. */
TEST(client_pause_resume) {
  enum { N = 200 };
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  char buf[PR_LEN + 1];
  int i, id, got;

  CHECK_EQ(tcp_client_pause(cr->c), TCP_ERR_NOT_RUNNING);
  connect_tcp(cr, start_tcp(r->s));
  REQUIRE_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(tcp_client_pause(cr->c), 0);
  CHECK_EQ(tcp_client_pause(cr->c), 0);
  for (i = 0; i < N; i++) CHECK_EQ(tcp_send_msg(r->s, id, buf, pr_message(buf, i)), 1);
  WAIT_UNTIL(got, cr->m, cr->messages > 0, 500);
  CHECK_EQ(got, 0);
  CHECK_EQ(tcp_client_resume(cr->c), 0);
  CHECK_WAIT(cr->m, cr->messages == N);
  monitor_lock(cr->m);
  for (i = 0; i < N; i++) {
    pr_message(buf, i);
    if (!msg_is_bytes(&cr->msgs, (size_t)i, buf, PR_LEN)) {
      h_fail(__FILE__, __LINE__, "message %d out of order or damaged", i);
      break;
    }
  }
  monitor_unlock(cr->m);
  client_rec_free(cr);
  server_rec_free(r);
}

/* A loopback listener whose connections have a tiny receive buffer; the
 * test accepts and reads when it wants. */
static int small_listener(int *port) {
  struct sockaddr_in a = loopback_addr(0);
  socklen_t len = sizeof a;
  int small = 4096, fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
  REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  REQUIRE(listen(fd, 4) == 0);
  REQUIRE(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
  *port = ntohs(a.sin_port);
  return fd;
}

/* Client send_ex/queued/ready against a server that does not read. */
TEST(client_queue_full_then_ready) {
  enum { CHUNK = 16384, LIMIT = 128 * 1024, MAXCHUNKS = 4096 };
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  client_ext *cx = client_ext_new(cr);
  char *chunk = malloc(CHUNK);
  tcp_conn_stats cs;
  int lfd, sfd, port, i, rc = 0;
  long long q;

  REQUIRE(chunk != NULL);
  CHECK_EQ(tcp_client_send_ex(cr->c, "x", 1), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_client_queued(cr->c), TCP_ERR_NOT_RUNNING);
  CHECK_EQ(tcp_client_conn_stats(cr->c, &cs, sizeof cs), TCP_ERR_NOT_RUNNING);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_SEND_QUEUE_LIMIT, LIMIT), 0);
  REQUIRE_EQ(tcp_client_set_option(cr->c, TCP_OPT_SEND_LOW_WATER, 8192), 0);
  lfd = small_listener(&port);
  connect_tcp(cr, port);
  sfd = accept(lfd, NULL, NULL);
  REQUIRE(sfd >= 0);
  lock_sndbuf(tcp_client_local_port(cr->c), port);

  CHECK_EQ(tcp_client_send_ex(cr->c, NULL, 5), TCP_ERR_INVALID_ARG);
  for (i = 0; i < MAXCHUNKS; i++) {
    fill_pattern(chunk, (size_t)i * CHUNK, CHUNK);
    rc = tcp_client_send_ex(cr->c, chunk, CHUNK);
    if (rc != 0) break;
  }
  REQUIRE_EQ(rc, TCP_ERR_QUEUE_FULL);
  q = tcp_client_queued(cr->c);
  CHECK_GT(q, 0);
  CHECK_LT(q, LIMIT + CHUNK + 1);
  CHECK_EQ(tcp_client_send(cr->c, chunk, CHUNK), 0);
  CHECK_EQ(tcp_errcode(), TCP_ERR_QUEUE_FULL);
  LOCKED(cr->m, CHECK_EQ(cx->ready, 0));

  CHECK(read_pattern(sfd, (size_t)i * CHUNK, 20000));
  CHECK_WAIT(cr->m, cx->ready == 1);
  CHECK_EQ(tcp_client_flush(cr->c, WAIT_MS), 0);
  CHECK_EQ(tcp_client_queued(cr->c), 0);
  memset(&cs, 0, sizeof cs);
  CHECK_EQ(tcp_client_conn_stats(cr->c, &cs, sizeof cs), 0);
  CHECK_EQ(cs.bytes_out, (unsigned long long)i * CHUNK);

  /* The server side closes: reason PEER; then a stop: reason STOPPED. */
  close(sfd);
  CHECK_WAIT(cr->m, cr->closed == 1);
  LOCKED(cr->m, CHECK_EQ(cx->reason, TCP_CLOSE_PEER));
  connect_tcp(cr, port);
  sfd = accept(lfd, NULL, NULL);
  REQUIRE(sfd >= 0);
  tcp_client_stop(cr->c);
  client_rec_mark_stopped(cr);
  LOCKED(cr->m, CHECK_EQ(cx->reason, TCP_CLOSE_STOPPED));
  close(sfd);
  close(lfd);
  client_rec_free(cr);
  client_ext_free(cx);
  free(chunk);
}

/* ---- event queue ------------------------------------------------------------------------------- */

/* In event-queue mode the accept callback still runs (it is a call), and a
 * CLOSED record carries the close reason in its code field. */
TEST(event_queue_close_reason_and_accept) {
  tcp_server *s = tcp_server_new();
  server_rec *shadow = server_rec_new(tcp_server_new()); /* monitor for ext */
  server_ext *x = server_ext_new(shadow, 0);
  static unsigned char buf[65536];
  int port, fd, kinds[8], codes[8], nev = 0;
  long long end;

  REQUIRE_EQ(tcp_server_set_option(s, TCP_OPT_EVENT_QUEUE, 1), 0);
  tcp_server_set_on_accept(s, server_ext_accept_fn(), x);
  port = start_tcp(s);
  fd = raw_connect(port);
  CHECK_WAIT(&shadow->m, x->accepts == 1);
  LOCKED(&shadow->m, CHECK_EQ(x->accept_port, raw_local_port(fd)));
  LOCKED(&shadow->m, CHECK_EQ(x->accept_on_owner, 0));

  end = now_ms() + WAIT_MS;
  while (nev < 2 && now_ms() < end) {
    size_t used = 0, off = 0;
    int n = tcp_server_poll(s, buf, sizeof buf, &used, 100), k;
    if (n < 0) break;
    for (k = 0; k < n && off + TCP_EVENT_HEADER_SIZE <= used && nev < 8; k++) {
      int32_t kind, code;
      uint32_t len;
      memcpy(&kind, buf + off, 4);
      memcpy(&code, buf + off + 8, 4);
      memcpy(&len, buf + off + 12, 4);
      kinds[nev] = kind;
      codes[nev++] = code;
      off += TCP_EVENT_HEADER_SIZE + len;
    }
    if (nev >= 1 && fd >= 0) { /* established seen: hang up */
      close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) close(fd);
  REQUIRE_EQ(nev, 2);
  CHECK_EQ(kinds[0], TCP_EVENT_ESTABLISHED);
  CHECK_EQ(kinds[1], TCP_EVENT_CLOSED);
  CHECK_EQ(codes[1], TCP_CLOSE_PEER);
  tcp_server_free(s);
  server_rec_free(shadow);
  server_ext_free(x);
}

const test_case control_tests[] = {
    TEST_ENTRY(accept_callback_refuses_before_tls),
    TEST_ENTRY(allow_and_block_lists_ipv4),
    TEST_ENTRY(allow_and_block_lists_ipv6),
    TEST_ENTRY(max_connections_refuses_the_next),
    TEST_ENTRY(idle_timeout_closes_idle_peer),
    TEST_ENTRY(idle_timeout_per_connection),
    TEST_ENTRY(client_idle_timeout),
    TEST_ENTRY(message_timeout_closes_slow_drip),
    TEST_ENTRY(write_timeout_closes_stalled_peer),
    TEST_ENTRY(queue_full_then_ready),
    TEST_ENTRY(memory_budget_closes_only_the_hog),
    TEST_ENTRY(memory_budget_refuses_sends),
    TEST_ENTRY(pause_stops_delivery_resume_delivers_all),
    TEST_ENTRY(pause_holds_off_idle_timeout),
    TEST_ENTRY(pause_applies_tcp_back_pressure),
    TEST_ENTRY(shutdown_delivers_what_was_queued),
    TEST_ENTRY(shutdown_times_out_on_non_reading_peer),
    TEST_ENTRY(stop_listening_keeps_connections),
    TEST_ENTRY(conn_data_reaches_every_callback),
    TEST_ENTRY(stats_count_traffic),
    TEST_ENTRY(close_reasons),
    TEST_ENTRY(socket_options_take_effect),
    TEST_ENTRY(ipv6_only_option),
    TEST_ENTRY(client_bind_address),
    TEST_ENTRY(client_reconnects_after_server_restart),
    TEST_ENTRY(client_pause_resume),
    TEST_ENTRY(client_queue_full_then_ready),
    TEST_ENTRY(event_queue_close_reason_and_accept),
    TEST_END};
