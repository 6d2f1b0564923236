"""The ``ipo`` command line. One small module per subcommand; each only parses flags and
calls the library."""
