"""`k2m demo`'s plan and guards (the full run takes minutes; README and the closing note time it)."""

from k2m_cli.demo import PROMPTS, _plan


def test_plan_runs_the_whole_pipeline_in_order(tmp_path):
    stages = _plan(tmp_path, 400, 600, 400, 0)
    names = [step.name for stage in stages for step in stage]
    assert names.index("synth") < names.index("train vq") < names.index("tokenize") < names.index("train transformer")
    assert names.index("train transformer") < names.index("gen") < names.index("render")
    assert {"eval recon", "eval physics", "eval t2m", "train evaluator", "train residual", "train length"} <= set(names)
    gen = next(step for stage in stages for step in stage if step.name == "gen")
    assert all(p in gen.args for p in PROMPTS) and "minilm" in " ".join(stages[3][0].args)


def test_demo_refuses_to_overwrite_and_tiny_corpora(k2m, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = k2m("demo", "--out", tmp_path)
    assert result.code == 2 and "--force" in result.err and (tmp_path / "keep.txt").read_text() == "mine"
    result = k2m("demo", "--out", tmp_path / "new", "--clips", "10")
    assert result.code == 2 and "--clips" in result.err and not (tmp_path / "new").exists()
