"""Which offline text encoder maps unseen paraphrases better: MiniLM (frozen) or `words` (learned)?

    python benchmarks/text_encoders.py [--per-family 40] [--seed 0]

Both encoders get the same job, the one the text-to-motion models rely on: tell the action from
the caption. Captions of single-action synthetic clips (20 families, the corpus's own phrasings)
are split into train and held-out; each encoder plus a linear head is trained to classify the
family on the train captions — MiniLM frozen with a logistic-regression head, `words` learned end
to end as it is inside a model — and scored on:

- **held-out**: unseen captions written by the same generator (same vocabulary);
- **paraphrases**: hand-written descriptions of the same actions in words the corpus never uses
  ("someone springs into the air"), plus the README's examples.

The table prints top-1 family accuracy; chance is 1/20.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from k2m_core.synth.motions import FAMILIES, generate_motion
from k2m_core.text.minilm import MiniLMEncoder
from k2m_core.text.words import WordEncoder, build_vocab

PARAPHRASES = {
    "walk": ["a man ambles forward", "someone paces across the room", "a person walks slowly to the left"],
    "run": ["a person dashes ahead", "someone races forward at full speed", "a woman hurries off running"],
    "jump": ["someone leaps", "a man springs up into the air", "a person bounds upward with both feet"],
    "hop": ["a person hops up and down", "someone bounces on one leg", "a kid skips in place on one foot"],
    "squat": ["a person bends the knees and lowers the hips", "someone drops into a deep knee bend",
              "a man does a few knee bends"],
    "wave": ["a woman greets someone with her hand", "someone says goodbye with a hand", "a man signals hello"],
    "punch": ["a boxer throws a jab", "someone strikes forward with a fist", "a person hits the air with fists"],
    "kick": ["someone boots a ball", "a man strikes out with his leg", "a fighter does a front kick"],
    "turn": ["a person rotates to face the other way", "someone pivots around", "a man faces the opposite direction"],
    "jumping_jacks": ["a person does star jumps", "someone does a warm-up exercise spreading arms and legs",
                      "a woman exercises with jumping jacks"],
    "bow": ["a man bends forward at the waist to greet", "someone takes a bow to the audience",
            "a performer bows politely"],
    "raise_arms": ["a person lifts both hands overhead", "someone puts their hands up in the air",
                   "a man reaches up high with both arms"],
    "clap": ["someone applauds", "a person claps hands together", "the audience member applauds loudly"],
    "sit": ["a person takes a seat", "someone lowers onto a chair", "a man sits down and rests"],
    "side_step": ["someone moves sideways", "a person slides laterally", "a dancer steps to the side"],
    "spin": ["a dancer pirouettes", "someone rotates around quickly", "a person whirls around in place"],
    "crouch_walk": ["someone tiptoes low like a burglar", "a person moves stealthily bent over",
                    "a man prowls forward hunched down"],
    "march": ["a soldier parades forward", "someone walks lifting the knees high like on parade",
              "a person marches in step"],
    "stretch": ["someone limbers up", "a person warms up the muscles", "an athlete stretches before training"],
    "idle": ["a person stays still", "someone waits without moving", "a man remains standing in place"],
}


def synthetic_captions(per_family: int, seed: int) -> tuple[list[str], list[int]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, family in enumerate(FAMILIES):
        for _ in range(per_family):
            caption = str(rng.choice(generate_motion([family], rng).captions))
            texts.append(caption)
            labels.append(label)
    return texts, labels


def fit_head(features: torch.Tensor, labels: torch.Tensor, encoder: nn.Module | None, steps: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    dim = features.shape[1] if encoder is None else encoder.dim
    head = nn.Linear(dim, len(FAMILIES))
    params = list(head.parameters()) + (list(encoder.parameters()) if encoder is not None else [])
    optimiser = torch.optim.Adam(params, lr=3e-3)
    for _ in range(steps):
        inputs = features if encoder is None else encoder(features)
        loss = nn.functional.cross_entropy(head(inputs), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    texts, labels = synthetic_captions(args.per_family, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(texts))
    cut = int(0.8 * len(texts))
    train, held = order[:cut], order[cut:]
    para_texts = [t for f in FAMILIES for t in PARAPHRASES[f]]
    para_labels = torch.tensor([FAMILIES.index(f) for f in FAMILIES for _ in PARAPHRASES[f]])
    y = torch.tensor(labels)
    vocab = set(build_vocab([texts[i] for i in train]))
    unseen = np.mean([any(w not in vocab for w in t.lower().split()) for t in para_texts])

    rows = []
    start = time.perf_counter()
    minilm = MiniLMEncoder.from_package()
    feats = minilm.encode(texts)
    para_feats = minilm.encode(para_texts)
    head = fit_head(feats[train], y[train], None, 400, args.seed)
    with torch.no_grad():
        rows.append(("minilm (frozen) + linear", (head(feats[held]).argmax(1) == y[held]).float().mean().item(),
                     (head(para_feats).argmax(1) == para_labels).float().mean().item(), time.perf_counter() - start))

    start = time.perf_counter()
    words = WordEncoder(build_vocab([texts[i] for i in train]))
    head = fit_head(words.tokenize([texts[i] for i in train]), y[train], words, 300, args.seed)
    words.eval()
    with torch.no_grad():
        rows.append(("words (learned) + linear",
                     (head(words(words.tokenize([texts[i] for i in held]))).argmax(1) == y[held]).float().mean().item(),
                     (head(words(words.tokenize(para_texts))).argmax(1) == para_labels).float().mean().item(),
                     time.perf_counter() - start))

    print(f"{len(train)} train / {len(held)} held-out synthetic captions, {len(para_texts)} paraphrases "
          f"({unseen:.0%} use a word the training captions never do); chance {1 / len(FAMILIES):.2f}\n")
    print(f"| {'encoder':26} | held-out acc | paraphrase acc | fit s |")
    print(f"| {'-' * 26} | -----------: | -------------: | ----: |")
    for name, held_acc, para_acc, seconds in rows:
        print(f"| {name:26} | {held_acc:12.3f} | {para_acc:14.3f} | {seconds:5.1f} |")
    base, other = rows[1][2], rows[0][2]
    print(f"\nparaphrase accuracy: minilm {other:.3f} vs words {base:.3f} ({other - base:+.3f})")


if __name__ == "__main__":
    main()
