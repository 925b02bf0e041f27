"""Config loading: YAML + overrides onto the typed schema; errors name the key and the file."""

import pytest

from taco_jax.config import ConfigError, load_config, save_config


def test_demo_and_nvidia_configs_load():
    demo = load_config("configs/demo.yaml")
    assert demo.data.corpus == "demo" and demo.model.n_frames_per_step == 3
    nv = load_config("configs/nvidia_ljspeech.yaml")
    assert nv.text.symbols == "nvidia_english_v1" and nv.model.attention_rnn_dim == 1024 and nv.optim.lr == 1e-3


def test_dotted_overrides_are_typed():
    cfg = load_config("configs/demo.yaml", ["optim.lr=3e-4", "data.batch_size=4", "run.name=x"])
    assert cfg.optim.lr == 3e-4 and cfg.data.batch_size == 4 and cfg.run.name == "x"


def test_unknown_key_names_key_and_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("model:\n  n_frames_per_step: 2\n  attention_heads: 4\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*model\.attention_heads"):
        load_config(str(f))


def test_wrong_type_names_key_and_file(tmp_path):
    f = tmp_path / "typed.yaml"
    f.write_text("optim:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"typed\.yaml.*optim\.lr"):
        load_config(str(f))
    with pytest.raises(ConfigError, match=r"--set data\.batch_size=many.*data\.batch_size"):
        load_config(None, ["data.batch_size=many"])


def test_bad_choice_and_bad_bucket(tmp_path):
    with pytest.raises(ConfigError, match="loss.mel_loss"):
        load_config(None, ["loss.mel_loss=huber"])
    with pytest.raises(ConfigError, match=r"data\.buckets\[0\].*multiple"):
        load_config(None, ["model.n_frames_per_step=3", "data.buckets=[[10,100]]"])


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("run:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml.*line"):
        load_config(str(f))


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config("configs/demo.yaml", ["optim.lr=2e-3"])
    save_config(cfg, str(tmp_path / "config.yaml"))
    assert load_config(str(tmp_path / "config.yaml")) == cfg
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
