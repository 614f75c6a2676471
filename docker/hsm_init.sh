#!/bin/sh
# Moves the signing keys into the SoftHSM token (PKCS#11) for a trial of the HSM backend:
# makes the token (PRAMAAN_PKCS11_TOKEN_LABEL, default "pramaan") if absent, imports
# keys/signer.key and keys/seal.key under the labels the API and workers look for
# (PRAMAAN_PKCS11_KEY_LABEL, PRAMAAN_PKCS11_SEAL_KEY_LABEL) and deletes the key files, so the
# private keys then exist only in the token (its files on the hsm volume, SOFTHSM2_CONF).
# Idempotent: a key already moved is left alone. With a real HSM this step is the vendor's key
# ceremony instead, and PRAMAAN_PKCS11_MODULE names the vendor's library.
set -eu
: "${PRAMAAN_PKCS11_PIN:?the token user PIN}" "${PRAMAAN_PKCS11_SO_PIN:?the token SO PIN}"
keys=${PRAMAAN_KEYS_DIR:-${PRAMAAN_HOME:-/data}/keys}
token=${PRAMAAN_PKCS11_TOKEN_LABEL:-pramaan}
if ! softhsm2-util --show-slots | grep -q "Label: *$token *$"; then
  softhsm2-util --init-token --free --label "$token" \
    --pin "$PRAMAAN_PKCS11_PIN" --so-pin "$PRAMAAN_PKCS11_SO_PIN"
fi
move() {  # file label id
  if [ -f "$keys/$1" ]; then
    softhsm2-util --import "$keys/$1" --token "$token" --label "$2" --id "$3" \
      --pin "$PRAMAAN_PKCS11_PIN"
    rm -f "$keys/$1"
    echo "moved $keys/$1 into token $token as $2"
  fi
}
move signer.key "${PRAMAAN_PKCS11_KEY_LABEL:-signer}" 01
move seal.key "${PRAMAAN_PKCS11_SEAL_KEY_LABEL:-seal}" 02
