/*
 * hostile_server -- the server side of the hostile-peers bench and the soak
 * (bench/hostile/README in bench/README.md, "Hostile peers and soak").
 *
 * A C program on the public header only: a fragmented-mode server
 * (tcp_server_new_fragmented('\n', max_len)) that echoes every message from
 * its message callback with tcp_send_msg. With default flags every option
 * keeps the library's default -- that is the configuration issue 9's figure
 * is about. It keeps its own account of the events (to check "exactly one
 * closed event per established connection") and reports it, the library's
 * counters (tcp_server_get_stats) and its own RSS, threads and descriptors
 * as one JSON line on stdout for every "stats" line read on stdin (and
 * every -stats-ms milliseconds).
 *
 *   hostile_server [-addr 127.0.0.1] [-port 0] [-maxlen N] [-slow-ms N]
 *                  [-o NAME=VALUE]... [-tls-port N -ca CA -cert CERT -key KEY]
 *                  [-stats-ms N] [-v]
 *   hostile_server -gencerts DIR     (write a test PKI with tcp_generate_certs)
 *
 * -slow-ms N      a message starting with "SLOW" is echoed after sleeping N ms
 *                 in the callback (exercises the bounded callback threads).
 * -o NAME=VALUE   an integer option on every server: a TCP_OPT_* name without
 *                 the prefix, in lower case (idle_timeout_ms=5000), or its
 *                 number (12=5000). An option the library does not know is
 *                 reported on stderr and in the "options" line, not fatal.
 * -tls-port N     also run a mutual-TLS server (client certificates required,
 *                 signed by CA) in the same process; port 0 = any.
 *
 * Stdout: an "options" JSON line per server (what the library said to each
 * -o), "PORT n" (and "TLSPORT n"), then the stats lines. Stdin: "stats" prints a line; end of file (or SIGTERM/SIGINT) stops
 * the servers, prints a last line with "final":true and exits 0.
 *
 * Functions of the header that a library being developed may not export yet
 * (tcp_server_get_stats, tcp_raise_fd_limit, the extended closed callback,
 * tcp_errcode) are weak references: the program links and runs either way
 * and reports what was missing ("lib": null, "reason" counts absent).
 */
#define _GNU_SOURCE /* pthread, nanosleep, SA_ONSTACK */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tcpgo.h"

/* Declared by the header; maybe not exported by the library at hand. */
#pragma weak tcp_server_get_stats
#pragma weak tcp_raise_fd_limit
#pragma weak tcp_server_set_on_closed_ex
#pragma weak tcp_close_reason_str
#pragma weak tcp_errcode

#define MAX_SERVERS 2
#define CODE_SLOTS 32   /* -code of TCP_ERR_* and start codes we count */
#define REASON_SLOTS 16 /* tcp_close_reason values */
#define MAX_TRACKED_ID (64 * 1024 * 1024)

enum conn_state { ST_UNSEEN = 0, ST_OPEN = 1, ST_CLOSED = 2 };

/* One server handle and its own account of the events it delivered. */
struct srv {
  const char *name;
  tcp_server *s;
  int port;

  pthread_mutex_t mu; /* guards state/state_cap */
  unsigned char *state; /* enum conn_state by client id */
  size_t state_cap;

  atomic_ullong established, closed, messages, slow_messages;
  atomic_ullong send_refused;
  atomic_int running_callbacks, peak_callbacks; /* this handle's callbacks */
  atomic_ullong refused_by_code[CODE_SLOTS]; /* index -code; 0 = unknown */
  atomic_ullong errors_by_code[CODE_SLOTS];
  atomic_ullong closed_by_reason[REASON_SLOTS]; /* 0 = no reason given */
  /* Contract violations: any nonzero value fails the soak. */
  atomic_ullong dup_established, closed_unseen, dup_closed, message_outside,
      untracked;
};

static struct srv g_srv[MAX_SERVERS];
static int g_nsrv;
static int g_slow_ms;
static int g_verbose;
static atomic_int g_running_callbacks, g_peak_callbacks;
static volatile sig_atomic_t g_stop;
static struct timespec g_t0;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("hostile_server: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static long long ms_since_start(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - g_t0.tv_sec) * 1000LL + (t.tv_nsec - g_t0.tv_nsec) / 1000000;
}

static void count_code(atomic_ullong *slots, int code) {
  int i = code < 0 ? -code : code;
  if (i >= CODE_SLOTS)
    i = 0;
  atomic_fetch_add_explicit(&slots[i], 1, memory_order_relaxed);
}

