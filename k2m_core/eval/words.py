"""Caption input of the evaluator's text encoder (Guo et al. 2022, docs/design.md#ref-evaluator).

Guo et al. feed each word as a 300-d GloVe vector plus a one-hot part-of-speech tag from spaCy,
with five motion-specific tag classes that override the grammatical one. k2m has no spaCy and no
network, so:

- words are `k2m_core.text.words.split_words` tokens, embedded by a table learned over the
  dataset's vocabulary, optionally initialised from a local GloVe text file;
- the tag comes from small closed-class word lists, suffix rules and the motion-specific lists
  below, after a crude lemmatisation ("walking" → "walk"); everything else is a noun. It is a
  rough tagger, but the tag is only a hint next to the learned word vector.

A caption becomes ``<sos> w1 … w20 <eos>``: at most 20 words, as in Guo et al.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from k2m_core.errors import UserError
from k2m_core.text.words import split_words

PAD, UNKNOWN, SOS, EOS = 0, 1, 2, 3  # word ids; vocabulary words start at 4
FIRST_WORD = 4
MAX_WORDS = 20

TAGS = ("VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
        "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER")
NUM_TAGS = len(TAGS)
_TAG = {name: i for i, name in enumerate(TAGS)}

# Motion-specific classes (Guo et al.'s idea; these lists are k2m's own).
_VIP = {
    "Loc_VIP": {"left", "right", "forward", "forwards", "backward", "backwards", "back", "up", "down", "around",
                "clockwise", "counterclockwise", "anticlockwise", "straight", "sideways", "circle", "curve",
                "front", "behind", "place", "diagonally"},
    "Body_VIP": {"arm", "hand", "leg", "foot", "feet", "knee", "head", "shoulder", "hip", "waist", "elbow",
                 "wrist", "ankle", "chest", "torso", "body", "face", "finger", "thigh", "toe", "fist", "back"},
    "Obj_VIP": {"ball", "chair", "stair", "stairs", "floor", "ground", "wall", "table", "box", "door", "bench"},
    "Act_VIP": {"walk", "run", "jog", "jump", "hop", "skip", "kick", "punch", "wave", "clap", "squat", "sit",
                "stand", "bow", "bend", "turn", "spin", "rotate", "march", "step", "stretch", "raise", "lift",
                "lower", "throw", "catch", "dance", "crouch", "kneel", "lean", "swing", "shuffle", "climb",
                "stumble", "stroll", "balance", "reach", "push", "pull", "idle", "rest"},
    "Desc_VIP": {"slow", "slowly", "fast", "quickly", "quick", "careful", "carefully", "happy", "happily", "sad",
                 "sadly", "angry", "angrily", "gentle", "gently", "energetic", "energetically", "high", "low"},
}
_CLOSED = {
    "DET": {"a", "an", "the", "this", "that", "these", "those", "his", "her", "their", "its", "my", "your", "our",
            "some", "each", "every", "both", "another", "all", "any", "no", "other"},
    "ADP": {"in", "on", "at", "to", "from", "with", "over", "under", "into", "onto", "across", "through", "toward",
            "towards", "above", "below", "between", "along", "of", "for", "by", "about", "like", "after", "before",
            "off", "out", "while", "during", "as", "then", "and", "or", "but"},
    "NUM": {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "several", "few", "once", "twice", "half", "first", "second", "third"},
    "AUX": {"is", "are", "was", "were", "be", "being", "been", "am", "does", "do", "did", "has", "have", "had",
            "can", "could", "will", "would", "should", "may", "might", "must"},
    "PRON": {"he", "she", "they", "it", "him", "them", "someone", "somebody", "himself", "herself", "themselves",
             "itself", "who", "which", "i", "you", "we", "me", "us"},
    "ADV": {"again", "still", "very", "too", "quite", "repeatedly", "together", "away", "apart", "briefly"},
    "ADJ": {"big", "small", "wide", "long", "short", "tall", "full", "other", "same", "both"},
}


def lemma(word: str) -> str:
    """Crude English lemmatisation for tagging: plural/3rd-person -s, -ing, -ed, doubled consonants."""
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[:-len(suffix)]
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                stem = stem[:-1]  # running → run, hopped → hop
            return stem
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def tag(word: str) -> int:
    """Index into `TAGS` of one lower-case word."""
    base = lemma(word)
    for name, words in _VIP.items():
        if word in words or base in words:
            return _TAG[name]
    if word.isdigit():
        return _TAG["NUM"]
    for name, words in _CLOSED.items():
        if word in words:
            return _TAG[name]
    if word.endswith("ly"):
        return _TAG["ADV"]
    if word.endswith(("ing", "ed")):
        return _TAG["VERB"]
    return _TAG["NOUN"]


def encode_caption(caption: str, word_index: dict[str, int]) -> tuple[list[int], list[int]]:
    """``<sos> w… <eos>`` word ids (unknown words → `UNKNOWN`) and their tags (sos/eos → OTHER)."""
    words = split_words(caption)[:MAX_WORDS]
    ids = [SOS] + [word_index.get(w, UNKNOWN) for w in words] + [EOS]
    tags = [_TAG["OTHER"]] + [tag(w) for w in words] + [_TAG["OTHER"]]
    return ids, tags


def word_index(vocab) -> dict[str, int]:
    return {word: FIRST_WORD + i for i, word in enumerate(vocab)}


def read_glove(path: str | Path, vocab, dim: int) -> tuple[np.ndarray, int]:
    """Rows ``(len(vocab), dim)`` of a GloVe text file (``word v1 … vD`` per line) for the words of
    ``vocab`` (zeros where absent) and how many were found. Reads only the words it needs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such GloVe file; pass a text file with one 'word v1 … v{dim}' per line "
                        "(e.g. glove.6B.300d.txt) or drop --glove")
    index = {word: i for i, word in enumerate(vocab)}
    vectors = np.zeros((len(vocab), dim), dtype=np.float32)
    found = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            word, _, rest = line.rstrip("\n").partition(" ")
            if word not in index:
                continue
            values = rest.split()
            if len(values) != dim:
                raise UserError(f"{path}:{number}: {len(values)} numbers for {word!r}, but the evaluator's "
                                f"word_dim is {dim}; use a {dim}-d file or --set model.word_dim={len(values)}")
            vectors[index[word]] = np.asarray(values, dtype=np.float32)
            found += 1
    if found == 0:
        raise UserError(f"{path}: none of the dataset's {len(vocab)} words are in this file; is it a GloVe "
                        "text file (one 'word v1 … vD' per line)?")
    return vectors, found
