import os

import pytest

from veotui.core.errors import DataDirBusy
from veotui.datadir.lock import DataDirLock


def test_one_owner_per_directory_and_the_refusal_says_how_to_attach(tmp_path):
    first = DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(DataDirBusy, match=f"in use by veotui process {os.getpid()}; quit it first"):
        DataDirLock(tmp_path).acquire()
    first.describe("http://127.0.0.1:8765")
    with pytest.raises(DataDirBusy) as refused:
        DataDirLock(tmp_path).acquire()
    assert refused.value.url == "http://127.0.0.1:8765"
    assert "attach with: veotui --remote http://127.0.0.1:8765" in str(refused.value)
    first.release()
    second = DataDirLock(tmp_path)
    second.acquire()
    second.release()
