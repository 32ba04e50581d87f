/* util.c -- see util.h. */
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX_ENV "TCPGO_C_TEST_DIR"

/* ---- fixtures ----------------------------------------------------------- */

/* out = dir/name; paths here are short, a cut one is a setup bug. */
static void join(char *out, const char *dir, const char *name) {
  if (snprintf(out, FX_PATH, "%s/%s", dir, name) >= FX_PATH) {
    fprintf(stderr, "path too long: %s/%s\n", dir, name);
    h_abort();
  }
}

static void pki_paths(pki *p, const char *root, const char *name) {
  join(p->dir, root, name);
  join(p->ca, p->dir, "ca.pem");
  join(p->ca_key, p->dir, "ca.key");
  join(p->server_cert, p->dir, "server.pem");
  join(p->server_key, p->dir, "server.key");
  join(p->client_cert, p->dir, "client.pem");
  join(p->client_key, p->dir, "client.key");
}

static void fixture_paths(fixtures *f, const char *root) {
  if (snprintf(f->dir, FX_PATH, "%s", root) >= FX_PATH) h_abort();
  pki_paths(&f->main, root, "main");
  pki_paths(&f->other, root, "other");
  pki_paths(&f->san, root, "san");
  join(f->garbage, root, "garbage.pem");
  join(f->empty, root, "empty.pem");
  join(f->missing, root, "no/such/file.pem");
}

static fixtures the_fixtures;
static int have_fixtures;

const fixtures *fx(void) {
  if (!have_fixtures) {
    const char *root = getenv(FX_ENV);
    if (!root || !*root) {
      fprintf(stderr, FX_ENV " is not set: run tests through the runner\n");
      h_abort();
    }
    fixture_paths(&the_fixtures, root);
    have_fixtures = 1;
  }
  return &the_fixtures;
}

static int write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  if (len && fwrite(data, 1, len, f) != len) {
    fclose(f);
    return -1;
  }
  return fclose(f);
}

static int make_pki(const pki *p, const char *hosts) {
  int rc;
  if (mkdir(p->dir, 0700) != 0) return -1;
  rc = tcp_generate_certs(p->dir, hosts);
  if (rc != 0) fprintf(stderr, "tcp_generate_certs(%s): %d %s\n", p->dir, rc,
                       tcp_strerror(rc));
  return rc;
}

int fixtures_create(void) {
  static const char junk[] =
      "-----BEGIN CERTIFICATE-----\nthis is not base64 !!!\n"
      "-----END CERTIFICATE-----\n\x01\x02\x03 random junk\n";
  char root[FX_PATH];
  const char *tmp = getenv("TMPDIR");
  fixtures f;

  join(root, tmp && *tmp ? tmp : "/tmp", "tcpgo-c-tests-XXXXXX");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return -1;
  }
  fixture_paths(&f, root);
  setenv(FX_ENV, root, 1);
  the_fixtures = f;
  have_fixtures = 1;
  if (make_pki(&f.main, NULL) != 0 || make_pki(&f.other, NULL) != 0 ||
      make_pki(&f.san, "127.0.0.2") != 0 ||
      write_file(f.garbage, junk, sizeof junk - 1) != 0 ||
      write_file(f.empty, "", 0) != 0) {
    fixtures_remove();
    return -1;
  }
  return 0;
}

void fixtures_remove(void) {
  if (have_fixtures && the_fixtures.dir[0]) remove_tree(the_fixtures.dir);
}

