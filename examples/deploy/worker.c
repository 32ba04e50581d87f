/*
 * worker -- one of N processes of a tcpgo server sharing a port with
 * SO_REUSEPORT, and its part in a rolling restart.
 *
 *   cc -o worker worker.c -ltcpserver        (see "Running behind a load
 *                                             balancer" in README.md)
 *   ./worker --port 7000 &  ./worker --port 7000 &   # the kernel spreads
 *                                                     # new connections
 *
 * A '\n'-delimited echo server that answers "<name> <message>" (name: --name,
 * default "w<pid>"). Every worker sets TCP_OPT_REUSEPORT, so several bind
 * the same port and the kernel spreads new connections over them.
 *
 * Rolling restart: start the new worker on the same port, then send the old
 * one SIGTERM. The old one
 *   1. stops listening (tcp_server_stop_listening): new connections now all
 *      go to the other workers; the established ones keep being served;
 *   2. tells each client "BYE" -- an application message meaning "finish
 *      what you sent, then reconnect" (clients that connect meanwhile get
 *      it in their established callback);
 *   3. waits, up to --drain-ms, until the clients have left (counting the
 *      connections accepted and not yet established), still answering
 *      their messages;
 *   4. stops gracefully (tcp_server_shutdown: what is queued is written,
 *      then the connections that remain are closed) and exits.
 * A client that finishes its outstanding requests after "BYE" before
 * closing loses nothing, and sees no error.
 *
 * Options: --port P (0 = any; printed as "PORT n"), --bind ADDR (default
 * 127.0.0.1), --name NAME, --drain-ms N (default 5000), --proxy LIST (accept
 * the PROXY protocol from these load-balancer addresses).
 */
#define _GNU_SOURCE

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tcpgo.h"

static tcp_server *srv;
static char name[64];
static atomic_int draining;
static int wake[2]; /* self-pipe: SIGTERM may land on any thread, the
                      library's too, so main waits on a pipe, not pause() */

static void on_sigterm(int sig) {
  (void)sig;
  char b = 1;
  (void)!write(wake[1], &b, 1);
}

static void on_established(void *ud, int client_id) {
  (void)ud;
  if (atomic_load(&draining)) /* connected while we were draining */
    tcp_send_msg(srv, client_id, "BYE", 3);
}

static void on_message(void *ud, int client_id, const char *data, size_t len) {
  (void)ud;
  char reply[4096 + 80];
  int head = snprintf(reply, sizeof reply, "%s ", name);
  if (len > sizeof reply - (size_t)head)
    return;
  memcpy(reply + head, data, len);
  tcp_send_msg(srv, client_id, reply, (size_t)head + len);
}

static void nap_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* Connections still open, counting those accepted and not yet established
 * (tcp_server_client_ids lists only established ones): those too must
 * reach their established callback and get their BYE before we stop. */
static unsigned long long connections(void) {
  tcp_server_stats st;
  if (tcp_server_get_stats(srv, &st, sizeof st) != 0)
    return 0;
  return st.active;
}

/* Steps 1-4 of the rolling restart (see the top of this file). */
static int drain(int drain_ms) {
  atomic_store(&draining, 1);
  tcp_server_stop_listening(srv);
  tcp_server_broadcast(srv, "BYE", 3);
  int waited = 0;
  while (connections() > 0 && waited < drain_ms) {
    nap_ms(10);
    waited += 10;
  }
  int left = (int)connections();
  int rc = tcp_server_shutdown(srv, 1000);
  printf("DRAINED after %d ms, %d clients left, shutdown %s\n", waited, left,
         rc == 0 ? "clean" : tcp_strerror(rc));
  fflush(stdout);
  return rc == 0 && left == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  int port = 0, drain_ms = 5000;
  const char *bind = "127.0.0.1", *proxies = NULL;
  snprintf(name, sizeof name, "w%d", (int)getpid());
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--bind") == 0)
      bind = argv[i + 1];
    else if (strcmp(argv[i], "--name") == 0)
      snprintf(name, sizeof name, "%s", argv[i + 1]);
    else if (strcmp(argv[i], "--drain-ms") == 0)
      drain_ms = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--proxy") == 0)
      proxies = argv[i + 1];
    else {
      fprintf(stderr, "worker: unknown option %s\n", argv[i]);
      return 2;
    }
  }

  if (pipe(wake) != 0)
    return 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigterm;
  sa.sa_flags = SA_ONSTACK; /* the signal may land on a library thread */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  srv = tcp_server_new_fragmented('\n', 4096);
  tcp_server_set_option(srv, TCP_OPT_REUSEPORT, 1);
  tcp_server_set_option_str(srv, TCP_OPT_BIND_ADDRESS, bind);
  if (proxies != NULL) {
    tcp_server_set_option(srv, TCP_OPT_PROXY_PROTOCOL, TCP_PROXY_TRUSTED);
    tcp_server_set_option_str(srv, TCP_OPT_PROXY_TRUSTED, proxies);
  }
  tcp_server_set_on_established(srv, on_established, NULL);
  tcp_server_set_on_message(srv, on_message, NULL);
  int rc = tcp_server_start(srv, port);
  if (rc != TCP_START_OK) {
    char why[256];
    tcp_server_last_error(srv, why, sizeof why);
    fprintf(stderr, "worker: start: %s: %s\n", tcp_strerror(rc), why);
    return 1;
  }
  printf("PORT %d\n", tcp_server_port(srv));
  fflush(stdout);

  char b;
  while (read(wake[0], &b, 1) != 1)
    ; /* EINTR: go on waiting */
  rc = drain(drain_ms);
  tcp_server_free(srv);
  return rc;
}
