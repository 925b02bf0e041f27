"""PyTorch checkpoint conversion (NVIDIA / DLE layouts): numerical parity with a PyTorch reference model,
exact round trips, layout detection, error reporting, whole-file conversion and the command-line tool."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import import_torch

torch = import_torch()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from taco_jax.config import ModelConfig  # noqa: E402
from taco_jax.convert import (  # noqa: E402
    CheckpointFileError,
    ConversionError,
    config_from_state_dict,
    detect_layout,
    flax_to_torch,
    taco_jax_to_torch,
    torch_to_flax,
    torch_to_taco_jax,
)
from taco_jax.model import build_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from torch_reference import Tacotron2 as TorchTacotron2  # noqa: E402
from torch_reference import TorchTacotron2Config  # noqa: E402

N_SYMBOLS = 148  # NVIDIA's English table, so the file conversion tests can use the real symbol table
TINY = dict(
    symbols_embedding_dim=16, encoder_embedding_dim=16, encoder_n_convolutions=2, encoder_kernel_size=5,
    prenet_dim=16, attention_rnn_dim=24, attention_dim=12, attention_location_n_filters=4,
    attention_location_kernel_size=7, decoder_rnn_dim=24, postnet_embedding_dim=16, postnet_kernel_size=5,
    postnet_n_convolutions=3,
)  # fmt: skip
PARITY_TOL = 1e-4  # max abs error relative to the output's max abs value


def tiny_torch_model(r: int = 1, seed: int = 0) -> TorchTacotron2:
    """A randomly initialised tiny reference model with non-trivial BatchNorm statistics and affine params."""
    torch.manual_seed(seed)
    model = TorchTacotron2(TorchTacotron2Config(n_symbols=N_SYMBOLS, n_frames_per_step=r, **TINY))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(123)
            elif isinstance(m, torch.nn.LSTMCell | torch.nn.LSTM):
                for name, p in m.named_parameters():
                    if name.startswith("bias"):
                        p.normal_(0.0, 0.3)
    model.eval()
    model.set_prenet_dropout("off")
    return model


def numpy_state_dict(model) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def taco_jax_model(report: dict):
    overrides = {k: v for k, v in report["config"].items() if k != "n_symbols"}
    # gate_threshold 2: sigmoid never exceeds it, so free-running decoding never stops early.
    cfg = ModelConfig(**overrides, gate_threshold=2.0, max_decoder_steps=1000)
    return build_model(cfg, report["config"]["n_symbols"], report["n_mels"])


def rel_err(got, ref) -> float:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-12))


def output_errors(ours, theirs) -> dict[str, float]:
    """Relative errors of taco_jax outputs (mel [B, T, C]) against the reference's (mel, mel_post [B, C, T],
    gate, alignments)."""
    t_mel, t_post, t_gate, t_align = (x.numpy() for x in theirs)
    return {
        "mel": rel_err(ours.mel, t_mel.transpose(0, 2, 1)),
        "mel_post": rel_err(ours.mel_post, t_post.transpose(0, 2, 1)),
        "gate": rel_err(ours.gate, t_gate),
        "alignments": rel_err(ours.alignments, t_align),
    }


def equal_length_batch(r: int, batch: int = 2, n: int = 9, frames: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    text = rng.integers(1, N_SYMBOLS, (batch, n)).astype(np.int64)
    mel = rng.normal(-4.0, 1.5, (batch, frames * r, 80)).astype(np.float32)  # taco_jax layout [B, T, n_mels]
    return text, np.full(batch, n, np.int64), mel, np.full(batch, frames * r, np.int64)


def teacher_forced_outputs(ref, model, variables, r: int):
    """The reference's and taco_jax's teacher-forced outputs on `equal_length_batch(r)` (eval mode), and the batch."""
    text, text_len, mel, mel_len = batch = equal_length_batch(r)
    with torch.no_grad():
        t_out = ref(torch.from_numpy(text), torch.from_numpy(text_len), torch.from_numpy(mel).transpose(1, 2),
                    torch.from_numpy(mel_len))  # fmt: skip
    j_out = jax.jit(lambda v, *a: model.apply(v, *a, train=False))(
        variables, text.astype(np.int32), text_len.astype(np.int32), mel, mel_len.astype(np.int32)
    )
    return j_out, t_out, batch


def assert_same_variables(want: dict, got: dict) -> None:
    """Same tree paths, dtypes and values, exactly."""
    want_flat = jax.tree_util.tree_flatten_with_path(want)[0]
    got_flat = jax.tree_util.tree_flatten_with_path(got)[0]
    assert [p for p, _ in want_flat] == [p for p, _ in got_flat]
    for (path, a), (_, b) in zip(want_flat, got_flat, strict=True):
        assert np.asarray(a).dtype == np.asarray(b).dtype, path
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("r", [1, 2])
def test_parity_with_pytorch_reference(r):
    """Teacher-forced and 50-step free-running outputs of the converted model match the PyTorch reference."""
    ref = tiny_torch_model(r, seed=r)
    params, batch_stats, report = torch_to_flax(numpy_state_dict(ref), "nvidia")
    assert report["config"]["n_frames_per_step"] == r and not report["missing"] and not report["unexpected"]
    model = taco_jax_model(report)
    variables = {"params": params, "batch_stats": batch_stats}

    j_out, t_out, (text, text_len, _, _) = teacher_forced_outputs(ref, model, variables, r)
    errs = output_errors(j_out, t_out)
    print(f"teacher-forced parity r={r}: {errs}")
    assert max(errs.values()) < PARITY_TOL, errs

    steps = 50
    with torch.no_grad():
        f_out = ref.inference(torch.from_numpy(text), steps, False)
    infer = jax.jit(
        lambda v, t, tl: model.apply(v, t, tl, max_decoder_steps=steps * r, prenet_dropout=False, method="infer")
    )
    j_inf = infer(variables, text.astype(np.int32), text_len.astype(np.int32))
    assert j_inf.mel.shape == (2, steps * r, 80) and np.all(np.asarray(j_inf.lengths) == steps * r)
    errs = output_errors(j_inf, f_out)
    print(f"free-running ({steps} steps) parity r={r}: {errs}")
    assert max(errs.values()) < PARITY_TOL, errs


def _jax_variables(r: int = 2):
    """Randomly initialised taco_jax variables with non-trivial batch statistics."""
    from taco_jax.train.state import init_variables

    cfg = ModelConfig(**TINY, n_frames_per_step=r)
    model = build_model(cfg, N_SYMBOLS, 80)
    variables = jax.device_get(init_variables(model, jax.random.PRNGKey(3), 80, r))
    rng = np.random.default_rng(5)
    variables["batch_stats"] = jax.tree.map(
        lambda x: rng.uniform(0.5, 2.0, x.shape).astype(np.float32), variables["batch_stats"]
    )
    return cfg, variables


@pytest.mark.parametrize("layout", ["nvidia", "dle"])
def test_jax_torch_jax_round_trip_is_exact(layout):
    cfg, variables = _jax_variables()
    sd = flax_to_torch(variables["params"], variables["batch_stats"], layout)
    prefix = "module." if layout == "dle" else ""
    assert all(k.startswith(prefix) for k in sd)
    # The export loads strictly into the reference model with the same dims.
    ref = TorchTacotron2(TorchTacotron2Config(n_symbols=N_SYMBOLS, n_frames_per_step=2, **TINY))
    ref.load_state_dict({k.removeprefix(prefix): torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    reloaded = {prefix + k: v for k, v in numpy_state_dict(ref).items()}
    params, batch_stats, report = torch_to_flax(reloaded, "auto")
    assert report["layout"] == layout
    assert_same_variables(
        {"params": variables["params"], "batch_stats": variables["batch_stats"]},
        {"params": params, "batch_stats": batch_stats},
    )


def test_dle_layout_detected_and_converted():
    sd = numpy_state_dict(tiny_torch_model(1))
    dle = {"module." + k: v for k, v in sd.items()}
    assert detect_layout(sd) == "nvidia"
    assert detect_layout(dle) == "dle"
    assert config_from_state_dict(dle, "dle") == config_from_state_dict(sd, "nvidia")
    p_nv, b_nv, _ = torch_to_flax(sd, "nvidia")
    p_dle, b_dle, report = torch_to_flax(dle)
    assert report["layout"] == "dle" and len(report["ignored"]) == 5  # the num_batches_tracked buffers
    jax.tree.map(np.testing.assert_array_equal, (p_nv, b_nv), (p_dle, b_dle))
    with pytest.raises(ConversionError, match="unexpected.*embedding.weight"):  # a stray unprefixed key
        torch_to_flax(dle | {"embedding.weight": sd["embedding.weight"]}, "dle")


def test_malformed_state_dict_names_every_bad_key():
    sd = numpy_state_dict(tiny_torch_model(1))
    renamed, removed, reshaped = (
        "decoder.gate_layer.linear_layer.bias",
        "postnet.convolutions.1.1.running_var",
        "decoder.attention_layer.v.linear_layer.weight",
    )
    bad = dict(sd)
    bad["decoder.gate_layer.linear.bias"] = bad.pop(renamed)
    del bad[removed]
    bad[reshaped] = np.zeros((1, 13), np.float32)
    with pytest.raises(ConversionError) as e:
        torch_to_flax(bad, "auto")
    msg = str(e.value)
    for key in (renamed, removed, reshaped, "decoder.gate_layer.linear.bias", "(1, 12)", "(1, 13)"):
        assert key in msg, (key, msg)
    # allow_missing tolerates missing/unexpected keys (reported), never a wrong shape
    with pytest.raises(ConversionError, match="shape"):
        torch_to_flax(bad, "auto", allow_missing=True)
    bad[reshaped] = sd[reshaped]
    params, _, report = torch_to_flax(bad, "auto", allow_missing=True)
    assert report["missing"] == [renamed, removed] and report["unexpected"] == ["decoder.gate_layer.linear.bias"]
    assert "bias" not in params["decoder"]["gate_layer"]
    # an anchor key the dims are read from
    with pytest.raises(ConversionError, match="decoder.decoder_rnn.weight_hh"):
        torch_to_flax({k: v for k, v in sd.items() if k != "decoder.decoder_rnn.weight_hh"}, "nvidia")
    # something that is not a Tacotron 2 at all
    with pytest.raises(ConversionError, match="unknown state_dict layout.*fc1.weight"):
        detect_layout({"fc1.weight": np.zeros((2, 2)), "fc1.bias": np.zeros(2)})


def test_file_conversion_end_to_end(tmp_path):
    import argparse

    from taco_jax.checkpoint import restore_model

    ref = tiny_torch_model(2)
    pt = tmp_path / "tacotron2_statedict.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in ref.state_dict().items()}, "iteration": 7}, pt)
    out = tmp_path / "converted"
    torch_to_taco_jax(pt, out)
    cfg, model, variables = restore_model(out)
    assert cfg.model.n_frames_per_step == 2 and cfg.model.decoder_rnn_dim == TINY["decoder_rnn_dim"]
    assert cfg.text.symbols == "nvidia_english_v1" and cfg.audio.n_mels == 80
    assert (out / "checkpoints" / "7").is_dir() and (out / "conversion_report.json").is_file()
    params, batch_stats, _ = torch_to_flax(numpy_state_dict(ref), "nvidia")
    jax.tree.map(np.testing.assert_array_equal, {"params": params, "batch_stats": batch_stats}, variables)
    with pytest.raises(CheckpointFileError, match="already contains checkpoints"):
        torch_to_taco_jax(pt, out)  # refuses to write over an existing checkpoint

    exported = tmp_path / "exported.pt"
    assert taco_jax_to_torch(out, exported) == exported
    back = TorchTacotron2(TorchTacotron2Config(n_symbols=N_SYMBOLS, n_frames_per_step=2, **TINY))
    back.load_state_dict(torch.load(exported, map_location="cpu", weights_only=True)["state_dict"], strict=True)
    for k, v in ref.state_dict().items():
        if k.endswith("bias_ih") or k.endswith("bias_ih_l0") or k.endswith("bias_ih_l0_reverse"):
            hh = k.replace("bias_ih", "bias_hh")
            torch.testing.assert_close(back.state_dict()[k], v + ref.state_dict()[hh], rtol=0, atol=0)
        elif "bias_hh" in k:
            assert not back.state_dict()[k].any()
        elif "num_batches_tracked" not in k:
            torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0)

    # a file that pickles non-tensor objects needs --trust-pickle
    pickled = tmp_path / "pickled.pt"
    torch.save({"state_dict": ref.state_dict(), "hparams": argparse.Namespace(n_frames_per_step=2)}, pickled)
    with pytest.raises(CheckpointFileError, match="--trust-pickle"):
        torch_to_taco_jax(pickled, tmp_path / "p1")
    assert not (tmp_path / "p1").exists()
    torch_to_taco_jax(pickled, tmp_path / "p2", trust_pickle=True)
    restore_model(tmp_path / "p2")


def _run_tool(*args: str) -> subprocess.CompletedProcess:
    tool = Path(__file__).resolve().parents[1] / "tools" / "convert_torch_ckpt.py"
    return subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True, timeout=300)


def test_cli_messages_and_exit_codes(tmp_path):
    """The script prints a one-line summary (exit 0), and a user error as `error: ...` with exit status 2."""
    pt, out = tmp_path / "tacotron2_statedict.pt", tmp_path / "converted"
    sd = tiny_torch_model(1).state_dict()
    torch.save({"state_dict": sd}, pt)
    done = _run_tool(str(pt), str(out))
    assert done.returncode == 0, done.stderr
    n_tensors = sum("num_batches_tracked" not in k for k in sd)  # BatchNorm step counters are ignored
    assert done.stdout.splitlines()[0] == f"converted {n_tensors} tensors (nvidia layout) -> {out}"
    again = _run_tool(str(pt), str(out))
    assert again.returncode == 2 and again.stderr.startswith("error: ") and "already contains" in again.stderr


def test_full_size_nvidia_state_dict_matches_published_shapes_and_config():
    """The reference at NVIDIA's defaults has the published 84 keys; the converter infers nvidia_ljspeech's dims."""
    from taco_jax.config import load_config
    from taco_jax.train.state import init_variables

    sd = numpy_state_dict(TorchTacotron2(TorchTacotron2Config()))
    assert len(sd) == 84
    published = {
        "embedding.weight": (148, 512),
        "encoder.convolutions.2.0.conv.weight": (512, 512, 5),
        "encoder.lstm.weight_ih_l0_reverse": (1024, 512),
        "encoder.lstm.weight_hh_l0": (1024, 256),
        "decoder.prenet.layers.0.linear_layer.weight": (256, 80),
        "decoder.attention_rnn.weight_ih": (4096, 768),
        "decoder.attention_layer.location_layer.location_conv.conv.weight": (32, 2, 31),
        "decoder.attention_layer.location_layer.location_dense.linear_layer.weight": (128, 32),
        "decoder.decoder_rnn.weight_ih": (4096, 1536),
        "decoder.linear_projection.linear_layer.weight": (80, 1536),
        "decoder.gate_layer.linear_layer.weight": (1, 1536),
        "postnet.convolutions.4.0.conv.weight": (80, 512, 5),
        "postnet.convolutions.4.1.num_batches_tracked": (),
    }
    assert {k: sd[k].shape for k in published} == published
    params, batch_stats, report = torch_to_flax(sd)
    assert report["layout"] == "nvidia" and len(report["converted"]) == 84 - 8 and len(report["ignored"]) == 8
    nvidia = load_config(str(Path(__file__).resolve().parents[1] / "configs" / "nvidia_ljspeech.yaml")).model
    assert {k: getattr(nvidia, k) for k in report["config"] if k != "n_symbols"} == {
        k: v for k, v in report["config"].items() if k != "n_symbols"
    }
    model = build_model(nvidia, 148, 80)
    shapes = jax.eval_shape(lambda: init_variables(model, jax.random.PRNGKey(0), 80, 1))
    got = {"params": params, "batch_stats": batch_stats}
    assert jax.tree.structure(shapes) == jax.tree.structure(got)
    assert jax.tree.leaves(jax.tree.map(lambda s, a: s.shape == a.shape, shapes, got)) == [True] * len(
        jax.tree.leaves(got)
    )


@pytest.mark.slow
def test_adam_state_converts_and_training_resumes(tiny_corpus, tmp_path):
    """NVIDIA train.py checkpoints carry Adam's state: its moments map like the weights (transposed, the fused
    LSTM bias taking bias_ih's), and the converted directory resumes training at the file's iteration."""
    import optax

    from taco_jax.config import load_config
    from taco_jax.convert import torch_adam_moments
    from taco_jax.train.loop import train

    ref = tiny_torch_model(1)
    ref.train()
    optimizer = torch.optim.Adam(ref.parameters(), lr=1e-3)
    text, text_len, mel, mel_len = equal_length_batch(1)
    target = torch.from_numpy(mel).transpose(1, 2)
    for _ in range(2):
        optimizer.zero_grad()
        out = ref(torch.from_numpy(text), torch.from_numpy(text_len), target, torch.from_numpy(mel_len))
        (((out[0] - target) ** 2).mean() + ((out[1] - target) ** 2).mean()).backward()
        optimizer.step()
    ref.eval()
    sd = numpy_state_dict(ref)
    opt_sd = optimizer.state_dict()
    names = [k for k, _ in ref.named_parameters()]
    mu, nu, step = torch_adam_moments(jax.tree.map(lambda x: x.numpy() if hasattr(x, "numpy") else x, opt_sd), sd)
    assert step == 2
    moment = lambda key, kind: opt_sd["state"][names.index(key)][kind].numpy()  # noqa: E731
    projection = moment("decoder.linear_projection.linear_layer.weight", "exp_avg")
    np.testing.assert_array_equal(mu["decoder"]["linear_projection"]["kernel"], projection.T)
    np.testing.assert_array_equal(
        nu["encoder"]["lstm_bwd"]["bias"], moment("encoder.lstm.bias_ih_l0_reverse", "exp_avg_sq")
    )
    np.testing.assert_array_equal(
        nu["postnet"]["conv_1"]["conv"]["kernel"],
        moment("postnet.convolutions.1.0.conv.weight", "exp_avg_sq").transpose(2, 1, 0),
    )
    with pytest.raises(ConversionError, match="covers"):
        torch_adam_moments({"state": {}, "param_groups": [{"params": [0, 1]}]}, sd)

    pt = tmp_path / "checkpoint_2.pt"
    torch.save({"iteration": 2, "state_dict": ref.state_dict(), "optimizer": opt_sd, "learning_rate": 1e-3}, pt)
    out_dir = tmp_path / "converted"
    torch_to_taco_jax(pt, out_dir)
    train_list, val_list = tiny_corpus
    overrides = [
        f"run.out_dir={tmp_path}", "run.name=converted", "run.max_steps=3", "run.eval_every=3", "run.log_every=1",
        "run.sample_sentences=[]", "run.progress_bar=false", "data.corpus=filelists",
        f"data.train_filelist={train_list}", f"data.val_filelist={val_list}", f"data.cache_dir={tmp_path}/mels",
        "data.batch_size=2", "data.buckets=[[40,132],[64,222]]",
    ]  # fmt: skip
    result = train(load_config(str(out_dir / "config.yaml"), overrides), resume=True, progress=False)
    assert result.step == 3  # resumed at the file's iteration 2, one more step
    adam = [
        s for s in jax.tree.leaves(result.state.opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
        if isinstance(s, optax.ScaleByAdamState)
    ]  # fmt: skip
    assert len(adam) == 1 and int(adam[0].count) == 3


NOT_CHECKPOINTS = {"random": bytes(range(256)) * 4, "empty": b"", "text": b"hello, this is a text file\n"}


@pytest.mark.parametrize("kind", NOT_CHECKPOINTS)
@pytest.mark.parametrize("trust", [False, True])
def test_a_file_that_is_not_a_checkpoint_is_named_as_such(tmp_path, kind, trust):
    """Bytes that are no torch file are 'not a PyTorch checkpoint', never a reason to turn off the pickle check."""
    path = tmp_path / "random.bin"
    path.write_bytes(NOT_CHECKPOINTS[kind])
    with pytest.raises(CheckpointFileError, match="not a PyTorch checkpoint") as err:
        torch_to_taco_jax(path, tmp_path / "out", trust_pickle=trust)
    assert "--trust-pickle" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli_on_random_bytes_exits_2_without_trust_pickle_advice(tmp_path):
    """The script's one-line error for random bytes, with and without --trust-pickle: no advice, no traceback."""
    path = tmp_path / "random.bin"
    path.write_bytes(NOT_CHECKPOINTS["random"])
    for extra in ([], ["--trust-pickle"]):
        done = _run_tool(str(path), str(tmp_path / "out"), *extra)
        assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr
        assert "not a PyTorch checkpoint" in done.stderr and "--trust-pickle" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_trusted_checkpoint_that_cannot_be_unpickled_is_a_clear_error(tmp_path, monkeypatch):
    """A real torch file pickling a class this Python cannot import fails with CheckpointFileError under
    --trust-pickle (not a raw ModuleNotFoundError)."""
    import types

    module = types.ModuleType("gone_module_for_test")
    exec("class Hparams:\n    pass", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": tiny_torch_model(1).state_dict(), "hparams": module.Hparams()}, path)
    monkeypatch.delitem(sys.modules, module.__name__)
    with pytest.raises(CheckpointFileError, match="--trust-pickle"):  # the file is a checkpoint: advice fits
        torch_to_taco_jax(path, tmp_path / "p1")
    with pytest.raises(CheckpointFileError, match="cannot unpickle this checkpoint even with --trust-pickle"):
        torch_to_taco_jax(path, tmp_path / "p2", trust_pickle=True)
