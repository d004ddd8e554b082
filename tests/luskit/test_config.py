"""params.yaml loading: types, unknown keys and range checks give clear errors."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from luskit.config import ConfigError, load_section, require


@dataclass(frozen=True)
class Inner:
    a: int = 1
    b: float = 0.5


@dataclass(frozen=True)
class Outer:
    n: int = 3
    span: tuple[float, float] = (1.0, 2.0)
    names: tuple[str, ...] = ("x",)
    inner: Inner = Inner()
    table: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        require(self.n >= 0, f"n must be >= 0, got {self.n}")


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_converts_nested_types(tmp_path):
    path = write(tmp_path, {"s": {"n": 2, "span": [1, 3], "names": ["a", "b"], "inner": {"b": 2}, "table": {"k": 1}}})
    got = load_section(path, "s", Outer)
    assert got == Outer(n=2, span=(1.0, 3.0), names=("a", "b"), inner=Inner(b=2.0), table={"k": 1.0})
    assert isinstance(got.span[0], float)


@pytest.mark.parametrize(
    "section, fragment",
    [
        ({"n": -1}, "n must be >= 0"),
        ({"nn": 1}, "unknown key(s) ['nn']"),
        ({"n": "three"}, "s.n: expected int"),
        ({"span": [1, 2, 3]}, "expected 2 values"),
        ({"inner": {"a": True}}, "s.inner.a: expected int"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path, section, fragment):
    path = write(tmp_path, {"s": section})
    with pytest.raises(ConfigError) as err:
        load_section(path, "s", Outer)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_missing_section_and_file(tmp_path):
    with pytest.raises(ConfigError, match="section 's:' is missing"):
        load_section(write(tmp_path, {"other": {}}), "s", Outer)
    with pytest.raises(ConfigError, match="not found"):
        load_section(tmp_path / "nope.yaml", "s", Outer)
