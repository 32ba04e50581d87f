/*
 * epoll_echo_server -- the C baseline of tcpgo's echo benchmark.
 *
 * One thread, epoll edge-triggered, non-blocking sockets, no library: what a
 * careful C programmer writes by hand. Framing is the same as the tcpgo
 * servers': messages end with '\n'; every complete message is handed to
 * on_message(), which queues the reply (the message and its '\n') in the
 * output of the current read; after each read() the output goes out with
 * one write() ("inline"). What the socket does not take is kept per
 * connection and written on EPOLLOUT; while such a backlog is above
 * OUT_PAUSE bytes the connection is not read (back-pressure).
 *
 * An idle connection holds only its struct conn (no buffers): a partial
 * message or a write backlog is allocated while it exists.
 *
 *   epoll_echo_server [-addr 127.0.0.1] [-port 0]
 *
 * The first line on stdout is "PORT n". The server runs until stdin reaches
 * end of file or SIGTERM/SIGINT arrives, then prints a one-line summary on
 * stderr. RLIMIT_NOFILE is raised to its hard limit at start.
 */
#define _GNU_SOURCE /* accept4, memrchr */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
  READ_CHUNK = 64 * 1024,
  MAX_MESSAGE = 16 * 1024 * 1024, /* tcpgo's default maximum */
  OUT_PAUSE = 4 * 1024 * 1024,    /* stop reading above this backlog */
  MAX_EVENTS = 256,
};

struct conn {
  int fd;
  int paused;      /* not reading: the write backlog is too large */
  char *in;        /* start of a message whose '\n' has not arrived */
  size_t in_len, in_cap;
  char *out;       /* bytes the socket did not take yet */
  size_t out_off, out_len, out_cap;
};

/* The output staged during one read: replies of every message it held. */
static struct {
  char *buf;
  size_t len, cap;
} g_stage;

static char g_rbuf[READ_CHUNK];
static volatile sig_atomic_t g_stop;
static unsigned long long g_conns, g_msgs, g_dropped;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* Grow *buf to hold at least need bytes. */
static void reserve(char **buf, size_t *cap, size_t need) {
  if (need <= *cap)
    return;
  size_t n = *cap ? *cap : 4096;
  while (n < need)
    n *= 2;
  char *p = realloc(*buf, n);
  if (p == NULL)
    die("realloc");
  *buf = p;
  *cap = n;
}

static void stage(const char *data, size_t len) {
  reserve(&g_stage.buf, &g_stage.cap, g_stage.len + len);
  memcpy(g_stage.buf + g_stage.len, data, len);
  g_stage.len += len;
}

/* The application: echo the message (framing appends the '\n' again). */
static void on_message(const char *msg, size_t len) {
  g_msgs++;
  stage(msg, len);
  stage("\n", 1);
}

static void close_conn(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->in);
  free(c->out);
  free(c);
}

/* Splits data into messages; keeps an unfinished one in c->in. Returns -1
 * when a message is longer than MAX_MESSAGE. */
static int frame(struct conn *c, const char *data, size_t len) {
  const char *p = data, *end = data + len;
  if (c->in_len > 0) {
    const char *nl = memchr(p, '\n', len);
    size_t part = nl ? (size_t)(nl - p) : len;
    if (c->in_len + part > MAX_MESSAGE)
      return -1;
    reserve(&c->in, &c->in_cap, c->in_len + part);
    memcpy(c->in + c->in_len, p, part);
    c->in_len += part;
    if (nl == NULL)
      return 0;
    on_message(c->in, c->in_len);
    free(c->in); /* idle connections hold no buffer */
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    p = nl + 1;
  }
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) {
      size_t rest = (size_t)(end - p);
      if (rest > MAX_MESSAGE)
        return -1;
      reserve(&c->in, &c->in_cap, rest);
      memcpy(c->in, p, rest);
      c->in_len = rest;
      break;
    }
    on_message(p, (size_t)(nl - p));
    p = nl + 1;
  }
  return 0;
}

