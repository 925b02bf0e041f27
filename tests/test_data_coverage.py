"""Symbol coverage at training start: a few train texts are logged raw -> cleaned -> symbols, with the share of
characters the text front end keeps; training stops (DataError, before any audio is read) when the train texts
lose more than `text.max_dropped_share` of their characters, naming the share, the characters, the config keys
and the first filelist lines that lose some."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from conftest import tiny_config_file, tiny_train_config

from taco_jax.config import ConfigError, load_config
from taco_jax.data import DataError, build_data, read_filelist
from taco_jax.data.pipeline import text_coverage
from taco_jax.text import get_symbol_table
from taco_jax.train.__main__ import main as train_main

# Under english_cleaners Cyrillic is transliterated (kept, as Latin letters); basic_cleaners keeps it as it is,
# and the English table then drops every letter: only the punctuation is left.
RUSSIAN = ["Привет, мир.", "Съешь же ещё этих мягких французских булок.", "Да, т.е. нет!"]
BASIC = "text.cleaners=[basic_cleaners]"


def write_filelist(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def corpus_lines(filelist: str) -> list[tuple[str, str]]:
    return [(u.wav_path, u.text) for u in read_filelist(filelist)]


@pytest.fixture
def russian_config(tiny_corpus, tmp_path):
    """The tiny config with a train filelist of the tiny corpus's wavs whose lines 2-4 are Russian."""
    lines = [f"{wav}|{text}" for wav, text in corpus_lines(tiny_corpus[0])]
    lines[1:4] = [f"{wav}|{text}" for (wav, _), text in zip(corpus_lines(tiny_corpus[0])[1:4], RUSSIAN, strict=True)]
    train = write_filelist(tmp_path / "train.txt", lines[:8])
    return tiny_train_config(tiny_corpus, tmp_path, BASIC, f"data.train_filelist={train}"), train


def test_russian_under_the_english_table_is_refused(russian_config, caplog):
    cfg, train = russian_config
    with caplog.at_level(logging.INFO, logger="taco_jax.data"), pytest.raises(DataError) as err:
        build_data(cfg, progress=False)
    msg = str(err.value)
    # Every letter (lowercased by the cleaner) is lost; ',', '.', '!' stay.
    lost = Counter(ch for text in RUSSIAN for ch in text.lower() if ch.isalpha())
    kept = sum(len(u.text.replace(" ", "")) for u in read_filelist(train)) - sum(lost.values())
    share = sum(lost.values()) / (kept + sum(lost.values()))
    assert msg.startswith(f"{train}: the training texts lose {share:.2%} of their characters")
    assert "config key 'text.max_dropped_share' = 0.01" in msg
    top = ", ".join(f"{ch!r} x{n}" for ch, n in lost.most_common(3))
    assert top in msg and "(+" in msg  # the 10 most frequent, then how many more
    assert f"first: {train}:2, {train}:3, {train}:4)" in msg and "lost in 3 line(s)" in msg
    assert "'text.symbols' = 'english_eos_v1'" in msg and "'text.cleaners' = ['basic_cleaners']" in msg
    assert "train text samples" in caplog.text
    assert "items per bucket" not in caplog.text  # refused before prepare_split read any audio


def test_the_cli_refuses_in_one_line_before_compiling(russian_config, tiny_corpus, tmp_path, capsys):
    """Through `python -m taco_jax.train`: status 2, one `error:` line, no run directory."""
    _, train = russian_config
    config = tiny_config_file(tiny_corpus, tmp_path, BASIC, f"data.train_filelist={train}")
    status = train_main(["--config", config, "--no-progress"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert status == 2 and len(errors) == 1, errors
    assert errors[0].startswith(f"error: {train}: the training texts lose ") and f"{train}:2" in errors[0]
    assert not (tmp_path / "runs" / "t").exists()


def test_russian_letters_are_counted_and_transliteration_keeps_them(russian_config):
    """Each lost letter is counted in the lines that lose it; english_cleaners transliterates Cyrillic to Latin
    letters the English table has, so nothing is lost there."""
    cfg, train = russian_config
    table = get_symbol_table(cfg.text.symbols)
    coverage = text_coverage(read_filelist(train), cfg, table)
    assert coverage.n_lossy == 3 and coverage.lost["и"] == sum(text.count("и") for text in RUSSIAN) == 5
    cfg.text.cleaners = ["english_cleaners"]
    assert not text_coverage(read_filelist(train), cfg, table).lost


def test_one_unknown_character_in_a_thousand_passes_and_is_logged(tiny_corpus, tmp_path, caplog):
    """One '#' (not in the English table) in about 1000 characters: training data builds; the three samples
    and the coverage line are logged, naming the character and its line."""
    lines = [f"{wav}|{text}" for wav, text in corpus_lines(tiny_corpus[0])]
    lines += lines[:3]  # 30 + 3 lines: just over 1000 characters
    wav, text = lines[4].split("|")
    lines[4] = f"{wav}|{text[:-1]} #{text[-1]}"
    train = write_filelist(tmp_path / "train.txt", lines)
    cfg = tiny_train_config(tiny_corpus, tmp_path, f"data.train_filelist={train}")
    coverage = text_coverage(read_filelist(train), cfg, get_symbol_table(cfg.text.symbols))
    assert coverage.lost == {"#": 1} and 1000 <= coverage.n_kept + 1 < 1100
    with caplog.at_level(logging.INFO, logger="taco_jax.data"):
        data = build_data(cfg, progress=False)
    assert data.train_report.coverage.lost == {"#": 1} and data.train_report.to_dict()["coverage"]["n_lossy"] == 1
    records = [r.getMessage() for r in caplog.records]
    (samples,) = [m for m in records if m.startswith("train text samples")]
    first_wav, first_text = corpus_lines(tiny_corpus[0])[0]
    cleaned = first_text.lower()  # the tiny corpus's texts hold no numbers or abbreviations
    assert f"{train}:1: {first_text!r} -> {cleaned!r} -> {cleaned + '~'!r}" in samples  # '~': the EOS symbol
    assert samples.count(f"{train}:") == 3
    n = coverage.n_kept + 1
    expected = f"train symbol coverage: {1 - 1 / n:.2%} of {n} characters kept; lost: '#' x1, in 1 text(s) (first: "
    assert any(m.startswith(expected + f"{train}:5)") for m in records), records


@pytest.mark.parametrize("value", ["-0.1", "1.5"])
def test_max_dropped_share_outside_0_1_is_refused(value):
    with pytest.raises(ConfigError, match=rf"config key 'text.max_dropped_share' = {value}; expected 0 <= x <= 1"):
        load_config(None, [f"text.max_dropped_share={value}"])
