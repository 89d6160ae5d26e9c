package stage

import (
	"errors"
	"os"
	"sync"
	"time"
)

// logFile is an app's log: what its processes write to stdout and stderr.
// It holds at most max bytes: when the current file would pass half of
// it, it becomes NAME.1 (replacing the previous one) and a new file is
// started, so a runaway app cannot fill the disk. The file is created
// with the first output: an app that writes nothing costs no file.
type logFile struct {
	mu     sync.Mutex
	path   string
	max    int64
	f      *os.File
	size   int64
	r      *os.File      // the pipe copyFrom reads
	done   chan struct{} // closed when copyFrom has seen the end of r
	paused chan struct{} // copyFrom stopped (see pause)
}

func newLog(path string, max int64) *logFile {
	return &logFile{path: path, max: max, done: make(chan struct{}), paused: make(chan struct{}, 1)}
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	n := len(p)
	half := l.max / 2
	for len(p) > 0 {
		if l.size >= half {
			if err := l.rotate(); err != nil {
				return n - len(p), err
			}
		}
		chunk := p
		if room := half - l.size; int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		w, err := l.f.Write(chunk)
		l.size += int64(w)
		p = p[w:]
		if err != nil {
			return n - len(p), err
		}
	}
	return n, nil
}

func (l *logFile) rotate() error {
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	l.f.Close()
	l.f, l.size = f, 0
	return nil
}

// copyFrom copies r into the log until r ends (every writer closed), in
// small reads: the init must stay small. A read deadline makes it stop
// (see pause); what it read is always written first.
func (l *logFile) copyFrom(r *os.File) {
	l.r = r
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = l.Write(buf[:n]) // the app's output is lost only if the log cannot be written
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			l.paused <- struct{}{}
			return // the init is being replaced: the new one reads on
		}
		if err != nil {
			break
		}
	}
	l.mu.Lock()
	if l.f != nil {
		l.f.Close()
	}
	l.mu.Unlock()
	close(l.done)
}

// pause stops copyFrom after the output it has read is written.
func (l *logFile) pause() {
	_ = l.r.SetReadDeadline(time.Now()) // a pipe always takes a deadline
	select {
	case <-l.paused:
	case <-l.done: // it had stopped already
	}
}
