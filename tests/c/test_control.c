/* test_control.c -- connection control, flow control (issue 9). */
#include "util.h"

const test_case control_tests[] = {TEST_END};
