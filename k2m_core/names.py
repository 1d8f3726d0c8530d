"""Text and ids from input data as file names that stay inside their folder.

A prompt or a clip id can hold anything: slashes, ``..``, characters a file system refuses, or
only letters a slug drops. Every name made from one keeps to ``[a-z0-9_]`` (prompts) or
``[A-Za-z0-9._~-]`` without a leading dot (ids), and when that loses information, 8 hex digits
of the SHA-1 of the exact text are appended, so different texts never share a name.
"""

from __future__ import annotations

import hashlib
import re

MAX_SLUG = 48
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,99}")


def slug(text: str) -> str:
    """Lower-case ASCII letters and digits, runs of anything else as one ``_``, at most 48 chars."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:MAX_SLUG].strip("_")


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def prompt_stem(prompt: str) -> str:
    """``"a man jumps"`` → ``a_man_jumps``; a prompt its slug does not give back exactly (capitals,
    punctuation, other scripts, more than 48 characters) gets the hash: ``a_man_jumps_3f2a1b9c``,
    ``motion_8e1d0c2a``."""
    stem = slug(prompt)
    if stem and stem.replace("_", " ") == prompt:
        return stem
    return f"{stem or 'motion'}_{text_hash(prompt)}"


def id_stem(identifier: str, fallback: str = "clip") -> str:
    """A clip (or video) id as a file name: the id itself when it is a plain name (letters, digits,
    ``. _ ~ -``, no leading dot, at most 100 characters), else its slug and hash."""
    if _SAFE_ID.fullmatch(identifier):
        return identifier
    return f"{slug(identifier) or fallback}_{text_hash(identifier)}"


def unique_stems(identifiers: list[str], fallback: str = "clip") -> list[str]:
    """`id_stem` of each of ``identifiers``, with ``_2``, ``_3``, … appended where one would repeat
    an earlier stem (the same id given twice, or ids differing only in case, which a
    case-insensitive file system would merge)."""
    taken: set[str] = set()
    stems = []
    for identifier in identifiers:
        stem = candidate = id_stem(identifier, fallback)
        n = 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{stem}_{n}"
        taken.add(candidate.lower())
        stems.append(candidate)
    return stems
