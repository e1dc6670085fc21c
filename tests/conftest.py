"""Shared pytest configuration: the hypothesis profile used by CI and by `make test`."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny networks: torch's intra-op threads only add synchronisation, which stalls on a shared CPU.

    ``LORA_ASYM_TEST_THREADS`` sets another count (``tests/test_reproducibility.py`` runs under 2)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("LORA_ASYM_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def _model_cache(tmp_path_factory):
    """Pretrained models of the tests go to a temporary folder, not the user's ``~/.cache``
    (``peft_bridge.foundation.model_cache_dir``); subprocesses inherit it."""
    previous = os.environ.get("LORA_ASYM_MODEL_CACHE")
    os.environ["LORA_ASYM_MODEL_CACHE"] = str(tmp_path_factory.mktemp("models"))
    yield
    if previous is None:
        os.environ.pop("LORA_ASYM_MODEL_CACHE", None)
    else:
        os.environ["LORA_ASYM_MODEL_CACHE"] = previous
