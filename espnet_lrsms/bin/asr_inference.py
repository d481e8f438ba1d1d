"""ASR decoding: ``espnet2.bin.asr_inference`` with the low-rank classes registered.

Takes every argument ESPnet's own ``python -m espnet2.bin.asr_inference`` takes.
"""
import espnet_lrsms  # noqa: F401  (registers the low-rank classes with ESPnet's ASR task)
from espnet2.bin.asr_inference import get_parser, main  # noqa: F401

if __name__ == "__main__":
    main()
