"""FrankMocap's HMR backend: the network (network), its crop and normalisation
(preprocess), the pipeline (pipeline), the GPU fast path (fast_path) and the ONNX Runtime
CPU runtime (onnx).
"""
