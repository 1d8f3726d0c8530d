"""Procedural SMPL motions: the synthetic corpus that k2m's tests and demos train on.

A clip chains 1–3 segments ("walks forward, then stops and waves"). Each action family writes smooth
per-frame curves for a small set of anatomical *channels* (degrees: hip flexion, knee flexion,
shoulder abduction, …, see `CHANNELS`); segments are cross-faded over 0.4 s with a smoothstep weight
(C1); `_rotmats` turns the channels into SMPL local rotations. The root translation comes from the
feet: forward kinematics of the skeleton body at the clip's betas puts the lowest foot joint on the
ground, the root moves with the stance foot (so feet do not slide and the speed follows the stride),
and take-offs declared by a family follow a ballistic arc.

Conventions (world frame = SMPL's frame): y up, ground plane y = 0, the subject initially faces +z and
+x is the subject's **left** (SMPL's left joints sit at +x). Rotations follow the right-hand rule, so
yaw + (about +y) turns the subject to its left: counter-clockwise seen from above. "left"/"right" in
attributes and captions always mean the subject's own sides; a direction ("forward", "to the left")
is relative to the subject's facing at the start of that segment — for the first segment, +z.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.interpolate import CubicSpline, PchipInterpolator

from k2m_core.body.kinematics import FEET
from k2m_core.body.skeleton import SkeletonBody
from k2m_core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from k2m_core.synth.captions import caption_clip

FAMILIES: tuple[str, ...] = (
    "walk", "run", "jump", "hop", "squat", "wave", "punch", "kick", "turn", "jumping_jacks", "bow",
    "raise_arms", "clap", "sit", "side_step", "spin", "crouch_walk", "march", "stretch", "idle",
)
SPEEDS = ("slow", "normal", "fast")
SIDES = ("left", "right")
GRAVITY = 9.81
BLEND_SECONDS = 0.4  # cross-fade between segments


@dataclass
class Motion:
    family: str  # main action (for a composite clip: the first non-idle one)
    poses: np.ndarray  # (F, 72) float32 SMPL axis-angle: global_orient then 23 body joints
    transl: np.ndarray  # (F, 3) float32 metres, world frame (y up, ground y = 0, initial facing +z)
    betas: np.ndarray  # (10,) float32
    captions: list[str]  # 2–4 phrasings of the whole clip
    attributes: dict = field(default_factory=dict)  # the main segment's choices + "segments"


# --- channels -------------------------------------------------------------------------------------
# Degrees. Trunk: yaw (+ = facing turned to the left), pitch (+ = pelvis and trunk tilted forward),
# spine_bend (+ forward), spine_side (+ towards the left), spine_twist (+ chest turned left),
# neck_bend (+ nod down), neck_turn (+ look left). Per side ("l_"/"r_"): shoulder_abd (0 hanging,
# 90 out sideways, 180 overhead), shoulder_flex (0 hanging, 90 forward, 180 overhead; − behind),
# shoulder_horiz (+ towards the midline), shoulder_twist (+ external rotation), elbow (+ flexion),
# hip_flex (+ thigh forward of the vertical: legs do not inherit the pelvis pitch), hip_abd (+ leg out),
# hip_twist (+ toes out), knee (+ flexion), ankle (+ plantarflexion, toes down).
_TRUNK = ("yaw", "pitch", "spine_bend", "spine_side", "spine_twist", "neck_bend", "neck_turn")
_LIMB = ("shoulder_abd", "shoulder_flex", "shoulder_horiz", "shoulder_twist", "elbow",
         "hip_flex", "hip_abd", "hip_twist", "knee", "ankle")
CHANNELS: tuple[str, ...] = _TRUNK + tuple(f"{s}_{c}" for s in "lr" for c in _LIMB)
_CH = {name: i for i, name in enumerate(CHANNELS)}
_X, _Y, _Z = 0, 1, 2


def _joint_chains(a: Callable[[str], np.ndarray]) -> dict[int, list[tuple[int, np.ndarray]]]:
    """Per SMPL joint, the elementary rotations (axis, angle in rad) whose product, left to right, is
    its local rotation. ``a(name)`` gives a channel in radians. Mirror symmetry flips the sign of y/z
    rotations on the right side (``m``)."""
    chains = {0: [(_Y, a("yaw")), (_X, a("pitch"))]}
    for joint, share in ((3, 0.4), (6, 0.3), (9, 0.3)):  # the spine bends over three joints
        chains[joint] = [(_Y, share * a("spine_twist")), (_X, share * a("spine_bend")),
                         (_Z, -share * a("spine_side"))]
    for joint, share in ((12, 0.4), (15, 0.6)):
        chains[joint] = [(_Y, share * a("neck_turn")), (_X, share * a("neck_bend"))]
    for p, m, (collar, shoulder, elbow, hip, knee, ankle) in (("l_", 1, (13, 16, 18, 1, 4, 7)),
                                                              ("r_", -1, (14, 17, 19, 2, 5, 8))):
        abd, flex = a(p + "shoulder_abd"), a(p + "shoulder_flex")
        # The collarbone follows an arm raised above the shoulder; the shoulder undoes it so the
        # arm's direction is the one the channels ask for.
        shrug = 0.2 * (np.maximum(abd - np.pi / 2, 0) + np.maximum(flex - np.pi / 2, 0))
        chains[collar] = [(_Z, m * shrug)]
        # T-pose arm → hang (z) → swing forward (x) → across the body (y); twist about its own axis.
        chains[shoulder] = [(_Z, -m * shrug), (_Y, -m * a(p + "shoulder_horiz")), (_X, -flex),
                            (_Z, m * (abd - np.pi / 2)), (_X, -a(p + "shoulder_twist"))]
        chains[elbow] = [(_Y, -m * a(p + "elbow"))]
        chains[hip] = [(_X, -a("pitch")), (_Z, m * a(p + "hip_abd")), (_X, -a(p + "hip_flex")),
                       (_Y, m * a(p + "hip_twist"))]
        chains[knee] = [(_X, a(p + "knee"))]
        chains[ankle] = [(_X, a(p + "ankle"))]
    return chains


def _rotmats(channels: np.ndarray) -> torch.Tensor:
    """Channels ``(F, C)`` in degrees → SMPL local rotations ``(F, 24, 3, 3)`` float64."""
    radians = np.radians(channels)
    chains = _joint_chains(lambda name: radians[:, _CH[name]])
    factors = [(j, axis, angle) for j, chain in chains.items() for axis, angle in chain]
    vectors = np.zeros((len(factors), len(channels), 3))
    for k, (_, axis, angle) in enumerate(factors):
        vectors[k, :, axis] = angle
    elementary = axis_angle_to_matrix(torch.from_numpy(vectors))  # (K, F, 3, 3), one batched call
    rotmats = torch.eye(3, dtype=torch.float64).repeat(len(channels), 24, 1, 1)
    for k, (j, _, _) in enumerate(factors):
        rotmats[:, j] = rotmats[:, j] @ elementary[k]
    return rotmats


# --- curve helpers --------------------------------------------------------------------------------
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _ramp(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """0 before t0, 1 after t1, smoothstep between (C1)."""
    return _smoothstep((t - t0) / max(t1 - t0, 1e-6))


def _plateau(t: np.ndarray, t0: float, t1: float, rise: float) -> np.ndarray:
    """0 → 1 over [t0, t0+rise], back to 0 over [t1−rise, t1]."""
    rise = min(rise, max((t1 - t0) / 2, 1e-3))
    return _ramp(t, t0, t0 + rise) * (1 - _ramp(t, t1 - rise, t1))


def _glide(t: np.ndarray, t0: float, t1: float, ease: float) -> np.ndarray:
    """0 → 1 between t0 and t1 at constant speed, easing in and out over ``ease`` seconds (C1)."""
    progress = np.cumsum(_plateau(t, t0, t1, ease))
    return progress / max(progress[-1], 1e-9)


def _keys(t: np.ndarray, times: Sequence[float], values) -> np.ndarray:
    """Shape-preserving C1 curve (PCHIP) through keyframes ``values (K,)`` or ``(K, m)``; held
    constant outside the keys."""
    times = np.maximum.accumulate(np.asarray(times, dtype=float)) + 1e-6 * np.arange(len(times))
    curve = PchipInterpolator(times, np.asarray(values, dtype=float), axis=0)
    return curve(np.clip(t, times[0], times[-1]))


class _Style:
    """Per-clip individuality: resting posture, amplitude and tempo factors, breathing-like sway."""

    def __init__(self, rng: np.random.Generator):
        self.rest = np.zeros(len(CHANNELS))
        for p in ("l_", "r_"):
            self.rest[_CH[p + "shoulder_abd"]] = rng.uniform(6, 12)
            self.rest[_CH[p + "elbow"]] = rng.uniform(8, 20)
            knee = rng.uniform(2, 5)
            self.rest[_CH[p + "knee"]], self.rest[_CH[p + "ankle"]] = knee, -knee  # feet flat
            self.rest[_CH[p + "hip_twist"]] = rng.uniform(0, 8)
        self.rest[_CH["pitch"]] = rng.uniform(-1, 3)
        self.rest[_CH["neck_bend"]] = rng.uniform(-3, 6)
        self.amp = rng.uniform(0.85, 1.15)
        self.tempo = rng.uniform(0.9, 1.1)
        self.sway = (rng.uniform(0.5, 1.5), rng.uniform(0.15, 0.35), rng.uniform(0, 2 * np.pi))


class _Seg:
    """One segment under construction: channel offsets from the rest pose ``(n, C)``, take-offs."""

    def __init__(self, n: int, fps: float, rng: np.random.Generator, style: _Style):
        self.n, self.fps, self.rng, self.style = n, fps, rng, style
        self.t = np.arange(n) / fps
        self.dur = n / fps
        self.ch = np.zeros((n, len(CHANNELS)))
        # Airborne phases: take-off frame, landing frame, distance forward (m; None: keep the pace).
        self.flights: list[tuple[int, int, float | None]] = []

    def __getitem__(self, name: str) -> np.ndarray:
        return self.ch[:, _CH[name]]

    def __setitem__(self, name: str, value) -> None:
        self.ch[:, _CH[name]] = value

    def frame(self, time: float) -> int:
        return int(np.clip(round(time * self.fps), 0, self.n - 1))

    def timeline(self, unit: float, reps: int, lead: float = 0.3,
                 fill: bool = True) -> tuple[int, np.ndarray, float]:
        """Fit ``reps`` actions of ``unit`` seconds into the segment: fewer if they do not fit,
        slower and (``fill``) more if they would leave most of it idle; the spare time is standing
        before/after. A segment too short for even one is sped up at most 1.4× and then cut off at
        its end (clips shorter than the action). Returns (reps, start times, period)."""
        room = max(self.dur - 2 * lead, 0.5 * self.dur)
        fewest = np.ceil(0.4 * room / unit) if fill else 1
        reps = int(np.clip(reps, fewest, max(1, room // unit)))
        period = float(np.clip(room / reps, 0.7 * unit, 1.25 * unit))
        spare = max(self.dur - reps * period, 0.0)
        start = min(lead, spare / 2) + max(spare - 2 * lead, 0) * self.rng.uniform(0.3, 0.7)
        return reps, start + period * np.arange(reps), period

    def arms(self, sides: Sequence[str], weight: np.ndarray, **targets: float) -> None:
        """Blend the named arm channels (``abd=…, flex=…``) of the given sides towards targets."""
        names = {"abd": "shoulder_abd", "flex": "shoulder_flex", "horiz": "shoulder_horiz",
                 "twist": "shoulder_twist", "elbow": "elbow"}
        for side in sides:
            for key, value in targets.items():
                name = f"{side[0]}_{names[key]}"
                self[name] += weight * (value - self.style.rest[_CH[name]] - self[name])

    def crouch(self, depth: np.ndarray, thigh: float, shin: float, sides: str = "lr") -> None:
        """Bend the legs with the feet flat: thigh forward ``thigh``°, shin back ``shin``°, × depth."""
        for s in sides:
            self[s + "_hip_flex"] += depth * thigh
            self[s + "_knee"] += depth * (thigh + shin)
            self[s + "_ankle"] -= depth * shin

    def bounces(self, takeoffs: Sequence[float], flight: float, *, prep: float, absorb: float,
                forward: float = 0.0, tuck: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
        """Leg spring for jumps: crouch (0..1) and toe point (0..1) curves around each take-off;
        registers the flights. Take-offs must be ≥ prep + flight + absorb apart."""
        times, crouch, point = [0.0], [0.0], [0.0]
        for t0 in takeoffs:
            if times[-1] > t0 - prep:  # hops in quick succession: land straight into the next crouch
                times, crouch, point = times[:-1], crouch[:-1], point[:-1]
            times += [t0 - prep, t0, t0 + flight / 2, t0 + flight, t0 + flight + absorb]
            crouch += [1.0, 0.0, tuck, 0.0, 0.8]
            point += [0.0, 1.0, 0.7, 0.9, 0.0]  # toes first at take-off and landing
            self.flights.append((self.frame(t0), self.frame(t0 + flight), forward))
        times.append(times[-1] + 1.5 * absorb)
        crouch.append(0.0)
        point.append(0.0)
        curves = _keys(self.t, times, np.stack([crouch, point], 1))
        return curves[:, 0], curves[:, 1]


def _periodic(table: tuple) -> CubicSpline:
    """C2 periodic curves through ``(cycle fraction, values…)`` rows."""
    x = [row[0] for row in table] + [1.0]
    y = [row[1:] for row in table] + [table[0][1:]]
    return CubicSpline(np.array(x), np.array(y, dtype=float), bc_type="periodic")


# One gait cycle from the left heel strike: thigh angle from the vertical, knee flexion, ankle
# plantarflexion (degrees), simplified from published normal-gait averages. Walking: stance 0–60 %
# (heel strike, foot flat, heel rise, toe-off), swing 60–100 %. Running: stance 0–35 %, flight until
# the other foot lands at 50 %. The stance rows keep the planted foot moving back at an even pace
# (an even body speed), and a landing foot already moves back at that pace.
_WALK_CYCLE = _periodic(((0.0, 25, 3, 0), (0.1, 22, 12, 10), (0.3, 5, 8, -3), (0.5, -13, 5, -8),
                         (0.6, -10, 35, 15), (0.73, 15, 60, 5), (0.87, 26, 30, 0)))
_RUN_CYCLE = _periodic(((0.0, 32, 15, 0), (0.15, 20, 38, -18), (0.35, -20, 18, 28), (0.5, -2, 75, 10),
                        (0.65, 28, 100, 0), (0.85, 45, 45, 0), (0.95, 40, 18, 5)))
_RUN_FLIGHT = (0.35, 0.5)  # left toe-off → right foot strike (and half a cycle later, mirrored)


def _gait(s: _Seg, cadence, env: np.ndarray, cycle: CubicSpline, *, scale: float, arm: float,
          elbow: float, hip_off: float = 0.0, knee_off: float = 0.0, reverse: bool = False) -> np.ndarray:
    """Legs follow ``cycle`` (angles × ``scale``, plus offsets that keep the foot's pitch) and arms
    swing against their own-side leg, all × ``env``; the root travels through the foot lock.
    ``cadence`` in steps/s (one cycle = two steps). Returns the left leg's cycle count per frame."""
    cycles = np.cumsum(np.broadcast_to(cadence, (s.n,))) / (2 * s.fps) * (-1 if reverse else 1)
    cycles += s.rng.uniform(0, 1)
    thigh = cycle(np.linspace(0, 1, 32))[:, 0] * scale
    middle, half_range = (thigh.max() + thigh.min()) / 2, (thigh.max() - thigh.min()) / 2
    for p, c in (("l_", cycles), ("r_", cycles + 0.5)):
        hip, knee, ankle = (cycle(c % 1.0) * scale).T
        swing = (hip - middle) / half_range  # −1 (leg back) … 1 (leg forward)
        s[p + "hip_flex"] += env * (hip + hip_off)
        s[p + "knee"] += env * (knee + knee_off)
        s[p + "ankle"] += env * (ankle + hip_off - knee_off)
        s[p + "shoulder_flex"] -= env * arm * swing
        s[p + "elbow"] += env * elbow * np.clip(1 - swing, 0, 2) / 2  # bends more when swung forward
        if p == "l_":
            s["spine_twist"] += env * 0.25 * arm * swing  # chest counter-rotates to the pelvis
    return cycles


_HEADING = {"left": 90.0, "right": -90.0, "forward_left": 45.0, "forward_right": -45.0}


def _travel(s: _Seg, o: dict, directions: Sequence[str], gaits: dict[str, dict],
            cycle: CubicSpline = _WALK_CYCLE, circle: float = 4.5) -> tuple[dict, np.ndarray, np.ndarray]:
    """Shared by walk/run/crouch_walk: face the heading, then step at the chosen speed. Circles are
    drawn only for segments of at least ``circle`` seconds (a tighter one is a pirouette)."""
    rng = s.rng
    speed = o.get("speed", rng.choice(SPEEDS, p=(0.3, 0.45, 0.25)))
    if s.dur < circle:
        directions = [d for d in directions if not d.startswith("circle_")]
    weights = np.array([4.0 if d == "forward" else 1.0 for d in directions])
    direction = o.get("direction", rng.choice(directions, p=weights / weights.sum()))
    kw = dict(gaits[speed])
    kw["cadence"] *= s.style.tempo * rng.uniform(0.95, 1.05)
    kw["scale"] *= s.style.amp ** 0.5 * rng.uniform(0.93, 1.07)
    kw["arm"] *= s.style.amp * rng.uniform(0.9, 1.1)
    pitch = kw.pop("pitch")
    env = _ramp(s.t, 0.0, rng.uniform(0.4, 0.7))  # starts from standing
    heading = _HEADING.get(direction, 0.0)
    s["yaw"] += heading * _ramp(s.t, 0.0, 0.3 + abs(heading) / 100)
    if direction.startswith(("turn_", "circle_")):
        rate = rng.uniform(25, 45) if direction.startswith("turn_") else 360 / max(s.dur - 0.3, 0.5)
        s["yaw"] += (1 if direction.endswith("left") else -1) * rate * np.cumsum(env) / s.fps
    s["pitch"] += env * pitch
    cycles = _gait(s, env=env, cycle=cycle, reverse=direction == "backward", **kw)
    return {"speed": str(speed), "direction": str(direction)}, cycles, env


# --- families -------------------------------------------------------------------------------------
# Each takes the segment and user-fixed choices ``o`` (any attribute it returns), writes channels and
# returns its attributes (what the captions describe).
_WALK_DIRECTIONS = ("forward", "backward", "left", "right", "forward_left", "forward_right",
                    "turn_left", "turn_right", "circle_left", "circle_right")


def _walk(s: _Seg, o: dict) -> dict:
    gaits = {speed: dict(cadence=c, scale=k, arm=a, elbow=e, pitch=p)
             for speed, c, k, a, e, p in (("slow", 1.5, 0.8, 10, 8, 1), ("normal", 1.85, 1.0, 15, 12, 2),
                                          ("fast", 2.15, 1.2, 22, 20, 4))}
    attrs, _, _ = _travel(s, o, _WALK_DIRECTIONS, gaits)
    if attrs["direction"] == "backward":
        s["pitch"] -= 3 * _ramp(s.t, 0, 0.5)
    return attrs


def _run(s: _Seg, o: dict) -> dict:
    gaits = {speed: dict(cadence=c, scale=k, arm=a, elbow=30, pitch=p)
             for speed, c, k, a, p in (("slow", 2.5, 0.8, 25, 6), ("normal", 2.7, 0.9, 30, 8),
                                       ("fast", 2.95, 1.0, 36, 11))}
    directions = tuple(d for d in _WALK_DIRECTIONS if d != "backward")
    attrs, cycles, env = _travel(s, o, directions, gaits, _RUN_CYCLE, circle=7.0)
    for p in ("l_", "r_"):
        s[p + "elbow"] += env * 65  # bent arms
    # Airborne between one foot's toe-off and the other's strike, twice per cycle.
    step_phase = (2 * (cycles - _RUN_FLIGHT[0])) % 1.0
    airborne = (step_phase < 2 * (_RUN_FLIGHT[1] - _RUN_FLIGHT[0])) & (env > 0.95)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], airborne.astype(int), [0]]))).reshape(-1, 2)
    for first, stop in edges:  # [first airborne frame, first frame back on the ground)
        if first > 0 and stop < s.n:
            s.flights.append((int(first - 1), int(stop), None))
    return attrs


