"""Tests of taco_jax.data: filelists, mel cache, validation, bucketing, batching and resumption."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf

from taco_jax.config import Config
from taco_jax.data import (
    Batch,
    BatchLoader,
    DataError,
    Item,
    MelCache,
    Utterance,
    assign_bucket,
    build_data,
    collate,
    eval_batches,
    global_mel_mean,
    prepare_split,
    read_filelist,
    sorted_buckets,
)
from taco_jax.data import mel_cache as mel_cache_mod
from taco_jax.text import get_symbol_table, text_to_sequence

SR = 22050
HOP = 256


def write_wav(path, n_samples: int, seed: int = 0) -> str:
    """A quiet tone plus noise, 16-bit PCM at 22050 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SR
    wav = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(n_samples)
    sf.write(str(path), wav.astype(np.float32), SR, subtype="PCM_16")
    return str(path)


def frames_of(n_samples: int) -> int:
    return 1 + n_samples // HOP  # centred STFT: independent of the implementation under test


def make_cfg(tmp_path, buckets=((32, 40), (64, 100)), batch_size=2, r=1, skip=False, drop_remainder=True) -> Config:
    cfg = Config()
    cfg.data.corpus = "filelists"
    cfg.data.cache_dir = str(tmp_path / "cache")
    cfg.data.buckets = [list(b) for b in buckets]
    cfg.data.batch_size = batch_size
    cfg.data.skip_bad_items = skip
    cfg.data.drop_remainder = drop_remainder
    cfg.model.n_frames_per_step = r
    return cfg


def write_filelist(path, lines) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def prepare(tmp_path, cfg, filelist):
    table = get_symbol_table(cfg.text.symbols)
    cache = MelCache(cfg.data.cache_dir, cfg.audio)
    return prepare_split(read_filelist(filelist), cfg, table, cache, progress=False, name="train")


# ---------------------------------------------------------------------------------------------------------- parsing


def test_read_filelist_parsing(tmp_path):
    (tmp_path / "wavs").mkdir()
    other = tmp_path / "elsewhere" / "b.wav"
    fl = write_filelist(
        tmp_path / "train.txt",
        [
            "# a comment",
            "wavs/a.wav|Hello there.",
            "",
            "   # indented comment",
            f"{other}|Second line.|3",
            "wavs/c.wav| spaced |  7 ",
        ],
    )
    utts = read_filelist(fl)
    assert utts == [
        Utterance(str(tmp_path / "wavs" / "a.wav"), "Hello there.", 0, f"{fl}:2"),
        Utterance(str(other), "Second line.", 3, f"{fl}:5"),
        Utterance(str(tmp_path / "wavs" / "c.wav"), "spaced", 7, f"{fl}:6"),
    ]
    assert all(os.path.isabs(u.wav_path) for u in utts)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["a.wav|ok", "foo bar"], "train.txt:2: line has no '|' separator: 'foo bar'"),
        (["# c", "a.wav|text|abc"], "train.txt:2: speaker must be an integer"),
        (["a.wav|text|-1"], "train.txt:1: speaker must be >= 0"),
        (["a.wav|x|1|extra"], "train.txt:1: expected path|text[|speaker]"),
        (["|text"], "train.txt:1: empty wav path"),
    ],
)
def test_read_filelist_errors_name_file_and_line(tmp_path, lines, expected):
    fl = write_filelist(tmp_path / "train.txt", lines)
    with pytest.raises(DataError) as e:
        read_filelist(fl)
    assert expected in str(e.value)


def test_missing_filelist_names_path(tmp_path):
    with pytest.raises(DataError, match="nope.txt: filelist not found"):
        read_filelist(tmp_path / "nope.txt")


# ---------------------------------------------------------------------------------------------------------- bad items


