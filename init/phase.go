package boot

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// A Phase is one named step of the boot. An essential phase that fails
// stops the boot in emergency mode; an optional one is logged and the boot
// goes on.
type Phase struct {
	Name      string
	Essential bool
	Run       func(ctx context.Context) error
}

// A Step is a phase that ran: the boot timeline is the list of steps.
type Step struct {
	Name      string        `json:"name"`
	Essential bool          `json:"essential"`
	Took      time.Duration `json:"took"`
	Err       string        `json:"err,omitempty"`
}

// ErrInjected is the failure of a phase named by kurma.test.fail-phase.
var ErrInjected = errors.New("failed on purpose (kurma.test.fail-phase)")

// runPhases runs phases in order, appending to the timeline, until an
// essential one fails; it returns that phase and its error. A panic in a
// phase is its failure: PID 1 must never die.
//
// failPhase returns the name of a phase to fail on purpose, read before
// each phase since the command line is only known after the first.
func runPhases(ctx context.Context, log *Logger, timeline *[]Step, phases []Phase, failPhase func() string) (*Phase, error) {
	for i := range phases {
		p := &phases[i]
		start := time.Now()
		var err error
		if p.Name == failPhase() {
			err = ErrInjected
		} else {
			err = runOne(ctx, p)
		}
		step := Step{Name: p.Name, Essential: p.Essential, Took: time.Since(start)}
		if err != nil {
			step.Err = err.Error()
		}
		*timeline = append(*timeline, step)
		switch {
		case err == nil:
			log.Debugf("phase %s: done in %s", p.Name, ms(step.Took))
		case p.Essential:
			log.Errorf("phase %s failed: %v", p.Name, err)
			return p, err
		default:
			log.Warnf("phase %s failed, boot goes on: %v", p.Name, err)
		}
	}
	return nil, nil
}

func runOne(ctx context.Context, p *Phase) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return p.Run(ctx)
}

// formatTimeline renders the timeline for the console.
func formatTimeline(steps []Step, sinceKernel time.Duration) []string {
	width := len("total")
	for _, s := range steps {
		width = max(width, len(s.Name))
	}
	lines := []string{"boot timeline:"}
	for _, s := range steps {
		status := ""
		if s.Err != "" {
			status = "  FAILED"
		}
		lines = append(lines, fmt.Sprintf("  %-*s %8s%s", width, s.Name, ms(s.Took), status))
	}
	lines = append(lines, fmt.Sprintf("  %-*s %8s since kernel start", width, "total", ms(sinceKernel)))
	return lines
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Milliseconds())
}
