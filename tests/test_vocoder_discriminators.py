"""HiFi-GAN discriminators, spectral norm, losses and loss mel against PyTorch and hand-computed values.

The PyTorch side is `hifigan_torch_reference` (the published architecture written in torch, with torch's own
weight_norm / spectral_norm); the JAX side gets the same weights through the converter. Published widths for
the parity tests (B=2, S=1000: 1000 is not a multiple of 3, 7 or 11, so the MPD's reflect padding runs).
"""

import re

import numpy as np
import pytest
from conftest import import_torch

torch = import_torch()

import hifigan_torch_reference as ref  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from taco_jax.convert.checkpoint_io import CheckpointFileError  # noqa: E402
from taco_jax.convert.hifigan_discriminators import (  # noqa: E402
    discriminator_adamw_moments,
    discriminator_flax_to_torch,
    discriminator_torch_to_flax,
    load_discriminator_checkpoint,
)
from taco_jax.convert.torch_ckpt import ConversionError  # noqa: E402
from taco_jax.vocoder.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator  # noqa: E402
from taco_jax.vocoder.losses import (  # noqa: E402
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    hifigan_mel,
    mel_l1,
)
from taco_jax.vocoder.spectral_norm import SpectralNormConv1d  # noqa: E402

# The published code wraps its convs with the old torch.nn.utils.weight_norm, deprecated but kept on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")

B, S = 2, 1000
PARAM_LEAVES = {"weight_v": "v", "weight_g": "g", "weight_orig": "weight_orig", "bias": "bias"}
MEL = dict(sampling_rate=22050, n_fft=1024, hop=256, win=1024, n_mels=80, fmin=0.0, fmax=8000.0)


def _np(t) -> np.ndarray:
    return t.detach().numpy()


