#!/bin/sh
# make_v2_certs.sh DIR -- test certificates made the way users of
# nilshenrich/TCP_ServerClient v2 make them: the CA with `openssl req -x509`,
# server and client with `openssl x509 -req` and no extensions file, so the
# leaves are X.509 version 1 with no subjectAltName and no key usage, and
# every subject is CN=localhost with only the OU differing.
#
#   DIR/rsa/      RSA-2048: ca.pem ca.key server.pem server.key client.pem client.key
#                 (server.key is PKCS#1, client.key PKCS#8)
#   DIR/ec/       the same with P-256 (server.key SEC1 from `openssl ecparam`,
#                 client.key PKCS#8)
#   DIR/unknown/  another CA with its own server and client (rejected by the above)
#   DIR/inter-rsa/, DIR/inter-ec/  leaves signed by an intermediate CA under
#                 rsa/ca or ec/ca, used without the intermediate (rejected):
#                 server.pem/.key, client.pem/.key (ca.pem: the intermediate)
#   DIR/self/     self-signed leaves: server.pem/.key, client.pem/.key
#   DIR/bad/      notpem.txt (not PEM), empty.pem
#
# The keys are written for the test run only; never commit them.
set -eu
dir=${1:?usage: make_v2_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
days=30
q() { "$@" >/dev/null 2>&1 || { echo "make_v2_certs.sh: failed: $*" >&2; "$@"; exit 1; }; }

# ca DIR SUBJECT KEYOPTS...: a CA made with `openssl req -x509` (v3, CA:TRUE).
ca() {
  d=$1 subj=$2; shift 2
  mkdir -p "$d"
  q openssl req -x509 "$@" -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days $days \
    -subj "$subj"
}

# key TYPE FILE: a private key of TYPE rsa1 (PKCS#1), rsa8 (PKCS#8),
# ec1 (SEC1 from `openssl ecparam`, with an EC PARAMETERS block) or ec8.
key() {
  case $1 in
    rsa1) q openssl genrsa -traditional -out "$2" 2048 ;;
    rsa8) q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" ;;
    ec1) q openssl ecparam -genkey -name prime256v1 -out "$2" ;;
    ec8) q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" ;;
  esac
}

# leaf DIR NAME CADIR SUBJECT KEYTYPE: key, CSR, then signed with
# `openssl x509 -req` and no extensions -> X.509 v1.
leaf() {
  d=$1 n=$2 c=$3 subj=$4
  mkdir -p "$d"
  key "$5" "$d/$n.key"
  q openssl req -new -key "$d/$n.key" -out "$d/$n.csr" -subj "$subj"
  q openssl x509 -req -in "$d/$n.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" \
    -CAcreateserial -out "$d/$n.pem" -days $days
  rm -f "$d/$n.csr"
}

full_subject="/C=DE/ST=Baden-Wuerttemberg/L=Stuttgart/O=Example Org/OU=client/CN=localhost"

ca rsa "/CN=localhost/OU=CA" -newkey rsa:2048
leaf rsa server rsa "/CN=localhost/OU=server" rsa1
leaf rsa client rsa "$full_subject" rsa8

ca ec "/CN=localhost/OU=CA" -newkey ec -pkeyopt ec_paramgen_curve:P-256
leaf ec server ec "/CN=localhost/OU=server" ec1
leaf ec client ec "$full_subject" ec8

# Same subject as rsa/ca (v2 users name every CA CN=localhost): only the
# signature tells them apart.
ca unknown "/CN=localhost/OU=CA" -newkey rsa:2048
leaf unknown server unknown "/CN=localhost/OU=server" rsa8
leaf unknown client unknown "/CN=localhost/OU=client" rsa8

# An intermediate CA (a real one: v3, CA:TRUE) under each CA; its leaves are
# used without it.
for c in rsa ec; do
  d=inter-$c
  mkdir -p $d
  key ec8 $d/ca.key
  q openssl req -new -key $d/ca.key -out $d/ca.csr -subj "/CN=localhost/OU=intermediate"
  printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > $d/ext.cnf
  q openssl x509 -req -in $d/ca.csr -CA $c/ca.pem -CAkey $c/ca.key -CAcreateserial \
    -extfile $d/ext.cnf -out $d/ca.pem -days $days
  rm -f $d/ca.csr $d/ext.cnf
  leaf $d server $d "/CN=localhost/OU=server" ec8
  leaf $d client $d "/CN=localhost/OU=client" ec8
done

# Self-signed leaves (v1, `openssl x509 -req -signkey`).
mkdir -p self
for n in server client; do
  key ec8 self/$n.key
  q openssl req -new -key self/$n.key -out self/$n.csr -subj "/CN=localhost/OU=$n"
  q openssl x509 -req -in self/$n.csr -signkey self/$n.key -out self/$n.pem -days $days
  rm -f self/$n.csr
done

mkdir -p bad
echo "this is not a PEM file" > bad/notpem.txt
: > bad/empty.pem
rm -f ./*/ca.srl
chmod -R u+rwX,go-rwx .
echo "certificates written to $PWD"
