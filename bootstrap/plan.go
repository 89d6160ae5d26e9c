package bootstrap

import (
	"fmt"

	"github.com/kurmaos/kurma/config"
)

// Plan is what the bootstrap phase runs.
type Plan struct {
	// RunToCompletion are run in this order (the configuration's), each
	// waited for.
	RunToCompletion []config.Container
	// Services are started in this order after them: Kurma's own (the
	// console), then the configuration's.
	Services []config.Container
}

// NewPlan reads the enabled bootstrap containers of the configuration
// and the services it turns on. An entry that cannot run is left out,
// with an error saying why.
func NewPlan(cfg *config.Config) (Plan, []error) {
	var p Plan
	var errs []error
	if cfg.Services.Console.Enabled {
		p.Services = append(p.Services, consoleContainer(cfg))
	}
	for _, c := range cfg.Bootstrap.Containers {
		switch {
		case !c.Enabled:
			continue
		case c.Name == ConsoleName && cfg.Services.Console.Enabled:
			errs = append(errs, fmt.Errorf("bootstrap.containers: %q is the console service's name (services.console); container left out", c.Name))
			continue
		case c.Image == "":
			errs = append(errs, fmt.Errorf("bootstrap.containers: %s has no image; container left out", c.Name))
			continue
		}
		if c.Kind == config.KindRunToCompletion {
			p.RunToCompletion = append(p.RunToCompletion, c)
		} else {
			p.Services = append(p.Services, c)
		}
	}
	return p, errs
}
