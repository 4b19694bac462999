"""MicroPython's ssl module (v1.28, TLS by mbedtls), over CPython's ssl.

What `python3 -m uasyncio.v3` (and uasyncio.v3.mp.install()) binds as `ssl`
and `ussl`, so that a MicroPython program's TLS code runs unchanged:

- SSLContext(PROTOCOL_TLS_CLIENT or PROTOCOL_TLS_SERVER): verifies nothing
  until `verify_mode = CERT_REQUIRED` (a client then checks the host name
  too, as mbedtls checks the certificate's name); TLS 1.2 at most, as
  MicroPython's mbedtls, so handshakes fail where they fail there.
- load_cert_chain(cert, key), load_verify_locations(cafile=, cadata=):
  DER or PEM, a file name or the bytes themselves.
- Errors as MicroPython raises them: OSError(-0x7780,
  'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE') and the like, printed as its args; a
  certificate that fails verification: ValueError('\\nThe certificate ...\\n').
- wrap_socket(sock, server_side=False, key=None, cert=None, ...): the
  module function of MicroPython's ssl.

Every other name is CPython's ssl's, so code written for CPython still works.
"""
import builtins
import os
import socket as _socket
import ssl as _ssl

CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED = 0, 1, 2   # ints, as MicroPython prints them
PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER = 0, 1
_PROTOCOLS = {PROTOCOL_TLS_CLIENT: _ssl.PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER: _ssl.PROTOCOL_TLS_SERVER}


def __getattr__(name):
    return getattr(_ssl, name)


class OSError(builtins.OSError):
    """MicroPython's TLS error: OSError(code, 'MBEDTLS_ERR_...'), which it
    prints as the tuple of its args."""

    def __str__(self):
        return str(self.args)


# mbedtls's codes for what OpenSSL reports as (reason, or exception class)
_FATAL_ALERT = (-0x7780, "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE")
_NO_CLIENT_CERT = (-0x7480, "MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE")
_CONN_EOF = (-0x7280, "MBEDTLS_ERR_SSL_CONN_EOF")
_UNEXPECTED = (-0x7700, "MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE")
_REASONS = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": _NO_CLIENT_CERT,
    "WRONG_VERSION_NUMBER": _UNEXPECTED, "HTTP_REQUEST": _UNEXPECTED, "HTTPS_PROXY_REQUEST": _UNEXPECTED,
    "UNEXPECTED_MESSAGE": _UNEXPECTED, "UNEXPECTED_RECORD": _UNEXPECTED,
}
# mbedtls's words for OpenSSL's X509_V_ERR_* codes
_VERIFY = {
    62: "The certificate Common Name (CN) does not match with the expected CN",
    10: "The certificate validity has expired",
    9: "The certificate validity starts in the future",
    23: "The certificate has been revoked (is on a CRL)",
}
_NOT_TRUSTED = "The certificate is not correctly signed by the trusted CA"


def _error(e):
    """MicroPython's error for CPython's SSLError e (e itself if it has none)."""
    if isinstance(e, _ssl.SSLCertVerificationError):
        return ValueError("\n%s\n" % _VERIFY.get(e.verify_code, _NOT_TRUSTED))
    reason = getattr(e, "reason", None) or ""
    if isinstance(e, _ssl.SSLEOFError):
        return OSError(*_CONN_EOF)
    if reason in _REASONS:
        return OSError(*_REASONS[reason])
    if "ALERT" in reason:   # the peer refused the handshake (SSLV3_ALERT_..., TLSV1_ALERT_...)
        return OSError(*_FATAL_ALERT)
    return e


_LINGER_SECS = 1


class _SSLSocket(_ssl.SSLSocket):
    """CPython's SSL socket, with MicroPython's errors. Made with
    suppress_ragged_eofs=False: a peer gone during the handshake is an error
    (MBEDTLS_ERR_SSL_CONN_EOF), after it the end of the stream, as there."""

    def _failed(self, e, at_end):
        if isinstance(e, (_ssl.SSLWantReadError, _ssl.SSLWantWriteError)):
            raise e   # not an error: the loop waits (uasyncio's streams look for these)
        handshaking = self.version() is None
        if isinstance(e, _ssl.SSLEOFError):
            if not handshaking:
                return at_end
        elif handshaking and self.server_side:
            self._linger()
        raise _error(e) from None

    def _linger(self):
        # A refused client is still sending the rest of its handshake when
        # the alert goes out. MicroPython's server keeps the socket until it
        # is collected, so the client reads the alert; here a dropped socket
        # closes at once, and the client would get a reset instead. A
        # duplicate of the fd keeps the connection a second longer.
        try:
            dup = _socket.socket(fileno=os.dup(self.fileno()))
        except builtins.OSError:
            return
        from uasyncio.v3 import get_event_loop
        get_event_loop().call_later(_LINGER_SECS, dup.close)

    def recv(self, buflen=1024, flags=0):
        try:
            return super().recv(buflen, flags)
        except _ssl.SSLError as e:
            return self._failed(e, b"")

    def recv_into(self, buffer, nbytes=None, flags=0):
        try:
            return super().recv_into(buffer, nbytes, flags)
        except _ssl.SSLError as e:
            return self._failed(e, 0)

    def read(self, len=1024, buffer=None):
        try:
            return super().read(len, buffer)
        except _ssl.SSLError as e:
            return self._failed(e, b"" if buffer is None else 0)

    def send(self, data, flags=0):
        try:
            return super().send(data, flags)
        except _ssl.SSLError as e:
            return self._failed(e, 0)

    def sendall(self, data, flags=0):
        try:
            return super().sendall(data, flags)
        except _ssl.SSLError as e:
            return self._failed(e, None)

    def write(self, data):
        try:
            return super().write(data)
        except _ssl.SSLError as e:
            return self._failed(e, 0)

    def do_handshake(self, block=False):
        try:
            return super().do_handshake(block)
        except _ssl.SSLError as e:
            return self._failed(e, None)


