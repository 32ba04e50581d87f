/*
 * backend -- a tcpgo server on the public header for the load-balancer tests
 * (tests/deploy/test_deploy.py) and bench (bench/deploy/run.py).
 *
 * A fragmented ('\n') server with the PROXY protocol enabled from the
 * trusted proxies. Each message is answered with
 *
 *     <name> <client-ip>:<client-port> <CN or -> <message>
 *
 * so a test can tell which backend answered, which client address it saw
 * (the one the PROXY header carried) and which certificate CN it saw (from
 * the TLS handshake it terminated, or from the PROXY v2 SSL TLVs of a proxy
 * that terminated TLS). With --echo the message is echoed unchanged (what
 * bench/loadgen expects).
 *
 *   backend --name NAME [--port 0] [--bind 127.0.0.1] [--proxy trusted]
 *           [--trusted 127.0.0.1] [--blocked LIST] [--tls DIR] [--reuseport]
 *           [--echo] [--verbose]
 *   backend --gencerts DIR      write a test PKI (tcp_generate_certs)
 *
 * --proxy off|trusted|required   TCP_OPT_PROXY_PROTOCOL (default trusted)
 * --tls DIR    mutual TLS with DIR/ca.pem, DIR/server.pem, DIR/server.key
 * --blocked    tcp_server_set_blocked (client addresses, after the PROXY header)
 * --verbose    every error event as a line "ERROR <code> <text>"
 *
 * Stdout: "PORT n" once listening. Stdin: "stats" prints one line
 *   STATS {json}
 * with the library's counters and this program's own account of the events
 * (established / closed by reason / errors by code, the last text of each
 * code); end of file, "quit", SIGTERM or SIGINT stop the server, print a
 * last STATS line and exit 0.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcpgo.h"

#define MAX_MESSAGE 65536
#define CODE_SLOTS 32   /* -TCP_ERR_* and close reasons fit below */
#define LABEL_LEN 320   /* "ip:port cn" of one connection */

static const char *g_name = "backend";
static int g_echo, g_verbose;
static tcp_server *g_srv;
static volatile sig_atomic_t g_stop;
static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;

static atomic_ullong g_established, g_messages;
static atomic_ullong g_closed[CODE_SLOTS], g_errors[CODE_SLOTS];
static char g_last_error[CODE_SLOTS][160]; /* under g_out */

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "backend %s: ", g_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static int slot(int code) {
  int i = code < 0 ? -code : code;
  return i < CODE_SLOTS ? i : 0;
}

/* The label the replies carry, made once per connection: the address the
 * library reports (the PROXY header's) and the CN (TLS or PROXY TLV). */
static void on_established(void *ud, int id) {
  (void)ud;
  atomic_fetch_add(&g_established, 1);
  if (g_echo)
    return;
  char ip[64], cn[128];
  if (tcp_server_client_ip(g_srv, id, ip, sizeof ip) < 0)
    strcpy(ip, "?");
  int port = tcp_server_client_port(g_srv, id);
  int n = get_subj_part(g_srv, id, TCP_NID_COMMON_NAME, cn, sizeof cn);
  if (n < 0)
    strcpy(cn, "-");
  for (char *p = cn; *p; p++) /* keep the reply's fields space-separated */
    if (*p == ' ')
      *p = '_';
  char *label = malloc(LABEL_LEN);
  if (label == NULL)
    return;
  snprintf(label, LABEL_LEN, "%s:%d %s", ip, port, cn);
  tcp_server_set_conn_data(g_srv, id, label);
}

static void on_message(void *ud, int id, void *conn_data, const char *data,
                       size_t len, int flags) {
  (void)ud;
  (void)flags;
  atomic_fetch_add(&g_messages, 1);
  if (g_echo) {
    tcp_send_msg(g_srv, id, data, len);
    return;
  }
  char reply[MAX_MESSAGE + 512];
  const char *label = conn_data ? (const char *)conn_data : "?:0 -";
  int head = snprintf(reply, sizeof reply, "%s %s ", g_name, label);
  if (head < 0 || (size_t)head + len > sizeof reply)
    return;
  memcpy(reply + head, data, len);
  tcp_send_msg(g_srv, id, reply, (size_t)head + len);
}

