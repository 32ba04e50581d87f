/*
 * c_echo_server -- the C side of tcpgo's echo benchmark.
 *
 * A plain C program on the public ABI (include/tcpgo.h): a fragmented-mode
 * server with '\n' as the delimiter that echoes every message from its
 * message callback with tcp_send_msg (which appends the delimiter again).
 * With -batch it takes the messages of each read in one call
 * (tcp_server_set_on_messages) and queues all their replies with one
 * tcp_server_send_msgs: two crossings between C and Go per read instead of
 * two per message.
 *
 * With -cpus N it calls tcp_set_max_cpus(N) first: the library's code then
 * runs on at most N CPUs at once (the "1 CPU" rows compare it with the
 * one-thread epoll echo).
 *
 *   c_echo_server [-batch] [-cpus N] [-addr 127.0.0.1] [-port 0] [-tls -cert CERT -key KEY [-ca CA]]
 *   c_echo_server -gencerts DIR      (write a test PKI with tcp_generate_certs)
 *
 * With -tls and -ca the server requires client certificates signed by CA
 * (mutual TLS). The first line on stdout is "PORT n". The server runs until
 * stdin reaches end of file or SIGTERM/SIGINT arrives, then stops and frees
 * the server and prints a one-line summary on stderr.
 *
 * For the scale scenario (bench/scale.py: 19,000 idle connections) it
 * raises its descriptor limit to the hard limit and lifts
 * TCP_OPT_MAX_CONNECTIONS; everything else keeps the library's defaults.
 */
#define _XOPEN_SOURCE 700 /* SA_ONSTACK */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tcpgo.h"

static volatile sig_atomic_t g_stop;
static atomic_long g_send_refused;
static atomic_long g_errors;
static atomic_long g_clients;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void on_message(void *user_data, int client_id, const char *data,
                       size_t len) {
  tcp_server *s = user_data;
  if (!tcp_send_msg(s, client_id, data, len))
    atomic_fetch_add_explicit(&g_send_refused, 1, memory_order_relaxed);
}

/* New in tcpgo.h (TCPGO_HAVE_MESSAGE_BATCHES); -batch refuses to run on a
 * library without them. */
#pragma weak tcp_server_set_on_messages
#pragma weak tcp_server_send_msgs
/* New too: -cpus refuses to run on a library without it. */
#pragma weak tcp_set_max_cpus

/* -batch: the replies to a read's messages, queued with one call. */
static void on_messages(void *user_data, int client_id, void *conn_data,
                        const tcp_msg *msgs, size_t count) {
  tcp_server *s = user_data;
  (void)conn_data;
  int n = tcp_server_send_msgs(s, client_id, msgs, count);
  if (n < 0 || (size_t)n < count)
    atomic_fetch_add_explicit(&g_send_refused, (long)count - (n < 0 ? 0 : n),
                              memory_order_relaxed);
}

static void on_established(void *user_data, int client_id) {
  (void)user_data;
  (void)client_id;
  atomic_fetch_add_explicit(&g_clients, 1, memory_order_relaxed);
}

static void on_error(void *user_data, int client_id, int code,
                     const char *message) {
  (void)user_data;
  /* A benchmark client closing at the end may show up here; report only the
   * first few so that a real problem stays visible without flooding. */
  if (atomic_fetch_add(&g_errors, 1) < 5)
    fprintf(stderr, "c_echo_server: client %d: %s (%d): %s\n", client_id,
            tcp_strerror(code), code, message);
}

/* tcp_raise_fd_limit is new in tcpgo.h; a library without it leaves the
 * weak reference NULL and we call setrlimit ourselves. */
#pragma weak tcp_raise_fd_limit

