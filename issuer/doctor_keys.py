"""`pramaan doctor`, the keys and the TSA. A process that signs (no Redis: the API itself; with
Redis: the workers) gets every check of `pramaan keys check` (signing/key_check.py): the keys
open, match their certificates and chain to the roots, nothing expires within the margin, a
test page signs and validates. An API process beside Redis holds no private key by design: there
the verify trust store must load. The TSA, when one is configured, is asked for a timestamp."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from issuer.doctor import Check
from issuer.runtime import signer_config
from issuer.settings import Settings
from signing.config import SignerConfig
from signing.errors import SigningError

TSA_TIMEOUT = 5.0  # seconds at most for the TSA's answer here, whatever signing allows it
TSA_CHECK = "time-stamping authority"  # the name signing/key_check.py gives its TSA check
RENEW = ("have your CA issue a new certificate and stage it: "
         "`pramaan keys rotate --from DIR`")
FIXES = {
    "key_material_missing": "put the key and certificate files in place in {keys} "
                            "(development: `pramaan keys init`)",
    "key_password_missing": "set PRAMAAN_KEY_PASSWORD to the key file's password",
    "key_cert_mismatch": "the private key is not the certificate's: install the matching pair",
    "bad_key_usage": "have the CA issue a certificate with the key usage signing needs",
    "signer_untrusted": "install the CA certificates (ca.crt) and root (root.crt) that issued "
                        "the signer's certificate in {keys}",
    "certificate_not_valid": RENEW,
    "tsa_unavailable": "check PRAMAAN_TSA_URL and that this machine reaches it (proxy, "
                       "firewall); until it answers, certificates wait and the sweeper retries",
}


def key_checks(settings: Settings, days: int) -> list[Check]:
    """The keys' checks and then the TSA's, as this process would use them."""
    config = replace(signer_config(settings), tsa_timeout=min(settings.tsa_timeout,
                                                              TSA_TIMEOUT))
    checks = _production_keys(settings, config)
    if _verifies_only(settings, config):
        return [*checks, _trust_store(config), *_tsa_probe(config)]
    from signing.key_check import check_keys

    found = check_keys(config, margin=dt.timedelta(days=days))
    for item in found:
        area = "TSA" if item.name == TSA_CHECK else "keys"
        checks.append(Check(area, item.name, item.ok, item.detail,
                            "" if item.ok else _fix(item.name, item.detail, settings)))
    if not (config.tsa_url or config.dev_tsa):
        checks.append(_no_tsa())
    return checks


def _verifies_only(settings: Settings, config: SignerConfig) -> bool:
    """An API process beside Redis (workers sign) with no private key here at all."""
    return bool(settings.redis_url) and settings.signer_backend == "file" \
        and not settings.pkcs11_seal_key_label \
        and not config.key_path.exists() and not config.seal_key_path.exists()


def _trust_store(config: SignerConfig) -> Check:
    from signing.trust_store import TrustStore

    try:
        store = TrustStore.from_config(config)
    except SigningError as exc:
        return Check("keys", "trust store", False, f"{exc} [{exc.code}]",
                     "put the seal certificate (seal.crt) and trust root (root.crt) in "
                     f"{config.seal_cert_path.parent}")
    return Check("keys", "trust store", True,
                 f"no private key here and REDIS_URL is set: an API process, which only "
                 f"verifies (workers sign); {len(store.seal_trust.entries)} seal "
                 f"certificate(s) and {len(store.roots)} trust root(s) load")


def _tsa_probe(config: SignerConfig) -> list[Check]:
    if not config.tsa_url:
        return []  # the development TSA and "none" need nothing reached from here
    from signing.tsa_probe import probe_tsa

    try:
        when = probe_tsa(config.tsa_url, timeout=config.tsa_timeout)
    except SigningError as exc:
        return [Check("TSA", TSA_CHECK, False, str(exc), FIXES["tsa_unavailable"])]
    return [Check("TSA", TSA_CHECK, True,
                  f"{config.tsa_url} answered (its time: {when:%Y-%m-%d %H:%M:%S} UTC)")]


def _no_tsa() -> Check:
    return Check("TSA", TSA_CHECK, True, "none configured (PRAMAAN_TSA_URL=none): signatures "
                 "are PAdES B-B, without a trusted time")


def _production_keys(settings: Settings, config: SignerConfig) -> list[Check]:
    # The development PKI keeps its root's private key beside the others; a CA's never is.
    root_key = config.seal_cert_path.parent / "root.key"
    if settings.development or not root_key.exists():
        return []
    return [Check("keys", "development keys", False, f"{root_key} is here: these are "
                  "development keys (made by `pramaan init` or `pramaan keys init`), never for "
                  "production", "install the keys and certificates your CA issued, and keep no "
                  "CA key on this machine")]


def _fix(name: str, detail: str, settings: Settings) -> str:
    code = detail.rsplit("[", 1)[-1].rstrip("]") if detail.endswith("]") else ""
    if name.endswith(" validity"):
        return RENEW
    if code == "key_material_missing" and settings.signer_backend == "pkcs11" \
            and name == "document signer":
        return ("check PRAMAAN_PKCS11_MODULE, PRAMAAN_PKCS11_TOKEN_LABEL, "
                "PRAMAAN_PKCS11_KEY_LABEL and PRAMAAN_PKCS11_PIN")
    if name == "test signature":
        return "fix the problems above; `pramaan keys check` then signs a test page again"
    template = FIXES.get(code, "`pramaan keys check` shows the keys' checks alone")
    return template.format(keys=settings.keys_dir)
