/*
 * test_framing.c -- the framings beyond v2's two (issue 11): length prefix,
 * multi-byte end-of-line, CR/LF/CRLF text lines with overlong parts, fixed
 * records changeable per connection; and their constructors' refusals.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

/* A tcpgo client and server with the same length-prefixed framing echo
 * messages of every size, empty included. */
TEST(length_prefixed_echo_between_tcpgo_ends) {
  server_rec *r = server_rec_new(tcp_server_new_length_prefixed(2, TCP_BIG_ENDIAN, 4000));
  client_rec *cr = client_rec_new(tcp_client_new_length_prefixed(2, TCP_BIG_ENDIAN, 4000), NULL);
  static char big[4000];

  memset(big, 'b', sizeof big);
  r->echo = 1;
  connect_tcp(cr, start_tcp(r->s));
  CHECK_EQ(tcp_client_send(cr->c, "hello", 5), 1);
  CHECK_EQ(tcp_client_send(cr->c, "", 0), 1);
  CHECK_EQ(tcp_client_send(cr->c, big, sizeof big), 1);
  CHECK_EQ(tcp_client_send_ex(cr->c, big, sizeof big + 1), TCP_ERR_MESSAGE_TOO_LONG);
  CHECK_WAIT(cr->m, cr->messages == 3);
  monitor_lock(cr->m);
  CHECK(msg_is(&cr->msgs, 0, "hello"));
  CHECK(msg_is(&cr->msgs, 1, ""));
  CHECK(msg_is_bytes(&cr->msgs, 2, big, sizeof big));
  monitor_unlock(cr->m);
  client_rec_free(cr);
  server_rec_free(r);
}

/* The tutorials' 4-byte little-endian prefix, from a raw peer; a prefix
 * over the maximum closes at once, before any of the message arrives. */
TEST(length_prefix_tutorial_preset_and_early_refusal) {
  server_rec *r = server_rec_new(tcp_server_new_length_prefixed(
      TCP_TUTORIAL_PREFIX_BYTES, TCP_TUTORIAL_BYTE_ORDER, 100));
  server_ext *x = server_ext_new(r, 0);
  unsigned char frame[4 + 3] = {3, 0, 0, 0, 'a', 'b', 'c'};
  unsigned char huge[4] = {0x00, 0x00, 0x00, 0x10}; /* 256 MiB announced */
  int port = start_tcp(r->s), fd = raw_connect(port), end;
  size_t got;

  REQUIRE_EQ(raw_send_all(fd, frame, sizeof frame), 0);
  CHECK_WAIT(&r->m, r->messages == 1);
  {
    int id = server_rec_id(r, 0);
    monitor_lock(&r->m);
    CHECK(msg_is(&CONN(r, id)->msgs, 0, "abc"));
    monitor_unlock(&r->m);
  }
  REQUIRE_EQ(raw_send_all(fd, huge, sizeof huge), 0);
  CHECK(raw_wait_closed(fd, WAIT_MS, &got) == 1);
  (void)end;
  CHECK_WAIT(&r->m, r->closed == 1);
  monitor_lock(&r->m);
  CHECK_EQ(x->reasons[TCP_CLOSE_MESSAGE_TOO_LONG], 1);
  CHECK_EQ(r->last_error_code, TCP_ERR_MESSAGE_TOO_LONG);
  monitor_unlock(&r->m);
  close(fd);
  server_rec_free(r);
  server_ext_free(x);
}

/* An end-of-line of two bytes, one of them NUL, split across writes. */
TEST(eol_with_nul_bytes) {
  server_rec *r = server_rec_new(tcp_server_new_eol("\0\r", 2, 64, TCP_OVERLONG_CLOSE));
  int fd = raw_connect(start_tcp(r->s));
  char got[16];
  int end;

  r->echo = 1;
  REQUIRE_EQ(raw_send_all(fd, "ab\0", 3), 0);
  REQUIRE_EQ(raw_send_all(fd, "\rcd\0\r", 5), 0);
  CHECK_WAIT(&r->m, r->messages == 2);
  {
    int id = server_rec_id(r, 0);
    monitor_lock(&r->m);
    CHECK(msg_is(&CONN(r, id)->msgs, 0, "ab"));
    CHECK(msg_is(&CONN(r, id)->msgs, 1, "cd"));
    monitor_unlock(&r->m);
  }
  CHECK_EQ(raw_read(fd, got, 8, WAIT_MS, &end), 8); /* echoed with the EOL appended */
  CHECK(memcmp(got, "ab\0\rcd\0\r", 8) == 0);
  close(fd);
  server_rec_free(r);
}

