/*
 * demo.c -- a mutual-TLS echo server and client with tcpgo, on loopback.
 *
 *   1. make a throw-away PKI (CA, server and client certificates)
 *   2. start a TLS server that requires a client certificate, in fragmented
 *      mode: every message ends with '\n'
 *   3. connect a client that presents its certificate, send a few lines,
 *      and print what each side sees
 *   4. the same with length-prefixed framing (a 4-byte length before each
 *      message, the TLS tutorials' format): messages may hold any byte,
 *      newlines included
 *   5. stop everything and remove the certificates
 *
 * Callbacks run on library threads, so the main thread waits for them with
 * a mutex and a condition variable.
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#endif
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tcpgo.h"

/* What the callbacks tell the main thread. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected, echoes, disconnected;

static void bump(int *counter) {
  pthread_mutex_lock(&mu);
  (*counter)++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* Wait up to 5 s for *counter to reach want; 0 on time-out. */
static int wait_for(const int *counter, int want) {
  struct timespec deadline;
  int ok;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 5;
  pthread_mutex_lock(&mu);
  while (*counter < want &&
         pthread_cond_timedwait(&cv, &mu, &deadline) == 0) {
  }
  ok = *counter >= want;
  pthread_mutex_unlock(&mu);
  return ok;
}

/* ---- server side ---------------------------------------------------------- */

static void server_established(void *user_data, int client_id) {
  tcp_server *server = user_data;
  char cn[128], ip[64];
  /* The subject of the certificate the client presented (and the server
   * verified against the CA). */
  if (get_subj_part(server, client_id, TCP_NID_COMMON_NAME, cn, sizeof cn) < 0)
    strcpy(cn, "?");
  if (tcp_server_client_ip(server, client_id, ip, sizeof ip) < 0) strcpy(ip, "?");
  printf("[server] client %d connected from %s:%d, certificate CN \"%s\"\n",
         client_id, ip, tcp_server_client_port(server, client_id), cn);
  bump(&connected);
}

static void server_message(void *user_data, int client_id, const char *data,
                           size_t len) {
  tcp_server *server = user_data;
  /* data is not NUL-terminated and is valid only during this call. */
  printf("[server] client %d says \"%.*s\" -- echoing it back\n", client_id,
         (int)len, data);
  tcp_send_msg(server, client_id, data, len);
}

static void server_closed(void *user_data, int client_id) {
  (void)user_data;
  printf("[server] client %d disconnected\n", client_id);
  bump(&disconnected);
}

static void server_error(void *user_data, int client_id, int code,
                         const char *message) {
  (void)user_data;
  printf("[server] error on client %d: %s (%s)\n", client_id,
         tcp_strerror(code), message);
}

/* ---- client side ------------------------------------------------------------ */

static void client_message(void *user_data, const char *data, size_t len) {
  (void)user_data;
  printf("[client] <- \"%.*s\"\n", (int)len, data);
  bump(&echoes);
}

static void client_closed(void *user_data) {
  (void)user_data;
  printf("[client] connection closed\n");
}

static void client_error(void *user_data, int code, const char *message) {
  (void)user_data;
  printf("[client] error: %s (%s)\n", tcp_strerror(code), message);
}

