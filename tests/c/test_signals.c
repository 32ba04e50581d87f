/*
 * test_signals.c -- the library inside a C host: a peer that resets while
 * the server writes must not kill the host with SIGPIPE, and the host's own
 * SIGINT handler keeps working. The runner starts each test with default
 * dispositions for SIGPIPE, SIGINT and SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

TEST(sigpipe_peer_reset_while_writing) {
  enum { CHUNK = 256 * 1024, QUEUED = 32, ROUNDS = 3 };
  server_rec *r = server_rec_new(tcp_server_new());
  char *chunk = calloc(1, CHUNK);
  struct sigaction cur;
  char buf[4096];
  int port, round, i;

  REQUIRE(chunk != NULL);
  /* Not ignored by the host: a SIGPIPE on a host thread would kill us. */
  REQUIRE(sigaction(SIGPIPE, NULL, &cur) == 0);
  REQUIRE(cur.sa_handler != SIG_IGN);

  r->discard = 1;
  port = start_tcp(r->s);
  for (round = 0; round < ROUNDS; round++) {
    struct pollfd p;
    int id, fd = raw_connect(port);
    CHECK_WAIT(&r->m, r->established == round + 1);
    id = server_rec_id(r, round);

    /* The server writes 8 MiB; the peer takes a little, then resets. */
    for (i = 0; i < QUEUED; i++) tcp_send_msg(r->s, id, chunk, CHUNK);
    p.fd = fd;
    p.events = POLLIN;
    CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
    CHECK_GT(recv(fd, buf, sizeof buf, 0), 0);
    raw_reset(fd);
    /* Keep it writing into the dead connection until it notices. */
    for (i = 0; i < QUEUED && tcp_send_msg(r->s, id, chunk, CHUNK) == 1; i++) {
    }
    CHECK_WAIT(&r->m, CONN(r, id)->closed == 1);
  }
  /* Still alive, still serving. */
  CHECK_EQ(tcp_server_is_running(r->s), 1);
  server_rec_free(r);
  free(chunk);
}

/* The same from the client side: the server resets while the client
 * writes. */
TEST(sigpipe_server_reset_while_client_writes) {
  enum { CHUNK = 256 * 1024, QUEUED = 32 };
  client_rec *cr = client_rec_new(tcp_client_new(), NULL);
  char *chunk = calloc(1, CHUNK);
  char buf[4096];
  struct pollfd p;
  int lfd, fd, i, port = closed_port(&lfd);

  REQUIRE(chunk != NULL);
  REQUIRE(listen(lfd, 4) == 0);
  connect_tcp(cr, port);
  fd = accept(lfd, NULL, NULL);
  REQUIRE(fd >= 0);
  for (i = 0; i < QUEUED; i++) tcp_client_send(cr->c, chunk, CHUNK);
  p.fd = fd;
  p.events = POLLIN;
  CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
  CHECK_GT(recv(fd, buf, sizeof buf, 0), 0);
  raw_reset(fd);
  for (i = 0; i < QUEUED && tcp_client_send(cr->c, chunk, CHUNK) == 1; i++) {
  }
  CHECK_WAIT(cr->m, cr->closed == 1);
  CHECK_EQ(tcp_client_is_running(cr->c), 0);
  close(lfd);
  client_rec_free(cr);
  free(chunk);
}

static sem_t sigint_sem;
static volatile sig_atomic_t sigint_count;

static void on_sigint(int sig) {
  (void)sig;
  sigint_count++;
  sem_post(&sigint_sem); /* async-signal-safe */
}

static int sigint_arrived(int ms) {
  struct timespec ts;
  int rc;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  while ((rc = sem_timedwait(&sigint_sem, &ts)) != 0 && errno == EINTR) {
  }
  return rc == 0;
}

TEST(host_sigint_handler_runs) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 0));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 0), NULL);
  struct sigaction sa, cur;

  /* Loading the library installed nothing for SIGINT or SIGTERM. */
  REQUIRE(sigaction(SIGINT, NULL, &cur) == 0);
  CHECK(cur.sa_handler == SIG_DFL);
  REQUIRE(sigaction(SIGTERM, NULL, &cur) == 0);
  CHECK(cur.sa_handler == SIG_DFL);

  /* A plain host handler (no SA_ONSTACK, as a typical program has). */
  REQUIRE(sem_init(&sigint_sem, 0, 0) == 0);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGINT, &sa, NULL) == 0);

  /* Servers run (TCP and TLS) and traffic flows. */
  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_EQ(tcp_client_send(cr->c, "before", 6), 1);
  CHECK_WAIT(cr->m, cr->messages == 1);
  {
    tcp_server *tls = tcp_server_new();
    start_mtls(tls, &fx()->main);

    REQUIRE(sigaction(SIGINT, NULL, &cur) == 0);
    CHECK(cur.sa_handler == on_sigint); /* starting took nothing over */

    CHECK_EQ(raise(SIGINT), 0);
    CHECK(sigint_arrived(2000));
    CHECK_EQ(kill(getpid(), SIGINT), 0);
    CHECK(sigint_arrived(WAIT_MS));
    CHECK_EQ(sigint_count, 2);
    tcp_server_free(tls);
  }

  /* The library is unaffected. */
  CHECK_EQ(tcp_client_send(cr->c, "after", 5), 1);
  CHECK_WAIT(cr->m, cr->messages == 2);

  client_rec_free(cr);
  server_rec_free(r);
  sem_destroy(&sigint_sem);
}

const test_case signal_tests[] = {
    TEST_ENTRY(sigpipe_peer_reset_while_writing),
    TEST_ENTRY(sigpipe_server_reset_while_client_writes),
    TEST_ENTRY(host_sigint_handler_runs),
    TEST_END,
};
