package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestShowAndExplain(t *testing.T) {
	initrd := parse(t, "initrd", "hostname: node\nnetwork:\n  dns:\n    servers: [1.1.1.1]\nbootstrap:\n  containers:\n    - name: app\n      image: example.com/app\n      isolators: {resource/memory: {limit: 1G}}\n")
	cmd, errs := ParseCmdline("kurma.hostname=node-2 kurma.modules.extra=e1000")
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	eff := mergeOK(t, initrd, cmd)
	var b bytes.Buffer
	if err := eff.Show(&b); err != nil {
		t.Fatal(err)
	}
	show := b.String()
	for _, want := range []string{
		"hostname: node-2 # cmdline kurma.hostname\n",
		"      - 1.1.1.1 # initrd initrd.yaml:4\n",
		"    - name: app # initrd initrd.yaml:7\n",
		"      enabled: true # defaults\n",
		"        resource/memory: {limit: 1G} # initrd initrd.yaml:9\n",
		"  extra:\n    - e1000 # cmdline kurma.modules.extra\n",
		"  socket: /run/kurma/kurma.sock # defaults defaults.yaml:",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	if strings.Contains(show, "gateway") {
		t.Errorf("show has values no layer set:\n%s", show)
	}
	b.Reset()
	if err := eff.Explain(&b); err != nil {
		t.Fatal(err)
	}
	explain := b.String()
	for _, want := range []string{
		"PATH ", "hostname ", "node-2 ", "cmdline kurma.hostname\n",
		`bootstrap.containers[0].isolators["resource/memory"]`, "{limit: 1G}",
		"network.dns.servers[0]",
	} {
		if !strings.Contains(explain, want) {
			t.Errorf("explain lacks %q:\n%s", want, explain)
		}
	}
}
