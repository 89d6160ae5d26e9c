package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"connectrpc.com/connect"

	"github.com/kurmaos/kurma/api/kurma/v1/kurmav1connect"
	"github.com/kurmaos/kurma/api/socket"
)

const defaultSocket = "unix:///run/kurma/kurma.sock"

// clients are the API's service clients for one daemon.
type clients struct {
	pods    kurmav1connect.PodServiceClient
	images  kurmav1connect.ImageServiceClient
	system  kurmav1connect.SystemServiceClient
	http    *http.Client
	baseURL string
}

func (c *clients) close() { c.http.CloseIdleConnections() }

// api dials the daemon named by -H (lazily, once).
func (c *cli) api() (*clients, error) {
	if c.clients != nil {
		return c.clients, nil
	}
	hc, base, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	opts := []connect.ClientOption{connect.WithGRPC()}
	c.clients = &clients{
		pods:    kurmav1connect.NewPodServiceClient(hc, base, opts...),
		images:  kurmav1connect.NewImageServiceClient(hc, base, opts...),
		system:  kurmav1connect.NewSystemServiceClient(hc, base, opts...),
		http:    hc,
		baseURL: base,
	}
	return c.clients, nil
}

// httpClient speaks HTTP/2 to the daemon: without TLS on a unix socket,
// with TLS 1.3 and the client certificate over TCP.
func (c *cli) httpClient() (*http.Client, string, error) {
	host := c.host
	if path, ok := strings.CutPrefix(host, "unix://"); ok || strings.HasPrefix(host, "/") {
		if !ok {
			path = host
		}
		return socket.HTTPClient(path), socket.BaseURL, nil
	}
	addr := strings.TrimPrefix(host, "tcp://")
	if c.cert == "" || c.key == "" || c.ca == "" {
		return nil, "", fmt.Errorf("a remote host (%s) needs --cert, --key and --ca (or KURMA_CERT, KURMA_KEY, KURMA_CA): `kurma certs` makes them", addr)
	}
	cert, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return nil, "", fmt.Errorf("client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(c.ca)
	if err != nil {
		return nil, "", fmt.Errorf("CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, "", fmt.Errorf("CA %s: no PEM certificate in it", c.ca)
	}
	serverName, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("-H %s: want host:port: %w", addr, err)
	}
	return &http.Client{Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			ServerName:   serverName,
		},
	}}, "https://" + addr, nil
}
