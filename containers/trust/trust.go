// Package trust keeps the OpenPGP public keys that image signatures are
// checked against. A key is trusted for a name prefix (the images whose
// names are under it, see aci.HasPrefix) or for every image (the prefix
// "*"). Keys are added by an operator, never fetched on their own: a
// signature from a key that nobody added proves nothing.
//
// On disk, under the store's directory (mode 0700):
//
//	root.d/<fingerprint>                 keys trusted for every image
//	prefix.d/<escaped prefix>/<fingerprint>
//
// Each file is one armored public key; the prefix directory name is the
// prefix path-escaped ("example.com%2Fapp").
package trust

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/atomicfile"
)

// Errors of the trust store, for errors.Is.
var (
	ErrNoKeys       = errors.New("no key is trusted for this image name")
	ErrBadSignature = errors.New("signature check failed")
)

// maxKeyBytes caps one armored key.
const maxKeyBytes = 1 << 20

// Store is a directory of trusted keys. It is safe for concurrent use.
type Store struct {
	mu  sync.RWMutex
	dir string
}

// Open opens (creating it if needed) the trust store in dir.
func Open(dir string) (*Store, error) {
	for _, d := range []string{dir, filepath.Join(dir, "root.d"), filepath.Join(dir, "prefix.d")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("trust store: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

func (s *Store) prefixDir(prefix string) (string, error) {
	if prefix == "*" {
		return filepath.Join(s.dir, "root.d"), nil
	}
	p := strings.TrimSuffix(prefix, "/")
	if _, err := types.NewACIdentifier(p); err != nil {
		return "", fmt.Errorf("trust prefix %q: %w", prefix, err)
	}
	return filepath.Join(s.dir, "prefix.d", url.PathEscape(p)), nil
}

// Add trusts the armored public key for the names under prefix ("*" for
// every name) and returns its fingerprint in hex. The data must hold
// exactly one key.
func (s *Store) Add(prefix string, armored []byte) (string, error) {
	if len(armored) > maxKeyBytes {
		return "", fmt.Errorf("trust: key of %d bytes is over the limit of %d", len(armored), maxKeyBytes)
	}
	// The reader stops after the first armored block: count them, so that
	// what is stored is exactly what was checked.
	if n := bytes.Count(armored, []byte("-----BEGIN ")); n != 1 {
		return "", fmt.Errorf("trust: the data holds %d armored blocks, want one public key", n)
	}
	ents, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return "", fmt.Errorf("trust: read key: %w", err)
	}
	if len(ents) != 1 {
		return "", fmt.Errorf("trust: the data holds %d keys, want one", len(ents))
	}
	fp := hex.EncodeToString(ents[0].PrimaryKey.Fingerprint)
	dir, err := s.prefixDir(prefix)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("trust: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, fp), armored, 0o600); err != nil {
		return "", fmt.Errorf("trust: %w", err)
	}
	return fp, nil
}

// Remove stops trusting a key for a prefix.
func (s *Store) Remove(prefix, fingerprint string) error {
	dir, err := s.prefixDir(prefix)
	if err != nil {
		return err
	}
	if _, err := hex.DecodeString(fingerprint); err != nil || fingerprint == "" {
		return fmt.Errorf("trust: %q is not a hex fingerprint", fingerprint)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(filepath.Join(dir, strings.ToLower(fingerprint))); err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	return nil
}

// Keys returns the keys trusted for an image name: those of every prefix
// the name is under and those trusted for all names.
func (s *Store) Keys(name string) (openpgp.EntityList, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	dirs := []string{filepath.Join(s.dir, "root.d")}
	ents, err := os.ReadDir(filepath.Join(s.dir, "prefix.d"))
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	for _, e := range ents {
		prefix, err := url.PathUnescape(e.Name())
		if err == nil && aci.HasPrefix(name, prefix) {
			dirs = append(dirs, filepath.Join(s.dir, "prefix.d", e.Name()))
		}
	}
	var keys openpgp.EntityList
	for _, d := range dirs {
		files, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("trust: %w", err)
		}
		for _, f := range files {
			if strings.HasPrefix(f.Name(), ".") {
				continue // a key being written
			}
			data, err := os.ReadFile(filepath.Join(d, f.Name()))
			if err != nil {
				return nil, fmt.Errorf("trust: %w", err)
			}
			el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("trust: key %s: %w", filepath.Join(d, f.Name()), err)
			}
			keys = append(keys, el...)
		}
	}
	return keys, nil
}

// Verify checks the armored detached signature of signed against the keys
// trusted for the image name, and returns the signer.
func (s *Store) Verify(name string, signed, signature io.Reader) (*openpgp.Entity, error) {
	keys, err := s.Keys(name)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s (trust a key for it or a prefix of it)", ErrNoKeys, name)
	}
	signer, err := openpgp.CheckArmoredDetachedSignature(keys, signed, signature, nil)
	if err != nil {
		return nil, fmt.Errorf("%w for %s: %v", ErrBadSignature, name, err)
	}
	return signer, nil
}
