"""Hands: 21-keypoint hand pose for both of the tracked body's hands.

* :mod:`.geometry` -- pure numpy: palm frame (orientation), finger curls, grip aperture.
* :mod:`.mediapipe_graph` -- MediaPipe's hand landmark model on a given ROI and its palm
  detector (models inside the mediapipe 0.10.14 wheel; nothing is downloaded).
* :mod:`.estimator` -- :class:`HandEstimator`: ROIs from the body's wrists, left/right from
  the body, keypoints in pixels and metres (camera frame, rooted at the body's wrist),
  :class:`HandResult` per side.

Import :mod:`.estimator` / :mod:`.mediapipe_graph` explicitly; this package's import pulls in
no mediapipe.
"""
