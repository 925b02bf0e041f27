"""Typed configuration: dataclass schema, YAML files and dotted command-line overrides.

The schema is the single source of truth for every setting. YAML files and `--set a.b=v` overrides are
merged onto it with OmegaConf structured configs, so an unknown key or a value of the wrong type is an
error that names the key and the file it came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from taco_jax import files
from taco_jax.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A configuration file or override is invalid; the message names the key and the source."""


def _first_failed_check(section_cfg: object, section: str, checks, source: str) -> None:
    """Raises ConfigError for the first `(key, ok, expected)` of `checks` that is not ok, naming `section.key`."""
    for key, ok, expected in checks:
        if not ok:
            value = getattr(section_cfg, key)
            raise ConfigError(f"{source}: config key '{section}.{key}' = {value!r}; expected {expected}")


@dataclass
class RunConfig:
    name: str = "run"  # run directory is <out_dir>/<name>
    out_dir: str = "runs"
    seed: int = 1234
    max_steps: int = 1000  # optimizer steps
    log_every: int = 10  # steps between metric logs
    eval_every: int = 200  # steps between validation passes (+ samples + checkpoint)
    keep_checkpoints: int = 3  # latest K kept (the best-by-val checkpoint is always kept too)
    sample_sentences: list[str] = field(
        default_factory=lambda: [
            "The quick brown fox jumps over the lazy dog.",
            "Please call me back after seven o'clock tonight.",
        ]
    )
    griffin_lim_iters: int = 32
    progress_bar: bool = True
    # Keep freed host memory for the next step instead of returning it to the OS (taco_jax/train/host_memory.py:
    # no per-step page faults for XLA:CPU's temporaries, no extra cost for a step that follows a pause; resident
    # memory stays at its peak). CPU-only effect; computations then run on the calling thread.
    retain_host_memory: bool = True


@dataclass
class AudioConfig:
    sampling_rate: int = 22050  # Hz
    n_fft: int = 1024  # samples
    hop_length: int = 256  # samples
    win_length: int = 1024  # samples
    n_mels: int = 80
    fmin: float = 0.0  # Hz
    fmax: float = 8000.0  # Hz
    mel_floor: float = 1e-5  # log(max(x, mel_floor)), natural log


@dataclass
class TextConfig:
    symbols: str = "nvidia_english_v1"  # name of a versioned symbol table in taco_jax.text.symbols
    cleaners: list[str] = field(default_factory=lambda: ["english_cleaners"])
    add_eos: bool = False  # append an end-of-sentence token (helps the gate and the end of alignment)
    # Training stops when the train split's texts lose a larger share of their characters than this (dropped by
    # the symbol table, or letters, digits and symbols the cleaners delete): a table or cleaners that do not
    # fit the language would otherwise train a model on texts with holes in them.
    max_dropped_share: float = 0.01

    def validate(self, source: str) -> None:
        """Raises ConfigError naming the first invalid key (`text.<key>`) and `source`."""
        if not 0.0 <= self.max_dropped_share <= 1.0:
            raise ConfigError(
                f"{source}: config key 'text.max_dropped_share' = {self.max_dropped_share!r}; expected 0 <= x <= 1"
            )


@dataclass
class DemoCorpusConfig:
    n_utterances: int = 900
    n_val: int = 40
    seed: int = 7
    voice: str = "en-us"
    # Several eSpeak voices (e.g. [en-us, en-us+f3]): sentences alternate between them and the filelists
    # get a speaker column (the voice's index) for multi-speaker training. Empty: `voice` alone.
    voices: list[str] = field(default_factory=list)
    words_per_minute: int = 175
    min_seconds: float = 1.0
    max_seconds: float = 5.0
    # "en": English sentences (taco_jax.demo.sentences), rendered through english_cleaners; "ru": Russian ones
    # (taco_jax.demo.sentences_ru) through russian_cleaners. Pair "ru" with voice "ru" and symbols russian_v1.
    language: str = "en"

    def __post_init__(self) -> None:
        # Checked here rather than in the config-wide validation so a DemoCorpusConfig built in code fails too.
        if self.language not in ("en", "ru"):
            raise ConfigError(f"config key 'data.demo.language' = {self.language!r}; expected one of ('en', 'ru')")


