package stage

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/kurmaos/kurma/containers/atomicfile"
)

// statusWriter writes status.json behind the changes: update returns at
// once and a writer writes the latest status (a burst of changes makes
// one write); flush waits until what was changed is on disk. The pod's
// final status is always flushed before the init tells it has ended or
// exits, and status.json is always whole (atomicfile).
type statusWriter struct {
	mu      sync.Mutex
	cond    *sync.Cond
	changed uint64 // generation of the last change
	written uint64 // generation on disk
	running bool   // a writer goroutine is at work
}

// update changes the status; status.json follows shortly.
func (in *initProc) update(fn func(*Status)) {
	in.mu.Lock()
	fn(&in.status)
	in.mu.Unlock()
	w := &in.sw
	w.mu.Lock()
	if w.cond == nil {
		w.cond = sync.NewCond(&w.mu)
	}
	w.changed++
	if !w.running {
		w.running = true
		go in.writeStatus()
	}
	w.mu.Unlock()
}

// flush waits until every change made so far is in status.json.
func (in *initProc) flush() {
	w := &in.sw
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.written < w.changed {
		w.cond.Wait()
	}
}

func (in *initProc) writeStatus() {
	w := &in.sw
	w.mu.Lock()
	for w.written < w.changed {
		gen := w.changed
		w.mu.Unlock()
		in.mu.Lock()
		data, err := json.Marshal(&in.status)
		in.mu.Unlock()
		if err == nil {
			err = atomicfile.Write(StatusPath(in.cfg.RunDir), data, 0o600)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "stage-init: write status: %v\n", err)
		}
		w.mu.Lock()
		w.written = gen
		w.cond.Broadcast()
	}
	w.running = false
	w.mu.Unlock()
}