def _crouch_walk(s: _Seg, o: dict) -> dict:
    gaits = {speed: dict(cadence=c, scale=0.65, arm=8, elbow=15, hip_off=50, knee_off=75, pitch=28)
             for speed, c in (("slow", 1.1), ("normal", 1.35), ("fast", 1.6))}
    attrs, _, env = _travel(s, o, _WALK_DIRECTIONS[:6], gaits)
    s["spine_bend"] += env * 10
    s["neck_bend"] -= env * 20  # looks ahead
    s.arms(SIDES, env, flex=35, elbow=60)
    return attrs


def _side_step(s: _Seg, o: dict) -> dict:
    rng = s.rng
    direction = o.get("direction", rng.choice(SIDES))
    speed = o.get("speed", rng.choice(SPEEDS, p=(0.3, 0.45, 0.25)))
    period = {"slow": 1.3, "normal": 1.0, "fast": 0.75}[speed] / s.style.tempo
    width = rng.uniform(26, 36) * s.style.amp  # hip abduction at the widest stance, both legs
    reps, starts, period = s.timeline(period, o.get("repetitions", 99), lead=0.2)
    u = np.clip((s.t - starts[0]) / period, 0, reps)  # step cycles done
    frac = u - np.floor(u)
    spread = width / 2 * (1 - np.cos(2 * np.pi * u)) / 2  # feet apart, then together again
    lead, trail = ("l_", "r_") if direction == "left" else ("r_", "l_")
    for p, window in ((lead, (0.05, 0.45)), (trail, (0.55, 0.95))):
        lift = np.sin(np.pi * np.clip((frac - window[0]) / (window[1] - window[0]), 0, 1)) ** 2
        s[p + "hip_abd"] += spread
        s.crouch(lift, 12, 20, p[0])
    s.arms(SIDES, _plateau(s.t, starts[0] - 0.2, starts[0] + reps * period + 0.2, 0.3), abd=14)
    return {"direction": str(direction), "speed": str(speed), "repetitions": reps}


