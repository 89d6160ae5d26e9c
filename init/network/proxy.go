package network

import (
	"fmt"
	"os"
	"strings"

	"github.com/kurmaos/kurma/config"
)

// ProxyEnv is where the proxy of the configuration is written for the
// runtime and its image fetcher: KEY=VALUE lines, no quoting (the values
// are URLs and host lists, checked by the configuration).
const ProxyEnv = "/run/kurma/proxy.env"

// ProxyVars are the environment variables of the proxy, in the upper and
// lower case that programs read (Go's net/http reads both), sorted; none
// when no proxy is configured.
func ProxyVars(p config.Proxy) []string {
	if p.HTTP == "" && p.HTTPS == "" {
		return nil
	}
	var vars []string
	add := func(key, value string) {
		if value != "" {
			vars = append(vars, key+"="+value, strings.ToLower(key)+"="+value)
		}
	}
	add("HTTP_PROXY", p.HTTP)
	add("HTTPS_PROXY", p.HTTPS)
	add("NO_PROXY", strings.Join(p.NoProxy, ","))
	return vars
}

// ApplyProxy sets the proxy in this process's environment, which the
// runtime inherits, and writes it to path (removed when there is no
// proxy).
func ApplyProxy(path string, p config.Proxy) error {
	vars := ProxyVars(p)
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		os.Unsetenv(k)
		os.Unsetenv(strings.ToLower(k))
	}
	if len(vars) == 0 {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("proxy: %w", err)
		}
		return nil
	}
	for _, v := range vars {
		k, val, _ := strings.Cut(v, "=")
		os.Setenv(k, val)
	}
	if err := writeFile(path, []byte(strings.Join(vars, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("proxy: write %s: %w", path, err)
	}
	return nil
}
