package pod

import (
	"errors"
	"testing"
)

func TestTransitions(t *testing.T) {
	allowed := map[[2]State]bool{
		{Preparing, Running}: true, {Preparing, Failed}: true,
		{Running, Stopping}: true, {Running, Exited}: true, {Running, Failed}: true,
		{Stopping, Stopped}: true, {Stopping, Exited}: true, {Stopping, Failed}: true,
		{Exited, Removing}: true, {Stopped, Removing}: true, {Failed, Removing}: true,
		{Removing, Removed}: true,
	}
	for _, from := range States {
		for _, to := range States {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				err := transition(from, to)
				if want := allowed[[2]State{from, to}]; want {
					if err != nil {
						t.Fatalf("transition: %v, want it allowed", err)
					}
					return
				}
				var te *TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != to {
					t.Fatalf("transition = %v, want a *TransitionError{%s, %s}", err, from, to)
				}
			})
		}
	}
}

func TestEnded(t *testing.T) {
	for _, s := range States {
		want := s != Preparing && s != Running && s != Stopping
		if got := s.Ended(); got != want {
			t.Errorf("%s.Ended() = %v, want %v", s, got, want)
		}
	}
}
