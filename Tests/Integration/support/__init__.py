"""Fixtures for the black-box integration suite: PKI, upstream test servers, a DNS stub, the bridge process."""