static void count_running(atomic_int *running, atomic_int *peak_out) {
  int now = atomic_fetch_add(running, 1) + 1;
  int peak = atomic_load(peak_out);
  while (now > peak && !atomic_compare_exchange_weak(peak_out, &peak, now))
    ;
}

/* Every callback runs between enter/leave: the peaks are how many callbacks
 * (each on its own OS thread) ran at once, in the process and per handle --
 * TCP_OPT_CALLBACK_THREADS bounds the latter. */
static void callback_enter(struct srv *sv) {
  count_running(&g_running_callbacks, &g_peak_callbacks);
  count_running(&sv->running_callbacks, &sv->peak_callbacks);
}

static void callback_leave(struct srv *sv) {
  atomic_fetch_sub(&sv->running_callbacks, 1);
  atomic_fetch_sub(&g_running_callbacks, 1);
}

/* Moves client id from one state to the next; returns the state it had. */
static int track(struct srv *sv, int id, int next) {
  if (id <= 0 || id > MAX_TRACKED_ID) {
    atomic_fetch_add(&sv->untracked, 1);
    return -1;
  }
  pthread_mutex_lock(&sv->mu);
  if ((size_t)id >= sv->state_cap) {
    size_t cap = sv->state_cap ? sv->state_cap : 4096;
    while (cap <= (size_t)id)
      cap *= 2;
    unsigned char *p = realloc(sv->state, cap);
    if (p == NULL)
      die("out of memory tracking client ids");
    memset(p + sv->state_cap, 0, cap - sv->state_cap);
    sv->state = p;
    sv->state_cap = cap;
  }
  int was = sv->state[id];
  if (next >= 0)
    sv->state[id] = (unsigned char)next;
  pthread_mutex_unlock(&sv->mu);
  return was;
}

static void on_established(void *user_data, int client_id) {
  struct srv *sv = user_data;
  callback_enter(sv);
  if (track(sv, client_id, ST_OPEN) != ST_UNSEEN)
    atomic_fetch_add(&sv->dup_established, 1);
  atomic_fetch_add(&sv->established, 1);
  callback_leave(sv);
}

static void sleep_ms(int ms) {
  struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR)
    ;
}

static void on_message(void *user_data, int client_id, const char *data,
                       size_t len) {
  struct srv *sv = user_data;
  callback_enter(sv);
  atomic_fetch_add_explicit(&sv->messages, 1, memory_order_relaxed);
  /* Read-only look at the state: a message outside established..closed
   * breaks the contract. */
  int st = track(sv, client_id, -1);
  if (st >= 0 && st != ST_OPEN)
    atomic_fetch_add(&sv->message_outside, 1);
  if (g_slow_ms > 0 && len >= 4 && memcmp(data, "SLOW", 4) == 0) {
    atomic_fetch_add(&sv->slow_messages, 1);
    sleep_ms(g_slow_ms);
  }
  if (!tcp_send_msg(sv->s, client_id, data, len)) {
    atomic_fetch_add_explicit(&sv->send_refused, 1, memory_order_relaxed);
    count_code(sv->refused_by_code, tcp_errcode ? tcp_errcode() : 0);
  }
  callback_leave(sv);
}

static void closed_common(struct srv *sv, int client_id, int reason) {
  int was = track(sv, client_id, ST_CLOSED);
  if (was == ST_UNSEEN)
    atomic_fetch_add(&sv->closed_unseen, 1);
  else if (was == ST_CLOSED)
    atomic_fetch_add(&sv->dup_closed, 1);
  atomic_fetch_add(&sv->closed, 1);
  if (reason < 0 || reason >= REASON_SLOTS)
    reason = 0;
  atomic_fetch_add(&sv->closed_by_reason[reason], 1);
}

static void on_closed(void *user_data, int client_id) {
  struct srv *sv = user_data;
  callback_enter(sv);
  closed_common(sv, client_id, 0);
  callback_leave(sv);
}

static void on_closed_ex(void *user_data, int client_id, void *conn_data,
                         int reason) {
  struct srv *sv = user_data;
  (void)conn_data;
  callback_enter(sv);
  closed_common(sv, client_id, reason);
  callback_leave(sv);
}

static void on_error(void *user_data, int client_id, int code,
                     const char *message) {
  struct srv *sv = user_data;
  callback_enter(sv);
  count_code(sv->errors_by_code, code);
  if (g_verbose)
    fprintf(stderr, "hostile_server: %s: client %d: %s (%d): %s\n", sv->name,
            client_id, tcp_strerror(code), code, message);
  callback_leave(sv);
}

/* --- options ------------------------------------------------------------ */

