"""Realistic conditions for the labelled clips: faces turned, dim light, motion blur, JPEG.

A condition is one variant of a clip made by ``bench.lib.clips.lfw_clip``, with the same people
walking the same paths, so every condition is paired with the plain clip. ``turned`` changes
the walkers' photos before the clip is composed (a perspective warp of the face plane about a
vertical axis through the nose, from the photo's 5 landmarks); the others change the rendered
frames. Every generator is deterministic for a given seed. Conditions are reachable by name
(:data:`CONDITIONS`) from the benchmark CLIs (``bench/video_accuracy.py --conditions``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.types import FaceBox, RGBImage

CONDITIONS = ("normal", "turned", "dim", "dark", "blur", "jpeg")
"""Every condition's name; ``normal`` is the clip as composed."""

TURN_DEGREES = 40.0
"""How far ``turned`` faces look away from the camera (yaw), alternately left and right."""
CAMERA_DISTANCE_FACES = 4.0
"""The camera's distance from the face plane, in face widths (sets the perspective)."""
DIM_EXPOSURE = 0.22
"""``dim``: the light that reaches the sensor, as a fraction of the plain clip's."""
DARK_EXPOSURE = 0.1
"""``dark``: as ``dim`` with this much light (a room lit by a screen or a street lamp)."""
DIM_GAMMA = 1.4
"""``dim``: the tone curve's bend (shadows sink more than highlights, as a cheap sensor's do)."""
DIM_SHOT_NOISE = 0.6
"""``dim``: shot noise variance per grey level (noise grows with the signal)."""
DIM_READ_NOISE = 2.5
"""``dim``: read noise, standard deviation in grey levels."""
BLUR_FACE_FRACTION = 0.12
"""``blur``: the smear's length as a fraction of the face height (a walker moving about half a
face per frame, with the shutter open a quarter of the frame time)."""
JPEG_QUALITY = 25
"""``jpeg``: the encoder quality of a camera streaming on a thin uplink."""


@dataclass(frozen=True, slots=True)
class TurnedFace:
    """A photo warped so that its face looks away, and where that face now is."""

    photo: RGBImage
    box: FaceBox


