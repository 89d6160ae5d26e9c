// Package datasource fetches configuration documents from outside the
// machine's image: an HTTP(S) URL, a cloud-init NoCloud volume and an
// OpenStack config drive. It returns the bytes and where they came from;
// package config parses them.
package datasource
