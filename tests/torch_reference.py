"""A PyTorch Tacotron 2 with NVIDIA/tacotron2's architecture and exact state_dict key names and shapes.

Written from the specification (not copied) as a reference for checkpoint conversion and parity tests:
`Tacotron2(TorchTacotron2Config(...)).state_dict()` has the keys of NVIDIA's published
`tacotron2_statedict.pt` (84 entries at the default dims). Tensors are channels-first as in NVIDIA's code:
mel [B, n_mels, T]. Dims, layer counts and r (n_frames_per_step) come from the config, so tests can
build a tiny model.

Dropout follows NVIDIA: encoder convs, postnet convs and the two decoder LSTM hidden states only in train
mode; the prenet's dropout is controlled by `prenet_dropout_mode`: "always" (NVIDIA: also in eval mode and
at inference), "train" (train mode only) or "off".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PRENET_DROPOUT_MODES = ("always", "train", "off")


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
        self.memory_layer = LinearNorm(c.encoder_embedding_dim, c.attention_dim, bias=False, gain="tanh")
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
    """Autoregressive decoder: prenet, attention LSTMCell, attention, decoder LSTMCell, projections."""

    def __init__(self, c: TorchTacotron2Config):
        super().__init__()
        self.c = c
        frame = c.n_mels * c.n_frames_per_step
        m = c.encoder_embedding_dim
        self.prenet = Prenet(frame, c.prenet_dim, c.prenet_dropout, c.prenet_dropout_mode)
        self.attention_rnn = nn.LSTMCell(c.prenet_dim + m, c.attention_rnn_dim)
        self.attention_layer = Attention(c)
        self.decoder_rnn = nn.LSTMCell(c.attention_rnn_dim + m, c.decoder_rnn_dim)
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
        Returns (frames [B, n_mels * r], gate logit [B, 1], weights [B, N])."""
        s["att_h"], s["att_c"] = self.attention_rnn(torch.cat([x, s["context"]], -1), (s["att_h"], s["att_c"]))
        s["att_h"] = F.dropout(s["att_h"], self.c.attention_dropout, self.training)
        weights_cat = torch.stack([s["weights"], s["weights_cum"]], dim=1)
        s["context"], s["weights"] = self.attention_layer(s["att_h"], memory, processed_memory, weights_cat, pad_mask)
        s["weights_cum"] = s["weights_cum"] + s["weights"]
        s["dec_h"], s["dec_c"] = self.decoder_rnn(torch.cat([s["att_h"], s["context"]], -1), (s["dec_h"], s["dec_c"]))
        s["dec_h"] = F.dropout(s["dec_h"], self.c.decoder_dropout, self.training)
        features = torch.cat([s["dec_h"], s["context"]], -1)
        return self.linear_projection(features), self.gate_layer(features), s["weights"]

    def _outputs(self, frames: list, gates: list, weights: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mel = torch.stack(frames, 1)  # [B, S, n_mels * r]
        b = mel.shape[0]
        mel = mel.reshape(b, -1, self.c.n_mels).transpose(1, 2)
        return mel, torch.cat(gates, 1), torch.stack(weights, 1)

    def forward(
        self, memory: torch.Tensor, mel: torch.Tensor, memory_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing. memory [B, N, M], mel [B, n_mels, T] (T a multiple of r), memory_lengths [B].
        Returns mel [B, n_mels, T], gate logits [B, T/r], alignments [B, T/r, N]."""
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

    def inference(
        self, memory: torch.Tensor, n_steps: int | None = None, early_stop: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Free-running decoding over unpadded memory [B, N, M] (no attention mask, as NVIDIA).

        Runs n_steps decoder steps (default max_decoder_steps / r); with early_stop it ends after the first
        step at which every item's sigmoid(gate) > gate_threshold. Returns mel [B, n_mels, S*r],
        gate logits [B, S], alignments [B, S, N].
        """
        r = self.c.n_frames_per_step
        steps = n_steps if n_steps is not None else math.ceil(self.c.max_decoder_steps / r)
        b = memory.shape[0]
        processed_memory = self.attention_layer.memory_layer(memory)
        state = self._init_state(memory)
        x = memory.new_zeros(b, self.c.n_mels * r)
        frames, gates, weights = [], [], []
        for _ in range(steps):
            frame, gate, w = self._step(state, self.prenet(x), memory, processed_memory, None)
            frames.append(frame)
            gates.append(gate)
            weights.append(w)
            if early_stop and bool((torch.sigmoid(gate) > self.c.gate_threshold).all()):
                break
            x = frame
        return self._outputs(frames, gates, weights)


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


class Tacotron2(nn.Module):
    """NVIDIA Tacotron 2. text [B, N] int64 (ids of the 148-symbol table at the default config)."""

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

    def set_prenet_dropout(self, mode: str) -> None:
        """ "always" (NVIDIA), "train" or "off"."""
        self.decoder.prenet.mode = mode

    def forward(
        self, text: torch.Tensor, text_len: torch.Tensor, mel: torch.Tensor, mel_len: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced forward. text [B, N], text_len [B], mel [B, n_mels, T] (T a multiple of r), mel_len [B].

        Returns (mel [B, n_mels, T], mel_post [B, n_mels, T], gate logits [B, T/r], alignments [B, T/r, N]);
        frames past mel_len are set to 0 and gate steps past them to 1e3 (NVIDIA's output masking).
        """
        memory = self.encoder(self.embedding(text).transpose(1, 2), text_len)
        mel_out, gate, alignments = self.decoder(memory, mel, text_len)
        mel_post = mel_out + self.postnet(mel_out)
        r = self.c.n_frames_per_step
        t = mel.shape[2]
        frame_pad = torch.arange(t, device=mel.device)[None] >= mel_len[:, None]  # [B, T]
        step_pad = torch.arange(t // r, device=mel.device)[None] * r >= mel_len[:, None]  # [B, T/r]
        mel_out = mel_out.masked_fill(frame_pad[:, None], 0.0)
        mel_post = mel_post.masked_fill(frame_pad[:, None], 0.0)
        return mel_out, mel_post, gate.masked_fill(step_pad, 1e3), alignments

    @torch.no_grad()
    def inference(
        self, text: torch.Tensor, n_steps: int | None = None, early_stop: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Free-running synthesis from unpadded text [B, N] (NVIDIA uses B = 1).

        Returns (mel [B, n_mels, S*r], mel_post, gate logits [B, S], alignments [B, S, N]); see
        `Decoder.inference` for n_steps / early_stop.
        """
        lengths = torch.full((text.shape[0],), text.shape[1], dtype=torch.long)
        memory = self.encoder(self.embedding(text).transpose(1, 2), lengths)
        mel, gate, alignments = self.decoder.inference(memory, n_steps, early_stop)
        return mel, mel + self.postnet(mel), gate, alignments