@dataclass
class DataConfig:
    corpus: str = "demo"  # "demo" (embedded eSpeak NG corpus) or "filelists"
    train_filelist: str = ""  # path|text[|speaker] per line, paths relative to the filelist
    val_filelist: str = ""
    cache_dir: str = ""  # mel cache; "" = <user cache dir>/taco_jax/mels
    batch_size: int = 16
    # Fixed padded shapes [text_len, mel_frames]; an item goes to the first bucket that holds it, items
    # that fit none are filtered (and counted). One compiled train step per bucket.
    buckets: list[list[int]] = field(default_factory=lambda: [[64, 192], [112, 320], [176, 512]])
    drop_remainder: bool = True
    # Bad items (missing or unreadable wav, empty text): false = stop with an error naming file:line,
    # true = drop them, count them and log each one. Too-long items are always dropped and counted.
    skip_bad_items: bool = False
    demo: DemoCorpusConfig = field(default_factory=DemoCorpusConfig)


@dataclass
class ModelConfig:
    n_symbols: int = 0  # 0 = taken from the symbol table
    symbols_embedding_dim: int = 512
    encoder_embedding_dim: int = 512
    encoder_n_convolutions: int = 3
    encoder_kernel_size: int = 5
    encoder_dropout: float = 0.5
    n_frames_per_step: int = 1  # reduction factor r
    prenet_dim: int = 256
    prenet_dropout: float = 0.5
    prenet_dropout_at_inference: bool = True  # NVIDIA keeps prenet dropout on when synthesizing
    attention_rnn_dim: int = 1024
    attention_dim: int = 128
    attention_location_n_filters: int = 32
    attention_location_kernel_size: int = 31
    attention_dropout: float = 0.1  # on the attention-RNN hidden state
    decoder_rnn_dim: int = 1024
    decoder_dropout: float = 0.1  # on the decoder-RNN hidden state
    postnet_embedding_dim: int = 512
    postnet_kernel_size: int = 5
    postnet_n_convolutions: int = 5
    postnet_dropout: float = 0.5
    max_decoder_steps: int = 1000  # frames (not decoder steps) at inference
    gate_threshold: float = 0.5
    mask_value: float = -1e4  # finite attention mask value, never -inf
    # Train with the decoder's hand-written backward pass (model/decoder_vjp.py): same gradients as autodiff
    # of the scan, less memory traffic per step. False: plain autodiff.
    decoder_custom_vjp: bool = True
    # Decoder steps per iteration of the training scans (lax.scan's unroll): fewer loop iterations, a larger
    # program. Same values; benchmarks/train_step.py --set model.decoder_scan_unroll=K measures it.
    decoder_scan_unroll: int = 1
    # Rematerialise the decoder step in the plain-autodiff training scan (jax.checkpoint): the scan keeps only
    # each step's carry and recomputes the step's internals (attention energies, LSTM gates) in the backward
    # pass; less memory, one more forward pass of the recurrence. Needs decoder_custom_vjp: false (the custom
    # VJP already recomputes the attention from its residuals).
    decoder_remat: bool = False
    # Training only: each valid teacher-forced input frame is replaced, with this probability, by the training
    # set's mean log-mel (computed at data preparation, stored in the checkpoint meta); targets stay intact.
    frame_dropout: float = 0.0
    # Multi-speaker: > 0 learns one embedding per speaker id (the filelists' third column, 0..n_speakers-1),
    # appended to every memory position; synthesis then names a speaker.
    n_speakers: int = 0
    speaker_embedding_dim: int = 64
    # --- Tacotron2-New options (all off: the NVIDIA model) ---
    # MMI decoder head (Liu et al. 2019): features -> Dense(mmi_dim) ReLU dropout -> mel layer (Dense(mmi_dim)
    # ReLU dropout Dense(n_mels * r)); the gate reads the mmi_dim projection. Adds the CTC MI estimator's
    # parameters (mmi_dim -> mmi_vocab classes).
    mmi: bool = False
    mmi_dim: int = 1024
    mmi_dropout: float = 0.5
    mmi_vocab: int = 0  # CTC classes including blank; 0 = n_symbols + 1
    mmi_blank: str = "first"  # where the CTC blank is: "first" (T2N HEAD) | "last" (legacy T2N)
    # Global style tokens: "none" | "add" (style projected to the memory width and added, T2N HEAD) |
    # "concat" (style appended to every memory position, legacy T2N: memory is E + token embedding wide).
    gst: str = "none"
    gst_token_num: int = 8
    gst_num_heads: int = 4
    gst_token_embedding_size: int = 256
    gst_ref_filters: list[int] = field(default_factory=lambda: [32, 32, 64, 64, 128, 128])
    gst_ref_gru_size: int = 128
    # How the reference encoder reads a mel [T, n_mels] as an image: "time_mel" (time x mel bins) or
    # "torch_view" (T2N's checkpoints were trained on their [n_mels, T] buffer read as [T, n_mels]).
    gst_reference_layout: str = "time_mel"
    # Double decoder consistency (Coqui's DDC): a second, coarse decoder (ddc_reduction_factor frames per step,
    # a multiple of n_frames_per_step) reads the same memory in training only; its own mel loss and an L1
    # between its (upsampled) alignment and the fine decoder's pull the fine decoder towards a robust alignment.
    ddc: bool = False
    ddc_reduction_factor: int = 2
    # Text-predicted style (TPS-GST): style from the encoder output, trained with L1 to the detached GST
    # style, used at inference when no reference or token is given.
    tpse: bool = False
    tpse_gru_size: int = 128  # per direction
    tpse_max_norm: float = 0.0  # > 0: T2N HEAD's rescale of the predicted style (norm clamp); 0 = off