def _march(s: _Seg, o: dict) -> dict:
    speed = o.get("speed", s.rng.choice(SPEEDS, p=(0.3, 0.45, 0.25)))
    cadence = {"slow": 1.4, "normal": 1.8, "fast": 2.3}[speed] * s.style.tempo
    lift_hip, lift_knee = s.rng.uniform(50, 75) * s.style.amp, s.rng.uniform(70, 95)
    env = _plateau(s.t, 0.0, s.dur, 0.5)
    phase = np.pi * cadence * s.t + s.rng.uniform(0, 2 * np.pi)
    for p, sign in (("l_", 1), ("r_", -1)):
        lift = np.maximum(sign * np.sin(phase), 0) ** 2
        s[p + "hip_flex"] += env * lift * lift_hip
        s[p + "knee"] += env * lift * lift_knee
        s[p + "ankle"] += env * lift * 10
        s[p + "shoulder_flex"] -= env * sign * np.sin(phase) * 30
        s[p + "elbow"] += env * 60
    return {"speed": str(speed)}


def _turn_steps(s: _Seg, angle: float, t0: float, t1: float, cadence: float) -> None:
    """Yaw by ``angle``° between t0 and t1 while stepping on the spot (the stance foot pivots)."""
    s["yaw"] += angle * _glide(s.t, t0, t1, min(0.35, (t1 - t0) / 3))
    env = _plateau(s.t, t0 - 0.1, t1 + 0.2, 0.2)
    phase = np.pi * cadence * (s.t - t0)
    for p, sign in (("l_", 1), ("r_", -1)):
        s.crouch(env * np.maximum(sign * np.sin(phase), 0) ** 2, 15, 20, p[0])