def _sd(module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _flax_leaf(tree, torch_key: str, leaf_names: dict[str, str]):
    """The documented naming: `discriminators.0.convs.3.weight_v` is discriminators_0 / convs_3 / leaf_names[...]."""
    *modules, leaf = re.sub(r"\.(\d+)", r"_\1", torch_key).split(".")
    for name in modules:
        tree = tree[name]
    return tree[leaf_names[leaf]]


def _channels_first(x) -> np.ndarray:
    """A channels-last JAX map [B, ..., C] -> PyTorch's [B, C, ...]."""
    x = np.asarray(x)
    return np.moveaxis(x, -1, 1)


def _assert_close(actual, expected, what: str, rel: float = 1e-5) -> None:
    """|actual - expected| <= rel * peak |expected| (+ a float32 floor) everywhere."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    peak = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rel * peak + 1e-7, err_msg=what)


def _assert_outputs(jax_out, torch_logits, torch_maps, what: str) -> None:
    logits, maps = jax_out
    assert len(logits) == len(torch_logits) and len(maps) == len(torch_maps)
    for d, (jl, tl) in enumerate(zip(logits, torch_logits, strict=True)):
        _assert_close(jl, _np(tl), f"{what} logits[{d}]")
        assert len(maps[d]) == len(torch_maps[d])
        for j, (jm, tm) in enumerate(zip(maps[d], torch_maps[d], strict=True)):
            _assert_close(_channels_first(jm), _np(tm), f"{what} feature map [{d}][{j}]")


@pytest.fixture(scope="module")
def waves():
    rng = np.random.default_rng(0)
    t = np.arange(S) / 22050.0
    real = (0.5 * np.sin(2 * np.pi * 220.0 * t)[None] + 0.05 * rng.standard_normal((B, S))).astype(np.float32)
    fake = (0.3 * rng.standard_normal((B, S))).astype(np.float32)
    return real, fake


@pytest.fixture(scope="module")
def torch_mpd():
    torch.manual_seed(1)
    return ref.MultiPeriodDiscriminator().eval()


@pytest.fixture(scope="module")
def torch_msd():
    torch.manual_seed(2)
    return ref.MultiScaleDiscriminator()


def test_mpd_matches_pytorch(torch_mpd, waves):
    real, fake = waves
    variables = discriminator_torch_to_flax(_sd(torch_mpd), "mpd")
    assert set(variables) == {"params"}
    with torch.no_grad():
        t_real, t_fake, t_real_maps, t_fake_maps = torch_mpd(
            torch.from_numpy(real)[:, None], torch.from_numpy(fake)[:, None]
        )
    apply = jax.jit(MultiPeriodDiscriminator().apply)
    _assert_outputs(apply(variables, real), t_real, t_real_maps, "MPD real")
    _assert_outputs(apply(variables, fake), t_fake, t_fake_maps, "MPD fake")


def _snapshot(module) -> dict[str, list]:
    """Records (u, v) of every spectral-normed conv of `module` after each of its forwards."""
    taken: dict[str, list] = {}
    for name, conv in [*((f"convs_{j}", c) for j, c in enumerate(module.convs)), ("conv_post", module.conv_post)]:
        taken[name] = []
        conv.register_forward_hook(
            lambda m, _i, _o, name=name: taken[name].append((_np(m.weight_u).copy(), _np(m.weight_v).copy()))
        )
    return taken


def test_msd_and_spectral_norm_match_pytorch(torch_msd, waves):
    """Training forwards (one power step each, in torch's order) give torch's outputs and u, v after the first
    and the second forward; evaluation then uses the stored u, v as torch's eval mode does."""
    real, fake = waves
    variables = discriminator_torch_to_flax(_sd(torch_msd), "msd")
    u0 = variables["batch_stats"]["discriminators_0"]["convs_3"]["u"].copy()
    taken = _snapshot(torch_msd.discriminators[0])
    torch_msd.train()
    with torch.no_grad():
        t_real, t_fake, t_real_maps, t_fake_maps = torch_msd(
            torch.from_numpy(real)[:, None], torch.from_numpy(fake)[:, None]
        )
    msd = MultiScaleDiscriminator()
    train = jax.jit(lambda v, x: msd.apply(v, x, update_stats=True, mutable=["batch_stats"]))
    for step, (wav, t_logits, t_maps) in enumerate(((real, t_real, t_real_maps), (fake, t_fake, t_fake_maps))):
        out, updates = train(variables, wav)
        _assert_outputs(out, t_logits, t_maps, f"MSD training forward {step + 1}")
        for name, snapshots in taken.items():
            state = updates["batch_stats"]["discriminators_0"][name]
            _assert_close(state["u"], snapshots[step][0], f"u of {name} after forward {step + 1}")
            _assert_close(state["v"], snapshots[step][1], f"v of {name} after forward {step + 1}")
        variables = {"params": variables["params"], "batch_stats": updates["batch_stats"]}
    assert np.max(np.abs(variables["batch_stats"]["discriminators_0"]["convs_3"]["u"] - u0)) > 1e-2  # it moved
    exported = discriminator_flax_to_torch(variables, "msd")
    torch_msd.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in exported.items()}, strict=True)

    torch_msd.eval()
    with torch.no_grad():
        e_real, _, e_real_maps, _ = torch_msd(torch.from_numpy(real)[:, None], torch.from_numpy(fake)[:, None])
    before = jax.tree_util.tree_map(np.asarray, variables["batch_stats"])
    _assert_outputs(jax.jit(msd.apply)(variables, real), e_real, e_real_maps, "MSD eval")
    after = _sd(torch_msd)
    for name in taken:  # torch's eval mode left u alone: the state we exported is still torch's
        key = f"discriminators.0.{name.replace('convs_', 'convs.')}.weight_u"
        np.testing.assert_array_equal(after[key], before["discriminators_0"][name]["u"])


