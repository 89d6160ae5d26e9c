package apiserver

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/kurmaos/kurma/containers/pod"
)

// logPoll is how often a followed log is looked at for more.
const logPoll = 200 * time.Millisecond

// followLogs sends each app's log (the rotated file, then the current
// one), only the last tail lines when tail > 0, and with follow keeps
// sending what the app writes until the pod ends or ctx does.
func followLogs(ctx context.Context, p *pod.Pod, apps []string, tail int, follow bool, send func(app string, data []byte) error) error {
	readers := make([]*logReader, len(apps))
	for i, app := range apps {
		readers[i] = &logReader{path: p.LogPath(app)}
		data, err := readers[i].initial(tail)
		if err != nil {
			return err
		}
		if len(data) > 0 {
			if err := send(app, data); err != nil {
				return err
			}
		}
	}
	if !follow {
		return nil
	}
	ended := false
	for {
		for i, r := range readers {
			data, err := r.more()
			if err != nil {
				return err
			}
			if len(data) > 0 {
				if err := send(apps[i], data); err != nil {
					return err
				}
			}
		}
		if ended {
			return nil // one last read after the pod ended
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logPoll):
		}
		ended = p.Status().State.Ended()
	}
}

// logReader reads an app's log file as it grows, across rotations (the
// init renames the full file to .1 and starts a new one).
type logReader struct {
	path string
	f    *os.File
	off  int64
	ino  uint64
}

// initial returns the log so far: the rotated file and the current one,
// cut to the last tail lines when tail > 0.
func (r *logReader) initial(tail int) ([]byte, error) {
	old, err := readIfExists(r.path + ".1")
	if err != nil {
		return nil, err
	}
	cur, err := r.more()
	if err != nil {
		return nil, err
	}
	data := append(old, cur...)
	if tail > 0 {
		data = lastLines(data, tail)
	}
	return data, nil
}

// more returns what was written since the last call.
func (r *logReader) more() ([]byte, error) {
	st, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no output yet
	}
	if err != nil {
		return nil, err
	}
	ino := inode(st)
	var lost []byte
	if r.f != nil && (ino != r.ino || st.Size() < r.off) {
		// Rotated: finish the old file (now .1), then start the new one.
		lost, _ = io.ReadAll(r.f)
		r.f.Close()
		r.f = nil
	}
	if r.f == nil {
		if r.f, err = os.Open(r.path); err != nil {
			return lost, nil // rotated again meanwhile: next time
		}
		r.ino, r.off = ino, 0
	}
	data, err := io.ReadAll(r.f)
	r.off += int64(len(data))
	return append(lost, data...), err
}

func readIfExists(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// lastLines returns the last n lines of data.
func lastLines(data []byte, n int) []byte {
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			n--
			if n == 0 {
				return data[i+1:]
			}
		}
	}
	return data
}
