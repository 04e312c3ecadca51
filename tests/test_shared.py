"""The shared-data helper: a missing path skips a test on a fresh clone and fails it in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared import REQUIRE, require_shared


def test_a_present_path_is_returned(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dev.jsonl").write_text("{}\n")
    monkeypatch.setenv(REQUIRE, "1")
    assert require_shared("data", "dev.jsonl", root=tmp_path) == tmp_path / "data" / "dev.jsonl"
    assert require_shared(root=tmp_path) == tmp_path


@pytest.mark.parametrize("value", [None, "", "0"])
def test_a_missing_path_skips_unless_required(tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv(REQUIRE, raising=False)
    else:
        monkeypatch.setenv(REQUIRE, value)
    with pytest.raises(pytest.skip.Exception, match="absent"):
        require_shared("models", "nothing-here", root=tmp_path)


def test_a_missing_path_fails_when_required(tmp_path, monkeypatch):
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match=f"nothing-here is absent.*{REQUIRE}"):
        require_shared("models", "nothing-here", root=tmp_path)


def test_ci_requires_the_shared_files():
    script = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert f"export {REQUIRE}=1" in script.split("make test")[0]
