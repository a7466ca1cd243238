"""Body estimation from images: the backend factory and the Estimator protocol's
implementations (hmr/: FrankMocap's regressor; landmarks/: MediaPipe BlazePose + IK), person
boxes and the person detector, the kinematic body model and torch device selection.
"""
