/* Repro: a closed callback runs after tcp_server_free() returned, when an
 * earlier closed callback called tcp_server_stop() from inside.
 * ABI: tcp_server_stop returns "when no callback of this server runs any
 * more"; tcp_server_free: "the handle must not be used afterwards" and
 * user_data may be freed -- so a callback after free is a use-after-free. */
#include <tcpgo.h>
#include <stdio.h>
#include <stdatomic.h>
#include <unistd.h>

static atomic_int freed, late, closed_count;
static tcp_server *g_s;

static void on_closed(void *u, int id) {
  (void)u; (void)id;
  if (atomic_load(&freed)) { atomic_fetch_add(&late, 1); fprintf(stderr, "late closed callback for client %d\n", id); }
  atomic_fetch_add(&closed_count, 1);
  tcp_server_stop(g_s);          /* stop from inside a callback */
}

int main(void) {
  for (int round = 0; round < 300; round++) {
    atomic_store(&freed, 0);
    atomic_store(&closed_count, 0);
    g_s = tcp_server_new_fragmented('\n', 0);
    tcp_server_set_on_closed(g_s, on_closed, NULL);
    tcp_server_set_option_str(g_s, TCP_OPT_BIND_ADDRESS, "127.0.0.1");
    if (tcp_server_start(g_s, 0) != 0) return 1;
    int port = tcp_server_port(g_s);
    tcp_client *a = tcp_client_new_fragmented('\n', 0), *b = tcp_client_new_fragmented('\n', 0);
    if (tcp_client_start(a, "127.0.0.1", port) || tcp_client_start(b, "127.0.0.1", port)) return 2;
    while (tcp_server_client_ids(g_s, NULL, 0) < 2) usleep(100);
    tcp_client_stop(a);                           /* -> closed(a) -> stop() inside */
    while (tcp_server_is_running(g_s)) usleep(100);
    tcp_client_free(a);
    tcp_client_free(b);
    tcp_server_free(g_s);
    atomic_store(&freed, 1);
    usleep(2000);                                  /* any late callback shows up now */
  }
  printf("closed callbacks after tcp_server_free returned: %d (in 300 rounds)\n", atomic_load(&late));
  return atomic_load(&late) != 0;
}
