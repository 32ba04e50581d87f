/* Internal to the cgo layer: the handle and callback types of include/tcpgo.h
 * (the same layouts; the public header itself cannot be included by files
 * with //export because cgo's generated prototypes drop const), and the C
 * helpers through which Go calls the user's function pointers. */
#ifndef TCPGO_BRIDGE_H
#define TCPGO_BRIDGE_H
#include <stddef.h>
#include <stdlib.h>

typedef struct tcp_server tcp_server;
typedef struct tcp_client tcp_client;

typedef void (*tcp_established_fn)(void *user_data, int client_id);
typedef void (*tcp_message_fn)(void *user_data, int client_id, const char *data, size_t len);
typedef void (*tcp_closed_fn)(void *user_data, int client_id);
typedef void (*tcp_error_fn)(void *user_data, int client_id, int code, const char *message);
typedef void (*tcp_client_message_fn)(void *user_data, const char *data, size_t len);
typedef void (*tcp_client_closed_fn)(void *user_data);
typedef void (*tcp_client_error_fn)(void *user_data, int code, const char *message);
typedef void (*tcp_message_ex_fn)(void *user_data, int client_id, void *conn_data, const char *data, size_t len, int flags);
typedef void (*tcp_closed_ex_fn)(void *user_data, int client_id, void *conn_data, int reason);
typedef void (*tcp_ready_fn)(void *user_data, int client_id, void *conn_data);
typedef int (*tcp_accept_fn)(void *user_data, const char *ip, int port, int local_port);
typedef void (*tcp_client_closed_ex_fn)(void *user_data, int reason);
typedef void (*tcp_client_message_ex_fn)(void *user_data, const char *data, size_t len, int flags);
typedef void (*tcp_client_ready_fn)(void *user_data);
typedef void (*tcp_client_connect_fn)(void *user_data, int attempt, int result);
typedef void (*tcp_log_fn)(void *user_data, int level, const char *msg);
typedef void (*tcp_file_progress_fn)(void *user_data, int client_id, long long sent, long long total, int status);
typedef struct tcp_iovec { const void *base; size_t len; } tcp_iovec;
typedef struct tcp_msg { const char *data; size_t len; int flags; } tcp_msg;
typedef void (*tcp_messages_fn)(void *user_data, int client_id, void *conn_data, const tcp_msg *msgs, size_t count);
typedef void (*tcp_client_messages_fn)(void *user_data, const tcp_msg *msgs, size_t count);

/* One message of a batch as the engine describes it (engine.Part: Go int,
 * int, bool). callbacks.go checks at compile time that the layouts agree;
 * the array is Go memory without Go pointers, read by C during one call. */
typedef struct tcpgo_part { ptrdiff_t off; ptrdiff_t len; unsigned char partial; } tcpgo_part;

typedef struct tcp_cert_info {
  int client_id;
  int result;
  const char *error;
  const char *cert_pem;
  const char *chain_pem;
  const char *subject;
  const char *issuer;
  const char *server_name;
} tcp_cert_info;
typedef int (*tcp_cert_check_fn)(void *user_data, const tcp_cert_info *info);

typedef struct tcp_tls_info {
  int version, cipher_suite, resumed, upgraded, verify_result, has_peer_cert;
} tcp_tls_info;

typedef struct tcp_server_stats {
  unsigned long long active, established, accepted, refused, refused_limit;
  unsigned long long handshake_failed, timed_out, closed_for_limits, accept_errors;
  unsigned long long bytes_in, bytes_out, msgs_in, msgs_out, memory_used;
} tcp_server_stats;

typedef struct tcp_conn_stats {
  unsigned long long bytes_in, bytes_out, msgs_in, msgs_out;
  long long connected_unix_ms;
  unsigned long long queued;
} tcp_conn_stats;

void tcpgo_call_established(tcp_established_fn fn, void *ud, int id);
void tcpgo_call_message(tcp_message_fn fn, void *ud, int id, const char *data, size_t len);
void tcpgo_call_closed(tcp_closed_fn fn, void *ud, int id);
void tcpgo_call_error(tcp_error_fn fn, void *ud, int id, int code, const char *msg);
void tcpgo_call_client_message(tcp_client_message_fn fn, void *ud, const char *data, size_t len);
void tcpgo_call_client_closed(tcp_client_closed_fn fn, void *ud);
void tcpgo_call_client_error(tcp_client_error_fn fn, void *ud, int code, const char *msg);
void tcpgo_call_message_ex(tcp_message_ex_fn fn, void *ud, int id, void *cd, const char *data, size_t len, int flags);
void tcpgo_call_closed_ex(tcp_closed_ex_fn fn, void *ud, int id, void *cd, int reason);
void tcpgo_call_ready(tcp_ready_fn fn, void *ud, int id, void *cd);
int tcpgo_call_accept(tcp_accept_fn fn, void *ud, const char *ip, int port, int local_port);
void tcpgo_call_client_closed_ex(tcp_client_closed_ex_fn fn, void *ud, int reason);
void tcpgo_call_client_message_ex(tcp_client_message_ex_fn fn, void *ud, const char *data, size_t len, int flags);
void tcpgo_call_client_ready(tcp_client_ready_fn fn, void *ud);
void tcpgo_call_client_connect(tcp_client_connect_fn fn, void *ud, int attempt, int result);
/* Build the tcp_msg array of a batch on the C side (base: the read's
 * buffer, Go memory valid during the call) and call fn once. */
void tcpgo_call_messages(tcp_messages_fn fn, void *ud, int id, void *cd, const char *base, const tcpgo_part *parts, size_t n);
void tcpgo_call_client_messages(tcp_client_messages_fn fn, void *ud, const char *base, const tcpgo_part *parts, size_t n);
/* A batch of one message. */
void tcpgo_call_messages1(tcp_messages_fn fn, void *ud, int id, void *cd, const char *data, size_t len, int flags);
void tcpgo_call_client_messages1(tcp_client_messages_fn fn, void *ud, const char *data, size_t len, int flags);
void tcpgo_call_log(tcp_log_fn fn, void *ud, int level, const char *msg);
/* Builds the tcp_cert_info on the C stack (the strings are the caller's C
 * copies, freed after the call) and returns the callback's verdict. */
int tcpgo_call_cert(tcp_cert_check_fn fn, void *ud, int id, int result, const char *error,
                    const char *cert_pem, const char *chain_pem, const char *subject,
                    const char *issuer, const char *server_name);
void tcpgo_call_file_progress(tcp_file_progress_fn fn, void *ud, int id, long long sent, long long total, int status);

/* Per-thread error record (tcp_errcode / tcp_errno / tcp_errmsg). */
void tcpgo_set_error(int code, int err_no, const char *msg, size_t len);
void tcpgo_clear_error(void);

/* RLIMIT_NOFILE soft limit as the host had it when the library loaded
 * (before the Go runtime raised it); -1 if unknown. */
long long tcpgo_host_nofile(void);

/* The Go side is initialised (the host's limit restored). */
void tcpgo_mark_ready(void);

/* Reserve address space for handles: tokens that are real addresses never
 * handed out by malloc, so a freed handle is never confused with a new one. */
void *tcpgo_reserve_handles(size_t bytes);

#endif