@pytest.fixture
def corpus(tmp_path):
    """Two good wavs, one missing, one corrupt, plus empty texts, in a filelist (line numbers fixed)."""
    write_wav(tmp_path / "good1.wav", 4000, seed=1)
    write_wav(tmp_path / "good2.wav", 6000, seed=2)
    (tmp_path / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    lines = [
        "good1.wav|The first sentence.",  # 1
        "missing.wav|No audio for this one.",  # 2
        "corrupt.wav|Random bytes.",  # 3
        "good1.wav|   ",  # 4: blank text
        "good2.wav|@@@###",  # 5: only characters outside the table
        "good2.wav|The second, good sentence.|1",  # 6
    ]
    return write_filelist(tmp_path / "train.txt", lines)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (2, "missing.wav: audio file not found"),
        (3, "corrupt.wav: cannot read audio"),
        (4, "empty text"),
        (5, "empty text"),
    ],
)
def test_bad_item_raises_naming_file_line(tmp_path, corpus, line, reason):
    # Keep only line 1 and the bad line, so the error must come from that line.
    lines = open(corpus, encoding="utf-8").read().splitlines()
    keep = [lines[0]] + ["# pad"] * (line - 2) + [lines[line - 1]]
    fl = write_filelist(tmp_path / "train.txt", keep)
    with pytest.raises(DataError) as e:
        prepare(tmp_path, make_cfg(tmp_path), fl)
    msg = str(e.value)
    assert msg.startswith(f"{fl}:{line}: "), msg
    assert reason in msg


def test_text_that_is_only_eos_is_empty(tmp_path):
    write_wav(tmp_path / "a.wav", 3000)
    fl = write_filelist(tmp_path / "train.txt", ["a.wav|Fine.", "a.wav|@@@"])
    cfg = make_cfg(tmp_path, skip=True)
    cfg.text.symbols, cfg.text.add_eos = "english_eos_v1", True
    items, report = prepare(tmp_path, cfg, fl)
    table = get_symbol_table("english_eos_v1")
    assert len(items) == 1 and items[0].text[-1] == table.eos_id
    assert dict(report.dropped) == {"empty_text": 1}


def test_bad_items_skipped_counted_and_logged(tmp_path, corpus, caplog):
    cfg = make_cfg(tmp_path, skip=True)
    cfg.model.n_speakers = 2  # line 6 names speaker 1
    with caplog.at_level(logging.WARNING, logger="taco_jax.data"):
        items, report = prepare(tmp_path, cfg, corpus)
    assert [it.source for it in items] == [f"{corpus}:1", f"{corpus}:6"]
    assert [it.speaker for it in items] == [0, 1]
    assert report.n_lines == 6 and report.n_kept == 2
    assert dict(report.dropped) == {"missing_wav": 1, "unreadable_wav": 1, "empty_text": 2}
    assert report.unknown_chars["@"] == 3 and report.unknown_chars["#"] == 3
    for line in (2, 3, 4, 5):
        assert f"{corpus}:{line}:" in caplog.text
    # Kept texts are exactly the encoder's output for the filelist text.
    table = get_symbol_table(cfg.text.symbols)
    expected, _ = text_to_sequence("The first sentence.", table, cfg.text.cleaners, cfg.text.add_eos)
    np.testing.assert_array_equal(items[0].text, expected)
    assert items[0].text.dtype == np.int32 and items[0].mel.dtype == np.float32


def test_too_long_dropped_never_truncated(tmp_path):
    # Largest bucket: 30 tokens, 40 frames (r=2). 39 frames fits, 41 frames and a 31+ token text do not.
    n_fit, n_long = (39 - 1) * HOP, (41 - 1) * HOP
    write_wav(tmp_path / "fit.wav", n_fit)
    write_wav(tmp_path / "long.wav", n_long)
    write_wav(tmp_path / "short.wav", 2000)
    fl = write_filelist(
        tmp_path / "train.txt",
        ["fit.wav|Fits.", "long.wav|Too many frames.", "short.wav|" + "a" * 40, "short.wav|Short."],
    )
    cfg = make_cfg(tmp_path, buckets=[(10, 20), (30, 40)], r=2)
    items, report = prepare(tmp_path, cfg, fl)
    assert dict(report.dropped) == {"too_long": 2}
    assert [it.source for it in items] == [f"{fl}:1", f"{fl}:4"]
    assert [it.mel.shape[0] for it in items] == [frames_of(n_fit), frames_of(2000)]
    assert items[0].mel.shape == (39, cfg.audio.n_mels)
    assert report.bucket_counts == {(10, 20): 1, (30, 40): 1}
    assert report.audio_seconds == pytest.approx((39 + frames_of(2000)) * HOP / SR)
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["bucket_counts"] == {"10x20": 1, "30x40": 1} and d["dropped"] == {"too_long": 2}
    assert "train: 4 lines, 2 kept" in report.summary() and "too_long=2" in report.summary()


# ---------------------------------------------------------------------------------------------------------- buckets


