"""Finding, aligning and encoding faces in images (dlib's models), and decoding images safely."""
