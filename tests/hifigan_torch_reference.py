"""A PyTorch HiFi-GAN (generator, then discriminators) written from the published architecture, for parity tests.

Channels-first as in PyTorch: mel [B, num_mels, T] -> wav [B, 1, T * hop]. The convs are wrapped in
`torch.nn.utils.weight_norm` (state_dict keys `<name>.weight_g`, `.weight_v`, `.bias`), as the published code
saves them; `wn=torch.nn.utils.parametrizations.weight_norm` gives newer PyTorch's spelling instead. `h` is the
published config.json contents (a dict). Weights of the upsampling and residual convs are drawn N(0, 0.01)
before weight norm wraps them (so g = ||v|| and the weight is the drawn one); conv_pre/conv_post keep
PyTorch's default init.

Only the tests import this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import weight_norm

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def _drawn(conv: nn.Module, std: float = 0.01) -> nn.Module:
    """`conv` with its weight redrawn N(0, std) (done before weight norm, so that it sticks)."""
    with torch.no_grad():
        conv.weight.normal_(0.0, std)
    return conv


def _res_conv(channels: int, kernel_size: int, dilation: int, wn) -> nn.Module:
    """A residual block's conv: channels -> channels, 'same' padding, weight drawn N(0, 0.01), then `wn`."""
    conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=get_padding(kernel_size, dilation))
    return wn(_drawn(conv))


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs, each with leaky ReLUs before the convs and a residual add."""

    def __init__(self, channels: int, kernel_size: int, dilation, wn=weight_norm):
        super().__init__()
        self.convs1 = nn.ModuleList(_res_conv(channels, kernel_size, d, wn) for d in dilation)
        self.convs2 = nn.ModuleList(_res_conv(channels, kernel_size, 1, wn) for _ in dilation)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    """Two dilated convs, each after a leaky ReLU, each with a residual add."""

    def __init__(self, channels: int, kernel_size: int, dilation, wn=weight_norm):
        super().__init__()
        self.convs = nn.ModuleList(_res_conv(channels, kernel_size, d, wn) for d in dilation)

    def forward(self, x):
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class Generator(nn.Module):
    """mel [B, num_mels, T] -> wav [B, 1, T * prod(upsample_rates)]."""

    def __init__(self, h: dict, wn=weight_norm):
        super().__init__()
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.num_upsamples = len(h["upsample_rates"])
        c0 = h["upsample_initial_channel"]
        self.conv_pre = wn(nn.Conv1d(h["num_mels"], c0, 7, 1, padding=3))
        block = ResBlock1 if str(h["resblock"]) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"], strict=True)):
            up = nn.ConvTranspose1d(c0 // 2**i, c0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            self.ups.append(wn(_drawn(up)))
        self.resblocks = nn.ModuleList()
        for i in range(self.num_upsamples):
            ch = c0 // 2 ** (i + 1)
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"], strict=True):
                self.resblocks.append(block(ch, k, d, wn))
        self.conv_post = wn(nn.Conv1d(ch, 1, 7, 1, padding=3))

    def forward(self, x):
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE))
            xs = None
            for j in range(self.num_kernels):
                y = self.resblocks[i * self.num_kernels + j](x)
                xs = y if xs is None else xs + y
            x = xs / self.num_kernels
        x = F.leaky_relu(x)  # PyTorch's default slope, 0.01: the published model has it here
        return torch.tanh(self.conv_post(x))

    def remove_weight_norm(self):
        """Fold every weight norm into a plain `weight` (old-style torch.nn.utils.weight_norm only)."""
        for m in self.modules():
            if hasattr(m, "weight_g"):
                torch.nn.utils.remove_weight_norm(m)


# --- discriminators (helper D) ---
# The published discriminators, losses and loss mel, channels-first as in PyTorch: a waveform is [B, 1, S].
# `MultiPeriodDiscriminator()` / `MultiScaleDiscriminator()` state_dicts have the published key names
# (weight_norm: weight_g / weight_v; the first scale's spectral_norm: weight_orig / weight_u / weight_v), so the
# `mpd` / `msd` entries of a `do_XXXXXXXX` file load into them with strict=True. Both forwards take (real, fake)
# and return (real logits, fake logits, real feature maps, fake feature maps), each a list per
# sub-discriminator; a sub-discriminator alone maps x [B, 1, S] -> (logits [B, n], feature maps).
# `channel_divisor` (default 1: published) divides every hidden conv's width, for small test models.

D_LRELU_SLOPE = 0.1
MPD_PERIODS = (2, 3, 5, 7, 11)


def _d_norm(module: nn.Module, spectral: bool) -> nn.Module:
    wrap = torch.nn.utils.spectral_norm if spectral else torch.nn.utils.weight_norm
    return wrap(module)


def _conv_stack(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor):
    """A sub-discriminator's body: (logits [B, n], feature maps: each conv's leaky-ReLU output, then conv_post's)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), D_LRELU_SLOPE)
        features.append(x)
    x = conv_post(x)
    features.append(x)
    return torch.flatten(x, 1, -1), features