void fx_tempdir(char *out, size_t outlen) {
  REQUIRE(outlen >= FX_PATH);
  join(out, fx()->dir, "tmp-XXXXXX");
  REQUIRE(mkdtemp(out) != NULL);
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int remove_tree(const char *dir) {
  return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- message lists -------------------------------------------------------- */

static void msg_append(msg_list *l, const char *data, size_t len) {
  l->n++;
  l->bytes += len;
  if (!l->keep) return;
  if (l->n > l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->items = realloc(l->items, l->cap * sizeof *l->items);
    REQUIRE(l->items != NULL);
  }
  /* NUL-terminated copy, for the tests' convenience. */
  l->items[l->n - 1].data = malloc(len + 1);
  REQUIRE(l->items[l->n - 1].data != NULL);
  if (len) memcpy(l->items[l->n - 1].data, data, len);
  l->items[l->n - 1].data[len] = '\0';
  l->items[l->n - 1].len = len;
}

static void msg_list_free(msg_list *l) {
  size_t i;
  if (l->keep)
    for (i = 0; i < l->n; i++) free(l->items[i].data);
  free(l->items);
  memset(l, 0, sizeof *l);
}

int msg_is_bytes(const msg_list *l, size_t i, const void *data, size_t len) {
  return l->keep && i < l->n && l->items[i].len == len &&
         (len == 0 || memcmp(l->items[i].data, data, len) == 0);
}

int msg_is(const msg_list *l, size_t i, const char *text) {
  return msg_is_bytes(l, i, text, strlen(text));
}

int msgs_concat_is(const msg_list *l, const void *data, size_t len) {
  const char *p = data;
  size_t i, off = 0;
  if (!l->keep || l->bytes != len) return 0;
  for (i = 0; i < l->n; i++) {
    if (memcmp(l->items[i].data, p + off, l->items[i].len) != 0) return 0;
    off += l->items[i].len;
  }
  return 1;
}

/* ---- violations ------------------------------------------------------------- */

/* Record the first breach of the contract (monitor held). */
static void violation(int *count, char *text, size_t textlen, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
static void violation(int *count, char *text, size_t textlen, const char *fmt,
                      ...) {
  va_list ap;
  if ((*count)++ == 0) {
    va_start(ap, fmt);
    vsnprintf(text, textlen, fmt, ap);
    va_end(ap);
  }
}

#define SRV_VIOLATION(r, ...) \
  violation(&(r)->violations, (r)->violation_text, sizeof (r)->violation_text, __VA_ARGS__)

/* ---- server recorder ---------------------------------------------------------- */

conn_log *server_rec_find(server_rec *r, int id) {
  int i;
  for (i = 0; i < r->nconns; i++)
    if (r->conns[i].id == id) return &r->conns[i];
  return NULL;
}

/* Common entry of a per-connection callback (monitor held). */
static conn_log *conn_enter(server_rec *r, int id, const char *what) {
  conn_log *c = server_rec_find(r, id);
  if (pthread_equal(pthread_self(), r->owner))
    SRV_VIOLATION(r, "%s for client %d ran on the thread that started the server", what, id);
  if (r->stopped) SRV_VIOLATION(r, "%s for client %d after stop returned", what, id);
  if (!c) {
    SRV_VIOLATION(r, "%s for client %d that was never established", what, id);
    return NULL;
  }
  if (c->in_callback)
    SRV_VIOLATION(r, "%s for client %d while another of its callbacks ran", what, id);
  if (c->closed) SRV_VIOLATION(r, "%s for client %d after its closed event", what, id);
  return c;
}

static void srv_on_established(void *ud, int id) {
  server_rec *r = ud;
  char cn[64] = "";
  /* A look-up from inside a callback must work. */
  int cn_len = r->lookup_cn ? get_subj_part(r->s, id, TCP_NID_COMMON_NAME, cn, sizeof cn) : 0;
  monitor_lock(&r->m);
  if (pthread_equal(pthread_self(), r->owner))
    SRV_VIOLATION(r, "established %d ran on the thread that started the server", id);
  if (r->stopped) SRV_VIOLATION(r, "established %d after stop returned", id);
  if (id <= 0) SRV_VIOLATION(r, "client id %d is not > 0", id);
  if (server_rec_find(r, id)) {
    SRV_VIOLATION(r, "client id %d established twice (reused?)", id);
  } else if (r->nconns < REC_MAX_CONNS) {
    conn_log *c = &r->conns[r->nconns++];
    c->id = id;
    c->established = 1;
    c->msgs.keep = !r->discard;
    c->cn_len = cn_len;
    memcpy(c->cn, cn, sizeof c->cn);
  }
  r->established++;
  monitor_broadcast(&r->m);
  monitor_unlock(&r->m);
  if (r->greeting) tcp_send_msg(r->s, id, r->greeting, r->greeting_len);
}

static void srv_on_message(void *ud, int id, const char *data, size_t len) {
  server_rec *r = ud;
  conn_log *c;
  int echo, stop, hang_up;

  monitor_lock(&r->m);
  c = conn_enter(r, id, "message");
  if (c) {
    c->in_callback = 1;
    msg_append(&c->msgs, data, len);
  }
  r->messages++;
  echo = r->echo;
  stop = r->stop_on_message;
  hang_up = r->close_on_message;
  monitor_broadcast(&r->m);
  monitor_unlock(&r->m);

  /* Call into the library without holding the monitor: stop waits for the
   * callbacks of other connections, which need it. */
  if (echo && tcp_send_msg(r->s, id, data, len) != 1) {
    LOCKED(&r->m, r->echo_failures++);
  }
  if (hang_up && tcp_server_close_client(r->s, id) != 0) {
    LOCKED(&r->m, SRV_VIOLATION(r, "close_client(%d) from its callback failed", id));
  }
  if (stop) tcp_server_stop(r->s);

  monitor_lock(&r->m);
  if (stop) r->stop_returned++;
  if (c) c->in_callback = 0;
  monitor_broadcast(&r->m);
  monitor_unlock(&r->m);
}

static void srv_on_closed(void *ud, int id) {
  server_rec *r = ud;
  conn_log *c;
  monitor_lock(&r->m);
  c = conn_enter(r, id, "closed");
  if (c) c->closed++;
  r->closed++;
  monitor_broadcast(&r->m);
  monitor_unlock(&r->m);
}

static void srv_on_error(void *ud, int id, int code, const char *message) {
  server_rec *r = ud;
  monitor_lock(&r->m);
  if (id == 0) {
    r->errors_id0++;
    if (r->stopped) SRV_VIOLATION(r, "error (id 0) after stop returned");
  } else {
    conn_log *c = conn_enter(r, id, "error");
    if (c) {
      c->errors++;
      c->last_error = code;
    }
  }
  if (code >= 0) SRV_VIOLATION(r, "error callback with code %d >= 0", code);
  if (!message) SRV_VIOLATION(r, "error callback with a NULL message");
  r->errors++;
  r->last_error_code = code;
  r->last_error_id = id;
  snprintf(r->last_error_text, sizeof r->last_error_text, "%s",
           message ? message : "");
  monitor_broadcast(&r->m);
  monitor_unlock(&r->m);
}

server_rec *server_rec_new(tcp_server *s) {
  server_rec *r = calloc(1, sizeof *r);
  REQUIRE(s != NULL);
  REQUIRE(r != NULL);
  monitor_init(&r->m);
  r->s = s;
  r->owner = pthread_self();
  tcp_server_set_on_established(s, srv_on_established, r);
  tcp_server_set_on_message(s, srv_on_message, r);
  tcp_server_set_on_closed(s, srv_on_closed, r);
  tcp_server_set_on_error(s, srv_on_error, r);
  return r;
}

void server_rec_mark_stopped(server_rec *r) { LOCKED(&r->m, r->stopped = 1); }

int server_rec_id(server_rec *r, int n) {
  int id = 0;
  monitor_lock(&r->m);
  if (n >= 0 && n < r->nconns) id = r->conns[n].id;
  monitor_unlock(&r->m);
  return id;
}

int server_id_of(server_rec *r, const tcp_client *c) {
  int i, id, port = tcp_client_local_port(c), found = 0;
  monitor_lock(&r->m);
  for (i = 0; i < r->nconns && !found; i++) {
    id = r->conns[i].id;
    if (!r->conns[i].closed && tcp_server_client_port(r->s, id) == port) found = id;
  }
  monitor_unlock(&r->m);
  return found;
}

void server_rec_free_at(server_rec *r, const char *file, int line) {
  int i, missing = 0;
  tcp_server_free(r->s); /* stops: every closed callback has run */
  monitor_lock(&r->m);
  for (i = 0; i < r->nconns; i++) {
    conn_log *c = &r->conns[i];
    if (c->closed != 1) {
      h_fail(file, line,
             "server client %d: closed ran %d times by the time "
             "tcp_server_free returned (want exactly 1)", c->id, c->closed);
      missing = 1;
    }
  }
  if (r->established != r->closed)
    h_fail(file, line, "server: %d established but %d closed", r->established,
           r->closed);
  if (r->violations)
    h_fail(file, line, "server callbacks broke the contract %d time(s): %s",
           r->violations, r->violation_text);
  monitor_unlock(&r->m);
  if (missing) return; /* a late callback may still come: leak r, stay safe */
  for (i = 0; i < r->nconns; i++) msg_list_free(&r->conns[i].msgs);
  monitor_destroy(&r->m);
  free(r);
}

/* ---- client recorder ---------------------------------------------------------- */

#define CLI_VIOLATION(r, ...) \
  violation(&(r)->violations, (r)->violation_text, sizeof (r)->violation_text, __VA_ARGS__)

/* Common entry of a client callback (monitor held). */
static void cli_enter(client_rec *r, const char *what) {
  if (!r->owner_gone && pthread_equal(pthread_self(), r->owner))
    CLI_VIOLATION(r, "client %s ran on the thread that started it", what);
  if (r->stopped) CLI_VIOLATION(r, "client %s after stop returned", what);
  if (r->in_callback) CLI_VIOLATION(r, "client %s while another callback ran", what);
  if (r->closed >= r->starts)
    CLI_VIOLATION(r, "client %s after closed (closed %d, starts %d)", what,
                  r->closed, r->starts);
}

static void cli_on_message(void *ud, const char *data, size_t len) {
  client_rec *r = ud;
  int stop;
  monitor_lock(r->m);
  cli_enter(r, "message");
  r->in_callback = 1;
  msg_append(&r->msgs, data, len);
  r->messages++;
  stop = r->stop_on_message;
  monitor_broadcast(r->m);
  monitor_unlock(r->m);

  if (stop) tcp_client_stop(r->c);

  monitor_lock(r->m);
  if (stop) r->stop_returned++;
  r->in_callback = 0;
  monitor_broadcast(r->m);
  monitor_unlock(r->m);
}

static void cli_on_closed(void *ud) {
  client_rec *r = ud;
  monitor_lock(r->m);
  cli_enter(r, "closed");
  r->closed++;
  monitor_broadcast(r->m);
  monitor_unlock(r->m);
}

static void cli_on_error(void *ud, int code, const char *message) {
  client_rec *r = ud;
  monitor_lock(r->m);
  cli_enter(r, "error");
  if (code >= 0) CLI_VIOLATION(r, "error callback with code %d >= 0", code);
  r->errors++;
  r->last_error_code = code;
  snprintf(r->last_error_text, sizeof r->last_error_text, "%s",
           message ? message : "");
  monitor_broadcast(r->m);
  monitor_unlock(r->m);
}

client_rec *client_rec_new(tcp_client *c, monitor *shared) {
  client_rec *r = calloc(1, sizeof *r);
  REQUIRE(c != NULL);
  REQUIRE(r != NULL);
  monitor_init(&r->own);
  r->m = shared ? shared : &r->own;
  r->c = c;
  r->owner = pthread_self();
  r->msgs.keep = 1;
  tcp_client_set_on_message(c, cli_on_message, r);
  tcp_client_set_on_closed(c, cli_on_closed, r);
  tcp_client_set_on_error(c, cli_on_error, r);
  return r;
}

void client_rec_started(client_rec *r) {
  monitor_lock(r->m);
  r->owner = pthread_self();
  r->starts++;
  monitor_broadcast(r->m);
  monitor_unlock(r->m);
}

void client_rec_mark_stopped(client_rec *r) { LOCKED(r->m, r->stopped = 1); }

void client_rec_free_at(client_rec *r, const char *file, int line) {
  tcp_client_free(r->c); /* stops: the closed callback has run */
  if (r->closed != r->starts)
    h_fail(file, line, "client: closed ran %d times for %d start(s)", r->closed,
           r->starts);
  if (r->violations)
    h_fail(file, line, "client callbacks broke the contract %d time(s): %s",
           r->violations, r->violation_text);
  msg_list_free(&r->msgs);
  monitor_destroy(&r->own);
  free(r);
}

/* ---- starting and connecting ---------------------------------------------------- */

static int started_port(tcp_server *s, int rc) {
  char err[256] = "";
  int port;
  if (rc != TCP_START_OK) {
    tcp_server_last_error(s, err, sizeof err);
    fprintf(stderr, "    server start failed: %d (%s): %s\n", rc,
            tcp_strerror(rc), err);
  }
  REQUIRE_EQ(rc, TCP_START_OK);
  port = tcp_server_port(s);
  REQUIRE_GT(port, 0);
  return port;
}

int start_tcp(tcp_server *s) {
  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  return started_port(s, tcp_server_start(s, 0));
}

int start_mtls(tcp_server *s, const pki *p) {
  REQUIRE_EQ(tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1"), 0);
  return started_port(s, tls_server_start(s, 0, p->ca, p->server_cert, p->server_key));
}

static void connected(client_rec *r, int rc) {
  char err[256] = "";
  if (rc != TCP_START_OK) {
    tcp_client_last_error(r->c, err, sizeof err);
    fprintf(stderr, "    client start failed: %d (%s): %s\n", rc,
            tcp_strerror(rc), err);
  }
  REQUIRE_EQ(rc, TCP_START_OK);
}

void connect_tcp(client_rec *r, int port) {
  /* Count the start first: callbacks may run before start returns. */
  client_rec_started(r);
  connected(r, tcp_client_start(r->c, "127.0.0.1", port));
}

void connect_mtls(client_rec *r, int port, const pki *p) {
  client_rec_started(r);
  connected(r, tls_client_start(r->c, "127.0.0.1", port, p->ca, p->client_cert,
                                p->client_key));
}

void connect_tcp_tls_cert(client_rec *r, int port, const char *cert, const char *key) {
  client_rec_started(r);
  connected(r, tls_client_start(r->c, "127.0.0.1", port, fx()->main.ca, cert, key));
}

void check_error_text(const tcp_server *s, const tcp_client *c,
                      const char *file, int line) {
  char buf[512];
  int n;
  memset(buf, 0, sizeof buf);
  n = s ? tcp_server_last_error(s, buf, sizeof buf)
        : tcp_client_last_error(c, buf, sizeof buf);
  if (n <= 0 || buf[0] == '\0')
    h_fail(file, line, "last error is empty (returned %d)", n);
  else if ((size_t)n < sizeof buf && strlen(buf) != (size_t)n)
    h_fail(file, line, "last error returned %d but the text has %zu bytes", n,
           strlen(buf));
}

/* ---- raw sockets ------------------------------------------------------------- */

struct sockaddr_in loopback_addr(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int raw_connect(int port) {
  struct sockaddr_in a = loopback_addr(port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  return fd;
}

void raw_reset(int fd) {
  struct linger lg;
  lg.l_onoff = 1;
  lg.l_linger = 0;
  CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  close(fd);
}

int closed_port(int *fd) {
  struct sockaddr_in a = loopback_addr(0);
  socklen_t len = sizeof a;
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(*fd >= 0);
  REQUIRE(bind(*fd, (struct sockaddr *)&a, sizeof a) == 0);
  REQUIRE(getsockname(*fd, (struct sockaddr *)&a, &len) == 0);
  return ntohs(a.sin_port);
}

void raise_fd_limit(int n) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur >= (rlim_t)n) return;
  rl.rlim_cur = rl.rlim_max < (rlim_t)n ? rl.rlim_max : (rlim_t)n;
  setrlimit(RLIMIT_NOFILE, &rl);
}

/* ---- extended callbacks (issues 8, 9) -------------------------------------- */

conn_ext *server_ext_find(server_ext *x, int id) {
  int i;
  for (i = 0; i < x->r->nconns; i++)
    if (x->r->conns[i].id == id) return &x->conns[i];
  return NULL;
}

/* Monitor held: note a conn_data other than the one stored for id. */
static void ext_check_data(server_ext *x, int id, void *data, const char *what) {
  conn_ext *e = server_ext_find(x, id);
  void *want = e ? e->data : NULL;
  if (data != want && x->data_mismatch++ == 0)
    snprintf(x->data_mismatch_text, sizeof x->data_mismatch_text,
             "%s of client %d got conn_data %p, want %p", what, id, data, want);
}

static void ext_on_established(void *ud, int id) {
  server_ext *x = ud;
  conn_ext *e;
  void *tag = NULL;
  srv_on_established(x->r, id);
  monitor_lock(&x->r->m);
  e = server_ext_find(x, id);
  if (e && x->set_conn_data) tag = e;
  monitor_unlock(&x->r->m);
  if (tag) {
    int rc = tcp_server_set_conn_data(x->r->s, id, tag);
    monitor_lock(&x->r->m);
    if (rc == 0)
      e->data = tag;
    else
      SRV_VIOLATION(x->r, "set_conn_data(%d) in established returned %d", id, rc);
    monitor_unlock(&x->r->m);
  }
}

static void ext_on_message(void *ud, int id, void *data, const char *msg,
                           size_t len, int flags) {
  server_ext *x = ud;
  conn_ext *e;
  conn_log *c;
  int pause = 0;
  monitor_lock(&x->r->m);
  ext_check_data(x, id, data, "message_ex");
  e = server_ext_find(x, id);
  c = server_rec_find(x->r, id);
  if (e && (flags & TCP_MSG_PARTIAL)) e->partial++;
  /* The recorder counts this message below: it is message n = count + 1. */
  if (e && c && x->pause_at > 0 && (int)c->msgs.n + 1 == x->pause_at) pause = 1;
  monitor_unlock(&x->r->m);
  srv_on_message(x->r, id, msg, len);
  if (pause) {
    int rc = tcp_server_pause(x->r->s, id);
    monitor_lock(&x->r->m);
    if (rc == 0)
      e->paused = 1;
    else
      SRV_VIOLATION(x->r, "pause(%d) from its message callback returned %d", id, rc);
    monitor_broadcast(&x->r->m);
    monitor_unlock(&x->r->m);
  }
}

static void ext_on_closed(void *ud, int id, void *data, int reason) {
  server_ext *x = ud;
  conn_ext *e;
  monitor_lock(&x->r->m);
  ext_check_data(x, id, data, "closed_ex");
  e = server_ext_find(x, id);
  if (e) e->reason = reason;
  if (reason >= 0 && reason < 16)
    x->reasons[reason]++;
  else
    SRV_VIOLATION(x->r, "closed_ex of client %d with reason %d", id, reason);
  monitor_unlock(&x->r->m);
  srv_on_closed(x->r, id);
}

static void ext_on_ready(void *ud, int id, void *data) {
  server_ext *x = ud;
  conn_log *c;
  monitor_lock(&x->r->m);
  c = conn_enter(x->r, id, "ready");
  ext_check_data(x, id, data, "ready");
  if (c) server_ext_find(x, id)->ready++;
  x->ready++;
  monitor_broadcast(&x->r->m);
  monitor_unlock(&x->r->m);
}

static int ext_on_accept(void *ud, const char *ip, int port, int local_port) {
  server_ext *x = ud;
  int verdict;
  monitor_lock(&x->r->m);
  if (pthread_equal(pthread_self(), x->r->owner)) x->accept_on_owner++;
  if (x->r->stopped) SRV_VIOLATION(x->r, "accept callback after stop returned");
  snprintf(x->accept_ip, sizeof x->accept_ip, "%s", ip ? ip : "(null)");
  x->accept_port = port;
  x->accept_local_port = local_port;
  x->accepts++;
  verdict = x->accept_verdict && !(x->refuse_port && port == x->refuse_port);
  if (!verdict) x->accept_refused++;
  monitor_broadcast(&x->r->m);
  monitor_unlock(&x->r->m);
  return verdict;
}

server_ext *server_ext_new(server_rec *r, int with_accept) {
  server_ext *x = calloc(1, sizeof *x);
  REQUIRE(x != NULL);
  x->r = r;
  x->accept_verdict = 1;
  tcp_server_set_on_established(r->s, ext_on_established, x);
  tcp_server_set_on_message_ex(r->s, ext_on_message, x);
  tcp_server_set_on_closed_ex(r->s, ext_on_closed, x);
  tcp_server_set_on_ready(r->s, ext_on_ready, x);
  if (with_accept) tcp_server_set_on_accept(r->s, ext_on_accept, x);
  return x;
}

tcp_accept_fn server_ext_accept_fn(void) { return ext_on_accept; }

void server_ext_free(server_ext *x) {
  if (x->data_mismatch)
    h_fail(__FILE__, __LINE__, "conn_data mismatches: %d (%s)", x->data_mismatch,
           x->data_mismatch_text);
  free(x);
}

static void cext_on_closed(void *ud, int reason) {
  client_ext *x = ud;
  monitor_lock(x->r->m);
  x->reason = reason;
  x->closed_ex++;
  monitor_unlock(x->r->m);
  cli_on_closed(x->r);
}

static void cext_on_ready(void *ud) {
  client_ext *x = ud;
  monitor_lock(x->r->m);
  cli_enter(x->r, "ready");
  x->ready++;
  monitor_broadcast(x->r->m);
  monitor_unlock(x->r->m);
}

static void cext_on_connect(void *ud, int attempt, int result) {
  client_ext *x = ud;
  monitor_lock(x->r->m);
  if (x->connects < EXT_MAX_CONNECTS) {
    x->connect_attempt[x->connects] = attempt;
    x->connect_result[x->connects] = result;
  }
  x->connects++;
  if (result == TCP_START_OK) {
    x->reconnected++;
    x->r->starts++; /* a new connection: closed must follow it once */
  }
  monitor_broadcast(x->r->m);
  monitor_unlock(x->r->m);
}

client_ext *client_ext_new(client_rec *r) {
  client_ext *x = calloc(1, sizeof *x);
  REQUIRE(x != NULL);
  x->r = r;
  tcp_client_set_on_closed_ex(r->c, cext_on_closed, x);
  tcp_client_set_on_ready(r->c, cext_on_ready, x);
  tcp_client_set_on_connect(r->c, cext_on_connect, x);
  return x;
}

void client_ext_free(client_ext *x) { free(x); }

/* ---- log lines ---------------------------------------------------------------- */

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n) return 1;
  }
  return n == 0;
}

static void log_rec_line(void *ud, int level, const char *msg) {
  log_rec *l = ud;
  monitor_lock(&l->m);
  l->lines++;
  if (msg && contains_nocase(msg, l->want ? l->want : "")) {
    l->matched++;
    l->last_level = level;
    snprintf(l->last, sizeof l->last, "%s", msg);
  }
  monitor_broadcast(&l->m);
  monitor_unlock(&l->m);
}

void log_rec_install(log_rec *l, const char *want) {
  memset(l, 0, sizeof *l);
  monitor_init(&l->m);
  l->want = want;
  tcp_set_log(log_rec_line, l, TCP_LOG_DEBUG);
}

void log_rec_remove(log_rec *l) {
  (void)l;
  tcp_set_log(NULL, NULL, 0);
}

/* ---- raw sockets, more ------------------------------------------------------------ */

int raw_connect_from(const char *src, int port) {
  struct sockaddr_in a = loopback_addr(port), local = loopback_addr(0);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  REQUIRE(inet_pton(AF_INET, src, &local.sin_addr) == 1);
  REQUIRE(bind(fd, (struct sockaddr *)&local, sizeof local) == 0);
  REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  return fd;
}

int raw_connect6(int port) {
  struct sockaddr_in6 a;
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons((unsigned short)port);
  a.sin6_addr = in6addr_loopback;
  REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  return fd;
}

int raw_connect_small_rcvbuf(int port) {
  struct sockaddr_in a = loopback_addr(port);
  int small = 4096, fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
  REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  return fd;
}

int raw_local_port(int fd) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) return -1;
  if (a.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&a)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

