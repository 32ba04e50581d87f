/* Repro (notes/abi-requests-cpp.md, request 1): data queued with tcp_client_send (returned 1) right before
 * tcp_client_stop is often never delivered to the server. */
#include <tcpgo.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>
#include <unistd.h>

static atomic_int received, closed;
static void on_msg(void *u, int id, const char *d, size_t n) { (void)u; (void)id; (void)d; (void)n; atomic_fetch_add(&received, 1); }
static void on_closed(void *u, int id) { (void)u; (void)id; atomic_fetch_add(&closed, 1); }

int main(void) {
  tcp_server *s = tcp_server_new_fragmented('\n', 0);
  tcp_server_set_on_message(s, on_msg, NULL);
  tcp_server_set_on_closed(s, on_closed, NULL);
  tcp_server_set_option_str(s, TCP_OPT_BIND_ADDRESS, "127.0.0.1");
  if (tcp_server_start(s, 0) != 0) return 1;
  int port = tcp_server_port(s), sent = 0;
  for (int i = 0; i < 100; i++) {
    tcp_client *c = tcp_client_new_fragmented('\n', 0);
    if (tcp_client_start(c, "127.0.0.1", port) != 0) return 2;
    sent += tcp_client_send(c, "last words", 10);
    tcp_client_stop(c);
    tcp_client_free(c);
  }
  for (int i = 0; i < 2000 && atomic_load(&closed) < 100; i++) usleep(1000);
  printf("client: send returned 1 for %d messages, server received %d (closed %d)\n", sent, atomic_load(&received), atomic_load(&closed));
  tcp_server_free(s);
  return atomic_load(&received) != sent;
}
