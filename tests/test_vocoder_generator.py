"""HiFi-GAN generator (issue 20, acceptance 1): layers, V1/V2/V3 parity with a PyTorch reference on a real eSpeak
mel, conversion round trips, weight norm, malformed and pickled files, vocoder files and configs."""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import import_torch

from taco_jax.convert import ConversionError, hifigan_flax_to_torch, hifigan_torch_to_flax, read_hifigan_generator
from taco_jax.convert.checkpoint_io import CheckpointFileError
from taco_jax.errors import UserError
from taco_jax.vocoder import (
    PRESETS,
    Generator,
    HifiganConfig,
    VocoderConfigError,
    VocoderFileError,
    fold_weight_norm,
    generator_param_count,
    init_generator_params,
    layers,
    load_hifigan_config,
    load_vocoder,
    output_length,
    save_vocoder,
)

torch = import_torch()
import hifigan_torch_reference as ref  # noqa: E402

# The reference uses torch.nn.utils.weight_norm on purpose: its state_dict spelling is the published one.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*is deprecated:FutureWarning")

# A generator that compiles in a second: two stages (hop 4), type-1 blocks, 16 channels.
TINY = HifiganConfig(
    resblock="1", upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4), upsample_initial_channel=16,
    resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)), hop_size=4,
)  # fmt: skip


def torch_generator(config: HifiganConfig, seed: int, wn=None):
    torch.manual_seed(seed)
    model = ref.Generator(config.to_json(), **({"wn": wn} if wn else {}))
    return model.eval()


def torch_wav(model, mel: np.ndarray) -> np.ndarray:
    """[B, T, n_mels] -> [B, samples] through the PyTorch reference."""
    with torch.no_grad():
        return model(torch.from_numpy(mel).transpose(1, 2))[:, 0].numpy()