@dataclass
class GuidedAttentionConfig:
    enabled: bool = True
    sigma: float = 0.2
    # "per_frame": summed over tokens, averaged over valid frames; "per_cell": ESPnet, mean over valid cells
    normalization: str = "per_frame"
    weight: float = 1.0  # initial weight
    # "constant" | "exponential" (max(floor, weight * decay**step)) | "piecewise" (weight before
    # boundaries[0], then values[i] from step boundaries[i] on)
    schedule: str = "constant"
    decay: float = 1.0
    floor: float = 0.0
    boundaries: list[int] = field(default_factory=list)  # optimizer steps, increasing
    values: list[float] = field(default_factory=list)  # one per boundary


@dataclass
class LossConfig:
    mel_loss: str = "mse"  # "mse" | "l1"
    gate_pos_weight: float = 1.0
    mel_weight: float = 1.0
    gate_weight: float = 1.0
    tpse_weight: float = 1.0  # L1 of the text-predicted style to the detached GST style (model.tpse)
    ddc_weight: float = 0.25  # model.ddc: x (coarse decoder mel loss + alignment consistency), Coqui's alpha
    # With model.mmi: add the MI estimator's CTC loss, weighted each step by the gradient adaptive factor
    # (the largest weight that keeps its gradient below the main loss's in every tensor), capped here.
    mmi_ctc: bool = True
    mmi_max_gaf: float = 0.1
    guided_attention: GuidedAttentionConfig = field(default_factory=GuidedAttentionConfig)


@dataclass
class OptimConfig:
    lr: float = 1e-3
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-8  # torch.optim.Adam default, as NVIDIA
    weight_decay: float = 1e-6  # coupled L2 (added to the gradient, as torch.optim.Adam)
    grad_clip: float = 1.0  # global-norm threshold
    schedule: str = "constant"  # "constant" | "warmup_exponential"
    warmup_steps: int = 0
    decay_steps: int = 10000
    decay_rate: float = 0.5  # lr multiplied by this every decay_steps after warmup
    min_lr: float = 1e-5


@dataclass
class DiagnosticsConfig:
    band_tokens: int = 3  # band half-width b for band diagonality
    coverage_threshold: float = 0.5


