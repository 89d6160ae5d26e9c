package datasource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kurmaos/kurma/internal/ctxtime"
)

// MaxSize bounds a fetched document.
const MaxSize = 1 << 20

// Document is a configuration document and where it came from.
type Document struct {
	Source string // the URL, or device and file
	Data   []byte
}

// Clock is the time seam of the fetchers: tests give one that does not
// wait.
type Clock struct {
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// RealClock is the machine's clock.
var RealClock = Clock{Now: time.Now, Sleep: ctxtime.Sleep}

// URL fetches a document over HTTP or HTTPS. While the network comes up
// the fetch fails; it is retried with exponential backoff until Timeout.
type URL struct {
	// Template is the URL with ${mac}, ${uuid} and ${hostname}.
	Template string
	Vars     Vars
	// Timeout bounds all attempts together.
	Timeout time.Duration
	Client  *http.Client
	Clock   Clock
	// FirstBackoff is the wait after the first failure; it doubles up to
	// MaxBackoff.
	FirstBackoff, MaxBackoff time.Duration
}

// PermanentError is an answer that retrying will not change: a 4xx
// status other than 408 and 429.
type PermanentError struct{ Status string }

func (e *PermanentError) Error() string { return "server answered " + e.Status }

// Fetch substitutes the variables and fetches the URL. The error of a
// failed fetch is that of the last attempt, with the number of attempts.
func (u *URL) Fetch(ctx context.Context) (Document, error) {
	target, err := Substitute(u.Template, u.Vars)
	if err != nil {
		return Document{Source: u.Template}, err
	}
	clock := u.Clock
	if clock.Now == nil {
		clock = RealClock
	}
	client := u.Client
	if client == nil {
		client = http.DefaultClient
	}
	backoff, maxBackoff := u.FirstBackoff, u.MaxBackoff
	if backoff <= 0 {
		backoff = 250 * time.Millisecond
	}
	if maxBackoff <= 0 {
		maxBackoff = 5 * time.Second
	}
	deadline := clock.Now().Add(u.Timeout)
	for attempt := 1; ; attempt++ {
		left := deadline.Sub(clock.Now())
		actx, cancel := context.WithTimeout(ctx, max(left, time.Millisecond))
		data, err := get(actx, client, target)
		cancel()
		if err == nil {
			return Document{Source: target, Data: data}, nil
		}
		var perm *PermanentError
		if errors.As(err, &perm) || ctx.Err() != nil {
			return Document{Source: target}, err
		}
		if clock.Now().Add(backoff).After(deadline) {
			return Document{Source: target}, fmt.Errorf("gave up after %d attempts in %s: %w", attempt, u.Timeout, err)
		}
		if err := clock.Sleep(ctx, backoff); err != nil {
			return Document{Source: target}, err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func get(ctx context.Context, client *http.Client, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, &PermanentError{Status: err.Error()}
	}
	req.Header.Set("User-Agent", "kurma")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return nil, &PermanentError{Status: resp.Status}
	default:
		return nil, fmt.Errorf("server answered %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(data) > MaxSize {
		return nil, &PermanentError{Status: fmt.Sprintf("a body larger than %d bytes", MaxSize)}
	}
	return data, nil
}
