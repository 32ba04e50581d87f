package main

// The C API of "TLS settings and information" (include/tcpgo.h): PEM
// starts, the server's certificate, certificate callbacks, per-connection
// TLS information, SNI certificates, reload, and STARTTLS. The engine does
// the work (libtcp/engine/tls*.go, starttls.go); this file only converts.

/*
#include "bridge.h"
*/
import "C"

import (
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// pemBytes copies NUL-terminated PEM text; NULL is "not given" (nil).
func pemBytes(p *C.char) []byte {
	if p == nil {
		return nil
	}
	return []byte(C.GoString(p))
}

// tlsSource is ca/cert/key as file paths, or as PEM text when isPEM is set.
func tlsSource(ca, cert, key *C.char, isPEM C.int) engine.TLSSource {
	if isPEM != 0 {
		return engine.TLSPEM{CA: pemBytes(ca), Cert: pemBytes(cert), Key: pemBytes(key)}
	}
	return engine.TLSFiles{CA: optString(ca), Cert: optString(cert), Key: optString(key)}
}

//export tls_server_start_pem
func tls_server_start_pem(s *C.tcp_server, port C.int, ca, cert, key *C.char) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	if err := o.prepareStart(&o.handler); err != nil {
		return o.errs.result(err)
	}
	p := engine.TLSPEM{CA: pemBytes(ca), Cert: pemBytes(cert), Key: pemBytes(key)}
	return o.errs.result(o.srv.StartTLSPEM(int(port), p))
}

//export tls_client_start_pem
func tls_client_start_pem(c *C.tcp_client, host *C.char, port C.int, ca, cert, key *C.char) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	if err := o.prepareStart(&o.handler); err != nil {
		return o.errs.result(err)
	}
	if host == nil {
		return o.errs.result(invalidArg("no host given"))
	}
	p := engine.TLSPEM{CA: pemBytes(ca), Cert: pemBytes(cert), Key: pemBytes(key)}
	return o.errs.result(o.cl.StartTLSPEM(C.GoString(host), int(port), p))
}

//export tcp_server_tls_certificate
func tcp_server_tls_certificate(s *C.tcp_server, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	pem, err := o.srv.CertificatePEM()
	if err != nil {
		return o.errs.result(err)
	}
	succeeded()
	return copyOut(string(pem), buf, buflen)
}

//export tcp_server_set_on_cert
func tcp_server_set_on_cert(s *C.tcp_server, fn C.tcp_cert_check_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		defer catch(nil, &o.errs, 0)
		o.handler.update(func(c *serverCallbacks) { c.cert, c.certUD = fn, ud })
		if fn == nil {
			o.srv.SetCertCheck(nil)
		} else {
			o.srv.SetCertCheck(o.handler.certCheck)
		}
	}
}

//export tcp_client_set_on_cert
func tcp_client_set_on_cert(c *C.tcp_client, fn C.tcp_cert_check_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		defer catch(nil, &o.errs, 0)
		o.handler.update(func(cb *clientCallbacks) { cb.cert, cb.certUD = fn, ud })
		if fn == nil {
			o.cl.SetCertCheck(nil)
		} else {
			o.cl.SetCertCheck(o.handler.certCheck)
		}
	}
}