def _data(x):
    """A file's bytes (x a path), or x itself (bytes)."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    with open(x, "rb") as f:
        return f.read()


def _is_pem(data):
    return data.lstrip().startswith(b"-----BEGIN")


def _pem(label, der):
    return _ssl.DER_cert_to_PEM_cert(der).replace("CERTIFICATE", label)


class SSLContext(_ssl.SSLContext):
    """MicroPython's SSLContext: see the module's documentation."""

    sslsocket_class: "type[_ssl.SSLSocket]" = _SSLSocket

    def __new__(cls, protocol=PROTOCOL_TLS_CLIENT, *args, **kwargs):
        return super().__new__(cls, _PROTOCOLS.get(protocol, protocol), *args, **kwargs)

    def __init__(self, protocol=PROTOCOL_TLS_CLIENT, *args, **kwargs):
        if self.protocol == _ssl.PROTOCOL_TLS_CLIENT:
            self.verify_mode = CERT_NONE   # MicroPython's client default
        self.maximum_version = _ssl.TLSVersion.TLSv1_2   # MicroPython's mbedtls: TLS 1.2

    @property
    def verify_mode(self):
        return int(_ssl.SSLContext.verify_mode.fget(self))

    @verify_mode.setter
    def verify_mode(self, value):
        client = self.protocol == _ssl.PROTOCOL_TLS_CLIENT
        if value == CERT_NONE and client:
            self.check_hostname = False   # (CPython refuses CERT_NONE while it is on)
        _ssl.SSLContext.verify_mode.fset(self, value)
        if value != CERT_NONE and client:
            self.check_hostname = True    # mbedtls checks the name when it verifies

    def load_cert_chain(self, certfile, keyfile=None, password=None):
        """cert and key: DER or PEM, each a file name or bytes."""
        if isinstance(certfile, str) and (keyfile is None or isinstance(keyfile, str)):
            cert = _data(certfile)
            key = _data(keyfile) if keyfile is not None else None
            if _is_pem(cert) and (key is None or _is_pem(key)):   # CPython's way
                return super().load_cert_chain(certfile, keyfile, password)
        else:
            cert, key = _data(certfile), _data(keyfile) if keyfile is not None else None
        if _is_pem(cert):
            cert_pem = cert.decode("ascii", "replace")
        else:
            try:
                _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=cert)
            except (_ssl.SSLError, builtins.OSError, ValueError, TypeError):
                raise ValueError("invalid cert") from None
            cert_pem = _pem("CERTIFICATE", cert)
        if key is None or _is_pem(key):
            labels = [None]
        else:
            labels = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]   # PKCS#8, SEC1, PKCS#1
        for label in labels:
            text = cert_pem + (_pem(label, key) if label else (key or b"").decode("ascii", "replace"))
            try:
                return self._load_chain_text(text, password)
            except _ssl.SSLError:
                pass
        raise ValueError("invalid key")

    def _load_chain_text(self, text, password):
        # CPython loads a chain from a file only: one in memory (memfd), not on disk.
        fd = os.memfd_create("uasyncio-cert-chain", os.MFD_CLOEXEC)
        try:
            os.write(fd, text.encode("ascii"))
            super().load_cert_chain("/proc/self/fd/%d" % fd, None, password)
        finally:
            os.close(fd)

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):
        """cafile: a file name, DER or PEM; cadata: DER or PEM bytes (or str)."""
        if cafile is not None:
            cadata = _data(cafile)
        if isinstance(cadata, (bytes, bytearray)) and _is_pem(cadata):
            cadata = bytes(cadata).decode("ascii")
        try:
            return super().load_verify_locations(None, capath, cadata)
        except _ssl.SSLError:
            raise ValueError("invalid cert") from None

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, suppress_ragged_eofs=False,
                    server_hostname=None, session=None):
        return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                   server_hostname, session)


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE, cadata=None,
                server_hostname=None, do_handshake=True):
    """MicroPython's ssl.wrap_socket(): key and cert as data (DER or PEM)."""
    ctx = SSLContext(PROTOCOL_TLS_SERVER if server_side else PROTOCOL_TLS_CLIENT)
    if cert is not None or key is not None:
        ctx.load_cert_chain(cert, key)
    if cadata is not None:
        ctx.load_verify_locations(cadata=cadata)
    ctx.verify_mode = cert_reqs
    return ctx.wrap_socket(sock, server_side=server_side, server_hostname=server_hostname,
                           do_handshake_on_connect=do_handshake)
