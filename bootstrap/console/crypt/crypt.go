// Package crypt checks passwords against crypt(3) hashes as
// /etc/shadow holds them: yescrypt ("$y$", the default of Debian 12's
// mkpasswd and passwd), SHA-512 ("$6$"), SHA-256 ("$5$") and bcrypt
// ("$2b$", "$2a$", "$2y$"), the methods of `mkpasswd -m yescrypt` and
// friends. Other methods are ErrUnsupported, never a match. A yescrypt
// hash that asks for more than 1 GiB of memory, or far more time, is an
// error (yescrypt.go).
package crypt

import (
	"crypto/subtle"
	"errors"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ErrUnsupported is the error of a hash whose method this package does
// not implement.
var ErrUnsupported = errors.New("unsupported crypt(3) method (use yescrypt or SHA-512: mkpasswd -m yescrypt, mkpasswd -m sha-512)")

// ErrMismatch is the error of a password that does not match.
var ErrMismatch = errors.New("password does not match")

// Supported reports whether hash is of a method Verify can check.
func Supported(hash string) bool {
	for _, p := range []string{"$y$", "$6$", "$5$", "$2b$", "$2a$", "$2y$"} {
		if strings.HasPrefix(hash, p) {
			return true
		}
	}
	return false
}

// Verify checks password against hash: nil when it matches.
func Verify(hash, password string) error {
	switch {
	case strings.HasPrefix(hash, "$y$"):
		return verifyYescrypt(hash, password)
	case strings.HasPrefix(hash, "$6$"):
		return compare(hash, password, sha512Crypt)
	case strings.HasPrefix(hash, "$5$"):
		return compare(hash, password, sha256Crypt)
	case strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2y$"):
		// x/crypto/bcrypt reads the $2y$ of PHP and libxcrypt as $2b$:
		// the same algorithm.
		h := "$2b$" + hash[4:]
		if err := bcrypt.CompareHashAndPassword([]byte(h), []byte(password)); err != nil {
			if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
				return ErrMismatch
			}
			return err
		}
		return nil
	}
	return ErrUnsupported
}

func compare(hash, password string, f func(password, setting string) (string, error)) error {
	got, err := f(password, hash)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(hash)) != 1 {
		return ErrMismatch
	}
	return nil
}
