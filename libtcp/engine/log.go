package engine

import (
	"fmt"
	"sync/atomic"
)

// Log levels (enum tcp_log_level).
const (
	LogError = 1
	LogWarn  = 2
	LogInfo  = 3
	LogDebug = 4
)

type logger struct {
	fn       func(level int, msg string)
	maxLevel int
}

var logSink atomic.Pointer[logger]

// SetLogger sends log lines up to maxLevel to fn; nil stops logging (the
// default: the library prints nothing on its own).
func SetLogger(fn func(level int, msg string), maxLevel int) {
	if fn == nil || maxLevel <= 0 {
		logSink.Store(nil)
		return
	}
	logSink.Store(&logger{fn: fn, maxLevel: maxLevel})
}

// Logf logs one line at level when a logger wants it.
func Logf(level int, format string, args ...any) { logf(level, format, args...) }

func logf(level int, format string, args ...any) {
	l := logSink.Load()
	if l == nil || level > l.maxLevel {
		return
	}
	l.fn(level, fmt.Sprintf(format, args...))
}
