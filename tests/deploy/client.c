/*
 * client -- the load of the load-balancer tests (tests/deploy/test_deploy.py):
 * tcpgo clients (the public header's tcp_client) that send numbered messages
 * through a proxy, count what comes back and never give up a message.
 *
 *   client --port P [--host 127.0.0.1] [--src 127.0.0.2] [--clients 4]
 *          [--window 4] [--messages 0] [--reconnect-every 0]
 *          [--tls DIR [--cert client]] [--proxy-header 1|2 SRC DST]
 *          [--expect-refused] [--timeout-ms 2000] [--give-up-ms 10000]
 *
 * Each of --clients threads connects from --src (TCP_OPT_BIND_ADDRESS) and
 * keeps --window messages "c<client>-<seq>" outstanding. A reply is
 * "<backend> [<ip>:<port> <cn>] <message>" (tests/deploy/backend.c, or
 * examples/deploy/worker.c without the middle fields); the oldest
 * outstanding message must come back first. A message counts as
 * acknowledged when its reply arrived. When a connection is lost (closed,
 * reset, or no reply within --timeout-ms) the thread connects again
 * (retrying for up to --give-up-ms) and resends every unacknowledged
 * message, oldest first: so a run ends with each client's messages
 * 1..acked acknowledged, none skipped. "BYE" from the server (a draining
 * worker) makes the thread stop sending, wait for the replies still due,
 * close and connect again -- a clean move, not a loss.
 *
 * --messages N      stop after N acknowledged messages per client (0: until
 *                   "stop" or end of file on stdin)
 * --reconnect-every N  close cleanly and connect again after N replies on a
 *                   connection (connection churn)
 * --expect-refused  each client connects once and expects the connection to
 *                   close without any reply (a blocked address)
 *
 * Stdout: "PROGRESS <acked>" every 100 ms, then one line "RESULT {json}" (see
 * print_result). Exit status 0, or 1 when a client gave up.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tcpgo.h"

#define MAX_WINDOW 64
#define MAX_KEYS 16    /* distinct backends / addresses / CNs counted */
#define REASONS 16

/* Options. */
static const char *o_host = "127.0.0.1", *o_src = "", *o_tls = NULL, *o_cert = "client";
static int o_port, o_clients = 4, o_window = 4, o_reconnect_every, o_expect_refused;
static long o_messages;
static int o_timeout_ms = 2000, o_give_up_ms = 10000;
static int o_proxy_version;
static const char *o_proxy_src, *o_proxy_dst;

static atomic_int g_stop;
static atomic_llong g_acked;

/* A string -> count table (small; linear search). */
struct tally {
  int n;
  char key[MAX_KEYS][96];
  long long count[MAX_KEYS];
};

static void tally_add(struct tally *t, const char *key, long long by) {
  for (int i = 0; i < t->n; i++)
    if (strcmp(t->key[i], key) == 0) {
      t->count[i] += by;
      return;
    }
  if (t->n == MAX_KEYS)
    return;
  snprintf(t->key[t->n], sizeof t->key[0], "%s", key);
  t->count[t->n++] = by;
}

/* One connection's events, filled by the library's callbacks. */
struct conn {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char replies[MAX_WINDOW * 2][256]; /* replies not yet taken, in order */
  int nreplies;
  int bye, closed, close_reason;
};

/* One load thread: its counters are its own, summed at the end. */
struct worker {
  int index;
  pthread_t thread;
  long long acked;          /* messages 1..acked are acknowledged */
  long long next;           /* next sequence number to send */
  long long connections, clean_moves, byes, resends;
  long long lost, lost_before_reply, timeouts, connect_failures;
  long long lost_reason[REASONS], connect_codes[128];
  long long wrong_reply, wrong_port, refused, unexpected_reply;
  int gave_up;
  struct tally backends, ips, cns;
  char last_problem[200];
};

