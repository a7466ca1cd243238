"""Which pose estimator runs: HMR (FrankMocap's files) or MediaPipe landmarks + IK.

``backend: auto`` picks HMR when model files are configured and the landmarks backend
otherwise, so a first run without FrankMocap's checkpoint or an SMPL licence still gives
real poses. Both return the same BodyPoseResult, so messages, TF and teleop are unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from mocap_ros.core.config import MocapConfig
from mocap_ros.core.estimator import Estimator

log = logging.getLogger(__name__)

NO_MODEL_FILES = (
    "backend=hmr needs model files: set assets_dir (FrankMocap's extra_data/ or its checkout; "
    "`mocap-ros assets fetch DIR` gets the public ones, SMPL needs a registration at "
    "https://smpl.is.tue.mpg.de) or checkpoint/mean_params/smpl_model; for testing, generate "
    "stand-ins with `mocap-ros assets synthetic DIR`; or use backend=landmarks")


def resolve_backend(config: MocapConfig) -> str:
    if config.backend != "auto":
        return config.backend
    return "hmr" if (config.assets_dir or config.checkpoint) else "landmarks"


def make_estimator(config: MocapConfig, models: Any = None, detector: Any = None) -> Estimator:
    """The :class:`~mocap_ros.core.estimator.Estimator` for ``config``: a MocapPipeline
    (HMR) or a LandmarksBackend. ``detector``: the landmarks backend's person detector
    (e.g. an ``OperatorDetector``; default its own PersonDetector); HMR ignores it."""
    backend = resolve_backend(config)
    if backend == "landmarks":
        if config.backend == "auto":
            log.info("backend=auto: no HMR model files configured, using the landmarks backend "
                     "(MediaPipe BlazePose + inverse kinematics on the SMPL skeleton)")
        from mocap_ros.estimation.landmarks.backend import LandmarksBackend

        return LandmarksBackend(config, detector=detector)
    if not (config.assets_dir or config.checkpoint):
        raise ValueError(NO_MODEL_FILES)
    from mocap_ros.estimation.hmr.pipeline import MocapPipeline

    return MocapPipeline(config, models=models)
