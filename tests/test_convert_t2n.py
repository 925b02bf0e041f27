"""Tacotron2-New checkpoints (T2N HEAD: MMI head + GST added through gst_proj; legacy: GST concatenated,
TPS-GST, legacy MI names): numerical parity with a PyTorch reference written from the spec, exact round
trips, layout detection and error reporting."""

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
    detect_layout,
    flax_to_torch,
    torch_to_flax,
    torch_to_taco_jax,
)
from taco_jax.model import build_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_convert_torch import (  # noqa: E402
    N_SYMBOLS,
    PARITY_TOL,
    TINY,
    assert_same_variables,
    numpy_state_dict,
    output_errors,
    rel_err,
    taco_jax_model,
    teacher_forced_outputs,
)
from torch_reference import Tacotron2 as TorchTacotron2  # noqa: E402
from torch_reference import TorchTacotron2Config  # noqa: E402

STYLE = dict(gst_token_num=5, gst_num_heads=4, gst_token_embedding_size=16, gst_ref_filters=(4, 4, 8, 8, 8, 8),
             gst_ref_gru_size=8)  # fmt: skip
# Torch reference options per layout; mmi_vocab counts the blank.
LAYOUT_OPTIONS = {
    "t2n": dict(use_mmi=True, mmi_layout="head", mmi_vocab=N_SYMBOLS, mmi_dim=24, gst="add", **STYLE),
    "t2n-ddc": dict(
        use_mmi=True,
        mmi_layout="head",
        mmi_vocab=N_SYMBOLS,
        mmi_dim=24,
        gst="add",
        use_ddc=True,
        ddc_reduction_factor=4,
        **STYLE,
    ),  # fmt: skip
    "t2n-legacy": dict(
        use_mmi=True,
        mmi_layout="legacy",
        mmi_vocab=N_SYMBOLS + 1,
        mmi_dim=24,
        gst="concat",
        tpse="legacy",
        tpse_gru_size=8,
        **STYLE,
    ),  # fmt: skip
}


def t2n_torch_model(layout: str, r: int, seed: int = 0) -> TorchTacotron2:
    """A randomly initialised tiny T2N reference with non-trivial BatchNorm statistics and GRU/LSTM biases."""
    torch.manual_seed(seed)
    model = TorchTacotron2(TorchTacotron2Config(n_symbols=N_SYMBOLS, n_frames_per_step=r, **TINY,
                                                **LAYOUT_OPTIONS[layout]))  # fmt: skip
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, torch.nn.LSTMCell | torch.nn.LSTM | torch.nn.GRU):
                for name, p in m.named_parameters():
                    if name.startswith("bias"):
                        p.normal_(0.0, 0.3)
    model.eval()
    model.set_prenet_dropout("off")
    return model


def _torch_style_errors(j_out, ref) -> dict[str, float]:
    errs = {"gst_style": rel_err(j_out.gst_style, ref.last_gst_style.numpy())}
    if ref.last_tpse_style is not None:
        errs["tpse_style"] = rel_err(j_out.tpse_style, ref.last_tpse_style.numpy())
    return errs


