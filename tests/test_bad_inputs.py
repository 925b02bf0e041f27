"""Bad input through the command lines: filelists, wavs, texts, configs and checkpoints.

Every refused input must give exit status 2 and exactly one stderr line `error: ...` (no traceback) that
names the file and line, the config key or the checkpoint path, and must leave nothing half-written: no run
directory after a failed start, no `.tmp-*` file, no unreadable mel-cache file, no synthesis output. Inputs a
user would expect to work (CRLF and byte-order-marked files, 8-bit PCM, 8 kHz audio, an mp3 or Ogg file named
.wav, a wav too long for every bucket among good ones) must work. The CLIs run in-process for speed; a refused
training start fails in data loading, before anything is compiled.
"""

from __future__ import annotations

import codecs
import json
import logging
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import tiny_config_file, tiny_train_config

from taco_jax.audio import load_wav
from taco_jax.data import MelCache, build_data, read_filelist
from taco_jax.data import mel_cache as mel_cache_mod
from taco_jax.synthesize.__main__ import main as synthesize_main
from taco_jax.train.__main__ import main as train_main

SR = 22050
LONG_SECONDS = 2 * 3600


# ------------------------------------------------------------------------------------------------------ helpers


def write_lines(path: Path, lines, *, newline: str = "\n", encoding: str = "utf-8", bom: bool = False) -> str:
    raw = (newline.join(lines) + newline).encode(encoding)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + raw)
    return str(path)


def write_long_wav_header(path: Path, seconds: float) -> str:
    """A 16-bit mono wav whose header declares `seconds` of audio, as a sparse file (no disk blocks)."""
    sf.write(str(path), np.zeros(0, np.int16), SR, subtype="PCM_16")
    header = bytearray(path.read_bytes())
    assert len(header) == 44 and header[36:40] == b"data"
    n_bytes = int(seconds * SR) * 2
    header[4:8] = struct.pack("<I", 36 + n_bytes)
    header[40:44] = struct.pack("<I", n_bytes)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + n_bytes)
    return str(path)


def one_error_line(err: str) -> str:
    """The single `error:` line of a command's stderr (log lines may precede it); no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert len(lines) == 1, err
    return lines[0]


def assert_refused(status: int, err: str, *needles: str) -> str:
    line = one_error_line(err)
    assert status == 2, line
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def leftovers(*roots: Path) -> list[str]:
    """Half-written files under `roots`: atomic-write temporaries and mel-cache files that do not load."""
    bad = []
    for root in roots:
        if not root.exists():
            continue
        bad += [str(p) for p in root.rglob(".tmp-*")]
        for npy in root.rglob("*.npy"):
            try:
                np.load(npy, allow_pickle=False)
            except Exception:  # noqa: BLE001 — any failure to load is a half-written file
                bad.append(str(npy))
    return bad


@pytest.fixture(scope="module")
def good_wavs(tiny_corpus) -> list[str]:
    """Absolute paths of the tiny corpus's training wavs (real eSpeak speech at 22050 Hz)."""
    return [u.wav_path for u in read_filelist(tiny_corpus[0])]


@pytest.fixture(scope="module")
def corpus_lines(tiny_corpus) -> tuple[list[str], list[str]]:
    """The tiny corpus's (train, val) filelists as `abs_path|text` lines."""
    return tuple([f"{u.wav_path}|{u.text}" for u in read_filelist(fl)] for fl in tiny_corpus)


def cache_dir(tmp_path: Path) -> Path:
    return tmp_path.parent / "mel_cache"  # where tiny_train_overrides puts the mel cache (shared by tests)


# ---------------------------------------------------------------------------------------- training: refused


def _wav_case(name: str, write, reason: str):
    """A filelist whose line 2 names the wav `write(path)` makes (line 1 is good): the error names line 2, the
    wav and the `reason`."""

    def build(d: Path, good: str):
        write(d / name)
        return [f"{good}|A good line.", f"{name}|Hello there."], ["{fl}:2: " + f"{d / name}: {reason}"]

    return build


def _float_wav(value: float):
    def write(path: Path):
        samples = 0.1 * np.sin(np.arange(4000) / 7.0)
        samples[100] = value
        sf.write(str(path), samples.astype(np.float32), SR, subtype="FLOAT")

    return write


