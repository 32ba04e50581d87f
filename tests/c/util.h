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

#endif /* TCPGO_TEST_UTIL_H */
