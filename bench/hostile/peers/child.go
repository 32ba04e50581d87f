package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// libStats mirrors tcp_server_stats as the server prints it.
type libStats struct {
	Active          uint64 `json:"active"`
	Established     uint64 `json:"established"`
	Accepted        uint64 `json:"accepted"`
	Refused         uint64 `json:"refused"`
	RefusedLimit    uint64 `json:"refused_limit"`
	HandshakeFailed uint64 `json:"handshake_failed"`
	TimedOut        uint64 `json:"timed_out"`
	ClosedForLimits uint64 `json:"closed_for_limits"`
	AcceptErrors    uint64 `json:"accept_errors"`
	BytesIn         uint64 `json:"bytes_in"`
	BytesOut        uint64 `json:"bytes_out"`
	MsgsIn          uint64 `json:"msgs_in"`
	MsgsOut         uint64 `json:"msgs_out"`
	MemoryUsed      uint64 `json:"memory_used"`
	Error           int    `json:"error,omitempty"`
}

// account is one server handle's own record of the events it got.
type account struct {
	Name              string            `json:"name"`
	Port              int               `json:"port"`
	Established       uint64            `json:"established"`
	Closed            uint64            `json:"closed"`
	Open              int64             `json:"open"`
	Messages          uint64            `json:"messages"`
	SlowMessages      uint64            `json:"slow_messages"`
	SendRefused       uint64            `json:"send_refused"`
	CallbacksRunning  int               `json:"callbacks_running"`
	CallbacksPeak     int               `json:"callbacks_peak"`
	SendRefusedByCode map[string]uint64 `json:"send_refused_by_code"`
	ErrorsByCode      map[string]uint64 `json:"errors_by_code"`
	ReasonsKnown      bool              `json:"reasons_known"`
	ClosedByReason    map[string]uint64 `json:"closed_by_reason"`
	Anomalies         uint64            `json:"anomalies"`
	DupEstablished    uint64            `json:"dup_established"`
	ClosedUnseen      uint64            `json:"closed_unseen"`
	DupClosed         uint64            `json:"dup_closed"`
	MessageOutside    uint64            `json:"message_outside"`
	Untracked         uint64            `json:"untracked"`
	Lib               *libStats         `json:"lib"`
}

// serverStats is one stats line of the server.
type serverStats struct {
	Final            bool      `json:"final"`
	TMs              int64     `json:"t_ms"`
	RSSKB            int64     `json:"rss_kb"`
	HWMKB            int64     `json:"hwm_kb"`
	Threads          int       `json:"threads"`
	FDs              int       `json:"fds"`
	CallbacksRunning int       `json:"callbacks_running"`
	CallbacksPeak    int       `json:"callbacks_peak"`
	Servers          []account `json:"servers"`
}

func (s *serverStats) server(name string) *account {
	for i := range s.Servers {
		if s.Servers[i].Name == name {
			return &s.Servers[i]
		}
	}
	return nil
}

// child is a running hostile_server.
type child struct {
	cmd     *exec.Cmd
	Pid     int
	stdin   io.WriteCloser
	Ports   map[string]int    // "PORT", "TLSPORT"
	Options []json.RawMessage // what the library said to each -o
	lines   chan serverStats
	Final   *serverStats
	exited  chan struct{}
	waitErr error
	reqMu   sync.Mutex
}

var (
	childrenMu sync.Mutex
	children   = map[int]*exec.Cmd{}
)

// killChildren kills the process group of every server still running.
func killChildren() {
	childrenMu.Lock()
	defer childrenMu.Unlock()
	for pid := range children {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// spawner starts processes from one OS thread that never exits, because
// Pdeathsig fires when the thread that forked the child ends, not the
// process: so the server dies with us even if we are killed with SIGKILL.
var spawnReq = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread()
		for f := range spawnReq {
			f()
		}
	}()
}

// startServer runs path with args and waits for its port line(s).
func startServer(path string, args []string, wantTLS bool) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	spawnReq <- func() { done <- cmd.Start() }
	if err := <-done; err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	childrenMu.Lock()
	children[cmd.Process.Pid] = cmd
	childrenMu.Unlock()

	c := &child{cmd: cmd, Pid: cmd.Process.Pid, stdin: stdin, Ports: map[string]int{},
		lines: make(chan serverStats, 16), exited: make(chan struct{})}
	ready := make(chan struct{})
	linesDone := make(chan struct{})
	go func() {
		c.readLines(stdout, ready, wantTLS)
		close(linesDone)
	}()
	go func() {
		<-linesDone // Wait closes stdout: read it to the end first
		c.waitErr = cmd.Wait()
		childrenMu.Lock()
		delete(children, c.Pid)
		childrenMu.Unlock()
		close(c.exited)
	}()
	select {
	case <-ready:
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("%s exited before listening: %v", path, c.waitErr)
	case <-time.After(20 * time.Second):
		c.kill()
		return nil, fmt.Errorf("%s printed no port within 20 s", path)
	}
}

func (c *child) readLines(r io.Reader, ready chan struct{}, wantTLS bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "PORT "), strings.HasPrefix(line, "TLSPORT "):
			k, v, _ := strings.Cut(line, " ")
			n, _ := strconv.Atoi(v)
			c.Ports[k] = n
			if !signalled && c.Ports["PORT"] > 0 && (!wantTLS || c.Ports["TLSPORT"] > 0) {
				signalled = true
				close(ready)
			}
		case strings.HasPrefix(line, `{"options"`):
			c.Options = append(c.Options, json.RawMessage(line))
		case strings.HasPrefix(line, `{"stats"`):
			var st serverStats
			if err := json.Unmarshal([]byte(line), &st); err != nil {
				fmt.Fprintf(os.Stderr, "peers: bad stats line: %v\n", err)
				continue
			}
			if st.Final {
				c.Final = &st
				continue
			}
			select {
			case c.lines <- st:
			default: // nobody asked: drop
			}
		default:
			fmt.Fprintf(os.Stderr, "server: %s\n", line)
		}
	}
}

// Stats asks the server for a stats line.
func (c *child) Stats(timeout time.Duration) (*serverStats, error) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	for len(c.lines) > 0 { // stale answers of requests that timed out
		<-c.lines
	}
	if _, err := io.WriteString(c.stdin, "stats\n"); err != nil {
		return nil, err
	}
	select {
	case st := <-c.lines:
		return &st, nil
	case <-c.exited:
		return nil, errors.New("server exited")
	case <-time.After(timeout):
		return nil, fmt.Errorf("no stats line within %v", timeout)
	}
}

// Alive reports whether the server still runs.
func (c *child) Alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// ExitText describes how the server ended ("" while it runs).
func (c *child) ExitText() string {
	if c.Alive() {
		return ""
	}
	if c.waitErr == nil {
		return "exit status 0"
	}
	return c.waitErr.Error()
}

// Stop closes the server's stdin (it stops its servers, prints its final
// line and exits) and waits up to timeout; then kills it. It returns the
// final stats line, if one came.
func (c *child) Stop(timeout time.Duration) (*serverStats, error) {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(timeout):
		c.kill()
		<-c.exited
		return c.Final, fmt.Errorf("server did not stop within %v: killed", timeout)
	}
	if c.waitErr != nil {
		return c.Final, fmt.Errorf("server: %v", c.waitErr)
	}
	if c.Final == nil {
		return nil, errors.New("server printed no final stats line")
	}
	return c.Final, nil
}

func (c *child) kill() {
	_ = syscall.Kill(-c.Pid, syscall.SIGKILL)
}
