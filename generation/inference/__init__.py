"""Django-free inference code: pose, segmentation, faces, diffusion, video, compositing, metrics.

Nothing under this package may import Django. Every function takes and returns plain data
(PIL images, numpy arrays, dataclasses) so it can run in any worker, benchmark or notebook.
"""
