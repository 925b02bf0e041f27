"""Long input at synthesis: texts are cut into sentences, over-long sentences at commas and then between words,
the pieces are synthesized in batches and joined with pauses; short inputs come out exactly as before.

The splitter is checked on hand-written English and Russian paragraphs; synthesis on test_quiet's untrained
tiny checkpoint (its gate stops every piece after one decoder step unless the overrides below disable it).
"""

from __future__ import annotations

import json
import logging

import jax.numpy as jnp
import numpy as np
import soundfile as sf
from test_quiet import checkpoint  # noqa: F401 — the tiny checkpoint fixture, reused

import taco_jax.synthesize.__main__ as cli
from taco_jax.synthesize import TEXT_PAD_MULTIPLE, load_synthesizer
from taco_jax.synthesize.split import COMMA, SENTENCE, WORDS, describe, max_chars, split_text

SR, HOP = 22050, 256  # the checkpoint's audio config (AudioConfig defaults)
# Pauses, worked out by hand at 22050 Hz and hop 256: 0.25 s = 5512.5 samples (rounded half to even: 5512) =
# 21.53 frames -> 22; 0.1 s = 2205 samples = 8.61 frames -> 9.
SENTENCE_PAUSE = {"samples": 5512, "frames": 22}
COMMA_PAUSE = {"samples": 2205, "frames": 9}
NEVER_STOPS = ["model.gate_threshold=2.0", "model.max_decoder_steps=6"]  # every piece runs to 6 frames
SILENCE = np.log(1e-5)  # log of AudioConfig.mel_floor: the floor mel_spectrogram puts under every value

EN = (
    "Dr. Smith paid $3.50 for 2.5 kg of apples. Prof. Brown, who sold them, smiled. On Jan. 5 the price rose to "
    "$3,500 at 10:30, which nobody — not even the well-known Mr. Jones — had expected, and the market closed "
    "early for the rest of the week."
)
# 7 sentences, 680 characters; the last word of each sentence, by hand:
PARAGRAPH_ENDS = ("apples.", "smiled.", "week.", "rocks.", "all.", "were!", "him.")
PARAGRAPH = EN + (
    " The old lighthouse keeper climbed the narrow stairs every evening to light the great lamp that guided the "
    "fishing boats home through the fog and the dark water near the rocks. Nobody in the village remembered a "
    "night when the light had failed, and the children believed he never slept at all. It was simply how things "
    "were! Years later, when the lamp was finally replaced by an automatic beacon, the whole village came to "
    "thank him."
)
RU = (
    "В 2020 г. цены выросли на 3.5 %, т.е. заметно. Проф. Иванов, директор института, сказал: «Это надолго». "
    "Всё решилось 5 мая, когда совет, собравшийся в здании на ул. Садовой, принял новый бюджет, т.е. урезал "
    "расходы на науку, образование и культуру. Конец."
)


def pieces_of(text: str, limit: int) -> list[tuple[str, str]]:
    return [(p.text, p.split) for p in split_text(text, max_chars(limit))]


# ------------------------------------------------------------------------------------------------------ splitter


def test_english_paragraph_splits_at_sentences_then_commas_and_dashes():
    """Titles, prices, decimals, thousands and times never end a sentence or a clause; the long third sentence
    is cut after a comma and at a spaced dash (not the hyphen of "well-known"), in three similar pieces."""
    assert pieces_of(EN, 80) == [
        ("Dr. Smith paid $3.50 for 2.5 kg of apples.", SENTENCE),
        ("Prof. Brown, who sold them, smiled.", SENTENCE),
        ("On Jan. 5 the price rose to $3,500 at 10:30, which nobody —", COMMA),
        ("not even the well-known Mr. Jones — had expected,", COMMA),
        ("and the market closed early for the rest of the week.", COMMA),
    ]
    assert pieces_of(EN, 1000) == [
        ("Dr. Smith paid $3.50 for 2.5 kg of apples.", SENTENCE),
        ("Prof. Brown, who sold them, smiled.", SENTENCE),
        (EN[EN.index("On Jan.") :], SENTENCE),
    ]


