/*
 * util.h -- shared helpers of the C tests: certificate fixtures, event
 * recorders that check the callback contract, loopback connect helpers.
 */
#ifndef TCPGO_TEST_UTIL_H
#define TCPGO_TEST_UTIL_H

#include <netinet/in.h>
#include <stddef.h>

#include "harness.h"
#include "tcpgo.h"

/* ---- certificate fixtures ---------------------------------------------- */

#define FX_PATH 512

/* One PKI made by tcp_generate_certs. */
typedef struct pki {
  char dir[FX_PATH];
  char ca[FX_PATH], ca_key[FX_PATH];
  char server_cert[FX_PATH], server_key[FX_PATH];
  char client_cert[FX_PATH], client_key[FX_PATH];
} pki;

typedef struct fixtures {
  char dir[FX_PATH]; /* temporary root, removed by the runner */
  pki main;          /* what servers and clients normally use */
  pki other;         /* a second, unrelated CA ("unknown CA") */
  pki san;           /* server cert valid only for 127.0.0.2 */
  char garbage[FX_PATH]; /* a file of junk bytes */
  char empty[FX_PATH];   /* an empty file */
  char missing[FX_PATH]; /* a path that does not exist */
} fixtures;

/* The fixtures of this run (made once by the runner, found through the
 * environment in each test process). */
const fixtures *fx(void);

/* Runner hooks: make the fixtures in a fresh temporary directory / remove
 * that directory. */
int fixtures_create(void);
void fixtures_remove(void);

/* A new empty directory under the fixtures root (removed with it). */
void fx_tempdir(char *out, size_t outlen);

/* Remove a directory tree; 0 on success. */
int remove_tree(const char *dir);

/* ---- received messages ------------------------------------------------- */

typedef struct msg {
  char *data; /* a copy, NUL-terminated (the data may hold NULs too) */
  size_t len;
} msg;

typedef struct msg_list {
  msg *items;  /* kept only when keep is set */
  size_t n;    /* messages (or chunks) received */
  size_t cap;
  size_t bytes;
  int keep;
} msg_list;

/* These read a list: hold the owning recorder's monitor. */
int msg_is(const msg_list *l, size_t i, const char *text);
int msg_is_bytes(const msg_list *l, size_t i, const void *data, size_t len);
/* All chunks glued together equal data (continuous mode). */
int msgs_concat_is(const msg_list *l, const void *data, size_t len);

/* ---- server recorder ---------------------------------------------------- */

/* What one connection of a server went through. */
typedef struct conn_log {
  int id;
  int established, closed, errors;
  int last_error;
  int in_callback; /* to catch overlapping events of one connection */
  msg_list msgs;
  int cn_len;      /* get_subj_part(CN) made in on_established (lookup_cn) */
  char cn[64];
} conn_log;

#define REC_MAX_CONNS 1024

/* Installs itself as every callback of a server and records the events,
 * flagging any breach of the callback contract (order, exactly-once,
 * id > 0 and unique, nothing after stop) as a violation. */
typedef struct server_rec {
  monitor m;
  tcp_server *s;
  pthread_t owner;     /* the test's thread: callbacks must never run on it */
  /* behaviour, set by the test before events arrive */
  int echo;            /* send every message back from on_message */
  int stop_on_message; /* call tcp_server_stop from on_message */
  int close_on_message; /* call tcp_server_close_client from on_message */
  int discard;         /* count message bytes but do not keep them */
  int lookup_cn;       /* call get_subj_part(CN) from on_established */
  const char *greeting; /* sent to every client from on_established */
  size_t greeting_len;
  /* set by the test, with the monitor held, once tcp_server_stop returned */
  int stopped;
  /* counters */
  int established, closed, messages, errors;
  int errors_id0;      /* errors with client_id 0 (failed handshakes) */
  int last_error_code, last_error_id;
  char last_error_text[256];
  int echo_failures;
  int stop_returned;   /* tcp_server_stop calls that returned in a callback */
  int violations;
  char violation_text[256];
  int nconns;
  conn_log conns[REC_MAX_CONNS]; /* in the order of establishment */
} server_rec;

server_rec *server_rec_new(tcp_server *s);
/* Frees the server (stopping it), checks that every established client was
 * closed exactly once and no violation happened, frees the recorder. */