class DiscriminatorP(nn.Module):
    """One period of the multi-period discriminator: the waveform folded to [B, 1, S / period, period]."""

    def __init__(self, period: int, use_spectral_norm: bool = False, channel_divisor: int = 1):
        super().__init__()
        self.period = period
        widths = [1] + [c // channel_divisor for c in (32, 128, 512, 1024)]
        top = 1024 // channel_divisor
        layers = [
            _d_norm(nn.Conv2d(c_in, c_out, (5, 1), (3, 1), padding=(2, 0)), use_spectral_norm)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        ]
        layers.append(_d_norm(nn.Conv2d(top, top, (5, 1), 1, padding=(2, 0)), use_spectral_norm))
        self.convs = nn.ModuleList(layers)
        self.conv_post = _d_norm(nn.Conv2d(top, 1, (3, 1), 1, padding=(1, 0)), use_spectral_norm)

    def forward(self, x: torch.Tensor):
        batch, channels, samples = x.shape
        if samples % self.period:
            n_pad = self.period - samples % self.period
            x = F.pad(x, (0, n_pad), mode="reflect")
            samples += n_pad
        x = x.view(batch, channels, samples // self.period, self.period)
        return _conv_stack(self.convs, self.conv_post, x)


class DiscriminatorS(nn.Module):
    """One scale of the multi-scale discriminator (grouped strided 1-D convs)."""

    # (in, out, kernel, stride, groups, padding)
    LAYERS = (
        (1, 128, 15, 1, 1, 7),
        (128, 128, 41, 2, 4, 20),
        (128, 256, 41, 2, 16, 20),
        (256, 512, 41, 4, 16, 20),
        (512, 1024, 41, 4, 16, 20),
        (1024, 1024, 41, 1, 16, 20),
        (1024, 1024, 5, 1, 1, 2),
    )

    def __init__(self, use_spectral_norm: bool = False, channel_divisor: int = 1):
        super().__init__()
        n = channel_divisor
        self.convs = nn.ModuleList(
            _d_norm(nn.Conv1d(max(c_in // n, 1), c_out // n, k, s, groups=g, padding=p), use_spectral_norm)
            for c_in, c_out, k, s, g, p in self.LAYERS
        )
        self.conv_post = _d_norm(nn.Conv1d(1024 // n, 1, 3, 1, padding=1), use_spectral_norm)

    def forward(self, x: torch.Tensor):
        return _conv_stack(self.convs, self.conv_post, x)


def _run_pair(discriminators, real, fake, prepare=None):
    real_logits, fake_logits, real_features, fake_features = [], [], [], []
    for i, d in enumerate(discriminators):
        if prepare is not None and i > 0:
            real, fake = prepare[i - 1](real), prepare[i - 1](fake)
        for x, logits, features in ((real, real_logits, real_features), (fake, fake_logits, fake_features)):
            out, fmap = d(x)
            logits.append(out)
            features.append(fmap)
    return real_logits, fake_logits, real_features, fake_features


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, channel_divisor: int = 1):
        super().__init__()
        self.discriminators = nn.ModuleList(DiscriminatorP(p, channel_divisor=channel_divisor) for p in MPD_PERIODS)

    def forward(self, real: torch.Tensor, fake: torch.Tensor):
        return _run_pair(self.discriminators, real, fake)


class MultiScaleDiscriminator(nn.Module):
    """Three scales: the waveform (spectral norm), then average-pooled by 2 twice (weight norm)."""

    def __init__(self, channel_divisor: int = 1):
        super().__init__()
        self.discriminators = nn.ModuleList(
            DiscriminatorS(use_spectral_norm=i == 0, channel_divisor=channel_divisor) for i in range(3)
        )
        self.meanpools = nn.ModuleList([nn.AvgPool1d(4, 2, padding=2), nn.AvgPool1d(4, 2, padding=2)])

    def forward(self, real: torch.Tensor, fake: torch.Tensor):
        return _run_pair(self.discriminators, real, fake, prepare=self.meanpools)


def feature_loss(real_features, fake_features) -> torch.Tensor:
    total = 0
    for real_maps, fake_maps in zip(real_features, fake_features, strict=True):
        for real, fake in zip(real_maps, fake_maps, strict=True):
            total = total + torch.mean(torch.abs(real - fake))
    return 2 * total


def discriminator_loss(real_logits, fake_logits):
    total, real_terms, fake_terms = 0, [], []
    for real, fake in zip(real_logits, fake_logits, strict=True):
        r, g = torch.mean((1 - real) ** 2), torch.mean(fake**2)
        total = total + r + g
        real_terms.append(r.item())
        fake_terms.append(g.item())
    return total, real_terms, fake_terms


def generator_loss(fake_logits):
    total, terms = 0, []
    for fake in fake_logits:
        term = torch.mean((1 - fake) ** 2)
        terms.append(term)
        total = total + term
    return total, terms


def hifigan_mel_spectrogram(y, n_fft, num_mels, sampling_rate, hop_size, win_size, fmin, fmax) -> torch.Tensor:
    """HiFi-GAN's training mel: y [B, S] -> log mel [B, num_mels, S // hop_size] (torch.stft, center=False).

    Computed in y's dtype (float64 input: a float32 FFT's round-off in quiet bins is ~1e-4 in the log)."""
    import librosa

    basis = librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax)
    basis = torch.from_numpy(basis).to(y.dtype)
    pad = (n_fft - hop_size) // 2
    y = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(win_size, dtype=y.dtype)
    spec = torch.stft(
        y, n_fft, hop_length=hop_size, win_length=win_size, window=window, center=False, normalized=False,
        onesided=True, return_complex=True,
    )  # fmt: skip
    spec = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    return torch.log(torch.clamp(torch.matmul(basis, spec), min=1e-5))
