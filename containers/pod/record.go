package pod

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kurmaos/kurma/containers/atomicfile"
	"github.com/kurmaos/kurma/containers/stage"
)

// record is pod.json: what the daemon knows of a pod across restarts.
type record struct {
	UUID      string    `json:"uuid"`
	Name      string    `json:"name,omitempty"`
	State     State     `json:"state"`
	Error     string    `json:"error,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	// StagePid and StageStart identify the in-pod init: its PID and its
	// start time in clock ticks since boot (/proc/PID/stat field 22), so
	// that a reused PID is never taken for it.
	StagePid    int         `json:"stagePid,omitempty"`
	StageStart  uint64      `json:"stageStart,omitempty"`
	Token       string      `json:"token"`
	HostNetwork bool        `json:"hostNetwork,omitempty"`
	Restarts    int         `json:"restarts,omitempty"`
	Apps        []appRecord `json:"apps"`
	// Isolators says what became of each isolator.
	Isolators []IsolatorStatus `json:"isolators,omitempty"`
	// CPURequest (millicores) and MemoryRequest (bytes) are what the pod
	// holds of the machine while it runs.
	CPURequest    int64 `json:"cpuRequest,omitempty"`
	MemoryRequest int64 `json:"memoryRequest,omitempty"`
	// UserNS is the ID range of a pod in a user namespace, held until
	// the pod is removed (its files on disk belong to it).
	UserNS *stage.IDMap `json:"userNS,omitempty"`
}

type appRecord struct {
	Name    string   `json:"name"`
	ImageID string   `json:"imageID"`
	Layers  []string `json:"layers"`
}

func recordPath(dir string) string { return filepath.Join(dir, "pod.json") }

func (r *record) save(dir string) error {
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(recordPath(dir), data, 0o600); err != nil {
		return fmt.Errorf("pod %s: save state: %w", r.UUID, err)
	}
	return nil
}

func loadRecord(dir string) (*record, error) {
	data, err := os.ReadFile(recordPath(dir))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", recordPath(dir), err)
	}
	return &r, nil
}
