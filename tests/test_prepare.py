"""python -m taco_jax.prepare on small eSpeak-built corpora of every supported layout.

Each corpus is a few utterances in tmp_path; the command runs in-process (`main([...])`), on one process
except where the pool itself is tested.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from taco_jax.audio import load_wav, mel_spectrogram
from taco_jax.config import load_config
from taco_jax.data import mel_cache as mel_cache_module
from taco_jax.data.filelist import read_filelist
from taco_jax.data.mel_cache import MelCache
from taco_jax.demo.espeak import synthesize_espeak
from taco_jax.prepare import decode
from taco_jax.prepare.__main__ import DEFAULT_CONFIG, main
from taco_jax.prepare.segment import plan_segments, split_sentences
from taco_jax.prepare.split import stratified_split, val_counts

EN = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back after seven o'clock tonight.",
    "A rainbow is an optical phenomenon.",
    "She sells sea shells by the sea shore.",
    "We walked home slowly along the river.",
]
RU = [
    "Привет — как у тебя дела сегодня?",
    "Мама мыла раму очень долго.",
    "Завтра будет «тёплый» и солнечный день.",
    "Мы пошли гулять в большой парк.",
]
RUSSIAN_FRONT_END = ["--set", "text.symbols=russian_v1", "--set", "text.cleaners=[basic_cleaners]"]
SR = 22050


@functools.cache
def say(text: str, voice: str = "en-us") -> np.ndarray:
    """eSpeak speech of `text`, float32 [samples] at 22050 Hz (cached: several corpora reuse a sentence)."""
    audio, sr = synthesize_espeak(text, voice)
    assert sr == SR
    return audio


def write_wav(path: Path, audio: np.ndarray, rate: int = SR, fmt: str = "WAV") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rate != SR:
        audio = soxr.resample(audio, SR, rate, quality="HQ")
    subtype = "PCM_16" if fmt == "WAV" else None
    sf.write(str(path), np.clip(audio, -1, 1), rate, format=fmt, subtype=subtype)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mel_cache")


def run(fmt: str, inp: Path, out: Path, cache: Path, *extra: str) -> int:
    args = ["--format", fmt, "--input", str(inp), "--out", str(out), "--set", f"data.cache_dir={cache}"]
    return main([*args, "--no-progress", "--workers", "1", *extra])


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def counting_decodes(mp: pytest.MonkeyPatch) -> list[str]:
    """Make every source decode append its path to the returned list."""
    calls: list[str] = []
    real = decode.decode_audio

    def counted(path: str):
        calls.append(path)
        return real(path)

    mp.setattr(decode, "decode_audio", counted)
    return calls


def cfg_for(cache: Path, *extra: str):
    overrides = [f"data.cache_dir={cache}", *(extra[i + 1] for i in range(0, len(extra), 2) if extra[i] == "--set")]
    return load_config(str(DEFAULT_CONFIG), overrides)


# --- LJSpeech, with one item of every kind of problem ------------------------------------------------------------


@pytest.fixture(scope="module")
def ljspeech(tmp_path_factory, cache_dir):
    """An LJSpeech corpus of 5 good items (one clipped) and one of each bad kind, prepared twice."""
    root = tmp_path_factory.mktemp("ljspeech")
    meta = []
    for i, text in enumerate(EN):
        audio = np.clip(say(text) * 4, -1, 1) if i == 4 else say(text)  # LJ004: clipped, but kept
        write_wav(root / "wavs" / f"LJ{i:03d}.wav", audio)
        meta.append(f"LJ{i:03d}|{text.upper()}|{text}")  # the normalized (third) column is the one used
    (root / "wavs" / "CORRUPT.wav").write_bytes(b"RIFF\x00\x10\x00\x00WAVEfmt garbage")
    write_wav(root / "wavs" / "SILENT.wav", np.random.default_rng(0).normal(0, 3e-4, 2 * SR).astype(np.float32))
    write_wav(root / "wavs" / "LONG.wav", np.concatenate([say(t) for t in EN[:3]]))  # ~7.5 s > --max-seconds 6
    write_wav(root / "wavs" / "FAST.wav", say(EN[2]))
    write_wav(root / "wavs" / "EMPTY.wav", say(EN[3]))
    meta += [
        "CORRUPT|This one is corrupt.|This one is corrupt.",
        "SILENT|This one is silent.|This one is silent.",
        f"LONG|{' '.join(EN[:3])}|",
        f"FAST|{' '.join(EN * 2)}|",
        "EMPTY| | ",
        "a line without any separator",
        "MISSING|There is no audio for this line.|",
    ]
    (root / "metadata.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("ljspeech_out")
    with pytest.MonkeyPatch.context() as mp:
        first_decodes = counting_decodes(mp)
        assert run("ljspeech", root, out, cache_dir, "--max-seconds", "6") == 0
    report1 = json.loads((out / "report.json").read_text())
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    filelists = (lines(out / "train.txt"), lines(out / "val.txt"))
    with pytest.MonkeyPatch.context() as mp:
        second_decodes = counting_decodes(mp)
        assert run("ljspeech", root, out, cache_dir, "--max-seconds", "6") == 0
    return dict(root=root, out=out, meta=root / "metadata.csv", report1=report1, mtimes=mtimes, filelists=filelists,
                decodes=(first_decodes, second_decodes))  # fmt: skip


def test_ljspeech_filelists(ljspeech):
    out = ljspeech["out"]
    train, val = lines(out / "train.txt"), lines(out / "val.txt")
    expected = {f"wavs/ljspeech/LJ{i:03d}.wav|{text}" for i, text in enumerate(EN)}
    assert set(train) | set(val) == expected and not set(train) & set(val)
    assert len(val) == 1  # 5% of 5, at least one
    assert not (out / "speakers.json").exists()  # one speaker: no speaker column either
    utts = read_filelist(out / "train.txt")  # the trainer's own reader accepts the list
    assert all(u.speaker == 0 and os.path.isfile(u.wav_path) for u in utts)
    info = sf.info(str(out / "wavs" / "ljspeech" / "LJ000.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    # Trimmed to about 50 ms of silence at each end (eSpeak leaves 50 ms), never cut into speech.
    assert abs(info.frames - len(say(EN[0]))) < 0.03 * SR


def test_ljspeech_mels_cached_and_mel_mean(ljspeech, cache_dir, monkeypatch):
    out = ljspeech["out"]
    cache = MelCache(str(cache_dir), cfg_for(cache_dir).audio)
    reference = mel_spectrogram(load_wav(str(out / "wavs/ljspeech/LJ001.wav"), SR), cache.audio_cfg)

    def no_decoding(*args, **kwargs):
        raise AssertionError("MelCache decoded a wav: its mel was not cached")

    monkeypatch.setattr(mel_cache_module, "load_wav", no_decoding)
    train = [cache.get(u.wav_path) for u in read_filelist(out / "train.txt")]
    val = [cache.get(u.wav_path) for u in read_filelist(out / "val.txt")]
    assert len(train) == 4 and len(val) == 1
    np.testing.assert_array_equal(cache.get(out / "wavs/ljspeech/LJ001.wav"), reference)  # the trainer's mel
    mel_mean = np.load(out / "mel_mean.npy")
    assert mel_mean.shape == (80,) and mel_mean.dtype == np.float32 and np.isfinite(mel_mean).all()
    np.testing.assert_allclose(mel_mean, np.concatenate(train).mean(axis=0), rtol=1e-5, atol=1e-5)


def test_ljspeech_drops_are_listed_with_file_line_and_reason(ljspeech):
    out, meta = ljspeech["out"], ljspeech["meta"]
    report = json.loads((out / "report.json").read_text())
    expected = {
        f"{meta}:6": "undecodable",
        f"{meta}:7": "silent",
        f"{meta}:8": "too_long",
        f"{meta}:9": "too_fast",
        f"{meta}:10": "empty_text",
        f"{meta}:11": "malformed_line",
        f"{meta}:12": "missing_audio",
    }
    assert {d["source"]: d["reason"] for d in report["dropped"]} == expected
    assert [d["source"] for d in report["dropped"]] == list(expected)  # corpus order
    details = {d["reason"]: d["detail"] for d in report["dropped"]}
    assert "-60 dBFS" in details["silent"] and "--max-seconds 6" in details["too_long"]
    assert "--max-cps 30" in details["too_fast"] and "CORRUPT.wav" in details["undecodable"]
    md = (out / "report.md").read_text()
    for source, reason in expected.items():
        assert f"`{source}`: **{reason}**" in md
    c = report["counts"]
    assert (c["lines"], c["items"], c["kept_items"], c["train"], c["val"]) == (12, 11, 5, 4, 1)
    assert c["dropped"] == {reason: 1 for reason in expected.values()}
    assert len(report["warnings"]) == 1 and "LJ004.wav: clipped" in report["warnings"][0]
    assert report["hours"]["kept"] * 3600 == pytest.approx(sum(len(say(t)) for t in EN) / SR, abs=0.2)
    assert report["symbol_coverage"]["dropped"] == {} and report["symbol_coverage"]["texts"] == 5
    assert report["buckets"]["fit_none"] == 0  # the demo config's buckets hold every kept item
    assert "data.train_filelist=" in report["train_command"]
    assert (out / "durations.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ljspeech_second_run_reuses_everything(ljspeech):
    first, second = ljspeech["decodes"]
    assert len(first) == 9  # every item with text and an existing file, the bad ones included
    assert second == []  # nothing decoded again: kept and dropped results both come from the manifest
    out = ljspeech["out"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == ljspeech["mtimes"]
    assert (lines(out / "train.txt"), lines(out / "val.txt")) == ljspeech["filelists"]
    report = json.loads((out / "report.json").read_text())
    assert (report["counts"]["reused"], report["counts"]["processed"]) == (9, 0)
    assert report["dropped"] == ljspeech["report1"]["dropped"]
    assert not list(out.rglob(".tmp-*"))


# --- the other formats ---------------------------------------------------------------------------------------------


def test_ruslan_reads_both_wav_folders_and_reports_symbol_coverage(tmp_path, cache_dir):
    root = tmp_path / "ruslan"
    meta = []
    for i, text in enumerate(RU):
        write_wav(root / ("RUSLAN" if i % 2 else "wavs") / f"{i:06d}_RUSLAN.wav", say(text, "ru"))
        meta.append(f"{i:06d}_RUSLAN|{text}")
    (root / "metadata_RUSLAN_22200.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    assert run("ruslan", root, tmp_path / "out", cache_dir, *RUSSIAN_FRONT_END, "--val-fraction", "0.25") == 0
    got = lines(tmp_path / "out/train.txt") + lines(tmp_path / "out/val.txt")
    assert sorted(got) == sorted(f"wavs/ruslan/{i:06d}_RUSLAN.wav|{t}" for i, t in enumerate(RU))
    coverage = json.loads((tmp_path / "out/report.json").read_text())["symbol_coverage"]
    assert coverage["dropped"] == {"—": 1, "«": 1, "»": 1}  # not in russian_v1; ё is
    assert coverage["texts_with_dropped_characters"] == 2
    assert "'—'" in (tmp_path / "out/report.md").read_text()


def test_css10_uses_relative_paths_and_the_normalized_column(tmp_path, cache_dir):
    root = tmp_path / "css10"
    meta = []
    for i, text in enumerate(EN[:4]):
        rel = f"book/book_{i:04d}.wav"
        write_wav(root / rel, say(text))
        normalized = "" if i == 3 else text  # an empty normalized column falls back to the original text
        meta.append(f"{rel}|{text.replace('seven', '7') if i == 1 else text}|{normalized}|{len(say(text)) / SR:.2f}")
    (root / "transcript.txt").write_text("\n".join(meta) + "\n", encoding="utf-8")
    assert run("css10", root, tmp_path / "out", cache_dir) == 0
    got = lines(tmp_path / "out/train.txt") + lines(tmp_path / "out/val.txt")
    assert sorted(got) == sorted(f"wavs/css10/book_{i:04d}.wav|{t}" for i, t in enumerate(EN[:4]))


def test_mailabs_speakers_mix_and_stratified_val(tmp_path, cache_dir):
    root = tmp_path / "de_DE"
    books = {"by_book/female/anna/book_a": EN[:3], "by_book/male/boris/book_b": EN[2:5], "by_book/mix/book_c": EN[1:4]}
    expected = []
    for book, texts in books.items():
        meta = []
        for i, text in enumerate(texts):
            item_id = f"{Path(book).name}_{i:02d}"
            write_wav(root / book / "wavs" / f"{item_id}.wav", say(text), rate=16000)  # resampled to 22050
            meta.append(f"{item_id}|{text}|{text}")
            expected.append((item_id, text, book.split("/")[2] if "mix" not in book else "mix"))
        (root / book / "metadata.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run("mailabs", root, out, cache_dir, "--val-fraction", "0.34") == 0
    speakers = json.loads((out / "speakers.json").read_text())
    assert speakers == {"anna": 0, "boris": 1, "mix": 2}
    train, val = lines(out / "train.txt"), lines(out / "val.txt")
    assert sorted(train + val) == sorted(f"wavs/{s}/{i}.wav|{t}|{speakers[s]}" for i, t, s in expected)
    assert sorted(line.rsplit("|", 1)[1] for line in val) == ["0", "1", "2"]  # one per speaker
    assert sf.info(str(out / "wavs/anna/book_a_00.wav")).samplerate == SR
    report = json.loads((out / "report.json").read_text())
    assert {name: s["utterances"] for name, s in report["speakers"].items()} == {"anna": 3, "boris": 3, "mix": 3}
    assert "model.n_speakers=3" in report["train_command"]


def test_commonvoice_mp3(tmp_path, cache_dir):
    if "MP3" not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write MP3 (needs libsndfile >= 1.1)")
    root = tmp_path / "cv"
    rows = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents"]
    clients = ["a" * 64, "b" * 64]
    for i, text in enumerate(EN[:4]):
        write_wav(root / "clips" / f"common_voice_en_{i}.mp3", say(text), rate=48000, fmt="MP3")
        rows.append(f"{clients[i % 2]}\tcommon_voice_en_{i}.mp3\t{text}\t2\t0\t\t\t")
    (root / "validated.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run("commonvoice", root, out, cache_dir, "--val-fraction", "0.5") == 0
    speakers = json.loads((out / "speakers.json").read_text())
    assert speakers == {clients[0]: 0, clients[1]: 1}
    got = lines(out / "train.txt") + lines(out / "val.txt")
    assert sorted(got) == sorted(
        f"wavs/{clients[i % 2]}/common_voice_en_{i}.wav|{t}|{i % 2}" for i, t in enumerate(EN[:4])
    )
    for line in got:  # decoded from mp3 (encoder padding trimmed again): close to the speech's own length
        i = int(line.split("|")[0][-5])
        assert abs(sf.info(str(out / line.split("|")[0])).frames - len(say(EN[i]))) < 0.1 * SR


def test_generic_filelist_in_a_process_pool(tmp_path, cache_dir):
    root = tmp_path / "generic"
    rows = ["# a comment line"]
    for i, text in enumerate(EN[:4]):
        write_wav(root / "audio" / f"u{i}.flac", say(text), fmt="FLAC")
        rows.append(f"audio/u{i}.flac|{text}|{'alice' if i < 2 else 'bob'}")
    write_wav(root / "audio" / "x.wav", say(RU[1], "ru"))
    rows.append(f"audio/x.wav|{RU[1]}")  # no speaker column: the format's default speaker name
    (root / "list.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["--format", "generic", "--input", str(root / "list.txt"), "--out", str(out), "--no-progress"]
    assert main([*args, "--set", f"data.cache_dir={cache_dir}", "--workers", "2"]) == 0
    speakers = json.loads((out / "speakers.json").read_text())
    assert speakers == {"alice": 0, "bob": 1, "generic": 2}
    got = sorted(lines(out / "train.txt") + lines(out / "val.txt"))
    expected = [f"wavs/{'alice' if i < 2 else 'bob'}/u{i}.wav|{t}|{int(i >= 2)}" for i, t in enumerate(EN[:4])]
    assert got == sorted([*expected, f"wavs/generic/x.wav|{RU[1]}|2"])
    cache = MelCache(str(cache_dir), cfg_for(cache_dir).audio)
    assert all(os.path.isfile(cache.path_for(out / line.split("|")[0])) for line in got)  # mels from the workers


# --- segmentation --------------------------------------------------------------------------------------------------


def test_segment_cuts_long_recordings_at_sentence_pauses(tmp_path, cache_dir):
    pause = np.zeros(int(0.5 * SR), np.float32)
    parts = [say(t) for t in EN[:4]]
    audio = np.concatenate([x for p in parts for x in (p, pause)][:-1])  # ~10 s, 4 sentences
    root = tmp_path / "lj"
    write_wav(root / "wavs" / "BOOK.wav", audio)
    write_wav(root / "wavs" / "ONE.wav", np.concatenate(parts[:3]))  # one "sentence" of ~7 s
    text_one = ", and ".join(t.rstrip(".") for t in EN[:3]) + "."
    (root / "metadata.csv").write_text(f"BOOK|{' '.join(EN[:4])}|\nONE|{text_one}|\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run("ljspeech", root, out, cache_dir, "--segment", "--max-seconds", "5.5", "--val-fraction", "0.3") == 0
    pieces = sorted(lines(out / "train.txt") + lines(out / "val.txt"))
    assert [p.split("|")[0] for p in pieces] == [f"wavs/ljspeech/BOOK-{k:02d}.wav" for k in range(1, len(pieces) + 1)]
    # The pieces' texts partition the sentences in order, and each piece is as long as its sentences' speech:
    # every cut is in the pause after the right sentence.
    texts = [p.split("|")[1] for p in pieces]
    assert " ".join(texts) == " ".join(EN[:4]) and len(pieces) >= 2
    first = 0
    for line, text in zip(pieces, texts, strict=True):
        n = len(split_sentences(text))
        expected = sum(len(p) for p in parts[first : first + n]) + (n - 1) * len(pause)  # with eSpeak's 50 ms edges
        assert abs(sf.info(str(out / line.split("|")[0])).frames - expected) < 0.15 * SR, line
        first += n
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["segmented_items"] == 1
    (drop,) = report["dropped"]
    assert drop["reason"] == "too_long" and "single sentence" in drop["detail"] and drop["source"].endswith(":2")


def test_plan_segments_rules():
    sentences = ["One two three.", "Four five six.", "Seven eight nine."]  # 14, 14, 17 characters
    plan = plan_segments(9.0, [(2.7, 3.1), (5.7, 6.1)], sentences, min_seconds=2.0, max_seconds=6.5)
    assert [(round(p.start, 1), round(p.end, 1), p.text) for p in plan] == [
        (0.0, 5.9, "One two three. Four five six."),  # the latest sentence end that keeps the piece <= 6.5 s
        (5.9, 9.0, "Seven eight nine."),
    ]
    assert "single sentence" in plan_segments(20.0, [(5, 6)], ["No end in sight"], 2.0, 10.0)
    assert "no pause" in plan_segments(20.0, [], sentences, 2.0, 10.0)
    assert split_sentences("Hi! Who? Me... «Yes.» Done") == ["Hi!", "Who?", "Me...", "«Yes.»", "Done"]


# --- the validation split ------------------------------------------------------------------------------------------


def test_val_split_is_stratified_and_deterministic():
    assert val_counts({"a": 100, "b": 50, "c": 10}, 0.1) == {"a": 10, "b": 5, "c": 1}
    assert val_counts({"a": 1, "b": 1}, 0.05) == {"a": 0, "b": 0}  # a speaker's only utterance stays in training
    assert sum(val_counts({f"s{i}": 2 for i in range(40)}, 0.05).values()) == 4  # largest remainder: 5% of 80
    keys = [f"wavs/{i % 3}/{i}.wav" for i in range(60)]
    speakers = [str(i % 3) for i in range(60)]
    split = stratified_split(keys, speakers, 0.2)
    assert sum(split) == 12 and all(sum(v for v, s in zip(split, speakers, strict=True) if s == k) == 4 for k in "012")
    # The choice depends on the keys, not on their order.
    order = list(reversed(range(60)))
    again = stratified_split([keys[i] for i in order], [speakers[i] for i in order], 0.2)
    assert {keys[i] for i, v in zip(order, again, strict=True) if v} == {
        k for k, v in zip(keys, split, strict=True) if v
    }


# --- interruption and errors ---------------------------------------------------------------------------------------


def test_interrupted_run_leaves_complete_files_and_resumes(tmp_path, cache_dir, monkeypatch, capsys):
    root = tmp_path / "lj"
    for i, text in enumerate(EN[:4]):
        write_wav(root / "wavs" / f"LJ{i}.wav", say(text))
    (root / "metadata.csv").write_text("".join(f"LJ{i}|{t}|\n" for i, t in enumerate(EN[:4])), encoding="utf-8")
    from taco_jax.prepare import parallel

    real, done = parallel.process_item, []

    def interrupted_after_two(task, settings):
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(task)
        return real(task, settings)

    monkeypatch.setattr(parallel, "process_item", interrupted_after_two)
    out = tmp_path / "out"
    assert run("ljspeech", root, out, cache_dir) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["LJ0.wav", "LJ1.wav", "manifest.json"]
    assert len(json.loads((out / "manifest.json").read_text())["items"]) == 2
    monkeypatch.setattr(parallel, "process_item", real)
    decodes = counting_decodes(monkeypatch)
    assert run("ljspeech", root, out, cache_dir) == 0
    assert sorted(Path(p).name for p in decodes) == ["LJ2.wav", "LJ3.wav"]  # the finished two are reused


@pytest.mark.parametrize(
    "case",
    ["missing_input", "missing_metadata", "all_lines_malformed", "generic_directory", "bad_option", "bad_config"],
)
def test_errors_are_one_line_with_exit_status_2(case, tmp_path, cache_dir, capsys):
    root = tmp_path / "corpus"
    root.mkdir()
    fmt, inp, extra, expected = "ljspeech", root, [], ""
    if case == "missing_input":
        inp, expected = tmp_path / "nowhere", f"{tmp_path / 'nowhere'}: input directory not found"
    elif case == "missing_metadata":
        expected = f"{root / 'metadata.csv'}: ljspeech metadata file not found"
    elif case == "all_lines_malformed":
        (root / "metadata.csv").write_text("just text\nmore text\n")
        expected = f"{root / 'metadata.csv'}:1: expected id|text|normalized text"
    elif case == "generic_directory":
        fmt, expected = "generic", f"{root}: is a directory, not a filelist"
    elif case == "bad_option":
        extra, expected = ["--max-seconds", "0.5"], "--max-seconds must be > --min-seconds"
    else:
        extra, expected = ["--set", "text.symbols=klingon_v1"], "unknown symbol table 'klingon_v1'"
    assert run(fmt, inp, tmp_path / "out", cache_dir, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (tmp_path / "out" / "train.txt").exists()


def test_rerun_after_a_corpus_change_removes_stale_wavs(tmp_path, cache_dir):
    root = tmp_path / "lj"
    for i, text in enumerate(EN[:3]):
        write_wav(root / "wavs" / f"LJ{i}.wav", say(text))
    meta = root / "metadata.csv"
    meta.write_text("".join(f"LJ{i}|{t}|\n" for i, t in enumerate(EN[:3])), encoding="utf-8")
    out = tmp_path / "out"
    assert run("ljspeech", root, out, cache_dir) == 0
    meta.write_text("".join(f"LJ{i}|{t}|\n" for i, t in enumerate(EN[:2])), encoding="utf-8")  # LJ2 removed
    shutil.copy(root / "wavs" / "LJ0.wav", root / "wavs" / "LJ1.wav")  # LJ1 edited: processed again
    assert run("ljspeech", root, out, cache_dir, "--max-cps", "60") == 0  # new settings: everything again
    assert sorted(p.name for p in (out / "wavs" / "ljspeech").iterdir()) == ["LJ0.wav", "LJ1.wav"]
    assert len(lines(out / "train.txt")) + len(lines(out / "val.txt")) == 2
    # Another mel cache (a cleared one, or other mel settings): the items are processed again to fill it.
    assert run("ljspeech", root, out, tmp_path / "other_cache", "--max-cps", "60") == 0
    assert json.loads((out / "report.json").read_text())["counts"]["processed"] == 2
    cache = MelCache(str(tmp_path / "other_cache"), cfg_for(cache_dir).audio)
    assert all(os.path.isfile(cache.path_for(out / "wavs/ljspeech" / n)) for n in ("LJ0.wav", "LJ1.wav"))
