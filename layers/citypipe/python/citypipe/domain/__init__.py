"""The domain: what citypipe is about, with no cloud code and nothing of ours above it.

``model`` (quantities, zones, observations, the claim check), ``city`` (the city file),
``books`` (the typed counts every stage records), ``naming`` (every bucket, queue and
object key), ``geo`` (points to zones), ``errors``.
"""