def state_dict_np(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def espeak_mel() -> np.ndarray:
    """[1, 30, 80] natural-log mel of real eSpeak speech, taco_jax's (NVIDIA) framing."""
    from taco_jax.audio import mel_spectrogram
    from taco_jax.config import AudioConfig
    from taco_jax.demo.espeak import synthesize_espeak

    audio, sr = synthesize_espeak("Vocoders turn spectra into speech.")
    assert sr == 22050
    mel = mel_spectrogram(audio, AudioConfig())
    start = mel.shape[0] // 3  # a voiced stretch, not the leading silence
    return mel[None, start : start + 30].astype(np.float32)


def _apply(config: HifiganConfig, params, mel, weight_norm: bool = False) -> np.ndarray:
    return np.asarray(jax.jit(Generator(config, weight_norm=weight_norm).apply)({"params": params}, mel))


# ---------------------------------------------------------------- layers


def _wn_torch(module, params: dict, g_scale: float = 1.0):
    """A torch weight_norm layer holding Flax WN layer `params` (g scaled, so that g != ||v||)."""
    module = torch.nn.utils.weight_norm(module)
    with torch.no_grad():
        module.weight_v.copy_(torch.from_numpy(np.array(params["v"])))
        module.weight_g.copy_(torch.from_numpy(np.array(params["g"]) * g_scale))
        module.bias.copy_(torch.from_numpy(np.array(params["bias"])))
    return module


@pytest.mark.parametrize("k, stride, dilation, padding, groups", [(5, 2, 3, 4, 4), (41, 4, 1, 20, 2), (3, 1, 1, 1, 1)])
def test_conv1d_matches_torch(k, stride, dilation, padding, groups):
    x = np.random.default_rng(0).standard_normal((2, 37, 8)).astype(np.float32)
    layer = layers.WNConv1d(16, k, stride=stride, dilation=dilation, padding=padding, groups=groups)
    params = dict(layer.init(jax.random.PRNGKey(0), x)["params"])
    module = _wn_torch(torch.nn.Conv1d(8, 16, k, stride, padding, dilation, groups), params, 1.3)
    params["g"] = params["g"] * 1.3
    want = module(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).detach().numpy()
    np.testing.assert_allclose(layer.apply({"params": params}, x), want, atol=2e-6)
    plain = layers.Conv1d(16, k, stride=stride, dilation=dilation, padding=padding, groups=groups)
    np.testing.assert_allclose(plain.apply({"params": layers.fold_weight_norm(params)}, x), want, atol=2e-6)


def test_conv2d_matches_torch():
    x = np.random.default_rng(1).standard_normal((2, 20, 3, 4)).astype(np.float32)  # [B, H, W, C]
    layer = layers.WNConv2d(8, (5, 1), stride=(3, 1), padding=(2, 0))
    params = layer.init(jax.random.PRNGKey(1), x)["params"]
    assert params["v"].shape == (8, 4, 5, 1) and params["g"].shape == (8, 1, 1, 1)
    module = _wn_torch(torch.nn.Conv2d(4, 8, (5, 1), (3, 1), padding=(2, 0)), params)
    want = module(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(layer.apply({"params": params}, x), want, atol=2e-6)


@pytest.mark.parametrize(
    "k, u, padding, output_padding",
    [(16, 8, 4, 0), (5, 2, 1, 0), (7, 4, 1, 0), (7, 3, 2, 1)],  # k - u odd in the second and third
)
def test_conv_transpose1d_matches_torch(k, u, padding, output_padding):
    x = np.random.default_rng(2).standard_normal((2, 11, 8)).astype(np.float32)
    layer = layers.WNConvTranspose1d(6, k, stride=u, padding=padding, output_padding=output_padding)
    params = dict(layer.init(jax.random.PRNGKey(2), x)["params"])
    assert params["v"].shape == (8, 6, k) and params["g"].shape == (8, 1, 1)  # dim 0 = in_channels, as PyTorch
    module = _wn_torch(torch.nn.ConvTranspose1d(8, 6, k, u, padding, output_padding), params, 0.7)
    params["g"] = params["g"] * 0.7
    want = module(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).detach().numpy()
    assert want.shape[1] == (11 - 1) * u - 2 * padding + k + output_padding
    np.testing.assert_allclose(layer.apply({"params": params}, x), want, atol=2e-6)


# ---------------------------------------------------------------- published configs


@pytest.mark.parametrize("name", ["v1", "v2", "v3"])
def test_published_generator_matches_torch(name, espeak_mel, tmp_path):
    """Random weights saved as the published trainer saves them, loaded from the g_ file, same waveform."""
    config = PRESETS[name]
    model = torch_generator(config, seed=7)
    torch.save({"generator": model.state_dict()}, tmp_path / "g_00000000")
    (tmp_path / "config.json").write_text(json.dumps(config.to_json()))
    loaded, params = load_vocoder(tmp_path / "g_00000000")
    assert loaded == config
    model.remove_weight_norm()
    assert generator_param_count(params) == sum(p.numel() for p in model.parameters())
    want = torch_wav(model, espeak_mel)
    got = _apply(config, params, espeak_mel)
    assert got.shape == want.shape == (1, 30 * 256)
    peak = np.abs(want).max()
    assert peak > 1e-3  # a real signal, not a silent one that would pass any tolerance
    assert np.abs(got - want).max() <= 1e-4 * peak


def test_config_json_matches_published_format(tmp_path):
    """to_json carries every published key and reads back; each preset has its published shape."""
    published_keys = {
        "resblock", "num_gpus", "batch_size", "learning_rate", "adam_b1", "adam_b2", "lr_decay", "seed",
        "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock_kernel_sizes",
        "resblock_dilation_sizes", "segment_size", "num_mels", "num_freq", "n_fft", "hop_size", "win_size",
        "sampling_rate", "fmin", "fmax", "fmax_for_loss", "num_workers", "dist_config",
    }  # fmt: skip
    for config in PRESETS.values():
        data = config.to_json()
        assert set(data) == published_keys
        path = tmp_path / "config.json"
        path.write_text(json.dumps(data))
        assert load_hifigan_config(path) == config
        assert config.hop_length == 256
    v3 = PRESETS["v3"].to_json()
    assert (v3["resblock"], v3["upsample_rates"], v3["resblock_dilation_sizes"]) == (
        "2",
        [8, 8, 4],
        [[1, 2], [2, 6], [3, 12]],
    )
    assert PRESETS["v2"].upsample_initial_channel == 128 and PRESETS["v1"].upsample_initial_channel == 512


@pytest.mark.parametrize(
    "change, words",
    [
        ({"upsample_rates": None}, ["upsample_rates", "missing"]),
        ({"upsample_initial_channel": "512"}, ["upsample_initial_channel", "integer"]),
        ({"resblock_dilation_sizes": [[1, 3], [1, 3], [1, 3]]}, ["resblock_dilation_sizes"]),
        ({"hop_size": 200}, ["hop_size", "256"]),
        ({"learning_rat": 1e-3}, ["learning_rat", "unknown"]),
    ],
)
def test_bad_config_names_file_and_key(change, words, tmp_path):
    data = PRESETS["v1"].to_json()
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(VocoderConfigError) as e:
        load_hifigan_config(path)
    assert str(path) in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


# ---------------------------------------------------------------- tiny generator: conversion and weight norm


@pytest.fixture(scope="module")
def tiny_torch():
    """The tiny config's PyTorch reference with random weights, and its state_dict (published spelling)."""
    model = torch_generator(TINY, seed=3)
    return model, state_dict_np(model)


@pytest.fixture(scope="module")
def tiny_mel(espeak_mel) -> np.ndarray:
    return espeak_mel[:, :24]


def test_tiny_generator_and_weight_spellings_match_torch(tiny_torch, tiny_mel):
    """Published (weight_g/v), parametrize-based (original0/1) and folded (weight) spellings all convert."""
    model, sd = tiny_torch
    want = torch_wav(model, tiny_mel)
    assert want.shape == (1, 24 * 4)
    torch.manual_seed(3)
    new_style = ref.Generator(TINY.to_json(), wn=torch.nn.utils.parametrizations.weight_norm)
    renamed = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
    new_sd = {}
    for key, value in sd.items():
        stem, leaf = key.rsplit(".", 1)
        new_sd[f"{stem}.{renamed.get(leaf, leaf)}"] = torch.from_numpy(value)
    new_style.load_state_dict(new_sd, strict=True)
    model_plain = torch_generator(TINY, seed=3)
    model_plain.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    model_plain.remove_weight_norm()
    for spelled in (sd, state_dict_np(new_style), state_dict_np(model_plain)):
        params = hifigan_torch_to_flax(spelled, TINY)
        np.testing.assert_allclose(_apply(TINY, params, tiny_mel), want, rtol=0, atol=1e-6 * np.abs(want).max())


def test_weight_norm_generator_equals_folded(tiny_torch, tiny_mel):
    _, sd = tiny_torch
    wn_params = hifigan_torch_to_flax(sd, TINY, weight_norm=True)
    assert set(wn_params["ups_0"]) == {"v", "g", "bias"} and wn_params["ups_0"]["g"].shape == (16, 1, 1)
    wn_params = jax.tree_util.tree_map(lambda a: a, wn_params)
    wn_params["conv_pre"]["g"] = wn_params["conv_pre"]["g"] * 1.5  # g != ||v||: folding must use g
    got = _apply(TINY, wn_params, tiny_mel, weight_norm=True)
    folded = _apply(TINY, fold_weight_norm(wn_params), tiny_mel)
    np.testing.assert_allclose(got, folded, rtol=0, atol=1e-6 * np.abs(folded).max())
    model = torch_generator(TINY, seed=3)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in hifigan_flax_to_torch(wn_params, TINY).items()})
    want = torch_wav(model, tiny_mel)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("weight_norm", [False, True])
