package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Authority issues the certificates of a Kurma machine's remote API: the
// server's, and its clients' with their roles.
type Authority struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  []byte
}

// NewAuthority makes a self-signed CA (ECDSA P-256) valid for the given
// time.
func NewAuthority(name string, validity time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"kurma"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := sign(tmpl, tmpl, &key.PublicKey, key, validity)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, key: key, PEM: pemBlock("CERTIFICATE", der)}, nil
}

// LoadAuthority reads a CA's certificate and key (PEM files).
func LoadAuthority(certFile, keyFile string) (*Authority, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s, %s: no PEM block", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	return &Authority{Cert: cert, key: key, PEM: certPEM}, nil
}

// KeyPEM is the CA's private key.
func (a *Authority) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(a.key)
	if err != nil {
		return nil, err
	}
	return pemBlock("EC PRIVATE KEY", der), nil
}

// CertRequest says what certificate to issue.
type CertRequest struct {
	CommonName string
	// Hosts (names and IP addresses) make a server certificate.
	Hosts []string
	// Role makes a client certificate for that role.
	Role     Role
	Validity time.Duration
	// NotBefore backdates the certificate (tests of expiry); zero is now.
	NotBefore time.Time
}

// Issue makes a certificate and its key, PEM encoded.
func (a *Authority) Issue(req CertRequest) (certPEM, keyPEM []byte, err error) {
	if (len(req.Hosts) == 0) == (req.Role == "") {
		return nil, nil, errors.New("issue: give hosts for a server certificate or a role for a client one")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: req.CommonName},
		KeyUsage:  x509.KeyUsageDigitalSignature,
		NotBefore: req.NotBefore,
	}
	if req.Role != "" {
		tmpl.Subject.Organization = []string{RolePrefix + string(req.Role)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range req.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := sign(tmpl, a.Cert, &key.PublicKey, a.key, req.Validity)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder), nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey, validity time.Duration) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-5 * time.Minute) // clock skew
	}
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	tmpl.NotAfter = tmpl.NotBefore.Add(validity)
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// SetupFiles are the files WriteSetup makes, by name.
var SetupFiles = []string{
	"ca.pem", "ca-key.pem",
	"server.pem", "server-key.pem",
	"admin.pem", "admin-key.pem",
	"reader.pem", "reader-key.pem",
}

// WriteSetup makes a first setup for the remote API in dir: a CA, a
// server certificate for the hosts, and an admin and a reader client
// certificate. Keys are written 0600; existing files are not replaced.
func WriteSetup(dir string, hosts []string, validity time.Duration) error {
	for _, f := range SetupFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%s exists: remove it or choose another directory", filepath.Join(dir, f))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := NewAuthority("kurma CA", 10*validity)
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	files := map[string][]byte{"ca.pem": ca.PEM, "ca-key.pem": caKey}
	for _, c := range []struct {
		name string
		req  CertRequest
	}{
		{"server", CertRequest{CommonName: "kurma server", Hosts: hosts, Validity: validity}},
		{"admin", CertRequest{CommonName: "kurma admin", Role: Admin, Validity: validity}},
		{"reader", CertRequest{CommonName: "kurma reader", Role: Reader, Validity: validity}},
	} {
		cert, key, err := ca.Issue(c.req)
		if err != nil {
			return err
		}
		files[c.name+".pem"], files[c.name+"-key.pem"] = cert, key
	}
	for _, f := range SetupFiles {
		mode := os.FileMode(0o644)
		if filepath.Ext(f) == ".pem" && len(f) > 8 && f[len(f)-8:] == "-key.pem" {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, f), files[f], mode); err != nil {
			return err
		}
	}
	return nil
}
