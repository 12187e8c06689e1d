"""The gallery of enrolled templates: nearest-person search and identification."""

from oneeye.gallery.index import FILE_FORMAT, FILE_FORMAT_VERSION, GalleryIndex

__all__ = ["FILE_FORMAT", "FILE_FORMAT_VERSION", "GalleryIndex"]
