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

void tcpgo_call_established(tcp_established_fn fn, void *ud, int id);
void tcpgo_call_message(tcp_message_fn fn, void *ud, int id, const char *data, size_t len);
void tcpgo_call_closed(tcp_closed_fn fn, void *ud, int id);
void tcpgo_call_error(tcp_error_fn fn, void *ud, int id, int code, const char *msg);
void tcpgo_call_client_message(tcp_client_message_fn fn, void *ud, const char *data, size_t len);
void tcpgo_call_client_closed(tcp_client_closed_fn fn, void *ud);
void tcpgo_call_client_error(tcp_client_error_fn fn, void *ud, int code, const char *msg);

#endif
