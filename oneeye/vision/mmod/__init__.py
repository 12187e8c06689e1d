"""dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``), read from its file and run
without dlib.

Why this exists: dlib-bin has no BLAS, so dlib's own ``cnn_face_detection_model_v1`` spends
about 1.5 s on a 250x250 photo upsampled once and 17 s on a 1080p frame. The same network as an
ONNX graph, run by onnxruntime (OpenCV's DNN module as the fallback), with dlib's pyramid, box
mapping and non-maximum suppression written in numpy, gives dlib's boxes many times faster.

One concern per module: ``model`` (the detector as data), ``reader`` (dlib's file format, with
``oneeye.vision.resnet.dlibfile``), ``graph`` (the ONNX model), ``runtimes`` (the two
backends), ``pyramid`` (upsampling, the tiled pyramid and its coordinates), ``loss`` (boxes
from scores, and non-maximum suppression) and ``detector`` (``MmodDetector``).
"""

from oneeye.vision.mmod.detector import BACKENDS, MmodDetector
from oneeye.vision.mmod.loss import Box
from oneeye.vision.mmod.model import MmodModel
from oneeye.vision.mmod.reader import read_mmod_model

__all__ = ["BACKENDS", "Box", "MmodDetector", "MmodModel", "read_mmod_model"]