# Each case: (d, good wav) -> (train filelist lines, or None when the case writes its own; needles of the message).
# "{fl}" in a needle is the train filelist's path.
TRAIN_CASES = {
    # filelists
    "filelist_missing": lambda d, good: (None, ["{fl}: filelist not found"]),
    "filelist_empty": lambda d, good: ([], ["{fl}: the filelist holds no utterances"]),
    "filelist_only_comments": lambda d, good: (["# nothing", "   "], ["{fl}: the filelist holds no utterances"]),
    "no_separator": lambda d, good: ([f"{good}|Fine.", f"{good} Hello there."], ["{fl}:2: line has no '|'"]),
    "tab_separator": lambda d, good: ([f"{good}\tHello there."], ["{fl}:1: line has no '|'"]),
    "empty_text_field": lambda d, good: ([f"{good}|Fine.", f"{good}|"], ["{fl}:2: empty text after cleaning"]),
    "empty_wav_path": lambda d, good: ([f"{good}|Fine.", "|Hello there."], ["{fl}:2: empty wav path"]),
    "speaker_not_integer": lambda d, good: ([f"{good}|Hello.|two"], ["{fl}:1: speaker must be an integer, got 'two'"]),
    "speaker_negative": lambda d, good: ([f"{good}|Hello.|-1"], ["{fl}:1: speaker must be >= 0"]),
    "speaker_out_of_range": lambda d, good: (
        [f"{good}|Hello.|0", f"{good}|Hello.|3"],
        ["{fl}:2: speaker id 3", "'model.n_speakers'"],
    ),
    "doubled_separator": lambda d, good: ([f"{good}||Hello there."], ["{fl}:1: speaker must be an integer", "doubled"]),
    "too_many_fields": lambda d, good: ([f"{good}|Hello.|0|extra"], ["{fl}:1: expected path|text[|speaker]"]),
    "latin1_filelist": lambda d, good: (None, ["{fl}:2: line is not valid UTF-8", "save the filelist as UTF-8"]),
    "utf16_filelist": lambda d, good: (None, ["{fl}:1: the filelist is UTF-16"]),
    # wavs
    "wav_missing": lambda d, good: (
        [f"{good}|Fine.", "nowhere/x.wav|Hello."],
        ["{fl}:2: ", "x.wav: audio file not found"],
    ),
    "wav_is_directory": lambda d, good: (
        [f"{good}|Fine.", f"{d.parent}|Hello."],
        ["{fl}:2: ", f"{d.parent}: is a directory"],
    ),
    "wav_zero_bytes": _wav_case("zero.wav", lambda p: p.write_bytes(b""), "audio file is empty (0 bytes)"),
    "wav_garbage": _wav_case(
        "garbage.wav", lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "cannot read audio"
    ),
    "wav_text_file": _wav_case(
        "notes.wav", lambda p: p.write_text("these are not samples\n" * 50), "cannot read audio"
    ),
    "wav_header_only": _wav_case(
        "header.wav", lambda p: sf.write(str(p), np.zeros(0), SR, subtype="PCM_16"), "audio file is empty"
    ),
    "wav_one_sample": _wav_case(
        "one.wav", lambda p: sf.write(str(p), np.full(1, 0.5), SR, subtype="PCM_16"), "cannot compute a mel"
    ),
    "wav_nan": _wav_case("nan.wav", _float_wav(np.nan), "audio contains NaN or infinite samples"),
    "wav_inf": _wav_case("inf.wav", _float_wav(np.inf), "audio contains NaN or infinite samples"),
    "wav_silent": _wav_case(
        "silent.wav", lambda p: sf.write(str(p), np.zeros(SR), SR, subtype="PCM_16"), "audio is silent"
    ),
    "wav_silent_8bit": _wav_case(
        "silent8.wav", lambda p: sf.write(str(p), np.zeros(SR), SR, subtype="PCM_U8"), "audio is silent"
    ),
    "only_a_two_hour_wav": lambda d, good: (
        [f"{write_long_wav_header(d / 'long.wav', LONG_SECONDS)}|A very long recording."],
        ["{fl}: no usable training items", "too_long=1"],
    ),
    # texts
    "text_only_emoji": lambda d, good: ([f"{good}|Fine.", f"{good}|😀 😀"], ["{fl}:2: empty text after cleaning"]),
    "text_only_punctuation_outside_table": lambda d, good: (
        [f"{good}|<>[]#*"],
        ["{fl}:1: empty text after cleaning", "characters not in the symbol table"],
    ),
    "text_chinese_basic_cleaners": lambda d, good: (
        [f"{good}|你好世界"],
        ["{fl}:1: empty text after cleaning", "characters not in the symbol table: '世你好界'"],
    ),
}
TRAIN_CASE_OVERRIDES = {"text_chinese_basic_cleaners": ["text.cleaners=[basic_cleaners]"]}


