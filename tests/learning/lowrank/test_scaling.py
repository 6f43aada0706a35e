"""The ``relora-scaling`` study: derived schedules, the memory probe, and the tiny preset through the CLI."""

import math

import pytest

from sciprob.learning.lowrank.memory import peak_training_memory
from sciprob.learning.lowrank.scaling import GALORE_TABLE2, ReLoRAScalingConfig, _param_count, _slope

SIZES = ("d16x1", "d32x1")
METHODS = ("full-rank", "lora-only", "relora")


def test_every_size_gets_the_same_tokens_per_parameter_and_proportional_schedules():
    from sciprob.learning.lowrank import LlamaConfig, LlamaLM, count_parameters

    cfg = ReLoRAScalingConfig()
    for width, depth in zip(cfg.widths, cfg.depths, strict=True):
        lm = cfg.size_config(width, depth)
        params = _param_count(lm.dim, lm.n_layers, lm.hidden_dim)
        model = LlamaLM(
            LlamaConfig(dim=lm.dim, n_layers=lm.n_layers, n_heads=lm.n_heads, hidden_dim=lm.hidden_dim)
        )
        assert params == count_parameters(model)  # the closed form counts the real model
        tokens_per_step = lm.batch_size * lm.seq_len
        assert lm.total_steps == math.ceil(cfg.tokens_per_param * params / tokens_per_step)
        assert lm.lora_r == round(cfg.rank_fraction * width) and lm.n_heads * cfg.head_dim == width
        assert abs(lm.warm_start_steps - cfg.warm_start_fraction * lm.total_steps) <= 0.5
        assert abs(lm.reset_every - cfg.reset_fraction * lm.total_steps) <= 0.5


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"widths": (64, 96), "depths": (2,)}, "`widths` and `depths`"),
        ({"widths": (96, 64), "depths": (2, 2)}, "ascending"),
        ({"head_dim": 24}, "`head_dim`"),
        ({"tokens_per_param": 0.0}, "`tokens_per_param`"),
        ({"reset_fraction": 1.0}, "`reset_fraction`"),
    ],
)
def test_bad_configs_name_the_field(overrides, needle):
    with pytest.raises(ValueError, match=needle):
        ReLoRAScalingConfig(**overrides)


def test_slope_of_a_known_line_and_of_the_published_ratios():
    assert _slope([0.0, 1.0, 2.0], [1.0, 0.8, 0.6]) == pytest.approx(-0.2, rel=1e-12)
    sizes = [math.log10(n) for n in GALORE_TABLE2]
    gaps = [rel / lora for _, lora, rel in GALORE_TABLE2.values()]
    assert gaps[0] == pytest.approx(37.04 / 34.99, rel=1e-12)
    # Non-monotone published ratios (1.059, 0.866, 1.137, 0.954): their fitted slope is small.
    assert abs(_slope(sizes, gaps)) < 0.05


def test_lora_training_needs_less_peak_memory_than_full_rank_when_weights_dominate():
    kw = dict(dim=128, n_layers=2, n_heads=4, hidden_dim=344, seq_len=8, batch_size=1, rank=8)
    full = peak_training_memory(method="full-rank", **kw)
    lora = peak_training_memory(method="lora", **kw)
    block = 4 * 128 * 128 + 3 * 128 * 344
    adapted = 2 * block  # weights of the attention and MLP layers
    # Full-rank holds at least weights, gradients and two Adam moments of every adapted weight (float32).
    assert full >= 4 * 4 * adapted
    # LoRA keeps no gradient or moments for those weights (3 of the 4 copies): well below full-rank's peak.
    assert lora <= 0.6 * full
    with pytest.raises(ValueError, match="`method`"):
        peak_training_memory(method="relora", **kw)


def test_tiny_preset_writes_ratios_memory_and_verdict(run_cli):
    res = run_cli(
        "run", "relora-scaling", "--preset", "tiny", "--device", "cpu", "--executor", "serial", out="s"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    results = res.results()
    metrics, timings = results["metrics"], results["timings"]
    for size in SIZES:
        ppl = {m: metrics[f"val_ppl/{size}/{m}"] for m in METHODS}
        assert all(1.0 < v < 256.0 for v in ppl.values())
        assert metrics[f"relora_vs_lora/{size}"] == pytest.approx(ppl["relora"] / ppl["lora-only"], rel=1e-12)
        assert metrics[f"relora_vs_full/{size}"] == pytest.approx(ppl["relora"] / ppl["full-rank"], rel=1e-12)
        ratio = timings[f"peak_memory_ratio/{size}"]  # a measurement: in timings, not metrics
        assert f"peak_memory_ratio/{size}" not in metrics
        assert ratio == pytest.approx(
            timings[f"peak_memory_bytes/{size}/relora"] / timings[f"peak_memory_bytes/{size}/full-rank"],
            rel=1e-12,
        )
    # At width 32, tokens per step x r = 64 x 8 is well below 3 width^2: the adapters must save memory.
    assert timings["peak_memory_ratio/d32x1"] < 0.97
    report = (res.out / "report.md").read_text()
    assert "scaling_ratios.png" in report and (res.out / "scaling_ratios.png").stat().st_size > 1000
    assert "The claim " in report and "GaLore" in report
