"""Text prompts: a structure's name in, its mask out (``medseg segment --text``, ``VolumeSession.add_text``).

The data flow, one module each: ``words`` (normalising names: laterality, plurals, synonyms, groups) ->
``vocabulary`` (what a route can segment; resolving typed words, typos by rapidfuzz) -> ``routes`` (which route
serves this scan) -> ``atlas_route`` (brain MR: ``register`` an MNI template to the scan, carry its atlas over,
cached per scan) or ``automatic_route`` (a trained model's classes) -> ``prompting`` (optionally the promptable
model, slice by slice, from that prior) -> ``session`` (a named, correctable object of a VolumeSession).
Reference: docs/text.md.
"""
