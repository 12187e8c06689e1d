"""The ``oneeye`` command: enrol a folder, identify photos, and refuse bad arguments."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bench.lib.synth import Actor, standard_scenario, write_clip
from oneeye.cli import main
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader, side_by_side


@pytest.fixture(scope="module")
def people(face_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """known/obama/{obama,obama2}.jpg, known/biden/biden.jpg and a broken file."""
    root = tmp_path_factory.mktemp("known")
    (root / "obama").mkdir()
    (root / "biden").mkdir()
    shutil.copy(face_photos / "obama.jpg", root / "obama" / "obama.jpg")
    shutil.copy(face_photos / "obama2.jpg", root / "obama" / "obama2.jpg")
    shutil.copy(face_photos / "biden.jpg", root / "biden" / "biden.jpg")
    (root / "biden" / "notes.jpg").write_text("not a photo at all")
    return root


@pytest.fixture(scope="module")
def gallery(people: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gallery")
    assert main(["enroll", str(people), "--gallery", str(folder), "--watchlist", "vip"]) == 1
    return folder


def test_enroll_reports_the_refused_photo_and_keeps_the_rest(
    people: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["enroll", str(people), "--gallery", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "notes.jpg" in err
    assert "not an image" in err
    assert "enrolled 3 photo(s) of 2 person(s)" in err
    assert (tmp_path / "gallery.npz").is_file()


def test_enrolling_again_replaces_instead_of_duplicating(
    people: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = people / "obama" / "obama.jpg"
    for _ in range(2):
        assert main(["enroll", str(photo), "--name", "Barack", "--gallery", str(tmp_path)]) == 0
    assert "gallery now holds 1 template(s)" in capsys.readouterr().err


def test_identify_csv(
    gallery: Path,
    face_photos: Path,
    load_photo: PhotoLoader,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pair = tmp_path / "pair.jpg"
    Image.fromarray(side_by_side(load_photo("obama3.jpg"), load_photo("biden.jpg"))).save(pair)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 300, 3), 128, dtype=np.uint8)).save(blank)
    capsys.readouterr()
    code = main(
        [
            "identify",
            str(face_photos / "obama3.jpg"),
            str(pair),
            str(blank),
            "--gallery",
            str(gallery),
        ]
    )
    lines = capsys.readouterr().out.strip().split("\n")
    assert code == 0
    rows = [line.split(",") for line in lines]
    assert len(rows) == 4
    assert rows[0][:2] == [str(face_photos / "obama3.jpg"), "obama"]
    assert [r[0] for r in rows[1:3]] == [str(pair), str(pair)]
    assert sorted(r[1] for r in rows[1:3]) == ["biden", "obama"]
    assert rows[3][:2] == [str(blank), "no_persons_found"]
    top, right, bottom, left = (int(v) for v in rows[0][3:])
    assert 0 <= top < bottom
    assert 0 <= left < right
    assert float(rows[0][2]) < 0.4
    assert rows[3][2:] == ["", "", "", "", ""]


def test_identify_unknown_person_as_json(
    people: Path, face_photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["enroll", str(people / "obama"), "--name", "obama", "--gallery", str(tmp_path)])
    capsys.readouterr()
    code = main(["identify", str(face_photos / "biden.jpg"), "--gallery", str(tmp_path), "--json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0
    assert record["person"] == "unknown_person"
    assert record["distance"] > 0.45
    assert len(record["box"]) == 4


@pytest.mark.parametrize(
    ("argv", "expected_error"),
    [
        (["identify", "x.jpg"], "No such option|does not exist"),
        (["enroll"], "Missing argument 'PATH'"),
        (["identify", "--gallery", "g"], "Missing argument"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["identify", ".", "--gallery", "g", "--threshold", "5"], "not in the range"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    argv: list[str], expected_error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("oneeye: error: ")
    assert err.count("\n") == 1
    assert re.search(expected_error, err)


def test_identify_without_a_gallery_is_a_usage_error(
    face_photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["identify", str(face_photos / "obama.jpg"), "--gallery", str(tmp_path)]) == 2
    assert "no gallery in" in capsys.readouterr().err


def test_a_bad_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONEEYE_ENGINE__DETECTOR", "sonar")
    assert main(["identify", ".", "--gallery", "."]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oneeye: error: bad setting: ONEEYE_ENGINE__DETECTOR")
    assert err.count("\n") == 1


def test_watch_prints_the_json_lines_contract_and_annotates(
    face_photos: Path, load_photo: PhotoLoader, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = FaceEngine()
    actors = [
        Actor(person, load_photo(photo), engine.enrolment_face(load_photo(photo)).box)
        for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg"))
    ]
    movements, frames = standard_scenario(actors, 640, 480, fps=10)
    clip = tmp_path / "door.mp4"
    write_clip(clip, actors, movements[:3], width=640, height=480, frames=80, fps=10)
    gallery = tmp_path / "gallery"
    assert (
        main(
            [
                "enroll",
                str(face_photos / "obama2.jpg"),
                "--name",
                "obama",
                "--gallery",
                str(gallery),
            ]
        )
        == 0
    )
    capsys.readouterr()
    out = tmp_path / "annotated.webm"
    argv = [
        "watch",
        str(clip),
        "--gallery",
        str(gallery),
        "--camera",
        "door",
        "--jsonl",
        "--annotate",
        str(out),
        "--min-face",
        "80",
        "--cooldown",
        "0.5",
        "--progress",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert "80/80" in captured.err  # the progress line, on stderr: stdout stays JSON lines
    assert re.search(r"frames +[0-9.]+ fps \d+ sightings", captured.err), captured.err
    keys = {"event", "camera", "track", "person", "watchlist", "distance", "frame", "t", "box"}
    assert events
    assert all(keys <= set(e) for e in events)
    assert all(e["camera"] == "door" and len(e["box"]) == 4 for e in events)
    sightings = [e for e in events if e["event"] == "sighting"]
    assert [e["person"] for e in sightings].count("obama") == 2  # two visits, cooldown 0.5 s
    assert None in [e["person"] for e in sightings]  # biden is not enrolled: unknown
    assert {e["track"] for e in events if e["event"] == "left"} == {e["track"] for e in sightings}
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 80
    capture.release()
    del frames


def test_watch_refuses_a_bad_source(
    face_photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["enroll", str(face_photos / "obama.jpg"), "--gallery", str(tmp_path)])
    capsys.readouterr()
    assert main(["watch", "ftp://camera/1", "--gallery", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oneeye: error: Invalid value for SOURCE: ftp://camera/1: unsupported")
    assert err.count("\n") == 1


def test_forwarded_addresses_are_believed_only_from_named_proxies() -> None:
    # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: a local process
    # could then give every bogus login a new address and never meet the login throttle.
    from fastapi import FastAPI  # noqa: PLC0415

    from oneeye.cli.serve import uvicorn_config  # noqa: PLC0415 - the CLI imports lazily
    from oneeye.config import ServerSettings, ServeSettings  # noqa: PLC0415

    web = FastAPI()
    plain = uvicorn_config(web, ServeSettings())
    assert plain.proxy_headers is False
    behind = uvicorn_config(web, ServeSettings(server=ServerSettings(trusted_proxies=["10.1.2.3"])))
    assert behind.proxy_headers is True
    assert behind.forwarded_allow_ips == ["10.1.2.3"]