def turn_face(
    photo: RGBImage, box: FaceBox, landmarks: npt.NDArray[np.float32], degrees: float
) -> TurnedFace:
    """Warp a photo as if its face (taken as a plane) turned ``degrees`` about a vertical axis.

    The axis passes through the nose (the 5-point model's last landmark); the camera sits
    ``CAMERA_DISTANCE_FACES`` face widths away, so the side turning away shrinks and the
    other grows, as a perspective camera sees it. A plane shows no self-occlusion (the far
    cheek does not hide behind the nose), so this is milder than a real turned head at the
    same angle.

    Args:
        photo: (H, W, 3) uint8 RGB.
        box: the face in the photo.
        landmarks: the face's 5 points ``(x, y)`` (dlib's 5-point order, nose last).
        degrees: the yaw; positive turns the face's left side (the photo's right) away.

    Returns:
        The warped photo (same size; edges repeated where the warp uncovers nothing) and the
        face's box in it (the warped box's bounding rectangle).

    Raises:
        ValueError: ``landmarks`` is not (5, 2), or ``degrees`` is not within (-80, 80).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"turn_face needs (5, 2) landmarks, got {points.shape}")
    if not -80.0 < degrees < 80.0:
        raise ValueError(f"turn_face needs degrees within (-80, 80), got {degrees}")
    axis_x = float(points[4, 0])
    centre_y = (box.top + box.bottom) / 2.0
    distance = CAMERA_DISTANCE_FACES * box.width
    yaw = math.radians(degrees)

    def project(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = xy[:, 0] - axis_x, xy[:, 1] - centre_y
        depth = distance + x * math.sin(yaw)
        scale = distance / depth
        return np.stack([axis_x + x * math.cos(yaw) * scale, centre_y + y * scale], axis=1)

    height, width = photo.shape[:2]
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], float)
    matrix = cv2.getPerspectiveTransform(
        corners.astype(np.float32), project(corners).astype(np.float32)
    )
    warped = cv2.warpPerspective(
        photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    face = np.array(
        [
            [box.left, box.top],
            [box.right, box.top],
            [box.right, box.bottom],
            [box.left, box.bottom],
        ],
        float,
    )
    moved = project(face)
    left, top = np.floor(moved.min(axis=0)).astype(int)
    right, bottom = np.ceil(moved.max(axis=0)).astype(int)
    turned = FaceBox(
        top=max(0, int(top)),
        right=min(width - 1, int(right)),
        bottom=min(height - 1, int(bottom)),
        left=max(0, int(left)),
    )
    return TurnedFace(np.ascontiguousarray(warped, dtype=np.uint8), turned)


def dim(frame: RGBImage, seed: int, exposure: float = DIM_EXPOSURE) -> RGBImage:
    """The frame as a cheap camera sees it in a dim room: less light, a bent tone curve, and
    sensor noise (shot noise growing with the signal, plus read noise), rounded to 8 bits.

    Args:
        frame: (H, W, 3) uint8 RGB.
        seed: the noise's seed.
        exposure: the light that reaches the sensor, as a fraction of the frame's.

    Returns:
        The dim frame (a new array).

    Raises:
        ValueError: ``exposure`` not within (0, 1].
    """
    if not 0.0 < exposure <= 1.0:
        raise ValueError(f"dim needs an exposure within (0, 1], got {exposure}")
    rng = np.random.default_rng(seed)
    levels = 255.0 * exposure * (np.arange(256, dtype=np.float32) / 255.0) ** DIM_GAMMA
    spread = np.sqrt(DIM_SHOT_NOISE * levels + DIM_READ_NOISE**2).astype(np.float32)
    noise = rng.standard_normal(frame.shape, dtype=np.float32)
    noisy = levels.astype(np.float32)[frame] + spread[frame] * noise
    dimmed: RGBImage = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return dimmed


def motion_blur(frame: RGBImage, length_px: int) -> RGBImage:
    """A horizontal smear ``length_px`` long (the clips' walkers move sideways).

    The whole frame is smeared, as a camera panning or shaking would, which is harsher on the
    background than a walker's own blur but the same on the faces.

    Args:
        frame: (H, W, 3) uint8 RGB.
        length_px: the smear's length; 1 leaves the frame as it is.

    Returns:
        The blurred frame (a new array).

    Raises:
        ValueError: ``length_px`` < 1.
    """
    if length_px < 1:
        raise ValueError(f"motion_blur needs length_px >= 1, got {length_px}")
    kernel = np.full((1, length_px), 1.0 / length_px, dtype=np.float32)
    return np.asarray(cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REPLICATE), np.uint8)


def jpeg(frame: RGBImage, quality: int = JPEG_QUALITY) -> RGBImage:
    """The frame after a round trip through a JPEG encoder at ``quality``.

    Args:
        frame: (H, W, 3) uint8 RGB.
        quality: 1-100.

    Returns:
        The decoded frame.

    Raises:
        ValueError: ``quality`` out of 1-100, or the encoder failed.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"jpeg quality must be within 1-100, got {quality}")
    ok, data = cv2.imencode(".jpg", frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the JPEG encoder failed")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError("the JPEG decoder failed")
    return np.ascontiguousarray(decoded[:, :, ::-1], dtype=np.uint8)


def frame_condition(name: str, face_px: int, seed: int) -> Callable[[int, RGBImage], RGBImage]:
    """The per-frame change a condition makes (``normal`` and ``turned`` change no frame).

    Args:
        name: one of :data:`CONDITIONS`.
        face_px: the clip's face height (sets the blur's length).
        seed: the noise's seed (each frame gets its own, from it and the frame's index).

    Returns:
        ``change(index, frame) -> frame``.

    Raises:
        ValueError: an unknown condition.
    """
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; expected one of {', '.join(CONDITIONS)}")
    if name == "dim":
        return lambda index, frame: dim(frame, seed * 100_003 + index)
    if name == "dark":
        return lambda index, frame: dim(frame, seed * 100_003 + index, DARK_EXPOSURE)
    if name == "blur":
        length = max(3, round(BLUR_FACE_FRACTION * face_px))
        return lambda index, frame: motion_blur(frame, length)
    if name == "jpeg":
        return lambda index, frame: jpeg(frame)
    return lambda index, frame: frame
