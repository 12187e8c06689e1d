"""Finding, aligning and encoding faces in images (dlib's models), and decoding images safely.

``engine.FaceEngine`` is the facade the rest of OneEye uses. Detectors are chosen by name
(``detectors``), chips are cut by ``encode``, descriptors come from ``resnet`` (dlib's network
run without dlib), and ``images`` decodes untrusted uploads. Importing this package loads none
of them: dlib, OpenCV and the ONNX runtimes load with the modules that use them.
"""