def test_russian_paragraph_keeps_abbreviations_and_decimals():
    """ "г.", "т.е.", "Проф.", "ул." and "3.5" stay inside their sentences; the long third sentence is cut at
    commas into pieces under the limit, packed so that no piece is a scrap."""
    assert pieces_of(RU, 60) == [
        ("В 2020 г. цены выросли на 3.5 %, т.е. заметно.", SENTENCE),
        ("Проф. Иванов, директор института, сказал: «Это надолго».", SENTENCE),
        ("Всё решилось 5 мая, когда совет,", COMMA),
        ("собравшийся в здании на ул. Садовой, принял новый бюджет,", COMMA),
        ("т.е. урезал расходы на науку, образование и культуру.", COMMA),
        ("Конец.", SENTENCE),
    ]


def test_razdel_english_example():
    assert pieces_of("Dr. Smith paid $3.50. Then he left.", 200) == [
        ("Dr. Smith paid $3.50.", SENTENCE),
        ("Then he left.", SENTENCE),
    ]


def test_sentence_without_commas_splits_between_words_under_the_limit():
    """A 300-character sentence without commas: two pieces of whole words, each under 200 characters and of
    similar length (not 200 + 100)."""
    words = [f"word{i:03d}" for i in range(37)]  # 37 x 7 characters + 36 spaces + "." = 296
    sentence = " ".join(words) + ". And a short one."
    first = " ".join(words) + "."
    assert len(first) == 296
    pieces = split_text(sentence, max_chars(200))
    assert [p.split for p in pieces] == [WORDS, WORDS, SENTENCE]
    assert pieces[0].text == " ".join(words[:19]) and pieces[1].text == " ".join(words[19:]) + "."
    assert [p.pause_s for p in pieces] == [0.1, 0.25, 0.0]
    assert describe(pieces) == "2 sentences, 1 split between words"


def test_stray_symbols_join_a_sentence_and_blank_text_has_no_pieces():
    """A "sentence" of no letter or digit would be spoken as noise on its own: it joins its neighbour."""
    assert pieces_of("Hello. 😀. Bye.", 200) == [("Hello. 😀.", SENTENCE), ("Bye.", SENTENCE)]
    assert pieces_of("😀. Hello. Bye.", 200) == [("😀. Hello.", SENTENCE), ("Bye.", SENTENCE)]
    assert split_text("   ", max_chars(200)) == []


def test_arpabet_groups_are_never_cut():
    text = "Turn left on {HH AW1 S S T AH0 N} Street and keep going until the very end of the road."
    pieces = pieces_of(text, 40)
    assert all(p.count("{") == p.count("}") for p, _ in pieces)
    assert " ".join(p for p, _ in pieces) == text


# ------------------------------------------------------------------------------------------------------ synthesis


