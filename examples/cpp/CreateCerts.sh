#!/bin/sh
# CreateCerts.sh [DIR] -- certificates for the example server and client,
# made the way nilshenrich/TCP_ServerClient v2's CreateCerts.sh users do:
# a CA with `openssl req -x509`, server and client certificates signed with
# `openssl x509 -req` (X.509 v1, CN=localhost, the OU tells them apart).
# Needs the openssl tool. For demos only -- not a real PKI.
set -eu
dir=${1:-certs}
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca_key.pem -out ca_cert.pem -days 365 \
  -subj "/C=DE/L=Stuttgart/O=Example/OU=CA/CN=localhost" 2>/dev/null
for who in server client; do
  openssl req -new -newkey rsa:2048 -nodes -keyout ${who}_key.pem -out ${who}.csr \
    -subj "/C=DE/L=Stuttgart/O=Example/OU=$who/CN=localhost" 2>/dev/null
  openssl x509 -req -in ${who}.csr -CA ca_cert.pem -CAkey ca_key.pem -CAcreateserial \
    -out ${who}_cert.pem -days 365 2>/dev/null
  rm -f ${who}.csr
done
rm -f ca_cert.srl
echo "certificates in $PWD"
