#!/usr/bin/env python3
"""Make the two tiny demo corpora committed under demo/ (run from the repository root).

* ``demo/librispeech/LibriSpeech/`` — LibriSpeech's layout (``<subset>/<spk>/<chapter>/*.flac`` and
  ``<spk>-<chapter>.trans.txt``): connected digit strings spoken by espeak-ng voices.
  ``train-clean-100`` and ``dev-clean`` share six voices (dev = seen speakers, new strings);
  ``test-clean`` has two voices never trained on.
* ``demo/lrs3/{pretrain,trainval,test}/<id>/<clip>.mp4`` + ``.txt`` — LRS3's layout: the same kind of
  speech in mp4 files with an AAC audio track and a 25 fps 224×224 grey video of a face (the portrait
  of Grace Hopper that matplotlib ships, public domain) whose head drifts slowly and whose mouth is
  a dark ellipse opening with the audio envelope — a face the recipe's landmark detector finds, and
  a mouth that carries the speech's rhythm (not its words).

* ``demo/study/LibriSpeech/`` — the same layout, harder: short commands from a 40-word grammar
  ("PUT THE RED BOX UNDER THE TABLE NOW") spoken by twelve voices, stored as 8-bit FLAC to stay small;
  the trend study of ``bench/trend_study.py`` trains on it (``docs/study.md``). ``dev-clean`` again has the
  training voices saying new commands, ``test-clean`` three voices never trained on.

Needs espeak-ng (``apt-get install espeak-ng``) and PyAV (``pip install av``) — only to re-make the
corpora; the recipes read the committed files. Deterministic for a given espeak-ng version.
"""
import argparse
import random
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile
import soxr

FS = 16000
WORDS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE OH".split()
TRAIN_VOICES = ["en-us", "en-us+f3", "en-gb", "en-gb+f2", "en-gb-scotland", "en-029"]
UNSEEN_VOICES = ["en-gb-x-rp+f4", "en-gb-x-gbcwmd"]


def speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng → 16 kHz float32 mono, trimmed of leading/trailing silence."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", tmp.name, text.lower()],
            check=True,
        )
        wave, rate = soundfile.read(tmp.name, dtype="float32")
    wave = soxr.resample(wave, rate, FS).astype(np.float32)
    loud = np.flatnonzero(np.abs(wave) > 0.02)
    start, end = max(loud[0] - 800, 0), min(loud[-1] + 800, len(wave))
    return 0.9 * wave[start:end] / max(np.abs(wave).max(), 1e-6)


STUDY_GRAMMAR = {
    "verb": "PUT MOVE PLACE TAKE BRING PUSH".split(),
    "colour": "RED GREEN BLUE YELLOW WHITE BLACK BROWN GREY".split(),
    "object": "BOX BALL CUP BOOK CHAIR LAMP KEY COAT BAG PEN".split(),
    "preposition": "ON UNDER NEAR BEHIND BESIDE".split(),
    "place": "TABLE DOOR WINDOW BED SHELF DESK FLOOR".split(),
}
STUDY_TRAIN_VOICES = ["en-us", "en-us+f3", "en-gb", "en-gb+f2", "en-gb-scotland", "en-029",
                      "en-gb-x-gbclan", "en-us-nyc", "en-gb-x-rp", "en-us+m3", "en-gb+f4", "en-029+m7"]
STUDY_UNSEEN_VOICES = ["en-gb-x-gbcwmd", "en-us+f5", "en-gb-scotland+m4"]


def study_command(rng: random.Random) -> str:
    """``[PLEASE] <verb> THE <colour> <object> <preposition> THE <place> [NOW]``: 7 to 9 words."""
    pick = {slot: rng.choice(words) for slot, words in STUDY_GRAMMAR.items()}
    words = [pick["verb"], "THE", pick["colour"], pick["object"], pick["preposition"], "THE", pick["place"]]
    if rng.random() < 0.3:
        words.insert(0, "PLEASE")
    if rng.random() < 0.3:
        words.append("NOW")
    return " ".join(words)


def digit_string(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))


def make_librispeech(root: Path, rng: random.Random, train_voices=TRAIN_VOICES, unseen_voices=UNSEEN_VOICES,
                     per_voice=(30, 4, 12), sentence=digit_string, subtype: str = "PCM_16") -> None:
    subsets = {
        "train-clean-100": (train_voices, per_voice[0]),
        "dev-clean": (train_voices, per_voice[1]),
        "test-clean": (unseen_voices, per_voice[2]),
    }
    for subset, (voices, count) in subsets.items():
        for v, voice in enumerate(voices):
            speaker = 100 + train_voices.index(voice) if voice in train_voices else 900 + v
            chapter = 1000 + (0 if subset == "train-clean-100" else 1 if subset == "dev-clean" else 2)
            folder = root / subset / str(speaker) / str(chapter)
            folder.mkdir(parents=True, exist_ok=True)
            lines = []
            for u in range(count):
                text = sentence(rng)
                uid = f"{speaker}-{chapter}-{u:04d}"
                wave = speak(text, voice, rng.randint(150, 190), rng.randint(35, 65))
                soundfile.write(folder / f"{uid}.flac", wave, FS, subtype=subtype)
                lines.append(f"{uid} {text}\n")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))


