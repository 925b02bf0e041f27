"""Tacotron2-New model options (MMI head + CTC/GAF, GST, TPS-GST): losses against hand-computed values,
gradient routing, the train step and style at inference. Parity with PyTorch is in test_convert_t2n.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import build_trainer, random_batch, tiny_model_config

from taco_jax import losses
from taco_jax.config import Config, ConfigError, load_config
from taco_jax.model import build_model
from taco_jax.train.objective import drop_frames, objective_from_config

N_SYMBOLS = 20
T2N = dict(
    mmi=True, mmi_dim=20, gst="add", gst_token_num=5, gst_token_embedding_size=16, gst_num_heads=4,
    gst_ref_filters=[4, 4, 8, 8, 8, 8], gst_ref_gru_size=8, tpse=True, tpse_gru_size=8,
)  # fmt: skip


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.gst=sum", "model.gst"),
        ("model.mmi_blank=middle", "model.mmi_blank"),
        ("model.gst_reference_layout=freq_time", "model.gst_reference_layout"),
    ],
)
def test_config_rejects_unknown_choices(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_config_rejects_tpse_without_gst_and_indivisible_heads():
    with pytest.raises(ConfigError, match="model.tpse"):
        load_config(None, ["model.tpse=true"])
    with pytest.raises(ConfigError, match="gst_token_embedding_size"):
        load_config(None, ["model.gst=add", "model.gst_token_embedding_size=10", "model.gst_num_heads=4"])


# ------------------------------------------------------------------------------------------------ losses


def test_ctc_loss_matches_hand_computed_paths():
    # Two steps, classes (blank, 1), label "1": the paths 1 1, 1 -, - 1 all collapse to it.
    logits = jnp.array([[[0.3, -0.2], [1.1, 0.4]]])
    p = np.exp(np.asarray(logits[0]))
    p = p / p.sum(-1, keepdims=True)
    likelihood = p[0, 1] * p[1, 1] + p[0, 1] * p[1, 0] + p[0, 0] * p[1, 1]
    got = losses.mmi_ctc_loss(logits, jnp.array([2]), jnp.array([[1]]), jnp.array([1]), blank_id=0)
    np.testing.assert_allclose(float(got), -math.log(likelihood) / 2, rtol=1e-5)
    # Blank last: the same numbers with the classes swapped.
    swapped = logits[..., ::-1]
    got_last = losses.mmi_ctc_loss(swapped, jnp.array([2]), jnp.array([[0]]), jnp.array([1]), blank_id=1)
    np.testing.assert_allclose(float(got_last), float(got), rtol=1e-6)


def test_ctc_loss_ignores_padding_and_zeroes_infeasible_items():
    logits = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 3))
    one = losses.mmi_ctc_loss(logits[:1, :2], jnp.array([2]), jnp.array([[1]]), jnp.array([1]), blank_id=0)
    # Item 0 padded to 4 steps and 2 labels; item 1 needs 3 steps for "2 2" (a blank between) but has 2.
    padded = logits.at[0, 2:].set(1e4)
    text = jnp.array([[1, 2], [2, 2]])
    got = losses.mmi_ctc_loss(padded, jnp.array([2, 2]), text, jnp.array([1, 2]), blank_id=0)
    np.testing.assert_allclose(float(got), float(one) / 2, rtol=1e-5)  # mean over 2 items, the second is 0


def test_gradient_adaptive_factor_hand_computed():
    main = {"a": jnp.array([1.0, -4.0]), "b": jnp.zeros(3)}
    aux = {"a": jnp.array([2.0, 0.5]), "b": jnp.array([3.0, 0.0, 0.0])}
    assert float(losses.gradient_adaptive_factor(main, aux, 10.0)) == 2.0  # 4 / 2; "b" has no main gradient
    assert float(losses.gradient_adaptive_factor(main, aux, 0.1)) == pytest.approx(0.1)
    assert float(losses.gradient_adaptive_factor(main, {"a": jnp.zeros(2), "b": jnp.zeros(3)}, 0.1)) == (
        pytest.approx(0.1)
    )


def test_frame_dropout_replaces_valid_frames_by_the_mean():
    mel = jax.random.normal(jax.random.PRNGKey(0), (8, 200, 4))
    mel_len = jnp.array([200, 150, 100, 200, 180, 60, 200, 120])
    mean = jnp.array([-1.0, -2.0, -3.0, -4.0])
    out = np.asarray(drop_frames(jax.random.PRNGKey(1), mel, mel_len, 0.3, mean))
    valid = np.arange(200)[None] < np.asarray(mel_len)[:, None]
    dropped = np.all(out == np.asarray(mean), axis=-1)
    kept = np.all(out == np.asarray(mel), axis=-1)
    assert np.all(dropped | kept)  # a frame is either the mean or itself, whole
    assert not np.any(dropped & ~valid)  # padding untouched
    assert abs(dropped[valid].mean() - 0.3) < 0.03  # 1,210 valid frames: sigma 0.013
    with pytest.raises(ValueError, match="mel_mean"):
        cfg = Config()
        cfg.model = tiny_model_config(frame_dropout=0.1)
        objective_from_config(cfg, build_model(cfg.model, N_SYMBOLS))
    with pytest.raises(ConfigError, match="frame_dropout"):
        load_config(None, ["model.frame_dropout=1.0"])


# ------------------------------------------------------------------------------------------------ model


@pytest.fixture(scope="module")
def t2n_setup():
    cfg = Config()
    cfg.model = tiny_model_config(**T2N)
    cfg.loss.mmi_max_gaf = 10.0
    model, state, step = build_trainer(cfg, N_SYMBOLS)
    batch = random_batch(1, [9, 7], [30, 24], N_SYMBOLS)
    return cfg, model, step, state, batch


def _apply(model, state, batch, rng):
    return model.apply(
        {"params": state.params, "batch_stats": state.batch_stats}, batch.text, batch.text_len, batch.mel,
        batch.mel_len, train=True, rngs={"dropout": rng}, mutable=["batch_stats"],
    )[0]  # fmt: skip


def test_tpse_loss_trains_only_the_style_predictor(t2n_setup):
    cfg, model, _, state, batch = t2n_setup
    rng = jax.random.PRNGKey(3)

    def tpse_loss(params):
        outputs = _apply(model, state.replace(params=params), batch, rng)
        return objective_from_config(cfg, model).loss(outputs, batch, jnp.float32(1.0))[1]["tpse_loss"]

    grads = jax.grad(tpse_loss)(state.params)
    norms = {k: float(optax.tree.norm(v)) for k, v in grads.items()}
    assert norms.pop("tpse") > 0
    assert all(n == 0.0 for n in norms.values()), norms  # neither the encoder nor GST is pulled on
    outputs = _apply(model, state, batch, rng)
    expected = np.mean(np.abs(np.asarray(outputs.tpse_style) - np.asarray(outputs.gst_style)))
    np.testing.assert_allclose(float(tpse_loss(state.params)), expected, rtol=1e-6)


def test_train_step_weights_ctc_gradient_by_gaf(t2n_setup):
    cfg, model, step, state, batch = t2n_setup
    rng = jax.random.fold_in(state.rng, state.step)  # the step's own dropout key
    ga_weight = jnp.float32(cfg.loss.guided_attention.weight)

    def terms(params):
        outputs = _apply(model, state.replace(params=params), batch, rng)
        total, t = objective_from_config(cfg, model).loss(outputs, batch, ga_weight)
        return total, t["mmi_ctc_loss"]

    g_main = jax.grad(lambda p: terms(p)[0])(state.params)
    g_ctc = jax.grad(lambda p: terms(p)[1])(state.params)
    ratios = [
        float(np.abs(a).max() / np.abs(b).max())
        for a, b in zip(jax.tree.leaves(g_main), jax.tree.leaves(g_ctc), strict=True)
        if np.abs(a).max() > 0 and np.abs(b).max() > 0
    ]
    gaf = min(min(ratios), cfg.loss.mmi_max_gaf)
    expected_norm = float(optax.tree.norm(jax.tree.map(lambda a, b: a + gaf * b, g_main, g_ctc)))
    main, ctc = terms(state.params)

    _, metrics = step(jax.tree.map(jnp.copy, state), batch)
    m = {k: float(v) for k, v in (metrics.means | metrics.states).items()}
    assert m["train/mmi_gaf"] == pytest.approx(gaf, rel=1e-4)
    assert m["train/mmi_ctc_loss"] == pytest.approx(float(ctc), rel=1e-5)
    assert m["train/loss"] == pytest.approx(float(main) + gaf * float(ctc), rel=1e-5)
    assert m["train/grad_norm"] == pytest.approx(expected_norm, rel=1e-4)
    assert np.isfinite(m["train/tpse_loss"]) and m["train/tpse_loss"] > 0


def test_style_at_inference_reference_tokens_and_text_differ(t2n_setup):
    _, model, _, state, batch = t2n_setup
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    text, text_len = batch.text[:1], batch.text_len[:1]

    def synth(**style):
        out = model.apply(variables, text, text_len, max_decoder_steps=30, prenet_dropout=False, method=model.infer,
                          **style)  # fmt: skip
        return np.asarray(out.mel_post)

    mels = {"reference": synth(reference=batch.mel[1:], reference_len=batch.mel_len[1:]), "text": synth()}
    mels |= {f"token {k}": synth(style_token=k) for k in range(T2N["gst_token_num"])}
    mels["token 0 x 0.3"] = synth(style_token=0, style_scale=0.3)
    for name, mel in mels.items():
        assert np.isfinite(mel).all(), name
    names = list(mels)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(mels[a] - mels[b]).max() > 1e-4, (a, b)
    with pytest.raises(ValueError, match="out of range"):
        synth(style_token=T2N["gst_token_num"])


def test_gst_injection_concat_widens_memory():
    model = build_model(tiny_model_config(gst="concat", **{k: v for k, v in T2N.items() if k != "gst"}), N_SYMBOLS)
    batch = random_batch(2, [6], [12], N_SYMBOLS)
    variables = model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, batch.text,
                           batch.text_len, batch.mel, batch.mel_len)  # fmt: skip
    memory_kernel = variables["params"]["decoder"]["memory_layer"]["kernel"]
    assert memory_kernel.shape[0] == 32 + 16  # encoder width + style width
    assert "gst_proj" not in variables["params"]


@pytest.mark.slow
def test_trained_gst_model_synthesizes_from_reference_wav_and_each_token(tiny_corpus, tmp_path):
    """A GST + TPS-GST model trained by the train command and restored from its checkpoint speaks in the
    style of a reference recording, of each token, and of its text alone: different, finite mels."""
    from pathlib import Path

    from conftest import tiny_train_config

    from taco_jax.synthesize import load_synthesizer
    from taco_jax.train.loop import train

    style = ["model.gst=add", "model.gst_token_num=3", "model.gst_token_embedding_size=16",
             "model.gst_ref_filters=[4,4,8,8,8,8]", "model.gst_ref_gru_size=8", "model.tpse=true",
             "model.tpse_gru_size=8", "model.frame_dropout=0.2", "run.max_steps=2", "run.eval_every=2"]  # fmt: skip
    result = train(tiny_train_config(tiny_corpus, tmp_path, *style), progress=False)
    assert np.isfinite(result.val_metrics["val/loss"]) and np.isfinite(result.val_metrics["val/tpse_loss"])
    filelist = Path(tiny_corpus[0])
    wav = filelist.parent / filelist.read_text().splitlines()[0].split("|")[0]
    text = ["Styles differ."]
    mels = {"reference": load_synthesizer(str(result.run_dir), reference_wav=str(wav))(text)[0].mel}
    mels["text"] = load_synthesizer(str(result.run_dir))(text)[0].mel
    for k in range(3):
        mels[f"token {k}"] = load_synthesizer(str(result.run_dir), style_token=k)(text)[0].mel
    for name, mel in mels.items():
        assert np.isfinite(mel).all() and mel.shape[0] > 0, name
    names = list(mels)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            n = min(len(mels[a]), len(mels[b]))
            assert np.abs(mels[a][:n] - mels[b][:n]).max() > 1e-4, (a, b)


@pytest.fixture(scope="module")
def two_voice_corpus(tmp_path_factory):
    """A 24-utterance corpus alternating eSpeak's en-us (F0 ~100 Hz) and en-us+f3 (F0 ~200 Hz) voices."""
    from taco_jax.config import AudioConfig, DemoCorpusConfig
    from taco_jax.demo import build_demo_corpus

    root = tmp_path_factory.mktemp("voices")
    cfg = DemoCorpusConfig(n_utterances=24, n_val=4, seed=5, min_seconds=0.8, max_seconds=2.4,
                           voices=["en-us", "en-us+f3"])  # fmt: skip
    return build_demo_corpus(cfg, AudioConfig(), root=str(root / "demo"), progress=False)


