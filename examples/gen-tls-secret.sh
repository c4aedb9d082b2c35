#!/bin/sh
# Makes tls-secret.yaml, the certificate ingress-https.yaml terminates TLS
# with. Seed 000 ("A Detailed Explanation of Services") runs these two
# commands by hand; two changes make the result usable:
#   - the Secret goes into namespace dev, next to the Ingress that names it
#     (the seed creates it in the default namespace, where ingress-https
#     cannot see it);
#   - the certificate also names nginx.itheima.com and tomcat.itheima.com as
#     subjectAltNames (clients ignore the CN) and is valid for ten years, so
#     the checked-in copy keeps working.
# The key is a throwaway for this example: never use it for anything else.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -sha256 -nodes -days 3650 -newkey rsa:2048 \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" \
  -subj "/C=CN/ST=BJ/L=BJ/O=nginx/CN=itheima.com" \
  -addext "subjectAltName=DNS:itheima.com,DNS:nginx.itheima.com,DNS:tomcat.itheima.com" 2>/dev/null
{
  echo "# Seed 000 (\"A Detailed Explanation of Services\"), Https proxy: the"
  echo "# certificate and key ingress-https.yaml terminates TLS with (Secret"
  echo "# tls-secret in namespace dev). Made by gen-tls-secret.sh; a throwaway"
  echo "# self-signed key for this example only."
  kubectl create secret tls tls-secret --namespace dev \
    --key "$tmp/tls.key" --cert "$tmp/tls.crt" --dry-run=client -o yaml | grep -v '^  creationTimestamp: null$'
} > tls-secret.yaml
echo "wrote $(pwd)/tls-secret.yaml"
