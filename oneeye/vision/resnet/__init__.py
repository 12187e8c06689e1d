"""dlib's face-recognition ResNet, read from its ``.dat`` file and run without dlib.

Why this exists: the ``dlib-bin`` wheel is built without BLAS, so dlib's own forward pass
(``face_recognition_model_v1.compute_face_descriptor``) spends about 120 ms on every 150x150
face chip. The network is small (about 0.4 G multiply-adds), so the same arithmetic through a
good convolution routine is several times faster. The weights are read from dlib's
serialized network and run through one of three backends that give dlib's 128-D descriptor
to within float rounding (well under 1e-4 per element):

- ``"onnxruntime"``: the network as an in-memory ONNX model run by onnxruntime (fastest);
- ``"opencv"``: the same ONNX model run by OpenCV's DNN module (always installed);
- ``"numpy"``: im2col plus BLAS ``sgemm``, a literal transcription of dlib's layers kept as
  the reference the other two are checked against.

One concern per module: ``model`` (the layers as data, and their shapes), ``reader`` (dlib's
file format), ``backend`` (the interface and input normalisation), ``reference`` (the numpy
backend), ``onnx_graph`` (the ONNX model), ``runtimes`` (the two ONNX backends) and
``embedder`` (``ResNetEmbedder``, which picks and checks a backend).
"""

from oneeye.vision.resnet.embedder import (
    BACKENDS,
    MAX_BATCH,
    SELF_CHECK_TOLERANCE,
    ResNetEmbedder,
)
from oneeye.vision.resnet.model import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    FullyConnectedLayer,
    InputLayer,
    Layer,
    PoolLayer,
    ReluLayer,
    ResNetModel,
    SkipLayer,
    TagLayer,
)
from oneeye.vision.resnet.onnx_graph import build_onnx
from oneeye.vision.resnet.reader import read_resnet_model

__all__ = [
    "BACKENDS",
    "MAX_BATCH",
    "SELF_CHECK_TOLERANCE",
    "AddPrevLayer",
    "AffineLayer",
    "ConvLayer",
    "FullyConnectedLayer",
    "InputLayer",
    "Layer",
    "PoolLayer",
    "ReluLayer",
    "ResNetEmbedder",
    "ResNetModel",
    "SkipLayer",
    "TagLayer",
    "build_onnx",
    "read_resnet_model",
]