@dataclass
class GAControlConfig:
    """Guided-attention weight multiplier driven by an EMA of train band diagonality (control/alignment.py)."""

    enabled: bool = False
    raise_thresholds: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.3])  # EMA below -> raise
    raise_factors: list[float] = field(default_factory=lambda: [3.0, 2.5, 1.5])
    decrease_threshold: float = 0.7  # EMA above -> multiply by decrease_factor
    decrease_factor: float = 0.9
    interval: int = 100  # steps between decisions
    cooldown: int = 500  # steps after a change before the next one
    start_delay: int | None = None  # steps before the first decision (None: cooldown)
    min_progress: float | None = None  # raise only if the EMA rose less than this over the last interval
    max_loss_ratio: float | None = None  # a raise never takes the GA term above this x (mel + post + gate)
    ema_decay: float = 0.9  # per step
    cap: float = 50.0  # the GA weight (schedule x multiplier) never exceeds this
    min_mult: float = 0.1
    max_mult: float = 100.0


@dataclass
class ClipControlConfig:
    """Gradient-clip threshold: optim.grad_clip, or adaptive from recent pre-clip norms."""

    enabled: bool = False  # adaptive threshold (off: the fixed optim.grad_clip)
    percentile: float = 95.0
    window: int = 100  # steps in the ring buffer
    min: float = 0.1
    max: float = 1.0
    min_history: int = 10  # norms seen before the threshold adapts


@dataclass
class LRPlateauConfig:
    """LR scale that falls on a training-loss plateau (optax.contrib.reduce_on_plateau); never rises."""

    enabled: bool = False
    factor: float = 0.5
    patience: int = 10  # decisions without improvement
    cooldown: int = 0  # decisions
    accumulation: int = 50  # steps averaged per decision
    rtol: float = 1e-4
    atol: float = 0.0
    min_scale: float = 0.01  # floor of every automatic LR-scale decrease


@dataclass
class NonFiniteConfig:
    """Non-finite guard: skip steps with a non-finite loss or gradient; roll back after K in a row."""

    enabled: bool = True
    lr_factor: float = 0.5  # LR scale multiplier per skipped step and per rollback
    max_consecutive: int = 5  # K: consecutive skipped steps that trigger a rollback
    max_rollbacks: int = 3  # R: rollbacks before training stops


@dataclass
class DivergenceConfig:
    """Divergence alarm (taco_jax/train/divergence.py): flags finite blow-ups, which the non-finite guard lets
    through, by comparing each step's train/loss and pre-clip train/grad_norm with the median of recent steps.

    A value is judged once its window holds `min_history` values, and only against a positive median. Healthy
    Tacotron training stays far below both factors: its loss falls from ~60 at the first step (demo model) with
    noise and 2-3x spikes, its gradient norm spikes 10-50x early on. A blow-up passes them at once: with
    optim.lr=1e6 the second step's loss is over 1e12 x the first's (tests/test_divergence.py).
    """

    enabled: bool = True
    # Flag a loss above this x the window's median: ~30x above the worst healthy spike (3x), and above what a
    # rollback to the starting state shows (the initial loss, ~60 on the demo model, against a median of ~1-10).
    loss_factor: float = 100.0
    # Flag a pre-clip gradient norm above this x its window's median: 20x above the 10-50x spikes of early
    # training (a norm is noisier than the loss it comes from, so its factor is larger).
    grad_norm_factor: float = 1000.0
    # Accepted steps whose median is the reference: a median of 50 ignores up to 24 outliers, and its lag on a
    # falling loss only makes the alarm more lenient. Saved in checkpoint metadata (2 x 50 floats).
    window: int = 50
    # Values a window needs before it judges: 1, because the first step's loss and norm come from the initial
    # parameters (no update applied yet), a clean reference, so a blow-up from the first update is caught at
    # step 2. Raise it to wait longer.
    min_history: int = 1
    # Flagged steps in a row that roll back (as control.nonfinite: last checkpoint, lower LR scale, counted in
    # control.nonfinite.max_rollbacks). A flagged update has been applied, so waiting buys nothing once the
    # parameters are ruined; but one or two outlier batches (a bad item; the clipped update leaves the
    # parameters sound) must not cost a rollback: the next step is back in range and ends the streak.
    max_consecutive: int = 3

    def validate(self, source: str) -> None:
        """Raises ConfigError naming the first invalid key (`control.divergence.<key>`) and `source`."""
        checks = (
            ("loss_factor", self.loss_factor > 1.0, "> 1 (a factor <= 1 flags every step above the median)"),
            ("grad_norm_factor", self.grad_norm_factor > 1.0, "> 1 (a factor <= 1 flags every step above the median)"),
            ("window", self.window >= 1, ">= 1"),
            ("min_history", 1 <= self.min_history <= self.window, ">= 1 and <= control.divergence.window"),
            ("max_consecutive", self.max_consecutive >= 1, ">= 1"),
        )
        _first_failed_check(self, "control.divergence", checks, source)


