package pod

import "fmt"

// State is where a pod is in its life.
//
//	           ┌──────────► failed ◄──────────┐
//	           │              ▲               │
//	preparing ─┴─► running ───┼──► stopping ──┴─► stopped
//	                  │       │        │
//	                  └──► exited ◄────┘
//
//	exited, stopped, failed ──► removing ──► removed
type State string

const (
	// Preparing: validated, directories, cgroup and the in-pod init are
	// being made, pre-start handlers run.
	Preparing State = "preparing"
	// Running: every app was started; some may have exited since.
	Running State = "running"
	// Stopping: a stop was asked; apps got SIGTERM.
	Stopping State = "stopping"
	// Exited: every app ended on its own (see each app's exit status).
	Exited State = "exited"
	// Stopped: the pod ended because it was stopped.
	Stopped State = "stopped"
	// Failed: the pod could not start, or its init died (see Error).
	Failed State = "failed"
	// Removing: its processes, cgroup and files are being removed.
	Removing State = "removing"
	// Removed: nothing of the pod is left.
	Removed State = "removed"
)

// States lists every state, in the order of a pod's life.
var States = []State{Preparing, Running, Stopping, Exited, Stopped, Failed, Removing, Removed}

// transitions are the allowed state changes.
var transitions = map[State][]State{
	Preparing: {Running, Failed},
	Running:   {Stopping, Exited, Failed},
	Stopping:  {Stopped, Exited, Failed},
	Exited:    {Removing},
	Stopped:   {Removing},
	Failed:    {Removing},
	Removing:  {Removed},
	Removed:   nil,
}

// TransitionError is an invalid change of state.
type TransitionError struct {
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("pod cannot go from %s to %s", e.From, e.To)
}

// CanTransition reports whether a pod may go from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// transition checks a change of state.
func transition(from, to State) error {
	if !CanTransition(from, to) {
		return &TransitionError{From: from, To: to}
	}
	return nil
}

// Ended reports whether a pod in this state has no process left.
func (s State) Ended() bool {
	switch s {
	case Exited, Stopped, Failed, Removing, Removed:
		return true
	}
	return false
}