/* CR, LF and CRLF all end a line, a CRLF split between reads included. */
TEST(lines_accept_cr_lf_crlf) {
  server_rec *r = server_rec_new(tcp_server_new_lines(NULL, 64, TCP_OVERLONG_CLOSE));
  int fd = raw_connect(start_tcp(r->s)), end;
  char got[32];
  conn_log *c;

  r->echo = 1;
  REQUIRE_EQ(raw_send_all(fd, "a\rb\nc\r\nd\r", 9), 0);
  CHECK_WAIT(&r->m, r->messages >= 3);
  REQUIRE_EQ(raw_send_all(fd, "\ne\n", 3), 0);
  CHECK_WAIT(&r->m, r->messages == 5);
  int id = server_rec_id(r, 0);
  monitor_lock(&r->m);
  c = CONN(r, id);
  CHECK(msg_is(&c->msgs, 0, "a"));
  CHECK(msg_is(&c->msgs, 1, "b"));
  CHECK(msg_is(&c->msgs, 2, "c"));
  CHECK(msg_is(&c->msgs, 3, "d"));
  CHECK(msg_is(&c->msgs, 4, "e"));
  monitor_unlock(&r->m);
  CHECK_EQ(raw_read(fd, got, 15, WAIT_MS, &end), 15); /* sent with CRLF */
  CHECK(memcmp(got, "a\r\nb\r\nc\r\nd\r\ne\r\n", 15) == 0);
  CHECK_EQ(tcp_server_send_ex(r->s, id, "x\ny", 3), TCP_ERR_CONTAINS_DELIMITER);
  close(fd);
  server_rec_free(r);
}

/* An overlong line is delivered in parts flagged TCP_MSG_PARTIAL. */
TEST(lines_overlong_in_parts) {
  server_rec *r = server_rec_new(tcp_server_new_lines(NULL, 4, TCP_OVERLONG_PARTS));
  server_ext *x = server_ext_new(r, 0);
  int fd = raw_connect(start_tcp(r->s));
  conn_log *c;

  REQUIRE_EQ(raw_send_all(fd, "abcdefghij\nok\n", 14), 0);
  CHECK_WAIT(&r->m, r->messages == 4);
  int id = server_rec_id(r, 0);
  monitor_lock(&r->m);
  c = CONN(r, id);
  CHECK(msg_is(&c->msgs, 0, "abcd"));
  CHECK(msg_is(&c->msgs, 1, "efgh"));
  CHECK(msg_is(&c->msgs, 2, "ij"));
  CHECK(msg_is(&c->msgs, 3, "ok"));
  CHECK_EQ(x->conns[0].partial, 2);
  CHECK_EQ(r->closed, 0);
  monitor_unlock(&r->m);
  close(fd);
  server_rec_free(r);
  server_ext_free(x);
}

/* The client's extended message callback sees the same parts and flags;
 * it runs instead of the plain one. */
typedef struct parts_rec {
  monitor m;
  int count, partial, plain;
  char text[64];
} parts_rec;

static void on_client_part(void *ud, const char *data, size_t len, int flags) {
  parts_rec *p = ud;
  monitor_lock(&p->m);
  if (strlen(p->text) + len + 2 < sizeof p->text) {
    strncat(p->text, data, len);
    strcat(p->text, flags & TCP_MSG_PARTIAL ? "+" : "|");
  }
  p->count++;
  p->partial += (flags & TCP_MSG_PARTIAL) != 0;
  monitor_broadcast(&p->m);
  monitor_unlock(&p->m);
}

static void on_client_plain(void *ud, const char *data, size_t len) {
  parts_rec *p = ud;
  (void)data;
  (void)len;
  monitor_lock(&p->m);
  p->plain++;
  monitor_unlock(&p->m);
}

