/*
 * compat_link.c -- linked with -ltcpserver -ltcpclient -ltlsserver
 * -ltlsclient, the flags TCP_ServerClient v2 users have. All four names
 * are the same library, so this must link, run, and load one Go runtime
 * (checked with ldd by mk/c.mk).
 */
#include <stdio.h>
#include <string.h>

#include "tcpgo.h"

int main(void) {
  tcp_server *s = tcp_server_new();
  tcp_client *c = tcp_client_new();
  int ok = s && c && strcmp(tcp_version(), TCPGO_VERSION) == 0 &&
           tcp_version_number() == TCPGO_VERSION_NUMBER;
  tcp_client_free(c);
  tcp_server_free(s);
  printf("compat link: tcpgo %s %s\n", tcp_version(), ok ? "ok" : "MISMATCH");
  return ok ? 0 : 1;
}
