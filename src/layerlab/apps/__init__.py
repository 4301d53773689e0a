"""Django apps of the lab server, one bounded context each."""