static const struct {
  const char *name;
  int id;
} k_options[] = {
    {"connect_timeout_ms", TCP_OPT_CONNECT_TIMEOUT_MS},
    {"send_queue_limit", TCP_OPT_SEND_QUEUE_LIMIT},
    {"linger_ms", TCP_OPT_LINGER_MS},
    {"max_connections", TCP_OPT_MAX_CONNECTIONS},
    {"idle_timeout_ms", TCP_OPT_IDLE_TIMEOUT_MS},
    {"message_timeout_ms", TCP_OPT_MESSAGE_TIMEOUT_MS},
    {"write_timeout_ms", TCP_OPT_WRITE_TIMEOUT_MS},
    {"keepalive", TCP_OPT_KEEPALIVE},
    {"backlog", TCP_OPT_BACKLOG},
    {"memory_budget", TCP_OPT_MEMORY_BUDGET},
    {"send_low_water", TCP_OPT_SEND_LOW_WATER},
    {"callback_threads", TCP_OPT_CALLBACK_THREADS},
    {"close_on_eof", TCP_OPT_CLOSE_ON_EOF},
    {"reuseport", TCP_OPT_REUSEPORT},
};

#define MAX_OPTS 32
static struct {
  const char *text;
  int id;
  long long value;
} g_opts[MAX_OPTS];
static int g_nopts;

static void parse_option(const char *text) {
  if (g_nopts == MAX_OPTS)
    die("too many -o options");
  const char *eq = strchr(text, '=');
  if (eq == NULL)
    die("-o %s: want NAME=VALUE", text);
  size_t n = (size_t)(eq - text);
  int id = -1;
  for (size_t i = 0; i < sizeof k_options / sizeof k_options[0]; i++)
    if (strlen(k_options[i].name) == n && strncmp(text, k_options[i].name, n) == 0)
      id = k_options[i].id;
  if (id < 0 && n > 0 && isdigit((unsigned char)text[0]))
    id = atoi(text);
  if (id < 0)
    die("-o %s: unknown option name", text);
  char *end;
  long long v = strtoll(eq + 1, &end, 0);
  if (*end != '\0' || end == eq + 1)
    die("-o %s: value is not an integer", text);
  g_opts[g_nopts].text = text;
  g_opts[g_nopts].id = id;
  g_opts[g_nopts].value = v;
  g_nopts++;
}

/* Applies the -o options to a server and prints one JSON line saying what
 * the library did with each. */
static void apply_options(struct srv *sv) {
  printf("{\"options\":\"%s\",\"results\":[", sv->name);
  for (int i = 0; i < g_nopts; i++) {
    int rc = tcp_server_set_option(sv->s, g_opts[i].id, g_opts[i].value);
    if (rc != 0)
      fprintf(stderr, "hostile_server: %s: option %s: %s (%d)\n", sv->name,
              g_opts[i].text, tcp_strerror(rc), rc);
    printf("%s{\"option\":\"%s\",\"rc\":%d}", i ? "," : "", g_opts[i].text, rc);
  }
  printf("]}\n");
}

/* --- the process's own figures ------------------------------------------ */

struct proc_figures {
  long rss_kb, hwm_kb, threads, fds;
};

static long status_field(const char *text, const char *key) {
  const char *p = strstr(text, key);
  return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static struct proc_figures read_proc(void) {
  struct proc_figures f = {-1, -1, -1, -1};
  char buf[8192];
  FILE *fp = fopen("/proc/self/status", "r");
  if (fp != NULL) {
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    f.rss_kb = status_field(buf, "\nVmRSS:");
    f.hwm_kb = status_field(buf, "\nVmHWM:");
    f.threads = status_field(buf, "\nThreads:");
  }
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.')
        n++;
    closedir(d);
    f.fds = n - 1; /* the directory's own descriptor */
  }
  return f;
}

/* --- the stats line ------------------------------------------------------ */

static void print_slots(const char *key, atomic_ullong *slots, int n, int negate) {
  printf("\"%s\":{", key);
  int first = 1;
  for (int i = 0; i < n; i++) {
    unsigned long long v = atomic_load(&slots[i]);
    if (v == 0)
      continue;
    printf("%s\"%d\":%llu", first ? "" : ",", negate ? -i : i, v);
    first = 0;
  }
  printf("}");
}