int raw_send_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Wait until fd is readable or the deadline (ms since now_ms()) passed. */
static int readable_by(int fd, long long deadline) {
  struct pollfd p;
  long long left = deadline - now_ms();
  int rc;
  p.fd = fd;
  p.events = POLLIN;
  do {
    rc = poll(&p, 1, left > 0 ? (int)left : 0);
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

size_t raw_read(int fd, void *buf, size_t want, int timeout_ms, int *end) {
  long long deadline = now_ms() + timeout_ms;
  size_t got = 0;
  *end = 0;
  while (got < want && readable_by(fd, deadline)) {
    ssize_t n = recv(fd, (char *)buf + got, want - got, 0);
    if (n == 0) {
      *end = 1;
      break;
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      *end = -errno;
      break;
    }
    got += (size_t)n;
  }
  return got;
}

int raw_wait_closed(int fd, int timeout_ms, size_t *got) {
  long long deadline = now_ms() + timeout_ms;
  char buf[65536];
  if (got) *got = 0;
  while (readable_by(fd, deadline)) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return 1;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -errno;
    }
    if (got) *got += (size_t)n;
  }
  return 0;
}

int raw_quiet_for(int fd, int ms) { return !readable_by(fd, now_ms() + ms); }

int have_ipv6_loopback(void) {
  struct sockaddr_in6 a;
  int ok, fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static int sockaddr_port(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)a)->sin_port);
  if (a->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
  return -1;
}

