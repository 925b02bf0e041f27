"""Synthesis refuses input it cannot speak and says what it dropped or cut (API and command line), on an
untrained tiny model: nothing here needs a trained run."""

import logging

import jax
import pytest
from conftest import tiny_model_config

import taco_jax.synthesize.__main__ as cli
from taco_jax.config import Config
from taco_jax.model import build_model
from taco_jax.synthesize import Synthesizer
from taco_jax.text import get_symbol_table
from taco_jax.train.state import init_variables

MAX_FRAMES = 6  # max_decoder_steps (frames): two decoder steps at r=3


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    """An untrained tiny English model with EOS whose gate can never fire (threshold above any sigmoid)."""
    cfg = Config()
    cfg.text.symbols, cfg.text.add_eos = "english_eos_v1", True
    cfg.model = tiny_model_config(max_decoder_steps=MAX_FRAMES, gate_threshold=2.0)
    table = get_symbol_table(cfg.text.symbols)
    model = build_model(cfg.model, len(table), cfg.audio.n_mels)
    variables = init_variables(model, jax.random.PRNGKey(0), cfg.audio.n_mels, cfg.model.n_frames_per_step)
    return Synthesizer(cfg, model, variables, table)


@pytest.mark.parametrize(
    "text, why",
    [("", "empty text"), ("   ", "empty text"), ("😀😀", "every character was dropped: '😀' x2")],
)
def test_text_with_nothing_to_speak_is_refused(synth, text, why):
    """Only the appended EOS would be left: a ValueError naming the input, not a 0.03 s "stopped" wav."""
    with pytest.raises(ValueError, match="nothing to speak") as err:
        synth.encode(text, "line 2")
    assert str(err.value) == f'line 2: nothing to speak in "{text}" ({why})'
    with pytest.raises(ValueError, match="^text 2: nothing to speak"):  # __call__ labels inputs by position
        synth(["Hello.", text])


def test_dropped_characters_are_warned_once_per_input(synth, caplog):
    """Emoji that the cleaners delete (not only symbols missing from the table) are named in one warning."""
    with caplog.at_level(logging.WARNING, logger="taco_jax.synthesize"):
        ids = synth.encode("Hello 😀 there 😀.", "line 4")
    assert len(ids) > 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("line 4: dropped characters")
    assert "'😀' x2" in warnings[0]


def test_hitting_max_decoder_steps_is_warned(synth, caplog):
    """An item the gate never stopped may be cut short: the warning names it and the knob to turn."""
    with caplog.at_level(logging.WARNING, logger="taco_jax.synthesize"):
        (result,) = synth(["A long paragraph."], labels=["line 7"])
    assert not result.stopped and result.frames == MAX_FRAMES
    cut = [r.getMessage() for r in caplog.records if "max_decoder_steps" in r.getMessage()]
    assert len(cut) == 1 and cut[0].startswith("line 7: hit model.max_decoder_steps=6")
    assert "cut short" in cut[0] and "--set model.max_decoder_steps=N" in cut[0]


@pytest.mark.parametrize("lines, bad", [(["Hello there.", "", "😀😀"], "line 3"), ([""], None)])
def test_cli_refuses_before_writing_anything(synth, tmp_path, monkeypatch, capsys, lines, bad):
    """`error: ...` on one stderr line, exit status 2 and an empty --out-dir, even when earlier lines are fine."""
    monkeypatch.setattr(cli, "load_synthesizer", lambda *a, **k: synth)
    out = tmp_path / "out"
    if bad:  # a text file: the message gives the file's line number (blank lines counted)
        (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = ["--text-file", str(tmp_path / "in.txt")]
    else:
        args, bad = ["--text", "Fine.", "--text", lines[0]], "--text 2"
    status = cli.main(["--checkpoint", "unused", *args, "--out-dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: nothing to speak in")
    assert not out.exists() or not any(out.iterdir())