def _turn(s: _Seg, o: dict) -> dict:
    direction = o.get("direction", s.rng.choice(SIDES))
    angle = int(o.get("angle", s.rng.choice([90, 180], p=(0.55, 0.45))))
    duration = s.rng.uniform(0.9, 1.3) * (angle / 90) ** 0.8 / s.style.tempo
    _, (t0,), duration = s.timeline(max(duration, 0.9), 1, fill=False)
    _turn_steps(s, angle if direction == "left" else -angle, t0, t0 + duration, 2.2)
    return {"direction": str(direction), "angle": angle}


def _spin(s: _Seg, o: dict) -> dict:
    direction = o.get("direction", s.rng.choice(SIDES))
    turns = int(o.get("repetitions", s.rng.choice([1, 2], p=(0.75, 0.25))))
    arms = o.get("arms", s.rng.choice(["out", "in"]))
    _, (t0,), duration = s.timeline(360 * turns / s.rng.uniform(280, 360), 1, fill=False)
    _turn_steps(s, 360 * turns * (1 if direction == "left" else -1), t0, t0 + duration, 3.0)
    pose = dict(abd=65, elbow=20) if arms == "out" else dict(abd=20, flex=45, horiz=35, elbow=100)
    s.arms(SIDES, _plateau(s.t, t0 - 0.3, t0 + duration + 0.3, 0.35), **pose)
    return {"direction": str(direction), "repetitions": turns, "arms": str(arms)}


