"""Text-to-motion models, caches, batches, sampler and commands, on small synthetic token data.

The synthetic corpus ties captions to tokens: "a person <action> <adverb>" fixes the clip's
length and its code pattern, so each model has something to learn beyond code frequencies.
"""

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.errors import UserError
from k2m_core.keypoints import make_clip
from k2m_core.loading import load_sampler, load_t2m_model, read_t2m_config
from k2m_core.runs import load_weights
from k2m_core.t2m.config import (SamplingOverrides, TextSpec, TokenSpec, length_preset, masked_preset,
                                 residual_preset)
from k2m_core.t2m.data import TokenTextBatches, read_token_cache, token_facings, tokenize_clips, write_token_cache
from k2m_core.t2m.tokens import token_spec, tokenizer_fingerprint
from k2m_core.t2m.models import LengthEstimator, MaskedTransformer, ResidualTransformer
from k2m_core.t2m.sampler import Sampler
from k2m_core.text.base import TextEncoder
from k2m_core.train.checkpoint import save_weights
from k2m_core.train.rundir import read_metrics
from k2m_core.train.t2m import default_config, train_t2m

ACTIONS = ["walks", "jumps", "runs", "waves", "kicks", "spins", "crawls", "bows"]
ADVERBS = ["slowly", "quickly", "twice", "calmly"]
K, Q = 32, 3
SPEC = TokenSpec(tokenizer="synthetic-tokens", codebook_size=K, num_quantizers=Q, downsample=4, max_tokens=40)



