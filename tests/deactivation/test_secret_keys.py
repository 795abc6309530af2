"""Derived keys: one per purpose, stable for one secret, a local secret created once."""

from __future__ import annotations

from deactivation.secret_keys import derived_key
from deactivation.settings import Settings


def test_purposes_get_different_keys_from_one_secret(tmp_path):
    settings = Settings(SECRET_KEY="s3cret", DATA_DIR=tmp_path, _env_file=None)
    assert derived_key(settings, "a") == derived_key(settings, "a") != derived_key(settings, "b")
    other = Settings(SECRET_KEY="other", DATA_DIR=tmp_path, _env_file=None)
    assert derived_key(other, "a") != derived_key(settings, "a")
    assert not (tmp_path / "secret_key").exists(), "a configured secret leaves no file"


def test_without_a_secret_one_is_created_once_and_kept_private(tmp_path):
    settings = Settings(DATA_DIR=tmp_path, _env_file=None)
    first = derived_key(settings, "a")
    assert derived_key(Settings(DATA_DIR=tmp_path, _env_file=None), "a") == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
