// Package socket dials the kurma.v1 API on its local unix socket: HTTP/2
// without TLS (the gRPC protocol the generated clients speak), as the
// daemon serves it there.
package socket

import (
	"context"
	"fmt"
	"net"
	"net/http"
)

// BaseURL is the URL the generated clients are given for a unix socket
// client: the host part is not used.
const BaseURL = "http://kurma"

// HTTPClient returns a client whose every connection is to the unix
// socket at path.
func HTTPClient(path string) *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols: &protocols,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
			if err != nil {
				return nil, fmt.Errorf("no daemon on %s (is kurma daemon running, and may you use its socket?): %w", path, err)
			}
			return c, nil
		},
	}}
}