@dataclass
class PhaseConfig:
    """pre_alignment -> alignment_learning -> quality_optimization -> fine_tuning, on val diagonality."""

    enabled: bool = False
    align_start: float = 0.3  # val/align_diag to leave pre_alignment ...
    align_done: float = 0.7  # ... and alignment_learning
    patience: int = 2  # consecutive evaluations a condition must hold
    plateau_evals: int = 5  # evaluations without val-loss improvement -> fine_tuning
    min_delta: float = 1e-3  # relative val-loss improvement that counts
    ga_targets: list[float] = field(default_factory=lambda: [3.0, 2.0, 1.5, 1.0])  # GA multiplier floor per phase
    lr_factors: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.8, 0.5])


@dataclass
class EarlyStoppingConfig:
    enabled: bool = False
    patience: int = 10  # evaluations without val-loss improvement
    min_delta: float = 1e-3  # relative improvement that counts


@dataclass
class ControlConfig:
    """Adaptive training control; everything disabled (and the guard idle) is the plain NVIDIA recipe."""

    ga_weight: GAControlConfig = field(default_factory=GAControlConfig)
    clip: ClipControlConfig = field(default_factory=ClipControlConfig)
    lr_plateau: LRPlateauConfig = field(default_factory=LRPlateauConfig)
    nonfinite: NonFiniteConfig = field(default_factory=NonFiniteConfig)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)  # finite blow-ups (host side)
    phase: PhaseConfig = field(default_factory=PhaseConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    accumulate_steps: int = 1  # gradient accumulation (optax.MultiSteps) when > 1


@dataclass
class DistributedConfig:
    """Multi-process (multi-host) runs; all None = one process. Each key falls back to an environment
    variable: TACO_JAX_COORDINATOR_ADDRESS, TACO_JAX_NUM_PROCESSES, TACO_JAX_PROCESS_ID."""

    coordinator_address: str | None = None  # host:port of process 0
    num_processes: int | None = None
    process_id: int | None = None  # 0 .. num_processes - 1; process 0 writes logs and files


@dataclass
class AlertsConfig:
    """Opt-in alerts during training (taco_jax/alerts): a Telegram bot and/or a JSON webhook.

    The secrets are never config keys (config.yaml and every checkpoint hold the config): the bot token, the chat id
    and the webhook URL come from the environment variables TACO_JAX_TELEGRAM_TOKEN, TACO_JAX_TELEGRAM_CHAT_ID and
    TACO_JAX_ALERT_WEBHOOK_URL, checked when `python -m taco_jax.train` starts.
    """

    enabled: bool = False
    telegram: bool = False  # Bot API sendMessage / sendPhoto (the newest alignment image)
    telegram_api_url: str = "https://api.telegram.org"  # a local server can stand in (tests)
    webhook: bool = False  # POST {"event", "text", "fields", "image_png_base64"} as JSON
    summary_every_min: float = 30.0  # minutes between summaries (loss, alignment, steps/s, ETA); 0 = none
    # "Alignment formed": the first evaluation with val/align_diag and val/align_focus at or above these (the
    # tuner's default thresholds for alignment that holds, taco_jax/tune/objectives.py).
    align_diag: float = 0.8
    align_focus: float = 0.5
    min_interval_s: float = 1.0  # between two sends (Telegram allows about one message per second per chat)
    timeout_s: float = 10.0  # per HTTP request; also how long the end of a run waits for unsent alerts
    queue_size: int = 100  # alerts waiting to be sent; more are dropped (and counted), training never waits

    def validate(self, source: str) -> None:
        """Raises ConfigError naming the first invalid key (`alerts.<key>`) and `source`."""
        checks = (
            ("telegram_api_url", self.telegram_api_url.startswith(("http://", "https://")), "an http(s):// URL"),
            ("summary_every_min", self.summary_every_min >= 0.0, ">= 0 (0: no summaries)"),
            ("align_diag", 0.0 <= self.align_diag <= 1.0, "0 <= x <= 1"),
            ("align_focus", 0.0 <= self.align_focus <= 1.0, "0 <= x <= 1"),
            ("min_interval_s", self.min_interval_s >= 0.0, ">= 0"),
            ("timeout_s", self.timeout_s > 0.0, "> 0"),
            ("queue_size", self.queue_size >= 1, ">= 1"),
            ("enabled", not self.enabled or self.telegram or self.webhook, "a sink: alerts.telegram or alerts.webhook"),
        )
        _first_failed_check(self, "alerts", checks, source)


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)


