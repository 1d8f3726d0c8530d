"""Captions for synthetic clips: several lower-case phrasings of the whole clip, segments in order.

Each family turns its attributes into a list of verb phrases ("walks slowly to the left"); a caption
is a subject ("a person", "a woman", …) followed by one phrase per segment joined with "then".
Synonyms and word orders vary so a text model cannot memorise one string per action. "left"/"right"
are the subject's own sides (see `k2m_core.synth.motions`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import product

import numpy as np

SUBJECTS = ("a person", "a man", "a woman", "someone", "the person", "a human")
# Word stems every phrasing of a family contains (tests check it; models may rely on it).
VERBS: dict[str, tuple[str, ...]] = {
    "walk": ("walk", "stroll"), "run": ("run", "jog", "sprint"), "jump": ("jump", "leap"),
    "hop": ("hop",), "squat": ("squat",), "wave": ("wave",), "punch": ("punch",), "kick": ("kick",),
    "turn": ("turn",), "jumping_jacks": ("jumping jack", "star jump"), "bow": ("bow",),
    "raise_arms": ("raise", "lift"), "clap": ("clap",), "sit": ("sit",), "side_step": ("step", "shuffle"),
    "spin": ("spin", "twirl"), "crouch_walk": ("crouch", "sneak", "creep"), "march": ("march",),
    "stretch": ("stretch",), "idle": ("stand",),
}
_LOCOMOTION = ("walk", "run", "crouch_walk", "side_step", "march")
_NUMBER = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _expand(*templates: str) -> list[str]:
    """All spellings of templates with alternatives ``{a|b|}``, whitespace tidied."""
    out = []
    for template in templates:
        parts = template.replace("}", "{").split("{")
        options = [p.split("|") if i % 2 else [p] for i, p in enumerate(parts)]
        for combo in product(*options):
            text = " ".join("".join(combo).split()).replace(" ,", ",")
            if text not in out:
                out.append(text)
    return out


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{_NUMBER[n] if n < len(_NUMBER) else n} times")


def _count(n: int) -> str:
    return _NUMBER[n] if n < len(_NUMBER) else str(n)


_MIRRORED = {"left": "right", "counterclockwise": "clockwise", "clockwise": "counterclockwise"}


def _mirror(text: str, side: str) -> str:
    """Templates are written for the left; flip them for the right."""
    if side != "right":
        return text
    return re.sub("counterclockwise|clockwise|left", lambda m: _MIRRORED[m.group()], text)


_DIRECTION = {
    "forward": "{forward|forwards|straight ahead|ahead}",
    "backward": "{backward|backwards}",
    "left": "{to the left|towards the left|to the left side|leftwards}",
    "forward_left": "{diagonally forward to the left|forward and to the left|diagonally to the front left}",
    "turn_left": "{forward while turning left|in a curve to the left|forward, curving to the left}",
    "circle_left": "{in a circle to the left|in a counterclockwise circle, turning left|"
                   "around in a circle, turning left}",
}


def _direction(d: str) -> str:
    side = "right" if d.endswith("right") else "left"
    return _mirror(_DIRECTION[d.replace("right", "left")], side)


_SPEED = {"slow": "{slowly|at a slow pace|leisurely}", "normal": "{|at a steady pace}",
          "fast": "{quickly|fast|at a fast pace|briskly}"}
_ADVERB = {"slow": "slowly", "normal": "", "fast": "{quickly|briskly}"}  # fits before the verb


def _walk(a: dict) -> list[str]:
    d, sp = _direction(a["direction"]), _SPEED[a["speed"]]
    verb = "{walks|strolls}" if a["speed"] == "slow" else "walks"
    out = _expand(f"{verb} {d} {sp}", f"{_ADVERB[a['speed']]} {verb} {d}")
    if a["direction"] in ("left", "right"):
        out += _expand(f"turns {a['direction']} and {verb} {{forward|ahead|away}} {sp}")
    return out


def _run(a: dict) -> list[str]:
    verb = {"slow": "{jogs|jogs lightly|runs slowly}", "normal": "{runs|jogs}",
            "fast": "{sprints|runs fast|runs quickly}"}[a["speed"]]
    out = _expand(f"{verb} {_direction(a['direction'])}")
    if a["direction"] in ("left", "right"):
        out += _expand(f"turns {a['direction']} and {verb} {{forward|off}}")
    return out


def _crouch_walk(a: dict) -> list[str]:
    d, sp = _direction(a["direction"]), {"slow": "{slowly|}", "normal": "", "fast": "{quickly|}"}[a["speed"]]
    return _expand(f"walks {d} in a crouch {sp}", f"sneaks {d} crouched down {sp}",
                   f"crouches low and walks {d} {sp}", f"creeps {d} in a crouched position {sp}")


def _side_step(a: dict) -> list[str]:
    d, n = a["direction"], a["repetitions"]
    out = _expand(f"{{side steps|steps sideways|shuffles sideways|sidesteps}} to the {d} {_SPEED[a['speed']]}")
    if n <= 5:
        out += _expand(f"takes {_count(n)} {{side steps|steps sideways}} to the {d}",
                       f"steps to the {d} {_times(n)}")
    return out


def _march(a: dict) -> list[str]:
    return _expand(f"marches {{in place|on the spot}} {_SPEED[a['speed']]}",
                   "marches {in place|on the spot}, lifting the knees {high|up}")


def _turn(a: dict) -> list[str]:
    d = a["direction"]
    if a["angle"] >= 180:
        return _expand(f"turns around to the {d}", f"turns 180 degrees to the {d}",
                       f"makes a half turn to the {d}", f"turns around over the {d} shoulder")
    return _expand(f"turns {d}", f"turns to the {d}", f"turns 90 degrees to the {d}",
                   f"makes a quarter turn to the {d}", f"turns {d} in place")


def _spin(a: dict) -> list[str]:
    d, n = a["direction"], a["repetitions"]
    arms = "{with the arms stretched out|with arms out|}" if a["arms"] == "out" else "{with the arms pulled in|}"
    times = "{once|}" if n == 1 else _times(n)
    return _expand(f"{{spins|twirls}} around {times} to the {d} {arms}",
                   f"spins {d} in {'a full circle' if n == 1 else f'{_count(n)} full circles'} {arms}",
                   _mirror(f"{{spins|twirls}} {times} counterclockwise, to the left {arms}", d))


def _jump(a: dict) -> list[str]:
    n = a["repetitions"]
    times = "{once|}" if n == 1 else _times(n)
    if a["direction"] == "forward":
        out = _expand(f"{{jumps|leaps}} {{forward|ahead}} {times}")
        out += _expand("does a forward jump" if n == 1 else f"does {_count(n)} forward jumps")
    else:
        out = _expand(f"{{jumps|leaps}} {{in place|up and down|straight up|on the spot}} {times}")
        out += _expand("does a jump {in place|}" if n == 1 else f"does {_count(n)} jumps {{in place|}}")
    if a.get("height", 0) > 0.27 and a["direction"] != "forward":
        out += _expand(f"jumps high {{in the air|}} {times}")
    return out


def _hop(a: dict) -> list[str]:
    s, n = a["side"], a["repetitions"]
    where = "forward " if a["direction"] == "forward" else "{in place |}"
    return _expand(f"hops {where}on the {s} {{leg|foot}} {_times(n)}",
                   f"hops {_times(n)} {where}on the {s} {{leg|foot}}",
                   f"balances on the {s} leg and hops {where}{{{_times(n)}|}}")


def _jumping_jacks(a: dict) -> list[str]:
    n = _count(a["repetitions"])
    return _expand(f"{{does|performs}} {n} jumping jacks", "does jumping jacks {quickly|}" if a["speed"] == "fast"
                   else "does jumping jacks", f"does {n} star jumps")


def _squat(a: dict) -> list[str]:
    n, deep = a["repetitions"], "{deep |}" if a["depth"] == "deep" else ""
    sp = {"slow": "{slowly|}", "normal": "", "fast": "{quickly|}"}[a["speed"]]
    if n == 1:
        return _expand(f"squats down {sp} and stands back up", f"{{does|performs}} a {deep}squat {sp}",
                       f"squats {{down|}} {sp} and rises again")
    return _expand(f"{{does|performs}} {_count(n)} {deep}squats {sp}", f"squats {_times(n)} {sp}",
                   f"squats down and up {_times(n)}")


def _sit(a: dict) -> list[str]:
    if a["stand_up"]:
        return _expand("sits down {on a chair|} and then stands back up", "sits down for a moment, then stands up",
                       "sits down on {a chair|a seat} and gets up again")
    return _expand("sits down", "sits down on {a chair|a seat}", "lowers {the body|down} and sits")


def _bow(a: dict) -> list[str]:
    n = a["repetitions"]
    deep = "{deeply|low|}" if a["depth"] == "deep" else ""
    times = "" if n == 1 else _times(n)
    return _expand(f"bows {deep} {times}", f"bows forward {deep} {times}",
                   f"takes a {'deep ' if a['depth'] == 'deep' else ''}bow" if n == 1 else f"bows down {times}")


def _kick(a: dict) -> list[str]:
    s, n = a["side"], a["repetitions"]
    times = "{once|}" if n == 1 else _times(n)
    return _expand(f"kicks {{forward|}} with the {s} {{leg|foot}} {times}",
                   f"kicks the {s} leg {{forward|out}} {times}",
                   f"does a front kick with the {s} leg" if n == 1
                   else f"does {_count(n)} front kicks with the {s} leg")


def _punch(a: dict) -> list[str]:
    n = a["repetitions"]
    if a["side"] == "both":
        return _expand(f"throws {_count(n)} punches, alternating {{hands|fists}}",
                       f"punches {{forward|}} {_times(n)} with alternating fists",
                       "throws left and right punches" if n > 1 else "throws a punch")
    s = a["side"]
    if n == 1:
        return _expand(f"punches {{forward|}} with the {s} {{fist|hand}}", f"throws a {s} punch",
                       f"throws a punch with the {s} {{hand|fist}}")
    return _expand(f"punches {{forward|}} {_times(n)} with the {s} {{fist|hand}}",
                   f"throws {_count(n)} {s} punches", f"punches with the {s} {{fist|hand}} {_times(n)}")


def _wave(a: dict) -> list[str]:
    hand = "both hands" if a["side"] == "both" else f"the {a['side']} hand"
    arm = "both arms" if a["side"] == "both" else f"the {a['side']} arm"
    if a["style"] == "overhead":
        return _expand(f"waves {arm} {{above|over}} the head", f"waves {hand} high {{above the head|in the air}}",
                       f"raises {arm} and waves {'them' if a['side'] == 'both' else 'it'} overhead")
    return _expand(f"waves {{hello|}} with {hand}", f"waves {hand}", f"raises {hand} and waves",
                   f"waves {{hello|goodbye}} using {hand}")


def _raise_arms(a: dict) -> list[str]:
    both = a["side"] == "both"
    what = "{both arms|both hands}" if both else f"the {a['side']} {{arm|hand}}"
    where = {"forward": "{forward|in front|to shoulder height in front}",
             "up": "{above the head|over the head|up high|up}",
             "sideways": "{out to the side|sideways}" if not both else "{out to the sides|sideways}"}[a["mode"]]
    down = "{, then lowers them| and puts them down again}" if both else "{, then lowers it| and puts it down again}"
    return _expand(f"{{raises|lifts}} {what} {where}{down if a['lower'] else ''}")


def _clap(a: dict) -> list[str]:
    n, sp = a["repetitions"], {"slow": "{slowly|}", "normal": "", "fast": "{quickly|}"}[a["speed"]]
    return _expand(f"claps {{the hands|}} {sp} {_times(n)}", f"claps {_times(n)} in front of the chest",
                   f"claps {{the hands|}} {sp}")


def _stretch(a: dict) -> list[str]:
    if a["sides"] == 0:
        return _expand("stretches {both arms|the arms} {above|over} the head", "stretches upward with both arms raised",
                       "reaches up high with both arms, stretching")
    s = a["side"]
    if a["sides"] == 1:
        return _expand(f"stretches {{both arms|the arms}} over the head and leans to the {s}",
                       f"raises both arms for a stretch, bending to the {s}", f"stretches, leaning to the {s}")
    o = "right" if s == "left" else "left"
    return _expand(f"stretches {{both arms|the arms}} over the head and leans to the {s} and then to the {o}",
                   f"stretches, leaning first to the {s} and then to the {o}",
                   f"raises both arms for a stretch, bending to the {s} then to the {o}")


def _idle(a: dict) -> list[str]:
    return _expand("stands {still|in place|idle|and waits|around}")


_PHRASES: dict[str, Callable[[dict], list[str]]] = {
    "walk": _walk, "run": _run, "jump": _jump, "hop": _hop, "squat": _squat, "wave": _wave,
    "punch": _punch, "kick": _kick, "turn": _turn, "jumping_jacks": _jumping_jacks, "bow": _bow,
    "raise_arms": _raise_arms, "clap": _clap, "sit": _sit, "side_step": _side_step, "spin": _spin,
    "crouch_walk": _crouch_walk, "march": _march, "stretch": _stretch, "idle": _idle,
}


def phrases(segment: dict) -> list[str]:
    """Every verb phrase describing one segment (its attributes, with "family")."""
    return _PHRASES[segment["family"]](segment)


_STOP = ("stops", "comes to a stop", "stops and stands still", "halts and stands in place")


def caption_clip(segments: list[dict], rng: np.random.Generator) -> list[str]:
    """2–4 distinct captions of a clip whose segments are described by their attribute dicts; each
    caption takes a different phrasing of a segment while there are unused ones."""
    wanted = int(rng.integers(2, 5))
    options = []
    for i, seg in enumerate(segments):
        after_travel = i > 0 and segments[i - 1]["family"] in _LOCOMOTION
        opts = list(_STOP) if after_travel and seg["family"] == "idle" else phrases(seg)
        options.append([opts[k] for k in rng.permutation(len(opts))])
    captions: list[str] = []
    for attempt in range(12 * wanted):
        parts = []
        for i, (seg, opts) in enumerate(zip(segments, options)):
            phrase = opts[attempt % len(opts)]
            if i and segments[i - 1]["family"] in _LOCOMOTION and seg["family"] not in _LOCOMOTION \
                    and seg["family"] not in ("turn", "spin", "idle") and rng.random() < 0.6:
                phrase = str(rng.choice(["stops and ", "comes to a stop and ", "halts and "])) + phrase
            parts.append(phrase)
        text = parts[0]
        for part in parts[1:]:
            text += str(rng.choice([", then ", " and then ", ", and then ", ", and afterwards "])) + part
        caption = f"{rng.choice(SUBJECTS)} {text}."
        if caption not in captions:
            captions.append(caption)
        if len(captions) == wanted:
            break
    return captions
