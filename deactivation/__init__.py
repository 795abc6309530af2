"""Deactivation analytics: the shared package (settings, envelope, adapters, the `deact` CLI)."""
