"""Text encoders: CLIP through open_clip (randomly initialised; no weights are downloaded), the
weight lookup and its offline error, the learned word encoder, and the caption-feature cache."""

import numpy as np
import pytest
import torch
import typer
from safetensors.torch import save_file
from typer.testing import CliRunner

from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.errors import UserError
from k2m_core.keypoints import make_clip
from k2m_core.text import ENCODERS, encoder_kind, load_text_encoder

TEXTS = ["a man jumps", "a woman walks forward slowly, then turns left and sits down on a chair", "waves"]



@pytest.fixture(scope="module")
def clip():
    from k2m_core.text.clip import ClipEncoder

    return ClipEncoder.random(seed=0)


@pytest.fixture()
def offline(tmp_path, monkeypatch):
    """No weights anywhere: empty hub cache, no URL cache, no environment variable."""
    import huggingface_hub.constants

    import k2m_core.text.clip as clip_module

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(clip_module, "_URL_CACHE_FILE", tmp_path / "clip" / "ViT-B-32.pt")
    monkeypatch.delenv("K2M_CLIP_WEIGHTS", raising=False)
    return clip_module


def test_clip_features_equal_open_clip_encode_text(clip):
    tokens = clip.tokenize(TEXTS)
    full = clip._tokenizer(TEXTS)
    assert full.shape[1] == 77 and tokens.shape[1] < 30  # cut to the longest prompt
    features = clip.encode(TEXTS)
    with torch.no_grad():
        reference = clip.clip.encode_text(full)
    assert features.shape == (3, 512)
    torch.testing.assert_close(features, reference, rtol=1e-5, atol=1e-5)
    # A prompt's feature does not depend on the others in its batch.
    torch.testing.assert_close(clip.encode(TEXTS[:1])[0], features[0], rtol=1e-5, atol=1e-5)


def test_clip_identity_follows_the_weights(clip):
    from k2m_core.text.clip import ClipEncoder

    assert clip.identity.startswith("clip:ViT-B-32:") and encoder_kind(clip.identity) == "clip"
    assert ClipEncoder.random(seed=0).identity == clip.identity
    assert ClipEncoder.random(seed=1).identity != clip.identity
    assert load_text_encoder("clip-random").identity == clip.identity
    assert clip.clip.visual is None  # only the text tower is kept
    assert not any(p.requires_grad for p in clip.parameters())


def test_clip_weights_from_option_environment_and_cache(clip, offline, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from k2m_core.text.clip import ClipEncoder

    weights = tmp_path / "open_clip_model.safetensors"
    # The text tower's weights, in open_clip's key names, as the hub's file has them.
    save_file({k: v.contiguous() for k, v in clip.clip.state_dict().items()}, str(weights))
    loaded = ClipEncoder.from_weights(weights)
    assert loaded.identity == clip.identity
    torch.testing.assert_close(loaded.encode(TEXTS), clip.encode(TEXTS))

    monkeypatch.setenv("K2M_CLIP_WEIGHTS", str(weights))
    assert load_text_encoder("clip").identity == clip.identity
    monkeypatch.delenv("K2M_CLIP_WEIGHTS")

    # open_clip's download cache (the Hugging Face hub layout).
    snapshot = tmp_path / "hub" / "models--timm--vit_base_patch32_clip_224.openai" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").symlink_to(weights)
    (tmp_path / "hub" / "models--timm--vit_base_patch32_clip_224.openai" / "refs").mkdir()
    (tmp_path / "hub" / "models--timm--vit_base_patch32_clip_224.openai" / "refs" / "main").write_text("abc")
    assert huggingface_hub.constants.HF_HUB_CACHE == str(tmp_path / "hub")
    assert offline.resolve_weights() == snapshot / "open_clip_model.safetensors"

    wrong = tmp_path / "wrong.safetensors"
    save_file({"token_embedding.weight": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(UserError, match="not CLIP ViT-B/32 weights"):
        ClipEncoder.from_weights(wrong)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read weights"):
        ClipEncoder.from_weights(garbage)


def test_clip_offline_without_weights_is_one_clear_error(offline, tmp_path):
    with pytest.raises(UserError) as error:
        load_text_encoder("clip")
    message = str(error.value)
    for way in ("--clip-weights PATH", "K2M_CLIP_WEIGHTS", "open_clip's download cache"):
        assert way in message
    assert "\n" not in message
    with pytest.raises(UserError, match="--clip-weights .*: no such file"):
        load_text_encoder("clip", tmp_path / "missing.safetensors")


def test_word_encoder():
    from k2m_core.text.words import UNKNOWN, WordEncoder, build_vocab

    vocab = build_vocab(["A man jumps.", "a man walks", "a woman jumps twice"], max_size=4)
    assert vocab == ("a", "jumps", "man", "twice")
    encoder = WordEncoder(vocab, dim=32)
    ids = encoder.tokenize(["a man jumps", "the man", ""])
    assert ids.shape == (3, 3)
    assert ids[1].tolist() == [UNKNOWN, 4, 0] and ids[2].tolist() == [UNKNOWN, 0, 0]
    features = encoder(ids)
    assert features.shape == (3, 32) and encoder.learned
    # Padding does not change a caption's feature.
    torch.testing.assert_close(encoder(encoder.tokenize(["the man"])), features[1:2])
    assert WordEncoder(vocab).identity == encoder.identity != WordEncoder(vocab[:3]).identity
    with pytest.raises(UserError, match="learned"):
        load_text_encoder("words")
    assert load_text_encoder("words", vocab=vocab).identity.startswith("words:4:")
    with pytest.raises(UserError, match="choose one of"):
        load_text_encoder("bert")
    assert set(ENCODERS) == {"clip", "clip-random", "minilm", "words"}


def _dataset(path, clips=5):
    rng = np.random.default_rng(0)
    with DatasetWriter(path) as writer:
        for i in range(clips):
            writer.add_clip(f"c{i}", make_clip(rng.uniform(0, 500, (12, 17, 2)), np.ones((12, 17)), 640, 480),
                            [TEXTS[i % 3]] + (["another caption"] if i % 2 else []))
    return path


def test_encode_text_command_caches_float16_features(clip, tmp_path):
    from k2m_cli import t2m
    from k2m_core.t2m.data import read_text_features, text_caches

    path = _dataset(tmp_path / "d.h5")
    app = typer.Typer()
    app.command("encode-text")(t2m.encode_text)
    app.command("other")(lambda: None)
    for _ in range(2):  # re-running replaces the cache
        result = CliRunner().invoke(app, ["encode-text", str(path), "--encoder", "clip-random", "--device", "cpu",
                                          "--batch-size", "3"])
        assert result.exit_code == 0, (result.output, result.exception)
    dataset = Dataset(path)
    assert dataset.text_encoders == [clip.identity] and text_caches(dataset) == [clip.identity]
    features = read_text_features(dataset, clip.identity)
    assert features.dtype == np.float16 and features.shape == (len(dataset.all_captions), 512)
    np.testing.assert_allclose(features.astype(np.float32), clip.encode(dataset.all_captions).numpy(),
                               rtol=2e-3, atol=2e-3)
    with pytest.raises(UserError, match="no text features from encoder clip:ViT-B-32:other"):
        read_text_features(dataset, "clip:ViT-B-32:other")
    dataset.close()
    result = CliRunner().invoke(app, ["encode-text", str(path), "--encoder", "words"])
    assert isinstance(result.exception, UserError) and "learned" in str(result.exception)