def test_jax_torch_jax_round_trip_is_exact(weight_norm):
    params = init_generator_params(PRESETS["v3"], jax.random.PRNGKey(5), weight_norm=weight_norm)
    sd = hifigan_flax_to_torch(params, PRESETS["v3"])
    model = torch_generator(PRESETS["v3"], seed=0)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    back = hifigan_torch_to_flax(state_dict_np(model), PRESETS["v3"], weight_norm=weight_norm)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(params)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(back), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_init_follows_published_distributions():
    params = init_generator_params(TINY, jax.random.PRNGKey(0), weight_norm=True)
    shapes = jax.eval_shape(Generator(TINY, weight_norm=True).init, jax.random.PRNGKey(0), jnp.zeros((1, 2, 80)))
    assert jax.tree_util.tree_structure(shapes["params"]) == jax.tree_util.tree_structure(params)
    v = np.asarray(params["resblocks_1"]["convs1_0"]["v"])
    assert abs(v.std() - 0.01) < 0.001  # N(0, 0.01)
    bound = 1 / np.sqrt(80 * 7)  # conv_pre: PyTorch's default U(+-1/sqrt(fan_in))
    assert 0.9 * bound < np.abs(params["conv_pre"]["v"]).max() <= bound
    g, v = np.asarray(params["ups_1"]["g"]), np.asarray(params["ups_1"]["v"])
    np.testing.assert_allclose(g[:, 0, 0], np.sqrt((v**2).sum(axis=(1, 2))), rtol=1e-6)  # g = ||v|| over dims 1, 2
    again = init_generator_params(TINY, jax.random.PRNGKey(0), weight_norm=True)
    assert np.array_equal(again["conv_post"]["v"], params["conv_post"]["v"])


def test_odd_upsampling_matches_torch(tiny_mel):
    """k - u odd: PyTorch's padding (k - u) // 2 gives one extra sample per stage; so must we."""
    config = TINY.replace(upsample_kernel_sizes=(5, 4))
    model = torch_generator(config, seed=4)
    want = torch_wav(model, tiny_mel)
    assert want.shape[1] == output_length(config, 24) == (24 * 2 + 1) * 2
    got = _apply(config, hifigan_torch_to_flax(state_dict_np(model), config), tiny_mel)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())


# ---------------------------------------------------------------- files