TEST(client_lines_overlong_in_parts) {
  server_rec *r = server_rec_new(tcp_server_new());
  tcp_client *c = tcp_client_new_lines(NULL, 4, TCP_OVERLONG_PARTS);
  parts_rec p;
  int id;

  memset(&p, 0, sizeof p);
  monitor_init(&p.m);
  tcp_client_set_on_message(c, on_client_plain, &p);
  tcp_client_set_on_message_ex(c, on_client_part, &p);
  REQUIRE_EQ(tcp_client_start(c, "127.0.0.1", start_tcp(r->s)), TCP_START_OK);
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(tcp_send_msg(r->s, id, "abcdefghij\nok\n", 14), 1);
  CHECK_WAIT(&p.m, p.count == 4);
  monitor_lock(&p.m);
  CHECK_STR(p.text, "abcd+efgh+ij|ok|");
  CHECK_EQ(p.partial, 2);
  CHECK_EQ(p.plain, 0);
  monitor_unlock(&p.m);
  tcp_client_free(c);
  server_rec_free(r);
  monitor_destroy(&p.m);
}

/* Fixed records; the length of one connection changes while it runs. */
TEST(records_change_length_per_connection) {
  server_rec *r = server_rec_new(tcp_server_new_records(3, 64));
  int port = start_tcp(r->s), fd = raw_connect(port), id;
  conn_log *c;

  REQUIRE_EQ(raw_send_all(fd, "abc", 3), 0);
  CHECK_WAIT(&r->m, r->messages == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(tcp_server_set_record_length(r->s, id, 2), 0);
  CHECK_EQ(tcp_server_set_record_length(r->s, id, 65), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_set_record_length(r->s, id + 99, 2), TCP_ERR_NO_CLIENT);
  REQUIRE_EQ(raw_send_all(fd, "defg", 4), 0);
  CHECK_WAIT(&r->m, r->messages == 3);
  monitor_lock(&r->m);
  c = CONN(r, id);
  CHECK(msg_is(&c->msgs, 0, "abc"));
  CHECK(msg_is(&c->msgs, 1, "de"));
  CHECK(msg_is(&c->msgs, 2, "fg"));
  monitor_unlock(&r->m);
  close(fd);
  server_rec_free(r);
}

TEST(framing_constructors_refuse_bad_arguments) {
  CHECK(tcp_server_new_length_prefixed(3, TCP_BIG_ENDIAN, 0) == NULL);
  CHECK_EQ(tcp_errcode(), TCP_ERR_INVALID_ARG);
  CHECK(tcp_server_new_length_prefixed(1, TCP_BIG_ENDIAN, 300) == NULL); /* 1 byte counts to 255 */
  CHECK(tcp_server_new_length_prefixed(4, 7, 0) == NULL);
  CHECK(tcp_client_new_eol(NULL, 0, 0, TCP_OVERLONG_CLOSE) == NULL);
  CHECK(tcp_server_new_eol("\n", 1, 0, 9) == NULL);
  CHECK(tcp_server_new_records(100, 10) == NULL);
  CHECK(strlen(errmsg_text()) > 0);
  tcp_server *ok = tcp_server_new_records(0, 0);
  CHECK(ok != NULL);
  CHECK_EQ(tcp_errcode(), 0);
  tcp_server_free(ok);
  tcp_server *delim = tcp_server_new_fragmented('\n', 0);
  CHECK_EQ(tcp_server_set_record_length(delim, 1, 4), TCP_ERR_NO_CLIENT);
  tcp_server_free(delim);
}

/* ---- sending: files, scatter-gather, lines ------------------------------- */

typedef struct file_prog {
  monitor m;
  int progress, done, status;
  long long last_sent, total;
} file_prog;

static void on_file_progress(void *ud, int id, long long sent, long long total, int status) {
  file_prog *p = ud;
  (void)id;
  monitor_lock(&p->m);
  if (status == 1) {
    p->progress++;
    p->last_sent = sent;
  } else {
    p->done++;
    p->status = status;
  }
  p->total = total;
  monitor_broadcast(&p->m);
  monitor_unlock(&p->m);
}

/* A file of 3 MiB between two messages, length-prefixed: it arrives whole,
 * in its place, with progress reports and one final status. */
TEST(send_file_in_order_with_progress) {
  enum { SIZE = 3 * 1024 * 1024 + 17 };
  server_rec *r = server_rec_new(tcp_server_new_length_prefixed(4, TCP_BIG_ENDIAN, 8 << 20));
  client_rec *cr = client_rec_new(tcp_client_new_length_prefixed(4, TCP_BIG_ENDIAN, 8 << 20), NULL);
  char dir[FX_PATH], path[FX_PATH + 16];
  file_prog p;
  char *data = malloc(SIZE);
  FILE *f;
  int id, i;

  REQUIRE(data != NULL);
  for (i = 0; i < SIZE; i++) data[i] = (char)(i * 7);
  fx_tempdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/file.bin", dir);
  f = fopen(path, "wb");
  REQUIRE(f != NULL);
  REQUIRE(fwrite(data, 1, SIZE, f) == SIZE);
  fclose(f);
  memset(&p, 0, sizeof p);
  monitor_init(&p.m);
  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(tcp_server_send_line(r->s, id, "before"), 0);
  CHECK_EQ(tcp_server_send_file(r->s, id, path, 0, -1, on_file_progress, &p), 0);
  CHECK_EQ(tcp_server_send_ex(r->s, id, "after", 5), 0);
  CHECK_WAIT(&p.m, p.done == 1);
  CHECK_WAIT(cr->m, cr->messages == 3);
  monitor_lock(cr->m);
  CHECK(msg_is(&cr->msgs, 0, "before"));
  CHECK(msg_is_bytes(&cr->msgs, 1, data, SIZE));
  CHECK(msg_is(&cr->msgs, 2, "after"));
  monitor_unlock(cr->m);
  monitor_lock(&p.m);
  CHECK_EQ(p.status, 0);
  CHECK_GE(p.progress, 3);
  CHECK_EQ(p.last_sent, SIZE);
  CHECK_EQ(p.total, SIZE);
  monitor_unlock(&p.m);
  CHECK_EQ(tcp_server_send_file(r->s, id, "/nonexistent/file", 0, -1, NULL, NULL), TCP_ERR_FILE);
  CHECK_EQ(tcp_server_send_file(r->s, id, path, SIZE, 1, NULL, NULL), TCP_ERR_INVALID_ARG);
  client_rec_free(cr);
  server_rec_free(r);
  remove(path);
  remove_tree(dir);
  free(data);
}

/* Several buffers are one message; a delimiter framing refuses files. */
TEST(sendv_is_one_message_and_delimiters_refuse_files) {
  server_rec *r = server_rec_new(tcp_server_new_fragmented('\n', 64));
  client_rec *cr = client_rec_new(tcp_client_new_fragmented('\n', 64), NULL);
  tcp_iovec iov[3] = {{"ab", 2}, {NULL, 0}, {"cd", 2}};
  int id;

  connect_tcp(cr, start_tcp(r->s));
  CHECK_WAIT(&r->m, r->established == 1);
  id = server_rec_id(r, 0);
  CHECK_EQ(tcp_server_sendv(r->s, id, iov, 3), 0);
  CHECK_EQ(tcp_server_sendv(r->s, id, NULL, 2), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_server_send_file(r->s, id, "/etc/hostname", 0, -1, NULL, NULL), TCP_ERR_INVALID_ARG);
  CHECK_EQ(tcp_client_send_line(cr->c, "up"), 0);
  CHECK_WAIT(cr->m, cr->messages == 1);
  CHECK_WAIT(&r->m, r->messages == 1);
  monitor_lock(cr->m);
  CHECK(msg_is(&cr->msgs, 0, "abcd"));
  monitor_unlock(cr->m);
  client_rec_free(cr);
  server_rec_free(r);
}

const test_case framing_tests[] = {
    TEST_ENTRY(send_file_in_order_with_progress),
    TEST_ENTRY(sendv_is_one_message_and_delimiters_refuse_files),
    TEST_ENTRY(length_prefixed_echo_between_tcpgo_ends),
    TEST_ENTRY(length_prefix_tutorial_preset_and_early_refusal),
    TEST_ENTRY(eol_with_nul_bytes),
    TEST_ENTRY(lines_accept_cr_lf_crlf),
    TEST_ENTRY(lines_overlong_in_parts),
    TEST_ENTRY(client_lines_overlong_in_parts),
    TEST_ENTRY(records_change_length_per_connection),
    TEST_ENTRY(framing_constructors_refuse_bad_arguments),
    TEST_END};
