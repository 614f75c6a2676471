"""Everything one process needs, built once from Settings: database, store, renderer, keys, jobs.

Built by the app factory, the CLI or the worker; never at import time. The heavy parts (typst
compiler, keys) are created on first use so a process that only reads records never loads them.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from issuer.db import make_engine, make_session_factory
from issuer.errors import ConfigError
from issuer.settings import Settings
from issuer.storage import Store, open_store

if TYPE_CHECKING:
    from issuer.jobs import Dispatcher
    from issuer.render import Renderer
    from signing.config import SignerConfig
    from signing.keyring import Keyring
    from signing.trust_store import TrustStore
    from signing.validate import FreshRevinfo


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.database_url,
                                          pool_size=max(5, settings.web_threads))
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.store: Store = open_store(settings.store_location)

    @functools.cached_property
    def renderer(self) -> Renderer:
        from issuer.render import Renderer

        return Renderer()

    @functools.cached_property
    def keyring(self) -> Keyring:
        """The signing keys (private): only a process that issues opens them."""
        from signing.keyring import Keyring

        config = signer_config(self.settings)
        keyring = Keyring.from_config(config, verify_base_url=self.settings.verify_base_url)
        from issuer.certtypes import known_types

        unknown = sorted(set(self.settings.signature_levels) - set(known_types()))
        if unknown:
            keyring.close()
            raise ConfigError(f"PRAMAAN_SIGNATURE_LEVELS: no certificate type "
                              f"{', '.join(unknown)} (the types: {', '.join(known_types())})")
        levels = {**({"(default)": self.settings.signature_level}
                     if self.settings.signature_level else {}),
                  **self.settings.signature_levels}
        stamped = [code for code, level in levels.items() if level != "B-B"]
        if stamped and keyring.pades_b_t is None:
            keyring.close()
            raise ConfigError(f"PRAMAAN_SIGNATURE_LEVELS: {', '.join(stamped)} timestamped, but "
                              "no TSA is configured (PRAMAAN_TSA_URL)")
        long_term = [code for code, level in levels.items() if level in ("B-LT", "B-LTA")]
        if long_term and not keyring.pades_long_term:
            keyring.close()
            raise ConfigError(f"PRAMAAN_SIGNATURE_LEVELS: {', '.join(long_term)} long-term, "
                              "but there is no revocation information to embed (the "
                              "development TSA needs the dev CAs' keys in keys/)")
        return keyring

    @functools.cached_property
    def trust(self) -> TrustStore:
        """What verification trusts (certificates only): no private key is opened."""
        from signing.config import SignerConfig
        from signing.trust_store import TrustStore

        return TrustStore.from_config(SignerConfig.from_keys_dir(self.settings.keys_dir))

    @functools.cached_property
    def fresh_revinfo(self) -> FreshRevinfo:
        """Current revocation information a verification of a long-term signature uses: the
        development CAs' own (made from their keys in keys/), else fetched from the addresses
        the file's certificates name (signing/fetched_revinfo.py)."""
        from signing.fetched_revinfo import FetchedRevinfo
        from signing.keyring import revocation_of
        from signing.revocation import DevRevocationAuthority

        source = revocation_of(signer_config(self.settings))
        return source if isinstance(source, DevRevocationAuthority) else FetchedRevinfo()

    @functools.cached_property
    def dispatcher(self) -> Dispatcher:
        from issuer.jobs import make_dispatcher

        return make_dispatcher(self)

    def close(self) -> None:
        keyring = self.__dict__.get("keyring")  # only if this process opened the keys
        if keyring is not None:
            keyring.close()  # a PKCS#11 token's session, if the keys are there
        self.engine.dispose()


def signer_config(settings: Settings) -> SignerConfig:
    """The signing configuration of `settings`: the keys in keys/ (or the key files
    PRAMAAN_SIGNER_KEY_FILE and PRAMAAN_SEAL_KEY_FILE name), and which TSA timestamps
    (PRAMAAN_TSA_URL; unset: the development TSA in development when keys/ has one)."""
    from signing.config import SignerConfig

    config = SignerConfig.from_keys_dir(settings.keys_dir)
    tsa = settings.tsa_url
    if tsa is None:
        tsa = "dev" if settings.development and config.tsa_key_path.exists() else "none"
    reserve = settings.signature_reserve or (16384 if tsa == "none" else 24576)
    return replace(config, tsa_url=tsa if tsa.startswith("http") else None,
                   dev_tsa=tsa == "dev", tsa_timeout=settings.tsa_timeout,
                   dev_tsa_delay=settings.dev_tsa_delay_ms / 1000,
                   bytes_reserved=reserve,
                   backend=settings.signer_backend, pkcs11_module=settings.pkcs11_module,
                   pkcs11_token_label=settings.pkcs11_token_label,
                   pkcs11_key_label=settings.pkcs11_key_label,
                   pkcs11_seal_key_label=settings.pkcs11_seal_key_label,
                   key_path=settings.signer_key_file or config.key_path,
                   seal_key_path=settings.seal_key_file or config.seal_key_path)