def test_bucket_assignment():
    cfg = Config()
    cfg.data.buckets = [[100, 300], [50, 100], [80, 100]]  # unsorted on purpose
    shapes = sorted_buckets(cfg)
    assert shapes == [(50, 100), (80, 100), (100, 300)]
    assert assign_bucket(50, 100, shapes, r=1) == 0
    assert assign_bucket(51, 100, shapes, r=1) == 1  # text too long for the first
    assert assign_bucket(10, 101, shapes, r=1) == 2
    assert assign_bucket(10, 99, shapes, r=4) == 0  # padded to 100
    assert assign_bucket(100, 300, shapes, r=3) == 2
    assert assign_bucket(101, 10, shapes, r=1) is None
    assert assign_bucket(10, 301, shapes, r=1) is None


def make_item(uid: int, text_len: int, mel_len: int, n_mels: int = 4, speaker: int = 0) -> Item:
    """Synthetic item whose first token and every mel value identify it."""
    text = np.full(text_len, 1 + uid % 50, np.int32)
    text[0] = uid + 1
    mel = np.full((mel_len, n_mels), float(uid + 1), np.float32)
    return Item(text, mel, speaker, f"synthetic:{uid}")


def test_collate_gate_and_padding():
    a, b = make_item(0, 3, 3, speaker=2), make_item(1, 5, 5)
    batch = collate([a, b], (6, 5))
    assert isinstance(batch, Batch)
    np.testing.assert_array_equal(batch.gate, [[0, 0, 1, 1, 1], [0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(batch.text, [[1, 1, 1, 0, 0, 0], [2, 2, 2, 2, 2, 0]])
    np.testing.assert_array_equal(batch.text_len, [3, 5])
    np.testing.assert_array_equal(batch.mel_len, [3, 5])
    np.testing.assert_array_equal(batch.speaker, [2, 0])
    assert batch.mel.shape == (2, 5, 4)
    np.testing.assert_array_equal(batch.mel[0, :3], 1.0)
    np.testing.assert_array_equal(batch.mel[0, 3:], 0.0)
    np.testing.assert_array_equal(batch.mel[1], 2.0)
    assert [x.dtype for x in batch] == [np.int32, np.int32, np.float32, np.int32, np.float32, np.int32]


def synthetic_items(n_small=10, n_large=7):
    """n_small items for bucket (8, 10) and n_large for (16, 20), interleaved as in a filelist."""
    kinds: list[bool] = []
    while len(kinds) < n_small + n_large:
        if kinds.count(False) < n_small:
            kinds.append(False)
        if kinds.count(True) < n_large:
            kinds.append(True)
    return [make_item(i, 12, 17) if large else make_item(i, 5, 8) for i, large in enumerate(kinds)]


def loader_cfg(batch_size=3, drop_remainder=True, seed=1234):
    cfg = Config()
    cfg.data.buckets = [[16, 20], [8, 10]]
    cfg.data.batch_size = batch_size
    cfg.data.drop_remainder = drop_remainder
    cfg.run.seed = seed
    return cfg


def uids(batch: Batch) -> list[int]:
    return [int(t) - 1 for t in batch.text[:, 0]]


def test_loader_shapes_and_content():
    items = synthetic_items()
    loader = BatchLoader(items, loader_cfg())
    assert loader.bucket_shapes == [(8, 10), (16, 20)]
    n_small = sum(it.mel.shape[0] == 8 for it in items)
    assert loader.steps_per_epoch == n_small // 3 + (len(items) - n_small) // 3
    for _ in range(2 * loader.steps_per_epoch):
        batch = next(loader)
        shape = (batch.text.shape[1], batch.mel.shape[1])
        assert shape in loader.bucket_shapes
        assert batch.text.shape[0] == batch.mel.shape[0] == 3
        for row, uid in enumerate(uids(batch)):  # each row is the item it claims to be, unpadded/untruncated
            it = items[uid]
            assert batch.text_len[row] == len(it.text) and batch.mel_len[row] == it.mel.shape[0]
            np.testing.assert_array_equal(batch.mel[row, : it.mel.shape[0]], it.mel)
            assert shape == ((8, 10) if len(it.text) == 5 else (16, 20))


def test_loader_resume_matches_uninterrupted():
    items = synthetic_items()
    cfg = loader_cfg()
    reference = BatchLoader(items, cfg)
    steps = reference.steps_per_epoch
    expected = [next(reference) for _ in range(3 * steps)]
    for k in (0, 2, steps - 1, steps, steps + 1):
        first = BatchLoader(items, cfg)
        for i in range(k):
            assert all(np.array_equal(x, y) for x, y in zip(next(first), expected[i], strict=True))
        state = json.loads(json.dumps(first.get_state()))  # survives a JSON round trip
        assert set(state) == {"epoch", "position"}
        resumed = BatchLoader(items, cfg)
        resumed.set_state(state)
        for i in range(k, k + steps + 2):
            got = next(resumed)
            assert all(np.array_equal(x, y) for x, y in zip(got, expected[i], strict=True)), (k, i)


def test_loader_rejects_bad_state():
    loader = BatchLoader(synthetic_items(), loader_cfg())
    for bad in ({"epoch": 0}, {"epoch": 0, "position": loader.steps_per_epoch + 1}, {"epoch": -1, "position": 0}):
        with pytest.raises(ValueError, match="state"):
            loader.set_state(bad)
    loader.set_state({"epoch": 0, "position": loader.steps_per_epoch})  # end of epoch 0 = start of epoch 1
    next(loader)
    assert loader.get_state() == {"epoch": 1, "position": 1}


def test_epochs_differ_in_order_but_hold_same_items():
    items = synthetic_items(n_small=9, n_large=6)  # multiples of the batch size: every item once per epoch
    loader = BatchLoader(items, loader_cfg(batch_size=3))
    steps = loader.steps_per_epoch
    assert steps == 5
    epochs = [[uids(next(loader)) for _ in range(steps)] for _ in range(2)]
    assert epochs[0] != epochs[1]
    flat = [sorted(u for b in e for u in b) for e in epochs]
    assert flat[0] == flat[1] == list(range(len(items)))
    other_seed = BatchLoader(items, loader_cfg(batch_size=3, seed=99))
    assert [uids(next(other_seed)) for _ in range(steps)] != epochs[0]


def test_loader_pads_remainder_by_repeating_batch_items():
    items = synthetic_items(n_small=4, n_large=0)
    loader = BatchLoader(items, loader_cfg(batch_size=3, drop_remainder=False))
    assert loader.steps_per_epoch == 2
    batches = [uids(next(loader)) for _ in range(2)]
    assert sorted(set(batches[0]) | set(batches[1])) == [0, 1, 2, 3]
    short = min(batches, key=lambda b: len(set(b)))
    assert len(set(short)) == 1  # 4 = 3 + 1: the last batch repeats its single item
    with pytest.raises(DataError, match="no full training batch"):
        BatchLoader(items, loader_cfg(batch_size=5, drop_remainder=True))


def test_eval_batches_cover_every_item_once():
    items = synthetic_items(n_small=7, n_large=4)
    cfg = loader_cfg(batch_size=3)
    batches = eval_batches(items, cfg)
    assert [n for _, n in batches] == [3, 3, 1, 3, 1]
    real = [u for b, n in batches for u in uids(b)[:n]]
    assert sorted(real) == list(range(len(items)))
    for b, n in batches:
        assert b.text.shape[0] == 3
        assert set(uids(b)[n:]) <= set(uids(b)[:n])  # padding rows repeat the batch's own items
    assert batches[2].batch.text.shape == (3, 8) and batches[3].batch.text.shape == (3, 16)
    again = eval_batches(items, cfg)  # deterministic
    assert all(np.array_equal(x.batch.mel, y.batch.mel) for x, y in zip(batches, again, strict=True))


def test_global_mel_mean_is_frame_weighted():
    items = [make_item(0, 2, 2), make_item(3, 2, 1)]  # mels of 1.0 (2 frames) and 4.0 (1 frame)
    np.testing.assert_allclose(global_mel_mean(items), np.full(4, 2.0))


# ---------------------------------------------------------------------------------------------------------- mel cache


def test_mel_cache_writes_once_and_reuses(tmp_path, monkeypatch):
    from taco_jax.audio import load_wav, mel_spectrogram

    calls = []

    def counting(wav, cfg):
        calls.append(len(wav))
        return mel_spectrogram(wav, cfg)

    monkeypatch.setattr(mel_cache_mod, "mel_spectrogram", counting)
    paths = [write_wav(tmp_path / f"{i}.wav", 3000 + 500 * i, seed=i) for i in range(3)]
    cfg = Config()
    cache = MelCache(tmp_path / "cache", cfg.audio)
    first = [cache.get(p) for p in paths]
    assert len(calls) == 3
    again = [MelCache(tmp_path / "cache", cfg.audio).get(p) for p in paths]
    assert len(calls) == 3  # all served from disk
    for p, a, b in zip(paths, first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, mel_spectrogram(load_wav(p, SR), cfg.audio))
        assert a.shape == (frames_of(sf.info(p).frames), cfg.audio.n_mels)
    files = [f for _, _, fs in os.walk(tmp_path / "cache") for f in fs]
    assert len(files) == 3 and all(f.endswith(".npy") and not f.startswith(".tmp") for f in files)
    assert {os.path.dirname(cache.path_for(p)) for p in paths} == {cache.dir}

    # Another audio config uses another directory; a rewritten wav gets a new key.
    cfg.audio.n_mels = 40
    other = MelCache(tmp_path / "cache", cfg.audio)
    assert other.dir != cache.dir and other.get(paths[0]).shape[1] == 40
    old_key = cache.path_for(paths[1])
    write_wav(paths[1], 5000, seed=9)
    os.utime(paths[1], ns=(1, 1))
    assert cache.path_for(paths[1]) != old_key
    assert cache.get(paths[1]).shape[0] == frames_of(5000)


def test_default_cache_dir(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app: str(tmp_path / app))
    assert MelCache(None, Config().audio).dir.startswith(str(tmp_path / "taco_jax" / "mels") + os.sep)
    assert MelCache("", Config().audio).dir.startswith(str(tmp_path / "taco_jax" / "mels") + os.sep)


# ---------------------------------------------------------------------------------------------------------- top level


def test_build_data_with_holdout(tmp_path, caplog):
    lines = []
    for i in range(12):
        write_wav(tmp_path / f"u{i}.wav", 2500 + 300 * i, seed=i)
        lines.append(f"u{i}.wav|Sentence number {i}.")
    cfg = make_cfg(tmp_path, buckets=[(40, 30), (40, 60)], batch_size=2)
    cfg.data.train_filelist = write_filelist(tmp_path / "train.txt", lines)
    with caplog.at_level(logging.INFO, logger="taco_jax.data"):
        data = build_data(cfg, progress=False)
    assert [it.source for it in data.val_items] == [f"{cfg.data.train_filelist}:12"]  # last 5%, at least 1
    assert len(data.train_items) == 11 and data.train_report.n_lines == 11
    assert [n for _, n in data.val_batches] == [1]
    assert data.train_loader.steps_per_epoch == sum(c // 2 for c in data.train_report.bucket_counts.values())
    all_frames = np.concatenate([it.mel for it in data.train_items])
    np.testing.assert_allclose(data.mel_mean, all_frames.mean(axis=0), rtol=1e-5, atol=1e-5)
    assert len(data.table) > 0
    assert "train: 11 lines, 11 kept" in caplog.text and "val: 1 lines, 1 kept" in caplog.text
    batch = next(iter(data.train_loader))
    assert (batch.text.shape[1], batch.mel.shape[1]) in [(40, 30), (40, 60)]


def test_build_data_demo_corpus_uses_its_filelists(tmp_path, monkeypatch):
    # The real eSpeak corpus takes seconds per utterance to build; its own tests cover it. Here: the wiring.
    import taco_jax.demo as demo

    for i in range(5):
        write_wav(tmp_path / f"d{i}.wav", 3000 + 200 * i, seed=i)
    train = write_filelist(tmp_path / "train.txt", [f"d{i}.wav|Demo line {i}." for i in range(4)])
    val = write_filelist(tmp_path / "val.txt", ["d4.wav|Held out."])
    calls = []

    def fake_build(demo_cfg, audio_cfg, root=None, progress=True):
        calls.append((demo_cfg, audio_cfg, progress))
        return train, val

    monkeypatch.setattr(demo, "build_demo_corpus", fake_build)
    cfg = make_cfg(tmp_path, buckets=[(40, 60)], batch_size=2)
    cfg.data.corpus = "demo"
    data = build_data(cfg, progress=False)
    assert calls == [(cfg.data.demo, cfg.audio, False)]
    assert [it.source for it in data.val_items] == [f"{val}:1"]
    assert [it.source for it in data.train_items] == [f"{train}:{i}" for i in range(1, 5)]
    assert data.train_loader.steps_per_epoch == 2