def _jump(s: _Seg, o: dict) -> dict:
    rng = s.rng
    direction = o.get("direction", rng.choice(["in_place", "forward"], p=(0.55, 0.45)))
    height = rng.uniform(0.15, 0.32) * s.style.amp
    flight = np.sqrt(8 * height / GRAVITY)  # ballistic: apex g·T²/8
    unit = 0.6 + flight + 0.7
    wanted = o.get("repetitions", rng.choice([1, 2, 3], p=(0.45, 0.35, 0.2)))
    reps, starts, period = s.timeline(unit, wanted)
    k = min(1.0, period / unit)  # compression for very short clips
    distance = rng.uniform(0.4, 0.9) if direction == "forward" else 0.0
    takeoffs, landings = starts + 0.6 * k, starts + (0.6 + flight) * k
    crouch, point = s.bounces(takeoffs, flight * k, prep=0.3 * k, absorb=0.25 * k, forward=distance)
    s.crouch(crouch, rng.uniform(55, 70), rng.uniform(20, 30))
    s["pitch"] += crouch * rng.uniform(20, 30) + point * 5
    for p in ("l_", "r_"):
        s[p + "ankle"] += point * 35
    # Arms swing back in the crouch and up through the take-off.
    times = np.stack([starts, starts + 0.3 * k, takeoffs, (takeoffs + landings) / 2, landings,
                      landings + 0.45 * k], 1).ravel()
    swing = _keys(s.t, times, np.tile([0, -25, 60, 110 if height > 0.25 else 80, 40, 0], reps))
    s.arms(SIDES, np.ones(s.n), flex=0, elbow=20)
    for p in ("l_", "r_"):
        s[p + "shoulder_flex"] += swing
    return {"direction": str(direction), "repetitions": reps, "height": round(float(height), 2)}


def _hop(s: _Seg, o: dict) -> dict:
    rng = s.rng
    side = o.get("side", rng.choice(SIDES))  # the leg hopped on
    direction = o.get("direction", rng.choice(["in_place", "forward"], p=(0.65, 0.35)))
    flight = np.sqrt(8 * rng.uniform(0.07, 0.11) / GRAVITY)
    unit = flight + rng.uniform(0.32, 0.45) / s.style.tempo
    reps, starts, period = s.timeline(unit, o.get("repetitions", rng.integers(2, 6)), lead=0.6)
    k = min(1.0, period / unit)
    crouch, point = s.bounces(starts + 0.2 * k, flight * k, prep=0.18 * k, absorb=0.12 * k,
                              forward=rng.uniform(0.15, 0.3) if direction == "forward" else 0.0,
                              tuck=0.0)
    stance, free = side[0], "r" if side == "left" else "l"
    s.crouch(crouch, 25, 15, stance)
    s[stance + "_ankle"] += point * 30
    hold = _plateau(s.t, starts[0] - 0.5, starts[-1] + period + 0.4, 0.35)
    s[free + "_hip_flex"] += hold * rng.uniform(15, 35)
    s[free + "_knee"] += hold * rng.uniform(70, 90)
    s["spine_side"] += hold * (4 if side == "left" else -4)  # over the stance leg
    s.arms(SIDES, hold, abd=rng.uniform(25, 45), elbow=30)
    return {"side": str(side), "direction": str(direction), "repetitions": reps}


def _jumping_jacks(s: _Seg, o: dict) -> dict:
    rng = s.rng
    speed = o.get("speed", rng.choice(SPEEDS, p=(0.25, 0.5, 0.25)))
    period = {"slow": 1.4, "normal": 1.15, "fast": 0.95}[speed] / s.style.tempo
    flight = np.sqrt(8 * rng.uniform(0.08, 0.11) / GRAVITY)
    reps, starts, period = s.timeline(period, o.get("repetitions", rng.integers(2, 6)))
    k = period / max(period, 0.95)
    takeoffs = np.stack([starts + 0.1 * period, starts + 0.6 * period], 1).ravel()
    crouch, point = s.bounces(takeoffs, flight * k, prep=0.1 * period, absorb=0.12 * period, tuck=0.0)
    s.crouch(crouch, 20, 15)
    # Open on the first hop of each jack, close on the second, the limbs moving around the flight.
    times = np.stack([takeoffs - 0.08 * period, takeoffs + flight * k + 0.12 * period], 1).ravel()
    opened = _keys(s.t, np.concatenate([[0], times]), np.concatenate([[0], np.tile([0, 1, 1, 0], reps)]))
    wide = rng.uniform(14, 20)
    for p in ("l_", "r_"):
        s[p + "ankle"] += point * 30
        s[p + "hip_abd"] += opened * wide
    s.arms(SIDES, opened, abd=rng.uniform(155, 170), elbow=10)
    return {"speed": str(speed), "repetitions": reps}


def _squat(s: _Seg, o: dict) -> dict:
    rng = s.rng
    speed = o.get("speed", rng.choice(SPEEDS, p=(0.3, 0.45, 0.25)))
    unit = {"slow": 3.0, "normal": 2.2, "fast": 1.6}[speed] / s.style.tempo
    wanted = o.get("repetitions", rng.choice([1, 2, 3, 4], p=(0.35, 0.3, 0.2, 0.15)))
    reps, starts, period = s.timeline(unit, wanted)
    thigh = rng.uniform(65, 95)
    depth = _keys(s.t, np.concatenate([[0]] + [[t, t + 0.45 * period, t + 0.55 * period, t + period] for t in starts]),
                  np.concatenate([[0], np.tile([0, 1, 1, 0], reps)]))
    s.crouch(depth, thigh, rng.uniform(20, 32))
    s["pitch"] += depth * rng.uniform(25, 40)
    s["neck_bend"] -= depth * 15
    arms_forward = rng.random() < 0.6
    s.arms(SIDES, depth, flex=rng.uniform(75, 95) if arms_forward else 45, elbow=10 if arms_forward else 40)
    return {"speed": str(speed), "repetitions": reps, "depth": "deep" if thigh > 85 else "normal"}


def _sit(s: _Seg, o: dict) -> dict:
    rng = s.rng
    stand_up = bool(o.get("stand_up", rng.random() < 0.6))
    down, up = rng.uniform(1.0, 1.5) / s.style.tempo, rng.uniform(1.0, 1.4) / s.style.tempo
    seated = rng.uniform(0.8, 2.5)
    unit = down + seated + (up if stand_up else 0.0)
    _, (t0,), period = s.timeline(unit, 1, lead=0.3, fill=False)
    k = period / unit
    if not stand_up:  # stays seated to the end of the segment
        t0 = min(t0, 0.4)
    t_up = t0 + (down + seated) * k
    times = [0, t0, t0 + 0.6 * down * k, t0 + down * k]
    depth, lean = [0, 0, 0.6, 1], [0, 0, 35, 12]
    if stand_up:
        times += [t_up, t_up + 0.4 * up * k, t_up + up * k]
        depth += [1, 0.6, 0]
        lean += [12, 40, 0]
    curves = _keys(s.t, times, np.stack([depth, lean], 1))
    s.crouch(curves[:, 0], rng.uniform(85, 95), rng.uniform(5, 12))
    s["pitch"] += curves[:, 1]
    s.arms(SIDES, curves[:, 0], flex=rng.uniform(30, 45), elbow=rng.uniform(35, 55))  # hands on thighs
    return {"stand_up": stand_up}


