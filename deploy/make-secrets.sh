#!/bin/sh
# Create the deployment's secrets once, in deploy/secrets/ (never commit them):
#   master_key              base64 32-byte master key (wraps every transcript's data key)
#   gateway_ed25519.key     raw 32-byte Ed25519 seed (signs every node's handshake)
#   db_password, store_url  PostgreSQL password and the gateway's DSN using it
# Existing files are kept: regenerating the master key or the identity would make stored
# transcripts unreadable / break widgets pinning the verify key. Back them up offline.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
[ -s secrets/master_key ] || head -c 32 /dev/urandom | base64 > secrets/master_key
[ -s secrets/gateway_ed25519.key ] || head -c 32 /dev/urandom > secrets/gateway_ed25519.key
if [ ! -s secrets/db_password ]; then
  head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > secrets/db_password
fi
[ -s secrets/store_url ] || printf 'postgresql://cipherdesk:%s@postgres:5432/cipherdesk\n' \
  "$(cat secrets/db_password)" > secrets/store_url
# The gateway containers run as uid 10001 and read the secrets through bind mounts.
if [ "$(id -u)" = 0 ]; then
  chown 10001:10001 secrets/master_key secrets/gateway_ed25519.key secrets/store_url
fi
chmod 0400 secrets/*
echo "secrets in $(pwd)/secrets — back up master_key and gateway_ed25519.key offline"