/* Appends to the connection's write backlog. */
static void keep(struct conn *c, const char *data, size_t len) {
  if (c->out_off > 0 && c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
  reserve(&c->out, &c->out_cap, c->out_len + len);
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
}

/* Writes the staged replies: inline when nothing is queued before them. */
static int flush_stage(struct conn *c) {
  const char *p = g_stage.buf;
  size_t len = g_stage.len;
  g_stage.len = 0;
  if (len == 0)
    return 0;
  if (c->out_len > c->out_off) { /* keep the order behind the backlog */
    keep(c, p, len);
    return 0;
  }
  while (len > 0) {
    ssize_t n = write(c->fd, p, len);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      keep(c, p, len);
      break;
    } else {
      return -1;
    }
  }
  return 0;
}

/* Writes the backlog; frees it once empty. Returns -1 on a socket error. */
static int drain(struct conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n > 0)
      c->out_off += (size_t)n;
    else if (n < 0 && errno == EINTR)
      continue;
    else if (n < 0 && errno == EAGAIN)
      return 0;
    else
      return -1;
  }
  free(c->out);
  c->out = NULL;
  c->out_off = c->out_len = c->out_cap = 0;
  return 0;
}

/* Reads until read() says EAGAIN (the usual edge-triggered loop, as the Go
 * runtime's netpoller does too). Returns -1 to close. */
static int read_all(struct conn *c) {
  for (;;) {
    if (c->out_len - c->out_off > OUT_PAUSE) {
      c->paused = 1; /* resumed by drain_and_resume */
      return 0;
    }
    ssize_t n = read(c->fd, g_rbuf, sizeof g_rbuf);
    if (n > 0) {
      if (frame(c, g_rbuf, (size_t)n) < 0) {
        g_stage.len = 0;
        g_dropped++;
        return -1;
      }
      if (flush_stage(c) < 0)
        return -1;
    } else if (n == 0) {
      return -1; /* peer closed */
    } else if (errno == EAGAIN) {
      return 0;
    } else if (errno != EINTR) {
      return -1;
    }
  }
}

static int drain_and_resume(struct conn *c) {
  if (drain(c) < 0)
    return -1;
  if (c->paused && c->out_len - c->out_off <= OUT_PAUSE) {
    c->paused = 0;
    return read_all(c);
  }
  return 0;
}

static void accept_all(int ep, int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN) {
        static int reported;
        if (reported++ < 5)
          perror("epoll_echo_server: accept");
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
      die("calloc");
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close(fd);
      free(c);
      continue;
    }
    g_conns++;
  }
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int usage(void) {
  fprintf(stderr, "usage: epoll_echo_server [-addr A] [-port N]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1";
  int port = 0;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc)
      return usage();
    if (strcmp(argv[i], "-addr") == 0)
      addr = argv[i + 1];
    else if (strcmp(argv[i], "-port") == 0)
      port = atoi(argv[i + 1]);
    else
      return usage();
  }

  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
    fprintf(stderr, "epoll_echo_server: bad address %s\n", addr);
    return 2;
  }
  if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0)
    die("bind");
  if (listen(lfd, 4096) < 0)
    die("listen");
  socklen_t slen = sizeof sin;
  if (getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0)
    die("getsockname");

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1");
  /* data.ptr NULL = the listener; &g_stop = stdin (level-triggered). */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
    die("epoll_ctl listener");
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = (void *)&g_stop};
  int watch_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &sev) == 0;
  (void)watch_stdin; /* stdin a file or /dev/null: only a signal stops us */

  printf("PORT %d\n", ntohs(sin.sin_port));
  fflush(stdout);

  struct epoll_event events[MAX_EVENTS];
  while (!g_stop) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      void *ptr = events[i].data.ptr;
      if (ptr == NULL) {
        accept_all(ep, lfd);
        continue;
      }
      if (ptr == (void *)&g_stop) {
        char buf[256];
        ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
          g_stop = 1;
        continue;
      }
      struct conn *c = ptr;
      uint32_t e = events[i].events;
      int rc = 0;
      if (e & EPOLLOUT && c->out_len > c->out_off)
        rc = drain_and_resume(c);
      if (rc == 0 && e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR) && !c->paused)
        rc = read_all(c);
      if (rc < 0 || (e & EPOLLERR))
        close_conn(c);
    }
  }
  fprintf(stderr, "epoll_echo_server: stopped; %llu connections, %llu messages, %llu dropped\n",
          g_conns, g_msgs, g_dropped);
  return 0;
}