def _bow(s: _Seg, o: dict) -> dict:
    rng = s.rng
    depth = rng.uniform(25, 65) * s.style.amp
    wanted = o.get("repetitions", rng.choice([1, 2], p=(0.7, 0.3)))
    reps, starts, period = s.timeline(rng.uniform(2.0, 2.8) / s.style.tempo, wanted)
    bend = _keys(s.t, np.concatenate([[0]] + [[t, t + 0.35 * period, t + 0.6 * period, t + period] for t in starts]),
                 np.concatenate([[0], np.tile([0, 1, 1, 0], reps)]))
    s["pitch"] += bend * 0.6 * depth
    s["spine_bend"] += bend * 0.4 * depth
    s["neck_bend"] += bend * 15
    for p in ("l_", "r_"):
        s[p + "shoulder_flex"] += bend * 0.85 * depth  # arms keep hanging under gravity
        s[p + "shoulder_abd"] -= bend * 4
    return {"repetitions": reps, "depth": "deep" if depth > 50 else "normal"}


def _kick(s: _Seg, o: dict) -> dict:
    rng = s.rng
    side = o.get("side", rng.choice(SIDES))
    wanted = o.get("repetitions", rng.choice([1, 2, 3], p=(0.55, 0.3, 0.15)))
    reps, starts, period = s.timeline(1.6 / s.style.tempo, wanted, lead=0.4)
    height = rng.uniform(70, 95) * s.style.amp
    times = np.concatenate([[0]] + [[t, t + 0.3 * period, t + 0.5 * period, t + 0.68 * period, t + period]
                                    for t in starts])
    #                 hip     knee  ankle lean-back
    pose = np.array([[0, 0, 0, 0], [55, 95, 0, 3], [height, 5, 25, 8], [50, 85, 0, 3], [0, 0, 0, 0]])
    curves = _keys(s.t, times, np.concatenate([np.zeros((1, 4)), np.tile(pose, (reps, 1))]))
    kicking, standing = side[0], "r" if side == "left" else "l"
    s[kicking + "_hip_flex"] += curves[:, 0]
    s[kicking + "_knee"] += curves[:, 1]
    s[kicking + "_ankle"] += curves[:, 2]
    s["pitch"] -= curves[:, 3]
    guard = _plateau(s.t, starts[0] - 0.3, starts[-1] + period + 0.1, 0.3)
    s.crouch(guard, 8, 8, standing)
    s["spine_side"] += guard * (3 if standing == "l" else -3)
    s.arms(SIDES, guard, abd=25, flex=20, elbow=80)
    return {"side": str(side), "repetitions": reps}


def _punch(s: _Seg, o: dict) -> dict:
    rng = s.rng
    side = o.get("side", rng.choice(["left", "right", "both"], p=(0.35, 0.35, 0.3)))
    unit = rng.uniform(0.5, 0.75) / s.style.tempo
    reps, starts, period = s.timeline(unit, o.get("repetitions", rng.integers(1, 5)), lead=0.6)
    guard = _plateau(s.t, starts[0] - 0.45, starts[-1] + period + 0.35, 0.35)
    s.arms(SIDES, guard, abd=12, flex=40, horiz=25, twist=-15, elbow=125)
    s.crouch(guard, 10, 10)
    first = rng.choice(SIDES)
    for i, t in enumerate(starts):
        arm = side if side != "both" else SIDES[(SIDES.index(first) + i) % 2]
        strike = _keys(s.t, [t, t + 0.35 * period, t + 0.5 * period, t + period], [0, 1, 1, 0])
        s.arms([arm], strike, abd=5, flex=88, horiz=12, twist=0, elbow=5)
        s["spine_twist"] += strike * (18 if arm == "right" else -18)  # the shoulder drives forward
    return {"side": str(side), "repetitions": reps}


def _wave(s: _Seg, o: dict) -> dict:
    rng = s.rng
    side = o.get("side", rng.choice(["left", "right", "both"], p=(0.4, 0.45, 0.15)))
    style = o.get("style", rng.choice(["hello", "overhead"]))
    freq = rng.uniform(1.5, 2.5) * s.style.tempo
    waves, starts, period = s.timeline(1 / freq, o.get("repetitions", rng.integers(2, 6)), lead=1.0)
    t0, t1 = starts[0], starts[-1] + period  # waving; the arm rises before and lowers after
    up = _plateau(s.t, t0 - 0.7, t1 + 0.7, 0.7)
    osc = np.sin(2 * np.pi * np.clip((s.t - t0) / period, 0, waves)) * up
    sides = SIDES if side == "both" else [side]
    if style == "hello":  # upper arm out and up, forearm vertical, waving from the elbow
        s.arms(sides, up, abd=rng.uniform(100, 120), twist=90, elbow=75, flex=10)
        for p in sides:
            s[p[0] + "_elbow"] += osc * 25
    else:  # whole arm overhead, swaying
        s.arms(sides, up, abd=rng.uniform(145, 160), elbow=20)
        for p in sides:
            s[p[0] + "_shoulder_abd"] += osc * 12
            s[p[0] + "_elbow"] += osc * 15
    s["neck_turn"] += up * rng.uniform(-10, 10)
    return {"side": str(side), "repetitions": waves, "style": str(style)}


_RAISE_TARGETS = {"forward": dict(flex=90, elbow=3), "up": dict(flex=172, elbow=5),
                  "sideways": dict(abd=90, elbow=3)}


def _raise_arms(s: _Seg, o: dict) -> dict:
    rng = s.rng
    side = o.get("side", rng.choice(["left", "right", "both"], p=(0.25, 0.25, 0.5)))
    mode = o.get("mode", rng.choice(list(_RAISE_TARGETS), p=(0.3, 0.45, 0.25)))
    lower = bool(o.get("lower", rng.random() < 0.7))
    rise, hold = rng.uniform(0.6, 1.0) / s.style.tempo, rng.uniform(0.6, 2.0)
    _, (t0,), length = s.timeline(2 * rise + hold if lower else rise + 0.5, 1, fill=False)
    weight = _plateau(s.t, t0, t0 + length, rise) if lower else _ramp(s.t, t0, t0 + min(rise, length))
    s.arms(SIDES if side == "both" else [side], weight, **_RAISE_TARGETS[mode])
    return {"side": str(side), "mode": str(mode), "lower": lower}