static struct worker *g_workers;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static void nap_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static void on_message(void *ud, const char *data, size_t len) {
  struct conn *c = ud;
  pthread_mutex_lock(&c->mu);
  if (len == 3 && memcmp(data, "BYE", 3) == 0) {
    c->bye = 1;
  } else if (c->nreplies < (int)(sizeof c->replies / sizeof c->replies[0])) {
    size_t n = len < sizeof c->replies[0] - 1 ? len : sizeof c->replies[0] - 1;
    memcpy(c->replies[c->nreplies], data, n);
    c->replies[c->nreplies++][n] = '\0';
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void on_closed(void *ud, int reason) {
  struct conn *c = ud;
  pthread_mutex_lock(&c->mu);
  c->closed = 1;
  c->close_reason = reason;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void problem(struct worker *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->last_problem, sizeof w->last_problem, fmt, ap);
  va_end(ap);
}

/* A new client connected from --src, or NULL (counted) when connecting
 * failed. */
static tcp_client *connect_once(struct worker *w, struct conn *c) {
  tcp_client *cl = tcp_client_new_fragmented('\n', 65536);
  if (cl == NULL)
    return NULL;
  tcp_client_set_option_str(cl, TCP_OPT_BIND_ADDRESS, o_src);
  tcp_client_set_option(cl, TCP_OPT_CONNECT_TIMEOUT_MS, o_timeout_ms);
  if (o_proxy_version)
    tcp_client_set_proxy_header(cl, o_proxy_version, o_proxy_src, o_proxy_dst);
  tcp_client_set_on_message(cl, on_message, c);
  tcp_client_set_on_closed_ex(cl, on_closed, c);
  int rc;
  if (o_tls) {
    char ca[512], cert[512], key[512];
    snprintf(ca, sizeof ca, "%s/ca.pem", o_tls);
    snprintf(cert, sizeof cert, "%s/%s.pem", o_tls, o_cert);
    snprintf(key, sizeof key, "%s/%s.key", o_tls, o_cert);
    rc = tls_client_start(cl, o_host, o_port, ca, cert, key);
  } else {
    rc = tcp_client_start(cl, o_host, o_port);
  }
  if (rc != TCP_START_OK) {
    w->connect_failures++;
    w->connect_codes[rc >= 0 && rc < 128 ? rc : 0]++;
    char why[160];
    tcp_client_last_error(cl, why, sizeof why);
    problem(w, "connect: %s: %s", tcp_strerror(rc), why);
    tcp_client_free(cl);
    return NULL;
  }
  w->connections++;
  return cl;
}

/* Connects, retrying for up to --give-up-ms. */
static tcp_client *connect_retrying(struct worker *w, struct conn *c) {
  long long deadline = now_ms() + o_give_up_ms;
  int backoff = 10;
  while (!atomic_load(&g_stop)) {
    tcp_client *cl = connect_once(w, c);
    if (cl != NULL)
      return cl;
    if (now_ms() > deadline) {
      w->gave_up = 1;
      return NULL;
    }
    nap_ms(backoff);
    backoff = backoff < 200 ? backoff * 2 : 200;
  }
  return NULL;
}

static void reset_conn(struct conn *c) {
  pthread_mutex_lock(&c->mu);
  c->nreplies = 0;
  c->bye = c->closed = 0;
  c->close_reason = 0;
  pthread_mutex_unlock(&c->mu);
}

/* Checks one reply against the oldest outstanding message: fields are
 * "<backend> <message>" or "<backend> <ip>:<port> <cn> <message>". */
static int take_reply(struct worker *w, const char *reply, int local_port) {
  char expect[64], f[4][128];
  snprintf(expect, sizeof expect, "c%d-%lld", w->index, w->acked + 1);
  int n = sscanf(reply, "%127s %127s %127s %127s", f[0], f[1], f[2], f[3]);
  const char *msg = n == 4 ? f[3] : n == 2 ? f[1] : "";
  if (strcmp(msg, expect) != 0) {
    w->wrong_reply++;
    problem(w, "reply \"%s\", expected message %s", reply, expect);
    return 0;
  }
  tally_add(&w->backends, f[0], 1);
  if (n == 4) {
    char *colon = strrchr(f[1], ':');
    if (colon != NULL) {
      *colon = '\0';
      /* Through a PROXY-header chain the announced port is not ours. */
      if (!o_proxy_version && atoi(colon + 1) != local_port) {
        w->wrong_port++;
        problem(w, "backend saw port %s, the client's is %d", colon + 1, local_port);
      }
    }
    tally_add(&w->ips, f[1], 1);
    tally_add(&w->cns, f[2], 1);
  }
  w->acked++;
  atomic_fetch_add(&g_acked, 1);
  return 1;
}

static int send_message(tcp_client *cl, struct worker *w, long long seq) {
  char msg[64];
  int n = snprintf(msg, sizeof msg, "c%d-%lld", w->index, seq);
  return tcp_client_send(cl, msg, (size_t)n);
}

static int done(struct worker *w) {
  return atomic_load(&g_stop) || (o_messages > 0 && w->acked >= o_messages);
}

/* One connection's life: (re)send what is unacknowledged, keep the window
 * full, take replies in order. Returns when the connection ended. */
static void serve_connection(struct worker *w, tcp_client *cl, struct conn *c) {
  int local_port = tcp_client_local_port(cl);
  long long on_this_conn = 0;
  int draining = 0; /* BYE seen, or churn: send no more, await replies */
  if (w->next != w->acked + 1)
    w->resends += w->next - (w->acked + 1);
  w->next = w->acked + 1;
  for (;;) {
    while (!draining && !done(w) && w->next - w->acked <= o_window &&
           (o_messages == 0 || w->next <= o_messages)) {
      if (!send_message(cl, w, w->next))
        break; /* not connected any more: the closed event follows */
      w->next++;
    }
    if (w->next == w->acked + 1 && (draining || done(w)))
      break; /* nothing outstanding: a clean end */
    char reply[256];
    int have = 0, closed = 0;
    pthread_mutex_lock(&c->mu);
    long long deadline = now_ms() + o_timeout_ms;
    while (c->nreplies == 0 && !c->closed && !(c->bye && !draining)) {
      struct timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      t.tv_nsec += 20 * 1000000L;
      if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&c->cv, &c->mu, &t);
      if (now_ms() > deadline)
        break;
    }
    if (c->bye && !draining) {
      draining = 1;
      w->byes++;
    }
    if (c->nreplies > 0) {
      memcpy(reply, c->replies[0], sizeof reply);
      memmove(c->replies[0], c->replies[1], (size_t)(c->nreplies - 1) * sizeof c->replies[0]);
      c->nreplies--;
      have = 1;
    } else {
      closed = c->closed;
    }
    int reason = c->close_reason;
    pthread_mutex_unlock(&c->mu);
    if (have) {
      if (!take_reply(w, reply, local_port))
        return; /* out of order or garbled: drop the connection, resend */
      if (++on_this_conn == o_reconnect_every)
        draining = 1;
      continue;
    }
    if (draining && !closed && w->next == w->acked + 1)
      break;
    if (closed) {
      w->lost++;
      w->lost_reason[reason > 0 && reason < REASONS ? reason : 0]++;
      if (on_this_conn == 0)
        w->lost_before_reply++;
      problem(w, "connection lost (%s) with %lld unacknowledged", tcp_close_reason_str(reason),
              w->next - w->acked - 1);
      return;
    }
    if (now_ms() <= deadline)
      continue; /* a BYE arrived: go round to drain */
    w->timeouts++;
    problem(w, "no reply within %d ms", o_timeout_ms);
    return;
  }
  if (draining)
    w->clean_moves++;
}

static void *run_worker(void *arg) {
  struct worker *w = arg;
  struct conn c;
  memset(&c, 0, sizeof c);
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  w->next = 1;
  if (o_expect_refused) {
    tcp_client *cl = connect_once(w, &c);
    if (cl != NULL) {
      send_message(cl, w, 1);
      pthread_mutex_lock(&c.mu);
      long long deadline = now_ms() + o_timeout_ms;
      while (!c.closed && c.nreplies == 0 && now_ms() < deadline) {
        pthread_mutex_unlock(&c.mu);
        nap_ms(5);
        pthread_mutex_lock(&c.mu);
      }
      if (c.nreplies > 0) {
        w->unexpected_reply++;
        problem(w, "a refused client got a reply: %s", c.replies[0]);
      } else if (c.closed) {
        w->refused++;
      } else {
        problem(w, "a refused client's connection stayed open");
      }
      pthread_mutex_unlock(&c.mu);
      tcp_client_free(cl);
    } else {
      w->refused++; /* refused while connecting (TLS) */
    }
    return NULL;
  }
  while (!done(w)) {
    reset_conn(&c);
    tcp_client *cl = connect_retrying(w, &c);
    if (cl == NULL)
      break;
    serve_connection(w, cl, &c);
    tcp_client_free(cl); /* stop: no callback after this */
  }
  return NULL;
}

static void print_tally(const char *key, struct tally *parts, size_t stride, int n) {
  struct tally sum;
  memset(&sum, 0, sizeof sum);
  for (int i = 0; i < n; i++) {
    struct tally *t = (struct tally *)((char *)parts + stride * (size_t)i);
    for (int k = 0; k < t->n; k++)
      tally_add(&sum, t->key[k], t->count[k]);
  }
  printf("\"%s\":{", key);
  for (int k = 0; k < sum.n; k++)
    printf("%s\"%s\":%lld", k ? "," : "", sum.key[k], sum.count[k]);
  printf("}");
}

#define SUM(field)                                                                                 \
  ({                                                                                               \
    long long s_ = 0;                                                                              \
    for (int i_ = 0; i_ < o_clients; i_++)                                                         \
      s_ += g_workers[i_].field;                                                                   \
    s_;                                                                                            \
  })

/* RESULT fields: acked (all clients), min_acked (the least of one client),
 * connections, clean_moves (BYE or churn), byes, lost (connections lost
 * with messages outstanding or while waiting), lost_reason (by
 * tcp_close_reason), timeouts, resends (messages sent again),
 * connect_failures and connect_codes (by start code), wrong_reply (a reply
 * out of order or garbled), wrong_port, refused / unexpected_reply
 * (--expect-refused), gave_up, unacked_at_end (messages sent but never
 * acknowledged when the run ended: 0 unless a client gave up), backends /
 * ips / cns (replies by the
 * backend, client address and CN the server reported), problem (the last
 * one of any client). */
static void print_result(void) {
  long long min_acked = -1, unacked = 0;
  int gave_up = 0;
  const char *last = "";
  for (int i = 0; i < o_clients; i++) {
    struct worker *w = &g_workers[i];
    if (min_acked < 0 || w->acked < min_acked)
      min_acked = w->acked;
    gave_up += w->gave_up;
    if (!o_expect_refused)
      unacked += w->next - w->acked - 1; /* sent, never acknowledged */
    if (w->last_problem[0])
      last = w->last_problem;
  }
  printf("RESULT {\"acked\":%lld,\"min_acked\":%lld,\"connections\":%lld,\"clean_moves\":%lld,"
         "\"byes\":%lld,\"lost\":%lld,\"timeouts\":%lld,\"resends\":%lld,"
         "\"lost_before_reply\":%lld,\"connect_failures\":%lld,\"wrong_reply\":%lld,\"wrong_port\":%lld,"
         "\"refused\":%lld,\"unexpected_reply\":%lld,\"gave_up\":%d,\"unacked_at_end\":%lld,",
         SUM(acked), min_acked, SUM(connections), SUM(clean_moves), SUM(byes), SUM(lost),
         SUM(timeouts), SUM(resends), SUM(lost_before_reply), SUM(connect_failures), SUM(wrong_reply), SUM(wrong_port),
         SUM(refused), SUM(unexpected_reply), gave_up, unacked);
  printf("\"lost_reason\":{");
  for (int r = 0, first = 1; r < REASONS; r++)
    if (SUM(lost_reason[r])) {
      printf("%s\"%s\":%lld", first ? "" : ",", tcp_close_reason_str(r), SUM(lost_reason[r]));
      first = 0;
    }
  printf("},\"connect_codes\":{");
  for (int r = 0, first = 1; r < 128; r++)
    if (SUM(connect_codes[r])) {
      printf("%s\"%d\":%lld", first ? "" : ",", r, SUM(connect_codes[r]));
      first = 0;
    }
  printf("},");
  print_tally("backends", &g_workers[0].backends, sizeof *g_workers, o_clients);
  printf(",");
  print_tally("ips", &g_workers[0].ips, sizeof *g_workers, o_clients);
  printf(",");
  print_tally("cns", &g_workers[0].cns, sizeof *g_workers, o_clients);
  printf(",\"problem\":\"");
  for (const char *p = last; *p; p++)
    if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
      putchar(*p);
  printf("\"}\n");
  fflush(stdout);
}

/* Ends the run at "stop" or end of file on stdin (when --messages is 0). */
static void *watch_stdin(void *arg) {
  (void)arg;
  char buf[64];
  for (;;) {
    ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
    if (r == 0 || (r < 0 && errno != EINTR) || (r > 0 && memmem(buf, (size_t)r, "stop", 4)))
      break;
  }
  atomic_store(&g_stop, 1);
  return NULL;
}

static void usage(const char *bad) {
  fprintf(stderr, "client: bad argument %s (see tests/deploy/client.c)\n", bad);
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--expect-refused") == 0) {
      o_expect_refused = 1;
      continue;
    }
    if (v == NULL)
      usage(a);
    i++;
    if (strcmp(a, "--host") == 0)
      o_host = v;
    else if (strcmp(a, "--port") == 0)
      o_port = atoi(v);
    else if (strcmp(a, "--src") == 0)
      o_src = v;
    else if (strcmp(a, "--clients") == 0)
      o_clients = atoi(v);
    else if (strcmp(a, "--window") == 0)
      o_window = atoi(v);
    else if (strcmp(a, "--messages") == 0)
      o_messages = atol(v);
    else if (strcmp(a, "--reconnect-every") == 0)
      o_reconnect_every = atoi(v);
    else if (strcmp(a, "--tls") == 0)
      o_tls = v;
    else if (strcmp(a, "--cert") == 0)
      o_cert = v;
    else if (strcmp(a, "--timeout-ms") == 0)
      o_timeout_ms = atoi(v);
    else if (strcmp(a, "--give-up-ms") == 0)
      o_give_up_ms = atoi(v);
    else if (strcmp(a, "--proxy-header") == 0 && i + 2 < argc) {
      o_proxy_version = atoi(v);
      o_proxy_src = argv[++i];
      o_proxy_dst = argv[++i];
    } else
      usage(a);
  }
  if (o_port <= 0 || o_clients < 1 || o_window < 1 || o_window > MAX_WINDOW)
    usage("--port/--clients/--window");

  g_workers = calloc((size_t)o_clients, sizeof *g_workers);
  if (g_workers == NULL)
    return 1;
  pthread_t watcher;
  if (o_messages == 0 && !o_expect_refused) {
    pthread_create(&watcher, NULL, watch_stdin, NULL);
    pthread_detach(watcher);
  }
  for (int i = 0; i < o_clients; i++) {
    g_workers[i].index = i;
    pthread_create(&g_workers[i].thread, NULL, run_worker, &g_workers[i]);
  }
  /* Progress lines until every worker ended. */
  char *joined = calloc((size_t)o_clients, 1);
  int running = o_clients;
  while (running > 0 && joined != NULL) {
    nap_ms(100);
    printf("PROGRESS %lld\n", (long long)atomic_load(&g_acked));
    fflush(stdout);
    for (int i = 0; i < o_clients; i++)
      if (!joined[i] && pthread_tryjoin_np(g_workers[i].thread, NULL) == 0) {
        joined[i] = 1;
        running--;
      }
  }
  print_result();
  int gave_up = 0;
  for (int i = 0; i < o_clients; i++)
    gave_up += g_workers[i].gave_up;
  return gave_up ? 1 : 0;
}
