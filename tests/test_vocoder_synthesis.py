"""A HiFi-GAN behind the synthesizer (`--vocoder`) and teacher-forced mels for vocoder fine-tuning.

The generator itself is checked against PyTorch in test_vocoder_generator.py; here the expectation for every
waveform is that generator applied directly, on the mel padded by hand with silence, and cut to frames * hop.
The Tacotron is test_quiet's untrained tiny checkpoint.
"""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest
import soundfile as sf
from test_quiet import checkpoint  # noqa: F401 — the tiny checkpoint fixture, reused

import taco_jax.synthesize.__main__ as cli
from taco_jax.audio import load_wav, mel_spectrogram
from taco_jax.synthesize import VocoderMismatchError, load_synthesizer
from taco_jax.synthesize.teacher_forced import main as teacher_forced_main
from taco_jax.vocoder import PRESETS, Generator, init_generator_params, save_vocoder
from taco_jax.vocoder.inference import HifiganVocoder

SILENCE = math.log(1e-5)
TINY = PRESETS["v3"].replace(upsample_initial_channel=16)  # hop 256 like the Tacotron's features, 8/4/2 channels


@pytest.fixture(scope="module")
def tiny_vocoder(tmp_path_factory):
    params = init_generator_params(TINY, 0)
    return save_vocoder(tmp_path_factory.mktemp("vocoder") / "tiny", TINY, params), params


def _direct(params, mel: np.ndarray, padded_frames: int) -> np.ndarray:
    """The expectation: Generator(TINY) on `mel` padded with silence to `padded_frames`, cut to frames * 256."""
    x = np.full((1, padded_frames, 80), SILENCE, np.float32)
    x[0, : len(mel)] = mel
    wav = jax.jit(Generator(TINY).apply)({"params": params}, x)
    return np.asarray(wav)[0, : len(mel) * 256]


def test_batched_vocoder_equals_the_generator_item_by_item(tiny_vocoder):
    """Items of 10, 70 and 64 frames in batches of 2 (longest first: [70, 64] padded to 128, then [10] with a
    copy, padded to 64): each output is the generator's on that item alone with the same padding, in input
    order; two programs compiled, none again on a second call; the timing counts 144 frames of audio."""
    _, params = tiny_vocoder
    rng = np.random.default_rng(0)
    mels = [rng.normal(-5.0, 2.0, (n, 80)).astype(np.float32) for n in (10, 70, 64)]
    vocoder = HifiganVocoder(TINY, params, batch_size=2, bucket_frames=64)
    wavs = vocoder(mels)
    assert [w.shape for w in wavs] == [(10 * 256,), (70 * 256,), (64 * 256,)]
    for mel, wav, padded in zip(mels, wavs, (64, 128, 128), strict=True):
        np.testing.assert_allclose(wav, _direct(params, mel, padded), rtol=0, atol=1e-5)
    assert vocoder.timing.programs == 2
    vocoder(mels)
    assert vocoder.timing.programs == 2
    assert vocoder.timing.audio_s == pytest.approx(2 * 144 * 256 / 22050)
    assert vocoder.timing.compute_s > 0 and "real-time factor" in vocoder.timing.summary()


def test_vocoder_refuses_a_mel_of_the_wrong_shape(tiny_vocoder):
    with pytest.raises(ValueError, match=r"mel 1: expected \[frames, 80\], got shape \(5, 40\)"):
        HifiganVocoder(TINY, tiny_vocoder[1])([np.zeros((5, 80), np.float32), np.zeros((5, 40), np.float32)])