// fillTLSInfo copies info into the caller's struct of size bytes (an older,
// shorter struct gets its fields).
func fillTLSInfo(out *C.tcp_tls_info, size C.size_t, info *engine.TLSInfo) C.int {
	v := C.tcp_tls_info{
		version:       C.int(info.Version),
		cipher_suite:  C.int(info.CipherSuite),
		resumed:       cBool(info.Resumed),
		upgraded:      cBool(info.Upgraded),
		verify_result: C.int(info.Verify),
		has_peer_cert: cBool(len(info.PeerChain) > 0),
	}
	return fillStats(unsafe.Pointer(out), size, unsafe.Pointer(&v), unsafe.Sizeof(v))
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

//export tcp_server_tls_info
func tcp_server_tls_info(s *C.tcp_server, id C.int, out *C.tcp_tls_info, size C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	if out == nil {
		return o.errs.result(invalidArg("NULL tcp_tls_info pointer"))
	}
	info, err := o.srv.TLSInfo(int(id))
	if err != nil {
		return noClient(o, err)
	}
	return fillTLSInfo(out, size, info)
}

//export tcp_client_tls_info
func tcp_client_tls_info(c *C.tcp_client, out *C.tcp_tls_info, size C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	if out == nil {
		return o.errs.result(invalidArg("NULL tcp_tls_info pointer"))
	}
	info, err := o.cl.TLSInfo()
	if err != nil {
		return o.errs.result(err)
	}
	return fillTLSInfo(out, size, info)
}

// Values of enum tcp_tls_field.
const (
	tlsVersionName  = 1
	tlsCipherName   = 2
	tlsALPN         = 3
	tlsServerName   = 4
	tlsPeerCertPEM  = 5
	tlsPeerChainPEM = 6
	tlsPeerSubject  = 7
	tlsPeerIssuer   = 8
	tlsVerifyError  = 9
)

// tlsField is one tcp_tls_field of info.
func tlsField(info *engine.TLSInfo, what int) (string, error) {
	if what >= tlsPeerCertPEM && what <= tlsPeerIssuer && len(info.PeerChain) == 0 {
		return "", &engine.Error{Code: engine.ErrNoField, Reason: "the peer sent no certificate"}
	}
	switch what {
	case tlsVersionName:
		return engine.TLSVersionName(info.Version), nil
	case tlsCipherName:
		return engine.CipherSuiteName(info.CipherSuite), nil
	case tlsALPN:
		return info.ALPN, nil
	case tlsServerName:
		return info.ServerName, nil
	case tlsPeerCertPEM:
		return string(info.PeerCertPEM()), nil
	case tlsPeerChainPEM:
		return string(info.PeerChainPEM()), nil
	case tlsPeerSubject:
		return info.PeerSubject(), nil
	case tlsPeerIssuer:
		return info.PeerIssuer(), nil
	case tlsVerifyError:
		return info.VerifyErr, nil
	}
	return "", invalidArg("unknown TLS field %d (want 1..9, enum tcp_tls_field)", what)
}

//export tcp_server_tls_str
func tcp_server_tls_str(s *C.tcp_server, id C.int, what C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	if what < tlsVersionName || what > tlsVerifyError {
		return o.errs.result(invalidArg("unknown TLS field %d (want 1..9, enum tcp_tls_field)", int(what)))
	}
	info, err := o.srv.TLSInfo(int(id))
	if err != nil {
		return noClient(o, err)
	}
	v, err := tlsField(info, int(what))
	if err != nil {
		return o.errs.result(err)
	}
	succeeded()
	return copyOut(v, buf, buflen)
}

//export tcp_client_tls_str
func tcp_client_tls_str(c *C.tcp_client, what C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	if what < tlsVersionName || what > tlsVerifyError {
		return o.errs.result(invalidArg("unknown TLS field %d (want 1..9, enum tcp_tls_field)", int(what)))
	}
	info, err := o.cl.TLSInfo()
	if err != nil {
		return o.errs.result(err)
	}
	v, err := tlsField(info, int(what))
	if err != nil {
		return o.errs.result(err)
	}
	succeeded()
	return copyOut(v, buf, buflen)
}

//export tcp_server_add_cert
func tcp_server_add_cert(s *C.tcp_server, host, cert, key *C.char, isPEM C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	if host == nil {
		return o.errs.result(invalidArg("NULL host"))
	}
	return o.errs.result(o.srv.AddCert(C.GoString(host), tlsSource(nil, cert, key, isPEM)))
}

//export tcp_server_reload_cert
func tcp_server_reload_cert(s *C.tcp_server, cert, key *C.char, isPEM C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.errs.result(o.srv.ReloadCert(tlsSource(nil, cert, key, isPEM)))
}

//export tcp_server_set_starttls
func tcp_server_set_starttls(s *C.tcp_server, ca, cert, key *C.char, isPEM C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.errs.result(o.srv.SetUpgradeTLS(tlsSource(ca, cert, key, isPEM)))
}

//export tcp_server_starttls
func tcp_server_starttls(s *C.tcp_server, id C.int, reply unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	var msg []byte // nil: no reply
	if reply != nil {
		b, err := goBytes(reply, n)
		if err != nil {
			return o.errs.result(err)
		}
		msg = append([]byte{}, b...) // an empty reply is still a message
	} else if n != 0 {
		return o.errs.result(invalidArg("NULL reply with length %d", uint64(n)))
	}
	if err := o.srv.UpgradeTLS(int(id), msg); err != nil {
		return noClient(o, err)
	}
	return o.errs.result(nil)
}

//export tcp_client_starttls
func tcp_client_starttls(c *C.tcp_client, ca, cert, key *C.char, isPEM C.int) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	pending, err := o.cl.UpgradeTLSPending(tlsSource(ca, cert, key, isPEM))
	if pending {
		// From a callback: the end goes to the connect callback with
		// attempt 0 once that callback returned (callbacks.go).
		o.handler.upgrading.Store(true)
	}
	return o.errs.result(err)
}