@pytest.mark.parametrize("layout, r", [("t2n", 1), ("t2n-legacy", 2)])
def test_parity_with_pytorch_reference(layout, r):
    """Teacher-forced outputs (and styles) and 50 free-running steps of the converted model match the
    reference: HEAD with its reference style, legacy with TPS-GST's text-predicted style and with a token."""
    ref = t2n_torch_model(layout, r, seed=r)
    sd = numpy_state_dict(ref)
    assert detect_layout(sd) == layout
    params, batch_stats, report = torch_to_flax(sd)
    assert report["layout"] == layout and not report["missing"] and not report["unexpected"]
    model = taco_jax_model(report)
    variables = {"params": params, "batch_stats": batch_stats}

    j_out, t_out, (text, text_len, mel, _) = teacher_forced_outputs(ref, model, variables, r)
    errs = output_errors(j_out, t_out) | _torch_style_errors(j_out, ref)
    print(f"teacher-forced parity {layout}: {errs}")
    assert max(errs.values()) < PARITY_TOL, errs

    steps = 50
    styles = {"t2n": [{"reference": mel[:1]}], "t2n-legacy": [{}, {"style_token": 3, "style_scale": 0.7}]}[layout]
    for style in styles:
        torch_style = {"reference": torch.from_numpy(mel[:1]).transpose(1, 2)} if "reference" in style else {}
        if "style_token" in style:
            torch_style = {"token": style["style_token"], "scale": style["style_scale"]}
        with torch.no_grad():
            f_out = ref.inference(torch.from_numpy(text), steps, False, **torch_style)
        j_inf = model.apply(variables, text.astype(np.int32), text_len.astype(np.int32), max_decoder_steps=steps * r,
                            prenet_dropout=False, method="infer", **style)  # fmt: skip
        errs = output_errors(j_inf, f_out)
        print(f"free-running ({steps} steps) parity {layout} {sorted(style)}: {errs}")
        assert max(errs.values()) < PARITY_TOL, (style, errs)


def _jax_t2n_variables(layout: str, r: int = 2):
    from taco_jax.train.state import init_variables

    o = LAYOUT_OPTIONS[layout]
    cfg = ModelConfig(
        **TINY, n_frames_per_step=r, mmi=True, mmi_dim=o["mmi_dim"], mmi_vocab=o["mmi_vocab"],
        mmi_blank="last" if layout == "t2n-legacy" else "first", gst=o["gst"], tpse=o.get("tpse", "none") != "none",
        ddc=o.get("use_ddc", False), ddc_reduction_factor=o.get("ddc_reduction_factor", 2),
        tpse_gru_size=o.get("tpse_gru_size", 128), **{**STYLE, "gst_ref_filters": list(STYLE["gst_ref_filters"])},
    )  # fmt: skip
    model = build_model(cfg, N_SYMBOLS, 80)
    variables = jax.device_get(init_variables(model, jax.random.PRNGKey(3), 80, r))
    rng = np.random.default_rng(5)
    variables["batch_stats"] = jax.tree.map(
        lambda x: rng.uniform(0.5, 2.0, x.shape).astype(np.float32), variables["batch_stats"]
    )
    return variables


@pytest.mark.parametrize("layout", ["t2n", "t2n-legacy", "t2n-ddc"])
def test_jax_torch_jax_round_trip_is_exact(layout):
    variables = _jax_t2n_variables(layout)
    sd = flax_to_torch(variables["params"], variables["batch_stats"], layout.removesuffix("-ddc"))
    ref = TorchTacotron2(TorchTacotron2Config(n_symbols=N_SYMBOLS, n_frames_per_step=2, **TINY,
                                              **LAYOUT_OPTIONS[layout]))  # fmt: skip
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    params, batch_stats, report = torch_to_flax(numpy_state_dict(ref), "auto")
    assert report["layout"] == layout.removesuffix("-ddc")
    if layout == "t2n-ddc":
        assert report["config"]["ddc"] and report["config"]["ddc_reduction_factor"] == 4
    assert_same_variables(variables, {"params": params, "batch_stats": batch_stats})


def test_export_refuses_a_layout_without_the_models_options():
    variables = _jax_t2n_variables("t2n")
    with pytest.raises(ConversionError, match="exports to layout 't2n'"):
        flax_to_torch(variables["params"], variables["batch_stats"], "t2n-legacy")
    with pytest.raises(ConversionError, match="exports to layout"):
        flax_to_torch(variables["params"], variables["batch_stats"], "nvidia")


