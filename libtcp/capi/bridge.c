/* Go cannot call a C function pointer; these one-liners do it for it. */
#include "bridge.h"

void tcpgo_call_established(tcp_established_fn fn, void *ud, int id) { fn(ud, id); }
void tcpgo_call_message(tcp_message_fn fn, void *ud, int id, const char *data, size_t len) { fn(ud, id, data, len); }
void tcpgo_call_closed(tcp_closed_fn fn, void *ud, int id) { fn(ud, id); }
void tcpgo_call_error(tcp_error_fn fn, void *ud, int id, int code, const char *msg) { fn(ud, id, code, msg); }
void tcpgo_call_client_message(tcp_client_message_fn fn, void *ud, const char *data, size_t len) { fn(ud, data, len); }
void tcpgo_call_client_closed(tcp_client_closed_fn fn, void *ud) { fn(ud); }
void tcpgo_call_client_error(tcp_client_error_fn fn, void *ud, int code, const char *msg) { fn(ud, code, msg); }
