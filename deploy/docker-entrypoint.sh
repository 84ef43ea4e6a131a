#!/bin/sh
# Load secrets from files (Docker/Kubernetes secrets) rather than plain environment values:
#   CIPHERDESK_MASTER_KEY_FILE  -> CIPHERDESK_MASTER_KEY (one base64 key per line, newest
#                                  first, becomes the comma-separated env format)
#   CIPHERDESK_IDENTITY_FILE    -> copied to $CIPHERDESK_DATA_DIR/gateway_ed25519.key (0600)
#   CIPHERDESK_<NAME>_FILE      -> CIPHERDESK_<NAME> (e.g. CIPHERDESK_STORE_URL_FILE for a
#                                  DSN with a password, CIPHERDESK_METRICS_TOKEN_FILE)
# Every node must get the SAME master key and identity (deploy/README.md, "Key management").
set -eu

read_secret() {  # $1 = variable holding the path
  eval "path=\${$1}"
  if [ ! -r "$path" ]; then
    echo "docker-entrypoint: cannot read $1 ($path)" >&2
    exit 2
  fi
}

if [ -n "${CIPHERDESK_IDENTITY_FILE:-}" ]; then
  read_secret CIPHERDESK_IDENTITY_FILE
  target="${CIPHERDESK_DATA_DIR:-/var/lib/cipherdesk}/gateway_ed25519.key"
  umask 077
  if [ ! -f "$target" ] || ! cmp -s "$path" "$target"; then
    cp "$path" "$target.tmp"
    chmod 0600 "$target.tmp"
    mv "$target.tmp" "$target"
  fi
  unset CIPHERDESK_IDENTITY_FILE
fi

for var in $(env | sed -n 's/^\(CIPHERDESK_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
  read_secret "${var}_FILE"
  if [ "$var" = CIPHERDESK_MASTER_KEY ]; then
    value="$(tr -d ' \r' < "$path" | grep -v '^$' | paste -sd, -)"
  else
    value="$(cat "$path")"
  fi
  export "$var=$value"
  unset "${var}_FILE"
done

exec "$@"