/* ---- main -------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int fail(const char *what, int code, const char *detail) {
  fprintf(stderr, "demo: %s failed: %d (%s) %s\n", what, code,
          tcp_strerror(code), detail ? detail : "");
  return 0;
}

static int run(const char *dir, int prefixed) {
  static const char *const lines[] = {"hello", "mutual TLS works",
                                      "goodbye"};
  static const char *const framed[] = {"hello", "two lines\nin one message",
                                       "goodbye"};
  const char *const *msgs = prefixed ? framed : lines;
  char ca[512], server_cert[512], server_key[512], client_cert[512],
      client_key[512], err[256], cn[128];
  tcp_server *server = prefixed ? tcp_server_new_length_prefixed(
                                      TCP_TUTORIAL_PREFIX_BYTES, TCP_TUTORIAL_BYTE_ORDER, 0)
                                : tcp_server_new_fragmented('\n', 0);
  tcp_client *client = prefixed ? tcp_client_new_length_prefixed(
                                      TCP_TUTORIAL_PREFIX_BYTES, TCP_TUTORIAL_BYTE_ORDER, 0)
                                : tcp_client_new_fragmented('\n', 0);
  int rc, port, i, ok = 0;

  pthread_mutex_lock(&mu);
  connected = echoes = disconnected = 0;
  pthread_mutex_unlock(&mu);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(server_cert, sizeof server_cert, "%s/server.pem", dir);
  snprintf(server_key, sizeof server_key, "%s/server.key", dir);
  snprintf(client_cert, sizeof client_cert, "%s/client.pem", dir);
  snprintf(client_key, sizeof client_key, "%s/client.key", dir);

  /* Server: loopback only, a port the system picks, client certs required
   * because a CA is given. */
  tcp_server_set_on_established(server, server_established, server);
  tcp_server_set_on_message(server, server_message, server);
  tcp_server_set_on_closed(server, server_closed, server);
  tcp_server_set_on_error(server, server_error, server);
  tcp_server_set_option_str(server, TCP_OPT_BIND_ADDRESS, "127.0.0.1");
  rc = tls_server_start(server, 0, ca, server_cert, server_key);
  if (rc != TCP_START_OK) {
    tcp_server_last_error(server, err, sizeof err);
    fail("tls_server_start", rc, err);
    goto out;
  }
  port = tcp_server_port(server);
  if (prefixed)
    printf("[server] mutual-TLS echo server listening on 127.0.0.1:%d "
           "(a 4-byte length before each message)\n", port);
  else
    printf("[server] mutual-TLS echo server listening on 127.0.0.1:%d "
           "(messages end with '\\n')\n", port);

  /* Client: trusts the demo CA, presents its own certificate. */
  tcp_client_set_on_message(client, client_message, NULL);
  tcp_client_set_on_closed(client, client_closed, NULL);
  tcp_client_set_on_error(client, client_error, NULL);
  printf("[client] connecting to 127.0.0.1:%d with client.pem\n", port);
  rc = tls_client_start(client, "127.0.0.1", port, ca, client_cert, client_key);
  if (rc != TCP_START_OK) {
    tcp_client_last_error(client, err, sizeof err);
    fail("tls_client_start", rc, err);
    goto out;
  }
  if (tcp_client_server_subj_part(client, TCP_NID_COMMON_NAME, cn, sizeof cn) < 0)
    strcpy(cn, "?");
  printf("[client] connected; the server's certificate CN is \"%s\"\n", cn);
  if (!wait_for(&connected, 1)) {
    fail("waiting for the server to see the client", TCP_ERR_TIMEOUT, NULL);
    goto out;
  }

  /* One line at a time, so the output reads in order. */
  for (i = 0; i < 3; i++) {
    printf("[client] -> \"%s\"\n", msgs[i]);
    tcp_client_send(client, msgs[i], strlen(msgs[i]));
    if (!wait_for(&echoes, i + 1)) {
      fail("waiting for an echo", TCP_ERR_TIMEOUT, NULL);
      goto out;
    }
  }

  printf("[client] stopping\n");
  tcp_client_stop(client);
  if (!wait_for(&disconnected, 1)) {
    fail("waiting for the server to see the client leave", TCP_ERR_TIMEOUT, NULL);
    goto out;
  }
  ok = 1;

out:
  tcp_client_free(client);
  tcp_server_free(server); /* stops it first */
  printf("[server] stopped\n");
  return ok;
}

int main(void) {
  char dir[] = "/tmp/tcpgo-demo-XXXXXX";
  int rc, ok;

  /* Callbacks print from other threads: flush each line as it is done. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("tcpgo %s demo: a mutual-TLS echo server and client on loopback\n\n",
         tcp_version());

  if (!mkdtemp(dir)) {
    perror("demo: mkdtemp");
    return 1;
  }
  rc = tcp_generate_certs(dir, NULL);
  if (rc != 0) {
    fail("tcp_generate_certs", rc, dir);
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 1;
  }
  printf("[setup]  test CA, server and client certificates written to %s\n", dir);

  ok = run(dir, 0);
  if (ok) {
    printf("\n[setup]  again, with length-prefixed messages\n");
    ok = run(dir, 1);
  }

  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  printf("[setup]  removed %s\n\n%s\n", dir, ok ? "demo finished: OK" : "demo FAILED");
  return ok ? 0 : 1;
}
