"""Tests for taco_jax.audio against independent references (librosa's STFT and mel centres, hand values)."""

from __future__ import annotations

import logging
import os

import librosa
import numpy as np
import pytest
import soundfile as sf

from taco_jax.audio import AudioError, griffin_lim, load_wav, mel_spectrogram, save_wav
from taco_jax.config import AudioConfig


def _reference_log_mel(y: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Independent log-mel `[frames, n_mels]`: librosa.stft magnitude + librosa mel basis + log-floor."""
    stft = librosa.stft(
        y.astype(np.float64),
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window="hann",
        center=True,
        pad_mode="reflect",
    )
    basis = librosa.filters.mel(sr=cfg.sampling_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    return np.log(np.maximum(basis @ np.abs(stft), cfg.mel_floor)).T


def _chirp_noise(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A 100 Hz -> 5 kHz chirp with a syllable-like envelope, light noise and a stretch of digital silence."""
    t = np.arange(int(sr * seconds)) / sr
    phase = 2 * np.pi * (100 * t + (5000 - 100) / (2 * seconds) * t**2)
    envelope = 0.2 + 0.8 * np.abs(np.sin(2 * np.pi * 2.5 * t))
    y = 0.6 * envelope * np.sin(phase) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    y[: sr // 4] = 0.0  # digital silence: every mel bin at the floor
    return y.astype(np.float32)


@pytest.mark.parametrize(
    "cfg",
    [
        AudioConfig(),
        # win_length < n_fft exercises the centred zero-padding of the window; odd fmin/fmax the basis.
        AudioConfig(sampling_rate=16000, n_fft=512, hop_length=160, win_length=400, n_mels=64, fmin=55.0, fmax=7600.0),
    ],
    ids=["nvidia-22k", "16k-win400"],
)
def test_mel_matches_librosa_on_chirp_and_noise(cfg: AudioConfig) -> None:
    y = _chirp_noise(cfg.sampling_rate, 1.3)
    ours = mel_spectrogram(y, cfg)
    ref = _reference_log_mel(y, cfg)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == (1 + y.size // cfg.hop_length, cfg.n_mels)
    assert np.max(np.abs(ours - ref)) < 1e-4


def test_mel_matches_librosa_on_espeak_speech() -> None:
    # Real speech-like input from eSpeak NG (the demo corpus synthesizer).
    from taco_jax.demo import synthesize_espeak

    wav, sr = synthesize_espeak("Please call me back after seven o'clock tonight.")
    wav = np.asarray(wav, dtype=np.float32)
    assert wav.ndim == 1 and wav.size > sr // 2
    cfg = AudioConfig(sampling_rate=sr)
    ours = mel_spectrogram(wav, cfg)
    ref = _reference_log_mel(wav, cfg)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-4


@pytest.mark.parametrize("n", [2, 255, 256, 257, 1024, 22050])
def test_frame_count(n: int) -> None:
    cfg = AudioConfig()
    y = np.random.default_rng(n).uniform(-0.5, 0.5, n).astype(np.float32)
    assert mel_spectrogram(y, cfg).shape == (1 + n // 256, 80)


def test_sine_peaks_in_mel_bin_nearest_1khz() -> None:
    cfg = AudioConfig()
    t = np.arange(cfg.sampling_rate) / cfg.sampling_rate
    mel = mel_spectrogram((0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32), cfg)
    # Filter i of librosa's basis peaks at the (i+1)-th of n_mels + 2 Slaney-spaced frequencies.
    centres = librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.fmin, fmax=cfg.fmax, htk=False)[1:-1]
    expected = int(np.argmin(np.abs(centres - 1000.0)))
    assert abs(centres[expected] - 1000.0) < 10.0  # sanity: 1005.6 Hz for the default config
    assert int(np.argmax(mel[5:-5].mean(axis=0))) == expected


def test_load_wav_resamples_and_logs(tmp_path, caplog) -> None:
    path = str(tmp_path / "tone16k.wav")
    t = np.arange(16000) / 16000
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440.0 * t), 16000, subtype="PCM_16")
    with caplog.at_level(logging.INFO, logger="taco_jax.audio"):
        wav = load_wav(path, 22050)
    assert wav.dtype == np.float32 and wav.shape == (22050,)  # 1 s at the new rate
    notices = [r.getMessage() for r in caplog.records if r.name == "taco_jax.audio"]
    assert any(path in m and "16000" in m and "22050" in m for m in notices), notices
    # The tone survives resampling: compare with the analytic 440 Hz sine away from the edges.
    t22 = np.arange(22050) / 22050
    np.testing.assert_allclose(wav[1000:-1000], 0.5 * np.sin(2 * np.pi * 440.0 * t22[1000:-1000]), atol=2e-3)


def test_load_wav_same_rate_does_not_log(tmp_path, caplog) -> None:
    path = str(tmp_path / "a.wav")
    sf.write(path, np.full(100, 0.25), 22050, subtype="PCM_16")
    with caplog.at_level(logging.INFO, logger="taco_jax.audio"):
        wav = load_wav(path, 22050)
    assert not [r for r in caplog.records if r.name == "taco_jax.audio"]
    np.testing.assert_array_equal(wav, np.full(100, 0.25, np.float32))  # 0.25 is exact in 16-bit PCM


def test_load_wav_averages_stereo(tmp_path) -> None:
    path = str(tmp_path / "stereo.wav")
    left, right = np.full(64, 0.5), np.linspace(-0.5, 0.5, 64)
    sf.write(path, np.stack([left, right], axis=1), 22050, subtype="PCM_16")
    wav = load_wav(path, 22050)
    assert wav.shape == (64,)
    np.testing.assert_allclose(wav, (left + right) / 2, atol=1 / 32768)


def test_load_wav_errors_name_the_path(tmp_path) -> None:
    missing = str(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="^" + missing):
        load_wav(missing, 22050)

    corrupt = str(tmp_path / "corrupt.wav")
    with open(corrupt, "wb") as f:
        f.write(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match="^" + corrupt):
        load_wav(corrupt, 22050)

    empty = str(tmp_path / "empty.wav")
    sf.write(empty, np.zeros(0), 22050, subtype="PCM_16")
    with pytest.raises(AudioError, match="^" + empty):
        load_wav(empty, 22050)


def test_save_load_round_trip(tmp_path) -> None:
    path = str(tmp_path / "sub" / "out.wav")
    wav = np.concatenate([np.random.default_rng(1).uniform(-1, 1, 5000), [-1.0, 1.0, 0.0]]).astype(np.float32)
    save_wav(path, wav, 22050)
    assert sf.info(path).subtype == "PCM_16" and sf.info(path).samplerate == 22050
    back = load_wav(path, 22050)
    assert back.shape == wav.shape
    assert np.max(np.abs(back - wav)) <= 1 / 32768
    assert os.listdir(tmp_path / "sub") == ["out.wav"]  # no temp file left behind


def test_save_wav_clips(tmp_path) -> None:
    path = str(tmp_path / "loud.wav")
    save_wav(path, np.array([2.0, -3.0, 0.5], np.float32), 16000)
    pcm, _ = sf.read(path, dtype="int16")
    np.testing.assert_array_equal(pcm, [32767, -32768, 16384])


def test_griffin_lim_recovers_a_tone() -> None:
    cfg = AudioConfig()
    sr, n = cfg.sampling_rate, cfg.sampling_rate  # 1 s
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(n) / sr)).astype(np.float32)
    log_mel = mel_spectrogram(tone, cfg)
    wav = griffin_lim(log_mel, cfg, n_iters=16)
    frames = log_mel.shape[0]
    assert wav.dtype == np.float32
    assert abs(wav.size - frames * cfg.hop_length) <= cfg.hop_length
    assert np.max(np.abs(wav)) <= 1.0
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(wav.size)))
    dominant = np.argmax(spectrum) * sr / wav.size  # Hz; bin spacing ~1 Hz here
    assert abs(dominant - 440.0) < 5.0


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_griffin_lim_of_very_short_mels(frames) -> None:
    # A model that stops after its first decoder step hands the vocoder one frame: (frames - 1) * hop samples.
    cfg = AudioConfig()
    wav = griffin_lim(np.full((frames, cfg.n_mels), -5.0, np.float32), cfg, n_iters=2)
    assert wav.dtype == np.float32 and wav.shape == ((frames - 1) * cfg.hop_length,)
