"""Vocoder training (issue 20, acceptance 3): training segments, the optimizer against PyTorch's, the command line,
bitwise resume and fine-tuning from a published-format generator on teacher-forced mels.

The networks are tiny (a V3-shaped generator with 16 channels and one residual block per stage, discriminators
8x narrower than published), segments 1024 samples, batches of 2: every run compiles the same train step, which
the session's persistent compilation cache then serves to the next.
"""

import json
import math
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
import soundfile as sf
from conftest import import_torch

from taco_jax.config import AudioConfig
from taco_jax.data.filelist import DataError
from taco_jax.train_vocoder.__main__ import main as vocoder_main
from taco_jax.train_vocoder.config import VocoderOptimConfig, load_vocoder_train_config, save_vocoder_train_config
from taco_jax.train_vocoder.data import build_vocoder_data
from taco_jax.train_vocoder.state import make_optimizer

HOP = 256
SCALE = 2.0**-15  # ramp wavs: sample i holds i * SCALE, exact in float32 and in a float WAV
TINY_GENERATOR = (
    "generator.overrides={upsample_initial_channel: 16, resblock_kernel_sizes: [3], resblock_dilation_sizes: [[1, 2]]}"  # noqa: E501
)


def tiny_overrides(train: str, val: str, out: Path, cache: Path, *more: str) -> list[str]:
    return [
        f"run.out_dir={out}", "run.name=v", "run.max_steps=4", "run.log_every=2", "run.eval_every=2",
        "run.progress_bar=false", "run.audio_samples=1",
        "data.corpus=filelists", f"data.train_filelist={train}", f"data.val_filelist={val}", f"data.cache_dir={cache}",
        "data.batch_size=2", "data.segment_size=1024", "data.val_utterances=2",
        "generator.preset=v3", TINY_GENERATOR, "discriminator.width_divisor=8", "optim.steps_per_epoch=3",
        *more,
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------------- data


def _ramp_utterance(directory: Path, name: str, n_samples: int, n_frames: int) -> tuple[Path, Path]:
    """A float WAV whose sample i is i * SCALE, and a mel whose frame t holds t in every bin."""
    wav = directory / f"{name}.wav"
    sf.write(wav, np.arange(n_samples, dtype=np.float32) * SCALE, 22050, subtype="FLOAT")
    mel = directory / f"{name}.npy"
    np.save(mel, np.repeat(np.arange(n_frames, dtype=np.float32)[:, None], 80, axis=1))
    return wav, mel


def _teacher_forced_config(tmp_path: Path, lines: list[str], *more: str):
    filelist = tmp_path / "tf.txt"
    filelist.write_text("".join(line + "\n" for line in lines))
    overrides = tiny_overrides(str(filelist), str(filelist), tmp_path / "runs", tmp_path / "cache", *more)
    return filelist, load_vocoder_train_config(None, [*overrides, "data.teacher_forced=true"])


def test_segments_line_up_mel_frames_and_samples(tmp_path):
    """Frame f of the input mel drives samples [f*hop, (f+1)*hop); short utterances are padded with silence."""
    long_n, short_n = 20 * HOP + 100, 2 * HOP + 7
    long = _ramp_utterance(tmp_path, "long", long_n, 1 + long_n // HOP)
    short = _ramp_utterance(tmp_path, "short", short_n, 1 + short_n // HOP)
    _, cfg = _teacher_forced_config(tmp_path, [f"{long[0].name}|{long[1].name}", f"{short[0].name}|{short[1].name}"])
    loader = build_vocoder_data(cfg).train
    silence = np.float32(math.log(1e-5))
    starts = set()
    for step in range(6):
        batch = loader.batch(step)
        assert batch.mel.shape == (2, 4, 80) and batch.audio.shape == (2, 1024)
        for mel, audio in zip(batch.mel, batch.audio, strict=True):
            if mel[-1, 0] == silence:  # the short utterance: all of it from its start, then padding
                np.testing.assert_array_equal(mel[:3], np.repeat(np.arange(3.0)[:, None], 80, axis=1))
                assert (mel[3:] == silence).all()
                np.testing.assert_array_equal(audio[:short_n], np.arange(short_n, dtype=np.float32) * SCALE)
                assert not audio[short_n:].any()
            else:
                f = int(mel[0, 0])
                starts.add(f)
                assert 0 <= f <= 20 - 4  # the segment's audio lies within the recording
                np.testing.assert_array_equal(mel, np.repeat(np.arange(f, f + 4.0)[:, None], 80, axis=1))
                np.testing.assert_array_equal(audio, np.arange(f * HOP, f * HOP + 1024, dtype=np.float32) * SCALE)
    assert len(starts) > 1  # offsets are drawn, not fixed
    again = build_vocoder_data(cfg).train.batch(4)  # a batch depends on (seed, step) alone: what resume relies on
    np.testing.assert_array_equal(again.audio, loader.batch(4).audio)


def test_teacher_forced_mel_of_wrong_length_names_file_and_line(tmp_path):
    good = _ramp_utterance(tmp_path, "good", 8 * HOP, 9)
    bad = _ramp_utterance(tmp_path, "bad", 8 * HOP + 3, 8)  # 1 + 2051 // 256 = 9 frames expected
    filelist, cfg = _teacher_forced_config(
        tmp_path, [f"{good[0].name}|{good[1].name}", "# a comment", f"{bad[0].name}|{bad[1].name}|some text"]
    )
    with pytest.raises(DataError, match=rf"{filelist}:3: .*bad\.npy: 8 mel frames; expected 9 = 1 \+ 2051 samples"):
        build_vocoder_data(cfg)
    _, cfg = _teacher_forced_config(tmp_path, [f"{good[0].name}|{good[1].name}", f"{good[0].name}|transcript"])
    with pytest.raises(DataError, match=rf"{filelist}:2: the mel path 'transcript' is not a \.npy file"):
        build_vocoder_data(cfg)


# ------------------------------------------------------------------------------------------------ optimizer


def test_optimizer_is_torch_adamw_with_per_epoch_exponential_decay():
    """optax's AdamW with the staircase schedule = torch.optim.AdamW + ExponentialLR stepped once per epoch."""
    torch = import_torch()
    o = VocoderOptimConfig(lr=0.01, adam_b1=0.8, adam_b2=0.99, weight_decay=0.01, lr_decay=0.5)
    steps_per_epoch, rng = 3, np.random.default_rng(0)
    grads = rng.normal(size=(8, 5)).astype(np.float32)
    start = rng.normal(size=5).astype(np.float32)

    p = torch.nn.Parameter(torch.tensor(start))
    opt = torch.optim.AdamW([p], lr=o.lr, betas=(o.adam_b1, o.adam_b2), eps=o.adam_eps, weight_decay=o.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=o.lr_decay)
    tx = make_optimizer(o, steps_per_epoch)
    params = jax.numpy.asarray(start)
    state = tx.init(params)
    for i, g in enumerate(grads):
        p.grad = torch.tensor(g)
        opt.step()
        if (i + 1) % steps_per_epoch == 0:
            sched.step()
        updates, state = tx.update(jax.numpy.asarray(g), state, params)
        params = params + updates
        np.testing.assert_allclose(np.asarray(params), p.detach().numpy(), rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------------- runs of the trainer


@pytest.fixture(scope="module")
def runs(tiny_corpus, tmp_path_factory):
    """(A, B) run directories. A: the command line, 4 steps with checkpoints at steps 2 and 4. B: a copy of A cut
    back to its step-2 checkpoint (the later checkpoint, generator/ and samples removed), then resumed to step 4
    by the command line."""
    root = tmp_path_factory.mktemp("vocoder_runs")
    config = root / "tiny.yaml"
    save_vocoder_train_config(
        load_vocoder_train_config(None, tiny_overrides(*tiny_corpus, root, root / "cache")), config
    )
    assert vocoder_main(["--config", str(config), "--no-progress"]) == 0
    a_dir, b_dir = root / "v", root / "resumed"
    shutil.copytree(a_dir, b_dir)
    for later in ("checkpoints/4", "generator", "samples"):
        shutil.rmtree(b_dir / later)
    assert vocoder_main(["--resume", str(b_dir), "--no-progress"]) == 0
    return a_dir, b_dir


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _restore(run_dir: Path, step: int):
    from taco_jax.checkpoint import Checkpointer

    with Checkpointer(run_dir / "checkpoints", read_only=True) as ckpt:
        return ckpt.restore(step)[0]


@pytest.mark.slow
def test_cli_trains_logs_checkpoints_and_exports_the_generator(runs):
    from taco_jax.vocoder.files import load_vocoder
    from taco_jax.vocoder.layers import fold_weight_norm

    _, run_dir = runs
    records = _records(run_dir)
    train = [r for r in records if "train/g_loss" in r]
    val = [r for r in records if "val/mel_l1" in r]
    # Each step once: the resumed run dropped the records after its checkpoint that the copy of A held.
    # Validation at the start (step 0, no checkpoint) and at each checkpoint.
    assert [r["step"] for r in train] == [2, 4] and [r["step"] for r in val] == [0, 2, 4]
    for r in train:
        for key in ("train/d_loss", "train/g_loss", "train/g_adv", "train/g_fm", "train/mel_l1", "train/lr"):
            assert math.isfinite(r[key]), (key, r)
        assert r["train/d_grad_norm"] > 0 and r["train/g_grad_norm"] > 0
    assert all(math.isfinite(r["val/mel_l1"]) and r["val/mel_l1"] > 0 for r in val)
    assert sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4]
    assert list((run_dir / "samples").glob("step0000004_0.wav")) and list((run_dir / "tb").iterdir())
    # generator/ holds the newest checkpoint's generator, weight norm folded: what --vocoder RUN loads.
    config, params = load_vocoder(run_dir)
    assert config.upsample_initial_channel == 16 and config.segment_size == 1024
    expected = fold_weight_norm(_restore(run_dir, 4)["gen_params"])
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=0, atol=0), params, expected)


@pytest.mark.slow
def test_resume_equals_an_uninterrupted_run_bitwise(runs):
    a_dir, b_dir = runs
    straight, resumed = _restore(a_dir, 4), _restore(b_dir, 4)
    assert set(straight) == set(resumed) == {"gen_params", "disc_params", "disc_stats", "gen_opt", "disc_opt", "step",
                                             "rng"}  # fmt: skip
    for name in straight:
        x, y = jax.tree.leaves(straight[name]), jax.tree.leaves(resumed[name])
        assert len(x) == len(y) and all(
            np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(x, y, strict=True)
        ), name
    # The logged losses of the step after the resume are the uninterrupted run's too.
    last = lambda d: [r for r in _records(d) if r["step"] == 4 and "train/g_loss" in r][0]  # noqa: E731
    assert last(b_dir) == {**last(a_dir), "perf/step_s": last(b_dir)["perf/step_s"],
                           "perf/mel_frames_per_s": last(b_dir)["perf/mel_frames_per_s"],
                           "perf/wall_s": last(b_dir)["perf/wall_s"]}  # fmt: skip


@pytest.mark.slow
def test_fine_tunes_published_files_on_teacher_forced_mels(runs, tiny_corpus, tmp_path):
    """A g_ file as the published training writes it (weight_g / weight_v), a do_ file with the discriminators, and
    taco_jax mels saved as .npy beside the wavs' filelist: the run starts from exactly those weights and trains."""
    torch = import_torch()
    from taco_jax.audio import load_wav, mel_spectrogram
    from taco_jax.convert.hifigan import hifigan_flax_to_torch, write_hifigan_generator
    from taco_jax.convert.hifigan_discriminators import discriminator_flax_to_torch
    from taco_jax.data.filelist import read_filelist
    from taco_jax.train_vocoder.init import initial_state, load_init_generator
    from taco_jax.train_vocoder.loop import train_vocoder
    from taco_jax.train_vocoder.models import build_models
    from taco_jax.vocoder.files import load_vocoder

    a_dir, _ = runs
    config, _ = load_vocoder(a_dir)
    trained = _restore(a_dir, 4)
    published = tmp_path / "published"
    published.mkdir()
    (published / "config.json").write_text(json.dumps(config.to_json()))
    state_dict = hifigan_flax_to_torch(trained["gen_params"], config)  # weight-normed: v and g as trained
    write_hifigan_generator(published / "g_00000004", state_dict)
    mpd = discriminator_flax_to_torch({"params": trained["disc_params"]["mpd"]}, "mpd", channel_divisor=8)
    msd_vars = {"params": trained["disc_params"]["msd"], "batch_stats": trained["disc_stats"]["msd"]}
    msd = discriminator_flax_to_torch(msd_vars, "msd", channel_divisor=8)
    as_torch = lambda sd: {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}  # noqa: E731
    torch.save({"mpd": as_torch(mpd), "msd": as_torch(msd), "steps": 4, "epoch": 1}, published / "do_00000004")

    lists = []
    for split in tiny_corpus:
        lines = []
        for u in read_filelist(split):
            mel_path = tmp_path / "mels" / (Path(u.wav_path).stem + ".npy")
            mel_path.parent.mkdir(exist_ok=True)
            np.save(mel_path, mel_spectrogram(load_wav(u.wav_path, 22050), AudioConfig()))
            lines.append(f"{u.wav_path}|{mel_path}\n")
        lists.append(tmp_path / f"{Path(split).stem}_tf.txt")
        lists[-1].write_text("".join(lines))
    sets = tiny_overrides(
        str(lists[0]), str(lists[1]), tmp_path / "runs", tmp_path / "cache", "run.max_steps=2",
        "data.teacher_forced=true", f"init.generator={published / 'g_00000004'}",
        f"init.discriminators={published / 'do_00000004'}",
    )  # fmt: skip
    cfg = load_vocoder_train_config(None, sets)

    loaded_config, loaded = load_init_generator(cfg)
    start = initial_state(cfg, build_models(loaded_config, True, 8), make_optimizer(cfg.optim, 3), loaded)
    # g and v as the file holds them (not re-derived from folded weights), every discriminator variable as saved
    exported = hifigan_flax_to_torch(start.gen_params, config)
    assert exported.keys() == state_dict.keys()
    assert all(np.array_equal(exported[k], state_dict[k]) for k in state_dict)
    for name in ("disc_params", "disc_stats"):
        x, y = jax.tree.leaves(getattr(start, name)), jax.tree.leaves(trained[name])
        assert len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y, strict=True)), name

    result = train_vocoder(cfg)
    assert result.step == 2 and math.isfinite(result.val_metrics["val/mel_l1"])
    assert "teacher_forced: true" in (Path(result.run_dir) / "config.yaml").read_text()