def _write_special_filelist(case: str, path: Path, good: str) -> None:
    if case == "latin1_filelist":
        write_lines(path, [f"{good}|Fine.", f"{good}|Café au lait."], encoding="latin-1")
    elif case == "utf16_filelist":  # what Windows editors call "Unicode": UTF-16 with its byte-order mark
        write_lines(path, [f"{good}|Fine."], encoding="utf-16")
    elif case != "filelist_missing":
        raise AssertionError(case)


@pytest.fixture(scope="module")
def base_config(tiny_corpus, tmp_path_factory) -> str:
    """The tiny training config as a file, written once: each case adds its paths with --set (as a user would),
    which is much cheaper than writing a config file per case."""
    return tiny_config_file(tiny_corpus, tmp_path_factory.mktemp("base_config"))


def placed(tmp_path: Path, train_list, val_list) -> list[str]:
    """--set arguments that put a run's directory under tmp_path and name its filelists."""
    sets = [f"run.out_dir={tmp_path / 'runs'}", f"data.train_filelist={train_list}", f"data.val_filelist={val_list}"]
    return [arg for item in sets for arg in ("--set", item)]


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_training_refuses_bad_data(case, base_config, good_wavs, tmp_path, capsys):
    """One `error:` line naming file:line (and the wav), status 2, no run directory and no partial file."""
    d = tmp_path / "data"
    d.mkdir()
    train_list = d / "train.txt"
    lines, needles = TRAIN_CASES[case](d, good_wavs[0])
    if lines is None:
        _write_special_filelist(case, train_list, good_wavs[0])
    else:
        write_lines(train_list, lines)
    val_list = write_lines(d / "val.txt", [f"{good_wavs[1]}|A good validation line."])
    sets = [arg for item in TRAIN_CASE_OVERRIDES.get(case, []) for arg in ("--set", item)]
    started = time.perf_counter()
    status = train_main(["--config", base_config, *placed(tmp_path, train_list, val_list), *sets, "--no-progress"])
    assert_refused(status, capsys.readouterr().err, *(n.format(fl=train_list) for n in needles))
    assert time.perf_counter() - started < 20, "a refused start must fail in data loading, before compiling"
    assert not (tmp_path / "runs" / "t").exists()
    assert (tmp_path / "runs" / "t.failed-start.log").is_file()
    assert leftovers(tmp_path, cache_dir(tmp_path)) == []


def test_skip_bad_items_drops_them_and_names_each_line(tiny_corpus, good_wavs, tmp_path, caplog):
    """With data.skip_bad_items the bad wavs above are dropped, counted and named by file:line; the rest is kept."""
    d = tmp_path / "data"
    d.mkdir()
    for case in ("wav_zero_bytes", "wav_garbage", "wav_nan", "wav_silent"):
        TRAIN_CASES[case](d, good_wavs[0])
    names = ["zero.wav", "garbage.wav", "nan.wav", "silent.wav"]
    lines = [f"{good_wavs[0]}|Fine."] + [f"{n}|Hello." for n in names] + [f"{good_wavs[1]}|Also fine."]
    cfg = tiny_train_config(
        tiny_corpus,
        tmp_path,
        f"data.train_filelist={write_lines(d / 'train.txt', lines)}",
        "data.skip_bad_items=true",
        "data.batch_size=2",
    )
    with caplog.at_level(logging.WARNING, logger="taco_jax.data"):
        data = build_data(cfg, progress=False)
    assert data.train_report.n_kept == 2 and dict(data.train_report.dropped) == {"unreadable_wav": 4}
    for line in range(2, 6):
        assert f"{d / 'train.txt'}:{line}: " in caplog.text
    assert leftovers(tmp_path, cache_dir(tmp_path)) == []


# ---------------------------------------------------------------------------------------- training: configs


