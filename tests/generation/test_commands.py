"""Model management commands: tiny sets, checksum verification, clear offline errors."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


def test_make_tiny_models_then_verify_every_file(tiny_models, capsys):
    call_command("make_tiny_models", "--sets", "tiny-sd15")
    from generation.inference.registry import ModelRegistry

    model_set = ModelRegistry(tiny_models).verify_model_set("tiny-sd15", full_hash=True)
    assert model_set.files and all(len(f.sha256) == 64 for f in model_set.files)
    assert "tiny-sd15" in capsys.readouterr().out


def test_download_without_network_fails_with_a_clear_message(tmp_path, settings):
    settings.MODEL_ROOT = tmp_path
    with pytest.raises(CommandError, match="network access"):
        call_command("download_models", "sd15")


def test_verify_only_reports_a_missing_set_with_the_command_to_fix_it(tmp_path, settings):
    settings.MODEL_ROOT = tmp_path
    with pytest.raises(CommandError, match="download_models sd15"):
        call_command("download_models", "sd15", "--verify-only")
