"""Text -> mel -> wav: the synthesis API (the command line is `python -m taco_jax.synthesize`, see __main__).

`load_synthesizer(checkpoint)` gives a `Synthesizer`; calling it on texts gives one `Synthesis` each (log-mel,
alignment, gate). A text is cut into sentences, and a sentence longer than the model takes (`max_tokens`) at
commas, then between words (taco_jax.synthesize.split); the pieces are synthesized in batches and joined with
short pauses. `write_outputs` writes per text NNN.wav (Griffin-Lim, or the synthesizer's HiFi-GAN `vocoder`),
NNN.png (alignment), NNN.npy (log-mel [frames, n_mels]) and report.json (a list, in input order, of {text,
frames, seconds, stopped, wav, mel, pieces: [{text, tokens, frames, stopped, split}]}).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from taco_jax.audio import griffin_lim, load_wav, mel_spectrogram, save_wav
from taco_jax.config import Config
from taco_jax.errors import UserError
from taco_jax.files import atomic_output, write_text_atomic
from taco_jax.model import Tacotron2
from taco_jax.synthesize.split import SENTENCE, Piece, split_text
from taco_jax.text import SymbolTable, cleaned_away, text_to_sequence
from taco_jax.vocoder.inference import HifiganVocoder

log = logging.getLogger(__name__)

TEXT_PAD_MULTIPLE = 32  # text lengths are padded to a multiple of this to bound recompilation


class TextInputError(UserError, ValueError):
    """A text the synthesizer cannot speak (nothing left after cleaning); the message names the input."""


def _format_dropped(dropped: Counter[str]) -> str:
    """The dropped characters, most frequent first, as in "'😀' x2, '#'"."""
    return ", ".join(repr(ch) if n == 1 else f"{ch!r} x{n}" for ch, n in dropped.most_common())


@dataclass(frozen=True)
class SynthesizedPiece:
    """One piece of a text as synthesized: `mel[start : start + frames]` of the text's Synthesis, followed by
    `pause_s` of silence. split: "sentence", "comma" or "words" (taco_jax.synthesize.split)."""

    text: str
    split: str
    sentence: int  # index of its sentence in the text
    tokens: int  # encoded length, EOS included
    start: int  # first frame in the text's mel
    frames: int
    stopped: bool
    pause_s: float

    def to_dict(self) -> dict:
        """The piece's entry in report.json."""
        return {"text": self.text, "tokens": self.tokens, "frames": self.frames, "stopped": self.stopped,
                "split": self.split}  # fmt: skip


@dataclass
class Synthesis:
    """One text's free-running synthesis: its pieces' outputs joined, with silent frames between them.

    A text of one piece is exactly that piece's output. For several pieces, `alignment` is block-diagonal
    (each piece attends only to its own tokens; the pauses have no rows) and `gate_prob` is the pieces' gates
    one after another.
    """

    text: str
    mel: np.ndarray  # [frames, n_mels] log-mel after the postnet
    alignment: np.ndarray  # [decoder steps, tokens], summed over the pieces
    gate_prob: np.ndarray  # [decoder steps]
    frames: int  # mel frames, pauses included
    stopped: bool  # the gate ended every piece (none ran into max_decoder_steps)
    pieces: list[SynthesizedPiece] = field(default_factory=list)


@dataclass(frozen=True)
class Style:
    """The style of a GST model's speech: a reference mel, or one style token; None of both = the model's
    default (TPS-GST's prediction from the text, or no style). Scaled by `scale`."""

    reference: np.ndarray | None = None  # [frames, n_mels] log-mel
    token: int | None = None
    scale: float = 1.0

    @classmethod
    def from_wav(cls, path: str, cfg: Config, scale: float = 1.0) -> Style:
        """The style of a recording: its log-mel under `cfg.audio` (resampled to the model's rate)."""
        return cls(reference=mel_spectrogram(load_wav(path, cfg.audio.sampling_rate), cfg.audio), scale=scale)