def test_unmapped_t2n_keys_are_listed():
    sd = numpy_state_dict(t2n_torch_model("t2n", 1))
    bad = dict(sd)
    bad["gst.stl.attention.W_q.weight"] = bad.pop("gst.stl.attention.W_query.weight")
    bad["decoder_secondary.gate_layer.linear_layer.bias"] = np.zeros(1, np.float32)  # a lone key of no decoder
    with pytest.raises(ConversionError) as e:
        torch_to_flax(bad)
    msg = str(e.value)
    for key in ("gst.stl.attention.W_query.weight", "gst.stl.attention.W_q.weight",
                "decoder_secondary.gate_layer.linear_layer.bias"):  # fmt: skip
        assert key in msg, (key, msg)
    mixed = sd | {"tpse_gst.linear.bias": np.zeros(16, np.float32)}
    with pytest.raises(ConversionError, match="mixes T2N HEAD and legacy"):
        detect_layout(mixed)


def convert_and_synthesize(tmp_path, name: str, payload: dict, example_ids: list[int], eos_id: int):
    """Converts `payload` (a saved T2N training file) with torch_to_taco_jax; the result must read T2N's own example
    sentence as `example_ids` ... `eos_id` and synthesize. Returns the converted checkpoint's config."""
    from taco_jax.checkpoint import restore_model
    from taco_jax.synthesize import load_synthesizer
    from taco_jax.text import text_to_sequence

    pt, out = tmp_path / f"{name}.pt", tmp_path / name
    torch.save(payload, pt)
    torch_to_taco_jax(pt, out)
    cfg, _, _ = restore_model(out)
    synth = load_synthesizer(str(out), ["model.max_decoder_steps=20", "model.gate_threshold=2.0"])
    ids, dropped = text_to_sequence("Н+очь, +улица", synth.table, cfg.text.cleaners)
    assert not dropped and list(ids[: len(example_ids)]) == example_ids and ids[-1] == eos_id
    (result,) = synth(["Прив+ет, мир"])
    assert result.frames == 20 and np.isfinite(result.mel).all()
    return cfg


def test_converts_a_t2n_head_checkpoint_for_synthesis(tmp_path):
    """A 60-symbol T2N HEAD file becomes a taco_jax checkpoint with T2N's symbol table and front end; the
    synthesizer reads transliterated Russian with stress marks."""
    torch.manual_seed(0)
    ref = TorchTacotron2(TorchTacotron2Config(n_symbols=60, n_frames_per_step=1, **TINY, **LAYOUT_OPTIONS["t2n"]))
    payload = {"model_state_dict": ref.state_dict(), "global_step": 5, "hparams": {"use_gst": True}}
    # T2N's own example (its inference notebook): S=22, n, +=50, o, ch, '=3, ...
    cfg = convert_and_synthesize(tmp_path, "best_model", payload, [22, 37, 50, 38, 26, 31, 3], 23)
    assert cfg.text.symbols == "t2n_translit_v1" and cfg.model.gst == "add" and cfg.model.mmi


def test_converts_a_legacy_checkpoint_with_its_41_symbol_table(tmp_path):
    """creotiv's legacy layout has 41 symbols: HEAD's without digits, '+' the only stress mark, so each letter's
    id is 10 below HEAD's. Other symbol counts are refused."""
    torch.manual_seed(0)
    ref = TorchTacotron2(TorchTacotron2Config(n_symbols=41, **TINY, **LAYOUT_OPTIONS["t2n-legacy"]))
    # HEAD's ids of the same text (test above) less 10 for S, letters and '+'; punctuation keeps its id.
    cfg = convert_and_synthesize(tmp_path, "legacy", {"state_dict": ref.state_dict()}, [12, 27, 40, 28, 16, 21, 3], 13)
    assert cfg.text.symbols == "t2n_translit_legacy_v1" and cfg.model.gst == "concat" and cfg.model.tpse

    odd = TorchTacotron2(TorchTacotron2Config(n_symbols=50, **TINY, **LAYOUT_OPTIONS["t2n-legacy"]))
    torch.save({"state_dict": odd.state_dict()}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointFileError, match="50 symbols"):  # no 50-symbol table
        torch_to_taco_jax(tmp_path / "odd.pt", tmp_path / "odd")
