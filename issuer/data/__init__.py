"""Data files shipped with the issuer (the RTS holiday calendar)."""
