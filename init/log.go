package boot

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Syslog levels, as /dev/kmsg takes them.
const (
	levelErr   = 3
	levelWarn  = 4
	levelInfo  = 6
	levelDebug = 7
)

// Logger writes the boot's messages to the console, to the kernel log
// (/dev/kmsg, so dmesg shows them) and to the boot log file. The console
// gets every line from us, in order; the kernel would print a record
// whose level is below the console log level on the console itself, out
// of order with ours and a second time, so such a record goes to the
// kernel log at the console log level instead (an error shows as a
// warning in dmesg when loglevel=4).
type Logger struct {
	mu       sync.Mutex
	console  io.Writer
	kmsg     io.Writer
	file     io.Writer
	backlog  bytes.Buffer // what was logged before the boot log file opened
	debug    bool
	printk   string // /proc/sys/kernel/printk, to read the console log level
	stampLog bool   // prefix boot log lines with the time since boot
}

// NewLogger returns a logger that writes to console only, until
// AttachKmsg and AttachFile are called.
func NewLogger(console io.Writer) *Logger {
	return &Logger{console: console, printk: "/proc/sys/kernel/printk", stampLog: true}
}

// SetDebug turns debug messages on or off.
func (l *Logger) SetDebug(on bool) {
	l.mu.Lock()
	l.debug = on
	l.mu.Unlock()
}

// AttachKmsg starts copying messages to the kernel log.
func (l *Logger) AttachKmsg(w io.Writer) {
	l.mu.Lock()
	l.kmsg = w
	l.mu.Unlock()
}

// AttachFile starts the boot log file, beginning with what was logged
// before it opened.
func (l *Logger) AttachFile(w io.Writer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := w.Write(l.backlog.Bytes()); err != nil {
		return err
	}
	l.backlog.Reset()
	l.file = w
	return nil
}

func (l *Logger) debugOn() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.debug
}

// Infof logs a message.
func (l *Logger) Infof(format string, args ...any) { l.log(levelInfo, "kurma: ", format, args...) }

// Warnf logs something that went wrong without stopping anything.
func (l *Logger) Warnf(format string, args ...any) {
	l.log(levelWarn, "kurma: warning: ", format, args...)
}

// Errorf logs an error.
func (l *Logger) Errorf(format string, args ...any) {
	l.log(levelErr, "kurma: error: ", format, args...)
}

// Debugf logs a message when debugging is on (kurma.debug=1).
func (l *Logger) Debugf(format string, args ...any) {
	if l.debugOn() {
		l.log(levelDebug, "kurma-debug: ", format, args...)
	}
}

func (l *Logger) log(level int, prefix, format string, args ...any) {
	msg := prefix + fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.console, msg+"\n") // the console is all we have to report on
	if l.kmsg != nil {
		// One write is one kernel log record.
		_, _ = fmt.Fprintf(l.kmsg, "<%d>%s\n", max(level, l.consoleLevel()), msg) // the console has it
	}
	line := msg + "\n"
	if l.stampLog {
		line = uptimeStamp() + " " + line
	}
	if l.file != nil {
		_, _ = io.WriteString(l.file, line) // the console and kmsg have it
	} else {
		l.backlog.WriteString(line)
	}
}

// consoleLevel reads the console log level: the kernel prints records of
// a lower level on the console itself.
func (l *Logger) consoleLevel() int {
	data, err := os.ReadFile(l.printk)
	if err != nil {
		return 0
	}
	f := bytes.Fields(data)
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.Atoi(string(f[0]))
	if err != nil {
		return 0
	}
	return n
}

// Uptime returns the time since the kernel started, from /proc/uptime.
func Uptime() (time.Duration, error) {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(data)
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/uptime: empty")
	}
	s, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/uptime: %w", err)
	}
	return time.Duration(s * float64(time.Second)), nil
}

func uptimeStamp() string {
	d, err := Uptime()
	if err != nil {
		return "[        ]"
	}
	return fmt.Sprintf("[%8.3f]", d.Seconds())
}