@pytest.mark.slow
def test_multi_speaker_training_and_synthesis(two_voice_corpus, tmp_path):
    from pathlib import Path

    from conftest import tiny_train_config

    from taco_jax.data import DataError
    from taco_jax.synthesize import load_synthesizer
    from taco_jax.train.loop import train

    lines = Path(two_voice_corpus[0]).read_text().splitlines()
    assert {line.rsplit("|", 1)[1] for line in lines} == {"0", "1"}  # both voices, speaker column = index
    with pytest.raises(DataError, match=r"speaker id 1.*model\.n_speakers"):
        train(tiny_train_config(two_voice_corpus, tmp_path / "single"), progress=False)
    speakers = ["model.n_speakers=2", "model.speaker_embedding_dim=8", "run.max_steps=2", "run.eval_every=2"]
    result = train(tiny_train_config(two_voice_corpus, tmp_path, *speakers), progress=False)
    assert np.isfinite(result.val_metrics["val/loss"])
    mels = [load_synthesizer(str(result.run_dir), speaker=k)(["Two voices."])[0].mel for k in (0, 1)]
    n = min(len(m) for m in mels)
    assert all(np.isfinite(m).all() for m in mels) and np.abs(mels[0][:n] - mels[1][:n]).max() > 1e-4
    with pytest.raises(ValueError, match="name one"):
        load_synthesizer(str(result.run_dir))(["No speaker."])
    with pytest.raises(ValueError, match="out of range"):
        load_synthesizer(str(result.run_dir), speaker=2)(["Speaker two."])


