"""The market simulator: seeded, realistic vendor recordings without a live feed.

:mod:`.simulate` is its public face; :mod:`.profiles` (calibration data), :mod:`.config`,
:mod:`.pricing`, :mod:`.market` (one game's price process), :mod:`.rows` and :mod:`.feed`
(the merged stream) its parts; :mod:`.simfile` writes a simulation to disk.
"""