#define server_rec_free(r) server_rec_free_at((r), __FILE__, __LINE__)
void server_rec_free_at(server_rec *r, const char *file, int line);
/* With the monitor held: the connection with that id, or NULL. */
conn_log *server_rec_find(server_rec *r, int id);
/* With the monitor held: the connection, or NULL. */
#define CONN(r, id) server_rec_find((r), (id))
/* The id of the n-th established connection (0 when none). Locks. */
int server_rec_id(server_rec *r, int n);
/* The server's id for client c's connection (matched by port), or 0. */
int server_id_of(server_rec *r, const tcp_client *c);
/* Mark "tcp_server_stop has returned": later callbacks are violations. */
void server_rec_mark_stopped(server_rec *r);

/* ---- client recorder ----------------------------------------------------- */

typedef struct client_rec {
  monitor own;
  monitor *m;          /* &own, or a monitor shared by many clients */
  tcp_client *c;
  pthread_t owner;     /* thread of the last start: no callback runs on it */
  int owner_gone;      /* that thread ended (its id may be reused): no check */
  int index;           /* free for the test (e.g. position in an array) */
  int stop_on_message; /* call tcp_client_stop from on_message */
  int stopped;         /* set by the test once tcp_client_stop returned */
  int starts;          /* successful starts (closed must follow each once) */
  int closed, messages, errors;
  int last_error_code;
  char last_error_text[256];
  int stop_returned;
  int in_callback;
  int violations;
  char violation_text[256];
  msg_list msgs;
} client_rec;

/* shared: a monitor to use instead of the recorder's own, or NULL. */
client_rec *client_rec_new(tcp_client *c, monitor *shared);
#define client_rec_free(r) client_rec_free_at((r), __FILE__, __LINE__)
void client_rec_free_at(client_rec *r, const char *file, int line);
/* Count a successful start made without the connect helpers. */
void client_rec_started(client_rec *r);
void client_rec_mark_stopped(client_rec *r);

/* ---- starting and connecting on loopback --------------------------------- */

/* Bind to 127.0.0.1 on a system-chosen port; REQUIREs success; returns the
 * port. */
int start_tcp(tcp_server *s);
int start_mtls(tcp_server *s, const pki *p);
/* Connect (REQUIRE success) and count the start in the recorder. */
void connect_tcp(client_rec *r, int port);
void connect_mtls(client_rec *r, int port, const pki *p);
/* Mutual TLS with the main CA and the given client certificate and key. */
void connect_tcp_tls_cert(client_rec *r, int port, const char *cert, const char *key);

/* The server's / client's last error text is non-empty. */
#define CHECK_SERVER_ERROR_TEXT(s) check_error_text((s), NULL, __FILE__, __LINE__)
#define CHECK_CLIENT_ERROR_TEXT(c) check_error_text(NULL, (c), __FILE__, __LINE__)
void check_error_text(const tcp_server *s, const tcp_client *c,
                      const char *file, int line);

/* ---- raw sockets ----------------------------------------------------------- */

/* 127.0.0.1:port as a socket address. */
struct sockaddr_in loopback_addr(int port);

/* A blocking TCP connection to 127.0.0.1:port (REQUIREs success). */
int raw_connect(int port);
/* Close with SO_LINGER 0, so the peer gets a RST. */
void raw_reset(int fd);
/* A loopback port that is bound but not listening, so connecting to it is
 * refused; *fd keeps it reserved until closed. */
int closed_port(int *fd);

/* Raise RLIMIT_NOFILE's soft limit to at least n (or the hard limit). */
void raise_fd_limit(int n);

/* ---- extended callbacks (issues 8, 9) -------------------------------------- */

/* What the extended callbacks reported for one connection of a server_rec
 * (same index as server_rec.conns). */
typedef struct conn_ext {
  int reason;       /* closed_ex reason; 0 while open */
  void *data;       /* conn_data stored in established (set_conn_data) */
  int ready;        /* ready callbacks */
  int partial;      /* messages flagged TCP_MSG_PARTIAL */
  int paused;       /* paused from its message callback (pause_at) */
} conn_ext;

/* Installs the extended callbacks (message_ex, closed_ex, ready, and on
 * request accept) on top of a server_rec, which keeps checking the event
 * contract; everything here is guarded by r->m. Since only the extended
 * callback of an event runs when both are set, the recorder's plain
 * message/closed callbacks then run through these. */
typedef struct server_ext {
  server_rec *r;
  /* behaviour, set by the test before events arrive */
  int set_conn_data;   /* established stores &conns[i] as the conn_data */
  int pause_at;        /* message callback n (1-based) pauses its connection */
  int accept_verdict;  /* what the accept callback returns (default 1) */
  int refuse_port;     /* ... but 0 for a peer with this port */
  /* counters */
  int data_mismatch;   /* a callback got another conn_data than was set */
  char data_mismatch_text[128];
  int ready;
  int accepts, accept_refused, accept_on_owner;
  char accept_ip[64];  /* of the last accept callback */
  int accept_port, accept_local_port;
  int reasons[16];     /* closed_ex calls per reason (index = reason) */
  conn_ext conns[REC_MAX_CONNS];
} server_ext;

