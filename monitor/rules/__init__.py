"""Rules: compiled once from config, evaluated per item without I/O."""