static void on_closed(void *ud, int id, void *conn_data, int reason) {
  (void)ud;
  (void)id;
  atomic_fetch_add(&g_closed[slot(reason)], 1);
  free(conn_data);
}

static void on_error(void *ud, int id, int code, const char *msg) {
  (void)ud;
  atomic_fetch_add(&g_errors[slot(code)], 1);
  pthread_mutex_lock(&g_out);
  snprintf(g_last_error[slot(code)], sizeof g_last_error[0], "%s", msg);
  if (g_verbose) {
    printf("ERROR %d %d %s\n", id, code, msg);
    fflush(stdout);
  }
  pthread_mutex_unlock(&g_out);
}

/* Writes s as a JSON string (the error texts are ASCII). */
static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      printf("\\u%04x", *s);
    else
      putchar(*s);
  }
  putchar('"');
}

static void print_counts(const char *key, atomic_ullong *counts) {
  printf("\"%s\":{", key);
  int first = 1;
  for (int i = 0; i < CODE_SLOTS; i++) {
    unsigned long long n = atomic_load(&counts[i]);
    if (n == 0)
      continue;
    printf("%s\"%d\":%llu", first ? "" : ",", key[0] == 'e' ? -i : i, n);
    first = 0;
  }
  putchar('}');
}

static void print_stats(int final) {
  tcp_server_stats st;
  memset(&st, 0, sizeof st);
  tcp_server_get_stats(g_srv, &st, sizeof st);
  pthread_mutex_lock(&g_out);
  printf("STATS {\"name\":");
  json_string(g_name);
  printf(",\"final\":%s,\"established\":%llu,\"messages\":%llu,", final ? "true" : "false",
         atomic_load(&g_established), atomic_load(&g_messages));
  print_counts("closed", g_closed);
  putchar(',');
  print_counts("errors", g_errors);
  printf(",\"last_error\":{");
  int first = 1;
  for (int i = 0; i < CODE_SLOTS; i++) {
    if (g_last_error[i][0] == '\0')
      continue;
    printf("%s\"%d\":", first ? "" : ",", -i);
    json_string(g_last_error[i]);
    first = 0;
  }
  printf("},\"lib\":{\"active\":%llu,\"established\":%llu,\"accepted\":%llu,"
         "\"refused\":%llu,\"handshake_failed\":%llu,\"timed_out\":%llu,"
         "\"msgs_in\":%llu,\"msgs_out\":%llu}}\n",
         st.active, st.established, st.accepted, st.refused, st.handshake_failed,
         st.timed_out, st.msgs_in, st.msgs_out);
  fflush(stdout);
  pthread_mutex_unlock(&g_out);
}

/* Serves stdin commands until end of file, "quit" or a stop signal. */
static void command_loop(void) {
  char line[256];
  size_t used = 0;
  while (!g_stop) {
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    int n = poll(&p, 1, 200);
    if (n <= 0)
      continue; /* timeout, or EINTR from a signal: g_stop decides */
    ssize_t r = read(STDIN_FILENO, line + used, sizeof line - 1 - used);
    if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
      return;
    if (r < 0)
      continue;
    used += (size_t)r;
    line[used] = '\0';
    char *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
      *nl = '\0';
      if (strcmp(line, "stats") == 0)
        print_stats(0);
      else if (strcmp(line, "quit") == 0)
        return;
      size_t rest = used - (size_t)(nl + 1 - line);
      memmove(line, nl + 1, rest + 1);
      used = rest;
    }
    if (used == sizeof line - 1)
      used = 0;
  }
}