def test_spectral_norm_gradient_matches_pytorch():
    """The weight's gradient flows through sigma = u.Wv with u, v held constant (torch's no_grad power step)."""
    torch.manual_seed(3)
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv1d(4, 6, 5, stride=2, groups=2, padding=2)).train()
    x = np.random.default_rng(3).standard_normal((2, 4, 17)).astype(np.float32)
    sd = _sd(conv)
    loss = (conv(torch.from_numpy(x)) ** 2).sum()
    loss.backward()

    layer = SpectralNormConv1d(6, 5, stride=2, groups=2, padding=2)
    variables = {
        "params": {"weight_orig": sd["weight_orig"], "bias": sd["bias"]},
        "batch_stats": {"u": sd["weight_u"], "v": sd["weight_v"]},
    }

    def objective(params):
        y, updates = layer.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, jnp.asarray(x.transpose(0, 2, 1)),
            update_stats=True, mutable=["batch_stats"],
        )  # fmt: skip
        return jnp.sum(y**2), updates["batch_stats"]

    (value, stats), grads = jax.value_and_grad(objective, has_aux=True)(variables["params"])
    _assert_close(value, loss.item(), "loss")
    _assert_close(stats["u"], _np(conv.weight_u), "u")
    _assert_close(grads["weight_orig"], _np(conv.weight_orig.grad), "d loss / d weight_orig", rel=1e-4)
    _assert_close(grads["bias"], _np(conv.bias.grad), "d loss / d bias", rel=1e-4)


