#!/usr/bin/env python3
"""Make the two tiny demo corpora committed under demo/ (run from the repository root).

* ``demo/librispeech/LibriSpeech/`` — LibriSpeech's layout (``<subset>/<spk>/<chapter>/*.flac`` and
  ``<spk>-<chapter>.trans.txt``): connected digit strings spoken by espeak-ng voices.
  ``train-clean-100`` and ``dev-clean`` share six voices (dev = seen speakers, new strings);
  ``test-clean`` has two voices never trained on.
* ``demo/lrs3/{pretrain,trainval,test}/<id>/<clip>.mp4`` + ``.txt`` — LRS3's layout: the same kind of
  speech in mp4 files with an AAC audio track and a 25 fps grey video of a drawn mouth whose
  opening follows the audio envelope.

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


def digit_string(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))


def make_librispeech(root: Path, rng: random.Random) -> None:
    subsets = {
        "train-clean-100": (TRAIN_VOICES, 30),
        "dev-clean": (TRAIN_VOICES, 4),
        "test-clean": (UNSEEN_VOICES, 12),
    }
    for subset, (voices, per_voice) in subsets.items():
        for v, voice in enumerate(voices):
            speaker = 100 + TRAIN_VOICES.index(voice) if voice in TRAIN_VOICES else 900 + v
            chapter = 1000 + (0 if subset == "train-clean-100" else 1 if subset == "dev-clean" else 2)
            folder = root / subset / str(speaker) / str(chapter)
            folder.mkdir(parents=True, exist_ok=True)
            lines = []
            for u in range(per_voice):
                text = digit_string(rng)
                uid = f"{speaker}-{chapter}-{u:04d}"
                wave = speak(text, voice, rng.randint(150, 190), rng.randint(35, 65))
                soundfile.write(folder / f"{uid}.flac", wave, FS)
                lines.append(f"{uid} {text}\n")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))


def mouth_frames(wave: np.ndarray, fps: int = 25, size: int = 96) -> np.ndarray:
    """One grey frame per 40 ms: a dark ellipse whose height follows the audio envelope."""
    hop = FS // fps
    count = max(1, len(wave) // hop)
    env = np.array([np.sqrt(np.mean(wave[i * hop:(i + 1) * hop] ** 2)) for i in range(count)])
    env = env / max(env.max(), 1e-6)
    yy, xx = np.mgrid[0:size, 0:size]
    frames = np.full((count, size, size), 170, dtype=np.uint8)
    for i, e in enumerate(env):
        half_h = 2 + 18 * e
        inside = ((xx - size / 2) / 28) ** 2 + ((yy - size / 2) / half_h) ** 2 <= 1
        frames[i][inside] = 40
    return frames


def write_mp4(path: Path, wave: np.ndarray, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width = video.height = frames.shape[1]
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
    splits = {"pretrain": (TRAIN_VOICES, 2), "trainval": (TRAIN_VOICES, 6), "test": (UNSEEN_VOICES, 4)}
    for split, (voices, per_voice) in splits.items():
        for v, voice in enumerate(voices):
            folder = root / split / f"{split[:2]}spk{v:02d}{voice.replace('+', '').replace('-', '')[:8]}"
            folder.mkdir(parents=True, exist_ok=True)
            for c in range(per_voice):
                text = digit_string(rng)
                wave = speak(text, voice, rng.randint(150, 190), rng.randint(35, 65))
                write_mp4(folder / f"{c:05d}.mp4", wave, mouth_frames(wave))
                (folder / f"{c:05d}.txt").write_text(f"Text:  {text}\nConf:  4\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, make in (("librispeech/LibriSpeech", make_librispeech), ("lrs3", make_lrs3)):
        target = args.out / name
        if target.exists():
            shutil.rmtree(target)
        make(target, random.Random(args.seed))
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