# ------------------------------------------------------------------------------------------------ DDC


def test_alignment_consistency_compares_each_fine_step_with_its_covering_coarse_step():
    # Three tokens, the last one padding (text_len 2); r = 3: frames 0-2, 3-5, 6-8, 9-11 (the last step padding).
    fine = jnp.array([[[1.0, 0.0, 0.5], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.3, 0.7, 0.0]]])
    coarse = jnp.array([[[0.8, 0.2, 0.0], [0.1, 0.9, 0.7]]])  # r = 6: frames 0-5, 6-11
    # Valid elements: steps 0..2 x tokens 0..1; |1-.8|+|0-.2| = .4, |.5-.8|+|.5-.2| = .6, |0-.1|+|1-.9| = .2
    got = losses.alignment_consistency_loss(fine, coarse, jnp.array([2]), jnp.array([3]), r_fine=3, r_coarse=6)
    np.testing.assert_allclose(float(got), (0.4 + 0.6 + 0.2) / 6, rtol=1e-6)
    with pytest.raises(ConfigError, match="ddc_reduction_factor"):
        load_config(None, ["model.ddc=true", "model.n_frames_per_step=2", "model.ddc_reduction_factor=3"])


def test_ddc_train_step_trains_the_coarse_decoder():
    cfg = Config()
    cfg.model = tiny_model_config(ddc=True, ddc_reduction_factor=6)
    _, state, step = build_trainer(cfg, N_SYMBOLS)
    before = jax.device_get(state.params["decoder_coarse"])
    state, metrics = step(state, random_batch(4, [9, 7], [30, 25], N_SYMBOLS))
    m = {k: float(v) for k, v in (metrics.means | metrics.states).items()}
    lc = cfg.loss
    expected = (
        m["train/mel_loss"] + m["train/mel_post_loss"] + m["train/gate_loss"]
        + m["train/ga_weight"] * (m["train/ga_loss"] + m["train/ddc_ga_loss"])
        + lc.ddc_weight * (m["train/ddc_mel_loss"] + m["train/ddc_align_loss"])
    )  # fmt: skip
    assert m["train/loss"] == pytest.approx(expected, rel=1e-5)
    assert 0.0 < m["train/ddc_align_loss"] <= 1.0 and 0.0 <= m["train/coarse_align_diag"] <= 1.0
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - b).max()), state.params["decoder_coarse"], before)
    moved.pop("gate_layer")  # the coarse decoder's gate has no loss (only its mel and alignment are used)
    assert min(jax.tree.leaves(moved)) > 0