def _config_case(case: str, d: Path, full: list[str]) -> tuple[list[str], list[str]]:
    """(command-line arguments, needles) of a refused config; `full` gives a complete tiny config."""
    if case == "missing_file":
        return ["--config", str(d / "nope.yaml")], [f"{d / 'nope.yaml'}: config file not found"]
    if case == "yaml_syntax_error":
        path = d / "broken.yaml"
        path.write_text("data:\n  batch_size: 4\n   corpus: [demo\n")
        return ["--config", str(path)], [f"{path}: cannot parse YAML", "line 3"]
    if case == "unknown_key_in_file":
        path = d / "typo.yaml"
        path.write_text("data:\n  bach_size: 4\n")
        return ["--config", str(path)], [f"{path}: ", "'data.bach_size'", "Did you mean", "'batch_size'"]
    if case == "wrong_type_in_file":
        path = d / "type.yaml"
        path.write_text("data:\n  batch_size: four\n")
        return ["--config", str(path)], [f"{path}: ", "'data.batch_size'", "'four'"]
    sets = {
        "unknown_key_set": (["data.bach_size=4"], ["--set data.bach_size=4", "Did you mean", "'batch_size'"]),
        "wrong_type_set": (["run.max_steps=many"], ["--set run.max_steps=many", "'run.max_steps'"]),
        "set_without_equals": (["data.batch_size"], ["--set 'data.batch_size': expected KEY=VALUE"]),
        "bad_choice": (["loss.mel_loss=l3"], ["'loss.mel_loss' = 'l3'", "'mse', 'l1'"]),
        "bucket_not_multiple_of_r": (["data.buckets=[[40,131]]"], ["'data.buckets[0]'", "n_frames_per_step=3"]),
        "no_train_filelist": (["data.train_filelist=''"], ["'data.train_filelist' is required"]),
        "negative_batch_size": (["data.batch_size=-4"], ["data.batch_size", "-4"]),
    }
    overrides, needles = sets[case]
    return full + [a for o in overrides for a in ("--set", o)], needles


CONFIG_CASES = [
    "missing_file", "yaml_syntax_error", "unknown_key_in_file", "wrong_type_in_file", "unknown_key_set",
    "wrong_type_set", "set_without_equals", "bad_choice", "bucket_not_multiple_of_r", "no_train_filelist",
    "negative_batch_size",
]  # fmt: skip


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_training_refuses_bad_config(case, base_config, good_wavs, tmp_path, capsys):
    d = tmp_path / "cfg"
    d.mkdir()
    fl = write_lines(d / "list.txt", [f"{good_wavs[0]}|Hello there.", f"{good_wavs[1]}|Fine."])
    full = ["--config", base_config, *placed(tmp_path, fl, fl)]
    argv, needles = _config_case(case, d, full)
    status = train_main([*argv, "--no-progress"])
    assert_refused(status, capsys.readouterr().err, *needles)
    assert not (tmp_path / "runs" / "t").exists()
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------- training: works


@pytest.fixture(scope="module")
def awkward_corpus(tiny_corpus, corpus_lines, tmp_path_factory) -> tuple[str, str, Path]:
    """The tiny corpus as filelists a user might hand in, all of which must work: the train list with a UTF-8
    byte-order mark and CRLF endings, holding one wav re-encoded as 8-bit unsigned PCM, one resampled to
    8 kHz, and a wav whose header declares two hours (dropped as too long, never decoded); a CRLF val list."""
    d = tmp_path_factory.mktemp("awkward")
    train, val = corpus_lines
    wav8, text8 = train[0].split("|")
    speech, rate = sf.read(wav8)
    sf.write(str(d / "u8.wav"), speech, rate, subtype="PCM_U8")
    wav2, text2 = train[1].split("|")
    speech2, _ = sf.read(wav2)
    sf.write(str(d / "8k.wav"), soxr.resample(speech2, SR, 8000), 8000, subtype="PCM_16")
    write_long_wav_header(d / "long.wav", LONG_SECONDS)
    lines = [f"u8.wav|{text8}", f"8k.wav|{text2}", *train[2:], "long.wav|Two hours of speech, they say."]
    train_list = write_lines(d / "train.txt", lines, newline="\r\n", bom=True)
    val_list = write_lines(d / "val.txt", val, newline="\r\n")
    return train_list, val_list, d


@pytest.fixture(scope="module")
def trained_run(tiny_corpus, awkward_corpus, tmp_path_factory) -> Path:
    """A two-step training run on the awkward corpus; its checkpoint serves the synthesis cases."""
    from taco_jax.train.loop import train

    train_list, val_list, _ = awkward_corpus
    tmp = tmp_path_factory.mktemp("trained")
    lists = [f"data.train_filelist={train_list}", f"data.val_filelist={val_list}"]
    result = train(tiny_train_config(tiny_corpus, tmp, *lists, "run.max_steps=2", "run.eval_every=2"))
    assert result.step == 2
    return Path(result.run_dir)


