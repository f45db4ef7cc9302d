package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// tlsConfig builds the TLS settings of a host from redis-py's ssl_*
// settings. Unlike redis-py, whose SSLConnection skips the host name check
// unless ssl_check_hostname is set, the certificate's name is checked
// unless ssl_check_hostname is false or ssl_cert_reqs is "none".
func (cs *connSettings) tlsConfig(serverName string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if cs.caCerts != "" {
		pem, err := os.ReadFile(cs.caCerts)
		if err != nil {
			return nil, fmt.Errorf("ssl_ca_certs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ssl_ca_certs: %s holds no PEM certificate", cs.caCerts)
		}
		tc.RootCAs = pool
	}
	if cs.certFile != "" {
		// redis-py accepts a certificate file that also holds the key.
		keyFile := cs.keyFile
		if keyFile == "" {
			keyFile = cs.certFile
		}
		cert, err := tls.LoadX509KeyPair(cs.certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("ssl_certfile: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	switch {
	case cs.certReqs == "none":
		tc.InsecureSkipVerify = true
	case cs.checkHostname != nil && !*cs.checkHostname:
		// Check the chain but not the name: the standard check is turned
		// off and replaced by one without a DNS name.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = verifyChainOnly(tc.RootCAs)
	}
	return tc, nil
}

// verifyChainOnly checks that the server's certificate chains to roots
// (the system pool when nil), whatever names it carries.
func verifyChainOnly(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(st tls.ConnectionState) error {
		if len(st.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range st.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
}