static int proxy_mode(const char *s) {
  if (strcmp(s, "off") == 0)
    return TCP_PROXY_OFF;
  if (strcmp(s, "trusted") == 0)
    return TCP_PROXY_TRUSTED;
  if (strcmp(s, "required") == 0)
    return TCP_PROXY_REQUIRED;
  die("--proxy wants off, trusted or required, not %s", s);
  return 0;
}

static void check(int rc, const char *what) {
  if (rc != 0)
    die("%s: %s (%d)", what, tcp_strerror(rc), rc);
}

int main(int argc, char **argv) {
  int port = 0, mode = TCP_PROXY_TRUSTED, reuseport = 0;
  const char *bind = "127.0.0.1", *trusted = "127.0.0.1", *blocked = NULL, *tls = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--echo") == 0) {
      g_echo = 1;
      continue;
    }
    if (strcmp(a, "--verbose") == 0) {
      g_verbose = 1;
      continue;
    }
    if (strcmp(a, "--reuseport") == 0) {
      reuseport = 1;
      continue;
    }
    if (v == NULL)
      die("usage: see the comment at the top of tests/deploy/backend.c (%s)", a);
    i++;
    if (strcmp(a, "--gencerts") == 0) {
      check(tcp_generate_certs(v, NULL), "tcp_generate_certs");
      return 0;
    } else if (strcmp(a, "--name") == 0)
      g_name = v;
    else if (strcmp(a, "--port") == 0)
      port = atoi(v);
    else if (strcmp(a, "--bind") == 0)
      bind = v;
    else if (strcmp(a, "--proxy") == 0)
      mode = proxy_mode(v);
    else if (strcmp(a, "--trusted") == 0)
      trusted = v;
    else if (strcmp(a, "--blocked") == 0)
      blocked = v;
    else if (strcmp(a, "--tls") == 0)
      tls = v;
    else
      die("unknown argument %s", a);
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_ONSTACK; /* may land on a Go thread */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  g_srv = tcp_server_new_fragmented('\n', MAX_MESSAGE);
  if (g_srv == NULL)
    die("tcp_server_new_fragmented failed");
  check(tcp_server_set_option_str(g_srv, TCP_OPT_BIND_ADDRESS, bind), "bind address");
  check(tcp_server_set_option(g_srv, TCP_OPT_PROXY_PROTOCOL, mode), "proxy protocol");
  check(tcp_server_set_option_str(g_srv, TCP_OPT_PROXY_TRUSTED, trusted), "proxy trusted");
  check(tcp_server_set_option(g_srv, TCP_OPT_REUSEPORT, reuseport), "reuseport");
  if (blocked != NULL)
    check(tcp_server_set_blocked(g_srv, blocked), "blocked list");
  tcp_server_set_on_established(g_srv, on_established, NULL);
  tcp_server_set_on_message_ex(g_srv, on_message, NULL);
  tcp_server_set_on_closed_ex(g_srv, on_closed, NULL);
  tcp_server_set_on_error(g_srv, on_error, NULL);

  int rc;
  if (tls != NULL) {
    char ca[512], cert[512], key[512];
    snprintf(ca, sizeof ca, "%s/ca.pem", tls);
    snprintf(cert, sizeof cert, "%s/server.pem", tls);
    snprintf(key, sizeof key, "%s/server.key", tls);
    rc = tls_server_start(g_srv, port, ca, cert, key);
  } else {
    rc = tcp_server_start(g_srv, port);
  }
  if (rc != TCP_START_OK) {
    char why[256];
    tcp_server_last_error(g_srv, why, sizeof why);
    die("start: %s (%d): %s", tcp_strerror(rc), rc, why);
  }
  printf("PORT %d\n", tcp_server_port(g_srv));
  fflush(stdout);

  command_loop();
  tcp_server_stop(g_srv);
  print_stats(1);
  tcp_server_free(g_srv);
  return 0;
}