def _clap(s: _Seg, o: dict) -> dict:
    rng = s.rng
    speed = o.get("speed", rng.choice(SPEEDS, p=(0.3, 0.45, 0.25)))
    freq = {"slow": 1.6, "normal": 2.2, "fast": 3.0}[speed] * s.style.tempo
    claps, starts, period = s.timeline(1 / freq, o.get("repetitions", rng.integers(2, 8)), lead=0.8)
    t0, t1 = starts[0], starts[-1] + period
    up = _plateau(s.t, t0 - 0.5, t1 + 0.5, 0.5)
    u = np.clip((s.t - t0) / period, 0, claps)  # the hands meet at u = k + ½
    together = np.sin(np.pi * u) ** 2 * up
    # Forearms raised in front of the chest; adducting the arms by 24° brings the hands together.
    s.arms(SIDES, up, abd=0, flex=rng.uniform(37, 43), horiz=-5, twist=0, elbow=60)
    for p in ("l_", "r_"):
        s[p + "shoulder_horiz"] += together * 24
    return {"speed": str(speed), "repetitions": claps}


def _stretch(s: _Seg, o: dict) -> dict:
    rng = s.rng
    # Arms overhead, then (if there is time) a lean to one side or to both in turn.
    sides = int(o.get("sides", rng.choice([0, 1, 2], p=(0.25, 0.25, 0.5))))
    sides = min(sides, int(max(s.dur - 3.5, 0) // 1.5))
    side = o.get("side", rng.choice(SIDES))  # leans this way first
    lean = rng.uniform(15, 25) * (1 if side == "left" else -1)
    unit = (3.0 + 1.5 * sides + (0.5 if sides else 0.0)) / s.style.tempo
    _, (t0,), length = s.timeline(unit, 1, fill=False)
    k = length / unit
    up = _plateau(s.t, t0, t0 + length, 1.0 * k)
    s.arms(SIDES, up, flex=175, horiz=8, elbow=8)
    times = t0 + k * (1.3 + np.arange(2 * sides + 2) * 0.75)  # lean, hold, (other side, hold), centre
    bends = [0.0] + [lean, lean, -lean, -lean][:2 * sides] + [0.0]
    s["spine_side"] += _keys(s.t, times, bends) if sides else 0.0
    s["neck_bend"] -= up * 10
    return {"side": str(side) if sides else "none", "sides": sides}


def _idle(s: _Seg, o: dict) -> dict:
    shift = 2.0 * np.sin(2 * np.pi * s.rng.uniform(0.15, 0.3) * s.t + s.rng.uniform(0, 2 * np.pi))
    s["l_hip_abd"] += shift  # weight shifts from foot to foot
    s["r_hip_abd"] -= shift
    s["neck_turn"] += 12 * np.sin(2 * np.pi * s.rng.uniform(0.05, 0.15) * s.t + s.rng.uniform(0, 2 * np.pi))
    return {}


_BUILDERS: dict[str, Callable[[_Seg, dict], dict]] = {
    "walk": _walk, "run": _run, "jump": _jump, "hop": _hop, "squat": _squat, "wave": _wave,
    "punch": _punch, "kick": _kick, "turn": _turn, "jumping_jacks": _jumping_jacks, "bow": _bow,
    "raise_arms": _raise_arms, "clap": _clap, "sit": _sit, "side_step": _side_step, "spin": _spin,
    "crouch_walk": _crouch_walk, "march": _march, "stretch": _stretch, "idle": _idle,
}
assert tuple(_BUILDERS) == FAMILIES


# --- root translation ------------------------------------------------------------------------------
def _root_translation(joints: np.ndarray, flights: list, yaw_deg: np.ndarray, fps: float,
                      flat_gap: float) -> np.ndarray:
    """SMPL transl ``(F, 3)`` for joints posed without translation ``(F, 24, 3)``: the lowest foot
    joint on the ground, the root carried by the stance foot (no sliding), ballistic when airborne.
    ``flat_gap``: ankle height above the toe joint with the foot flat. The pelvis starts above the
    origin."""
    n = len(joints)
    feet = joints[:, list(FEET)].reshape(n, 2, 2, 3).transpose(0, 2, 1, 3)  # (F, [l, r], [ankle, toe], 3)
    ground = -feet[..., 1].min((1, 2))  # root height that puts the lowest foot joint on y = 0
    # The foot pivots on its heel (toes up), is flat, or rolls onto its toes: the planted point's
    # motion is the ankle's, then the toe joint's as the ankle rises above the toe.
    toe_weight = _smoothstep((feet[..., 0, 1] - feet[..., 1, 1] - flat_gap + 0.01) / 0.02)[..., None]
    motion = np.diff(feet[..., [0, 2]], axis=0)  # (F−1, 2, 2, 2) horizontal motion of every foot joint
    planted = (1 - toe_weight[:-1]) * motion[:, :, 0] + toe_weight[:-1] * motion[:, :, 1]  # (F−1, 2, 2)
    # Weight bearing: the lower foot, blended over a centimetre so the choice never jumps.
    low = feet[..., 1].min(-1)  # (F, 2) lowest joint of each foot
    bearing = np.exp(-(low - low.min(-1, keepdims=True)) / 0.01)
    bearing /= bearing.sum(-1, keepdims=True)
    step = -(bearing[:-1, :, None] * planted).sum(1)  # (F−1, 2) root motion that keeps it planted
    height = ground.copy()
    landed = 0
    for t0, t1, forward in flights:
        if t1 - t0 < 2:
            continue
        if forward is None:  # keep the mean pace of the preceding ground contact
            velocity = step[max(landed, t0 - 12):t0].mean(0) if t0 > 0 else np.zeros(2)
        else:  # along the facing direction (yaw 0 faces +z)
            yaw = np.radians(yaw_deg[t0])
            velocity = forward * np.array([np.sin(yaw), np.cos(yaw)]) / (t1 - t0)
        step[t0:t1] = velocity
        tau = np.arange(t1 - t0 + 1) / fps
        arc = np.interp(tau, [0, tau[-1]], [ground[t0], ground[t1]]) + 0.5 * GRAVITY * tau * (tau[-1] - tau)
        height[t0:t1 + 1] = np.maximum(arc, ground[t0:t1 + 1])
        landed = t1
    xz = np.concatenate([np.zeros((1, 2)), np.cumsum(step, 0)]) - joints[0, 0, [0, 2]]
    return np.stack([xz[:, 0], height, xz[:, 1]], 1)


# --- clips -----------------------------------------------------------------------------------------
_BODY: SkeletonBody | None = None


def _body() -> SkeletonBody:
    global _BODY
    if _BODY is None:
        _BODY = SkeletonBody()
    return _BODY


@contextmanager
def _one_thread():
    """Run torch single-threaded: a clip's tensors are small (≤ 300 frames), and intra-op threads
    cost more than they save — several times more when the cores are shared with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# Natural length of one segment of each family (seconds): drawn when the clip length is free, and
# the proportions in which a given length is shared between segments.
_DURATION = {
    "walk": (3, 8), "run": (3, 7), "jump": (2, 5), "hop": (2.5, 5), "squat": (2.5, 7), "wave": (2.5, 5),
    "punch": (2, 5), "kick": (2, 5), "turn": (2, 3.5), "jumping_jacks": (3, 7), "bow": (2.5, 5),
    "raise_arms": (2.5, 5), "clap": (2.5, 5), "sit": (4, 8), "side_step": (3, 7), "spin": (2, 4),
    "crouch_walk": (3, 7), "march": (3, 7), "stretch": (3.5, 8), "idle": (2, 4),
}
assert set(_DURATION) == set(FAMILIES)


def _segment_lengths(total: int, seconds: np.ndarray, blend: int) -> list[int]:
    """Split ``total`` frames in proportion to ``seconds`` into segments that overlap by ``blend``."""
    if len(seconds) == 1:
        return [total]
    span = total + (len(seconds) - 1) * blend
    lengths = np.maximum(np.floor(span * seconds / seconds.sum()).astype(int), blend + 1)
    lengths[-1] = span - lengths[:-1].sum()
    if lengths[-1] < blend + 1:
        raise ValueError(f"{total} frames are too few for {len(seconds)} segments")
    return [int(x) for x in lengths]


def _check_families(names: Sequence[str]) -> None:
    unknown = [f for f in names if f not in _BUILDERS]
    if unknown:
        raise ValueError(f"unknown motion families {unknown}; choose from {', '.join(FAMILIES)}")


def generate_motion(segments: Sequence[str | tuple[str, dict]], rng: np.random.Generator,
                    fps: float = 30.0, num_frames: int | None = None,
                    betas: np.ndarray | None = None) -> Motion:
    """A clip of explicit segments, each a family name or ``(family, {attribute: value})`` fixing
    some of its random choices, e.g. ``[("walk", {"direction": "left", "speed": "slow"}), "wave"]``.
    ``num_frames=None`` takes the segments' natural lengths, kept within 2–10 s; betas default to
    a random body (|β| ≤ 2)."""
    specs = [(s, {}) if isinstance(s, str) else (s[0], dict(s[1])) for s in segments]
    _check_families([f for f, _ in specs])
    if not specs:
        raise ValueError("a clip needs at least one segment")
    blend = max(1, round(BLEND_SECONDS * fps))
    seconds = np.array([rng.uniform(*_DURATION[f]) for f, _ in specs])
    if num_frames is None:
        num_frames = round(np.clip(seconds.sum() - (len(specs) - 1) * BLEND_SECONDS, 2, 10) * fps)
    total = int(num_frames)
    if total < 2:
        raise ValueError(f"num_frames must be at least 2, got {total}")
    if betas is None:
        betas = np.zeros(10)
        betas[:2] = np.clip(rng.normal(0, [0.8, 0.6]), -2, 2)
    style = _Style(rng)
    lengths = _segment_lengths(total, seconds, blend)
    channels = np.zeros((total, len(CHANNELS)))
    flights, described = [], []
    start, yaw = 0, 0.0
    for i, ((family, opts), n) in enumerate(zip(specs, lengths)):
        seg = _Seg(n, fps, rng, style)
        attrs = _BUILDERS[family](seg, opts)
        seg["yaw"] += yaw  # continue from the previous segment's facing
        overlap = 0 if i == 0 else blend
        w = _smoothstep((np.arange(overlap) + 1) / (overlap + 1))[:, None]
        channels[start:start + overlap] = (1 - w) * channels[start:start + overlap] + w * seg.ch[:overlap]
        channels[start + overlap:start + n] = seg.ch[overlap:]
        flights += [(start + a, start + b, forward) for a, b, forward in seg.flights]
        described.append({"family": family, "start": start, "end": start + n, **attrs})
        yaw = float(seg["yaw"][-1])
        start += n - blend
    t = np.arange(total) / fps
    amp, freq, phase = style.sway
    channels += style.rest
    channels[:, _CH["spine_side"]] += amp * np.sin(2 * np.pi * freq * t + phase)  # breathing sway
    channels[:, _CH["neck_bend"]] += 0.7 * amp * np.sin(2 * np.pi * 0.6 * freq * t + 2 * phase)

    betas = np.asarray(betas, dtype=np.float32)
    with _one_thread():
        rotmats = _rotmats(channels)
        body_betas = torch.from_numpy(betas).expand(total, 10)
        joints = _body()(rotmats.float(), body_betas, torch.zeros(total, 3)).joints.numpy()
        poses = matrix_to_axis_angle(rotmats).reshape(total, 72).numpy()
        rest = _body().rest_joints(torch.from_numpy(betas)[None])[0].numpy()
    flat_gap = float(rest[[7, 8], 1].mean() - rest[[10, 11], 1].mean())
    transl = _root_translation(joints.astype(np.float64), flights, channels[:, _CH["yaw"]], fps, flat_gap)

    main = next((d for d in described if d["family"] != "idle"), described[0])
    attributes = {k: v for k, v in main.items() if k not in ("start", "end")}
    attributes["segments"] = described
    return Motion(family=main["family"], poses=poses.astype(np.float32), transl=transl.astype(np.float32),
                  betas=betas, captions=caption_clip(described, rng), attributes=attributes)


def sample_motion(rng: np.random.Generator, fps: float = 30.0, num_frames: int | None = None,
                  families: Sequence[str] | None = None) -> Motion:
    """A random clip of 1–3 segments drawn from ``families`` (default: all), deterministic given the
    rng state. ``num_frames=None`` gives the segments their natural lengths, 2–10 s in all."""
    pool = tuple(families) if families else FAMILIES
    _check_families(pool)
    count = 1 + int(rng.choice(3, p=(0.5, 0.33, 0.17)))
    weights = np.array([0.3 if f == "idle" else 1.0 for f in pool])
    names: list[str] = []
    for _ in range(count):
        w = weights * np.array([f != (names[-1] if names else None) or len(pool) == 1 for f in pool])
        names.append(str(rng.choice(pool, p=w / w.sum())))
    # Only as many segments as fit at their shortest natural lengths.
    seconds = 10.0 if num_frames is None else num_frames / fps
    while len(names) > 1 and sum(_DURATION[f][0] for f in names) - (len(names) - 1) * BLEND_SECONDS > seconds:
        names.pop()
    return generate_motion(names, rng, fps, num_frames)