def test_converter_round_trip_names_and_errors(torch_mpd):
    sd = _sd(torch_mpd)
    variables = discriminator_torch_to_flax(sd, "mpd")
    back = discriminator_flax_to_torch(variables, "mpd")
    assert set(back) == set(sd)
    for key, value in sd.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)

    # PyTorch's parametrize-based weight_norm names, a DDP prefix, and a plain weight after remove_weight_norm.
    renamed = {
        "module."
        + k.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1"
        ): v
        for k, v in sd.items()
    }
    alt = discriminator_torch_to_flax(renamed, "mpd")
    np.testing.assert_array_equal(
        alt["params"]["discriminators_4"]["convs_2"]["v"], sd["discriminators.4.convs.2.weight_v"]
    )
    plain = torch.nn.utils.remove_weight_norm(torch.nn.utils.weight_norm(torch.nn.Conv2d(1, 32, (5, 1))))
    partial = dict(sd)
    partial.pop("discriminators.0.convs.0.weight_g")
    partial.pop("discriminators.0.convs.0.weight_v")
    partial["discriminators.0.convs.0.weight"] = _np(plain.weight)
    partial["discriminators.0.convs.0.bias"] = _np(plain.bias)
    folded = discriminator_torch_to_flax(partial, "mpd")["params"]["discriminators_0"]["convs_0"]
    weight = folded["g"] * folded["v"] / np.sqrt(np.sum(folded["v"] ** 2, axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(weight, _np(plain.weight), rtol=1e-6)

    broken = dict(sd)
    broken.pop("discriminators.1.conv_post.weight_g")
    broken["discriminators.9.convs.0.bias"] = np.zeros(3, np.float32)
    broken["discriminators.2.convs.1.weight_v"] = np.zeros((128, 32, 3, 1), np.float32)
    with pytest.raises(ConversionError) as info:
        discriminator_torch_to_flax(broken, "mpd")
    message = str(info.value)
    for expected in (
        "missing (1): discriminators.1.conv_post.weight_g",
        "unexpected (1): discriminators.9.convs.0.bias",
        "discriminators.2.convs.1.weight_v: (128, 32, 3, 1), expected (128, 32, 5, 1)",
    ):
        assert expected in message
    with pytest.raises(ConversionError, match="missing"):
        discriminator_torch_to_flax(_sd(ref.MultiPeriodDiscriminator(channel_divisor=8)), "msd", channel_divisor=8)


def test_do_file_and_adamw_moments(tmp_path):
    """A small do_ file saved as the published training saves it, read back with its AdamW moments."""
    torch.manual_seed(4)
    mpd, msd = ref.MultiPeriodDiscriminator(channel_divisor=8), ref.MultiScaleDiscriminator(channel_divisor=8)
    optim_d = torch.optim.AdamW([*msd.parameters(), *mpd.parameters()], 2e-4, betas=(0.8, 0.99))
    for param in optim_d.param_groups[0]["params"]:  # stand-in gradients (torch's grouped-conv backward is slow)
        param.grad = torch.randn_like(param)
    optim_d.step()
    path = tmp_path / "do_00000001"
    torch.save(
        {"mpd": mpd.state_dict(), "msd": msd.state_dict(), "optim_g": {}, "optim_d": optim_d.state_dict(),
         "steps": 1, "epoch": 0},
        path,
    )  # fmt: skip
    ckpt = load_discriminator_checkpoint(path, channel_divisor=8)
    assert (ckpt.steps, ckpt.epoch) == (1, 0)
    assert set(ckpt.msd) == {"params", "batch_stats"}
    np.testing.assert_array_equal(
        ckpt.msd["batch_stats"]["discriminators_0"]["convs_1"]["v"], _np(msd.discriminators[0].convs[1].weight_v)
    )
    mu, nu, step = discriminator_adamw_moments(
        ckpt.optim_d, ckpt.mpd_state_dict, ckpt.msd_state_dict, channel_divisor=8
    )
    assert step == 1
    # Expected moments straight from torch's optimizer, by parameter identity (not by the order the converter uses).
    for tree, name in ((mu, "exp_avg"), (nu, "exp_avg_sq")):
        for kind, module in (("mpd", mpd), ("msd", msd)):
            for key, param in module.named_parameters():
                leaf = _flax_leaf(tree[kind], key, PARAM_LEAVES)
                np.testing.assert_array_equal(leaf, _np(optim_d.state[param][name]), err_msg=f"{kind} {key}")

    torch.save({"generator": {}}, tmp_path / "g_only")
    with pytest.raises(CheckpointFileError, match="needs 'mpd' and 'msd'"):
        load_discriminator_checkpoint(tmp_path / "g_only")


# ----------------------------------------------------------------------------------------------- losses


def test_losses_hand_computed():
    real = [jnp.array([[0.5, 1.5]]), jnp.array([[1.0, 0.0, 3.0]])]
    fake = [jnp.array([[0.5, -1.0]]), jnp.array([[0.0, 2.0, 1.0]])]
    total, real_terms, fake_terms = discriminator_loss(real, fake)
    # D1: real ((0.5)^2 + (-0.5)^2) / 2 = 0.25, fake (0.25 + 1) / 2 = 0.625
    # D2: real (0 + 1 + 4) / 3, fake (0 + 4 + 1) / 3
    np.testing.assert_allclose([float(x) for x in real_terms], [0.25, 5 / 3], rtol=1e-6)
    np.testing.assert_allclose([float(x) for x in fake_terms], [0.625, 5 / 3], rtol=1e-6)
    np.testing.assert_allclose(float(total), 0.25 + 0.625 + 10 / 3, rtol=1e-6)
    adv, terms = generator_adversarial_loss(fake)
    # D1: ((0.5)^2 + 2^2) / 2 = 2.125; D2: (1 + 1 + 0) / 3
    np.testing.assert_allclose([float(x) for x in terms], [2.125, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(float(adv), 2.125 + 2 / 3, rtol=1e-6)
    real_maps = [[jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.zeros((1, 3))], [jnp.ones((1, 1, 1))]]
    fake_maps = [[jnp.array([[1.0, 0.0], [3.0, 8.0]]), jnp.array([[1.0, -2.0, 3.0]])], [jnp.full((1, 1, 1), 0.5)]]
    # means of |diff|: (0 + 2 + 0 + 4) / 4 = 1.5, (1 + 2 + 3) / 3 = 2, 0.5; times 2
    np.testing.assert_allclose(float(feature_matching_loss(real_maps, fake_maps)), 2 * (1.5 + 2 + 0.5), rtol=1e-6)
    np.testing.assert_allclose(
        float(mel_l1(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([[2.0, 2.0], [3.0, 0.0]]))), 1.25
    )
    with pytest.raises(ValueError, match="entries"):
        discriminator_loss(real, fake[:1])


def test_losses_match_pytorch():
    rng = np.random.default_rng(5)
    shapes = [[(2, 7, 3, 4), (2, 3, 3, 1)], [(2, 9, 8), (2, 5, 1)]]  # two discriminators, two layers each
    real_maps = [[rng.standard_normal(s).astype(np.float32) for s in d] for d in shapes]
    fake_maps = [[rng.standard_normal(s).astype(np.float32) for s in d] for d in shapes]
    real = [rng.standard_normal((2, n)).astype(np.float32) for n in (21, 5)]
    fake = [rng.standard_normal((2, n)).astype(np.float32) for n in (21, 5)]
    t = lambda tree: [torch.from_numpy(x) if isinstance(x, np.ndarray) else t(x) for x in tree]  # noqa: E731
    j = lambda tree: [jnp.asarray(x) if isinstance(x, np.ndarray) else j(x) for x in tree]  # noqa: E731

    expected_d, expected_r, expected_f = ref.discriminator_loss(t(real), t(fake))
    total, real_terms, fake_terms = discriminator_loss(j(real), j(fake))
    np.testing.assert_allclose(float(total), expected_d.item(), rtol=1e-6)
    np.testing.assert_allclose([float(x) for x in real_terms], expected_r, rtol=1e-6)
    np.testing.assert_allclose([float(x) for x in fake_terms], expected_f, rtol=1e-6)
    expected_g, expected_terms = ref.generator_loss(t(fake))
    adv, terms = generator_adversarial_loss(j(fake))
    np.testing.assert_allclose(float(adv), expected_g.item(), rtol=1e-6)
    np.testing.assert_allclose([float(x) for x in terms], [x.item() for x in expected_terms], rtol=1e-6)
    np.testing.assert_allclose(
        float(feature_matching_loss(j(real_maps), j(fake_maps))),
        ref.feature_loss(t(real_maps), t(fake_maps)).item(),
        rtol=1e-6,
    )


@pytest.fixture(scope="module")
def espeak_wavs():
    from taco_jax.demo.espeak import synthesize_espeak

    audio, sr = synthesize_espeak("The quick brown fox jumps over the lazy dog.")
    assert sr == 22050
    n = 40 * 256
    assert audio.size >= n + 4000
    return np.stack([audio[:n], audio[4000 : 4000 + n]]).astype(np.float32)


def test_hifigan_mel_matches_torch_stft(espeak_wavs):
    """Against torch.stft in float64 (the JAX mel is float32: its own round-off is ~5e-5 in quiet bins)."""
    mel = jax.jit(lambda w: hifigan_mel(w, **MEL))(espeak_wavs)
    assert mel.shape == (2, 40, 80)  # S // hop frames
    expected = ref.hifigan_mel_spectrogram(
        torch.from_numpy(espeak_wavs).double(), 1024, 80, 22050, 256, 1024, 0.0, 8000.0
    ).numpy()
    np.testing.assert_allclose(np.asarray(mel), expected.transpose(0, 2, 1), rtol=0, atol=1e-4)
    # fmax None is the Nyquist frequency (the published fmax_for_loss: null).
    full = hifigan_mel(espeak_wavs[:1, : 8 * 256], **{**MEL, "fmax": None})
    expected = ref.hifigan_mel_spectrogram(
        torch.from_numpy(espeak_wavs[:1, : 8 * 256]).double(), 1024, 80, 22050, 256, 1024, 0.0, None
    )
    np.testing.assert_allclose(np.asarray(full), expected.numpy().transpose(0, 2, 1), rtol=0, atol=1e-4)


def test_gradients_are_finite(espeak_wavs):
    """Through the loss mel (silence included: |X| = 0 bins) and the adversarial and feature losses."""
    target = jnp.asarray(espeak_wavs[:, : 16 * 256])
    start = target.at[:, : 4 * 256].set(0.0) * 0.5  # exact zeros: sqrt(|X|^2 + 1e-9) keeps the gradient finite

    def objective(wav):
        l1 = mel_l1(hifigan_mel(wav, **MEL), hifigan_mel(target, **MEL))
        logits = [wav[:, :100], wav[:, 100:150] ** 2]
        maps = [[wav[:, :30], jnp.tanh(wav[:, 30:90])], [wav[:, 5:9] * 3]]
        target_maps = [[target[:, :30], target[:, 30:90]], [target[:, 5:9]]]
        d_total = discriminator_loss(logits, [x * 0.5 for x in logits])[0]
        return 45.0 * l1 + generator_adversarial_loss(logits)[0] + feature_matching_loss(target_maps, maps) + d_total

    grad = jax.jit(jax.grad(objective))(start)
    assert grad.shape == start.shape
    assert bool(jnp.all(jnp.isfinite(grad)))
    assert float(jnp.max(jnp.abs(grad))) > 0.0
