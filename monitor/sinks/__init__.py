"""Where alerts go. Each sink implements ``Sink``; ``render`` turns alerts into payloads."""