_CHOICES = {
    "data.corpus": ("demo", "filelists"),
    "loss.mel_loss": ("mse", "l1"),
    "loss.guided_attention.normalization": ("per_frame", "per_cell"),
    "loss.guided_attention.schedule": ("constant", "exponential", "piecewise"),
    "optim.schedule": ("constant", "warmup_exponential"),
    "model.mmi_blank": ("first", "last"),
    "model.gst": ("none", "add", "concat"),
    "model.gst_reference_layout": ("time_mel", "torch_view"),
}


def _merge(base: Any, other: Any, source: str) -> Any:
    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{source}: invalid config key '{key}': {msg}") from None


def _validate(cfg: Config, source: str) -> None:
    for key, allowed in _CHOICES.items():
        value = OmegaConf.select(OmegaConf.structured(cfg), key)
        if value not in allowed:
            raise ConfigError(f"{source}: config key '{key}' = {value!r}; expected one of {allowed}")
    for i, bucket in enumerate(cfg.data.buckets):
        if len(bucket) != 2 or min(bucket) <= 0:
            raise ConfigError(
                f"{source}: config key 'data.buckets[{i}]' = {bucket}; expected [text_len, mel_frames] > 0"
            )
        if bucket[1] % cfg.model.n_frames_per_step:
            raise ConfigError(
                f"{source}: config key 'data.buckets[{i}]' mel_frames {bucket[1]} is not a multiple of "
                f"model.n_frames_per_step={cfg.model.n_frames_per_step}"
            )
    if cfg.model.n_frames_per_step < 1:
        raise ConfigError(f"{source}: config key 'model.n_frames_per_step' must be >= 1")
    m = cfg.model
    if m.gst != "none" and m.gst_token_embedding_size % m.gst_num_heads:
        raise ConfigError(
            f"{source}: config key 'model.gst_token_embedding_size' = {m.gst_token_embedding_size} is not a multiple "
            f"of model.gst_num_heads = {m.gst_num_heads}"
        )
    if m.decoder_remat and m.decoder_custom_vjp:
        raise ConfigError(
            f"{source}: config key 'model.decoder_remat' applies to the plain-autodiff decoder: set "
            "'model.decoder_custom_vjp' to false with it"
        )
    if m.decoder_scan_unroll < 1:
        raise ConfigError(f"{source}: config key 'model.decoder_scan_unroll' must be >= 1")
    if not 0.0 <= m.frame_dropout < 1.0:
        raise ConfigError(f"{source}: config key 'model.frame_dropout' = {m.frame_dropout}; expected 0 <= p < 1")
    if m.ddc and (m.ddc_reduction_factor <= m.n_frames_per_step or m.ddc_reduction_factor % m.n_frames_per_step):
        raise ConfigError(
            f"{source}: config key 'model.ddc_reduction_factor' = {m.ddc_reduction_factor} must be a multiple of "
            f"model.n_frames_per_step = {m.n_frames_per_step}, and larger"
        )
    if m.tpse and m.gst == "none":
        raise ConfigError(f"{source}: config key 'model.tpse' needs model.gst (it predicts the GST style)")
    ga = cfg.loss.guided_attention
    if len(ga.boundaries) != len(ga.values) or list(ga.boundaries) != sorted(set(ga.boundaries)):
        raise ConfigError(
            f"{source}: config keys 'loss.guided_attention.boundaries'/'values' need one value per boundary and "
            f"strictly increasing boundaries, got {list(ga.boundaries)} / {list(ga.values)}"
        )
    if cfg.data.corpus == "filelists" and not cfg.data.train_filelist:
        raise ConfigError(f"{source}: config key 'data.train_filelist' is required when data.corpus=filelists")
    cfg.text.validate(source)
    cfg.control.divergence.validate(source)
    cfg.alerts.validate(source)