static void raise_fd_limit(void) {
  if (tcp_raise_fd_limit != NULL) {
    if (tcp_raise_fd_limit() >= 0)
      return;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* No connection limit (0), where the library knows the option. */
static void lift_connection_limit(tcp_server *s) {
  int rc = tcp_server_set_option(s, TCP_OPT_MAX_CONNECTIONS, 0);
  if (rc != 0 && rc != TCP_ERR_UNKNOWN_OPTION)
    fprintf(stderr, "c_echo_server: TCP_OPT_MAX_CONNECTIONS: %s\n",
            tcp_strerror(rc));
}

static int usage(void) {
  fprintf(stderr,
          "usage: c_echo_server [-batch] [-cpus N] [-addr A] [-port N] "
          "[-tls -cert CERT -key KEY [-ca CA]]\n"
          "       c_echo_server -gencerts DIR\n");
  return 2;
}

/* Wait until stdin reaches EOF (or fails) or a signal asked to stop. */
static void wait_for_stop(void) {
  char buf[256];
  int stdin_open = 1;
  while (!g_stop) {
    if (!stdin_open) {
      /* Only a signal can stop us now. */
      poll(NULL, 0, 200);
      continue;
    }
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    int n = poll(&p, 1, 200);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      stdin_open = 0;
      continue;
    }
    if (n == 0)
      continue;
    if (p.revents & POLLNVAL)
      stdin_open = 0; /* no stdin at all: wait for a signal */
    else {
      ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
        return;
    }
  }
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1", *ca = NULL, *cert = NULL, *key = NULL;
  const char *gencerts = NULL;
  int port = 0, use_tls = 0, batch = 0, cpus = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-tls") == 0) {
      use_tls = 1;
      continue;
    }
    if (strcmp(a, "-batch") == 0) {
      batch = 1;
      continue;
    }
    if (v == NULL)
      return usage();
    if (strcmp(a, "-addr") == 0)
      addr = v;
    else if (strcmp(a, "-port") == 0)
      port = atoi(v);
    else if (strcmp(a, "-cpus") == 0)
      cpus = atoi(v);
    else if (strcmp(a, "-ca") == 0)
      ca = v;
    else if (strcmp(a, "-cert") == 0)
      cert = v;
    else if (strcmp(a, "-key") == 0)
      key = v;
    else if (strcmp(a, "-gencerts") == 0)
      gencerts = v;
    else
      return usage();
    i++;
  }

  if (gencerts != NULL) {
    int rc = tcp_generate_certs(gencerts, "localhost,127.0.0.1,::1");
    if (rc != 0) {
      fprintf(stderr, "c_echo_server: tcp_generate_certs(%s): %s\n", gencerts,
              tcp_strerror(rc));
      return 1;
    }
    return 0;
  }
  if (use_tls && (cert == NULL || key == NULL))
    return usage();
  if (batch && (tcp_server_set_on_messages == NULL || tcp_server_send_msgs == NULL)) {
    printf("SKIP the library has no batch callbacks (tcp_server_set_on_messages)\n");
    return 0;
  }

  if (cpus > 0) {
    if (tcp_set_max_cpus == NULL) {
      printf("SKIP the library has no tcp_set_max_cpus\n");
      return 0;
    }
    int was = tcp_set_max_cpus(cpus);
    if (was < 0) {
      fprintf(stderr, "c_echo_server: tcp_set_max_cpus(%d): %s\n", cpus, tcp_strerror(was));
      return 1;
    }
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_ONSTACK; /* signals may land on a Go thread */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  tcp_server *s = tcp_server_new_fragmented('\n', 0);
  if (s == NULL) {
    fprintf(stderr, "c_echo_server: out of memory\n");
    return 1;
  }
  int rc = tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, addr);
  if (rc != 0) {
    fprintf(stderr, "c_echo_server: bind address %s: %s\n", addr,
            tcp_strerror(rc));
    tcp_server_free(s);
    return 1;
  }
  lift_connection_limit(s);
  /* After the library is loaded and called: it may put back the limit the
   * process started with when it initialises. */
  raise_fd_limit();
  if (batch)
    tcp_server_set_on_messages(s, on_messages, s);
  else
    tcp_server_set_on_message(s, on_message, s);
  tcp_server_set_on_established(s, on_established, NULL);
  tcp_server_set_on_error(s, on_error, NULL);

  rc = use_tls ? tls_server_start(s, port, ca, cert, key)
               : tcp_server_start(s, port);
  if (rc != TCP_START_OK) {
    char why[512];
    tcp_server_last_error(s, why, sizeof why);
    fprintf(stderr, "c_echo_server: start: %s (%d): %s\n", tcp_strerror(rc),
            rc, why);
    tcp_server_free(s);
    return 1;
  }
  printf("PORT %d\n", tcp_server_port(s));
  fflush(stdout);

  wait_for_stop();

  tcp_server_stop(s);
  tcp_server_free(s);
  fprintf(stderr,
          "c_echo_server: stopped; %ld clients, %ld errors, %ld refused "
          "sends\n",
          atomic_load(&g_clients), atomic_load(&g_errors),
          atomic_load(&g_send_refused));
  return 0;
}