def test_awkward_corpus_loads_every_line_and_trains(tiny_corpus, corpus_lines, awkward_corpus, trained_run, caplog):
    """BOM + CRLF filelists parse cleanly (no BOM in the first path, no CR in texts), the 8-bit and 8 kHz wavs are
    kept, the 2-hour wav is dropped by its header without being decoded, and the 8 kHz one is warned about."""
    train_list, val_list, d = awkward_corpus
    utts = read_filelist(train_list)
    assert utts[0].wav_path == str(d / "u8.wav") and not any("\r" in u.text for u in utts)
    decoded = []

    def spy(path, rate):
        decoded.append(path)
        return load_wav(path, rate)

    cfg = tiny_train_config(tiny_corpus, d, f"data.train_filelist={train_list}", f"data.val_filelist={val_list}")
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING, logger="taco_jax.data"):
        mp.setattr(mel_cache_mod, "load_wav", spy)
        data = build_data(cfg, progress=False)
    report = data.train_report
    assert report.n_lines == len(corpus_lines[0]) + 1
    assert report.n_kept == len(corpus_lines[0]) and dict(report.dropped) == {"too_long": 1}
    assert str(d / "long.wav") not in decoded
    assert not Path(MelCache(cfg.data.cache_dir, cfg.audio).path_for(d / "long.wav")).exists()
    assert data.val_report.n_kept == len(corpus_lines[1])
    warnings = [r.getMessage() for r in caplog.records if "upsampled" in r.getMessage()]
    assert len(warnings) == 1 and "8000 Hz" in warnings[0] and f"{train_list}:2" in warnings[0], warnings
    assert (trained_run / "checkpoints").is_dir()


def test_8bit_pcm_decodes_to_the_speech_not_noise(awkward_corpus, corpus_lines):
    """Unsigned 8-bit PCM (silence = 128) comes back centred, within one 8-bit step of the 16-bit original."""
    _, _, d = awkward_corpus
    original = load_wav(corpus_lines[0][0].split("|")[0], SR)
    eight_bit = load_wav(str(d / "u8.wav"), SR)
    assert eight_bit.shape == original.shape
    assert abs(float(eight_bit.mean())) < 1e-2
    np.testing.assert_allclose(eight_bit, original, atol=1 / 128 + 1e-6)


@pytest.mark.parametrize("fmt", ["MP3", "OGG"])
def test_compressed_audio_named_wav_is_decoded(fmt, tiny_corpus, good_wavs, tmp_path):
    """libsndfile reads the content, not the extension: an mp3 or Ogg Vorbis file named .wav is an ordinary item."""
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    speech, rate = sf.read(good_wavs[0])
    sf.write(str(tmp_path / "renamed.wav"), speech, rate, format=fmt)
    fl = write_lines(tmp_path / "train.txt", ["renamed.wav|Hello there.", f"{good_wavs[1]}|Fine."])
    lists = [f"data.train_filelist={fl}", f"data.val_filelist={fl}"]
    data = build_data(tiny_train_config(tiny_corpus, tmp_path, *lists, "data.batch_size=2"), progress=False)
    assert data.train_report.n_kept == 2 and not data.train_report.dropped


def test_two_hour_header_is_read_not_decoded(tmp_path):
    """The test's 2-hour wav is what a header-only reader sees: 7200 s (300 MB of samples, a sparse file)."""
    path = write_long_wav_header(tmp_path / "long.wav", LONG_SECONDS)
    info = sf.info(path)
    assert info.frames == LONG_SECONDS * SR and info.duration == LONG_SECONDS


# ------------------------------------------------------------------------------------------------ synthesis


def _synthesize(capsys, checkpoint, out: Path, *args: str) -> tuple[int, str]:
    status = synthesize_main(["--checkpoint", str(checkpoint), *args, "--out-dir", str(out)])
    return status, capsys.readouterr().err


