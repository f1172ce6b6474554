import copy
from pathlib import Path

import pytest
import yaml

from deepsky.config import ConfigError, config_hash, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def default():
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "lecture.yaml"])
def test_shipped_configs_are_valid(name):
    load_config(ROOT / "config" / name)


def test_unknown_key_is_named(default):
    default["experiments"]["lens_finding"]["training"]["epochz"] = 3
    with pytest.raises(ConfigError, match=r"experiments\.lens_finding\.training\.epochz.*unknown key"):
        validate_config(default)


def test_unknown_top_level_key(default):
    default["sed"] = 1
    with pytest.raises(ConfigError, match="'sed': unknown key"):
        validate_config(default)


def test_wrong_type_is_named(default):
    default["experiments"]["lens_finding"]["training"]["epochs"] = "ten"
    with pytest.raises(ConfigError, match=r"experiments\.lens_finding\.training\.epochs.*not of type 'integer'"):
        validate_config(default)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1])
def test_test_fraction_outside_unit_interval(default, value):
    default["datasets"]["lenses"]["split"]["test_fraction"] = value
    with pytest.raises(ConfigError, match=r"datasets\.lenses\.split\.test_fraction"):
        validate_config(default)


def test_unknown_architecture_is_named(default):
    default["experiments"]["lens_finding"]["architectures"].append("resnet9000")
    position = len(default["experiments"]["lens_finding"]["architectures"]) - 1
    with pytest.raises(ConfigError, match=rf"architectures\[{position}\].*'resnet9000'"):
        validate_config(default)


def test_unknown_dataset(default):
    default["experiments"]["lens_finding"]["dataset"] = "nope"
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        validate_config(default)


def test_simulation_keys_are_checked(default):
    default["datasets"]["lenses"]["simulation"]["not_a_setting"] = 1
    with pytest.raises(ConfigError, match=r"datasets\.lenses\.simulation\.not_a_setting"):
        validate_config(default)


def test_config_hash_is_order_independent(default):
    shuffled = dict(reversed(list(copy.deepcopy(default).items())))
    assert config_hash(default) == config_hash(shuffled)
    default["seed"] += 1
    assert config_hash(default) != config_hash(shuffled)


def test_check_config_names_the_yaml_line(tmp_path, capsys):
    from deepsky.cli import main

    text = (ROOT / "config/config.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text) if t.strip().startswith("epochs:"))
    text[line] = text[line].replace("epochs:", "epochs: [6")  # an unclosed flow sequence
    (tmp_path / "broken.yaml").write_text("\n".join(text))
    assert main(["check-config", str(tmp_path / "broken.yaml")]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML at line" in err
    reported = int(err.split("at line ")[1].split(",")[0])
    assert line + 1 <= reported <= line + 3
