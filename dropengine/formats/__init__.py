"""Pure decoding and encoding of the wire formats (imports only ``dropengine.core``; no I/O).

One module per format rule:

- :mod:`.sse`: Server-Sent Events both ways (``SSEParser``; ``encode_event``, ``encode_comment``);
- :mod:`.vendor`: the vendor's row schema (price and line fields, row kind and identity, the
  ``_diff`` merge, the row of a quote);
- :mod:`.frames`: vendor envelopes -> quotes (``FrameDecoder``) and the wire shapes of a
  price, line and time (their *type*; whether a price is valid is the engine's judgement);
- :mod:`.tables`: the quote column list and one table row <-> one quote;
- :mod:`.theoddsapi`: The Odds API v4 responses -> quotes;
- :mod:`.jsonline`: the one JSON decoder for feed data, and what a line looks like;
- :mod:`.query`: the vendor stream's query parameters.
"""
