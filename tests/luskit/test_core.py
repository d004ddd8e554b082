"""Pseudonyms and atomic writes."""

import warnings

import pytest

from luskit import pseudonym
from luskit.atomic import write_bytes_atomic, write_bytes_new


def test_pseudonyms_are_keyed_stable_and_unlinkable():
    key, other = b"k" * 32, b"o" * 32
    pid = pseudonym.patient_pseudonym(key, "12345678")
    assert pid == pseudonym.patient_pseudonym(key, " 12345678 ")  # stray padding in headers
    assert pid != pseudonym.patient_pseudonym(other, "12345678")
    assert "12345678" not in pid and pid.startswith("P") and len(pid) == 11
    vid = pseudonym.video_pseudonym(key, pid, "1.2.3")
    assert vid.startswith(pid + "_V") and vid != pseudonym.video_pseudonym(key, pid, "1.2.4")
    with pytest.raises(ValueError):
        pseudonym.patient_pseudonym(key, "  ")


def test_key_sources(monkeypatch, tmp_path):
    monkeypatch.delenv(pseudonym.KEY_ENV, raising=False)
    monkeypatch.delenv(pseudonym.KEY_FILE_ENV, raising=False)
    with pytest.warns(pseudonym.DemoKeyWarning):
        assert pseudonym.load_key() == (pseudonym.DEMO_KEY, True)
    keyfile = tmp_path / "key"
    keyfile.write_text("a" * 64 + "\n")
    monkeypatch.setenv(pseudonym.KEY_FILE_ENV, str(keyfile))
    assert pseudonym.load_key() == (b"a" * 64, False)
    monkeypatch.setenv(pseudonym.KEY_ENV, "from-env-secret")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pseudonym.load_key() == (b"from-env-secret", False)


def test_write_new_never_overwrites(tmp_path):
    target = tmp_path / "data" / "x.bin"
    assert write_bytes_new(target, b"abc") is True
    assert write_bytes_new(target, b"abc") is False  # identical: a no-op
    with pytest.raises(FileExistsError, match="never overwrites"):
        write_bytes_new(target, b"abd")
    assert target.read_bytes() == b"abc"
    assert [p.name for p in target.parent.iterdir()] == ["x.bin"]  # no temp files left


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    from luskit.atomic import write_atomic

    target = write_bytes_atomic(tmp_path / "t.txt", b"old")

    def boom(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_atomic(target, boom)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]
