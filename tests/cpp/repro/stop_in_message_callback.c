/* Variant: tcp_server_stop() called from a message callback; 3 clients.
 * Counts callbacks of any kind that run after tcp_server_free returned. */
#include <tcpgo.h>
#include <stdio.h>
#include <stdatomic.h>
#include <unistd.h>

static atomic_int freed, late;
static tcp_server *g_s;
static void check(const char *what, int id) {
  if (atomic_load(&freed)) { atomic_fetch_add(&late, 1); fprintf(stderr, "late %s callback, client %d\n", what, id); }
}
static void on_closed(void *u, int id) { (void)u; check("closed", id); }
static void on_msg(void *u, int id, const char *d, size_t n) { (void)u; (void)d; (void)n; check("message", id); tcp_server_stop(g_s); }

int main(void) {
  for (int round = 0; round < 300; round++) {
    atomic_store(&freed, 0);
    g_s = tcp_server_new_fragmented('\n', 0);
    tcp_server_set_on_closed(g_s, on_closed, NULL);
    tcp_server_set_on_message(g_s, on_msg, NULL);
    tcp_server_set_option_str(g_s, TCP_OPT_BIND_ADDRESS, "127.0.0.1");
    if (tcp_server_start(g_s, 0) != 0) return 1;
    int port = tcp_server_port(g_s);
    tcp_client *c[3];
    for (int i = 0; i < 3; i++) { c[i] = tcp_client_new_fragmented('\n', 0); if (tcp_client_start(c[i], "127.0.0.1", port)) return 2; }
    while (tcp_server_client_ids(g_s, NULL, 0) < 3) usleep(100);
    tcp_client_send(c[1], "stop", 4);
    while (tcp_server_is_running(g_s)) usleep(100);
    tcp_server_free(g_s);
    atomic_store(&freed, 1);
    usleep(2000);
    for (int i = 0; i < 3; i++) tcp_client_free(c[i]);
  }
  printf("callbacks after tcp_server_free returned: %d (in 300 rounds)\n", atomic_load(&late));
  return atomic_load(&late) != 0;
}