def test_short_inputs_give_exactly_the_unsplit_output(checkpoint):  # noqa: F811
    """One sentence per text -> one piece each, and the arrays the model gives for the texts batched as before
    (padded to a multiple of TEXT_PAD_MULTIPLE in one batch), bit for bit."""
    synth = load_synthesizer(str(checkpoint), NEVER_STOPS)
    texts = ["Hello there.", "Dr. Smith paid $3.50 for it."]  # within the largest bucket's 64 tokens
    results = synth(texts, batch_size=8)
    ids = [synth.encode(t) for t in texts]
    width = -(-max(len(x) for x in ids) // TEXT_PAD_MULTIPLE) * TEXT_PAD_MULTIPLE
    text = np.zeros((2, width), np.int32)
    for i, x in enumerate(ids):
        text[i, : len(x)] = x
    out = synth._infer(synth.variables, jnp.asarray(text), jnp.asarray([len(x) for x in ids], jnp.int32), synth.rng)
    for i, res in enumerate(results):
        frames = int(out.lengths[i])
        assert res.text == texts[i] and res.frames == frames and res.stopped == bool(out.stopped[i])
        np.testing.assert_array_equal(res.mel, np.asarray(out.mel_post[i, :frames]))
        np.testing.assert_array_equal(res.alignment, np.asarray(out.alignments[i, : frames // 3, : len(ids[i])]))
        assert len(res.pieces) == 1 and res.pieces[0].text == texts[i] and res.pieces[0].split == SENTENCE
        assert res.pieces[0].tokens == len(ids[i]) and res.pieces[0].frames == frames
    whole = synth([texts[1] + " " + texts[0]], split=False)[0]  # split=False: one piece, however many sentences
    assert len(whole.pieces) == 1


def test_joined_output_is_the_pieces_plus_the_pauses(checkpoint, caplog):  # noqa: F811
    """Mel frames and waveform samples: the pieces' own plus a sentence pause or a comma pause after each
    piece but the last; the pauses are silent; every cut piece is warned by its number."""
    synth = load_synthesizer(str(checkpoint), NEVER_STOPS, max_tokens=1000, max_chars=80)  # pieces as above
    synth.cfg.run.griffin_lim_iters = 2
    with caplog.at_level(logging.WARNING, logger="taco_jax.synthesize"):
        (res,) = synth([EN], labels=["line 3"])
    splits = [p.split for p in res.pieces]
    assert splits == [SENTENCE, SENTENCE, COMMA, COMMA, COMMA]
    assert all(p.frames == 6 and not p.stopped for p in res.pieces) and not res.stopped
    pauses = [SENTENCE_PAUSE, SENTENCE_PAUSE, COMMA_PAUSE, COMMA_PAUSE]
    assert res.frames == res.mel.shape[0] == 5 * 6 + sum(p["frames"] for p in pauses)
    assert [p.start for p in res.pieces] == [0, 28, 56, 71, 86]  # 6 frames + 22, + 22, + 9, + 9
    np.testing.assert_array_equal(res.mel[6:28], np.full((22, 80), SILENCE, np.float32))
    np.testing.assert_array_equal(res.mel[62:71], np.full((9, 80), SILENCE, np.float32))
    assert res.alignment.shape == (5 * 2, sum(p.tokens for p in res.pieces))  # 2 decoder steps (r=3) each
    wav = synth.waveform(res)
    assert wav.shape == (5 * (6 - 1) * HOP + sum(p["samples"] for p in pauses),)
    start = (6 - 1) * HOP
    assert not wav[start : start + SENTENCE_PAUSE["samples"]].any()
    cut = [r.getMessage() for r in caplog.records if "max_decoder_steps" in r.getMessage()]
    assert [m.split(":")[0] for m in cut] == [f"line 3, piece {k} of 5" for k in range(1, 6)]
    assert cut[2].endswith("'On Jan. 5 the price rose to $3,500 at 10:30, which nobody —'")


def test_cli_long_paragraph_end_to_end(checkpoint, tmp_path, capsys):  # noqa: F811
    """A 600-character paragraph through the command line: one wav/npy/png, report.json with its pieces (each
    within the model's 64 tokens: the largest training bucket), files whose lengths add up, one summary line."""
    assert len(PARAGRAPH) > 600
    out = tmp_path / "out"
    status = cli.main(["--checkpoint", str(checkpoint), "--text", PARAGRAPH, "--out-dir", str(out)])
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["000.npy", "000.png", "000.wav", "report.json"]
    (item,) = json.loads((out / "report.json").read_text())
    pieces = item["pieces"]
    assert len(pieces) >= 6 and all(set(p) == {"text", "tokens", "frames", "stopped", "split"} for p in pieces)
    assert all(p["tokens"] <= 64 for p in pieces)
    assert " ".join(p["text"] for p in pieces) == PARAGRAPH  # substrings, in order, nothing lost
    assert item["stopped"] == all(p["stopped"] for p in pieces)
    ends = [i for i, p in enumerate(pieces[:-1]) if p["text"].endswith(PARAGRAPH_ENDS)]
    assert len(ends) == len(PARAGRAPH_ENDS) - 1
    n_pauses = {"sentence": len(ends), "comma": len(pieces) - 1 - len(ends)}
    frames = sum(p["frames"] for p in pieces)
    frames += n_pauses["sentence"] * SENTENCE_PAUSE["frames"] + n_pauses["comma"] * COMMA_PAUSE["frames"]
    assert item["frames"] == frames == np.load(out / "000.npy").shape[0]
    samples = sum(max(p["frames"] - 1, 0) * HOP for p in pieces)
    samples += n_pauses["sentence"] * SENTENCE_PAUSE["samples"] + n_pauses["comma"] * COMMA_PAUSE["samples"]
    assert sf.info(str(out / "000.wav")).frames == samples
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(f"000.wav: {item['seconds']:.2f} s, ") and "7 sentences" in line