def test_cli_with_a_vocoder_writes_its_waveform_and_the_real_time_factor(
    checkpoint, tiny_vocoder, tmp_path, capsys  # noqa: F811
):  # fmt: skip
    """Two texts through `--vocoder DIR`: each wav is the generator's on the saved mel (frames * hop samples,
    16-bit), and the last printed line gives the real-time factor."""
    out = tmp_path / "out"
    args = ["--checkpoint", str(checkpoint), "--text", "Hello.", "--text", "A second one.", "--out-dir", str(out),
            "--vocoder", str(tiny_vocoder[0]), "--set", "model.gate_threshold=2.0",
            "--set", "model.max_decoder_steps=9"]  # fmt: skip
    assert cli.main(args) == 0
    report = json.loads((out / "report.json").read_text())
    for item in report:
        mel = np.load(out / item["mel"])
        wav, sr = sf.read(out / item["wav"], dtype="float32")
        assert sr == 22050 and mel.shape == (9, 80) and wav.shape == (9 * 256,)
        np.testing.assert_allclose(wav, _direct(tiny_vocoder[1], mel, 64), rtol=0, atol=2 / 32768)  # 16-bit file
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("vocoder: HiFi-GAN, real-time factor ") and "compiling 1 program took" in last


def test_vocoder_for_other_features_is_refused_naming_the_keys(checkpoint, tmp_path):  # noqa: F811
    other = PRESETS["v3"].replace(
        upsample_initial_channel=16, upsample_rates=(8, 8, 2), hop_size=128, sampling_rate=16000
    )
    path = save_vocoder(tmp_path / "v", other, init_generator_params(other, 0))
    with pytest.raises(VocoderMismatchError) as e:
        load_synthesizer(str(checkpoint), vocoder=str(path))
    message = str(e.value)
    assert "sampling_rate: vocoder 16000, model 22050" in message
    assert "hop_size / audio.hop_length: vocoder 128, model 256" in message and "num_mels" not in message


def test_teacher_forced_mels_line_up_with_the_audio(checkpoint, tiny_corpus, tmp_path, capsys):  # noqa: F811
    """Every mel has the ground-truth mel's frame count (1 + samples // hop) and equals the model's teacher-forced
    post-net output on that item alone (checked for the first, in batches of 4 of items sorted by text length:
    padding around it); the filelist pairs each wav with its mel."""
    from taco_jax.checkpoint import restore_model, restore_symbols
    from taco_jax.data.filelist import read_filelist
    from taco_jax.text import text_to_sequence

    _, val = tiny_corpus
    out = tmp_path / "tf"
    assert teacher_forced_main(["--checkpoint", str(checkpoint), "--filelist", val, "--out-dir", str(out),
                                "--batch-size", "4"]) == 0  # fmt: skip
    lines = (out / "val.txt").read_text().splitlines()
    utterances = read_filelist(val)
    assert len(lines) == len(utterances) and "mean |teacher-forced - ground truth|" in capsys.readouterr().out
    cfg, model, variables = restore_model(str(checkpoint))
    table = restore_symbols(str(checkpoint))
    for k, (line, u) in enumerate(zip(lines, utterances, strict=True)):
        wav_path, mel_path = line.split("|")
        assert wav_path == u.wav_path
        mel = np.load(out / mel_path)
        samples = len(load_wav(wav_path, 22050))
        truth = mel_spectrogram(load_wav(wav_path, 22050), cfg.audio)
        assert mel.shape == truth.shape == (1 + samples // 256, 80)
        if k:
            continue  # the values of one item: each item's own forward pass costs a compilation
        ids = text_to_sequence(u.text, table, cfg.text.cleaners, cfg.text.add_eos)[0]
        t = -(-len(truth) // 3) * 3  # r = 3
        padded = np.zeros((1, t, 80), np.float32)
        padded[0, : len(truth)] = truth
        forward = jax.jit(lambda v, *a: model.apply(v, *a, rngs={"dropout": jax.random.PRNGKey(0)}).mel_post)
        expected = forward(variables, ids[None], np.array([len(ids)]), padded, np.array([len(truth)]))[0, : len(truth)]
        np.testing.assert_allclose(mel, np.asarray(expected), rtol=0, atol=2e-5)