static void print_lib_stats(struct srv *sv) {
  if (!tcp_server_get_stats) {
    printf("\"lib\":null");
    return;
  }
  tcp_server_stats st;
  memset(&st, 0, sizeof st);
  int rc = tcp_server_get_stats(sv->s, &st, sizeof st);
  if (rc != 0) {
    printf("\"lib\":{\"error\":%d}", rc);
    return;
  }
  printf("\"lib\":{\"active\":%llu,\"established\":%llu,\"accepted\":%llu,"
         "\"refused\":%llu,\"refused_limit\":%llu,\"handshake_failed\":%llu,"
         "\"timed_out\":%llu,\"closed_for_limits\":%llu,\"accept_errors\":%llu,"
         "\"bytes_in\":%llu,\"bytes_out\":%llu,\"msgs_in\":%llu,\"msgs_out\":%llu,"
         "\"memory_used\":%llu}",
         st.active, st.established, st.accepted, st.refused, st.refused_limit,
         st.handshake_failed, st.timed_out, st.closed_for_limits,
         st.accept_errors, st.bytes_in, st.bytes_out, st.msgs_in, st.msgs_out,
         st.memory_used);
}

static void print_server(struct srv *sv) {
  unsigned long long est = atomic_load(&sv->established);
  unsigned long long clo = atomic_load(&sv->closed);
  unsigned long long anomalies =
      atomic_load(&sv->dup_established) + atomic_load(&sv->closed_unseen) +
      atomic_load(&sv->dup_closed) + atomic_load(&sv->message_outside);
  printf("{\"name\":\"%s\",\"port\":%d,\"established\":%llu,\"closed\":%llu,"
         "\"open\":%lld,\"messages\":%llu,\"slow_messages\":%llu,"
         "\"send_refused\":%llu,\"callbacks_running\":%d,"
         "\"callbacks_peak\":%d,",
         sv->name, sv->port, est, clo, (long long)(est - clo),
         atomic_load(&sv->messages), atomic_load(&sv->slow_messages),
         atomic_load(&sv->send_refused), atomic_load(&sv->running_callbacks),
         atomic_load(&sv->peak_callbacks));
  print_slots("send_refused_by_code", sv->refused_by_code, CODE_SLOTS, 1);
  printf(",");
  print_slots("errors_by_code", sv->errors_by_code, CODE_SLOTS, 1);
  printf(",\"reasons_known\":%s,", tcp_server_set_on_closed_ex ? "true" : "false");
  print_slots("closed_by_reason", sv->closed_by_reason, REASON_SLOTS, 0);
  printf(",\"anomalies\":%llu,\"dup_established\":%llu,\"closed_unseen\":%llu,"
         "\"dup_closed\":%llu,\"message_outside\":%llu,\"untracked\":%llu,",
         anomalies, atomic_load(&sv->dup_established),
         atomic_load(&sv->closed_unseen), atomic_load(&sv->dup_closed),
         atomic_load(&sv->message_outside), atomic_load(&sv->untracked));
  print_lib_stats(sv);
  printf("}");
}

static void print_stats(int final) {
  struct proc_figures f = read_proc();
  printf("{\"stats\":true,\"final\":%s,\"t_ms\":%lld,\"rss_kb\":%ld,"
         "\"hwm_kb\":%ld,\"threads\":%ld,\"fds\":%ld,"
         "\"callbacks_running\":%d,\"callbacks_peak\":%d,\"servers\":[",
         final ? "true" : "false", ms_since_start(), f.rss_kb, f.hwm_kb,
         f.threads, f.fds, atomic_load(&g_running_callbacks),
         atomic_load(&g_peak_callbacks));
  for (int i = 0; i < g_nsrv; i++) {
    if (i)
      printf(",");
    print_server(&g_srv[i]);
  }
  printf("]}\n");
  fflush(stdout);
}

/* --- main ----------------------------------------------------------------- */

static void raise_fd_limit(void) {
  if (tcp_raise_fd_limit && tcp_raise_fd_limit() > 0)
    return;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      fprintf(stderr, "hostile_server: setrlimit(NOFILE): %s\n", strerror(errno));
  }
}

static struct srv *new_server(const char *name, size_t max_len) {
  if (g_nsrv == MAX_SERVERS)
    die("too many servers");
  struct srv *sv = &g_srv[g_nsrv++];
  sv->name = name;
  pthread_mutex_init(&sv->mu, NULL);
  sv->s = tcp_server_new_fragmented('\n', max_len);
  if (sv->s == NULL)
    die("%s: tcp_server_new_fragmented failed", name);
  tcp_server_set_on_established(sv->s, on_established, sv);
  tcp_server_set_on_message(sv->s, on_message, sv);
  if (tcp_server_set_on_closed_ex)
    tcp_server_set_on_closed_ex(sv->s, on_closed_ex, sv);
  else
    tcp_server_set_on_closed(sv->s, on_closed, sv);
  tcp_server_set_on_error(sv->s, on_error, sv);
  apply_options(sv);
  return sv;
}