class Synthesizer:
    """Batched free-running synthesis from a model and its variables.

    `variables` is the Flax variables dict ({"params": ..., "batch_stats": ...}); `seed` the key of the prenet
    dropout at inference (when the config keeps it on); `speaker` the speaker id of multi-speaker models.
    `max_tokens` is the longest piece (encoded tokens, EOS included) a text is synthesized in; default: the
    largest training bucket's text length (`data.buckets`), the longest text the model's attention learned.
    `max_chars`, when set, also limits a piece's characters. `vocoder`: the neural vocoder that turns mels into
    waveforms (default: Griffin-Lim).
    """

    def __init__(
        self, cfg: Config, model: Tacotron2, variables, table: SymbolTable, seed: int = 0, style: Style | None = None,
        speaker: int | None = None, max_tokens: int | None = None, max_chars: int | None = None,
        vocoder: HifiganVocoder | None = None,
    ):  # fmt: skip
        self.cfg = cfg
        self.vocoder = vocoder
        self.model = model
        self.variables = variables
        self.table = table
        self.rng = jax.random.PRNGKey(seed)
        if max_tokens is None and cfg.data.buckets:
            max_tokens = max(int(n) for n, _ in cfg.data.buckets)
        for name, limit in (("max_tokens", max_tokens), ("max_chars", max_chars)):
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be >= 1, got {limit}")
        self.max_tokens, self.max_chars = max_tokens, max_chars
        self._silent = {table.pad_id, table.eos_id} | {i for i, sym in enumerate(table.symbols) if sym.isspace()}
        style = style or Style()
        if (style.reference is not None or style.token is not None) and cfg.model.gst == "none":
            raise ValueError("a style reference or token needs a model with GST (config key 'model.gst')")
        reference = None if style.reference is None else jnp.asarray(style.reference, jnp.float32)[None]
        self._infer = jax.jit(
            lambda v, text, text_len, rng: model.apply(
                v, text, text_len, method=model.infer, rngs={"dropout": rng}, reference=reference,
                style_token=style.token, style_scale=style.scale, speaker=speaker,
            )
        )  # fmt: skip

    @property
    def silence_level(self) -> float:
        """The log-mel value of silence: `mel_spectrogram` floors magnitudes at audio.mel_floor before the log."""
        return float(np.log(self.cfg.audio.mel_floor))

    def _ids(self, text: str) -> np.ndarray:
        """Token ids (int32 [tokens]) of `text`, without warnings."""
        return text_to_sequence(text, self.table, self.cfg.text.cleaners, self.cfg.text.add_eos)[0]

    def _speakable(self, ids: np.ndarray) -> bool:
        """Whether `ids` hold a symbol other than pad, EOS and spaces."""
        return any(int(i) not in self._silent for i in ids)

    def encode(self, text: str, label: str = "text") -> np.ndarray:
        """Token ids (int32 [tokens]) of `text` after the config's cleaners.

        Characters the cleaners or the symbol table drop are logged in one warning naming `label` (e.g.
        "line 2"); a text left with no speakable symbol (ignoring pad, EOS and spaces) raises TextInputError,
        because the model would otherwise "speak" the lone EOS token as a few frames of noise.
        """
        cleaners = self.cfg.text.cleaners
        ids, dropped = text_to_sequence(text, self.table, cleaners, self.cfg.text.add_eos)
        dropped = dropped + cleaned_away(text, cleaners)
        if not self._speakable(ids):
            if dropped:
                why = f"every character was dropped: {_format_dropped(dropped)}"
            else:
                why = "empty text" if not text.strip() else "the text cleans to nothing"
            shown = text.replace("\n", "\\n")  # the message stays one line
            raise TextInputError(f'{label}: nothing to speak in "{shown}" ({why})')
        if dropped:
            log.warning(
                "%s: dropped characters not in the symbol table: %s (text: %r)", label, _format_dropped(dropped), text
            )
        return ids

    def fits(self, piece: str) -> bool:
        """Whether `piece` is synthesized in one go: within max_tokens encoded tokens and max_chars characters."""
        if self.max_chars is not None and len(piece) > self.max_chars:
            return False
        return self.max_tokens is None or len(self._ids(piece)) <= self.max_tokens

    def split(self, text: str) -> list[Piece]:
        """The pieces `text` is synthesized as (taco_jax.synthesize.split): sentences, cut further while they do
        not `fit`. Pieces with nothing to speak (a stray symbol the table drops) are left out."""
        pieces = [p for p in split_text(text, self.fits) if self._speakable(self._ids(p.text))]
        if not pieces:  # only if the cuts lost what made the whole text speakable: speak it whole
            return [Piece(text, SENTENCE, 0, 0.0)]
        last = pieces[-1]
        pieces[-1] = Piece(last.text, last.split, last.sentence, 0.0)  # no pause after the end
        return pieces

    def __call__(
        self, texts: Sequence[str], batch_size: int = 8, variables=None, labels: Sequence[str] | None = None,
        warn_cut: bool | None = None, split: bool = True,
    ) -> list[Synthesis]:  # fmt: skip
        """Synthesize `texts` (one result each, in order); `variables` replaces the synthesizer's own for this
        call (the trainer passes its current weights).

        Every text is encoded (and refused with TextInputError) before any is synthesized. Each is then cut into
        pieces (`split`; `split=False` synthesizes each text whole), and all pieces are synthesized in batches
        of `batch_size` and joined per text with pauses (`Synthesis`). `labels` name the inputs in messages
        (default "text 1", "text 2", ...). `warn_cut` logs a warning for each piece that hit max_decoder_steps;
        by default only without `variables`, as the trainer's early models never stop.
        """
        warn_cut = variables is None if warn_cut is None else warn_cut
        variables = self.variables if variables is None else variables
        labels = list(labels) if labels is not None else [f"text {i + 1}" for i in range(len(texts))]
        for text, label in zip(texts, labels, strict=True):
            self.encode(text, label)
        plans = [self.split(t) if split else [Piece(t, SENTENCE, 0, 0.0)] for t in texts]
        flat = [piece for plan in plans for piece in plan]
        encoded = [self._ids(piece.text) for piece in flat]
        outputs = self._synthesize(encoded, flat, batch_size, variables)
        results, first = [], 0
        for text, label, plan in zip(texts, labels, plans, strict=True):
            parts, tokens = outputs[first : first + len(plan)], [len(x) for x in encoded[first : first + len(plan)]]
            first += len(plan)
            for k, (piece, part) in enumerate(zip(plan, parts, strict=True)):
                if warn_cut and not part.stopped:  # the warning names the piece of a text cut into several
                    self._warn_cut(label if len(plan) == 1 else f"{label}, piece {k + 1} of {len(plan)}", piece.text)
            results.append(self._join(text, plan, parts, tokens))
        return results

    def _synthesize(
        self, encoded: list[np.ndarray], pieces: list[Piece], batch_size: int, variables
    ) -> list[Synthesis]:
        """One Synthesis per piece (token ids `encoded`), in batches of `batch_size`."""
        results: list[Synthesis] = []
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            n_real = len(chunk)
            width = -(-max(len(x) for x in chunk) // TEXT_PAD_MULTIPLE) * TEXT_PAD_MULTIPLE
            b = batch_size if len(encoded) > batch_size else n_real
            chunk = chunk + [chunk[-1]] * (b - n_real)  # a fixed batch size: one program per text width
            text = np.zeros((b, width), np.int32)
            for i, ids in enumerate(chunk):
                text[i, : len(ids)] = ids
            text_len = np.array([len(x) for x in chunk], np.int32)
            out = jax.device_get(self._infer(variables, jnp.asarray(text), jnp.asarray(text_len), self.rng))
            r = self.cfg.model.n_frames_per_step
            for i in range(n_real):
                frames = int(out.lengths[i])
                steps = frames // r
                results.append(
                    Synthesis(
                        text=pieces[start + i].text,
                        mel=np.asarray(out.mel_post[i, :frames], np.float32),
                        alignment=np.asarray(out.alignments[i, :steps, : text_len[i]]),
                        gate_prob=np.asarray(jax.nn.sigmoid(out.gate[i, :steps])),
                        frames=frames,
                        stopped=bool(out.stopped[i]),
                    )
                )
        return results

    def pause_frames(self, seconds: float) -> int:
        """Mel frames of a pause of `seconds`."""
        return round(seconds * self.cfg.audio.sampling_rate / self.cfg.audio.hop_length)

    def pause_samples(self, seconds: float) -> int:
        """Waveform samples of a pause of `seconds`."""
        return round(seconds * self.cfg.audio.sampling_rate)

    def _join(self, text: str, plan: list[Piece], parts: list[Synthesis], tokens: list[int]) -> Synthesis:
        """The Synthesis of `text` from its pieces' (`parts`): mels joined with `pause_frames` of silence."""
        infos, mels, start = [], [], 0
        for piece, part, n in zip(plan, parts, tokens, strict=True):
            pause = self.pause_frames(piece.pause_s)
            infos.append(
                SynthesizedPiece(piece.text, piece.split, piece.sentence, n, start, part.frames, part.stopped,
                                 piece.pause_s)
            )  # fmt: skip
            mels += [part.mel, np.full((pause, part.mel.shape[1]), self.silence_level, np.float32)]
            start += part.frames + pause
        if len(parts) == 1:  # the piece's own arrays: exactly what synthesis without splitting gave
            (only,) = parts
            return Synthesis(text, only.mel, only.alignment, only.gate_prob, only.frames, only.stopped, infos)
        mel = np.concatenate(mels)
        alignment = scipy.linalg.block_diag(*(p.alignment for p in parts)).astype(np.float32)
        gate_prob = np.concatenate([p.gate_prob for p in parts])
        stopped = all(p.stopped for p in parts)
        return Synthesis(text, mel, alignment, gate_prob, mel.shape[0], stopped, infos)

    def _warn_cut(self, label: str, text: str) -> None:
        """Warn that an item ran to max_decoder_steps: the gate never ended it, so the speech may be cut off."""
        steps = self.cfg.model.max_decoder_steps
        log.warning(
            "%s: hit model.max_decoder_steps=%d before the gate stopped it; the output may be cut short "
            "(raise the limit with --set model.max_decoder_steps=N or split the text): %r", label, steps, text,
        )  # fmt: skip

    def vocode(self, mel: np.ndarray, n_iters: int | None = None) -> np.ndarray:
        """The waveform (float32 [samples] at cfg.audio.sampling_rate) of a log-mel [frames, n_mels]: the neural
        vocoder's when the synthesizer has one (`n_iters` unused), else Griffin-Lim's."""
        if self.vocoder is not None:
            return self.vocoder([mel])[0]
        return griffin_lim(mel, self.cfg.audio, n_iters or self.cfg.run.griffin_lim_iters)

    def waveform(self, result: Synthesis, n_iters: int | None = None) -> np.ndarray:
        """The waveform (float32 [samples]) of a Synthesis: each piece vocoded on its own and followed by its
        pause as zeros (`pause_samples`), so no piece's phase smears into the silence; for a text of one piece,
        `vocode(result.mel)`."""
        return self.waveforms([result], n_iters)[0]

    def waveforms(self, results: Sequence[Synthesis], n_iters: int | None = None) -> list[np.ndarray]:
        """`waveform` of each result; with a neural vocoder every piece of every result goes through it in
        batches, instead of one piece at a time."""
        pieces = [_piece_mels(r) for r in results]
        flat = [mel for mels in pieces for mel, _ in mels]
        if self.vocoder is not None:
            wavs = self.vocoder(flat)
        else:
            wavs = [self.vocode(mel, n_iters) for mel in flat]
        out, first = [], 0
        for mels in pieces:
            parts = []
            for wav, (_, pause_s) in zip(wavs[first : first + len(mels)], mels, strict=True):
                parts += [wav, np.zeros(self.pause_samples(pause_s), np.float32)]
            first += len(mels)
            out.append(np.concatenate(parts))
        return out


def _piece_mels(result: Synthesis) -> list[tuple[np.ndarray, float]]:
    """(log-mel, pause after it in seconds) of each piece of `result`; the whole mel for a text of one piece."""
    if len(result.pieces) <= 1:
        return [(result.mel, 0.0)]
    return [(result.mel[p.start : p.start + p.frames], p.pause_s) for p in result.pieces]


def write_outputs(synth: Synthesizer, results: list[Synthesis], out_dir: str) -> list[dict]:
    """Write NNN.wav / NNN.png / NNN.npy for each result and report.json; returns the report (a list, in input
    order, of {text, frames, seconds, stopped, wav, mel, pieces}; `stopped` is true when every piece stopped)."""
    from taco_jax.monitor import plot_alignment, save_png

    os.makedirs(out_dir, exist_ok=True)
    report = []
    sr = synth.cfg.audio.sampling_rate
    for i, (res, wav) in enumerate(zip(results, synth.waveforms(results), strict=True)):
        stem = f"{i:03d}"
        save_wav(os.path.join(out_dir, f"{stem}.wav"), wav, sr)
        save_png(os.path.join(out_dir, f"{stem}.png"), plot_alignment(res.alignment, res.text[:60]))
        with atomic_output(os.path.join(out_dir, f"{stem}.npy")) as tmp:
            np.save(tmp, res.mel)
        report.append(
            {
                "text": res.text,
                "frames": res.frames,
                "seconds": res.frames * synth.cfg.audio.hop_length / sr,
                "stopped": res.stopped,
                "wav": f"{stem}.wav",
                "mel": f"{stem}.npy",
                "pieces": [p.to_dict() for p in res.pieces],
            }
        )
    write_text_atomic(os.path.join(out_dir, "report.json"), json.dumps(report, indent=2))
    return report


def load_synthesizer(
    checkpoint: str, overrides: Sequence[str] = (), seed: int = 0, reference_wav: str | None = None,
    style_token: int | None = None, style_scale: float = 1.0, speaker: int | None = None,
    max_tokens: int | None = None, max_chars: int | None = None, vocoder: str | None = None,
    vocoder_config: str | None = None, trust_pickle: bool = False, vocoder_batch_size: int = 8,
) -> Synthesizer:  # fmt: skip
    """A Synthesizer for a run directory, checkpoints directory or step directory, with config `overrides`
    ("key=value"); GST models take a `reference_wav` or a `style_token`, scaled by `style_scale`. `max_tokens`
    and `max_chars` limit the pieces a long text is cut into (see Synthesizer). `vocoder`: a HiFi-GAN generator
    (see `taco_jax.vocoder.files.load_vocoder`; `vocoder_config` is the config.json of a published PyTorch file,
    `trust_pickle` lets such a file unpickle objects), checked against the model's audio features."""
    from taco_jax.checkpoint import restore_front_end, restore_model, restore_symbols
    from taco_jax.text.record import front_end_changes

    cfg, model, variables = restore_model(checkpoint, overrides)
    if reference_wav is not None:
        style = Style.from_wav(reference_wav, cfg, style_scale)
    else:
        style = Style(token=style_token, scale=style_scale)
    table = restore_symbols(checkpoint)
    for change in front_end_changes(restore_front_end(checkpoint), cfg.text.cleaners):
        log.warning("%s: text front end: %s", checkpoint, change)
    neural = None
    if vocoder is not None:
        from taco_jax.vocoder.files import load_vocoder

        vocoder_cfg, params = load_vocoder(vocoder, config_path=vocoder_config, trust_pickle=trust_pickle)
        check_vocoder_features(vocoder_cfg, cfg.audio, vocoder)
        neural = HifiganVocoder(vocoder_cfg, params, vocoder_batch_size, silence=float(np.log(cfg.audio.mel_floor)))
    return Synthesizer(cfg, model, variables, table, seed, style, speaker, max_tokens, max_chars, neural)


class VocoderMismatchError(UserError, ValueError):
    """A vocoder made for other audio features than the acoustic model's; the message names the keys."""


def check_vocoder_features(vocoder_cfg, audio_cfg, where: str) -> None:
    """Raise VocoderMismatchError when the vocoder cannot render the model's mels (sampling rate, hop or mel count
    differ); warn when its training features differ in ways that only degrade the audio (n_fft, window, mel range)."""
    pairs = {
        "sampling_rate": (vocoder_cfg.sampling_rate, audio_cfg.sampling_rate),
        "hop_size / audio.hop_length": (vocoder_cfg.hop_size, audio_cfg.hop_length),
        "num_mels / audio.n_mels": (vocoder_cfg.num_mels, audio_cfg.n_mels),
    }
    wrong = [f"{k}: vocoder {a}, model {b}" for k, (a, b) in pairs.items() if a != b]
    if wrong:
        raise VocoderMismatchError(f"{where}: the vocoder does not fit the model's audio features ({'; '.join(wrong)})")
    soft = {
        "n_fft": (vocoder_cfg.n_fft, audio_cfg.n_fft),
        "win_size / audio.win_length": (vocoder_cfg.win_size, audio_cfg.win_length),
        "fmin": (float(vocoder_cfg.fmin), float(audio_cfg.fmin)),
        "fmax": (float(vocoder_cfg.fmax), float(audio_cfg.fmax)),
    }
    for k, (a, b) in soft.items():
        if a != b:
            log.warning("%s: the vocoder was trained on other features (%s: vocoder %s, model %s); expect worse audio",
                        where, k, a, b)  # fmt: skip
