/*
 * harness.c -- the test runner and the waiting helpers of harness.h.
 *
 * The runner spawns itself once per test ("--child NAME") rather than
 * forking: the Go runtime inside libtcpserver.so does not survive fork(),
 * while fork+exec (posix_spawn) is fine.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *current_test = "?";
static int failures;

void h_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  failures++;
  fprintf(stderr, "    %s: %s:%d: ", current_test, file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

void h_abort(void) {
  fflush(stdout);
  fflush(stderr);
  /* _exit: library threads may still be running callbacks that point at
   * this test's stack; do not run atexit handlers under them. */
  _exit(1);
}

/* ---- monitor ------------------------------------------------------------ */

void monitor_init(monitor *m) {
  pthread_condattr_t ca;
  pthread_mutex_init(&m->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&m->cv, &ca);
  pthread_condattr_destroy(&ca);
}

void monitor_destroy(monitor *m) {
  pthread_cond_destroy(&m->cv);
  pthread_mutex_destroy(&m->mu);
}

void monitor_lock(monitor *m) { pthread_mutex_lock(&m->mu); }
void monitor_unlock(monitor *m) { pthread_mutex_unlock(&m->mu); }
void monitor_broadcast(monitor *m) { pthread_cond_broadcast(&m->cv); }

int monitor_wait(monitor *m, const struct timespec *deadline) {
  int rc = pthread_cond_timedwait(&m->cv, &m->mu, deadline);
  return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

void deadline_in(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- runner ------------------------------------------------------------- */

static int run_in_this_process(const test_case *t) {
  current_test = t->name;
  alarm((unsigned)(t->timeout_s ? t->timeout_s : H_DEFAULT_TIMEOUT_S));
  t->fn();
  fflush(stdout);
  fflush(stderr);
  _exit(failures ? 1 : 0);
}

/* Second line of defence: kill a child that outlives its alarm (for
 * instance because SIGALRM got blocked). */
typedef struct watchdog {
  monitor m;
  pid_t pid;
  int done;
  int seconds;
  int fired;
} watchdog;

static void *watchdog_main(void *arg) {
  watchdog *w = arg;
  int ok;
  WAIT_UNTIL(ok, &w->m, w->done, w->seconds * 1000);
  if (!ok) {
    w->fired = 1;
    kill(w->pid, SIGKILL);
  }
  return NULL;
}

/* Returns 1 when the test passed. */
static int spawn_test(const test_case *t, char *reason, size_t reason_len) {
  char *args[] = {"tcpgo_c_tests", "--child", (char *)t->name, NULL};
  posix_spawnattr_t attr;
  sigset_t defaults, empty;
  watchdog w;
  pthread_t tid;
  pid_t pid;
  int st = 0, rc;

  /* Every test starts with default dispositions and nothing blocked, as a
   * plain C program would (the SIGPIPE and SIGINT tests rely on it). */
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGALRM);
  sigemptyset(&empty);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  fflush(stdout);
  fflush(stderr);
  rc = posix_spawn(&pid, "/proc/self/exe", NULL, &attr, args, environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    snprintf(reason, reason_len, "posix_spawn: %s", strerror(rc));
    return 0;
  }

  monitor_init(&w.m);
  w.pid = pid;
  w.done = 0;
  w.fired = 0;
  w.seconds = (t->timeout_s ? t->timeout_s : H_DEFAULT_TIMEOUT_S) + 10;
  pthread_create(&tid, NULL, watchdog_main, &w);

  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  monitor_lock(&w.m);
  w.done = 1;
  monitor_broadcast(&w.m);
  monitor_unlock(&w.m);
  pthread_join(tid, NULL);
  monitor_destroy(&w.m);

  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
  if (w.fired)
    snprintf(reason, reason_len, "hung: killed by the watchdog");
  else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
    snprintf(reason, reason_len, "timed out (alarm)");
  else if (WIFSIGNALED(st))
    snprintf(reason, reason_len, "killed by signal %d (%s)", WTERMSIG(st),
             strsignal(WTERMSIG(st)));
  else
    snprintf(reason, reason_len, "exit status %d", WEXITSTATUS(st));
  return 0;
}

/* Ctrl-C or kill of the runner: finish the current test, clean up (the
 * fixtures hold private keys), report. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) { interrupted = sig; }

static void catch_interrupts(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static int selected(const test_case *t, int argc, char **argv) {
  int i;
  if (argc <= 1) return 1;
  for (i = 1; i < argc; i++)
    if (strstr(t->name, argv[i])) return 1;
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: tcpgo_c_tests [-l] [WORD...]\n"
          "  Runs every test (or those whose name contains a WORD), each in\n"
          "  its own process. -l lists the tests.\n");
}

int h_run(int argc, char **argv, const test_case *const *suites,
          const h_hooks *hooks) {
  const test_case *const *s;
  const test_case *t;
  int passed = 0, failed = 0;

  if (argc == 3 && strcmp(argv[1], "--child") == 0) {
    for (s = suites; *s; s++)
      for (t = *s; t->name; t++)
        if (strcmp(t->name, argv[2]) == 0) return run_in_this_process(t);
    fprintf(stderr, "no test named %s\n", argv[2]);
    return 2;
  }
  if (argc == 2 && strcmp(argv[1], "-l") == 0) {
    for (s = suites; *s; s++)
      for (t = *s; t->name; t++) printf("%s\n", t->name);
    return 0;
  }
  if (argc >= 2 && argv[1][0] == '-') {
    usage();
    return 2;
  }

  catch_interrupts();
  if (hooks && hooks->setup && hooks->setup() != 0) {
    fprintf(stderr, "test setup failed\n");
    printf("0 passed, 1 failed\n");
    return 1;
  }
  for (s = suites; *s && !interrupted; s++) {
    for (t = *s; t->name && !interrupted; t++) {
      char reason[256] = "";
      long long t0;
      int ok;
      if (!selected(t, argc, argv)) continue;
      t0 = now_ms();
      ok = spawn_test(t, reason, sizeof reason);
      printf("%-4s %-44s %6lld ms%s%s\n", ok ? "ok" : "FAIL", t->name,
             now_ms() - t0, ok ? "" : "  ", reason);
      if (ok)
        passed++;
      else
        failed++;
    }
  }
  if (hooks && hooks->teardown) hooks->teardown();
  if (interrupted) printf("interrupted by signal %d\n", (int)interrupted);
  printf("%d passed, %d failed\n", passed, failed);
  fflush(stdout);
  return failed || interrupted ? 1 : 0;
}