static void check_start(struct srv *sv, int rc) {
  if (rc == TCP_START_OK) {
    sv->port = tcp_server_port(sv->s);
    return;
  }
  char why[512];
  tcp_server_last_error(sv->s, why, sizeof why);
  die("%s: start: %s (%d): %s", sv->name, tcp_strerror(rc), rc, why);
}

/* Serves stdin commands until end of file or a stop signal; prints a stats
 * line every stats_ms (0 = only on request). */
static void command_loop(int stats_ms) {
  char line[256];
  size_t used = 0;
  long long next = stats_ms > 0 ? ms_since_start() + stats_ms : -1;
  while (!g_stop) {
    int wait = 200;
    if (next >= 0) {
      long long left = next - ms_since_start();
      if (left <= 0) {
        print_stats(0);
        next += stats_ms;
        continue;
      }
      if (left < wait)
        wait = (int)left;
    }
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    int n = poll(&p, 1, wait);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      continue;
    if (p.revents & POLLNVAL)
      return;
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
      used = 0; /* an overlong line: drop it */
  }
}

static int usage(void) {
  fprintf(stderr,
          "usage: hostile_server [-addr A] [-port N] [-maxlen N] [-slow-ms N]\n"
          "         [-o NAME=VALUE]... [-tls-port N -ca CA -cert CERT -key KEY]\n"
          "         [-stats-ms N] [-v]\n"
          "       hostile_server -gencerts DIR\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1", *ca = NULL, *cert = NULL, *key = NULL;
  const char *gencerts = NULL;
  int port = 0, tls_port = -1, stats_ms = 0;
  size_t max_len = 0;

  clock_gettime(CLOCK_MONOTONIC, &g_t0);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-v") == 0) {
      g_verbose = 1;
      continue;
    }
    const char *v = i + 1 < argc ? argv[++i] : NULL;
    if (v == NULL)
      return usage();
    if (strcmp(a, "-addr") == 0)
      addr = v;
    else if (strcmp(a, "-port") == 0)
      port = atoi(v);
    else if (strcmp(a, "-maxlen") == 0)
      max_len = (size_t)strtoull(v, NULL, 0);
    else if (strcmp(a, "-slow-ms") == 0)
      g_slow_ms = atoi(v);
    else if (strcmp(a, "-o") == 0)
      parse_option(v);
    else if (strcmp(a, "-tls-port") == 0)
      tls_port = atoi(v);
    else if (strcmp(a, "-ca") == 0)
      ca = v;
    else if (strcmp(a, "-cert") == 0)
      cert = v;
    else if (strcmp(a, "-key") == 0)
      key = v;
    else if (strcmp(a, "-stats-ms") == 0)
      stats_ms = atoi(v);
    else if (strcmp(a, "-gencerts") == 0)
      gencerts = v;
    else
      return usage();
  }

  if (gencerts != NULL) {
    int rc = tcp_generate_certs(gencerts, "localhost,127.0.0.1,::1");
    if (rc != 0)
      die("tcp_generate_certs(%s): %s", gencerts, tcp_strerror(rc));
    return 0;
  }
  if (tls_port >= 0 && (ca == NULL || cert == NULL || key == NULL))
    return usage();

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_ONSTACK; /* signals may land on a Go thread */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  raise_fd_limit();

  struct srv *tcp = new_server("tcp", max_len);
  if (tcp_server_set_option_str(tcp->s, TCP_OPT_BIND_ADDRESS, addr) != 0)
    die("bad bind address %s", addr);
  check_start(tcp, tcp_server_start(tcp->s, port));
  printf("PORT %d\n", tcp->port);

  if (tls_port >= 0) {
    struct srv *tls = new_server("tls", max_len);
    if (tcp_server_set_option_str(tls->s, TCP_OPT_BIND_ADDRESS, addr) != 0)
      die("bad bind address %s", addr);
    check_start(tls, tls_server_start(tls->s, tls_port, ca, cert, key));
    printf("TLSPORT %d\n", tls->port);
  }
  fflush(stdout);

  command_loop(stats_ms);

  for (int i = 0; i < g_nsrv; i++)
    tcp_server_stop(g_srv[i].s);
  /* After stop no callback runs any more: the account is complete. */
  print_stats(1);
  for (int i = 0; i < g_nsrv; i++)
    tcp_server_free(g_srv[i].s);
  return 0;
}