def load_structured(
    schema: type[T],
    path: str | os.PathLike | None,
    overrides: Sequence[str],
    validate: Callable[[T, str], None],
    *,
    set_example: str,
    overrides_source: Callable[[str, Sequence[str]], str],
) -> T:
    """An instance of the dataclass `schema`: its defaults <- YAML file `path` <- dotted overrides (`a.b=v`).

    `validate(obj, source)` checks the merged instance; `source` names the file (or "<defaults>"), turned by
    `overrides_source(source, overrides)` into the name used once overrides are given. `set_example` is the
    `KEY=VALUE` shown when an override lacks its '='.

    Raises:
      ConfigError: a missing or unparsable file, an unknown key or a wrong type (naming the key and the file or
        `--set`), and whatever `validate` raises.
    """
    cfg = OmegaConf.structured(schema)
    source = "<defaults>"
    if path is not None:
        source = str(path)
        if not os.path.exists(path):
            raise ConfigError(f"{source}: config file not found")
        try:
            file_cfg = OmegaConf.load(path)
        except Exception as e:  # noqa: BLE001 - a YAML syntax error carries the line in its message
            raise ConfigError(f"{source}: cannot parse YAML: {e}") from None
        cfg = _merge(cfg, file_cfg, source)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. {set_example}")
        try:
            dotted = OmegaConf.from_dotlist([item])
        except OmegaConfBaseException as e:
            raise ConfigError(f"--set {item!r}: {e}") from None
        cfg = _merge(cfg, dotted, f"--set {item}")
    if overrides:
        source = overrides_source(source, overrides)
    obj: T = OmegaConf.to_object(cfg)
    validate(obj, source)
    return obj


def structured_from_yaml(schema: type[T], text: str, source: str, validate: Callable[[T, str], None]) -> T:
    """An instance of the dataclass `schema` from YAML `text` merged onto its defaults, checked by `validate`.

    Raises:
      ConfigError: an unknown key or a wrong type (naming the key and `source`), and whatever `validate` raises.
    """
    obj: T = OmegaConf.to_object(_merge(OmegaConf.structured(schema), OmegaConf.create(text), source))
    validate(obj, source)
    return obj


def _count_overrides(source: str, overrides: Sequence[str]) -> str:
    return f"{source} + {len(overrides)} --set override{'s' if len(overrides) > 1 else ''}"


def load_config(path: str | None, overrides: Sequence[str] = ()) -> Config:
    """Load a config: schema defaults <- YAML file <- dotted overrides (`a.b=v`).

    Raises ConfigError naming the key and the file (or `--set`) on unknown keys, wrong types and values
    outside the allowed choices.
    """
    return load_structured(
        Config, path, overrides, _validate, set_example="optim.lr=1e-3", overrides_source=_count_overrides
    )


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def from_yaml_string(text: str, source: str = "<string>") -> Config:
    return structured_from_yaml(Config, text, source, _validate)


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (taco_jax.files), with an ordinary file's permissions."""
    files.write_text_atomic(path, to_yaml(cfg))


__all__ = [
    "MISSING",
    "AlertsConfig",
    "AudioConfig",
    "Config",
    "ConfigError",
    "ControlConfig",
    "DataConfig",
    "DemoCorpusConfig",
    "DiagnosticsConfig",
    "DivergenceConfig",
    "GuidedAttentionConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "TextConfig",
    "load_config",
    "load_structured",
    "save_config",
    "structured_from_yaml",
    "to_yaml",
    "from_yaml_string",
]
