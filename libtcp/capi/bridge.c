/* Go cannot call a C function pointer; these one-liners do it for it.
 * Also the per-thread error record, which C reads without entering Go, and
 * what must be captured before the Go runtime starts. */
#include "bridge.h"
#include "_cgo_export.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

void tcpgo_call_established(tcp_established_fn fn, void *ud, int id) { fn(ud, id); }
void tcpgo_call_message(tcp_message_fn fn, void *ud, int id, const char *data, size_t len) { fn(ud, id, data, len); }
void tcpgo_call_closed(tcp_closed_fn fn, void *ud, int id) { fn(ud, id); }
void tcpgo_call_error(tcp_error_fn fn, void *ud, int id, int code, const char *msg) { fn(ud, id, code, msg); }
void tcpgo_call_client_message(tcp_client_message_fn fn, void *ud, const char *data, size_t len) { fn(ud, data, len); }
void tcpgo_call_client_closed(tcp_client_closed_fn fn, void *ud) { fn(ud); }
void tcpgo_call_client_error(tcp_client_error_fn fn, void *ud, int code, const char *msg) { fn(ud, code, msg); }
void tcpgo_call_message_ex(tcp_message_ex_fn fn, void *ud, int id, void *cd, const char *data, size_t len, int flags) { fn(ud, id, cd, data, len, flags); }
void tcpgo_call_closed_ex(tcp_closed_ex_fn fn, void *ud, int id, void *cd, int reason) { fn(ud, id, cd, reason); }
void tcpgo_call_ready(tcp_ready_fn fn, void *ud, int id, void *cd) { fn(ud, id, cd); }
int tcpgo_call_accept(tcp_accept_fn fn, void *ud, const char *ip, int port, int local_port) { return fn(ud, ip, port, local_port); }
void tcpgo_call_client_closed_ex(tcp_client_closed_ex_fn fn, void *ud, int reason) { fn(ud, reason); }
void tcpgo_call_client_message_ex(tcp_client_message_ex_fn fn, void *ud, const char *data, size_t len, int flags) { fn(ud, data, len, flags); }
void tcpgo_call_client_ready(tcp_client_ready_fn fn, void *ud) { fn(ud); }
void tcpgo_call_client_connect(tcp_client_connect_fn fn, void *ud, int attempt, int result) { fn(ud, attempt, result); }
void tcpgo_call_log(tcp_log_fn fn, void *ud, int level, const char *msg) { fn(ud, level, msg); }
void tcpgo_call_file_progress(tcp_file_progress_fn fn, void *ud, int id, long long sent, long long total, int status) { fn(ud, id, sent, total, status); }

/* ---- batches of messages ----------------------------------------------
 * The tcp_msg array lives in C memory (cgo: C memory must not hold Go
 * pointers -- these point into Go's read buffer only for the call's
 * duration, on the C stack or in a malloc'd block freed before return, and
 * Go never sees the array). Up to MSGS_STACK messages on the stack; a
 * larger batch gets a heap array, or -- if malloc fails -- is delivered in
 * slices of MSGS_STACK, in order. */
#define MSGS_STACK 128

static void fill_msgs(tcp_msg *out, const char *base, const tcpgo_part *parts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    out[i].data = base + parts[i].off;
    out[i].len = (size_t)parts[i].len;
    out[i].flags = parts[i].partial ? 1 : 0; /* TCP_MSG_PARTIAL */
  }
}

/* Where a batch goes: a server's callback (fn) or a client's (cfn). */
typedef struct {
  tcp_messages_fn fn;
  tcp_client_messages_fn cfn;
  void *ud, *cd;
  int id;
} msgs_target;

static void deliver(const msgs_target *t, const tcp_msg *msgs, size_t n) {
  if (t->fn != NULL)
    t->fn(t->ud, t->id, t->cd, msgs, n);
  else
    t->cfn(t->ud, msgs, n);
}

static void deliver_parts(const msgs_target *t, const char *base, const tcpgo_part *parts, size_t n) {
  tcp_msg stack[MSGS_STACK];
  if (n <= MSGS_STACK) {
    fill_msgs(stack, base, parts, n);
    deliver(t, stack, n);
    return;
  }
  tcp_msg *heap = malloc(n * sizeof *heap);
  if (heap != NULL) {
    fill_msgs(heap, base, parts, n);
    deliver(t, heap, n);
    free(heap);
    return;
  }
  for (size_t i = 0; i < n; i += MSGS_STACK) {
    size_t k = n - i < MSGS_STACK ? n - i : MSGS_STACK;
    fill_msgs(stack, base, parts + i, k);
    deliver(t, stack, k);
  }
}

void tcpgo_call_messages(tcp_messages_fn fn, void *ud, int id, void *cd, const char *base, const tcpgo_part *parts, size_t n) {
  msgs_target t = {.fn = fn, .ud = ud, .cd = cd, .id = id};
  deliver_parts(&t, base, parts, n);
}

void tcpgo_call_client_messages(tcp_client_messages_fn fn, void *ud, const char *base, const tcpgo_part *parts, size_t n) {
  msgs_target t = {.cfn = fn, .ud = ud};
  deliver_parts(&t, base, parts, n);
}

void tcpgo_call_messages1(tcp_messages_fn fn, void *ud, int id, void *cd, const char *data, size_t len, int flags) {
  tcp_msg m = {data, len, flags};
  fn(ud, id, cd, &m, 1);
}

