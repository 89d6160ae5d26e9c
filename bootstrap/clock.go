package bootstrap

import (
	"context"
	"time"
)

// Clock is the time the supervision goes by: the real one, or a fake in
// tests.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends (its error then).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
