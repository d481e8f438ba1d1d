"""ESPnet's ASR task with this package's classes registered."""
import argparse
import logging

from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.tasks.asr import ASRTask
from espnet2.torch_utils.initialize import initialize
from typeguard import typechecked

import espnet_lrsms  # noqa: F401  (registers the classes; also in spawned DDP workers, see below)
from espnet_lrsms.lowrank import reinit_factorized_


class LowRankASRTask(ASRTask):
    """``ASRTask`` that (1) lives in this package and (2) keeps the spectral init under ``--init``.

    (1) With ``--ngpu N --multiprocessing_distributed true`` ESPnet starts each worker by spawning
    ``cls.main_worker``; the worker unpickles this class, which imports ``espnet_lrsms`` and so
    registers the low-rank classes there too.

    (2) ESPnet's ``--init xavier_uniform`` (or any other) re-draws every matrix after the model is
    built, U and Vᵀ included, which would undo the SVD init. After that, each factorized layer is
    drawn again from a dense layer initialised by the same ESPnet ``initialize``.
    """

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> ESPnetASRModel:
        model = super().build_model(args)
        if args.init is not None:
            count = reinit_factorized_(model, lambda dense: initialize(dense, args.init))
            logging.info("re-initialised %d factorized layers from dense %s init", count, args.init)
        return model
