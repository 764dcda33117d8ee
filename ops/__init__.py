"""tracekit's operator command line: `python -m ops --help`."""
