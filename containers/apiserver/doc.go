// Package apiserver serves Kurma's API, kurma.v1, with connectrpc: one
// server speaks gRPC, gRPC-Web and Connect (JSON over HTTP). It listens on
// a local unix socket (mode 0660, group kurma) and, when configured, on
// TCP with TLS 1.3 and client certificates whose Organization carries the
// caller's role: an admin may do everything, a reader may only list and
// read.
package apiserver
