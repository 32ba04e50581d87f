/*
 * harness.h -- a tiny test harness for tcpgo's C tests.
 *
 * Each test is a void function registered in a NULL-terminated table per
 * source file (see TEST, TEST_ENTRY, TEST_END). The runner (harness.c) runs
 * every test in its own process (posix_spawn of itself) so that a test that
 * crashes, hangs or dies of a signal is reported as one failure and cannot
 * take the others down; inside that process alarm() bounds the test's time.
 * The runner prints "N passed, N failed" as its last line and exits nonzero
 * when anything failed.
 *
 * Synchronisation with library threads goes through a monitor (mutex plus
 * condition variable on CLOCK_MONOTONIC) and WAIT_UNTIL / CHECK_WAIT, which
 * wait for a condition with a timeout -- never a sleep.
 */
#ifndef TCPGO_TEST_HARNESS_H
#define TCPGO_TEST_HARNESS_H

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- registration ---------------------------------------------------- */

typedef struct test_case {
  const char *name;
  void (*fn)(void);
  int timeout_s; /* 0 = the default (H_DEFAULT_TIMEOUT_S) */
} test_case;

#define H_DEFAULT_TIMEOUT_S 20

#define TEST(name) static void name(void)
#define TEST_ENTRY(name) { #name, name, 0 }
#define TEST_ENTRY_TIMEOUT(name, secs) { #name, name, secs }
#define TEST_END { NULL, NULL, 0 }

/* ---- checks ------------------------------------------------------------ */

/* Record a failure (the test goes on) / record it and end the test now. */
void h_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void h_abort(void) __attribute__((noreturn));

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) h_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);            \
  } while (0)

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      h_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                     \
      h_abort();                                                            \
    }                                                                       \
  } while (0)

/* Integer comparison that prints both values on failure. */
#define H_CMP(fatal, a, op, b)                                              \
  do {                                                                      \
    long long h_a_ = (long long)(a), h_b_ = (long long)(b);                 \
    if (!(h_a_ op h_b_)) {                                                  \
      h_fail(__FILE__, __LINE__, "%s %s %s  (%lld vs %lld)", #a, #op, #b,   \
             h_a_, h_b_);                                                   \
      if (fatal) h_abort();                                                 \
    }                                                                       \
  } while (0)

#define CHECK_EQ(a, b) H_CMP(0, a, ==, b)
#define CHECK_NE(a, b) H_CMP(0, a, !=, b)
#define CHECK_GT(a, b) H_CMP(0, a, >, b)
#define CHECK_GE(a, b) H_CMP(0, a, >=, b)
#define CHECK_LT(a, b) H_CMP(0, a, <, b)
#define REQUIRE_EQ(a, b) H_CMP(1, a, ==, b)
#define REQUIRE_GT(a, b) H_CMP(1, a, >, b)

#define CHECK_STR(a, b)                                                     \
  do {                                                                      \
    const char *h_a_ = (a), *h_b_ = (b);                                    \
    if (!h_a_ || !h_b_ || strcmp(h_a_, h_b_) != 0)                          \
      h_fail(__FILE__, __LINE__, "%s == %s  (\"%s\" vs \"%s\")", #a, #b,    \
             h_a_ ? h_a_ : "(null)", h_b_ ? h_b_ : "(null)");               \
  } while (0)

/* ---- waiting ----------------------------------------------------------- */

typedef struct monitor {
  pthread_mutex_t mu;
  pthread_cond_t cv;
} monitor;

void monitor_init(monitor *m);
void monitor_destroy(monitor *m);
void monitor_lock(monitor *m);
void monitor_unlock(monitor *m);
void monitor_broadcast(monitor *m); /* call with the lock held */
/* Wait (lock held) until woken or the deadline; 0 or ETIMEDOUT. */
int monitor_wait(monitor *m, const struct timespec *deadline);

void deadline_in(struct timespec *ts, int ms);
long long now_ms(void);

/* Default time a test waits for something the library should do "soon". */
#define WAIT_MS 5000

/* ok = whether expr (evaluated with the monitor held) became true within
 * ms milliseconds. */
#define WAIT_UNTIL(ok, mon, expr, ms)                                       \
  do {                                                                      \
    struct timespec h_dl_;                                                  \
    deadline_in(&h_dl_, (ms));                                              \
    monitor_lock(mon);                                                      \
    while (!(expr) && monitor_wait((mon), &h_dl_) == 0) {                   \
    }                                                                       \
    (ok) = (expr) ? 1 : 0;                                                  \
    monitor_unlock(mon);                                                    \
  } while (0)

#define H_WAIT(fatal, mon, expr, ms)                                        \
  do {                                                                      \
    int h_ok_;                                                              \
    WAIT_UNTIL(h_ok_, mon, expr, ms);                                       \
    if (!h_ok_) {                                                           \
      h_fail(__FILE__, __LINE__, "timed out after %d ms waiting for %s",    \
             (int)(ms), #expr);                                             \
      if (fatal) h_abort();                                                 \
    }                                                                       \
  } while (0)

#define CHECK_WAIT(mon, expr) H_WAIT(0, mon, expr, WAIT_MS)
#define REQUIRE_WAIT(mon, expr) H_WAIT(1, mon, expr, WAIT_MS)
#define CHECK_WAIT_MS(mon, expr, ms) H_WAIT(0, mon, expr, ms)

/* Evaluate a statement with the monitor held. */
#define LOCKED(mon, stmt)                                                   \
  do {                                                                      \
    monitor_lock(mon);                                                      \
    stmt;                                                                   \
    monitor_unlock(mon);                                                    \
  } while (0)

/* ---- runner ------------------------------------------------------------ */

/* setup runs once in the runner before the first test (nonzero = abort),
 * teardown once after the last; neither runs in the test processes. */
typedef struct h_hooks {
  int (*setup)(void);
  void (*teardown)(void);
} h_hooks;

/* main() of the test program: suites is a NULL-terminated list of
 * TEST_END-terminated tables. */
int h_run(int argc, char **argv, const test_case *const *suites,
          const h_hooks *hooks);

#endif /* TCPGO_TEST_HARNESS_H */
