"""Exit codes shared by every command and window."""

EXIT_USER_ERROR = 2
"""Something the user can fix: the message says what."""
EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report SIGINT."""
