"""The real data in <repo>/../shared/data: skip tests that need it when absent, fail under CI=true."""
import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        message = f"real data {path} is absent (see ../shared/data/README.md)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