/* with_accept: also install the accept callback. */
server_ext *server_ext_new(server_rec *r, int with_accept);
/* With r->m held: the extension of client id, or NULL. */
conn_ext *server_ext_find(server_ext *x, int id);
/* Call after server_rec_free (the server is gone, no callback runs). */
void server_ext_free(server_ext *x);
/* The accept callback of server_ext (user_data: the server_ext), to install
 * on another handle, e.g. one in event-queue mode. */
tcp_accept_fn server_ext_accept_fn(void);

#define EXT_MAX_CONNECTS 256

/* The same for a client_rec: closed_ex, ready, connect. A successful
 * reconnection counts as a start of the client_rec (closed must follow it
 * once). Guarded by *r->m. */
typedef struct client_ext {
  client_rec *r;
  int reason;          /* of the last closed_ex */
  int closed_ex;
  int ready;
  int connects;        /* connect callbacks */
  int connect_attempt[EXT_MAX_CONNECTS], connect_result[EXT_MAX_CONNECTS];
  int reconnected;     /* connect callbacks with TCP_START_OK */
} client_ext;

client_ext *client_ext_new(client_rec *r);
void client_ext_free(client_ext *x);

/* ---- log lines (tcp_set_log) ------------------------------------------------ */

typedef struct log_rec {
  monitor m;
  int lines;
  int matched;          /* lines containing `want` (case-insensitive) */
  const char *want;
  int last_level;
  char last[512];       /* the last matching line */
} log_rec;

/* Install a recorder as the library's log function (max_level DEBUG). */
void log_rec_install(log_rec *l, const char *want);
/* tcp_set_log(NULL): stop logging; l may then be destroyed. */
void log_rec_remove(log_rec *l);

/* ---- raw sockets, more ----------------------------------------------------- */

/* A connection to 127.0.0.1:port from the local address src (e.g.
 * "127.0.0.2"); REQUIREs success. */
int raw_connect_from(const char *src, int port);
/* A connection to [::1]:port; REQUIREs success. */
int raw_connect6(int port);
/* A connection whose receive buffer is tiny (set before connect), for a
 * peer that does not read: kernel buffers then take little. */
int raw_connect_small_rcvbuf(int port);
/* The local port of a socket. */
int raw_local_port(int fd);
/* Write everything (MSG_NOSIGNAL: a reset peer does not raise SIGPIPE);
 * 0, or -errno. */
int raw_send_all(int fd, const void *data, size_t len);
/* Read into buf until want bytes arrived, the peer closed, or timeout_ms
 * passed. Returns the bytes read; *end is 1 after EOF, -errno after an
 * error (reset), 0 otherwise. */
size_t raw_read(int fd, void *buf, size_t want, int timeout_ms, int *end);
/* Discard what arrives until the peer closes: 1 on EOF, -errno on a reset,
 * 0 when timeout_ms passed first; *got (may be NULL) = bytes discarded. */
int raw_wait_closed(int fd, int timeout_ms, size_t *got);
/* 1 when nothing is readable within ms and the peer has not closed. */
int raw_quiet_for(int fd, int ms);
/* 1 when ::1 can be bound here. */
int have_ipv6_loopback(void);

/* This process's descriptor of a listening socket on port / of the
 * connection local_port <-> peer_port (as the library holds it), or -1. */
int find_listener_fd(int port);
int find_conn_fd(int local_port, int peer_port);

/* ---- the process --------------------------------------------------------- */

/* Threads of this process (/proc/self/status). */
int proc_threads(void);
/* CPU time (user + system) this process used, in ms. */
long long proc_cpu_ms(void);
/* Online CPUs (what GOMAXPROCS defaults to). */
int online_cpus(void);
/* RLIMIT_NOFILE's soft limit, or -1. */
long long nofile_soft(void);
/* Set the soft limit; 0 or -errno. */
int set_nofile_soft(long long n);

/* Redirect fd 2 into a temporary file until stderr_capture_end, which puts
 * stderr back, copies up to cap-1 bytes of what was written (NUL-ended) and
 * returns how many bytes were written in all. */
typedef struct stderr_capture {
  int saved_fd;
  int file_fd;
} stderr_capture;
void stderr_capture_begin(stderr_capture *c);
long stderr_capture_end(stderr_capture *c, char *buf, size_t cap);

/* The text of this thread's tcp_errmsg (static buffer per thread). */
const char *errmsg_text(void);

#endif /* TCPGO_TEST_UTIL_H */
