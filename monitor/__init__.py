"""media-monitor: a media-monitoring alert daemon for conflict escalation signals."""

__version__ = "0.1.0"
