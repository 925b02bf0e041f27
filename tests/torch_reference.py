"""A PyTorch Tacotron 2 with NVIDIA/tacotron2's architecture and exact state_dict key names and shapes.

Written from the specification (not copied) as a reference for checkpoint conversion and parity tests:
`Tacotron2(TorchTacotron2Config(...)).state_dict()` has the keys of NVIDIA's published
`tacotron2_statedict.pt` (84 entries at the default dims). Tensors are channels-first as in NVIDIA's code:
mel [B, n_mels, T]. Dims, layer counts and r (n_frames_per_step) come from the config, so tests can
build a tiny model.

Dropout follows NVIDIA: encoder convs, postnet convs and the two decoder LSTM hidden states only in train
mode; the prenet's dropout is controlled by `prenet_dropout_mode`: "always" (NVIDIA: also in eval mode and
at inference), "train" (train mode only) or "off".

Optional Tacotron2-New (T2N) parts, all off by default (the default config is exactly NVIDIA's), with T2N's
key names and shapes (spec: shared/reference/upstream-model.md sections 1.3-1.5, 1.8, 3.1-3.5):
* `use_mmi`: the MMI decoder head (`decoder.linear_projection.0`, `decoder.mel_layer.{0,3}`, a gate that reads the
  projection) and the CTC MI estimator `mi.*` ("head": `mi.layers.{0,3}`, "legacy": `mi.proj.0`, `mi.ctc_proj`).
* `gst`: global style tokens `gst.*` from a reference mel (the teacher mel in training), injected into the
  memory by `gst_proj` addition ("add", T2N HEAD) or by concatenation ("concat", legacy T2N: memory width
  encoder_embedding_dim + gst_token_embedding_size, so every decoder layer reading memory is wider).
* `tpse`: TPS-GST, the style predicted from the (detached) encoder output: `tps_gst.*` ("head", rescaled to
  norm <= 1) or `tpse_gst.*` ("legacy"). Its GRU is length-aware (T2N ran it over padding; not copied).
After `forward`, the model keeps `last_decoder_features` (MMI features d [B, mmi_dim, T/r] or None),
`last_gst_style` and `last_tpse_style` ([B, E] or None; the L1 target pair of TPS-GST training).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PRENET_DROPOUT_MODES = ("always", "train", "off")
MMI_LAYOUTS = ("head", "legacy")
GST_MODES = ("none", "add", "concat")
TPSE_LAYOUTS = ("none", "head", "legacy")
TPSE_PREFIX = {"head": "tps_gst", "legacy": "tpse_gst"}


@dataclass
class TorchTacotron2Config:
    """NVIDIA/tacotron2 hparams.py defaults."""

    n_symbols: int = 148
    symbols_embedding_dim: int = 512
    encoder_embedding_dim: int = 512
    encoder_n_convolutions: int = 3
    encoder_kernel_size: int = 5
    n_mels: int = 80
    n_frames_per_step: int = 1
    prenet_dim: int = 256
    attention_rnn_dim: int = 1024
    attention_dim: int = 128
    attention_location_n_filters: int = 32
    attention_location_kernel_size: int = 31
    decoder_rnn_dim: int = 1024
    postnet_embedding_dim: int = 512
    postnet_kernel_size: int = 5
    postnet_n_convolutions: int = 5
    encoder_dropout: float = 0.5
    prenet_dropout: float = 0.5
    prenet_dropout_mode: str = "always"
    attention_dropout: float = 0.1
    decoder_dropout: float = 0.1
    postnet_dropout: float = 0.5
    gate_threshold: float = 0.5
    max_decoder_steps: int = 1000
    # Tacotron2-New options (all off: NVIDIA).
    use_mmi: bool = False  # MMI decoder head + MI estimator `mi`
    mmi_layout: str = "head"  # "head" (mi.layers.*) | "legacy" (mi.proj.*, mi.ctc_proj.*)
    mmi_vocab: int = 49  # CTC output classes of the MI estimator, blank included
    mmi_dim: int = 1024  # width of the MMI projection d and of the MI estimator's hidden layer
    gst: str = "none"  # "none" | "add" (gst_proj, T2N HEAD) | "concat" (legacy T2N)
    gst_token_num: int = 8
    gst_num_heads: int = 4
    gst_token_embedding_size: int = 256
    gst_ref_filters: tuple = (32, 32, 64, 64, 128, 128)
    gst_ref_gru_size: int = 128
    tpse: str = "none"  # "none" | "head" (tps_gst.*) | "legacy" (tpse_gst.*); needs gst
    tpse_gru_size: int = 128  # per direction
    use_ddc: bool = False  # T2N's `decoder_secondary`: a second decoder with ddc_reduction_factor frames per step
    ddc_reduction_factor: int = 2

    def __post_init__(self):
        if self.mmi_layout not in MMI_LAYOUTS:
            raise ValueError(f"mmi_layout {self.mmi_layout!r}; expected one of {MMI_LAYOUTS}")
        if self.gst not in GST_MODES:
            raise ValueError(f"gst {self.gst!r}; expected one of {GST_MODES}")
        if self.tpse not in TPSE_LAYOUTS:
            raise ValueError(f"tpse {self.tpse!r}; expected one of {TPSE_LAYOUTS}")
        if self.tpse != "none" and self.gst == "none":
            raise ValueError("tpse needs gst")
        if self.gst != "none" and self.gst_token_embedding_size % self.gst_num_heads:
            raise ValueError(
                f"gst_token_embedding_size {self.gst_token_embedding_size} is not a multiple of "
                f"gst_num_heads {self.gst_num_heads}"
            )

    @property
    def memory_dim(self) -> int:
        """Width of the decoder's memory: the encoder's, plus the style embedding when GST is concatenated."""
        return self.encoder_embedding_dim + (self.gst_token_embedding_size if self.gst == "concat" else 0)


def _xavier(weight: torch.Tensor, gain: str) -> None:
    nn.init.xavier_uniform_(weight, gain=nn.init.calculate_gain(gain))


class LinearNorm(nn.Module):
    """Linear layer wrapped as `.linear_layer` (NVIDIA's key names). x [..., in] -> [..., out]."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True, gain: str = "linear"):
        super().__init__()
        self.linear_layer = nn.Linear(n_in, n_out, bias=bias)
        _xavier(self.linear_layer.weight, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class ConvNorm(nn.Module):
    """'Same' Conv1d wrapped as `.conv`. x [B, C_in, T] -> [B, C_out, T]."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, bias: bool = True, gain: str = "linear"):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.conv = nn.Conv1d(n_in, n_out, kernel_size, padding=(kernel_size - 1) // 2, bias=bias)
        _xavier(self.conv.weight, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _conv_bn(n_in: int, n_out: int, kernel_size: int, gain: str) -> nn.Sequential:
    # Sequential(conv, BN) gives the keys `<i>.0.conv.*` and `<i>.1.*` of NVIDIA's checkpoints.
    return nn.Sequential(ConvNorm(n_in, n_out, kernel_size, gain=gain), nn.BatchNorm1d(n_out))


class Encoder(nn.Module):
    """Embedded text [B, E, N] -> memory [B, N, encoder_embedding_dim] (zero at padded positions)."""

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.dropout = c.encoder_dropout
        self.convolutions = nn.ModuleList(
            _conv_bn(c.symbols_embedding_dim if i == 0 else c.encoder_embedding_dim, c.encoder_embedding_dim,
                     c.encoder_kernel_size, "relu")
            for i in range(c.encoder_n_convolutions)
        )  # fmt: skip
        self.lstm = nn.LSTM(
            c.encoder_embedding_dim, c.encoder_embedding_dim // 2, num_layers=1, batch_first=True, bidirectional=True
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        for conv in self.convolutions:
            x = F.dropout(F.relu(conv(x)), self.dropout, self.training)
        packed = pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[2])
        return out


class Prenet(nn.Module):
    """Two bias-free Linear + ReLU + dropout layers. x [..., in] -> [..., prenet_dim]."""

    def __init__(self, n_in: int, dim: int, dropout: float, mode: str):
        super().__init__()
        self.layers = nn.ModuleList([LinearNorm(n_in, dim, bias=False), LinearNorm(dim, dim, bias=False)])
        self.dropout = dropout
        self.mode = mode

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in PRENET_DROPOUT_MODES:
            raise ValueError(f"prenet dropout mode {mode!r}; expected one of {PRENET_DROPOUT_MODES}")
        self._mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = self._mode == "always" or (self._mode == "train" and self.training)
        for layer in self.layers:
            x = F.dropout(F.relu(layer(x)), self.dropout, training=active)
        return x


class LocationLayer(nn.Module):
    """[previous, cumulative] attention weights [B, 2, N] -> location features [B, N, attention_dim]."""

    def __init__(self, n_filters: int, kernel_size: int, attention_dim: int):
        super().__init__()
        self.location_conv = ConvNorm(2, n_filters, kernel_size, bias=False)
        self.location_dense = LinearNorm(n_filters, attention_dim, bias=False, gain="tanh")

    def forward(self, weights_cat: torch.Tensor) -> torch.Tensor:
        return self.location_dense(self.location_conv(weights_cat).transpose(1, 2))


class Attention(nn.Module):
    """Location-sensitive attention; padded memory positions get -inf energies."""

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.query_layer = LinearNorm(c.attention_rnn_dim, c.attention_dim, bias=False, gain="tanh")
        self.memory_layer = LinearNorm(c.memory_dim, c.attention_dim, bias=False, gain="tanh")
        self.v = LinearNorm(c.attention_dim, 1, bias=False)
        self.location_layer = LocationLayer(
            c.attention_location_n_filters, c.attention_location_kernel_size, c.attention_dim
        )

    def forward(
        self,
        query: torch.Tensor,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        weights_cat: torch.Tensor,
        pad_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, attention_rnn_dim], memory [B, N, M], processed_memory [B, N, A], weights_cat [B, 2, N],
        pad_mask [B, N] (True at padding) or None -> (context [B, M], weights [B, N])."""
        energies = self.v(
            torch.tanh(self.query_layer(query)[:, None] + self.location_layer(weights_cat) + processed_memory)
        ).squeeze(-1)
        if pad_mask is not None:
            energies = energies.masked_fill(pad_mask, float("-inf"))
        weights = F.softmax(energies, dim=1)
        return torch.bmm(weights[:, None], memory).squeeze(1), weights


class Decoder(nn.Module):
    """Autoregressive decoder: prenet, attention LSTMCell, attention, decoder LSTMCell, projections.

    NVIDIA head: frames and gate both read cat(h_dec, context). MMI head (`use_mmi`, T2N): d =
    Dropout(ReLU(linear_projection(cat(h_dec, context)))) [B, mmi_dim]; frames = mel_layer(d); gate = gate_layer(d).
    The memory width is `c.memory_dim` (wider with GST concatenation).
    """

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.c = c
        frame = c.n_mels * c.n_frames_per_step
        m = c.memory_dim
        self.prenet = Prenet(frame, c.prenet_dim, c.prenet_dropout, c.prenet_dropout_mode)
        self.attention_rnn = nn.LSTMCell(c.prenet_dim + m, c.attention_rnn_dim)
        self.attention_layer = Attention(c)
        self.decoder_rnn = nn.LSTMCell(c.attention_rnn_dim + m, c.decoder_rnn_dim)
        if c.use_mmi:
            # Sequential indices give T2N's keys: linear_projection.0.*, mel_layer.0.*, mel_layer.3.*.
            self.linear_projection = nn.Sequential(
                LinearNorm(c.decoder_rnn_dim + m, c.mmi_dim, gain="relu"), nn.ReLU(), nn.Dropout(0.5)
            )
            self.mel_layer = nn.Sequential(
                LinearNorm(c.mmi_dim, c.mmi_dim, gain="relu"), nn.ReLU(), nn.Dropout(0.5), LinearNorm(c.mmi_dim, frame)
            )
            self.gate_layer = LinearNorm(c.mmi_dim, 1, gain="sigmoid")
        else:
            self.linear_projection = LinearNorm(c.decoder_rnn_dim + m, frame)
            self.gate_layer = LinearNorm(c.decoder_rnn_dim + m, 1, gain="sigmoid")

    def _init_state(self, memory: torch.Tensor) -> dict[str, torch.Tensor]:
        b, n, m = memory.shape
        z = memory.new_zeros
        return {
            "att_h": z(b, self.c.attention_rnn_dim), "att_c": z(b, self.c.attention_rnn_dim),
            "dec_h": z(b, self.c.decoder_rnn_dim), "dec_c": z(b, self.c.decoder_rnn_dim),
            "weights": z(b, n), "weights_cum": z(b, n), "context": z(b, m),
        }  # fmt: skip

    def _step(self, s: dict, x: torch.Tensor, memory, processed_memory, pad_mask) -> tuple:
        """One decoder step on the prenet output x [B, prenet_dim]; updates s in place.
        Returns (frames [B, n_mels * r], gate logit [B, 1], weights [B, N], MMI features [B, mmi_dim] or None)."""
        s["att_h"], s["att_c"] = self.attention_rnn(torch.cat([x, s["context"]], -1), (s["att_h"], s["att_c"]))
        s["att_h"] = F.dropout(s["att_h"], self.c.attention_dropout, self.training)
        weights_cat = torch.stack([s["weights"], s["weights_cum"]], dim=1)
        s["context"], s["weights"] = self.attention_layer(s["att_h"], memory, processed_memory, weights_cat, pad_mask)
        s["weights_cum"] = s["weights_cum"] + s["weights"]
        s["dec_h"], s["dec_c"] = self.decoder_rnn(torch.cat([s["att_h"], s["context"]], -1), (s["dec_h"], s["dec_c"]))
        s["dec_h"] = F.dropout(s["dec_h"], self.c.decoder_dropout, self.training)
        features = torch.cat([s["dec_h"], s["context"]], -1)
        if self.c.use_mmi:
            d = self.linear_projection(features)
            return self.mel_layer(d), self.gate_layer(d), s["weights"], d
        return self.linear_projection(features), self.gate_layer(features), s["weights"], None

    def _outputs(self, frames: list, gates: list, weights: list, features: list) -> tuple:
        """-> mel [B, n_mels, S*r], gate logits [B, S], alignments [B, S, N], MMI features [B, mmi_dim, S] or None."""
        mel = torch.stack(frames, 1)  # [B, S, n_mels * r]
        b = mel.shape[0]
        mel = mel.reshape(b, -1, self.c.n_mels).transpose(1, 2)
        d = torch.stack(features, 2) if self.c.use_mmi else None
        return mel, torch.cat(gates, 1), torch.stack(weights, 1), d

    def forward(self, memory: torch.Tensor, mel: torch.Tensor, memory_lengths: torch.Tensor) -> tuple:
        """Teacher forcing. memory [B, N, M], mel [B, n_mels, T] (T a multiple of r), memory_lengths [B].
        Returns mel [B, n_mels, T], gate logits [B, T/r], alignments [B, T/r, N],
        MMI features [B, mmi_dim, T/r] (None without use_mmi)."""
        b, c, t = mel.shape
        r = self.c.n_frames_per_step
        frames = mel.transpose(1, 2).reshape(b, t // r, c * r).transpose(0, 1)  # [S, B, n_mels * r]
        inputs = self.prenet(torch.cat([frames.new_zeros(1, b, c * r), frames[:-1]], 0))  # go frame first
        n = memory.shape[1]
        pad_mask = torch.arange(n, device=memory.device)[None] >= memory_lengths[:, None]
        processed_memory = self.attention_layer.memory_layer(memory)
        state = self._init_state(memory)
        out = [self._step(state, x, memory, processed_memory, pad_mask) for x in inputs]
        return self._outputs(*zip(*out, strict=True))

    def inference(self, memory: torch.Tensor, n_steps: int | None = None, early_stop: bool = True) -> tuple:
        """Free-running decoding over unpadded memory [B, N, M] (no attention mask, as NVIDIA).

        Runs n_steps decoder steps (default max_decoder_steps / r); with early_stop it ends after the first
        step at which every item's sigmoid(gate) > gate_threshold. Returns mel [B, n_mels, S*r],
        gate logits [B, S], alignments [B, S, N], MMI features [B, mmi_dim, S] (None without use_mmi).
        """
        r = self.c.n_frames_per_step
        steps = n_steps if n_steps is not None else math.ceil(self.c.max_decoder_steps / r)
        b = memory.shape[0]
        processed_memory = self.attention_layer.memory_layer(memory)
        state = self._init_state(memory)
        x = memory.new_zeros(b, self.c.n_mels * r)
        frames, gates, weights, features = [], [], [], []
        for _ in range(steps):
            frame, gate, w, d = self._step(state, self.prenet(x), memory, processed_memory, None)
            frames.append(frame)
            gates.append(gate)
            weights.append(w)
            features.append(d)
            if early_stop and bool((torch.sigmoid(gate) > self.c.gate_threshold).all()):
                break
            x = frame
        return self._outputs(frames, gates, weights, features)


class Postnet(nn.Module):
    """Residual refinement: mel [B, n_mels, T] -> correction [B, n_mels, T]."""

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.dropout = c.postnet_dropout
        n = c.postnet_n_convolutions
        dims = [c.n_mels] + [c.postnet_embedding_dim] * (n - 1) + [c.n_mels]
        self.convolutions = nn.ModuleList(
            _conv_bn(dims[i], dims[i + 1], c.postnet_kernel_size, "tanh" if i < n - 1 else "linear") for i in range(n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.convolutions) - 1
        for i, conv in enumerate(self.convolutions):
            x = conv(x)
            x = F.dropout(torch.tanh(x) if i < last else x, self.dropout, self.training)
        return x


class MIEstimator(nn.Module):
    """T2N's CTC MI estimator: MMI features d [..., mmi_dim] -> logits [..., mmi_vocab] (no log-softmax).

    Layout "head": `layers` = Sequential(Linear relu, ReLU, Dropout(0.5), Linear); "legacy": `proj` =
    Sequential(Linear relu, ReLU, Dropout(0.5)) then `ctc_proj`. Only its parameters matter for conversion.
    """

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.layout = c.mmi_layout
        hidden = (LinearNorm(c.mmi_dim, c.mmi_dim, gain="relu"), nn.ReLU(), nn.Dropout(0.5))
        if self.layout == "head":
            self.layers = nn.Sequential(*hidden, LinearNorm(c.mmi_dim, c.mmi_vocab))
        else:
            self.proj = nn.Sequential(*hidden)
            self.ctc_proj = LinearNorm(c.mmi_dim, c.mmi_vocab)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return self.layers(d) if self.layout == "head" else self.ctc_proj(self.proj(d))


def _ref_conv_size(n: int, n_convs: int) -> int:
    """Output size of n_convs 3-tap, stride-2, pad-1 convolutions over n positions."""
    for _ in range(n_convs):
        n = (n - 3 + 2) // 2 + 1
    return n


class ReferenceEncoder(nn.Module):
    """GST reference encoder: mel [B, n_mels, T], lengths [B] or None -> final GRU state [B, ref_gru_size].

    The channels-first mel buffer is *reshaped* (not transposed) to a [B, 1, T, n_mels] image, as T2N/Mellotron
    did (trained checkpoints depend on it), then n x (Conv2d 3x3 stride 2 + BN2d + ReLU), [B, C, T', F'] ->
    [B, T', C*F'] (index c * F' + f), GRU. With lengths the GRU is packed to ceil(len / 2^n) (at least 1) steps;
    without, it runs over all T' steps.
    """

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.n_mels = c.n_mels
        filters = [1, *c.gst_ref_filters]
        self.convs = nn.ModuleList(
            nn.Conv2d(filters[i], filters[i + 1], 3, stride=2, padding=1) for i in range(len(c.gst_ref_filters))
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(f) for f in c.gst_ref_filters)
        width = filters[-1] * _ref_conv_size(c.n_mels, len(c.gst_ref_filters))
        self.gru = nn.GRU(width, c.gst_ref_gru_size, batch_first=True)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        b = mel.shape[0]
        x = mel.reshape(b, 1, -1, self.n_mels)  # T2N's .view: reinterpret [n_mels, T] as [T, n_mels]
        for conv, bn in zip(self.convs, self.bns, strict=True):
            x = F.relu(bn(conv(x)))
        x = x.transpose(1, 2)  # [B, T', C, F']
        x = x.reshape(b, x.shape[1], -1)
        if lengths is not None:
            stride = 2 ** len(self.convs)
            steps = torch.clamp(torch.div(lengths + stride - 1, stride, rounding_mode="floor"), min=1)
            x = pack_padded_sequence(x, steps.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(x)  # h [1, B, H] in input order (PyTorch undoes the packing sort)
        return h[0]


class MultiHeadAttention(nn.Module):
    """GST's attention: query [B, Tq, Dq], keys [B, Tk, Dk] -> [B, Tq, num_units].

    Bias-free W_query/W_key/W_value; num_heads chunks of the last dim, scores QK^T / sqrt(key_dim) softmaxed over
    the keys, heads concatenated in order.
    """

    def __init__(self, query_dim: int, key_dim: int, num_units: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.W_query = nn.Linear(query_dim, num_units, bias=False)
        self.W_key = nn.Linear(key_dim, num_units, bias=False)
        self.W_value = nn.Linear(key_dim, num_units, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        h = self.num_heads

        def split(x: torch.Tensor) -> torch.Tensor:  # [B, T, U] -> [B, h, T, U / h]
            return x.reshape(x.shape[0], x.shape[1], h, -1).transpose(1, 2)

        q, k, v = split(self.W_query(query)), split(self.W_key(keys)), split(self.W_value(keys))
        scores = F.softmax(q @ k.transpose(2, 3) / math.sqrt(self.key_dim), dim=-1)
        out = scores @ v  # [B, h, Tq, U / h]
        return out.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)


class STL(nn.Module):
    """Style token layer: reference embedding [B, ref_gru_size] -> style [B, E] (attention over tanh(embed))."""

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        d_k = c.gst_token_embedding_size // c.gst_num_heads
        self.embed = nn.Parameter(torch.empty(c.gst_token_num, d_k))
        nn.init.normal_(self.embed, mean=0.0, std=0.5)
        self.attention = MultiHeadAttention(c.gst_ref_gru_size, d_k, c.gst_token_embedding_size, c.gst_num_heads)

    def forward(self, ref: torch.Tensor) -> torch.Tensor:
        keys = torch.tanh(self.embed)[None].expand(ref.shape[0], -1, -1)  # [B, token_num, d_k]
        return self.attention(ref[:, None], keys)[:, 0]

    def token_style(self, token: torch.Tensor) -> torch.Tensor:
        """The style of single tokens, token [B] int64 -> [B, E]: attention over one key returns its value."""
        return self.attention.W_value(torch.tanh(self.embed[token]))


class GST(nn.Module):
    """Global style tokens: reference mel [B, n_mels, T], lengths [B] or None -> style [B, E]."""

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.encoder = ReferenceEncoder(c)
        self.stl = STL(c)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.stl(self.encoder(mel, lengths))


class TPSEGST(nn.Module):
    """TPS-GST: encoder output [B, N, encoder_embedding_dim] (detached), text lengths [B] -> style [B, E].

    Conv1d(k=3, no bias) + BN1d + ReLU, a bidirectional GRU packed to the text lengths (final states forward ||
    backward), tanh(Linear). Layout "head" rescales y by min(c, 1) / c with c = clamp(|y|, 1e-8, 5); "legacy"
    does not. Registration order (gru, inp, linear) follows T2N's state_dict.
    """

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.rescale = c.tpse == "head"
        width = 2 * c.tpse_gru_size
        self.gru = nn.GRU(width, c.tpse_gru_size, batch_first=True, bidirectional=True)
        self.inp = nn.Sequential(
            nn.Conv1d(c.encoder_embedding_dim, width, 3, padding=1, bias=False), nn.BatchNorm1d(width)
        )
        self.linear = nn.Linear(width, c.gst_token_embedding_size)

    def forward(self, memory: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.inp(memory.detach().transpose(1, 2))).transpose(1, 2)  # [B, N, 2H]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)  # [2, B, H]: forward final, backward final
        y = torch.tanh(self.linear(torch.cat([h[0], h[1]], -1)))
        if self.rescale:
            norm = torch.clamp(y.norm(dim=-1, keepdim=True), 1e-8, 5.0)
            y = y / norm * torch.clamp(norm, max=1.0)
        return y


class Tacotron2(nn.Module):
    """NVIDIA Tacotron 2 (optionally with T2N's MMI head, GST and TPS-GST). text [B, N] int64 (ids of the
    148-symbol table at the default config)."""

    def __init__(self, c: TorchTacotron2Config | None = None):
        super().__init__()
        c = c or TorchTacotron2Config()
        self.c = c
        self.embedding = nn.Embedding(c.n_symbols, c.symbols_embedding_dim)
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (c.n_symbols + c.symbols_embedding_dim))
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        self.postnet = Postnet(c)
        # T2N registration order: mi, gst, gst_proj, then the TPS-GST module.
        if c.use_mmi:
            self.mi = MIEstimator(c)
        if c.gst != "none":
            self.gst = GST(c)
            if c.gst == "add":
                self.gst_proj = LinearNorm(c.gst_token_embedding_size, c.encoder_embedding_dim)
            if c.tpse != "none":
                self.add_module(TPSE_PREFIX[c.tpse], TPSEGST(c))
        if c.use_ddc:  # parameters only: the reference never runs it
            self.decoder_secondary = Decoder(dataclasses.replace(c, n_frames_per_step=c.ddc_reduction_factor))
        self.last_decoder_features: torch.Tensor | None = None
        self.last_gst_style: torch.Tensor | None = None
        self.last_tpse_style: torch.Tensor | None = None
        self.last_inference_style: torch.Tensor | None = None

    @property
    def tpse_module(self) -> TPSEGST | None:
        return getattr(self, TPSE_PREFIX[self.c.tpse]) if self.c.tpse != "none" else None

    def set_prenet_dropout(self, mode: str) -> None:
        """ "always" (NVIDIA), "train" or "off"."""
        self.decoder.prenet.mode = mode

    def _with_style(self, memory: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Encoder output [B, N, encoder_embedding_dim] + style [B, E] -> decoder memory [B, N, memory_dim]
        (every position, padding included; attention masks padding)."""
        if self.c.gst == "add":
            return memory + self.gst_proj(style)[:, None]
        return torch.cat([memory, style[:, None].expand(-1, memory.shape[1], -1)], -1)

    def forward(
        self,
        text: torch.Tensor,
        text_len: torch.Tensor,
        mel: torch.Tensor,
        mel_len: torch.Tensor,
        reference: torch.Tensor | None = None,
        reference_len: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced forward. text [B, N], text_len [B], mel [B, n_mels, T] (T a multiple of r), mel_len [B].

        Returns (mel [B, n_mels, T], mel_post [B, n_mels, T], gate logits [B, T/r], alignments [B, T/r, N]);
        frames past mel_len are set to 0 and gate steps past them to 1e3 (NVIDIA's output masking).
        With GST the style is the GST of `reference` [B, n_mels, T_ref] (lengths reference_len, default all
        frames), by default of the teacher mel (mel, mel_len); the memory always uses the GST style (TPS-GST
        only predicts it: `last_tpse_style` vs `last_gst_style`). Also sets `last_decoder_features`.
        """
        c = self.c
        memory = self.encoder(self.embedding(text).transpose(1, 2), text_len)
        self.last_gst_style = self.last_tpse_style = None
        if c.gst != "none":
            if reference is None:
                reference, reference_len = mel, mel_len
            elif reference_len is None:
                reference_len = torch.full((reference.shape[0],), reference.shape[2], dtype=torch.long)
            self.last_gst_style = self.gst(reference, reference_len)
            if c.tpse != "none":
                self.last_tpse_style = self.tpse_module(memory, text_len)
            memory = self._with_style(memory, self.last_gst_style)
        mel_out, gate, alignments, self.last_decoder_features = self.decoder(memory, mel, text_len)
        mel_post = mel_out + self.postnet(mel_out)
        r = c.n_frames_per_step
        t = mel.shape[2]
        frame_pad = torch.arange(t, device=mel.device)[None] >= mel_len[:, None]  # [B, T]
        step_pad = torch.arange(t // r, device=mel.device)[None] * r >= mel_len[:, None]  # [B, T/r]
        mel_out = mel_out.masked_fill(frame_pad[:, None], 0.0)
        mel_post = mel_post.masked_fill(frame_pad[:, None], 0.0)
        return mel_out, mel_post, gate.masked_fill(step_pad, 1e3), alignments

    def inference_style(
        self,
        memory: torch.Tensor,
        lengths: torch.Tensor,
        reference: torch.Tensor | None = None,
        token: int | torch.Tensor | None = None,
        scale: float = 1.0,
    ) -> torch.Tensor:
        """Style [B, E] for inference, in order of precedence: the GST of `reference` [1 or B, n_mels, T] (all
        frames), the style token `token` (int or [B]) alone, TPS-GST of the encoder output; each times scale.
        Zeros (no style) when none applies."""
        b = memory.shape[0]
        if reference is not None:
            style = self.gst(reference).expand(b, -1)
        elif token is not None:
            idx = torch.as_tensor(token, dtype=torch.long, device=memory.device).reshape(-1).expand(b)
            style = self.gst.stl.token_style(idx)
        elif self.c.tpse != "none":
            style = self.tpse_module(memory, lengths)
        else:
            return memory.new_zeros(b, self.c.gst_token_embedding_size)
        return style * scale

    @torch.no_grad()
    def inference(
        self,
        text: torch.Tensor,
        n_steps: int | None = None,
        early_stop: bool = True,
        reference: torch.Tensor | None = None,
        token: int | torch.Tensor | None = None,
        scale: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Free-running synthesis from unpadded text [B, N] (NVIDIA uses B = 1).

        Returns (mel [B, n_mels, S*r], mel_post, gate logits [B, S], alignments [B, S, N]); see
        `Decoder.inference` for n_steps / early_stop. With GST the memory gets the style of `inference_style`
        (reference / token / TPS-GST / none, times scale), injected as in training. Sets
        `last_decoder_features` and `last_inference_style` (the style used, or None without GST).
        """
        lengths = torch.full((text.shape[0],), text.shape[1], dtype=torch.long)
        memory = self.encoder(self.embedding(text).transpose(1, 2), lengths)
        self.last_inference_style = None
        if self.c.gst != "none":
            self.last_inference_style = self.inference_style(memory, lengths, reference, token, scale)
            memory = self._with_style(memory, self.last_inference_style)
        elif reference is not None or token is not None:
            raise ValueError("a style reference or token needs a model with GST (config gst != 'none')")
        mel, gate, alignments, self.last_decoder_features = self.decoder.inference(memory, n_steps, early_stop)
        return mel, mel + self.postnet(mel), gate, alignments