void tcpgo_call_client_messages1(tcp_client_messages_fn fn, void *ud, const char *data, size_t len, int flags) {
  tcp_msg m = {data, len, flags};
  fn(ud, &m, 1);
}

int tcpgo_call_cert(tcp_cert_check_fn fn, void *ud, int id, int result, const char *error,
                    const char *cert_pem, const char *chain_pem, const char *subject,
                    const char *issuer, const char *server_name) {
  tcp_cert_info info;
  info.client_id = id;
  info.result = result;
  info.error = error;
  info.cert_pem = cert_pem;
  info.chain_pem = chain_pem;
  info.subject = subject;
  info.issuer = issuer;
  info.server_name = server_name;
  return fn(ud, &info);
}

/* ---- per-thread error record ------------------------------------------ */

#define TCPGO_ERRMSG_MAX 1024
static __thread int tl_code;
static __thread int tl_errno;
static __thread char tl_msg[TCPGO_ERRMSG_MAX];
static __thread int tl_set; /* the record holds an error */

void tcpgo_set_error(int code, int err_no, const char *msg, size_t len) {
  tl_set = 1;
  tl_code = code;
  tl_errno = err_no;
  if (len >= TCPGO_ERRMSG_MAX) len = TCPGO_ERRMSG_MAX - 1;
  memcpy(tl_msg, msg, len);
  tl_msg[len] = '\0';
}

void tcpgo_clear_error(void) {
  tl_set = 0;
  tl_code = 0;
  tl_errno = 0;
  tl_msg[0] = '\0';
}

int tcp_errcode(void) { return tl_code; }

/* ---- sends: the thread's record cleared on the C side -------------------
 * A successful call clears the calling thread's error record. For the
 * calls a program makes per message, that happens here, before entering Go,
 * and only when the record holds something: the Go side (tcpgo_x_*, not
 * exported from the library) then records failures only, and a successful
 * send costs one C->Go crossing and no Go->C call back. */
static inline void clear_if_set(void) {
  if (__builtin_expect(tl_set, 0)) tcpgo_clear_error();
}

int tcp_send_msg(tcp_server *s, int client_id, const void *data, size_t len) {
  clear_if_set();
  return tcpgo_x_send_msg(s, client_id, (void *)data, len);
}

int tcp_server_send_ex(tcp_server *s, int client_id, const void *data, size_t len) {
  clear_if_set();
  return tcpgo_x_server_send_ex(s, client_id, (void *)data, len);
}

int tcp_server_send_batch(tcp_server *s, const void *buf, size_t len, size_t count) {
  clear_if_set();
  return tcpgo_x_server_send_batch(s, (void *)buf, len, count);
}

int tcp_server_send_msgs(tcp_server *s, int client_id, const tcp_msg *msgs, size_t count) {
  clear_if_set();
  return tcpgo_x_server_send_msgs(s, client_id, (tcp_msg *)msgs, count);
}

int tcp_client_send(tcp_client *c, const void *data, size_t len) {
  clear_if_set();
  return tcpgo_x_client_send(c, (void *)data, len);
}

int tcp_client_send_ex(tcp_client *c, const void *data, size_t len) {
  clear_if_set();
  return tcpgo_x_client_send_ex(c, (void *)data, len);
}

int tcp_client_send_msgs(tcp_client *c, const tcp_msg *msgs, size_t count) {
  clear_if_set();
  return tcpgo_x_client_send_msgs(c, (tcp_msg *)msgs, count);
}
int tcp_errno(void) { return tl_errno; }

int tcp_errmsg(char *buf, size_t buflen) {
  size_t len = strlen(tl_msg);
  if (buf != NULL && buflen > 0) {
    size_t n = len < buflen - 1 ? len : buflen - 1;
    memcpy(buf, tl_msg, n);
    buf[n] = '\0';
  }
  return (int)len;
}

/* ---- the host's descriptor limit ----------------------------------------
 * The Go runtime raises RLIMIT_NOFILE's soft limit to the hard limit when it
 * starts, and children of a C host would inherit that. This constructor runs
 * before the runtime's (prioritised constructors come first), so it sees
 * the host's value; the Go side puts it back. */
static long long host_nofile = -1;

__attribute__((constructor(101))) static void tcpgo_capture_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) host_nofile = (long long)rl.rlim_cur;
}

long long tcpgo_host_nofile(void) { return host_nofile; }

/* The Go runtime starts on a thread of its own while the host's main (or
 * dlopen) goes on; a host that sets its own limit at the start of main
 * would race with the restore. So the library's load waits, bounded, for
 * the runtime's start-up (set by the Go side once the limit is restored).
 * This constructor has no priority, so it runs after the runtime's. */
static volatile int runtime_ready;

void tcpgo_mark_ready(void) { __atomic_store_n(&runtime_ready, 1, __ATOMIC_RELEASE); }

__attribute__((constructor)) static void tcpgo_wait_runtime(void) {
  struct timespec nap = {0, 200000}; /* 0.2 ms */
  for (int i = 0; i < 10000 && !__atomic_load_n(&runtime_ready, __ATOMIC_ACQUIRE); i++)
    nanosleep(&nap, NULL); /* at most 2 s: never hang a load on it */
}

void *tcpgo_reserve_handles(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