def synthetic_codes(action: int, adverb: int, extra: int) -> np.ndarray:
    steps = 6 + 3 * action + 2 * adverb + extra
    t = np.arange(steps)
    base = (action * 4 + t // (adverb + 1)) % K
    layer1 = (base * 3 + action) % K
    layer2 = (layer1 + adverb + t % 2) % K
    return np.stack([base, layer1, layer2], axis=-1)


def make_corpus(path, clips=240, seed=0, uncaptioned=0):
    """A dataset file whose token cache (fingerprint SPEC.tokenizer) follows the captions; every
    ``uncaptioned``-th clip (none if 0) has no caption."""
    rng = np.random.default_rng(seed)
    codes = []
    with DatasetWriter(path, split_seed=seed) as writer:
        for i in range(clips):
            action, adverb = int(rng.integers(len(ACTIONS))), int(rng.integers(len(ADVERBS)))
            clip_codes = synthetic_codes(action, adverb, int(rng.integers(2)))
            frames = len(clip_codes) * 4 - int(rng.integers(4))
            xy = rng.uniform(100, 900, (frames, 17, 2))
            texts = [f"a person {ACTIONS[action]} {ADVERBS[adverb]}", f"someone {ACTIONS[action]}"]
            writer.add_clip(f"c{i}", make_clip(xy, np.ones((frames, 17)), 1000, 1000),
                            [] if uncaptioned and i % uncaptioned == 0 else texts)
            codes.append(clip_codes)
    write_token_cache(path, codes, SPEC, tokenizer_dir="synthetic")
    return Dataset(path)


class HashEncoder(TextEncoder):
    """A frozen test encoder: features are a fixed random projection of word hashes."""
    name, dim = "hash", 16

    def __init__(self, salt: int = 0):
        super().__init__()
        self.salt = salt
        self.table = torch.nn.Parameter(torch.randn(97, self.dim, generator=torch.Generator().manual_seed(salt)))

    @property
    def identity(self) -> str:
        return f"hash:{self.salt}"

    def tokenize(self, texts):
        rows = [[sum(map(ord, w)) % 97 for w in t.split()] for t in texts]
        width = max(len(r) for r in rows)
        return torch.tensor([r + [0] * (width - len(r)) for r in rows])

    def forward(self, tokens):
        return self.table[tokens].mean(1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("t2m") / "data.h5")


def tiny_config(kind, corpus, encoder="words", **train):
    config = default_config(kind, "tiny", corpus.path, corpus.path.parent, encoder)
    config.tokens = replace(SPEC)
    config.train = replace(config.train, device="cpu", **train)
    return config


def words_spec(corpus):
    from k2m_core.train.t2m import prepare

    return prepare(tiny_config("transformer", corpus), dataset=corpus).text


# ---------------------------------------------------------------- caches and batches


def test_token_cache_round_trip_and_refuses_other_tokenizers(corpus):
    cache = read_token_cache(corpus, SPEC)
    assert cache.codes.dtype == np.int16 and cache.codes.shape[1] == Q
    assert len(cache.lengths) == len(corpus)
    # Token counts cover every clip's frames: ceil(F / 4).
    assert (cache.lengths == -(-corpus.lengths // 4)).all()
    with pytest.raises(UserError, match="built with another tokenizer"):
        read_token_cache(corpus, replace(SPEC, tokenizer="another"))
    with pytest.raises(UserError, match="num_quantizers"):
        read_token_cache(corpus, replace(SPEC, num_quantizers=6))


def test_batches_are_a_function_of_seed_and_step_and_shard_by_rank(corpus):
    cache = read_token_cache(corpus, SPEC)
    text = np.random.default_rng(0).standard_normal((len(corpus.all_captions), 4)).astype(np.float16)
    args = (cache, text, corpus.caption_offsets, corpus.splits["train"], 10, 8, 3)
    whole = TokenTextBatches(*args)
    a, b = whole[5], TokenTextBatches(*args)[5]
    assert torch.equal(a.codes, b.codes) and torch.equal(a.text, b.text)
    assert not torch.equal(whole[6].clip_index, a.clip_index)
    assert a.codes.shape[1] == int(a.lengths.max()) <= 10  # cropped to max_tokens, padded to the longest
    for row in range(len(a)):
        assert (a.codes[row, a.lengths[row]:] == -1).all() and (a.codes[row, :a.lengths[row]] >= 0).all()
    halves = [TokenTextBatches(*args, rank=r, world_size=2)[5] for r in range(2)]
    assert torch.equal(torch.cat([h.clip_index for h in halves]), a.clip_index)
    assert torch.equal(torch.cat([h.lengths for h in halves]), a.lengths)


def test_tokenize_with_a_tiny_tokenizer(tmp_path):
    from k2m_core.body.skeleton import SkeletonBody
    from k2m_core.tokenizer import MotionVQAdapter, preset

    dataset = make_corpus(tmp_path / "d.h5", clips=12)
    torch.manual_seed(0)
    tokenizer = MotionVQAdapter(preset("tiny", adapter_maxlen=32), SkeletonBody())
    kp = torch.rand(4, 32, 18, 3) * 900
    tokenizer.train()(kp, torch.ones(4, 32, dtype=torch.bool))  # initialise codebooks from data
    codes = tokenize_clips(dataset, tokenizer, batch_size=5)  # clips longer than 32 frames go in windows
    assert [len(c) for c in codes] == list(-(-dataset.lengths // 4))
    assert all(c.shape[1] == 2 and (c >= 0).all() for c in codes)
    spec = token_spec(tokenizer)
    assert spec.tokenizer == tokenizer_fingerprint(tokenizer) and spec.num_quantizers == 2
    dataset.close()
    write_token_cache(dataset.path, codes, spec)
    again = read_token_cache(Dataset(dataset.path), spec)
    assert np.array_equal(again.clip(3), codes[3])
    # Loss weights and other training-only settings leave the codes, and so the fingerprint, alone.
    tokenizer.config = replace(tokenizer.config, lambda_depth=0.0, window=16, dropout=0.3, lambda_mirror=2.0,
                               mirror_margin=0.5)
    assert tokenizer_fingerprint(tokenizer) == spec.tokenizer
    tokenizer.config = replace(tokenizer.config, conf_threshold=0.5)  # changes what the encoder sees
    assert tokenizer_fingerprint(tokenizer) != spec.tokenizer
    tokenizer.config = replace(tokenizer.config, conf_threshold=0.8)
    # A change to the tokenizer's weights changes its fingerprint.
    with torch.no_grad():
        tokenizer.quantizer.layers[0].embed[0] += 1
    assert tokenizer_fingerprint(tokenizer) != spec.tokenizer


def test_token_facings_name_the_view_as_the_synthetic_rig_films_it(tmp_path):
    from types import SimpleNamespace

    from k2m_core.synth.camera_rig import View

    yaws = np.radians([0.0, -90.0, 90.0, 180.0, 35.0])  # front, left side, right side, back, between

    def decode(codes, width, height):  # every frame of clip i (codes all i) shows the body as the rig films yaw i
        orient = [View("", float(yaws[i]), math.radians(8.0), 1000.0, 1920, 1080, (2.0, 8.0)).world_to_camera
                  for i in codes[:, 0, 0].tolist()]
        rotmats = torch.eye(3).repeat(len(codes), codes.shape[1] * 4, 24, 1, 1)
        rotmats[:, :, 0] = torch.tensor(np.array(orient), dtype=torch.float32)[:, None]
        return SimpleNamespace(rotmats=rotmats)

    tokenizer = SimpleNamespace(to=lambda device: tokenizer, eval=lambda: tokenizer, downsample=4, decode=decode)
    codes = [np.full((3 + i, 2), i, dtype=np.int64) for i in range(len(yaws))]
    facings = token_facings(tokenizer, codes, batch_size=2)
    assert [len(f) for f in facings] == [len(c) for c in codes]
    error = np.degrees(np.angle(np.exp(1j * (np.array([f[0] for f in facings]) - yaws))))
    assert np.abs(error).max() < 2.0, error  # the camera's 8° pitch aside, exact
    path = tmp_path / "f.h5"
    with DatasetWriter(path, split_seed=0) as writer:
        for i, c in enumerate(codes):
            writer.add_clip(f"c{i}", make_clip(np.full((len(c) * 4, 17, 2), 50.0), np.ones((len(c) * 4, 17)),
                                               100, 100), ["a person walks"])
    spec = replace(SPEC, num_quantizers=2)
    write_token_cache(path, codes, spec, facings=facings)
    cache = read_token_cache(Dataset(path), spec)
    assert np.allclose(cache.facings(3), facings[3]) and np.allclose(cache.facing, np.concatenate(facings))
    with pytest.raises(ValueError, match="one value per token"):
        write_token_cache(path, codes, spec, facings=facings[::-1])
    # A window's view is its first token's.
    batches = TokenTextBatches(cache, np.zeros((len(codes), 4), np.float16), Dataset(path).caption_offsets,
                               np.arange(len(codes)), 40, 4, 0)
    batch = batches.batch(np.array([4, 1]), np.array([4, 1]), starts=np.array([2, 0]))
    assert torch.allclose(batch.facing, torch.tensor([facings[4][2], facings[1][0]]))


def test_an_interrupted_cache_write_leaves_no_cache(corpus, tmp_path, monkeypatch):
    import k2m_core.t2m.data as data

    path = tmp_path / "d.h5"
    make_corpus(path, clips=6).close()
    spec = replace(SPEC, tokenizer="interrupted")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data.h5py.File, "move", crash)
    with pytest.raises(KeyboardInterrupt):
        write_token_cache(path, [synthetic_codes(0, 0, 0)] * 6, spec)
    monkeypatch.undo()
    with pytest.raises(UserError, match="no motion tokens"):
        read_token_cache(Dataset(path), spec)
    write_token_cache(path, [synthetic_codes(0, 0, 0)] * 6, spec)  # and the next write cleans up
    assert len(read_token_cache(Dataset(path), spec).lengths) == 6


# ---------------------------------------------------------------- training


def _fixed_loss(model, batch, seed=0):
    model.eval()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        return float(model(**batch.model_inputs()).loss)


@pytest.mark.parametrize("kind", ["transformer", "residual"])
def test_training_lowers_the_token_losses(corpus, tmp_path, kind):
    from k2m_core.loading import build_t2m_model
    from k2m_core.train.t2m import prepare, _text_rows

    config = tiny_config(kind, corpus, steps=60, batch_size=16, lr=3e-3, eval_every=60, save_every=60)
    last = train_t2m(config, tmp_path / kind)
    prepared = prepare(config, dataset=corpus)
    batches = TokenTextBatches(read_token_cache(corpus, SPEC), _text_rows(prepared, corpus), corpus.caption_offsets,
                               corpus.splits["train"], SPEC.max_tokens, 16, 0)
    batch = batches.fixed(corpus.splits["val"][:32])
    torch.manual_seed(config.train.seed)
    before = _fixed_loss(build_t2m_model(prepared), batch)
    after = _fixed_loss(load_t2m_model(tmp_path / kind, kind), batch)
    assert after < before - 0.5, (before, after)
    if kind == "transformer":
        assert last["eval/masked_acc"] > last["eval/masked_freq_baseline"]
    else:
        assert last["eval/residual_acc"] > last["eval/residual_freq_baseline"]
    metrics = read_metrics(tmp_path / kind)
    assert any("eval/" + ("masked_acc" if kind == "transformer" else "residual_acc") in m for m in metrics)


def test_length_estimator_correlates_with_true_lengths(corpus, tmp_path):
    config = tiny_config("length", corpus, steps=150, batch_size=32, lr=3e-3, eval_every=150, save_every=150)
    config.model = replace(config.model, hidden=(64,))
    last = train_t2m(config, tmp_path / "length")
    assert last["eval/length_corr"] > 0.6  # held-out (validation) captions
    assert last["eval/length_mae_frames"] < last["eval/length_baseline_mae_frames"]
    model = load_t2m_model(tmp_path / "length", "length")
    assert model.logits(model.text.words.tokenize(["a person bows calmly"])).argmax() > \
        model.logits(model.text.words.tokenize(["a person walks slowly"])).argmax()


def test_frozen_encoder_features_come_from_the_cache(corpus, tmp_path):
    from k2m_core.t2m.data import encode_captions

    path = tmp_path / "d.h5"
    make_corpus(path, clips=40).close()
    with pytest.raises(UserError, match="encode-text"):
        train_t2m(tiny_config("transformer", Dataset(path), encoder="clip"), tmp_path / "run")
    encoder = HashEncoder()
    assert encode_captions(path, encoder) == "hash:0"
    config = tiny_config("transformer", Dataset(path), encoder="clip", steps=4)
    config.text = TextSpec(name="hash", identity="hash:0", dim=16)
    train_t2m(config, tmp_path / "run")
    saved = read_t2m_config(tmp_path / "run", "transformer")
    assert saved.text.identity == "hash:0" and saved.tokens == SPEC
    load_t2m_model(tmp_path / "run", "transformer", text_encoder=encoder)
    with pytest.raises(UserError, match="trained on text encoder hash:0, but hash:1 was given"):
        load_t2m_model(tmp_path / "run", "transformer", text_encoder=HashEncoder(salt=1))
    with pytest.raises(UserError, match="is a masked transformer run, not a residual transformer run"):
        load_t2m_model(tmp_path / "run", "residual")


@pytest.mark.parametrize("kind", ["transformer", "length"])
def test_text_models_skip_clips_without_captions(tmp_path, kind):
    corpus = make_corpus(tmp_path / "d.h5", clips=60, uncaptioned=3)
    last = train_t2m(tiny_config(kind, corpus, steps=4, eval_every=4, save_every=4), tmp_path / kind)
    assert last["clips_without_captions"] == 20
    with pytest.raises(ValueError, match="needs a caption"):
        TokenTextBatches(read_token_cache(corpus, SPEC), np.zeros((len(corpus.all_captions), 4)),
                         corpus.caption_offsets, np.arange(len(corpus)), SPEC.max_tokens, 8, 0)
    bare = make_corpus(tmp_path / "bare.h5", clips=20, uncaptioned=1)
    with pytest.raises(UserError, match="no training clip has a caption"):
        train_t2m(tiny_config(kind, bare, steps=4), tmp_path / "bare")
    assert not (tmp_path / "bare").exists()


# ---------------------------------------------------------------- models and sampler


def _models(text: TextSpec, seed=0):
    torch.manual_seed(seed)
    masked = MaskedTransformer(masked_preset("tiny"), SPEC, text).eval()
    residual = ResidualTransformer(residual_preset("tiny"), SPEC, text).eval()
    length = LengthEstimator(length_preset("tiny"), SPEC, text).eval()
    return masked, residual, length


def test_save_load_is_bit_exact(corpus, tmp_path):
    spec = words_spec(corpus)
    for model in _models(spec):
        save_weights(model, tmp_path / "w.safetensors")
        torch.manual_seed(123)
        fresh = type(model)(model.config, SPEC, spec).eval()
        load_weights(fresh, tmp_path / "w.safetensors")
        for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
            assert torch.equal(a, b), name
    masked, residual, length = _models(spec)
    prompts = ["a person jumps quickly", "someone waves"]
    first = Sampler(masked, residual, length).generate(prompts, [20, 37], seed=3, decode=False)
    save_weights(masked, tmp_path / "m.safetensors")
    reloaded = MaskedTransformer(masked.config, SPEC, spec)
    load_weights(reloaded, tmp_path / "m.safetensors")
    again = Sampler(reloaded, residual, length).generate(prompts, [20, 37], seed=3, decode=False)
    assert torch.equal(first.codes, again.codes)


def test_sampler_seed_cfg_and_padding(corpus):
    spec = words_spec(corpus)
    masked, residual, length = _models(spec)
    sampler = Sampler(masked, residual, length)
    prompts = ["a person jumps quickly", "someone waves", "a person bows calmly"]
    out = sampler.generate(prompts, [12, 40, 5], seed=7, decode=False)
    assert out.codes.shape == (3, 10, Q)
    assert out.token_lengths.tolist() == [3, 10, 2]
    for row, length_ in enumerate(out.token_lengths.tolist()):
        assert (out.codes[row, :length_] >= 0).all() and (out.codes[row, length_:] == -1).all()
    assert torch.equal(sampler.generate(prompts, [12, 40, 5], seed=7, decode=False).codes, out.codes)
    assert not torch.equal(sampler.generate(prompts, [12, 40, 5], seed=8, decode=False).codes, out.codes)
    guided = Sampler(masked, residual, length, sampling=SamplingOverrides(cfg=1.0, residual_cfg=1.0))
    assert not torch.equal(guided.generate(prompts, [12, 40, 5], seed=7, decode=False).codes, out.codes)
    # One prompt alone, greedy: padding rows of other prompts do not change its tokens.
    greedy = dict(sampling=SamplingOverrides(temperature=0.0))
    together = Sampler(masked, residual, length, **greedy).generate(prompts, [12, 40, 5], decode=False).codes
    alone = Sampler(masked, residual, length, **greedy).generate(prompts[:1], [12], decode=False).codes
    assert torch.equal(together[0, :3], alone[0])
    # Without frames the length estimator draws the lengths (deterministically under the seed).
    drawn = sampler.generate(prompts, seed=1, decode=False)
    assert torch.equal(drawn.frames, drawn.token_lengths * 4)
    assert torch.equal(sampler.generate(prompts, seed=1, decode=False).codes, drawn.codes)
    with pytest.raises(UserError, match="--frames must lie in 1…160"):
        sampler.generate(prompts[:1], [161])
    layers = Sampler(masked, residual, residual_layers=1).generate(prompts, [12, 40, 5], decode=False).codes
    assert (layers[..., 2] == -1).all() and (layers[0, :3, 1] >= 0).all()


def test_sampler_decodes_to_smpl_and_checks_the_encoder():
    from k2m_core.body.skeleton import SkeletonBody
    from k2m_core.tokenizer import MotionVQAdapter, preset

    spec = TextSpec(name="hash", identity="hash:0", dim=16)
    tokenizer = MotionVQAdapter(preset("tiny"), SkeletonBody()).eval()
    tokens = token_spec(tokenizer, max_tokens=20)
    torch.manual_seed(0)
    masked = MaskedTransformer(masked_preset("tiny"), tokens, spec)
    residual = ResidualTransformer(residual_preset("tiny"), tokens, spec)
    out = Sampler(masked, residual, None, tokenizer, HashEncoder()).generate(["a man jumps", "a woman runs"], [9, 30])
    assert out.motion.joints.shape == (2, 30, 24, 3) and out.motion.rotmats.shape == (2, 30, 24, 3, 3)
    assert torch.isfinite(out.motion.joints).all()
    with pytest.raises(UserError, match="trained on text encoder hash:0, but hash:1 was given"):
        Sampler(masked, residual, None, tokenizer, HashEncoder(salt=1))
    with pytest.raises(UserError, match="no length estimator"):
        Sampler(masked, residual, None, tokenizer, HashEncoder()).generate(["a man jumps"])


# ---------------------------------------------------------------- commands


def _app():
    from k2m_cli import t2m

    app = typer.Typer()
    train, data = typer.Typer(), typer.Typer()
    train.command("transformer")(t2m.train_transformer)
    train.command("residual")(t2m.train_residual)
    train.command("length")(t2m.train_length)
    data.command("encode-text")(t2m.encode_text)
    data.command("tokenize")(t2m.tokenize)
    app.add_typer(train, name="train")
    app.add_typer(data, name="data")
    return app


def test_commands_train_resume_and_load_a_sampler(tmp_path):
    from k2m_core.body.skeleton import SkeletonBody
    from k2m_core.tokenizer import MotionVQAdapter, preset
    from k2m_core.train.checkpoint import save_checkpoint
    from k2m_core.train.rundir import create_run_dir
    from k2m_core.runs import VQRunConfig

    vq = tmp_path / "vq"
    vq_config = VQRunConfig(model=preset("tiny"))
    create_run_dir(vq, vq_config, force=False, command="test")
    torch.manual_seed(0)
    tokenizer = MotionVQAdapter(vq_config.model, SkeletonBody())
    tokenizer.train()(torch.rand(4, 32, 18, 3) * 900, torch.ones(4, 32, dtype=torch.bool))
    optimizer = torch.optim.AdamW(tokenizer.parameters())
    save_checkpoint(vq, 1, tokenizer, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0))
    data = tmp_path / "d.h5"
    make_corpus(data, clips=30).close()

    runner = CliRunner()
    app = _app()
    common = ["--data", str(data), "--tokenizer", str(vq), "--preset", "tiny", "--encoder", "words",
              "--device", "cpu", "--steps", "6", "--set", "train.save_every=3"]
    result = runner.invoke(app, ["train", "transformer", *common, "--out", str(tmp_path / "t")])
    assert result.exit_code != 0 and "k2m data tokenize" in str(result.exception)
    result = runner.invoke(app, ["data", "tokenize", str(data), "--tokenizer", str(vq), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for kind in ("transformer", "residual", "length"):
        result = runner.invoke(app, ["train", kind, *common, "--out", str(tmp_path / kind)])
        assert result.exit_code == 0, (kind, result.output, result.exception)
    result = runner.invoke(app, ["train", "transformer", *common, "--out", str(tmp_path / "transformer")])
    assert isinstance(result.exception, UserError) and "--resume" in str(result.exception)
    result = runner.invoke(app, ["train", "residual", "--resume", str(tmp_path / "transformer")])
    assert isinstance(result.exception, UserError) and "not a residual transformer run" in str(result.exception)

    # Resuming from step 3 reproduces the uninterrupted run's final weights exactly.
    reference = load_t2m_model(tmp_path / "transformer", "transformer").state_dict()
    (tmp_path / "transformer" / "checkpoints" / "latest").write_text("step_00000003")
    (tmp_path / "transformer" / "finished.json").unlink()
    shutil.rmtree(tmp_path / "transformer" / "checkpoints" / "step_00000006")
    result = runner.invoke(app, ["train", "transformer", "--resume", str(tmp_path / "transformer")])
    assert result.exit_code == 0, result.output
    resumed = load_t2m_model(tmp_path / "transformer", "transformer").state_dict()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)

    sampler = load_sampler(tmp_path / "transformer", tmp_path / "residual", tmp_path / "length")
    out = sampler.generate(["a person jumps quickly"], seed=0)
    assert out.motion.joints.shape[:2] == (1, int(out.frames[0]))
    config = json.loads(json.dumps(read_t2m_config(tmp_path / "residual").text.__dict__, default=list))
    assert config["name"] == "words" and config["identity"].startswith("words:")
