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
    assert pseudonym.environment_key() is None
    keyfile = tmp_path / "key"
    keyfile.write_text("a" * 64 + "\n")
    monkeypatch.setenv(pseudonym.KEY_FILE_ENV, str(keyfile))
    assert pseudonym.environment_key() == (b"a" * 64, "file")
    monkeypatch.setenv(pseudonym.KEY_ENV, "from-env-secret-0123")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pseudonym.resolve_key(synthetic_demo=False, demo_requested=False) == (b"from-env-secret-0123", "env")


def test_no_key_is_an_error_that_says_how_to_make_one(monkeypatch):
    monkeypatch.delenv(pseudonym.KEY_ENV, raising=False)
    monkeypatch.delenv(pseudonym.KEY_FILE_ENV, raising=False)
    with pytest.raises(pseudonym.PseudonymKeyError) as err:
        pseudonym.resolve_key(synthetic_demo=False, demo_requested=False)
    for step in ("openssl rand -hex 32 > ~/.luskit/key", "chmod 600 ~/.luskit/key",
                 "export LUSKIT_PSEUDONYM_KEY_FILE=~/.luskit/key"):
        assert step in str(err.value)
    assert pseudonym.resolve_key(synthetic_demo=True, demo_requested=False) == (pseudonym.DEMO_KEY, "demo")
    with pytest.warns(pseudonym.DemoKeyWarning):
        assert pseudonym.resolve_key(synthetic_demo=False, demo_requested=True) == (pseudonym.DEMO_KEY, "demo")


@pytest.mark.parametrize("where", ["env", "file"])
def test_environment_and_file_keys_have_the_same_floor(monkeypatch, tmp_path, where):
    monkeypatch.delenv(pseudonym.KEY_ENV, raising=False)
    monkeypatch.delenv(pseudonym.KEY_FILE_ENV, raising=False)

    def use(value: bytes) -> None:
        if where == "env":
            monkeypatch.setenv(pseudonym.KEY_ENV, value.decode())
        else:
            (tmp_path / "key").write_bytes(value)
            monkeypatch.setenv(pseudonym.KEY_FILE_ENV, str(tmp_path / "key"))

    short = b"x" * (pseudonym.MIN_KEY_BYTES - 1)
    use(short)
    with pytest.raises(pseudonym.PseudonymKeyError, match=f"shorter than {pseudonym.MIN_KEY_BYTES}") as err:
        pseudonym.environment_key()
    assert short.decode() not in str(err.value)  # the message never quotes the key
    use(b"x" * pseudonym.MIN_KEY_BYTES)
    assert pseudonym.environment_key() == (b"x" * pseudonym.MIN_KEY_BYTES, where)
    use(pseudonym.DEMO_KEY)
    with pytest.raises(pseudonym.PseudonymKeyError, match="PUBLIC demo key"):
        pseudonym.environment_key()


def test_without_key_drops_every_key_variable():
    env = {"PATH": "/bin", "LUSKIT_PSEUDONYM_KEY": "s" * 32, "LUSKIT_PSEUDONYM_KEY_FILE": "/k",
           "luskit_pseudonym_key": "s", "LUSKIT_PROJECT": "/p"}
    assert pseudonym.without_key(env) == {"PATH": "/bin", "LUSKIT_PROJECT": "/p"}


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
