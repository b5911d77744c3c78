"""Interactive segmentation over HTTP: ``medseg serve`` speaks the nnInteractive v2 remote protocol (3D
Slicer's nnInteractive extension in Remote mode, the ``nninteractive-client`` package) and ``medseg view``
serves a browser page (NiiVue) on a small JSON API of the same server.

Data flow: request -> ``wire`` (packed arrays, checked before anything is allocated) -> ``leases`` (which
client, time-outs) -> ``target`` (one nnInteractive object on a ``VolumeSession``) -> the changed sub-block
back to the client. See docs/serve.md.
"""