def _checkpoint_case(case: str, d: Path, run: Path) -> tuple[Path, str]:
    """(--checkpoint argument, needle) of a checkpoint that cannot be loaded."""
    if case == "nonexistent":
        return d / "no_such_run", f"{d / 'no_such_run'}: no such checkpoint or run directory"
    if case == "empty_directory":
        (d / "empty").mkdir()
        return d / "empty", f"{d / 'empty'}: contains no checkpoint"
    if case == "run_without_checkpoints":
        (d / "run").mkdir()
        shutil.copy(run / "config.yaml", d / "run" / "config.yaml")
        return d / "run", f"{d / 'run'}: contains no checkpoint"
    if case == "empty_checkpoints_directory":
        (d / "run" / "checkpoints").mkdir(parents=True)
        return d / "run", f"{d / 'run' / 'checkpoints'}: contains no checkpoint"
    if case == "random_bytes_file":
        (d / "model.ckpt").write_bytes(np.random.default_rng(1).bytes(4096))
        return d / "model.ckpt", str(d / "model.ckpt")
    if case == "step_directory_of_garbage":
        (d / "run" / "checkpoints" / "7" / "state").mkdir(parents=True)
        (d / "run" / "checkpoints" / "7" / "state" / "data").write_bytes(np.random.default_rng(2).bytes(4096))
        return d / "run", str(d / "run" / "checkpoints")
    if case == "corrupted_state":
        shutil.copytree(run, d / "run")
        (step,) = (d / "run" / "checkpoints").iterdir()
        for f in (step / "state").rglob("*"):
            if f.is_file():
                f.write_bytes(np.random.default_rng(3).bytes(max(f.stat().st_size, 16)))
        return d / "run", str(step.parent)
    raise AssertionError(case)


CHECKPOINT_CASES = [
    "nonexistent", "empty_directory", "run_without_checkpoints", "empty_checkpoints_directory",
    "random_bytes_file", "step_directory_of_garbage", "corrupted_state",
]  # fmt: skip


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_synthesis_refuses_bad_checkpoint(case, trained_run, tmp_path, capsys):
    d = tmp_path / "ckpt"
    d.mkdir()
    checkpoint, needle = _checkpoint_case(case, d, trained_run)
    out = tmp_path / "out"
    status, err = _synthesize(capsys, checkpoint, out, "--text", "Hello there.")
    assert_refused(status, err, needle)
    assert not out.exists() and leftovers(tmp_path) == []


def _text_case(case: str, d: Path) -> tuple[list[str], str]:
    """(text arguments, needle) of a text input with nothing to synthesize."""
    path = d / "in.txt"
    if case == "text_empty":
        return ["--text", ""], '--text 1: nothing to speak in "" (empty text)'
    if case == "text_only_emoji":
        return ["--text", "Fine.", "--text", "😀😀"], "--text 2: nothing to speak in"
    if case == "text_file_empty":
        path.write_bytes(b"")
        return ["--text-file", str(path)], f"{path}: no non-empty lines"
    if case == "text_file_blank_lines":
        path.write_bytes(b"\r\n   \r\n\t\n")
        return ["--text-file", str(path)], f"{path}: no non-empty lines"
    if case == "text_file_latin1":
        path.write_bytes("Fine.\nCafé au lait.\n".encode("latin-1"))
        return ["--text-file", str(path)], f"{path}: not UTF-8 text"
    if case == "text_file_missing":
        return ["--text-file", str(d / "nope.txt")], str(d / "nope.txt")
    if case == "text_file_line_of_emoji":
        write_lines(path, ["Fine.", "", "😀😀"], newline="\r\n", bom=True)
        return ["--text-file", str(path)], "line 3: nothing to speak in"
    raise AssertionError(case)


TEXT_CASES = [
    "text_empty", "text_only_emoji", "text_file_empty", "text_file_blank_lines", "text_file_latin1",
    "text_file_missing", "text_file_line_of_emoji",
]  # fmt: skip


@pytest.mark.parametrize("case", TEXT_CASES)
def test_synthesis_refuses_text_with_nothing_to_speak(case, trained_run, tmp_path, capsys):
    """Refused before anything is synthesized: no output directory content, no temporary file."""
    d = tmp_path / "texts"
    d.mkdir()
    args, needle = _text_case(case, d)
    out = tmp_path / "out"
    status, err = _synthesize(capsys, trained_run, out, *args)
    assert_refused(status, err, needle)
    assert not out.exists() or not any(out.iterdir())
    assert leftovers(tmp_path) == []


def test_synthesis_reads_bom_and_crlf_text_files(trained_run, tmp_path, capsys):
    """A text file from a Windows editor (BOM, CRLF) is read as its plain lines."""
    path = write_lines(tmp_path / "in.txt", ["Hello there.", "", "Second line."], newline="\r\n", bom=True)
    out = tmp_path / "out"
    status, err = _synthesize(capsys, trained_run, out, "--text-file", path, "--set", "run.griffin_lim_iters=2")
    assert status == 0, err
    report = json.loads((out / "report.json").read_text())
    assert [item["text"] for item in report] == ["Hello there.", "Second line."]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.json"] + [f"00{i}.{ext}" for i in range(2) for ext in ("wav", "png", "npy")]
    )
    assert leftovers(tmp_path) == []
