#!/bin/bash
# Test certificates for S4 (SIP over TLS), made fresh on every call; never used outside tests.
#   ca.pem / ca.key          the test CA ("xsgw test CA") that tests trust
#   tls.test.pem / .key      server certificate for tls.test (SAN DNS:tls.test), from the CA
#   sip.test.pem / .key      the gateway's certificate (SAN DNS:sip.test), from the CA
#   untrusted.test.pem / .key  self-signed for untrusted.test: no test trusts it
# usage: make-certs.sh DIR   (DIR is created; existing files are replaced)
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR}
command -v openssl >/dev/null || { echo "make-certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
days=30
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }
key ca.key
openssl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=xsgw test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem 2>/dev/null
leaf() {  # name: a certificate for DNS name $1 signed by the test CA
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$1" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days $days \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
leaf tls.test
leaf sip.test
key untrusted.test.key
openssl req -x509 -new -key untrusted.test.key -sha256 -days $days -subj "/CN=untrusted.test" \
  -addext "subjectAltName=DNS:untrusted.test" -out untrusted.test.pem 2>/dev/null
rm -f ca.srl