/* Walk this process's descriptors for a TCP socket with that local port
 * and (peer_port > 0) that peer port, or (peer_port 0) listening. */
static int find_socket(int local_port, int peer_port) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int found = -1;
  if (!d) return -1;
  while (found < 0 && (e = readdir(d)) != NULL) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    int fd, listening = 0;
    socklen_t optlen = sizeof listening;
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    fd = atoi(e->d_name);
    if (fd == dirfd(d)) continue;
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0 ||
        sockaddr_port(&a) != local_port)
      continue;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0) continue;
    if (peer_port == 0) {
      if (listening) found = fd;
      continue;
    }
    len = sizeof a;
    if (!listening && getpeername(fd, (struct sockaddr *)&a, &len) == 0 &&
        sockaddr_port(&a) == peer_port)
      found = fd;
  }
  closedir(d);
  return found;
}

int find_listener_fd(int port) { return find_socket(port, 0); }
int find_conn_fd(int local_port, int peer_port) {
  return find_socket(local_port, peer_port);
}

/* ---- the process ------------------------------------------------------------------- */

int proc_threads(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %d", &n) == 1) break;
  fclose(f);
  return n;
}

long long proc_cpu_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return -1;
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

long long nofile_soft(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  return rl.rlim_cur == RLIM_INFINITY ? LLONG_MAX : (long long)rl.rlim_cur;
}

int set_nofile_soft(long long n) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -errno;
  rl.rlim_cur = (rlim_t)n;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

void stderr_capture_begin(stderr_capture *c) {
  char path[FX_PATH];
  join(path, fx()->dir, "stderr-XXXXXX");
  fflush(stderr);
  c->file_fd = mkstemp(path);
  REQUIRE(c->file_fd >= 0);
  unlink(path);
  c->saved_fd = dup(2);
  REQUIRE(c->saved_fd >= 0);
  REQUIRE(dup2(c->file_fd, 2) == 2);
}

long stderr_capture_end(stderr_capture *c, char *buf, size_t cap) {
  off_t size;
  ssize_t n = 0;
  fflush(stderr);
  dup2(c->saved_fd, 2);
  close(c->saved_fd);
  size = lseek(c->file_fd, 0, SEEK_END);
  if (cap > 0) {
    lseek(c->file_fd, 0, SEEK_SET);
    n = read(c->file_fd, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
  }
  close(c->file_fd);
  return (long)size;
}

const char *errmsg_text(void) {
  static __thread char buf[512];
  buf[0] = '\0';
  tcp_errmsg(buf, sizeof buf);
  return buf;
}
