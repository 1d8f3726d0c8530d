"""File names made from prompts and ids (k2m_core.names): inside their folder, never shared."""

import pytest

from k2m_core.names import id_stem, prompt_stem, unique_stems


@pytest.mark.parametrize("identifier", ["../../../tmp/x", "/etc/passwd", "..", ".hidden", "a/b", "a\\b", "",
                                        "клип", "x" * 300, "nul\0byte"])
def test_id_stem_is_one_plain_file_name(identifier):
    stem = id_stem(identifier)
    assert stem and "/" not in stem and "\\" not in stem and not stem.startswith(".") and len(stem) <= 110
    assert stem.isascii() and "\0" not in stem


def test_plain_ids_keep_their_name_and_others_never_collide():
    assert id_stem("walk_001.take-2") == "walk_001.take-2"
    assert id_stem("a/b") != id_stem("a_b") and id_stem("a b") != id_stem("a_b")
    assert prompt_stem("a man jumps") == "a_man_jumps"
    assert prompt_stem("A MAN JUMPS!") != prompt_stem("a man jumps")
    assert prompt_stem("человек прыгает") != prompt_stem("человек бежит")


def test_unique_stems_separate_repeats_and_case_twins():
    assert unique_stems(["walk", "walk", "Walk", "run"]) == ["walk", "walk_2", "Walk_3", "run"]
    stems = unique_stems(["../x", "../x", "a/b"], "motion")
    assert len({s.lower() for s in stems}) == 3 and all("/" not in s for s in stems)