def test_malformed_state_dict_lists_every_key(tiny_torch, tmp_path):
    _, sd = tiny_torch
    bad = dict(sd)
    del bad["resblocks.1.convs2.0.weight_v"]
    bad["ups.0.weight_extra"] = np.zeros(3, np.float32)
    bad["conv_post.bias"] = np.zeros(2, np.float32)
    path = tmp_path / "g_00000001"
    torch.save({"generator": {k: torch.from_numpy(v) for k, v in bad.items()}}, path)
    (tmp_path / "config.json").write_text(json.dumps(TINY.to_json()))
    with pytest.raises(ConversionError) as e:
        load_vocoder(path)
    message = str(e.value)
    assert str(path) in message
    for key in ("resblocks.1.convs2.0.weight_v", "ups.0.weight_extra", "conv_post.bias: expected (1,), got (2,)"):
        assert key in message, message


def test_pickled_file_needs_trust(tiny_torch, tmp_path):
    _, sd = tiny_torch
    path = tmp_path / "g_00000002"
    generator = {k: torch.from_numpy(v) for k, v in sd.items()}
    torch.save({"generator": generator, "h": argparse.Namespace(note="pickled object")}, path)
    with pytest.raises(CheckpointFileError, match="--trust-pickle"):
        read_hifigan_generator(path)
    with pytest.raises(CheckpointFileError, match="--trust-pickle"):
        load_vocoder(path, config_path=_write_config(tmp_path / "c.json", TINY))
    config, params = load_vocoder(path, config_path=tmp_path / "c.json", trust_pickle=True)
    assert config == TINY and np.array_equal(params["conv_pre"]["bias"], sd["conv_pre.bias"])


def _write_config(path, config: HifiganConfig):
    path.write_text(json.dumps(config.to_json()))
    return path


def test_vocoder_dirs_and_missing_config(tiny_torch, tiny_mel, tmp_path):
    _, sd = tiny_torch
    g_file = tmp_path / "bare" / "g_00000003"
    g_file.parent.mkdir()
    torch.save({"generator": {k: torch.from_numpy(v) for k, v in sd.items()}}, g_file)
    with pytest.raises(VocoderFileError, match="config.json") as e:
        load_vocoder(g_file)
    assert str(g_file) in str(e.value)

    config, params = load_vocoder(g_file, config_path=_write_config(tmp_path / "elsewhere.json", TINY))
    saved = save_vocoder(tmp_path / "run" / "generator", config, params)
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "generator.msgpack"]
    assert json.loads((saved / "config.json").read_text()) == TINY.to_json()
    for where in (saved, tmp_path / "run"):  # a vocoder directory, a training run holding one
        config2, params2 = load_vocoder(where)
        assert config2 == TINY
        for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params2), strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(VocoderFileError, match="generator.msgpack"):
        load_vocoder(tmp_path / "bare")
    with pytest.raises(VocoderFileError, match="mis-shaped") as e:
        load_vocoder(
            saved, config_path=_write_config(tmp_path / "other.json", TINY.replace(upsample_initial_channel=32))
        )
    assert "conv_pre/kernel" in str(e.value)


def test_cli_round_trip(tiny_torch, tmp_path, capsys):
    """tools/convert_torch_ckpt.py --hifigan: g_ file -> vocoder dir -> g_ file keeps every tensor."""
    main = _load_tool().main
    _, sd = tiny_torch
    g_file = tmp_path / "g_00000004"
    torch.save({"generator": {k: torch.from_numpy(v) for k, v in sd.items()}}, g_file)
    _write_config(tmp_path / "hifigan.json", TINY)
    assert (
        main([str(g_file), str(tmp_path / "voc"), "--hifigan", "--hifigan-config", str(tmp_path / "hifigan.json")]) == 0
    )
    assert main([str(tmp_path / "voc"), str(tmp_path / "out" / "g_00000004"), "--hifigan", "--to-torch"]) == 0
    assert load_hifigan_config(tmp_path / "out" / "config.json") == TINY
    back = torch.load(tmp_path / "out" / "g_00000004", weights_only=True)["generator"]
    assert set(back) == set(sd)
    torch_generator(TINY, seed=0).load_state_dict(back, strict=True)
    # Exported with v = folded weight, g = ||v||: the same weights (not the same g and v) as the input file.
    _, first = load_vocoder(g_file, config_path=tmp_path / "hifigan.json")
    _, again = load_vocoder(tmp_path / "out" / "g_00000004")
    for a, b in zip(jax.tree_util.tree_leaves(first), jax.tree_util.tree_leaves(again), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert main([str(tmp_path / "missing"), str(tmp_path / "x"), "--hifigan"]) == 2
    assert "missing" in capsys.readouterr().err


def _load_tool():
    """tools/convert_torch_ckpt.py as a module (in-process: a subprocess would import JAX again)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "convert_torch_ckpt.py"
    spec = importlib.util.spec_from_file_location("convert_torch_ckpt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_errors_are_user_errors():
    assert issubclass(VocoderFileError, UserError) and issubclass(VocoderConfigError, UserError)
    assert issubclass(ConversionError, UserError)
