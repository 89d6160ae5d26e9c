package bootstrap

import (
	"context"
	"time"

	"github.com/kurmaos/kurma/internal/ctxtime"
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

func (realClock) Sleep(ctx context.Context, d time.Duration) error { return ctxtime.Sleep(ctx, d) }