FACE_PHOTO = "grace_hopper.jpg"  # in matplotlib's mpl-data/sample_data
FACE_CENTRE = (268, 245)  # (x, y) in the photo, measured once with dlib's 68-point landmarks
MOUTH_CENTRE = (268.5, 279.0)
MOUTH_WIDTH = 79.0


def face_photo() -> np.ndarray:
    import matplotlib
    from PIL import Image

    path = Path(matplotlib.get_data_path()) / "sample_data" / FACE_PHOTO
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32)


def envelope(wave: np.ndarray, fps: int = 25) -> np.ndarray:
    """Per 40 ms frame: the RMS of the audio, scaled to a maximum of 1."""
    hop = FS // fps
    count = max(1, len(wave) // hop)
    env = np.array([np.sqrt(np.mean(wave[i * hop:(i + 1) * hop] ** 2)) for i in range(count)])
    return env / max(env.max(), 1e-6)


def face_frames(wave: np.ndarray, rng: random.Random, size: int = 224, span: int = 400) -> np.ndarray:
    """One grey ``size``×``size`` frame per 40 ms: the face photo, its mouth a dark ellipse whose height
    follows the audio envelope, seen through a ``span``-pixel window that drifts a few pixels."""
    import torch

    photo = face_photo()
    yy, xx = np.mgrid[0:photo.shape[0], 0:photo.shape[1]]
    env = envelope(wave)
    drift = np.cumsum([[rng.gauss(0, 1.5), rng.gauss(0, 1.5)] for _ in env], axis=0)
    drift = np.clip(drift - drift.mean(axis=0), -20, 20)
    frames = []
    for e, (dx, dy) in zip(env, drift):
        picture = photo.copy()
        inside = ((xx - MOUTH_CENTRE[0]) / (0.38 * MOUTH_WIDTH)) ** 2 + ((yy - MOUTH_CENTRE[1]) / (2 + 13 * e)) ** 2 <= 1
        picture[inside] = 35
        x0 = int(round(FACE_CENTRE[0] + dx - span / 2))
        y0 = int(round(FACE_CENTRE[1] + dy - span / 2))
        window = torch.from_numpy(picture[y0:y0 + span, x0:x0 + span])[None, None]
        small = torch.nn.functional.interpolate(window, size=(size, size), mode="bilinear", antialias=True)
        frames.append(small[0, 0].round().clamp(0, 255).to(torch.uint8).numpy())
    return np.stack(frames)


def write_mp4(path: Path, wave: np.ndarray, frames: np.ndarray, fps: int = 25) -> None:
    """Grey ``frames`` (T, H, W) at ``fps`` frames/s and ``wave`` (16 kHz) as an H.264/AAC mp4."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=FS)
        audio.layout = "mono"
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(np.repeat(frame[..., None], 3, 2), format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16)
        step = 1024
        for start in range(0, len(pcm), step):
            chunk = pcm[start:start + step][None, :]
            aframe = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            aframe.sample_rate = FS
            aframe.pts = start
            aframe.time_base = Fraction(1, FS)
            for packet in audio.encode(aframe):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)


def make_lrs3(root: Path, rng: random.Random) -> None:
    splits = {"pretrain": (TRAIN_VOICES, 5), "trainval": (TRAIN_VOICES, 20), "test": (UNSEEN_VOICES, 6)}
    for split, (voices, per_voice) in splits.items():
        for v, voice in enumerate(voices):
            folder = root / split / f"{split[:2]}spk{v:02d}{voice.replace('+', '').replace('-', '')[:8]}"
            folder.mkdir(parents=True, exist_ok=True)
            for c in range(per_voice):
                text = digit_string(rng)
                wave = speak(text, voice, rng.randint(150, 190), rng.randint(35, 65))
                write_mp4(folder / f"{c:05d}.mp4", wave, face_frames(wave, rng))
                (folder / f"{c:05d}.txt").write_text(f"Text:  {text}\nConf:  4\n")


def make_study(root: Path, rng: random.Random) -> None:
    make_librispeech(root, rng, STUDY_TRAIN_VOICES, STUDY_UNSEEN_VOICES, per_voice=(22, 3, 12),
                     sentence=study_command, subtype="PCM_S8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["librispeech", "lrs3", "study"], default=None, help="re-make one corpus")
    args = parser.parse_args()
    corpora = (("librispeech/LibriSpeech", make_librispeech), ("lrs3", make_lrs3), ("study/LibriSpeech", make_study))
    for name, make in corpora:
        if args.only and not name.startswith(args.only):
            continue
        target = args.out / name
        if target.exists():
            shutil.rmtree(target)
        make(target, random.Random(args.seed))
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
